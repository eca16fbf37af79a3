#include "daemon/ingest/server.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "daemon/ingest/event_canon.h"
#include "daemon/ingest/session.h"
#include "proto/messages.h"

namespace ferry {
namespace {

// Creates `dir` 0700 if missing; refuses a directory that another user owns or that others
// can enter, since the socket inside it is our only access control besides SO_PEERCRED.
Status PrepareSocketDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno("create socket directory " + dir, errno);
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return Status::FromErrno("stat " + dir, errno);
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(dir + " is not a directory");
  if ((st.st_mode & S_ISVTX) != 0 && (st.st_mode & S_IWOTH) != 0) {
    // A shared sticky directory such as /tmp: open to others by design, and nobody else may
    // remove or rename our socket there. Leave its mode alone (as root, a chmod 0700 would
    // lock every other user out of /tmp); the socket is 0600 and peers are checked.
    return Status::Ok();
  }
  if (st.st_uid != ::getuid()) {
    return Status::InvalidArgument("socket directory " + dir + " belongs to uid " +
                                   std::to_string(st.st_uid) + ", not to us (uid " +
                                   std::to_string(::getuid()) + ")");
  }
  if ((st.st_mode & 077) != 0) {
    if (::chmod(dir.c_str(), 0700) != 0) {
      return Status::FromErrno("socket directory " + dir + " is open to others and chmod 0700",
                               errno);
    }
    spdlog::warn("socket directory {} was mode {:o}; set it to 0700", dir, st.st_mode & 0777);
  }
  return Status::Ok();
}

// True when something accepts connections on `path` (a live ferryd).
bool SomeoneListens(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return live;
}

}  // namespace

bool LogLimiter::Allow(uint64_t* suppressed) {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_) {
    ++held_;
    return false;
  }
  next_ = now + period_;
  *suppressed = held_;
  held_ = 0;
  return true;
}

IngestServer::IngestServer(net::io_context& io, IngestLimits limits, Journal& journal,
                           JournalCommitter& committer, StatusProvider status)
    : io_(io),
      limits_(limits),
      journal_(journal),
      committer_(committer),
      status_(std::move(status)),
      admitter_(journal, nullptr),
      acks_(journal, committer),
      acceptor_(io),
      shutdown_timer_(io),
      accept_pause_(io) {
  limits_ = Clamp(limits_);
}

void IngestServer::SetLimits(const IngestLimits& limits) { limits_ = Clamp(limits); }

IngestLimits IngestServer::Clamp(IngestLimits limits) {
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return limits;
  const size_t nofile = static_cast<size_t>(rl.rlim_cur);
  const size_t cap = nofile - std::min(kReservedFds, nofile / 2);
  if (limits.max_connections > cap) {
    if (clamped_from_ != limits.max_connections) {
      spdlog::warn(
          "ingest.max_connections = {} does not fit the open-file limit ({}); using {} "
          "(raise the limit, e.g. LimitNOFILE= in the unit, to allow more)",
          limits.max_connections, nofile, cap);
      clamped_from_ = limits.max_connections;
    }
    limits.max_connections = cap;
  }
  return limits;
}

void IngestServer::LogFrameTimeout(const std::string& what) {
  uint64_t more = 0;
  if (!frame_log_.Allow(&more)) return;
  if (more > 0) {
    spdlog::warn("{} ({} more like it)", what, more);
  } else {
    spdlog::warn("{}", what);
  }
}

IngestServer::~IngestServer() {
  if (!socket_path_.empty()) ::unlink(socket_path_.c_str());
}

Status IngestServer::Listen(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return Status::InvalidArgument("socket path is " + std::to_string(path.size()) +
                                   " bytes; Unix sockets allow " +
                                   std::to_string(sizeof(sockaddr_un::sun_path) - 1) + ": " + path);
  }
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    Status s = PrepareSocketDir(path.substr(0, slash));
    if (!s.ok()) return s;
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Status::InvalidArgument(path + " exists and is not a socket; not touching it");
    }
    if (SomeoneListens(path)) {
      return Status::InvalidArgument("another ferryd is already running on " + path +
                                     " (ferry status shows it); not starting a second one");
    }
    spdlog::info("removing stale socket {}", path);
    if (::unlink(path.c_str()) != 0) return Status::FromErrno("remove stale socket " + path, errno);
  }
  boost::system::error_code ec;
  net::local::stream_protocol::endpoint endpoint(path);
  // Bind with a umask that leaves the socket 0600 from its first moment.
  const mode_t old_mask = ::umask(077);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  ::umask(old_mask);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError("listen on " + path + ": " + ec.message());
  ::fcntl(acceptor_.native_handle(), F_SETFD, FD_CLOEXEC);
  if (::chmod(path.c_str(), 0600) != 0) return Status::FromErrno("chmod 0600 " + path, errno);
  socket_path_ = path;
  return Status::Ok();
}

Status IngestServer::Adopt(int fd, const std::string& path) {
  boost::system::error_code ec;
  acceptor_.assign(net::local::stream_protocol(), fd, ec);
  if (ec) return Status::IOError("use the socket passed for " + path + ": " + ec.message());
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  adopted_ = true;
  return Status::Ok();
}

void IngestServer::Start() { DoAccept(); }

void IngestServer::DoAccept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, UnixSocket socket) {
    OnAccept(ec, std::move(socket));
  });
}

void IngestServer::OnAccept(const boost::system::error_code& ec, UnixSocket socket) {
  if (ec == net::error::operation_aborted) return;
  if (shutting_down_) {
    // Accepted in the same loop pass as the stop signal. Close it in order like the sessions
    // already open (nothing of it was read, so nothing is lost): its client sees EOF before
    // an ack and spools, instead of a reset or a hang.
    if (!ec) {
      auto session = std::make_shared<IngestSession>(std::move(socket), *this);
      sessions_.emplace(session.get(), session);
      session->Start();
      session->Shutdown();
    }
    return;
  }
  if (ec) {
    // Out of descriptors (EMFILE, ENFILE) or kernel memory: the connection stays in the
    // backlog, so accepting again at once fails again at once (a busy loop that floods the
    // log). Pause accepting for a moment instead, with a rate-limited log line; the peers
    // wait in the backlog and are served once descriptors free up.
    const int err = ec.value();
    const bool exhausted = err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
    uint64_t more = 0;
    if (accept_log_.Allow(&more)) {
      spdlog::warn("accept failed: {}{}{}", ec.message(),
                   exhausted ? "; pausing accepts for 200 ms at a time" : "",
                   more > 0 ? " (" + std::to_string(more) + " more since the last report)" : "");
    }
    accept_pause_.expires_after(std::chrono::milliseconds(exhausted ? 200 : 10));
    accept_pause_.async_wait([this](const boost::system::error_code& e) {
      if (!e && !shutting_down_) DoAccept();
    });
    return;
  }
  counters_.connections_total++;
  struct ucred cred {};
  socklen_t len = sizeof cred;
  proto::Error refusal;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    refusal = {proto::Errc::kPeerRejected, "cannot read the peer's credentials"};
  } else if (cred.uid != uid_) {
    refusal = {proto::Errc::kPeerRejected, "peer uid " + std::to_string(cred.uid) +
                                               " is not the daemon's uid " + std::to_string(uid_) +
                                               "; ferryd serves one user"};
  } else if (sessions_.size() >= limits_.max_connections) {
    refusal = {proto::Errc::kTooManyConnections,
               "ferryd already has " + std::to_string(sessions_.size()) +
                   " connections (ingest.max_connections); try again"};
  }
  if (!refusal.ok()) {
    counters_.connections_refused++;
    uint64_t more = 0;
    if (refuse_log_.Allow(&more)) {
      spdlog::warn("refused connection (pid {} uid {}): {}{}", cred.pid, cred.uid, refusal.message,
                   more > 0 ? " (" + std::to_string(more) + " more since the last report)" : "");
    }
    // A small frame fits the socket buffer: a blocking best-effort write is fine here.
    const std::string frame =
        proto::EncodeFrame(proto::FrameType::kError, proto::MakeErrorBody(refusal, true));
    boost::system::error_code ignored;
    net::write(socket, net::buffer(frame), ignored);
    socket.close(ignored);
    DoAccept();
    return;
  }
  spdlog::debug("connection from pid {} ({} open)", cred.pid, sessions_.size() + 1);
  auto session = std::make_shared<IngestSession>(std::move(socket), *this);
  sessions_.emplace(session.get(), session);
  session->Start();
  // A hook's first frame is usually read in Start and its flush posted: accept the next
  // connection after that flush, so the accept(2) that finds none (EAGAIN) follows the ACK.
  if (flush_posted_) {
    net::post(io_, [this] {
      if (!shutting_down_) DoAccept();
    });
  } else {
    DoAccept();
  }
}

void IngestServer::ScheduleFlush(const std::shared_ptr<IngestSession>& session, bool durable) {
  if (!session->in_pump_list()) {
    session->set_in_pump_list(true);
    waiting_.push_back(session);
  }
  durable_requested_ = durable_requested_ || durable;
  if (flush_posted_) return;
  flush_posted_ = true;
  // Posted, not run inline: every session whose read completed in this pass of the loop
  // appends first, so one write() (and one fdatasync, if asked) covers them all.
  net::post(io_, [this] { FlushJournal(); });
}

void IngestServer::FlushJournal() {
  flush_posted_ = false;
  const bool durable = durable_requested_;
  durable_requested_ = false;
  Status s = journal_.Flush();
  if (!s.ok()) {
    spdlog::error("journal write failed, refusing further events: {}", s.ToString());
  } else {
    committer_.Written(journal_.active_segment(), journal_.written_seq(), durable);
    if (written_listener_) written_listener_(journal_.written_seq());
  }
  PumpWaiting();
  if (after_acks_) after_acks_();
}

AdmitResult IngestServer::AdmitEvents(const proto::EventRequest& request, int64_t received_ns) {
  AdmitResult result = admitter_.Admit(request, local_redactor_.get(), received_ns);
  if (result.status.ok() && result.appended == 0) {
    result.first_seq = result.last_seq = journal_.last_seq();  // all duplicates: ack what is stored
  }
  return result;
}

uint64_t IngestServer::OfferEphemeral(const proto::EventRequest& request, int64_t received_ns) {
  uint64_t tails = 0;
  for (size_t i = 0; i < request.size(); ++i) {
    ephemeral_body_.Clear();
    proto::JsonWriter writer(ephemeral_body_);
    WriteCanonicalEvent(request, i, local_redactor_.get(), writer);  // redacted as if journaled
    const std::string_view body(ephemeral_body_.GetString(), ephemeral_body_.GetSize());
    if (ephemeral_handler_) tails = ephemeral_handler_(body, journal_.last_seq(), received_ns);
  }
  if (ephemeral_body_.GetSize() > (256u << 10)) ephemeral_body_ = rapidjson::StringBuffer();
  return tails;
}

std::string IngestServer::StatusReply(const rapidjson::Value& request) {
  if (status_hook_) status_hook_(request);
  return status_();
}

void IngestServer::OnDurable(uint64_t seq) {
  acks_.OnDurable(seq);
  PumpWaiting();
}

void IngestServer::OnSyncFailed(const Status& status) {
  acks_.OnSyncFailed(status);
  journal_.SetFailed(status);
  spdlog::error("journal fdatasync failed, refusing further events: {}", status.ToString());
  PumpWaiting();
}

void IngestServer::PumpWaiting() {
  // Swapped out first: a Pump() may close its session and so reach MaybeFinishShutdown,
  // which clears the list.
  pumping_.swap(waiting_);
  for (auto& session : pumping_) {
    if (session->Pump()) {
      waiting_.push_back(std::move(session));  // still owes replies
    } else {
      session->set_in_pump_list(false);
    }
  }
  pumping_.clear();
  MaybeFinishShutdown();
}

void IngestServer::SessionClosed(IngestSession* session) {
  sessions_.erase(session);
  MaybeFinishShutdown();
}

void IngestServer::BeginShutdown(std::chrono::milliseconds grace, std::function<void()> done) {
  if (shutting_down_) return;
  shutting_down_ = true;
  shutdown_done_ = std::move(done);
  boost::system::error_code ignored;
  accept_pause_.cancel();
  if (adopted_) {
    // Cancel the accept but keep the fd open until the process exits: systemd holds the same
    // socket, and connections that queue in its backlog now are served by the next start.
    acceptor_.cancel(ignored);
  } else {
    acceptor_.close(ignored);
  }
  if (!socket_path_.empty()) {
    ::unlink(socket_path_.c_str());
    socket_path_.clear();
  }
  // Frames already read are appended; make them written and durable, so their acks go out.
  Status s = journal_.Flush();
  if (s.ok()) {
    committer_.Written(journal_.active_segment(), journal_.written_seq(), true);
    if (written_listener_) written_listener_(journal_.written_seq());
    if (after_acks_) after_acks_();
  }
  std::vector<std::shared_ptr<IngestSession>> live;
  for (auto& [ptr, weak] : sessions_) {
    if (auto sp = weak.lock()) live.push_back(sp);
  }
  // Arm the grace timer before shutting the sessions down: an idle session closes at once,
  // and when the last one does, MaybeFinishShutdown() must find the timer there to cancel.
  // (Armed after, it held io.run() open for the whole grace period.)
  shutdown_timer_.expires_after(grace);
  shutdown_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    spdlog::warn("{} connection(s) did not drain within the grace period; closing them",
                 sessions_.size());
    std::vector<std::shared_ptr<IngestSession>> rest;
    for (auto& [ptr, weak] : sessions_) {
      if (auto sp = weak.lock()) rest.push_back(sp);
    }
    for (auto& sp : rest) sp->Close();
    sessions_.clear();
    waiting_.clear();
    MaybeFinishShutdown();
  });
  for (auto& sp : live) sp->Shutdown();
  MaybeFinishShutdown();
}

void IngestServer::MaybeFinishShutdown() {
  if (!shutting_down_ || !sessions_.empty() || !shutdown_done_) return;
  shutdown_timer_.cancel();
  waiting_.clear();
  auto done = std::move(shutdown_done_);
  shutdown_done_ = nullptr;
  net::post(io_, std::move(done));
}

}  // namespace ferry
