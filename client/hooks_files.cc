// `ferry hooks install|uninstall cline|opencode`: hosts whose hooks are whole files. Cline runs
// one executable per event from its hooks folder (docs.cline.bot/features/hooks/hook-reference);
// OpenCode loads every JS file in its plugins folder (opencode.ai/docs/plugins). ferry writes
// its own files there, each carrying the marker "ferry-hook" on its second line; it never
// replaces or removes a file without that marker, so a user's own hook stays as it is.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "client/common.h"
#include "client/hooks.h"
#include "client/hooks_edit.h"

namespace ferry::client {
namespace {

using namespace hooks_io;

constexpr const char* kFileMarker = "ferry-hook:";

// Cline's eight events (the hook file names); TaskComplete and PreCompact fire in newer
// releases only, and an event Cline does not know is simply never run.
const std::vector<std::string>& ClineEvents() {
  static const std::vector<std::string> kEvents = {"TaskStart",    "TaskResume",       "TaskCancel",
                                                   "TaskComplete", "UserPromptSubmit", "PreToolUse",
                                                   "PostToolUse",  "PreCompact"};
  return kEvents;
}

std::string ClineScript(const std::string& bin, const std::string& event) {
  // Cline's payload names the event in "hookName" and the task in "taskId"; --kind names it.
  return "#!/bin/sh\n"
         "# ferry-hook: written by `ferry hooks install cline`; `ferry hooks uninstall cline` "
         "removes it.\n"
         "# Records Cline's " +
         event +
         " event with ferry. Prints nothing and exits 0, so it never blocks Cline.\n"
         "f=\"" +
         bin +
         "\"; [ -x \"$f\" ] || f=$(command -v ferry 2>/dev/null) || f=; [ -n \"$f\" ] && exec "
         "\"$f\" emit --source cline --kind " +
         event + " --stdin; cat >/dev/null; exit 0\n";
}

// A JS string literal of `s` (ferry's path: ShellSafe, so no quote or backslash in it).
std::string JsString(const std::string& s) { return "\"" + s + "\""; }

std::string OpenCodePlugin(const std::string& bin) {
  return std::string(
             "// ferry: records OpenCode sessions, prompts and tool calls with `ferry emit`.\n"
             "// ferry-hook: written by `ferry hooks install opencode`; `ferry hooks uninstall "
             "opencode` removes it.\n"
             "// Each event is piped as JSON to `ferry emit --source opencode --stdin` in a child\n"
             "// process that is never awaited (killed after 10 s); nothing here throws.\n"
             "import { spawn } from \"node:child_process\";\n"
             "\n"
             "const FERRY = ") +
         JsString(bin) +
         ";\n"
         "const EVENTS = new Set([\"session.created\", \"session.idle\", \"session.compacted\",\n"
         "  \"session.error\", \"session.deleted\"]);\n"
         "\n"
         "function send(bin, body, fallback) {\n"
         "  try {\n"
         "    const child = spawn(bin, [\"emit\", \"--source\", \"opencode\", \"--stdin\"],\n"
         "      { stdio: [\"pipe\", \"ignore\", \"ignore\"] });\n"
         "    const timer = setTimeout(() => { try { child.kill(); } catch {} }, 10000);\n"
         "    if (timer.unref) timer.unref();\n"
         "    child.on(\"error\", () => { clearTimeout(timer); if (fallback) send(fallback, "
         "body, null); });\n"
         "    child.on(\"exit\", () => clearTimeout(timer));\n"
         "    child.stdin.on(\"error\", () => {});\n"
         "    child.stdin.end(body);\n"
         "    if (child.unref) child.unref();\n"
         "  } catch {}\n"
         "}\n"
         "\n"
         "function emit(kind, sessionId, cwd, data) {\n"
         "  try {\n"
         "    const body = JSON.stringify({ hook_event_name: kind, session_id: sessionId ?? null,\n"
         "      cwd, ...data });\n"
         "    send(FERRY, body, FERRY === \"ferry\" ? null : \"ferry\");\n"
         "  } catch {}\n"
         "}\n"
         "\n"
         "export const FerryPlugin = async ({ directory }) => ({\n"
         "  event: async ({ event }) => {\n"
         "    try {\n"
         "      if (!event || !EVENTS.has(event.type)) return;\n"
         "      const p = event.properties ?? {};\n"
         "      emit(event.type, p.sessionID ?? p.info?.id, directory, { properties: p });\n"
         "    } catch {}\n"
         "  },\n"
         "  \"chat.message\": async (input, output) => {\n"
         "    try {\n"
         "      emit(\"chat.message\", input?.sessionID, directory,\n"
         "        { message: output?.message, parts: output?.parts });\n"
         "    } catch {}\n"
         "  },\n"
         "  \"tool.execute.before\": async (input, output) => {\n"
         "    try {\n"
         "      emit(\"tool.execute.before\", input?.sessionID, directory,\n"
         "        { tool: input?.tool, call_id: input?.callID, args: output?.args });\n"
         "    } catch {}\n"
         "  },\n"
         "  \"tool.execute.after\": async (input, output) => {\n"
         "    try {\n"
         "      emit(\"tool.execute.after\", input?.sessionID, directory,\n"
         "        { tool: input?.tool, call_id: input?.callID, title: output?.title,\n"
         "          output: output?.output, metadata: output?.metadata });\n"
         "    } catch {}\n"
         "  },\n"
         "});\n";
}

struct FileSpec {
  std::string path;
  std::string text;
};

bool IsFerryFile(const std::string& text) {
  const size_t nl = text.find('\n');
  if (nl == std::string::npos) return false;
  const size_t end = text.find('\n', nl + 1);
  const std::string second = text.substr(nl + 1, end == std::string::npos ? end : end - nl - 1);
  return second.find(kFileMarker) != std::string::npos;
}

// Cline's "Documents" on Linux is what `xdg-user-dir DOCUMENTS` prints (cline/cline
// src/core/storage/disk.ts getDocumentsPath): XDG_DOCUMENTS_DIR from
// ${XDG_CONFIG_HOME:-~/.config}/user-dirs.dirs, "$HOME/..." expanded; else ~/Documents.
std::string DocumentsDir(const std::string& home) {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  const std::string conf =
      (xdg && *xdg == '/' ? std::string(xdg) : home + "/.config") + "/user-dirs.dirs";
  std::string text, ignored;
  bool exists = false;
  if (ReadFile(conf, &text, &exists, &ignored) && exists) {
    const std::string key = "XDG_DOCUMENTS_DIR=";
    for (size_t pos = 0; pos < text.size();) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(pos, end - pos);
      pos = end + 1;
      if (!line.starts_with(key)) continue;
      std::string v = line.substr(key.size());
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      if (v.starts_with("$HOME")) v = home + v.substr(5);
      if (!v.empty() && v.front() == '/') return v;
    }
  }
  return home + "/Documents";
}

// The folder ferry's files go in; "" with *error when it cannot be known.
std::string HookDir(const std::string& tool, bool project, std::string* error) {
  std::string base;
  if (project) {
    char cwd[4096];
    if (!::getcwd(cwd, sizeof cwd)) {
      *error = std::string("getcwd: ") + std::strerror(errno);
      return {};
    }
    return std::string(cwd) + (tool == "cline" ? "/.clinerules/hooks" : "/.opencode/plugins");
  }
  const char* home = std::getenv("HOME");
  if (tool == "opencode") {
    const char* xdg = std::getenv("XDG_CONFIG_HOME");
    if (xdg && *xdg == '/') return std::string(xdg) + "/opencode/plugins";
  }
  if (!home || !*home) {
    *error = "HOME is not set; use --scope project or set HOME";
    return {};
  }
  if (tool == "cline") return DocumentsDir(home) + "/Cline/Hooks";
  return std::string(home) + "/.config/opencode/plugins";
}

std::vector<FileSpec> Specs(const std::string& tool, const std::string& dir,
                            const std::string& bin) {
  std::vector<FileSpec> out;
  if (tool == "cline") {
    for (const auto& ev : ClineEvents()) out.push_back({dir + "/" + ev, ClineScript(bin, ev)});
  } else {
    out.push_back({dir + "/ferry.js", OpenCodePlugin(bin)});
  }
  return out;
}

}  // namespace

bool IsHookFilesTool(const std::string& tool) { return tool == "cline" || tool == "opencode"; }

HookFilesState InspectHookFiles(const std::string& tool, bool project) {
  HookFilesState st;
  st.dir = HookDir(tool, project, &st.error);
  if (st.dir.empty()) return st;
  for (const auto& spec : Specs(tool, st.dir, ChooseFerry().path)) {
    std::string text, error;
    bool exists = false;
    if (!ReadFile(spec.path, &text, &exists, &error) || !exists) {
      st.missing.push_back(spec.path);
    } else if (!IsFerryFile(text)) {
      st.foreign.push_back(spec.path);
    } else {
      st.present.push_back(spec.path);
      if (text != spec.text) st.stale.push_back(spec.path);
    }
  }
  return st;
}

// Plans every file first, refuses before writing anything when a file is not ferry's, then
// prints the diffs and (unless dry_run) writes or removes.
int RunHookFiles(const std::string& tool, bool install, bool project, bool dry_run) {
  std::string error;
  const std::string dir = HookDir(tool, project, &error);
  if (dir.empty()) {
    Complain("hooks: " + error);
    return 1;
  }
  const FerryBin bin = install ? ChooseFerry() : FerryBin{};
  struct Step {
    FileSpec spec;
    std::string old_text;
    bool exists = false;
  };
  std::vector<Step> steps;
  for (auto& spec : Specs(tool, dir, bin.path)) {
    Step st{std::move(spec), {}, false};
    if (!ReadFile(st.spec.path, &st.old_text, &st.exists, &error)) {
      Complain("hooks: " + error);
      return 1;
    }
    if (st.exists && !IsFerryFile(st.old_text)) {
      if (!install) continue;  // the user's own hook: not ferry's to remove
      Complain("hooks: " + st.spec.path +
               ": a hook ferry did not write (no \"ferry-hook:\" line); nothing changed. Move "
               "it away, or call `ferry emit --source " +
               tool + " --stdin` from it yourself");
      return 1;
    }
    if (install ? (st.exists && st.old_text == st.spec.text) : !st.exists) continue;
    steps.push_back(std::move(st));
  }
  if (steps.empty()) {
    Print(install ? dir + ": ferry's " + tool + " hooks are already installed; nothing changed\n"
                  : dir + ": no ferry hooks in it; nothing changed\n");
    return 0;
  }
  for (const auto& st : steps) {
    Print(hooks::UnifiedDiff(st.old_text, install ? st.spec.text : std::string(),
                             st.exists ? "a" + st.spec.path : "/dev/null",
                             install ? "b" + st.spec.path : "/dev/null"));
  }
  if (dry_run) {
    Print("(dry run: nothing written)\n");
    return 0;
  }
  if (install && !MakeDirs(dir, &error)) {
    Complain("hooks: " + error);
    return 1;
  }
  for (const auto& st : steps) {
    const bool ok =
        install ? WriteFileAtomic(st.spec.path, st.spec.text, tool == "cline" ? 0755 : 0644, &error)
                : ::unlink(st.spec.path.c_str()) == 0;
    if (!ok) {
      Complain("hooks: " + (install ? error : st.spec.path + ": " + std::strerror(errno)));
      return 1;
    }
    Print((install ? "wrote " : "removed ") + st.spec.path + "\n");
  }
  if (install) {
    Print("the hooks run " + bin.path + " (" + bin.why + ")\n");
    if (tool == "cline") Print("cline runs hooks once \"Enable Hooks\" is on in its settings.\n");
    if (tool == "opencode") Print("opencode loads the plugin when it starts.\n");
  }
  return 0;
}

}  // namespace ferry::client
