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
