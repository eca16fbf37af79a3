#include "daemon/ingest/dedupe_window.h"

#include <algorithm>
#include <string>

#include <catch2/catch.hpp>

#include "daemon/journal/journal.h"
#include "tests/unit/test_util.h"

namespace ferry {
namespace {

TEST_CASE("DedupeWindow remembers the last N ids and forgets the oldest", "[dedupe]") {
  DedupeWindow w(3);
  const std::string a(32, 'a'), b(32, 'b'), c(32, 'c'), d(32, 'd');
  CHECK_FALSE(w.Contains(a));
  w.Insert(a);
  w.Insert(b);
  w.Insert(c);
  CHECK((w.Contains(a) && w.Contains(b) && w.Contains(c)));
  w.Insert(a);  // already there: no change in order or size
  CHECK(w.size() == 3);
  w.Insert(d);
  CHECK_FALSE(w.Contains(a));
  CHECK((w.Contains(b) && w.Contains(c) && w.Contains(d)));
  CHECK(w.size() == 3);
}

TEST_CASE("DedupeWindow: hex ids match case-insensitively; other ids by hash", "[dedupe]") {
  DedupeWindow w(10);
  w.Insert("0123456789abcdef0123456789ABCDEF");
  CHECK(w.Contains("0123456789ABCDEF0123456789abcdef"));
  CHECK_FALSE(w.Contains("0123456789abcdef0123456789abcdee"));
  w.Insert("0190a0b1-c2d3-7e4f-8a9b-0c1d2e3f4a5b");
  CHECK(w.Contains("0190a0b1-c2d3-7e4f-8a9b-0c1d2e3f4a5b"));
  CHECK_FALSE(w.Contains("0190a0b1-c2d3-7e4f-8a9b-0c1d2e3f4a5c"));
  CHECK_FALSE(w.Contains("abc"));
  // 32 characters, one not a hex digit: kept by hash, not folded onto a hex id.
  w.Insert("0123456789abcdef0123456789abcdeg");
  CHECK(w.Contains("0123456789abcdef0123456789abcdeg"));
  CHECK_FALSE(w.Contains("0123456789abcdef0123456789abcde0"));
  CHECK_FALSE(w.Contains("0123456789abcdef0123456789abcdeG"));
}

TEST_CASE("DedupeWindow of capacity 0 finds nothing", "[dedupe]") {
  DedupeWindow w(0);
  w.Insert(std::string(32, 'a'));
  CHECK_FALSE(w.Contains(std::string(32, 'a')));
  CHECK(w.size() == 0);
}

TEST_CASE("DedupeWindow::Load reads the ids of the journal's last N records", "[dedupe]") {
  test::TempDir dir;
  std::unique_ptr<Journal> journal;
  RecoveryReport report;
  Journal::Options opts;
  opts.dir = dir.path();
  opts.segment_bytes = 4096;  // several segments
  REQUIRE(Journal::Open(opts, &journal, &report).ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 100; ++i) {
    char id[33];
    std::snprintf(id, sizeof id, "%032x", i + 1);
    ids.push_back(id);
    uint64_t seq = 0;
    REQUIRE(journal
                ->Append(1, std::string(R"({"id":")") + id + R"(","ts":1,"source":"s","kind":"k"})",
                         &seq)
                .ok());
  }
  REQUIRE(journal->Flush().ok());
  DedupeWindow w(10);
  REQUIRE(w.Load(dir.path(), journal->written_seq()).ok());
  CHECK(w.size() == 10);
  CHECK_FALSE(w.Contains(ids[89]));
  for (int i = 90; i < 100; ++i) CHECK(w.Contains(ids[static_cast<size_t>(i)]));
}

uint32_t ConstantHash(uint64_t, uint64_t) { return 7; }

std::string HexId(int i) {
  char id[33];
  std::snprintf(id, sizeof id, "%032x", i);
  return id;
}

TEST_CASE("DedupeWindow wraps around: each insert past capacity evicts exactly the oldest",
          "[dedupe]") {
  DedupeWindow w(5);
  for (int i = 0; i < 1000; ++i) {
    w.Insert(HexId(i));
    w.Insert("u-" + std::to_string(i) + "-x");  // a non-hex id in the same ring
    REQUIRE(w.size() == std::min<size_t>(5, 2 * static_cast<size_t>(i) + 2));
    CHECK(w.Contains(HexId(i)));
    CHECK(w.Contains("u-" + std::to_string(i) + "-x"));
    if (i >= 3) {  // the ring holds ids i-2 .. i (5 ids: the hex id of i-2 is gone)
      CHECK(w.Contains("u-" + std::to_string(i - 2) + "-x"));
      CHECK_FALSE(w.Contains(HexId(i - 2)));
      CHECK_FALSE(w.Contains("u-" + std::to_string(i - 3) + "-x"));
    }
  }
}

TEST_CASE("DedupeWindow with every id colliding still finds exactly the ids held", "[dedupe]") {
  DedupeWindow w(20);
  w.SetHashForTest(&ConstantHash);
  for (int i = 0; i < 200; ++i) {
    w.Insert(HexId(i));
    for (int j = std::max(0, i - 19); j <= i; ++j) REQUIRE(w.Contains(HexId(j)));
    if (i >= 20) REQUIRE_FALSE(w.Contains(HexId(i - 20)));
    REQUIRE_FALSE(w.Contains(HexId(i + 1)));
  }
  CHECK(w.size() == 20);
}

TEST_CASE("DedupeWindow: ids with equal hash are not duplicates (exact match)", "[dedupe]") {
  DedupeWindow w(10);
  w.SetHashForTest(&ConstantHash);
  w.Insert("0190a0b1-c2d3-7e4f-8a9b-0c1d2e3f4a5b");
  CHECK(w.Contains("0190a0b1-c2d3-7e4f-8a9b-0c1d2e3f4a5b"));
  CHECK_FALSE(w.Contains("0190A0B1-c2d3-7e4f-8a9b-0c1d2e3f4a5b"));  // not 32 hex: byte exact
  CHECK_FALSE(w.Contains("0190a0b1-c2d3-7e4f-8a9b-0c1d2e3f4a5c"));
  CHECK_FALSE(w.Contains(std::string(32, 'a')));
  w.Insert(std::string(32, 'a'));
  CHECK(w.Contains(std::string(32, 'A')));
  CHECK(w.size() == 2);
  w.Clear();
  CHECK(w.size() == 0);
  CHECK_FALSE(w.Contains(std::string(32, 'a')));
}

TEST_CASE("EnvelopeId reads the id of a canonical envelope", "[dedupe]") {
  CHECK(EnvelopeId(R"({"id":"abc","ts":1})") == "abc");
  CHECK(EnvelopeId(R"({"ts":1,"id":"abc"})").empty());
  CHECK(EnvelopeId(R"({"id":"abc)").empty());
}

}  // namespace
}  // namespace ferry
