// Placeholder until the read-only ferryd lands: connects to the running ferryd only.
#include "client/offline.h"

namespace ferry::client {

Reach ConnectOrOffline(Connection* conn, const GlobalOptions& /*global*/, const std::string& socket,
                       Clock::time_point deadline, bool /*allow_offline*/, std::string* error) {
  if (conn->Connect(socket, deadline, error)) return Reach::kDaemon;
  return Reach::kFailed;
}

std::string DescribeUnanswered(const GlobalOptions& /*global*/, const std::string& socket) {
  return "ferryd is not answering on " + socket;
}

}  // namespace ferry::client
