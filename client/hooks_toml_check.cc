// The line-oriented TOML check behind `ferry hooks install codex` (hooks_toml.h). The client
// links no TOML library (start-up cost of every `ferry emit`), so this follows strings,
// brackets, headers and `key = value` lines, and records where each key and header is.
#include <cctype>
#include <set>

#include "client/hooks_toml.h"

namespace ferry::client::hooks::toml {
namespace {

class Checker {
 public:
  explicit Checker(std::string_view t) : t_(t) {}

  bool Run(Scan* scan, std::string* error) {
    std::set<std::string> tables;
    std::string table;
    while (i_ < t_.size()) {
      SkipBlank();
      if (i_ >= t_.size()) break;
      const char c = t_[i_];
      if (c == '\n' || c == '\r') {
        if (!EndOfLine()) return Fail("stray carriage return", error);
        continue;
      }
      if (c == '#') {
        SkipComment();
        continue;
      }
      const size_t at_line = line_;
      if (c == '[') {
        const bool array = i_ + 1 < t_.size() && t_[i_ + 1] == '[';
        i_ += array ? 2 : 1;
        std::string name;
        if (!KeyPath(&name, error)) return false;
        if (!Expect(']', error) || (array && !Expect(']', error))) return false;
        if (!RestOfLine(error)) return false;
        if (!array && !tables.insert(name).second)
          return Fail("table [" + name + "] defined twice", error, at_line);
        scan->headers.push_back({array, name, at_line});
        table = name;
        continue;
      }
      std::string key;
      if (!KeyPath(&key, error)) return false;
      if (!Expect('=', error)) return false;
      if (!ValueAndEol(error)) return false;
      const size_t last = i_ > 0 && t_[i_ - 1] == '\n' ? line_ - 1 : line_;
      scan->keys.push_back({table, key, at_line, last});
    }
    return true;
  }

 private:
  bool Fail(const std::string& what, std::string* error, size_t line = 0) {
    *error = std::to_string(line ? line : line_) + ":" +
             std::to_string(line ? 1 : i_ - line_start_ + 1) + ": " + what;
    return false;
  }
  void SkipBlank() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t')) ++i_;
  }
  void SkipComment() {
    while (i_ < t_.size() && t_[i_] != '\n') ++i_;
  }
  bool EndOfLine() {
    if (i_ < t_.size() && t_[i_] == '\r') ++i_;
    if (i_ < t_.size() && t_[i_] != '\n') return false;
    if (i_ < t_.size()) ++i_;
    ++line_;
    line_start_ = i_;
    return true;
  }
  bool RestOfLine(std::string* error) {
    SkipBlank();
    if (i_ < t_.size() && t_[i_] == '#') SkipComment();
    if (i_ >= t_.size()) return true;
    if (!EndOfLine()) return Fail("unexpected text after the value or header", error);
    return true;
  }
  bool Expect(char c, std::string* error) {
    SkipBlank();
    if (i_ >= t_.size() || t_[i_] != c) return Fail(std::string("expected '") + c + "'", error);
    ++i_;
    return true;
  }
  // A single-line string starting at i_ (quote char q); appends its raw content to *out.
  bool ShortString(char q, std::string* out, std::string* error) {
    const size_t open = i_++;
    while (i_ < t_.size() && t_[i_] != q && t_[i_] != '\n') {
      if (q == '"' && t_[i_] == '\\' && i_ + 1 < t_.size() && t_[i_ + 1] != '\n') ++i_;
      if (out) *out += t_[i_];
      ++i_;
    }
    if (i_ >= t_.size() || t_[i_] != q) {
      i_ = open;
      return Fail("unterminated string", error);
    }
    ++i_;
    return true;
  }
  bool KeyPath(std::string* name, std::string* error) {
    for (;;) {
      SkipBlank();
      if (i_ >= t_.size()) return Fail("expected a key", error);
      const char c = t_[i_];
      if (c == '"' || c == '\'') {
        if (!ShortString(c, name, error)) return false;
      } else {
        const size_t start = i_;
        while (i_ < t_.size() && (std::isalnum(static_cast<unsigned char>(t_[i_])) ||
                                  t_[i_] == '_' || t_[i_] == '-')) {
          ++i_;
        }
        if (i_ == start) return Fail("expected a key", error);
        name->append(t_.substr(start, i_ - start));
      }
      SkipBlank();
      if (i_ < t_.size() && t_[i_] == '.') {
        *name += '.';
        ++i_;
        continue;
      }
      return true;
    }
  }
  bool ValueAndEol(std::string* error) {
    SkipBlank();
    static constexpr std::string_view kStarts = "\"'[{+-0123456789tfin";
    if (i_ >= t_.size() || t_[i_] == '\n' || t_[i_] == '#') return Fail("missing value", error);
    if (kStarts.find(t_[i_]) == std::string_view::npos) return Fail("not a TOML value", error);
    std::string open;  // stack of [ and {
    std::vector<std::pair<size_t, size_t>> open_at;
    while (i_ < t_.size()) {
      const char c = t_[i_];
      if (c == '"' || c == '\'') {
        if (t_.substr(i_, 3) == std::string_view(std::string(3, c))) {
          const std::string close(3, c);
          const size_t start_line = line_, start_col = i_ - line_start_ + 1;
          i_ += 3;
          for (;;) {
            if (i_ >= t_.size()) {
              *error = std::to_string(start_line) + ":" + std::to_string(start_col) +
                       ": unterminated multi-line string";
              return false;
            }
            if (c == '"' && t_[i_] == '\\') {
              i_ += 2;
              continue;
            }
            if (t_.substr(i_, 3) == close) {
              i_ += 3;
              while (i_ < t_.size() && t_[i_] == c) ++i_;  // up to two quotes before the end
              break;
            }
            if (t_[i_] == '\n') {
              ++line_;
              line_start_ = i_ + 1;
            }
            ++i_;
          }
        } else if (!ShortString(c, nullptr, error)) {
          return false;
        }
        continue;
      }
      if (c == '[' || c == '{') {
        open += c;
        open_at.push_back({line_, i_ - line_start_ + 1});
      } else if (c == ']' || c == '}') {
        if (open.empty() || open.back() != (c == ']' ? '[' : '{'))
          return Fail(std::string("unmatched '") + c + "'", error);
        open.pop_back();
        open_at.pop_back();
      } else if (c == '#') {
        SkipComment();
        continue;
      } else if (c == '\n' || c == '\r') {
        if (open.empty()) return RestOfLine(error);
        if (open.back() == '{') return Fail("newline inside an inline table", error);
        if (!EndOfLine()) return Fail("stray carriage return", error);
        continue;
      }
      ++i_;
    }
    if (!open.empty()) {
      *error = std::to_string(open_at.back().first) + ":" + std::to_string(open_at.back().second) +
               ": '" + open.back() + "' is never closed";
      return false;
    }
    return true;
  }

  std::string_view t_;
  size_t i_ = 0;
  size_t line_ = 1;
  size_t line_start_ = 0;
};

}  // namespace

bool Check(std::string_view text, Scan* scan, std::string* error) {
  return Checker(text).Run(scan, error);
}

}  // namespace ferry::client::hooks::toml
