// Redactor: rewrites secrets out of an event before the journal (ferryd's [redact] local, the
// default) and out of the copy that leaves the machine (sinks). Built-in detectors
// (daemon/redact/detectors.cc: AWS access key ids and secret keys, GitHub tokens, Slack tokens,
// private key blocks, JWTs, Authorization credentials, passwords in URLs and in mysql/sshpass/
// curl arguments, password=/secret=/token= pairs and --password VALUE flags, numbers and
// arrays under such JSON keys) plus user rules from config.toml ([[redact.rule]]: name,
// pattern, replacement), all compiled with PCRE2 (JIT when available). docs/sinks.md#redaction
// lists each detector and what it replaces.
//
// Threads: a compiled Redactor is immutable and may be shared (shared_ptr<const Redactor>)
// by any number of threads; each call allocates or reuses its own per-thread match data.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "daemon/base/status.h"

namespace ferry {

struct RedactRule {
  std::string name;         // shown in errors and counters; unique
  std::string pattern;      // PCRE2 syntax, UTF mode
  std::string replacement;  // literal text, or PCRE2 substitution syntax ($1, ${name}) when
                            // the rule is a user rule; default "[REDACTED]"
};

struct RedactOptions {
  bool builtin = true;            // include the built-in detectors
  std::vector<RedactRule> rules;  // user rules, applied after the built-in ones, in order
  // Also redact before the journal, so the journal and ferry.db never hold the secrets
  // (ferryd's [redact] local, on unless the config says `local = false`; not used by the
  // Redactor itself).
  bool local = true;
};

class Redactor {
 public:
  // Compiles every rule. A bad user pattern is an error naming the rule and the offset, e.g.
  //   redact rule "corp-host": pattern: missing closing parenthesis at offset 7
  static Status Compile(const RedactOptions& options, std::shared_ptr<const Redactor>* out);
  ~Redactor();
  Redactor(const Redactor&) = delete;
  Redactor& operator=(const Redactor&) = delete;

  // Replaces every match in *text. Returns the number of replacements (0: unchanged).
  size_t RedactString(std::string* text) const;
  // Walks `value` recursively and redacts every string value and every object key in place
  // (strings may contain NUL). Returns the number of replacements.
  size_t RedactJson(rapidjson::Value* value, rapidjson::Document::AllocatorType& alloc) const;

  // False when RedactJson(value) would change nothing: no string or key of `value` passes the
  // built-in detectors' prefilter and there are no user rules. One JIT pass per string, no
  // copy: the fast path for the many events without a secret.
  bool MayChange(const rapidjson::Value& value) const;

  // Names of the compiled rules, built-in first (for status and docs).
  std::vector<std::string> rule_names() const;

  struct Impl;

 private:
  explicit Redactor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry
