// `ferry relay` (client/relay.h): a shell's events, read from a FIFO, sent one by one with
// emit's code.
//
// Decisions someone might otherwise "fix":
// - The relay holds its FIFO open read-write, and so does the shell: a write from the prompt
//   hook never meets a FIFO without a reader (no SIGPIPE, no EPIPE, no open(2) that blocks),
//   and what a killed relay left unread stays in the FIFO for the relay the hook starts next.
//   So the relay never sees EOF: it ends when the shell process is gone (a pidfd), not when a
//   writer closes, and a subshell or child that inherited the shell's fd cannot keep it alive.
// - The JSON is built here, not in the shell: the hook then only prints raw fields, and bash
//   hands over its `history 1` output without a command substitution (a fork).
// - Each event gets emit's own connect, timeout (emit's default unless --timeout-ms), ack
//   check and spool: a relay adds no second way for an event to get lost.
// - The relay yields to the prompt: SCHED_BATCH (a wakeup does not preempt the shell) and a
//   10 ms pause after the shell writes, before reading and sending (kSettleNs). Without
//   them the relay's work landed on the prompt's time on a loaded machine (docs/benchmarks.md
//   "Run L-prompt").
#include "client/relay.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "client/args.h"
#include "client/client_errors.h"
#include "client/common.h"
#include "client/emit.h"
#include "proto/event.h"

namespace ferry::client {
namespace {

constexpr const char* kRelayHelp =
    "usage: ferry relay --source S --session ID --shell-pid PID [--fifo PATH] [--timeout-ms N]\n"
    "       ferry relay --stdin --source S --session ID [--shell-pid PID] [--timeout-ms N]\n"
    "\n"
    "Used by the `ferry init` snippets; not needed by hand. Starts a per-shell relay that\n"
    "reads the shell's events from a FIFO and sends each to ferryd like `ferry emit` (acked,\n"
    "or spooled), so the prompt never forks. Prints \"<relay pid> <fifo path>\" and exits 0;\n"
    "the relay itself exits when the shell PID is gone, after sending what it has read and a\n"
    "session_end event if the shell sent none.\n"
    "  --source S       the shell: bash, zsh or fish\n"
    "  --session ID     the shell's session id\n"
    "  --shell-pid PID  the shell process the relay serves (and the events' pid)\n"
    "  --fifo PATH      the FIFO to read (reused when it exists; default: a new\n"
    "                   relay-<PID>-<random>.fifo in the directory of ferryd's socket)\n"
    "  --stdin          send the records read from stdin, then exit (no relay is started)\n"
    "  --timeout-ms N   each event's budget for connect, send and ack (default: emit's)\n"
    "Records: fields \"name=value\" ended by NUL, a record by an empty field (client/relay.h).\n";

// How long the relay waits after the shell wrote before it reads and sends (Serve).
constexpr long kSettleNs = 10'000'000;

volatile sig_atomic_t g_stop = 0;
void OnStop(int) { g_stop = 1; }

std::string JsonStr(std::string_view text) {
  const std::string clean = proto::SanitizeUtf8(text);
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  w.String(clean.data(), static_cast<rapidjson::SizeType>(clean.size()));
  return std::string(sb.GetString(), sb.GetSize());
}

// A decimal integer (an optional '-' then digits), or "" when `v` is not one.
std::string_view Integer(std::string_view v) {
  const size_t digits = v.starts_with('-') ? 1 : 0;
  if (v.size() <= digits || v.size() > 20) return {};
  for (size_t i = digits; i < v.size(); ++i)
    if (v[i] < '0' || v[i] > '9') return {};
  return v;
}

// `v` (already an Integer) as a number, clamped to what a duration in ns can hold.
long long ToNumber(std::string_view v, long long max) {
  long long n = 0;
  const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec == std::errc::result_out_of_range) return v.starts_with('-') ? 0 : max;
  return ec == std::errc() ? std::min(n, max) : 0;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v'; }

// Does `cmd` end with a lone & (zsh: also &! or &|), i.e. run in the background?
bool EndsAsync(std::string_view cmd, bool zsh) {
  while (!cmd.empty() && IsSpace(cmd.back())) cmd.remove_suffix(1);
  if (cmd.size() >= 2 && cmd.back() == '&') {
    const char before = cmd[cmd.size() - 2];
    return before != '&' && before != '|' && before != '>' && before != '\\';
  }
  return zsh && cmd.size() >= 2 && cmd[cmd.size() - 2] == '&' &&
         (cmd.back() == '!' || cmd.back() == '|');
}

bool Ignored(std::string_view cmd, std::string_view patterns) {
  if (cmd.empty() || IsSpace(cmd.front())) return true;
  const std::string text(cmd);
  while (!patterns.empty()) {
    const size_t colon = patterns.find(':');
    const std::string pat(patterns.substr(0, colon));
    patterns = colon == std::string_view::npos ? std::string_view() : patterns.substr(colon + 1);
    if (!pat.empty() && ::fnmatch(pat.c_str(), text.c_str(), 0) == 0) return true;
  }
  return false;
}

// bash's `history 1` line ("  42  make test", "  42* make" when edited) -> text and number.
bool SplitHistory(std::string_view line, std::string_view* text, std::string_view* id) {
  if (line.ends_with('\n')) line.remove_suffix(1);
  size_t i = 0;
  while (i < line.size() && line[i] == ' ') ++i;
  const size_t start = i;
  while (i < line.size() && line[i] >= '0' && line[i] <= '9') ++i;
  if (i == start) return false;
  *id = line.substr(start, i - start);
  if (i < line.size() && line[i] == '*') ++i;
  if (line.substr(i, 2) != "  ") return false;
  *text = line.substr(i + 2);
  return true;
}

}  // namespace

// Over 80 lines: one field table read top to bottom into one payload.
bool BuildRelayEvent(std::string_view source, std::string_view record, RelayEvent* out,
                     std::string* why) {
  std::string_view kind, cwd, json, command, history, ignore, status, pipestatus, bg;
  std::string_view start, end, duration, duration_ms, hist_id;
  bool has_command = false, has_history = false;
  while (!record.empty()) {
    const size_t nul = record.find('\0');
    const std::string_view field = record.substr(0, nul);
    record = nul == std::string_view::npos ? std::string_view() : record.substr(nul + 1);
    const size_t eq = field.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = field.substr(0, eq), value = field.substr(eq + 1);
    if (name == "kind")
      kind = value;
    else if (name == "cwd")
      cwd = value;
    else if (name == "json")
      json = value;
    else if (name == "command")
      command = value, has_command = true;
    else if (name == "history")
      history = value, has_history = true;
    else if (name == "ignore")
      ignore = value;
    else if (name == "status")
      status = Integer(value);
    else if (name == "pipestatus")
      pipestatus = value;
    else if (name == "bg")
      bg = value;
    else if (name == "start_ns")
      start = Integer(value);
    else if (name == "end_ns")
      end = Integer(value);
    else if (name == "duration_ns")
      duration = Integer(value);
    else if (name == "duration_ms")
      duration_ms = Integer(value).empty() ? "0" : Integer(value);
    else if (name == "hist_id")
      hist_id = Integer(value);
  }
  why->clear();
  if (kind.empty()) {
    *why = "relay: a record without kind= (dropped)";
    return false;
  }
  out->kind = kind;
  out->cwd = cwd;
  std::string p = "{";
  p += json;
  auto member = [&p](std::string_view name, std::string_view value) {
    if (p.size() > 1) p += ',';
    p += '"';
    p += name;
    p += "\":";
    p += value;
  };
  if (kind == "command") {
    if (has_history && !has_command) {
      std::string_view id;
      if (!SplitHistory(history, &command, &id)) return false;  // not a saved line
      if (hist_id.empty()) hist_id = id;
      has_command = true;
    }
    if (!has_command || Ignored(command, ignore)) return false;
    member("command", JsonStr(command));
    if (!bg.empty() && EndsAsync(command, source == "zsh")) {
      member("background", "true");
    } else {
      const std::string_view st = status.empty() ? "0" : status;
      member("exit_status", st);
      std::string list;
      for (size_t i = 0; i < pipestatus.size();) {
        const size_t sp = pipestatus.find(' ', i);
        const std::string_view one = Integer(pipestatus.substr(i, sp - i));
        if (!one.empty()) list += (list.empty() ? "" : ",") + std::string(one);
        i = sp == std::string_view::npos ? pipestatus.size() : sp + 1;
      }
      member("pipestatus", "[" + (list.empty() ? std::string(st) : list) + "]");
    }
    if (!start.empty()) member("started_at_ns", start);
    if (!duration.empty()) {
      member("duration_ns", duration);
    } else if (!duration_ms.empty()) {
      const long long ms = ToNumber(duration_ms, INT64_MAX / 1000000);
      member("duration_ns", std::to_string(ms > 0 ? ms * 1000000 : 0));
    } else if (!start.empty() && !end.empty()) {
      const long long d = ToNumber(end, INT64_MAX / 2) - ToNumber(start, INT64_MAX / 2);
      member("duration_ns", std::to_string(d < 0 ? 0 : d));
    }
    member("cwd", JsonStr(cwd));
    if (!hist_id.empty()) member("hist_id", hist_id);
  }
  out->payload = p + "}";
  return true;
}

namespace {

class Relay {
 public:
  Relay(const RelayArgs& a, int host_pid) : a_(a), host_pid_(host_pid) {}

  // Sends every complete record in buf_ (keeping an unfinished one).
  void SendRecords() {
    size_t from = 0;
    for (;;) {
      while (from < buf_.size() && buf_[from] == '\0') ++from;  // stray NULs: resynchronise
      const size_t end = FindEnd(from);
      if (end == std::string::npos) break;
      Send(std::string_view(buf_).substr(from, end - from));
      from = end + 2;
    }
    buf_.erase(0, from);
  }
  std::string& buf() { return buf_; }
  bool ended() const { return ended_; }

  // The relay's own session_end, when the shell went without sending one.
  void SendEnd() {
    const std::string rec = std::string("kind=session_end") + '\0' +
                            "json=\"shell\":" + JsonStr(a_.source) +
                            ",\"session\":" + JsonStr(a_.session) +
                            ",\"pid\":" + std::to_string(host_pid_) + ",\"ended_by\":\"relay\"";
    Send(rec);
  }

 private:
  // Offset of the "\0\0" that ends the record starting at `from` (a record's fields are never
  // empty, so its first empty field is its end), or npos.
  size_t FindEnd(size_t from) const { return buf_.find(std::string_view("\0\0", 2), from); }

  void Send(std::string_view record) {
    if (record.empty() || record.front() == '\0') return;
    RelayEvent ev;
    std::string why;
    if (!BuildRelayEvent(a_.source, record, &ev, &why)) {
      if (!why.empty()) RecordClientProblem(ResolveStateDir(a_.global), why);
      return;
    }
    if (ev.kind == "session_end") ended_ = true;
    std::vector<std::string> args = {"--source",  a_.source,  "--kind", ev.kind,
                                     "--session", a_.session, "--stdin"};
    if (!ev.cwd.empty()) args.insert(args.end(), {"--cwd", ev.cwd});
    if (a_.timeout_ms) args.insert(args.end(), {"--timeout-ms", std::to_string(a_.timeout_ms)});
    for (auto [flag, value] :
         {std::pair<const char*, const std::string&>{"--socket", a_.global.socket},
          {"--state-dir", a_.global.state_dir},
          {"--config", a_.global.config}}) {
      if (!value.empty()) args.insert(args.end(), {flag, value});
    }
    std::vector<char*> argv;
    for (std::string& s : args) argv.push_back(s.data());
    EmitEvent(static_cast<int>(argv.size()), argv.data(), std::move(ev.payload), host_pid_,
              Clock::now());
  }

  const RelayArgs& a_;
  const int host_pid_;
  std::string buf_;
  bool ended_ = false;
};

// Reads what `fd` (non-blocking) has now into relay's buffer; false at EOF or an error.
bool ReadAvailable(int fd, Relay* relay) {
  char chunk[65536];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n > 0) {
      relay->buf().append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }
}

bool ShellGone(int pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

// The detached relay's life: read and send until the shell is gone or a signal stops it.
void Serve(const RelayArgs& a, int fifo) {
  const int pid = static_cast<int>(a.shell_pid);
  Relay relay(a, pid);
  int pidfd = -1;
#ifdef SYS_pidfd_open
  pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#endif
  bool gone = ShellGone(pid);
  while (!gone && !g_stop) {
    struct pollfd fds[2] = {{fifo, POLLIN, 0}, {pidfd, POLLIN, 0}};
    const int n = ::poll(fds, pidfd >= 0 ? 2 : 1, pidfd >= 0 ? -1 : 1000);
    if (n < 0 && errno != EINTR) break;
    if (n > 0 && (fds[0].revents & POLLIN)) {
      // The shell wrote a record and is drawing its prompt now: let it have the CPU first.
      // (A signal cuts the pause short; the next poll sees the FIFO still readable.)
      struct timespec pause {
        0, kSettleNs
      };
      ::nanosleep(&pause, nullptr);
      ReadAvailable(fifo, &relay);
    }
    relay.SendRecords();
    gone = (pidfd >= 0 && n > 0 && (fds[1].revents & POLLIN)) || ShellGone(pid);
  }
  // What the shell wrote before it went (its session_end among it) is in the FIFO now.
  ReadAvailable(fifo, &relay);
  relay.SendRecords();
  if (gone) {
    if (!relay.ended()) relay.SendEnd();
    ::unlink(a.fifo.c_str());
  }
}

std::string DefaultFifo(const RelayArgs& a) {
  std::string dir = ResolveSocket(a.global);
  const size_t slash = dir.rfind('/');
  dir = slash == std::string::npos ? "." : dir.substr(0, slash);
  ::mkdir(dir.c_str(), 0700);  // ferryd makes it too; EEXIST is the usual answer
  std::random_device rd;
  char name[64];
  std::snprintf(name, sizeof name, "/relay-%llu-%08x.fifo", a.shell_pid, rd());
  return dir + name;
}

// Opens (making it when missing) the FIFO read-write; -1 with *error set on failure.
int OpenFifo(const std::string& path, std::string* error) {
  if (::mkfifo(path.c_str(), 0600) != 0 && errno != EEXIST) {
    *error = "cannot make the FIFO " + path + ": " + std::strerror(errno);
    return -1;
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode) || st.st_uid != ::getuid()) {
    *error = path + " is not a FIFO of this user" +
             (fd < 0 ? std::string(": ") + std::strerror(errno) : std::string());
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

// The detached child: its own session (no terminal signals), stdio on /dev/null, and no fd
// of the shell's but the FIFO (a tty held open would outlive the shell's terminal).
void Detach(int* fifo) {
  ::setsid();
  const int null = ::open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3; ++fd) ::dup2(null, fd);
  const int keep = ::fcntl(*fifo, F_DUPFD_CLOEXEC, 3);
  for (int fd = 3; fd < 1024; ++fd)
    if (fd != keep) ::close(fd);
  *fifo = keep;
  struct sigaction sa {};
  sa.sa_handler = OnStop;  // no SA_RESTART: poll() returns, the loop sees g_stop
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  // SCHED_BATCH: the same CPU share as any process, but waking up (the shell's write) does
  // not preempt the shell, which is drawing its prompt at that moment.
  struct sched_param param {};
  ::sched_setscheduler(0, SCHED_BATCH, &param);
}

}  // namespace

int RunRelay(int argc, char** argv) {
  RelayArgs a;
  std::string error;
  switch (ParseRelayArgs(argc, argv, &a, &error)) {
    case Parsed::kError:
      Complain(error);
      return kUsageExitCode;
    case Parsed::kHelp:
      std::fputs(kRelayHelp, stdout);
      return 0;
    case Parsed::kRun:
      break;
  }
  if (a.use_stdin) {
    ::signal(SIGPIPE, SIG_IGN);
    Relay relay(a, a.shell_pid ? static_cast<int>(a.shell_pid) : static_cast<int>(::getppid()));
    ::fcntl(0, F_SETFL, ::fcntl(0, F_GETFL) & ~O_NONBLOCK);
    char chunk[65536];
    for (ssize_t n; (n = ::read(0, chunk, sizeof chunk)) != 0;) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      relay.buf().append(chunk, static_cast<size_t>(n));
    }
    relay.buf().append(2, '\0');  // a last record without its end is still sent
    relay.SendRecords();
    return 0;
  }
  if (a.fifo.empty()) a.fifo = DefaultFifo(a);
  int fifo = OpenFifo(a.fifo, &error);
  if (fifo < 0) {
    Complain("relay: " + error);
    return 1;
  }
  std::fflush(stdout);
  const pid_t child = ::fork();
  if (child < 0) {
    Complain(std::string("relay: fork: ") + std::strerror(errno));
    return 1;
  }
  if (child == 0) {
    Detach(&fifo);
    Serve(a, fifo);
    ::_exit(0);
  }
  std::printf("%d %s\n", static_cast<int>(child), a.fifo.c_str());
  return 0;
}

}  // namespace ferry::client
