// Internal to the Codex edit: the line-oriented TOML check (hooks_toml_check.cc) and what it
// records about each line, which the block edit (hooks_toml.cc) uses to tell ferry's own
// tables from everything else. Not a parser: it follows strings, brackets, headers and
// `key = value` lines, enough to refuse a file whose meaning an edit could change.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::client::hooks::toml {

struct Key {
  std::string table;  // the [table] it is in ("" at the root)
  std::string name;   // dotted key, quotes removed
  size_t line;        // 1-based line of the key
  size_t last_line;   // the line its value ends on (> line for multi-line values)
};

struct Header {
  bool array;        // [[name]] rather than [name]
  std::string name;  // dotted, quotes removed
  size_t line;
};

struct Scan {
  std::vector<Key> keys;
  std::vector<Header> headers;
};

// Checks `text`; on success fills `scan`, else sets `error` to "line:col: what".
bool Check(std::string_view text, Scan* scan, std::string* error);

}  // namespace ferry::client::hooks::toml
