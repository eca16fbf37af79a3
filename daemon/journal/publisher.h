// JournalPublisher: the one owner, on the io thread, of what follows a journal flush or sync.
//
// - "written up to N" (JournalProgress::PublishWritten) after every successful Journal::Flush(),
//   whoever flushed: the ingest server (its written listener) and the spool importer (its
//   on_written) are both handed WrittenListener(), so a spooled event takes the same path as a
//   socket event.
// - "shippable up to N" (what upstream sinks may send): the durable seq, or, under fsync
//   "never" (where nothing is ever promised durable), the written seq. That rule lives here
//   only (ShippableAfterWrite); every caller that makes something shippable goes through it.
// - The retention trigger: after a flush that rolled a segment (the journal's roll callback,
//   installed by the constructor) or left the journal over its byte cap, Retention::Run() runs
//   before the flush's acks go out, so the journal is back under its cap first.
//
// Errors: none; it only publishes and triggers. Retention logs its own failures.
// Thread: the io thread only, like the Journal it watches. JournalProgress is read by consumer
// threads (atomics); `on_shippable` runs on the io thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "daemon/base/status.h"
#include "daemon/config/fsync_policy.h"

namespace ferry {

class Journal;
class JournalCommitter;
class JournalProgress;
class Retention;

// Under `policy`, may a seq that is written (in the page cache, not yet synced) be shipped?
// Only under fsync "never": there nothing is ever promised durable, so waiting for a sync
// would hold the sinks back until the next roll.
inline bool ShippableAfterWrite(FsyncPolicy policy) { return policy == FsyncPolicy::kNever; }

class JournalPublisher {
 public:
  // Every reference must outlive this. Installs the journal's roll callback (the committer
  // syncs the closed segment; retention becomes due). `on_shippable` runs after the
  // shippable seq moved (it wakes the sinks); it may be empty.
  JournalPublisher(Journal& journal, JournalCommitter& committer, JournalProgress& progress,
                   Retention& retention, FsyncPolicy policy, std::function<void()> on_shippable);
  JournalPublisher(const JournalPublisher&) = delete;
  JournalPublisher& operator=(const JournalPublisher&) = delete;

  // At start, before any consumer runs: recovery synced everything it kept, so all of it is
  // written and shippable.
  void PublishRecovered();

  // After a successful Journal::Flush() up to `seq`: publishes it as written, as shippable
  // under fsync "never", and runs retention when a roll made it due or the journal is over
  // its byte cap. `wake`: wake the waiting consumers now (else at WakeConsumers()).
  void OnWritten(uint64_t seq, bool wake = true);
  // Journal::Flush(), then on success JournalCommitter::Written() (`sync_now`: a durable ack
  // is owed) and OnWritten(): the whole "after a flush" sequence in one call, for flushers
  // that want it (the ingest server and the spool importer still make the three calls
  // themselves and are handed WrittenListener()). Returns Flush()'s status.
  Status FlushAndPublish(bool sync_now);

  // OnWritten bound to this object: the one function handed to every flusher.
  std::function<void(uint64_t)> WrittenListener();
  // OnWritten, but the consumers blocked in JournalProgress::WaitBeyond are woken only by the
  // next WakeConsumers(): for a flusher that sends acks first (the ingest server). Everything
  // else (published seq, shippable seq, retention) happens at once, as in OnWritten.
  std::function<void(uint64_t)> WrittenListenerWakingLater();
  // Wakes the consumers a WrittenListenerWakingLater() call left asleep, if any.
  void WakeConsumers();

  // The sync thread reported "durable up to `seq`" (posted to the io thread).
  void OnDurable(uint64_t seq);

  // After the journal recovered from a failure (Journal::TryRecover): publishes what it
  // holds as written; retention runs at the next flush.
  void OnJournalRecovered();

  // `ferry flush`: make everything written shippable as soon as possible. Under fsync "never"
  // it is shippable now; otherwise the committer is asked to sync at once when anything
  // written is not yet durable.
  void ShipAllWritten();

  // Config reload: hands a changed policy or interval to the committer; under "never",
  // everything written becomes shippable at once.
  void SetPolicy(FsyncPolicy policy, std::chrono::milliseconds interval);
  FsyncPolicy policy() const { return policy_; }

  // Runs retention now (its timer and `ferry status` test hooks).
  void RunRetention();

 private:
  void Ship(uint64_t seq);

  Journal& journal_;
  JournalCommitter& committer_;
  JournalProgress& progress_;
  Retention& retention_;
  FsyncPolicy policy_;
  std::function<void()> on_shippable_;
  bool retention_due_ = false;  // a segment rolled since the last run
  bool wake_owed_ = false;      // WrittenListenerWakingLater published; WakeConsumers owed
};

}  // namespace ferry
