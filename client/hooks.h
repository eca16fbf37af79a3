// `ferry hooks install|uninstall <tool>`: merges ferry's hook entries into an AI agent's
// config file, or takes them out again (docs/hooks.md); for Cline and OpenCode, writes or
// removes hook files of ferry's own (hooks_files.cc). Also the table of hosts, events and
// config paths that `ferry doctor` checks against.
#pragma once

#include <string>
#include <string_view>
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
  std::vector<std::string> events;    // what install subscribes
  const char* project_dir = nullptr;  // the project scope's dir when it differs from `dir`
};

// claude-code, codex, cursor, gemini, in that order (the hosts `ferry doctor` checks).
const std::vector<HookTool>& HookTools();

// copilot and windsurf: JSON hosts `ferry hooks` installs into that doctor does not check yet.
const std::vector<HookTool>& MoreHookTools();

// `ferry hooks install|uninstall cline|opencode`: hosts whose hooks are files ferry owns
// whole (hooks_files.cc). Returns the exit code, as RunHooks.
int RunHookFiles(const std::string& tool, bool install, bool project, bool dry_run);
bool IsHookFilesTool(const std::string& tool);

// What `ferry doctor` sees of cline's or opencode's hook files in one scope: the folder, the
// files install would write that are missing, those ferry wrote that differ from what this
// ferry would write now, and the files present with ferry's marker.
struct HookFilesState {
  std::string dir;  // "" with `error` set when it cannot be known
  std::string error;
  std::vector<std::string> present, missing, stale, foreign;
};
HookFilesState InspectHookFiles(const std::string& tool, bool project);

// The tool's config file in the user scope ($HOME or its *_HOME variable) or the project
// scope (the current directory); "" with *error set when it cannot be known.
std::string HookConfigPath(const HookTool& tool, bool project, std::string* error);

// File helpers shared by hooks.cc and hooks_files.cc.
namespace hooks_io {
// Reads `path` whole; a missing file is ok with *exists false.
bool ReadFile(const std::string& path, std::string* out, bool* exists, std::string* error);
bool MakeDirs(const std::string& dir, std::string* error);
// Temp file in the same directory, fsynced, renamed over `path`.
bool WriteFileAtomic(const std::string& path, std::string_view text, unsigned mode,
                     std::string* error);
struct FerryBin {
  std::string path;
  std::string why;
};
// The ferry the hooks run (the one on PATH as found, else the installed one, else this binary).
FerryBin ChooseFerry();
void Print(const std::string& s);
}  // namespace hooks_io

}  // namespace ferry::client
