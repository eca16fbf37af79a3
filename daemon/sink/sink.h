// Sink: one upstream ([[sink]] in config.toml) and the thread that delivers the journal to it.
// Design and every rule it follows: docs/sinks.md.
//
// The sink thread owns its JournalReader, its HttpClient, its cursor file (cursors/<name>),
// its dead-letter files (deadletter/<name>.ndjson and .replay.ndjson: only the sink thread
// touches them) and its backoff. Other threads talk to it through a few calls that set
// atomics or flags and signal its condition variable: OnWritten (io thread, after each journal
// flush), Flush, Reload, RequestReplay, Stop; and through a small mailbox for work that needs
// the disk (PurgeDeadletters): the caller queues it and gets its answer in a callback that
// runs on the sink thread, so the io thread never waits for a sink's disk I/O. Status is read
// from any thread: counters are atomics (the dead-letter counts are kept as lines are written
// and removed, never by reading the files), the rest sits behind info_mu_ (a leaf lock).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/config/config.h"
#include "daemon/journal/progress.h"
#include "daemon/redact/redact.h"
#include "daemon/sink/encode.h"
#include "proto/event.h"

namespace ferry {

class HttpClient;
class JournalReader;
struct JournalRecord;

struct SinkDeps {
  std::string state_dir;    // cursors/ and deadletter/ live here
  std::string journal_dir;  // <state>/journal
  JournalProgress* progress = nullptr;
  ConsumerRegistry* consumers = nullptr;
  BatchMeta meta;  // host, host_id, version (sink is filled in by the Sink)
};

// Reads the sink's token from token_file or token_env. Returns "" and fills *token (empty when
// the sink has none), or returns what is wrong (missing, empty, readable by group or others)
// and how to fix it. The token itself never appears in the message.
std::string ReadSinkToken(const SinkConfig& config, std::string* token);

class Sink {
 public:
  enum class State { kIdle, kSending, kBackingOff, kPaused, kStopped };
  static const char* StateName(State s);

  Sink(SinkConfig config, SinkDeps deps, std::shared_ptr<const Redactor> redactor);
  ~Sink();  // Stop() and Join()
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  // Reads cursors/<name> (a missing file starts at the journal's `oldest_seq`; a cursor past
  // the journal's `written_seq` means the journal was reset, and starts there too) and
  // registers the consumer slot "sink:<name>". (The sink thread counts the dead letters when
  // it starts.)
  Status Open(uint64_t oldest_seq, uint64_t written_seq);
  void Start();
  // Asks the thread to end: no new request starts, one in progress is aborted (it is sent
  // again, with the same key, after a restart). Join() waits for the thread.
  void Stop();
  void Join();

  // Any thread. Cheap when the sink is busy: an atomic load.
  void OnWritten();
  // Send now: cut the batch wait for events up to `upto` (the journal's last seq when the
  // flush was asked) and any backoff or pause wait.
  void Flush(uint64_t upto);
  // Config reload: new redaction rules (may be null = unchanged); re-read the token and retry
  // at once if paused.
  void Reload(std::shared_ptr<const Redactor> redactor);
  // Dead letters: queue a replay (returns the events queued; no disk I/O).
  uint64_t RequestReplay();
  // Any thread; never blocks on disk I/O. Queues the purge for the sink thread, which deletes
  // deadletter/<name>.ndjson between two requests (a POST in progress finishes first) and
  // then calls done(how many lines it held, "" or what went wrong) on the sink thread. If the
  // sink is destroyed before its thread ran it, done(0, "the sink stopped ...") runs from the
  // destructor.
  using PurgeDone = std::function<void(uint64_t purged, std::string error)>;
  void PurgeDeadletters(PurgeDone done);

  const std::string& name() const { return config_.name; }
  const SinkConfig& config() const { return config_; }
  uint64_t cursor() const { return cursor_.load(); }
  State state() const { return state_.load(); }
  uint64_t failures_total() const { return failures_total_.load(); }
  uint64_t deadlettered() const { return deadlettered_.load(); }
  std::string last_error_text() const;
  // One object of status's "sinks" array (docs/sinks.md "Status").
  void WriteStatus(proto::JsonWriter& w, uint64_t journal_written) const;

 private:
  struct Batch;
  struct Outcome;

  void Run();
  // Gathers the next batch from the journal. Returns false when stopping.
  // `limit_seq` > 0: stop after that seq (the in-flight batch of the last run).
  bool Gather(Batch* batch, uint64_t limit_seq);
  // Adds one journal record to the batch (parse, redact). False: malformed, skipped.
  bool AddRecord(Batch* batch, JournalRecord&& rec);
  // Sends `batch` until every event in it is delivered or dead-lettered. False: stopping.
  bool Deliver(Batch& batch, const std::string& key_suffix);
  bool Replay();
  Outcome Send(Batch& batch, size_t lo, size_t hi, const std::string& key_suffix);
  // Appends one dead letter (fdatasync). False, with the error in status, when it could not
  // be written: the caller must not move past the event.
  bool DeadLetter(const Batch& batch, size_t i, long status, const std::string& response);
  // Waits until `deadline`, a flush, a reload or stop. Returns false when stopping.
  bool SleepUntil(std::chrono::steady_clock::time_point deadline, bool wake_on_reload);
  Status SaveCursor(uint64_t cursor, uint64_t inflight_first, uint64_t inflight_last, bool durable);
  void LoadToken();
  // Applies a pending Reload(): the new redactor (true when there is one) and the token.
  bool ApplyReload();
  void Reredact(Batch* batch);
  void SetError(long status, std::string message, std::string body);
  // Sink thread: the token, and whatever the built-in detectors and the [redact] rules find,
  // rewritten out of a response body before it goes to status, flush output or a log line.
  std::string RedactResponse(std::string body) const;
  // Mailbox (see the class comment). Post: any thread. RunMail: sink thread; runs what is
  // queued. A job is called with true on the sink thread, or false when the sink is gone
  // first (it must then answer without touching the disk).
  void Post(std::function<void(bool run)> job);
  void RunMail();
  void Purge(const PurgeDone& done);
  void SetState(State s, std::chrono::system_clock::time_point next_retry = {});

  const SinkConfig config_;
  const SinkDeps deps_;
  const std::string endpoint_;
  const std::string cursor_path_;
  const std::string deadletter_path_;
  const std::string replay_path_;
  BatchMeta meta_;
  ConsumerRegistry::Slot* slot_ = nullptr;

  // Set by other threads, read by the sink thread.
  std::mutex mu_;  // guards redactor_next_ and pairs with cv_; leaf lock
  std::condition_variable cv_;
  std::atomic<bool> waiting_{false};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> flush_gen_{0};
  std::atomic<uint64_t> flush_upto_{0};
  std::atomic<uint64_t> reload_gen_{0};
  std::atomic<bool> replay_requested_{false};
  std::shared_ptr<const Redactor> redactor_next_;
  std::vector<std::function<void(bool)>> mail_;  // guarded by mu_
  std::atomic<bool> mail_pending_{false};        // mail_ is not empty

  // Sink thread only.
  std::unique_ptr<JournalReader> reader_;
  std::unique_ptr<JournalRecord> carry_;  // read but not yet in a batch (did not fit)
  std::unique_ptr<HttpClient> http_;
  std::shared_ptr<const Redactor> redactor_;
  std::string token_;
  std::string token_error_;
  uint64_t inflight_first_ = 0, inflight_last_ = 0;  // from the cursor file at Open
  uint32_t attempt_ = 0;                             // consecutive retryable failures
  uint64_t reload_gen_seen_ = 0;                     // the reload_gen_ last applied (ApplyReload)
  uint64_t flush_seen_ = 0;                          // the flush_gen_ last acted on
  std::thread thread_;

  // Status: atomics, and info_mu_ for the strings.
  std::atomic<uint64_t> cursor_{0};
  std::atomic<State> state_{State::kIdle};
  std::atomic<uint64_t> failures_total_{0};
  std::atomic<uint64_t> consecutive_failures_{0};
  std::atomic<uint64_t> delivered_events_{0};
  std::atomic<uint64_t> delivered_batches_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> bytes_sent_{0};
  std::atomic<uint64_t> deadlettered_{0};  // lines in deadletter/<name>.ndjson (sink thread)
  std::atomic<uint64_t> replay_pending_{0};
  std::atomic<uint64_t> redacted_{0};
  std::atomic<uint64_t> skipped_{0};
  std::atomic<int64_t> pending_received_ns_{0};  // oldest undelivered event, 0 when none
  mutable std::mutex info_mu_;
  int64_t last_success_ns_ = 0;  // wall clock
  struct LastError {
    int64_t time_ns = 0;
    long status = 0;
    std::string message;
    std::string body;
  } last_error_;
  int64_t next_retry_ns_ = 0;
};

}  // namespace ferry
