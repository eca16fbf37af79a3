// `ferry hooks install|uninstall <tool>`: merges ferry's hook entries into an AI agent's
// config file, or takes them out again (docs/hooks.md). Also the table of hosts, events and
// config paths that `ferry doctor` checks against.
#pragma once

#include <string>
#include <vector>

#include "client/hooks_edit.h"

namespace ferry::client {

// argv holds the arguments after "hooks". Returns the exit code: 0 done (or nothing to do),
// 1 the config file is malformed or cannot be written (left untouched), 2 usage error.
int RunHooks(int argc, char** argv);

struct HookTool {
  const char* name;
  bool toml;  // Codex's config.toml; else JSON of `style`
  hooks::JsonStyle style;
  const char* home_env;  // overrides the user-scope directory when set
  const char* dir;       // ".claude", relative to $HOME (user) or the cwd (project)
  const char* file;
  std::vector<std::string> events;  // what install subscribes
};

// claude-code, codex, cursor, gemini, in that order.
const std::vector<HookTool>& HookTools();

// The tool's config file in the user scope ($HOME or its *_HOME variable) or the project
// scope (the current directory); "" with *error set when it cannot be known.
std::string HookConfigPath(const HookTool& tool, bool project, std::string* error);

}  // namespace ferry::client
