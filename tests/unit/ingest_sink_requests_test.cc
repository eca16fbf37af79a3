// FLUSH_REQ and DEADLETTER_REQ through a real IngestServer: the request reaches the handler
// parsed, the reply it gives later (on the io thread) goes out in request order, and a
// connection owed such a reply is not closed as idle meanwhile.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "daemon/ingest/server.h"
#include "daemon/journal/committer.h"
#include "daemon/journal/journal.h"
#include "proto/frame.h"
#include "proto/messages.h"
#include "tests/unit/test_util.h"

namespace ferry {
namespace {

using namespace std::chrono_literals;
using proto::FrameType;
using test::Readable;
using test::ReceiveFrame;
using test::SendBytes;
using test::SendFrame;

constexpr auto kIdle = 100ms;

class Harness {
 public:
  Harness() {
    test::OpenTestJournal(dir_.Join("journal"), &journal_, &committer_);
    IngestLimits limits;
    limits.idle_timeout = kIdle;
    server_ = std::make_unique<IngestServer>(io_, limits, *journal_, *committer_,
                                             [] { return std::string(R"({"healthy":true})"); });
    REQUIRE(server_->Listen(dir_.Join("run/s.sock")).ok());
  }

  ~Harness() {
    if (thread_.joinable()) {
      net::post(io_, [this] { server_->BeginShutdown(200ms, [] {}); });
      thread_.join();
    }
    Status stopped = committer_->Stop();
    CHECK(stopped.ok());
    flush_replies.clear();  // they hold sessions, whose sockets belong to io_
    deadletter_replies.clear();
  }

  void Start() {
    server_->Start();
    thread_ = std::thread([this] { io_.run(); });
  }

  // Runs `fn` on the io thread and waits for it.
  void OnIo(std::function<void()> fn) {
    std::promise<void> done;
    net::post(io_, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

  int Connect() {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = dir_.Join("run/s.sock");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    return fd;
  }

  IngestServer& server() { return *server_; }

  std::vector<proto::FlushRequest> flush_requests;  // io thread only
  std::vector<std::function<void(std::string)>> flush_replies;
  std::vector<proto::DeadletterRequest> deadletter_requests;
  std::vector<std::function<void(std::string)>> deadletter_replies;

 private:
  test::TempDir dir_;
  net::io_context io_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<JournalCommitter> committer_;
  std::unique_ptr<IngestServer> server_;
  std::thread thread_;
};

void ExpectFrame(int fd, FrameType type, const std::string& body) {
  FrameType got;
  std::string got_body;
  REQUIRE(ReceiveFrame(fd, &got, &got_body));
  CHECK(proto::FrameTypeName(got) == std::string(proto::FrameTypeName(type)));
  CHECK(got_body == body);
}

TEST_CASE("a FLUSH_REQ answered late keeps its connection and its place in line",
          "[ingest][sinks]") {
  Harness h;
  h.server().SetFlushHandler(
      [&h](proto::FlushRequest request, std::function<void(std::string)> reply) {
        h.flush_requests.push_back(std::move(request));
        h.flush_replies.push_back(std::move(reply));
      });
  h.Start();
  const int fd = h.Connect();
  SendFrame(fd, FrameType::kFlushReq,
            proto::MakeFlushRequestBody({"central", /*wait=*/true, /*timeout_ms=*/60000}));
  SendFrame(fd, FrameType::kStatusReq, proto::MakeStatusRequestBody());
  // Several idle timeouts go by: the reply is owed, so the connection is not idle, and the
  // STATUS waits behind it.
  CHECK_FALSE(Readable(fd, kIdle * 5));
  const std::string result =
      R"({"target_seq":0,"done":true,"timed_out":false,"sinks":[{"name":"central","cursor":0,)"
      R"("caught_up":true,"state":"idle","error":null}]})";
  h.OnIo([&] {
    REQUIRE(h.flush_requests.size() == 1);
    CHECK(h.flush_requests[0].sink == "central");
    CHECK(h.flush_requests[0].wait);
    CHECK(h.flush_requests[0].timeout_ms == 60000);
    h.flush_replies[0](proto::EncodeFrame(FrameType::kFlushResult, result));
    h.flush_replies[0](proto::EncodeFrame(FrameType::kFlushResult, "{}"));  // ignored
  });
  ExpectFrame(fd, FrameType::kFlushResult, result);
  ExpectFrame(fd, FrameType::kStatus, R"({"healthy":true})");
  // Nothing owed any more: now the idle timeout applies.
  FrameType type;
  std::string body;
  REQUIRE(ReceiveFrame(fd, &type, &body));
  CHECK(type == FrameType::kError);
  CHECK(body.find("\"idle_timeout\"") != std::string::npos);
  CHECK_FALSE(ReceiveFrame(fd, &type, &body));
  ::close(fd);
}

TEST_CASE("DEADLETTER_REQ reaches its handler parsed and bad bodies do not", "[ingest][sinks]") {
  Harness h;
  h.server().SetDeadletterHandler(
      [&h](proto::DeadletterRequest request, std::function<void(std::string)> reply) {
        h.deadletter_requests.push_back(std::move(request));
        reply(proto::EncodeFrame(FrameType::kDeadletterResult,
                                 R"({"op":"replay","sinks":[{"name":"central","queued":3}]})"));
      });
  h.Start();
  const int fd = h.Connect();
  SendFrame(fd, FrameType::kDeadletterReq, R"({"v":1,"op":"forget"})");
  ExpectFrame(fd, FrameType::kError,
              proto::MakeErrorBody(
                  {proto::Errc::kBadValue, R"(op must be "list", "replay" or "purge")"}, false));
  // Answered at once, from inside the handler call.
  SendFrame(fd, FrameType::kDeadletterReq, proto::MakeDeadletterRequestBody({"replay", "central"}));
  ExpectFrame(fd, FrameType::kDeadletterResult,
              R"({"op":"replay","sinks":[{"name":"central","queued":3}]})");
  h.OnIo([&] {
    REQUIRE(h.deadletter_requests.size() == 1);
    CHECK(h.deadletter_requests[0].op == "replay");
    CHECK(h.deadletter_requests[0].sink == "central");
  });
  ::close(fd);
}

TEST_CASE("a reply owed to a connection that went away or left empty", "[ingest][sinks]") {
  Harness h;
  h.server().SetFlushHandler(
      [&h](proto::FlushRequest request, std::function<void(std::string)> reply) {
        h.flush_requests.push_back(std::move(request));
        h.flush_replies.push_back(std::move(reply));
      });
  h.Start();
  auto wait_for_requests = [&h](size_t want) {
    for (;;) {  // poll the io thread (hang guard: ctest's timeout)
      size_t n = 0;
      h.OnIo([&] { n = h.flush_replies.size(); });
      if (n == want) return;
      std::this_thread::sleep_for(1ms);
    }
  };
  // The client hangs up before the answer: the late reply goes nowhere, harmlessly.
  int fd = h.Connect();
  SendFrame(fd, FrameType::kFlushReq, proto::MakeFlushRequestBody({}));
  ::close(fd);
  wait_for_requests(1);
  fd = h.Connect();
  SendFrame(fd, FrameType::kFlushReq, proto::MakeFlushRequestBody({}));
  wait_for_requests(2);
  h.OnIo([&] {
    h.flush_replies[0](proto::EncodeFrame(FrameType::kFlushResult, "{}"));
    h.flush_replies[1]("");  // a bug of the owner: the client still gets an answer
  });
  ExpectFrame(
      fd, FrameType::kError,
      proto::MakeErrorBody({proto::Errc::kInternal, "ferryd produced no FLUSH_RESULT"}, false));
  ::close(fd);
}

}  // namespace
}  // namespace ferry
