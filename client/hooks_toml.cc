// Codex's config.toml is edited as text, never re-serialized: ferry keeps its tables in one
// marked block (# >>> ferry hooks >>> ... # <<< ferry hooks <<<), so the user's comments and
// layout are untouched. Codex itself (toml_edit) inserts new tables before a file's trailing
// comment, which is ferry's end marker, so `codex mcp add`, `codex features enable` and the
// hook trust `/hooks` stores ([hooks.state."<key>"] trusted_hash) land inside the block.
// ferry therefore owns only its own [[hooks.<Event>]] + [[hooks.<Event>.hooks]] pairs (the
// handler's command ends with " ferry-hook") and keeps every other line between the markers
// byte for byte, where it was. A ferry table that holds something ferry did not write is
// refused rather than edited.
#include <cstdint>
#include <map>
#include <set>

#include "client/hooks_edit.h"
#include "client/hooks_toml.h"

namespace ferry::client::hooks {
namespace {

// Finds a `hooks` definition that an appended [[hooks.<Event>]] would collide with.
bool Conflicts(const toml::Scan& scan, const std::vector<std::string>& events, std::string* error) {
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
    if (!h.array && h.name.starts_with("hooks.") && is_event(h.name.substr(6))) {
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

// Timeout of every handler ferry writes (seconds; Codex's default is 600). A safety net only:
// ferry emit answers within its own 50 ms budget. Codex caps SessionEnd at 3 s anyway.
constexpr int kCodexTimeoutS = 10;

std::string TomlString(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string Pair(const std::string& ev, const std::string& command) {
  return "[[hooks." + ev + "]]\n[[hooks." + ev +
         ".hooks]]\ntype = \"command\"\ncommand = " + TomlString(command) +
         "\ntimeout = " + std::to_string(kCodexTimeoutS) + "\n";
}

// The input cut into 1-based lines.
class Lines {
 public:
  explicit Lines(std::string_view t) : t_(t) {
    start_.push_back(0);  // line 0 does not exist
    for (size_t pos = 0; pos < t.size();) {
      start_.push_back(pos);
      const size_t eol = t.find('\n', pos);
      pos = eol == std::string_view::npos ? t.size() : eol + 1;
    }
    start_.push_back(t.size());
  }
  size_t Count() const { return start_.size() - 2; }
  size_t Start(size_t line) const { return start_[line]; }
  // Lines [a, b] with their newlines ("" when b < a).
  std::string_view Range(size_t a, size_t b) const {
    return b < a ? std::string_view() : t_.substr(start_[a], start_[b + 1] - start_[a]);
  }
  // One line without its newline and surrounding blanks.
  std::string_view Bare(size_t line) const {
    std::string_view s = Range(line, line);
    while (!s.empty() && std::string_view(" \t\r\n").find(s.back()) != std::string_view::npos)
      s.remove_suffix(1);
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    return s;
  }

 private:
  std::string_view t_;
  std::vector<size_t> start_;
};

bool IsIdent(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

// "X" when `line` is exactly `[[hooks.X<suffix>]]` with X a bare key, else "".
std::string ArrayHeaderEvent(std::string_view line, std::string_view suffix) {
  if (!line.starts_with("[[hooks.") || !line.ends_with(std::string(suffix) + "]]")) return {};
  std::string_view ev = line.substr(8, line.size() - 8 - suffix.size() - 2);
  return IsIdent(ev) ? std::string(ev) : std::string();
}

// One part of the block's body: ferry's pair for `event` (text = the blank lines before it),
// or anything else (text = its lines, verbatim).
struct Segment {
  bool ferry = false;
  std::string event;
  std::string text;
};

class BlockSplitter {
 public:
  BlockSplitter(const Lines& lines, const toml::Scan& scan) : lines_(lines) {
    for (const auto& h : scan.headers) headers_[h.line] = &h;
    for (const auto& k : scan.keys) keys_[k.line] = &k;
    for (const auto& k : scan.keys)
      for (size_t l = k.line + 1; l <= k.last_line; ++l) continuation_.insert(l);
  }

  // Splits lines [first, last] (between the markers) into segments.
  bool Split(size_t first, size_t last, std::vector<Segment>* out, std::string* error) {
    struct Unit {
      size_t begin, header, end;  // header 0: keys before any header
    };
    std::vector<Unit> units;
    size_t content_end = first - 1;
    for (size_t l = first; l <= last; ++l) {
      if (headers_.count(l)) {
        units.push_back({content_end + 1, l, l});
        content_end = l;
      } else if (keys_.count(l) || continuation_.count(l)) {
        if (units.empty()) units.push_back({first, 0, l});
        units.back().end = l;
        content_end = l;
      }
    }
    for (size_t k = 0; k < units.size(); ++k) {
      const Unit& u = units[k];
      const std::string ev = u.header ? ArrayHeaderEvent(lines_.Bare(u.header), "") : std::string();
      const bool next_is_handler =
          k + 1 < units.size() && !ev.empty() &&
          ArrayHeaderEvent(lines_.Bare(units[k + 1].header), ".hooks") == ev;
      if (next_is_handler && IsFerryHandler(units[k + 1].header, units[k + 1].end)) {
        const Unit& h = units[k + 1];
        std::string why;
        if (u.end != u.header)
          why = "a key in its [[hooks." + ev + "]] group";
        else if (h.begin != h.header)
          why = "a line between its two headers";
        else
          why = HandlerProblem(h.header, h.end);
        if (why.empty() && k + 2 < units.size()) {
          const auto it = headers_.find(units[k + 2].header);
          if (it != headers_.end() && it->second->name.starts_with("hooks." + ev + "."))
            why = "a table that belongs to its group (line " + std::to_string(units[k + 2].header) +
                  ")";
        }
        if (!why.empty()) {
          *error = std::to_string(u.header) + ":1: ferry's [[hooks." + ev + "]] entry also holds " +
                   why +
                   ", which ferry did not write and will not delete or move. Take ferry's "
                   "entry out by hand (or that line), then run this again";
          return false;
        }
        AddPrefix(u.begin, u.header - 1, ev, out);
        ++k;  // the handler is part of the pair
        continue;
      }
      if (u.header && !ArrayHeaderEvent(lines_.Bare(u.header), ".hooks").empty() &&
          IsFerryHandler(u.header, u.end)) {
        *error = std::to_string(u.header) +
                 ":1: a handler with ferry's command that is not in a group of its own, as "
                 "ferry writes it; ferry will not change that group. Remove it by hand, then "
                 "run this again";
        return false;
      }
      Foreign(lines_.Range(u.begin, u.end), out);
    }
    Foreign(lines_.Range(content_end + 1, last), out);
    return true;
  }

 private:
  // Whether the handler table (header line..end) has a `command` that is ferry's.
  bool IsFerryHandler(size_t header, size_t end) const {
    for (size_t l = header + 1; l <= end; ++l) {
      const auto it = keys_.find(l);
      if (it == keys_.end() || it->second->name != "command") continue;
      std::string_view v = Value(l);
      if (v.size() >= 2 && (v.back() == '"' || v.back() == '\'')) v.remove_suffix(1);
      if (IsFerryCommand(v)) return true;
    }
    return false;
  }

  // "" when the handler holds exactly what ferry writes: type, command, timeout.
  std::string HandlerProblem(size_t header, size_t end) const {
    for (size_t l = header + 1; l <= end; ++l) {
      const auto it = keys_.find(l);
      if (it == keys_.end()) {
        if (continuation_.count(l)) continue;
        return "a comment or blank line (line " + std::to_string(l) + ")";
      }
      const toml::Key& k = *it->second;
      const std::string_view v = Value(l);
      const bool ok = (k.name == "type" && v == "\"command\"") ||
                      (k.name == "command" && k.last_line == l) ||
                      (k.name == "timeout" && IsIdent(v) &&
                       v.find_first_not_of("0123456789") == std::string_view::npos);
      if (!ok) return "`" + std::string(lines_.Bare(l)) + "` (line " + std::to_string(l) + ")";
    }
    return {};
  }

  std::string_view Value(size_t line) const {
    std::string_view s = lines_.Bare(line);
    const size_t eq = s.find('=');
    if (eq == std::string_view::npos) return {};
    s.remove_prefix(eq + 1);
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    return s;
  }

  // The lines before ferry's group: comments stay (foreign), blank lines go with ferry's pair.
  void AddPrefix(size_t a, size_t b, const std::string& ev, std::vector<Segment>* out) const {
    size_t last_comment = a - 1;
    for (size_t l = a; l <= b; ++l)
      if (!lines_.Bare(l).empty()) last_comment = l;
    Foreign(lines_.Range(a, last_comment), out);
    out->push_back({true, ev, std::string(lines_.Range(last_comment + 1, b))});
  }

  static void Foreign(std::string_view text, std::vector<Segment>* out) {
    if (text.empty()) return;
    if (!out->empty() && !out->back().ferry) {
      out->back().text += text;
    } else {
      out->push_back({false, {}, std::string(text)});
    }
  }

  const Lines& lines_;
  std::map<size_t, const toml::Header*> headers_;
  std::map<size_t, const toml::Key*> keys_;
  std::set<size_t> continuation_;
};

// The block body ferry wants: each ferry pair that stays is rewritten in place, pairs for
// events no longer subscribed (or seen twice) go, new ones follow the last kept pair, and
// every foreign segment stays where it was.
std::string RenderBody(const std::vector<Segment>& segs, const std::vector<std::string>& events,
                       const std::string& command) {
  std::set<std::string> wanted(events.begin(), events.end()), placed;
  std::string body;
  size_t insert_at = 0;
  for (const auto& s : segs) {
    if (!s.ferry) {
      body += s.text;
    } else if (wanted.count(s.event) && placed.insert(s.event).second) {
      body += s.text + Pair(s.event, command);
      insert_at = body.size();
    }
  }
  std::string extra;
  for (const auto& ev : events) {
    if (placed.count(ev)) continue;
    if (insert_at > 0 || !extra.empty()) extra += "\n";
    extra += Pair(ev, command);
  }
  body.insert(insert_at, extra);
  return body;
}

// The text of a one-line TOML string ("basic" with \\ and \" escapes, or 'literal'); "" for
// anything else.
std::string Unquote(std::string_view v) {
  if (v.size() < 2) return {};
  if (v.front() == '\'') {
    const size_t close = v.find('\'', 1);
    return close == std::string_view::npos ? std::string() : std::string(v.substr(1, close - 1));
  }
  if (v.front() != '"') return {};
  std::string out;
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] == '"') return out;
    if (v[i] == '\\' && i + 1 < v.size()) ++i;
    out += v[i];
  }
  return {};
}

bool Blank(std::string_view s) { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

}  // namespace

bool ListFerryToml(std::string_view text, std::vector<FerryEntry>* out, std::string* error,
                   std::vector<std::string>* trusted) {
  toml::Scan scan;
  if (!toml::Check(text, &scan, error)) return false;
  const Lines lines(text);
  std::map<std::string, int> groups, handlers;  // per event: seen so far
  for (size_t i = 0; i < scan.headers.size(); ++i) {
    const toml::Header& h = scan.headers[i];
    const size_t next = i + 1 < scan.headers.size() ? scan.headers[i + 1].line : SIZE_MAX;
    auto keys_here = [&](auto fn) {
      for (const auto& k : scan.keys)
        if (k.table == h.name && k.line > h.line && k.line < next) fn(k);
    };
    if (!h.array && h.name.starts_with("hooks.state.") && trusted) {
      keys_here([&](const toml::Key& k) {
        if (k.name == "trusted_hash") trusted->push_back(h.name.substr(12));
      });
    }
    if (!h.array || !h.name.starts_with("hooks.")) continue;
    const std::string rest = h.name.substr(6);
    if (IsIdent(rest)) {
      ++groups[rest];
      handlers[rest] = 0;
      continue;
    }
    if (!rest.ends_with(".hooks") || !IsIdent(rest.substr(0, rest.size() - 6))) continue;
    const std::string ev = rest.substr(0, rest.size() - 6);
    FerryEntry entry{ev, {}, false, groups[ev] - 1, handlers[ev]++};
    keys_here([&](const toml::Key& k) {
      if (k.name == "timeout") entry.has_timeout = true;
      if (k.name != "command" || k.last_line != k.line) return;
      std::string_view v = lines.Bare(k.line);
      v.remove_prefix(v.find('=') + 1);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      entry.command = Unquote(v);
    });
    if (IsFerryCommand(entry.command)) out->push_back(std::move(entry));
  }
  return true;
}

TomlEdit EditToml(std::string_view input, const std::vector<std::string>& events,
                  const std::string& command, bool install) {
  TomlEdit out;
  toml::Scan scan;
  if (!toml::Check(input, &scan, &out.error)) return out;

  // Locate ferry's block by its marker lines.
  const Lines lines(input);
  size_t begin = 0, end = 0;
  for (size_t l = 1; l <= lines.Count(); ++l) {
    const std::string_view line = lines.Bare(l);
    if (line.starts_with(kTomlBegin)) {
      if (begin) {
        out.error = std::to_string(l) + ":1: a second \"" + std::string(kTomlBegin) +
                    "\" line; fix by hand";
        return out;
      }
      begin = l;
    } else if (line == kTomlEnd && begin && !end) {
      end = l;
    }
  }
  if (begin && !end) {
    out.error = std::to_string(begin) + ":1: \"" + std::string(kTomlBegin) + "\" without its \"" +
                std::string(kTomlEnd) + "\" line; fix by hand";
    return out;
  }
  std::vector<Segment> segs;
  if (begin && !BlockSplitter(lines, scan).Split(begin + 1, end - 1, &segs, &out.error)) return out;
  out.had_block = begin != 0;

  std::string prefix(begin ? input.substr(0, lines.Start(begin)) : input);
  const std::string suffix(begin ? input.substr(lines.Start(end + 1)) : std::string_view());
  std::string foreign;
  for (const auto& s : segs)
    if (!s.ferry) foreign += s.text;

  if (!install) {
    if (begin) {
      if (prefix.ends_with("\n\n")) prefix.pop_back();  // the blank line install put before it
      // Foreign lines stay where the block was; the markers and ferry's tables go.
      if (Blank(foreign)) {
        foreign.clear();
      } else if (prefix.empty()) {
        foreign.erase(0, foreign.find_first_not_of("\r\n"));
      }
    }
    out.text = prefix + foreign + suffix;
    out.ok = true;
    return out;
  }
  // Conflicts are judged on the file without ferry's tables: its own never clash.
  toml::Scan rest;
  std::string ignored;
  if (!toml::Check(prefix + foreign + suffix, &rest, &ignored)) {
    out.error = ignored;
    return out;
  }
  if (Conflicts(rest, events, &out.error)) return out;
  const std::string body = RenderBody(segs, events, command);
  if (begin) {
    out.text = prefix + std::string(lines.Range(begin, begin)) + body +
               std::string(lines.Range(end, end)) + suffix;
  } else {
    std::string block = std::string(kTomlBegin) +
                        " (added by `ferry hooks install codex`; `ferry hooks uninstall codex` "
                        "removes ferry's tables from it)\n" +
                        body + std::string(kTomlEnd) + "\n";
    if (!prefix.empty()) prefix += prefix.ends_with('\n') ? "\n" : "\n\n";
    out.text = prefix + block;
  }
  out.ok = true;
  return out;
}

}  // namespace ferry::client::hooks
