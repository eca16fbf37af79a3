// JournalCommitter: owns the sync thread, the only caller of fdatasync on journal segments.
//
// Group commit (after leveldb's DBImpl::Write, without its blocking callers): the io thread
// calls Written() after each Journal::Flush(); the sync thread takes everything written so far,
// syncs it with one fdatasync per dirty segment, and reports "durable up to N" through the
// callback. Whatever is written during an fdatasync rides the next one. It never waits on a
// timer to gather a group: a durable request is synced at once.
//
// Policies: kAlways syncs after every Written(); kInterval every `interval` and whenever a
// durable ack is owed; kNever only when a durable ack is owed, at a roll and at Stop().
//
// A failed fdatasync stops syncing: nothing is reported durable after it, and on_failure runs
// once, until Recover().
//
// Threads: Written()/Closed()/SetPolicy()/Stop() from the io thread; the accessors from any
// thread; callbacks run on the sync thread and must only post to the io thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/base/thread_annotations.h"
#include "daemon/config/fsync_policy.h"  // FsyncPolicy lives in config/
#include "daemon/journal/journal.h"

namespace ferry {

class JournalCommitter {
 public:
  struct Callbacks {
    std::function<void(uint64_t durable_seq)> on_durable;
    std::function<void(const Status& status)> on_failure;
  };

  JournalCommitter(FsyncPolicy policy, std::chrono::milliseconds interval, Callbacks callbacks);
  ~JournalCommitter();
  JournalCommitter(const JournalCommitter&) = delete;
  JournalCommitter& operator=(const JournalCommitter&) = delete;

  // Starts the sync thread. `segment` is the journal's active segment and `durable_seq` what
  // recovery already synced.
  void Start(std::shared_ptr<SegmentFile> segment, uint64_t durable_seq);

  // Records that the journal holds everything up to `seq` in `segment` (the active one);
  // `sync_now` asks for a sync at once (a durable ack is owed, or policy kAlways).
  void Written(const std::shared_ptr<SegmentFile>& segment, uint64_t seq, bool sync_now);

  // A segment was closed by a roll: it is synced before anything after it counts as durable.
  void Closed(std::shared_ptr<SegmentFile> segment, uint64_t last_seq);

  // The journal recovered from a failure (Journal::TryRecover): syncing resumes with `active`
  // as the active segment, plus `closed` (up to `closed_last`) when it holds records that
  // still need an fdatasync. A segment whose fdatasync failed is never synced again.
  void Recover(std::shared_ptr<SegmentFile> active, std::shared_ptr<SegmentFile> closed,
               uint64_t closed_last);

  // Syncs whatever is written, then ends the thread. Returns the final sync's status.
  Status Stop();

  // Changes the policy and interval of a running committer (config reload). The next
  // Written() after it syncs at once, so an ack that was queued as durable under the old
  // policy is covered whatever the new one is.
  void SetPolicy(FsyncPolicy policy, std::chrono::milliseconds interval);

  FsyncPolicy policy() const { return policy_.load(std::memory_order_relaxed); }
  std::chrono::milliseconds interval() const;
  uint64_t syncs() const;
  // When the fdatasync in progress started, or nullopt when the sync thread is not syncing.
  // The watchdog uses it to tell a stuck disk from an idle one.
  std::optional<std::chrono::steady_clock::time_point> SyncInProgressSince() const;

  // Test hook: how many times a sync was asked of the sync thread (Written() with sync_now
  // or under kAlways, Closed(), Recover(), SetPolicy()). Written() decides synchronously, so
  // an unchanged count proves that no sync was asked since.
  uint64_t TEST_sync_requests() const;

 private:
  void Run() FERRY_EXCLUDES(mu_);

  // Written only by SetPolicy() on the io thread (under mu_); read by both threads.
  std::atomic<FsyncPolicy> policy_;
  const Callbacks callbacks_;

  // Lock order: mu_ is the only lock; callbacks run without it.
  mutable Mutex mu_;
  CondVar cv_;
  std::vector<std::shared_ptr<SegmentFile>> dirty_ FERRY_GUARDED_BY(mu_);  // closed, unsynced
  std::shared_ptr<SegmentFile> active_ FERRY_GUARDED_BY(mu_);
  uint64_t written_seq_ FERRY_GUARDED_BY(mu_) = 0;
  uint64_t durable_seq_ FERRY_GUARDED_BY(mu_) = 0;
  bool sync_requested_ FERRY_GUARDED_BY(mu_) = false;
  bool stopping_ FERRY_GUARDED_BY(mu_) = false;
  bool failed_ FERRY_GUARDED_BY(mu_) = false;
  std::shared_ptr<SegmentFile> failed_file_ FERRY_GUARDED_BY(mu_);  // its sync failed
  bool sync_next_written_ FERRY_GUARDED_BY(mu_) = false;            // set by SetPolicy
  bool reconfigured_ FERRY_GUARDED_BY(mu_) = false;                 // interval changed
  std::chrono::milliseconds interval_ FERRY_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point sync_started_ FERRY_GUARDED_BY(mu_){};  // {}: idle
  uint64_t syncs_ FERRY_GUARDED_BY(mu_) = 0;
  uint64_t sync_requests_ FERRY_GUARDED_BY(mu_) = 0;  // TEST_sync_requests
  Status final_status_ FERRY_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace ferry
