// Sink status: what the sink thread publishes and any thread reads (docs/sinks.md "Status").
#include <spdlog/spdlog.h>

#include "daemon/base/file_util.h"  // NowNs
#include "daemon/sink/sink.h"

namespace ferry {
namespace {

void WriteStr(proto::JsonWriter& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void WriteCounter(proto::JsonWriter& w, const char* key, const std::atomic<uint64_t>& v) {
  w.Key(key);
  w.Uint64(v.load());
}

}  // namespace

const char* Sink::StateName(State s) {
  switch (s) {
    case State::kIdle:
      return "idle";
    case State::kSending:
      return "sending";
    case State::kBackingOff:
      return "backing_off";
    case State::kPaused:
      return "paused";
    case State::kStopped:
      return "stopped";
  }
  return "unknown";
}

std::string Sink::last_error_text() const {
  MutexLock lock(info_mu_);
  if (last_error_.message.empty()) return {};
  std::string text =
      last_error_.status ? "HTTP " + std::to_string(last_error_.status) + ": " : std::string();
  text += last_error_.message;
  if (!last_error_.body.empty()) text += ": " + last_error_.body.substr(0, 200);
  return text;
}

void Sink::SetError(long status, std::string message, std::string body) {
  MutexLock lock(info_mu_);
  last_error_.time_ns = NowNs();
  last_error_.status = status;
  last_error_.message = std::move(message);
  last_error_.body = std::move(body);
}

void Sink::MarkSuccess() {
  MutexLock lock(info_mu_);
  last_success_ns_ = NowNs();
}

void Sink::MarkFailing() { failing_since_ns_.store(NowNs()); }

std::string Sink::FailingProblem() const {
  const int64_t since = failing_since_ns_.load();
  if (since == 0 || state_.load() == State::kPaused) return {};
  const int64_t failing_ns = NowNs() - since;
  if (failing_ns < std::chrono::nanoseconds(config_.degraded_after).count()) return {};
  std::string text = "sink " + config_.name + " has failed every attempt for " +
                     std::to_string(failing_ns / 1000000000) + " s (" +
                     std::to_string(consecutive_failures_.load()) + " in a row, ";
  MutexLock lock(info_mu_);
  text += last_success_ns_ ? "last success " + IsoTimeUtc(last_success_ns_) : "never delivered";
  text += ")";
  if (!last_error_.message.empty()) {
    text += ": ";
    if (last_error_.status) text += "HTTP " + std::to_string(last_error_.status) + ": ";
    text += last_error_.message;
  }
  if (next_retry_ns_) text += "; next retry " + IsoTimeUtc(next_retry_ns_);
  return text;
}

void Sink::SetState(State s, std::chrono::system_clock::time_point next_retry) {
  {
    MutexLock lock(info_mu_);
    next_retry_ns_ =
        next_retry.time_since_epoch().count() == 0
            ? 0
            : std::chrono::duration_cast<std::chrono::nanoseconds>(next_retry.time_since_epoch())
                  .count();
  }
  state_.store(s);
}

// Long for a reason: one key after the other, in the order docs/sinks.md lists them.
void Sink::WriteStatus(proto::JsonWriter& w, uint64_t journal_written) const {
  const uint64_t cursor = cursor_.load();
  // Read before last_error: the sink thread records the error before it counts the failure,
  // so a status that counts a failure also shows its error.
  const uint64_t in_a_row = consecutive_failures_.load();
  const uint64_t failures_total = failures_total_.load();
  const uint64_t lag = journal_written > cursor ? journal_written - cursor : 0;
  w.StartObject();
  w.Key("name");
  WriteStr(w, config_.name);
  w.Key("type");
  WriteStr(w, config_.type);
  w.Key("url");
  WriteStr(w, UrlForDisplay(endpoint_));
  w.Key("tls_verify");
  w.Bool(config_.tls_verify);
  w.Key("cursor");
  w.Uint64(cursor);
  w.Key("lag_events");
  w.Uint64(lag);
  w.Key("lag_s");
  const int64_t pending = pending_received_ns_.load();
  w.Double(lag > 0 && pending > 0 ? static_cast<double>(NowNs() - pending) / 1e9 : 0.0);
  w.Key("state");
  const State st = state_.load();
  w.String(StateName(st));
  w.Key("journal_seen");
  w.StartObject();
  WriteCounter(w, "written", seen_written_);
  WriteCounter(w, "shippable", seen_shippable_);
  w.EndObject();
  {
    MutexLock lock(info_mu_);
    w.Key("last_success");
    if (last_success_ns_) {
      WriteStr(w, IsoTimeUtc(last_success_ns_));
    } else {
      w.Null();
    }
    w.Key("last_error");
    if (last_error_.time_ns) {
      w.StartObject();
      w.Key("time");
      WriteStr(w, IsoTimeUtc(last_error_.time_ns));
      w.Key("status");
      w.Int64(last_error_.status);
      w.Key("message");
      WriteStr(w, last_error_.message);
      w.Key("body");
      WriteStr(w, last_error_.body);
      w.EndObject();
    } else {
      w.Null();
    }
    w.Key("next_retry");
    if (next_retry_ns_ && (st == State::kBackingOff || st == State::kPaused)) {
      WriteStr(w, IsoTimeUtc(next_retry_ns_));
    } else {
      w.Null();
    }
  }
  w.Key("consecutive_failures");
  w.Uint64(in_a_row);
  w.Key("failing_since");
  if (const int64_t since = failing_since_ns_.load()) {
    WriteStr(w, IsoTimeUtc(since));
  } else {
    w.Null();
  }
  w.Key("degraded_after_s");
  w.Double(static_cast<double>(config_.degraded_after.count()) / 1000.0);
  w.Key("healthy");
  w.Bool(st != State::kPaused && deadlettered_.load() == 0 && FailingProblem().empty());
  w.Key("failures_total");
  w.Uint64(failures_total);
  WriteCounter(w, "delivered_events", delivered_events_);
  WriteCounter(w, "delivered_batches", delivered_batches_);
  WriteCounter(w, "requests", requests_);
  WriteCounter(w, "bytes_sent", bytes_sent_);
  WriteCounter(w, "deadlettered", deadlettered_);
  WriteCounter(w, "replay_pending", replay_pending_);
  WriteCounter(w, "redacted", redacted_);
  WriteCounter(w, "skipped", skipped_);
  if (traces_) {  // only on a traces sink: the other sinks' objects keep their keys
    w.Key("signal");
    w.String("traces");
    WriteCounter(w, "pending_spans", pending_calls_count_);
  }
  w.EndObject();
}

}  // namespace ferry
