// Several read-only SQL statements over one connection to ferryd, or to the read-only ferryd
// started when it is down (client/offline.h): `ferry stats` and `ferry export` (which pages
// through the events by seq) send them one after the other and read each QUERY_RESULT.
// Failures are reported as client/read_conn.h says (exit 3: not running or not answering;
// 1: refused, failed or unreadable). Called from the client's one thread.
#pragma once

#include <string>

#include "client/args.h"
#include "client/conn.h"
#include "proto/event.h"

namespace ferry::client {

class ReadQuery {
 public:
  // `what` names the command in messages ("stats"); `timeout_ms` bounds each statement's wait.
  ReadQuery(const GlobalOptions& global, unsigned long long timeout_ms, std::string what);

  // Runs `sql` (at most `limit` rows; 0: ferryd's row cap) and parses the QUERY_RESULT into
  // *doc, an object whose "columns" and "rows" are arrays. Connects on the first call.
  // Returns 0, or the exit status after printing why (the ERROR's code and message as
  // "ferry: query_failed: ...").
  // With `error_message` set, ferryd's ERROR answer is not printed: its message goes there
  // (`ferry search` explains a bad query itself) and Run returns 1.
  int Run(const std::string& sql, unsigned long long limit, rapidjson::Document* doc,
          std::string* error_message = nullptr);

 private:
  GlobalOptions global_;
  unsigned long long timeout_ms_;
  std::string what_;
  std::string socket_;
  bool connected_ = false;
  Connection conn_;
};

// `s` as an SQL string literal ('it''s').
std::string SqlString(const std::string& s);

}  // namespace ferry::client
