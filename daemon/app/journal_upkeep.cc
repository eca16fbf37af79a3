#include "daemon/app/journal_upkeep.h"

#include <spdlog/spdlog.h>

#include "daemon/app/parts.h"

namespace ferry {

using namespace std::chrono_literals;

JournalUpkeep::JournalUpkeep(DaemonParts& parts, net::io_context& io)
    : parts_(parts), timer_(io), retention_timer_(io) {}

void JournalUpkeep::Start() {
  const Config& cfg = parts_.config;
  spdlog::info("journal retention: keeping up to {} bytes{}; {}", cfg.max_bytes,
               cfg.max_bytes_auto ? " (journal.max_bytes unset: 10% of the file system, at most "
                                    "1 GiB)"
                                  : "",
               cfg.journal_max_age.count() > 0
                   ? "segments every consumer has read go after journal.max_age " +
                         std::to_string(cfg.journal_max_age.count() / 1000) + " s"
                   : std::string("no age limit (journal.max_age unset)"));
  RetentionTick();
  parts_.journal->SetFailureListener([this] { StartRepair(); });
  if (parts_.journal->failed()) StartRepair();
}

void JournalUpkeep::Stop() {
  stopped_ = true;
  parts_.journal->SetFailureListener(nullptr);
  retention_timer_.cancel();
  timer_.cancel();
}

void JournalUpkeep::RetentionTick() {
  // journal.max_age applies live: a reload changes parts_.config.
  parts_.retention->SetMaxAge(parts_.config.journal_max_age);
  parts_.publisher->RunRetention();
  retention_timer_.expires_after(std::chrono::seconds(1));
  retention_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !stopped_) RetentionTick();
  });
}

void JournalUpkeep::StartRepair() {
  if (repairing_ || stopped_) return;
  repairing_ = true;
  backoff_ = 250ms;
  retry_at_ = std::chrono::steady_clock::now() + backoff_;
  ArmRepair();
}

void JournalUpkeep::ArmRepair() {
  timer_.expires_at(retry_at_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !stopped_) RepairTick();
  });
}

void JournalUpkeep::RepairTick() {
  if (parts_.journal->failed()) TryNow();
  if (!parts_.journal->failed()) {  // recovered
    repairing_ = false;
    return;
  }
  if (backoff_.count() == 0) {  // recovered, then failed again at once: start the backoff over
    backoff_ = 250ms;
    retry_at_ = std::chrono::steady_clock::now() + backoff_;
  }
  ArmRepair();
}

void JournalUpkeep::TryNow() {
  DaemonParts& p = parts_;
  const Status failure = p.journal->failure();
  std::shared_ptr<SegmentFile> closed;
  uint64_t closed_last = 0;
  Status s = p.journal->TryRecover(&closed, &closed_last);
  if (!s.ok()) {
    spdlog::debug("journal still failed: {}", s.ToString());
    backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, 5s);
    retry_at_ = std::chrono::steady_clock::now() + backoff_;
    return;
  }
  const bool after_write = closed != nullptr;
  p.committer->Recover(p.journal->active_segment(), std::move(closed), closed_last);
  p.server->ClearSyncFailure();
  // Ids of events that were refused are in the dedupe window; their clients spooled them, and
  // the import must not take them for duplicates. Rebuilt from what the journal holds for sure
  // (after a failed fdatasync: what was synced before it).
  p.dedupe->Clear();
  Status ds = p.dedupe->Load(p.journal->dir(),
                             after_write ? p.journal->written_seq() : p.server->durable_seq());
  if (!ds.ok()) spdlog::warn("dedupe window: {}", ds.ToString());
  spdlog::warn("journal recovered from \"{}\": appends continue at seq {} in {}",
               failure.ToString(), p.journal->last_seq() + 1, p.journal->active_segment()->path);
  backoff_ = 0ms;
  p.publisher->OnJournalRecovered();
}

}  // namespace ferry
