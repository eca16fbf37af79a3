// The store writer's share of the transcript archive (docs/archive.md): it collects the
// trigger events of a batch (transcript_feed.h) and posts them once the batch's transaction
// has committed, and it inserts the transcript_messages rows the archive worker extracted,
// inside that same transaction. Migration: kTranscriptMessagesMigration (schema.cc).
//
// Threads: the store thread (it owns the connection and the statement).
#pragma once

#include <functional>
#include <vector>

#include "daemon/store/raw_statement.h"
#include "daemon/store/record_scan.h"
#include "daemon/store/search_text.h"
#include "daemon/store/transcript_feed.h"

namespace ferry::store {

// Creates transcript_messages (a self-contained migration: the next schema version).
extern const char* const kTranscriptMessagesMigration;

class TranscriptRows {
 public:
  explicit TranscriptRows(sqlite3* db);

  // Called for each freshly inserted event: keeps a trigger when `e` is one and its payload
  // names an absolute transcript_path (or agent_transcript_path) and a session.
  void Collect(const ScannedEnvelope& e);
  // Inside the batch's transaction: inserts what `inbox` holds (may be null). Throws
  // SQLite::Exception; then call Abort.
  // Each assistant message also goes into the search index through `search` (may be null).
  void InsertFrom(TranscriptInbox* inbox, SearchIndexer* search);
  // The transaction failed: the messages taken go back to the inbox, the triggers are kept
  // for the retry (the records are read again and collected again, so they are dropped).
  void Abort(TranscriptInbox* inbox);
  // After the commit: hands each collected trigger to `post` (may be empty).
  void Post(const std::function<void(TranscriptTrigger)>& post);
  uint64_t inserted() const { return inserted_; }

 private:
  RawStatement insert_;
  std::vector<TranscriptTrigger> triggers_;
  std::vector<TranscriptMessage> taken_;
  uint64_t inserted_ = 0;
};

}  // namespace ferry::store
