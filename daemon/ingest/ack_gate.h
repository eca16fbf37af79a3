// AckGate: the one place that decides whether the ACK owed for a frame of events is ready,
// and what it says. An ACK for seqs [first, last] is
//   - held back while `last` is above Journal::written_seq() (the loop pass's flush has not
//     run yet), unless the journal failed: then the seqs were given back and the client gets
//     ERROR journal_failed ("event not stored");
//   - held back, when it waits for the sync (asked durable, or fsync = always: every ack
//     waits, DESIGN.md), while `last` is above durable_seq(), unless an fdatasync failed:
//     then ERROR journal_failed ("event not durable");
//   - otherwise sent: ACK {first, last, durable = last <= durable_seq()}.
// The gate owns durable_seq (advanced by OnDurable, from the committer's sync thread through
// net::post) and the sync failure; it reads the journal's written seq and failure and the
// committer's policy when asked, so a reload that changes the policy applies at once.
//
// Thread: the io thread only.
#pragma once

#include <cstdint>
#include <string>

#include "daemon/base/status.h"

namespace ferry {

class Journal;
class JournalCommitter;

// An ACK owed for the records [first_seq, last_seq] of one EVENT / EVENT_BATCH frame.
struct OwedAck {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  bool wait_for_sync = false;  // from AckGate::WaitsForSync
};

class AckGate {
 public:
  // `journal` and `committer` must outlive the gate.
  AckGate(const Journal& journal, const JournalCommitter& committer)
      : journal_(journal), committer_(committer) {}

  // Whether an ack for a frame that asked (`durable`) or not waits for its fdatasync.
  bool WaitsForSync(bool durable) const;

  // False: not ready, ask again after the next flush or sync. True: the reply (ACK or ERROR
  // frame) is appended to *out; *given_back gets how many of its seqs the journal gave
  // back (not stored: the caller takes them off its event count), else 0.
  bool TryAnswer(const OwedAck& ack, std::string* out, uint64_t* given_back) const;

  void OnDurable(uint64_t seq) {
    if (seq > durable_seq_) durable_seq_ = seq;
  }
  // Keeps the first failure; acks waiting for a sync are refused until ClearSyncFailure.
  void OnSyncFailed(const Status& status) {
    if (sync_failure_.ok()) sync_failure_ = status;
  }
  // The journal recovered (Journal::TryRecover): durable acks wait for the next sync again.
  void ClearSyncFailure() { sync_failure_ = Status::Ok(); }

  uint64_t durable_seq() const { return durable_seq_; }
  const Status& sync_failure() const { return sync_failure_; }

 private:
  const Journal& journal_;
  const JournalCommitter& committer_;
  uint64_t durable_seq_ = 0;
  Status sync_failure_;
};

}  // namespace ferry
