// bench/hook_latency: what one hook costs. Spawns `ferry emit` sequentially N times
// against a ferryd, and in the same run the floor client (bench/floor_client.c: connect,
// send one frame, read the ack, exit) and a static no-op process (bench/noop.c), in
// interleaved rounds so machine noise hits all three alike. Reports p50/p90/p99/mean wall
// time per call (posix_spawn to wait4) and the ratios ferry/floor and ferry/noop, plus the
// CPU time each call's process used (user + system, from wait4): unlike wall time, that does
// not grow when other work on a shared machine delays the process.
//
//   hook_latency [-n N] [--round R] [--warmup W] [--fsync POLICY] [--json]
//                [--ferryd PATH | --socket PATH] [--ferry PATH] [--floor PATH] [--noop PATH]
//
// Without --socket it starts its own ferryd (--ferryd, default ../daemon/ferryd next to this
// binary) on a temporary socket and state directory with journal.fsync = POLICY (default
// interval) and stops it at the end. Exit 0 when every call succeeded and ferryd counted
// every event; 1 otherwise.
//
// What this does not exercise (docs/benchmarks-emit.md): its floor client talks to the same
// ferryd, so ferryd's round trip is on both sides of the ratio and only the client's share
// shows; `ferry emit` gets --socket (no config file read) and a 22-byte --data payload. The
// shared floor (hookclient -> ackserver), real payload sizes and --stdin are in
// `emit_payload_bench --vs-floor`.
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "bench/bench_util.h"
#include "proto/event.h"

extern char** environ;

namespace ferry::bench {
namespace {

using proto::JsonWriter;

constexpr const char* kUsage =
    "usage: hook_latency [-n N] [--round R] [--warmup W] [--fsync never|interval|always]\n"
    "                    [--ferryd PATH | --socket PATH] [--ferry PATH] [--floor PATH]\n"
    "                    [--noop PATH] [--json]\n"
    "  -n N          calls per program (default 2000)\n"
    "  --round R     consecutive calls of one program before switching (default 10)\n"
    "  --warmup W    untimed calls per program first (default 50)\n"
    "  --fsync P     journal.fsync of the ferryd this starts (default interval)\n"
    "  --ferryd PATH ferryd to start (default: ../daemon/ferryd next to this binary)\n"
    "  --socket PATH use a ferryd already running there instead of starting one\n"
    "  --ferry/--floor/--noop PATH   the programs (default: the build tree's)\n"
    "  --json        print one JSON object instead of the table\n";

struct Options {
  size_t n = 2000;
  size_t round = 10;
  size_t warmup = 50;
  std::string fsync = "interval";
  std::string ferryd, socket, ferry, floor, noop;
  bool json = false;
};

bool ParseSize(const char* text, size_t* out) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v == 0) return false;
  *out = static_cast<size_t>(v);
  return true;
}

bool ParseOptions(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--json") {
      o->json = true;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if ((a == "-n" || a == "--calls") && (v = next())) {
      if (!ParseSize(v, &o->n)) return false;
    } else if (a == "--round" && (v = next())) {
      if (!ParseSize(v, &o->round)) return false;
    } else if (a == "--warmup" && (v = next())) {
      if (!ParseSize(v, &o->warmup)) return false;
    } else if (a == "--fsync" && (v = next())) {
      o->fsync = v;
    } else if (a == "--ferryd" && (v = next())) {
      o->ferryd = v;
    } else if (a == "--socket" && (v = next())) {
      o->socket = v;
    } else if (a == "--ferry" && (v = next())) {
      o->ferry = v;
    } else if (a == "--floor" && (v = next())) {
      o->floor = v;
    } else if (a == "--noop" && (v = next())) {
      o->noop = v;
    } else {
      std::fprintf(stderr, "hook_latency: bad argument \"%s\"\n%s", argv[i], kUsage);
      return false;
    }
  }
  const std::string dir = ExeDir();
  if (o->ferryd.empty()) o->ferryd = dir + "/../daemon/ferryd";
  if (o->ferry.empty()) o->ferry = dir + "/../client/ferry";
  if (o->floor.empty()) o->floor = dir + "/floor_client";
  if (o->noop.empty()) o->noop = dir + "/noop";
  return true;
}

struct Program {
  std::string name;
  std::vector<std::string> args;
  std::vector<double> ms;      // wall time per timed call
  std::vector<double> cpu_ms;  // the child's user + system time per timed call
  size_t failures = 0;
};

// One call: posix_spawn (vfork-style in glibc) to wait4. stdin and stdout are /dev/null;
// stderr is inherited so a failing call says why. Returns milliseconds, or -1 on failure;
// *cpu_ms gets the child's CPU time.
double RunOnce(Program& p, int devnull, double* cpu_ms) {
  std::vector<char*> argv;
  for (auto& a : p.args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, devnull, 0);
  posix_spawn_file_actions_adddup2(&actions, devnull, 1);
  const SpawnResult run = SpawnAndWait(argv.data(), &actions);
  *cpu_ms = run.cpu_ms;
  const double ms = run.wall_ms;
  const int rc = run.spawn_error;
  const int status = run.status;
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    std::fprintf(stderr, "hook_latency: spawn %s: %s\n", argv[0], std::strerror(rc));
    return -1;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return ms;
}

void WriteSummary(JsonWriter& w, const Summary& s) {
  w.StartObject();
  for (auto [k, v] : {std::pair<const char*, double>{"p50_ms", s.p50},
                      {"p90_ms", s.p90},
                      {"p99_ms", s.p99},
                      {"mean_ms", s.mean},
                      {"min_ms", s.min},
                      {"max_ms", s.max}}) {
    w.Key(k);
    w.Double(v);
  }
  w.Key("n");
  w.Uint64(s.n);
  w.EndObject();
}

}  // namespace

int Main(int argc, char** argv) {
  Options o;
  if (!ParseOptions(argc, argv, &o)) return 2;
  for (const std::string* p : {&o.ferry, &o.floor, &o.noop}) {
    if (!IsExecutable(*p)) {
      std::fprintf(stderr, "hook_latency: %s is not an executable (build it, or pass its path)\n",
                   p->c_str());
      return 2;
    }
  }

  TempDir dir("ferry-hook-latency-");
  Daemon daemon;
  std::string socket = o.socket;
  if (socket.empty()) {
    std::string error;
    if (!IsExecutable(o.ferryd)) {
      std::fprintf(stderr, "hook_latency: no ferryd at %s (pass --ferryd or --socket)\n",
                   o.ferryd.c_str());
      return 2;
    }
    if (!daemon.Start(o.ferryd, dir.path(), o.fsync, &error)) {
      std::fprintf(stderr, "hook_latency: %s\n", error.c_str());
      return 1;
    }
    socket = daemon.socket();
  }

  std::vector<Program> programs(3);
  programs[0].name = "noop (static no-op process)";
  programs[0].args = {o.noop};
  programs[1].name = "floor_client (C, static)";
  programs[1].args = {o.floor, socket};
  programs[2].name = "ferry emit";
  programs[2].args = {o.ferry,   "emit",   "--socket", socket,   "--source",
                      "bench",   "--kind", "hook",     "--data", R"({"tool":"Bash","n":1})",
                      "--strict"};
  const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull < 0) {
    std::perror("open /dev/null");
    return 1;
  }

  const std::string load_start = LoadAverage();
  rapidjson::Document before, after;
  std::string error;
  if (!RequestStatus(socket, &before, &error)) {
    std::fprintf(stderr, "hook_latency: %s\n", error.c_str());
    return 1;
  }
  const auto start = Clock::now();
  for (size_t i = 0; i < o.warmup; ++i) {
    for (auto& p : programs) {
      double cpu = 0;
      if (RunOnce(p, devnull, &cpu) < 0) p.failures++;
    }
  }
  // Rounds of R calls per program; the program that goes first rotates every round.
  size_t round = 0;
  while (programs.back().ms.size() + programs.back().failures < o.n) {
    for (size_t k = 0; k < programs.size(); ++k) {
      Program& p = programs[(k + round) % programs.size()];
      for (size_t i = 0; i < o.round && p.ms.size() + p.failures < o.n; ++i) {
        double cpu = 0;
        const double ms = RunOnce(p, devnull, &cpu);
        if (ms < 0) {
          p.failures++;
        } else {
          p.ms.push_back(ms);
          p.cpu_ms.push_back(cpu);
        }
      }
    }
    ++round;
  }
  const double elapsed = SecondsSince(start);
  ::close(devnull);

  if (!RequestStatus(socket, &after, &error)) {
    std::fprintf(stderr, "hook_latency: %s\n", error.c_str());
    return 1;
  }
  const uint64_t acked =
      StatusUint(after, "ingest", "events_total") - StatusUint(before, "ingest", "events_total");
  const uint64_t expected = 2 * (o.warmup + o.n) - programs[1].failures - programs[2].failures;
  const std::string stopped = o.socket.empty() ? daemon.Stop() : "not ours";

  const Summary noop = Summarize(programs[0].ms);
  const Summary floor = Summarize(programs[1].ms);
  const Summary ferry = Summarize(programs[2].ms);
  const MachineInfo m = GetMachineInfo();
  size_t failures = 0;
  for (const auto& p : programs) failures += p.failures;
  const bool p50_ok = ferry.p50 <= 1.25 * floor.p50;
  const bool p99_ok = ferry.p99 < 1.5;

  if (o.json) {
    rapidjson::StringBuffer sb;
    JsonWriter w(sb);
    w.StartObject();
    w.Key("benchmark");
    w.String("hook_latency");
    WriteMachineJson(w, m, load_start);
    w.Key("calls");
    w.Uint64(o.n);
    w.Key("round");
    w.Uint64(o.round);
    w.Key("warmup");
    w.Uint64(o.warmup);
    w.Key("fsync");
    w.String(o.socket.empty() ? o.fsync.c_str() : "external");
    w.Key("elapsed_s");
    w.Double(elapsed);
    w.Key("noop");
    WriteSummary(w, noop);
    w.Key("floor");
    WriteSummary(w, floor);
    w.Key("ferry");
    WriteSummary(w, ferry);
    for (size_t i = 0; i < programs.size(); ++i) {
      static constexpr const char* kCpuKeys[] = {"noop_cpu", "floor_cpu", "ferry_cpu"};
      w.Key(kCpuKeys[i]);
      WriteSummary(w, Summarize(programs[i].cpu_ms));
    }
    for (auto [name, base] : {std::pair<const char*, const Summary*>{"ferry_over_floor", &floor},
                              {"ferry_over_noop", &noop}}) {
      w.Key(name);
      w.StartObject();
      w.Key("p50");
      w.Double(ferry.p50 / base->p50);
      w.Key("p90");
      w.Double(ferry.p90 / base->p90);
      w.Key("p99");
      w.Double(ferry.p99 / base->p99);
      w.Key("mean");
      w.Double(ferry.mean / base->mean);
      w.EndObject();
    }
    w.Key("failures");
    w.Uint64(failures);
    w.Key("events_acked");
    w.Uint64(acked);
    w.Key("events_expected");
    w.Uint64(expected);
    w.Key("target_p50_within_1_25x_floor");
    w.Bool(p50_ok);
    w.Key("target_p99_under_1_5_ms");
    w.Bool(p99_ok);
    w.EndObject();
    std::printf("%s\n", sb.GetString());
  } else {
    std::printf(
        "hook_latency: %zu timed calls per program in rounds of %zu (after %zu warm-up), "
        "ferryd fsync=%s, %.1f s\n",
        o.n, o.round, o.warmup, o.socket.empty() ? o.fsync.c_str() : "(external)", elapsed);
    std::printf("machine: %ld cpus, %s, Linux %s; load average at start %s, at end %s\n\n", m.cpus,
                m.cpu_model.c_str(), m.kernel.c_str(), load_start.c_str(), LoadAverage().c_str());
    std::vector<std::vector<std::string>> rows = {{"wall time per call", "p50 ms", "p90 ms",
                                                   "p99 ms", "mean ms", "max ms", "cpu p50 ms",
                                                   "cpu mean ms"}};
    std::vector<Summary> cpu;
    for (size_t i = 0; i < programs.size(); ++i) {
      const Summary s = Summarize(programs[i].ms);
      cpu.push_back(Summarize(programs[i].cpu_ms));
      rows.push_back({programs[i].name, Fmt("%.3f", s.p50), Fmt("%.3f", s.p90), Fmt("%.3f", s.p99),
                      Fmt("%.3f", s.mean), Fmt("%.3f", s.max), Fmt("%.3f", cpu.back().p50),
                      Fmt("%.3f", cpu.back().mean)});
    }
    for (auto [name, base, base_cpu] : {std::tuple<const char*, const Summary*, const Summary*>{
                                            "ratio ferry / floor", &floor, &cpu[1]},
                                        {"ratio ferry / noop", &noop, &cpu[0]}}) {
      rows.push_back(
          {name, Fmt("%.2fx", ferry.p50 / base->p50), Fmt("%.2fx", ferry.p90 / base->p90),
           Fmt("%.2fx", ferry.p99 / base->p99), Fmt("%.2fx", ferry.mean / base->mean), "",
           Fmt("%.2fx", cpu[2].p50 / base_cpu->p50), Fmt("%.2fx", cpu[2].mean / base_cpu->mean)});
    }
    PrintTable(rows);
    std::printf("\ntarget ferry emit p50 <= 1.25x floor: %.2fx (%.3f vs %.3f ms): %s\n",
                ferry.p50 / floor.p50, ferry.p50, floor.p50, p50_ok ? "met" : "NOT MET");
    std::printf(
        "target ferry emit p99 < 1.5 ms: %.3f ms: %s (same run: floor p99 %.3f ms, no-op p99 "
        "%.3f ms)\n",
        ferry.p99, p99_ok ? "met" : "NOT MET", floor.p99, noop.p99);
    std::printf("failed calls: %zu; events ferryd counted: %llu of %llu expected; ferryd %s\n",
                failures, static_cast<unsigned long long>(acked),
                static_cast<unsigned long long>(expected), stopped.c_str());
  }
  // With an external ferryd other clients may add events: only our own daemon is counted.
  return failures == 0 && (!o.socket.empty() || acked == expected) ? 0 : 1;
}

}  // namespace ferry::bench

int main(int argc, char** argv) { return ferry::bench::Main(argc, argv); }
