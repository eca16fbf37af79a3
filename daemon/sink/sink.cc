// Sink: the thread, its mailbox and the batcher loop (reading the journal into a SinkBatch).
// Delivery: sink_deliver.cc; status: sink_status.cc.
#include "daemon/sink/sink.h"

#include <algorithm>

#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include "daemon/base/file_util.h"
#include "daemon/base/thread_role.h"
#include "daemon/journal/reader.h"
#include "daemon/sink/batch.h"
#include "daemon/sink/cursor_file.h"
#include "daemon/sink/http_client.h"
#include "proto/paths.h"

namespace ferry {

using Clock = std::chrono::steady_clock;

Sink::Sink(SinkConfig config, SinkDeps deps, std::shared_ptr<const Redactor> redactor)
    : config_(std::move(config)),
      deps_(std::move(deps)),
      endpoint_(config_.EndpointUrl()),
      health_name_("sink " + config_.name),
      cursor_path_(proto::SinkCursorPath(deps_.state_dir, config_.name)),
      deadletters_(deps_.state_dir, config_.name),
      meta_(deps_.meta),
      redactor_(std::move(redactor)),
      traces_(config_.type == "otlp-http" && config_.signal == "traces") {
  meta_.sink = config_.name;
  span_options_.span_timeout_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(config_.span_timeout).count();
}

Sink::~Sink() {
  Stop();
  Join();
  // Jobs the thread never ran (it was not started, or stopped first): answered without disk.
  std::deque<Mail> left;
  {
    MutexLock lock(mu_);
    left.swap(mail_);
  }
  for (Mail& m : left) {
    if (m.kind == Mail::Kind::kJob) m.job(false);
  }
  if (slot_) deps_.consumers->Unregister(slot_);
}

Status Sink::Open(uint64_t oldest_seq, uint64_t written_seq) {
  for (const char* sub : {"/cursors", "/deadletter"}) {
    Status made = MakeDirs(deps_.state_dir + sub);
    if (!made.ok()) return made;
  }
  sink::CursorState st;
  bool found = false, reset = false;
  Status loaded = sink::LoadCursor(cursor_path_, oldest_seq, written_seq, &st, &found, &reset);
  if (!loaded.ok()) return loaded;
  if (!found) {
    spdlog::info("sink {}: no cursor yet; sending from seq {}", config_.name, st.cursor + 1);
  } else if (reset) {
    spdlog::warn(
        "sink {}: its cursor is past the journal's last seq {}: the journal was reset; "
        "sending from seq {}",
        config_.name, written_seq, st.cursor + 1);
  } else {
    spdlog::info("sink {}: resuming after seq {}{}", config_.name, st.cursor,
                 st.inflight_last ? " (resending seqs " + std::to_string(st.inflight_first) + "-" +
                                        std::to_string(st.inflight_last) + " first)"
                                  : "");
  }
  if (traces_ && !st.pending_spans.empty()) {
    rapidjson::Document d;
    d.Parse(st.pending_spans.data(), st.pending_spans.size());
    if (d.HasParseError() || !PendingCallsFromJson(d, &pending_calls_)) {
      return Status::Corruption(cursor_path_ +
                                ": pending_spans is not a list of pending tool calls; move the "
                                "file aside to resend from the journal's oldest event");
    }
    spdlog::info("sink {}: {} tool call(s) waiting for their end event", config_.name,
                 pending_calls_.size());
    pending_calls_count_.store(pending_calls_.size());
  }
  inflight_first_ = st.inflight_first;
  inflight_last_ = st.inflight_last;
  cursor_.store(st.cursor);
  slot_ = deps_.consumers->Register("sink:" + config_.name, st.cursor);
  return Status::Ok();
}

void Sink::Start() {
  thread_ = std::thread([this] {
    SetThreadRole("sink:" + config_.name, ThreadClass::kBackground);
    Run();
  });
}

void Sink::Stop() {
  abort_.store(true);
  Mail m;
  m.kind = Mail::Kind::kStop;
  Post(std::move(m));
}

void Sink::Join() {
  if (thread_.joinable()) thread_.join();
}

void Sink::OnWritten() {
  MutexLock lock(mu_);
  if (waiting_for_journal_) cv_.NotifyAll();
}

void Sink::Flush(uint64_t upto) {
  Mail m;
  m.kind = Mail::Kind::kFlush;
  m.upto = upto;
  Post(std::move(m));
}

void Sink::Reload(std::shared_ptr<const Redactor> redactor) {
  Mail m;
  m.kind = Mail::Kind::kReload;
  m.redactor = std::move(redactor);
  Post(std::move(m));
}

uint64_t Sink::RequestReplay() {
  const uint64_t n = deadlettered_.load() + replay_pending_.load();
  Mail m;
  m.kind = Mail::Kind::kReplay;
  Post(std::move(m));
  return n;
}

void Sink::PurgeDeadletters(PurgeDone done) {
  Mail m;
  m.job = [this, done = std::move(done)](bool run) {
    if (run) {
      Purge(done);
    } else {
      done(0, "the sink stopped before it could purge; nothing was deleted");
    }
  };
  Post(std::move(m));
}

void Sink::ListDeadletters(ListDone done, size_t max_bytes) {
  Mail m;
  m.job = [this, done = std::move(done), max_bytes](bool run) {
    proto::DeadletterListEntry entry;
    entry.name = config_.name;
    if (run) {
      deadletters_.List(max_bytes, &entry);
    } else {
      entry.error = "the sink stopped before it could read its dead letters";
    }
    done(std::move(entry));
  };
  Post(std::move(m));
}

void Sink::Post(Mail mail) {
  MutexLock lock(mu_);
  mail_.push_back(std::move(mail));
  cv_.NotifyAll();
}

void Sink::Drain() {
  std::deque<Mail> taken;
  {
    MutexLock lock(mu_);
    if (mail_.empty()) return;
    taken.swap(mail_);
  }
  for (Mail& m : taken) {
    switch (m.kind) {
      case Mail::Kind::kFlush:
        flush_upto_ = std::max(flush_upto_, m.upto);
        flush_pending_ = true;
        break;
      case Mail::Kind::kReload:
        if (m.redactor) redactor_next_ = std::move(m.redactor);
        reload_pending_ = true;
        break;
      case Mail::Kind::kReplay:
        replay_requested_ = true;
        break;
      case Mail::Kind::kStop:
        stopping_ = true;
        break;
      case Mail::Kind::kJob:
        m.job(true);
        break;
    }
  }
}

void Sink::Wait(Clock::time_point deadline, bool watch_journal) {
  {
    MutexLock lock(mu_);
    if (mail_.empty()) {
      waiting_for_journal_ = watch_journal;
      cv_.WaitUntil(lock, deadline);
      waiting_for_journal_ = false;
    }
  }
  Drain();
}

bool Sink::ApplyReload() {
  reload_pending_ = false;
  const bool changed = redactor_next_ != nullptr;
  if (changed) redactor_ = std::move(redactor_next_);
  LoadToken();
  attempt_ = 0;
  return changed;
}

void Sink::LoadToken() { token_error_ = ReadSinkToken(config_, &token_); }

void Sink::SaveCursorOrLog(uint64_t cursor, uint64_t inflight_first, uint64_t inflight_last,
                           bool durable) {
  const Status s = sink::SaveCursor(
      cursor_path_,
      sink::CursorState{
          cursor, inflight_first, inflight_last,
          pending_calls_.empty() ? std::string() : PendingCallsToJson(pending_calls_)},
      durable);
  if (s.ok()) return;
  if (durable) {
    spdlog::error("sink {}: cannot save the cursor: {}", config_.name, s.ToString());
  } else {
    spdlog::warn("sink {}: {}", config_.name, s.ToString());
  }
}

void Sink::Advance(uint64_t end_cursor) {
  SaveCursorOrLog(end_cursor, 0, 0, true);
  cursor_.store(end_cursor);
  slot_->cursor.store(end_cursor);
}

void Sink::Run() {
  transport_ = deps_.make_transport
                   ? deps_.make_transport(&abort_)
                   : std::make_unique<HttpClient>(std::string("ferry/") + meta_.version, &abort_);
  LoadToken();
  if (!token_error_.empty()) spdlog::error("sink {}: {}", config_.name, token_error_);
  SinkBatch batch;
  // Counted here, not in Open() on the io thread: the files can be large.
  deadlettered_.store(deadletters_.CountLetters());
  replay_pending_.store(deadletters_.CountReplay());
  if (deadletters_.ReplayInProgress()) replay_requested_ = true;
  uint64_t inflight_last = inflight_last_;
  for (;;) {
    Drain();
    if (stopping_) break;
    if (replay_requested_ && !Replay()) break;
    if (!Gather(&batch, inflight_last)) break;
    inflight_last = 0;
    if (batch.empty()) {
      if (batch.end_cursor > cursor_.load()) Advance(batch.end_cursor);
      continue;
    }
    // Record the batch's range before sending it: after a crash it is formed again from
    // exactly these seqs, so the resent request carries the same Idempotency-Key.
    SaveCursorOrLog(cursor_.load(), cursor_.load() + 1, batch.end_cursor, false);
    if (!Deliver(batch, {})) break;
    if (traces_) {  // the calls still pending are saved with the cursor that passes them
      std::vector<ToolSpan> spans;
      std::vector<PendingCall> pending;
      PlanBatch(batch, false, &spans, &pending);
      pending_calls_ = std::move(pending);
      pending_calls_count_.store(pending_calls_.size());
    }
    Advance(batch.end_cursor);
    pending_received_ns_.store(0);
  }
  SetState(State::kStopped);
  transport_.reset();
  // What was asked before the stop is still done (the destructor answers the rest).
  stopping_ = true;
  Drain();
}

bool Sink::AddRecord(SinkBatch* batch, JournalRecord&& rec) {
  const uint64_t seq = rec.seq;
  size_t redactions = 0;
  if (!batch->Add(std::move(rec), config_.redact ? redactor_.get() : nullptr, &redactions)) {
    skipped_.fetch_add(1);
    spdlog::warn("sink {}: journal record seq {} is not a JSON object; skipped", config_.name, seq);
    return false;
  }
  redacted_.fetch_add(redactions);
  return true;
}

// Long for a reason: one loop over the journal with its four ways out (full, flushed,
// timed out, stopping), kept together so the order of the checks reads in one place.
bool Sink::Gather(SinkBatch* batch, uint64_t limit_seq) {
  batch->Clear();
  if (!reader_) reader_ = std::make_unique<JournalReader>(deps_.journal_dir, cursor_.load() + 1);
  // The in-flight batch of the last run is formed again from exactly its seqs, whatever the
  // limits are now, so it keeps its Idempotency-Key (a 413 still splits it if need be).
  const bool exact = limit_seq > 0;
  const auto max_events = exact ? SIZE_MAX : static_cast<size_t>(config_.max_events);
  const uint64_t max_bytes = exact ? UINT64_MAX : config_.max_bytes;
  const auto timeout = std::chrono::duration_cast<Clock::duration>(config_.batch_timeout);
  Clock::time_point deadline{};  // first event read + batch_timeout
  for (;;) {
    Drain();
    if (stopping_) return false;
    if (reload_pending_ && ApplyReload()) {  // new rules
      redacted_.fetch_add(batch->Reredact(config_.redact ? redactor_.get() : nullptr));
    }
    if (batch->size() >= max_events) break;
    if (exact && reader_->next_seq() > limit_seq && !carry_) break;
    JournalRecord rec;
    bool have = false, at_end = false;
    if (carry_) {
      rec = std::move(*carry_);
      carry_.reset();
      have = true;
    } else {
      const uint64_t shippable = deps_.progress->shippable();
      const uint64_t limit = exact ? std::min(shippable, limit_seq) : shippable;
      const auto r = reader_->Next(limit, &rec);
      const auto read_backoff = journal_health::Observe(health_name_, r, *reader_);
      if (r == JournalReader::Result::kCorruption) continue;  // logged; in status problems
      if (r == JournalReader::Result::kIOError) {
        // Nothing skipped: the cursor stays before the unread record. Back off, retry.
        SetError(0, "journal read failed: " + reader_->error(), {});
        if (batch->empty()) {
          Wait(Clock::now() + read_backoff, false);
          continue;
        }
      }
      have = r == JournalReader::Result::kRecord;
      at_end = !have;
    }
    if (have) {
      if (!batch->empty() && batch->bytes() + rec.body.size() + 48 > max_bytes) {
        carry_ = std::make_unique<JournalRecord>(std::move(rec));
        break;
      }
      const int64_t received = rec.received_ns;
      if (AddRecord(batch, std::move(rec)) && batch->size() == 1) {
        deadline = Clock::now() + timeout;
        pending_received_ns_.store(received);
      }
      continue;
    }
    if (exact && reader_->next_seq() > limit_seq) break;
    // A flush cuts the wait for the events that were in the journal when it was asked.
    if (!batch->empty() && (flush_upto_ >= batch->event(0).seq || Clock::now() >= deadline)) {
      break;
    }
    if (batch->empty()) {  // nothing more to read for now
      if (!token_error_.empty()) {
        SetError(0, token_error_, {});
        SetState(State::kPaused);
      } else {
        SetState(State::kIdle);  // (a paused Deliver never returns to here unresolved)
      }
      pending_received_ns_.store(0);
      // The cursor may trail the reader when only skipped records were read.
      const uint64_t end = reader_->next_seq() - 1;
      if (end > cursor_.load() && !exact) {
        batch->end_cursor = end;
        return true;  // an empty batch that moves the cursor
      }
      if (replay_requested_) break;
    }
    WaitForJournal(*batch, at_end, deadline);
  }
  batch->end_cursor = reader_->next_seq() - 1 - (carry_ ? 1 : 0);
  return true;
}

void Sink::WaitForJournal(const SinkBatch& batch, bool at_end, Clock::time_point deadline) {
  // Flushes asked until now are covered by flush_upto_; a later one wakes this wait (and one
  // that comes during the request that follows cuts its backoff: SleepUntil).
  flush_pending_ = false;
  const uint64_t seen = reader_->next_seq() - 1;
  const uint64_t shippable = deps_.progress->shippable();
  seen_written_.store(deps_.progress->written());
  seen_shippable_.store(shippable);
  if (reload_pending_ || (batch.empty() && replay_requested_)) return;
  const bool more = shippable > seen;
  Clock::time_point until;
  if (more && at_end) {
    // The reader cannot read what is there (a damaged or missing segment, no fds): try
    // again shortly rather than spin.
    until = Clock::now() + std::chrono::milliseconds(100);
  } else if (more) {
    return;
  } else {
    until = batch.empty() ? Clock::now() + std::chrono::seconds(1) : deadline;
  }
  // OnWritten takes mu_ to notify, so a publish between the shippable() read above and the
  // wait below is not lost only if it is re-read under the lock.
  {
    MutexLock lock(mu_);
    if (!mail_.empty() || deps_.progress->shippable() > seen) return;
    waiting_for_journal_ = true;
    cv_.WaitUntil(lock, until);
    waiting_for_journal_ = false;
  }
}

}  // namespace ferry
