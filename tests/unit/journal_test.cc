// Fault tests for the journal writer and its recovery, in the shape of leveldb db/log_test.cc:
// write records through the real Journal, damage the segment files with small helpers
// (IncrementByte, SetByte, ShrinkSize, FixChecksum, ZeroFill), reopen, and assert the exact
// records that survive, what the RecoveryReport says was dropped and saved, the last seq, and
// that appending after the reopen continues at last_seq + 1.
#include "daemon/journal/journal.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "daemon/base/crc32c.h"
#include "daemon/base/fault_injection.h"
#include "daemon/base/file_seam.h"
#include "daemon/journal/format.h"
#include "daemon/journal/reader.h"
#include "tests/unit/test_util.h"

namespace ferry {
namespace {

using Catch::Contains;
using journal::kMagicSize;
using journal::kRecordHeaderSize;

constexpr uint64_t kNoLimit = UINT64_MAX;

int64_t ReceivedNs(uint64_t seq) {
  return 1'700'000'000'000'000'000 + static_cast<int64_t>(seq) * 1'000'003;
}

// A body of `len` bytes that differs per seq, so a record joined from the wrong bytes shows.
std::string BodyFor(uint64_t seq, size_t len) {
  std::string body = "{\"seq\":" + std::to_string(seq) + ",\"pad\":\"";
  while (body.size() + 2 < len) body.push_back(static_cast<char>('a' + (body.size() + seq) % 26));
  body += "\"}";
  body.resize(len, '.');
  return body;
}

std::string Render(const std::vector<JournalRecord>& records) {
  std::string out;
  for (const auto& r : records) {
    out += std::to_string(r.seq) + " " + std::to_string(r.received_ns) + " " + r.body + "\n";
  }
  return out;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

std::vector<std::string> DroppedFiles(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.find(".dropped-at-") != std::string::npos) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The fixture: a journal in a temp dir, the records written so far (what must survive), and
// byte-level editors for its segment files.
class JournalHarness {
 public:
  explicit JournalHarness(uint64_t segment_bytes = 1 << 20) {
    options_.dir = tmp_.Join("journal");
    options_.segment_bytes = segment_bytes;
  }
  ~JournalHarness() { fault::DisarmAll(); }
  JournalHarness(const JournalHarness&) = delete;
  JournalHarness& operator=(const JournalHarness&) = delete;

  void Reopen() {
    journal_.reset();
    const Status s = Journal::Open(options_, &journal_, &report_);
    INFO(s.ToString());
    REQUIRE(s.ok());
  }
  void Close() { journal_.reset(); }

  // Appends and flushes one record; it must survive from now on.
  uint64_t Write(const std::string& body) {
    const uint64_t seq = Append(body);
    Flush();
    return seq;
  }
  uint64_t Append(const std::string& body) {
    uint64_t seq = 0;
    const int64_t ns = ReceivedNs(journal_->last_seq() + 1);
    const Status s = journal_->Append(ns, body, &seq);
    INFO(s.ToString());
    REQUIRE(s.ok());
    pending_.push_back({seq, ns, body});
    return seq;
  }
  // Appends and flushes without requiring success; only a flushed record must survive.
  Status TryWrite(const std::string& body) {
    uint64_t seq = 0;
    const int64_t ns = ReceivedNs(journal_->last_seq() + 1);
    Status s = journal_->Append(ns, body, &seq);
    if (s.ok()) {
      pending_.push_back({seq, ns, body});
      s = journal_->Flush();
    }
    if (s.ok()) {
      for (auto& r : pending_) written_.push_back(std::move(r));
    }
    pending_.clear();
    return s;
  }
  // Appended records whose flush failed: they were never acked and must not survive.
  void DropPending() { pending_.clear(); }
  void Flush() {
    const Status s = journal_->Flush();
    INFO(s.ToString());
    REQUIRE(s.ok());
    for (auto& r : pending_) written_.push_back(std::move(r));
    pending_.clear();
  }
  // Writes records 1..n with body lengths from `len(seq)`.
  template <typename LengthFn>
  void WriteN(uint64_t n, LengthFn len) {
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t seq = journal_->last_seq() + 1;
      REQUIRE(Write(BodyFor(seq, len(seq))) == seq);
    }
  }

  // The records that must be in the journal: every written one up to `last_seq`.
  std::string Expected(uint64_t last_seq) const {
    std::vector<JournalRecord> keep;
    for (const auto& r : written_) {
      if (r.seq <= last_seq) keep.push_back(r);
    }
    return Render(keep);
  }
  // Forgets written records after `last_seq` (recovery dropped them).
  void ForgetAfter(uint64_t last_seq) {
    std::erase_if(written_, [&](const JournalRecord& r) { return r.seq > last_seq; });
  }

  // Everything a reader returns from seq 1; fails the test on any corruption.
  std::string ReadAll() const {
    JournalReader reader(options_.dir, 1);
    std::vector<JournalRecord> out;
    JournalRecord rec;
    for (;;) {
      const auto r = reader.Next(kNoLimit, &rec);
      INFO(reader.error());
      REQUIRE(r != JournalReader::Result::kCorruption);
      if (r == JournalReader::Result::kEnd) break;
      out.push_back(rec);
    }
    CHECK(reader.dropped_bytes() == 0);
    CHECK(reader.skipped_seqs() == 0);
    return Render(out);
  }

  // Offset of record `seq` in segment `first`, from the sizes of the records written to it.
  size_t OffsetOf(uint64_t seq, uint64_t first = 1) const {
    size_t offset = kMagicSize;
    for (const auto& r : written_) {
      if (r.seq >= first && r.seq < seq) offset += kRecordHeaderSize + r.body.size();
    }
    return offset;
  }
  size_t SizeOf(uint64_t seq) const {
    for (const auto& r : written_) {
      if (r.seq == seq) return kRecordHeaderSize + r.body.size();
    }
    FAIL("no record " << seq);
    return 0;
  }

  // After a recovery that kept records up to `last_seq`: the journal reports it, a new record
  // gets last_seq + 1, and a further reopen finds everything intact with nothing dropped.
  void CheckAppendContinues(uint64_t last_seq) {
    CHECK(report_.last_seq == last_seq);
    CHECK(journal_->last_seq() == last_seq);
    CHECK(journal_->written_seq() == last_seq);
    ForgetAfter(last_seq);
    CHECK(ReadAll() == Expected(last_seq));
    const uint64_t seq = Write(BodyFor(last_seq + 1, 19) + "-after-reopen");
    CHECK(seq == last_seq + 1);
    Reopen();
    CHECK(report_.dropped_bytes == 0);
    CHECK(report_.reason.empty());
    CHECK(report_.last_seq == last_seq + 1);
    CHECK(ReadAll() == Expected(last_seq + 1));
  }

  std::string SegPath(uint64_t first = 1) const {
    return options_.dir + "/" + journal::SegmentFileName(first);
  }
  std::string Seg(uint64_t first = 1) const { return test::ReadFile(SegPath(first)); }
  uint64_t SegSize(uint64_t first = 1) const {
    struct stat st {};
    REQUIRE(::stat(SegPath(first).c_str(), &st) == 0);
    return static_cast<uint64_t>(st.st_size);
  }

  void IncrementByte(size_t offset, int delta, uint64_t first = 1) {
    std::string data = Seg(first);
    REQUIRE(offset < data.size());
    data[offset] = static_cast<char>(data[offset] + delta);
    test::WriteFile(SegPath(first), data);
  }
  void SetByte(size_t offset, char value, uint64_t first = 1) {
    std::string data = Seg(first);
    REQUIRE(offset < data.size());
    data[offset] = value;
    test::WriteFile(SegPath(first), data);
  }
  // Cuts `bytes` off the end of the segment.
  void ShrinkSize(size_t bytes, uint64_t first = 1) {
    const uint64_t size = SegSize(first);
    REQUIRE(bytes <= size);
    REQUIRE(::truncate(SegPath(first).c_str(), static_cast<off_t>(size - bytes)) == 0);
  }
  void TruncateTo(size_t size, uint64_t first = 1) {
    REQUIRE(::truncate(SegPath(first).c_str(), static_cast<off_t>(size)) == 0);
  }
  void ZeroFill(size_t bytes, uint64_t first = 1) {
    test::WriteFile(SegPath(first), Seg(first) + std::string(bytes, '\0'));
  }
  void Put64(size_t offset, uint64_t v, uint64_t first = 1) {
    std::string data = Seg(first);
    REQUIRE(offset + 8 <= data.size());
    for (size_t i = 0; i < 8; ++i) data[offset + i] = static_cast<char>((v >> (8 * i)) & 0xff);
    test::WriteFile(SegPath(first), data);
  }
  // Recomputes the CRC of the record at `offset` after its seq, received_ns or body changed.
  void FixChecksum(size_t offset, uint64_t first = 1) {
    std::string data = Seg(first);
    REQUIRE(offset + kRecordHeaderSize <= data.size());
    uint32_t length = 0;
    for (size_t i = 0; i < 4; ++i) {
      length |= static_cast<uint32_t>(static_cast<unsigned char>(data[offset + i])) << (8 * i);
    }
    REQUIRE(offset + kRecordHeaderSize + length <= data.size());
    const uint32_t crc = crc32c::Value(data.data() + offset + 8, 16 + length);
    for (size_t i = 0; i < 4; ++i)
      data[offset + 4 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
    test::WriteFile(SegPath(first), data);
  }

  const std::string& dir() const { return options_.dir; }
  Journal::Options& options() { return options_; }
  Journal& journal() { return *journal_; }
  bool open() const { return journal_ != nullptr; }
  const RecoveryReport& report() const { return report_; }

 private:
  test::TempDir tmp_;
  Journal::Options options_;
  std::unique_ptr<Journal> journal_;
  RecoveryReport report_;
  std::vector<JournalRecord> written_;
  std::vector<JournalRecord> pending_;
};

size_t VariedLength(uint64_t seq) { return 11 + (seq * 7) % 40; }

TEST_CASE("journal: empty directory opens at seq 1", "[journal]") {
  JournalHarness h;
  h.Reopen();
  CHECK(h.report().last_seq == 0);
  CHECK(h.report().segments == 1);
  CHECK(h.report().dropped_bytes == 0);
  CHECK(h.journal().oldest_seq() == 0);
  CHECK(h.Seg() == std::string(journal::kSegmentMagic, kMagicSize));
  CHECK(h.ReadAll().empty());
  h.CheckAppendContinues(0);
  CHECK(h.journal().oldest_seq() == 1);
}

TEST_CASE("journal: records are written exactly and survive a clean reopen", "[journal]") {
  JournalHarness h;
  h.Reopen();
  h.WriteN(20, VariedLength);
  CHECK(h.journal().written_seq() == 20);
  CHECK(h.SegSize() == h.OffsetOf(21));
  CHECK(h.journal().total_bytes() == h.OffsetOf(21));
  CHECK(h.ReadAll() == h.Expected(20));
  h.Reopen();
  CHECK(h.report().dropped_bytes == 0);
  CHECK(h.report().dropped_at == 0);
  CHECK(h.report().reason.empty());
  CHECK(h.report().saved_path.empty());
  h.CheckAppendContinues(20);
}

TEST_CASE("journal: empty bodies and a body larger than the reader's buffer", "[journal]") {
  JournalHarness h;
  h.Reopen();
  h.Write("");
  h.Write(std::string(3 << 20, 'x'));  // 3 MiB: the reader's buffer must grow to hold it
  h.Write("");
  uint64_t seq = 0;
  const Status s = h.journal().Append(1, std::string(journal::kMaxRecordBody + 1, 'x'), &seq);
  CHECK(s.code() == Status::Code::kInvalidArgument);
  CHECK_FALSE(h.journal().failed());
  h.Reopen();
  CHECK(h.report().dropped_bytes == 0);
  CHECK(h.ReadAll() == h.Expected(3));
  h.CheckAppendContinues(3);
}

// The length limit, checked on a header alone (a 64 MiB record is too slow for a unit test).
TEST_CASE("journal: a length of exactly the limit is allowed, one more is not", "[journal]") {
  std::string header(kRecordHeaderSize, '\0');
  journal::EncodeRecordHeader(header.data(), 1, 2, std::string(8, 'b'));
  auto with_length = [&](uint32_t len) {
    std::string h = header + "bbbbbbbb";
    for (size_t i = 0; i < 4; ++i) h[i] = static_cast<char>((len >> (8 * i)) & 0xff);
    return h;
  };
  journal::RecordView view;
  const std::string good = with_length(8);  // view.body points into it
  CHECK(journal::CheckRecord(good, &view) == journal::RecordCheck::kOk);
  CHECK(view.seq == 1);
  CHECK(view.received_ns == 2);
  CHECK(view.body == "bbbbbbbb");
  CHECK(view.size == kRecordHeaderSize + 8);
  CHECK(journal::CheckRecord(with_length(journal::kMaxRecordBody), &view) ==
        journal::RecordCheck::kTornBody);
  CHECK(journal::CheckRecord(with_length(journal::kMaxRecordBody + 1), &view) ==
        journal::RecordCheck::kBadLength);
  CHECK(journal::CheckRecord(with_length(UINT32_MAX), &view) == journal::RecordCheck::kBadLength);
  CHECK(journal::CheckRecord(with_length(7), &view) == journal::RecordCheck::kBadChecksum);
  CHECK(journal::CheckRecord(header.substr(0, 23), &view) == journal::RecordCheck::kTornHeader);
  CHECK(journal::CheckRecord("", &view) == journal::RecordCheck::kTornHeader);
  CHECK(journal::CheckRecord(std::string(5, '\0'), &view) == journal::RecordCheck::kZeroFill);
  CHECK(journal::CheckRecord(std::string(24, '\0'), &view) == journal::RecordCheck::kZeroFill);
}

TEST_CASE("journal: segment file names", "[journal]") {
  CHECK(journal::SegmentFileName(1) == "00000000000000000001.seg");
  CHECK(journal::SegmentFileName(UINT64_MAX) == "18446744073709551615.seg");
  uint64_t seq = 0;
  CHECK(journal::ParseSegmentFileName("00000000000000004097.seg", &seq));
  CHECK(seq == 4097);
  CHECK(journal::ParseSegmentFileName("18446744073709551615.seg", &seq));
  CHECK(seq == UINT64_MAX);
  for (const char* bad :
       {"00000000000000000000.seg", "18446744073709551616.seg", "0000000000000000001.seg",
        "000000000000000000001.seg", "00000000000000000001.seg.dropped-at-8",
        "0000000000000000000a.seg", "00000000000000000001.SEG", ""}) {
    CAPTURE(bad);
    CHECK_FALSE(journal::ParseSegmentFileName(bad, &seq));
  }
}

// Worked example of docs/journal-format.md; keep the two in step.
TEST_CASE("journal: one-record segment matches the worked example in the spec", "[journal]") {
  JournalHarness h;
  h.Reopen();
  uint64_t seq = 0;
  REQUIRE(h.journal().Append(1700000000123456789, R"({"n":1})", &seq).ok());
  REQUIRE(h.journal().Flush().ok());
  CHECK(seq == 1);
  CHECK(journal::SegmentFileName(1) == "00000000000000000001.seg");
  CHECK(Hex(h.Seg()) ==
        "46455252594a3031"  // magic "FERRYJ01"
        "07000000"          // length 7
        "301cc22f"          // crc32c 0x2fc21c30
        "0100000000000000"  // seq 1
        "15cd853dfe9c9717"  // received_ns 1700000000123456789
        "7b226e223a317d");  // body {"n":1}
}

// leveldb's TruncatedTrailingRecordIsIgnored, at every cut point of the last record.
TEST_CASE("journal: last record truncated at every byte offset", "[journal]") {
  static constexpr size_t kLastBody = 37;  // length byte 0 is non-zero: no prefix looks zero-filled
  static constexpr size_t kLastSize = kRecordHeaderSize + kLastBody;
  const size_t keep = GENERATE(range(size_t{0}, kLastSize));
  CAPTURE(keep);
  JournalHarness h;
  h.Reopen();
  h.Write(BodyFor(1, 20));
  h.Write(BodyFor(2, 50));
  h.Write(BodyFor(3, kLastBody));
  h.Close();
  const size_t at = h.OffsetOf(3);
  const std::string last = h.Seg().substr(at);
  REQUIRE(last.size() == kLastSize);
  h.TruncateTo(at + keep);

  h.Reopen();
  CHECK(h.report().dropped_bytes == keep);
  if (keep == 0) {
    CHECK(h.report().dropped_at == 0);
    CHECK(h.report().reason.empty());
    CHECK(h.report().saved_path.empty());
    CHECK(DroppedFiles(h.dir()).empty());
  } else {
    CHECK(h.report().dropped_at == at);
    CHECK_THAT(h.report().reason,
               Contains(keep < kRecordHeaderSize ? "torn record header"
                                                 : "record runs past the end of the segment"));
    CHECK_THAT(h.report().reason, Contains("at offset " + std::to_string(at)));
    CHECK(h.report().saved_path == h.SegPath() + ".dropped-at-" + std::to_string(at));
    CHECK(test::ReadFile(h.report().saved_path) == last.substr(0, keep));
  }
  CHECK(h.SegSize() == at);
  h.CheckAppendContinues(2);
}

// Corrupting any byte of the last record drops exactly that record.
TEST_CASE("journal: a byte flipped anywhere in the last record", "[journal]") {
  static constexpr size_t kLastBody = 30;
  const size_t offset = GENERATE(range(size_t{0}, kRecordHeaderSize + kLastBody));
  CAPTURE(offset);
  JournalHarness h;
  h.Reopen();
  h.Write(BodyFor(1, 40));
  h.Write(BodyFor(2, 20));
  h.Write(BodyFor(3, kLastBody));
  h.Close();
  const size_t at = h.OffsetOf(3);
  h.IncrementByte(at + offset, 1);
  const std::string damaged = h.Seg().substr(at);

  h.Reopen();
  CHECK(h.report().dropped_bytes == kRecordHeaderSize + kLastBody);
  CHECK(h.report().dropped_at == at);
  // A longer length runs past the end of the file; anything else fails the checksum.
  CHECK_THAT(h.report().reason, Contains(offset < 4 ? "record runs past the end of the segment"
                                                    : "checksum mismatch"));
  CHECK(h.report().saved_path == h.SegPath() + ".dropped-at-" + std::to_string(at));
  CHECK(test::ReadFile(h.report().saved_path) == damaged);
  h.CheckAppendContinues(2);
}

// A bad middle record drops it and everything after it: records after a bad one are never
// joined back, since their framing can no longer be trusted (leveldb's wiped middle block).
TEST_CASE("journal: a byte flipped in each field of a middle record", "[journal]") {
  static constexpr size_t kBody = 33;
  struct Case {
    const char* field;
    size_t offset;
    int delta;
    const char* reason;
  };
  const Case c =
      GENERATE(Case{"length shorter", 0, -1, "checksum mismatch"},
               Case{"length longer", 0, 1, "checksum mismatch"},
               Case{"length past EOF", 3, 1, "record runs past the end"},
               Case{"length huge", 3, 0x40, "record length over the limit"},
               Case{"crc", 5, 1, "checksum mismatch"}, Case{"seq", 8, 1, "checksum mismatch"},
               Case{"seq high byte", 15, 1, "checksum mismatch"},
               Case{"received_ns", 17, 1, "checksum mismatch"},
               Case{"body first", 24, 1, "checksum mismatch"},
               Case{"body last", 24 + kBody - 1, 1, "checksum mismatch"});
  CAPTURE(c.field);
  JournalHarness h;
  h.Reopen();
  h.WriteN(5, [](uint64_t) { return kBody; });
  h.Close();
  const size_t at = h.OffsetOf(3);
  const size_t size = h.SegSize();
  h.IncrementByte(at + c.offset, c.delta);
  const std::string damaged = h.Seg().substr(at);

  h.Reopen();
  CHECK(h.report().dropped_bytes == size - at);
  CHECK(h.report().dropped_at == at);
  CHECK_THAT(h.report().reason, Contains(c.reason));
  CHECK(test::ReadFile(h.report().saved_path) == damaged);
  CHECK(DroppedFiles(h.dir()) == std::vector<std::string>{journal::SegmentFileName(1) +
                                                          ".dropped-at-" + std::to_string(at)});
  CHECK(h.SegSize() == at);
  h.CheckAppendContinues(2);
}

TEST_CASE("journal: zero-filled tail is dropped and not saved", "[journal]") {
  const size_t zeros = GENERATE(size_t{1}, size_t{23}, size_t{24}, size_t{4096});
  CAPTURE(zeros);
  JournalHarness h;
  h.Reopen();
  h.WriteN(3, VariedLength);
  h.Close();
  const size_t end = h.SegSize();
  h.ZeroFill(zeros);

  h.Reopen();
  CHECK(h.report().dropped_bytes == zeros);
  CHECK(h.report().dropped_at == end);
  CHECK_THAT(h.report().reason, Contains("zero-filled tail"));
  CHECK(h.report().saved_path.empty());
  CHECK(DroppedFiles(h.dir()).empty());
  CHECK(h.SegSize() == end);
  h.CheckAppendContinues(3);
}

TEST_CASE("journal: zeroed header in the middle is dropped with what follows, and saved",
          "[journal]") {
  JournalHarness h;
  h.Reopen();
  h.WriteN(4, VariedLength);
  h.Close();
  const size_t at = h.OffsetOf(3);
  for (size_t i = 0; i < kRecordHeaderSize; ++i) h.SetByte(at + i, 0);
  const std::string dropped = h.Seg().substr(at);

  h.Reopen();
  CHECK(h.report().dropped_bytes == dropped.size());
  CHECK(h.report().dropped_at == at);
  CHECK_THAT(h.report().reason, Contains("zero-filled"));
  CHECK(test::ReadFile(h.report().saved_path) == dropped);
  h.CheckAppendContinues(2);
}

TEST_CASE("journal: bad length in the last record", "[journal]") {
  JournalHarness h;
  h.Reopen();
  h.WriteN(3, VariedLength);
  h.Close();
  const size_t at = h.OffsetOf(3);
  const size_t size = h.SizeOf(3);
  std::string reason;
  SECTION("huge") {
    for (size_t i = 0; i < 4; ++i) h.SetByte(at + i, '\xff');
    reason = "record length over the limit";
  }
  SECTION("one past the limit") {
    const uint32_t len = journal::kMaxRecordBody + 1;
    for (size_t i = 0; i < 4; ++i) h.SetByte(at + i, static_cast<char>((len >> (8 * i)) & 0xff));
    reason = "record length over the limit";
  }
  SECTION("past the end of the file") {
    h.IncrementByte(at + 1, 1);
    reason = "record runs past the end of the segment";
  }
  SECTION("zero") {
    for (size_t i = 0; i < 4; ++i) h.SetByte(at + i, 0);
    reason = "checksum mismatch";
  }
  h.Reopen();
  CHECK(h.report().dropped_bytes == size);
  CHECK(h.report().dropped_at == at);
  CHECK_THAT(h.report().reason, Contains(reason));
  CHECK(test::ReadFile(h.report().saved_path).size() == size);
  h.CheckAppendContinues(2);
}

// A record whose CRC is valid but whose seq breaks the sequence is refused with everything
// after it: the seq of each record is fixed by the segment name and its position.
TEST_CASE("journal: sequence gap or duplicate with a valid checksum", "[journal]") {
  JournalHarness h;
  h.Reopen();
  h.WriteN(5, VariedLength);
  h.Close();
  const uint64_t victim = GENERATE(uint64_t{1}, uint64_t{3}, uint64_t{5});
  const uint64_t bad_seq = GENERATE_COPY(victim - 1, victim + 1, victim + 100);
  if (bad_seq == 0) return;  // seq 0 as a "duplicate" of nothing: covered by the gap cases
  CAPTURE(victim, bad_seq);
  const size_t at = h.OffsetOf(victim);
  const size_t size = h.SegSize();
  h.Put64(at + 8, bad_seq);
  h.FixChecksum(at);
  const std::string dropped = h.Seg().substr(at);

  h.Reopen();
  CHECK(h.report().dropped_bytes == size - at);
  CHECK(h.report().dropped_at == at);
  CHECK(h.report().reason == "sequence " + std::to_string(bad_seq) + " where " +
                                 std::to_string(victim) + " was expected at offset " +
                                 std::to_string(at));
  CHECK(test::ReadFile(h.report().saved_path) == dropped);
  h.CheckAppendContinues(victim - 1);
}

TEST_CASE("journal: empty, torn-magic and bad-magic segments", "[journal]") {
  JournalHarness h;
  h.Reopen();
  h.WriteN(4, VariedLength);  // segment 1 holds 1..4; the damaged segment is named 5
  h.Close();
  const std::string magic(journal::kSegmentMagic, kMagicSize);
  const uint64_t first = GENERATE(uint64_t{1}, uint64_t{5});
  CAPTURE(first);
  if (first == 1) h.ForgetAfter(0);
  std::string contents;
  std::string reason;
  SECTION("empty file") { contents = ""; }
  SECTION("magic only") { contents = magic; }
  SECTION("torn magic") {
    contents = magic.substr(0, 5);
    reason = "bad segment magic";
  }
  SECTION("bad magic") {
    contents = "FERRYJ02" + std::string(30, 'r');
    reason = "bad segment magic";
  }
  SECTION("zeroed magic") {
    contents = std::string(kMagicSize, '\0');
    reason = "bad segment magic";
  }
  test::WriteFile(h.SegPath(first), contents);

  h.Reopen();
  CHECK(h.report().segments == (first == 1 ? 1 : 2));
  CHECK(h.report().dropped_at == 0);
  if (reason.empty()) {
    CHECK(h.report().dropped_bytes == 0);
    CHECK(h.report().reason.empty());
    CHECK(h.report().saved_path.empty());
  } else {
    CHECK(h.report().dropped_bytes == contents.size());
    CHECK_THAT(h.report().reason, Contains(reason));
    if (contents.find_first_not_of('\0') == std::string::npos) {
      CHECK(h.report().saved_path.empty());
    } else {
      CHECK(test::ReadFile(h.report().saved_path) == contents);
    }
  }
  CHECK(h.Seg(first) == magic);  // rewritten so appends go on in the same file
  h.CheckAppendContinues(first - 1);
  CHECK(h.journal().segment_count() == (first == 1 ? 1 : 2));
}

TEST_CASE("journal: records span segment rolls", "[journal]") {
  // 74-byte records: two fit a 200-byte segment (8 + 2 * 74 = 156), a third would not.
  JournalHarness h(200);
  std::vector<std::pair<uint64_t, uint64_t>> rolls;  // (closed segment, its last seq)
  h.Reopen();
  h.journal().SetRollCallback([&](std::shared_ptr<SegmentFile> closed, uint64_t last_seq) {
    rolls.emplace_back(closed->first_seq, last_seq);
  });
  const bool flush_each = GENERATE(true, false);
  CAPTURE(flush_each);
  if (flush_each) {
    h.WriteN(7, [](uint64_t) { return size_t{50}; });
  } else {  // Append rolls before a record that would not fit, writing what it holds
    for (uint64_t seq = 1; seq <= 7; ++seq) REQUIRE(h.Append(BodyFor(seq, 50)) == seq);
    h.Flush();
  }
  CHECK(rolls == std::vector<std::pair<uint64_t, uint64_t>>{{1, 2}, {3, 4}, {5, 6}});
  std::vector<uint64_t> names;
  REQUIRE(ListSegments(h.dir(), &names).ok());
  CHECK(names == std::vector<uint64_t>{1, 3, 5, 7});
  CHECK(h.journal().segment_count() == 4);
  CHECK(h.journal().oldest_seq() == 1);
  CHECK(h.journal().active_segment()->first_seq == 7);
  for (uint64_t first : {uint64_t{1}, uint64_t{3}, uint64_t{5}})
    CHECK(h.SegSize(first) == 8 + 2 * 74);
  CHECK(h.SegSize(7) == 8 + 74);
  for (uint64_t first = 1; first <= 7; first += 2) {  // each file starts with its named seq
    const std::string seg = h.Seg(first);
    CHECK(seg.substr(0, kMagicSize) == std::string(journal::kSegmentMagic, kMagicSize));
    CHECK(Hex(seg.substr(kMagicSize + 8, 8)) ==
          Hex(std::string(1, static_cast<char>(first)) + std::string(7, '\0')));
  }
  CHECK(h.journal().total_bytes() == 3 * 156 + 82);
  CHECK(h.ReadAll() == h.Expected(7));

  SECTION("reopen picks the last segment") {
    h.Reopen();
    CHECK(h.report().segments == 4);
    CHECK(h.report().dropped_bytes == 0);
    h.CheckAppendContinues(7);
    CHECK(h.SegSize(7) == h.OffsetOf(9, 7));  // seq 8 went into segment 7
  }
  SECTION("last segment emptied by corruption") {
    h.Close();
    h.IncrementByte(kMagicSize + 30, 1, 7);
    h.Reopen();
    CHECK(h.report().segments == 4);
    CHECK(h.report().dropped_bytes == 74);
    CHECK(h.report().dropped_at == kMagicSize);
    CHECK(h.report().saved_path == h.SegPath(7) + ".dropped-at-8");
    h.CheckAppendContinues(6);  // the segment name fixes the seq: 7 - 1
  }
  SECTION("a corrupt earlier segment is not scanned at open") {
    h.Close();
    h.IncrementByte(kMagicSize + 30, 1, 3);
    h.Reopen();
    CHECK(h.report().dropped_bytes == 0);
    CHECK(h.report().last_seq == 7);
  }
}

TEST_CASE("journal: a record larger than the segment size gets a segment to itself", "[journal]") {
  JournalHarness h(GENERATE(uint64_t{1}, uint64_t{8}, uint64_t{40}));
  h.Reopen();
  for (int i = 0; i < 3; ++i) REQUIRE(h.journal().Flush().ok());  // nothing to write or roll
  h.WriteN(4, [](uint64_t seq) { return size_t{30} + seq; });
  for (int i = 0; i < 3; ++i) REQUIRE(h.journal().Flush().ok());
  std::vector<uint64_t> names;
  REQUIRE(ListSegments(h.dir(), &names).ok());
  // Flush rolls once the active segment is full, so an empty segment 5 waits for seq 5.
  CHECK(names == std::vector<uint64_t>{1, 2, 3, 4, 5});
  CHECK(h.Seg(5) == std::string(journal::kSegmentMagic, kMagicSize));
  CHECK(h.ReadAll() == h.Expected(4));
  h.Reopen();
  CHECK(h.report().dropped_bytes == 0);
  h.CheckAppendContinues(4);
}

TEST_CASE("journal: reopen and append repeatedly", "[journal]") {
  JournalHarness h(300);
  uint64_t last = 0;
  for (int round = 0; round < 12; ++round) {
    CAPTURE(round);
    h.Reopen();
    CHECK(h.report().last_seq == last);
    CHECK(h.report().dropped_bytes == 0);
    const auto n = static_cast<uint64_t>(round % 4);
    for (uint64_t i = 0; i < n; ++i) h.Append(BodyFor(last + 1 + i, VariedLength(last + 1 + i)));
    h.Flush();
    last += n;
    CHECK(h.journal().written_seq() == last);
  }
  h.Reopen();
  CHECK(h.ReadAll() == h.Expected(last));
  h.CheckAppendContinues(last);
}

TEST_CASE("journal: torn tail repaired, then more appends and another crash", "[journal]") {
  JournalHarness h;
  h.Reopen();
  h.WriteN(3, VariedLength);
  h.Close();
  h.ShrinkSize(5);
  h.Reopen();
  CHECK(h.report().last_seq == 2);
  h.ForgetAfter(2);
  h.WriteN(3, VariedLength);  // 3..5
  h.Close();
  h.ShrinkSize(1);
  h.Reopen();
  CHECK(h.report().last_seq == 4);
  CHECK(h.report().dropped_at == h.OffsetOf(5));
  CHECK(DroppedFiles(h.dir()).size() == 2);
  h.CheckAppendContinues(4);
}

TEST_CASE("journal: a second tear at the same offset keeps the first saved copy", "[journal]") {
  JournalHarness h;
  h.Reopen();
  h.WriteN(3, VariedLength);
  h.Close();
  const size_t at = h.OffsetOf(3);
  h.ShrinkSize(5);
  const std::string first_tear = h.Seg().substr(at);
  h.Reopen();
  const std::string base = h.SegPath() + ".dropped-at-" + std::to_string(at);
  CHECK(h.report().saved_path == base);
  h.ForgetAfter(2);
  for (int n = 1; n <= 2; ++n) {
    CAPTURE(n);
    h.Write(BodyFor(3, 40 + static_cast<size_t>(n)));  // torn again, at the same offset
    h.Close();
    h.ShrinkSize(7);
    const std::string tear = h.Seg().substr(at);
    h.Reopen();
    CHECK(h.report().dropped_at == at);
    CHECK(h.report().saved_path == base + "." + std::to_string(n));
    CHECK(test::ReadFile(h.report().saved_path) == tear);
    h.ForgetAfter(2);
  }
  CHECK(test::ReadFile(base) == first_tear);
  CHECK(DroppedFiles(h.dir()).size() == 3);
  h.CheckAppendContinues(2);
}

// beast's fail_count loop: the n-th write() fails; every record flushed before it survives,
// nothing after it does, and the file always ends on a whole record.
TEST_CASE("journal: sticky write failure at every flush", "[journal]") {
  static constexpr int64_t kFlushes = 6;
  const int64_t fail_at = GENERATE(range(int64_t{0}, kFlushes));
  // 64-byte records; at 250 bytes a segment holds three, so the failures also hit segments
  // created by a roll.
  const uint64_t segment_bytes = GENERATE(uint64_t{1} << 20, uint64_t{250});
  CAPTURE(fail_at, segment_bytes);
  JournalHarness h(segment_bytes);
  h.Reopen();
  fault::Arm(fault::Point::kWrite, fail_at, ENOSPC);
  for (int64_t i = 0; i < kFlushes; ++i) {
    const auto seq = static_cast<uint64_t>(i) + 1;
    const Status s = h.TryWrite(BodyFor(seq, 40));
    if (i < fail_at) {
      REQUIRE(s.ok());
      continue;
    }
    CHECK_FALSE(s.ok());
    CHECK_THAT(s.message(), Contains(std::strerror(ENOSPC)));
    break;
  }
  const auto flushed = static_cast<uint64_t>(fail_at);
  CHECK(h.journal().failed());
  CHECK(h.journal().last_seq() == flushed);
  CHECK(h.journal().written_seq() == flushed);
  const uint64_t active = h.journal().active_segment()->first_seq;
  CHECK(h.SegSize(active) == h.OffsetOf(flushed + 1, active));  // whole records only

  // Refused from now on, with the original error, even after the fault is gone.
  fault::DisarmAll();
  uint64_t seq = 0;
  Status s = h.journal().Append(ReceivedNs(99), "late", &seq);
  CHECK_THAT(s.message(), Contains(std::strerror(ENOSPC)));
  CHECK(h.journal().Flush().message() == s.message());
  CHECK(h.journal().last_seq() == flushed);

  h.Reopen();
  CHECK(h.report().dropped_bytes == 0);
  CHECK(h.ReadAll() == h.Expected(flushed));
  h.CheckAppendContinues(flushed);
}

TEST_CASE("journal: failed flush of several buffered records gives back every seq", "[journal]") {
  JournalHarness h;
  h.Reopen();
  h.WriteN(2, VariedLength);
  const uint64_t size = h.SegSize();
  for (uint64_t seq = 3; seq <= 6; ++seq) REQUIRE(h.Append(BodyFor(seq, 30)) == seq);
  CHECK(h.journal().last_seq() == 6);
  fault::Arm(fault::Point::kWrite, 0, EIO);
  CHECK_FALSE(h.journal().Flush().ok());  // half the buffer reached the file, then was cut
  h.DropPending();
  CHECK(h.SegSize() == size);
  CHECK(h.journal().last_seq() == 2);
  CHECK(h.journal().written_seq() == 2);
  CHECK(h.journal().failed());
  fault::DisarmAll();
  h.Reopen();
  CHECK(h.report().dropped_bytes == 0);
  h.CheckAppendContinues(2);
}

TEST_CASE("journal: write failure while an append rolls the segment", "[journal]") {
  JournalHarness h(250);  // three 64-byte records per segment
  h.Reopen();
  h.Write(BodyFor(1, 40));
  h.Append(BodyFor(2, 40));
  h.Append(BodyFor(3, 40));
  fault::Arm(fault::Point::kWrite, 0, ENOSPC);
  uint64_t seq = 0;
  CHECK_FALSE(h.journal().Append(ReceivedNs(4), BodyFor(4, 40), &seq).ok());
  h.DropPending();
  CHECK(h.journal().failed());
  CHECK(h.journal().last_seq() == 1);
  CHECK(h.SegSize() == h.OffsetOf(2));
  std::vector<uint64_t> names;
  REQUIRE(ListSegments(h.dir(), &names).ok());
  CHECK(names == std::vector<uint64_t>{1});
  fault::DisarmAll();
  h.Reopen();
  CHECK(h.report().dropped_bytes == 0);
  h.CheckAppendContinues(1);
}

// A file system whose creation of new segment files fails (a full disk at a roll).
class FailNewSegments : public fs::FileSystem {
 public:
  int Open(const char* path, int flags, mode_t mode) override {
    const std::string p(path);
    if (failing && (flags & O_CREAT) && p.size() > 4 && p.substr(p.size() - 4) == ".seg") {
      ++refused;
      errno = ENOSPC;
      return -1;
    }
    return fs::FileSystem::Open(path, flags, mode);
  }
  bool failing = true;
  int refused = 0;
};

struct InstallFs {
  explicit InstallFs(fs::FileSystem* f) { fs::Install(f); }
  ~InstallFs() { fs::Install(nullptr); }
};

std::vector<uint64_t> Names(const std::string& dir) {
  std::vector<uint64_t> names;
  REQUIRE(ListSegments(dir, &names).ok());
  return names;
}

// Issue 10 #3: a cut tail must not hand out seqs a consumer has already seen.
TEST_CASE("journal: a consumer floor above a cut tail continues in a new segment", "[journal]") {
  JournalHarness h;
  h.Reopen();
  h.WriteN(10, VariedLength);
  h.IncrementByte(h.OffsetOf(10) + 30, 1);  // a bit of the newest record's body
  h.options().min_next_seq = 11;            // ferry.db applied up to 10
  h.options().min_next_seq_source = "ferry.db has seen seq 10";
  h.Reopen();
  CHECK(h.report().reason == "checksum mismatch at offset " + std::to_string(h.OffsetOf(10)));
  CHECK(h.report().segments_next_seq == 10);
  CHECK(h.report().next_seq == 11);
  CHECK(h.report().next_seq_reason == "ferry.db has seen seq 10");
  CHECK(h.report().last_seq == 10);
  CHECK(h.journal().written_seq() == 10);
  CHECK(Names(h.dir()) == std::vector<uint64_t>{1, 11});
  CHECK(h.Write("after") == 11);

  JournalReader reader(h.dir(), 1);
  JournalRecord rec;
  std::vector<uint64_t> seqs;
  while (reader.Next(kNoLimit, &rec) == JournalReader::Result::kRecord) seqs.push_back(rec.seq);
  CHECK(seqs == std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 11});
  CHECK(reader.skipped_seqs() == 1);

  // The gap segment is recorded: a reopen without the floor neither moves it aside nor
  // goes back.
  h.options().min_next_seq = 1;
  h.Reopen();
  CHECK(h.report().strays.empty());
  CHECK(h.report().next_seq == 12);
  CHECK(Names(h.dir()) == std::vector<uint64_t>{1, 11});
}

TEST_CASE("journal: a deleted newest segment never brings its seqs back", "[journal]") {
  JournalHarness h(250);  // three 64-byte records per segment
  h.Reopen();
  for (uint64_t seq = 1; seq <= 8; ++seq) REQUIRE(h.Write(BodyFor(seq, 40)) == seq);
  CHECK(Names(h.dir()) == std::vector<uint64_t>{1, 4, 7});
  REQUIRE(h.journal().SaveHighWater().ok());  // a clean stop
  h.Close();
  REQUIRE(::unlink(h.SegPath(7).c_str()) == 0);
  h.Reopen();
  CHECK(h.report().segments_next_seq == 7);
  CHECK(h.report().next_seq == 9);
  CHECK(h.report().next_seq_reason == "the high-water file records next seq 9");
  CHECK(h.Write("after") == 9);
  CHECK(Names(h.dir()) == std::vector<uint64_t>{1, 4, 9});

  // Without a clean stop: the high-water file still knows the newest segment was created.
  h.Close();
  REQUIRE(::unlink(h.SegPath(9).c_str()) == 0);
  h.Reopen();
  CHECK(h.report().next_seq == 9);  // record 9 itself is lost with its segment
  CHECK(h.report().next_seq_reason == "the high-water file records segment 9");
}

TEST_CASE("journal: an empty directory under a consumer floor starts above it", "[journal]") {
  JournalHarness h;
  h.options().min_next_seq = 201;
  h.Reopen();
  CHECK(Names(h.dir()) == std::vector<uint64_t>{201});
  CHECK(h.report().segments_next_seq == 1);
  CHECK(h.report().next_seq == 201);
  CHECK(h.journal().written_seq() == 200);
  CHECK(h.Write("first") == 201);
}

// Issue 10 #13b.
TEST_CASE("journal: a stray newest segment is moved aside", "[journal]") {
  JournalHarness h;
  h.Reopen();
  h.WriteN(5, VariedLength);
  h.Close();
  const std::string stray = h.dir() + "/" + journal::SegmentFileName(1000000);
  SECTION("with only a magic") { test::WriteFile(stray, std::string("FERRYJ01")); }
  SECTION("empty") { test::WriteFile(stray, ""); }
  h.Reopen();
  REQUIRE(h.report().strays.size() == 1);
  CHECK(h.report().strays[0] == stray + " -> " + stray + ".stray-1");
  CHECK(h.report().last_seq == 5);
  CHECK(Names(h.dir()) == std::vector<uint64_t>{1});
  struct stat st {};
  CHECK(::stat((stray + ".stray-1").c_str(), &st) == 0);
  h.CheckAppendContinues(5);
}

TEST_CASE("journal: a stray in a journal without a high-water file", "[journal]") {
  JournalHarness h(250);
  h.Reopen();
  for (uint64_t seq = 1; seq <= 5; ++seq) REQUIRE(h.Write(BodyFor(seq, 40)) == seq);
  h.Close();
  REQUIRE(::unlink((h.dir() + "/highwater").c_str()) == 0);  // an older ferryd's journal
  test::WriteFile(h.dir() + "/" + journal::SegmentFileName(1000), std::string("FERRYJ01"));
  h.Reopen();
  CHECK(h.report().strays.size() == 1);
  CHECK(h.report().last_seq == 5);
  CHECK(Names(h.dir()) == std::vector<uint64_t>{1, 4});
}

// Issue 10 #9: a roll that fails inside a batch leaves none of the batch in the journal.
TEST_CASE("journal: a batch is never split by a roll", "[journal]") {
  JournalHarness h(250);  // three 64-byte records per segment
  h.Reopen();
  REQUIRE(h.Write(BodyFor(1, 40)) == 1);
  SECTION("the roll succeeds: the whole batch moves to the new segment") {
    h.journal().BeginBatch();
    for (uint64_t seq = 2; seq <= 5; ++seq) REQUIRE(h.Append(BodyFor(seq, 40)) == seq);
    h.journal().EndBatch();
    h.Flush();
    // 2.seg holds the whole batch (over the limit), then the flush rolls to 6.seg.
    CHECK(Names(h.dir()) == std::vector<uint64_t>{1, 2, 6});
    CHECK(h.SegSize(2) == kMagicSize + 4 * 64);
    CHECK(h.ReadAll() == h.Expected(5));
  }
  SECTION("the roll fails: none of the batch is stored, and the journal recovers") {
    FailNewSegments ffs;
    InstallFs installed(&ffs);
    h.journal().BeginBatch();
    REQUIRE(h.Append(BodyFor(2, 40)) == 2);
    REQUIRE(h.Append(BodyFor(3, 40)) == 3);
    uint64_t seq = 0;
    const Status s = h.journal().Append(ReceivedNs(4), BodyFor(4, 40), &seq);
    h.journal().EndBatch();
    h.DropPending();
    CHECK_THAT(s.message(), Contains(std::strerror(ENOSPC)));
    CHECK(ffs.refused == 1);
    CHECK(h.journal().failed());
    CHECK(h.journal().last_seq() == 1);
    CHECK(h.journal().written_seq() == 1);
    CHECK(h.SegSize(1) == h.OffsetOf(2));  // record 1 only
    CHECK(Names(h.dir()) == std::vector<uint64_t>{1});

    std::shared_ptr<SegmentFile> closed;
    uint64_t closed_last = 0;
    CHECK_FALSE(h.journal().TryRecover(&closed, &closed_last).ok());  // the disk is still full
    CHECK(h.journal().failed());
    ffs.failing = false;
    REQUIRE(h.journal().TryRecover(&closed, &closed_last).ok());
    CHECK_FALSE(h.journal().failed());
    CHECK(h.journal().recoveries() == 1);
    REQUIRE(closed != nullptr);
    CHECK(closed->first_seq == 1);
    CHECK(closed_last == 1);
    // The client resends the batch: each event once, with the seqs given back.
    h.journal().BeginBatch();
    for (uint64_t n = 2; n <= 4; ++n) REQUIRE(h.Append(BodyFor(n, 40)) == n);
    h.journal().EndBatch();
    h.Flush();
    CHECK(Names(h.dir()) == std::vector<uint64_t>{1, 2});
    CHECK(h.ReadAll() == h.Expected(4));
    h.Reopen();
    CHECK(h.ReadAll() == h.Expected(4));
  }
}

// Disk full: after a failed write the journal continues by itself in a fresh segment.
TEST_CASE("journal: recovers from a failed write in a fresh segment, gap-free", "[journal]") {
  JournalHarness h;
  h.Reopen();
  h.WriteN(3, VariedLength);
  fault::Arm(fault::Point::kWrite, 0, ENOSPC);
  CHECK_FALSE(h.TryWrite(BodyFor(4, 30)).ok());
  fault::DisarmAll();
  CHECK(h.journal().failed());
  uint64_t seq = 0;
  CHECK_FALSE(h.journal().Append(ReceivedNs(4), "refused", &seq).ok());
  std::shared_ptr<SegmentFile> closed;
  uint64_t closed_last = 0;
  REQUIRE(h.journal().TryRecover(&closed, &closed_last).ok());
  REQUIRE(closed != nullptr);
  CHECK(closed_last == 3);
  CHECK(h.journal().active_segment()->first_seq == 4);
  CHECK(h.Write(BodyFor(4, 30)) == 4);
  CHECK(Names(h.dir()) == std::vector<uint64_t>{1, 4});
  CHECK(h.ReadAll() == h.Expected(4));
  h.Reopen();
  CHECK(h.report().strays.empty());
  h.CheckAppendContinues(4);
}

// JournalUpkeep arms its repair timer from the failure listener instead of polling.
TEST_CASE("journal: the failure listener hears each failure once, and again after a recovery",
          "[journal]") {
  JournalHarness h;
  h.Reopen();
  int heard = 0;
  h.journal().SetFailureListener([&] { ++heard; });
  h.WriteN(2, VariedLength);
  CHECK(heard == 0);
  fault::Arm(fault::Point::kWrite, 0, ENOSPC);
  CHECK_FALSE(h.TryWrite(BodyFor(3, 30)).ok());
  fault::DisarmAll();
  CHECK(heard == 1);
  // Still failed: a refused append and a failed sync add nothing.
  uint64_t seq = 0;
  CHECK_FALSE(h.journal().Append(ReceivedNs(3), "refused", &seq).ok());
  h.journal().SetFailed(Status::IOError("fdatasync: Input/output error"));
  CHECK(heard == 1);
  std::shared_ptr<SegmentFile> closed;
  uint64_t closed_last = 0;
  REQUIRE(h.journal().TryRecover(&closed, &closed_last).ok());
  CHECK(heard == 1);
  h.journal().SetFailed(Status::IOError("fdatasync: Input/output error"));
  CHECK(heard == 2);
  h.journal().SetFailureListener(nullptr);
  REQUIRE(h.journal().TryRecover(&closed, &closed_last).ok());
  h.journal().SetFailed(Status::IOError("fdatasync: Input/output error"));
  CHECK(heard == 2);
}

TEST_CASE("journal: recovers from a failed fdatasync without trusting the old segment",
          "[journal]") {
  JournalHarness h;
  h.Reopen();
  SECTION("a segment with records: a fresh one after it, the old one not handed back") {
    h.WriteN(2, VariedLength);
    h.Append(BodyFor(3, 20));  // buffered when the sync failure arrives: given back
    h.journal().SetFailed(Status::IOError("fdatasync: Input/output error"));
    h.DropPending();
    CHECK(h.journal().last_seq() == 2);
    std::shared_ptr<SegmentFile> closed;
    uint64_t closed_last = 0;
    REQUIRE(h.journal().TryRecover(&closed, &closed_last).ok());
    CHECK(closed == nullptr);
    CHECK(h.Write(BodyFor(3, 20)) == 3);
    CHECK(Names(h.dir()) == std::vector<uint64_t>{1, 3});
    CHECK(h.ReadAll() == h.Expected(3));
  }
  SECTION("an empty segment is replaced under its own name") {
    h.journal().SetFailed(Status::IOError("fdatasync: Input/output error"));
    std::shared_ptr<SegmentFile> closed;
    uint64_t closed_last = 0;
    REQUIRE(h.journal().TryRecover(&closed, &closed_last).ok());
    CHECK(closed == nullptr);
    CHECK(h.Write("one") == 1);
    CHECK(Names(h.dir()) == std::vector<uint64_t>{1});
    CHECK(h.ReadAll() == h.Expected(1));
  }
}

}  // namespace
}  // namespace ferry
