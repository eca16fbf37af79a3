#include "daemon/journal/publisher.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "daemon/journal/committer.h"
#include "daemon/journal/journal.h"
#include "daemon/journal/progress.h"
#include "daemon/journal/retention.h"
#include "tests/unit/test_util.h"

namespace ferry {
namespace {

constexpr std::chrono::hours kHour{1};

// A journal with tiny segments, a consumer far ahead and a clock a day ahead of max_age (every
// closed segment may be deleted at once) and a committer whose thread never runs: the
// publisher is driven by hand.
struct Fixture {
  Fixture() {
    Journal::Options o;
    o.dir = tmp.Join("journal");
    o.segment_bytes = 256;
    RecoveryReport report;
    REQUIRE(Journal::Open(o, &journal, &report).ok());
    consumers.Register("holder", 1u << 30);
    retention =
        std::make_unique<Retention>(*journal, consumers, 1ull << 30, tmp.Join("retention.json"));
    REQUIRE(retention->Load().ok());
    // Read segments stay until the cap or max_age (docs/journal-format.md, "Retention"): an
    // age limit of 1 s with a clock a day ahead makes every closed segment due at once.
    retention->SetMaxAge(std::chrono::seconds(1));
    retention->SetClockForTest([] {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::system_clock::now().time_since_epoch() + std::chrono::hours(24))
          .count();
    });
  }
  void Append(size_t bytes) {
    uint64_t seq = 0;
    REQUIRE(journal->Append(1, std::string(bytes, 'a'), &seq).ok());
  }

  test::TempDir tmp;
  std::unique_ptr<Journal> journal;
  JournalProgress progress;
  ConsumerRegistry consumers;
  std::unique_ptr<Retention> retention;
  JournalCommitter committer{FsyncPolicy::kInterval, kHour, {}};
};

TEST_CASE("publisher: written after every flush; shippable when durable", "[publisher]") {
  Fixture f;
  int wakes = 0;
  JournalPublisher pub(*f.journal, f.committer, f.progress, *f.retention, FsyncPolicy::kInterval,
                       [&] { ++wakes; });
  pub.PublishRecovered();
  f.Append(10);
  REQUIRE(pub.FlushAndPublish(false).ok());
  CHECK(f.progress.written() == 1);
  CHECK(f.progress.shippable() == 0);  // not durable yet
  CHECK(wakes == 0);
  pub.OnDurable(1);
  CHECK(f.progress.shippable() == 1);
  CHECK(wakes == 1);
}

TEST_CASE("publisher: the deferring listener publishes at once, wakes at WakeConsumers",
          "[publisher]") {
  Fixture f;
  JournalPublisher pub(*f.journal, f.committer, f.progress, *f.retention, FsyncPolicy::kInterval,
                       nullptr);
  pub.PublishRecovered();
  auto seen = std::async(std::launch::async,
                         [&] { return f.progress.WaitBeyond(0, std::chrono::minutes(5)); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (f.progress.TEST_waiters() < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  REQUIRE(f.progress.TEST_waiters() == 1);
  f.Append(10);
  REQUIRE(f.journal->Flush().ok());
  pub.WrittenListenerWakingLater()(f.journal->written_seq());
  CHECK(f.progress.written() == 1);  // consumers that look now see it
  pub.WakeConsumers();
  CHECK(seen.get() == 1);
  pub.WakeConsumers();  // nothing owed: a no-op
  CHECK(f.progress.written() == 1);
}

TEST_CASE("publisher: under fsync never, what is written is shippable", "[publisher]") {
  Fixture f;
  int wakes = 0;
  JournalPublisher pub(*f.journal, f.committer, f.progress, *f.retention, FsyncPolicy::kInterval,
                       [&] { ++wakes; });
  f.Append(10);
  REQUIRE(pub.FlushAndPublish(false).ok());
  CHECK(f.progress.shippable() == 0);
  pub.SetPolicy(FsyncPolicy::kNever, kHour);  // a reload ships what is written at once
  CHECK(f.progress.shippable() == 1);
  CHECK(f.committer.policy() == FsyncPolicy::kNever);
  f.Append(10);
  pub.OnWritten(f.journal->written_seq());  // the listener path, as the importer calls it
  CHECK(f.progress.written() == 1);         // nothing flushed yet: written stays
  REQUIRE(pub.FlushAndPublish(false).ok());
  CHECK(f.progress.shippable() == 2);
  CHECK(wakes >= 2);
}

TEST_CASE("publisher: a flush that rolled runs retention before it returns", "[publisher]") {
  Fixture f;
  JournalPublisher pub(*f.journal, f.committer, f.progress, *f.retention, FsyncPolicy::kInterval,
                       nullptr);
  const auto on_written = pub.WrittenListener();
  for (int i = 0; i < 6; ++i) {
    f.Append(100);
    REQUIRE(f.journal->Flush().ok());
    on_written(f.journal->written_seq());
    // Every closed segment was deleted in the same call that published the flush.
    CHECK(f.journal->segment_count() == 1);
  }
  CHECK(f.retention->deleted_segments() >= 2);
  CHECK(f.progress.written() == 6);
}

}  // namespace
}  // namespace ferry
