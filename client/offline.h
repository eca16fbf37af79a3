// Read commands when ferryd is not running (issue 12 "Reading what was recorded").
//
// `ferry query`, `sessions`, `tail` (without -f) and `deadletter list` must work when ferryd
// is down. The client stays lean (proto + libstdc++, no SQLite): instead of reading ferry.db
// itself it starts a read-only ferryd for this one call (`ferryd --serve-offline`, see
// docs/protocol.md "Offline reads"), hands it one end of a socketpair and speaks the same
// protocol to it as to the running daemon. That ferryd opens ferry.db and the journal
// read-only, writes nothing, takes no lock, answers one connection and exits.
//
// Thread: the client is single-threaded; call from main.
#pragma once

#include <string>

#include "client/args.h"
#include "client/conn.h"

namespace ferry::client {

enum class Reach {
  kDaemon,       // connected to the running ferryd
  kOffline,      // ferryd is not running; connected to a read-only ferryd started for this call
  kNotAnswering, // something holds the socket or the state lock but does not answer in time
  kFailed,       // neither: *error says why (no ferryd binary found, state dir missing, ...)
};

// Connects *conn to the ferryd on `socket` before `deadline`. When nothing listens there
// (ENOENT, ECONNREFUSED) and `allow_offline`, starts the read-only ferryd instead.
// *error is set for kNotAnswering and kFailed.
Reach ConnectOrOffline(Connection* conn, const GlobalOptions& global, const std::string& socket,
                       Clock::time_point deadline, bool allow_offline, std::string* error);

// For a ferryd that accepted the connection (or holds the state lock) but did not answer
// before the deadline, e.g. stopped with SIGSTOP: "ferryd (pid 1234) is not answering on
// SOCKET (stopped? try: kill -CONT 1234)". The pid comes from <state>/ferryd.lock when it is
// held; without it the message names the socket only. Read commands print it and exit 3.
std::string DescribeUnanswered(const GlobalOptions& global, const std::string& socket);

}  // namespace ferry::client
