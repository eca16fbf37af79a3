#include "daemon/journal/progress.h"

#include <catch2/catch.hpp>
#include <limits>
#include <thread>

using ferry::ConsumerRegistry;
using ferry::JournalProgress;

TEST_CASE("JournalProgress wakes a waiter when written moves past its seq", "[progress]") {
  JournalProgress p;
  p.PublishWritten(3);
  CHECK(p.WaitBeyond(2, std::chrono::milliseconds(0)) == 3);
  uint64_t seen = 0;
  std::thread waiter([&] { seen = p.WaitBeyond(3, std::chrono::minutes(5)); });
  p.PublishWritten(3);  // not beyond: the waiter keeps waiting
  p.PublishWritten(7);
  waiter.join();
  CHECK(seen == 7);
  p.PublishWritten(5);  // never goes backwards
  CHECK(p.written() == 7);
}

TEST_CASE("JournalProgress::Stop releases every waiter", "[progress]") {
  JournalProgress p;
  std::thread a([&] { p.WaitBeyond(0, std::chrono::minutes(5)); });
  std::thread b([&] { p.WaitBeyond(0, std::chrono::minutes(5)); });
  p.Stop();
  a.join();
  b.join();
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
