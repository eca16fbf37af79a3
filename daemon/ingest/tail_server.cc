#include "daemon/ingest/tail_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <limits>

#include <spdlog/spdlog.h>

#include "daemon/base/thread_role.h"
#include "daemon/journal/reader.h"
#include "proto/event.h"
#include "proto/frame.h"

namespace ferry {
namespace {

constexpr std::chrono::milliseconds kPollStep{200};

// Writes all of `data` to the non-blocking `fd`, waiting for room in steps so that `stop`
// is seen. False when the client went away or we are stopping.
bool SendAll(int fd, const std::string& data, const std::atomic<bool>& stop) {
  size_t off = 0;
  while (off < data.size()) {
    if (stop.load()) return false;
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return false;
    struct pollfd p {
      fd, POLLOUT, 0
    };
    if (::poll(&p, 1, static_cast<int>(kPollStep.count())) < 0 && errno != EINTR) return false;
    if (p.revents & (POLLERR | POLLHUP)) return false;
  }
  return true;
}

// True when the client has hung up (or sent something: a tail client sends nothing more).
bool PeerGone(int fd) {
  struct pollfd p {
    fd, POLLIN | POLLRDHUP, 0
  };
  return ::poll(&p, 1, 0) > 0 && p.revents != 0;
}

bool Matches(const proto::TailRequest& req, const std::string& body) {
  if (req.source.empty() && req.kind.empty()) return true;
  rapidjson::Document doc;
  proto::Error error;
  if (!proto::ParseJson(body, &doc, &error) || !doc.IsObject()) return false;
  auto field_is = [&](const char* key, const std::string& want) {
    if (want.empty()) return true;
    auto it = doc.FindMember(key);
    return it != doc.MemberEnd() && it->value.IsString() &&
           want == std::string_view(it->value.GetString(), it->value.GetStringLength());
  };
  return field_is("source", req.source) && field_is("kind", req.kind);
}

void AppendItem(std::string& out, const JournalRecord& rec) {
  std::string body = "{\"v\":1,\"seq\":" + std::to_string(rec.seq) +
                     ",\"received\":" + std::to_string(rec.received_ns) + ",\"event\":";
  body += rec.body;
  body += '}';
  proto::AppendFrame(out, proto::FrameType::kTailItem, body);
}

// An ephemeral event: {"v":1,"ephemeral":true,"after":N,"received":ns,"event":{envelope}}.
void AppendEphemeral(std::string& out, uint64_t after, int64_t received_ns,
                     const std::string& envelope) {
  std::string body = "{\"v\":1,\"ephemeral\":true,\"after\":" + std::to_string(after) +
                     ",\"received\":" + std::to_string(received_ns) + ",\"event\":";
  body += envelope;
  body += '}';
  proto::AppendFrame(out, proto::FrameType::kTailItem, body);
}

// A note item: {"v":1,"<what>":{<key>:<seq>[,"to":<to>],"reason":"..."}}.
void AppendNote(std::string& out, const char* what, const char* key, uint64_t seq,
                const uint64_t* to, const std::string& why) {
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  w.StartObject();
  w.Key("v");
  w.Int(1);
  w.Key(what);
  w.StartObject();
  w.Key(key);
  w.Uint64(seq);
  if (to) {
    w.Key("to");
    w.Uint64(*to);
  }
  w.Key("reason");
  w.String(why.data(), static_cast<rapidjson::SizeType>(why.size()));
  w.EndObject();
  w.EndObject();
  proto::AppendFrame(out, proto::FrameType::kTailItem,
                     std::string_view(sb.GetString(), sb.GetSize()));
}

// The seqs [from, to] will never be sent (deleted by retention, lost to damage).
void AppendSkipped(std::string& out, uint64_t from, uint64_t to, const std::string& why) {
  AppendNote(out, "skipped", "from", from, &to, why);
}

// A note that the stream waits: the record at `seq` cannot be read now and is being retried.
void AppendWaiting(std::string& out, uint64_t seq, const std::string& why) {
  AppendNote(out, "waiting", "seq", seq, nullptr, why);
}

constexpr const char* kNotInJournal = "not in the journal";

// The reason of a skipped item for damage: "damaged journal: <reason> in segment <name>".
std::string DamageReason(const JournalReader& reader) {
  return "damaged journal: " + reader.damage_reason() + " in segment " + reader.damaged_segment();
}

}  // namespace

TailServer::TailServer(std::string journal_dir, JournalProgress& progress)
    : dir_(std::move(journal_dir)), progress_(progress) {}

TailServer::~TailServer() { Stop(); }

bool TailServer::Start(int fd, const proto::TailRequest& request, std::string* error) {
  ReapDone();
  if (stop_.load() || workers_.size() >= kMaxTails) {
    *error = stop_.load() ? "ferryd is stopping"
                          : "too many tails (" + std::to_string(kMaxTails) + ") are running";
    const std::string frame = proto::EncodeFrame(
        proto::FrameType::kError,
        proto::MakeErrorBody(
            {stop_.load() ? proto::Errc::kShuttingDown : proto::Errc::kTooManyConnections, *error},
            true));
    (void)::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::close(fd);
    return false;
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  Worker& w = workers_.emplace_back();
  if (request.follow) w.feed = std::make_unique<Feed>();
  active_.fetch_add(1);
  w.thread = std::thread([this, fd, request, &w] {
    SetThreadRole("tail", ThreadClass::kBackground);
    Run(fd, request, &w);
  });
  return true;
}

void TailServer::ReapDone() {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->done.load()) {
      it->thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

size_t TailServer::Offer(std::string_view body, uint64_t after, int64_t received_ns) {
  counters_.received.fetch_add(1);
  std::shared_ptr<const std::string> shared;
  size_t queued = 0, open = 0;
  for (Worker& w : workers_) {
    if (!w.feed || w.done.load()) continue;
    ++open;
    Feed& feed = *w.feed;
    MutexLock lock(feed.mu);
    if (feed.items.size() >= kFeedItems || feed.bytes + body.size() > kFeedBytes) {
      counters_.dropped_slow_tail.fetch_add(1);  // the worker is behind: never wait for it
      continue;
    }
    if (!shared) shared = std::make_shared<const std::string>(body);
    feed.items.push_back({after, received_ns, shared});
    feed.bytes += body.size();
    if (feed.waiting.load()) feed.cv.NotifyAll();
    ++queued;
  }
  if (open == 0) counters_.dropped_no_tail.fetch_add(1);
  return queued;
}

void TailServer::OnWritten() {
  for (Worker& w : workers_) {
    if (!w.feed || !w.feed->waiting.load()) continue;
    MutexLock lock(w.feed->mu);
    w.feed->cv.NotifyAll();
  }
}

void TailServer::DrainDue(Feed& feed, uint64_t before, const proto::TailRequest& req,
                          std::string& out) {
  std::deque<EphemeralItem> due;
  {
    MutexLock lock(feed.mu);
    while (!feed.items.empty() && feed.items.front().after < before) {
      feed.bytes -= feed.items.front().body->size();
      due.push_back(std::move(feed.items.front()));
      feed.items.pop_front();
    }
  }
  for (const EphemeralItem& item : due) {
    if (!Matches(req, *item.body)) continue;
    AppendEphemeral(out, item.after, item.received_ns, *item.body);
    counters_.delivered.fetch_add(1);
  }
}

void TailServer::WaitForMore(Feed* feed, uint64_t limit, uint64_t next_seq) {
  if (!feed) {
    progress_.WaitBeyond(limit, kPollStep);
    return;
  }
  const auto deadline = std::chrono::steady_clock::now() + kPollStep;
  MutexLock lock(feed->mu);
  // Set before the checks: OnWritten (after publishing the written seq) and Offer (under mu)
  // notify once they see it, so no wake-up falls between a check and the wait.
  feed->waiting.store(true);
  while (progress_.written() <= limit && !progress_.stopped() && !stop_.load() &&
         (feed->items.empty() || feed->items.front().after >= next_seq)) {
    if (feed->cv.WaitUntil(lock, deadline) == std::cv_status::timeout) break;
  }
  feed->waiting.store(false);
}

void TailServer::Stop() {
  stop_.store(true);
  for (Worker& w : workers_) {
    if (w.thread.joinable()) w.thread.join();
  }
  workers_.clear();
}

// Over 80 lines: one loop over the reader's results whose branches share the stream's state
// (expect, pending_reason, waiting_sent, out); split, each piece would take all of it.
void TailServer::Run(int fd, proto::TailRequest req, Worker* self) {
  uint64_t start = req.from;
  if (start == 0) {
    const uint64_t written = progress_.written();
    start = written >= req.last ? written - req.last + 1 : 1;
  }
  // A replay without follow ends at what was written when it began.
  const uint64_t end = req.follow ? std::numeric_limits<uint64_t>::max() : progress_.written();
  JournalReader reader(dir_, start);
  const std::string who = "tail #" + std::to_string(fd);
  std::string out;
  bool ok = true;
  uint64_t limit = 0;
  // Damage in the newest segment: the seqs from pending_from on are lost, but how many is
  // known only when a later record shows up; its gap then carries this reason.
  std::string pending_reason;
  bool waiting_sent = false;  // one "waiting" note per read-error episode
  // The next seq the client has not heard about: every seq below it was sent (if it matched
  // the filters) or reported in a skipped item. The reader may jump ahead of it inside any
  // Next() (segments deleted by retention), so gaps are measured from here, not from the
  // reader's position before the call.
  uint64_t expect = start;
  while (ok && !stop_.load()) {
    limit = std::min(progress_.written(), end);
    JournalRecord rec;
    const JournalReader::Result r =
        reader.next_seq() > limit ? JournalReader::Result::kEnd : reader.Next(limit, &rec);
    const auto backoff = journal_health::Observe(who, r, reader);
    if (r == JournalReader::Result::kRecord) {
      waiting_sent = false;
      if (rec.seq > expect) {
        AppendSkipped(out, expect, rec.seq - 1,
                      pending_reason.empty() ? std::string(kNotInJournal) : pending_reason);
      }
      pending_reason.clear();
      expect = rec.seq + 1;
      if (self->feed) DrainDue(*self->feed, rec.seq, req, out);  // arrived before this record
      if (Matches(req, rec.body)) AppendItem(out, rec);
      if (out.size() >= kFlushBytes) {
        ok = SendAll(fd, out, stop_);
        out.clear();
      }
      continue;
    }
    if (r == JournalReader::Result::kCorruption) {
      // Logged and listed in status problems by journal_health; the client gets the exact
      // seqs lost, like the seqs deleted by retention, with the reason.
      if (reader.lost_first() != 0 && reader.lost_first() >= expect) {
        if (reader.lost_first() > expect) {
          AppendSkipped(out, expect, reader.lost_first() - 1, kNotInJournal);
          expect = reader.lost_first();
        }
        if (reader.lost_last() != JournalReader::kUnknownLast) {
          AppendSkipped(out, reader.lost_first(), reader.lost_last(), DamageReason(reader));
          expect = reader.lost_last() + 1;
        } else {
          pending_reason = DamageReason(reader);
        }
      }
      continue;
    }
    if (r == JournalReader::Result::kIOError) {
      // Nothing skipped: tell the client once that the stream waits, then retry.
      if (!waiting_sent) {
        if (reader.next_seq() > expect) {  // segments deleted before the failed read
          AppendSkipped(out, expect, reader.next_seq() - 1, kNotInJournal);
          expect = reader.next_seq();
        }
        AppendWaiting(out, reader.next_seq(), reader.error());
        waiting_sent = true;
      }
      ok = SendAll(fd, out, stop_);
      out.clear();
      const auto until = std::chrono::steady_clock::now() + backoff;
      while (ok && !stop_.load() && !progress_.stopped() &&
             std::chrono::steady_clock::now() < until) {
        if (PeerGone(fd)) ok = false;
        progress_.WaitBeyond(
            std::numeric_limits<uint64_t>::max(),
            std::min(kPollStep, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    until - std::chrono::steady_clock::now())));
      }
      continue;
    }
    // Caught up with `limit`.
    if (reader.next_seq() > end || (!req.follow && reader.next_seq() <= limit)) {
      // Done (or, without follow, nothing more can be read up to the end: report the gap).
      if (expect <= end && end > 0) {
        AppendSkipped(out, expect, end,
                      pending_reason.empty() ? std::string(kNotInJournal) : pending_reason);
      }
      proto::AppendFrame(out, proto::FrameType::kTailItem,
                         "{\"v\":1,\"end\":true,\"next\":" + std::to_string(end + 1) + "}");
      ok = SendAll(fd, out, stop_);
      out.clear();
      break;
    }
    // Ephemeral events that arrived after every record read so far.
    if (self->feed) DrainDue(*self->feed, reader.next_seq(), req, out);
    if (!out.empty()) {
      ok = SendAll(fd, out, stop_);
      out.clear();
    }
    if (!ok || progress_.stopped()) break;
    WaitForMore(self->feed.get(), limit, reader.next_seq());
    if (PeerGone(fd)) break;
  }
  journal_health::Forget(who);
  ::close(fd);
  active_.fetch_sub(1);
  self->done.store(true);
}

}  // namespace ferry
