// JSON text read by rapidjson 16 bytes at a time. rapidjson 1.1 reads a string's characters
// one by one through the input stream (a bounds check, a copy and a capacity check per byte:
// ~1.6 ns a byte here, the largest cost of a 20 KB tool output on the hook path). Its own
// SSE2 scan runs only for a NUL-terminated StringStream, which needs a terminated copy, whose
// copy optimisation leaves Tell() stale inside handler calls (ParseEnvelopes needs it live
// for payload spans), and which starts each run with up to 15 single bytes to reach an
// aligned block: in code and tool output a run ends every few dozen bytes at a \n or \".
//
// JsonStream reads a string_view in place, bounded like rapidjson's MemoryStream (Peek and
// Take give '\0' at the end, so an embedded NUL or the end stops the reader alike: callers
// compare Tell() with the size). The explicit specialisation of the reader's
// ScanCopyUnescapedString below copies each run of plain characters with unaligned 16-byte
// loads from wherever it starts while 16 bytes of the text remain, and stops at a quote, a
// backslash or a byte below 0x20 as rapidjson's own scan does; the last < 16 bytes go through
// the reader's byte loop. No load reads past the view.
//
// Thread-safe (no shared state). Include this header wherever JsonStream is parsed, so the
// specialisation is seen before any use.
#pragma once

#include <cstddef>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <rapidjson/reader.h>

namespace ferry::proto {

// A rapidjson input stream over `text`, which must outlive it. No copy optimisation: Tell()
// is the reader's position inside every handler call.
struct JsonStream {
  using Ch = char;
  explicit JsonStream(std::string_view text)
      : src_(text.data()), end_(text.data() + text.size()), head_(text.data()) {}
  Ch Peek() const { return src_ == end_ ? '\0' : *src_; }
  Ch Take() { return src_ == end_ ? '\0' : *src_++; }
  size_t Tell() const { return static_cast<size_t>(src_ - head_); }
  // Input only (rapidjson's stream concept names these).
  Ch* PutBegin() { return nullptr; }
  void Put(Ch) {}
  void Flush() {}
  size_t PutEnd(Ch*) { return 0; }

  const char* src_;
  const char* const end_;
  const char* const head_;
};

}  // namespace ferry::proto

#if defined(__SSE2__)
namespace rapidjson {

// Copies the run of plain characters at the stream's position onto the reader's string
// stack, 16 bytes a step, and stops before the first quote, backslash or byte below 0x20, or
// when fewer than 16 bytes of the text remain.
template <>
template <>
inline void GenericReader<UTF8<>, UTF8<>, CrtAllocator>::ScanCopyUnescapedString(
    ferry::proto::JsonStream& is,
    GenericReader<UTF8<>, UTF8<>, CrtAllocator>::StackStream<char>& os) {
  const char* p = is.src_;
  const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'),
                control = _mm_set1_epi8(0x1f);
  while (is.end_ - p >= 16) {
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
