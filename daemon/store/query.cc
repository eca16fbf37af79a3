#include "daemon/store/query.h"
#include "daemon/base/thread_role.h"

#include <sqlite3.h>

#include <atomic>
#include <cctype>
#include <cstring>
#include <utility>

#include <spdlog/spdlog.h>

#include "proto/event.h"
#include "proto/messages.h"

namespace ferry {
namespace {

using Clock = std::chrono::steady_clock;

struct Deadline {
  Clock::time_point at;
  const std::atomic<bool>* stop = nullptr;  // Stop() was called
  bool hit = false;
};

// Every 1000 VM steps: past the deadline, or ferryd stopping (which also calls
// sqlite3_interrupt, but only while a statement runs), interrupts the statement.
int OnProgress(void* arg) {
  auto* d = static_cast<Deadline*>(arg);
  if (d->stop->load(std::memory_order_relaxed)) return 1;
  if (Clock::now() < d->at) return 0;
  d->hit = true;
  return 1;  // interrupts the statement with SQLITE_INTERRUPT
}

// Pragmas that only read, even with an argument (table_info(events) and the like).
bool ReadOnlyPragma(const char* name) {
  for (const char* ok : {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo",
                         "foreign_key_list", "table_list", "function_list", "pragma_list",
                         "collation_list", "database_list", "compile_options"}) {
    if (sqlite3_stricmp(name, ok) == 0) return true;
  }
  return false;
}

// Belt and braces over SQLITE_OPEN_READONLY and query_only: ATTACH/DETACH change what the
// connection can see (sqlite3_stmt_readonly says they are read-only), and a pragma with a value
// may switch query_only off or change settings.
int Authorize(void*, int action, const char* a, const char* b, const char*, const char*) {
  switch (action) {
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
      return SQLITE_DENY;
    case SQLITE_PRAGMA:
      return b == nullptr || ReadOnlyPragma(a) ? SQLITE_OK : SQLITE_DENY;
    default:
      return SQLITE_OK;
  }
}

bool OnlySpace(const char* p) {
  while (*p) {
    if (std::isspace(static_cast<unsigned char>(*p)) || *p == ';') {
      ++p;
    } else if (p[0] == '-' && p[1] == '-') {
      while (*p && *p != '\n') ++p;
    } else {
      return false;
    }
  }
  return true;
}

void WriteValue(sqlite3_stmt* stmt, int col, proto::JsonWriter& w) {
  switch (sqlite3_column_type(stmt, col)) {
    case SQLITE_INTEGER:
      w.Int64(sqlite3_column_int64(stmt, col));
      break;
    case SQLITE_FLOAT:
      w.Double(sqlite3_column_double(stmt, col));
      break;
    case SQLITE_TEXT: {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
      w.String(text, static_cast<rapidjson::SizeType>(sqlite3_column_bytes(stmt, col)));
      break;
    }
    case SQLITE_BLOB: {
      static const char kHex[] = "0123456789abcdef";
      const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(stmt, col));
      const int n = sqlite3_column_bytes(stmt, col);
      std::string hex = "x'";
      for (int i = 0; i < n; ++i) {
        hex += kHex[p[i] >> 4];
        hex += kHex[p[i] & 15];
      }
      hex += "'";
      w.String(hex.data(), static_cast<rapidjson::SizeType>(hex.size()));
      break;
    }
    default:
      w.Null();
  }
}

}  // namespace

StoreQuery::StoreQuery(std::string db_path, QueryLimits limits)
    : db_path_(std::move(db_path)), limits_(limits) {}

StoreQuery::~StoreQuery() {
  Stop();
  if (db_) sqlite3_close_v2(db_);
}

void StoreQuery::Start() {
  thread_ = std::thread([this] {
    SetThreadRole("query", ThreadClass::kBackground);
    Loop();
  });
}

void StoreQuery::Submit(std::string request_body, Done done) {
  {
    MutexLock lock(mu_);
    if (!stopping_) {
      queue_.emplace_back(std::move(request_body), std::move(done));
      cv_.NotifyOne();
      return;
    }
  }
  done(false, {}, {proto::Errc::kShuttingDown, "ferryd is stopping; query not run"});
}

void StoreQuery::Stop() {
  std::deque<std::pair<std::string, Done>> refused;
  {
    MutexLock lock(mu_);
    stopping_ = true;
    stop_requested_.store(true);
    if (running_ && db_) sqlite3_interrupt(db_);
    refused.swap(queue_);
    cv_.NotifyAll();
  }
  for (auto& [body, done] : refused) {
    done(false, {}, {proto::Errc::kShuttingDown, "ferryd is stopping; query not run"});
  }
  if (thread_.joinable()) thread_.join();
}

void StoreQuery::Loop() {
  while (true) {
    std::pair<std::string, Done> item;
    {
      MutexLock lock(mu_);
      while (!stopping_ && queue_.empty()) cv_.Wait(lock);
      if (stopping_) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    RunOne(item.first, item.second);
  }
}

void StoreQuery::RunOne(const std::string& request_body, const Done& done) {
  proto::QueryRequest req;
  proto::Error perr;
  if (!proto::ParseQueryRequestBody(request_body, &req, &perr)) {
    done(false, {}, perr);
    return;
  }
  const auto fail = [&](proto::Errc code, std::string message) {
    done(false, {}, {code, std::move(message)});
  };
  if (!db_) {
    sqlite3* db = nullptr;
    const int rc = sqlite3_open_v2(db_path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    if (rc != SQLITE_OK) {
      std::string why = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close_v2(db);
      return fail(proto::Errc::kQueryFailed, "cannot open " + db_path_ + " read-only: " + why);
    }
    sqlite3_busy_timeout(db, 2000);
    sqlite3_exec(db, "PRAGMA query_only = 1", nullptr, nullptr, nullptr);
    if (limits_.temp_in_memory)
      sqlite3_exec(db, "PRAGMA temp_store = MEMORY", nullptr, nullptr, nullptr);
    sqlite3_set_authorizer(db, Authorize, nullptr);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, limits_.max_value_bytes);
    MutexLock lock(mu_);
    db_ = db;
  }
  const auto started = Clock::now();
  Deadline deadline{started + limits_.time_limit, &stop_requested_};
  sqlite3_progress_handler(db_, 1000, OnProgress, &deadline);
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db_, req.sql.c_str(), static_cast<int>(req.sql.size()), &stmt, &tail);
  if (rc != SQLITE_OK) {
    const bool denied = rc == SQLITE_AUTH;
    std::string msg = sqlite3_errmsg(db_);
    sqlite3_finalize(stmt);
    sqlite3_progress_handler(db_, 0, nullptr, nullptr);
    if (denied) {
      return fail(
          proto::Errc::kQueryRefused,
          "ferry query is read-only: ATTACH, DETACH and setting pragmas are refused (" + msg + ")");
    }
    return fail(proto::Errc::kQueryFailed, "SQL error: " + msg);
  }
  if (!stmt) return fail(proto::Errc::kQueryRefused, "no SQL statement given");
  if (tail && !OnlySpace(tail)) {
    sqlite3_finalize(stmt);
    sqlite3_progress_handler(db_, 0, nullptr, nullptr);
    return fail(proto::Errc::kQueryRefused, "ferry query runs one statement at a time");
  }
  if (!sqlite3_stmt_readonly(stmt)) {
    std::string head(req.sql.substr(0, 60));
    sqlite3_finalize(stmt);
    sqlite3_progress_handler(db_, 0, nullptr, nullptr);
    return fail(proto::Errc::kQueryRefused,
                "ferry query is read-only; refusing a statement that writes: " + head);
  }
  const uint64_t max_rows =
      req.limit > 0 ? std::min<uint64_t>(req.limit, limits_.max_rows) : limits_.max_rows;
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  w.StartObject();
  w.Key("columns");
  w.StartArray();
  const int ncol = sqlite3_column_count(stmt);
  for (int c = 0; c < ncol; ++c) {
    const char* name = sqlite3_column_name(stmt, c);
    w.String(name ? name : "");
  }
  w.EndArray();
  w.Key("rows");
  w.StartArray();
  {
    MutexLock lock(mu_);
    running_ = true;
  }
  uint64_t rows = 0;
  bool truncated = false;
  uint64_t first_row_bytes = 0;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    // What the row would add (a blob doubles as hex), checked before any of it is copied.
    uint64_t row_bytes = 0;
    for (int c = 0; c < ncol; ++c) {
      const int type = sqlite3_column_type(stmt, c);
      if (type == SQLITE_TEXT || type == SQLITE_BLOB) {
        row_bytes +=
            static_cast<uint64_t>(sqlite3_column_bytes(stmt, c)) * (type == SQLITE_BLOB ? 2 : 1);
      }
    }
    if (rows >= max_rows || sb.GetSize() + row_bytes >= limits_.max_bytes) {
      truncated = true;
      if (rows == 0) first_row_bytes = row_bytes;
      break;
    }
    w.StartArray();
    for (int c = 0; c < ncol; ++c) WriteValue(stmt, c, w);
    w.EndArray();
    ++rows;
  }
  {
    MutexLock lock(mu_);
    running_ = false;
  }
  std::string errmsg = sqlite3_errmsg(db_);
  sqlite3_finalize(stmt);
  sqlite3_progress_handler(db_, 0, nullptr, nullptr);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    if (stop_requested_.load()) {
      return fail(proto::Errc::kShuttingDown, "ferryd is stopping; query interrupted");
    }
    if (deadline.hit) {
      return fail(proto::Errc::kQueryFailed,
                  "query stopped: it ran longer than the time limit of " +
                      std::to_string(limits_.time_limit.count()) + " ms");
    }
    if (rc == SQLITE_TOOBIG) {
      return fail(proto::Errc::kQueryFailed,
                  "SQL error: " + errmsg + " (ferry query caps each value at " +
                      std::to_string(limits_.max_value_bytes) + " bytes)");
    }
    return fail(proto::Errc::kQueryFailed, "SQL error: " + errmsg);
  }
  if (first_row_bytes > 0) {
    return fail(proto::Errc::kQueryFailed, "query result too large: the first row alone holds " +
                                               std::to_string(first_row_bytes) +
                                               " bytes; the limit is " +
                                               std::to_string(limits_.max_bytes) +
                                               " (select less, e.g. substr(payload,1,1000))");
  }
  w.EndArray();
  w.Key("row_count");
  w.Uint64(rows);
  w.Key("truncated");
  w.Bool(truncated);
  w.Key("row_cap");
  w.Uint64(max_rows);
  w.Key("elapsed_ms");
  w.Double(std::chrono::duration<double, std::milli>(Clock::now() - started).count());
  w.EndObject();
  done(true, std::string(sb.GetString(), sb.GetSize()), {});
}

}  // namespace ferry
