#include "daemon/journal/retention.h"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "daemon/journal/format.h"
#include "daemon/journal/journal.h"
#include "daemon/journal/reader.h"
#include "tests/unit/test_util.h"

using ferry::LostFor;
using ferry::PlanRetention;
using ferry::RetentionPlan;
using ferry::SegmentInfo;

namespace {

// Four segments of 100 bytes: seqs 1-10, 11-20, 21-30, 31.. (active).
std::vector<SegmentInfo> Four() { return {{1, 100}, {11, 100}, {21, 100}, {31, 100}}; }
constexpr uint64_t kNoCap = UINT64_MAX;

}  // namespace

TEST_CASE("retention deletes only segments every consumer is past", "[retention]") {
  CHECK(PlanRetention(Four(), true, 0, kNoCap).delete_count == 0);
  CHECK(PlanRetention(Four(), true, 9, kNoCap).delete_count == 0);
  RetentionPlan p = PlanRetention(Four(), true, 10, kNoCap);
  CHECK(p.delete_count == 1);
  CHECK(p.first_seq == 1);
  CHECK(p.last_seq == 10);
  CHECK(p.lost() == 0);
  CHECK(PlanRetention(Four(), true, 29, kNoCap).delete_count == 2);
  CHECK(PlanRetention(Four(), true, 30, kNoCap).delete_count == 3);
}

TEST_CASE("retention never deletes the active segment", "[retention]") {
  CHECK(PlanRetention(Four(), true, 1000, kNoCap).delete_count == 3);
  CHECK(PlanRetention(Four(), true, 1000, 0).delete_count == 3);
  CHECK(PlanRetention({{1, 5000}}, true, 1000, 10).delete_count == 0);
  CHECK(PlanRetention({}, true, 1000, 10).delete_count == 0);
}

TEST_CASE("without consumers only the cap deletes, and nothing counts as lost", "[retention]") {
  CHECK(PlanRetention(Four(), false, UINT64_MAX, kNoCap).delete_count == 0);
  RetentionPlan p = PlanRetention(Four(), false, UINT64_MAX, 250);
  CHECK(p.delete_count == 2);
  CHECK(p.lost() == 0);
}

TEST_CASE("the byte cap deletes oldest first down to the cap and counts unread seqs",
          "[retention]") {
  SECTION("total at the cap: nothing") {
    CHECK(PlanRetention(Four(), true, 0, 400).delete_count == 0);
  }
  SECTION("one byte over: the oldest segment goes") {
    RetentionPlan p = PlanRetention(Four(), true, 0, 399);
    CHECK(p.delete_count == 1);
    CHECK(p.lost_from == 1);
    CHECK(p.lost_to == 10);
    CHECK(p.lost() == 10);
  }
  SECTION("a consumer part way through the deleted range loses only the rest") {
    RetentionPlan p = PlanRetention(Four(), true, 15, 150);
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
  SECTION("consumed segments go first and count nothing") {
    RetentionPlan p = PlanRetention(Four(), true, 20, 350);
    CHECK(p.delete_count == 2);
    CHECK(p.lost() == 0);
  }
}

TEST_CASE("a consumer whose cursor is behind the oldest segment loses only what existed",
          "[retention]") {
  // Segments 1-10 were deleted earlier; a consumer still at 0 loses 11-20 now, not 1-20.
  std::vector<SegmentInfo> segs = {{11, 100}, {21, 100}, {31, 100}};
  RetentionPlan p = PlanRetention(segs, true, 0, 200);
  CHECK(p.delete_count == 1);
  CHECK(p.lost_from == 11);
  CHECK(p.lost() == 10);
  CHECK(LostFor(p, 0) == 10);
}

TEST_CASE("retention sweeps every cap and cursor without over- or under-counting", "[retention]") {
  const uint64_t cap = GENERATE(0u, 99u, 100u, 199u, 200u, 299u, 300u, 399u, 400u);
  const uint64_t cursor = GENERATE(0u, 5u, 10u, 11u, 20u, 25u, 30u, 40u);
  RetentionPlan p = PlanRetention(Four(), true, cursor, cap);
  uint64_t kept_bytes = 400 - 100 * p.delete_count;
  CHECK(p.delete_count <= 3);
  // Either under the cap or only the active segment remains; and every segment the cursor
  // passed is gone.
  CHECK((kept_bytes <= cap || p.delete_count == 3));
  const size_t consumed = cursor >= 30 ? 3 : cursor >= 20 ? 2 : cursor >= 10 ? 1 : 0;
  CHECK(p.delete_count >= consumed);
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
