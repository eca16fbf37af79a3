#include "daemon/store/schema.h"

#include <sys/stat.h>
#include <time.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <sqlite3.h>

namespace ferry::store {
namespace {

// Migration n takes the schema from version n-1 to n. Never edit a released migration: add
// the next one.
constexpr const char* kMigrations[] = {
    // 1: the first schema.
    "CREATE TABLE events ("
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
};

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
    db.exec(kMigrations[n - 1]);
    SQLite::Statement set(db,
                          "INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', ?)");
    set.bind(1, n);
    set.exec();
    txn.commit();
  }
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
