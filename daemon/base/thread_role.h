// What each of ferryd's threads is, as the system sees it: its name (top -H, ps -L,
// /proc/PID/task/TID/comm, gdb, perf) and, for background work, its CPU priority.
//
// ferryd's io thread answers hooks; every other thread works behind the journal. On a
// 2-core machine a store thread inserting into SQLite (or a sink gzipping a batch) at the
// io thread's priority takes the CPU between a hook's event and its ACK. Background threads
// therefore run `kBackgroundNiceSteps` nice steps below the process (Linux applies nice per
// thread). They still get the whole idle CPU; under contention the io thread and the hooks
// come first, and the journal absorbs the lag: the store or a sink catches up when the burst
// ends, and retention keeps what a consumer has not read, as for any slow consumer, up to
// journal.max_bytes (docs/architecture.md, "Threads"; docs/benchmarks.md, Run N).
//
// Call at the start of the thread's own function. Any thread; no shared state. Failures
// (a name over 15 bytes is cut; setpriority refused by a seccomp filter) are ignored: a
// name and a priority are hints, never a reason to stop.
#pragma once

#include <string_view>

namespace ferry {

enum class ThreadClass {
  kForeground,  // on the hook's path to its ACK (io, sync): the process's priority
  kBackground,  // behind the journal (store, archive, query, spool, sinks, tails): nicer
};

inline constexpr int kBackgroundNiceSteps = 10;

// Names the calling thread "ferryd-<role>" (cut to the kernel's 15 bytes) and, for
// kBackground, raises its nice value by kBackgroundNiceSteps (at most 19).
void SetThreadRole(std::string_view role, ThreadClass cls);

}  // namespace ferry
