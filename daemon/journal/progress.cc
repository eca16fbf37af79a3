#include "daemon/journal/progress.h"

#include <algorithm>
#include <limits>

namespace ferry {

bool JournalProgress::PublishWrittenQuietly(uint64_t seq) {
  if (seq <= written_.load(std::memory_order_relaxed)) return false;
  written_.store(seq);
  // Both sides use seq_cst: either the waiter's target is seen here, or the waiter's
  // predicate check (after it set its target) sees the new value.
  return seq >= wake_at_.load();
}

void JournalProgress::WakeWaiters() {
  // Taking and dropping mu_ closes the window between a waiter's predicate check and its
  // wait (it holds mu_ across both). The notify comes after the unlock: a woken waiter then
  // does not block at once on the mutex this thread still holds (a futex wait and wake more).
  { MutexLock lock(mu_); }
  cv_.NotifyAll();
}

void JournalProgress::UpdateWakeAt() {
  wake_at_.store(wants_.empty() ? UINT64_MAX : *wants_.begin());
}

uint64_t JournalProgress::WaitBeyond(uint64_t after, std::chrono::milliseconds timeout,
                                     uint64_t more) {
  more = std::max<uint64_t>(more, 1);
  const uint64_t want = after > UINT64_MAX - more ? UINT64_MAX : after + more;
  uint64_t now = written_.load();
  if (now >= want || stopped_flag_.load()) return now;
  {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    MutexLock lock(mu_);
    const auto mine = wants_.insert(want);
    UpdateWakeAt();
    // Woken also for other waiters' targets: each checks its own.
    while (written_.load() < want && !stopped_flag_.load()) {
      if (cv_.WaitUntil(lock, deadline) == std::cv_status::timeout) break;
    }
    wants_.erase(mine);
    UpdateWakeAt();
  }
  return written_.load();
}

void JournalProgress::Stop() {
  stopped_flag_.store(true);
  MutexLock lock(mu_);
  cv_.NotifyAll();
}

ConsumerRegistry::Slot* ConsumerRegistry::Register(const std::string& name, uint64_t cursor) {
  MutexLock lock(mu_);
  Slot& slot = slots_.emplace_back(name);
  slot.cursor.store(cursor);
  active_.push_back(true);
  return &slot;
}

void ConsumerRegistry::Unregister(Slot* slot) {
  MutexLock lock(mu_);
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (&slots_[i] == slot) active_[i] = false;
  }
}

uint64_t ConsumerRegistry::MinCursor() const {
  MutexLock lock(mu_);
  uint64_t min = std::numeric_limits<uint64_t>::max();
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (active_[i]) min = std::min(min, slots_[i].cursor.load());
  }
  return min;
}

void ConsumerRegistry::ForEach(const std::function<void(const Slot&)>& fn) const {
  MutexLock lock(mu_);
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (active_[i]) fn(slots_[i]);
  }
}

}  // namespace ferry
