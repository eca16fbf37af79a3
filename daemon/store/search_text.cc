#include "daemon/store/search_text.h"

#include <initializer_list>

#include "daemon/store/record_scan.h"
#include "proto/event.h"
#include "proto/json_stream.h"

namespace ferry::store {
namespace {

constexpr std::string_view kPromptKinds[] = {"UserPromptSubmit", "BeforeAgent",
                                             "beforeSubmitPrompt", "userPromptSubmitted"};
constexpr std::string_view kToolKinds[] = {"PreToolUse",           "BeforeTool",
                                           "beforeShellExecution", "beforeMCPExecution",
                                           "preToolUse",           "afterFileEdit"};
constexpr std::string_view kOutputKinds[] = {
    "PostToolUse",       "PostToolUseFailure", "AfterTool",         "afterShellExecution",
    "afterMCPExecution", "postToolUse",        "postToolUseFailure"};

template <size_t N>
bool In(std::string_view kind, const std::string_view (&list)[N]) {
  for (std::string_view k : list)
    if (k == kind) return true;
  return false;
}

// The string at obj.key, or nullptr.
const rapidjson::Value* StringAt(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsString() ? &it->value : nullptr;
}

const rapidjson::Value* At(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() ? &it->value : nullptr;
}

const rapidjson::Value* FirstString(const rapidjson::Value& obj,
                                    std::initializer_list<const char*> keys) {
  for (const char* key : keys)
    if (const rapidjson::Value* v = StringAt(obj, key)) return v;
  return nullptr;
}

void Append(std::string* text, const rapidjson::Value& s) {
  if (text->size() >= kMaxSearchText) return;
  // One byte over the cap at most, so that Cap sees where the cut falls.
  text->append(s.GetString(), std::min<size_t>(s.GetStringLength(), kMaxSearchText + 1));
}

// Every string value under `v`, in document order, one per line (until the cap).
void Strings(const rapidjson::Value& v, std::string* text, int depth = 0) {
  if (text->size() >= kMaxSearchText || depth > 32) return;
  if (v.IsString()) {
    if (v.GetStringLength() == 0) return;
    if (!text->empty()) text->push_back('\n');
    Append(text, v);
  } else if (v.IsObject()) {
    for (const auto& m : v.GetObject()) Strings(m.value, text, depth + 1);
  } else if (v.IsArray()) {
    for (const auto& e : v.GetArray()) Strings(e, text, depth + 1);
  }
}

void ToolText(std::string_view kind, const rapidjson::Value& p, std::string* text) {
  if (const rapidjson::Value* name = FirstString(p, {"tool_name", "toolName"})) {
    Append(text, *name);
  } else if (kind == "beforeShellExecution") {
    text->append("Shell");
  } else if (kind == "afterFileEdit") {
    text->append("Edit");
  }
  if (!text->empty()) text->append(": ");
  const rapidjson::Value* input = At(p, "tool_input");
  const rapidjson::Value* summary =
      input ? FirstString(*input, {"command", "file_path", "pattern", "url", "query", "prompt"})
            : nullptr;
  if (summary) {
    Append(text, *summary);
  } else if (input && input->IsString()) {
    Append(text, *input);
  } else if (input && (input->IsObject() || input->IsArray())) {
    std::string values;
    Strings(*input, &values);
    text->append(values);
  } else if (const rapidjson::Value* other = FirstString(p, {"toolArgs", "command", "file_path"})) {
    Append(text, *other);
  }
  if (input) {
    if (const rapidjson::Value* d = StringAt(*input, "description"); d && summary) {
      text->push_back('\n');
      Append(text, *d);
    }
  }
}

void OutputText(const rapidjson::Value& p, std::string* text) {
  const rapidjson::Value* r = At(p, "tool_response");
  if (r && r->IsString()) return Append(text, *r);
  if (r && r->IsObject()) {
    if (const rapidjson::Value* out = StringAt(*r, "stdout")) {
      Append(text, *out);
      if (const rapidjson::Value* err = StringAt(*r, "stderr"); err && err->GetStringLength()) {
        text->push_back('\n');
        Append(text, *err);
      }
      return;
    }
    const rapidjson::Value* file = At(*r, "file");
    const rapidjson::Value* v = FirstString(*r, {"llmContent", "output", "result"});
    if (!v && file) v = StringAt(*file, "content");
    if (v) return Append(text, *v);
  }
  if (r && (r->IsObject() || r->IsArray())) return Strings(*r, text);
  if (const rapidjson::Value* v = FirstString(p, {"error", "output", "result_json"})) {
    return Append(text, *v);
  }
  if (const rapidjson::Value* result = At(p, "toolResult")) {
    if (const rapidjson::Value* v = StringAt(*result, "textResultForLlm")) Append(text, *v);
  }
}

// Cuts *text to kMaxSearchText bytes, back to the start of a UTF-8 character.
void Cap(std::string* text) {
  if (text->size() <= kMaxSearchText) return;
  size_t n = kMaxSearchText;
  while (n > 0 && (static_cast<unsigned char>((*text)[n]) & 0xc0) == 0x80) --n;
  text->resize(n);
}

}  // namespace

SearchIndexer::SearchIndexer(sqlite3* db, bool enabled)
    : put_(db, "INSERT INTO search(rowid, origin, kind, text) VALUES(?, 'events', ?, ?)"),
      put_message_(db,
                   "INSERT INTO search(rowid, origin, kind, text) "
                   "VALUES(?, 'transcripts', 'assistant', ?)"),
      enabled_(enabled) {}

void SearchIndexer::AddMessage(int64_t id, std::string_view role, std::string_view text) {
  if (!enabled_ || role != "assistant" || text.empty()) return;
  text_.assign(text);
  Cap(&text_);
  put_message_.Reset();
  put_message_.Int64(1, -id);
  put_message_.Text(2, text_);
  put_message_.Step();
  put_message_.Reset();
}

void SearchIndexer::Add(int64_t seq, std::string_view event_kind, std::string_view payload) {
  const char* what = SearchKindOf(event_kind);
  if (!enabled_ || !what || payload.empty()) return;
  // One document for every payload: its pool is cleared once it holds over kKeepParsePool
  // (it kept every payload of a 1,000,000-event catch-up, 130 MB, before).
  proto::RecycleDocument(&doc_, kKeepParsePool);
  proto::JsonStream stream(payload);  // strings read 16 bytes at a time
  doc_.ParseStream(stream);
  if (doc_.HasParseError() || !SearchText(event_kind, doc_, &text_)) return;
  put_.Reset();
  put_.Int64(1, seq);
  put_.Text(2, what);
  put_.Text(3, text_);
  put_.Step();
  put_.Reset();
}

void SearchIndexer::Trim() {
  std::string().swap(text_);
  rapidjson::Document().Swap(doc_);
}

const char* SearchKindOf(std::string_view kind) {
  if (In(kind, kPromptKinds)) return "prompt";
  if (In(kind, kToolKinds)) return "tool";
  if (In(kind, kOutputKinds)) return "output";
  if (kind == "command") return "shell";
  return nullptr;
}

bool SearchText(std::string_view kind, const rapidjson::Value& payload, std::string* text) {
  text->clear();
  const char* what = SearchKindOf(kind);
  if (!what || !payload.IsObject()) return false;
  const std::string_view k = what;
  if (k == "prompt") {
    if (const rapidjson::Value* v = StringAt(payload, "prompt")) Append(text, *v);
  } else if (k == "tool") {
    ToolText(kind, payload, text);
  } else if (k == "output") {
    OutputText(payload, text);
  } else if (const rapidjson::Value* v = StringAt(payload, "command")) {
    Append(text, *v);
  }
  Cap(text);
  return !text->empty();
}

}  // namespace ferry::store
