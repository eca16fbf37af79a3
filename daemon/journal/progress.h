// JournalProgress and ConsumerRegistry: the small, explicit cross-thread state between the
// io thread (which appends) and the journal's consumers (store writer, sinks, tail).
//
// - JournalProgress: the io thread publishes "written up to N" after every flush; consumer
//   threads read it (atomic) or block until it moves past what they have seen. Consumers
//   never read past written(): beyond it a record may still be half in the page cache.
// - ConsumerRegistry: each consumer owns one Slot and stores its cursor ("everything up to
//   this seq is processed") there; retention and status read every slot.
//
// Threads: PublishWritten from the io thread only; everything else from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <set>
#include <string>

#include "daemon/base/thread_annotations.h"

namespace ferry {

class JournalProgress {
 public:
  JournalProgress() = default;
  JournalProgress(const JournalProgress&) = delete;
  JournalProgress& operator=(const JournalProgress&) = delete;

  // io thread: everything up to `seq` is in the journal file. Wakes the waiters.
  void PublishWritten(uint64_t seq) {
    if (PublishWrittenQuietly(seq)) WakeWaiters();
  }
  // io thread: publishes `seq` like PublishWritten but leaves the waiters asleep; returns
  // true when one may be waiting for it (a waiter whose `more` it reaches: see WaitBeyond),
  // and the caller must then call WakeWaiters() soon
  // (the ingest server does so once the flush's acks are sent, so a consumer woken by the
  // flush does not take the CPU from the acks: see IngestServer::SetWrittenListener). A
  // waiter that checks after this call sees `seq` without being woken.
  bool PublishWrittenQuietly(uint64_t seq);
  void WakeWaiters();
  uint64_t written() const { return written_.load(); }

  // What upstream sinks may send: the durable seq, or the written seq under fsync "never"
  // (where nothing is ever promised durable). Sinks send nothing a power loss could take back
  // from the journal: otherwise a recovered journal would hand the lost seqs to new events,
  // and a server deduping on Idempotency-Key would drop those as repeats. io thread only.
  void PublishShippable(uint64_t seq) {
    if (seq > shippable_.load()) shippable_.store(seq);
  }
  uint64_t shippable() const { return shippable_.load(); }

  // Blocks until written() >= `after` + `more` (at least one record past `after`), Stop(), or
  // `timeout`. Returns written(). A consumer that holds a batch and would only act on a full
  // one passes the records it still needs as `more`: the io thread then does not wake it for
  // every flush (the store writer under a steady stream of single events), only once the
  // batch can fill, or the timeout (its commit interval) ends.
  uint64_t WaitBeyond(uint64_t after, std::chrono::milliseconds timeout, uint64_t more = 1);

  // Test hook: threads inside WaitBeyond that found nothing new and are waiting (or about to).
  int TEST_waiters() const {
    MutexLock lock(mu_);
    return static_cast<int>(wants_.size());
  }
  // Test hook: the lowest written() a waiter waits for (UINT64_MAX: none).
  uint64_t TEST_wake_at() const { return wake_at_.load(); }

  // Wakes every waiter for good (shutdown).
  void Stop();
  bool stopped() const { return stopped_flag_.load(); }

 private:
  // The lowest written() a waiter waits for; recomputed under mu_ from wants_.
  void UpdateWakeAt() FERRY_REQUIRES(mu_);

  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> shippable_{0};
  // The lowest written() that some waiter waits for (UINT64_MAX: none). Written under mu_,
  // read by the io thread without it: the io thread stores written_ then loads wake_at_, a
  // waiter stores wake_at_ then loads written_ (all seq_cst), so one of them sees the other.
  std::atomic<uint64_t> wake_at_{UINT64_MAX};
  std::atomic<bool> stopped_flag_{false};
  // Lock order: mu_ is a leaf lock. It guards the waiters' targets; the seqs are atomics. It is
  // also held to wait on or signal cv_, which closes the window between a waiter's check and
  // its wait.
  mutable Mutex mu_;
  CondVar cv_;
  std::multiset<uint64_t> wants_ FERRY_GUARDED_BY(mu_);  // each waiter's target written()
};

class ConsumerRegistry {
 public:
  struct Slot {
    explicit Slot(std::string n) : name(std::move(n)) {}
    const std::string name;
    std::atomic<uint64_t> cursor{0};  // last seq this consumer has fully processed
    std::atomic<uint64_t> lost{0};    // seqs it never saw (deleted by the byte cap)
  };

  ConsumerRegistry() = default;
  ConsumerRegistry(const ConsumerRegistry&) = delete;
  ConsumerRegistry& operator=(const ConsumerRegistry&) = delete;

  // Adds a consumer; the returned slot lives as long as the registry.
  Slot* Register(const std::string& name, uint64_t cursor);
  // Removes a consumer (a sink deleted on reload). `slot` is invalid afterwards.
  void Unregister(Slot* slot);
  // The lowest cursor over all consumers; UINT64_MAX when there are none.
  uint64_t MinCursor() const;
  void ForEach(const std::function<void(const Slot&)>& fn) const;

 private:
  // Lock order: a leaf lock. Guards the containers, not the slots' atomics.
  mutable Mutex mu_;
  std::deque<Slot> slots_ FERRY_GUARDED_BY(mu_);   // deque: stable addresses
  std::deque<bool> active_ FERRY_GUARDED_BY(mu_);  // parallel to slots_; false once unregistered
};

}  // namespace ferry
