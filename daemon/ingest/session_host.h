// What an IngestSession needs from whoever owns it (IngestServer; a test's fake), and the
// types both share. A session depends on this narrow interface only, never on IngestServer.
//
// Thread: the io thread only, like the sessions.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/ingest/admit.h"
#include "proto/messages.h"

namespace ferry {

class AckGate;
class IngestSession;

struct IngestLimits {
  size_t max_frame = 4u << 20;
  // Clamped below the process's open-file limit (RLIMIT_NOFILE) minus kReservedFds, with a
  // warning, so accepting never runs the daemon out of descriptors for its own files.
  size_t max_connections = 1024;
  std::chrono::milliseconds idle_timeout{60000};
  // From the first byte of a frame, the whole frame must arrive within this (a per-frame
  // deadline, like Beast's per-operation timeout): a peer that drips a large frame a byte
  // at a time is closed, however often it sends.
  std::chrono::milliseconds frame_timeout{10000};
  size_t max_batch_events = 10000;
};

struct IngestCounters {
  uint64_t events_total = 0;
  uint64_t rejected_total = 0;  // frames refused with an ERROR
  uint64_t connections_total = 0;
  uint64_t connections_refused = 0;
  uint64_t duplicates_total = 0;  // events skipped: their id was already in the journal
  uint64_t twins_total = 0;       // of those, a Cursor hook call's second delivery
  uint64_t relabelled_total = 0;  // events stored under the source their payload gives
  uint64_t read_waits = 0;        // reads that waited for readiness (an epoll round); tests
};

// Runs a QUERY_REQ body off the io thread; `reply` must be called on the io thread with the
// encoded reply frame (QUERY_RESULT or ERROR).
using QueryHandler =
    std::function<void(std::string body, std::function<void(std::string frame)> reply)>;
// TRANSCRIPT_REQ (`ferry transcript`): the body goes to the archive worker; `reply` must be
// called on the io thread with the encoded reply frame (TRANSCRIPT_RESULT or ERROR).
using TranscriptHandler =
    std::function<void(std::string body, std::function<void(std::string frame)> reply)>;
// FLUSH_REQ / DEADLETTER_REQ: see IngestServer::SetFlushHandler.
using FlushHandler =
    std::function<void(proto::FlushRequest request, std::function<void(std::string frame)> reply)>;
using DeadletterHandler = std::function<void(proto::DeadletterRequest request,
                                             std::function<void(std::string frame)> reply)>;
// Takes over a connection that sent TAIL_REQ: gets the socket's fd (ownership passes) and the
// request; returns false with *error to refuse it (the fd is then closed).
using TailHandler =
    std::function<bool(int fd, const proto::TailRequest& request, std::string* error)>;
// Hands one ephemeral event (canonical envelope, locally redacted) to the live tails, with the
// journal's last appended seq; returns how many tails took it (TailServer::Offer).
using EphemeralHandler =
    std::function<size_t(std::string_view body, uint64_t after, int64_t received_ns)>;

class SessionHost {
 public:
  virtual ~SessionHost() = default;

  virtual const IngestLimits& limits() const = 0;
  virtual IngestCounters& counters() = 0;
  // Stopping: events are refused (ERROR shutting_down), other requests still answered.
  virtual bool shutting_down() const = 0;

  // The parse buffer for EVENT / EVENT_BATCH bodies, shared by every session of the io
  // thread (its document's pool is not held by each idle connection). Valid until the next
  // call; a session uses it only within one HandleEvents.
  virtual proto::EventRequest& event_request() = 0;
  // The admit path (admit.h): dedupe, local redaction, canonical JSON, journal append. When
  // every event was a duplicate, first_seq = last_seq = the journal's last seq.
  virtual AdmitResult AdmitEvents(const proto::EventRequest& request, int64_t received_ns) = 0;
  // An EVENT / EVENT_BATCH with "ephemeral":true: each event, canonical and locally redacted
  // but never deduped or journaled, goes to the live tails. Returns how many tails took the
  // last of them (0 without a handler).
  virtual uint64_t OfferEphemeral(const proto::EventRequest& request, int64_t received_ns) {
    (void)request;
    (void)received_ns;
    return 0;
  }
  // Decides when an owed ACK is ready (ack_gate.h).
  virtual const AckGate& acks() const = 0;
  // Asks for a journal flush at the end of this loop pass; `session` is pumped after it (and
  // after each sync) until its Pump() returns false. `durable`: sync at once.
  virtual void ScheduleFlush(const std::shared_ptr<IngestSession>& session, bool durable) = 0;

  // The STATUS reply body for a valid STATUS_REQ `request`.
  virtual std::string StatusReply(const rapidjson::Value& request) = 0;
  // Empty handlers: the request is refused (see IngestSession).
  virtual const QueryHandler& query_handler() const = 0;
  virtual const FlushHandler& flush_handler() const = 0;
  virtual const DeadletterHandler& deadletter_handler() const = 0;
  virtual const TailHandler& tail_handler() const = 0;
  virtual const TranscriptHandler& transcript_handler() const {
    static const TranscriptHandler none;
    return none;
  }

  // A session closed a peer whose frame missed its deadline (or that stopped reading): log
  // it, rate-limited.
  virtual void LogFrameTimeout(const std::string& what) = 0;
  // The session closed its socket; it makes no more calls.
  virtual void SessionClosed(IngestSession* session) = 0;
};

}  // namespace ferry
