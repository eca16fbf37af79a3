#include "daemon/store/session_rollup.h"

#include <algorithm>

namespace ferry::store {
namespace {

std::string KindsJson(const KindCounts& kinds) {
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  w.StartObject();
  for (const auto& [k, n] : kinds) {
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    w.Int64(n);
  }
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

void ParseKinds(const std::string& text, KindCounts* kinds) {
  rapidjson::Document doc;
  proto::Error ignored;
  if (!proto::ParseJson(text, &doc, &ignored) || !doc.IsObject()) return;
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    if (it->value.IsInt64()) {
      (*kinds)[std::string(it->name.GetString(), it->name.GetStringLength())] +=
          it->value.GetInt64();
    }
  }
}

}  // namespace

bool IsEndKind(std::string_view kind) {
  return kind == "SessionEnd" || kind == "session_end" || kind == "sessionEnd" || kind == "exit";
}

bool IsFailureKind(std::string_view kind) {
  return kind.size() >= 7 && kind.substr(kind.size() - 7) == "Failure";
}

bool IsFailurePayload(const rapidjson::Value* payload) {
  if (!payload || !payload->IsObject()) return false;
  for (const char* key : {"exit_status", "exit_code", "exitCode"}) {
    auto it = payload->FindMember(key);
    if (it != payload->MemberEnd() && it->value.IsNumber() && it->value.GetDouble() != 0) {
      return true;
    }
  }
  return false;
}

void MergeSession(RawStatement& get, RawStatement& put, SessionDelta& d, int64_t* opened) {
  get.Reset();
  get.Text(1, d.source);
  get.Text(2, d.session);
  int64_t ended = INT64_MIN;
  std::string reason;
  bool was_open = false;
  if (get.Step()) {
    was_open = get.ColumnNull(5);
    d.first_ts = std::min(d.first_ts, get.ColumnInt64(0));
    const int64_t old_last = get.ColumnInt64(1);
    d.events += get.ColumnInt64(2);
    ParseKinds(get.ColumnText(3), &d.kinds);
    d.failures += get.ColumnInt64(4);
    if (!get.ColumnNull(5)) {
      ended = get.ColumnInt64(5);
      reason = get.ColumnText(6);
    }
    // An idle-closed session that speaks again was not over after all.
    if (reason == "idle" && d.last_ts > old_last) ended = INT64_MIN;
    d.last_ts = std::max(d.last_ts, old_last);
  }
  get.Reset();
  if (d.end_ts != INT64_MIN) {
    ended = std::max(ended == INT64_MIN ? d.end_ts : ended, d.end_ts);
    reason = "end";
  }
  if (opened) *opened = (ended == INT64_MIN ? 1 : 0) - (was_open ? 1 : 0);
  const std::string kinds = KindsJson(d.kinds);
  put.Reset();
  put.Text(1, d.source);
  put.Text(2, d.session);
  put.Int64(3, d.first_ts);
  put.Int64(4, d.last_ts);
  put.Int64(5, d.events);
  put.Text(6, kinds);
  put.Int64(7, d.failures);
  if (ended != INT64_MIN) {
    put.Int64(8, ended);
    put.Text(9, reason);
  }
  put.Step();
  put.Reset();
}

}  // namespace ferry::store
