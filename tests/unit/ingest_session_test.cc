// IngestSession through a real IngestServer on a real Unix socket, with a real Journal in a
// temp dir: frames in, ACK / ERROR out, in order; batches; the size limit; the idle and
// per-frame timeouts; a durable ack that waits for the sync the test reports (OnDurable),
// and the ERROR when that sync fails. The committer's callbacks are not wired, so nothing
// is durable until the test says so.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "daemon/ingest/server.h"
#include "daemon/journal/committer.h"
#include "daemon/journal/journal.h"
#include "daemon/journal/reader.h"
#include "proto/frame.h"
#include "proto/messages.h"
#include "tests/unit/test_util.h"

namespace ferry {
namespace {

using namespace std::chrono_literals;
using proto::FrameType;
using test::Readable;
using test::ReceiveFrame;
using test::SendBytes;
using test::SendFrame;

class SessionHarness {
 public:
  explicit SessionHarness(IngestLimits limits = {}) {
    test::OpenTestJournal(dir_.Join("journal"), &journal_, &committer_);
    server_ = std::make_unique<IngestServer>(io_, limits, *journal_, *committer_,
                                             [] { return std::string(R"({"healthy":true})"); });
    REQUIRE(server_->Listen(dir_.Join("run/s.sock")).ok());
    server_->Start();
    thread_ = std::thread([this] { io_.run(); });
  }

  ~SessionHarness() {
    net::post(io_, [this] { server_->BeginShutdown(200ms, [] {}); });
    thread_.join();
    CHECK(committer_->Stop().ok());
  }

  // Runs `fn` on the io thread and waits for it.
  template <typename Fn>
  auto OnIo(Fn fn) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    net::post(io_, [&task] { task(); });
    return result.get();
  }

  int Connect() {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = dir_.Join("run/s.sock");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    return fd;
  }

  // The journal's records [1, written], by a reader of the files.
  std::vector<JournalRecord> Records() {
    const uint64_t written = OnIo([this] { return journal_->written_seq(); });
    std::vector<JournalRecord> out;
    JournalReader reader(dir_.Join("journal"), 1);
    JournalRecord rec;
    while (reader.Next(written, &rec) == JournalReader::Result::kRecord) out.push_back(rec);
    return out;
  }

  IngestServer& server() { return *server_; }
  Journal& journal() { return *journal_; }

 private:
  test::TempDir dir_;
  net::io_context io_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<JournalCommitter> committer_;
  std::unique_ptr<IngestServer> server_;
  std::thread thread_;
};

std::string Envelope(const std::string& id, const std::string& payload = R"({"n":1})") {
  return R"({"id":")" + id + R"(","ts":1700000000000000000,"source":"zsh","kind":"command",)" +
         R"("payload":)" + payload + "}";
}
std::string EventBody(const std::string& id, bool durable = false) {
  return std::string(R"({"v":1,)") + (durable ? R"("durable":true,)" : "") + R"("event":)" +
         Envelope(id) + "}";
}
std::string Id(int n) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%032x", n);
  return buf;
}

proto::Ack ExpectAck(int fd) {
  FrameType type;
  std::string body;
  REQUIRE(ReceiveFrame(fd, &type, &body));
  INFO(body);
  REQUIRE(type == FrameType::kAck);
  proto::Ack ack;
  proto::Error error;
  REQUIRE(proto::ParseAckBody(body, &ack, &error));
  CHECK(body == proto::MakeAckBody(ack));  // byte for byte what the protocol writes
  return ack;
}

// An ERROR frame: its body.
std::string ExpectError(int fd) {
  FrameType type;
  std::string body;
  REQUIRE(ReceiveFrame(fd, &type, &body));
  INFO(body);
  CHECK(type == FrameType::kError);
  return body;
}

// EOF within the hang guard.
void ExpectClosed(int fd) {
  REQUIRE(Readable(fd, 10000ms));
  char c;
  CHECK(::recv(fd, &c, 1, 0) == 0);
}

TEST_CASE("ingest session: an EVENT is journaled, then acked with its seq", "[ingest][session]") {
  SessionHarness h;
  const int fd = h.Connect();
  SendFrame(fd, FrameType::kEvent, EventBody(Id(1)));
  SendFrame(fd, FrameType::kEvent, EventBody(Id(2)));
  const proto::Ack a = ExpectAck(fd);
  const proto::Ack b = ExpectAck(fd);
  CHECK(a.first_seq == 1);
  CHECK(a.last_seq == 1);
  CHECK_FALSE(a.durable);  // nothing reported durable
  CHECK(b.first_seq == 2);
  CHECK(b.last_seq == 2);
  // Acked means written: the records are in the file, canonical.
  const auto records = h.Records();
  REQUIRE(records.size() == 2);
  CHECK(records[0].body == Envelope(Id(1)));
  CHECK(records[1].body == Envelope(Id(2)));
  CHECK(h.OnIo([&] { return h.server().counters().events_total; }) == 2);
  ::close(fd);
}

// A frame larger than the session's first read buffer (1 KiB) is read on in the same
// readiness (ReadMore), and frames sent back to back beyond that budget through the socket
// again: every frame is acked once, in order, and journaled byte for byte.
TEST_CASE("ingest session: frames larger than the read buffer, one or many per send",
          "[ingest][session]") {
  SessionHarness h;
  auto envelope = [](int n, size_t payload_bytes) {
    return Envelope(
        Id(n), R"({"s":")" + std::string(payload_bytes, static_cast<char>('a' + n % 26)) + R"("})");
  };
  auto body = [](const std::string& env) { return R"({"v":1,"event":)" + env + "}"; };
  std::vector<std::string> want;
  const int fd = h.Connect();
  int n = 0;
  for (size_t size : {size_t{900}, size_t{1100}, size_t{2000}, size_t{20000}, size_t{70000}}) {
    CAPTURE(size);
    want.push_back(envelope(++n, size));
    SendFrame(fd, FrameType::kEvent, body(want.back()));
    const proto::Ack ack = ExpectAck(fd);
    CHECK(ack.first_seq == static_cast<uint64_t>(n));
    CHECK(ack.last_seq == static_cast<uint64_t>(n));
  }
  // A 20 KB frame on a connection whose buffer is back to 1 KiB (after a small frame): read
  // in one readiness (the first read fills the buffer, the rest is read at once).
  want.push_back(Envelope(Id(++n)));
  SendFrame(fd, FrameType::kEvent, body(want.back()));
  CHECK(ExpectAck(fd).last_seq == static_cast<uint64_t>(n));
  const uint64_t waits = h.OnIo([&] { return h.server().counters().read_waits; });
  want.push_back(envelope(++n, 20000));
  SendFrame(fd, FrameType::kEvent, body(want.back()));
  CHECK(ExpectAck(fd).last_seq == static_cast<uint64_t>(n));
  CHECK(h.OnIo([&] { return h.server().counters().read_waits; }) == waits + 1);
  // Twelve 3 KB frames in one send: more than the reads one readiness takes at once.
  std::string burst;
  for (int i = 0; i < 12; ++i) {
    want.push_back(envelope(++n, 3000));
    proto::AppendFrame(burst, FrameType::kEvent, body(want.back()));
  }
  SendBytes(fd, burst);
  for (int i = n - 11; i <= n; ++i) {
    const proto::Ack ack = ExpectAck(fd);
    CHECK(ack.first_seq == static_cast<uint64_t>(i));
    CHECK(ack.last_seq == static_cast<uint64_t>(i));
  }
  const auto records = h.Records();
  REQUIRE(records.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CHECK(records[i].seq == i + 1);
    CHECK(records[i].body == want[i]);
  }
  ::close(fd);
}

TEST_CASE(
    "ingest session: an EVENT_BATCH gets one ACK for all its seqs; a resent id is a "
    "duplicate",
    "[ingest][session]") {
  SessionHarness h;
  DedupeWindow window(100);
  h.OnIo([&] { h.server().SetDedupeWindow(&window); });
  const int fd = h.Connect();
  SendFrame(fd, FrameType::kEventBatch,
            R"({"v":1,"events":[)" + Envelope(Id(1)) + "," + Envelope(Id(2)) + "," +
                Envelope(Id(3)) + "]}");
  const proto::Ack a = ExpectAck(fd);
  CHECK(a.first_seq == 1);
  CHECK(a.last_seq == 3);
  // Id 2 again (a client that gave up on its ack and spooled it): acked, stored once.
  SendFrame(fd, FrameType::kEvent, EventBody(Id(2)));
  const proto::Ack b = ExpectAck(fd);
  CHECK(b.first_seq == 3);  // all duplicates: the ack covers what is stored
  CHECK(b.last_seq == 3);
  CHECK(h.Records().size() == 3);
  CHECK(h.OnIo([&] { return h.server().counters().duplicates_total; }) == 1);
  ::close(fd);
  h.OnIo([&] { h.server().SetDedupeWindow(nullptr); });
}

TEST_CASE("ingest session: a bad frame gets an ERROR after the acks owed, then the close",
          "[ingest][session]") {
  SessionHarness h;
  const int fd = h.Connect();
  SendFrame(fd, FrameType::kEvent, EventBody(Id(1)));
  SendFrame(fd, FrameType::kEvent, R"({"v":1,"event":{"id":"x"}})");
  CHECK(ExpectAck(fd).last_seq == 1);
  const std::string error = ExpectError(fd);
  CHECK(error.find(R"("fatal":true)") != std::string::npos);
  ExpectClosed(fd);
  CHECK(h.Records().size() == 1);
  ::close(fd);
}

TEST_CASE("ingest session: a frame over max_frame is refused from its header",
          "[ingest][session]") {
  IngestLimits limits;
  limits.max_frame = 1024;
  SessionHarness h(limits);
  const int fd = h.Connect();
  // Only the header: the session must refuse without waiting for (or buffering) the body.
  std::string header(proto::kLengthSize + 1, '\0');
  proto::PutU32Le(header.data(), 1u << 20);
  header[proto::kLengthSize] = static_cast<char>(FrameType::kEvent);
  SendBytes(fd, header);
  const std::string error = ExpectError(fd);
  CHECK(error.find("frame_too_large") != std::string::npos);
  ExpectClosed(fd);
  CHECK(h.Records().empty());
  ::close(fd);
}

TEST_CASE("ingest session: idle and per-frame timeouts close with an ERROR", "[ingest][session]") {
  IngestLimits limits;
  limits.idle_timeout = 150ms;
  limits.frame_timeout = 100ms;
  SessionHarness h(limits);
  SECTION("idle") {
    const int fd = h.Connect();
    const std::string error = ExpectError(fd);
    CHECK(error.find("idle_timeout") != std::string::npos);
    CHECK(error.find("no complete frame") != std::string::npos);
    ExpectClosed(fd);
    ::close(fd);
  }
  SECTION("a frame that does not complete in time") {
    const int fd = h.Connect();
    const std::string frame = proto::EncodeFrame(FrameType::kEvent, EventBody(Id(1)));
    SendBytes(fd, frame.substr(0, frame.size() / 2));
    const std::string error = ExpectError(fd);
    CHECK(error.find("ingest.frame_timeout") != std::string::npos);
    ExpectClosed(fd);
    CHECK(h.Records().empty());
    ::close(fd);
  }
}

TEST_CASE("ingest session: a durable ACK waits for the covering sync", "[ingest][session]") {
  SessionHarness h;
  const int fd = h.Connect();
  SendFrame(fd, FrameType::kEvent, EventBody(Id(1), /*durable=*/true));
  // Wait until the event is written (the flush ran and pumped the session) ...
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (h.OnIo([&] { return h.journal().written_seq(); }) < 1) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::yield();
  }
  h.OnIo([] {});                   // ... and one more io turn: a reply would have been sent by now
  CHECK_FALSE(Readable(fd, 0ms));  // written is not enough
  h.OnIo([&] { h.server().OnDurable(1); });
  const proto::Ack ack = ExpectAck(fd);
  CHECK(ack.last_seq == 1);
  CHECK(ack.durable);

  SECTION("a failed sync refuses the ack") {
    SendFrame(fd, FrameType::kEvent, EventBody(Id(2), /*durable=*/true));
    while (h.OnIo([&] { return h.journal().written_seq(); }) < 2) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::yield();
    }
    h.OnIo([] {});
    CHECK_FALSE(Readable(fd, 0ms));
    h.OnIo([&] { h.server().OnSyncFailed(Status::IOError("fdatasync: EIO")); });
    const std::string error = ExpectError(fd);
    CHECK(error.find("journal_failed") != std::string::npos);
    CHECK(error.find("not durable") != std::string::npos);
  }
  ::close(fd);
}

}  // namespace
}  // namespace ferry
