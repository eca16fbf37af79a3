// The built-in detectors' prefilter as a byte scan (see detectors.h: MayHoldTrigger).
//
// Every event's every string passes through here on the io thread before its ACK (ferryd's
// [redact] local): with PCRE2's JIT the trigger alternation cost ~40% of the io thread under
// EVENT_BATCH load (docs/benchmarks.md, Run O). The scan looks up each pair of adjacent bytes
// in a 65,536-bit table of the trigger words' first two letters (set in every case), eight
// pairs per branch, and only on a hit compares the words that start with that pair
// (ASCII-lowercased). tests/unit/redact_trigger_test.cc checks it against redact::Trigger().
//
// On x86-64 with SSSE3, a 16-byte step finds the candidates first (Teddy, as in Hyperscan
// and Rust's aho-corasick): each word's first three bytes (any case; two for a two-letter word
// and U+017F) are a fingerprint in one of 8 buckets, and PSHUFB looks up each byte's low and
// high nibble in a table per position, so a position is a candidate when some bucket accepts
// its three bytes. Only candidates go to the pair table and the word comparison; the
// fingerprints are a superset of the pair table's starts, so the answer is the scalar one's
// (0.85 ns a byte of source code before, docs/benchmarks.md Run Q).
#include <array>
#include <cstdint>
#include <string_view>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "daemon/redact/detectors.h"

namespace ferry::redact {
namespace {

constexpr uint8_t Lower(uint8_t c) {
  return c >= 'A' && c <= 'Z' ? static_cast<uint8_t>(c + ('a' - 'A')) : c;
}

constexpr uint16_t Pair(char a, char b) {
  return static_cast<uint16_t>(Lower(static_cast<uint8_t>(a)) << 8 |
                               Lower(static_cast<uint8_t>(b)));
}

// What the scan looks for besides the words, as bytes: a URL's user info starts with "://",
// and the UTF-8 of the two non-ASCII characters that PCRE2's caseless UTF matching folds onto
// ASCII letters, U+017F LATIN SMALL LETTER LONG S ('s': C5 BF, answered at once whatever
// follows) and U+212A KELVIN SIGN ('k': E2 84 AA). The scan answers "maybe" when it meets one
// of the characters (the detectors then decide). The pair table and the 16-byte fingerprints
// are both built from this list; MatchAt tells them apart by their first two bytes.
inline constexpr std::string_view kSpecialStarts[] = {"://", "\xC5\xBF", "\xE2\x84\xAA"};
constexpr uint16_t kUrl = Pair(kSpecialStarts[0][0], kSpecialStarts[0][1]);
constexpr uint16_t kLongS = Pair(kSpecialStarts[1][0], kSpecialStarts[1][1]);
constexpr uint16_t kKelvin = Pair(kSpecialStarts[2][0], kSpecialStarts[2][1]);
static_assert(kUrl == 0x3A2F && kLongS == 0xC5BF && kKelvin == 0xE284);

constexpr size_t kWords = kTriggerWords.size();

struct Tables {
  std::array<uint8_t, 256> lower{};
  std::array<uint64_t, 65536 / 64> pairs{};  // bit set: a word (or a special case) starts here
  // The words grouped by first letter: by_first[first[c], first[c + 1]) start with c.
  std::array<uint8_t, 257> first{};
  std::array<uint8_t, kWords> by_first{};
  std::array<uint16_t, kWords> word_pair{};

  constexpr Tables() {
    for (size_t c = 0; c < 256; ++c) lower[c] = Lower(static_cast<uint8_t>(c));
    std::array<uint8_t, 257> count{};
    for (size_t i = 0; i < kWords; ++i) {
      const std::string_view w = kTriggerWords[i];
      word_pair[i] = Pair(w[0], w[1]);
      SetAnyCase(w[0], w[1]);
      ++count[static_cast<uint8_t>(w[0]) + 1u];
    }
    for (size_t c = 1; c < 257; ++c) first[c] = static_cast<uint8_t>(first[c - 1] + count[c]);
    std::array<uint8_t, 256> next{};
    for (size_t c = 0; c < 256; ++c) next[c] = first[c];
    for (size_t i = 0; i < kWords; ++i) {
      by_first[next[static_cast<uint8_t>(kTriggerWords[i][0])]++] = static_cast<uint8_t>(i);
    }
    for (const std::string_view start : kSpecialStarts) Set(Pair(start[0], start[1]));
  }
  constexpr void Set(uint16_t p) { pairs[p >> 6] |= uint64_t{1} << (p & 63); }
  // The table is looked up with the bytes as they are: each case of the two letters is set.
  constexpr void SetAnyCase(char a, char b) {
    for (uint8_t x : Cases(a)) {
      for (uint8_t y : Cases(b)) Set(static_cast<uint16_t>(x << 8 | y));
    }
  }
  static constexpr std::array<uint8_t, 2> Cases(char c) {
    const auto l = static_cast<uint8_t>(c);
    return {l, l >= 'a' && l <= 'z' ? static_cast<uint8_t>(l - ('a' - 'A')) : l};
  }
  constexpr bool Has(uint16_t p) const { return (pairs[p >> 6] >> (p & 63)) & 1; }
};

constexpr Tables kTables;

// `://` then, up to white space, `/`, `?` or `#`, an `@` (a password in a URL's user info).
bool UrlUserInfoAt(std::string_view s, size_t i) {
  if (i + 2 >= s.size() || s[i + 2] != '/') return false;
  for (size_t j = i + 3; j < s.size(); ++j) {
    switch (s[j]) {
      case '@':
        return true;
      case ' ':
      case '\t':
      case '\n':
      case '\v':
      case '\f':
      case '\r':
      case '/':
      case '?':
      case '#':
        return false;
      default:
        break;
    }
  }
  return false;
}

// Whether a trigger word (or the special case) starting with `pair` starts at s[i].
bool MatchAt(std::string_view s, size_t i, uint16_t pair) {
  if (pair == kLongS) return true;
  if (pair == kKelvin) return i + 2 < s.size() && s[i + 2] == kSpecialStarts[2][2];
  if (pair == kUrl) return UrlUserInfoAt(s, i);
  const uint8_t c = static_cast<uint8_t>(pair >> 8);
  for (size_t j = kTables.first[c]; j < kTables.first[c + 1u]; ++j) {
    const size_t index = kTables.by_first[j];
    const std::string_view w = kTriggerWords[index];
    if (kTables.word_pair[index] != pair || w.size() > s.size() - i) continue;
    size_t k = 2;
    while (k < w.size() &&
           kTables.lower[static_cast<uint8_t>(s[i + k])] == static_cast<uint8_t>(w[k])) {
      ++k;
    }
    if (k == w.size()) return true;
  }
  return false;
}

uint64_t PairBit(const uint8_t* p, size_t i) {
  const auto pair = static_cast<uint16_t>(p[i] << 8 | p[i + 1]);
  return kTables.pairs[pair >> 6] >> (pair & 63);
}

// Whether a trigger starts at text[i] (i + 1 < text.size()).
bool CheckAt(std::string_view text, size_t i) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  return (PairBit(p, i) & 1) != 0 &&
         MatchAt(text, i,
                 static_cast<uint16_t>(kTables.lower[p[i]] << 8 | kTables.lower[p[i + 1]]));
}

#if defined(__x86_64__)
// The fingerprints' nibble tables: lo[k][x] has bucket b's bit when some fingerprint in b has
// a byte with low nibble x at position k, hi[k][x] likewise for the high nibble. A byte passes
// position k for bucket b when both lookups have b's bit: every byte of every fingerprint does
// (and some others: a bucket mixes its fingerprints' nibbles). Position 2 of a two-byte
// fingerprint accepts any byte.
struct Teddy {
  std::array<std::array<uint8_t, 16>, 3> lo{}, hi{};

  constexpr Teddy() {
    for (const std::string_view w : kTriggerWords) AddFingerprint(w);
    for (const std::string_view start : kSpecialStarts) AddFingerprint(start);
  }
  // The first three bytes of `w` in any case (any third byte after a two-byte `w`).
  constexpr void AddFingerprint(std::string_view w) {
    const uint8_t bucket = Bucket(w);
    for (size_t k = 0; k < 3; ++k) {
      if (k < w.size()) {
        for (const uint8_t c : Tables::Cases(w[k])) Add(k, c, bucket);
      } else {
        AddAny(k, bucket);
      }
    }
  }
  // The buckets were chosen by a search over ~1 MB of this repository's docs and sources for
  // the fewest false candidates (0.97% of positions; 3.4% grouping the words by first
  // letter). The choice only changes how many candidates reach the comparison, never the
  // answer; a word or special start not listed goes to bucket 7.
  struct BucketOf {
    std::string_view prefix;
    uint8_t bucket;
  };
  static constexpr BucketOf kBuckets[] = {
      {"acc", 0}, {"eyj", 0}, {"sec", 0}, {"agp", 1}, {"aip", 1}, {"anp", 1},
      {"anv", 1}, {"aro", 1}, {"bea", 1}, {"api", 2}, {"asi", 2}, {"aut", 2},
      {"cur", 2}, {"gh", 3},  {"git", 3}, {"mar", 4}, {"mys", 4}, {"pas", 4},
      {"pri", 4}, {"aid", 5}, {"aki", 5}, {"tok", 5}, {"pw", 6},  {"\xC5\xBF", 6}};
  static constexpr uint8_t Bucket(std::string_view w) {
    for (const BucketOf& b : kBuckets) {
      if (w.substr(0, b.prefix.size()) == b.prefix) return b.bucket;
    }
    return 7;
  }
  constexpr void Add(size_t k, uint8_t c, uint8_t bucket) {
    lo[k][c & 15] = static_cast<uint8_t>(lo[k][c & 15] | (1u << bucket));
    hi[k][c >> 4] = static_cast<uint8_t>(hi[k][c >> 4] | (1u << bucket));
  }
  constexpr void AddAny(size_t k, uint8_t bucket) {
    for (size_t x = 0; x < 16; ++x) {
      lo[k][x] = static_cast<uint8_t>(lo[k][x] | (1u << bucket));
      hi[k][x] = static_cast<uint8_t>(hi[k][x] | (1u << bucket));
    }
  }
};

constexpr Teddy kTeddy;

// The buckets that accept each of the 16 bytes at `at` (at one fingerprint position).
__attribute__((target("ssse3"))) inline __m128i Buckets(__m128i lo, __m128i hi, const uint8_t* at,
                                                        __m128i nibble) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
  return _mm_and_si128(_mm_shuffle_epi8(lo, _mm_and_si128(v, nibble)),
                       _mm_shuffle_epi8(hi, _mm_and_si128(_mm_srli_epi16(v, 4), nibble)));
}

// Scans the positions [0, stop) 16 at a time (stop: the first position whose three bytes do
// not all lie 16 bytes ahead of a load, a multiple of 16 from 0) and checks each candidate.
// Returns true at the first trigger; otherwise *stop is where the scalar scan goes on.
__attribute__((target("ssse3"))) bool TeddyScan(std::string_view text, size_t* stop) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  const __m128i nibble = _mm_set1_epi8(0x0f), zero = _mm_setzero_si128();
  __m128i lo[3], hi[3];
  for (size_t k = 0; k < 3; ++k) {
    lo[k] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kTeddy.lo[k].data()));
    hi[k] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kTeddy.hi[k].data()));
  }
  size_t i = 0;
  for (; i + 18 <= n; i += 16) {
    const __m128i m = _mm_and_si128(Buckets(lo[0], hi[0], p + i, nibble),
                                    _mm_and_si128(Buckets(lo[1], hi[1], p + i + 1, nibble),
                                                  Buckets(lo[2], hi[2], p + i + 2, nibble)));
    auto candidates = static_cast<unsigned>(~_mm_movemask_epi8(_mm_cmpeq_epi8(m, zero)) & 0xffff);
    for (; candidates != 0; candidates &= candidates - 1) {
      if (CheckAt(text, i + static_cast<size_t>(__builtin_ctz(candidates)))) return true;
    }
  }
  *stop = i;
  return false;
}

// Asked on first use, after the CPU model's own constructor has run (as crc32c's check).
bool HasSsse3() {
  static const bool has = __builtin_cpu_supports("ssse3");
  return has;
}
#endif

// The pair table at every position from `from` on, eight pairs per branch.
bool ScanPairsFrom(std::string_view text, size_t from) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t pairs = text.size() < 2 ? 0 : text.size() - 1;  // pair i is (p[i], p[i + 1])
  auto bit = [p](size_t i) { return PairBit(p, i); };
  auto check = [&](size_t i) { return CheckAt(text, i); };
  size_t i = from;
  // Eight pairs per branch: most text has no hit in a block.
  for (; i + 8 <= pairs; i += 8) {
    const uint64_t any = bit(i) | bit(i + 1) | bit(i + 2) | bit(i + 3) | bit(i + 4) | bit(i + 5) |
                         bit(i + 6) | bit(i + 7);
    if ((any & 1) == 0) continue;
    for (size_t j = i; j < i + 8; ++j) {
      if (check(j)) return true;
    }
  }
  for (; i < pairs; ++i) {
    if (check(i)) return true;
  }
  return false;
}

}  // namespace

bool MayHoldTrigger(std::string_view text) {
  size_t from = 0;
#if defined(__x86_64__)
  if (text.size() >= 18 && HasSsse3() && TeddyScan(text, &from)) return true;
#endif
  return ScanPairsFrom(text, from);
}

bool MayHoldTriggerBytewise(std::string_view text) { return ScanPairsFrom(text, 0); }

}  // namespace ferry::redact
