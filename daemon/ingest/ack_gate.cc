#include "daemon/ingest/ack_gate.h"

#include <algorithm>

#include "daemon/journal/committer.h"
#include "daemon/journal/journal.h"
#include "proto/frame.h"
#include "proto/messages.h"

namespace ferry {

bool AckGate::WaitsForSync(bool durable) const {
  return durable || committer_.policy() == FsyncPolicy::kAlways;
}

bool AckGate::TryAnswer(const OwedAck& ack, std::string* out, uint64_t* given_back) const {
  *given_back = 0;
  if (ack.last_seq > journal_.written_seq()) {
    if (!journal_.failed()) return false;  // the flush has not run yet
    // Their seqs were given back: they are not in the journal.
    *given_back = ack.last_seq - std::max(ack.first_seq, journal_.written_seq() + 1) + 1;
    proto::AppendFrame(*out, proto::FrameType::kError,
                       proto::MakeErrorBody({proto::Errc::kJournalFailed,
                                             "journal write failed; event not stored: " +
                                                 journal_.failure().ToString()},
                                            false));
    return true;
  }
  if (ack.wait_for_sync && ack.last_seq > durable_seq_) {
    if (sync_failure_.ok()) return false;  // waiting for the covering fdatasync
    proto::AppendFrame(
        *out, proto::FrameType::kError,
        proto::MakeErrorBody({proto::Errc::kJournalFailed,
                              "fdatasync failed; event not durable: " + sync_failure_.ToString()},
                             false));
    return true;
  }
  proto::AppendFrame(
      *out, proto::FrameType::kAck,
      proto::MakeAckBody({ack.first_seq, ack.last_seq, ack.last_seq <= durable_seq_}));
  return true;
}

}  // namespace ferry
