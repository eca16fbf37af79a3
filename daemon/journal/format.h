// Journal byte format, shared by Journal (writer and recovery) and JournalReader.
// Spec with a worked example: docs/journal-format.md.
//
//   segment := magic(8) record*
//   record  := u32 length | u32 crc32c | u64 seq | i64 received_ns | body[length]
//   integers little endian; crc32c covers seq, received_ns and body (everything after it).
//   Segment files are named by the seq of their first record: 00000000000000000001.seg
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::journal {

inline constexpr char kSegmentMagic[8] = {'F', 'E', 'R', 'R', 'Y', 'J', '0', '1'};
inline constexpr size_t kMagicSize = sizeof kSegmentMagic;
inline constexpr size_t kRecordHeaderSize = 24;
// A length above this is corruption, whatever the remaining file size says.
inline constexpr uint32_t kMaxRecordBody = 64u << 20;
inline constexpr const char* kSegmentSuffix = ".seg";
// The high-water file in the journal directory (journal.h, HighWater).
inline constexpr const char* kHighWaterFile = "highwater";

// "00000000000000000042.seg" for 42.
std::string SegmentFileName(uint64_t first_seq);
// Parses a segment file name; false for anything else in the directory.
bool ParseSegmentFileName(std::string_view name, uint64_t* first_seq);

void EncodeRecordHeader(char* out, uint64_t seq, int64_t received_ns, std::string_view body);

// Outcome of checking one record at the start of `buf`.
enum class RecordCheck {
  kOk,
  kTornHeader,  // fewer than kRecordHeaderSize bytes left
  kBadLength,   // length over kMaxRecordBody
  kTornBody,    // length runs past the end of the data
  kBadChecksum,
  kZeroFill,  // header is all zero bytes (preallocated or zero-filled tail)
};
struct RecordView {
  uint64_t seq = 0;
  int64_t received_ns = 0;
  std::string_view body;
  size_t size = 0;  // header + body
};
RecordCheck CheckRecord(std::string_view buf, RecordView* out);
const char* RecordCheckName(RecordCheck check);

}  // namespace ferry::journal
