#include "daemon/ingest/session.h"
#include "daemon/base/file_util.h"

#include <sys/socket.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <unordered_set>
#include <utility>

#include "daemon/ingest/session_host.h"

namespace ferry {
namespace {

// Replies owed beyond this pause reading until the client takes its acks (beast's
// queue_limit): a client that never reads cannot make the daemon buffer without bound.
constexpr size_t kMaxOwedReplies = 4096;
constexpr size_t kMaxOutBytes = 4u << 20;
// An idle connection holds only this much read buffer; a frame header that announces more
// grows it to the frame's size, and a buffer grown past kKeepReadBuffer is given back once
// its frame is handled (1,000 idle connections: see tests/fault/test_hostile_input.py).
constexpr size_t kSmallReadBuffer = 1u << 10;
constexpr size_t kKeepReadBuffer = 64u << 10;
// Reads right after a read that filled the buffer, per readiness (ReadMore).
constexpr int kEagerReads = 4;
// A write buffer that grew past this (a STATUS or QUERY_RESULT reply) is given back once
// written; below it, its capacity is kept for the next acks.
constexpr size_t kKeepWriteBuffer = 4u << 10;

}  // namespace

IngestSession::IngestSession(UnixSocket socket, SessionHost& host)
    : socket_(std::move(socket)), host_(host), idle_timer_(socket_.get_executor()) {}

// The socket is left in blocking mode (no ioctl per connection): reads and writes pass
// MSG_DONTWAIT. The first read is tried at once: a hook's client sends its frame right after
// connect, so it is usually there already (no epoll round for it).
void IngestSession::Start() {
  ArmIdleTimer();
  reading_ = true;
  eager_reads_left_ = kEagerReads;
  OnReadable({});
}

// Activity (a read, a reply owed): the connection is not idle before now + idle_timeout.
// The timer is not re-armed for every read (a cancel and a wait per event): when it is set
// to fire no later than needed, it stays, and OnIdle re-arms it for the time that is left.
void IngestSession::ArmIdleTimer() {
  idle_from_ = std::chrono::steady_clock::now();
  ArmTimerFor(NextDeadline());
}

std::chrono::steady_clock::time_point IngestSession::NextDeadline() const {
  auto expiry = idle_from_ + host_.limits().idle_timeout;
  if (rlen_ > 0 && frame_deadline_ < expiry) expiry = frame_deadline_;
  return expiry;
}

void IngestSession::ArmTimerFor(std::chrono::steady_clock::time_point expiry) {
  if (timer_armed_ && timer_expiry_ <= expiry) return;  // fires in time; OnIdle re-checks
  timer_armed_ = true;
  timer_expiry_ = expiry;
  idle_timer_.expires_at(expiry);
  idle_timer_.async_wait(
      [self = shared_from_this()](const boost::system::error_code& ec) { self->OnIdle(ec); });
}

void IngestSession::OnIdle(const boost::system::error_code& ec) {
  if (ec || closed_) return;  // cancelled: re-armed or closing
  timer_armed_ = false;
  const auto now = std::chrono::steady_clock::now();
  if (writing_active_ && now - write_started_ >= host_.limits().idle_timeout) {
    // The client has not taken a byte of its replies for the whole idle timeout: it does
    // not read. Its events are journaled; it loses only the acks (and spools).
    host_.LogFrameTimeout("closed a connection that did not read its replies for " +
                          std::to_string(host_.limits().idle_timeout.count()) + " ms");
    Close();
    return;
  }
  if (rlen_ > 0 && now >= frame_deadline_) {
    const std::string budget = std::to_string(host_.limits().frame_timeout.count());
    host_.counters().rejected_total++;
    host_.LogFrameTimeout("closed a connection whose frame was incomplete after " +
                          std::to_string(rlen_) + " bytes and " + budget +
                          " ms (ingest.frame_timeout)");
    QueueError({proto::Errc::kIdleTimeout, "frame incomplete after " + std::to_string(rlen_) +
                                               " bytes and " + budget +
                                               " ms (ingest.frame_timeout); closing"},
               /*fatal=*/true);
    rlen_ = 0;
    boost::system::error_code ignored;
    socket_.shutdown(UnixSocket::shutdown_receive, ignored);
    Pump();
    return;
  }
  if (!replies_.empty() || writing_active_) {
    ArmIdleTimer();  // we owe the client something: not idle on its side
    return;
  }
  if (now < NextDeadline()) {
    // Activity since the timer was set: not idle yet. Quiet for a while, though: with no
    // frame begun, the read buffer is given back (OnReadable takes a new one).
    if (rlen_ == 0) std::string().swap(rbuf_);
    ArmTimerFor(NextDeadline());
    return;
  }
  proto::Error err{proto::Errc::kIdleTimeout,
                   "no complete frame for " + std::to_string(host_.limits().idle_timeout.count()) +
                       " ms; closing"};
  if (rlen_ > 0)
    err.message = "frame incomplete after " + std::to_string(rlen_) + " bytes and " +
                  std::to_string(host_.limits().idle_timeout.count()) + " ms idle; closing";
  QueueError(err, /*fatal=*/true);
  read_closed_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(UnixSocket::shutdown_receive, ignored);
  Pump();
}

// Waits for the socket to be readable, then reads what is there (OnReadable). Not
// async_read_some: that tries a recv(2) at once, which after each frame is answered finds
// nothing (EAGAIN) - one wasted system call per event.
void IngestSession::DoRead() {
  if (!MayRead()) return;
  reading_ = true;
  socket_.async_wait(UnixSocket::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->host_.counters().read_waits++;
                       self->eager_reads_left_ = kEagerReads;
                       self->OnReadable(ec);
                     });
}

// After a read that filled the buffer and left a frame incomplete, the rest is likely
// waiting (any hook payload over ~1 KB: the first read takes kSmallReadBuffer): it is read
// at once, without arming the socket and an epoll round (an epoll_ctl and an epoll_wait
// before the ACK). A read that ended on a frame's end waits as before (a hook has sent all).
// At most kEagerReads times per readiness, so one busy connection cannot hold the loop.
// Otherwise the socket is armed again (DoRead), after the journal flush when one is pending:
// arming costs an epoll_ctl, which then follows the write and the ACK instead of preceding
// them (the flush was posted first, so the posted DoRead runs after it).
void IngestSession::ReadMore(bool filled, bool flush_pending) {
  if (!(filled && rlen_ > 0 && eager_reads_left_ > 0)) {
    if (flush_pending) {
      net::post(socket_.get_executor(), [self = shared_from_this()] { self->DoRead(); });
    } else {
      DoRead();
    }
    return;
  }
  if (!MayRead()) return;
  --eager_reads_left_;
  reading_ = true;
  OnReadable({});
}

// Not while a read is armed or running, after EOF or a fatal error, or while paused: too
// many replies owed or too many bytes waiting to go out (MaybeResumeReading resumes).
bool IngestSession::MayRead() const {
  return !read_closed_ && !reading_ && !closed_ && replies_.size() < kMaxOwedReplies &&
         out_.size() < kMaxOutBytes;
}

void IngestSession::OnReadable(const boost::system::error_code& ec) {
  if (ec || closed_) {
    OnRead(ec, 0, /*filled=*/false);
    return;
  }
  if (rbuf_.empty()) rbuf_.resize(kSmallReadBuffer);
  if (rlen_ == rbuf_.size()) {
    // Full, mid-frame: grow toward the announced size as the bytes arrive (at most double
    // what is held), so a header that merely claims 4 MiB does not cost 4 MiB.
    size_t target = rbuf_.size() * 2;
    if (rlen_ >= proto::kLengthSize) {
      const size_t need = proto::kLengthSize + proto::GetU32Le(rbuf_.data());
      target = std::max(std::min(target, need), rbuf_.size() + 1);
    }
    rbuf_.resize(target);
  }
  const size_t space = rbuf_.size() - rlen_;
  ssize_t got;
  do {
    got = ::recv(socket_.native_handle(), rbuf_.data() + rlen_, space, MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    reading_ = false;  // nothing there yet (or readable was spurious): wait
    DoRead();
    return;
  }
  boost::system::error_code rec;
  if (got < 0) {
    rec.assign(errno, boost::system::system_category());
  } else if (got == 0) {
    rec = net::error::eof;
  }
  OnRead(rec, got < 0 ? 0 : static_cast<size_t>(got),
         /*filled=*/got > 0 && static_cast<size_t>(got) == space);
}

void IngestSession::OnRead(const boost::system::error_code& ec, size_t n, bool filled) {
  reading_ = false;
  if (closed_) return;
  if (ec) {
    read_closed_ = true;
    if (rlen_ > 0 && ec == net::error::eof) {
      // The peer hung up halfway through a frame: nothing of it is appended. A peer that only
      // half-closed still reads the reason.
      RefuseFrame({proto::Errc::kTruncatedFrame,
                   "connection closed after " + std::to_string(rlen_) +
                       " bytes of an incomplete frame; nothing of it was stored"},
                  /*fatal=*/true);
    }
    Pump();  // closes once every owed reply is out
    return;
  }
  const bool continues_frame = rlen_ > 0;  // bytes of this frame came in an earlier read
  rlen_ += n;

  bool wants_flush = false, wants_durable = false;
  size_t pos = 0;
  while (!read_closed_) {
    proto::Frame frame;
    proto::Error error;
    const auto result = proto::DecodeFrame(std::string_view(rbuf_.data() + pos, rlen_ - pos),
                                           host_.limits().max_frame, &frame, &error);
    if (result == proto::DecodeResult::kNeedMore) break;
    if (result == proto::DecodeResult::kError) {
      RefuseFrame(error, /*fatal=*/true);
      break;
    }
    pos += frame.size;
    if (!HandleFrame(frame, &wants_flush, &wants_durable)) break;
  }
  if (read_closed_) {
    rlen_ = 0;
  } else if (pos > 0) {
    std::memmove(rbuf_.data(), rbuf_.data() + pos, rlen_ - pos);
    rlen_ -= pos;
  }
  // Make room for a frame whose header announced more than the buffer holds: up to
  // kKeepReadBuffer at once, beyond that by doubling as its bytes arrive (DoRead).
  if (rlen_ >= proto::kLengthSize) {
    const size_t need = proto::kLengthSize + proto::GetU32Le(rbuf_.data());
    if (need > rbuf_.size() && rbuf_.size() < kKeepReadBuffer) {
      rbuf_.resize(std::min(need, kKeepReadBuffer));
    }
  } else if (rlen_ == 0 && rbuf_.size() > kKeepReadBuffer) {
    std::string().swap(rbuf_);  // a large frame is done: give its buffer back
  }
  // The frame deadline runs from the frame's first byte: a new partial frame starts it, more
  // bytes of the same frame do not extend it.
  if (rlen_ > 0 && (pos > 0 || !continues_frame)) {
    frame_deadline_ = std::chrono::steady_clock::now() + host_.limits().frame_timeout;
  }
  if (!closed_) ArmIdleTimer();
  if (wants_flush) host_.ScheduleFlush(shared_from_this(), wants_durable);
  Pump();
  ReadMore(filled, wants_flush);
}

void IngestSession::HandleEvents(const proto::Frame& frame, bool* wants_flush,
                                 bool* wants_durable) {
  proto::Error error;
  proto::EventRequest& request = host_.event_request();
  if (!request.Parse(frame.type, frame.body, host_.limits().max_batch_events, &error)) {
    RefuseFrame(error, /*fatal=*/true);
    return;
  }
  if (host_.shutting_down()) {
    QueueError({proto::Errc::kShuttingDown, "ferryd is stopping; event not accepted"}, false);
    return;
  }
  if (request.ephemeral()) {
    // For live tails only: no journal, no flush; the ACK waits only for earlier replies.
    proto::Ack ack;
    ack.ephemeral = true;
    ack.tails = host_.OfferEphemeral(request, NowNs());
    QueueFrame(proto::FrameType::kAck, proto::MakeAckBody(ack));
    return;
  }
  const AdmitResult admitted = host_.AdmitEvents(request, NowNs());
  host_.counters().duplicates_total += admitted.duplicates;
  host_.counters().twins_total += admitted.twins;
  if (!admitted.status.ok()) {
    QueueError({proto::Errc::kJournalFailed,
                "journal refuses appends: " + admitted.status.ToString() +
                    (admitted.appended > 0 ? " (none of the batch's events was stored)" : "")},
               /*fatal=*/false);
    return;
  }
  host_.counters().events_total += admitted.appended;
  host_.counters().relabelled_total += admitted.relabelled;
  const bool durable = request.durable();
  Reply reply{proto::FrameType::kAck, {}, {}, nullptr};
  reply.ack = {admitted.first_seq, admitted.last_seq, host_.acks().WaitsForSync(durable)};
  replies_.push_back(std::move(reply));
  *wants_flush = true;
  *wants_durable = *wants_durable || durable;
}

void IngestSession::QueueFrame(proto::FrameType type, std::string body) {
  Reply r{type, {}, {}, nullptr};
  proto::AppendFrame(r.frame, type, body);
  replies_.push_back(std::move(r));
}

void IngestSession::RefuseFrame(const proto::Error& error, bool fatal) {
  host_.counters().rejected_total++;
  QueueError(error, fatal);
}

void IngestSession::QueueError(const proto::Error& error, bool fatal) {
  QueueFrame(proto::FrameType::kError, proto::MakeErrorBody(error, fatal));
  if (fatal) read_closed_ = true;
}

bool IngestSession::Pump() {
  if (closed_) return false;
  const AckGate& gate = host_.acks();
  while (!replies_.empty()) {
    Reply& r = replies_.front();
    if (r.type == proto::FrameType::kAck && r.frame.empty()) {  // else an ephemeral's, encoded
      uint64_t given_back = 0;
      if (!gate.TryAnswer(r.ack, &out_, &given_back)) break;  // not written or synced yet
      host_.counters().events_total -= given_back;            // not stored after all
    } else if (r.pending) {
      if (r.pending->empty()) break;  // the query thread has not answered yet
      out_ += *r.pending;
    } else {
      out_ += r.frame;
    }
    replies_.pop_front();
  }
  DoWrite();
  if (replies_.empty() && !writing_active_ && out_.empty() && read_closed_) {
    Close();
    return false;
  }
  return !replies_.empty();
}

// Tries the whole write at once (acks are small: it nearly always fits the socket buffer), so
// the reply leaves within the loop pass that made it ready, with no completion handler and no
// epoll round; what does not fit goes out through async_write.
void IngestSession::DoWrite() {
  if (writing_active_ || out_.empty() || closed_) return;
  ssize_t sent;
  do {
    sent = ::send(socket_.native_handle(), out_.data(), out_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    Close();  // the client went away; its acks are moot, its events are in the journal
    return;
  }
  if (sent == static_cast<ssize_t>(out_.size())) {
    out_.clear();
    if (out_.capacity() > kKeepWriteBuffer) std::string().swap(out_);
    MaybeResumeReading();  // reading may have paused on kMaxOutBytes / kMaxOwedReplies
    return;
  }
  if (sent > 0) out_.erase(0, static_cast<size_t>(sent));
  writing_.swap(out_);
  out_.clear();
  writing_active_ = true;
  write_started_ = std::chrono::steady_clock::now();
  net::async_write(socket_, net::buffer(writing_),
                   [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
                     self->OnWrite(ec, n);
                   });
}

void IngestSession::OnWrite(const boost::system::error_code& ec, size_t) {
  writing_active_ = false;
  writing_.clear();
  if (writing_.capacity() > kKeepWriteBuffer) std::string().swap(writing_);
  if (closed_) return;
  if (ec) {
    Close();  // the client went away; its acks are moot, its events are in the journal
    return;
  }
  if (!out_.empty()) {
    DoWrite();
    if (writing_active_ || closed_) return;  // else it was all sent at once
  }
  if (replies_.empty() && read_closed_) {
    Close();
    return;
  }
  MaybeResumeReading();
}

void IngestSession::MaybeResumeReading() {
  if (!reading_ && !read_closed_) DoRead();
}

void IngestSession::Shutdown() {
  if (closed_) return;
  read_closed_ = true;
  // shutdown(SHUT_RD) ends a pending read with EOF without cancelling a write in progress.
  boost::system::error_code ignored;
  socket_.shutdown(UnixSocket::shutdown_receive, ignored);
  Pump();
}

void IngestSession::Close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  idle_timer_.cancel();
  socket_.shutdown(UnixSocket::shutdown_both, ignored);
  socket_.close(ignored);
  host_.SessionClosed(this);
}

}  // namespace ferry
