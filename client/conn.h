// Blocking Unix-socket round trips with a deadline, for the ferry client. No Boost: the
// client links proto and the standard library only, so it starts fast.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "proto/frame.h"

namespace ferry::client {

// CLOCK_MONOTONIC read by a system call rather than through the vDSO. A hook's client reads
// the clock a few times in its life; the vDSO's two pages cost two page faults to map (35 us
// and more each on the VMs hooks run in), a system call about 1 us (docs/benchmarks.md
// "Where a hook's time goes"). A std::chrono clock: deadlines, durations and sleep_until work
// as with steady_clock.
struct Clock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<Clock>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept;
};

// Wall-clock time: NowNs() in client/show.h, read the same way.

class Connection {
 public:
  Connection() = default;
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects to `path` before `deadline`. On failure returns false with *error set
  // ("connect /run/user/1000/ferry/ferry.sock: No such file or directory") and
  // connect_errno() saying why (ENOENT, ECONNREFUSED, EAGAIN for a full listen queue, ...).
  bool Connect(const std::string& path, Clock::time_point deadline, std::string* error);
  int connect_errno() const { return connect_errno_; }
  // Takes over `fd`, a connected stream socket (made non-blocking here), in place of any
  // socket this connection had. With `child_pid` > 0 the connection also owns that process
  // (the read-only ferryd of client/offline.h, serving the other end): the destructor closes
  // `fd`, which ends it, and reaps it (waiting at most kReapWait, then SIGKILL).
  void Adopt(int fd, int child_pid = -1);
  static constexpr std::chrono::milliseconds kReapWait{2000};
  // Sends one whole frame.
  bool Send(const std::string& frame, Clock::time_point deadline, std::string* error);
  // Sends one frame: its header from the stack and `body` where it is (sendmsg with two
  // parts), so a 20 KB event is not copied into a frame first (fresh heap pages, a page
  // fault each in a short-lived client).
  bool SendFrame(proto::FrameType type, std::string_view body, Clock::time_point deadline,
                 std::string* error);
  // SendFrame with a body in up to three parts, sent where they lie (the event's envelope
  // head, a hook's payload as read, the closing braces): a 20 KB payload is not copied into
  // a body first.
  bool SendFrameParts(proto::FrameType type, std::span<const std::string_view> body,
                      Clock::time_point deadline, std::string* error);
  // Receives one frame (type and body) before `deadline`.
  bool Receive(Clock::time_point deadline, proto::FrameType* type, std::string* body,
               std::string* error);

 private:
  bool WaitFor(short events, Clock::time_point deadline, std::string* error);
  // Writes the parts in order (one sendmsg, an iovec each), retrying short writes until the
  // deadline. At most kMaxParts parts.
  static constexpr size_t kMaxParts = 4;
  bool SendParts(std::span<const std::string_view> parts, Clock::time_point deadline,
                 std::string* error);
  int fd_ = -1;
  int connect_errno_ = 0;
  int child_pid_ = -1;
  std::string buf_;
  // Replies are read into a small stack buffer first (an ACK is ~60 bytes: a larger stack
  // frame costs page faults on the hook path, docs/benchmarks.md "Run L-lat"); once a read
  // fills it, into this 64 KiB heap buffer (query results, pages of a transcript).
  std::unique_ptr<char[]> big_;
};

}  // namespace ferry::client
