// `ferry doctor` (doctor.h): runs every check, prints one line each and the fix for each
// problem. The hook checks are in hooks_doctor.cc.
#include "client/doctor.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>

#include "client/args.h"
#include "client/common.h"
#include "client/conn.h"
#include "client/show.h"  // NowNs
#include "client/spool.h"
#include "proto/event.h"
#include "proto/messages.h"
#include "proto/paths.h"

namespace ferry::client {
namespace {

using Check = DoctorCheck;

constexpr const char* kDoctorHelp =
    "usage: ferry doctor [--json] [--timeout DURATION]\n"
    "\n"
    "Checks what commonly goes wrong and prints one line per check (ok, warn or FAIL), with\n"
    "the command that fixes each problem:\n"
    "  daemon     ferryd answers on the socket and says it is healthy (STATUS)\n"
    "  socket     the socket's directory is yours and closed to others\n"
    "  state      the state directory and its files are yours alone (0700/0600)\n"
    "  config     `ferryd --check-config` accepts the config (the ferryd next to ferry, on\n"
    "             PATH, or the installed one)\n"
    "  spool      no events wait in the spool, none was rejected\n"
    "  sink NAME  each upstream sink delivers (not paused, backing off or dead-lettering)\n"
    "  hooks HOST ferry's hooks are installed once per host (one scope; for Cursor not also\n"
    "             through Claude Code's settings), for every event, with a timeout\n"
    "  hook run HOST  the installed command, run once with a sample payload against a\n"
    "             throwaway socket and state dir (nothing is recorded): reads all of stdin,\n"
    "             prints nothing, exits 0, within 1.5 s\n"
    "  shell      your shell's rc file loads `ferry init`, or a shell sent events today\n"
    "  latency    per host and event: the time from `ferry emit` to ferryd, last 24 h\n"
    "\n"
    "  --json          one JSON object: {\"checks\":[{name,status,message,fix}],\"exit\":N}\n"
    "  --timeout DURATION  how long to wait for each ferryd answer (default 2s)\n"
    "\n"
    "Exit status: 0 every check ok, 1 a problem found (warn or FAIL), 2 usage,\n"
    "3 ferryd not reachable (the checks that need no ferryd still run).\n";

constexpr const char* kStartFerryd =
    "systemctl --user start ferryd.socket ferryd.service (not installed? ferry service "
    "install), or run ferryd in a terminal";

const rapidjson::Value& Get(const rapidjson::Value& obj, const char* a, const char* b = nullptr) {
  static const rapidjson::Value kNull;
  if (!obj.IsObject()) return kNull;
  auto it = obj.FindMember(a);
  if (it == obj.MemberEnd()) return kNull;
  return b ? Get(it->value, b) : it->value;
}
std::string S(const rapidjson::Value& v) { return v.IsString() ? v.GetString() : ""; }
unsigned long long U(const rapidjson::Value& v) { return v.IsUint64() ? v.GetUint64() : 0; }
double D(const rapidjson::Value& v) { return v.IsNumber() ? v.GetDouble() : 0; }

std::string Octal(mode_t m) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

std::string Dir(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// One request/answer with ferryd; false with *error on no answer or an ERROR answer.
bool Ask(const std::string& socket, proto::FrameType req, const std::string& body,
         proto::FrameType want, unsigned long long timeout_ms, rapidjson::Document* doc,
         std::string* error) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  Connection conn;
  proto::FrameType type;
  std::string answer;
  if (!conn.Connect(socket, deadline, error) ||
      !conn.Send(proto::EncodeFrame(req, body), deadline, error) ||
      !conn.Receive(deadline, &type, &answer, error))
    return false;
  proto::Error perr;
  if (type != want) {
    proto::ParseErrorBody(answer, &perr);
    *error = std::string(proto::ErrcName(perr.code)) + ": " + perr.message;
    return false;
  }
  if (!proto::ParseJson(answer, doc, &perr) || !doc->IsObject()) {
    *error = "unreadable answer: " + perr.message;
    return false;
  }
  return true;
}

void CheckDaemon(const std::string& socket, const rapidjson::Document* st, const std::string& err,
                 std::vector<Check>* out) {
  if (!st && err.find("timed out") != std::string::npos) {
    out->push_back({Check::kFail, "daemon",
                    "ferryd takes connections on " + socket +
                        " but does not answer (stopped, hung or overloaded): " + err,
                    "systemctl --user restart ferryd (or kill the stuck ferryd and start it)"});
    return;
  }
  if (!st) {
    out->push_back(
        {Check::kFail, "daemon", "ferryd does not answer on " + socket + ": " + err, kStartFerryd});
    return;
  }
  const std::string who = "ferryd " + S(Get(*st, "daemon", "version")) + " (pid " +
                          std::to_string(U(Get(*st, "daemon", "pid"))) + ") answers on " + socket;
  const auto& healthy = Get(*st, "healthy");
  if (healthy.IsBool() && healthy.GetBool()) {
    out->push_back({Check::kOk, "daemon", who + " and is healthy", ""});
    return;
  }
  std::string problems;
  if (Get(*st, "problems").IsArray())
    for (const auto& p : Get(*st, "problems").GetArray())
      problems += (problems.empty() ? "" : "; ") + S(p);
  out->push_back({Check::kWarn, "daemon", who + " but is degraded: " + problems,
                  "ferry status (says what each problem needs)"});
}

// A directory that other users could write lets them replace the socket or read events.
void CheckSocket(const std::string& socket, bool up, std::vector<Check>* out) {
  const std::string dir = Dir(socket);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (!up) out->push_back({Check::kFail, "socket", dir + " does not exist", kStartFerryd});
    return;
  }
  if (st.st_uid != ::getuid() || (st.st_mode & 022) != 0) {
    out->push_back({Check::kFail, "socket",
                    dir + " is mode " + Octal(st.st_mode) +
                        (st.st_uid != ::getuid() ? ", another user's" : "") +
                        ": others could replace the socket and take your events",
                    "chmod 700 " + dir + " (or use $XDG_RUNTIME_DIR/ferry)"});
    return;
  }
  struct stat sk {};
  if (::lstat(socket.c_str(), &sk) != 0) {
    if (!up) out->push_back({Check::kFail, "socket", "no socket at " + socket, kStartFerryd});
    return;
  }
  if (!S_ISSOCK(sk.st_mode)) {
    out->push_back({Check::kFail, "socket", socket + " is not a socket",
                    "rm " + socket + " (ferryd makes a new one), then start ferryd"});
    return;
  }
  out->push_back(
      {Check::kOk, "socket", socket + " in " + dir + " (" + Octal(st.st_mode) + ")", ""});
}

// The state dir holds every recorded command and prompt: it must be the user's alone.
void CheckState(const std::string& dir, std::vector<Check>* out) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    out->push_back(
        {Check::kWarn, "state", dir + " does not exist yet (ferryd makes it)", kStartFerryd});
    return;
  }
  if (st.st_uid != ::getuid() || (st.st_mode & 077) != 0) {
    out->push_back(
        {Check::kFail, "state",
         dir + " is mode " + Octal(st.st_mode) + ": other users can read what ferry recorded",
         "chmod 700 " + dir});
    return;
  }
  std::string open_file;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const struct dirent* e = ::readdir(d)) {
      const std::string p = dir + "/" + e->d_name;
      struct stat fs {};
      if (e->d_name[0] != '.' && ::lstat(p.c_str(), &fs) == 0 && (fs.st_mode & 077) != 0 &&
          !S_ISLNK(fs.st_mode)) {
        open_file = p + " is mode " + Octal(fs.st_mode);
        break;
      }
    }
    ::closedir(d);
  }
  if (!open_file.empty()) {
    out->push_back(
        {Check::kFail, "state", open_file + ": others can read it", "chmod -R go= " + dir});
    return;
  }
  out->push_back({Check::kOk, "state", dir + " is yours alone (" + Octal(st.st_mode) + ")", ""});
}

void CheckSpool(const std::string& state_dir, bool up, std::vector<Check>* out) {
  const std::string dir = state_dir + "/spool";
  SpoolCount n = CountSpool(state_dir);
  // A running ferryd imports a new spool file at once: give it a moment before calling
  // what is there a problem.
  for (int i = 0; up && n.files > 0 && i < 20; ++i) {
    ::usleep(100 * 1000);
    n = CountSpool(state_dir);
  }
  unsigned long long rejected = 0;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const struct dirent* e = ::readdir(d))
      rejected += std::string_view(e->d_name).ends_with(".rejected");
    ::closedir(d);
  }
  if (n.files > 0) {
    out->push_back(
        {up ? Check::kWarn : Check::kFail, "spool",
         std::to_string(n.events) + " event(s) in " + std::to_string(n.files) +
             " file(s) wait in " + dir +
             (up ? ": ferryd is not importing them" : ": ferryd imports them when it runs"),
         up ? "ferry status (spool), and ferryd's log" : kStartFerryd});
  } else if (rejected > 0) {
    out->push_back({Check::kWarn, "spool",
                    std::to_string(rejected) + " file(s) ferryd could not import are kept in " +
                        dir + " as *.rejected",
                    "read them (ferryd's log says why), then rm " + dir + "/*.rejected"});
  } else {
    out->push_back({Check::kOk, "spool", "empty", ""});
  }
}

void CheckSinks(const rapidjson::Document& st, std::vector<Check>* out) {
  const auto& sinks = Get(st, "sinks");
  if (!sinks.IsArray() || sinks.Empty()) {
    out->push_back({Check::kOk, "sinks", "none configured", ""});
    return;
  }
  for (const auto& s : sinks.GetArray()) {
    const std::string name = "sink " + S(Get(s, "name")), state = S(Get(s, "state"));
    const auto failures = U(Get(s, "consecutive_failures"));
    std::string why = S(Get(s, "last_error", "message"));
    if (U(Get(s, "last_error", "status")) > 0)
      why = "HTTP " + std::to_string(U(Get(s, "last_error", "status"))) + " " + why;
    if (state == "paused" || state == "stopped") {
      out->push_back({Check::kFail, name, state + ": " + why,
                      "ferry status; fix the cause, then ferry flush --sink " + S(Get(s, "name"))});
    } else if (failures > 0) {
      out->push_back({Check::kWarn, name,
                      std::to_string(failures) + " failure(s) in a row (" + why + "); next retry " +
                          S(Get(s, "next_retry")),
                      "ferry status (last error), then ferry flush --sink " + S(Get(s, "name"))});
    } else if (U(Get(s, "deadlettered")) > 0) {
      out->push_back({Check::kWarn, name,
                      std::to_string(U(Get(s, "deadlettered"))) +
                          " event(s) the server rejected are dead-lettered",
                      "ferry deadletter list --sink " + S(Get(s, "name"))});
    } else {
      out->push_back({Check::kOk, name,
                      state + ", " + std::to_string(U(Get(s, "lag_events"))) +
                          " event(s) behind; last success " +
                          (Get(s, "last_success").IsString() ? S(Get(s, "last_success")) : "never"),
                      ""});
    }
  }
}

std::string Cell(const rapidjson::Value& v) {
  if (v.IsString()) return v.GetString();
  if (v.IsNumber()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v.GetDouble());
    return buf;
  }
  return "";
}

// Hook latency per host and event: `received - ts`, from ferry emit stamping the event to
// ferryd taking it, over the last 24 h. Events that went through the spool (over 1 s) are
// counted apart: their time is the import's.
void CheckLatency(const std::string& socket, unsigned long long timeout_ms,
                  std::vector<Check>* out) {
  const std::string since = std::to_string(NowNs() - 86400LL * 1000000000);
  const std::string sql =
      "SELECT source, kind, count(*), avg(CASE WHEN d < 1000 THEN d END), "
      "max(CASE WHEN d < 1000 THEN d END), sum(d >= 1000) FROM (SELECT source, kind, "
      "(received - ts) / 1e6 AS d FROM events WHERE received > " +
      since +
      " AND source NOT IN ('bash', 'zsh', 'fish') AND kind IS NOT NULL) "
      "GROUP BY source, kind ORDER BY source, kind";
  rapidjson::Document doc;
  std::string error;
  if (!Ask(socket, proto::FrameType::kQueryReq, proto::MakeQueryRequestBody({sql, 200}),
           proto::FrameType::kQueryResult, timeout_ms, &doc, &error) ||
      !Get(doc, "rows").IsArray()) {
    out->push_back({Check::kOk, "latency", "not available (" + error + ")", ""});
    return;
  }
  std::map<std::string, std::pair<std::string, Check::Status>> per_source;
  for (const auto& row : doc["rows"].GetArray()) {
    if (!row.IsArray() || row.Size() < 6) continue;
    auto& [text, status] = per_source[Cell(row[0])];
    const double avg = D(row[3]);
    const unsigned long long spooled = row[5].IsNumber() ? row[5].GetUint64() : 0;
    text += (text.empty() ? "" : "; ") + Cell(row[1]) + " " + std::to_string(row[2].GetUint64()) +
            "x avg " + Cell(row[3]) + " ms max " + Cell(row[4]) + " ms" +
            (spooled ? " (" + std::to_string(spooled) + " spooled)" : "");
    if (avg > 50 || spooled > 0) status = Check::kWarn;
  }
  if (per_source.empty()) {
    out->push_back({Check::kOk, "latency", "no agent hook events in the last 24 h", ""});
    return;
  }
  for (const auto& [source, v] : per_source) {
    out->push_back({v.second, "latency " + source, v.first,
                    v.second == Check::kOk ? ""
                                           : "ferry status (a slow or busy ferryd makes emit "
                                             "spool after 50 ms)"});
  }
}

// Cursor runs Claude Code's hooks too: its events then arrive labelled claude-code, which
// the payload gives away (Cursor's cursor_version and conversation_id).
void CheckMislabelled(const std::string& socket, unsigned long long timeout_ms,
                      std::vector<Check>* out) {
  const std::string sql =
      "SELECT count(*) FROM events WHERE source = 'claude-code' AND received > " +
      std::to_string(NowNs() - 86400LL * 1000000000) +
      " AND json_valid(payload) AND (json_extract(payload, '$.cursor_version') IS NOT NULL OR "
      "json_extract(payload, '$.conversation_id') IS NOT NULL)";
  rapidjson::Document doc;
  std::string error;
  if (!Ask(socket, proto::FrameType::kQueryReq, proto::MakeQueryRequestBody({sql, 1}),
           proto::FrameType::kQueryResult, timeout_ms, &doc, &error) ||
      !Get(doc, "rows").IsArray() || doc["rows"].Empty() || !doc["rows"][0].IsArray() ||
      !doc["rows"][0][0].IsUint64() || doc["rows"][0][0].GetUint64() == 0)
    return;
  out->push_back({Check::kWarn, "hooks cursor",
                  std::to_string(doc["rows"][0][0].GetUint64()) +
                      " event(s) labelled claude-code in the last 24 h came from Cursor "
                      "(cursor_version or conversation_id in the payload): Cursor runs Claude "
                      "Code's hooks",
                  "ferry hooks install cursor, and turn off \"Third-party hooks\" in Cursor's "
                  "settings (Hooks)"});
}

// The snippet for the user's shell in its rc file, or shell events recorded today.
void CheckShell(const std::string& socket, bool up, unsigned long long timeout_ms,
                std::vector<Check>* out) {
  const char* home_env = std::getenv("HOME");
  const std::string home = home_env ? home_env : "";
  const char* sh_env = std::getenv("SHELL");
  std::string shell = sh_env ? sh_env : "";
  shell = shell.substr(shell.rfind('/') + 1);
  const std::map<std::string, std::string> rc = {{"bash", home + "/.bashrc"},
                                                 {"zsh", home + "/.zshrc"},
                                                 {"fish", home + "/.config/fish/config.fish"}};
  std::string found_in, found_shell;
  for (const auto& [sh, path] : rc) {
    std::string text;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < (1u << 20))
      text.append(buf, static_cast<size_t>(n));
    ::close(fd);
    if (text.find("ferry init " + sh) == std::string::npos) continue;
    if (sh == shell || found_in.empty()) found_in = path, found_shell = sh;
  }
  if (!found_in.empty() && (found_shell == shell || shell.empty())) {
    out->push_back({Check::kOk, "shell", found_in + " loads `ferry init " + found_shell + "`", ""});
    return;
  }
  if (up) {
    rapidjson::Document doc;
    std::string error;
    const std::string sql =
        "SELECT source, count(*) FROM events WHERE source IN ('bash', "
        "'zsh', 'fish') AND received > " +
        std::to_string(NowNs() - 86400LL * 1000000000) + " GROUP BY source";
    if (Ask(socket, proto::FrameType::kQueryReq, proto::MakeQueryRequestBody({sql, 10}),
            proto::FrameType::kQueryResult, timeout_ms, &doc, &error) &&
        Get(doc, "rows").IsArray() && !doc["rows"].Empty()) {
      out->push_back(
          {Check::kOk, "shell", Cell(doc["rows"][0][0]) + " sent events in the last 24 h", ""});
      return;
    }
  }
  const std::string want = rc.count(shell) ? shell : "bash";
  const std::string line =
      want == "fish" ? "ferry init fish | source" : "eval \"$(ferry init " + want + ")\"";
  out->push_back({Check::kWarn, "shell",
                  found_in.empty() ? "no rc file loads `ferry init` and no shell sent events "
                                     "today: shell commands are not recorded"
                                   : found_in + " loads `ferry init " + found_shell +
                                         "` but your shell is " + shell,
                  "echo '" + line + "' >> " + rc.at(want) + ", then open a new shell"});
}

void Print(const std::vector<Check>& checks, bool json, int code) {
  static const char* kNames[] = {"ok", "warn", "FAIL"};
  if (!json) {
    for (const auto& c : checks) {
      std::printf("%-4s  %s: %s\n", kNames[c.status], c.name.c_str(), c.message.c_str());
      if (!c.fix.empty()) std::printf("      fix: %s\n", c.fix.c_str());
    }
    return;
  }
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  w.StartObject();
  w.Key("checks");
  w.StartArray();
  for (const auto& c : checks) {
    w.StartObject();
    w.Key("name");
    w.String(c.name.c_str());
    w.Key("status");
    w.String(c.status == Check::kFail ? "fail" : kNames[c.status]);
    w.Key("message");
    w.String(c.message.c_str());
    w.Key("fix");
    w.String(c.fix.c_str());
    w.EndObject();
  }
  w.EndArray();
  w.Key("exit");
  w.Int(code);
  w.EndObject();
  std::printf("%s\n", sb.GetString());
}

}  // namespace

int RunDoctor(int argc, char** argv) {
  DoctorArgs a;
  std::string error;
  switch (ParseDoctorArgs(argc, argv, &a, &error)) {
    case Parsed::kError:
      Complain(error);
      return kUsageExitCode;
    case Parsed::kHelp:
      std::fputs(kDoctorHelp, stdout);
      return 0;
    case Parsed::kRun:
      break;
  }
  ::signal(SIGPIPE, SIG_IGN);  // a hook that stops reading must not kill the doctor
  const std::string socket = ResolveSocket(a.global), state_dir = ResolveStateDir(a.global);
  rapidjson::Document status;
  const bool up = Ask(socket, proto::FrameType::kStatusReq, proto::MakeStatusRequestBody(),
                      proto::FrameType::kStatus, a.timeout_ms, &status, &error);
  std::vector<Check> checks;
  CheckDaemon(socket, up ? &status : nullptr, error, &checks);
  CheckSocket(socket, up, &checks);
  CheckState(state_dir, &checks);
  DoctorConfig(a.global, &checks);
  CheckSpool(state_dir, up, &checks);
  if (up) {
    CheckSinks(status, &checks);
  } else {
    checks.push_back({Check::kWarn, "sinks", "not checked: ferryd does not answer", ""});
  }
  DoctorHooks(&checks);
  CheckShell(socket, up, a.timeout_ms, &checks);
  if (up) CheckMislabelled(socket, a.timeout_ms, &checks);
  if (up) CheckLatency(socket, a.timeout_ms, &checks);
  int code = 0;
  for (const auto& c : checks)
    if (c.status != Check::kOk) code = 1;
  if (!up) code = 3;
  Print(checks, a.json, code);
  return code;
}

}  // namespace ferry::client
