#include "daemon/ingest/source_classify.h"

#include "proto/event.h"

namespace ferry {
namespace {

bool HasString(const rapidjson::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  return it != obj.MemberEnd() && it->value.IsString();
}

std::string_view Str(const rapidjson::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

const rapidjson::Value* Payload(const rapidjson::Value& event) {
  auto it = event.FindMember("payload");
  return it == event.MemberEnd() ? nullptr : &it->value;
}

}  // namespace

bool IsCursorPayload(const rapidjson::Value& payload) {
  if (!payload.IsObject()) return false;
  if (HasString(payload, "cursor_version")) return true;
  auto roots = payload.FindMember("workspace_roots");
  return HasString(payload, "conversation_id") && HasString(payload, "generation_id") &&
         roots != payload.MemberEnd() && roots->value.IsArray();
}

std::string_view RelabelSource(const rapidjson::Value& event) {
  if (Str(event, "source") != "claude-code" || event.HasMember("source_claimed")) return {};
  const rapidjson::Value* payload = Payload(event);
  if (!payload || !IsCursorPayload(*payload)) return {};
  return "cursor";
}

void MakeTwinProbe(const rapidjson::Value& event, std::string_view payload_json, TwinProbe* probe) {
  probe->key.clear();
  probe->relabelled = !RelabelSource(event).empty();
  const bool native = Str(event, "source") == "cursor" && !event.HasMember("source_claimed");
  if (!probe->relabelled && !native) return;
  const rapidjson::Value* payload = Payload(event);
  if (!payload || !IsCursorPayload(*payload) || payload_json.empty()) return;
  auto ts = event.FindMember("ts");
  probe->ts = ts != event.MemberEnd() && ts->value.IsInt64() ? ts->value.GetInt64() : 0;
  const std::string_view kind = Str(event, "kind"), session = Str(event, "session");
  probe->key.reserve(kind.size() + session.size() + payload_json.size() + 2);
  probe->key.append(kind).append(1, '\0').append(session).append(1, '\0');
  probe->key.append(proto::CompactJson(payload_json));
}

}  // namespace ferry
