// The transcript archive's files (docs/archive.md "Files"): one directory per session,
// <archive>/<source>/<session>/, holding one file per generation, <gen, 8 digits>.fta. A
// generation is one transcript path's bytes, copied in order from offset 0; a file that was
// truncated or rewritten starts the next generation. Each file is a run of frames:
//
//   frame  := magic "FTA1" | u32 len (LE) | u32 crc32c(type | payload) (LE) | u8 type | payload
//   type 1 := header: JSON {"v":1, "source", "session", "path", "gen", "created_ns"}
//   type 2 := data: u64 src_offset | u32 raw_len | u32 tail_crc | zlib stream of raw_len bytes
//
// src_offset is where the chunk starts in the transcript; data frames follow each other
// without gap or overlap. tail_crc is crc32c of the last min(4096, end) bytes of the copied
// prefix (end = src_offset + raw_len): what the next copy compares to tell an appended file
// from a rewritten one. A frame cut short by a crash (its length runs past the end of the
// file) is a torn tail: ignored by readers, cut by the writer. A whole frame that fails its
// magic, CRC or offset check is corrupt: readers stop that generation there and say so.
//
// Threads: pure functions and read-only file access; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"

namespace ferry::archive {

inline constexpr size_t kFrameHeader = 13;
inline constexpr size_t kDataHeader = 16;
inline constexpr uint32_t kMaxFramePayload = 4u << 20;
inline constexpr size_t kChunkBytes = 256u << 10;  // raw bytes per data frame, at most
inline constexpr size_t kTailBlock = 4096;
inline constexpr uint8_t kHeaderFrame = 1;
inline constexpr uint8_t kDataFrame = 2;

// Directory names: bytes outside [A-Za-z0-9_.-] (and a leading '.') as %XX.
std::string EncodeName(std::string_view name);
bool DecodeName(std::string_view encoded, std::string* name);
std::string GenFileName(uint32_t gen);  // "00000001.fta"
bool ParseGenFileName(std::string_view name, uint32_t* gen);

std::string EncodeFrame(uint8_t type, std::string_view payload);
std::string EncodeHeader(std::string_view source, std::string_view session, std::string_view path,
                         uint32_t gen, int64_t created_ns);
// A data frame for `raw`; false when zlib fails.
bool EncodeData(uint64_t src_offset, std::string_view raw, uint32_t tail_crc, std::string* frame);

struct Header {
  std::string source, session, path;
  uint32_t gen = 0;
  int64_t created_ns = 0;
};

enum class Damage { kNone, kTorn, kCorrupt };

// One frame read from `data` at `at`.
struct FrameView {
  uint8_t type = 0;
  std::string_view payload;
  size_t size = 0;  // bytes the frame takes
};
// kNone with *frame; kTorn when fewer bytes than the frame needs are left; kCorrupt with *what.
Damage ReadFrame(std::string_view data, size_t at, FrameView* frame, std::string* what);

// What a generation file holds, by its frames (payloads not decompressed).
struct Scan {
  bool has_header = false;
  Header header;
  uint64_t end = 0;        // bytes of the transcript copied (next src_offset)
  uint32_t tail_crc = 0;   // of the last data frame
  size_t valid_bytes = 0;  // where the last valid frame ends
  Damage damage = Damage::kNone;
  std::string what;  // for kCorrupt
};
Scan ScanFile(std::string_view data);

// A data frame payload's src_offset and raw_len (the payload is at least kDataHeader long).
uint64_t DataOffset(std::string_view payload);
uint32_t DataLength(std::string_view payload);

// Decompresses a data frame's payload, appending its raw bytes to *out; false with *what.
bool DecodeData(std::string_view payload, uint64_t expect_offset, std::string* out,
                uint64_t* src_offset, std::string* what);

// The generation files of the session directory `dir`, by generation.
std::vector<uint32_t> ListGenerations(const std::string& dir);

}  // namespace ferry::archive
