// ferry doctor's hook checks (doctor.h DoctorHooks): reads each host's config files through
// the same code `ferry hooks` edits them with, and runs ferry's installed command once.
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "client/doctor.h"
#include "client/hooks.h"
#include "client/hooks_edit.h"
#include "client/spool.h"

namespace ferry::client {
namespace {

using Check = DoctorCheck;

// Above this a hook eats a visible part of the agent's turn; over the shortest host budget
// (Claude Code gives SessionEnd hooks 1.5 s) it is killed and the event lost.
constexpr double kSlowMs = 500;
constexpr double kBudgetMs = 1500;

bool ReadAll(const std::string& path, std::string* out, bool* exists) {
  *exists = false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT;
  *exists = true;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && out->size() < (16u << 20))
    out->append(buf, static_cast<size_t>(n));
  ::close(fd);
  return n == 0;
}

bool IsDir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string Dir(const std::string& path) { return path.substr(0, path.rfind('/')); }

struct Found {
  std::string path;
  bool exists = false;
  std::vector<hooks::FerryEntry> entries;
  std::vector<std::string> trusted;  // Codex: [hooks.state."<key>"] keys with a trusted_hash
  bool bad = false;                  // unreadable or malformed: already reported
};

// ferry's entries in `path`; a file that does not parse is reported and counts as none.
Found Read(const HookTool& tool, const std::string& path, std::vector<Check>* out) {
  Found f;
  f.path = path;
  std::string text, error;
  if (!ReadAll(path, &text, &f.exists)) {
    out->push_back({Check::kFail, std::string("hooks ") + tool.name, path + ": cannot be read",
                    "ls -l " + path});
    return f;
  }
  if (!f.exists) return f;
  const bool ok = tool.toml ? hooks::ListFerryToml(text, &f.entries, &error, &f.trusted)
                            : hooks::ListFerryJson(text, tool.style, &f.entries, &error);
  if (!ok) {
    f.bad = true;
    out->push_back({Check::kFail, std::string("hooks ") + tool.name,
                    path + ":" + error + "; " + tool.name + " may not load it either",
                    "edit " + path + " (ferry hooks install " + tool.name +
                        " refuses to change it until it parses)"});
  }
  return f;
}

// The sample payload: every host's common fields and a tool response over the 64 KiB pipe
// buffer, so a command that does not read stdin to the end is caught (EPIPE).
std::string SamplePayload() {
  return "{\"session_id\":\"ferry-doctor\",\"hook_event_name\":\"PostToolUse\",\"cwd\":\"/\","
         "\"tool_name\":\"Bash\",\"tool_input\":{\"command\":\"true\"},\"tool_response\":"
         "{\"stdout\":\"" +
         std::string(128 << 10, 'x') + "\"},\"ferry_doctor\":true}";
}

int RemoveOne(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }

// Runs `command` as a host does (sh -c, payload on stdin) against a socket nobody listens on
// and a temporary state dir: ferry emit then spools the event there, which shows it ran, and
// the directory is removed afterwards, so nothing reaches the user's journal.
void RunInstalled(const HookTool& tool, const std::string& command, std::vector<Check>* out) {
  const std::string name = std::string("hook run ") + tool.name;
  char tmpl[] = "/tmp/ferry-doctor-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    out->push_back({Check::kWarn, name, "not run: cannot make a temporary directory in /tmp",
                    "check that /tmp is writable"});
    return;
  }
  const std::string tmp = tmpl, state = tmp + "/state";
  const ProgramRun r = RunProgram(
      {"/bin/sh", "-c", command},
      {{"FERRY_SOCKET", tmp + "/nobody.sock"}, {"FERRY_STATE_DIR", state}}, SamplePayload(), 10000);
  const SpoolCount spooled = CountSpool(state);
  ::nftw(tmp.c_str(), RemoveOne, 16, FTW_DEPTH | FTW_PHYS);
  char ms[32];
  std::snprintf(ms, sizeof ms, "%.0f ms", r.ms);
  const std::string fix = std::string("ferry hooks install ") + tool.name;
  if (!r.started) {
    out->push_back({Check::kFail, name, "could not start /bin/sh", "check that /bin/sh exists"});
  } else if (r.timed_out) {
    out->push_back(
        {Check::kFail, name,
         std::string("still running after 10 s: ") + tool.name + " kills it and the event is lost",
         fix});
  } else if (r.stdin_broken) {
    out->push_back({Check::kFail, name,
                    "exited before reading all of stdin: " + std::string(tool.name) +
                        " gets EPIPE on large payloads",
                    fix});
  } else if (r.exit_code != 0) {
    out->push_back({Check::kFail, name,
                    "exited " + std::to_string(r.exit_code) +
                        ": the host shows a hook error on every event (exit 2 blocks it)",
                    fix});
  } else if (!r.out.empty() || !r.err.empty()) {
    std::string what = r.out.empty() ? r.err : r.out;
    while (!what.empty() && std::isspace(static_cast<unsigned char>(what.back()))) what.pop_back();
    if (what.size() > 60) what = what.substr(0, 57) + "...";
    for (char& c : what)
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    out->push_back({Check::kFail, name,
                    std::string("printed on ") + (r.out.empty() ? "stderr" : "stdout") + " (\"" +
                        what + "\"): the host reads hook output as context or a decision",
                    fix});
  } else if (spooled.events == 0) {
    out->push_back({Check::kFail, name,
                    "ran no ferry: the binary in the command is gone and none is on PATH, so "
                    "events are dropped",
                    fix});
  } else if (r.ms > kBudgetMs) {
    out->push_back({Check::kFail, name,
                    std::string("took ") + ms + ": over the shortest host budget (1.5 s)",
                    "ferry status (is the machine or ferryd overloaded?)"});
  } else if (r.ms > kSlowMs) {
    out->push_back({Check::kWarn, name, std::string("took ") + ms + " (slow)",
                    "ferry status (is the machine or ferryd overloaded?)"});
  } else {
    out->push_back(
        {Check::kOk, name, std::string("drains stdin, prints nothing, exits 0 in ") + ms, ""});
  }
}

// "SessionStart" -> "session_start", as Codex names events in its trust keys.
std::string Snake(const std::string& ev) {
  std::string out;
  for (char c : ev) {
    if (std::isupper(static_cast<unsigned char>(c)) && !out.empty()) out += '_';
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// Codex runs a hook only once the user trusted it in /hooks, recorded as
// [hooks.state."<file>:<event>:<group>:<handler>"] trusted_hash. Without that entry ferry's
// hook never runs and Codex says nothing. (The hash itself is Codex's to check.)
void CheckCodexTrust(const Found& f, std::vector<Check>* out) {
  std::string real = f.path;
  if (char* r = ::realpath(f.path.c_str(), nullptr)) {
    real = r;
    std::free(r);
  }
  size_t untrusted = 0;
  for (const auto& e : f.entries) {
    const std::string key =
        ":" + Snake(e.event) + ":" + std::to_string(e.group) + ":" + std::to_string(e.handler);
    bool found = false;
    for (const auto& t : f.trusted) found |= t == f.path + key || t == real + key;
    untrusted += !found;
  }
  if (untrusted == 0) return;
  out->push_back({Check::kWarn, "hooks codex",
                  std::to_string(untrusted) + " of ferry's " + std::to_string(f.entries.size()) +
                      " hooks in " + f.path +
                      " are not trusted: Codex runs a hook only after you trust it, and says "
                      "nothing otherwise",
                  "open /hooks in codex and trust ferry's hooks"});
}

// One host: ferry's entries found once, in one scope, for every event, with timeouts.
void CheckTool(const HookTool& tool, std::vector<Check>* out) {
  const std::string name = std::string("hooks ") + tool.name;
  std::string error;
  const std::string user_path = HookConfigPath(tool, false, &error);
  const std::string project_path = HookConfigPath(tool, true, &error);
  const Found user = user_path.empty() ? Found{} : Read(tool, user_path, out);
  const Found project =
      project_path.empty() || project_path == user_path ? Found{} : Read(tool, project_path, out);
  if (!user.entries.empty() && !project.entries.empty()) {
    out->push_back({Check::kFail, name,
                    "installed in both " + user.path + " and " + project.path + ": every " +
                        tool.name + " event is recorded twice",
                    std::string("ferry hooks uninstall ") + tool.name + " --scope project"});
    return;
  }
  if (user.bad || project.bad) return;
  const Found& f = user.entries.empty() && !project.entries.empty() ? project : user;
  const std::string install =
      std::string("ferry hooks install ") + tool.name + (&f == &project ? " --scope project" : "");
  if (f.entries.empty()) {
    // The host's own folder (~/.copilot for ~/.copilot/hooks/ferry.json): it exists once the
    // host ran, before any hook folder does.
    std::string where = user_path.empty() ? "" : Dir(user_path);
    const std::string rel = tool.dir;
    if (rel.find('/') != std::string::npos && where.ends_with("/" + rel))
      where = where.substr(0, where.size() - rel.size() + rel.find('/'));
    out->push_back({Check::kOk, name,
                    !where.empty() && IsDir(where)
                        ? "not installed (`" + install + "` records " + tool.name + ")"
                        : std::string(tool.name) + " is not set up here (no " + where + ")",
                    ""});
    return;
  }
  std::map<std::string, int> per_event;
  int without_timeout = 0;
  for (const auto& e : f.entries) {
    ++per_event[e.event];
    without_timeout += !e.has_timeout;
  }
  const size_t before = out->size();
  for (const auto& [ev, n] : per_event) {
    if (n > 1)
      out->push_back({Check::kFail, name,
                      ev + " has " + std::to_string(n) + " ferry handlers in " + f.path +
                          ": each " + ev + " is recorded " + std::to_string(n) + " times",
                      install});
  }
  std::string missing;
  for (const auto& ev : tool.events)
    if (!per_event.count(ev)) missing += (missing.empty() ? "" : ", ") + ev;
  if (!missing.empty())
    out->push_back({Check::kWarn, name,
                    "not subscribed to " + missing + " (installed by an older ferry?)", install});
  if (without_timeout > 0)
    out->push_back({Check::kWarn, name,
                    std::to_string(without_timeout) + " ferry handler(s) in " + f.path +
                        " without a timeout: a stuck hook holds " + tool.name +
                        " up to its default (600 s for Claude Code and Codex)",
                    install});
  if (tool.toml) CheckCodexTrust(f, out);
  if (out->size() == before)
    out->push_back({Check::kOk, name,
                    "installed once in " + f.path + " (" + std::to_string(per_event.size()) +
                        (tool.style == hooks::JsonStyle::kWindsurf && !tool.toml
                             ? " events; windsurf has no hook timeout)"
                             : " events, timeouts set)"),
                    ""});
  RunInstalled(tool, f.entries.front().command, out);
}

// Cursor also runs the hooks in Claude Code's settings files ("third-party hooks"): with
// ferry in both, a Cursor event is recorded twice, once labelled claude-code.
void CheckCursorRunsClaude(std::vector<Check>* out) {
  const auto& tools = HookTools();
  const HookTool *claude = nullptr, *cursor = nullptr;
  for (const auto& t : tools) {
    if (std::string_view(t.name) == "claude-code") claude = &t;
    if (std::string_view(t.name) == "cursor") cursor = &t;
  }
  std::string error;
  std::vector<std::string> claude_files = {HookConfigPath(*claude, false, &error),
                                           HookConfigPath(*claude, true, &error)};
  if (!claude_files[1].empty())
    claude_files.push_back(Dir(claude_files[1]) + "/settings.local.json");
  std::vector<std::string> cursor_files = {HookConfigPath(*cursor, false, &error),
                                           HookConfigPath(*cursor, true, &error)};
  std::vector<Check> ignored;
  auto first_with_ferry = [&](const HookTool& t, const std::vector<std::string>& files) {
    for (const auto& p : files)
      if (!p.empty() && !Read(t, p, &ignored).entries.empty()) return p;
    return std::string();
  };
  const std::string in_cursor = first_with_ferry(*cursor, cursor_files);
  const std::string in_claude = first_with_ferry(*claude, claude_files);
  if (in_cursor.empty() || in_claude.empty()) return;
  out->push_back({Check::kFail, "hooks cursor",
                  "ferry is in both " + in_cursor + " and " + in_claude +
                      ": Cursor runs Claude Code's hooks too, so each Cursor event is recorded "
                      "twice, once labelled claude-code",
                  "turn off \"Third-party hooks\" in Cursor's settings (Hooks), or, without "
                  "Claude Code: ferry hooks uninstall claude-code"});
}

// cline and opencode: hosts whose hooks are files ferry owns whole (hooks_files.cc). ferry's
// files in the user scope, else the project scope; cline's scripts are run once like the
// other hosts' commands (opencode's plugin needs OpenCode's JS runtime, so it is not run).
void CheckHookFiles(const std::string& tool, std::vector<Check>* out) {
  const std::string name = "hooks " + tool;
  HookFilesState st = InspectHookFiles(tool, false);
  const bool user = !st.present.empty();
  if (!user) {
    HookFilesState project = InspectHookFiles(tool, true);
    if (!project.present.empty()) st = std::move(project);
  }
  if (st.dir.empty()) {
    out->push_back({Check::kWarn, name, "not checked: " + st.error, ""});
    return;
  }
  const std::string install = "ferry hooks install " + tool + (user ? "" : " --scope project");
  if (st.present.empty()) {
    out->push_back({Check::kOk, name,
                    IsDir(Dir(st.dir))
                        ? "not installed (`ferry hooks install " + tool + "` records " + tool + ")"
                        : tool + " is not set up here (no " + Dir(st.dir) + ")",
                    ""});
    return;
  }
  auto names = [](const std::vector<std::string>& paths) {
    std::string s;
    for (const auto& p : paths) s += (s.empty() ? "" : ", ") + p.substr(p.rfind('/') + 1);
    return s;
  };
  const size_t before = out->size();
  if (!st.missing.empty())
    out->push_back({Check::kWarn, name,
                    "no ferry hook for " + names(st.missing) + " in " + st.dir +
                        " (installed by an older ferry, or removed)",
                    install});
  if (!st.foreign.empty())
    out->push_back({Check::kWarn, name,
                    names(st.foreign) + " in " + st.dir +
                        " is not ferry's: those events are not recorded unless it calls "
                        "`ferry emit --source " +
                        tool + " --stdin`",
                    ""});
  if (!st.stale.empty())
    out->push_back({Check::kWarn, name,
                    names(st.stale) + " in " + st.dir +
                        " differs from what this ferry writes (an older ferry, another ferry "
                        "binary, or edited)",
                    install});
  if (out->size() == before)
    out->push_back({Check::kOk, name,
                    "installed in " + st.dir + " (" + std::to_string(st.present.size()) +
                        (tool == "cline" ? " event scripts)" : " plugin)"),
                    ""});
  if (tool == "cline") {
    const HookTool cline{"cline", false, hooks::JsonStyle::kClaude, nullptr, "", "", {}};
    std::string quoted = "'";
    for (char c : st.present.front())
      quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    RunInstalled(cline, quoted + "'", out);
  }
}

}  // namespace

void DoctorHooks(std::vector<DoctorCheck>* out) {
  for (const auto& tool : HookTools()) CheckTool(tool, out);
  for (const auto& tool : MoreHookTools()) CheckTool(tool, out);
  for (const char* tool : {"cline", "opencode"}) CheckHookFiles(tool, out);
  CheckCursorRunsClaude(out);
}

}  // namespace ferry::client
