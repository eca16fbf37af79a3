// TailServer: serves `ferry tail`. Each tail connection gets its own worker thread with its
// own JournalReader: it replays from the requested seq up to JournalProgress::written(),
// then (follow) waits for written() to move and reads on. Subscribing is reading the
// journal, so the replay/live hand-over has no gap and no duplicate, in seq order.
//
// A slow tail never slows ingest: the io thread only hands over the fd. A worker buffers at
// most about kFlushBytes plus one record before it waits for the client's socket; while it
// waits, the journal keeps the events. Tails are not consumers and never hold back
// retention: if a segment a tail needs is deleted, the tail skips forward and sends a
// "skipped" item saying which seqs it could not deliver.
//
// Items a worker sends (docs/protocol.md "TAIL"): one per matching record, "skipped" {from,
// to, reason} for seqs it can never send (retention, damage), "waiting" {seq, reason} once
// per episode of read errors (it retries; nothing is skipped), and "end" {next} when a replay
// without follow is done. Errors: a worker ends (closing its fd) when the client hangs up or
// a send fails; Start refuses (ERROR frame, fd closed) beyond kMaxTails or while stopping.
//
// Threads: Start and Stop from the io thread (Stop may also run after the io loop ended);
// the workers touch only their fd, their reader and JournalProgress. Shared state is atomics
// only: stop_ (set by Stop, read by workers), active_ (workers, active()), Worker::done (set
// by its worker, read by the io thread to reap it).
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <thread>

#include "daemon/journal/progress.h"
#include "proto/messages.h"

namespace ferry {

class TailServer {
 public:
  static constexpr size_t kMaxTails = 64;
  static constexpr size_t kFlushBytes = 64u << 10;

  // `progress` must outlive the server. Workers read the journal in `journal_dir` with their
  // own JournalReader, which finds where the journal begins now by itself.
  TailServer(std::string journal_dir, JournalProgress& progress);
  ~TailServer();
  TailServer(const TailServer&) = delete;
  TailServer& operator=(const TailServer&) = delete;

  // Takes ownership of `fd`. Returns false (after telling the client why with an ERROR frame
  // and closing the fd) when too many tails run or the server is stopping.
  bool Start(int fd, const proto::TailRequest& request, std::string* error);
  // Ends every worker (each closes its connection) and joins them.
  void Stop();
  size_t active() const { return active_.load(); }

 private:
  struct Worker {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  void Run(int fd, proto::TailRequest request, Worker* self);
  void ReapDone();

  const std::string dir_;
  JournalProgress& progress_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> active_{0};
  std::list<Worker> workers_;  // io thread only (Start, Stop)
};

}  // namespace ferry
