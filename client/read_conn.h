// How the read commands (tail, query, sessions, stats, export, deadletter list) reach ferryd
// and wait for its answer, with one rule for every failure (docs/operations.md "Reading"):
//   - ferryd down: ConnectOrOffline (client/offline.h) starts a read-only ferryd when allowed;
//     when that fails too, "ferry: ferryd is not running (no answer on SOCKET: <why>)", exit 3;
//   - ferryd accepted but does not answer before the deadline (e.g. stopped with SIGSTOP):
//     "ferry: " + DescribeUnanswered(...), exit 3;
//   - the connection breaks or the reply is unreadable: "ferry: <what>: <why>", exit 1.
// Called from the client's one thread.
#pragma once

#include <string>
#include <string_view>

#include "client/args.h"
#include "client/conn.h"
#include "proto/frame.h"

namespace ferry::client {

inline constexpr int kNotRunningExitCode = 3;

// Connects *conn (running ferryd, or a read-only one when `allow_offline`). False after
// printing why; the command then exits kNotRunningExitCode.
bool ConnectForRead(Connection* conn, const GlobalOptions& global, const std::string& socket,
                    Clock::time_point deadline, bool allow_offline);

// Sends `frame` and/or receives one frame before `deadline`. 0 on success; else prints the
// message and returns the exit code: 3 when the deadline passed (not answering), 1 otherwise.
// `what` names the command in messages ("query").
int SendForRead(Connection& conn, const std::string& frame, Clock::time_point deadline,
                const GlobalOptions& global, const std::string& socket, std::string_view what);
int ReceiveForRead(Connection& conn, Clock::time_point deadline, proto::FrameType* type,
                   std::string* body, const GlobalOptions& global, const std::string& socket,
                   std::string_view what);

}  // namespace ferry::client
