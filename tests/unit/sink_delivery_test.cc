// The Sink's delivery policy, driven end to end through a scripted Transport: a real journal
// in a temp dir, real cursor and dead-letter files, the real sink thread. Each test waits for
// what it checks (the fake transport's condition variable, or a poll with a deadline) and
// fails if the behaviour breaks; none sleeps and then looks.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

#include "daemon/base/file_util.h"
#include "daemon/base/thread_annotations.h"
#include "daemon/journal/journal.h"
#include "daemon/journal/progress.h"
#include "daemon/sink/delivery_policy.h"
#include "daemon/sink/sink.h"
#include "proto/paths.h"
#include "tests/unit/test_util.h"

namespace ferry {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// One request as the fake upstream saw it.
struct Seen {
  std::vector<uint64_t> seqs;
  std::vector<std::string> ids;
  std::vector<int64_t> received;
  std::string key;
  std::string auth;
};

// The fake upstream: records each request and answers with `respond`.
class Upstream {
 public:
  using Respond = std::function<HttpResponse(const Seen&)>;
  void SetRespond(Respond r) {
    MutexLock lock(mu_);
    respond_ = std::move(r);
  }
  HttpResponse Post(const HttpRequest& req) {
    Seen s;
    rapidjson::Document d;
    d.Parse(req.body.data(), req.body.size());
    for (const auto& e : d["events"].GetArray()) {
      s.seqs.push_back(e["seq"].GetUint64());
      s.ids.emplace_back(e["id"].GetString());
      s.received.push_back(e["received"].GetInt64());
    }
    for (const auto& [k, v] : req.headers) {
      if (k == "Idempotency-Key") s.key = v;
      if (k == "Authorization") s.auth = v;
    }
    MutexLock lock(mu_);
    HttpResponse r = respond_ ? respond_(s) : Status(200);
    seen_.push_back(std::move(s));
    cv_.NotifyAll();
    return r;
  }
  std::vector<Seen> seen() {
    MutexLock lock(mu_);
    return seen_;
  }
  // Waits until `n` requests came in.
  bool WaitRequests(size_t n, std::chrono::seconds timeout = std::chrono::seconds(20)) {
    const auto until = Clock::now() + timeout;
    MutexLock lock(mu_);
    while (seen_.size() < n) {
      if (cv_.WaitUntil(lock, until) == std::cv_status::timeout) return seen_.size() >= n;
    }
    return true;
  }
  static HttpResponse Status(long status, std::string body = {},
                             milliseconds retry_after = milliseconds(-1)) {
    HttpResponse r;
    r.status = status;
    r.body_excerpt = std::move(body);
    r.retry_after = retry_after;
    return r;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  Respond respond_ FERRY_GUARDED_BY(mu_);
  std::vector<Seen> seen_ FERRY_GUARDED_BY(mu_);
};

class FakeTransport final : public Transport {
 public:
  explicit FakeTransport(Upstream* up) : up_(up) {}
  HttpResponse Post(const HttpRequest& request) override { return up_->Post(request); }

 private:
  Upstream* up_;
};

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool Eventually(const std::function<bool()>& pred,
                std::chrono::seconds timeout = std::chrono::seconds(20)) {
  const auto until = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() > until) return pred();
    std::this_thread::sleep_for(milliseconds(1));  // polling with a deadline
  }
  return true;
}

std::string Body(uint64_t k) {
  return R"({"id":"ev-)" + std::to_string(k) +
         R"(","ts":1700000000000000000,"source":"t","kind":"k","payload":{"i":)" +
         std::to_string(k) + "}}";
}

class Harness {
 public:
  explicit Harness(SinkConfig config = {}) : config_(std::move(config)) {
    config_.name = "up";
    config_.type = "http-json";
    config_.url = "http://upstream.invalid/in";
    config_.gzip = false;
    config_.redact = false;
    config_.batch_timeout = milliseconds(0);
    Journal::Options o;
    o.dir = tmp_.Join("journal");
    REQUIRE(MakeDirs(o.dir).ok());
    RecoveryReport report;
    REQUIRE(Journal::Open(o, &journal_, &report).ok());
  }
  ~Harness() { sink_.reset(); }

  void Start() {
    SinkDeps deps;
    deps.state_dir = tmp_.path();
    deps.journal_dir = tmp_.Join("journal");
    deps.progress = &progress_;
    deps.consumers = &consumers_;
    deps.meta = BatchMeta{"host", "hostid", "", "test"};
    deps.make_transport = [this](const std::atomic<bool>*) {
      return std::make_unique<FakeTransport>(&up);
    };
    deps.wait_hook = [this](const SinkWait& w) {
      MutexLock lock(waits_mu_);
      waits_.push_back(w);
      // Backoffs are recorded, not slept; a pause really waits (a reload must end it).
      return w.kind == SinkWait::Kind::kPaused ? w.asked : milliseconds(0);
    };
    sink_ = std::make_unique<Sink>(config_, deps, nullptr);
    REQUIRE(sink_->Open(journal_->oldest_seq(), journal_->written_seq()).ok());
    sink_->Start();
  }

  // Appends events first..last (bodies Body(k)) and makes them shippable.
  void Append(uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t seq = 0;
      const uint64_t k = ++appended_;
      REQUIRE(journal_->Append(static_cast<int64_t>(1000 + k), Body(k), &seq).ok());
      REQUIRE(seq == k);
    }
    REQUIRE(journal_->Flush().ok());
    progress_.PublishWritten(journal_->written_seq());
    progress_.PublishShippable(journal_->written_seq());
    if (sink_) sink_->OnWritten();
  }

  bool WaitCursor(uint64_t seq) {
    return Eventually([&] { return sink_->cursor() >= seq; });
  }
  std::vector<SinkWait> waits() {
    MutexLock lock(waits_mu_);
    return waits_;
  }
  std::string LetterPath() const { return proto::DeadletterPath(tmp_.path(), "up"); }
  std::string ReplayPath() const { return proto::DeadletterReplayPath(tmp_.path(), "up"); }
  std::vector<std::string> Letters() const {
    std::string text;
    std::vector<std::string> out;
    if (!ReadWholeFile(LetterPath(), &text)) return out;
    size_t pos = 0;
    for (size_t nl; (nl = text.find('\n', pos)) != std::string::npos; pos = nl + 1) {
      out.push_back(text.substr(pos, nl - pos));
    }
    return out;
  }
  Sink& sink() { return *sink_; }

  Upstream up;

 private:
  test::TempDir tmp_;
  SinkConfig config_;
  std::unique_ptr<Journal> journal_;
  JournalProgress progress_;
  ConsumerRegistry consumers_;
  Mutex waits_mu_;
  std::vector<SinkWait> waits_ FERRY_GUARDED_BY(waits_mu_);
  std::unique_ptr<Sink> sink_;
  uint64_t appended_ = 0;
};

std::vector<std::pair<uint64_t, uint64_t>> Ranges(const std::vector<Seen>& seen) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const Seen& s : seen) out.emplace_back(s.seqs.front(), s.seqs.back());
  return out;
}

bool Contains(const Seen& s, uint64_t seq) {
  return std::find(s.seqs.begin(), s.seqs.end(), seq) != s.seqs.end();
}

TEST_CASE("sink: a 413 splits the batch in halves, left half first, until parts fit",
          "[sink_delivery]") {
  Harness h;
  h.up.SetRespond([](const Seen& s) { return Upstream::Status(s.seqs.size() > 2 ? 413 : 200); });
  h.Append(8);
  h.Start();
  REQUIRE(h.WaitCursor(8));
  const std::vector<std::pair<uint64_t, uint64_t>> want = {{1, 8}, {1, 4}, {1, 2}, {3, 4},
                                                           {5, 8}, {5, 6}, {7, 8}};
  CHECK(Ranges(h.up.seen()) == want);
  for (const Seen& s : h.up.seen()) {
    CHECK(s.key == "ferry-up-hostid-" + std::to_string(s.seqs.front()) + "-" +
                       std::to_string(s.seqs.back()));
  }
  CHECK(h.Letters().empty());
  CHECK(h.waits().empty());  // a 413 is not a reason to wait
  CHECK(h.sink().deadlettered() == 0);
}

TEST_CASE("sink: a 4xx bisects down to the one refused event, which alone is dead-lettered",
          "[sink_delivery]") {
  Harness h;
  h.up.SetRespond([](const Seen& s) {
    return Contains(s, 5) ? Upstream::Status(400, "bad event ev-5") : Upstream::Status(200);
  });
  h.Append(8);
  h.Start();
  REQUIRE(h.WaitCursor(8));
  // Every other event delivered exactly once, in order; 5 never accepted.
  std::vector<uint64_t> accepted;
  for (const Seen& s : h.up.seen()) {
    if (!Contains(s, 5)) accepted.insert(accepted.end(), s.seqs.begin(), s.seqs.end());
  }
  CHECK(accepted == std::vector<uint64_t>{1, 2, 3, 4, 6, 7, 8});
  CHECK(Ranges(h.up.seen()).back() == std::pair<uint64_t, uint64_t>{7, 8});
  const std::vector<std::string> letters = h.Letters();
  REQUIRE(letters.size() == 1);
  rapidjson::Document d;
  d.Parse(letters[0].data(), letters[0].size());
  REQUIRE(d.IsObject());
  CHECK(d["seq"].GetUint64() == 5);
  CHECK(std::string(d["id"].GetString()) == "ev-5");
  CHECK(d["status"].GetInt64() == 400);
  CHECK(std::string(d["response"].GetString()) == "bad event ev-5");
  CHECK(d["event"]["received"].GetInt64() == 1005);
  CHECK(d["event"]["payload"]["i"].GetUint64() == 5);
  CHECK(h.sink().deadlettered() == 1);
  CHECK(h.waits().empty());
}

TEST_CASE("sink: 5xx backs off with jitter, 429 waits Retry-After clamped, then the batch goes",
          "[sink_delivery]") {
  SinkConfig c;
  c.backoff_max = milliseconds(1500);
  Harness h(c);
  int n = 0;
  h.up.SetRespond([&n](const Seen&) {
    switch (n++) {
      case 0:
        return Upstream::Status(503);  // no Retry-After: backoff, attempt 0
      case 1:
        return Upstream::Status(500);  // attempt 1
      case 2:
        return Upstream::Status(429, {}, milliseconds(2000));  // clamped to backoff_max
      case 3:
        return Upstream::Status(503, {}, milliseconds(0));  // clamped up to 200 ms
      case 4:
        return Upstream::Status(0);  // transport error: backoff, attempt 2
      default:
        return Upstream::Status(204);
    }
  });
  h.Append(3);
  h.Start();
  REQUIRE(h.WaitCursor(3));
  const std::vector<Seen> seen = h.up.seen();
  REQUIRE(seen.size() == 6);
  for (const Seen& s : seen) CHECK(s.key == "ferry-up-hostid-1-3");  // one batch, one key
  const std::vector<SinkWait> w = h.waits();
  REQUIRE(w.size() == 5);
  CHECK(w[0].kind == SinkWait::Kind::kBackoff);
  CHECK(w[0].status == 503);
  CHECK(w[0].asked >= sink::kMinBackoff);
  CHECK(w[0].asked <= milliseconds(200));
  CHECK(w[1].kind == SinkWait::Kind::kBackoff);
  CHECK(w[1].asked <= milliseconds(400));
  CHECK(w[2].kind == SinkWait::Kind::kRetryAfter);
  CHECK(w[2].asked == milliseconds(1500));
  CHECK(w[3].kind == SinkWait::Kind::kRetryAfter);
  CHECK(w[3].asked == milliseconds(200));
  CHECK(w[4].kind == SinkWait::Kind::kBackoff);
  CHECK(w[4].status == 0);
  CHECK(w[4].asked <= milliseconds(800));
  CHECK(h.sink().failures_total() == 5);
  CHECK(h.Letters().empty());
}

TEST_CASE("sink: a 401 pauses the sink until a reload, which retries at once", "[sink_delivery]") {
  Harness h;
  h.up.SetRespond([](const Seen&) { return Upstream::Status(401, "no"); });
  h.Append(2);
  h.Start();
  REQUIRE(h.up.WaitRequests(1));
  REQUIRE(Eventually([&] { return h.sink().state() == Sink::State::kPaused; }));
  REQUIRE(Eventually([&] { return !h.waits().empty(); }));
  CHECK(h.waits()[0].kind == SinkWait::Kind::kPaused);
  CHECK(h.waits()[0].asked == sink::kPausedRetry);  // 60 s: only the reload can end it here
  CHECK(h.sink().last_error_text().find("HTTP 401") == 0);
  h.up.SetRespond([](const Seen&) { return Upstream::Status(200); });
  h.sink().Reload(nullptr);
  REQUIRE(h.WaitCursor(2));
  const std::vector<Seen> seen = h.up.seen();
  REQUIRE(seen.size() == 2);
  CHECK(seen[1].key == seen[0].key);
  CHECK(h.waits().size() == 1);
  CHECK(h.sink().state() != Sink::State::kPaused);
}

TEST_CASE(
    "sink: dead letters are listed, replayed with their own key, and purged through the mailbox",
    "[sink_delivery]") {
  Harness h;
  h.up.SetRespond([](const Seen& s) {
    return Contains(s, 2) ? Upstream::Status(422, "nope") : Upstream::Status(200);
  });
  h.Append(3);
  h.Start();
  REQUIRE(h.WaitCursor(3));
  REQUIRE(h.Letters().size() == 1);

  std::promise<proto::DeadletterListEntry> listed;
  h.sink().ListDeadletters([&](proto::DeadletterListEntry e) { listed.set_value(std::move(e)); });
  const proto::DeadletterListEntry e = listed.get_future().get();
  CHECK(e.name == "up");
  CHECK(e.count == 1);
  REQUIRE(e.letters.size() == 1);
  CHECK(e.letters[0] == h.Letters()[0]);

  // Replay with the server still refusing: the letter comes back (keyed apart from the
  // journal's request), the replay file goes.
  const size_t before = h.up.seen().size();
  CHECK(h.sink().RequestReplay() == 1);
  REQUIRE(h.up.WaitRequests(before + 1));
  REQUIRE(Eventually([&] {
    return h.sink().deadlettered() == 1 && !FileExists(h.ReplayPath()) && h.Letters().size() == 1;
  }));
  CHECK(h.up.seen()[before].key == "ferry-up-hostid-2-2-replay");

  // Purge through the mailbox empties the file.
  std::promise<std::pair<uint64_t, std::string>> purged;
  h.sink().PurgeDeadletters([&](uint64_t n, std::string err) {
    purged.set_value({n, std::move(err)});
  });
  const auto [n, err] = purged.get_future().get();
  CHECK(n == 1);
  CHECK(err.empty());
  CHECK_FALSE(FileExists(h.LetterPath()));
  CHECK(h.sink().deadlettered() == 0);

  // A new refusal, then a replay the server accepts: the event goes out as the journal had it.
  h.up.SetRespond([](const Seen& s) {
    return Contains(s, 4) ? Upstream::Status(400, "nope") : Upstream::Status(200);
  });
  h.Append(1);
  REQUIRE(h.WaitCursor(4));
  REQUIRE(h.Letters().size() == 1);
  h.up.SetRespond([](const Seen&) { return Upstream::Status(200); });
  const size_t before2 = h.up.seen().size();
  CHECK(h.sink().RequestReplay() == 1);
  REQUIRE(h.up.WaitRequests(before2 + 1));
  REQUIRE(Eventually([&] {
    return h.sink().deadlettered() == 0 && !FileExists(h.ReplayPath()) &&
           !FileExists(h.LetterPath());
  }));
  const Seen replayed = h.up.seen()[before2];
  CHECK(replayed.seqs == std::vector<uint64_t>{4});
  CHECK(replayed.ids == std::vector<std::string>{"ev-4"});
  CHECK(replayed.received == std::vector<int64_t>{1004});
  CHECK(replayed.key == "ferry-up-hostid-4-4-replay");
  CHECK(h.up.seen().size() == before2 + 1);
}

TEST_CASE("sink: mail the thread never took is answered by the destructor", "[sink_delivery]") {
  Harness h;
  // Never started: the destructor answers without touching the disk.
  bool purge_answered = false, list_answered = false;
  {
    SinkConfig c;
    c.name = "never";
    SinkDeps deps;
    auto s = std::make_unique<Sink>(c, deps, nullptr);
    s->PurgeDeadletters(
        [&](uint64_t n, std::string err) { purge_answered = n == 0 && !err.empty(); });
    s->ListDeadletters([&](proto::DeadletterListEntry e) {
      list_answered = e.name == "never" && !e.error.empty();
    });
  }
  CHECK(purge_answered);
  CHECK(list_answered);
}

TEST_CASE("delivery policy: classification of responses", "[sink_delivery]") {
  using sink::Verdict;
  auto v = [](long status) { return sink::Classify(Upstream::Status(status)); };
  CHECK(v(200) == Verdict::kDone);
  CHECK(v(204) == Verdict::kDone);
  CHECK(v(409) == Verdict::kDone);
  CHECK(v(413) == Verdict::kSplit413);
  CHECK(v(400) == Verdict::kBisect);
  CHECK(v(422) == Verdict::kBisect);
  for (long s : {401L, 403L, 404L, 405L, 407L}) CHECK(v(s) == Verdict::kPause);
  for (long s : {0L, 301L, 408L, 425L, 429L, 500L, 503L}) CHECK(v(s) == Verdict::kRetry);
  HttpResponse aborted = Upstream::Status(200);
  aborted.aborted = true;
  CHECK(sink::Classify(aborted) == Verdict::kRetry);
}

TEST_CASE("delivery policy: full-jitter backoff doubles its cap up to backoff_max",
          "[sink_delivery]") {
  std::mt19937_64 rng(42);
  uint32_t attempt = 0;
  const milliseconds max(1000);
  for (uint32_t i = 0; i < 40; ++i) {
    const milliseconds cap = sink::BackoffCap(attempt, max);
    const milliseconds w = sink::RetryWait(Upstream::Status(500), max, &attempt, &rng);
    CHECK(attempt == i + 1);
    CHECK(w >= sink::kMinBackoff);
    CHECK(w <= std::max(cap, sink::kMinBackoff));
  }
  CHECK(sink::BackoffCap(0, max) == milliseconds(200));
  CHECK(sink::BackoffCap(2, max) == milliseconds(800));
  CHECK(sink::BackoffCap(3, max) == max);
  CHECK(sink::BackoffCap(1000, max) == max);
  bool said = false;
  attempt = 7;
  CHECK(sink::RetryWait(Upstream::Status(429, {}, milliseconds(5)), max, &attempt, &rng, &said) ==
        sink::kBackoffBase);
  CHECK(said);
  CHECK(attempt == 7);  // Retry-After does not count as a backoff step
}

TEST_CASE("delivery policy: the part queue sends halves left first", "[sink_delivery]") {
  sink::PartQueue q(5);
  CHECK(q.Next() == std::pair<size_t, size_t>{0, 5});
  q.Split();
  CHECK(q.Next() == std::pair<size_t, size_t>{0, 2});
  q.Done();
  CHECK(q.Next() == std::pair<size_t, size_t>{2, 5});
  q.Split();
  CHECK(q.Next() == std::pair<size_t, size_t>{2, 3});
  q.Done();
  q.Done();
  CHECK(q.empty());
  CHECK(sink::PartQueue(0).empty());
}

}  // namespace
}  // namespace ferry
