#include "daemon/sink/spans.h"

#include <algorithm>
#include <array>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "proto/event.h"

namespace ferry {
namespace {

using Value = rapidjson::Value;

// The tool events, as tool_spans names them (daemon/store/schema.cc).
constexpr std::array<std::string_view, 5> kStartKinds = {
    "PreToolUse", "BeforeTool", "beforeShellExecution", "beforeMCPExecution", "preToolUse"};
constexpr std::array<std::string_view, 7> kEndKinds = {
    "PostToolUse",       "PostToolUseFailure", "AfterTool",         "afterShellExecution",
    "afterMCPExecution", "postToolUse",        "postToolUseFailure"};
// A session's end (daemon/store/session_rollup.cc).
constexpr std::array<std::string_view, 4> kSessionEndKinds = {"SessionEnd", "session_end",
                                                              "sessionEnd", "exit"};
constexpr size_t kMaxInputChars = 200;

template <size_t N>
bool OneOf(std::string_view s, const std::array<std::string_view, N>& set) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

const Value* Get(const Value* obj, const char* name) {
  if (obj == nullptr || !obj->IsObject()) return nullptr;
  auto it = obj->FindMember(name);
  return it == obj->MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
}

std::string Str(const Value* v) {
  return v != nullptr && v->IsString() ? std::string(v->GetString(), v->GetStringLength())
                                       : std::string();
}

std::string Compact(const Value& v) {
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  v.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

// A value as SQLite's json_extract gives it as text: a string unquoted, anything else JSON.
std::string Text(const Value& v) {
  return v.IsString() ? std::string(v.GetString(), v.GetStringLength()) : Compact(v);
}

// The first `n` characters (UTF-8 code points) of s.
std::string FirstChars(std::string s, size_t n) {
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && chars++ == n) {
      s.resize(i);
      break;
    }
  }
  return s;
}

bool Truthy(const Value* v) {
  if (v == nullptr) return false;
  if (v->IsBool()) return v->GetBool();
  if (v->IsNumber()) return v->GetDouble() != 0;
  return false;
}

// tool_spans' input column: what the call was about.
std::string InputSummary(const Value* payload) {
  const Value* in = Get(payload, "tool_input");
  for (const char* k : {"command", "file_path", "pattern", "url", "query", "description"}) {
    if (const Value* v = Get(in, k)) return FirstChars(Text(*v), kMaxInputChars);
  }
  if (in != nullptr) return FirstChars(Text(*in), kMaxInputChars);
  return FirstChars(Str(Get(payload, "command")), kMaxInputChars);
}

// tool_spans' output_bytes: the size of what the call returned; -1 when nothing.
int64_t OutputBytes(const Value* payload) {
  for (const char* k : {"tool_response", "error", "output", "result_json"}) {
    if (const Value* v = Get(payload, k)) return static_cast<int64_t>(Text(*v).size());
  }
  return -1;
}

struct Event {
  std::string_view kind;
  std::string source, session, cwd, id;
  const Value* payload = nullptr;
  int64_t ts = 0;
};

Event Read(const SinkEvent& e) {
  Event ev;
  auto sv = [](const Value* v) {
    return v != nullptr && v->IsString() ? std::string_view(v->GetString(), v->GetStringLength())
                                         : std::string_view();
  };
  ev.kind = sv(Get(e.envelope, "kind"));
  ev.source = sv(Get(e.envelope, "source"));
  ev.session = sv(Get(e.envelope, "session"));
  ev.cwd = sv(Get(e.envelope, "cwd"));
  ev.id = sv(Get(e.envelope, "id"));
  if (ev.id.empty()) ev.id = "seq:" + std::to_string(e.seq);
  ev.payload = Get(e.envelope, "payload");
  const Value* ts = Get(e.envelope, "ts");
  ev.ts = ts != nullptr && ts->IsInt64() ? ts->GetInt64() : e.received_ns;
  return ev;
}

class Planner {
 public:
  Planner(const SpanOptions& o, std::vector<PendingCall>* pending, std::vector<ToolSpan>* spans)
      : o_(o), pending_(*pending), spans_(*spans) {}

  void Add(size_t index, const SinkEvent& e) {
    index_ = index;
    while (!pending_.empty() && e.received_ns - pending_.front().received_ns > o_.span_timeout_ns) {
      Unfinished(pending_.begin());
    }
    const Event ev = Read(e);
    if (OneOf(ev.kind, kStartKinds)) {
      Start(ev, e);
    } else if (OneOf(ev.kind, kEndKinds)) {
      End(ev, e.seq);
    } else if (ev.kind == "command" && Get(ev.payload, "command") != nullptr &&
               Get(ev.payload, "command")->IsString()) {
      Shell(ev, e.seq);
    } else if (OneOf(ev.kind, kSessionEndKinds)) {
      for (size_t i = 0; i < pending_.size();) {
        if (pending_[i].source == ev.source && pending_[i].session == ev.session) {
          Unfinished(pending_.begin() + static_cast<ptrdiff_t>(i));
        } else {
          ++i;
        }
      }
    }
  }

  void FinishAll() {
    while (!pending_.empty()) Unfinished(pending_.begin());
  }

 private:
  static std::string Tool(const Event& ev) {
    std::string tool = Str(Get(ev.payload, "tool_name"));
    if (tool.empty() && ev.kind.ends_with("ShellExecution")) tool = "Shell";
    return tool;
  }

  static std::string Key(const Event& ev, const std::string& tool, std::string* use_id) {
    const Value* id = Get(ev.payload, "tool_use_id");
    if (id != nullptr && id->IsString()) {
      *use_id = Str(id);
      return "id:" + *use_id;
    }
    std::string input;
    if (const Value* in = Get(ev.payload, "tool_input")) {
      input = Text(*in);
    } else {
      input = Str(Get(ev.payload, "command"));
    }
    return "in:" + tool + '\x1f' + input;
  }

  std::vector<PendingCall>::iterator Find(const Event& ev, const std::string& key) {
    return std::find_if(pending_.begin(), pending_.end(), [&](const PendingCall& p) {
      return p.key == key && p.source == ev.source && p.session == ev.session;
    });
  }

  // A subagent's call: the latest pending Task/Agent call of the session that started it.
  std::string Parent(const Event& ev, const std::string& agent_type) const {
    for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
      if (it->source == ev.source && it->session == ev.session && it->agent_id.empty() &&
          (it->tool == "Task" || it->tool == "Agent") &&
          (agent_type.empty() || it->subagent_type == agent_type)) {
        return it->span_id;
      }
    }
    return {};
  }

  void Start(const Event& ev, const SinkEvent& e) {
    PendingCall p;
    p.tool = Tool(ev);
    p.key = Key(ev, p.tool, &p.tool_use_id);
    if (auto old = Find(ev, p.key); old != pending_.end()) Unfinished(old);
    if (pending_.size() >= o_.max_pending) Unfinished(pending_.begin());
    p.source = ev.source;
    p.session = ev.session;
    p.cwd = ev.cwd;
    p.trace_id = TraceId(ev.source, ev.session);
    p.span_id = SpanId(ev.source, ev.session,
                       p.tool_use_id.empty() ? "event:" + ev.id : "call:" + p.tool_use_id);
    p.input = InputSummary(ev.payload);
    p.agent_id = Str(Get(ev.payload, "agent_id"));
    p.agent_type = Str(Get(ev.payload, "agent_type"));
    if (!p.agent_id.empty()) p.parent_span_id = Parent(ev, p.agent_type);
    p.subagent_type = Str(Get(Get(ev.payload, "tool_input"), "subagent_type"));
    p.seq = e.seq;
    p.start_ns = ev.ts;
    p.received_ns = e.received_ns;
    pending_.push_back(std::move(p));
  }

  void End(const Event& ev, uint64_t seq) {
    const std::string tool = Tool(ev);
    std::string use_id;
    const std::string key = Key(ev, tool, &use_id);
    ToolSpan s;
    const std::string agent_id = Str(Get(ev.payload, "agent_id"));
    const std::string agent_type = Str(Get(ev.payload, "agent_type"));
    if (auto p = Find(ev, key); p != pending_.end()) {
      s = FromPending(*p);
      pending_.erase(p);
    } else {  // no start event: ferry was installed mid-call, or it was not recorded
      s.trace_id = TraceId(ev.source, ev.session);
      s.span_id =
          SpanId(ev.source, ev.session, use_id.empty() ? "event:" + ev.id : "call:" + use_id);
      s.name = tool.empty() ? std::string(ev.kind) : tool;
      s.source = ev.source;
      s.session = ev.session;
      s.cwd = ev.cwd;
      s.input = InputSummary(ev.payload);
      s.tool_use_id = use_id;
      s.start_ns = ev.ts;
    }
    if (s.agent_id.empty()) s.agent_id = agent_id;
    if (s.agent_type.empty()) s.agent_type = agent_type;
    if (s.parent_span_id.empty() && !s.agent_id.empty())
      s.parent_span_id = Parent(ev, s.agent_type);
    s.end_ns = ev.ts;
    s.end_seq = seq;
    s.output_bytes = OutputBytes(ev.payload);
    const Value* response = Get(ev.payload, "tool_response");
    if (ev.kind.ends_with("Failure")) {
      s.outcome = Truthy(Get(ev.payload, "is_interrupt")) ? "interrupted" : "failed";
    } else if (Truthy(Get(response, "interrupted"))) {
      s.outcome = "interrupted";
    } else if (const Value* err = Get(response, "error"); err != nullptr && !err->IsFalse()) {
      s.outcome = "failed";
    } else {
      s.outcome = "ok";
    }
    if (s.outcome != "ok") {
      std::string why = Str(Get(ev.payload, "error"));
      if (why.empty()) why = Str(Get(response, "error"));
      s.status_message = why.empty() ? s.outcome : FirstChars(std::move(why), kMaxInputChars);
    }
    Emit(std::move(s));
  }

  void Shell(const Event& ev, uint64_t seq) {
    ToolSpan s;
    s.trace_id = TraceId(ev.source, ev.session);
    s.span_id = SpanId(ev.source, ev.session, "event:" + ev.id);
    s.name = "shell";
    s.shell = true;
    s.source = ev.source;
    s.session = ev.session;
    s.cwd = ev.cwd;
    s.input = FirstChars(Str(Get(ev.payload, "command")), kMaxInputChars);
    const Value* duration = Get(ev.payload, "duration_ns");
    s.end_ns = ev.ts;
    s.start_ns = ev.ts - (duration != nullptr && duration->IsInt64() ? duration->GetInt64() : 0);
    s.start_seq = s.end_seq = seq;
    const Value* status = Get(ev.payload, "exit_status");
    if (status != nullptr && status->IsInt64()) {
      s.has_exit_status = true;
      s.exit_status = status->GetInt64();
      s.outcome = s.exit_status == 0 ? "ok" : "failed";
      if (s.exit_status != 0) s.status_message = "exit status " + std::to_string(s.exit_status);
    } else {
      s.outcome = "unknown";
    }
    Emit(std::move(s));
  }

  static ToolSpan FromPending(const PendingCall& p) {
    ToolSpan s;
    s.trace_id = p.trace_id;
    s.span_id = p.span_id;
    s.parent_span_id = p.parent_span_id;
    s.name = p.tool.empty() ? "unknown" : p.tool;
    s.source = p.source;
    s.session = p.session;
    s.cwd = p.cwd;
    s.input = p.input;
    s.tool_use_id = p.tool_use_id;
    s.agent_id = p.agent_id;
    s.agent_type = p.agent_type;
    s.start_ns = p.start_ns;
    s.start_seq = p.seq;
    return s;
  }

  // Finishes a pending call that never got its end event. Its end is unknown: end = start.
  void Unfinished(std::vector<PendingCall>::iterator it) {
    ToolSpan s = FromPending(*it);
    pending_.erase(it);
    s.end_ns = s.start_ns;
    s.outcome = "unfinished";
    Emit(std::move(s));
  }

  void Emit(ToolSpan s) {
    s.event = index_;
    spans_.push_back(std::move(s));
  }

  const SpanOptions& o_;
  std::vector<PendingCall>& pending_;
  std::vector<ToolSpan>& spans_;
  size_t index_ = 0;
};

}  // namespace

void PlanSpans(const SpanOptions& options, std::span<const SinkEvent> events, bool finish_all,
               std::vector<PendingCall>* pending, std::vector<ToolSpan>* spans) {
  Planner planner(options, pending, spans);
  for (size_t i = 0; i < events.size(); ++i) planner.Add(i, events[i]);
  if (finish_all) planner.FinishAll();
}

}  // namespace ferry
