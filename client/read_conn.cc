#include "client/read_conn.h"

#include "client/common.h"
#include "client/offline.h"

namespace ferry::client {
namespace {

int Failed(const std::string& error, const GlobalOptions& global, const std::string& socket,
           std::string_view what) {
  if (error.find("timed out") != std::string::npos) {
    Complain(DescribeUnanswered(global, socket));
    return kNotRunningExitCode;
  }
  Complain(std::string(what) + ": " + error);
  return 1;
}

}  // namespace

bool ConnectForRead(Connection* conn, const GlobalOptions& global, const std::string& socket,
                    Clock::time_point deadline, bool allow_offline) {
  std::string error;
  switch (ConnectOrOffline(conn, global, socket, deadline, allow_offline, &error)) {
    case Reach::kDaemon:
    case Reach::kOffline:
      return true;
    case Reach::kNotAnswering:
      Complain(error.empty() ? DescribeUnanswered(global, socket) : error);
      return false;
    case Reach::kFailed:
      break;
  }
  Complain(error);  // a whole sentence (client/offline.h)
  return false;
}

int SendForRead(Connection& conn, const std::string& frame, Clock::time_point deadline,
                const GlobalOptions& global, const std::string& socket, std::string_view what) {
  std::string error;
  if (conn.Send(frame, deadline, &error)) return 0;
  return Failed(error, global, socket, what);
}

int ReceiveForRead(Connection& conn, Clock::time_point deadline, proto::FrameType* type,
                   std::string* body, const GlobalOptions& global, const std::string& socket,
                   std::string_view what) {
  std::string error;
  if (conn.Receive(deadline, type, body, &error)) return 0;
  return Failed(error, global, socket, what);
}

}  // namespace ferry::client
