// bench/emit_payload_bench: what `ferry emit --source claude-code --stdin` costs with a hook
// payload on stdin (2 KB and 200 KB), with ferryd up (acked) and down (the spool path), next
// to the floor client (bench/floor_client.c, daemon up only) and a static no-op process, in
// interleaved rounds. Reports p50/p90/p99 wall time per call (posix_spawn to wait4; the
// payload file is the child's stdin) and the child's CPU time (user + system, from wait4),
// which does not grow when other work on a shared machine delays the process. Figures:
// docs/benchmarks-spool.md.
//
//   emit_payload_bench [-n N] [--round R] [--warmup W] [--ferryd PATH] [--ferry PATH]
//                      [--floor PATH] [--noop PATH]
//
// Exit 0 when every call exited 0, every acked event reached the journal and every spooled
// one left exactly one spool file.
//
//   emit_payload_bench --vs-floor DIR [-n N] [--round R] [--warmup W] [--ferryd PATH]
//                      [--ferry PATH] [--before PATH] [--ferryd-before PATH]
//
// The hook sizes against the floor of docs/benchmarks-emit.md: DIR holds the shared floor's
// nop_static, hookclient and ackserver (make -f floor/Makefile B=DIR). One run interleaves
// nop_static, hookclient -> ackserver (250 B line), `ferry --version` (exec and static init of
// ferry alone), `ferry emit --socket S --data <22 B>` (hook_latency's call), and `ferry emit`
// the way a hook calls it (no --socket: the socket comes from the config file named by
// FERRY_CONFIG) with a Claude Code payload of 200 B, 2 KB and 20 KB, each via --data and via
// --stdin, and the floor client again with as many bytes as the 2 KB and 20 KB payloads (the
// floor at that size: column "/ floor same size"; bench/sized_hookclient above 4096 bytes). Reports
// medians and each program's ratio to hookclient's median. --before PATH adds the same ferry calls
// made with another build (the one before a change), interleaved in the same run. --ferryd-before
// PATH starts a second ferryd from PATH (its own state dir) and adds the emit calls again against
// it (rows "ferryd-before: ..."), so a change in ferryd is measured against the build before it in
// the same run; with --before too, those rows use the
// --before client. It also prints each ferryd's CPU time per acked event (from /proc).
// Compare ferryds in a run without --before: with it, the first ferryd answers twice the
// emits and measured ~20 us slower per emit for that alone (the same binary on both sides).
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_util.h"

extern char** environ;

namespace ferry::bench {
namespace {

struct Options {
  size_t n = 500, round = 10, warmup = 20;
  std::string ferryd = ExeDir() + "/../daemon/ferryd";
  std::string ferry = ExeDir() + "/../client/ferry";
  std::string floor = ExeDir() + "/floor_client";
  std::string noop = ExeDir() + "/noop";
  std::string vs_floor;       // the shared floor's build folder: run the matrix instead
  std::string before;         // --vs-floor: also time this ferry (an older build), same run
  std::string ferryd_before;  // --vs-floor: also time the emits against this ferryd, same run
};

struct Program {
  std::string name;
  std::vector<std::string> args;
  std::string stdin_path;  // empty: /dev/null
  std::vector<double> ms;
  std::vector<double> cpu_ms;  // the child's user + system time
  size_t failures = 0;
  size_t payload_bytes = 0;  // emits with a hook payload: its size
};

// FERRY_CONFIG per program name (--ferryd-before's rows); the others get g_default_config.
std::map<std::string, std::string> g_program_config;
std::string g_default_config;

double RunOnce(const Program& p, double* cpu_ms) {
  const auto own = g_program_config.find(p.name);
  const std::string& config = own == g_program_config.end() ? g_default_config : own->second;
  if (!config.empty()) ::setenv("FERRY_CONFIG", config.c_str(), 1);
  std::vector<char*> argv;
  std::vector<std::string> args = p.args;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(
      &actions, 0, p.stdin_path.empty() ? "/dev/null" : p.stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  const SpawnResult run = SpawnAndWait(argv.data(), &actions);
  posix_spawn_file_actions_destroy(&actions);
  *cpu_ms = run.cpu_ms;
  return run.exited_zero() ? run.wall_ms : -1;
}

// A Claude Code PostToolUse payload of about `size` bytes (a Read result).
std::string MakePayload(size_t size) {
  std::string head =
      R"({"session_id":"3f2c9a1e-7b4d-4c1a-9e8f-2d6b5a0c7e41","transcript_path":"/home/u/.claude/)"
      R"(projects/p/3f2c9a1e.jsonl","cwd":"/home/u/src/ferry","permission_mode":"default",)"
      R"("hook_event_name":"PostToolUse","tool_name":"Read","tool_input":{"file_path":"/home/u/)"
      R"(src/ferry/daemon/journal/journal.cc"},"tool_response":{"type":"text","file":{"content":")";
  const std::string tail = R"("}},"tool_use_id":"toolu_01Nu1lByTe5sAr3eVa1iD0kK"})";
  std::string line = "  const size_t n = Flush(buffer_, \\\"journal\\\");\\n";
  while (head.size() + tail.size() + line.size() < size) head += line;
  return head + tail;
}

size_t CountAndRemove(const std::string& dir) {
  size_t n = 0;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  while (struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    ++n;
    ::unlink((dir + "/" + name).c_str());
  }
  ::closedir(d);
  return n;
}

// Interleaved rounds of R calls per program; the first program rotates every round.
// `between` runs untimed after each round.
template <typename F>
void Measure(std::vector<Program*> programs, const Options& o, F between) {
  for (size_t i = 0; i < o.warmup; ++i)
    for (Program* p : programs) {
      double cpu = 0;
      RunOnce(*p, &cpu);
    }
  between();
  for (Program* p : programs) {
    p->ms.clear();
    p->cpu_ms.clear();
  }
  size_t round = 0;
  while (programs.back()->ms.size() + programs.back()->failures < o.n) {
    for (size_t k = 0; k < programs.size(); ++k) {
      Program& p = *programs[(k + round) % programs.size()];
      for (size_t i = 0; i < o.round && p.ms.size() + p.failures < o.n; ++i) {
        double cpu = 0;
        const double ms = RunOnce(p, &cpu);
        if (ms < 0) {
          p.failures++;
        } else {
          p.ms.push_back(ms);
          p.cpu_ms.push_back(cpu);
        }
      }
    }
    between();
    ++round;
  }
}

bool WriteFile(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

// A Claude Code Stop payload of about 200 bytes (the smallest events hooks send).
std::string SmallPayload() {
  return R"({"session_id":"3f2c9a1e-7b4d-4c1a-9e8f-2d6b5a0c7e41","transcript_path":"/home/u/.claude/)"
         R"(projects/p/3f2c9a1e.jsonl","cwd":"/home/u/src/ferry","hook_event_name":"Stop"})";
}

// The --vs-floor run (see the top of this file). Takes its time: one Measure over 10
// programs so that machine noise hits them alike.
int MatrixMain(const Options& o) {
  const std::string nop = o.vs_floor + "/nop_static", hook = o.vs_floor + "/hookclient",
                    ack = o.vs_floor + "/ackserver";
  for (const std::string* p : {&nop, &hook, &ack, &o.ferry, &o.ferryd}) {
    if (!IsExecutable(*p)) {
      std::fprintf(stderr, "emit_payload_bench: %s is not an executable\n", p->c_str());
      return 2;
    }
  }
  TempDir dir("ferry-emit-floor-");
  Daemon daemon;
  std::string error;
  if (!daemon.Start(o.ferryd, dir.path(), "interval", &error)) {
    std::fprintf(stderr, "emit_payload_bench: %s\n", error.c_str());
    return 1;
  }
  const std::string floor_sock = dir.path() + "/floor.sock";
  pid_t ack_pid = -1;
  {
    std::vector<std::string> args = {
        ack, "-s", floor_sock, "-m", "write", "-j", dir.path() + "/floor.journal"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&ack_pid, ack.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      std::perror("spawn ackserver");
      return 1;
    }
    for (int i = 0, fd = -1; i < 500 && fd < 0; ++i) {
      fd = ConnectUnix(floor_sock, &error);
      if (fd >= 0)
        ::close(fd);
      else
        ::usleep(10000);
    }
  }
  // How a hook finds the socket: the config file (here named by FERRY_CONFIG).
  const std::string client_config = dir.path() + "/client.toml";
  const std::string state = dir.path() + "/emit-state";
  WriteFile(client_config, "socket = \"" + daemon.socket() + "\"\nstate_dir = \"" + state + "\"\n");
  ::setenv("FERRY_CONFIG", client_config.c_str(), 1);
  g_default_config = client_config;
  Daemon before_daemon;
  const std::string before_config = dir.path() + "/before/client.toml";
  if (!o.ferryd_before.empty()) {
    ::mkdir((dir.path() + "/before").c_str(), 0700);
    if (!before_daemon.Start(o.ferryd_before, dir.path() + "/before", "interval", &error)) {
      std::fprintf(stderr, "emit_payload_bench: %s\n", error.c_str());
      return 1;
    }
    WriteFile(before_config,
              "socket = \"" + before_daemon.socket() + "\"\nstate_dir = \"" + state + "\"\n");
  }
  ::unsetenv("FERRY_SOCKET");
  ::unsetenv("FERRY_STATE_DIR");

  std::vector<Program> programs;
  programs.push_back({"nop_static", {nop}, "", {}, {}, 0});
  programs.push_back({"hookclient 250 B (floor)", {hook, floor_sock}, "", {}, {}, 0});
  programs.push_back({"ferry --version", {o.ferry, "--version"}, "", {}, {}, 0});
  programs.push_back({"emit --socket --data 22 B",
                      {o.ferry, "emit", "--socket", daemon.socket(), "--source", "bench", "--kind",
                       "hook", "--data", R"({"tool":"Bash","n":1})", "--strict"},
                      "",
                      {},
                      {},
                      0});
  for (size_t size : {size_t{200}, size_t{2} << 10, size_t{20} << 10}) {
    const std::string payload = size == 200 ? SmallPayload() : MakePayload(size);
    const std::string path = dir.path() + "/payload-" + std::to_string(size) + ".json";
    if (!WriteFile(path, payload)) {
      std::perror("write payload");
      return 1;
    }
    const std::string label = std::to_string(payload.size()) + " B";
    programs.push_back({"emit --data " + label,
                        {o.ferry, "emit", "--source", "claude-code", "--kind", "PostToolUse",
                         "--data", payload, "--strict"},
                        "",
                        {},
                        {},
                        0,
                        payload.size()});
    programs.push_back({"emit --stdin " + label,
                        {o.ferry, "emit", "--source", "claude-code", "--stdin", "--strict"},
                        path,
                        {},
                        {},
                        0,
                        payload.size()});
  }
  const size_t count = programs.size();
  if (!o.before.empty()) {
    for (size_t i = 2; i < count; ++i) {
      Program p = programs[i];
      p.name = "before: " + p.name;
      p.args[0] = o.before;
      programs.push_back(p);
    }
  }
  if (!o.ferryd_before.empty()) {
    for (size_t i = 3; i < count; ++i) {  // the emits; "--socket" names the socket itself
      Program p = programs[i];
      p.name = "ferryd-before: " + p.name;
      if (!o.before.empty()) p.args[0] = o.before;
      for (size_t a = 0; a + 1 < p.args.size(); ++a) {
        if (p.args[a] == "--socket") p.args[a + 1] = before_daemon.socket();
      }
      g_program_config[p.name] = before_config;
      programs.push_back(p);
    }
  }
  // The floor again with as many bytes as each payload over 250 B: what moving those bytes
  // costs any client and server on this machine, so the 2 KB and 20 KB emits also get a ratio
  // to a floor of their own size. The shared hookclient sends at most 4096 bytes; above that,
  // bench/sized_hookclient.c (the same program with a 64 KiB buffer).
  const std::string sized_hook = ExeDir() + "/sized_hookclient";
  std::map<size_t, size_t> sized_floor;  // payload bytes -> the floor program's index
  for (size_t i = 0; i < programs.size(); ++i) {
    const size_t bytes = programs[i].payload_bytes;
    if (bytes <= 250 || sized_floor.count(bytes) != 0) continue;
    if (bytes > 4096 && !IsExecutable(sized_hook)) continue;
    sized_floor[bytes] = programs.size();
    programs.push_back({(bytes > 4096 ? "sized_hookclient " : "hookclient ") +
                            std::to_string(bytes) + " B (floor)",
                        {bytes > 4096 ? sized_hook : hook, floor_sock, std::to_string(bytes)},
                        "",
                        {},
                        {},
                        0,
                        bytes});
  }
  const double cpu_start = (ProcCpuSeconds(daemon.pid()) * 1000.0);
  const double before_cpu_start =
      o.ferryd_before.empty() ? 0 : (ProcCpuSeconds(before_daemon.pid()) * 1000.0);
  const MachineInfo m = GetMachineInfo();
  const std::string load_start = LoadAverage();
  std::vector<Program*> ptrs;
  for (auto& p : programs) ptrs.push_back(&p);
  Measure(ptrs, o, [] {});
  size_t events_now = 0, events_before = 0;  // emits answered by each ferryd (warmup included)
  for (size_t i = 3; i < programs.size(); ++i) {
    const size_t calls = (o.warmup + o.n);
    if (g_program_config.count(programs[i].name) != 0) {
      events_before += calls;
    } else if (programs[i].name.rfind("emit", 0) == 0 ||
               programs[i].name.rfind("before: emit", 0) == 0) {
      events_now += calls;
    }
  }
  const double cpu_now = (ProcCpuSeconds(daemon.pid()) * 1000.0) - cpu_start;
  const double cpu_before = o.ferryd_before.empty()
                                ? 0
                                : (ProcCpuSeconds(before_daemon.pid()) * 1000.0) - before_cpu_start;
  const size_t spooled = CountAndRemove(state + "/spool");
  daemon.Stop();
  if (!o.ferryd_before.empty()) before_daemon.Stop();
  ::kill(ack_pid, SIGTERM);
  ::waitpid(ack_pid, nullptr, 0);

  std::printf("emit_payload_bench --vs-floor: %zu calls per program, rounds of %zu, %zu warmup\n",
              o.n, o.round, o.warmup);
  std::printf("machine: %ld cpu(s), %s, kernel %s; load %s at start, %s at end\n\n", m.cpus,
              m.cpu_model.c_str(), m.kernel.c_str(), load_start.c_str(), LoadAverage().c_str());
  std::vector<std::vector<std::string>> rows = {{"program", "p50 ms", "/ floor",
                                                 "/ floor same size", "p90 ms", "p99 ms",
                                                 "cpu p50 ms", "cpu / floor", "fail"}};
  const Summary floor = Summarize(programs[1].ms);
  const Summary floor_cpu = Summarize(programs[1].cpu_ms);
  bool ok = spooled == 0;
  for (const Program& p : programs) {
    const Summary s = Summarize(p.ms);
    const Summary c = Summarize(p.cpu_ms);
    const auto sized = sized_floor.find(p.payload_bytes);
    const bool same_size = sized != sized_floor.end() && &p != &programs[sized->second];
    rows.push_back({p.name, Fmt("%.3f", s.p50), Fmt("%.2fx", s.p50 / floor.p50),
                    same_size ? Fmt("%.2fx", s.p50 / Summarize(programs[sized->second].ms).p50)
                              : std::string("-"),
                    Fmt("%.3f", s.p90), Fmt("%.3f", s.p99), Fmt("%.3f", c.p50),
                    Fmt("%.2fx", c.p50 / floor_cpu.p50), std::to_string(p.failures)});
    ok = ok && p.failures == 0;
  }
  PrintTable(rows);
  std::printf(
      "\nferryd CPU (user + system, whole process incl. the store thread) per emit: %.1f us"
      " over %zu events",
      events_now ? cpu_now * 1000.0 / static_cast<double>(events_now) : 0.0, events_now);
  if (!o.ferryd_before.empty()) {
    std::printf("; ferryd-before: %.1f us over %zu events",
                events_before ? cpu_before * 1000.0 / static_cast<double>(events_before) : 0.0,
                events_before);
  }
  std::printf("\nspooled (missed the ack): %zu; target: every ferry emit p50 <= 1.10x floor\n",
              spooled);
  if (!o.before.empty() && !o.ferryd_before.empty()) {
    std::printf(
        "note: with --before, this run's ferryd answers twice the emits ferryd-before does and"
        " measured ~20 us slower per emit for it (same binary on both sides); compare ferryds"
        " in a run without --before\n");
  }
  return ok ? 0 : 1;
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (!v) {
      std::fprintf(stderr, "emit_payload_bench: %s needs a value\n", argv[i]);
      return 2;
    }
    ++i;
    if (a == "-n") {
      o.n = std::stoul(v);
    } else if (a == "--round") {
      o.round = std::stoul(v);
    } else if (a == "--warmup") {
      o.warmup = std::stoul(v);
    } else if (a == "--ferryd") {
      o.ferryd = v;
    } else if (a == "--ferry") {
      o.ferry = v;
    } else if (a == "--floor") {
      o.floor = v;
    } else if (a == "--noop") {
      o.noop = v;
    } else if (a == "--vs-floor") {
      o.vs_floor = v;
    } else if (a == "--before") {
      o.before = v;
    } else if (a == "--ferryd-before") {
      o.ferryd_before = v;
    } else {
      std::fprintf(stderr, "emit_payload_bench: unknown argument %s\n", argv[i - 1]);
      return 2;
    }
  }
  if (!o.vs_floor.empty()) return MatrixMain(o);
  TempDir dir("ferry-emit-payload-");
  Daemon daemon;
  std::string error;
  ::mkdir((dir.path() + "/up").c_str(), 0700);
  if (!daemon.Start(o.ferryd, dir.path() + "/up", "interval", &error)) {
    std::fprintf(stderr, "emit_payload_bench: %s\n", error.c_str());
    return 1;
  }
  const std::string down_state = dir.path() + "/down-state";
  const std::string down_socket = dir.path() + "/no-ferryd.sock";
  const std::string spool = down_state + "/spool";
  // Where an acked-case call spools if it misses its budget (counted, not hidden).
  const std::string up_state = dir.path() + "/up-state";

  const MachineInfo m = GetMachineInfo();
  std::printf("emit_payload_bench: %zu calls per program and case, rounds of %zu, %zu warmup\n",
              o.n, o.round, o.warmup);
  std::printf("machine: %ld cpu(s), %s, kernel %s; load %s\n\n", m.cpus, m.cpu_model.c_str(),
              m.kernel.c_str(), LoadAverage().c_str());

  std::vector<std::vector<std::string>> rows = {
      {"case", "program", "p50 ms", "p90 ms", "p99 ms", "max ms", "cpu p50", "cpu p99", "fail"}};
  bool ok = true;
  for (size_t size : {size_t{2} << 10, size_t{200} << 10}) {
    const std::string payload_path = dir.path() + "/payload-" + std::to_string(size) + ".json";
    const std::string payload = MakePayload(size);
    {
      const int fd = ::open(payload_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd < 0 ||
          ::write(fd, payload.data(), payload.size()) != static_cast<ssize_t>(payload.size())) {
        std::perror("write payload");
        return 1;
      }
      ::close(fd);
    }
    const std::string label = std::to_string(size >> 10) + " KB";
    Program noop{"noop", {o.noop}, payload_path, {}, {}, 0};
    Program noop_down = noop;
    Program floor{"floor_client", {o.floor, daemon.socket()}, "", {}, {}, 0};
    Program up{"ferry emit (acked)",
               {o.ferry, "emit", "--socket", daemon.socket(), "--state-dir", up_state, "--source",
                "claude-code", "--stdin"},
               payload_path,
               {},
               {},
               0};
    Program down{"ferry emit (spooled)",
                 {o.ferry, "emit", "--socket", down_socket, "--state-dir", down_state, "--source",
                  "claude-code", "--stdin"},
                 payload_path,
                 {},
                 {},
                 0};
    size_t missed = 0;
    Measure({&noop, &floor, &up}, o, [&] { missed += CountAndRemove(up_state + "/spool"); });
    size_t spooled = 0;
    Measure({&noop_down, &down}, o, [&] { spooled += CountAndRemove(spool); });
    ok = ok && spooled == o.warmup + down.ms.size();
    std::printf("%s: %zu of %zu acked-case calls missed the 50 ms budget and spooled\n",
                label.c_str(), missed, o.warmup + up.ms.size());
    for (const Program* p : {&noop, &floor, &up, &noop_down, &down}) {
      const Summary s = Summarize(p->ms);
      const Summary c = Summarize(p->cpu_ms);
      const bool is_down = p == &down || p == &noop_down;
      rows.push_back({label + (is_down ? " down" : " up"), p->name, Fmt("%.3f", s.p50),
                      Fmt("%.3f", s.p90), Fmt("%.3f", s.p99), Fmt("%.3f", s.max),
                      Fmt("%.3f", c.p50), Fmt("%.3f", c.p99), std::to_string(p->failures)});
      ok = ok && p->failures == 0;
    }
  }
  rapidjson::Document st;
  if (RequestStatus(daemon.socket(), &st, &error)) {
    const uint64_t acked = StatusUint(st, "ingest", "events_total");
    std::printf("ferryd acked %llu events\n", static_cast<unsigned long long>(acked));
  }
  daemon.Stop();
  PrintTable(rows);
  std::printf("\ntarget: daemon-down p99 under 5 ms\n");
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace ferry::bench

int main(int argc, char** argv) { return ferry::bench::Main(argc, argv); }
