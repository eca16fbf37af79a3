// The built-in secret detectors' PCRE2 patterns (used by redact.cc only). Pure data; any thread.
//
// Contract: every match of a text detector contains a match of kTrigger (case-insensitively),
// so a string without one skips all of them (redact_test checks each detector's examples).
// Replacements are "[REDACTED:<name>]"; the detectors that keep a prefix (a key name, a
// scheme, a user name) start their match with \K after it.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::redact {

struct Builtin {
  const char* name;
  std::string pattern;
};

// A secret split into an object member's key and value, which the text detectors cannot see:
// when the whole key matches `key`, `value` is applied to the member's string value, and a
// number or a non-empty array under such a key is replaced whole (when `whole_non_string`).
struct MemberDetector {
  const char* name;
  std::string key;
  std::string value;
  bool whole_non_string;
};

// Text detectors, in the order they run.
std::vector<Builtin> Builtins();
std::vector<MemberDetector> MemberDetectors();

// The trigger: every text detector's match holds one of these words (ASCII, matched
// case-insensitively anywhere in the text) or a URL's user info (`://`, then up to white space,
// `/`, `?` or `#`, an `@`). Each word has at least two letters.
inline constexpr std::array<std::string_view, 35> kTriggerWords = {
    "akia",        "asia",          "agpa",        "aida",       "aroa",       "anpa",
    "anva",        "aipa",          "secret",      "ghp_",       "gho_",       "ghu_",
    "ghs_",        "ghr_",          "github_pat_", "xox",        "-----begin", "eyj",
    "bearer",      "authorization", "pass",        "pw",         "token",      "api_key",
    "api-key",     "apikey",        "access_key",  "access-key", "accesskey",  "private_key",
    "private-key", "privatekey",    "mysql",       "mariadb",    "curl"};
constexpr const auto& TriggerWords() { return kTriggerWords; }

// The trigger as a PCRE2 pattern (caseless, UTF): the specification MayHoldTrigger is tested
// against (redact_trigger_test).
std::string Trigger();

// False when `text` holds no trigger, so no built-in text detector can match it: the fast
// path for the many strings without a secret (one pass over the bytes, no PCRE2 call). True
// may be a false alarm; it is also the answer for U+017F and U+212A, which PCRE2's caseless
// matching folds onto 's' and 'k'. Pure; any thread.
bool MayHoldTrigger(std::string_view text);
// MayHoldTrigger without the 16-byte candidate step (the pair table at every position): the
// same answer, for tests and bench/redact_trigger_bench.
bool MayHoldTriggerBytewise(std::string_view text);

}  // namespace ferry::redact
