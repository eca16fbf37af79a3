#include "daemon/sink/sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include "daemon/base/file_seam.h"
#include "daemon/base/file_util.h"
#include "daemon/journal/reader.h"
#include "daemon/sink/http_client.h"

namespace ferry {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kBackoffBase{200};
constexpr milliseconds kPausedRetry{60000};

int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string IsoTime(int64_t ns) {
  const time_t secs = static_cast<time_t>(ns / 1000000000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>((ns / 1000000) % 1000));
  return out;
}

void WriteStr(proto::JsonWriter& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

std::string ExpandHome(const std::string& path) {
  if (path.rfind("~/", 0) == 0) {
    const char* home = std::getenv("HOME");
    if (home && *home) return std::string(home) + path.substr(1);
  }
  return path;
}

// Lines of `path` (0 when it is missing). Sink thread only: dead-letter files can be large.
uint64_t CountLines(const std::string& path) {
  const int fd = fs::Open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  uint64_t n = 0;
  std::vector<char> buf(1 << 16);
  for (;;) {
    const ssize_t got = fs::Read(fd, buf.data(), buf.size());
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    n += static_cast<uint64_t>(std::count(buf.data(), buf.data() + got, '\n'));
  }
  fs::Close(fd);
  return n;
}

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

// How a response is handled (docs/sinks.md "Responses").
enum class Verdict { kDone, kSplit413, kBisect, kRetry, kPause };

Verdict Classify(const HttpResponse& r) {
  const long s = r.status;
  if (s == 0) return Verdict::kRetry;  // transport error, timeout
  if ((s >= 200 && s < 300) || s == 409) return Verdict::kDone;
  if (s == 413) return Verdict::kSplit413;
  if (s == 401 || s == 403 || s == 404 || s == 405 || s == 407) return Verdict::kPause;
  if (s == 408 || s == 425 || s == 429) return Verdict::kRetry;
  if (s >= 400 && s < 500) return Verdict::kBisect;
  return Verdict::kRetry;  // 5xx, 1xx/3xx (redirects are not followed)
}

// What an HTTP status means for this sink, for status and logs (the status code itself is
// shown next to it).
std::string Describe(long status) {
  switch (status) {
    case 401:
    case 403:
      return "the server refused the credentials; fix token_file/token_env and reload "
             "(systemctl --user reload ferryd)";
    case 404:
    case 405:
      return "the server has no such endpoint; check the sink's url and reload";
    case 407:
      return "the proxy wants credentials (see https_proxy/http_proxy in ferryd's environment)";
    case 408:
      return "the server timed out reading the request; retrying";
    case 409:
      return "already delivered (409)";
    case 413:
      return "request too large; splitting the batch";
    case 429:
      return "throttled by the server; waiting as Retry-After says";
    default:
      break;
  }
  if (status >= 500) return "server error; retrying with backoff";
  if (status >= 400) return "the server rejected the batch; bisecting to find the event(s)";
  return "unexpected response; retrying with backoff";
}

}  // namespace

// The events of one batch: parsed (and redacted) envelopes for the encoder, the journal
// bodies for dead letters. `end_cursor` covers skipped seqs too.
struct Sink::Batch {
  rapidjson::Document doc;
  std::deque<rapidjson::Value> values;
  std::vector<SinkEvent> events;
  std::vector<std::string> raw;  // journal body of each event
  uint64_t end_cursor = 0;       // the cursor once this batch is done
  size_t bytes = 0;
  void Clear() {
    events.clear();
    values.clear();
    raw.clear();
    doc.SetObject();
    // Drop the allocator's chunks too, or a big batch keeps its memory forever.
    rapidjson::Document fresh;
    doc.Swap(fresh);
    bytes = 0;
  }
};

struct Sink::Outcome {
  Verdict verdict = Verdict::kRetry;
  HttpResponse response;
};

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

Sink::Sink(SinkConfig config, SinkDeps deps, std::shared_ptr<const Redactor> redactor)
    : config_(std::move(config)),
      deps_(std::move(deps)),
      endpoint_(config_.EndpointUrl()),
      cursor_path_(deps_.state_dir + "/cursors/" + config_.name),
      deadletter_path_(deps_.state_dir + "/deadletter/" + config_.name + ".ndjson"),
      replay_path_(deps_.state_dir + "/deadletter/" + config_.name + ".replay.ndjson"),
      meta_(deps_.meta),
      redactor_(std::move(redactor)) {
  meta_.sink = config_.name;
}

Sink::~Sink() {
  Stop();
  Join();
  // Jobs the thread never ran (it was not started): answered without the disk.
  std::vector<std::function<void(bool)>> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(mail_);
  }
  for (auto& job : left) job(false);
  if (slot_) deps_.consumers->Unregister(slot_);
}

Status Sink::Open(uint64_t oldest_seq, uint64_t written_seq) {
  for (const char* sub : {"/cursors", "/deadletter"}) {
    Status made = MakeDirs(deps_.state_dir + sub);
    if (!made.ok()) return made;
  }
  uint64_t cursor = oldest_seq > 0 ? oldest_seq - 1 : 0;
  std::string text;
  if (ReadWholeFile(cursor_path_, &text)) {
    rapidjson::Document d;
    d.Parse(text.data(), text.size());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("cursor") || !d["cursor"].IsUint64()) {
      return Status::Corruption(cursor_path_ +
                                ": not a sink cursor file (expected {\"cursor\":N,...}); "
                                "move it aside to resend from the journal's oldest event");
    }
    cursor = d["cursor"].GetUint64();
    if (d.HasMember("inflight_first") && d["inflight_first"].IsUint64() &&
        d.HasMember("inflight_last") && d["inflight_last"].IsUint64()) {
      inflight_first_ = d["inflight_first"].GetUint64();
      inflight_last_ = d["inflight_last"].GetUint64();
      if (inflight_first_ != cursor + 1 || inflight_last_ < inflight_first_) {
        inflight_first_ = inflight_last_ = 0;
      }
    }
    spdlog::info("sink {}: resuming after seq {}{}", config_.name, cursor,
                 inflight_last_ ? " (resending seqs " + std::to_string(inflight_first_) + "-" +
                                      std::to_string(inflight_last_) + " first)"
                                : "");
    if (cursor > written_seq) {
      spdlog::warn(
          "sink {}: its cursor (seq {}) is past the journal's last seq {}: the journal was "
          "reset; sending from seq {}",
          config_.name, cursor, written_seq, oldest_seq > 0 ? oldest_seq : 1);
      cursor = oldest_seq > 0 ? oldest_seq - 1 : 0;
      inflight_first_ = inflight_last_ = 0;
    }
  } else {
    spdlog::info("sink {}: no cursor yet; sending from seq {}", config_.name, cursor + 1);
  }
  cursor_.store(cursor);
  slot_ = deps_.consumers->Register("sink:" + config_.name, cursor);
  return Status::Ok();
}

void Sink::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Sink::Stop() {
  stop_.store(true);
  std::lock_guard<std::mutex> lock(mu_);
  cv_.notify_all();
}

void Sink::Join() {
  if (thread_.joinable()) thread_.join();
}

void Sink::OnWritten() {
  if (waiting_.load()) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
}

void Sink::Flush(uint64_t upto) {
  uint64_t cur = flush_upto_.load();
  while (cur < upto && !flush_upto_.compare_exchange_weak(cur, upto)) {
  }
  flush_gen_.fetch_add(1);
  std::lock_guard<std::mutex> lock(mu_);
  cv_.notify_all();
}

void Sink::Reload(std::shared_ptr<const Redactor> redactor) {
  std::lock_guard<std::mutex> lock(mu_);
  if (redactor) redactor_next_ = std::move(redactor);
  reload_gen_.fetch_add(1);
  cv_.notify_all();
}

uint64_t Sink::RequestReplay() {
  const uint64_t n = deadlettered_.load() + replay_pending_.load();
  replay_requested_.store(true);
  std::lock_guard<std::mutex> lock(mu_);
  cv_.notify_all();
  return n;
}

void Sink::PurgeDeadletters(PurgeDone done) {
  Post([this, done = std::move(done)](bool run) {
    if (run) {
      Purge(done);
    } else {
      done(0, "the sink stopped before it could purge; nothing was deleted");
    }
  });
}

void Sink::Post(std::function<void(bool)> job) {
  std::lock_guard<std::mutex> lock(mu_);
  mail_.push_back(std::move(job));
  mail_pending_.store(true);
  cv_.notify_all();
}

void Sink::RunMail() {
  if (!mail_pending_.load()) return;
  std::vector<std::function<void(bool)>> jobs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs.swap(mail_);
    mail_pending_.store(false);
  }
  for (auto& job : jobs) job(true);
}

void Sink::Purge(const PurgeDone& done) {
  const uint64_t n = CountLines(deadletter_path_);
  if (fs::Unlink(deadletter_path_.c_str()) != 0 && errno != ENOENT) {
    const std::string error = "cannot delete " + deadletter_path_ + ": " + std::strerror(errno);
    spdlog::warn("sink {}: {}", config_.name, error);
    done(0, error);
    return;
  }
  deadlettered_.store(0);
  if (n > 0) spdlog::info("sink {}: purged {} dead letter(s)", config_.name, n);
  done(n, {});
}

std::string Sink::RedactResponse(std::string body) const {
  RedactLiteral(&body, token_);
  if (const Redactor* builtin = BuiltinRedactor()) builtin->RedactString(&body);
  if (redactor_) redactor_->RedactString(&body);
  return body;
}

std::string Sink::last_error_text() const {
  std::lock_guard<std::mutex> lock(info_mu_);
  if (last_error_.message.empty()) return {};
  std::string text =
      last_error_.status ? "HTTP " + std::to_string(last_error_.status) + ": " : std::string();
  text += last_error_.message;
  if (!last_error_.body.empty()) text += ": " + last_error_.body.substr(0, 200);
  return text;
}

void Sink::SetError(long status, std::string message, std::string body) {
  std::lock_guard<std::mutex> lock(info_mu_);
  last_error_.time_ns = WallNs();
  last_error_.status = status;
  last_error_.message = std::move(message);
  last_error_.body = std::move(body);
}

void Sink::SetState(State s, std::chrono::system_clock::time_point next_retry) {
  {
    std::lock_guard<std::mutex> lock(info_mu_);
    next_retry_ns_ =
        next_retry.time_since_epoch().count() == 0
            ? 0
            : std::chrono::duration_cast<std::chrono::nanoseconds>(next_retry.time_since_epoch())
                  .count();
  }
  state_.store(s);
}

std::string ReadSinkToken(const SinkConfig& config, std::string* token) {
  std::string& tok = *token;
  std::string error;
  tok.clear();
  if (!config.token_env.empty()) {
    const char* v = std::getenv(config.token_env.c_str());
    if (!v || !*v) {
      error = "token_env " + config.token_env + " is not set in ferryd's environment";
      return error;
    }
    tok = v;
  } else if (!config.token_file.empty()) {
    const std::string path = ExpandHome(config.token_file);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      error = "token_file " + path + ": " + std::strerror(errno);
      return error;
    }
    if ((st.st_mode & 077) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      error = "token_file " + path + " is readable by group or others (mode " + mode +
              "); run: chmod 600 " + path;
      return error;
    }
    if (!ReadWholeFile(path, &tok)) {
      error = "token_file " + path + ": " + std::strerror(errno);
      return error;
    }
  } else {
    return {};
  }
  while (!tok.empty() && std::isspace(static_cast<unsigned char>(tok.back()))) {
    tok.pop_back();
  }
  while (!tok.empty() && std::isspace(static_cast<unsigned char>(tok.front()))) {
    tok.erase(0, 1);
  }
  if (tok.empty()) {
    error = config.token_env.empty() ? "token_file " + config.token_file + " is empty"
                                     : "token_env " + config.token_env + " is empty";
  } else if (tok.find_first_of("\r\n") != std::string::npos) {
    tok.clear();
    error = "the token contains a line break";
  }
  return error;
}

void Sink::LoadToken() { token_error_ = ReadSinkToken(config_, &token_); }

Status Sink::SaveCursor(uint64_t cursor, uint64_t inflight_first, uint64_t inflight_last,
                        bool durable) {
  std::string text = "{\"cursor\":" + std::to_string(cursor);
  if (inflight_last > 0) {
    text += ",\"inflight_first\":" + std::to_string(inflight_first) +
            ",\"inflight_last\":" + std::to_string(inflight_last);
  }
  text += "}\n";
  return WriteFileAtomically(cursor_path_, text, durable);
}

bool Sink::SleepUntil(Clock::time_point deadline, bool wake_on_reload) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_.load() && flush_gen_.load() == flush_seen_ &&
         !(wake_on_reload && reload_gen_.load() != reload_gen_seen_)) {
    if (mail_pending_.load()) {  // answered now, then the sleep goes on
      lock.unlock();
      RunMail();
      lock.lock();
      continue;
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) break;
  }
  flush_seen_ = flush_gen_.load();  // a flush that cut this wait is used up
  return !stop_.load();
}

bool Sink::AddRecord(Batch* batch, JournalRecord&& rec) {
  rapidjson::Value v;
  std::vector<proto::PayloadSpan> spans;
  {
    rapidjson::Document tmp(&batch->doc.GetAllocator());
    // ferry's parser, not rapidjson's number conversion (which reads 0e-77 as 8.96e102).
    proto::Error parse_error;
    if (!proto::ParseEnvelopes(rec.body, 1, &tmp, &spans, &parse_error) || !tmp.IsObject()) {
      skipped_.fetch_add(1);
      spdlog::warn("sink {}: journal record seq {} is not a JSON object; skipped", config_.name,
                   rec.seq);
      return false;
    }
    v = std::move(tmp.Move());  // the value's memory is in the batch's allocator
  }
  size_t redactions = 0;
  if (config_.redact && redactor_) {
    redactions = redactor_->RedactJson(&v, batch->doc.GetAllocator());
    redacted_.fetch_add(redactions);
  }
  batch->values.push_back(std::move(v));
  SinkEvent ev;
  // The payload goes out as the journal holds it unless redaction rewrote something in the
  // event (then the redacted document is written, numbers as doubles).
  if (redactions == 0 && spans.size() == 1 && spans[0].present() && !spans[0].too_deep) {
    ev.payload_raw = proto::CompactJson(
        std::string_view(rec.body).substr(spans[0].begin, spans[0].end - spans[0].begin));
  }
  ev.seq = rec.seq;
  ev.received_ns = rec.received_ns;
  ev.envelope = &batch->values.back();
  ev.approx_bytes = rec.body.size() + 48;
  batch->bytes += ev.approx_bytes;
  batch->events.push_back(ev);
  batch->raw.push_back(std::move(rec.body));
  return true;
}

bool Sink::Gather(Batch* batch, uint64_t limit_seq) {
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
    if (stop_.load()) return false;
    RunMail();
    if (reload_gen_.load() != reload_gen_seen_ && ApplyReload()) Reredact(batch);  // new rules
    if (batch->events.size() >= max_events) break;
    if (exact && reader_->next_seq() > limit_seq && !carry_) break;
    JournalRecord rec;
    bool have = false;
    bool at_end = false;
    if (carry_) {
      rec = std::move(*carry_);
      carry_.reset();
      have = true;
    } else {
      const uint64_t shippable = deps_.progress->shippable();
      const uint64_t limit = exact ? std::min(shippable, limit_seq) : shippable;
      const auto r = reader_->Next(limit, &rec);
      const auto read_backoff = journal_health::Observe("sink " + config_.name, r, *reader_);
      switch (r) {
        case JournalReader::Result::kRecord:
          have = true;
          break;
        case JournalReader::Result::kCorruption:
          continue;  // logged and listed in status problems by journal_health
        case JournalReader::Result::kIOError:
          // Nothing skipped: the cursor stays before the unread record. Back off, retry.
          SetError(0, "journal read failed: " + reader_->error(), {});
          if (batch->events.empty()) {
            std::unique_lock<std::mutex> lock(mu_);
            cv_.wait_for(lock, read_backoff, [this] { return stop_.load(); });
            continue;
          }
          at_end = true;
          break;
        case JournalReader::Result::kEnd:
          at_end = true;
          break;
      }
    }
    if (have) {
      if (!batch->events.empty() && batch->bytes + rec.body.size() + 48 > max_bytes) {
        carry_ = std::make_unique<JournalRecord>(std::move(rec));
        break;
      }
      const int64_t received = rec.received_ns;
      if (AddRecord(batch, std::move(rec)) && batch->events.size() == 1) {
        deadline = Clock::now() + timeout;
        pending_received_ns_.store(received);
      }
      continue;
    }
    if (exact && reader_->next_seq() > limit_seq) break;
    // A flush cuts the wait for the events that were in the journal when it was asked.
    if (!batch->events.empty() &&
        (flush_upto_.load() >= batch->events.front().seq || Clock::now() >= deadline)) {
      break;
    }
    // Nothing more to read for now.
    if (batch->events.empty()) {
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
      if (replay_requested_.load()) break;
    }
    // Wait for more records, a flush, a reload, a replay or stop.
    std::unique_lock<std::mutex> lock(mu_);
    waiting_.store(true);
    // Flushes asked until now are covered by flush_upto_; a later one wakes this wait (and
    // one that comes during the request that follows cuts its backoff: SleepUntil).
    flush_seen_ = flush_gen_.load();
    const uint64_t seen = reader_->next_seq() - 1;
    const bool more = deps_.progress->shippable() > seen;
    if (!stop_.load() && reload_gen_.load() == reload_gen_seen_ && !mail_pending_.load() &&
        !(batch->events.empty() && replay_requested_.load())) {
      if (more && at_end) {
        // The reader cannot read what is there (a damaged or missing segment, no fds):
        // try again shortly rather than spin.
        cv_.wait_for(lock, std::chrono::milliseconds(100));
      } else if (!more) {
        if (batch->events.empty()) {
          cv_.wait_for(lock, std::chrono::seconds(1));
        } else {
          cv_.wait_until(lock, deadline);
        }
      }
    }
    waiting_.store(false);
  }
  batch->end_cursor = reader_->next_seq() - 1 - (carry_ ? 1 : 0);
  return true;
}

bool Sink::DeadLetter(const Batch& batch, size_t i, long status, const std::string& response) {
  const SinkEvent& ev = batch.events[i];
  auto id_member = ev.envelope->FindMember("id");
  std::string id;
  const bool has_id = id_member != ev.envelope->MemberEnd() && id_member->value.IsString();
  if (has_id) id.assign(id_member->value.GetString(), id_member->value.GetStringLength());
  const std::string line = DeadLetterLine(
      IsoTime(WallNs()), config_.name, ev.seq, has_id ? &id : nullptr, ev.received_ns, status,
      RedactResponse(proto::SanitizeUtf8(response, 1024)), batch.raw[i]);
  const Status appended = AppendLinesSynced(deadletter_path_, line);
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
               deadletter_path_);
  return true;
}

Sink::Outcome Sink::Send(Batch& batch, size_t lo, size_t hi, const std::string& key_suffix) {
  Outcome out;
  const std::vector<SinkEvent> part(batch.events.begin() + static_cast<ptrdiff_t>(lo),
                                    batch.events.begin() + static_cast<ptrdiff_t>(hi));
  const uint64_t first = part.front().seq, last = part.back().seq;
  HttpRequest req;
  req.url = endpoint_;
  std::string body =
      config_.type == "otlp-http" ? EncodeOtlpJson(meta_, part) : EncodeHttpJson(meta_, part);
  if (config_.gzip) {
    std::string gz;
    if (Gzip(body, &gz, config_.gzip_level)) {
      req.body = std::move(gz);
      req.content_encoding = "gzip";
    } else {
      req.body = std::move(body);
    }
  } else {
    req.body = std::move(body);
  }
  req.connect_timeout = config_.connect_timeout;
  req.timeout = config_.timeout;
  req.tls_verify = config_.tls_verify;
  req.ca_file = config_.ca_file;
  req.headers.emplace_back("Idempotency-Key",
                           IdempotencyKey(config_.name, meta_.host_id, first, last, key_suffix));
  req.headers.emplace_back("X-Ferry-Sink", config_.name);
  req.headers.emplace_back("X-Ferry-First-Seq", std::to_string(first));
  req.headers.emplace_back("X-Ferry-Last-Seq", std::to_string(last));
  req.headers.emplace_back("X-Ferry-Count", std::to_string(part.size()));
  if (!token_.empty()) req.headers.emplace_back("Authorization", "Bearer " + token_);
  for (const auto& h : config_.headers) req.headers.push_back(h);

  SetState(State::kSending);
  requests_.fetch_add(1);
  bytes_sent_.fetch_add(req.body.size());
  out.response = http_->Post(req);
  out.verdict = Classify(out.response);
  if (out.response.aborted) out.verdict = Verdict::kRetry;
  return out;
}

bool Sink::Deliver(Batch& batch, const std::string& key_suffix) {
  // Parts still to send, as [lo, hi) ranges; the top is sent next, so the left half of a
  // split goes first and delivery stays in seq order.
  std::vector<std::pair<size_t, size_t>> todo = {{0, batch.events.size()}};
  while (!todo.empty()) {
    if (stop_.load()) return false;
    RunMail();
    if (reload_gen_seen_ != reload_gen_.load() && ApplyReload()) Reredact(&batch);
    if (!token_error_.empty()) {
      SetError(0, token_error_, {});
      const auto next = std::chrono::system_clock::now() + kPausedRetry;
      SetState(State::kPaused, next);
      failures_total_.fetch_add(1);
      if (!SleepUntil(Clock::now() + kPausedRetry, true)) return false;
      LoadToken();
      continue;
    }
    const auto [lo, hi] = todo.back();
    Outcome o = Send(batch, lo, hi, key_suffix);
    const HttpResponse& r = o.response;
    if (o.verdict == Verdict::kDone) {
      todo.pop_back();
      delivered_events_.fetch_add(hi - lo);
      delivered_batches_.fetch_add(1);
      consecutive_failures_.store(0);
      attempt_ = 0;
      std::lock_guard<std::mutex> lock(info_mu_);
      last_success_ns_ = WallNs();
      continue;
    }
    if (stop_.load()) return false;
    failures_total_.fetch_add(1);
    consecutive_failures_.fetch_add(1);
    const std::string what =
        r.status ? "HTTP " + std::to_string(r.status) : "transport error: " + r.transport_error;
    SetError(r.status, r.status ? Describe(r.status) : r.transport_error,
             RedactResponse(proto::SanitizeUtf8(r.body_excerpt)));
    if (o.verdict == Verdict::kSplit413 || o.verdict == Verdict::kBisect) {
      todo.pop_back();
      if (hi - lo > 1) {
        const size_t mid = lo + (hi - lo) / 2;
        spdlog::info("sink {}: {} for seqs {}-{}; splitting in halves", config_.name, what,
                     batch.events[lo].seq, batch.events[hi - 1].seq);
        todo.emplace_back(mid, hi);
        todo.emplace_back(lo, mid);
        continue;
      }
      if (DeadLetter(batch, lo, r.status, r.body_excerpt)) continue;
      todo.emplace_back(lo, hi);  // not recorded: the event is not dropped; try again later
      const auto next = std::chrono::system_clock::now() + kPausedRetry / 6;
      SetState(State::kBackingOff, next);
      if (!SleepUntil(Clock::now() + kPausedRetry / 6, true)) return false;
      continue;
    }
    if (o.verdict == Verdict::kPause) {
      const auto next = std::chrono::system_clock::now() + kPausedRetry;
      SetState(State::kPaused, next);
      spdlog::error("sink {}: {} from {}; paused (retrying every {} s, or at once on SIGHUP)",
                    config_.name, what, UrlForDisplay(endpoint_), kPausedRetry.count() / 1000);
      if (!SleepUntil(Clock::now() + kPausedRetry, true)) return false;
      continue;
    }
    // Retry: Retry-After when the server gave one (429/503), else backoff with full jitter.
    milliseconds wait{};
    if ((r.status == 429 || r.status == 503) && r.retry_after.count() >= 0) {
      // Capped by backoff_max; and never a tight loop on "Retry-After: 0".
      wait = std::clamp(r.retry_after, kBackoffBase, config_.backoff_max);
    } else {
      // Full jitter: uniform in [0, min(backoff_max, 200 ms * 2^attempt)], at least 10 ms.
      const uint32_t shift = std::min<uint32_t>(attempt_, 30);
      const int64_t cap = std::min<int64_t>(config_.backoff_max.count(),
                                            kBackoffBase.count() * (int64_t{1} << shift));
      static thread_local std::mt19937_64 rng{std::random_device{}()};
      std::uniform_int_distribution<int64_t> dist(0, cap);
      wait = milliseconds(std::max<int64_t>(dist(rng), 10));
      ++attempt_;
    }
    const auto next = std::chrono::system_clock::now() + wait;
    SetState(State::kBackingOff, next);
    if (consecutive_failures_.load() == 1 || consecutive_failures_.load() % 10 == 0) {
      spdlog::warn("sink {}: {} ({} failure(s) in a row); retrying in {} ms", config_.name, what,
                   consecutive_failures_.load(), wait.count());
    }
    if (!SleepUntil(Clock::now() + wait, true)) return false;
  }
  return true;
}

bool Sink::ApplyReload() {
  reload_gen_seen_ = reload_gen_.load();
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (redactor_next_) {
      redactor_ = std::move(redactor_next_);
      changed = true;
    }
  }
  LoadToken();
  attempt_ = 0;
  return changed;
}

void Sink::Reredact(Batch* batch) {
  // The batch was redacted with the old rules: redo it from the journal bodies (same seqs,
  // so the same Idempotency-Keys).
  std::vector<std::string> raw = std::move(batch->raw);
  std::vector<SinkEvent> events = std::move(batch->events);
  batch->Clear();
  for (size_t i = 0; i < events.size(); ++i) {
    JournalRecord rec;
    rec.seq = events[i].seq;
    rec.received_ns = events[i].received_ns;
    rec.body = std::move(raw[i]);
    AddRecord(batch, std::move(rec));
  }
}

bool Sink::Replay() {
  replay_requested_.store(false);
  {
    struct stat st {};
    if (::stat(replay_path_.c_str(), &st) != 0) {
      if (fs::Rename(deadletter_path_.c_str(), replay_path_.c_str()) != 0) {
        if (errno != ENOENT) {
          spdlog::error("sink {}: cannot move {} aside for replay: {}", config_.name,
                        deadletter_path_, std::strerror(errno));
        }
        return true;  // nothing to replay
      }
      replay_pending_.store(deadlettered_.exchange(0));
    }
  }
  std::string text;
  if (!ReadWholeFile(replay_path_, &text)) return true;
  spdlog::info("sink {}: replaying {} dead letter(s)", config_.name, replay_pending_.load());
  Batch batch;
  size_t pos = 0;
  std::string unreadable;  // lines that are not dead letters, kept
  auto flush_batch = [&]() -> bool {
    if (batch.events.empty()) return true;
    if (!Deliver(batch, "replay")) return false;
    batch.Clear();
    return true;
  };
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // a torn last line: dropped with the file
    rapidjson::Document line;
    line.Parse(text.data() + pos, nl - pos);
    const size_t line_start = pos;
    pos = nl + 1;
    if (line.HasParseError() || !line.IsObject() || !line.HasMember("event") ||
        !line["event"].IsObject()) {
      // Not ours to drop: it goes back to the dead-letter file as it is, for a person to see.
      unreadable.append(text, line_start, pos - line_start);
      skipped_.fetch_add(1);
      continue;
    }
    rapidjson::Value& ev = line["event"];
    JournalRecord rec;
    rec.seq = ev.HasMember("seq") && ev["seq"].IsUint64() ? ev["seq"].GetUint64() : 0;
    rec.received_ns =
        ev.HasMember("received") && ev["received"].IsInt64() ? ev["received"].GetInt64() : 0;
    ev.RemoveMember("seq");
    ev.RemoveMember("received");
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    ev.Accept(w);
    rec.body.assign(sb.GetString(), sb.GetSize());
    if (batch.events.size() >= config_.max_events ||
        (!batch.events.empty() && batch.bytes + rec.body.size() + 48 > config_.max_bytes)) {
      if (!flush_batch()) return false;
    }
    AddRecord(&batch, std::move(rec));
  }
  if (!flush_batch()) return false;
  if (pos < text.size()) unreadable.append(text, pos, std::string::npos).push_back('\n');
  if (!unreadable.empty()) {
    const Status kept = AppendLinesSynced(deadletter_path_, unreadable);
    if (!kept.ok()) {
      spdlog::error("sink {}: cannot put unreadable lines back: {}; keeping {}", config_.name,
                    kept.ToString(), replay_path_);
      return true;
    }
    deadlettered_.fetch_add(
        static_cast<uint64_t>(std::count(unreadable.begin(), unreadable.end(), '\n')));
  }
  fs::Unlink(replay_path_.c_str());
  replay_pending_.store(0);
  spdlog::info("sink {}: replay done", config_.name);
  return true;
}

void Sink::Run() {
  http_ = std::make_unique<HttpClient>(std::string("ferry/") + meta_.version, &stop_);
  reload_gen_seen_ = reload_gen_.load();
  LoadToken();
  if (!token_error_.empty()) spdlog::error("sink {}: {}", config_.name, token_error_);
  Batch batch;
  // Counted here, not in Open() on the io thread: the files can be large.
  deadlettered_.store(CountLines(deadletter_path_));
  replay_pending_.store(CountLines(replay_path_));
  {
    struct stat st {};
    if (::stat(replay_path_.c_str(), &st) == 0) replay_requested_.store(true);
  }
  uint64_t inflight_last = inflight_last_;
  while (!stop_.load()) {
    RunMail();
    if (replay_requested_.load() && !Replay()) break;
    if (!Gather(&batch, inflight_last)) break;
    inflight_last = 0;
    if (batch.events.empty()) {
      if (batch.end_cursor > cursor_.load()) {
        Status s = SaveCursor(batch.end_cursor, 0, 0, true);
        if (!s.ok()) spdlog::error("sink {}: {}", config_.name, s.ToString());
        cursor_.store(batch.end_cursor);
        slot_->cursor.store(batch.end_cursor);
      }
      continue;
    }
    // Record the batch's range before sending it: after a crash it is formed again from
    // exactly these seqs, so the resent request carries the same Idempotency-Key.
    Status s = SaveCursor(cursor_.load(), cursor_.load() + 1, batch.end_cursor, false);
    if (!s.ok()) spdlog::warn("sink {}: {}", config_.name, s.ToString());
    if (!Deliver(batch, {})) break;
    s = SaveCursor(batch.end_cursor, 0, 0, true);
    if (!s.ok()) spdlog::error("sink {}: cannot save the cursor: {}", config_.name, s.ToString());
    cursor_.store(batch.end_cursor);
    slot_->cursor.store(batch.end_cursor);
    pending_received_ns_.store(0);
  }
  SetState(State::kStopped);
  http_.reset();
  RunMail();  // what was asked before the stop is still done (the destructor answers the rest)
}

void Sink::WriteStatus(proto::JsonWriter& w, uint64_t journal_written) const {
  const uint64_t cursor = cursor_.load();
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
  w.Double(lag > 0 && pending > 0 ? static_cast<double>(WallNs() - pending) / 1e9 : 0.0);
  w.Key("state");
  w.String(StateName(state_.load()));
  std::lock_guard<std::mutex> lock(info_mu_);
  w.Key("last_success");
  if (last_success_ns_) {
    WriteStr(w, IsoTime(last_success_ns_));
  } else {
    w.Null();
  }
  w.Key("last_error");
  if (last_error_.time_ns) {
    w.StartObject();
    w.Key("time");
    WriteStr(w, IsoTime(last_error_.time_ns));
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
  const State st = state_.load();
  if (next_retry_ns_ && (st == State::kBackingOff || st == State::kPaused)) {
    WriteStr(w, IsoTime(next_retry_ns_));
  } else {
    w.Null();
  }
  w.Key("consecutive_failures");
  w.Uint64(consecutive_failures_.load());
  w.Key("failures_total");
  w.Uint64(failures_total_.load());
  w.Key("delivered_events");
  w.Uint64(delivered_events_.load());
  w.Key("delivered_batches");
  w.Uint64(delivered_batches_.load());
  w.Key("requests");
  w.Uint64(requests_.load());
  w.Key("bytes_sent");
  w.Uint64(bytes_sent_.load());
  w.Key("deadlettered");
  w.Uint64(deadlettered_.load());
  w.Key("replay_pending");
  w.Uint64(replay_pending_.load());
  w.Key("redacted");
  w.Uint64(redacted_.load());
  w.Key("skipped");
  w.Uint64(skipped_.load());
  w.EndObject();
}

}  // namespace ferry
