// Dead letters: the exact line DeadLetterLine writes (issue 10, defect 1: `received` lost its
// last digit), RedactLiteral over response bodies (defect 13a), and a Sink whose dead-letter
// fdatasync is blocked: a purge asked meanwhile is queued for the sink thread and neither it nor
// the status waits for that disk I/O (defect 10).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>

#include "daemon/base/file_seam.h"
#include "daemon/journal/journal.h"
#include "daemon/journal/progress.h"
#include "daemon/sink/encode.h"
#include "daemon/sink/sink.h"
#include "tests/unit/test_util.h"

namespace ferry {
namespace {

using namespace std::chrono_literals;
using test::TempDir;

TEST_CASE("DeadLetterLine: every field exactly, received with all its digits",
          "[sink_deadletter]") {
  const std::string id = "0123456789abcdef0123456789abcdef";
  const std::string line = DeadLetterLine(
      "2026-12-04T00:00:00.123Z", "dl", 42, &id, 1796334689144160208, 400, R"({"error":"bad"})",
      R"({"id":"0123456789abcdef0123456789abcdef","ts":1,"payload":{"i":23}})");
  CHECK(
      line ==
      R"({"time":"2026-12-04T00:00:00.123Z","sink":"dl","seq":42,"id":"0123456789abcdef0123456789abcdef",)"
      R"("status":400,"response":"{\"error\":\"bad\"}","event":{"seq":42,"received":1796334689144160208,)"
      R"("id":"0123456789abcdef0123456789abcdef","ts":1,"payload":{"i":23}}})"
      "\n");
  rapidjson::Document d;
  d.Parse(line.data(), line.size() - 1);
  REQUIRE_FALSE(d.HasParseError());
  CHECK(d["event"]["received"].GetInt64() == 1796334689144160208);
}

TEST_CASE("DeadLetterLine: no id, a body that is not an object, a long invalid response",
          "[sink_deadletter]") {
  std::string response(1500, 'x');
  response[3] = '\xff';
  const std::string line = DeadLetterLine("T", "s", 7, nullptr, -5, 422, response, "[1]");
  CHECK(line == R"({"time":"T","sink":"s","seq":7,"id":null,"status":422,"response":"xxx)"
                "\xef\xbf\xbd" +
                    std::string(1018, 'x') +
                    R"(","event":{"seq":7,"received":-5}})"
                    "\n");
  CHECK(
      DeadLetterLine("T", "s", 1, nullptr, 9, 400, "", "{}") ==
      R"({"time":"T","sink":"s","seq":1,"id":null,"status":400,"response":"","event":{"seq":1,"received":9}})"
      "\n");
}

TEST_CASE("RedactLiteral: every occurrence, and a cut excerpt ending inside the secret",
          "[sink_deadletter]") {
  std::string body =
      R"({"error":"bad token","echo":"Authorization: Bearer s3cr3t-T0KEN x s3cr3t-T0KEN"})";
  CHECK(RedactLiteral(&body, "s3cr3t-T0KEN") == 2);
  CHECK(
      body ==
      R"({"error":"bad token","echo":"Authorization: Bearer [REDACTED:token] x [REDACTED:token]"})");
  std::string cut = "Authorization: Bearer s3cr3t-T0";
  CHECK(RedactLiteral(&cut, "s3cr3t-T0KEN") == 1);
  CHECK(cut == "Authorization: Bearer [REDACTED:token]");
  std::string short_tail = "ends with s3c";  // 3 bytes: too short to mean anything
  CHECK(RedactLiteral(&short_tail, "s3cr3t-T0KEN") == 0);
  std::string none = "nothing here";
  CHECK(RedactLiteral(&none, "") == 0);
  CHECK(none == "nothing here");
}

// A POSIX file system whose fdatasync of any file under deadletter/ blocks until Release().
class BlockingDeadletterFs : public fs::FileSystem {
 public:
  int Open(const char* path, int flags, mode_t mode) override {
    const int fd = fs::FileSystem::Open(path, flags, mode);
    std::lock_guard<std::mutex> lock(mu_);
    if (fd >= 0) {
      if (std::string(path).find("/deadletter/") != std::string::npos) {
        paths_[fd] = path;
      } else {
        paths_.erase(fd);
      }
    }
    return fd;
  }
  int Fdatasync(int fd) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (paths_.count(fd) && !released_) {
      blocked_ = true;
      cv_.notify_all();
      cv_.wait(lock, [this] { return released_; });
    }
    lock.unlock();
    return fs::FileSystem::Fdatasync(fd);
  }
  bool WaitBlocked(std::chrono::seconds guard) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, guard, [this] { return blocked_; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, std::string> paths_;
  bool blocked_ = false;
  bool released_ = false;
};

// Answers every request with `response` and closes the connection.
class FixedHttpServer {
 public:
  explicit FixedHttpServer(std::string response) : response_(std::move(response)) {
    for (const char* name : {"no_proxy", "NO_PROXY"}) setenv(name, "127.0.0.1", 1);
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~FixedHttpServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/ingest"; }

 private:
  void Run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string in;
      char buf[65536];
      for (;;) {  // headers, then Content-Length bytes of body
        const size_t end = in.find("\r\n\r\n");
        if (end != std::string::npos) {
          const size_t cl = in.find("Content-Length: ");
          const size_t len = cl == std::string::npos ? 0 : std::stoul(in.substr(cl + 16));
          if (in.size() >= end + 4 + len) break;
        }
        pollfd q{c, POLLIN, 0};
        if (poll(&q, 1, 5000) <= 0) break;
        const ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
      }
      const std::string out = response_;
      (void)!write(c, out.data(), out.size());
      close(c);
    }
  }
  std::string response_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct FsGuard {
  explicit FsGuard(fs::FileSystem* f) { fs::Install(f); }
  ~FsGuard() { fs::Install(nullptr); }
  FsGuard(const FsGuard&) = delete;
  FsGuard& operator=(const FsGuard&) = delete;
};

TEST_CASE("Sink: a purge and the status do not wait for a blocked dead-letter write",
          "[sink_deadletter]") {
  TempDir dir;
  const std::string jdir = dir.Join("journal");
  std::unique_ptr<Journal> journal;
  RecoveryReport report;
  REQUIRE(Journal::Open({jdir, 1 << 20}, &journal, &report).ok());
  uint64_t seq = 0;
  REQUIRE(
      journal->Append(1796334689144160208, R"({"id":"abc","source":"t","kind":"k"})", &seq).ok());
  REQUIRE(journal->Flush().ok());
  REQUIRE(seq == 1);

  const std::string body = R"({"error":"no"})";
  FixedHttpServer server("HTTP/1.1 400 Bad Request\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  BlockingDeadletterFs blocking;
  FsGuard guard(&blocking);

  JournalProgress progress;
  progress.PublishWritten(1);
  progress.PublishShippable(1);
  ConsumerRegistry consumers;
  SinkConfig sc;
  sc.name = "b";
  sc.type = "http-json";
  sc.url = server.Url();
  sc.gzip = false;
  sc.max_events = 1;
  sc.batch_timeout = 1ms;
  SinkDeps deps;
  deps.state_dir = dir.path();
  deps.journal_dir = jdir;
  deps.progress = &progress;
  deps.consumers = &consumers;
  deps.meta.host = "h";
  deps.meta.host_id = "0123";
  deps.meta.version = "0";
  auto sink = std::make_unique<Sink>(sc, deps, nullptr);
  REQUIRE(sink->Open(1, 1).ok());
  sink->Start();
  // The 400 makes the sink dead-letter seq 1; its fdatasync blocks.
  REQUIRE(blocking.WaitBlocked(60s));

  // The io thread's side: asking for a purge and for the status must return at once.
  std::promise<std::pair<uint64_t, std::string>> purged;
  auto ask = std::async(std::launch::async, [&] {
    sink->PurgeDeadletters([&purged](uint64_t n, std::string error) {
      purged.set_value({n, std::move(error)});
    });
    rapidjson::StringBuffer sb;
    proto::JsonWriter w(sb);
    sink->WriteStatus(w, 1);
    return std::string(sb.GetString(), sb.GetSize());
  });
  const bool answered = ask.wait_for(10s) == std::future_status::ready;
  auto purged_future = purged.get_future();
  CHECK(purged_future.wait_for(0s) == std::future_status::timeout);  // not before the write
  blocking.Release();
  REQUIRE(answered);
  const std::string status = ask.get();
  CHECK(status.find(R"("name":"b")") != std::string::npos);

  // Once the write is done, the sink thread runs the purge: the one line it wrote.
  REQUIRE(purged_future.wait_for(60s) == std::future_status::ready);
  const auto [n, error] = purged_future.get();
  CHECK(n == 1);
  CHECK(error.empty());
  CHECK(sink->deadlettered() == 0);
  struct stat st {};
  CHECK(::stat(dir.Join("deadletter/b.ndjson").c_str(), &st) != 0);
  sink.reset();
}

TEST_CASE("Sink: a purge queued to a sink that never ran is answered, nothing deleted",
          "[sink_deadletter]") {
  TempDir dir;
  test::WriteFile(dir.Join("x"), "");
  JournalProgress progress;
  ConsumerRegistry consumers;
  SinkConfig sc;
  sc.name = "n";
  sc.type = "http-json";
  sc.url = "http://127.0.0.1:9/";
  SinkDeps deps;
  deps.state_dir = dir.path();
  deps.journal_dir = dir.Join("journal");
  deps.progress = &progress;
  deps.consumers = &consumers;
  auto sink = std::make_unique<Sink>(sc, deps, nullptr);
  REQUIRE(sink->Open(1, 0).ok());
  test::WriteFile(dir.Join("deadletter/n.ndjson"), "{}\n");
  uint64_t got = 99;
  std::string error;
  sink->PurgeDeadletters([&](uint64_t n, std::string e) {
    got = n;
    error = std::move(e);
  });
  sink.reset();
  CHECK(got == 0);
  CHECK(error == "the sink stopped before it could purge; nothing was deleted");
  CHECK(test::ReadFile(dir.Join("deadletter/n.ndjson")) == "{}\n");
}

}  // namespace
}  // namespace ferry
