#include "daemon/store/schema.h"

#include <sys/stat.h>
#include <time.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <rapidjson/document.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include "daemon/store/search_text.h"
#include "daemon/store/transcript_rows.h"

namespace ferry::store {
namespace {

// The full-text index behind `ferry search` (docs/queries.md "Search"). One row per event that
// gives text (rowid = the event's seq, origin 'events', kind and text from search_text.h),
// written by the store writer in the transaction that writes the event's row; the trigger
// deletes it with the row (retention). FTS5 keeps its own copy of the text (at most 8 KiB per
// event) for snippet(): an external-content table over a view of events would re-derive the
// text in SQL, which costs several times the writer's whole work per event (docs/benchmarks.md
// "Run L"). Other tables may add rows later (transcript_messages: origin 'transcripts', kind
// 'assistant', with rowids that cannot be a seq: docs/queries.md).
constexpr const char* kSearchSchema =
    "CREATE VIRTUAL TABLE search USING fts5(origin UNINDEXED, kind UNINDEXED, text,"
    " tokenize = 'unicode61 remove_diacritics 2');"
    "CREATE TRIGGER events_search_delete AFTER DELETE ON events BEGIN"
    " DELETE FROM search WHERE rowid = old.seq; END;";

// Indexes every event already stored (an upgraded ferry.db is searchable at once), and notes
// that the index is on.
void IndexStoredEvents(SQLite::Database& db) {
  SQLite::Statement rows(db, "SELECT seq, kind, payload FROM events ORDER BY seq");
  SearchIndexer index(db.getHandle());
  while (rows.executeStep()) {
    const SQLite::Column payload = rows.getColumn(2);
    index.Add(rows.getColumn(0).getInt64(), rows.getColumn(1).getText(""),
              std::string_view(static_cast<const char*>(payload.getBlob()),
                               static_cast<size_t>(payload.size())));
  }
  db.exec("INSERT OR REPLACE INTO meta(key, value) VALUES('search', 'on')");
}

// Migration n takes the schema from version n-1 to n. Never edit a released migration: add
// the next one.
// A migration's SQL, then (when set) what it does in C++, in the same transaction.
struct Migration {
  const char* sql;
  void (*then)(SQLite::Database& db);
};
const Migration kMigrations[] = {
    // 1: the first schema.
    {"CREATE TABLE events ("
     "  seq INTEGER PRIMARY KEY,"
     "  id TEXT NOT NULL UNIQUE,"
     "  ts INTEGER,"
     "  received INTEGER,"
     "  source TEXT,"
     "  kind TEXT,"
     "  session TEXT,"
     "  cwd TEXT,"
     "  host TEXT,"
     "  pid INTEGER,"
     "  payload TEXT);"
     "CREATE INDEX events_session ON events(source, session);"
     "CREATE INDEX events_ts ON events(ts);"
     "CREATE TABLE sessions ("
     "  source TEXT NOT NULL,"
     "  session TEXT NOT NULL,"
     "  first_ts INTEGER,"
     "  last_ts INTEGER,"
     "  events INTEGER NOT NULL,"
     "  kinds TEXT NOT NULL,"
     "  failures INTEGER NOT NULL,"
     "  ended INTEGER,"
     "  end_reason TEXT,"
     "  PRIMARY KEY(source, session));"
     "CREATE INDEX sessions_last_ts ON sessions(last_ts);",
     nullptr},
    // 2: the full-text index over prompts, tool calls, tool output and shell commands
    // (`ferry search`), with every stored event indexed.
    {kSearchSchema, IndexStoredEvents},
    // 3: transcript_messages (issue 13 part 1; transcript_rows.cc).
    {kTranscriptMessagesMigration, nullptr},
};

// Views hold no data, so they are not migrations: Migrate drops and re-creates each one on
// every open (ferry.db stays at its schema version, and an older ferryd can still open it).
// tool_spans: each tool call's pre and post events as one row (docs/queries.md "Tool spans"
// says how they are paired and what each column means; bench/spans_bench.py measures it).
constexpr const char* kViews =
    "DROP VIEW IF EXISTS tool_spans;"
    R"sql(CREATE VIEW tool_spans AS
WITH tool_events AS (
  SELECT seq, source, session,
    kind IN ('PostToolUse', 'PostToolUseFailure', 'AfterTool', 'afterShellExecution',
             'afterMCPExecution', 'postToolUse', 'postToolUseFailure') AS post,
    coalesce(json_extract(payload, '$.tool_name'),
             CASE WHEN kind LIKE '%ShellExecution' THEN 'Shell' END) AS tool,
    json_extract(payload, '$.tool_use_id') AS use_id,
    CASE WHEN json_type(payload, '$.tool_use_id') IS NULL THEN
      coalesce(json_extract(payload, '$.tool_input'), json_extract(payload, '$.command'), '') END AS input_key
  FROM events
  WHERE kind IN ('PreToolUse', 'PostToolUse', 'PostToolUseFailure', 'BeforeTool', 'AfterTool',
                 'beforeShellExecution', 'afterShellExecution', 'beforeMCPExecution',
                 'afterMCPExecution', 'preToolUse', 'postToolUse', 'postToolUseFailure')
),
keyed AS (
  SELECT seq, source, session, post, tool, use_id,
    coalesce('id:' || use_id, 'in:' || coalesce(tool, '') || char(31) || input_key) AS pair_key
  FROM tool_events
),
paired AS (
  SELECT seq, source, session, post, tool, use_id,
    lag(post) OVER w AS prev_post, lead(post) OVER w AS next_post, lead(seq) OVER w AS next_seq
  FROM keyed
  WINDOW w AS (PARTITION BY source, session, pair_key ORDER BY seq)
),
spans AS (
  SELECT p.source, p.session, f.cwd, p.tool, p.use_id, f.payload AS first_payload,
    CASE WHEN NOT p.post THEN p.seq END AS start_seq, CASE WHEN NOT p.post THEN f.ts END AS start,
    e.seq AS end_seq, e.ts AS "end", e.kind AS end_kind, e.payload AS end_payload
  FROM paired p
  JOIN events f ON f.seq = p.seq
  LEFT JOIN events e
    ON e.seq = CASE WHEN p.post THEN p.seq WHEN p.next_post THEN p.next_seq END
  WHERE NOT p.post OR p.prev_post IS NULL OR p.prev_post
),
judged AS (
  SELECT *,
    CASE WHEN end_seq IS NULL THEN 'unfinished'
         WHEN end_kind LIKE '%Failure' THEN
           CASE WHEN json_extract(end_payload, '$.is_interrupt') THEN 'interrupted' ELSE 'failed' END
         WHEN json_extract(end_payload, '$.tool_response.interrupted') THEN 'interrupted'
         WHEN json_type(end_payload, '$.tool_response.error') NOT IN ('null', 'false') THEN 'failed'
         ELSE 'ok' END AS outcome
  FROM spans
),
agents AS (
  SELECT *,
    coalesce(json_extract(first_payload, '$.agent_id'), json_extract(end_payload, '$.agent_id')) AS agent_id,
    coalesce(json_extract(first_payload, '$.agent_type'), json_extract(end_payload, '$.agent_type')) AS agent_type
  FROM judged
)
SELECT source, session, cwd, agent_id, agent_type,
  CASE WHEN agent_id IS NOT NULL THEN (
    SELECT json_extract(t.payload, '$.tool_use_id') FROM events t
    WHERE t.source = a.source AND t.session = a.session AND t.seq < coalesce(a.start_seq, a.end_seq)
      AND t.kind = 'PreToolUse' AND json_extract(t.payload, '$.tool_name') IN ('Task', 'Agent')
      AND json_extract(t.payload, '$.agent_id') IS NULL
      AND (a.agent_type IS NULL OR json_extract(t.payload, '$.tool_input.subagent_type') = a.agent_type)
    ORDER BY t.seq DESC LIMIT 1) END AS parent_tool_use_id,
  tool,
  substr(coalesce(json_extract(first_payload, '$.tool_input.command'),
                  json_extract(first_payload, '$.tool_input.file_path'),
                  json_extract(first_payload, '$.tool_input.pattern'),
                  json_extract(first_payload, '$.tool_input.url'),
                  json_extract(first_payload, '$.tool_input.query'),
                  json_extract(first_payload, '$.tool_input.description'),
                  json_extract(first_payload, '$.tool_input'),
                  json_extract(first_payload, '$.command')), 1, 200) AS input,
  use_id AS tool_use_id, start_seq, end_seq, start, "end", "end" - start AS duration_ns,
  outcome, CASE outcome WHEN 'ok' THEN 1 WHEN 'unfinished' THEN NULL ELSE 0 END AS success,
  NULL AS exit_status,
  length(CAST(coalesce(json_extract(end_payload, '$.tool_response'),
                       json_extract(end_payload, '$.error'),
                       json_extract(end_payload, '$.output'),
                       json_extract(end_payload, '$.result_json')) AS BLOB)) AS output_bytes
FROM agents a
UNION ALL
SELECT source, session, cwd, NULL, NULL, NULL, 'shell', substr(command, 1, 200), NULL, seq, seq,
  start, ts, duration,
  CASE WHEN status IS NULL THEN 'unknown' WHEN status = 0 THEN 'ok' ELSE 'failed' END,
  status = 0, status, NULL
FROM (SELECT seq, ts, source, session, cwd, json_extract(payload, '$.command') AS command,
        json_extract(payload, '$.exit_status') AS status,
        json_extract(payload, '$.duration_ns') AS duration,
        ts - coalesce(json_extract(payload, '$.duration_ns'), 0) AS start
      FROM events WHERE kind = 'command' AND json_type(payload, '$.command') = 'text');)sql";

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string UtcStamp() {
  const time_t now = ::time(nullptr);
  struct tm tm {};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// Returns an empty string if `path` opens and passes quick_check, else why not. Throws (and
// so leaves the file alone) when the file could not be checked for a reason that says
// nothing about its bytes: disk full, permissions, I/O errors, a lock.
std::string Check(const std::string& path) {
  try {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    SQLite::Statement check(db, "PRAGMA quick_check");
    std::string result;
    while (check.executeStep()) {
      if (!result.empty()) result += "; ";
      result += check.getColumn(0).getString();
      if (result.size() > 500) break;
    }
    if (result != "ok") return "PRAGMA quick_check: " + result;
    int version = 0;
    if (db.tableExists("meta")) {
      SQLite::Statement v(db, "SELECT value FROM meta WHERE key = 'schema_version'");
      if (v.executeStep()) version = v.getColumn(0).getInt();
    }
    if (version > kSchemaVersion) {
      return "schema version " + std::to_string(version) + " is newer than this ferryd's " +
             std::to_string(kSchemaVersion);
    }
    return {};
  } catch (const SQLite::Exception& e) {
    const int code = e.getErrorCode() & 0xff;
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) return e.what();
    throw;
  }
}

}  // namespace

void MoveAside(const std::string& path, std::string* moved_to) {
  std::string target = path + ".corrupt-" + UtcStamp();
  for (int n = 1; Exists(target); ++n)
    target = path + ".corrupt-" + UtcStamp() + "." + std::to_string(n);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string from = path + suffix;
    if (!Exists(from)) continue;
    if (::rename(from.c_str(), (target + suffix).c_str()) != 0) {
      throw std::runtime_error("cannot move " + from + " aside: " + std::strerror(errno));
    }
  }
  *moved_to = target;
}

void Migrate(SQLite::Database& db) {
  db.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value)");
  int version = 0;
  {
    SQLite::Statement v(db, "SELECT value FROM meta WHERE key = 'schema_version'");
    if (v.executeStep()) version = v.getColumn(0).getInt();
  }
  constexpr int kCount = static_cast<int>(sizeof kMigrations / sizeof kMigrations[0]);
  static_assert(kCount == kSchemaVersion);
  for (int n = version + 1; n <= kCount; ++n) {
    SQLite::Transaction txn(db);
    db.exec(kMigrations[n - 1].sql);
    if (kMigrations[n - 1].then) kMigrations[n - 1].then(db);
    SQLite::Statement set(db,
                          "INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', ?)");
    set.bind(1, n);
    set.exec();
    txn.commit();
  }
  SQLite::Transaction txn(db);
  db.exec(kViews);
  txn.commit();
}

bool SetSearch(SQLite::Database& db, bool enabled) {
  std::string state = "on";
  {
    SQLite::Statement q(db, "SELECT value FROM meta WHERE key = 'search'");
    if (q.executeStep()) state = q.getColumn(0).getString();
  }
  if ((state != "off") == enabled) return false;
  SQLite::Transaction txn(db);
  if (enabled) {
    IndexStoredEvents(db);
    // The assistant messages of archived transcripts (migration 3's table).
    SQLite::Statement rows(db, "SELECT id, role, text FROM transcript_messages ORDER BY id");
    SearchIndexer index(db.getHandle());
    while (rows.executeStep()) {
      index.AddMessage(rows.getColumn(0).getInt64(), rows.getColumn(1).getText(""),
                       rows.getColumn(2).getText(""));
    }
  } else {
    // Emptied at once, and the pages go back to the free list (DELETE would remove row by row).
    db.exec(
        "DROP TABLE search;"
        "CREATE VIRTUAL TABLE search USING fts5(origin UNINDEXED, kind UNINDEXED, text,"
        " tokenize = 'unicode61 remove_diacritics 2');"
        "INSERT OR REPLACE INTO meta(key, value) VALUES('search', 'off');");
  }
  txn.commit();
  spdlog::info(enabled ? "store: search index re-created from the stored events"
                       : "store: search index dropped ([store] search = false)");
  return true;
}

bool ReadCursorReadOnly(const std::string& path, uint64_t* cursor, std::string* error) {
  *cursor = 0;
  if (!Exists(path)) return true;
  try {
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    if (!db.tableExists("meta")) return true;
    *cursor = ReadCursor(db);
    return true;
  } catch (const std::exception& e) {
    *error = e.what();
    return false;
  }
}

uint64_t ReadCursor(SQLite::Database& db) {
  SQLite::Statement q(db, "SELECT value FROM meta WHERE key = 'cursor'");
  if (!q.executeStep()) return 0;
  return static_cast<uint64_t>(q.getColumn(0).getInt64());
}

std::unique_ptr<SQLite::Database> OpenForWriting(const std::string& path, bool* created,
                                                 std::string* moved_aside, std::string* reason) {
  *created = !Exists(path);
  if (!*created) {
    *reason = Check(path);
    if (!reason->empty()) {
      MoveAside(path, moved_aside);
      *created = true;
    }
  } else {
    // A -wal without its db belongs to no database we can use; it must not be replayed
    // into the fresh file.
    for (const char* suffix : {"-wal", "-shm"}) ::unlink((path + suffix).c_str());
  }
  // NOMUTEX: the connection is used by one thread at a time (the starting thread, then the
  // store thread), so SQLite's per-call connection mutex is pure cost (~9% of the store
  // thread's CPU in a perf profile, docs/benchmarks.md).
  auto db = std::make_unique<SQLite::Database>(
      path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX);
  db->exec("PRAGMA journal_mode = WAL");
  // NORMAL in WAL mode: a power cut may lose the last commits but never corrupts the file,
  // and the cursor goes back with the rows it covers, so they are simply applied again.
  db->exec("PRAGMA synchronous = NORMAL");
  db->exec("PRAGMA busy_timeout = 5000");
  Migrate(*db);
  return db;
}

}  // namespace ferry::store
