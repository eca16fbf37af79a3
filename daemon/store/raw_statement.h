// RawStatement: a prepared statement on one SQLite connection, kept for the connection's
// lifetime by the store writer (SQLiteCpp's Statement cannot bind text without copying it).
// Errors throw SQLite::Exception with SQLite's message, like SQLiteCpp.
//
// Threads: the thread that owns the connection (the store thread).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include <SQLiteCpp/Exception.h>

namespace ferry::store {

class RawStatement {
 public:
  RawStatement(sqlite3* db, const char* sql) : db_(db) {
    const int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st_, nullptr);
    if (rc != SQLITE_OK) throw SQLite::Exception(db, rc);
  }
  ~RawStatement() { sqlite3_finalize(st_); }
  RawStatement(const RawStatement&) = delete;
  RawStatement& operator=(const RawStatement&) = delete;

  void Reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  // Binds text without copying it: `v` must stay valid until the statement has run.
  void Text(int index, std::string_view v) {
    Check(sqlite3_bind_text(st_, index, v.data() ? v.data() : "", static_cast<int>(v.size()),
                            SQLITE_STATIC));
  }
  void Int64(int index, int64_t v) { Check(sqlite3_bind_int64(st_, index, v)); }
  // true: a row is ready; false: done.
  bool Step() {
    const int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw SQLite::Exception(db_, rc);
  }
  int Changes() const { return sqlite3_changes(db_); }
  int64_t LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }
  int64_t ColumnInt64(int i) const { return sqlite3_column_int64(st_, i); }
  bool ColumnNull(int i) const { return sqlite3_column_type(st_, i) == SQLITE_NULL; }
  std::string ColumnText(int i) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st_, i));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(st_, i))) : std::string();
  }

 private:
  void Check(int rc) const {
    if (rc != SQLITE_OK) throw SQLite::Exception(db_, rc);
  }
  sqlite3* const db_;
  sqlite3_stmt* st_ = nullptr;
};

}  // namespace ferry::store
