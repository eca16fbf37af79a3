#include "daemon/journal/progress.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <limits>
#include <thread>

using ferry::ConsumerRegistry;
using ferry::JournalProgress;

namespace {

// Polls (with a deadline, not a sleep-then-assert) until `n` threads wait inside WaitBeyond.
bool WaitForWaiters(const JournalProgress& p, int n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (p.TEST_waiters() < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace

TEST_CASE("JournalProgress wakes a waiter when written moves past its seq", "[progress]") {
  JournalProgress p;
  p.PublishWritten(3);
  CHECK(p.WaitBeyond(2, std::chrono::milliseconds(0)) == 3);
  auto seen =
      std::async(std::launch::async, [&] { return p.WaitBeyond(3, std::chrono::minutes(5)); });
  // The waiter really waits: it found nothing beyond 3 (a WaitBeyond that returned at once
  // would never count itself here, and the test fails at the deadline).
  REQUIRE(WaitForWaiters(p, 1));
  p.PublishWritten(3);  // not beyond: the waiter keeps waiting
  CHECK(seen.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
  p.PublishWritten(7);
  CHECK(seen.get() == 7);
  CHECK(p.TEST_waiters() == 0);
  p.PublishWritten(5);  // never goes backwards
  CHECK(p.written() == 7);
}

TEST_CASE("JournalProgress::PublishWrittenQuietly wakes only at WakeWaiters", "[progress]") {
  JournalProgress p;
  CHECK_FALSE(p.PublishWrittenQuietly(2));  // nobody waits: no wake owed
  CHECK(p.written() == 2);
  auto seen =
      std::async(std::launch::async, [&] { return p.WaitBeyond(2, std::chrono::minutes(5)); });
  REQUIRE(WaitForWaiters(p, 1));
  CHECK(p.PublishWrittenQuietly(7));        // a waiter waits: the caller owes it a wake
  CHECK(p.written() == 7);                  // published at once
  CHECK_FALSE(p.PublishWrittenQuietly(7));  // not beyond: nothing owed
  p.WakeWaiters();
  CHECK(seen.get() == 7);
  CHECK(p.TEST_waiters() == 0);
  // A waiter that comes after the quiet publish sees the seq without being woken.
  CHECK(p.PublishWrittenQuietly(9) == false);
  CHECK(p.WaitBeyond(8, std::chrono::minutes(5)) == 9);
}

TEST_CASE("JournalProgress: a waiter that needs `more` records is owed a wake only then",
          "[progress]") {
  JournalProgress p;
  p.PublishWritten(2);
  // The store writer holding a batch that 10 more records fill.
  auto batch =
      std::async(std::launch::async, [&] { return p.WaitBeyond(2, std::chrono::minutes(5), 10); });
  REQUIRE(WaitForWaiters(p, 1));
  CHECK_FALSE(p.PublishWrittenQuietly(5));   // 3 of 10: no wake owed
  CHECK_FALSE(p.PublishWrittenQuietly(11));  // 9 of 10
  CHECK(batch.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
  // A second waiter that wants the next record: now a wake is owed, for it.
  auto next =
      std::async(std::launch::async, [&] { return p.WaitBeyond(11, std::chrono::minutes(5)); });
  REQUIRE(WaitForWaiters(p, 2));
  CHECK(p.PublishWrittenQuietly(12));  // reaches both targets (12 = 2 + 10)
  p.WakeWaiters();
  CHECK(next.get() == 12);
  CHECK(batch.get() == 12);
  CHECK(p.TEST_waiters() == 0);
  // Targets are each waiter's own: the one for the next record is woken, the batch keeps
  // waiting; the wake is owed again for the batch once its target is reached.
  batch = std::async(std::launch::async,
                     [&] { return p.WaitBeyond(12, std::chrono::minutes(5), 100); });
  next = std::async(std::launch::async, [&] { return p.WaitBeyond(12, std::chrono::minutes(5)); });
  REQUIRE(WaitForWaiters(p, 2));
  p.PublishWritten(13);
  CHECK(next.get() == 13);
  REQUIRE(WaitForWaiters(p, 1));  // the batch still waits (TEST_waiters counts it)
  CHECK(p.TEST_waiters() == 1);
  CHECK_FALSE(p.PublishWrittenQuietly(111));
  CHECK(p.PublishWrittenQuietly(112));
  p.WakeWaiters();
  CHECK(batch.get() == 112);
  // A target past UINT64_MAX saturates: only the timeout or Stop() ends the wait.
  CHECK(p.WaitBeyond(std::numeric_limits<uint64_t>::max() - 1, std::chrono::milliseconds(1), 5) ==
        112);
}

TEST_CASE("JournalProgress::Stop releases every waiter", "[progress]") {
  JournalProgress p;
  auto a = std::async(std::launch::async, [&] { return p.WaitBeyond(0, std::chrono::minutes(5)); });
  auto b = std::async(std::launch::async, [&] { return p.WaitBeyond(0, std::chrono::minutes(5)); });
  REQUIRE(WaitForWaiters(p, 2));  // both are waiting, not yet returned
  p.Stop();
  CHECK(a.get() == 0);
  CHECK(b.get() == 0);
  CHECK(p.stopped());
  CHECK(p.WaitBeyond(10, std::chrono::minutes(5)) == 0);  // returns at once after Stop
}

TEST_CASE("ConsumerRegistry reports the lowest active cursor", "[progress]") {
  ConsumerRegistry r;
  CHECK(r.MinCursor() == std::numeric_limits<uint64_t>::max());
  auto* store = r.Register("store", 10);
  auto* sink = r.Register("sink:a", 4);
  CHECK(r.MinCursor() == 4);
  sink->cursor.store(12);
  CHECK(r.MinCursor() == 10);
  r.Unregister(store);
  CHECK(r.MinCursor() == 12);
  int n = 0;
  r.ForEach([&](const ConsumerRegistry::Slot& s) {
    CHECK(s.name == "sink:a");
    ++n;
  });
  CHECK(n == 1);
}
