#include "daemon/journal/format.h"

#include <cstdio>
#include <cstring>

#include "daemon/base/crc32c.h"

namespace ferry::journal {
namespace {

void Put32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void Put64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t Get32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint64_t Get64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

std::string SegmentFileName(uint64_t first_seq) {
  char name[40];
  std::snprintf(name, sizeof name, "%020llu%s", static_cast<unsigned long long>(first_seq),
                kSegmentSuffix);
  return name;
}

bool ParseSegmentFileName(std::string_view name, uint64_t* first_seq) {
  const std::string_view suffix(kSegmentSuffix);
  if (name.size() != 20 + suffix.size() || name.substr(20) != suffix) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    const auto digit = static_cast<uint64_t>(name[i] - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  if (v == 0) return false;
  *first_seq = v;
  return true;
}

void EncodeRecordHeader(char* out, uint64_t seq, int64_t received_ns, std::string_view body) {
  Put32(out, static_cast<uint32_t>(body.size()));
  Put64(out + 8, seq);
  Put64(out + 16, static_cast<uint64_t>(received_ns));
  uint32_t crc = crc32c::Value(out + 8, 16);
  crc = crc32c::Extend(crc, body.data(), body.size());
  Put32(out + 4, crc);
}

RecordCheck CheckRecord(std::string_view buf, RecordView* out) {
  if (buf.size() < kRecordHeaderSize) {
    bool zero = true;
    for (char c : buf) zero = zero && c == 0;
    return zero && !buf.empty() ? RecordCheck::kZeroFill : RecordCheck::kTornHeader;
  }
  const char* p = buf.data();
  const uint32_t length = Get32(p);
  const uint32_t crc = Get32(p + 4);
  if (length == 0 && crc == 0 && Get64(p + 8) == 0 && Get64(p + 16) == 0) {
    return RecordCheck::kZeroFill;
  }
  if (length > kMaxRecordBody) return RecordCheck::kBadLength;
  if (buf.size() - kRecordHeaderSize < length) return RecordCheck::kTornBody;
  uint32_t actual = crc32c::Value(p + 8, 16);
  actual = crc32c::Extend(actual, p + kRecordHeaderSize, length);
  if (actual != crc) return RecordCheck::kBadChecksum;
  out->seq = Get64(p + 8);
  out->received_ns = static_cast<int64_t>(Get64(p + 16));
  out->body = buf.substr(kRecordHeaderSize, length);
  out->size = kRecordHeaderSize + length;
  return RecordCheck::kOk;
}

const char* RecordCheckName(RecordCheck check) {
  switch (check) {
    case RecordCheck::kOk:
      return "ok";
    case RecordCheck::kTornHeader:
      return "torn record header";
    case RecordCheck::kBadLength:
      return "record length over the limit";
    case RecordCheck::kTornBody:
      return "record runs past the end of the segment";
    case RecordCheck::kBadChecksum:
      return "checksum mismatch";
    case RecordCheck::kZeroFill:
      return "zero-filled tail";
  }
  return "unknown";
}

}  // namespace ferry::journal
