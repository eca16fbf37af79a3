// IngestServer: accepts connections on the Unix socket (peer uid checked, max_connections
// enforced with an ERROR), and is the SessionHost of its sessions (session_host.h): it owns
// the admit path (EventAdmitter), the AckGate that decides every ACK, the journal flush that
// ends every loop pass (one write, and one fdatasync when asked, for every session that
// appended in it), and the pumping of sessions that owe replies after each flush and sync.
// Errors: Listen/Adopt return a Status naming the socket path; a failed journal flush is
// logged and answered per event by the AckGate (ERROR journal_failed).
//
// Thread: the io thread only. The sync thread reaches it solely through net::post
// (OnDurable, OnSyncFailed).
#pragma once

#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/base/asio.h"
#include "daemon/base/status.h"
#include "daemon/ingest/ack_gate.h"
#include "daemon/ingest/admit.h"
#include "daemon/ingest/dedupe_window.h"
#include "daemon/ingest/session_host.h"
#include "daemon/journal/committer.h"
#include "daemon/journal/journal.h"
#include "proto/messages.h"

namespace ferry {

class Redactor;

// File descriptors kept free of connections (journal, store, sinks, tails, spool, ...):
// max_connections is at most RLIMIT_NOFILE minus this (at most half the limit).
constexpr size_t kReservedFds = 64;

// At most one log line per `period`; the lines held back are counted and reported with the
// next one ("(N more like it)"). Single-threaded (io thread).
class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::milliseconds period) : period_(period) {}
  // True when a line may be logged now; *suppressed gets how many were held back since.
  bool Allow(uint64_t* suppressed);

 private:
  std::chrono::milliseconds period_;
  std::chrono::steady_clock::time_point next_{};
  uint64_t held_ = 0;
};

class IngestServer final : public SessionHost {
 public:
  using StatusProvider = std::function<std::string()>;

  // `journal` and `committer` must outlive the server.
  IngestServer(net::io_context& io, IngestLimits limits, Journal& journal,
               JournalCommitter& committer, StatusProvider status);
  ~IngestServer() override;
  IngestServer(const IngestServer&) = delete;
  IngestServer& operator=(const IngestServer&) = delete;

  // Creates the socket directory (0700, owner checked), refuses to start when a live ferryd
  // answers on `path`, removes a stale socket file, binds and listens (socket 0600).
  Status Listen(const std::string& path);
  // Serves `fd`, a listening AF_UNIX stream socket that someone else bound (systemd socket
  // activation), instead of Listen(). The server takes the fd but never unlinks or chmods
  // the socket's path, and its shutdown leaves the socket's backlog to the next start.
  Status Adopt(int fd, const std::string& path);
  void Start();
  // Stops accepting and reading; acks or refuses what is in flight; calls `done` once every
  // session has drained (or after `grace`). A socket of our own is closed and unlinked at
  // once, so clients fail fast and spool. An adopted socket stays open in the service
  // manager: we only stop accepting, and connections queued meanwhile wait for the next start.
  void BeginShutdown(std::chrono::milliseconds grace, std::function<void()> done);

  // Called on the io thread after each successful journal flush with the written seq
  // (consumers learn of new records through it: JournalProgress::PublishWritten), before the
  // flush's acks are sent. `after_acks` (may be empty) runs once those acks are sent: the
  // listener may leave the consumer threads' wake-up to it, so that on 2 cores a woken store
  // thread does not preempt the io thread between the journal write and the ack.
  void SetWrittenListener(std::function<void(uint64_t)> listener,
                          std::function<void()> after_acks = {}) {
    written_listener_ = std::move(listener);
    after_acks_ = std::move(after_acks);
  }
  // New limits for what happens next: accepts, reads, idle timers armed from now on.
  // max_connections is clamped (see IngestLimits).
  void SetLimits(const IngestLimits& limits);

  // Events whose id is in `window` are acked but not appended again (a client that gave up
  // on a late ack spooled the same event). `window` must outlive the server; null: no dedupe.
  void SetDedupeWindow(DedupeWindow* window) { admitter_.set_window(window); }
  // [redact] local = true: events are redacted before they reach the journal (null: kept as
  // the hook sent them, the default). io thread.
  void SetLocalRedactor(std::shared_ptr<const Redactor> redactor) {
    local_redactor_ = std::move(redactor);
  }
  const Redactor* local_redactor() const { return local_redactor_.get(); }

  // Runs a QUERY_REQ body off the io thread; `reply` must be called on the io thread with
  // the encoded reply frame (QUERY_RESULT or ERROR). Without a handler, queries are refused.
  using QueryHandler = ferry::QueryHandler;
  void SetQueryHandler(QueryHandler handler) { query_handler_ = std::move(handler); }

  // FLUSH_REQ (`ferry flush`): called on the io thread with the parsed request. The handler's
  // owner must call `reply` exactly once, on the io thread (net::post from another thread),
  // with the encoded reply frame: FLUSH_RESULT, or ERROR (unknown_sink, ...). It may answer
  // much later (with `wait`, once the sinks caught up or timed out): the session stays open,
  // is not closed as idle, and answers the connection's later frames after it, in order. It
  // must also answer when ferryd stops, or the connection holds the shutdown until its grace
  // period ends. (The daemon always sets one; without it the request gets ERROR unexpected_type.)
  using FlushHandler = ferry::FlushHandler;
  void SetFlushHandler(FlushHandler handler) { flush_handler_ = std::move(handler); }

  // DEADLETTER_REQ (`ferry deadletter replay|purge`): as FLUSH_REQ; the reply frame is
  // DEADLETTER_RESULT or ERROR.
  using DeadletterHandler = ferry::DeadletterHandler;
  void SetDeadletterHandler(DeadletterHandler handler) { deadletter_handler_ = std::move(handler); }

  // Called on the io thread with each valid STATUS_REQ body before the status is built, so
  // request fields (ack_lost, ...) take effect in the reply.
  void SetStatusRequestHook(std::function<void(const rapidjson::Value&)> hook) {
    status_hook_ = std::move(hook);
  }
  // Takes over a connection that sent TAIL_REQ: gets the socket's fd (ownership passes) and
  // the request; returns false with *error to refuse it (the fd is then closed).
  using TailHandler = ferry::TailHandler;
  void SetTailHandler(TailHandler handler) { tail_handler_ = std::move(handler); }
  // TRANSCRIPT_REQ (`ferry transcript`): like queries, answered off the io thread.
  void SetTranscriptHandler(TranscriptHandler handler) { transcript_handler_ = std::move(handler); }

  // Ephemeral events go to this handler (the daemon's TailServer::Offer); without one they
  // are acked and go nowhere.
  using EphemeralHandler = ferry::EphemeralHandler;
  void SetEphemeralHandler(EphemeralHandler handler) { ephemeral_handler_ = std::move(handler); }

  // The committer's sync thread reports through net::post: the journal is durable up to
  // `seq` / an fdatasync failed (the journal is failed until it recovers).
  void OnDurable(uint64_t seq);
  void OnSyncFailed(const Status& status);
  // The journal recovered from a failed fdatasync (Journal::TryRecover): durable acks wait
  // for the next fdatasync again instead of being refused.
  void ClearSyncFailure() { acks_.ClearSyncFailure(); }

  // Status (io thread).
  uint64_t durable_seq() const { return acks_.durable_seq(); }
  IngestCounters& counters() override { return counters_; }
  size_t connections() const { return sessions_.size(); }

  // --- SessionHost (for IngestSession) ---
  const IngestLimits& limits() const override { return limits_; }
  bool shutting_down() const override { return shutting_down_; }
  proto::EventRequest& event_request() override { return request_; }
  AdmitResult AdmitEvents(const proto::EventRequest& request, int64_t received_ns) override;
  uint64_t OfferEphemeral(const proto::EventRequest& request, int64_t received_ns) override;
  const AckGate& acks() const override { return acks_; }
  void ScheduleFlush(const std::shared_ptr<IngestSession>& session, bool durable) override;
  std::string StatusReply(const rapidjson::Value& request) override;
  const QueryHandler& query_handler() const override { return query_handler_; }
  const FlushHandler& flush_handler() const override { return flush_handler_; }
  const DeadletterHandler& deadletter_handler() const override { return deadletter_handler_; }
  const TailHandler& tail_handler() const override { return tail_handler_; }
  const TranscriptHandler& transcript_handler() const override { return transcript_handler_; }
  void LogFrameTimeout(const std::string& what) override;
  void SessionClosed(IngestSession* session) override;

 private:
  void DoAccept();
  void OnAccept(const boost::system::error_code& ec, UnixSocket socket);
  IngestLimits Clamp(IngestLimits limits);
  void FlushJournal();
  void PumpWaiting();
  void MaybeFinishShutdown();

  net::io_context& io_;
  IngestLimits limits_;
  Journal& journal_;
  JournalCommitter& committer_;
  StatusProvider status_;
  std::function<void(uint64_t)> written_listener_;
  std::function<void()> after_acks_;
  const uid_t uid_ =
      ::getuid();  // peers must have it (SO_PEERCRED); one getuid, not one per accept
  EventAdmitter admitter_;
  AckGate acks_;
  proto::EventRequest request_;  // event_request(): one parse buffer for every session
  std::shared_ptr<const Redactor> local_redactor_;
  QueryHandler query_handler_;
  FlushHandler flush_handler_;
  DeadletterHandler deadletter_handler_;
  std::function<void(const rapidjson::Value&)> status_hook_;
  TailHandler tail_handler_;
  EphemeralHandler ephemeral_handler_;
  rapidjson::StringBuffer ephemeral_body_;  // OfferEphemeral's canonical body, reused
  TranscriptHandler transcript_handler_;
  UnixAcceptor acceptor_;
  std::string socket_path_;  // set when we bound the socket (and so remove it)
  bool adopted_ = false;
  IngestCounters counters_;
  bool flush_posted_ = false;
  bool durable_requested_ = false;
  // Sessions that owe replies, pumped after each flush and sync (each at most once: its
  // in_pump_list flag); a vector, so queueing a session allocates nothing per event.
  std::vector<std::shared_ptr<IngestSession>> waiting_;
  std::vector<std::shared_ptr<IngestSession>> pumping_;  // PumpWaiting's scratch
  std::unordered_map<IngestSession*, std::weak_ptr<IngestSession>> sessions_;
  bool shutting_down_ = false;
  std::function<void()> shutdown_done_;
  net::steady_timer shutdown_timer_;
  net::steady_timer accept_pause_;  // out of descriptors: accepting waits for it
  LogLimiter accept_log_{std::chrono::seconds(10)};
  LogLimiter refuse_log_{std::chrono::seconds(1)};
  LogLimiter frame_log_{std::chrono::seconds(1)};
  size_t clamped_from_ = 0;  // the max_connections last warned about
};

}  // namespace ferry
