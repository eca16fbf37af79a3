// SpoolImporter with a real Journal, DedupeWindow and spool directory in a temp dir, its io
// thread running: each spooled event is imported exactly once (a file seen again, or the
// same ids in another file, are duplicates), a torn last line is skipped, a file is removed
// only once the journal says its records are durable, hostile entries (FIFO, symlink,
// directory) are moved aside unread, and [redact] local applies to spooled events. The tests
// wait for the importer's counters (atomics) with a deadline, never for a fixed time.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "daemon/ingest/dedupe_window.h"
#include "daemon/ingest/spool_importer.h"
#include "daemon/journal/committer.h"
#include "daemon/journal/journal.h"
#include "daemon/journal/reader.h"
#include "daemon/redact/redact.h"
#include "tests/unit/test_util.h"

namespace ferry {
namespace {

using namespace std::chrono_literals;

class SpoolHarness {
 public:
  SpoolHarness() : window_(1000), guard_(net::make_work_guard(io_)) {
    test::OpenTestJournal(dir_.Join("journal"), &journal_, &committer_);
    REQUIRE(::mkdir(spool().c_str(), 0700) == 0);
  }

  ~SpoolHarness() {
    if (thread_.joinable()) {
      std::promise<void> stopped;
      net::post(io_, [&] {
        importer_->Stop();
        stopped.set_value();
      });
      stopped.get_future().wait();
      guard_.reset();
      io_.stop();
      thread_.join();
    }
    importer_.reset();
    CHECK(committer_->Stop().ok());
  }

  void Start(std::shared_ptr<const Redactor> redactor = nullptr) {
    importer_ = std::make_unique<SpoolImporter>(io_, spool(), *journal_, *committer_, window_,
                                                [](uint64_t) {});
    if (redactor) importer_->SetLocalRedactor(std::move(redactor));
    REQUIRE(importer_->Start().ok());
    thread_ = std::thread([this] { io_.run(); });
  }

  template <typename Fn>
  auto OnIo(Fn fn) {
    std::packaged_task<decltype(fn())()> task(std::move(fn));
    auto result = task.get_future();
    net::post(io_, [&task] { task(); });
    return result.get();
  }

  // Waits (deadline 10 s) until `done` holds for the importer's counters.
  void WaitFor(const std::function<bool(const SpoolCounters&)>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done(importer_->counters())) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(1ms);  // polling the condition, not waiting it out
    }
  }

  // Reports the journal durable up to what is written (the committer is not wired).
  void MakeDurable() {
    OnIo([this] {
      importer_->OnDurable(journal_->written_seq());
      return 0;
    });
  }

  std::vector<std::string> Records() {
    const uint64_t written = OnIo([this] { return journal_->written_seq(); });
    std::vector<std::string> out;
    JournalReader reader(dir_.Join("journal"), 1);
    JournalRecord rec;
    while (reader.Next(written, &rec) == JournalReader::Result::kRecord) out.push_back(rec.body);
    return out;
  }

  std::string spool() const { return dir_.Join("spool"); }
  std::string Join(const std::string& name) const { return dir_.Join(name); }
  SpoolCounters counters() const { return importer_->counters(); }

 private:
  test::TempDir dir_;
  net::io_context io_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<JournalCommitter> committer_;
  DedupeWindow window_;
  net::executor_work_guard<net::io_context::executor_type> guard_;
  std::unique_ptr<SpoolImporter> importer_;
  std::thread thread_;
};

std::string Envelope(int n, const std::string& payload = R"({"n":1})") {
  char id[33];
  std::snprintf(id, sizeof id, "%032x", n);
  return std::string(R"({"id":")") + id +
         R"(","ts":1700000000000000000,"source":"zsh","kind":"command","payload":)" + payload + "}";
}
std::string Line(int n, const std::string& payload = R"({"n":1})") {
  return R"({"v":1,"event":)" + Envelope(n, payload) + "}\n";
}
bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

TEST_CASE(
    "spool importer: each event once, a torn last line skipped, the file removed once "
    "durable",
    "[ingest][spool]") {
  SpoolHarness h;
  const std::string first = h.spool() + "/1700000000-1-a.ndjson";
  test::WriteFile(first, Line(1) + Line(2) + R"({"v":1,"event":{"id":"00)");
  h.Start();
  h.WaitFor([](const SpoolCounters& c) { return c.events_imported == 2 && c.torn_lines == 1; });
  CHECK(h.Records() == std::vector<std::string>{Envelope(1), Envelope(2)});
  // Written is not durable: the file stays until the journal says so.
  h.OnIo([] { return 0; });
  CHECK(Exists(first));
  CHECK(h.counters().files_imported == 0);
  h.MakeDurable();
  h.WaitFor([](const SpoolCounters& c) { return c.files_imported == 1; });
  CHECK_FALSE(Exists(first));

  // The same ids again (a client that spooled what was acked late), and one new event.
  const std::string tmp = h.spool() + "/.tmp-second";
  test::WriteFile(tmp, Line(2) + Line(1) + Line(3));
  REQUIRE(::rename(tmp.c_str(), (h.spool() + "/1700000001-1-b.ndjson").c_str()) == 0);
  h.WaitFor([](const SpoolCounters& c) { return c.events_imported == 3 && c.duplicates == 2; });
  CHECK(h.Records() == std::vector<std::string>{Envelope(1), Envelope(2), Envelope(3)});
  CHECK(h.counters().invalid_lines == 0);
  CHECK(h.counters().files_rejected == 0);
}

TEST_CASE("spool importer: a file with an invalid line is imported and kept as .rejected",
          "[ingest][spool]") {
  SpoolHarness h;
  const std::string file = h.spool() + "/1700000000-1-a.ndjson";
  test::WriteFile(file, Line(1) + "not an event\n");
  h.Start();
  h.WaitFor([](const SpoolCounters& c) { return c.events_imported == 1 && c.invalid_lines == 1; });
  h.MakeDurable();
  h.WaitFor([](const SpoolCounters& c) { return c.files_rejected == 1; });
  CHECK_FALSE(Exists(file));
  CHECK(Exists(file + ".rejected"));
  CHECK(h.Records() == std::vector<std::string>{Envelope(1)});
}

TEST_CASE("spool importer: a FIFO, a symlink and a directory are moved aside unread",
          "[ingest][spool]") {
  SpoolHarness h;
  const std::string fifo = h.spool() + "/1-fifo.ndjson";
  const std::string link = h.spool() + "/2-link.ndjson";
  const std::string dir = h.spool() + "/3-dir.ndjson";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);  // opened blocking, it would hang the importer
  test::WriteFile(h.Join("outside.ndjson"), Line(7));
  REQUIRE(::symlink(h.Join("outside.ndjson").c_str(), link.c_str()) == 0);
  REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
  h.Start();
  h.WaitFor([](const SpoolCounters& c) { return c.files_rejected == 3; });
  CHECK(Exists(fifo + ".rejected"));
  CHECK(Exists(link + ".rejected"));
  CHECK(Exists(dir + ".rejected"));
  CHECK(Exists(h.Join("outside.ndjson")));  // what the link pointed to is untouched
  CHECK(h.counters().events_imported == 0);
  CHECK(h.Records().empty());
}

TEST_CASE("spool importer: [redact] local rewrites flagged text before the journal",
          "[ingest][spool][redact]") {
  RedactOptions options;
  options.builtin = false;
  options.rules.push_back({"test-key", "sk-[a-z0-9]+", "[KEY]"});
  std::shared_ptr<const Redactor> redactor;
  REQUIRE(Redactor::Compile(options, &redactor).ok());
  SpoolHarness h;
  test::WriteFile(h.spool() + "/1-a.ndjson", Line(1, R"({"cmd":"curl -H sk-abc123 x","n":12.50})"));
  h.Start(redactor);
  h.WaitFor([](const SpoolCounters& c) { return c.events_imported == 1; });
  const auto records = h.Records();
  REQUIRE(records.size() == 1);
  CHECK(records[0].find("sk-abc123") == std::string::npos);
  CHECK(records[0] == Envelope(1, R"({"cmd":"curl -H [KEY] x","n":12.50})"));
}

}  // namespace
}  // namespace ferry
