// Sink: one upstream ([[sink]] in config.toml) and the thread that delivers the journal to it.
// Design and every rule it follows: docs/sinks.md.
//
// The sink thread owns all of the sink's working state: its JournalReader, its batch, its
// Transport (HttpClient), its cursor file (cursors/<name>), its dead-letter files
// (deadletter/<name>.ndjson and .replay.ndjson) and its backoff. Other threads talk to it
// through one mailbox (mu_ + cv_, like spdlog's async worker): Flush, Reload, RequestReplay,
// PurgeDeadletters, ListDeadletters and Stop each post a message, which the thread takes
// between two requests (never in the middle of one, except that Stop also aborts a request
// in flight). Answers that need the disk (purge, list) come back in a callback that runs on
// the sink thread, so the io thread never waits for a sink's disk I/O. OnWritten (io thread,
// after each journal flush) only wakes the thread when it waits for the journal.
//
// Status is read from any thread: the counters are atomics the sink thread writes (the
// dead-letter counts are kept as lines are written and removed, never by reading the files);
// the strings sit behind info_mu_. Lock order: mu_ and info_mu_ are leaf locks, never held
// together.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/base/thread_annotations.h"
#include "daemon/config/config.h"
#include "daemon/journal/progress.h"
#include "daemon/redact/redact.h"
#include "daemon/sink/deadletter.h"
#include "daemon/sink/encode.h"
#include "daemon/sink/spans.h"
#include "daemon/sink/token.h"
#include "daemon/sink/transport.h"
#include "proto/event.h"
#include "proto/messages.h"

namespace ferry {

class JournalReader;
class SinkBatch;
struct JournalRecord;

// A wait the sink is about to make between two attempts (SinkDeps::wait_hook).
struct SinkWait {
  enum class Kind {
    kBackoff,          // jittered backoff after a retryable failure
    kRetryAfter,       // the server's Retry-After (429/503), clamped
    kPaused,           // 401/403/404/405/407 or a token problem: until reload or kPausedRetry
    kDeadletterRetry,  // a dead letter could not be written
  };
  Kind kind;
  std::chrono::milliseconds asked;
  long status;  // the HTTP status that caused it (0: none or transport error)
};

struct SinkDeps {
  std::string state_dir;    // cursors/ and deadletter/ live here
  std::string journal_dir;  // <state>/journal
  JournalProgress* progress = nullptr;
  ConsumerRegistry* consumers = nullptr;
  BatchMeta meta;  // host, host_id, version (sink is filled in by the Sink)
  // Test seams; null in ferryd. make_transport builds the sink's Transport on its thread
  // (`abort` becomes true on Stop; the transport should end a request in flight then).
  // wait_hook runs on the sink thread before each SinkWait and returns the wait to make.
  std::function<std::unique_ptr<Transport>(const std::atomic<bool>* abort)> make_transport;
  std::function<std::chrono::milliseconds(const SinkWait&)> wait_hook;
};

class Sink {
 public:
  enum class State { kIdle, kSending, kBackingOff, kPaused, kStopped };
  static const char* StateName(State s);

  Sink(SinkConfig config, SinkDeps deps, std::shared_ptr<const Redactor> redactor);
  ~Sink();  // Stop() and Join(); then answers mail the thread never took
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  // io thread, before Start(). Reads cursors/<name> (sink/cursor_file.h) and registers the
  // consumer slot "sink:<name>". Errors: the cursor file is unreadable (Corruption) or the
  // state directories cannot be made.
  Status Open(uint64_t oldest_seq, uint64_t written_seq);
  void Start();
  // Any thread. Asks the thread to end: no new request starts, one in progress is aborted (it
  // is sent again, with the same key, after a restart). Join() waits for the thread.
  void Stop();
  void Join();

  // Any thread. Cheap: one uncontended lock; wakes the thread only when it waits for journal.
  void OnWritten();
  // Send now: cut the batch wait for events up to `upto` (the journal's last seq when the
  // flush was asked) and any backoff or pause wait.
  void Flush(uint64_t upto);
  // Config reload: new redaction rules (may be null = unchanged); re-read the token and retry
  // at once if paused.
  void Reload(std::shared_ptr<const Redactor> redactor);
  // Dead letters: queue a replay (returns the events queued, from the status counters; no
  // disk I/O).
  uint64_t RequestReplay();
  // Any thread; never blocks on disk I/O. The sink thread deletes deadletter/<name>.ndjson
  // between two requests and then calls done(how many lines it held, "" or what went wrong)
  // on the sink thread. If the sink is destroyed before its thread took the message,
  // done(0, "the sink stopped ...") runs from the destructor.
  using PurgeDone = std::function<void(uint64_t purged, std::string error)>;
  void PurgeDeadletters(PurgeDone done);
  // Any thread; never blocks on disk I/O. The sink thread reads its dead letters (at most
  // max_bytes of letters; see proto::DeadletterListEntry) and calls done(entry) on the sink
  // thread; from the destructor with entry.error set when the thread never took it.
  using ListDone = std::function<void(proto::DeadletterListEntry entry)>;
  void ListDeadletters(ListDone done, size_t max_bytes = 16u << 20);

  const std::string& name() const { return config_.name; }
  const SinkConfig& config() const { return config_; }
  uint64_t cursor() const { return cursor_.load(); }
  State state() const { return state_.load(); }
  uint64_t failures_total() const { return failures_total_.load(); }
  uint64_t deadlettered() const { return deadlettered_.load(); }
  std::string last_error_text() const;
  // Empty unless every attempt has failed for at least config().degraded_after (no delivery in
  // between) and the sink is not paused (status reports a pause on its own); then the status
  // problem: "sink up has failed every attempt for 75 s (9 in a row, never delivered): <last
  // error>; next retry <time>". Any thread.
  std::string FailingProblem() const FERRY_EXCLUDES(info_mu_);
  // One object of status's "sinks" array (docs/sinks.md "Status").
  void WriteStatus(proto::JsonWriter& w, uint64_t journal_written) const;

 private:
  struct Outcome;
  // One message of the mailbox. A job is called with true on the sink thread, or false when
  // the sink is gone first (it must then answer without touching the disk).
  struct Mail {
    enum class Kind { kFlush, kReload, kReplay, kJob, kStop };
    Kind kind = Kind::kJob;
    uint64_t upto = 0;                         // kFlush
    std::shared_ptr<const Redactor> redactor;  // kReload (may be null)
    std::function<void(bool run)> job;         // kJob
  };

  // --- sink thread (sink.cc) ---
  void Run();
  void Post(Mail mail) FERRY_EXCLUDES(mu_);
  // Takes every queued message and applies it to the thread's state (jobs run now).
  void Drain() FERRY_EXCLUDES(mu_);
  // Waits until `deadline`, a message, or (watch_journal) an OnWritten; then drains.
  void Wait(std::chrono::steady_clock::time_point deadline, bool watch_journal) FERRY_EXCLUDES(mu_);
  // Gathers the next batch from the journal. Returns false when stopping.
  // `limit_seq` > 0: stop after that seq (the in-flight batch of the last run).
  bool Gather(SinkBatch* batch, uint64_t limit_seq);
  bool AddRecord(SinkBatch* batch, JournalRecord&& rec);
  // Waits in Gather for more records, a flush, a reload, a replay or stop.
  void WaitForJournal(const SinkBatch& batch, bool at_end,
                      std::chrono::steady_clock::time_point deadline);
  void SaveCursorOrLog(uint64_t cursor, uint64_t inflight_first, uint64_t inflight_last,
                       bool durable);
  void Advance(uint64_t end_cursor);
  // Applies a pending reload: the new redactor (true when there is one) and the token.
  bool ApplyReload();
  void LoadToken();

  // --- delivery (sink_deliver.cc) ---
  // Sends `batch` until every event in it is delivered or dead-lettered. False: stopping.
  bool Deliver(SinkBatch& batch, const std::string& key_suffix);
  Outcome Send(const SinkBatch& batch, size_t lo, size_t hi, const std::string& key_suffix);
  // signal = "traces": the spans `batch` finishes (a replay: with no calls pending before it,
  // and every call left pending finished as unfinished), and the calls pending after it.
  void PlanBatch(const SinkBatch& batch, bool replay, std::vector<ToolSpan>* spans,
                 std::vector<PendingCall>* pending_after) const;
  // Appends one dead letter (fdatasync). False, with the error in status, when it could not
  // be written: the caller must not move past the event.
  bool DeadLetter(const SinkBatch& batch, size_t i, long status, const std::string& response);
  bool Replay();
  void Purge(const PurgeDone& done);
  // Waits `wait` (through deps_.wait_hook) unless a flush, reload or stop cuts it.
  bool Pause(SinkWait::Kind kind, std::chrono::milliseconds wait, long status, State state);
  // Sleeps until `deadline`, a flush, a reload or stop; jobs run meanwhile. False: stopping.
  bool SleepUntil(std::chrono::steady_clock::time_point deadline);
  // The token, and whatever the built-in detectors and the [redact] rules find, rewritten out
  // of a response body before it goes to status, flush output or a log line.
  std::string RedactResponse(std::string body) const;

  // --- status (sink_status.cc); any thread reads, the sink thread writes ---
  void SetError(long status, std::string message, std::string body) FERRY_EXCLUDES(info_mu_);
  void SetState(State s, std::chrono::system_clock::time_point next_retry = {})
      FERRY_EXCLUDES(info_mu_);
  void MarkSuccess() FERRY_EXCLUDES(info_mu_);
  void MarkFailing();  // the first failure after a delivery (or since start)

  const SinkConfig config_;
  const SinkDeps deps_;
  const std::string endpoint_;
  const std::string health_name_;  // "sink <name>", for journal_health (built once)
  const std::string cursor_path_;
  sink::DeadLetterFiles deadletters_;
  BatchMeta meta_;
  ConsumerRegistry::Slot* slot_ = nullptr;  // set by Open; the registry outlives the sink

  // The mailbox. mu_ is a leaf lock.
  Mutex mu_;
  CondVar cv_;
  std::deque<Mail> mail_ FERRY_GUARDED_BY(mu_);
  bool waiting_for_journal_ FERRY_GUARDED_BY(mu_) = false;  // OnWritten should notify
  // Read by the transport inside a request (curl's progress callback), set by Stop().
  std::atomic<bool> abort_{false};

  // Sink thread only (written by Drain from the mail).
  bool stopping_ = false;
  uint64_t flush_upto_ = 0;     // the highest seq a flush asked for
  bool flush_pending_ = false;  // a flush arrived that has not cut a wait yet
  bool reload_pending_ = false;
  std::shared_ptr<const Redactor> redactor_next_;
  bool replay_requested_ = false;
  std::unique_ptr<JournalReader> reader_;
  std::unique_ptr<JournalRecord> carry_;  // read but not yet in a batch (did not fit)
  std::unique_ptr<Transport> transport_;
  std::shared_ptr<const Redactor> redactor_;
  std::string token_;
  std::string token_error_;
  uint64_t inflight_first_ = 0, inflight_last_ = 0;  // from the cursor file at Open
  uint32_t attempt_ = 0;                             // consecutive retryable failures
  // signal = "traces": the tool calls whose start event is at or before the cursor and whose
  // end has not come (saved in the cursor file with the cursor), and how they are planned.
  const bool traces_;
  SpanOptions span_options_;
  std::vector<PendingCall> pending_calls_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::thread thread_;

  // Status: atomics written by the sink thread (Open: io thread, before Start), and
  // info_mu_ (a leaf lock) for the strings.
  std::atomic<uint64_t> cursor_{0};
  // The journal's written and shippable seqs as the sink last saw them when it went to wait
  // for more (status "journal_seen"): what it looked at and why it did not send.
  std::atomic<uint64_t> seen_written_{0};
  std::atomic<uint64_t> seen_shippable_{0};
  std::atomic<State> state_{State::kIdle};
  std::atomic<uint64_t> failures_total_{0};
  std::atomic<uint64_t> consecutive_failures_{0};
  // Wall clock (ns) of the first failure since the last delivery; 0 while delivering works.
  std::atomic<int64_t> failing_since_ns_{0};
  std::atomic<uint64_t> delivered_events_{0};
  std::atomic<uint64_t> delivered_batches_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> bytes_sent_{0};
  std::atomic<uint64_t> deadlettered_{0};  // lines in deadletter/<name>.ndjson
  std::atomic<uint64_t> replay_pending_{0};
  std::atomic<uint64_t> redacted_{0};
  std::atomic<uint64_t> skipped_{0};
  std::atomic<uint64_t> pending_calls_count_{0};  // pending_calls_.size()
  std::atomic<int64_t> pending_received_ns_{0};   // oldest undelivered event, 0 when none
  mutable Mutex info_mu_;
  int64_t last_success_ns_ FERRY_GUARDED_BY(info_mu_) = 0;  // wall clock
  struct LastError {
    int64_t time_ns = 0;
    long status = 0;
    std::string message;
    std::string body;
  };
  LastError last_error_ FERRY_GUARDED_BY(info_mu_);
  int64_t next_retry_ns_ FERRY_GUARDED_BY(info_mu_) = 0;
};

}  // namespace ferry
