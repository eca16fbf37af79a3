// `ferry hooks install|uninstall <tool>`: plans the new config text (hooks_json.cc,
// hooks_toml.cc), prints the diff, and unless --dry-run writes a timestamped backup of the
// old file next to it and replaces the file atomically (temp file, fsync, rename).
#include "client/hooks.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "client/args.h"
#include "client/common.h"
#include "client/hooks_edit.h"
#include "client/self_exe.h"

namespace ferry::client {
namespace {

using hooks::JsonStyle;

constexpr const char* kHooksHelp =
    "usage: ferry hooks install|uninstall TOOL [--dry-run] [--scope user|project]\n"
    "       TOOL: claude-code, codex, cursor, gemini, copilot, cline, windsurf, opencode\n"
    "\n"
    "install    merges ferry's hook entries into the tool's config file: a diff of the change\n"
    "           is printed, the old file is kept as <file>.ferry-bak-<UTC time> (only the\n"
    "           newest such backup of each file is kept), and a second install changes\n"
    "           nothing. The installed command runs `ferry emit --source <tool> --stdin`;\n"
    "           without a ferry binary it still reads stdin and exits 0.\n"
    "           The ferry it runs is the `ferry` found on PATH, as found (a symlink that an\n"
    "           upgrade repoints keeps working, and Codex's trust, a hash of the command, stays\n"
    "           valid); else the installed " FERRY_INSTALL_BINDIR
    "/ferry; else this binary.\n"
    "uninstall  removes exactly the entries install added (the file's bytes come back when\n"
    "           nothing else changed in it). In Codex's config.toml, what Codex wrote inside\n"
    "           ferry's block (MCP servers, features, hook trust) stays.\n"
    "--dry-run  print the diff only; write nothing\n"
    "--scope    user (default; in your home directory) or project (in the current directory)\n"
    "\n"
    "files (user scope / project scope):\n"
    "  claude-code  ~/.claude/settings.json (or $CLAUDE_CONFIG_DIR)  .claude/settings.json\n"
    "  codex        ~/.codex/config.toml (or $CODEX_HOME)            .codex/config.toml\n"
    "  cursor       ~/.cursor/hooks.json                            .cursor/hooks.json\n"
    "  gemini       ~/.gemini/settings.json                         .gemini/settings.json\n"
    "  copilot      ~/.copilot/hooks/ferry.json                     .github/hooks/ferry.json\n"
    "  windsurf     ~/.codeium/windsurf/hooks.json                  .windsurf/hooks.json\n"
    "  cline        ~/Documents/Cline/Hooks/<Event>                 .clinerules/hooks/<Event>\n"
    "               (Documents: XDG_DOCUMENTS_DIR of ~/.config/user-dirs.dirs when set)\n"
    "  opencode     ~/.config/opencode/plugins/ferry.js             .opencode/plugins/ferry.js\n"
    "               (or $XDG_CONFIG_HOME/opencode/plugins/ferry.js)\n"
    "cline and opencode hooks are files ferry writes whole, each marked \"ferry-hook\": install\n"
    "refuses to replace a file without that mark, uninstall removes only marked files.\n";

using Tool = HookTool;

}  // namespace

const std::vector<HookTool>& HookTools() {
  static const std::vector<HookTool> kTools = {
      {"claude-code",
       false,
       JsonStyle::kClaude,
       "CLAUDE_CONFIG_DIR",
       ".claude",
       "settings.json",
       {"SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure",
        "Notification", "Stop", "SubagentStop", "PreCompact", "SessionEnd"}},
      {"codex",
       true,
       JsonStyle::kClaude,
       "CODEX_HOME",
       ".codex",
       "config.toml",
       {"SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PreCompact",
        "SubagentStop", "Stop", "Interrupt", "SessionEnd"}},
      {"cursor",
       false,
       JsonStyle::kCursor,
       nullptr,
       ".cursor",
       "hooks.json",
       {"sessionStart", "beforeSubmitPrompt", "beforeShellExecution", "afterShellExecution",
        "beforeMCPExecution", "afterMCPExecution", "afterFileEdit", "afterAgentResponse", "stop",
        "sessionEnd"}},
      {"gemini",
       false,
       JsonStyle::kGemini,
       nullptr,
       ".gemini",
       "settings.json",
       {"SessionStart", "BeforeAgent", "AfterAgent", "BeforeTool", "AfterTool", "Notification",
        "PreCompress", "SessionEnd"}},
  };
  return kTools;
}

const std::vector<HookTool>& MoreHookTools() {
  // docs.github.com/en/copilot/reference/copilot-cli-reference/cli-hooks-reference: every
  // *.json in the folder is loaded, so ferry keeps its entries in a file of its own. The
  // PascalCase names select the payload with hook_event_name and session_id.
  // docs.windsurf.com/windsurf/cascade/hooks: user ~/.codeium/windsurf/hooks.json,
  // workspace .windsurf/hooks.json.
  static const std::vector<HookTool> kTools = {
      {"copilot",
       false,
       JsonStyle::kCopilot,
       nullptr,
       ".copilot/hooks",
       "ferry.json",
       {"SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PostToolUseFailure",
        "PreCompact", "SubagentStop", "Stop", "ErrorOccurred", "SessionEnd"},
       ".github/hooks"},
      {"windsurf",
       false,
       JsonStyle::kWindsurf,
       nullptr,
       ".codeium/windsurf",
       "hooks.json",
       {"pre_user_prompt", "pre_run_command", "post_run_command", "post_write_code",
        "pre_mcp_tool_use", "post_mcp_tool_use", "post_cascade_response"},
       ".windsurf"},
  };
  return kTools;
}

// Shared with hooks_files.cc (declared in hooks.h).
namespace hooks_io {

bool ReadFile(const std::string& path, std::string* out, bool* exists, std::string* error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *exists = false;
    if (errno == ENOENT) return true;
    *error = path + ": " + std::strerror(errno);
    return false;
  }
  *exists = true;
  out->clear();
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = path + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > (16u << 20)) {
      *error = path + ": larger than 16 MiB; not a config file ferry will edit";
      ::close(fd);
      return false;
    }
  }
  ::close(fd);
  return true;
}

bool MakeDirs(const std::string& dir, std::string* error) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos < dir.size() && dir[pos] != '/') continue;
    const std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
      *error = part + ": " + std::strerror(errno);
      return false;
    }
  }
  return true;
}

// Writes `text` to `path` through a temp file in the same directory, fsynced, renamed over.
bool WriteFileAtomic(const std::string& path, std::string_view text, mode_t mode,
                     std::string* error) {
  const std::string tmp = path + ".ferry-tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    *error = tmp + ": " + std::strerror(errno);
    return false;
  }
  ::fchmod(fd, mode);  // the umask must not narrow or widen what the file had
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  const bool ok = done == text.size() && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = path + ": " + std::strerror(ok ? errno : saved);
    ::unlink(tmp.c_str());
    return false;
  }
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

std::string UtcStamp() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  ::gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02d.%09ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long>(ts.tv_nsec));
  return buf;
}

// Backups of `path`, newest first.
std::vector<std::string> Backups(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = path.substr(0, slash);
  const std::string prefix = path.substr(slash + 1) + ".ferry-bak-";
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const struct dirent* e = ::readdir(d)) {
      const std::string_view name = e->d_name;
      if (name.starts_with(prefix)) out.push_back(dir + "/" + std::string(name));
    }
    ::closedir(d);
  }
  std::sort(out.rbegin(), out.rend());
  return out;
}

struct Plan {
  bool ok = false;
  std::string error;
  bool change = false;
  bool remove_file = false;
  std::string text;
};

// What uninstall should leave: the bytes of the newest backup taken before any install when
// its content is what is left after removing ferry's entries; else `computed`. `empty` says
// the result holds nothing but ferry's own skeleton, so a file install created goes away.
void PreferBackup(const Tool& tool, const std::string& path, bool empty, Plan* plan) {
  for (const auto& b : Backups(path)) {
    std::string text, ignored;
    bool exists = false;
    if (!ReadFile(b, &text, &exists, &ignored) || !exists) continue;
    if (tool.toml) {
      if (text.find(hooks::kTomlBegin) != std::string::npos) continue;
      if (text == plan->text || text + "\n" == plan->text) plan->text = text;
    } else {
      const auto edit = hooks::EditJson(text, tool.style, tool.events, "", false);
      if (!edit.ok || edit.removed > 0) continue;
      if (hooks::JsonEqual(text, plan->text)) plan->text = text;
    }
    return;  // only the newest pre-install backup can stand for "nothing else changed"
  }
  if (empty) plan->remove_file = true;
}

// A path that can go between double quotes in the hook's `sh -c '…'` script unescaped.
bool ShellSafe(const std::string& path) {
  return !path.empty() && path.front() == '/' &&
         path.find_first_of("\"$`\\'\n") == std::string::npos;
}

bool Executable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The ferry the hooks run: the one on PATH as found (not resolved: a symlink that a package
// upgrade repoints keeps working, and the command string, which Codex's trust hashes, stays
// the same), else the installed one, else this binary (a build tree: said so on install).
FerryBin ChooseFerry() {
  const char* env = std::getenv("PATH");
  const std::string path_var = env ? env : "";
  for (size_t pos = 0; pos <= path_var.size();) {
    size_t colon = path_var.find(':', pos);
    if (colon == std::string::npos) colon = path_var.size();
    const std::string dir = path_var.substr(pos, colon - pos);
    pos = colon + 1;
    if (dir.empty() || dir.front() != '/') continue;
    const std::string cand = dir + (dir.ends_with('/') ? "" : "/") + "ferry";
    if (!Executable(cand)) continue;
    if (ShellSafe(cand)) return {cand, "the ferry found on PATH"};
    break;  // the first one on PATH is what a shell would run; do not skip to another
  }
  const std::string installed = std::string(FERRY_INSTALL_BINDIR) + "/ferry";
  if (Executable(installed) && ShellSafe(installed)) return {installed, "the installed ferry"};
  return {SelfExePath(), "this binary, as there is no ferry on PATH or in " FERRY_INSTALL_BINDIR
                         "; install ferry and run this again, or the hooks stop recording when "
                         "this binary moves"};
}

Plan MakePlan(const Tool& tool, const std::string& path, const std::string& old_text, bool exists,
              bool install, const std::string& bin) {
  Plan plan;
  const std::string command = hooks::HookCommand(bin, tool.name);
  if (tool.toml) {
    auto edit = hooks::EditToml(old_text, tool.events, command, install);
    if (!edit.ok) {
      plan.error = edit.error;
      return plan;
    }
    plan.ok = true;
    plan.text = std::move(edit.text);
    plan.change = plan.text != old_text || (install && !exists);
    if (!install && edit.had_block) PreferBackup(tool, path, plan.text.empty(), &plan);
    return plan;
  }
  auto edit = hooks::EditJson(old_text, tool.style, tool.events, command, install);
  if (!edit.ok) {
    plan.error = edit.error;
    return plan;
  }
  plan.ok = true;
  if (!install && edit.removed == 0) return plan;
  plan.change = edit.changed || !exists;
  plan.text = std::move(edit.text);
  if (!install) PreferBackup(tool, path, edit.empty, &plan);
  return plan;
}

void Print(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }

}  // namespace hooks_io

using namespace hooks_io;

std::string HookConfigPath(const HookTool& tool, bool project, std::string* error) {
  if (project) {
    char cwd[4096];
    if (!::getcwd(cwd, sizeof cwd)) {
      *error = std::string("getcwd: ") + std::strerror(errno);
      return {};
    }
    return std::string(cwd) + "/" + (tool.project_dir ? tool.project_dir : tool.dir) + "/" +
           tool.file;
  }
  if (tool.home_env) {
    const char* dir = std::getenv(tool.home_env);
    if (dir && *dir) return std::string(dir) + "/" + tool.file;
  }
  const char* home = std::getenv("HOME");
  if (!home || !*home) {
    *error = "HOME is not set; use --scope project or set HOME";
    return {};
  }
  return std::string(home) + "/" + tool.dir + "/" + tool.file;
}

int RunHooks(int argc, char** argv) {
  HooksArgs a;
  std::string error;
  switch (ParseHooksArgs(argc, argv, &a, &error)) {
    case Parsed::kError:
      Complain(error);
      return kUsageExitCode;
    case Parsed::kHelp:
      std::fputs(kHooksHelp, stdout);
      return 0;
    case Parsed::kRun:
      break;
  }
  const std::string &action = a.action, &tool_name = a.tool, &scope = a.scope;
  const bool dry_run = a.dry_run;
  const bool install = action == "install";
  if (IsHookFilesTool(tool_name))
    return RunHookFiles(tool_name, install, scope == "project", dry_run);
  const Tool* tool = nullptr;
  for (const auto& t : HookTools())
    if (tool_name == t.name) tool = &t;
  for (const auto& t : MoreHookTools())
    if (tool_name == t.name) tool = &t;
  if (!tool) {
    Complain(
        "hooks: which tool? claude-code, codex, cursor, gemini, copilot, cline, windsurf "
        "or opencode, not \"" +
        tool_name + "\"");
    return 2;
  }

  std::string path = HookConfigPath(*tool, scope == "project", &error);
  if (path.empty()) {
    Complain("hooks: " + error);
    return 1;
  }
  // A config that is a symlink (dotfile managers) is edited where it points, so the rename
  // does not replace the link with a file.
  if (char* real = ::realpath(path.c_str(), nullptr)) {
    path = real;
    std::free(real);
  }
  std::string old_text;
  bool exists = false;
  struct stat st {};
  if (!ReadFile(path, &old_text, &exists, &error) || (exists && ::stat(path.c_str(), &st) != 0)) {
    Complain("hooks: " + (error.empty() ? path + ": " + std::strerror(errno) : error));
    return 1;
  }
  if (!install && !exists) {
    Print(path + ": no such file; nothing to uninstall\n");
    return 0;
  }
  const FerryBin bin = ChooseFerry();
  const Plan plan = MakePlan(*tool, path, old_text, exists, install, bin.path);
  if (!plan.ok) {
    Complain("hooks: " + path + ":" + plan.error + " (file left untouched)");
    return 1;
  }
  if (!plan.change) {
    Print(install
              ? path + ": ferry's " + tool->name + " hooks are already installed; nothing changed\n"
              : path + ": no ferry hooks in it; nothing changed\n");
    return 0;
  }
  const std::string new_text = plan.remove_file ? std::string() : plan.text;
  Print(hooks::UnifiedDiff(old_text, new_text, exists ? "a" + path : "/dev/null",
                           plan.remove_file ? "/dev/null" : "b" + path));
  if (dry_run) {
    Print("(dry run: nothing written)\n");
    return 0;
  }
  std::string backup;
  if (exists) {
    backup = path + ".ferry-bak-" + UtcStamp();
    if (!WriteFileAtomic(backup, old_text, st.st_mode & 07777, &error)) {
      Complain("hooks: backup failed, nothing changed: " + error);
      return 1;
    }
  }
  if (plan.remove_file) {
    if (::unlink(path.c_str()) != 0) {
      Complain("hooks: " + path + ": " + std::strerror(errno));
      return 1;
    }
  } else {
    const size_t slash = path.rfind('/');
    if (!MakeDirs(path.substr(0, slash), &error) ||
        !WriteFileAtomic(path, plan.text, exists ? st.st_mode & 07777 : 0644, &error)) {
      Complain("hooks: " + error);
      return 1;
    }
  }
  std::string done = install ? "installed ferry's " + std::string(tool->name) + " hooks in " + path
                     : plan.remove_file ? "removed " + path + " (ferry had created it)"
                                        : "removed ferry's hooks from " + path;
  if (!backup.empty()) {
    done += " (backup: " + backup + ")";
    // One backup per file: the newest. Older ones (ferry's, same file) go once this one is safe.
    for (const auto& old : Backups(path))
      if (old != backup) ::unlink(old.c_str());
  }
  Print(done + "\n");
  if (install) Print("the hooks run " + bin.path + " (" + bin.why + ")\n");
  if (install && tool->toml)
    Print("codex asks you to trust new hooks: open /hooks in codex once.\n");
  return 0;
}

}  // namespace ferry::client
