// TailServer over a socketpair, reading a real Journal in a temp dir: a follow tail replays
// what is written, then gets each record published later (live) in seq order; seqs that are
// not in the journal come as one "skipped" item; a replay without follow ends with "end".
// A read error makes the stream wait (one "waiting" note) and retry, skipping nothing.
// Every read waits for the frame it checks (hang guard 10 s).
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "daemon/base/fault_injection.h"
#include "daemon/base/file_seam.h"
#include "daemon/ingest/tail_server.h"
#include "daemon/journal/journal.h"
#include "daemon/journal/progress.h"
#include "proto/frame.h"
#include "proto/messages.h"
#include "tests/unit/test_util.h"

namespace ferry {
namespace {

using namespace std::chrono_literals;

class TailHarness {
 public:
  explicit TailHarness(uint64_t first_seq = 1) {
    Journal::Options options;
    options.dir = dir_.Join("journal");
    options.min_next_seq = first_seq;
    RecoveryReport report;
    REQUIRE(Journal::Open(options, &journal_, &report).ok());
    tails_ = std::make_unique<TailServer>(options.dir, progress_);
  }
  ~TailHarness() {
    progress_.Stop();
    tails_->Stop();
    if (fd_ >= 0) ::close(fd_);
  }

  // Appends and writes one event; publishes it (as the io thread does after a flush).
  uint64_t Write(const std::string& body) {
    uint64_t seq = 0;
    REQUIRE(journal_->Append(1, body, &seq).ok());
    REQUIRE(journal_->Flush().ok());
    progress_.PublishWritten(journal_->written_seq());
    return seq;
  }

  void Tail(const proto::TailRequest& request) {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    fd_ = sv[0];
    std::string error;
    REQUIRE(tails_->Start(sv[1], request, &error));
  }

  // The body of the next TAIL_ITEM.
  std::string Next() {
    std::string buf;
    for (;;) {
      proto::Frame frame;
      proto::Error error;
      const auto r = proto::DecodeFrame(buf, proto::kDefaultMaxFrame, &frame, &error);
      if (r == proto::DecodeResult::kFrame) {
        REQUIRE(frame.type == proto::FrameType::kTailItem);
        return std::string(frame.body);
      }
      REQUIRE(r == proto::DecodeResult::kNeedMore);
      pollfd p{fd_, POLLIN, 0};
      REQUIRE(::poll(&p, 1, 10000) == 1);
      const size_t want = buf.size() < proto::kLengthSize
                              ? proto::kLengthSize - buf.size()
                              : proto::kLengthSize + proto::GetU32Le(buf.data()) - buf.size();
      std::string chunk(want, '\0');
      const ssize_t n = ::recv(fd_, chunk.data(), chunk.size(), 0);
      REQUIRE(n > 0);
      buf.append(chunk.data(), static_cast<size_t>(n));
    }
  }

 private:
  test::TempDir dir_;
  std::unique_ptr<Journal> journal_;
  JournalProgress progress_;
  std::unique_ptr<TailServer> tails_;
  int fd_ = -1;
};

std::string Event(int n) {
  return R"({"id":")" + std::to_string(n) + R"(","source":"zsh","kind":"command"})";
}
std::string Item(uint64_t seq, int n) {
  return R"({"v":1,"seq":)" + std::to_string(seq) + R"(,"received":1,"event":)" + Event(n) + "}";
}

TEST_CASE("tail server: replay, then live events in seq order", "[ingest][tail]") {
  TailHarness h;
  h.Write(Event(1));
  h.Write(Event(2));
  proto::TailRequest request;
  request.from = 1;
  request.follow = true;
  h.Tail(request);
  CHECK(h.Next() == Item(1, 1));
  CHECK(h.Next() == Item(2, 2));
  // Written after the tail caught up: it arrives live.
  h.Write(Event(3));
  CHECK(h.Next() == Item(3, 3));
}

TEST_CASE("tail server: seqs not in the journal come as one skipped item; a replay ends",
          "[ingest][tail]") {
  TailHarness h(/*first_seq=*/5);  // the journal begins at seq 5
  REQUIRE(h.Write(Event(5)) == 5);
  proto::TailRequest request;
  request.from = 2;
  request.follow = false;
  h.Tail(request);
  CHECK(h.Next() == R"({"v":1,"skipped":{"from":2,"to":4,"reason":"not in the journal"}})");
  CHECK(h.Next() == Item(5, 5));
  CHECK(h.Next() == R"({"v":1,"end":true,"next":6})");
}

TEST_CASE("tail server: source and kind filters", "[ingest][tail]") {
  TailHarness h;
  h.Write(R"({"id":"a","source":"zsh","kind":"command"})");
  h.Write(R"({"id":"b","source":"claude-code","kind":"command"})");
  proto::TailRequest request;
  request.from = 1;
  request.source = "claude-code";
  h.Tail(request);
  CHECK(
      h.Next() ==
      R"({"v":1,"seq":2,"received":1,"event":{"id":"b","source":"claude-code","kind":"command"}})");
  CHECK(h.Next() == R"({"v":1,"end":true,"next":3})");
}

TEST_CASE("tail server: a read error sends one waiting note, then the stream goes on",
          "[ingest][tail]") {
  // Declared first, so the tail's worker is joined (with h) before the seam is put back.
  fault::FaultFileSystem ffs(/*track_sync=*/false);
  struct Uninstall {
    ~Uninstall() { fs::Install(nullptr); }
  } uninstall;
  TailHarness h;
  h.Write(Event(1));
  fault::Rule rule;
  rule.op = fault::Op::kRead;
  rule.error_number = EIO;
  rule.path = "journal";
  ffs.AddRule(rule);
  fs::Install(&ffs);
  proto::TailRequest request;
  request.from = 1;
  request.follow = true;
  h.Tail(request);
  const std::string waiting = h.Next();
  INFO(waiting);
  CHECK(waiting.rfind(R"({"v":1,"waiting":{"seq":1,"reason":")", 0) == 0);
  ffs.ClearRules();  // the disk is back: the record comes, nothing is skipped
  CHECK(h.Next() == Item(1, 1));
}

}  // namespace
}  // namespace ferry
