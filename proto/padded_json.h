// JSON text read by rapidjson 16 bytes at a time. rapidjson 1.1 reads a string's characters
// one by one through the input stream (a bounds check, a copy and a capacity check per byte:
// ~1.6 ns a byte here, the largest cost of a 20 KB tool output on the hook path), and its own
// SSE2 scan runs only for a NUL-terminated StringStream, whose copy optimisation leaves
// Tell() stale inside handler calls (ParseEnvelopes needs it live for payload spans), and
// which starts each run with up to 15 single bytes to reach an aligned block: in code and
// tool output a run ends every few dozen bytes at a \n or \".
//
// PaddedJson copies the text and puts kPadding zero bytes after it; PaddedStream reads it.
// With that padding a 16-byte load may start at any byte of the text, so the scan below (an
// explicit specialisation of the reader's ScanCopyUnescapedString for PaddedStream) takes
// unaligned blocks from where each run starts. It stops at a quote, a backslash or a byte
// below 0x20, as rapidjson's own scan does, and leaves those to the reader; the terminating
// NUL is such a byte, so no load reaches past the padding. An embedded NUL ends the stream
// as it ends a MemoryStream: callers compare Tell() with the size.
//
// Thread-safe (no shared state). Include this header wherever PaddedStream is parsed, so the
// specialisation is seen before any use.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <rapidjson/reader.h>

namespace ferry::proto {

// A rapidjson input stream over a PaddedJson buffer. No copy optimisation: Tell() is the
// reader's position inside every handler call.
struct PaddedStream {
  using Ch = char;
  explicit PaddedStream(const char* text) : src_(text), head_(text) {}
  Ch Peek() const { return *src_; }
  Ch Take() { return *src_++; }
  size_t Tell() const { return static_cast<size_t>(src_ - head_); }
  // Input only (rapidjson's stream concept names these).
  Ch* PutBegin() { return nullptr; }
  void Put(Ch) {}
  void Flush() {}
  size_t PutEnd(Ch*) { return 0; }

  const char* src_;
  const char* head_;
};

// `text` copied with kPadding zero bytes after it. Text up to kInline bytes is copied into
// the object itself (no allocation for most hook payloads), larger text into the heap.
class PaddedJson {
 public:
  static constexpr size_t kPadding = 16;
  static constexpr size_t kInline = 512;
  explicit PaddedJson(std::string_view text) : data_(inline_), size_(text.size()) {
    char* out = inline_;
    if (text.size() > kInline) {
      heap_.reset(new char[text.size() + kPadding]);  // uninitialised but for the padding
      out = heap_.get();
      data_ = out;
    }
    if (!text.empty()) std::memcpy(out, text.data(), text.size());
    std::memset(out + text.size(), 0, kPadding);
  }
  PaddedJson(const PaddedJson&) = delete;
  PaddedJson& operator=(const PaddedJson&) = delete;
  const char* c_str() const { return data_; }
  size_t size() const { return size_; }
  PaddedStream Stream() const { return PaddedStream(data_); }

 private:
  std::unique_ptr<char[]> heap_;
  char inline_[kInline + kPadding];
  const char* data_;
  size_t size_;
};

}  // namespace ferry::proto

#if defined(__SSE2__)
namespace rapidjson {

// Copies the run of plain characters at the stream's position onto the reader's string
// stack, 16 bytes a step, and stops before the first quote, backslash or byte below 0x20.
template <>
template <>
inline void GenericReader<UTF8<>, UTF8<>, CrtAllocator>::ScanCopyUnescapedString(
    ferry::proto::PaddedStream& is,
    GenericReader<UTF8<>, UTF8<>, CrtAllocator>::StackStream<char>& os) {
  const char* p = is.src_;
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
                control = _mm_set1_epi8(0x1f);
  for (;;) {
    const __m128i s = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // s <= 0x1f (unsigned) exactly when max(s, 0x1f) == 0x1f.
    const __m128i stop =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(s, quote), _mm_cmpeq_epi8(s, backslash)),
                     _mm_cmpeq_epi8(_mm_max_epu8(s, control), control));
    const auto mask = static_cast<unsigned>(_mm_movemask_epi8(stop));
    if (mask != 0) {
      const auto n = static_cast<SizeType>(__builtin_ctz(mask));
      if (n != 0) std::memcpy(os.Push(n), p, n);
      p += n;
      break;
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(os.Push(16)), s);
    p += 16;
  }
  is.src_ = p;
}

}  // namespace rapidjson
#endif
