#include "daemon/journal/retention.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/journal/format.h"
#include "daemon/journal/journal.h"
#include "daemon/journal/reader.h"
#include "tests/unit/test_util.h"

using ferry::IsDiskFull;
using ferry::LostFor;
using ferry::PlanRetention;
using ferry::RetentionLimits;
using ferry::RetentionPlan;
using ferry::SegmentInfo;

namespace {

constexpr int64_t kSec = 1000000000;
constexpr int64_t kNow = 1700000000 * kSec;

// Four segments of 100 bytes: seqs 1-10, 11-20, 21-30, 31.. (active), last written 40, 30,
// 20 and 10 s ago.
std::vector<SegmentInfo> Four() {
  return {{1, 100, kNow - 40 * kSec},
          {11, 100, kNow - 30 * kSec},
          {21, 100, kNow - 20 * kSec},
          {31, 100, kNow - 10 * kSec}};
}

RetentionLimits Cap(uint64_t max_bytes) {
  RetentionLimits l;
  l.max_bytes = max_bytes;
  l.now_ns = kNow;
  return l;
}
RetentionLimits Age(int64_t seconds, uint64_t max_bytes = UINT64_MAX) {
  RetentionLimits l = Cap(max_bytes);
  l.max_age_ns = seconds * kSec;
  return l;
}
const RetentionLimits kNoLimit = Cap(UINT64_MAX);

}  // namespace

TEST_CASE("retention keeps what every consumer has read while under the cap", "[retention]") {
  // The old rule deleted a segment once every cursor was past it; now only a limit does.
  for (uint64_t cursor : {0u, 9u, 10u, 29u, 30u, 1000u}) {
    CAPTURE(cursor);
    CHECK(PlanRetention(Four(), true, cursor, kNoLimit).delete_count == 0);
    CHECK(PlanRetention(Four(), true, cursor, Cap(400)).delete_count == 0);
  }
  CHECK(PlanRetention(Four(), false, UINT64_MAX, kNoLimit).delete_count == 0);
}

TEST_CASE("retention never deletes the active segment", "[retention]") {
  CHECK(PlanRetention(Four(), true, 1000, Cap(0)).delete_count == 3);
  CHECK(PlanRetention(Four(), true, 1000, Age(0 + 1)).delete_count == 3);
  CHECK(PlanRetention({{1, 5000, 0}}, true, 1000, Cap(10)).delete_count == 0);
  CHECK(PlanRetention({}, true, 1000, Cap(10)).delete_count == 0);
}

TEST_CASE("without consumers the cap deletes, and nothing counts as lost", "[retention]") {
  RetentionPlan p = PlanRetention(Four(), false, UINT64_MAX, Cap(250));
  CHECK(p.delete_count == 2);
  CHECK(p.for_cap == 2);
  CHECK(p.lost() == 0);
}

TEST_CASE("the byte cap deletes oldest first down to the cap and counts unread seqs",
          "[retention]") {
  SECTION("total at the cap: nothing") {
    CHECK(PlanRetention(Four(), true, 0, Cap(400)).delete_count == 0);
  }
  SECTION("one byte over: the oldest segment goes") {
    RetentionPlan p = PlanRetention(Four(), true, 0, Cap(399));
    CHECK(p.delete_count == 1);
    CHECK(p.for_cap == 1);
    CHECK(p.lost_from == 1);
    CHECK(p.lost_to == 10);
    CHECK(p.lost() == 10);
  }
  SECTION("a consumer part way through the deleted range loses only the rest") {
    RetentionPlan p = PlanRetention(Four(), true, 15, Cap(150));
    CHECK(p.delete_count == 3);
    CHECK(p.first_seq == 1);
    CHECK(p.last_seq == 30);
    CHECK(p.lost_from == 16);
    CHECK(p.lost_to == 30);
    CHECK(p.lost() == 15);
    CHECK(LostFor(p, 15) == 15);
    CHECK(LostFor(p, 0) == 30);
    CHECK(LostFor(p, 30) == 0);
    CHECK(LostFor(p, 500) == 0);
  }
  SECTION("read segments go no sooner than unread ones: only as far as the cap needs") {
    RetentionPlan p = PlanRetention(Four(), true, 20, Cap(350));
    CHECK(p.delete_count == 1);
    CHECK(p.lost() == 0);
  }
}

TEST_CASE("max_age deletes old segments every consumer has read, oldest first", "[retention]") {
  SECTION("older than the age and read: gone; a newer one stops the plan") {
    RetentionPlan p = PlanRetention(Four(), true, 1000, Age(25));
    CHECK(p.delete_count == 2);  // 40 s and 30 s old; the 20 s one stays
    CHECK(p.for_age == 2);
    CHECK(p.for_cap == 0);
    CHECK(p.last_seq == 20);
    CHECK(p.lost() == 0);
  }
  SECTION("exactly the age: kept") {
    CHECK(PlanRetention(Four(), true, 1000, Age(40)).delete_count == 0);
    CHECK(PlanRetention(Four(), true, 1000, Age(39)).delete_count == 1);
  }
  SECTION("an unread segment is never deleted for age, and holds the younger ones") {
    CHECK(PlanRetention(Four(), true, 0, Age(1)).delete_count == 0);
    CHECK(PlanRetention(Four(), true, 9, Age(1)).delete_count == 0);
    RetentionPlan p = PlanRetention(Four(), true, 15, Age(1));
    CHECK(p.delete_count == 1);
    CHECK(p.lost() == 0);
  }
  SECTION("without consumers age alone decides") {
    CHECK(PlanRetention(Four(), false, UINT64_MAX, Age(15)).delete_count == 3);
  }
  SECTION("off (0): age deletes nothing") {
    CHECK(PlanRetention(Four(), true, 1000, Age(0)).delete_count == 0);
  }
  SECTION("the cap still deletes unread segments the age keeps") {
    RetentionPlan p = PlanRetention(Four(), true, 0, Age(1, 250));
    CHECK(p.delete_count == 2);
    CHECK(p.for_cap == 2);
    CHECK(p.lost() == 20);
  }
  SECTION("cap first, then age, in one plan") {
    RetentionPlan p = PlanRetention(Four(), true, 1000, Age(25, 350));
    CHECK(p.delete_count == 2);
    CHECK(p.for_cap == 1);
    CHECK(p.for_age == 1);
  }
}

TEST_CASE("a full disk deletes what every consumer has read, nothing unread", "[retention]") {
  RetentionLimits room = kNoLimit;
  room.make_room = true;
  CHECK(PlanRetention(Four(), true, 1000, room).delete_count == 3);
  CHECK(PlanRetention(Four(), true, 1000, room).for_room == 3);
  CHECK(PlanRetention(Four(), true, 20, room).delete_count == 2);
  CHECK(PlanRetention(Four(), true, 5, room).delete_count == 0);
  CHECK(IsDiskFull(ferry::Status::FromErrno("write /j/1.seg", ENOSPC)));
  CHECK(IsDiskFull(ferry::Status::FromErrno("fdatasync /j/1.seg", EDQUOT)));
  CHECK_FALSE(IsDiskFull(ferry::Status::FromErrno("write /j/1.seg", EIO)));
  CHECK_FALSE(IsDiskFull(ferry::Status::Ok()));
}

TEST_CASE("a consumer whose cursor is behind the oldest segment loses only what existed",
          "[retention]") {
  // Segments 1-10 were deleted earlier; a consumer still at 0 loses 11-20 now, not 1-20.
  std::vector<SegmentInfo> segs = {{11, 100, 0}, {21, 100, 0}, {31, 100, 0}};
  RetentionPlan p = PlanRetention(segs, true, 0, Cap(200));
  CHECK(p.delete_count == 1);
  CHECK(p.lost_from == 11);
  CHECK(p.lost() == 10);
  CHECK(LostFor(p, 0) == 10);
}

TEST_CASE("retention sweeps every cap, age and cursor without over- or under-counting",
          "[retention]") {
  const uint64_t cap = GENERATE(0u, 99u, 100u, 199u, 200u, 299u, 300u, 399u, 400u);
  const uint64_t cursor = GENERATE(0u, 5u, 10u, 11u, 20u, 25u, 30u, 40u);
  const int64_t age = GENERATE(0, 15, 25, 35, 100);
  RetentionPlan p = PlanRetention(Four(), true, cursor, Age(age, cap));
  const uint64_t kept_bytes = 400 - 100 * p.delete_count;
  CHECK(p.delete_count <= 3);
  CHECK(p.delete_count == p.for_cap + p.for_age + p.for_room);
  // Under the cap, or only the active segment remains.
  CHECK((kept_bytes <= cap || p.delete_count == 3));
  // No more than the cap needs, unless the next one was read and old.
  const size_t cap_needs = cap >= 400 ? 0 : (400 - cap + 99) / 100;
  CHECK(p.for_cap == std::min<size_t>(cap_needs, 3));
  for (size_t i = p.for_cap; i < p.delete_count; ++i) {
    const uint64_t last = 10 * (i + 1);
    CHECK(last <= cursor);                           // read by the consumer
    CHECK(40 - 10 * static_cast<int64_t>(i) > age);  // and older than the age
    CHECK(age > 0);
  }
  const uint64_t deleted_last = p.delete_count == 0 ? 0 : 10 * p.delete_count;
  const uint64_t expect_lost = deleted_last > cursor ? deleted_last - cursor : 0;
  CHECK(p.lost() == expect_lost);
  CHECK(LostFor(p, cursor) == expect_lost);
}

TEST_CASE("DeleteOldestSegments keeps the journal figures exact and an open reader whole",
          "[retention]") {
  ferry::test::TempDir tmp;
  ferry::Journal::Options options;
  options.dir = tmp.Join("journal");
  options.segment_bytes = 200;
  std::unique_ptr<ferry::Journal> j;
  ferry::RecoveryReport report;
  REQUIRE(ferry::Journal::Open(options, &j, &report).ok());
  const std::string body(50, 'b');
  for (int i = 0; i < 8; ++i) {
    uint64_t seq = 0;
    REQUIRE(j->Append(1, body, &seq).ok());
    REQUIRE(j->Flush().ok());
  }
  std::vector<uint64_t> seqs;
  REQUIRE(ferry::ListSegments(options.dir, &seqs).ok());
  REQUIRE(seqs == std::vector<uint64_t>{1, 3, 5, 7});

  // A reader in the middle of segment 1 when segments 1 and 3 go.
  ferry::JournalReader reader(options.dir, 1);
  ferry::JournalRecord rec;
  REQUIRE(reader.Next(UINT64_MAX, &rec) == ferry::JournalReader::Result::kRecord);
  REQUIRE(rec.seq == 1);

  REQUIRE(j->DeleteOldestSegments(2).ok());
  REQUIRE(ferry::ListSegments(options.dir, &seqs).ok());
  CHECK(seqs == std::vector<uint64_t>{5, 7});
  CHECK(j->oldest_seq() == 5);
  CHECK(j->segment_count() == 2);
  uint64_t on_disk = 0;
  for (uint64_t first : seqs) {
    struct stat st {};
    REQUIRE(::stat((options.dir + "/" + ferry::journal::SegmentFileName(first)).c_str(), &st) == 0);
    on_disk += static_cast<uint64_t>(st.st_size);
  }
  CHECK(j->total_bytes() == on_disk);

  // It finishes the segment it has open (its fd keeps the data), then skips to 5.
  std::vector<uint64_t> got;
  while (reader.Next(UINT64_MAX, &rec) == ferry::JournalReader::Result::kRecord) {
    got.push_back(rec.seq);
  }
  CHECK(got == std::vector<uint64_t>{2, 5, 6, 7, 8});
  CHECK(reader.skipped_seqs() == 2);

  // Never the active segment, whatever the count.
  REQUIRE(j->DeleteOldestSegments(10).ok());
  CHECK(j->segment_count() == 1);
  CHECK(j->oldest_seq() == 7);
  uint64_t seq = 0;
  REQUIRE(j->Append(1, body, &seq).ok());
  REQUIRE(j->Flush().ok());
  CHECK(seq == 9);
}

TEST_CASE("journal.max_age: a duration, off by default", "[retention][config]") {
  ferry::Config c;
  std::string error;
  REQUIRE(ferry::ParseConfigText("", "t.toml", &c, &error));
  CHECK(c.journal_max_age.count() == 0);
  CHECK(c.max_bytes_auto);
  REQUIRE(ferry::ParseConfigText("[journal]\nmax_age = \"720h\"\nmax_bytes = \"2GiB\"\n", "t.toml",
                                 &c, &error));
  CHECK(c.journal_max_age == std::chrono::hours(24 * 30));
  CHECK(c.max_bytes == 2ull << 30);
  CHECK_FALSE(c.max_bytes_auto);
  ferry::Config bad;
  CHECK_FALSE(ferry::ParseConfigText("[journal]\nmax_age = \"500ms\"\n", "t.toml", &bad, &error));
  CHECK(error == "t.toml:2:11: \"journal.max_age\" is out of range [1000ms, 3153600000000ms]");
}

TEST_CASE("journal.max_bytes unset: 10% of the file system, at most 1 GiB, at least 1 MiB",
          "[retention][config]") {
  ferry::test::TempDir tmp;
  struct statvfs fs {};
  REQUIRE(::statvfs(tmp.path().c_str(), &fs) == 0);
  const uint64_t tenth = static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize / 10;
  const uint64_t want = std::clamp<uint64_t>(tenth, 1ull << 20, 1ull << 30);
  CHECK(ferry::DefaultJournalCap(tmp.path()) == want);
  // A state dir that does not exist yet: its nearest existing parent's file system.
  CHECK(ferry::DefaultJournalCap(tmp.Join("not/yet/there")) == want);

  const std::string path = tmp.Join("config.toml");
  ferry::test::WriteFile(path, "state_dir = \"" + tmp.Join("state") + "\"\n");
  ferry::ConfigSource source;
  source.path = path;
  source.required = true;
  ferry::Config c;
  std::string error;
  ::unsetenv("FERRY_STATE_DIR");
  REQUIRE(ferry::LoadEffectiveConfig(source, &c, &error));
  CHECK(c.max_bytes == want);
  ferry::test::WriteFile(
      path, "state_dir = \"" + tmp.Join("state") + "\"\n[journal]\nmax_bytes = \"3MiB\"\n");
  REQUIRE(ferry::LoadEffectiveConfig(source, &c, &error));
  CHECK(c.max_bytes == 3ull << 20);
}
