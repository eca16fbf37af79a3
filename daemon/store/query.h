// StoreQuery: serves `ferry query` on its own thread and its own read-only connection to
// ferry.db (SQLITE_OPEN_READONLY, PRAGMA query_only, an authorizer that refuses ATTACH,
// DETACH and pragma writes), with a time limit (sqlite3_progress_handler, also checked between
// result rows), a cap on the size of any one value (SQLITE_LIMIT_LENGTH), a row cap, and a cap
// on the result's bytes (a row that would pass it ends the result, truncated; a first row
// alone over it fails the query with "query result too large").
// A slow query therefore never delays the io thread or the store writer (WAL readers do not
// block the writer).
//
// Threads: Submit() and Stop() from any thread (the io thread); `done` runs on the query
// thread and must hand its result back by posting (net::post to the io thread).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "daemon/base/thread_annotations.h"
#include "proto/errors.h"

struct sqlite3;

namespace ferry {

struct QueryLimits {
  std::chrono::milliseconds time_limit{5000};
  uint64_t max_rows = 10000;
  uint64_t max_bytes = 3u << 20;  // the result must fit in one frame
  // The largest string or blob the query connection may make (SQLITE_LIMIT_LENGTH), so one
  // value (randomblob(1e9), a huge group_concat) fails at once with "string or blob too big"
  // instead of growing ferryd by its size. Per connection: the store writer is not affected.
  int max_value_bytes = 16 << 20;
  // Sorts, window functions and materialized subqueries that outgrow SQLite's cache spill to
  // temp files; the offline ferryd may create no file at all, so it keeps them in memory
  // (PRAGMA temp_store = MEMORY) instead of failing with "unable to open database file".
  bool temp_in_memory = false;
};

class StoreQuery {
 public:
  // ok: `body` is a QUERY_RESULT body; else `error` says why (code kQueryRefused/kQueryFailed).
  using Done = std::function<void(bool ok, std::string body, proto::Error error)>;

  StoreQuery(std::string db_path, QueryLimits limits);
  ~StoreQuery();  // Stop()s and joins
  StoreQuery(const StoreQuery&) = delete;
  StoreQuery& operator=(const StoreQuery&) = delete;

  void Start();
  // `request_body` is a QUERY_REQ body: {"v":1,"sql":"...","limit":N?}.
  void Submit(std::string request_body, Done done);
  // Interrupts a running query, refuses queued ones, joins the thread.
  void Stop();

  // Runs one request on the calling thread (the query thread, or a test).
  void RunOne(const std::string& request_body, const Done& done);

 private:
  void Loop();

  const std::string db_path_;
  const QueryLimits limits_;
  ::sqlite3* db_ = nullptr;  // query thread only
  std::thread thread_;
  // Lock order: mu_ is a leaf lock; guards queue_, stopping_ and interrupt access to db_.
  // db_ itself is not annotated: the query thread reads it without the lock (it is the only
  // writer); Stop() reads it under mu_ to interrupt.
  Mutex mu_;
  CondVar cv_;
  std::deque<std::pair<std::string, Done>> queue_ FERRY_GUARDED_BY(mu_);
  bool stopping_ FERRY_GUARDED_BY(mu_) = false;
  // db_ is executing a statement (Stop may sqlite3_interrupt it)
  bool running_ FERRY_GUARDED_BY(mu_) = false;
  // Set by Stop(); the progress handler reads it, so a statement Stop() came too early to
  // interrupt still ends at its next progress check.
  std::atomic<bool> stop_requested_{false};
};

}  // namespace ferry
