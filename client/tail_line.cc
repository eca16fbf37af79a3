#include "client/tail_line.h"

#include <string_view>
#include <vector>

#include "client/show.h"

namespace ferry::client {
namespace {

const rapidjson::Value& Get(const rapidjson::Value& obj, const char* key) {
  static const rapidjson::Value kNull;
  if (!obj.IsObject()) return kNull;
  auto it = obj.FindMember(key);
  return it == obj.MemberEnd() ? kNull : it->value;
}

std::string Text(const rapidjson::Value& v) {
  return v.IsString() ? std::string(v.GetString(), v.GetStringLength()) : std::string();
}

std::string Compact(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  v.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

// The first line of a text, with "(+1 line)" or "(+N lines)" when more follow.
std::string FirstLine(const std::string& s) {
  const size_t nl = s.find('\n');
  if (nl == std::string::npos) return OneLine(s);
  size_t more = 0;
  for (size_t i = nl; i < s.size(); ++i) more += s[i] == '\n' && i + 1 < s.size();
  return OneLine(s.substr(0, nl)) + " (+" + std::to_string(more) +
         (more == 1 ? " line)" : " lines)");
}

// What a tool was called with, in a few words: its command, path, pattern, ... or its JSON.
std::string ToolInput(const rapidjson::Value& input) {
  if (input.IsString()) return OneLine(Text(input));
  for (const char* key : {"command", "file_path", "path", "notebook_path", "pattern", "query",
                          "url", "prompt", "description"}) {
    const std::string s = Text(Get(input, key));
    if (!s.empty()) return FirstLine(s);
  }
  return input.IsNull() ? std::string() : OneLine(Compact(input));
}

// Fields every hook payload repeats, or that the other columns show already.
bool Noise(std::string_view key) {
  static constexpr std::string_view kNoise[] = {"session_id",
                                                "transcript_path",
                                                "cwd",
                                                "hook_event_name",
                                                "permission_mode",
                                                "conversation_id",
                                                "generation_id",
                                                "workspace_roots",
                                                "user_email",
                                                "cursor_version",
                                                "timestamp",
                                                "turn_id",
                                                "thread-id",
                                                "turn-id",
                                                "tool_use_id",
                                                "prompt_id",
                                                "shell",
                                                "shell_version",
                                                "session",
                                                "pid",
                                                "ppid",
                                                "shlvl",
                                                "tty",
                                                "user",
                                                "host",
                                                "hist_id",
                                                "started_at_ns",
                                                "type"};
  for (std::string_view n : kNoise)
    if (key == n) return true;
  return false;
}

// key=value for the payload's short scalar fields.
std::string Fields(const rapidjson::Value& payload) {
  std::string out;
  for (auto it = payload.MemberBegin(); it != payload.MemberEnd(); ++it) {
    const std::string_view key(it->name.GetString(), it->name.GetStringLength());
    if (Noise(key) || it->value.IsObject() || it->value.IsArray()) continue;
    std::string value = it->value.IsString() ? FirstLine(Text(it->value)) : Compact(it->value);
    if (value.size() > 60) value = FitWidth(value, 60);
    if (!out.empty()) out += "  ";
    out += std::string(key) + "=" + value;
  }
  return out;
}

std::string ShellCommand(const rapidjson::Value& p) {
  const rapidjson::Value& status = Get(p, "exit_status");
  const rapidjson::Value& dur = Get(p, "duration_ns");
  std::string exit = status.IsInt64() ? "exit " + std::to_string(status.GetInt64()) : "exit ?";
  std::string took = dur.IsInt64() ? FormatDuration(dur.GetInt64()) : "-";
  exit.resize(std::max<size_t>(exit.size(), 8), ' ');
  const size_t w = DisplayWidth(took);
  if (w < 6) took.insert(0, 6 - w, ' ');
  return exit + took + "  " + FirstLine(Text(Get(p, "command")));
}

}  // namespace

EventView ViewOf(const rapidjson::Value& item) {
  EventView v;
  const rapidjson::Value& seq = Get(item, "seq");
  v.seq = seq.IsUint64() ? seq.GetUint64() : 0;
  v.ephemeral = Get(item, "ephemeral").IsTrue();
  const rapidjson::Value& ev = item["event"];
  const rapidjson::Value& ts = Get(ev, "ts");
  const rapidjson::Value& received = Get(item, "received");
  v.when_ns = ts.IsInt64() ? ts.GetInt64() : received.IsInt64() ? received.GetInt64() : 0;
  v.source = Text(Get(ev, "source"));
  v.kind = Text(Get(ev, "kind"));
  v.session = Text(Get(ev, "session"));
  const rapidjson::Value& payload = Get(ev, "payload");
  v.cwd = Text(Get(ev, "cwd"));
  if (v.cwd.empty()) v.cwd = Text(Get(payload, "cwd"));
  const rapidjson::Value& status = Get(payload, "exit_status");
  if (status.IsInt64() && Get(payload, "command").IsString()) {
    v.has_exit = true;
    v.exit = status.GetInt64();
  }
  return v;
}

std::string Summarize(const rapidjson::Value& event) {
  const rapidjson::Value& p = Get(event, "payload");
  if (p.IsString()) return FirstLine(Text(p));  // kept as text (payload_encoding)
  if (!p.IsObject()) return p.IsNull() ? std::string() : OneLine(Compact(p));
  if (Get(p, "command").IsString() && Get(p, "exit_status").IsInt64()) return ShellCommand(p);
  if (Get(p, "tool_name").IsString()) {
    std::string line = Text(Get(p, "tool_name"));
    const std::string input = ToolInput(Get(p, "tool_input"));
    if (!input.empty()) line += "  " + input;
    const std::string error = Text(Get(p, "error"));
    if (!error.empty()) line += "  error: " + FirstLine(error);
    return line;
  }
  for (const char* key : {"prompt", "message", "last_assistant_message", "last-assistant-message",
                          "text", "command", "file_path"}) {
    const std::string s = Text(Get(p, key));
    if (!s.empty()) return FirstLine(s);
  }
  return Fields(p);
}

std::string ShortLine(const EventView& v, const std::string& summary, const LineStyle& style) {
  struct Field {
    std::string text;
    const char* color;
  };
  auto pad = [](std::string s, size_t width) {
    s = FitWidth(s, width);
    const size_t w = DisplayWidth(s);
    if (w < width) s.append(width - w, ' ');
    return s;
  };
  std::string seq = v.ephemeral ? std::string("~") : std::to_string(v.seq);
  if (seq.size() < 7) seq.insert(0, 7 - seq.size(), ' ');
  const char* summary_color = nullptr;
  if (v.has_exit) summary_color = v.exit == 0 ? sgr::kGreen : sgr::kRed;
  const std::vector<Field> fields = {
      {FormatTime(v.when_ns, style.utc, true, false) + " ", sgr::kDim},
      {seq + " ", sgr::kDim},
      {pad(v.source.empty() ? "-" : v.source, 11) + " ", sgr::kCyan},
      {pad(v.kind.empty() ? "-" : v.kind, 16) + " ", sgr::kBold},
      {pad(v.session.empty() ? "-" : v.session.substr(0, 8), 8) + "  ", sgr::kYellow},
      {summary, summary_color},
  };
  std::string out;
  size_t left = style.width;
  for (const Field& f : fields) {
    std::string text = f.text;
    if (style.width > 0) {
      const size_t w = DisplayWidth(text);
      if (w > left) text = FitWidth(text, left);
      left -= std::min(left, DisplayWidth(text));
    }
    if (text.empty()) break;
    if (style.color && f.color) {
      out += f.color + text + sgr::kReset;
    } else {
      out += text;
    }
    if (style.width > 0 && left == 0) break;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace ferry::client
