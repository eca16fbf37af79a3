// Fuzz target: JournalReader over arbitrary segment bytes, then recovery (Journal::Open) of
// the same files, then one append read back (daemon/journal/reader.h, daemon/journal/journal.h).
//
// Input: 3 control bytes, then the bytes of the journal directory's segment files:
//   byte 0: bit 0: repair CRCs (every record the bytes frame gets a correct checksum, so the
//           fuzzer reaches the seq and framing rules behind the CRC); bits 1-3: the reader's
//           limit (0: none, n: 2n seqs past the first segment's name); bit 4: a gap of
//           byte 1 seqs before the second segment
//   byte 1: that gap
// The first segment is named by its first record's seq (1 if implausible), the second by
// the first's name plus the number of records the first frames (plus the gap).
//   byte 2: the seq the first reader starts at (1 + byte % 8)
//   rest:   segment 1; a second "FERRYJ01" magic after offset 0 starts segment 2 (so two real
//           segment files, concatenated, are a two-segment journal)
//
// Invariants: nothing crashes; the reader returns seqs >= its start, strictly increasing,
// each <= the limit, next_seq() = seq + 1; a record's body fits in the input; a corruption
// says why; the reader stops (kEnd) within a bounded number of calls and stays at kEnd;
// recovery succeeds on any bytes; the journal it recovers continues above every seq the
// reader returned (no seq reused); a record appended after recovery reads back, last, with
// its seq and bytes.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "daemon/journal/format.h"
#include "daemon/journal/journal.h"
#include "daemon/journal/reader.h"
#include "tests/fuzz/fuzz_util.h"

namespace ferry {
namespace {

uint64_t Get64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint32_t Get32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void ClearDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (const struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ::unlink((dir + "/" + e->d_name).c_str());
  }
  ::closedir(d);
}

// A directory of its own, on tmpfs when there is one (fsync is then nearly free), removed at
// exit. Never destroyed, so the exit handler can still use it.
const std::string& Dir() {
  static const std::string* const dir = [] {
    const char* base = std::getenv("FERRY_FUZZ_TMP");
    std::string tmpl = std::string(base && *base                     ? base
                                   : ::access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                                                                     : "/tmp") +
                       "/ferry-journal-fuzz-XXXXXX";
    if (!::mkdtemp(tmpl.data())) std::abort();
    spdlog::set_level(spdlog::level::off);
    return new std::string(std::move(tmpl));
  }();
  static const bool cleanup = [] {
    return std::atexit([] {
             ClearDir(*dir);
             ::rmdir(dir->c_str());
           }) == 0;
  }();
  (void)cleanup;
  return *dir;
}

void WriteFile(const std::string& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FUZZ_CHECK(fd >= 0, path);
  FUZZ_CHECK(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

// Walks the records that the bytes frame (after the magic), valid or not, and gives each a
// correct CRC when `repair`. Returns how many there are.
uint64_t FrameRecords(std::string* segment, bool repair) {
  uint64_t n = 0;
  size_t pos = journal::kMagicSize;
  while (pos + journal::kRecordHeaderSize <= segment->size()) {
    const uint32_t length = Get32(segment->data() + pos);
    if (length > segment->size() - pos - journal::kRecordHeaderSize) break;
    char* p = segment->data() + pos;
    if (repair) {
      journal::EncodeRecordHeader(p, Get64(p + 8), static_cast<int64_t>(Get64(p + 16)),
                                  std::string_view(p + journal::kRecordHeaderSize, length));
    }
    pos += journal::kRecordHeaderSize + length;
    ++n;
  }
  return n;
}

// The seq a segment's name gives it: its first record's seq when that is plausible.
uint64_t NaturalFirstSeq(const std::string& segment, uint64_t fallback) {
  if (segment.size() < journal::kMagicSize + journal::kRecordHeaderSize) return fallback;
  const uint64_t seq = Get64(segment.data() + journal::kMagicSize + 8);
  return seq >= 1 && seq < (1ull << 40) ? seq : fallback;
}

struct ReadResult {
  uint64_t records = 0;
  uint64_t max_seq = 0;
  JournalRecord last;
};

ReadResult ReadAll(const std::string& dir, uint64_t start, uint64_t limit, size_t input_size) {
  JournalReader reader(dir, start);
  ReadResult out;
  uint64_t prev = 0;
  JournalRecord record;
  // Each call returns a record (each at least a header of input, or the one appended) or
  // a corruption (at most one per segment): more calls than that is a loop.
  const size_t max_calls = input_size / journal::kRecordHeaderSize + 16;
  for (size_t calls = 0;; ++calls) {
    FUZZ_CHECK(calls <= max_calls, "the reader never reaches kEnd");
    const JournalReader::Result r = reader.Next(limit, &record);
    if (r == JournalReader::Result::kEnd) break;
    if (r == JournalReader::Result::kCorruption) {
      FUZZ_CHECK(!reader.error().empty());
      continue;
    }
    FUZZ_CHECK(record.seq >= start, std::to_string(record.seq));
    FUZZ_CHECK(record.seq > prev, std::to_string(record.seq) + " after " + std::to_string(prev));
    FUZZ_CHECK(record.seq <= limit, std::to_string(record.seq));
    FUZZ_CHECK(reader.next_seq() == record.seq + 1);
    FUZZ_CHECK(record.body.size() <= input_size + 64);
    prev = record.seq;
    out.max_seq = record.seq;
    out.last = record;
    ++out.records;
  }
  FUZZ_CHECK(reader.Next(limit, &record) == JournalReader::Result::kEnd, "kEnd then more");
  return out;
}

void Run(std::string_view input) {
  if (input.size() < 3) return;
  const auto flags = static_cast<unsigned char>(input[0]);
  const auto seg2_byte = static_cast<unsigned char>(input[1]);
  const uint64_t start = 1 + static_cast<unsigned char>(input[2]) % 8;
  input.remove_prefix(3);

  const std::string_view magic(journal::kSegmentMagic, journal::kMagicSize);
  const size_t split = input.size() > 0 ? input.find(magic, 1) : std::string_view::npos;
  std::string seg1(input.substr(0, split));
  std::string seg2(split == std::string_view::npos ? std::string_view() : input.substr(split));
  const bool two = split != std::string_view::npos;
  const uint64_t framed1 = FrameRecords(&seg1, flags & 1);
  if (two) FrameRecords(&seg2, flags & 1);
  // Segment names as the writer gives them: the second starts after every record the first
  // can hold (a name inside the first's range is a stray, another matter), or later (a gap:
  // the first lost its tail).
  const uint64_t first1 = NaturalFirstSeq(seg1, 1);
  const uint64_t first2 = first1 + std::max<uint64_t>(framed1, 1) + ((flags & 16) ? seg2_byte : 0);

  const std::string& dir = Dir();
  ClearDir(dir);
  WriteFile(dir + "/" + journal::SegmentFileName(first1), seg1);
  if (two) WriteFile(dir + "/" + journal::SegmentFileName(first2), seg2);

  const unsigned limit_code = (flags >> 1) & 7;
  const uint64_t limit = limit_code == 0 ? UINT64_MAX : first1 + 2 * limit_code;
  const ReadResult before = ReadAll(dir, start, limit, input.size());

  // Recovery on the same bytes, then one append: it must continue above every seq seen.
  Journal::Options options;
  options.dir = dir;
  options.segment_bytes = 4096;
  std::unique_ptr<Journal> journal;
  RecoveryReport report;
  const Status opened = Journal::Open(options, &journal, &report);
  FUZZ_CHECK(opened.ok(), opened.ToString());
  FUZZ_CHECK(journal->last_seq() >= before.max_seq,
             "recovered last_seq " + std::to_string(journal->last_seq()) + " below the read seq " +
                 std::to_string(before.max_seq));
  const std::string body = "{\"after\":\"recovery\"}";
  uint64_t seq = 0;
  Status s = journal->Append(1, body, &seq);
  if (s.ok()) s = journal->Flush();
  FUZZ_CHECK(s.ok(), s.ToString());
  FUZZ_CHECK(seq > before.max_seq, "seq " + std::to_string(seq) + " reused");
  const ReadResult after = ReadAll(dir, seq, UINT64_MAX, input.size() + body.size() + 64);
  FUZZ_CHECK(after.records == 1 && after.last.seq == seq && after.last.body == body,
             "the record appended after recovery does not read back");
}

}  // namespace
}  // namespace ferry

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ferry::Run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
