// JSON hook configs are rewritten through RapidJSON: key order and the indent width survive,
// other whitespace does not (JSON has no comments to keep). Uninstall restores the bytes of
// the backup when nothing else changed (hooks.cc), so an install/uninstall pair leaves the
// file exactly as it was.
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "client/hooks_edit.h"

namespace ferry::client::hooks {
namespace {

using rapidjson::Value;

constexpr unsigned kParseFlags = rapidjson::kParseFullPrecisionFlag;

std::string LineCol(std::string_view text, size_t offset) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

bool Blank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// Parses `text` (blank means {}) into `doc`; on failure says where and why.
bool Parse(std::string_view text, rapidjson::Document* doc, std::string* error) {
  if (Blank(text)) {
    doc->SetObject();
    return true;
  }
  doc->Parse<kParseFlags>(text.data(), text.size());
  if (!doc->HasParseError()) {
    if (!doc->IsObject()) {
      *error = "1:1: the top level is not a JSON object";
      return false;
    }
    return true;
  }
  const std::string where = LineCol(text, doc->GetErrorOffset());
  rapidjson::Document relaxed;
  relaxed.Parse<kParseFlags | rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag>(
      text.data(), text.size());
  if (!relaxed.HasParseError()) {
    *error = where +
             ": comments or trailing commas, which ferry would lose by rewriting the file; "
             "remove them or add the hooks by hand (docs/hooks.md)";
  } else {
    *error = where + ": not valid JSON: " + rapidjson::GetParseError_En(doc->GetParseError());
  }
  return false;
}

// The handler's command: "command", or Copilot's "bash".
const Value* HandlerCommand(const Value& v) {
  if (!v.IsObject()) return nullptr;
  for (const char* key : {"command", "bash"}) {
    auto it = v.FindMember(key);
    if (it != v.MemberEnd() && it->value.IsString()) return &it->value;
  }
  return nullptr;
}

bool IsFerryHandler(const Value& v) {
  const Value* c = HandlerCommand(v);
  return c && IsFerryCommand(std::string_view(c->GetString(), c->GetStringLength()));
}

int RemoveFerry(rapidjson::Document* doc, JsonStyle style) {
  auto hooks = doc->FindMember("hooks");
  if (hooks == doc->MemberEnd() || !hooks->value.IsObject()) return 0;
  int removed = 0;
  for (auto ev = hooks->value.MemberBegin(); ev != hooks->value.MemberEnd();) {
    if (!ev->value.IsArray()) {
      ++ev;
      continue;
    }
    Value& groups = ev->value;
    const int before = removed;
    for (auto g = groups.Begin(); g != groups.End();) {
      if (FlatStyle(style)) {
        if (IsFerryHandler(*g)) {
          g = groups.Erase(g);
          ++removed;
          continue;
        }
      } else if (g->IsObject()) {
        auto inner = g->FindMember("hooks");
        if (inner != g->MemberEnd() && inner->value.IsArray()) {
          const int group_before = removed;
          for (auto h = inner->value.Begin(); h != inner->value.End();) {
            if (IsFerryHandler(*h)) {
              h = inner->value.Erase(h);
              ++removed;
            } else {
              ++h;
            }
          }
          if (removed > group_before && inner->value.Empty()) {
            g = groups.Erase(g);
            continue;
          }
        }
      }
      ++g;
    }
    if (removed > before && groups.Empty()) {
      ev = hooks->value.EraseMember(ev);
    } else {
      ++ev;
    }
  }
  if (removed > 0 && hooks->value.ObjectEmpty()) doc->EraseMember(hooks);
  return removed;
}

bool IsToolEvent(std::string_view ev) {
  return ev == "PreToolUse" || ev == "PostToolUse" || ev == "PostToolUseFailure";
}

// Checks the parts ferry will touch have the shape it expects, before changing anything.
bool CheckShape(const rapidjson::Document& doc, const std::vector<std::string>& events,
                std::string* error) {
  auto hooks = doc.FindMember("hooks");
  if (hooks == doc.MemberEnd()) return true;
  if (!hooks->value.IsObject()) {
    *error = "\"hooks\" is not an object";
    return false;
  }
  for (const auto& ev : events) {
    auto it = hooks->value.FindMember(ev.c_str());
    if (it != hooks->value.MemberEnd() && !it->value.IsArray()) {
      *error = "\"hooks\".\"" + ev + "\" is not an array";
      return false;
    }
  }
  return true;
}

void AddFerry(rapidjson::Document* doc, JsonStyle style, const std::vector<std::string>& events,
              const std::string& command) {
  auto& alloc = doc->GetAllocator();
  if ((style == JsonStyle::kCursor || style == JsonStyle::kCopilot) && !doc->HasMember("version")) {
    doc->AddMember("version", 1, alloc);
  }
  if (!doc->HasMember("hooks")) doc->AddMember("hooks", Value(rapidjson::kObjectType), alloc);
  Value& hooks = (*doc)["hooks"];
  for (const auto& ev : events) {
    if (!hooks.HasMember(ev.c_str())) {
      hooks.AddMember(Value(ev.c_str(), alloc), Value(rapidjson::kArrayType), alloc);
    }
    Value handler(rapidjson::kObjectType);
    if (style == JsonStyle::kCopilot) {
      // "bash" is what Copilot runs on Linux and macOS; no "powershell": ferry's command is sh.
      handler.AddMember("type", "command", alloc);
      handler.AddMember("bash", Value(command.c_str(), alloc), alloc);
      handler.AddMember("timeoutSec", 10, alloc);
      hooks[ev.c_str()].PushBack(handler, alloc);
      continue;
    }
    if (style == JsonStyle::kWindsurf) {
      const std::string with_kind = CommandWithKind(command, ev);
      handler.AddMember("command", Value(with_kind.c_str(), alloc), alloc);
      handler.AddMember("show_output", false, alloc);
      hooks[ev.c_str()].PushBack(handler, alloc);
      continue;
    }
    if (style != JsonStyle::kCursor) handler.AddMember("type", "command", alloc);
    if (style == JsonStyle::kGemini) handler.AddMember("name", "ferry", alloc);
    handler.AddMember("command", Value(command.c_str(), alloc), alloc);
    // A safety net only (ferry emit answers within its own 50 ms budget). Claude and Cursor
    // count seconds, Gemini milliseconds.
    if (style != JsonStyle::kGemini) handler.AddMember("timeout", 10, alloc);
    if (style == JsonStyle::kGemini) handler.AddMember("timeout", 10000, alloc);
    if (style == JsonStyle::kCursor) {
      hooks[ev.c_str()].PushBack(handler, alloc);
      continue;
    }
    Value group(rapidjson::kObjectType);
    if (style == JsonStyle::kClaude && IsToolEvent(ev)) group.AddMember("matcher", "*", alloc);
    Value list(rapidjson::kArrayType);
    list.PushBack(handler, alloc);
    group.AddMember("hooks", list, alloc);
    hooks[ev.c_str()].PushBack(group, alloc);
  }
}

// The indent of the first indented line, so a file indented with 4 spaces or tabs stays so.
std::pair<char, unsigned> DetectIndent(std::string_view text) {
  for (size_t pos = text.find('\n'); pos != std::string_view::npos;
       pos = text.find('\n', pos + 1)) {
    size_t end = pos + 1;
    while (end < text.size() && (text[end] == ' ' || text[end] == '\t')) ++end;
    if (end > pos + 1 && end < text.size() && text[end] != '\n' && text[end] != '\r') {
      return {text[pos + 1], static_cast<unsigned>(std::min<size_t>(end - pos - 1, 8))};
    }
  }
  return {' ', 2};
}

std::string Serialize(const rapidjson::Document& doc, std::pair<char, unsigned> indent) {
  rapidjson::StringBuffer sb;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
  w.SetIndent(indent.first, indent.second);
  doc.Accept(w);
  return std::string(sb.GetString(), sb.GetSize()) + "\n";
}

bool IsSkeleton(const rapidjson::Document& doc, JsonStyle style) {
  if (doc.ObjectEmpty()) return true;
  if ((style != JsonStyle::kCursor && style != JsonStyle::kCopilot) || doc.MemberCount() != 1)
    return false;
  auto v = doc.FindMember("version");
  return v != doc.MemberEnd() && v->value.IsInt() && v->value.GetInt() == 1;
}

}  // namespace

std::string HookCommand(const std::string& bin, std::string_view source) {
  // POSIX sh on every host; the script is single-quoted for the host's shell and `bin` is
  // double-quoted inside it (SelfExePath never returns characters that would need escaping).
  // exec keeps the hook at one process when ferry is there; without it, `cat` drains stdin
  // so the host never gets EPIPE, and the exit status is 0 either way.
  return "sh -c 'f=\"" + bin +
         "\"; [ -x \"$f\" ] || f=$(command -v ferry 2>/dev/null) || f=; [ -n \"$f\" ] && exec "
         "\"$f\" emit --source " +
         std::string(source) + " --stdin; cat >/dev/null; exit 0'" + std::string(kMarker);
}

std::string CommandWithKind(const std::string& command, std::string_view event) {
  const std::string at = " --stdin;";
  const size_t pos = command.find(at);
  if (pos == std::string::npos) return command;
  return command.substr(0, pos) + " --kind " + std::string(event) + command.substr(pos);
}

JsonEdit EditJson(std::string_view input, JsonStyle style, const std::vector<std::string>& events,
                  const std::string& command, bool install) {
  JsonEdit out;
  rapidjson::Document before, after;
  if (!Parse(input, &before, &out.error)) return out;
  if (install && !CheckShape(before, events, &out.error)) {
    out.error = "1:1: " + out.error + "; ferry does not know how to merge into it";
    return out;
  }
  after.CopyFrom(before, after.GetAllocator());
  out.removed = RemoveFerry(&after, style);
  if (install) AddFerry(&after, style, events, command);
  out.ok = true;
  out.changed = Blank(input) || after != before;
  out.empty = IsSkeleton(after, style);
  out.text = out.changed ? Serialize(after, DetectIndent(input)) : std::string(input);
  return out;
}

bool ListFerryJson(std::string_view text, JsonStyle style, std::vector<FerryEntry>* out,
                   std::string* error) {
  // Only read: comments and trailing commas (which Gemini CLI accepts) are fine here.
  rapidjson::Document doc;
  if (Blank(text)) return true;
  doc.Parse<kParseFlags | rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag>(
      text.data(), text.size());
  if (doc.HasParseError()) {
    std::string what = rapidjson::GetParseError_En(doc.GetParseError());
    if (what.ends_with('.')) what.pop_back();
    *error = LineCol(text, doc.GetErrorOffset()) + ": not valid JSON: " + what;
    return false;
  }
  if (!doc.IsObject()) return true;
  auto hooks = doc.FindMember("hooks");
  if (hooks == doc.MemberEnd() || !hooks->value.IsObject()) return true;
  auto add = [&](const char* ev, const Value& h) {
    if (!IsFerryHandler(h)) return;
    out->push_back(
        {ev, HandlerCommand(h)->GetString(),
         h.HasMember("timeout") || h.HasMember("timeoutSec") || style == JsonStyle::kWindsurf});
  };
  for (auto ev = hooks->value.MemberBegin(); ev != hooks->value.MemberEnd(); ++ev) {
    if (!ev->value.IsArray()) continue;
    for (const auto& g : ev->value.GetArray()) {
      if (FlatStyle(style)) {
        add(ev->name.GetString(), g);
        continue;
      }
      if (!g.IsObject()) continue;
      auto inner = g.FindMember("hooks");
      if (inner == g.MemberEnd() || !inner->value.IsArray()) continue;
      for (const auto& h : inner->value.GetArray()) add(ev->name.GetString(), h);
    }
  }
  return true;
}

bool JsonEqual(std::string_view a, std::string_view b) {
  rapidjson::Document da, db;
  std::string ignored;
  return Parse(a, &da, &ignored) && Parse(b, &db, &ignored) && da == db;
}

}  // namespace ferry::client::hooks
