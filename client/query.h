// `ferry query SQL` and `ferry sessions`: read-only SQL that ferryd runs on its own
// read-only connection (QUERY_REQ/QUERY_RESULT); the client never opens ferry.db itself.
// When ferryd is down a read-only ferryd answers (client/offline.h); one that does not answer
// within --timeout (query 30s, sessions 10s) is reported with DescribeUnanswered, exit 3.
// Flags: client/args.h (ParseQueryArgs, ParseSessionsArgs); output: docs/queries.md.
#pragma once

namespace ferry::client {

int RunQuery(int argc, char** argv);
int RunSessions(int argc, char** argv);

}  // namespace ferry::client
