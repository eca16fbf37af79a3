#include "daemon/store/transcript_rows.h"

#include <utility>

#include "proto/event.h"

namespace ferry {

bool IsTranscriptTrigger(std::string_view kind) {
  return kind == "Stop" || kind == "SubagentStop" || kind == "PreCompact" || kind == "SessionEnd" ||
         kind == "AfterAgent" || kind == "PreCompress";
}

namespace store {

const char* const kTranscriptMessagesMigration =
    "CREATE TABLE transcript_messages ("
    "  id INTEGER PRIMARY KEY,"
    "  source TEXT,"
    "  session TEXT,"
    "  ts INTEGER,"
    "  role TEXT,"
    "  text TEXT);"
    "CREATE INDEX transcript_messages_session ON transcript_messages(source, session);";

TranscriptRows::TranscriptRows(sqlite3* db)
    : insert_(db,
              "INSERT INTO transcript_messages(source, session, ts, role, text) "
              "VALUES(?,?,?,?,?)") {}

void TranscriptRows::Collect(const ScannedEnvelope& e) {
  if (!IsTranscriptTrigger(e.kind) || e.session.empty() || !e.has_payload) return;
  rapidjson::Document doc;
  proto::Error error;
  if (!proto::ParseJson(e.payload, &doc, &error) || !doc.IsObject()) return;
  TranscriptTrigger t;
  for (const char* key : {"transcript_path", "agent_transcript_path"}) {
    auto it = doc.FindMember(key);
    if (it == doc.MemberEnd() || !it->value.IsString()) continue;
    std::string path(it->value.GetString(), it->value.GetStringLength());
    if (!path.empty()) t.paths.push_back(std::move(path));  // the worker checks the rest
  }
  if (t.paths.empty()) return;
  t.source.assign(e.source);
  t.session.assign(e.session);
  triggers_.push_back(std::move(t));
}

void TranscriptRows::InsertFrom(TranscriptInbox* inbox, SearchIndexer* search) {
  if (!inbox) return;
  taken_ = inbox->Take();
  for (const TranscriptMessage& m : taken_) {
    insert_.Reset();
    insert_.Text(1, m.source);
    insert_.Text(2, m.session);
    if (m.ts != 0) insert_.Int64(3, m.ts);
    insert_.Text(4, m.role);
    insert_.Text(5, m.text);
    insert_.Step();
    if (search) search->AddMessage(insert_.LastInsertRowid(), m.role, m.text);
  }
  insert_.Reset();
}

void TranscriptRows::Abort(TranscriptInbox* inbox) {
  insert_.Reset();
  if (inbox && !taken_.empty()) inbox->Return(std::move(taken_));
  taken_.clear();
  triggers_.clear();
}

void TranscriptRows::Post(const std::function<void(TranscriptTrigger)>& post) {
  inserted_ += taken_.size();
  taken_.clear();
  if (post) {
    for (TranscriptTrigger& t : triggers_) post(std::move(t));
  }
  triggers_.clear();
}

}  // namespace store
}  // namespace ferry
