// TailServer over a socketpair, reading a real Journal in a temp dir: a follow tail replays
// what is written, then gets each record published later (live) in seq order; seqs that are
// not in the journal come as one "skipped" item; a replay without follow ends with "end".
// A read error makes the stream wait (one "waiting" note) and retry, skipping nothing.
// Ephemeral events come in their journal position, only to follow tails, bounded per tail.
// Every read waits for the frame it checks (hang guard 10 s).
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

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

  // Appends without writing (the io thread's state between an append and the pass's flush).
  uint64_t AppendOnly(const std::string& body) {
    uint64_t seq = 0;
    REQUIRE(journal_->Append(1, body, &seq).ok());
    return seq;
  }
  // The flush that ends the io loop pass, then the written listener's OnWritten.
  void FlushAndPublish() {
    REQUIRE(journal_->Flush().ok());
    progress_.PublishWritten(journal_->written_seq());
    tails_->OnWritten();
  }
  // An ephemeral event offered as the io thread does: after = the last appended seq.
  size_t Offer(const std::string& body) { return tails_->Offer(body, journal_->last_seq(), 7); }
  TailServer& server() { return *tails_; }

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

namespace ferry {
namespace {

using namespace std::chrono_literals;

std::string EphemeralItem(uint64_t after, int n) {
  return R"({"v":1,"ephemeral":true,"after":)" + std::to_string(after) +
         R"(,"received":7,"event":)" + Event(n) + "}";
}

}  // namespace

TEST_CASE("tail server: ephemeral events keep their place among the records",
          "[ingest][tail][ephemeral]") {
  TailHarness h;
  h.Write(Event(1));
  proto::TailRequest request;
  request.from = 1;
  request.follow = true;
  h.Tail(request);
  CHECK(h.Next() == Item(1, 1));
  CHECK(h.Offer(Event(100)) == 1);  // after seq 1: sent at once
  CHECK(h.Next() == EphemeralItem(1, 100));
  // Seq 2 is appended but not yet written when the next ephemeral arrives: the tail must send
  // seq 2 first, then it, then seq 3.
  REQUIRE(h.AppendOnly(Event(2)) == 2);
  CHECK(h.Offer(Event(101)) == 1);
  REQUIRE(h.AppendOnly(Event(3)) == 3);
  h.FlushAndPublish();
  CHECK(h.Next() == Item(2, 2));
  CHECK(h.Next() == EphemeralItem(2, 101));
  CHECK(h.Next() == Item(3, 3));
  CHECK(h.server().ephemeral().received.load() == 2);
  // Delivered is counted as the worker hands the item over: wait for the second.
  for (int i = 0; i < 1000 && h.server().ephemeral().delivered.load() < 2; ++i)
    std::this_thread::sleep_for(10ms);
  CHECK(h.server().ephemeral().delivered.load() == 2);
  CHECK(h.server().ephemeral().dropped_no_tail.load() == 0);
}

TEST_CASE("tail server: ephemeral events without a follow tail or past a full feed are counted",
          "[ingest][tail][ephemeral]") {
  TailHarness h;
  CHECK(h.Offer(Event(1)) == 0);
  CHECK(h.server().ephemeral().dropped_no_tail.load() == 1);
  h.Write(Event(1));
  proto::TailRequest request;
  request.from = 1;
  request.follow = true;
  h.Tail(request);
  CHECK(h.Next() == Item(1, 1));
  // Seq 2 appended and never written: every offer waits in the feed, which takes kFeedItems.
  REQUIRE(h.AppendOnly(Event(2)) == 2);
  for (size_t i = 0; i < TailServer::kFeedItems; ++i) REQUIRE(h.Offer(Event(10)) == 1);
  CHECK(h.Offer(Event(11)) == 0);
  CHECK(h.server().ephemeral().dropped_slow_tail.load() == 1);
  CHECK(h.server().ephemeral().received.load() == TailServer::kFeedItems + 2);
  h.FlushAndPublish();
  CHECK(h.Next() == Item(2, 2));
  for (size_t i = 0; i < TailServer::kFeedItems; ++i) REQUIRE(h.Next() == EphemeralItem(2, 10));
}

}  // namespace ferry
