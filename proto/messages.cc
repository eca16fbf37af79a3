#include "proto/messages.h"

#include <charconv>

#include <utility>

namespace ferry::proto {
namespace {

bool Fail(Error* error, Errc code, std::string message) {
  error->code = code;
  error->message = std::move(message);
  return false;
}

bool CheckVersion(const rapidjson::Value& obj, Error* error) {
  auto v = obj.FindMember("v");
  if (v == obj.MemberEnd()) {
    return Fail(error, Errc::kBadVersion, "missing protocol version field \"v\"");
  }
  if (!v->value.IsInt64() && !v->value.IsUint64()) {
    return Fail(error, Errc::kBadVersion, "protocol version field \"v\" must be an integer");
  }
  if (!v->value.IsUint() || v->value.GetUint() != kProtocolVersion) {
    const std::string got = v->value.IsInt64() ? std::to_string(v->value.GetInt64())
                                               : std::to_string(v->value.GetUint64());
    return Fail(error, Errc::kBadVersion,
                "protocol version " + got + " is not supported; this build speaks version " +
                    std::to_string(kProtocolVersion));
  }
  return true;
}

// The fields of a request body other than "v": `field(name, value)` returns kTaken, kRefused
// (with *error set) or kUnknown (refused here as an unknown field of `frame`).
enum class Field { kTaken, kRefused, kUnknown };

template <typename Fn>
bool ForEachField(const rapidjson::Document& doc, const char* frame, Error* error, Fn field) {
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    const std::string_view name(it->name.GetString(), it->name.GetStringLength());
    if (name == "v") continue;
    switch (field(name, it->value)) {
      case Field::kTaken:
        break;
      case Field::kRefused:
        return false;
      case Field::kUnknown:
        return Fail(error, Errc::kUnknownField,
                    "\"" + std::string(name) + "\" is not a field of " + frame);
    }
  }
  return true;
}

Field TakeString(std::string_view name, const rapidjson::Value& v, std::string* out, Error* error) {
  if (!v.IsString()) {
    Fail(error, Errc::kWrongType, std::string(name) + " must be a string");
    return Field::kRefused;
  }
  out->assign(v.GetString(), v.GetStringLength());
  return Field::kTaken;
}

Field TakeBool(std::string_view name, const rapidjson::Value& v, bool* out, Error* error) {
  if (!v.IsBool()) {
    Fail(error, Errc::kWrongType, std::string(name) + " must be a boolean");
    return Field::kRefused;
  }
  *out = v.GetBool();
  return Field::kTaken;
}

Field TakeUint(std::string_view name, const rapidjson::Value& v, uint64_t* out, Error* error) {
  if (!v.IsUint64()) {
    Fail(error, Errc::kWrongType, std::string(name) + " must be an unsigned integer");
    return Field::kRefused;
  }
  *out = v.GetUint64();
  return Field::kTaken;
}

// {"v":1, ...what `fields` writes...}
template <typename Fn>
std::string VersionedBody(Fn fields) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("v");
  w.Uint(kProtocolVersion);
  fields(w);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

void PutString(JsonWriter& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

}  // namespace

bool ParseVersionedRequest(std::string_view body, rapidjson::Document* doc, Error* error) {
  if (!ParseJson(body, doc, error)) return false;
  if (!doc->IsObject()) return Fail(error, Errc::kNotObject, "frame body must be a JSON object");
  return CheckVersion(*doc, error);
}

bool EventRequest::Parse(FrameType type, std::string_view body, size_t max_batch_events,
                         Error* error) {
  single_ = nullptr;
  array_ = nullptr;
  durable_ = false;
  ephemeral_ = false;
  // Without this, a connection that streams events through one EventRequest would keep every
  // body it ever parsed.
  RecycleDocument(&doc_, 0);
  body_ = body;
  // The envelopes: {"event":{...}} or {"events":[{...}]}.
  if (!ParseEnvelopes(body, type == FrameType::kEventBatch ? 3 : 2, &doc_, &spans_, error))
    return false;
  if (!doc_.IsObject()) return Fail(error, Errc::kNotObject, "frame body must be a JSON object");
  if (!CheckVersion(doc_, error)) return false;
  bool seen_v = false, seen_durable = false, seen_ephemeral = false;
  for (auto it = doc_.MemberBegin(); it != doc_.MemberEnd(); ++it) {
    const std::string_view name(it->name.GetString(), it->name.GetStringLength());
    // Repeated fields are refused rather than resolved: first-wins and last-wins readers
    // would see different requests.
    const bool repeated = (name == "v" && std::exchange(seen_v, true)) ||
                          (name == "durable" && std::exchange(seen_durable, true)) ||
                          (name == "ephemeral" && std::exchange(seen_ephemeral, true)) ||
                          (name == "event" && single_) || (name == "events" && array_);
    if (repeated) {
      return Fail(error, Errc::kBadValue, "\"" + std::string(name) + "\" appears more than once");
    }
    if (name == "v") continue;
    if (name == "durable") {
      if (!it->value.IsBool()) return Fail(error, Errc::kWrongType, "durable must be a boolean");
      durable_ = it->value.GetBool();
    } else if (name == "ephemeral") {
      if (!it->value.IsBool()) return Fail(error, Errc::kWrongType, "ephemeral must be a boolean");
      ephemeral_ = it->value.GetBool();
    } else if (name == "event" && type == FrameType::kEvent) {
      single_ = &it->value;
    } else if (name == "events" && type == FrameType::kEventBatch) {
      array_ = &it->value;
    } else {
      return Fail(error, Errc::kUnknownField,
                  "\"" + std::string(name) + "\" is not a field of " + FrameTypeName(type));
    }
  }
  if (durable_ && ephemeral_) {
    return Fail(error, Errc::kBadValue,
                "an event cannot be both durable and ephemeral (an ephemeral event is never "
                "written to the journal)");
  }
  if (type == FrameType::kEvent) {
    if (!single_) return Fail(error, Errc::kMissingField, "EVENT needs an \"event\" object");
    if (!ValidateEnvelope(*single_, "event", error)) return false;
    // The envelope is the only object at depth 2 (any other member was refused above).
    if (spans_.size() != 1)
      return Fail(error, Errc::kInternal, "event: payload bookkeeping is off");
    return true;
  }
  if (type != FrameType::kEventBatch) {
    return Fail(error, Errc::kUnexpectedType, "not an event frame");
  }
  if (!array_) return Fail(error, Errc::kMissingField, "EVENT_BATCH needs an \"events\" array");
  if (!array_->IsArray()) return Fail(error, Errc::kWrongType, "events must be an array");
  if (array_->Empty()) return Fail(error, Errc::kBadValue, "events is empty");
  if (array_->Size() > max_batch_events) {
    return Fail(error, Errc::kTooManyEvents,
                "batch holds " + std::to_string(array_->Size()) + " events; the limit is " +
                    std::to_string(max_batch_events));
  }
  std::string where;
  for (rapidjson::SizeType i = 0; i < array_->Size(); ++i) {
    where = "events[" + std::to_string(i) + "]";
    if (!ValidateEnvelope((*array_)[i], where, error)) return false;
  }
  if (spans_.size() != array_->Size()) {  // every element is an object, each one a span
    return Fail(error, Errc::kInternal, "events: payload bookkeeping is off");
  }
  return true;
}

std::string_view EventRequest::event_json(size_t i) const {
  if (i >= spans_.size() || spans_[i].object_end <= spans_[i].object_begin) return {};
  return body_.substr(spans_[i].object_begin, spans_[i].object_end - spans_[i].object_begin);
}

std::string_view EventRequest::AsReceived(size_t i) const {
  if (payload_too_deep(i)) return {};
  const std::string_view object = event_json(i);
  return WritesAsReceived(at(i), object, payload_json(i)) ? object : std::string_view();
}

std::string_view EventRequest::payload_json(size_t i) const {
  if (i >= spans_.size() || !spans_[i].present()) return {};
  return body_.substr(spans_[i].begin, spans_[i].end - spans_[i].begin);
}

bool EventRequest::payload_too_deep(size_t i) const {
  return i < spans_.size() && spans_[i].too_deep;
}

void EventRequest::WriteEnvelope(size_t i, JsonWriter& writer, std::string_view relabel) const {
  proto::WriteEnvelope(at(i), writer, payload_json(i), payload_too_deep(i), relabel);
}

std::string MakeAckBody(const Ack& ack) {
  // Formatted by hand: one ACK goes out per event on the hot path.
  char num[24];
  auto append_number = [&](std::string& out, uint64_t v) {
    out.append(num, static_cast<size_t>(std::to_chars(num, num + sizeof num, v).ptr - num));
  };
  std::string out;
  out.reserve(80);
  out += "{\"first_seq\":";
  append_number(out, ack.first_seq);
  out += ",\"last_seq\":";
  append_number(out, ack.last_seq);
  out += ack.durable ? ",\"durable\":true" : ",\"durable\":false";
  if (ack.ephemeral) {
    out += ",\"ephemeral\":true,\"tails\":";
    append_number(out, ack.tails);
  }
  out += '}';
  return out;
}

bool ParseAckBody(std::string_view body, Ack* ack, Error* error) {
  StackDocument<1024> stack_doc;  // an ACK is a few dozen bytes
  rapidjson::Document& doc = stack_doc.doc();
  if (!ParseJson(body, &doc, error)) return false;
  if (!doc.IsObject()) return Fail(error, Errc::kNotObject, "ACK body must be an object");
  auto first = doc.FindMember("first_seq");
  auto last = doc.FindMember("last_seq");
  if (first == doc.MemberEnd() || last == doc.MemberEnd() || !first->value.IsUint64() ||
      !last->value.IsUint64()) {
    return Fail(error, Errc::kMissingField, "ACK needs integer first_seq and last_seq");
  }
  ack->first_seq = first->value.GetUint64();
  ack->last_seq = last->value.GetUint64();
  auto durable = doc.FindMember("durable");
  ack->durable = durable != doc.MemberEnd() && durable->value.IsBool() && durable->value.GetBool();
  auto ephemeral = doc.FindMember("ephemeral");
  ack->ephemeral =
      ephemeral != doc.MemberEnd() && ephemeral->value.IsBool() && ephemeral->value.GetBool();
  auto tails = doc.FindMember("tails");
  ack->tails = ack->ephemeral && tails != doc.MemberEnd() && tails->value.IsUint64()
                   ? tails->value.GetUint64()
                   : 0;
  return true;
}

std::string MakeErrorBody(const Error& error, bool fatal) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("code");
  w.String(ErrcName(error.code));
  w.Key("message");
  w.String(error.message.data(), static_cast<rapidjson::SizeType>(error.message.size()));
  w.Key("fatal");
  w.Bool(fatal);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

bool ParseErrorBody(std::string_view body, Error* out) {
  rapidjson::Document doc;
  Error ignored;
  if (!ParseJson(body, &doc, &ignored) || !doc.IsObject()) return false;
  auto code = doc.FindMember("code");
  auto message = doc.FindMember("message");
  out->code = Errc::kInternal;
  if (code != doc.MemberEnd() && code->value.IsString()) {
    const std::string_view name(code->value.GetString(), code->value.GetStringLength());
    for (int c = 0; c <= static_cast<int>(Errc::kInternal); ++c) {
      if (name == ErrcName(static_cast<Errc>(c))) out->code = static_cast<Errc>(c);
    }
  }
  out->message = message != doc.MemberEnd() && message->value.IsString()
                     ? std::string(message->value.GetString(), message->value.GetStringLength())
                     : std::string("(no message)");
  return true;
}

std::string MakeStatusRequestBody() { return "{\"v\":1}"; }

std::string MakeQueryRequestBody(const QueryRequest& request) {
  return VersionedBody([&](JsonWriter& w) {
    PutString(w, "sql", request.sql);
    if (request.limit > 0) {
      w.Key("limit");
      w.Uint64(request.limit);
    }
  });
}

bool ParseQueryRequestBody(std::string_view body, QueryRequest* request, Error* error) {
  rapidjson::Document doc;
  if (!ParseVersionedRequest(body, &doc, error)) return false;
  auto sql = doc.FindMember("sql");
  if (sql == doc.MemberEnd() || !sql->value.IsString()) {
    return Fail(error, Errc::kMissingField, "QUERY_REQ needs a \"sql\" string");
  }
  request->sql.assign(sql->value.GetString(), sql->value.GetStringLength());
  request->limit = 0;
  auto limit = doc.FindMember("limit");
  if (limit != doc.MemberEnd()) {
    if (!limit->value.IsUint64()) {
      return Fail(error, Errc::kWrongType, "limit must be a non-negative integer");
    }
    request->limit = limit->value.GetUint64();
  }
  return true;
}

bool ParseTailRequest(std::string_view body, TailRequest* request, Error* error) {
  rapidjson::Document doc;
  if (!ParseVersionedRequest(body, &doc, error)) return false;
  *request = TailRequest();
  return ForEachField(doc, "TAIL_REQ", error,
                      [&](std::string_view name, const rapidjson::Value& v) {
                        if (name == "from") return TakeUint(name, v, &request->from, error);
                        if (name == "last") return TakeUint(name, v, &request->last, error);
                        if (name == "follow") return TakeBool(name, v, &request->follow, error);
                        if (name == "source") return TakeString(name, v, &request->source, error);
                        if (name == "kind") return TakeString(name, v, &request->kind, error);
                        return Field::kUnknown;
                      });
}

std::string MakeTailRequestBody(const TailRequest& request) {
  return VersionedBody([&](JsonWriter& w) {
    if (request.from > 0) {
      w.Key("from");
      w.Uint64(request.from);
    } else {
      w.Key("last");
      w.Uint64(request.last);
    }
    w.Key("follow");
    w.Bool(request.follow);
    if (!request.source.empty()) PutString(w, "source", request.source);
    if (!request.kind.empty()) PutString(w, "kind", request.kind);
  });
}

bool ParseFlushRequestBody(std::string_view body, FlushRequest* request, Error* error) {
  rapidjson::Document doc;
  if (!ParseVersionedRequest(body, &doc, error)) return false;
  *request = FlushRequest();
  return ForEachField(doc, "FLUSH_REQ", error,
                      [&](std::string_view name, const rapidjson::Value& v) {
                        if (name == "sink") return TakeString(name, v, &request->sink, error);
                        if (name == "wait") return TakeBool(name, v, &request->wait, error);
                        if (name == "timeout_ms")
                          return TakeUint(name, v, &request->timeout_ms, error);
                        return Field::kUnknown;
                      });
}

std::string MakeFlushRequestBody(const FlushRequest& request) {
  return VersionedBody([&](JsonWriter& w) {
    if (!request.sink.empty()) PutString(w, "sink", request.sink);
    w.Key("wait");
    w.Bool(request.wait);
    if (request.timeout_ms > 0) {
      w.Key("timeout_ms");
      w.Uint64(request.timeout_ms);
    }
  });
}

bool ParseDeadletterRequestBody(std::string_view body, DeadletterRequest* request, Error* error) {
  rapidjson::Document doc;
  if (!ParseVersionedRequest(body, &doc, error)) return false;
  *request = DeadletterRequest();
  const bool ok = ForEachField(doc, "DEADLETTER_REQ", error,
                               [&](std::string_view name, const rapidjson::Value& v) {
                                 if (name == "sink")
                                   return TakeString(name, v, &request->sink, error);
                                 if (name == "op") return TakeString(name, v, &request->op, error);
                                 return Field::kUnknown;
                               });
  if (!ok) return false;
  if (request->op != "list" && request->op != "replay" && request->op != "purge") {
    return Fail(error, request->op.empty() ? Errc::kMissingField : Errc::kBadValue,
                "op must be \"list\", \"replay\" or \"purge\"");
  }
  return true;
}

std::string MakeDeadletterRequestBody(const DeadletterRequest& request) {
  return VersionedBody([&](JsonWriter& w) {
    PutString(w, "op", request.op);
    if (!request.sink.empty()) PutString(w, "sink", request.sink);
  });
}

std::string MakeDeadletterListResultBody(const std::vector<DeadletterListEntry>& sinks) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("op");
  w.String("list");
  w.Key("sinks");
  w.StartArray();
  for (const DeadletterListEntry& e : sinks) {
    w.StartObject();
    PutString(w, "name", e.name);
    w.Key("count");
    w.Uint64(e.count);
    w.Key("skipped");
    w.Uint64(e.skipped);
    w.Key("replaying");
    w.Uint64(e.replaying);
    w.Key("truncated");
    w.Bool(e.truncated);
    w.Key("letters");
    w.StartArray();
    for (const std::string& letter : e.letters) {
      w.RawValue(letter.data(), letter.size(), rapidjson::kObjectType);
    }
    w.EndArray();
    if (!e.error.empty()) PutString(w, "error", e.error);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

namespace {

bool ParseListEntry(const rapidjson::Value& s, DeadletterListEntry* e, Error* error) {
  if (!s.IsObject()) return Fail(error, Errc::kBadValue, "sinks[] must hold objects");
  auto str = [&](const char* key, std::string* out) {
    auto it = s.FindMember(key);
    if (it != s.MemberEnd() && it->value.IsString()) {
      out->assign(it->value.GetString(), it->value.GetStringLength());
    }
  };
  auto num = [&](const char* key, uint64_t* out) {
    auto it = s.FindMember(key);
    if (it != s.MemberEnd() && it->value.IsUint64()) *out = it->value.GetUint64();
  };
  str("name", &e->name);
  str("error", &e->error);
  num("count", &e->count);
  num("skipped", &e->skipped);
  num("replaying", &e->replaying);
  auto t = s.FindMember("truncated");
  e->truncated = t != s.MemberEnd() && t->value.IsBool() && t->value.GetBool();
  auto letters = s.FindMember("letters");
  if (letters == s.MemberEnd() || !letters->value.IsArray()) {
    return Fail(error, Errc::kMissingField, "sinks[].letters must be an array");
  }
  for (const auto& letter : letters->value.GetArray()) {
    if (!letter.IsObject()) return Fail(error, Errc::kBadValue, "a letter must be an object");
    rapidjson::StringBuffer sb;
    JsonWriter w(sb);
    letter.Accept(w);
    e->letters.emplace_back(sb.GetString(), sb.GetSize());
  }
  return true;
}

}  // namespace

bool ParseDeadletterListResultBody(std::string_view body, std::vector<DeadletterListEntry>* sinks,
                                   Error* error) {
  sinks->clear();
  rapidjson::Document doc;
  if (!ParseJson(body, &doc, error)) return false;
  if (!doc.IsObject()) return Fail(error, Errc::kNotObject, "DEADLETTER_RESULT must be an object");
  auto op = doc.FindMember("op");
  if (op == doc.MemberEnd() || !op->value.IsString() ||
      std::string_view(op->value.GetString()) != "list") {
    return Fail(error, Errc::kBadValue, "not the result of op \"list\"");
  }
  auto arr = doc.FindMember("sinks");
  if (arr == doc.MemberEnd() || !arr->value.IsArray()) {
    return Fail(error, Errc::kMissingField, "\"sinks\" must be an array");
  }
  for (const auto& s : arr->value.GetArray()) {
    DeadletterListEntry e;
    if (!ParseListEntry(s, &e, error)) return false;
    sinks->push_back(std::move(e));
  }
  return true;
}

}  // namespace ferry::proto
