// ArchiveWorker's thread, mailbox, status and eviction; the copy itself is in copy.cc.
#include "daemon/archive/worker.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "daemon/archive/format.h"
#include "daemon/archive/read.h"
#include "daemon/base/file_util.h"
#include "daemon/base/thread_role.h"
#include "proto/frame.h"
#include "proto/messages.h"

namespace ferry {
namespace {

std::string TriggerKey(const TranscriptTrigger& t) {
  std::string key = t.source + '\0' + t.session;
  for (const std::string& p : t.paths) key += '\0' + p;
  return key;
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return names;
  while (const dirent* e = ::readdir(d)) {
    if (std::string_view(e->d_name) != "." && std::string_view(e->d_name) != "..")
      names.emplace_back(e->d_name);
  }
  ::closedir(d);
  return names;
}

}  // namespace

ArchiveWorker::ArchiveWorker(ArchiveOptions options) : options_(std::move(options)) {}

ArchiveWorker::~ArchiveWorker() { Stop(std::chrono::milliseconds(0)); }

void ArchiveWorker::Start() {
  thread_ = std::thread([this] {
    SetThreadRole("archive", ThreadClass::kBackground);
    LoadArchive();
    Run();
  });
}

void ArchiveWorker::Stop(std::chrono::milliseconds drain) {
  {
    MutexLock lock(mu_);
    if (!stopping_) {
      stopping_ = true;
      drain_until_ = std::chrono::steady_clock::now() + drain;
    }
  }
  cv_.NotifyAll();
  if (thread_.joinable()) thread_.join();
  // Reads that never ran get an answer, so no connection waits forever.
  std::deque<Item> left;
  {
    MutexLock lock(mu_);
    left.swap(queue_);
    queued_.clear();
  }
  size_t dropped = 0;
  for (Item& item : left) {
    if (item.reply) {
      item.reply(proto::EncodeFrame(
          proto::FrameType::kError,
          proto::MakeErrorBody({proto::Errc::kShuttingDown, "ferryd is stopping"}, false)));
    } else {
      ++dropped;
    }
  }
  counters_.pending.store(0);
  if (dropped > 0) {
    spdlog::warn(
        "archive: stopped with {} transcript copy request(s) not done; each session's "
        "next Stop or SessionEnd copies what they would have",
        dropped);
  }
}

void ArchiveWorker::Post(TranscriptTrigger trigger) {
  if (!options_.enabled) return;
  std::string key = TriggerKey(trigger);
  {
    MutexLock lock(mu_);
    if (stopping_ || !queued_.insert(std::move(key)).second) return;  // already waiting
    queue_.push_back(Item{std::move(trigger), {}, {}});
    counters_.pending.fetch_add(1);
  }
  cv_.NotifyOne();
}

void ArchiveWorker::Read(std::string body, Reply reply) {
  {
    MutexLock lock(mu_);
    if (!stopping_) {
      queue_.push_back(Item{{}, std::move(body), std::move(reply)});
      cv_.NotifyOne();
      return;
    }
  }
  reply(proto::EncodeFrame(
      proto::FrameType::kError,
      proto::MakeErrorBody({proto::Errc::kShuttingDown, "ferryd is stopping"}, false)));
}

void ArchiveWorker::Run() {
  for (;;) {
    Item item;
    {
      MutexLock lock(mu_);
      while (!stopping_ && queue_.empty()) cv_.Wait(lock);  // (a lambda escapes -Wthread-safety)
      if (queue_.empty()) return;
      if (stopping_ && std::chrono::steady_clock::now() >= drain_until_) return;
      item = std::move(queue_.front());
      queue_.pop_front();
      if (!item.reply) {
        queued_.erase(TriggerKey(item.trigger));
        counters_.pending.fetch_sub(1);
      }
    }
    if (item.reply) {
      item.reply(archive::AnswerTranscriptRequest(options_.dir, item.body));
      continue;
    }
    for (const std::string& path : item.trigger.paths) {
      Copy(item.trigger.source, item.trigger.session, path);
    }
    counters_.triggers.fetch_add(1);
  }
}

void ArchiveWorker::LoadArchive() {
  if (Status s = MakeDirs(options_.dir); !s.ok()) SetError(s.ToString());
  ::chmod(options_.dir.c_str(), 0700);
  uint64_t total = 0;
  for (const std::string& src_name : Entries(options_.dir)) {
    std::string source;
    if (!archive::DecodeName(src_name, &source)) continue;
    for (const std::string& name : Entries(options_.dir + "/" + src_name)) {
      std::string session;
      if (!archive::DecodeName(name, &session)) continue;
      SessionInfo si;
      si.dir = options_.dir + "/" + src_name + "/" + name;
      for (const std::string& file : Entries(si.dir)) {
        struct stat st {};
        if (::stat((si.dir + "/" + file).c_str(), &st) != 0) continue;
        si.bytes += static_cast<uint64_t>(st.st_size);
        si.last_write_ns = std::max<int64_t>(
            si.last_write_ns,
            static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec);
        uint32_t gen = 0;
        if (archive::ParseGenFileName(file, &gen)) si.max_gen = std::max(si.max_gen, gen);
      }
      total += si.bytes;
      sessions_.emplace(SessionKey{source, session}, std::move(si));
    }
  }
  counters_.stored_bytes.store(total);
  counters_.sessions.store(sessions_.size());
}

void ArchiveWorker::Evict(const SessionKey& keep) {
  while (counters_.stored_bytes.load() > options_.max_bytes) {
    auto oldest = sessions_.end();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      if (it->first == keep) continue;
      if (oldest == sessions_.end() || it->second.last_write_ns < oldest->second.last_write_ns)
        oldest = it;
    }
    if (oldest == sessions_.end()) {
      if (!warned_cap_) {
        spdlog::warn(
            "archive: session {} alone holds {} bytes, over archive.max_bytes ({}); "
            "kept (raise archive.max_bytes to keep older sessions too)",
            keep.second, counters_.stored_bytes.load(), options_.max_bytes);
        warned_cap_ = true;
      }
      return;
    }
    const SessionInfo& si = oldest->second;
    for (const std::string& file : Entries(si.dir)) ::unlink((si.dir + "/" + file).c_str());
    ::rmdir(si.dir.c_str());
    ::rmdir(DirOf(si.dir).c_str());  // the source's directory, when it is empty now
    spdlog::info(
        "archive: over archive.max_bytes ({}): removed session {} of {} ({} bytes), "
        "the least recently written",
        options_.max_bytes, oldest->first.second, oldest->first.first, si.bytes);
    counters_.stored_bytes.fetch_sub(std::min(si.bytes, counters_.stored_bytes.load()));
    counters_.evicted_sessions.fetch_add(1);
    counters_.evicted_bytes.fetch_add(si.bytes);
    const std::string prefix = oldest->first.first + '\0' + oldest->first.second + '\0';
    for (auto t = transcripts_.lower_bound(prefix);
         t != transcripts_.end() && t->first.compare(0, prefix.size(), prefix) == 0;) {
      t = transcripts_.erase(t);
    }
    sessions_.erase(oldest);
    counters_.sessions.store(sessions_.size());
  }
}

void ArchiveWorker::LogOnce(const std::string& path, const std::string& line) {
  if (logged_.count(path) != 0) return;
  if (logged_.size() < 10000) logged_.insert(path);
  const auto now = std::chrono::steady_clock::now();
  if (now - log_window_ >= std::chrono::minutes(1)) {
    log_window_ = now;
    logs_in_window_ = 0;
  }
  if (++logs_in_window_ > kLogsPerMinute) return;
  spdlog::warn("archive: {}", line);
}

void ArchiveWorker::Refuse(const std::string& path, const std::string& why) {
  counters_.refused.fetch_add(1);
  LogOnce(path, "not copying transcript " + path + ": " + why +
                    " (ferryd copies only regular files of your own, by absolute path)");
}

void ArchiveWorker::Missing(const std::string& path) {
  counters_.missing.fetch_add(1);
  LogOnce(path, "transcript " + path +
                    " does not exist (deleted or not written yet); what was copied before is kept");
}

void ArchiveWorker::SetError(const std::string& message) {
  MutexLock lock(error_mu_);
  error_ = message;
}

std::string ArchiveWorker::last_error() const {
  MutexLock lock(error_mu_);
  return error_;
}

void ArchiveWorker::WriteStatus(proto::JsonWriter& w) const {
  const ArchiveCounters& c = counters_;
  w.StartObject();
  w.Key("enabled");
  w.Bool(options_.enabled);
  w.Key("dir");
  w.String(options_.dir.c_str());
  w.Key("max_bytes");
  w.Uint64(options_.max_bytes);
  const std::pair<const char*, const std::atomic<uint64_t>*> figures[] = {
      {"sessions", &c.sessions},
      {"stored_bytes", &c.stored_bytes},
      {"copied_bytes", &c.copied_bytes},
      {"copies", &c.copies},
      {"generations", &c.generations},
      {"missing", &c.missing},
      {"refused", &c.refused},
      {"evicted_sessions", &c.evicted_sessions},
      {"evicted_bytes", &c.evicted_bytes},
      {"messages", &c.messages},
      {"failed", &c.failed},
      {"pending", &c.pending},
      {"triggers", &c.triggers}};
  for (const auto& [key, value] : figures) {
    w.Key(key);
    w.Uint64(value->load());
  }
  w.Key("last_error");
  const std::string error = last_error();
  if (error.empty()) {
    w.Null();
  } else {
    w.String(error.c_str());
  }
  w.EndObject();
}

}  // namespace ferry
