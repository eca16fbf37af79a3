#include "daemon/journal/publisher.h"

#include "daemon/journal/committer.h"
#include "daemon/journal/journal.h"
#include "daemon/journal/progress.h"
#include "daemon/journal/retention.h"

namespace ferry {

JournalPublisher::JournalPublisher(Journal& journal, JournalCommitter& committer,
                                   JournalProgress& progress, Retention& retention,
                                   FsyncPolicy policy, std::function<void()> on_shippable)
    : journal_(journal),
      committer_(committer),
      progress_(progress),
      retention_(retention),
      policy_(policy),
      on_shippable_(std::move(on_shippable)) {
  journal_.SetRollCallback([this](std::shared_ptr<SegmentFile> closed, uint64_t last_seq) {
    committer_.Closed(std::move(closed), last_seq);
    retention_due_ = true;  // run after the flush, not inside it (OnWritten)
  });
}

void JournalPublisher::PublishRecovered() {
  progress_.PublishWritten(journal_.written_seq());
  progress_.PublishShippable(journal_.written_seq());
}

void JournalPublisher::Ship(uint64_t seq) {
  progress_.PublishShippable(seq);
  if (on_shippable_) on_shippable_();
}

void JournalPublisher::OnWritten(uint64_t seq, bool wake) {
  if (wake) {
    progress_.PublishWritten(seq);
  } else if (progress_.PublishWrittenQuietly(seq)) {
    wake_owed_ = true;
  }
  if (ShippableAfterWrite(policy_)) Ship(seq);
  // After every flush that rolled or went over the cap, so the journal is back under its cap
  // before the acks of that flush go out.
  if (retention_due_ || journal_.total_bytes() > retention_.max_bytes()) {
    retention_due_ = false;
    retention_.Run();
  }
}

Status JournalPublisher::FlushAndPublish(bool sync_now) {
  Status s = journal_.Flush();
  if (!s.ok()) return s;
  committer_.Written(journal_.active_segment(), journal_.written_seq(), sync_now);
  OnWritten(journal_.written_seq());
  return Status::Ok();
}

std::function<void(uint64_t)> JournalPublisher::WrittenListener() {
  return [this](uint64_t seq) { OnWritten(seq); };
}

std::function<void(uint64_t)> JournalPublisher::WrittenListenerWakingLater() {
  return [this](uint64_t seq) { OnWritten(seq, /*wake=*/false); };
}

void JournalPublisher::WakeConsumers() {
  if (!wake_owed_) return;
  wake_owed_ = false;
  progress_.WakeWaiters();
}

void JournalPublisher::OnDurable(uint64_t seq) { Ship(seq); }

void JournalPublisher::OnJournalRecovered() {
  retention_due_ = true;
  progress_.PublishWritten(journal_.written_seq());
}

void JournalPublisher::ShipAllWritten() {
  const uint64_t written = journal_.written_seq();
  if (ShippableAfterWrite(policy_)) {
    Ship(written);
  } else if (written > progress_.shippable()) {
    // Sinks send only what is durable: sync now rather than at the next interval.
    committer_.Written(journal_.active_segment(), written, /*sync_now=*/true);
  }
}

void JournalPublisher::SetPolicy(FsyncPolicy policy, std::chrono::milliseconds interval) {
  if (policy != committer_.policy() || interval != committer_.interval()) {
    committer_.SetPolicy(policy, interval);
  }
  policy_ = policy;
  if (ShippableAfterWrite(policy_)) Ship(journal_.written_seq());
}

void JournalPublisher::RunRetention() { retention_.Run(); }

}  // namespace ferry
