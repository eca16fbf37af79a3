// IngestSession: one client connection (session.cc: reads, events, replies;
// session_requests.cc: the other requests). Reads frames with a size limit, an idle timeout and
// a per-frame deadline (IngestLimits::frame_timeout: from a frame's first byte, the whole
// frame must arrive within it, however slowly the bytes drip), validates them, appends events to
// the journal and replies in request order: an ACK goes out once the journal's flush (and, if
// asked, the covering fdatasync) has happened. A bad frame gets an ERROR saying what is wrong, then
// the connection closes; replies owed for earlier frames are still sent first.
//
// A client that stops reading its replies for idle_timeout while a write is pending is
// closed (its events are in the journal; only the acks are lost, and it spools).
//
// Whether an owed ACK is ready is decided by the host's AckGate (ack_gate.h) alone; the
// session keeps replies in request order and sends each one once the gate (or, for a reply
// computed elsewhere, its filler) says so. Events enter the journal through the host's admit
// path (admit.h); the session never touches the journal. An ephemeral EVENT (for live tails
// only) goes to the host's OfferEphemeral instead, and its ACK is queued ready, behind any
// reply owed before it.
//
// Memory: an idle connection holds a small read buffer (kSmallReadBuffer); it grows only to
// the size a frame header announces, and is given back after a large frame. Parsing uses the
// host's request buffer (one per io thread), not one per connection; write buffers above
// kKeepWriteBuffer are given back once written.
//
// Thread: the io thread only. Kept alive by shared_from_this() while an operation is pending.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "daemon/base/asio.h"
#include "daemon/ingest/ack_gate.h"
#include "proto/frame.h"
#include "proto/messages.h"

namespace ferry {

class SessionHost;

class IngestSession : public std::enable_shared_from_this<IngestSession> {
 public:
  // `host` must outlive the session.
  IngestSession(UnixSocket socket, SessionHost& host);
  IngestSession(const IngestSession&) = delete;
  IngestSession& operator=(const IngestSession&) = delete;

  void Start();
  // Sends every reply whose condition now holds. Returns true while replies remain owed.
  bool Pump();
  // Stop reading; close once every owed reply is out.
  void Shutdown();
  void Close();

  // The host's bookkeeping: whether this session is on its list of sessions to pump (so it
  // is listed once). io thread.
  bool in_pump_list() const { return in_pump_list_; }
  void set_in_pump_list(bool listed) { in_pump_list_ = listed; }

 private:
  struct Reply {
    proto::FrameType type;
    OwedAck ack;        // ACK: the seqs it acknowledges, answered when the AckGate says so
    std::string frame;  // anything but an ACK: the encoded frame
    // A reply computed elsewhere (QUERY_RESULT, FLUSH_RESULT, DEADLETTER_RESULT): waits in
    // order until the frame is filled.
    std::shared_ptr<std::string> pending;
  };

  void HandleQuery(const proto::Frame& frame);
  template <typename Request, typename Handler>
  void HandleSinkRequest(const proto::Frame& frame,
                         bool (*parse)(std::string_view, Request*, proto::Error*),
                         const Handler& handler, proto::FrameType reply_type);
  // Queues a reply that someone else computes (QUERY_RESULT, FLUSH_RESULT, ...) and returns
  // the callback that fills it, on the io thread. The callback keeps the session alive; a
  // second call is ignored, and an empty frame is answered with an ERROR `internal`.
  std::function<void(std::string frame)> OweReply(proto::FrameType type);

  void DoRead();
  // After OnRead: read again at once (the read `filled` the buffer mid-frame), or DoRead.
  void ReadMore(bool filled, bool flush_pending);
  bool MayRead() const;
  void OnReadable(const boost::system::error_code& ec);
  void OnRead(const boost::system::error_code& ec, size_t n, bool filled);
  void DoWrite();
  void OnWrite(const boost::system::error_code& ec, size_t n);
  void ArmIdleTimer();
  std::chrono::steady_clock::time_point NextDeadline() const;
  void ArmTimerFor(std::chrono::steady_clock::time_point expiry);
  void OnIdle(const boost::system::error_code& ec);

  // Returns false when the connection must stop reading (fatal error queued).
  bool HandleFrame(const proto::Frame& frame, bool* wants_flush, bool* wants_durable);
  bool HandleTail(const proto::Frame& frame);
  void HandleEvents(const proto::Frame& frame, bool* wants_flush, bool* wants_durable);
  void QueueFrame(proto::FrameType type, std::string body);
  void QueueError(const proto::Error& error, bool fatal);
  // A frame refused for what the client sent: counted (rejected_total), then QueueError.
  void RefuseFrame(const proto::Error& error, bool fatal);
  void MaybeResumeReading();

  UnixSocket socket_;
  SessionHost& host_;
  net::steady_timer idle_timer_;
  std::string rbuf_;
  size_t rlen_ = 0;
  // When rlen_ > 0: the frame begun in rbuf_ must be whole by then (frame_timeout).
  std::chrono::steady_clock::time_point frame_deadline_{};
  std::chrono::steady_clock::time_point write_started_{};  // of the write in progress
  std::chrono::steady_clock::time_point idle_from_{};      // the last activity
  std::chrono::steady_clock::time_point timer_expiry_{};   // when idle_timer_ fires
  bool timer_armed_ = false;
  std::deque<Reply> replies_;
  std::string out_;      // encoded replies waiting for the current write to finish
  std::string writing_;  // the bytes of the write in progress
  bool reading_ = false;
  int eager_reads_left_ = 0;  // reads without an epoll round left in this readiness
  bool writing_active_ = false;
  bool read_closed_ = false;  // EOF, fatal error or shutdown: no more reads
  bool closed_ = false;
  bool in_pump_list_ = false;
};

}  // namespace ferry
