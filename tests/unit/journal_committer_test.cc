// JournalCommitter: the fsync policies, group commit (a request made during an fdatasync rides
// the next one), closed segments, and the sticky fdatasync failure. Deterministic by
// construction: the tests count syncs and callbacks, wait on condition variables with
// generous timeouts, and hold the sync thread inside a callback when they need a sync to be
// "in flight". No assertion depends on how long anything took.
#include "daemon/journal/committer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/base/fault_injection.h"
#include "daemon/journal/journal.h"
#include "tests/unit/test_util.h"

namespace ferry {
namespace {

using Catch::Contains;
using std::chrono::milliseconds;

constexpr auto kTimeout = std::chrono::seconds(60);  // only ever hit when a test fails
constexpr auto kOneHour = std::chrono::milliseconds(3'600'000);

// Disarms the fault points however the test ends.
struct FaultGuard {
  FaultGuard() = default;
  ~FaultGuard() { fault::DisarmAll(); }
  FaultGuard(const FaultGuard&) = delete;
  FaultGuard& operator=(const FaultGuard&) = delete;
};

// Records the committer's callbacks (they run on the sync thread). A callback for the seq
// given to HoldAt() blocks until Release(): the sync that produced it is then "in flight" from
// the committer's point of view, since it has not yet taken its next group.
class Recorder {
 public:
  JournalCommitter::Callbacks callbacks() {
    JournalCommitter::Callbacks cb;
    cb.on_durable = [this](uint64_t seq) {
      std::unique_lock lock(mu_);
      durable_.push_back(seq);
      cv_.notify_all();
      if (seq == hold_at_) {
        held_ = true;
        cv_.notify_all();
        cv_.wait(lock, [&] { return released_; });
      }
    };
    cb.on_failure = [this](const Status& status) {
      std::lock_guard lock(mu_);
      failures_.push_back(status.ToString());
      cv_.notify_all();
    };
    return cb;
  }

  void HoldAt(uint64_t seq) {
    std::lock_guard lock(mu_);
    hold_at_ = seq;
  }
  bool WaitHeld() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kTimeout, [&] { return held_; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

  bool WaitDurable(uint64_t seq) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kTimeout,
                        [&] { return !durable_.empty() && durable_.back() >= seq; });
  }
  bool WaitFailures(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kTimeout, [&] { return failures_.size() >= n; });
  }
  // Waits until `n` syncs have reported, either way.
  bool WaitOutcomes(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kTimeout, [&] { return durable_.size() + failures_.size() >= n; });
  }

  std::vector<uint64_t> durable() const {
    std::lock_guard lock(mu_);
    return durable_;
  }
  std::vector<std::string> failures() const {
    std::lock_guard lock(mu_);
    return failures_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<uint64_t> durable_;
  std::vector<std::string> failures_;
  uint64_t hold_at_ = 0;
  bool held_ = false;
  bool released_ = false;
};

std::shared_ptr<SegmentFile> MakeSegment(const test::TempDir& dir, uint64_t first) {
  const std::string path = dir.Join("seg-" + std::to_string(first));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, "data", 4) == 4);
  return std::make_shared<SegmentFile>(fd, first, path);
}

// "No sync runs unasked" is checked where it is decided: Written() asks the sync thread (or
// not) before it returns, and counts every ask (TEST_sync_requests). With an interval of an
// hour the thread has no other reason to wake, so an unchanged count means no sync.

TEST_CASE("committer: names of the policies", "[committer]") {
  CHECK(std::string(FsyncPolicyName(FsyncPolicy::kNever)) == "never");
  CHECK(std::string(FsyncPolicyName(FsyncPolicy::kInterval)) == "interval");
  CHECK(std::string(FsyncPolicyName(FsyncPolicy::kAlways)) == "always");
}

TEST_CASE("committer: policy never syncs only when asked, at a roll and at Stop", "[committer]") {
  test::TempDir tmp;
  auto seg = MakeSegment(tmp, 1);
  Recorder rec;
  JournalCommitter c(FsyncPolicy::kNever, kOneHour, rec.callbacks());
  CHECK(c.policy() == FsyncPolicy::kNever);
  c.Start(seg, 0);
  c.Written(seg, 1, false);
  c.Written(seg, 2, false);
  CHECK(c.TEST_sync_requests() == 0);
  CHECK(c.syncs() == 0);
  CHECK(rec.durable().empty());

  c.Written(seg, 3, true);  // a durable ack is owed
  REQUIRE(rec.WaitDurable(3));
  CHECK(rec.durable() == std::vector<uint64_t>{3});

  const uint64_t asked = c.TEST_sync_requests();
  c.Written(seg, 4, false);
  c.Written(seg, 5, false);
  CHECK(c.TEST_sync_requests() == asked);
  CHECK(rec.durable() == std::vector<uint64_t>{3});
  CHECK(c.Stop().ok());
  CHECK(rec.durable() == std::vector<uint64_t>{3, 5});
  CHECK(c.syncs() == 2);
  CHECK(rec.failures().empty());
}

TEST_CASE("committer: policy always syncs after every write", "[committer]") {
  test::TempDir tmp;
  auto seg = MakeSegment(tmp, 1);
  Recorder rec;
  JournalCommitter c(FsyncPolicy::kAlways, kOneHour, rec.callbacks());
  c.Start(seg, 0);
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    c.Written(seg, seq, false);
    REQUIRE(rec.WaitDurable(seq));
  }
  CHECK(rec.durable() == std::vector<uint64_t>{1, 2, 3, 4, 5});
  CHECK(c.Stop().ok());
  CHECK(c.syncs() == 5);  // Stop had nothing left to sync
}

TEST_CASE("committer: policy interval syncs on the timer and when asked", "[committer]") {
  test::TempDir tmp;
  auto seg = MakeSegment(tmp, 1);
  Recorder rec;
  SECTION("a long interval: only durable requests and Stop sync") {
    JournalCommitter c(FsyncPolicy::kInterval, kOneHour, rec.callbacks());
    c.Start(seg, 0);
    c.Written(seg, 1, false);
    CHECK(c.TEST_sync_requests() == 0);
    CHECK(rec.durable().empty());
    c.Written(seg, 2, true);
    REQUIRE(rec.WaitDurable(2));
    c.Written(seg, 3, false);
    CHECK(c.Stop().ok());
    CHECK(rec.durable() == std::vector<uint64_t>{2, 3});
    CHECK(c.syncs() == 2);
  }
  SECTION("a short interval: writes become durable without being asked") {
    JournalCommitter c(FsyncPolicy::kInterval, milliseconds(1), rec.callbacks());
    c.Start(seg, 0);
    for (uint64_t seq = 1; seq <= 3; ++seq) {
      c.Written(seg, seq, false);
      REQUIRE(rec.WaitDurable(seq));
    }
    CHECK(c.Stop().ok());
    const auto durable = rec.durable();
    CHECK(durable == std::vector<uint64_t>{1, 2, 3});
    CHECK(c.syncs() == 3);  // the timer never syncs when nothing is new
  }
}

TEST_CASE("committer: durable reports the written seq, starting from recovery's", "[committer]") {
  test::TempDir tmp;
  auto seg = MakeSegment(tmp, 1);
  Recorder rec;
  JournalCommitter c(FsyncPolicy::kAlways, kOneHour, rec.callbacks());
  c.Start(seg, 41);
  c.Written(seg, 41, true);  // recovery already synced it: nothing to do
  c.Written(seg, 44, true);
  REQUIRE(rec.WaitDurable(44));
  c.Written(seg, 43, true);  // stale report from the io thread: never goes backwards
  c.Written(seg, 45, false);
  REQUIRE(rec.WaitDurable(45));
  CHECK(c.Stop().ok());
  CHECK(rec.durable() == std::vector<uint64_t>{44, 45});
}

// Group commit: while one fdatasync is in flight, every request joins one next group.
TEST_CASE("committer: requests made during a sync ride the next one", "[committer]") {
  const FsyncPolicy policy = GENERATE(FsyncPolicy::kNever, FsyncPolicy::kAlways);
  CAPTURE(FsyncPolicyName(policy));
  test::TempDir tmp;
  auto seg = MakeSegment(tmp, 1);
  Recorder rec;
  rec.HoldAt(1);
  JournalCommitter c(policy, kOneHour, rec.callbacks());
  c.Start(seg, 0);
  c.Written(seg, 1, true);
  REQUIRE(rec.WaitHeld());  // the first sync is done but its pass is not over
  c.Written(seg, 2, true);
  c.Written(seg, 3, true);
  c.Written(seg, 4, false);
  rec.Release();
  REQUIRE(rec.WaitDurable(4));
  CHECK(c.Stop().ok());
  CHECK(rec.durable() == std::vector<uint64_t>{1, 4});
  CHECK(c.syncs() == 2);
}

TEST_CASE("committer: a closed segment is synced at once and then let go", "[committer]") {
  test::TempDir tmp;
  auto first = MakeSegment(tmp, 1);
  auto second = MakeSegment(tmp, 4);
  const std::weak_ptr<SegmentFile> first_weak = first;
  Recorder rec;
  JournalCommitter c(FsyncPolicy::kNever, kOneHour, rec.callbacks());
  c.Start(first, 0);
  c.Written(first, 2, false);
  // The journal's roll: the closed segment goes to the committer, then writes go on in the
  // new one. No durable ack is asked for, and the policy is never.
  c.Closed(std::move(first), 3);
  c.Written(second, 3, false);
  REQUIRE(rec.WaitDurable(3));
  CHECK(first_weak.expired());  // closed on the sync thread, not held forever
  const uint64_t asked = c.TEST_sync_requests();
  c.Written(second, 5, false);
  CHECK(c.TEST_sync_requests() == asked);
  CHECK(rec.durable() == std::vector<uint64_t>{3});
  CHECK(c.Stop().ok());
  CHECK(rec.durable() == std::vector<uint64_t>{3, 5});
}

// fdatasync order within a pass: closed segments first, then the active one. Failing the n-th
// shows which file each call was for.
TEST_CASE("committer: closed segments are synced before the active one", "[committer]") {
  FaultGuard guard;
  test::TempDir tmp;
  auto closed = MakeSegment(tmp, 1);
  auto active = MakeSegment(tmp, 4);
  const int fail_after = GENERATE(0, 1);
  const std::string path = fail_after == 0 ? closed->path : active->path;
  CAPTURE(fail_after);
  Recorder rec;
  JournalCommitter c(FsyncPolicy::kNever, kOneHour, rec.callbacks());
  c.Start(active, 0);
  fault::Arm(fault::Point::kSync, fail_after, EIO);
  c.Closed(closed, 3);
  REQUIRE(rec.WaitFailures(1));
  const Status s = c.Stop();
  CHECK_THAT(s.message(), Contains("fdatasync " + path));
  CHECK_THAT(s.message(), Contains(std::strerror(EIO)));
  CHECK(rec.failures() == std::vector<std::string>{s.ToString()});
  CHECK(rec.durable().empty());
}

TEST_CASE("committer: a failed fdatasync is sticky", "[committer]") {
  FaultGuard guard;
  const int64_t fail_after = GENERATE(int64_t{0}, int64_t{1}, int64_t{3});
  const FsyncPolicy policy = GENERATE(FsyncPolicy::kAlways, FsyncPolicy::kNever);
  CAPTURE(fail_after, FsyncPolicyName(policy));
  test::TempDir tmp;
  auto seg = MakeSegment(tmp, 1);
  Recorder rec;
  JournalCommitter c(policy, kOneHour, rec.callbacks());
  c.Start(seg, 0);
  fault::Arm(fault::Point::kSync, fail_after, EIO);
  const auto ok_syncs = static_cast<uint64_t>(fail_after);
  for (uint64_t seq = 1; seq <= ok_syncs + 1; ++seq) {
    c.Written(seg, seq, true);
    REQUIRE(rec.WaitOutcomes(seq));
  }
  // The failed one reported; nothing after it is ever called durable, even once the device
  // recovers.
  fault::DisarmAll();
  for (uint64_t seq = ok_syncs + 2; seq <= ok_syncs + 5; ++seq) c.Written(seg, seq, true);
  const Status s = c.Stop();
  CHECK_FALSE(s.ok());
  CHECK_THAT(s.message(), Contains("fdatasync " + seg->path));
  CHECK_THAT(s.message(), Contains(std::strerror(EIO)));
  CHECK(rec.failures() == std::vector<std::string>{s.ToString()});
  std::vector<uint64_t> expected;
  for (uint64_t seq = 1; seq <= ok_syncs; ++seq) expected.push_back(seq);
  CHECK(rec.durable() == expected);
  CHECK(c.syncs() == ok_syncs + 1);
  CHECK(c.Stop().message() == s.message());  // a second Stop says the same
}

TEST_CASE("committer: the final sync at Stop can fail", "[committer]") {
  FaultGuard guard;
  test::TempDir tmp;
  auto seg = MakeSegment(tmp, 1);
  Recorder rec;
  JournalCommitter c(FsyncPolicy::kNever, kOneHour, rec.callbacks());
  c.Start(seg, 0);
  c.Written(seg, 1, false);
  fault::Arm(fault::Point::kSync, 0, ENOSPC);
  const Status s = c.Stop();
  CHECK_THAT(s.message(), Contains(std::strerror(ENOSPC)));
  CHECK(rec.failures().size() == 1);
  CHECK(rec.durable().empty());
}

TEST_CASE("committer: Stop with nothing written does not sync", "[committer]") {
  test::TempDir tmp;
  auto seg = MakeSegment(tmp, 1);
  Recorder rec;
  JournalCommitter c(FsyncPolicy::kAlways, kOneHour, rec.callbacks());
  c.Start(seg, 7);
  CHECK(c.Stop().ok());
  CHECK(c.syncs() == 0);
  CHECK(rec.durable().empty());
  CHECK(c.Stop().ok());
}

TEST_CASE("committer: destroyed without Start or Stop", "[committer]") {
  Recorder rec;
  { JournalCommitter c(FsyncPolicy::kInterval, milliseconds(5), rec.callbacks()); }
  test::TempDir tmp;
  auto seg = MakeSegment(tmp, 1);
  {
    JournalCommitter c(FsyncPolicy::kNever, kOneHour, rec.callbacks());
    c.Start(seg, 0);
    c.Written(seg, 9, false);
  }  // the destructor stops, and so syncs
  CHECK(rec.durable() == std::vector<uint64_t>{9});
}

// The committer as ferryd wires it: the journal's roll callback hands closed segments over,
// and each Flush is followed by Written() for the active one.
TEST_CASE("committer: with a rolling journal", "[committer]") {
  test::TempDir tmp;
  Journal::Options options;
  options.dir = tmp.Join("journal");
  options.segment_bytes = 200;
  std::unique_ptr<Journal> journal;
  RecoveryReport report;
  REQUIRE(Journal::Open(options, &journal, &report).ok());
  Recorder rec;
  JournalCommitter c(GENERATE(FsyncPolicy::kAlways, FsyncPolicy::kNever), kOneHour,
                     rec.callbacks());
  std::vector<std::weak_ptr<SegmentFile>> closed;
  std::vector<uint64_t> closed_last;
  journal->SetRollCallback([&](std::shared_ptr<SegmentFile> segment, uint64_t last_seq) {
    closed.push_back(segment);
    closed_last.push_back(last_seq);
    c.Closed(std::move(segment), last_seq);
  });
  c.Start(journal->active_segment(), journal->written_seq());
  for (uint64_t seq = 1; seq <= 20; ++seq) {
    uint64_t got = 0;
    REQUIRE(journal->Append(static_cast<int64_t>(seq), std::string(50, 'x'), &got).ok());
    REQUIRE(got == seq);
    REQUIRE(journal->Flush().ok());
    c.Written(journal->active_segment(), journal->written_seq(), seq % 5 == 0);
  }
  REQUIRE(rec.WaitDurable(20));
  CHECK(closed_last == std::vector<uint64_t>{2, 4, 6, 8, 10, 12, 14, 16, 18});
  CHECK(c.Stop().ok());
  for (const auto& weak : closed) CHECK(weak.expired());
  const auto durable = rec.durable();
  CHECK(durable.back() == 20);
  CHECK(std::is_sorted(durable.begin(), durable.end()));
}

TEST_CASE("committer: SetPolicy from always to never still syncs what was owed", "[committer]") {
  test::TempDir tmp;
  auto seg = MakeSegment(tmp, 1);
  Recorder rec;
  JournalCommitter c(FsyncPolicy::kAlways, kOneHour, rec.callbacks());
  c.Start(seg, 0);
  c.Written(seg, 1, false);
  REQUIRE(rec.WaitDurable(1));
  // An ack for seq 2 was queued as durable under "always"; its Written() comes after the
  // switch to "never", which alone would never sync it.
  c.SetPolicy(FsyncPolicy::kNever, kOneHour);
  CHECK(c.policy() == FsyncPolicy::kNever);
  c.Written(seg, 2, false);
  REQUIRE(rec.WaitDurable(2));
  // From then on "never" holds: no sync unasked.
  const uint64_t asked = c.TEST_sync_requests();
  c.Written(seg, 3, false);
  CHECK(c.TEST_sync_requests() == asked);
  CHECK(rec.durable().back() == 2);
  CHECK(c.Stop().ok());
  CHECK(rec.durable().back() == 3);
}

TEST_CASE("committer: SetPolicy to a short interval syncs without being asked", "[committer]") {
  test::TempDir tmp;
  auto seg = MakeSegment(tmp, 1);
  Recorder rec;
  JournalCommitter c(FsyncPolicy::kNever, kOneHour, rec.callbacks());
  c.Start(seg, 0);
  c.SetPolicy(FsyncPolicy::kInterval, milliseconds(1));
  CHECK(c.interval() == milliseconds(1));
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    c.Written(seg, seq, seq == 1);  // only the first asks
    REQUIRE(rec.WaitDurable(seq));
  }
  CHECK(c.Stop().ok());
}

TEST_CASE("committer: SyncInProgressSince is set only during an fdatasync", "[committer]") {
  test::TempDir tmp;
  auto seg = MakeSegment(tmp, 1);
  Recorder rec;
  JournalCommitter c(FsyncPolicy::kNever, kOneHour, rec.callbacks());
  CHECK_FALSE(c.SyncInProgressSince().has_value());
  c.Start(seg, 0);
  const auto before = std::chrono::steady_clock::now();
  rec.HoldAt(1);  // the callback runs between the fdatasync and the bookkeeping after it
  c.Written(seg, 1, true);
  REQUIRE(rec.WaitHeld());
  const auto since = c.SyncInProgressSince();
  REQUIRE(since.has_value());
  CHECK(*since >= before);
  CHECK(*since <= std::chrono::steady_clock::now());
  rec.Release();
  CHECK(c.Stop().ok());
  CHECK_FALSE(c.SyncInProgressSince().has_value());
}

}  // namespace
}  // namespace ferry
