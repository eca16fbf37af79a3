#include "daemon/journal/committer.h"

#include <unistd.h>

#include <cerrno>

#include "daemon/base/fault_injection.h"
#include "daemon/base/file_seam.h"
#include "daemon/base/thread_role.h"

namespace ferry {

JournalCommitter::JournalCommitter(FsyncPolicy policy, std::chrono::milliseconds interval,
                                   Callbacks callbacks)
    : policy_(policy), callbacks_(std::move(callbacks)), interval_(interval) {}

JournalCommitter::~JournalCommitter() { Stop().PermitUncheckedError(); }

void JournalCommitter::Start(std::shared_ptr<SegmentFile> segment, uint64_t durable_seq) {
  {
    MutexLock lock(mu_);
    active_ = std::move(segment);
    written_seq_ = durable_seq_ = durable_seq;
  }
  thread_ = std::thread([this] {
    SetThreadRole("sync", ThreadClass::kForeground);
    Run();
  });
}

void JournalCommitter::Written(const std::shared_ptr<SegmentFile>& segment, uint64_t seq,
                               bool sync_now) {
  bool wake = false;
  {
    MutexLock lock(mu_);
    if (active_ != segment) active_ = segment;
    if (seq > written_seq_) written_seq_ = seq;
    if (sync_next_written_) {
      sync_next_written_ = false;
      sync_now = true;
    }
    const bool ask = sync_now || policy() == FsyncPolicy::kAlways;
    if (ask) ++sync_requests_;
    if (ask && !sync_requested_) {
      sync_requested_ = true;
      wake = true;
    }
  }
  if (wake) cv_.NotifyOne();
}

void JournalCommitter::Closed(std::shared_ptr<SegmentFile> segment, uint64_t last_seq) {
  {
    MutexLock lock(mu_);
    dirty_.push_back(std::move(segment));
    if (last_seq > written_seq_) written_seq_ = last_seq;
    sync_requested_ = true;  // a closed segment is synced promptly, whatever the policy
    ++sync_requests_;
  }
  cv_.NotifyOne();
}

void JournalCommitter::Recover(std::shared_ptr<SegmentFile> active,
                               std::shared_ptr<SegmentFile> closed, uint64_t closed_last) {
  {
    MutexLock lock(mu_);
    if (failed_file_) {
      std::erase(dirty_, failed_file_);  // fsyncgate: its fd's errors were consumed
      failed_file_.reset();
    }
    if (closed) dirty_.push_back(std::move(closed));
    if (closed_last > written_seq_) written_seq_ = closed_last;
    active_ = std::move(active);
    failed_ = false;
    final_status_ = Status::Ok();
    sync_requested_ = true;
    ++sync_requests_;
  }
  cv_.NotifyOne();
}

void JournalCommitter::SetPolicy(FsyncPolicy policy, std::chrono::milliseconds interval) {
  {
    MutexLock lock(mu_);
    policy_.store(policy, std::memory_order_relaxed);
    interval_ = interval;
    reconfigured_ = true;
    // An ack queued as durable under "always" may still wait for its Written(): under
    // "never" nothing would ever sync it. One sync now and one at the next Written() cover
    // everything appended before the switch.
    sync_next_written_ = true;
    sync_requested_ = true;
    ++sync_requests_;
  }
  cv_.NotifyOne();
}

std::chrono::milliseconds JournalCommitter::interval() const {
  MutexLock lock(mu_);
  return interval_;
}

std::optional<std::chrono::steady_clock::time_point> JournalCommitter::SyncInProgressSince() const {
  MutexLock lock(mu_);
  if (sync_started_ == std::chrono::steady_clock::time_point{}) return std::nullopt;
  return sync_started_;
}

uint64_t JournalCommitter::TEST_sync_requests() const {
  MutexLock lock(mu_);
  return sync_requests_;
}

uint64_t JournalCommitter::syncs() const {
  MutexLock lock(mu_);
  return syncs_;
}

// One loop, over 80 lines on purpose: mu_ is held everywhere except around the fdatasyncs and
// the callbacks, and keeping the loop whole keeps each release and re-acquire in sight.
void JournalCommitter::Run() {
  MutexLock lock(mu_);
  auto next_interval = std::chrono::steady_clock::now() + interval_;
  for (;;) {
    if (reconfigured_) {
      reconfigured_ = false;
      next_interval = std::chrono::steady_clock::now() + interval_;
    }
    const FsyncPolicy policy = policy_.load(std::memory_order_relaxed);
    // Explicit loops rather than predicate lambdas: the thread-safety analysis checks a
    // lambda on its own and would not know that mu_ is held inside it.
    while (!stopping_ && !sync_requested_) {
      if (policy != FsyncPolicy::kInterval) {
        cv_.Wait(lock);
      } else if (cv_.WaitUntil(lock, next_interval) == std::cv_status::timeout) {
        break;
      }
    }
    const auto now = std::chrono::steady_clock::now();
    const bool due = policy == FsyncPolicy::kInterval && now >= next_interval;
    if (due) next_interval = now + interval_;
    const bool stopping = stopping_;
    if (failed_ || (!sync_requested_ && !due && !stopping) ||
        (written_seq_ == durable_seq_ && dirty_.empty())) {
      sync_requested_ = false;
      if (stopping) break;
      continue;
    }
    sync_requested_ = false;
    std::vector<std::shared_ptr<SegmentFile>> files = std::move(dirty_);
    dirty_.clear();
    // The active segment as of this round: active_ itself may change (a roll) while mu_ is
    // released below, and a segment closed meanwhile reaches dirty_ through Closed().
    std::shared_ptr<SegmentFile> active = active_;
    if (active) files.push_back(active);
    const uint64_t target = written_seq_;
    sync_started_ = std::chrono::steady_clock::now();
    lock.Unlock();

    Status status;
    std::shared_ptr<SegmentFile> failed_file;
    size_t synced = 0;
    for (; synced < files.size(); ++synced) {
      const auto& f = files[synced];
      int err = fault::Check(fault::Point::kSync);
      if (err == 0 && fs::Fdatasync(f->fd) != 0) err = errno;
      if (err != 0) {
        status = Status::FromErrno("fdatasync " + f->path, err);
        failed_file = f;
        break;
      }
    }
    // After a failure, the closed segments not yet synced stay owed (Recover() resumes).
    std::vector<std::shared_ptr<SegmentFile>> unsynced;
    for (size_t i = synced + 1; i < files.size(); ++i) {
      if (files[i] != active) unsynced.push_back(files[i]);
    }
    if (failed_file && failed_file != files.back()) unsynced.push_back(failed_file);
    // Closed segments are released (and closed) here, off the io thread, and before "durable"
    // is reported: whoever hears it may count on them being let go (a roll snapshotted
    // while the closed segment was still the active one holds it in `active` too).
    files.clear();
    active.reset();

    // State first, callbacks after: whoever hears "durable up to N" sees syncs() and
    // durable_seq_ that already count it.
    lock.Lock();
    ++syncs_;
    if (status.ok()) {
      durable_seq_ = target;
    } else {
      failed_ = true;
      final_status_ = status;
      failed_file_ = failed_file;
      for (auto& f : unsynced) dirty_.push_back(std::move(f));
    }
    lock.Unlock();
    if (status.ok()) {
      if (callbacks_.on_durable) callbacks_.on_durable(target);
    } else if (callbacks_.on_failure) {
      callbacks_.on_failure(status);
    }
    lock.Lock();
    sync_started_ = {};  // the round, report included, is over
    if (stopping && (failed_ || written_seq_ == durable_seq_)) break;
  }
}

Status JournalCommitter::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.NotifyOne();
  if (thread_.joinable()) thread_.join();
  MutexLock lock(mu_);
  return final_status_;
}

}  // namespace ferry
