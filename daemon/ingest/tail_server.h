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
// Ephemeral events (docs/protocol.md "Ephemeral events"; never in the journal): Offer, on the
// io thread, queues one on each live follow tail's feed with `after`, the journal's last
// appended seq when it arrived. A worker sends it once it has sent every record up to `after`
// and before the record after it, so a tail sees durable and ephemeral events in the order
// ferryd admitted them. A feed is bounded (kFeedItems, kFeedBytes): when full, the event is
// dropped for that tail and counted; Offer never waits for a worker. Without -f a tail has no
// feed (ephemeral events have no history).
//
// Threads: Start, Stop, Offer and OnWritten from the io thread (Stop may also run after the io
// loop ended); the workers touch only their fd, their reader, their feed and JournalProgress.
// Shared state: atomics (stop_, active_, Worker::done, the ephemeral counters, Feed::waiting)
// and each Feed's mutex (a leaf), held only to push, pop or wait.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "daemon/base/thread_annotations.h"
#include "daemon/journal/progress.h"
#include "proto/messages.h"

namespace ferry {

class TailServer {
 public:
  static constexpr size_t kMaxTails = 64;
  static constexpr size_t kFlushBytes = 64u << 10;
  // A follow tail's ephemeral feed holds at most this many events / bytes of bodies.
  static constexpr size_t kFeedItems = 1024;
  static constexpr size_t kFeedBytes = 4u << 20;

  // Status "ephemeral" (docs/protocol.md "Status object").
  struct EphemeralCounters {
    std::atomic<uint64_t> received{0};           // events offered
    std::atomic<uint64_t> delivered{0};          // items handed to a tail's connection
    std::atomic<uint64_t> dropped_no_tail{0};    // offered while no follow tail was open
    std::atomic<uint64_t> dropped_slow_tail{0};  // a tail's feed was full (one per tail)
  };

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

  // io thread: an ephemeral event (its canonical envelope, redacted like the journal's),
  // received at `received_ns` when the journal's last appended seq was `after`. Returns the
  // number of tails it was queued to. Never blocks on a worker.
  size_t Offer(std::string_view body, uint64_t after, int64_t received_ns);
  // io thread, after each journal flush: wakes follow workers waiting on their feed.
  void OnWritten();
  const EphemeralCounters& ephemeral() const { return counters_; }

 private:
  struct EphemeralItem {
    uint64_t after = 0;
    int64_t received_ns = 0;
    std::shared_ptr<const std::string> body;  // one copy shared by every tail
  };
  // A follow tail's queue of ephemeral events: pushed by the io thread, popped by its worker.
  struct Feed {
    Mutex mu;  // a leaf lock
    CondVar cv;
    std::deque<EphemeralItem> items FERRY_GUARDED_BY(mu);
    size_t bytes FERRY_GUARDED_BY(mu) = 0;
    std::atomic<bool> waiting{false};  // the worker waits on cv (set under mu)
  };
  struct Worker {
    std::thread thread;
    std::atomic<bool> done{false};
    std::unique_ptr<Feed> feed;  // follow tails only; set before the thread starts
  };
  void Run(int fd, proto::TailRequest request, Worker* self);
  void ReapDone();
  // Appends to `out` the feed's items that arrived before the record `before` was appended
  // (after < before) and match the request's filters.
  void DrainDue(Feed& feed, uint64_t before, const proto::TailRequest& req, std::string& out);
  // Follow: waits (at most a poll step) until the journal moves past `limit`, an item of the
  // feed is due (after < `next_seq`), or stop.
  void WaitForMore(Feed* feed, uint64_t limit, uint64_t next_seq);

  const std::string dir_;
  JournalProgress& progress_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> active_{0};
  EphemeralCounters counters_;
  std::list<Worker> workers_;  // io thread only (Start, Stop)
};

}  // namespace ferry
