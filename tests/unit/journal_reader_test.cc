// JournalReader: reading from any seq across segments, limit_seq, reading beside a live writer,
// damaged middle segments (kCorruption with the exact seqs lost, then on with the next segment),
// deleted segments, a torn tail at the live end (kEnd, not kCorruption), and failed reads and
// opens (kIOError: nothing skipped, the same bytes read again once the fault clears).
#include "daemon/journal/reader.h"

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "daemon/base/crc32c.h"
#include "daemon/base/fault_injection.h"
#include "daemon/base/file_seam.h"
#include "daemon/journal/format.h"
#include "daemon/journal/journal.h"
#include "tests/unit/test_util.h"

namespace ferry {
namespace {

using Catch::Contains;
using journal::kMagicSize;
using journal::kRecordHeaderSize;
using Result = JournalReader::Result;

constexpr uint64_t kReadAll = UINT64_MAX;

int64_t ReaderReceivedNs(uint64_t seq) { return -5'000'000'000 + static_cast<int64_t>(seq) * 997; }

std::string ReaderBodyFor(uint64_t seq, size_t len) {
  // Appended, not `"r" + std::to_string(seq)`: that trips GCC 12's bogus -Wrestrict at -O3
  // (https://gcc.gnu.org/bugzilla/show_bug.cgi?id=105329).
  std::string body = "r";
  body += std::to_string(seq);
  body += ':';
  while (body.size() < len) body.push_back(static_cast<char>('A' + (body.size() * 7 + seq) % 26));
  body.resize(len);
  return body;
}

std::string RenderRecords(const std::vector<JournalRecord>& records) {
  std::string out;
  for (const auto& r : records) {
    out += std::to_string(r.seq) + " " + std::to_string(r.received_ns) + " " + r.body + "\n";
  }
  return out;
}

// What a reader returned until kEnd: the records, and a line per kCorruption saying after
// which seq it came and what error() said.
struct Drained {
  std::vector<JournalRecord> records;
  std::vector<std::string> errors;
  std::vector<std::pair<uint64_t, uint64_t>> lost;  // lost_first(), lost_last() per kCorruption
  std::string transcript;  // records as "seq\n", corruptions as "corruption\n"
  std::string end_error;   // error() at kEnd: must be empty
  std::string io_error;    // error() at kIOError, which ends the drain
};

Drained Drain(JournalReader& reader, uint64_t limit = kReadAll) {
  Drained d;
  JournalRecord rec;
  bool ended = false;
  bool silent_corruption = false;
  for (int guard = 0; guard < 1000 && !ended; ++guard) {
    switch (reader.Next(limit, &rec)) {
      case Result::kEnd:
        ended = true;
        d.end_error = reader.error();
        break;
      case Result::kCorruption:
        silent_corruption = silent_corruption || reader.error().empty();
        d.errors.push_back(reader.error());
        d.lost.emplace_back(reader.lost_first(), reader.lost_last());
        d.transcript += "corruption\n";
        break;
      case Result::kRecord:
        d.records.push_back(rec);
        d.transcript += std::to_string(rec.seq) + "\n";
        break;
      case Result::kIOError:
        ended = true;
        d.io_error = reader.error();
        d.transcript += "ioerror\n";
        break;
    }
  }
  CHECK(ended);  // a reader that never reaches kEnd repeats itself forever
  CHECK(d.end_error.empty());
  CHECK((d.transcript.find("ioerror") == std::string::npos || !d.io_error.empty()));
  CHECK_FALSE(silent_corruption);
  return d;
}

// A journal written through the real Journal, and the records it must hold.
class ReaderHarness {
 public:
  explicit ReaderHarness(uint64_t segment_bytes = 1 << 20) {
    options_.dir = tmp_.Join("journal");
    options_.segment_bytes = segment_bytes;
  }

  void Open() {
    RecoveryReport report;
    journal_.reset();
    const Status s = Journal::Open(options_, &journal_, &report);
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
  void Close() { journal_.reset(); }

  uint64_t Append(size_t len) {
    const uint64_t next = journal_->last_seq() + 1;
    uint64_t seq = 0;
    REQUIRE(journal_->Append(ReaderReceivedNs(next), ReaderBodyFor(next, len), &seq).ok());
    REQUIRE(seq == next);
    records_.push_back({seq, ReaderReceivedNs(seq), ReaderBodyFor(seq, len)});
    return seq;
  }
  void Flush() { REQUIRE(journal_->Flush().ok()); }
  template <typename LengthFn>
  void WriteN(uint64_t n, LengthFn len) {
    for (uint64_t i = 0; i < n; ++i) {
      Append(len(journal_->last_seq() + 1));
      Flush();
    }
  }

  // Records first..last (inclusive) as written.
  std::string Expected(uint64_t first, uint64_t last) const {
    std::vector<JournalRecord> out;
    for (const auto& r : records_) {
      if (r.seq >= first && r.seq <= last) out.push_back(r);
    }
    return RenderRecords(out);
  }
  std::string Transcript(uint64_t first, uint64_t last) const {
    std::string out;
    for (uint64_t s = first; s <= last; ++s) out += std::to_string(s) + "\n";
    return out;
  }

  std::vector<uint64_t> Segments() const {
    std::vector<uint64_t> seqs;
    REQUIRE(ListSegments(options_.dir, &seqs).ok());
    return seqs;
  }
  std::string SegPath(uint64_t first) const {
    return options_.dir + "/" + journal::SegmentFileName(first);
  }
  std::string Seg(uint64_t first) const { return test::ReadFile(SegPath(first)); }
  void SetSeg(uint64_t first, const std::string& data) const {
    test::WriteFile(SegPath(first), data);
  }
  size_t SizeOf(uint64_t seq) const {
    for (const auto& r : records_) {
      if (r.seq == seq) return kRecordHeaderSize + r.body.size();
    }
    FAIL("no record " << seq);
    return 0;
  }
  // Offset of record `seq` inside segment `first`.
  size_t OffsetOf(uint64_t seq, uint64_t first) const {
    size_t offset = kMagicSize;
    for (uint64_t s = first; s < seq; ++s) offset += SizeOf(s);
    return offset;
  }

  const std::string& dir() const { return options_.dir; }
  Journal& journal() { return *journal_; }

 private:
  test::TempDir tmp_;
  Journal::Options options_;
  std::unique_ptr<Journal> journal_;
  std::vector<JournalRecord> records_;
};

size_t ReaderVariedLength(uint64_t seq) { return 11 + (seq * 13) % 40; }

TEST_CASE("reader: from every seq across segments", "[journal_reader]") {
  constexpr uint64_t kN = 30;
  ReaderHarness h(256);
  h.Open();
  h.WriteN(kN, ReaderVariedLength);
  const bool closed = GENERATE(false, true);
  if (closed) h.Close();
  REQUIRE(h.Segments().size() >= 6);
  for (uint64_t start = 0; start <= kN + 1; ++start) {
    CAPTURE(start);
    JournalReader reader(h.dir(), start);
    const Drained d = Drain(reader);
    CHECK(RenderRecords(d.records) == h.Expected(start, kN));
    CHECK(d.errors.empty());
    CHECK(reader.dropped_bytes() == 0);
    CHECK(reader.skipped_seqs() == 0);
    CHECK(reader.next_seq() == std::max<uint64_t>(start, kN + 1));
  }
}

TEST_CASE("reader: limit_seq is respected", "[journal_reader]") {
  ReaderHarness h(256);
  h.Open();
  h.WriteN(20, ReaderVariedLength);
  JournalReader reader(h.dir(), 3);
  JournalRecord rec;
  CHECK(reader.Next(0, &rec) == Result::kEnd);
  CHECK(reader.Next(2, &rec) == Result::kEnd);
  CHECK(reader.next_seq() == 3);
  uint64_t from = 3;
  for (const uint64_t limit : std::vector<uint64_t>{3, 3, 7, 8, 15, 15, 20, 25}) {
    CAPTURE(limit);
    const Drained d = Drain(reader, limit);
    const uint64_t to = std::min<uint64_t>(limit, 20);
    CHECK(RenderRecords(d.records) == h.Expected(from, to));
    CHECK(d.errors.empty());
    CHECK(reader.next_seq() == to + 1);
    from = to + 1;
  }
}

TEST_CASE("reader: follows a live writer", "[journal_reader]") {
  ReaderHarness h(GENERATE(uint64_t{200}, uint64_t{1} << 20));
  JournalReader reader(h.dir(), 1);
  JournalRecord rec;
  CHECK(reader.Next(kReadAll, &rec) == Result::kEnd);  // no journal yet
  h.Open();
  CHECK(reader.Next(kReadAll, &rec) == Result::kEnd);
  uint64_t read = 0;
  for (int round = 0; round < 25; ++round) {
    CAPTURE(round);
    const int n = round % 4;
    for (int i = 0; i < n; ++i) h.Append(20 + static_cast<size_t>(round));
    // Appended records are in the file once written (by Flush, or by an Append that rolls);
    // the rest is invisible whatever the limit.
    Drained d = Drain(reader, kReadAll);
    CHECK(RenderRecords(d.records) == h.Expected(read + 1, h.journal().written_seq()));
    read = h.journal().written_seq();
    h.Flush();
    d = Drain(reader, h.journal().written_seq());
    CHECK(RenderRecords(d.records) == h.Expected(read + 1, h.journal().written_seq()));
    CHECK(d.errors.empty());
    read = h.journal().written_seq();
  }
  CHECK(reader.dropped_bytes() == 0);
  CHECK(reader.skipped_seqs() == 0);
  // The writer restarts and goes on in the same segment.
  h.Open();
  h.WriteN(3, ReaderVariedLength);
  const Drained d = Drain(reader);
  CHECK(RenderRecords(d.records) == h.Expected(read + 1, read + 3));
}

TEST_CASE("reader: torn tail at the live end is kEnd, then the rest of the record arrives",
          "[journal_reader]") {
  ReaderHarness h;
  h.Open();
  h.WriteN(3, ReaderVariedLength);
  h.Close();
  const std::string whole = h.Seg(1);
  const size_t at = h.OffsetOf(3, 1);
  const size_t keep = GENERATE(range(size_t{0}, size_t{40}));
  CAPTURE(keep);
  h.SetSeg(1, whole.substr(0, at + keep));
  JournalReader reader(h.dir(), 1);
  Drained d = Drain(reader);
  CHECK(RenderRecords(d.records) == h.Expected(1, 2));
  CHECK(d.errors.empty());
  CHECK(reader.dropped_bytes() == 0);
  h.SetSeg(1, whole);  // the writer's write() completes
  d = Drain(reader);
  CHECK(RenderRecords(d.records) == h.Expected(3, 3));
  CHECK(d.errors.empty());
}

// Segments of two 74-byte records: 1-2, 3-4, 5-6, 7-8, 9-10, 11-12. The damage is in segment 5.
TEST_CASE("reader: damage in a middle segment is reported, then reading goes on",
          "[journal_reader]") {
  ReaderHarness h(200);
  h.Open();
  h.WriteN(12, [](uint64_t) { return size_t{50}; });
  h.Close();
  REQUIRE(h.Segments() == std::vector<uint64_t>{1, 3, 5, 7, 9, 11});
  const std::string seg = h.Seg(5);
  REQUIRE(seg.size() == 156);
  struct Case {
    const char* name;
    std::string data;    // new contents of segment 5
    uint64_t last_good;  // last seq read before the corruption
    uint64_t dropped;    // bytes
    const char* error;
  };
  auto with_byte = [&](size_t offset, char value) {
    std::string s = seg;
    s[offset] = value;
    return s;
  };
  auto with_seq = [&](size_t offset, uint64_t seq) {  // valid CRC, wrong seq
    std::string s = seg;
    for (size_t i = 0; i < 8; ++i) s[offset + 8 + i] = static_cast<char>((seq >> (8 * i)) & 0xff);
    const uint32_t crc = crc32c::Value(s.data() + offset + 8, 16 + 50);
    for (size_t i = 0; i < 4; ++i) s[offset + 4 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
    return s;
  };
  const Case c = GENERATE_COPY(
      Case{"checksum, first record", with_byte(8 + 40, 'X'), 4, 148, "checksum mismatch"},
      Case{"checksum, second record", with_byte(82 + 5, 'X'), 5, 74, "checksum mismatch"},
      Case{"huge length", with_byte(82 + 3, '\x7f'), 5, 74, "record length over the limit"},
      Case{"torn body", seg.substr(0, 146), 5, 64, "record runs past the end"},
      Case{"torn header", seg.substr(0, 92), 5, 10, "torn record header"},
      Case{"zero-filled tail", seg + std::string(4096, '\0'), 6, 4096, "zero-filled tail"},
      Case{"bad magic", "FERRYJ00" + seg.substr(8), 4, 156, "bad magic"},
      Case{"torn magic", seg.substr(0, 5), 4, 5, "magic"}, Case{"empty", "", 4, 0, "magic"},
      Case{"seq gap with a valid crc", with_seq(82, 99), 5, 74, "sequence 99 where 6"},
      Case{"duplicate seq with a valid crc", with_seq(82, 5), 5, 74, "sequence 5 where 6"},
      Case{"first seq not the name", with_seq(8, 4), 4, 148, "sequence 4 where 5"});
  CAPTURE(c.name);
  h.SetSeg(5, c.data);

  const uint64_t start = GENERATE(uint64_t{1}, uint64_t{4}, uint64_t{5});
  CAPTURE(start);
  JournalReader reader(h.dir(), start);
  const Drained d = Drain(reader);
  if (start > c.last_good) {
    CHECK(d.transcript == "corruption\n" + h.Transcript(7, 12));
  } else {
    CHECK(d.transcript == h.Transcript(start, c.last_good) + "corruption\n" + h.Transcript(7, 12));
  }
  CHECK(RenderRecords(d.records) == h.Expected(start, c.last_good) + h.Expected(7, 12));
  REQUIRE(d.errors.size() == 1);
  CHECK_THAT(d.errors[0], Contains(c.error));
  CHECK_THAT(d.errors[0], Contains(journal::SegmentFileName(5)));
  // The exact seqs this reader lost, first..last, in the report and in lost_first/last.
  const uint64_t lost_from = std::max(start, c.last_good + 1);
  REQUIRE(d.lost.size() == 1);
  if (lost_from <= 6) {
    CHECK(d.lost[0] == std::make_pair(lost_from, uint64_t{6}));
    CHECK_THAT(d.errors[0],
               Contains("seqs " + std::to_string(lost_from) + "-6 unreadable in segment " +
                        journal::SegmentFileName(5) + " ("));
  } else {
    CHECK(d.lost[0] == std::make_pair(uint64_t{0}, uint64_t{0}));
    CHECK_THAT(d.errors[0], Contains("no seqs lost"));
  }
  CHECK_THAT(d.errors[0], Contains(std::to_string(c.dropped) + " bytes dropped"));
  CHECK(reader.dropped_bytes() == c.dropped);
  CHECK(reader.skipped_seqs() == 6 - c.last_good);
  CHECK(reader.next_seq() == 13);
}

TEST_CASE("reader: damage in the last segment is reported once", "[journal_reader]") {
  ReaderHarness h(200);
  h.Open();
  h.WriteN(6, [](uint64_t) { return size_t{50}; });
  h.Close();
  REQUIRE(h.Segments() == std::vector<uint64_t>{1, 3, 5});
  std::string seg = h.Seg(5);
  uint64_t last_good = 0;
  uint64_t dropped = 0;
  SECTION("checksum") {
    seg[82 + 30] ^= 1;
    last_good = 5;
    dropped = 74;
  }
  SECTION("bad magic") {
    seg[0] = 'f';
    last_good = 4;
    dropped = 156;
  }
  h.SetSeg(5, seg);
  JournalReader reader(h.dir(), 1);
  Drained d = Drain(reader);
  CHECK(d.transcript == h.Transcript(1, last_good) + "corruption\n");
  REQUIRE(d.lost.size() == 1);
  CHECK(d.lost[0] == std::make_pair(last_good + 1, JournalReader::kUnknownLast));
  CHECK_THAT(d.errors[0], Contains("seqs from " + std::to_string(last_good + 1) +
                                   " on unreadable in segment " + journal::SegmentFileName(5)));
  CHECK(reader.dropped_bytes() == dropped);
  for (int i = 0; i < 3; ++i) {  // calling again neither repeats the error nor recounts
    d = Drain(reader);
    CHECK(d.transcript.empty());
  }
  CHECK(reader.dropped_bytes() == dropped);
}

// Damage in the newest segment while the writer goes on appending to it: the bytes after the
// damage are dropped without a second report, and reading resumes at the next segment.
TEST_CASE("reader: appends after damage in the newest segment are not reported again",
          "[journal_reader]") {
  ReaderHarness h(200);
  h.Open();
  h.WriteN(6, [](uint64_t) { return size_t{50}; });
  h.Close();
  REQUIRE(h.Segments() == std::vector<uint64_t>{1, 3, 5});
  const std::string seg = h.Seg(5);
  std::string damaged = seg;
  damaged[8 + 30] ^= 1;  // seq 5's body
  h.SetSeg(5, damaged);
  JournalReader reader(h.dir(), 1);
  Drained d = Drain(reader);
  CHECK(d.transcript == h.Transcript(1, 4) + "corruption\n");
  REQUIRE(d.lost.size() == 1);
  CHECK(d.lost[0] == std::make_pair(uint64_t{5}, JournalReader::kUnknownLast));
  // The writer appends another valid record (a copy of seq 6's) after the damage.
  h.SetSeg(5, damaged + seg.substr(82));
  d = Drain(reader);
  CHECK(d.transcript.empty());
  // The writer rolls: a segment named 7 with one record.
  std::string next(journal::kSegmentMagic, kMagicSize);
  char header[kRecordHeaderSize];
  journal::EncodeRecordHeader(header, 7, ReaderReceivedNs(7), ReaderBodyFor(7, 50));
  next += std::string(header, kRecordHeaderSize) + ReaderBodyFor(7, 50);
  h.SetSeg(7, next);
  d = Drain(reader);
  CHECK(d.transcript == "7\n");
  CHECK(reader.skipped_seqs() == 2);
  CHECK(reader.dropped_bytes() == 148 + 74);
}

TEST_CASE("reader: start below the oldest segment counts the deleted seqs", "[journal_reader]") {
  ReaderHarness h(200);
  h.Open();
  h.WriteN(8, [](uint64_t) { return size_t{50}; });
  h.Close();
  REQUIRE(h.Segments() == std::vector<uint64_t>{1, 3, 5, 7});
  REQUIRE(::unlink(h.SegPath(1).c_str()) == 0);
  REQUIRE(::unlink(h.SegPath(3).c_str()) == 0);
  const uint64_t start =
      GENERATE(uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{4}, uint64_t{5}, uint64_t{6});
  CAPTURE(start);
  JournalReader reader(h.dir(), start);
  const Drained d = Drain(reader);
  const uint64_t first = std::max<uint64_t>(start, 5);
  CHECK(RenderRecords(d.records) == h.Expected(first, 8));
  CHECK(d.errors.empty());
  CHECK(reader.skipped_seqs() == first - std::max<uint64_t>(start, 1));
  CHECK(reader.dropped_bytes() == 0);
}

TEST_CASE("reader: segment deleted while reading ahead of it", "[journal_reader]") {
  ReaderHarness h(200);
  h.Open();
  h.WriteN(8, [](uint64_t) { return size_t{50}; });
  JournalReader reader(h.dir(), 1);
  JournalRecord rec;
  REQUIRE(reader.Next(kReadAll, &rec) == Result::kRecord);
  REQUIRE(::unlink(h.SegPath(3).c_str()) == 0);  // retention beat the reader to it
  const Drained d = Drain(reader);
  CHECK(RenderRecords(d.records) == h.Expected(2, 2) + h.Expected(5, 8));
  CHECK(reader.skipped_seqs() == 2);
}

// The reader buffers 64 KiB at a time. Put a record header across that boundary with every
// split, including splits that leave only zero bytes of the header (an empty body's length
// field, or the low byte of a 256-byte body's length) before the boundary.
TEST_CASE("reader: record header split at the read buffer boundary", "[journal_reader]") {
  constexpr size_t kBoundary = 1 << 16;
  const size_t split = GENERATE(range(size_t{1}, kRecordHeaderSize + 1));
  const size_t body = GENERATE(size_t{0}, size_t{256}, size_t{50});
  const bool later_segment = GENERATE(false, true);
  CAPTURE(split, body, later_segment);
  ReaderHarness h;
  h.Open();
  // 63 records of 1024 bytes end at 64520; a filler puts the next header at kBoundary - split.
  h.WriteN(63, [](uint64_t) { return size_t{1000}; });
  const size_t filler = kBoundary - split - (kMagicSize + 63 * 1024) - kRecordHeaderSize;
  h.Append(filler);
  const uint64_t target = h.Append(body);
  h.Append(7);
  h.Append(0);
  h.Flush();
  REQUIRE(h.OffsetOf(target, 1) == kBoundary - split);
  uint64_t last = target + 2;
  if (later_segment) {
    h.Close();
    // A second segment after this one, as a roll would leave it.
    RecoveryReport report;
    std::unique_ptr<Journal> j;
    Journal::Options o;
    o.dir = h.dir();
    o.segment_bytes = 1;
    REQUIRE(Journal::Open(o, &j, &report).ok());
    uint64_t seq = 0;
    REQUIRE(j->Append(1, "x", &seq).ok());
    REQUIRE(j->Flush().ok());
    REQUIRE(h.Segments().size() >= 2);
    last = seq;  // read separately below
  }
  JournalReader reader(h.dir(), 1);
  const Drained d = Drain(reader);
  CHECK(d.errors.empty());
  REQUIRE(d.records.size() == last);
  CHECK(RenderRecords({d.records.begin(), d.records.begin() + static_cast<long>(target + 2)}) ==
        h.Expected(1, target + 2));
  CHECK(reader.dropped_bytes() == 0);
}

// Read errors (issue 10 #2): a failed pread or open is kIOError naming the file, the offset
// and the errno text; nothing is skipped or dropped, and once the fault clears the reader
// returns exactly the remaining seqs in order.
class InstalledFaults {
 public:
  InstalledFaults() { fs::Install(&ffs_); }
  ~InstalledFaults() { fs::Install(nullptr); }
  fault::FaultFileSystem& ffs() { return ffs_; }

 private:
  fault::FaultFileSystem ffs_{/*track_sync=*/false};
};

// Segments of two 74-byte records: 1-2, 3-4, 5-6, 7-8, 9-10, 11-12.
TEST_CASE("reader: EIO on a middle segment is an I/O error, then the rest in order",
          "[journal_reader][faults]") {
  ReaderHarness h(200);
  h.Open();
  h.WriteN(12, [](uint64_t) { return size_t{50}; });
  h.Close();
  REQUIRE(h.Segments() == std::vector<uint64_t>{1, 3, 5, 7, 9, 11});
  const bool on_open = GENERATE(false, true);
  CAPTURE(on_open);
  InstalledFaults faults;
  faults.ffs().AddRule({on_open ? fault::Op::kOpen : fault::Op::kRead, on_open ? EACCES : EIO,
                        journal::SegmentFileName(5), 0, -1, false});
  JournalReader reader(h.dir(), 1);
  Drained d = Drain(reader);
  CHECK(d.transcript == h.Transcript(1, 4) + "ioerror\n");
  CHECK(RenderRecords(d.records) == h.Expected(1, 4));
  if (on_open) {
    CHECK(d.io_error == "cannot open " + h.SegPath(5) + ": Permission denied");
  } else {
    CHECK(d.io_error == "cannot read " + h.SegPath(5) + " at offset 0: Input/output error");
  }
  // Retrying while the fault lasts returns the same error and moves nothing.
  for (int i = 0; i < 3; ++i) {
    JournalRecord rec;
    CHECK(reader.Next(kReadAll, &rec) == Result::kIOError);
    CHECK(reader.next_seq() == 5);
  }
  CHECK(reader.skipped_seqs() == 0);
  CHECK(reader.dropped_bytes() == 0);
  faults.ffs().ClearRules();
  d = Drain(reader);
  CHECK(d.transcript == h.Transcript(5, 12));
  CHECK(RenderRecords(d.records) == h.Expected(5, 12));
  CHECK(d.errors.empty());
  CHECK(reader.skipped_seqs() == 0);
  CHECK(reader.dropped_bytes() == 0);
}

// One 1 MiB segment of 200 records of 1000 bytes: the reader reads it 64 KiB at a time, so
// the fault hits in the middle of the file, with a record split across the failed read.
TEST_CASE("reader: EIO in the middle of the last segment, then the rest in order",
          "[journal_reader][faults]") {
  ReaderHarness h;
  h.Open();
  h.WriteN(200, [](uint64_t) { return size_t{1000}; });
  h.Close();
  REQUIRE(h.Segments() == std::vector<uint64_t>{1});
  const int64_t after = GENERATE(int64_t{0}, int64_t{1}, int64_t{2});
  const int64_t times = GENERATE(int64_t{1}, int64_t{3});
  CAPTURE(after, times);
  InstalledFaults faults;
  faults.ffs().AddRule(
      {fault::Op::kRead, EIO, journal::SegmentFileName(1), after, times, /*short_io=*/false});
  JournalReader reader(h.dir(), 1);
  std::string transcript;
  std::vector<JournalRecord> records;
  std::vector<std::string> io_errors;
  JournalRecord rec;
  for (int guard = 0; guard < 1000; ++guard) {
    const Result r = reader.Next(kReadAll, &rec);
    if (r == Result::kEnd) break;
    REQUIRE(r != Result::kCorruption);
    if (r == Result::kIOError) {
      io_errors.push_back(reader.error());
      transcript += "ioerror\n";
      continue;
    }
    records.push_back(rec);
    transcript += std::to_string(rec.seq) + "\n";
  }
  // The records read before the fault, one I/O error per failed read, then the rest.
  const uint64_t read_bytes = static_cast<uint64_t>(after) * 65536;  // reads are 64 KiB
  const uint64_t before = after == 0 ? 0 : (read_bytes - kMagicSize) / 1024;
  std::string want = h.Transcript(1, before);
  for (int64_t i = 0; i < times; ++i) want += "ioerror\n";
  want += h.Transcript(before + 1, 200);
  CHECK(transcript == want);
  CHECK(RenderRecords(records) == h.Expected(1, 200));
  REQUIRE(io_errors.size() == static_cast<size_t>(times));
  CHECK(io_errors[0] == "cannot read " + h.SegPath(1) + " at offset " + std::to_string(read_bytes) +
                            ": Input/output error");
  CHECK(reader.skipped_seqs() == 0);
  CHECK(reader.dropped_bytes() == 0);
  CHECK(reader.next_seq() == 201);
}

// Damage found while the rest of a damaged segment cannot be read is not reported as
// damage yet: the reader waits for the read to succeed, then reports the exact loss once.
TEST_CASE("reader: EIO while dropping a damaged segment drops nothing until it reads",
          "[journal_reader][faults]") {
  ReaderHarness h(1 << 17);
  h.Open();
  h.WriteN(300, [](uint64_t) { return size_t{1000}; });
  h.Close();
  const std::vector<uint64_t> segs = h.Segments();
  REQUIRE(segs.size() >= 3);
  // Damage the second record of the second segment; its rest spans several 64 KiB reads.
  std::string seg = h.Seg(segs[1]);
  seg[h.OffsetOf(segs[1] + 1, segs[1]) + 30] ^= 1;
  h.SetSeg(segs[1], seg);
  InstalledFaults faults;
  faults.ffs().AddRule(
      {fault::Op::kRead, EIO, journal::SegmentFileName(segs[1]), 1, 2, /*short_io=*/false});
  JournalReader reader(h.dir(), 1);
  Drained d = Drain(reader);
  CHECK(d.transcript == h.Transcript(1, segs[1]) + "ioerror\n");
  CHECK(reader.dropped_bytes() == 0);
  d = Drain(reader);
  CHECK(d.transcript == "ioerror\n");
  d = Drain(reader);
  CHECK(d.transcript == "corruption\n" + h.Transcript(segs[2], 300));
  REQUIRE(d.lost.size() == 1);
  CHECK(d.lost[0] == std::make_pair(segs[1] + 1, segs[2] - 1));
  CHECK(reader.skipped_seqs() == segs[2] - segs[1] - 1);
  CHECK(reader.dropped_bytes() == seg.size() - h.OffsetOf(segs[1] + 1, segs[1]));
}

}  // namespace
}  // namespace ferry
