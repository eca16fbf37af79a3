// redact::MayHoldTrigger (the byte scan every event's strings pass before the journal) against
// its specification, redact::Trigger() compiled by PCRE2 exactly as the detectors are (UTF,
// caseless): it must answer true wherever PCRE2 finds a trigger, and false wherever PCRE2
// finds none, except for the characters it answers "maybe" for (U+017F, U+212A) and bytes
// that are not UTF-8 (where PCRE2 stops matching and the scan does not).
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <catch2/catch.hpp>

#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/redact/detectors.h"
#include "proto/event.h"

namespace ferry {
namespace {

class TriggerRegex {
 public:
  TriggerRegex() {
    const std::string pattern = redact::Trigger();
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                          PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C, &error,
                          &offset, nullptr);
    REQUIRE(code_ != nullptr);
    md_ = pcre2_match_data_create(1, nullptr);
  }
  ~TriggerRegex() {
    pcre2_match_data_free(md_);
    pcre2_code_free(code_);
  }
  TriggerRegex(const TriggerRegex&) = delete;
  TriggerRegex& operator=(const TriggerRegex&) = delete;

  bool Matches(std::string_view text) const {
    const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0,
                               md_, nullptr);
    REQUIRE((rc >= 0 || rc == PCRE2_ERROR_NOMATCH));
    return rc >= 0;
  }

 private:
  pcre2_code* code_ = nullptr;
  pcre2_match_data* md_ = nullptr;
};

// Where the scan may say "maybe" without a trigger: U+017F, U+212A, or text that is not UTF-8
// (PCRE2 does not match across an invalid byte; the scan looks at bytes).
bool HasFalseAlarmCharacter(std::string_view text) {
  return text.find("\xC5\xBF") != std::string_view::npos ||
         text.find("\xE2\x84\xAA") != std::string_view::npos ||
         proto::FirstInvalidUtf8(text) != std::string_view::npos;
}

std::string Hex(std::string_view text) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

TEST_CASE("redact trigger: every word is found in any case and anywhere", "[redact]") {
  const TriggerRegex regex;
  for (std::string_view word : redact::kTriggerWords) {
    INFO(word);
    std::string upper(word);
    for (char& c : upper) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
    std::string mixed(word);
    for (size_t i = 0; i < mixed.size(); i += 2) {
      if (mixed[i] >= 'a' && mixed[i] <= 'z') mixed[i] = static_cast<char>(mixed[i] - 32);
    }
    for (const std::string& w : {std::string(word), upper, mixed}) {
      for (const std::string& text : {w, "x " + w, w + " x", "\xC3\xA9" + w + "\xE2\x80\x9C"}) {
        CHECK(regex.Matches(text));
        CHECK(redact::MayHoldTrigger(text));
      }
      // One letter short is not the word (unless what is left is another word).
      const std::string cut = w.substr(0, w.size() - 1);
      CHECK(redact::MayHoldTrigger(cut) == regex.Matches(cut));
    }
  }
  for (std::string_view text : {"https://u:p@h/", "git clone ssh://git@github.com/o/r", "://@"}) {
    INFO(text);
    CHECK(regex.Matches(text));
    CHECK(redact::MayHoldTrigger(text));
  }
  for (std::string_view text : {"", "x", "ls -la", "https://example.com/a@b", "://u p@h", "://u#@",
                                "://u?@", "://u\t@", "cd /tmp && make -j2"}) {
    INFO(text);
    CHECK_FALSE(regex.Matches(text));
    CHECK_FALSE(redact::MayHoldTrigger(text));
  }
  // PCRE2's caseless UTF matching folds U+017F onto 's' and U+212A onto 'k': the scan says
  // "maybe" for them.
  CHECK(
      regex.Matches("\xC5\xBF"
                    "ecret"));
  CHECK(
      regex.Matches("a\xE2\x84\xAA"
                    "ia"));
  CHECK(
      redact::MayHoldTrigger("\xC5\xBF"
                             "ecret"));
  CHECK(
      redact::MayHoldTrigger("a\xE2\x84\xAA"
                             "ia"));
  CHECK(redact::MayHoldTrigger("\xE2\x84\xAA"));
  CHECK_FALSE(redact::MayHoldTrigger("\xE2\x84\xAB"));  // U+212B, no ASCII fold
}

TEST_CASE("redact trigger: the scan agrees with PCRE2 on random text", "[redact]") {
  const TriggerRegex regex;
  // Pieces of the words, their neighbours on the keyboard, separators, and the characters the
  // scan must treat specially.
  std::vector<std::string> pieces = {"a",        "A",
                                     "s",        "S",
                                     "k",        "K",
                                     "i",        "p",
                                     "P",        "w",
                                     "W",        "e",
                                     "y",        "j",
                                     "J",        "x",
                                     "o",        "g",
                                     "h",        "u",
                                     "r",        "_",
                                     "-",        "--",
                                     "---",      ":",
                                     "/",        "//",
                                     "@",        " ",
                                     "\t",       "\n",
                                     "?",        "#",
                                     "t",        "n",
                                     "c",        "l",
                                     "m",        "q",
                                     "b",        "z",
                                     "pa",       "ss",
                                     "ak",       "ia",
                                     "gh",       "p_",
                                     "ey",       "to",
                                     "ke",       "ap",
                                     "i_",       "i-",
                                     "ac",       "ce",
                                     "cess",     "pri",
                                     "vate",     "my",
                                     "sql",      "mar",
                                     "ia",       "db",
                                     "cu",       "rl",
                                     "sec",      "ret",
                                     "bea",      "rer",
                                     "auth",     "ori",
                                     "zation",   "xo",
                                     "begin",    "-----",
                                     "git",      "hub",
                                     "_pat_",    "://",
                                     "\xC3\xA9", "\xE2\x80\x9C",
                                     "\xC5\xBF", "\xE2\x84\xAA",
                                     "\xE2\x84", "\xC5",
                                     "\xFF"};
  for (std::string_view w : redact::kTriggerWords) pieces.emplace_back(w);
  std::mt19937 rng(20261204);
  std::uniform_int_distribution<size_t> pick(0, pieces.size() - 1);
  // Short texts, and (one in four) long ones that the 16-byte candidate step scans.
  std::uniform_int_distribution<int> length(0, 12), long_length(8, 60);
  size_t hits = 0, misses = 0, alarms = 0;
  for (int n = 0; n < 200000; ++n) {
    std::string text;
    for (int k = n % 4 == 0 ? long_length(rng) : length(rng); k > 0; --k) text += pieces[pick(rng)];
    const bool spec = regex.Matches(text);
    const bool scan = redact::MayHoldTrigger(text);
    // The 16-byte candidate step changes nothing: the same answer as the pair table alone.
    REQUIRE(scan == redact::MayHoldTriggerBytewise(text));
    if (spec != scan) {
      INFO("text: " << Hex(text) << " regex " << spec << " scan " << scan);
      REQUIRE(scan);  // never a miss
      REQUIRE(HasFalseAlarmCharacter(text));
      ++alarms;
    } else {
      (spec ? hits : misses)++;
    }
  }
  // Both answers occur often enough for the comparison to mean something.
  CHECK(hits > 20000);
  CHECK(misses > 20000);
  CHECK(alarms < hits / 10);
}

TEST_CASE("redact trigger: every word at every offset of a 16-byte step, in long text",
          "[redact]") {
  const TriggerRegex regex;
  // Filler of the words' own letters and neighbours, so candidates that are not words are
  // plenty (each must be told apart from a word), without a trigger of its own.
  const std::string filler = "aSkgIpa_xo-:/ eyBEcmuRtoO";
  std::vector<std::string> words(redact::kTriggerWords.begin(), redact::kTriggerWords.end());
  words.insert(words.end(), {"://u:p@h", "\xC5\xBF", "\xE2\x84\xAA"});
  std::mt19937 rng(5122026);
  size_t checked = 0;
  for (const std::string& word : words) {
    for (size_t at = 0; at < 48; ++at) {
      for (size_t after : {size_t{0}, size_t{1}, size_t{2}, size_t{17}, size_t{40}}) {
        std::string text;
        for (size_t k = 0; k < at; ++k) text += filler[rng() % filler.size()];
        std::string w = word;
        for (char& c : w) {
          if (c >= 'a' && c <= 'z' && rng() % 2) c = static_cast<char>(c - 'a' + 'A');
        }
        text += w;
        for (size_t k = 0; k < after; ++k) text += filler[rng() % filler.size()];
        INFO("text: " << Hex(text));
        const bool spec = regex.Matches(text);
        const bool scan = redact::MayHoldTrigger(text);
        REQUIRE(scan == redact::MayHoldTriggerBytewise(text));
        if (spec) REQUIRE(scan);  // never a miss
        if (!HasFalseAlarmCharacter(text)) REQUIRE(scan == spec);
        // Cut one byte into the word: the word is gone, and so is the answer (unless the
        // filler around it made one).
        text.erase(at + 1, 1);
        if (regex.Matches(text)) REQUIRE(redact::MayHoldTrigger(text));
        ++checked;
      }
    }
  }
  CHECK(checked > 8000);
}

}  // namespace
}  // namespace ferry
