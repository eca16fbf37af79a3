// The built-in secret detectors' PCRE2 patterns (used by redact.cc only). Pure data; any thread.
//
// Contract: every match of a text detector contains a match of kTrigger (case-insensitively),
// so a string without one skips all of them (redact_test checks each detector's examples).
// Replacements are "[REDACTED:<name>]"; the detectors that keep a prefix (a key name, a
// scheme, a user name) start their match with \K after it.
#pragma once

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
// The prefilter every text detector's match passes (see above).
std::string Trigger();

}  // namespace ferry::redact
