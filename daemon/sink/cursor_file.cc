#include "daemon/sink/cursor_file.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "daemon/base/file_util.h"

namespace ferry::sink {

Status LoadCursor(const std::string& path, uint64_t oldest_seq, uint64_t written_seq,
                  CursorState* state, bool* found, bool* reset) {
  const uint64_t start = oldest_seq > 0 ? oldest_seq - 1 : 0;
  *state = CursorState{start, 0, 0, {}};
  *reset = false;
  std::string text;
  *found = ReadWholeFile(path, &text);
  if (!*found) return Status::Ok();
  rapidjson::Document d;
  d.Parse(text.data(), text.size());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("cursor") || !d["cursor"].IsUint64()) {
    return Status::Corruption(path +
                              ": not a sink cursor file (expected {\"cursor\":N,...}); "
                              "move it aside to resend from the journal's oldest event");
  }
  state->cursor = d["cursor"].GetUint64();
  if (d.HasMember("inflight_first") && d["inflight_first"].IsUint64() &&
      d.HasMember("inflight_last") && d["inflight_last"].IsUint64()) {
    state->inflight_first = d["inflight_first"].GetUint64();
    state->inflight_last = d["inflight_last"].GetUint64();
    if (state->inflight_first != state->cursor + 1 ||
        state->inflight_last < state->inflight_first) {
      state->inflight_first = state->inflight_last = 0;
    }
  }
  if (auto it = d.FindMember("pending_spans"); it != d.MemberEnd() && it->value.IsArray()) {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    it->value.Accept(w);
    state->pending_spans.assign(sb.GetString(), sb.GetSize());
  }
  if (state->cursor > written_seq) {
    *reset = true;
    *state = CursorState{start, 0, 0, {}};
  }
  return Status::Ok();
}

Status SaveCursor(const std::string& path, const CursorState& state, bool durable) {
  std::string text = "{\"cursor\":" + std::to_string(state.cursor);
  if (state.inflight_last > 0) {
    text += ",\"inflight_first\":" + std::to_string(state.inflight_first) +
            ",\"inflight_last\":" + std::to_string(state.inflight_last);
  }
  if (!state.pending_spans.empty()) text += ",\"pending_spans\":" + state.pending_spans;
  text += "}\n";
  return WriteFileAtomically(path, text, durable);
}

}  // namespace ferry::sink
