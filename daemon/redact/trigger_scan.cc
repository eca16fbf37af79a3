// The built-in detectors' prefilter as a byte scan (see detectors.h: MayHoldTrigger).
//
// Every event's every string passes through here on the io thread before its ACK (ferryd's
// [redact] local): with PCRE2's JIT the trigger alternation cost ~40% of the io thread under
// EVENT_BATCH load (docs/benchmarks.md, Run O). The scan looks up each pair of adjacent bytes
// in a 65,536-bit table of the trigger words' first two letters (set in every case), eight
// pairs per branch, and only on a hit compares the words that start with that pair
// (ASCII-lowercased). tests/unit/redact_trigger_test.cc checks it against redact::Trigger().
#include <array>
#include <cstdint>
#include <string_view>

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

// UTF-8 starts of the two non-ASCII characters that PCRE2's caseless UTF matching folds onto
// ASCII letters: U+017F LATIN SMALL LETTER LONG S ('s': C5 BF) and U+212A KELVIN SIGN ('k':
// E2 84 AA). The scan answers "maybe" when it meets one (the detectors then decide).
constexpr uint16_t kLongS = 0xC5BF;
constexpr uint16_t kKelvin = 0xE284;

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
    Set(Pair(':', '/'));
    Set(kLongS);
    Set(kKelvin);
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
  if (pair == kKelvin) return i + 2 < s.size() && static_cast<uint8_t>(s[i + 2]) == 0xAA;
  if (pair == Pair(':', '/')) return UrlUserInfoAt(s, i);
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

}  // namespace

bool MayHoldTrigger(std::string_view text) {
  const auto* p = reinterpret_cast<const uint8_t*>(text.data());
  const size_t pairs = text.size() < 2 ? 0 : text.size() - 1;  // pair i is (p[i], p[i + 1])
  auto bit = [p](size_t i) -> uint64_t {
    const auto pair = static_cast<uint16_t>(p[i] << 8 | p[i + 1]);
    return kTables.pairs[pair >> 6] >> (pair & 63);
  };
  auto check = [&](size_t i) {
    return (bit(i) & 1) != 0 &&
           MatchAt(text, i,
                   static_cast<uint16_t>(kTables.lower[p[i]] << 8 | kTables.lower[p[i + 1]]));
  };
  size_t i = 0;
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

}  // namespace ferry::redact
