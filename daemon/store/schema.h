// ferry.db's schema and its numbered migrations, and the recovery of a damaged file.
// Tables (docs/queries.md describes them for users):
//   events(seq INTEGER PRIMARY KEY, id TEXT UNIQUE, ts, received, source, kind, session, cwd,
//          host, pid, payload)            one row per journal record; payload is JSON text
//   sessions(source, session, first_ts, last_ts, events, kinds, failures, ended, end_reason)
//                                         aggregates, PRIMARY KEY(source, session)
//   transcript_messages(id, source, session, ts, role, text)
//                                         user prompts and assistant text read from archived
//                                         transcripts (daemon/archive/, transcript_rows.h;
//                                         migration 3)
//   meta(key PRIMARY KEY, value)          schema_version, cursor (last seq applied), search
//                                         ('on', or 'off' while [store] search = false)
//   search (FTS5: origin, kind, text)     the full-text index behind `ferry search`, one row
//                                         per event that gives text (rowid = seq; search_text.h);
//                                         written by the store writer with the event's row,
//                                         deleted with it by a trigger (migration 2)
//   tool_spans (VIEW)                     one row per tool call (pre/post events paired) and
//                                         per shell command; computed from events on each read;
//                                         re-created by Migrate on every open (not versioned)
//
// Threads: whichever thread owns the connection passed in.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <SQLiteCpp/Database.h>

namespace ferry::store {

// 2: the search index (docs/queries.md "Search"); 3: transcript_messages (docs/archive.md).
// An older ferryd moves a newer file aside as "newer" and rebuilds ferry.db from the journal
// (docs/operations.md).
inline constexpr int kSchemaVersion = 3;

// Opens `path` for writing. A file that SQLite calls corrupt (SQLITE_CORRUPT, SQLITE_NOTADB),
// fails `PRAGMA quick_check` or has a newer schema is renamed to <path>.corrupt-<UTC timestamp>
// (with -wal and -shm) and a new one is created; *moved_aside says where it went and *reason why.
// Runs the migrations. Throws SQLite::Exception or std::runtime_error when even a fresh file cannot
// be made, and when the file cannot be opened for a reason that is not its bytes (disk full,
// permissions, I/O error): such a file is never moved aside.
std::unique_ptr<SQLite::Database> OpenForWriting(const std::string& path, bool* created,
                                                 std::string* moved_aside, std::string* reason);

// Brings `db` up to kSchemaVersion, one transaction per migration, then re-creates the views.
// Throws on failure.
void Migrate(SQLite::Database& db);

uint64_t ReadCursor(SQLite::Database& db);

// [store] search: false empties the index (meta search 'off'; the writer then adds nothing);
// true, on a db where it was off, indexes every stored row, in one transaction. Returns true when
// it changed something. Throws on failure.
bool SetSearch(SQLite::Database& db, bool enabled);

// Reads the cursor of the db at `path` without writing anything (0 if there is no file or no
// cursor yet). False with *error when the file exists but cannot be read.
bool ReadCursorReadOnly(const std::string& path, uint64_t* cursor, std::string* error);

// Renames `path` (and its -wal and -shm) to <path>.corrupt-<UTC timestamp>; returns the new
// name in *moved_to. Throws std::runtime_error if a rename fails.
void MoveAside(const std::string& path, std::string* moved_to);

}  // namespace ferry::store
