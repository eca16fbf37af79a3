// Helpers shared by bench/hook_latency and bench/ingest_bench: a temporary ferryd, status
// requests, /proc readings, percentiles and table printing. Benchmarks only; not a library
// anything else should use.
#pragma once

#include <spawn.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "proto/event.h"

namespace ferry::bench {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start);

// The directory holding the running executable (for default sibling paths).
std::string ExeDir();
// True when `path` names an executable file.
bool IsExecutable(const std::string& path);

// nproc, kernel release, CPU model: one line for the report header.
struct MachineInfo {
  long cpus = 0;
  std::string kernel;
  std::string cpu_model;
};
MachineInfo GetMachineInfo();
// Writes "machine": {cpus, kernel, cpu_model, loadavg_start, loadavg_end (now)} into an
// open JSON object.
void WriteMachineJson(proto::JsonWriter& w, const MachineInfo& m, const std::string& load_start);

// One timed child: posix_spawn to wait4. `spawn_error` is posix_spawn's error (0: it ran);
// `status` the wait status; wall and CPU (user + system) time in milliseconds.
struct SpawnResult {
  int spawn_error = 0;
  int status = 0;
  double wall_ms = 0;
  double cpu_ms = 0;
  bool exited_zero() const;
};
SpawnResult SpawnAndWait(char* const argv[], const posix_spawn_file_actions_t* actions);

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A ferryd child process on its own socket and state directory under `dir`, with a config
// file that sets journal.fsync. Its stderr goes to `dir`/ferryd.log.
class Daemon {
 public:
  Daemon() = default;
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  bool Start(const std::string& ferryd, const std::string& dir, const std::string& fsync,
             std::string* error);
  // SIGTERM, then wait (SIGKILL after 10 s). Returns the exit status text ("exit 0", ...).
  std::string Stop();
  pid_t pid() const { return pid_; }
  const std::string& socket() const { return socket_; }
  const std::string& log_path() const { return log_; }

 private:
  pid_t pid_ = -1;
  std::string socket_;
  std::string log_;
};

// Connects to `socket` (blocking), returns the fd or -1 with *error set.
int ConnectUnix(const std::string& socket, std::string* error);
// Sends STATUS_REQ and parses the STATUS reply into *doc.
bool RequestStatus(const std::string& socket, rapidjson::Document* doc, std::string* error);
// Reads a uint64 at a path like {"journal", "syncs"} from a status document (0 if absent).
uint64_t StatusUint(const rapidjson::Document& doc, const char* section, const char* key);

// "VmRSS" / "VmHWM" from /proc/<pid>/status, in KiB; -1 when unreadable.
long ProcStatusKiB(pid_t pid, const char* field);
// utime + stime of a process, in seconds; -1 when unreadable.
double ProcCpuSeconds(pid_t pid);
// CPU seconds (user + system) the calling thread has used.
double ThreadCpuSeconds();
// /proc/loadavg's first three fields ("3.90 3.46 2.00"): the machine is shared.
std::string LoadAverage();

// Percentiles by nearest rank over a copy of `samples`.
struct Summary {
  size_t n = 0;
  double mean = 0, min = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
};
Summary Summarize(std::vector<double> samples);
double Median(std::vector<double> samples);

// Writes a 32-character lowercase hex id made of two 64-bit halves into `out` (no NUL).
void WriteHexId(uint64_t hi, uint64_t lo, char* out);
uint64_t RandomU64();

// Fixed-width text tables: the first row is the header; columns are right-aligned except
// the first.
void PrintTable(const std::vector<std::vector<std::string>>& rows);
std::string Fmt(const char* format, double value);

}  // namespace ferry::bench
