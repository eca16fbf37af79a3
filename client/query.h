// `ferry query SQL` and `ferry sessions`: read-only SQL that ferryd runs on its own
// read-only connection (QUERY_REQ/QUERY_RESULT); the client never opens ferry.db itself.
#pragma once

namespace ferry::client {

int RunQuery(int argc, char** argv);
int RunSessions(int argc, char** argv);

}  // namespace ferry::client
