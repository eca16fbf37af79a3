#include "client/conn.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <thread>

namespace ferry::client {

Clock::time_point Clock::now() noexcept {
  struct timespec ts {};
  ::syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
  return time_point(duration(static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec));
}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
  if (child_pid_ <= 0) return;
  // The child serves this connection only: the close above ends it. A child still busy (a
  // query running to its time limit) is read-only, so killing it loses nothing.
  const auto give_up = Clock::now() + kReapWait;
  for (;;) {
    const pid_t r = ::waitpid(child_pid_, nullptr, WNOHANG);
    if (r == child_pid_ || (r < 0 && errno != EINTR)) return;
    if (Clock::now() >= give_up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(child_pid_, SIGKILL);
  while (::waitpid(child_pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
}

void Connection::Adopt(int fd, int child_pid) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  child_pid_ = child_pid;
  buf_.clear();
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags >= 0) ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
}

bool Connection::WaitFor(short events, Clock::time_point deadline, std::string* error) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      *error = "timed out";
      return false;
    }
    struct pollfd p {
      fd_, events, 0
    };
    const int r = ::poll(&p, 1, static_cast<int>(left.count()) + 1);
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) {
      *error = std::string("poll: ") + std::strerror(errno);
      return false;
    }
  }
}

bool Connection::Connect(const std::string& path, Clock::time_point deadline, std::string* error) {
  if (fd_ >= 0) ::close(fd_);  // a second attempt on the same Connection
  fd_ = -1;
  buf_.clear();
  struct sockaddr_un addr {};
  if (path.size() >= sizeof addr.sun_path) {
    *error = "socket path too long: " + path;
    connect_errno_ = ENAMETOOLONG;
    return false;
  }
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) {
    connect_errno_ = errno;
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  for (;;) {
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return true;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {  // listen backlog full: retry until the deadline
      if (Clock::now() >= deadline) {
        connect_errno_ = EAGAIN;
        *error = "connect " + path + ": the daemon's listen queue is full";
        return false;
      }
      ::usleep(200);
      continue;
    }
    connect_errno_ = errno;
    *error = "connect " + path + ": " + std::strerror(errno);
    return false;
  }
}

bool Connection::Send(const std::string& frame, Clock::time_point deadline, std::string* error) {
  const std::string_view part = frame;
  return SendParts({&part, 1}, deadline, error);
}

bool Connection::SendFrame(proto::FrameType type, std::string_view body, Clock::time_point deadline,
                           std::string* error) {
  return SendFrameParts(type, {&body, 1}, deadline, error);
}

bool Connection::SendFrameParts(proto::FrameType type, std::span<const std::string_view> body,
                                Clock::time_point deadline, std::string* error) {
  if (body.size() + 1 > kMaxParts) {
    *error = "send: a frame in more than " + std::to_string(kMaxParts - 1) + " parts";
    return false;
  }
  size_t size = 0;
  for (std::string_view part : body) size += part.size();
  char header[proto::kHeaderSize];
  proto::EncodeFrameHeader(header, type, size);
  std::string_view parts[kMaxParts];
  parts[0] = std::string_view(header, sizeof header);
  std::copy(body.begin(), body.end(), parts + 1);
  return SendParts({parts, body.size() + 1}, deadline, error);
}

bool Connection::SendParts(std::span<const std::string_view> parts, Clock::time_point deadline,
                           std::string* error) {
  size_t total = 0;
  for (std::string_view part : parts) total += part.size();
  size_t off = 0;  // bytes of the concatenated parts already sent
  while (off < total) {
    struct iovec iov[kMaxParts];
    size_t n_iov = 0, skip = off;
    for (std::string_view part : parts) {
      if (skip >= part.size()) {
        skip -= part.size();
        continue;
      }
      iov[n_iov++] = {const_cast<char*>(part.data()) + skip, part.size() - skip};
      skip = 0;
    }
    struct msghdr msg {};
    msg.msg_iov = iov;
    msg.msg_iovlen = n_iov;
    const ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!WaitFor(POLLOUT, deadline, error)) {
        *error = "send: " + *error;
        return false;
      }
    } else {
      *error = std::string("send: ") + std::strerror(errno);
      return false;
    }
  }
  return true;
}

bool Connection::Receive(Clock::time_point deadline, proto::FrameType* type, std::string* body,
                         std::string* error) {
  for (;;) {
    proto::Frame frame;
    proto::Error perr;
    const auto r = proto::DecodeFrame(buf_, 64u << 20, &frame, &perr);
    if (r == proto::DecodeResult::kFrame) {
      *type = frame.type;
      body->assign(frame.body);
      buf_.erase(0, frame.size);
      return true;
    }
    if (r == proto::DecodeResult::kError) {
      *error = "bad reply from the daemon: " + perr.message;
      return false;
    }
    constexpr size_t kBig = 64 << 10;
    char small[512];
    char* chunk = big_ ? big_.get() : small;
    const size_t cap = big_ ? kBig : sizeof small;
    const ssize_t n = ::recv(fd_, chunk, cap, 0);
    if (n > 0) {
      buf_.append(chunk, static_cast<size_t>(n));
      if (!big_ && static_cast<size_t>(n) == cap) big_.reset(new char[kBig]);
    } else if (n == 0) {
      *error = "the daemon closed the connection without a reply";
      return false;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!WaitFor(POLLIN, deadline, error)) {
        *error = "waiting for a reply: " + *error;
        return false;
      }
    } else if (errno == ECONNRESET) {
      // ferryd closed a connection whose request it had not read yet: it is stopping.
      *error = "ferryd closed the connection before answering (stopping or restarting?)";
      return false;
    } else {
      *error = std::string("recv: ") + std::strerror(errno);
      return false;
    }
  }
}

}  // namespace ferry::client
