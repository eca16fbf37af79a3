// Codex's config.toml is edited as text, never re-serialized: ferry appends one marked block
// of [[hooks.<Event>]] tables at the end and removes exactly that block, so the user's
// comments and layout are untouched. The client links no TOML library (start-up cost), so a
// line-oriented check stands in for a parser: it follows strings, brackets, headers and
// `key = value` lines, which is enough to refuse a file where appending could change the
// meaning of what is there or where the result would not load.
#include <set>

#include "client/hooks_edit.h"

namespace ferry::client::hooks {
namespace {

struct Key {
  std::string table;  // the [table] it is in ("" at the root)
  std::string name;   // dotted key, quotes removed
  size_t line;
};

struct Scan {
  std::vector<Key> keys;
  std::vector<Key> headers;  // name = the header, table = "[[" or "["
};

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
        scan->headers.push_back({array ? "[[" : "[", name, at_line});
        table = name;
        continue;
      }
      std::string key;
      if (!KeyPath(&key, error)) return false;
      if (!Expect('=', error)) return false;
      if (!ValueAndEol(error)) return false;
      scan->keys.push_back({table, key, at_line});
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

// Finds a `hooks` definition that an appended [[hooks.<Event>]] would collide with.
bool Conflicts(const Scan& scan, const std::vector<std::string>& events, std::string* error) {
  auto is_event = [&](std::string_view name) {
    for (const auto& ev : events)
      if (name == ev || name.starts_with(ev + ".")) return true;
    return false;
  };
  for (const auto& k : scan.keys) {
    const bool inline_hooks =
        k.table.empty() && (k.name == "hooks" || k.name.starts_with("hooks."));
    const bool in_hooks = k.table == "hooks" && is_event(k.name);
    if (inline_hooks || in_hooks) {
      *error = std::to_string(k.line) + ":1: `" + k.name +
               "` defines hooks inline; ferry appends [[hooks.<Event>]] tables, which would "
               "clash. Move them to [[hooks.<Event>]] tables or add ferry's by hand";
      return true;
    }
  }
  for (const auto& h : scan.headers) {
    if (h.table == "[" && h.name.starts_with("hooks.") && is_event(h.name.substr(6))) {
      const bool group = h.name.find('.', 6) == std::string::npos;
      if (group) {
        *error = std::to_string(h.line) + ":1: [" + h.name +
                 "] is a table, not an array of tables ([[" + h.name +
                 "]]); ferry cannot add to it";
        return true;
      }
    }
  }
  return false;
}

std::string TomlString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

TomlEdit EditToml(std::string_view input, const std::vector<std::string>& events,
                  const std::string& command, bool install) {
  TomlEdit out;
  Scan scan;
  if (!Checker(input).Run(&scan, &out.error)) return out;

  // Locate ferry's block by its marker lines.
  size_t begin = std::string_view::npos, end = std::string_view::npos;
  for (size_t pos = 0; pos < input.size();) {
    size_t eol = input.find('\n', pos);
    const size_t next = eol == std::string_view::npos ? input.size() : eol + 1;
    std::string_view line = input.substr(pos, next - pos);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (line.starts_with(kTomlBegin)) {
      if (begin != std::string_view::npos) {
        out.error = "more than one \"" + std::string(kTomlBegin) + "\" line; fix by hand";
        return out;
      }
      begin = pos;
    } else if (line == kTomlEnd && begin != std::string_view::npos &&
               end == std::string_view::npos) {
      end = next;
    }
    pos = next;
  }
  if (begin != std::string_view::npos && end == std::string_view::npos) {
    out.error = "\"" + std::string(kTomlBegin) + "\" without its \"" + std::string(kTomlEnd) +
                "\" line; fix by hand";
    return out;
  }
  std::string base(input);
  if (begin != std::string_view::npos) {
    out.had_block = true;
    std::string prefix(input.substr(0, begin));
    if (prefix.ends_with("\n\n")) prefix.pop_back();  // the blank line install put before it
    base = prefix + std::string(input.substr(end));
  }
  if (install) {
    // Conflicts are judged on the file without ferry's block: its own tables never clash.
    Scan rest;
    std::string ignored;
    if (!Checker(base).Run(&rest, &ignored) || Conflicts(rest, events, &out.error)) {
      if (out.error.empty()) out.error = ignored;
      return out;
    }
    std::string block = std::string(kTomlBegin) +
                        " (added by `ferry hooks install codex`; `ferry hooks uninstall codex` "
                        "removes this block)\n";
    for (const auto& ev : events) {
      block += "[[hooks." + ev + "]]\n[[hooks." + ev +
               ".hooks]]\ntype = \"command\"\ncommand = " + TomlString(command) + "\n\n";
    }
    block.pop_back();
    block += std::string(kTomlEnd) + "\n";
    if (!base.empty()) base += base.ends_with('\n') ? "\n" : "\n\n";
    base += block;
  }
  out.text = std::move(base);
  out.ok = true;
  return out;
}

}  // namespace ferry::client::hooks
