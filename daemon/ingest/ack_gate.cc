#include "daemon/ingest/ack_gate.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>

#include "daemon/journal/committer.h"
#include "daemon/journal/journal.h"
#include "proto/frame.h"
#include "proto/messages.h"

namespace ferry {
namespace {

// The ACK frame, body as proto::MakeAckBody writes it, without a heap allocation (one goes
// out per event on the hot path).
void AppendAckFrame(std::string* out, uint64_t first, uint64_t last, bool durable) {
  char body[128];  // 2 x 20 digits and 45 bytes of names: always fits
  char* p = body;
  char* const end = body + sizeof body;
  auto put = [&p, end](std::string_view text) {
    const size_t n = std::min(text.size(), static_cast<size_t>(end - p));
    std::memcpy(p, text.data(), n);
    p += n;
  };
  put("{\"first_seq\":");
  p = std::to_chars(p, end, first).ptr;
  put(",\"last_seq\":");
  p = std::to_chars(p, end, last).ptr;
  put(durable ? ",\"durable\":true}" : ",\"durable\":false}");
  proto::AppendFrame(*out, proto::FrameType::kAck,
                     std::string_view(body, static_cast<size_t>(p - body)));
}

}  // namespace

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
  AppendAckFrame(out, ack.first_seq, ack.last_seq, ack.last_seq <= durable_seq_);
  return true;
}

}  // namespace ferry
