// Sink delivery: sending a batch through the Transport and applying the delivery policy
// (sink/delivery_policy.h) to each answer; dead letters and their replay. Sink thread only.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include "daemon/base/file_util.h"  // NowNs
#include "daemon/journal/reader.h"
#include "daemon/sink/batch.h"
#include "daemon/sink/delivery_policy.h"
#include "daemon/sink/sink.h"

namespace ferry {

using Clock = std::chrono::steady_clock;
using sink::Verdict;
using std::chrono::milliseconds;

namespace {

// The built-in detectors alone, for response bodies (whatever a sink's redact setting).
const Redactor* BuiltinRedactor() {
  static const std::shared_ptr<const Redactor> r = [] {
    std::shared_ptr<const Redactor> out;
    RedactOptions o;
    o.builtin = true;
    if (!Redactor::Compile(o, &out).ok()) out.reset();
    return out;
  }();
  return r.get();
}

}  // namespace

struct Sink::Outcome {
  Verdict verdict = Verdict::kRetry;
  HttpResponse response;
  bool sent = true;  // false: the part had nothing to send (traces: no span finished in it)
};

void Sink::PlanBatch(const SinkBatch& batch, bool replay, std::vector<ToolSpan>* spans,
                     std::vector<PendingCall>* pending_after) const {
  if (!replay) *pending_after = pending_calls_;
  PlanSpans(span_options_, batch.events(), replay, pending_after, spans);
}

Sink::Outcome Sink::Send(const SinkBatch& batch, size_t lo, size_t hi,
                         const std::string& key_suffix) {
  const std::span<const SinkEvent> part(batch.events().data() + lo, hi - lo);
  const uint64_t first = part.front().seq, last = part.back().seq;
  HttpRequest req;
  req.url = endpoint_;
  std::string body;
  if (traces_) {
    // The spans the events lo..hi finish. Planned over the whole batch each time (a split
    // part needs the calls its earlier events started), from the calls pending before it; a
    // replay (the only caller with a key suffix) plans its dead letters on their own.
    std::vector<ToolSpan> spans, part_spans;
    std::vector<PendingCall> pending;
    PlanBatch(batch, !key_suffix.empty(), &spans, &pending);
    for (ToolSpan& s : spans) {
      if (s.event >= lo && s.event < hi) part_spans.push_back(std::move(s));
    }
    if (part_spans.empty()) {
      Outcome none;
      none.verdict = Verdict::kDone;
      none.sent = false;
      return none;
    }
    body = EncodeOtlpTraces(meta_, part_spans);
  } else if (config_.type == "otlp-http") {
    body = EncodeOtlpJson(meta_, part);
  } else {
    body = EncodeHttpJson(meta_, part);
  }
  if (config_.gzip && Gzip(body, &req.body, config_.gzip_level)) {
    req.content_encoding = "gzip";
  } else {
    req.body = std::move(body);
  }
  req.connect_timeout = config_.connect_timeout;
  req.timeout = config_.timeout;
  req.tls_verify = config_.tls_verify;
  req.ca_file = config_.ca_file;
  req.headers.reserve(6 + config_.headers.size());
  req.headers.emplace_back("Idempotency-Key",
                           IdempotencyKey(config_.name, meta_.host_id, first, last, key_suffix));
  req.headers.emplace_back("X-Ferry-Sink", config_.name);
  req.headers.emplace_back("X-Ferry-First-Seq", std::to_string(first));
  req.headers.emplace_back("X-Ferry-Last-Seq", std::to_string(last));
  req.headers.emplace_back("X-Ferry-Count", std::to_string(part.size()));
  if (!token_.empty())
    req.headers.emplace_back("Authorization", AuthorizationValue(config_, token_));
  for (const auto& h : config_.headers) req.headers.push_back(h);

  SetState(State::kSending);
  requests_.fetch_add(1);
  bytes_sent_.fetch_add(req.body.size());
  Outcome out;
  out.response = transport_->Post(req);
  out.verdict = sink::Classify(out.response);
  return out;
}

bool Sink::SleepUntil(Clock::time_point deadline) {
  for (;;) {
    Drain();
    if (stopping_ || flush_pending_ || reload_pending_) break;
    if (Clock::now() >= deadline) break;
    Wait(deadline, false);
  }
  flush_pending_ = false;  // a flush that cut this wait is used up
  return !stopping_;
}

bool Sink::Pause(SinkWait::Kind kind, milliseconds wait, long status, State state) {
  if (deps_.wait_hook) wait = deps_.wait_hook(SinkWait{kind, wait, status});
  SetState(state, std::chrono::system_clock::now() + wait);
  return SleepUntil(Clock::now() + wait);
}

// Long for a reason: the delivery policy's five verdicts applied in one loop, each branch
// short; split apart they would pass the same six locals around.
bool Sink::Deliver(SinkBatch& batch, const std::string& key_suffix) {
  sink::PartQueue todo(batch.size());
  while (!todo.empty()) {
    Drain();
    if (stopping_) return false;
    if (reload_pending_ && ApplyReload()) {
      redacted_.fetch_add(batch.Reredact(config_.redact ? redactor_.get() : nullptr));
    }
    if (!token_error_.empty()) {
      SetError(0, token_error_, {});
      failures_total_.fetch_add(1);
      if (!Pause(SinkWait::Kind::kPaused, sink::kPausedRetry, 0, State::kPaused)) return false;
      LoadToken();
      continue;
    }
    const auto [lo, hi] = todo.Next();
    const Outcome o = Send(batch, lo, hi, key_suffix);
    const HttpResponse& r = o.response;
    if (o.verdict == Verdict::kDone) {
      todo.Done();
      delivered_events_.fetch_add(hi - lo);
      if (!o.sent) continue;  // traces: no span finished in these events; nothing was sent
      delivered_batches_.fetch_add(1);
      consecutive_failures_.store(0);
      failing_since_ns_.store(0);
      attempt_ = 0;
      MarkSuccess();
      continue;
    }
    Drain();
    if (stopping_ || r.aborted) return false;
    // The error first, then the counts: status reads the counts first (WriteStatus), so a
    // failure it counts always comes with its error.
    SetError(r.status, r.status ? sink::Describe(r.status) : r.transport_error,
             RedactResponse(proto::SanitizeUtf8(r.body_excerpt)));
    failures_total_.fetch_add(1);
    const uint64_t in_a_row = consecutive_failures_.fetch_add(1) + 1;
    const std::string what =
        r.status ? "HTTP " + std::to_string(r.status) : "transport error: " + r.transport_error;
    if (in_a_row == 1) MarkFailing();  // after SetError: status never sees one without the other
    if (o.verdict == Verdict::kSplit413 || o.verdict == Verdict::kBisect) {
      if (hi - lo > 1) {
        spdlog::info("sink {}: {} for seqs {}-{}; splitting in halves", config_.name, what,
                     batch.event(lo).seq, batch.event(hi - 1).seq);
        todo.Split();
        continue;
      }
      if (DeadLetter(batch, lo, r.status, r.body_excerpt)) {
        todo.Done();
        continue;
      }
      // Not recorded: the event is not dropped; try again later.
      if (!Pause(SinkWait::Kind::kDeadletterRetry, sink::kDeadletterRetry, r.status,
                 State::kBackingOff)) {
        return false;
      }
      continue;
    }
    if (o.verdict == Verdict::kPause) {
      spdlog::error("sink {}: {} from {}; paused (retrying every {} s, or at once on SIGHUP)",
                    config_.name, what, UrlForDisplay(endpoint_),
                    sink::kPausedRetry.count() / 1000);
      if (!Pause(SinkWait::Kind::kPaused, sink::kPausedRetry, r.status, State::kPaused)) {
        return false;
      }
      continue;
    }
    bool server_said = false;
    const milliseconds wait =
        sink::RetryWait(r, config_.backoff_max, &attempt_, &rng_, &server_said);
    if (in_a_row == 1 || in_a_row % 10 == 0) {
      spdlog::warn("sink {}: {} ({} failure(s) in a row); retrying in {} ms", config_.name, what,
                   in_a_row, wait.count());
    }
    const auto kind = server_said ? SinkWait::Kind::kRetryAfter : SinkWait::Kind::kBackoff;
    if (!Pause(kind, wait, r.status, State::kBackingOff)) return false;
  }
  return true;
}

bool Sink::DeadLetter(const SinkBatch& batch, size_t i, long status, const std::string& response) {
  const SinkEvent& ev = batch.event(i);
  auto id_member = ev.envelope->FindMember("id");
  std::string id;
  const bool has_id = id_member != ev.envelope->MemberEnd() && id_member->value.IsString();
  if (has_id) id.assign(id_member->value.GetString(), id_member->value.GetStringLength());
  const std::string line = DeadLetterLine(
      IsoTimeUtc(NowNs()), config_.name, ev.seq, has_id ? &id : nullptr, ev.received_ns, status,
      RedactResponse(proto::SanitizeUtf8(response, 1024)), batch.raw(i));
  const Status appended = deadletters_.Append(line);
  if (!appended.ok()) {
    SetError(status,
             "cannot write the dead letter for seq " + std::to_string(ev.seq) + ": " +
                 appended.message() + "; retrying",
             {});
    spdlog::error("sink {}: cannot write the dead letter for seq {}: {}; not moving on",
                  config_.name, ev.seq, appended.ToString());
    return false;
  }
  deadlettered_.fetch_add(1);
  spdlog::warn("sink {}: seq {} dead-lettered (HTTP {}) to {}", config_.name, ev.seq, status,
               deadletters_.path());
  return true;
}

namespace {

// A dead-letter line back into the journal record it was made from. False: not a dead letter.
bool LetterToRecord(std::string_view line, JournalRecord* rec) {
  rapidjson::Document doc;
  doc.Parse(line.data(), line.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("event") ||
      !doc["event"].IsObject()) {
    return false;
  }
  rapidjson::Value& ev = doc["event"];
  rec->seq = ev.HasMember("seq") && ev["seq"].IsUint64() ? ev["seq"].GetUint64() : 0;
  rec->received_ns =
      ev.HasMember("received") && ev["received"].IsInt64() ? ev["received"].GetInt64() : 0;
  ev.RemoveMember("seq");
  ev.RemoveMember("received");
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  ev.Accept(w);
  rec->body.assign(sb.GetString(), sb.GetSize());
  return true;
}

}  // namespace

bool Sink::Replay() {
  replay_requested_ = false;
  if (!deadletters_.ReplayInProgress()) {
    std::string error;
    if (!deadletters_.BeginReplay(&error)) {
      if (!error.empty()) spdlog::error("sink {}: {}", config_.name, error);
      return true;  // nothing to replay
    }
    replay_pending_.store(deadlettered_.exchange(0));
  }
  std::string text;
  if (!deadletters_.ReadReplay(&text)) return true;
  spdlog::info("sink {}: replaying {} dead letter(s)", config_.name, replay_pending_.load());
  SinkBatch batch;
  std::string unreadable;  // lines that are not dead letters, kept
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // a torn last line: dropped with the file
    const std::string_view line(text.data() + pos, nl + 1 - pos);
    pos = nl + 1;
    JournalRecord rec;
    if (!LetterToRecord(line.substr(0, line.size() - 1), &rec)) {
      // Not ours to drop: it goes back to the dead-letter file as it is, for a person to see.
      unreadable.append(line);
      skipped_.fetch_add(1);
      continue;
    }
    if (batch.size() >= config_.max_events ||
        (!batch.empty() && batch.bytes() + rec.body.size() + 48 > config_.max_bytes)) {
      if (!Deliver(batch, "replay")) return false;
      batch.Clear();
    }
    AddRecord(&batch, std::move(rec));
  }
  if (!batch.empty() && !Deliver(batch, "replay")) return false;
  if (pos < text.size()) unreadable.append(text, pos, std::string::npos).push_back('\n');
  if (!unreadable.empty()) {
    const Status kept = deadletters_.Append(unreadable);
    if (!kept.ok()) {
      spdlog::error("sink {}: cannot put unreadable lines back: {}; keeping {}", config_.name,
                    kept.ToString(), deadletters_.replay_path());
      return true;
    }
    deadlettered_.fetch_add(
        static_cast<uint64_t>(std::count(unreadable.begin(), unreadable.end(), '\n')));
  }
  deadletters_.EndReplay();
  replay_pending_.store(0);
  spdlog::info("sink {}: replay done", config_.name);
  return true;
}

void Sink::Purge(const PurgeDone& done) {
  uint64_t n = 0;
  const Status s = deadletters_.Purge(&n);
  if (!s.ok()) {
    spdlog::warn("sink {}: {}", config_.name, s.message());
    done(0, s.message());
    return;
  }
  deadlettered_.store(0);
  if (n > 0) spdlog::info("sink {}: purged {} dead letter(s)", config_.name, n);
  done(n, {});
}

std::string Sink::RedactResponse(std::string body) const {
  RedactLiteral(&body, token_);
  if (config_.auth == "basic" && !token_.empty()) RedactLiteral(&body, Base64(token_));
  if (const Redactor* builtin = BuiltinRedactor()) builtin->RedactString(&body);
  if (redactor_) redactor_->RedactString(&body);
  return body;
}

}  // namespace ferry
