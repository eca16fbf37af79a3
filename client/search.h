// `ferry search QUERY`: ranked full-text hits over what the agents and shells recorded (the
// FTS5 index `search` in ferry.db, docs/queries.md "Search"): per hit its time, source, what
// matched (prompt, tool, output, shell), cwd, a highlighted snippet, the session and how to
// resume it where the host can. One read-only SQL statement that ferryd runs
// (client/read_query.h); works when ferryd is down (a read-only ferryd answers). A query
// FTS5 cannot parse exits 2 with what was wrong and how to quote it.
#pragma once

#include <string>

namespace ferry::client {

int RunSearch(int argc, char** argv);

// The shell command that resumes `session` of `source` in `cwd` ("cd DIR && claude --resume
// ID", "codex resume ID", "cd DIR && gemini --resume ID"), or "" when the host has none.
std::string ResumeCommand(const std::string& source, const std::string& session,
                          const std::string& cwd);

}  // namespace ferry::client
