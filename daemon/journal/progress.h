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
  // true when one may be waiting for it, and the caller must then call WakeWaiters() soon
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

  // Blocks until written() > `after`, Stop(), or `timeout`. Returns written().
  uint64_t WaitBeyond(uint64_t after, std::chrono::milliseconds timeout);

  // Test hook: threads inside WaitBeyond that found nothing new and are waiting (or about to).
  int TEST_waiters() const { return waiters_.load(); }

  // Wakes every waiter for good (shutdown).
  void Stop();
  bool stopped() const { return stopped_flag_.load(); }

 private:
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> shippable_{0};
  std::atomic<int> waiters_{0};
  std::atomic<bool> stopped_flag_{false};
  // Lock order: mu_ is a leaf lock. It guards no data (the seqs are atomics): it is held only
  // to wait on or signal cv_, which closes the window between a waiter's check and its wait.
  Mutex mu_;
  CondVar cv_;
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
