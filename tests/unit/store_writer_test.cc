// StoreWriter and StoreQuery: rows, session aggregates and cursor in one transaction; reopen
// resumes at the cursor (nothing applied twice); duplicates counted; a damaged db moved aside
// and rebuilt; retention and idle close; the store thread drains on Stop; the query path's
// read-only refusals, row cap and time limit.
#include "daemon/store/schema.h"
#include "daemon/store/writer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include "daemon/journal/journal.h"
#include "daemon/store/query.h"
#include "daemon/store/record_scan.h"
#include "proto/event.h"
#include "tests/unit/test_util.h"

// GCC 12 at -O3 wrongly warns that `"a" + std::to_string(i)` (a one-character literal put in
// front of a temporary string) may overlap: https://gcc.gnu.org/bugzilla/show_bug.cgi?id=105329
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

namespace ferry {
namespace {

using Catch::Contains;

struct Fixture {
  test::TempDir dir;
  std::unique_ptr<Journal> journal;
  JournalProgress progress;
  ConsumerRegistry registry;

  Fixture() { Reopen(); }
  void Reopen() {
    journal.reset();
    RecoveryReport report;
    REQUIRE(Journal::Open({dir.Join("journal"), 64ull << 20}, &journal, &report).ok());
    progress.PublishWritten(journal->written_seq());
  }
  StoreOptions Options() const {
    StoreOptions o;
    o.db_path = dir.Join("ferry.db");
    o.journal_dir = dir.Join("journal");
    o.batch_events = 7;  // several batches per drain
    o.batch_interval = std::chrono::milliseconds(5);
    return o;
  }
  uint64_t Append(const std::string& body) {
    uint64_t seq = 0;
    REQUIRE(journal->Append(1000, body, &seq).ok());
    REQUIRE(journal->Flush().ok());
    progress.PublishWritten(journal->written_seq());
    return seq;
  }
  uint64_t AppendEvent(const std::string& id, const std::string& kind, const std::string& session,
                       int64_t ts, const std::string& payload = "{}") {
    return Append(R"({"id":")" + id + R"(","ts":)" + std::to_string(ts) +
                  R"(,"source":"bash","kind":")" + kind + R"(","session":")" + session +
                  R"(","payload":)" + payload + "}");
  }
  int64_t Scalar(const std::string& sql) {
    SQLite::Database db(dir.Join("ferry.db"), SQLite::OPEN_READONLY);
    SQLite::Statement q(db, sql);
    REQUIRE(q.executeStep());
    return q.getColumn(0).getInt64();
  }
  std::string Text(const std::string& sql) {
    SQLite::Database db(dir.Join("ferry.db"), SQLite::OPEN_READONLY);
    SQLite::Statement q(db, sql);
    REQUIRE(q.executeStep());
    return q.getColumn(0).getString();
  }
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What the full parser (ParseEnvelopes + DOM lookups, the store's fallback) reads from a body.
struct SlowView {
  bool ok = false;
  std::string id, kind, session, payload;
  int64_t ts = 0, pid = 0;
  bool failure = false;
};

SlowView SlowRead(const std::string& body) {
  SlowView v;
  rapidjson::Document doc;
  std::vector<proto::PayloadSpan> spans;
  proto::Error err;
  if (!proto::ParseEnvelopes(body, 1, &doc, &spans, &err) || !doc.IsObject() || spans.size() != 1 ||
      !doc.HasMember("id") || !doc["id"].IsString() || doc["id"].GetStringLength() == 0) {
    return v;
  }
  v.ok = true;
  auto str = [&](const char* k) {
    return doc.HasMember(k) && doc[k].IsString()
               ? std::string(doc[k].GetString(), doc[k].GetStringLength())
               : std::string();
  };
  v.id = str("id");
  v.kind = str("kind");
  v.session = str("session");
  if (doc.HasMember("ts") && doc["ts"].IsInt64()) v.ts = doc["ts"].GetInt64();
  if (doc.HasMember("pid") && doc["pid"].IsInt64()) v.pid = doc["pid"].GetInt64();
  if (spans[0].present())
    v.payload = proto::CompactJson(body.substr(spans[0].begin, spans[0].end - spans[0].begin));
  if (doc.HasMember("payload") && doc["payload"].IsObject()) {
    for (const char* k : {"exit_status", "exit_code", "exitCode"}) {
      auto it = doc["payload"].FindMember(k);
      if (it != doc["payload"].MemberEnd() && it->value.IsNumber() && it->value.GetDouble() != 0)
        v.failure = true;
    }
  }
  return v;
}

TEST_CASE("the store's record scan reads what the full parser reads, or leaves it to it",
          "[store]") {
  struct Case {
    const char* body;
    bool scanned;  // false: ScanRecord must leave the record to the full parser
  };
  const Case cases[] = {
      {R"({"id":"a1","ts":5,"source":"s","kind":"k","session":"x","cwd":"/c","host":"h","pid":7,"payload":{"exit_code":2,"n":[1,{"exit_code":0}]}})",
       true},
      {R"( { "id" : "a2" , "ts" : -3 , "payload" : { "a" : [ 1 , "b c" ] , "exitCode":-1 } } )",
       true},
      {R"({"id":"a3","ts":1,"kind":"k","payload":{"s":"q\"}{[\\","exit_status":0,"x":{"exit_code":9}}})",
       true},
      {R"({"id":"a4","ts":1,"payload":{"exit_code":"x","exit_code":1}})", true},
      {R"({"id":"a5","ts":1,"payload":["exit_code",1]})", true},
      {R"({"id":"a6","ts":1,"payload":"text \" payload","payload_encoding":"text"})", true},
      {R"({"id":"a7","ts":1,"payload":null,"truncated":true,"orig_size":12})", true},
      {R"({"id":"a8","ts":1,"payload":{"exit_code":1e2}})", true},
      {R"({"id":"a9","ts":1,"kind":"k\u00e9"})", false},         // an escape in a stored field
      {R"({"id":"b1","ts":1.5})", false},                        // not an integer
      {R"({"id":"b2","ts":"1"})", false},                        // not a number
      {R"({"id":"b3","ts":01})", false},                         // not JSON
      {R"({"ts":1})", false},                                    // no id
      {R"({"id":"","ts":1})", false},                            // empty id
      {R"({"id":"b4","id":"b5"})", false},                       // a repeated field
      {R"({"id":"b6"}x)", false},                                // trailing bytes
      {R"({"id":"b7","payload":{"a":1})", false},                // unterminated
      {R"({"id":"b8","payload":{"exit\u005fcode":1}})", false},  // an escaped payload key
      {"not json", false},
      {"[1]", false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    store::ScannedEnvelope e;
    const bool scanned = store::ScanRecord(c.body, &e);
    CHECK(scanned == c.scanned);
    if (!scanned) continue;
    const SlowView slow = SlowRead(c.body);
    REQUIRE(slow.ok);
    CHECK(std::string(e.id) == slow.id);
    CHECK(std::string(e.kind) == slow.kind);
    CHECK(std::string(e.session) == slow.session);
    CHECK(e.ts == slow.ts);
    CHECK(e.pid == slow.pid);
    const std::string payload =
        e.payload_compact ? std::string(e.payload) : proto::CompactJson(e.payload);
    CHECK(payload == slow.payload);
    CHECK(e.payload_failure == slow.failure);
  }
}

TEST_CASE("records the scan leaves to the full parser are stored the same way", "[store]") {
  Fixture f;
  const int64_t t = NowNs();
  f.Append(R"({"id":"e1","ts":)" + std::to_string(t) +
           R"(,"source":"bash","kind":"k\u00e9","session":"s","payload":{ "exit_code" : 3 }})");
  f.Append(R"({"id":"e2","ts":)" + std::to_string(t + 1) +
           R"(,"source":"bash","kind":"k","session":"s","payload":{ "a" : [ 1, "x y" ] }})");
  StoreWriter w(f.Options(), f.progress, nullptr);
  REQUIRE(w.Open(f.journal->written_seq()).ok());
  REQUIRE(w.TEST_DrainOnce().ok());
  CHECK(w.counters().malformed.load() == 0);
  CHECK(f.Text("SELECT kind FROM events WHERE id = 'e1'") == "k\xc3\xa9");
  CHECK(f.Text("SELECT payload FROM events WHERE id = 'e1'") == R"({"exit_code":3})");
  CHECK(f.Text("SELECT payload FROM events WHERE id = 'e2'") == R"({"a":[1,"x y"]})");
  CHECK(f.Scalar("SELECT failures FROM sessions") == 1);
  CHECK(f.Text("SELECT kinds FROM sessions") == "{\"k\":1,\"k\xc3\xa9\":1}");
}

// The store parses every record the scan leaves to it into one document: its pool must not
// keep them all.
TEST_CASE("the full parser's reused document stays bounded", "[store]") {
  rapidjson::Document doc;
  std::vector<proto::PayloadSpan> spans;
  size_t peak = 0;
  for (int i = 0; i < 3000; ++i) {
    // An escaped quote in the kind sends the record to the full parser.
    const std::string body = R"({"id":"r)" + std::to_string(i) +
                             R"(","ts":1,"source":"bash","kind":"k\"q","payload":{"t":")" +
                             std::string(2000, 'x') + R"("}})";
    store::ScannedEnvelope e;
    REQUIRE_FALSE(store::ScanRecord(body, &e));
    INFO("record " << i);
    REQUIRE(store::ParseRecordSlow(body, &doc, &spans, &e));
    REQUIRE(e.id == "r" + std::to_string(i));
    peak = std::max(peak, doc.GetAllocator().Size());
  }
  CHECK(peak <= store::kKeepParsePool + (256u << 10));  // kept, it would be ~6 MB
}

TEST_CASE("store applies rows, session aggregates and cursor", "[store]") {
  Fixture f;
  const int64_t t = NowNs();
  for (int i = 0; i < 20; ++i) {
    f.AppendEvent("id" + std::to_string(i), i % 2 ? "command" : "prompt", "s1", t + i,
                  i % 4 == 1 ? R"({"exit_status":2})" : "{}");
  }
  f.AppendEvent("end1", "exit", "s1", t + 100);
  f.AppendEvent("id0", "command", "s1", t + 200);  // duplicate id
  f.Append("not json");                            // malformed: skipped, cursor moves on
  auto* slot = f.registry.Register("store", 0);
  StoreWriter w(f.Options(), f.progress, slot);
  REQUIRE(w.Open(f.journal->written_seq()).ok());
  CHECK(w.counters().rebuilding.load());
  REQUIRE(w.TEST_DrainOnce().ok());
  CHECK(w.cursor() == 23);
  CHECK(slot->cursor.load() == 23);
  CHECK_FALSE(w.counters().rebuilding.load());
  CHECK(w.counters().rows.load() == 21);
  CHECK(w.counters().duplicates.load() == 1);
  CHECK(w.counters().malformed.load() == 1);
  CHECK(f.Scalar("SELECT count(*) FROM events") == 21);
  CHECK(f.Scalar("SELECT value FROM meta WHERE key = 'cursor'") == 23);
  CHECK(f.Scalar("SELECT events FROM sessions WHERE session = 's1'") == 21);
  CHECK(f.Scalar("SELECT failures FROM sessions WHERE session = 's1'") == 5);
  CHECK(f.Scalar("SELECT first_ts FROM sessions") == t);
  CHECK(f.Scalar("SELECT last_ts FROM sessions") == t + 100);
  CHECK(f.Scalar("SELECT ended FROM sessions") == t + 100);
  CHECK(f.Text("SELECT kinds FROM sessions") == R"({"command":10,"exit":1,"prompt":10})");
  CHECK(f.Text("SELECT payload FROM events WHERE id = 'id1'") == R"({"exit_status":2})");
  CHECK(f.Text("SELECT typeof(kind) FROM events LIMIT 1") == "text");
}

TEST_CASE("store reopened resumes at its cursor and applies nothing twice", "[store]") {
  Fixture f;
  const int64_t t = NowNs();
  for (int i = 0; i < 10; ++i) f.AppendEvent("a" + std::to_string(i), "k", "s", t + i);
  {
    StoreWriter w(f.Options(), f.progress, nullptr);
    REQUIRE(w.Open(f.journal->written_seq()).ok());
    REQUIRE(w.TEST_DrainOnce().ok());
  }
  for (int i = 0; i < 5; ++i) f.AppendEvent("b" + std::to_string(i), "k", "s", t + 20 + i);
  StoreWriter w(f.Options(), f.progress, nullptr);
  REQUIRE(w.Open(f.journal->written_seq()).ok());
  CHECK(w.cursor() == 10);
  CHECK_FALSE(w.counters().rebuilding.load());
  REQUIRE(w.TEST_DrainOnce().ok());
  CHECK(w.counters().duplicates.load() == 0);
  CHECK(f.Scalar("SELECT count(*) FROM events") == 15);
  CHECK(f.Scalar("SELECT events FROM sessions") == 15);
  CHECK(f.Scalar("SELECT group_concat(seq) = '1,2,3,4,5,6,7,8,9,10,11,12,13,14,15' FROM "
                 "(SELECT seq FROM events ORDER BY seq)") == 1);
}

TEST_CASE("a damaged ferry.db is moved aside and rebuilt", "[store]") {
  Fixture f;
  for (int i = 0; i < 30; ++i) f.AppendEvent("c" + std::to_string(i), "k", "s", NowNs());
  {
    StoreWriter w(f.Options(), f.progress, nullptr);
    REQUIRE(w.Open(f.journal->written_seq()).ok());
    REQUIRE(w.TEST_DrainOnce().ok());
  }
  std::string bytes = test::ReadFile(f.dir.Join("ferry.db"));
  for (size_t i = 0; i < 100; ++i) bytes[i] = static_cast<char>(0xa5);
  test::WriteFile(f.dir.Join("ferry.db"), bytes);
  StoreWriter w(f.Options(), f.progress, nullptr);
  REQUIRE(w.Open(f.journal->written_seq()).ok());
  CHECK(w.cursor() == 0);
  CHECK(w.counters().rebuilding.load());
  REQUIRE(w.TEST_DrainOnce().ok());
  CHECK(f.Scalar("SELECT count(*) FROM events") == 30);
  bool found = false;
  for (const auto& entry : std::filesystem::directory_iterator(f.dir.path())) {
    found |= entry.path().filename().string().rfind("ferry.db.corrupt-", 0) == 0;
  }
  CHECK(found);
}

// Issue 10 #3: a store ahead of the journal (a cut tail, a lost or replaced journal) keeps
// its rows; ferryd opens the journal above its cursor, so no seq of it comes back.
TEST_CASE("a ferry.db ahead of the journal keeps its rows and says so", "[store]") {
  Fixture f;
  for (int i = 0; i < 12; ++i) f.AppendEvent("h" + std::to_string(i), "k", "s", NowNs());
  {
    StoreWriter w(f.Options(), f.progress, nullptr);
    REQUIRE(w.Open(f.journal->written_seq()).ok());
    REQUIRE(w.TEST_DrainOnce().ok());
  }
  StoreOptions o = f.Options();
  o.journal_dir = f.dir.Join("journal2");  // a fresh, empty journal
  StoreWriter w(o, f.progress, nullptr);
  REQUIRE(w.Open(9).ok());
  CHECK(w.cursor() == 12);
  CHECK(w.counters().beyond_journal.load() == 3);
  CHECK(f.Scalar("SELECT count(*) FROM events") == 12);
  bool found = false;
  for (const auto& entry : std::filesystem::directory_iterator(f.dir.path())) {
    found |= entry.path().filename().string().rfind("ferry.db.corrupt-", 0) == 0;
  }
  CHECK_FALSE(found);
  uint64_t cursor = 0;
  std::string error;
  CHECK(store::ReadCursorReadOnly(o.db_path, &cursor, &error));
  CHECK(cursor == 12);
}

// Issue 10 #13d: a ferry.db that cannot be opened for a reason other than its bytes is never
// moved aside; Open fails (the daemon retries it).
TEST_CASE("a ferry.db that cannot be opened is left alone", "[store]") {
  Fixture f;
  for (int i = 0; i < 3; ++i) f.AppendEvent("h" + std::to_string(i), "k", "s", NowNs());
  const std::string db = f.Options().db_path;
  std::filesystem::create_directory(db);  // not a file: SQLITE_CANTOPEN
  StoreWriter w(f.Options(), f.progress, nullptr);
  const Status s = w.Open(f.journal->written_seq());
  CHECK_FALSE(s.ok());
  CHECK_THAT(s.message(), Catch::StartsWith("cannot open " + db + ": "));
  CHECK(w.counters().failed.load());
  CHECK(std::filesystem::is_directory(db));
  for (const auto& entry : std::filesystem::directory_iterator(f.dir.path())) {
    CHECK(entry.path().filename().string().rfind("ferry.db.corrupt-", 0) != 0);
  }
}

TEST_CASE("events retention deletes old rows in small batches; sessions keep counts", "[store]") {
  Fixture f;
  for (int i = 0; i < 50; ++i) f.AppendEvent("r" + std::to_string(i), "k", "s", NowNs());
  StoreOptions o = f.Options();
  o.retain_rows = 10;
  o.retain_batch = 8;
  StoreWriter w(o, f.progress, nullptr);
  REQUIRE(w.Open(f.journal->written_seq()).ok());
  REQUIRE(w.TEST_DrainOnce().ok());
  CHECK(f.Scalar("SELECT count(*) FROM events") == 42);  // one batch of 8 per pass
  for (int pass = 0; pass < 10; ++pass) REQUIRE(w.TEST_DrainOnce().ok());
  CHECK(f.Scalar("SELECT count(*) FROM events") == 10);
  CHECK(f.Scalar("SELECT min(seq) FROM events") == 41);
  CHECK(w.counters().rows.load() == 10);
  CHECK(f.Scalar("SELECT events FROM sessions") == 50);
}

TEST_CASE("a session with no end event closes after the idle timeout", "[store]") {
  Fixture f;
  f.AppendEvent("old", "command", "idle", NowNs() - 3'600'000'000'000);
  f.AppendEvent("new", "command", "live", NowNs());
  StoreWriter w(f.Options(), f.progress, nullptr);
  REQUIRE(w.Open(f.journal->written_seq()).ok());
  REQUIRE(w.TEST_DrainOnce().ok());
  CHECK(f.Text("SELECT end_reason FROM sessions WHERE session = 'idle'") == "idle");
  CHECK(f.Scalar("SELECT ended IS NULL FROM sessions WHERE session = 'live'") == 1);
  // It speaks again: open once more.
  f.AppendEvent("again", "command", "idle", NowNs());
  REQUIRE(w.TEST_DrainOnce().ok());
  CHECK(f.Scalar("SELECT ended IS NULL FROM sessions WHERE session = 'idle'") == 1);
}

TEST_CASE("the store thread commits what was written before Stop and exits", "[store]") {
  Fixture f;
  auto* slot = f.registry.Register("store", 0);
  StoreOptions o = f.Options();
  o.batch_interval = std::chrono::seconds(60);  // only count or Stop can end a batch
  o.batch_events = 1000;
  StoreWriter w(o, f.progress, slot);
  REQUIRE(w.Open(f.journal->written_seq()).ok());
  w.Start();
  for (int i = 0; i < 25; ++i) f.AppendEvent("t" + std::to_string(i), "k", "s", NowNs());
  f.progress.Stop();
  w.Join();
  CHECK(w.cursor() == 25);
  CHECK(slot->cursor.load() == 25);
  CHECK(f.Scalar("SELECT count(*) FROM events") == 25);
}

TEST_CASE("the store thread batches by count while ingest runs", "[store]") {
  Fixture f;
  StoreOptions o = f.Options();
  o.batch_events = 10;
  o.batch_interval = std::chrono::milliseconds(1);
  StoreWriter w(o, f.progress, nullptr);
  REQUIRE(w.Open(f.journal->written_seq()).ok());
  w.Start();
  for (int i = 0; i < 200; ++i) f.AppendEvent("u" + std::to_string(i), "k", "s", NowNs());
  for (int guard = 0; guard < 60000 && w.counters().cursor.load() < 200; ++guard) {
    usleep(1000);
  }
  CHECK(w.counters().cursor.load() == 200);
  CHECK(w.counters().last_batch_events.load() <= 10);
  f.progress.Stop();
  w.Join();
  CHECK(f.Scalar("SELECT count(*) FROM events") == 200);
}

// The store writer holding a batch asks JournalProgress to wake it only once the records that
// fill the batch are written (or its interval ends): the io thread then owes it no wake-up for
// every flush before that.
TEST_CASE("the store thread holding a batch is woken when the batch can fill", "[store]") {
  Fixture f;
  StoreOptions o = f.Options();
  o.batch_events = 10;
  o.batch_interval = std::chrono::seconds(60);  // only a full batch (or Stop) commits
  StoreWriter w(o, f.progress, nullptr);
  REQUIRE(w.Open(f.journal->written_seq()).ok());
  w.Start();
  auto wait_for = [&](auto done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!done()) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      usleep(1000);
    }
  };
  // Idle with an empty batch: the next record wakes it (a lone event commits at once).
  wait_for([&] { return f.progress.TEST_wake_at() == 1; });
  f.AppendEvent("w1", "k", "s", NowNs());
  // The first record commits at once when the interval since the (never) last commit has
  // passed, else it is held: either way the store then waits for what fills its batch.
  uint64_t target = 0;
  wait_for([&] {
    const uint64_t at = f.progress.TEST_wake_at();
    if (at == 10) target = 10;                                   // holds w1: 9 more fill it
    if (at == 2 && w.counters().cursor.load() == 1) target = 2;  // committed w1
    return target != 0;
  });
  if (target == 2) {
    f.AppendEvent("w2", "k", "s", NowNs());
    wait_for([&] { return f.progress.TEST_wake_at() == 11; });  // holds w2: 9 more
    target = 11;
  }
  // Records short of a full batch are published with no wake-up owed to the store.
  for (uint64_t seq = f.journal->written_seq() + 1; seq < target; ++seq) {
    uint64_t appended = 0;
    REQUIRE(f.journal
                ->Append(
                    1000,
                    R"({"id":"x)" + std::to_string(seq) + R"(","ts":1,"source":"bash","kind":"k"})",
                    &appended)
                .ok());
    REQUIRE(f.journal->Flush().ok());
    REQUIRE(appended == seq);
    CHECK_FALSE(f.progress.PublishWrittenQuietly(seq));
  }
  CHECK(w.counters().cursor.load() < target);
  // The one that fills it is owed one, and the batch commits.
  uint64_t last = 0;
  REQUIRE(
      f.journal->Append(1000, R"({"id":"last","ts":1,"source":"bash","kind":"k"})", &last).ok());
  REQUIRE(f.journal->Flush().ok());
  REQUIRE(last == target);
  CHECK(f.progress.PublishWrittenQuietly(last));
  f.progress.WakeWaiters();
  wait_for([&] { return w.counters().cursor.load() == target; });
  f.progress.Stop();
  w.Join();
  CHECK(f.Scalar("SELECT count(*) FROM events") == static_cast<int64_t>(target));
}

void Exec(const std::string& db_path, const std::string& sql) {
  SQLite::Database db(db_path, SQLite::OPEN_READWRITE);
  db.exec(sql);
}

TEST_CASE("a failed commit applies nothing and is retried from the cursor", "[store]") {
  Fixture f;
  for (int i = 0; i < 10; ++i) f.AppendEvent("f" + std::to_string(i), "k", "s", NowNs());
  StoreWriter w(f.Options(), f.progress, nullptr);
  REQUIRE(w.Open(f.journal->written_seq()).ok());
  REQUIRE(w.TEST_DrainOnce().ok());
  for (int i = 10; i < 20; ++i) f.AppendEvent("f" + std::to_string(i), "k", "s", NowNs());
  Exec(f.dir.Join("ferry.db"),
       "CREATE TRIGGER fail BEFORE INSERT ON events WHEN NEW.seq = 15 "
       "BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
  Status s = w.TEST_DrainOnce();
  REQUIRE_FALSE(s.ok());
  CHECK_THAT(s.ToString(), Contains("injected failure"));
  CHECK(w.cursor() == 10);  // the batch holding seqs 11-17 rolled back whole
  CHECK(f.Scalar("SELECT count(*) FROM events") == 10);
  CHECK(f.Scalar("SELECT events FROM sessions") == 10);
  Exec(f.dir.Join("ferry.db"), "DROP TRIGGER fail");
  REQUIRE(w.TEST_DrainOnce().ok());
  CHECK(w.cursor() == 20);
  CHECK(f.Scalar("SELECT count(*) FROM events") == 20);
  CHECK(f.Scalar("SELECT events FROM sessions") == 20);
  CHECK(w.counters().duplicates.load() == 0);
}

TEST_CASE("the store thread reports a failing commit and recovers", "[store]") {
  Fixture f;
  StoreWriter w(f.Options(), f.progress, nullptr);
  REQUIRE(w.Open(f.journal->written_seq()).ok());
  Exec(
      f.dir.Join("ferry.db"),
      "CREATE TRIGGER fail BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
  w.Start();
  f.AppendEvent("g1", "k", "s", NowNs());
  for (int guard = 0; guard < 60000 && !w.counters().failed.load(); ++guard) usleep(1000);
  REQUIRE(w.counters().failed.load());
  CHECK_THAT(w.error(), Contains("disk on fire"));
  Exec(f.dir.Join("ferry.db"), "DROP TRIGGER fail");
  // The cursor moves in the commit; the failure flag clears just after it.
  for (int guard = 0;
       guard < 60000 && (w.counters().cursor.load() < 1 || w.counters().failed.load()); ++guard) {
    usleep(1000);
  }
  CHECK(w.counters().cursor.load() == 1);
  CHECK_FALSE(w.counters().failed.load());
  CHECK(w.error().empty());
  f.progress.Stop();
  w.Join();
  CHECK(f.Scalar("SELECT count(*) FROM events") == 1);
}

struct QueryResult {
  bool ok = false;
  std::string body;
  proto::Error error;
};

QueryResult RunQuery(StoreQuery& q, const std::string& request) {
  QueryResult r;
  q.RunOne(request, [&](bool ok, std::string body, proto::Error error) {
    r.ok = ok;
    r.body = std::move(body);
    r.error = std::move(error);
  });
  return r;
}

TEST_CASE("queries are read-only, capped and time-limited", "[store][query]") {
  Fixture f;
  for (int i = 0; i < 30; ++i) f.AppendEvent("q" + std::to_string(i), "k", "s", NowNs());
  StoreWriter w(f.Options(), f.progress, nullptr);
  REQUIRE(w.Open(f.journal->written_seq()).ok());
  REQUIRE(w.TEST_DrainOnce().ok());
  StoreQuery q(f.dir.Join("ferry.db"), QueryLimits{std::chrono::milliseconds(100), 20, 1u << 20});

  auto r = RunQuery(q, R"({"v":1,"sql":"SELECT seq, kind FROM events ORDER BY seq","limit":3})");
  REQUIRE(r.ok);
  CHECK(r.body.rfind(R"({"columns":["seq","kind"],"rows":[[1,"k"],[2,"k"],[3,"k"]],)", 0) == 0);
  CHECK_THAT(r.body, Contains(R"("truncated":true)"));

  r = RunQuery(q, R"({"v":1,"sql":"SELECT seq FROM events"})");
  REQUIRE(r.ok);
  CHECK_THAT(r.body, Contains(R"("row_count":20,"truncated":true,"row_cap":20)"));

  for (const char* sql : {"DELETE FROM events", "INSERT INTO meta VALUES(1,2)", "CREATE TABLE x(y)",
                          "ATTACH ':memory:' AS m", "PRAGMA query_only=0", "PRAGMA user_version=3",
                          "SELECT 1; DROP TABLE events"}) {
    CAPTURE(sql);
    r = RunQuery(q, std::string(R"({"v":1,"sql":")") + sql + "\"}");
    CHECK_FALSE(r.ok);
    CHECK(r.error.code == proto::Errc::kQueryRefused);
  }
  r = RunQuery(q, R"j({"v":1,"sql":"PRAGMA table_info(events)"})j");
  CHECK(r.ok);

  r = RunQuery(q, std::string(R"j({"v":1,"sql":"WITH RECURSIVE c(x) AS )j") +
                      R"j((SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"})j");
  CHECK_FALSE(r.ok);
  CHECK(r.error.code == proto::Errc::kQueryFailed);
  CHECK_THAT(r.error.message, Contains("time limit of 100 ms"));
  CHECK(f.Scalar("SELECT count(*) FROM events") == 30);
}

}  // namespace
}  // namespace ferry
