#include "daemon/ingest/twin_window.h"

namespace ferry {

bool TwinWindow::Take(const TwinProbe& probe) {
  if (probe.key.empty()) return false;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->relabelled == probe.relabelled || it->key != probe.key) continue;
    const int64_t apart = it->ts > probe.ts ? it->ts - probe.ts : probe.ts - it->ts;
    if (apart > kMaxTsApart) continue;
    bytes_ -= it->key.size();
    entries_.erase(it);
    return true;
  }
  return false;
}

void TwinWindow::Insert(const TwinProbe& probe) {
  if (probe.key.empty() || probe.key.size() > kMaxBytes) return;
  entries_.push_back({probe.key, probe.relabelled, probe.ts});
  bytes_ += probe.key.size();
  while (entries_.size() > kMaxEntries || bytes_ > kMaxBytes) {
    bytes_ -= entries_.front().key.size();
    entries_.pop_front();
  }
}

void TwinWindow::Clear() {
  entries_.clear();
  bytes_ = 0;
}

}  // namespace ferry
