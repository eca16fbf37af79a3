// ArchiveWorker: the transcript archive's own thread (docs/archive.md). It is reached only
// through its mailbox:
//  - Post(trigger), from the store thread after a commit: copy the bytes of each named
//    transcript that are not archived yet. Equal triggers waiting in the mailbox are merged.
//  - Read(body, reply), from the io thread: answer a TRANSCRIPT_REQ (read.h); `reply` gets
//    the encoded frame on the worker thread (the caller posts it back to io).
// The thread owns everything under <state>/archive/ and every transcript file it opens; the
// io and store threads never wait on that I/O.
//
// A copy: the path must be absolute; it is opened O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC
// (a symlink or a FIFO never redirects or blocks it) and must be a regular file owned by
// ferryd's user (fstat), else it is refused: counted, logged once per path (and at most
// kLogsPerMinute lines a minute). A missing file is counted and logged the same way. The bytes
// from the archived offset to the file's size are appended as data frames (format.h) to the
// path's newest generation and fdatasynced; a file shorter than what was copied, or whose last
// copied block changed, starts a new generation from offset 0. Complete new lines are read for
// messages (extract.h), handed to `on_messages`. Over `max_bytes`, whole sessions are removed,
// the least recently written first (never the one just written), and counted.
//
// Threads: Post, Read, WriteStatus from any thread; Start/Stop from the owner (io, main).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "daemon/base/thread_annotations.h"
#include "daemon/store/transcript_feed.h"
#include "proto/event.h"

namespace ferry {

struct ArchiveOptions {
  std::string dir;      // <state>/archive
  bool enabled = true;  // false: triggers are ignored (reads still work)
  uint64_t max_bytes = 1ull << 30;
  std::function<void(std::vector<TranscriptMessage>)> on_messages;  // worker thread
};

struct ArchiveCounters {
  std::atomic<uint64_t> sessions{0};      // session directories in the archive
  std::atomic<uint64_t> stored_bytes{0};  // bytes of the archive's files
  std::atomic<uint64_t> copied_bytes{0};  // transcript bytes copied since ferryd started
  std::atomic<uint64_t> copies{0};        // copies that added bytes
  std::atomic<uint64_t> generations{0};   // new generations started (truncated/rewritten files)
  std::atomic<uint64_t> missing{0};       // triggers whose transcript did not exist
  std::atomic<uint64_t> refused{
      0};  // paths refused (not absolute, symlink, not regular, other owner)
  std::atomic<uint64_t> evicted_sessions{0};
  std::atomic<uint64_t> evicted_bytes{0};
  std::atomic<uint64_t> messages{0};  // messages handed to the store
  std::atomic<uint64_t> failed{0};    // copies that failed (disk full, read error)
  std::atomic<uint64_t> pending{0};   // triggers waiting in the mailbox
  std::atomic<uint64_t> triggers{0};  // triggers handled (every path copied, refused or missing)
};

class ArchiveWorker {
 public:
  using Reply = std::function<void(std::string frame)>;
  static constexpr int kLogsPerMinute = 20;

  explicit ArchiveWorker(ArchiveOptions options);
  ~ArchiveWorker();
  ArchiveWorker(const ArchiveWorker&) = delete;
  ArchiveWorker& operator=(const ArchiveWorker&) = delete;

  void Start();
  // Copies what is still queued for at most `drain` (answering reads), then joins. Triggers
  // left after that are dropped with a log line: the session's next trigger copies their bytes.
  void Stop(std::chrono::milliseconds drain = std::chrono::seconds(5));

  void Post(TranscriptTrigger trigger);
  void Read(std::string body, Reply reply);

  const ArchiveCounters& counters() const { return counters_; }
  std::string last_error() const;
  // The status object "archive" (docs/protocol.md).
  void WriteStatus(proto::JsonWriter& w) const;

 private:
  struct Item {
    TranscriptTrigger trigger;
    std::string body;  // a read when reply is set
    Reply reply;
  };
  struct Transcript {
    uint32_t gen = 0;  // 0: no generation yet
    uint64_t end = 0;
    uint32_t tail_crc = 0;
    std::string partial;     // an incomplete last line, for messages
    bool skip_line = false;  // resumed mid-line after a restart: skip to the next '\n'
  };
  struct SessionInfo {
    std::string dir;
    uint64_t bytes = 0;
    int64_t last_write_ns = 0;
    uint32_t max_gen = 0;
    bool loaded = false;  // transcripts_ entries read from its files
  };
  using SessionKey = std::pair<std::string, std::string>;

  void Run();
  void LoadArchive();  // worker thread, first: sizes, ages, generations
  void Copy(const std::string& source, const std::string& session, const std::string& path);
  // The transcript's state, from its newest generation file on first use (cutting a torn or
  // corrupt tail, kept aside as <gen>.fta.damaged-<offset>).
  Transcript& Lookup(SessionInfo& si, const SessionKey& key, const std::string& path);
  bool CopyRange(int src_fd, const SessionKey& key, SessionInfo& si, Transcript& t, bool new_gen,
                 const std::string& path, uint64_t from, uint64_t size, std::string tail);
  void Evict(const SessionKey& keep);
  void Refuse(const std::string& path, const std::string& why);
  void Missing(const std::string& path);
  void LogOnce(const std::string& path, const std::string& line);
  void SetError(const std::string& message);

  const ArchiveOptions options_;
  ArchiveCounters counters_;
  std::thread thread_;

  mutable Mutex mu_;  // leaf: the mailbox
  CondVar cv_;
  std::deque<Item> queue_ FERRY_GUARDED_BY(mu_);
  std::set<std::string> queued_ FERRY_GUARDED_BY(mu_);  // keys of the triggers in queue_
  bool stopping_ FERRY_GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point drain_until_ FERRY_GUARDED_BY(mu_);

  mutable Mutex error_mu_;  // leaf
  std::string error_ FERRY_GUARDED_BY(error_mu_);

  // Worker thread only.
  std::map<SessionKey, SessionInfo> sessions_;
  std::map<std::string, Transcript> transcripts_;  // source \0 session \0 path
  std::set<std::string> logged_;                   // paths already logged
  std::chrono::steady_clock::time_point log_window_{};
  int logs_in_window_ = 0;
  bool warned_cap_ = false;
};

}  // namespace ferry
