#include "daemon/sink/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/sink/encode.h"

namespace ferry {
namespace {

using std::chrono::milliseconds;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// libcurl takes proxies from the environment (as ferryd wants); a CI runner's http_proxy must
// not carry the requests meant for the loopback server. Set before any request starts.
void BypassProxies() {
  for (const char* name : {"no_proxy", "NO_PROXY"}) {
    const char* old = getenv(name);
    std::string value = old == nullptr || *old == '\0' ? "" : std::string(old) + ",";
    if (value.find("127.0.0.1,") == std::string::npos)
      setenv(name, (value + "127.0.0.1").c_str(), 1);
  }
}

// One request as the loopback server read it.
struct SeenRequest {
  std::string request_line;
  std::multimap<std::string, std::string> headers;  // names in lower case
  std::string body;
  int connection = 0;  // which accepted connection (1, 2, ...) it came on

  bool Has(const std::string& name) const { return headers.count(name) != 0; }
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// A real HTTP/1.1 server on 127.0.0.1:<ephemeral>, on its own thread: it reads requests
// (with Content-Length bodies), keeps connections alive, and answers each with whatever
// `respond` returns, raw; an empty answer means "never answer" (the connection stays open).
class LoopbackServer {
 public:
  using Responder = std::function<std::string(const SeenRequest&)>;

  explicit LoopbackServer(Responder respond) : respond_(std::move(respond)) {
    BypassProxies();
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    REQUIRE(listen_fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(listen_fd_, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }

  ~LoopbackServer() {
    stop_ = true;
    thread_.join();
    for (auto& c : connections_) close(c.fd);
    close(listen_fd_);
  }

  std::string Url(const std::string& path = "/ingest") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  int accepts() const {
    std::lock_guard lock(mu_);
    return accepts_;
  }

  std::vector<SeenRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  struct Connection {
    int fd;
    int number;
    std::string in;
  };

  void Run() {
    while (!stop_) {
      std::vector<pollfd> fds;
      fds.push_back({listen_fd_, POLLIN, 0});
      for (const auto& c : connections_) fds.push_back({c.fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
          std::lock_guard lock(mu_);
          connections_.push_back({fd, ++accepts_, {}});
        }
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        Connection& c = connections_[i - 1];
        char buf[65536];
        const ssize_t n = read(c.fd, buf, sizeof buf);
        if (n <= 0) {
          close(c.fd);
          c.fd = -1;
          continue;
        }
        c.in.append(buf, static_cast<size_t>(n));
        while (HandleOne(c)) {
        }
      }
      connections_.erase(std::remove_if(connections_.begin(), connections_.end(),
                                        [](const Connection& c) { return c.fd < 0; }),
                         connections_.end());
    }
  }

  // Takes one complete request off c.in and answers it; false when none is complete yet.
  bool HandleOne(Connection& c) {
    if (c.fd < 0) return false;
    const size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    SeenRequest req;
    req.connection = c.number;
    size_t pos = c.in.find("\r\n");
    req.request_line = c.in.substr(0, pos);
    while (pos < end) {
      const size_t next = c.in.find("\r\n", pos + 2);
      const std::string line = c.in.substr(pos + 2, next - pos - 2);
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        req.headers.emplace(Lower(line.substr(0, colon)), value);
      }
      pos = next;
    }
    const size_t length = req.Has("content-length") ? std::stoul(req.Header("content-length")) : 0;
    if (c.in.size() < end + 4 + length) return false;
    req.body = c.in.substr(end + 4, length);
    c.in.erase(0, end + 4 + length);
    const std::string answer = respond_(req);
    {
      std::lock_guard lock(mu_);
      requests_.push_back(req);
    }
    size_t sent = 0;
    while (sent < answer.size()) {
      const ssize_t n = write(c.fd, answer.data() + sent, answer.size() - sent);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    if (answer.find("Connection: close") != std::string::npos) {
      close(c.fd);
      c.fd = -1;
      return false;
    }
    return true;
  }

  Responder respond_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<Connection> connections_;  // server thread only
  mutable std::mutex mu_;
  int accepts_ = 0;
  std::vector<SeenRequest> requests_;
};

std::string Response(int status, const std::string& reason, const std::string& body,
                     const std::string& extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nContent-Type: text/plain\r\n" +
         extra_headers + "\r\n" + body;
}

HttpRequest Request(const std::string& url, const std::string& body) {
  HttpRequest r;
  r.url = url;
  r.body = body;
  r.headers = {{"Idempotency-Key", "ferry-central-abc-1-3"}, {"X-Team", "infra"}};
  r.timeout = milliseconds(20000);
  r.connect_timeout = milliseconds(20000);
  return r;
}

TEST_CASE("ParseRetryAfter", "[http_client]") {
  const int64_t now = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
  CHECK(ParseRetryAfter("120", now) == milliseconds(120000));
  CHECK(ParseRetryAfter(" 3 ", now) == milliseconds(3000));
  CHECK(ParseRetryAfter("0", now) == milliseconds(0));
  CHECK(ParseRetryAfter("Sun, 06 Nov 1994 08:49:47 GMT", now) == milliseconds(10000));
  CHECK(ParseRetryAfter("Sunday, 06-Nov-94 08:50:37 GMT", now) == milliseconds(60000));
  CHECK(ParseRetryAfter("Sun Nov  6 08:49:40 1994", now) == milliseconds(3000));
  CHECK(ParseRetryAfter("Sun, 06 Nov 1994 08:00:00 GMT", now) == milliseconds(0));  // past
  CHECK(ParseRetryAfter("Thu, 01 Jan 1970 00:00:00 GMT", now) == milliseconds(0));
  CHECK(ParseRetryAfter("", now) == milliseconds(-1));
  CHECK(ParseRetryAfter("soon", now) == milliseconds(-1));
  CHECK(ParseRetryAfter("-5", now) == milliseconds(-1));
  CHECK(ParseRetryAfter("1.5", now) == milliseconds(-1));
  CHECK(ParseRetryAfter("12abc", now) == milliseconds(-1));
  CHECK(ParseRetryAfter("Sun, 06 Nov 1994 08:49:47 GMT trailing", now) == milliseconds(-1));
  CHECK(ParseRetryAfter("99999999999999999999999", now) > milliseconds(0));  // no overflow
}

TEST_CASE("HttpClient: 200 with a body, headers as sent", "[http_client]") {
  LoopbackServer server([](const SeenRequest&) { return Response(200, "OK", "accepted"); });
  HttpClient client("ferry/0.1.0", nullptr);
  HttpRequest req = Request(server.Url(), R"({"format":"ferry.batch.v1"})");
  const HttpResponse r = client.Post(req);
  INFO(r.transport_error);
  CHECK(r.status == 200);
  CHECK(r.transport_error.empty());
  CHECK_FALSE(r.timed_out);
  CHECK_FALSE(r.aborted);
  CHECK(r.body_excerpt == "accepted");
  CHECK(r.retry_after == milliseconds(-1));
  CHECK(r.elapsed.count() > 0);
  const auto seen = server.requests();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].request_line == "POST /ingest HTTP/1.1");
  CHECK(seen[0].body == req.body);
  CHECK(seen[0].Header("content-type") == "application/json");
  CHECK(seen[0].Header("user-agent") == "ferry/0.1.0");
  CHECK(seen[0].Header("idempotency-key") == "ferry-central-abc-1-3");
  CHECK(seen[0].Header("x-team") == "infra");
  CHECK_FALSE(seen[0].Has("expect"));
  CHECK_FALSE(seen[0].Has("content-encoding"));
}

TEST_CASE("HttpClient: only the first 1024 bytes of a long body are kept", "[http_client]") {
  const std::string big(100000, 'b');
  LoopbackServer server([&](const SeenRequest&) { return Response(400, "Bad Request", big); });
  HttpClient client("ferry/0.1.0", nullptr);
  const HttpResponse r = client.Post(Request(server.Url(), "{}"));
  CHECK(r.status == 400);
  CHECK(r.body_excerpt == big.substr(0, 1024));
  // The rest was read: the connection is still good for the next request.
  const HttpResponse r2 = client.Post(Request(server.Url(), "{}"));
  CHECK(r2.status == 400);
  CHECK(server.accepts() == 1);
}

TEST_CASE("HttpClient: 429 with Retry-After seconds, 503 with a date", "[http_client]") {
  const std::string date = [] {
    const time_t when = time(nullptr) + 120;
    struct tm tm;
    gmtime_r(&when, &tm);
    char buf[64];
    strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return std::string(buf);
  }();
  std::atomic<int> n{0};
  LoopbackServer server([&](const SeenRequest&) {
    return ++n == 1 ? Response(429, "Too Many Requests", "slow down", "Retry-After: 3\r\n")
                    : Response(503, "Service Unavailable", "", "rEtRy-AfTeR: " + date + "\r\n");
  });
  HttpClient client("ferry/0.1.0", nullptr);
  const HttpResponse r1 = client.Post(Request(server.Url(), "{}"));
  CHECK(r1.status == 429);
  CHECK(r1.retry_after == milliseconds(3000));
  CHECK(r1.body_excerpt == "slow down");
  const HttpResponse r2 = client.Post(Request(server.Url(), "{}"));
  CHECK(r2.status == 503);
  CHECK(r2.retry_after >= milliseconds(100000));
  CHECK(r2.retry_after <= milliseconds(121000));
  // Nothing carries over from the last response.
  LoopbackServer plain([](const SeenRequest&) { return Response(503, "Unavailable", ""); });
  const HttpResponse r3 = client.Post(Request(plain.Url(), "{}"));
  CHECK(r3.status == 503);
  CHECK(r3.retry_after == milliseconds(-1));
  CHECK(r3.body_excerpt.empty());
}

TEST_CASE("HttpClient: connection refused", "[http_client]") {
  BypassProxies();
  // A port that was just free: bound, never listened on, closed.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  close(fd);
  HttpClient client("ferry/0.1.0", nullptr);
  const HttpResponse r =
      client.Post(Request("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/", "{}"));
  CHECK(r.status == 0);
  CHECK_FALSE(r.timed_out);
  CHECK_FALSE(r.aborted);
  INFO(r.transport_error);
  CHECK(r.transport_error.find("(curl 7)") != std::string::npos);
  CHECK(r.transport_error.find("127.0.0.1") != std::string::npos);  // the error buffer's detail
}

TEST_CASE("HttpClient: a server that never answers times out", "[http_client]") {
  LoopbackServer server([](const SeenRequest&) { return std::string(); });
  HttpClient client("ferry/0.1.0", nullptr);
  HttpRequest req = Request(server.Url(), "{}");
  req.timeout = milliseconds(300);
  const HttpResponse r = client.Post(req);
  CHECK(r.status == 0);
  CHECK(r.timed_out);
  CHECK_FALSE(r.aborted);
  CHECK(r.transport_error.find("(curl 28)") != std::string::npos);
  CHECK(r.elapsed >= milliseconds(250));
  CHECK(r.elapsed < milliseconds(10000));
}

TEST_CASE("HttpClient: the abort flag ends a request in progress", "[http_client]") {
  LoopbackServer server([](const SeenRequest&) { return std::string(); });
  std::atomic<bool> abort{false};
  HttpClient client("ferry/0.1.0", &abort);
  std::thread raiser([&] {
    std::this_thread::sleep_for(milliseconds(300));
    abort = true;
  });
  const auto start = std::chrono::steady_clock::now();
  const HttpResponse r = client.Post(Request(server.Url(), "{}"));  // 20 s timeout
  const auto took = std::chrono::steady_clock::now() - start;
  raiser.join();
  CHECK(r.aborted);
  CHECK(r.status == 0);
  CHECK_FALSE(r.timed_out);
  CHECK_FALSE(r.transport_error.empty());
  CHECK(took < milliseconds(5000));
  // Raised before the request: nothing is sent.
  const HttpResponse r2 = client.Post(Request(server.Url(), "{}"));
  CHECK(r2.aborted);
}

TEST_CASE("HttpClient: a gzip body arrives with Content-Encoding: gzip", "[http_client]") {
  LoopbackServer server([](const SeenRequest&) { return Response(200, "OK", ""); });
  HttpClient client("ferry/0.1.0", nullptr);
  std::string json;
  for (int i = 0; i < 20000; ++i) json += R"({"seq":)" + std::to_string(i) + "},";
  HttpRequest req = Request(server.Url(), "");
  REQUIRE(Gzip(json, &req.body));
  req.content_encoding = "gzip";
  const HttpResponse r = client.Post(req);
  CHECK(r.status == 200);
  const auto seen = server.requests();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].Header("content-encoding") == "gzip");
  CHECK(seen[0].Header("content-length") == std::to_string(req.body.size()));
  CHECK_FALSE(seen[0].Has("expect"));  // no 100-continue even for a large body
  std::string back;
  REQUIRE(Gunzip(seen[0].body, &back));
  CHECK(back == json);
}

TEST_CASE("HttpClient: an empty body and an empty header value", "[http_client]") {
  LoopbackServer server([](const SeenRequest&) { return Response(204, "No Content", ""); });
  HttpClient client("ferry/0.1.0", nullptr);
  HttpRequest req = Request(server.Url(), "");
  req.headers.emplace_back("X-Empty", "");
  const HttpResponse r = client.Post(req);
  CHECK(r.status == 204);
  const auto seen = server.requests();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].Header("content-length") == "0");
  CHECK(seen[0].Has("x-empty"));
  CHECK(seen[0].Header("x-empty").empty());
}

TEST_CASE("HttpClient: keep-alive reuses one connection", "[http_client]") {
  LoopbackServer server([](const SeenRequest&) { return Response(200, "OK", "ok"); });
  HttpClient client("ferry/0.1.0", nullptr);
  CHECK(client.Post(Request(server.Url(), "one")).status == 200);
  CHECK(client.Post(Request(server.Url(), "two")).status == 200);
  CHECK(server.accepts() == 1);
  const auto seen = server.requests();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].body == "one");
  CHECK(seen[1].body == "two");
  CHECK(seen[0].connection == seen[1].connection);
}

TEST_CASE("HttpClient: a closed connection is replaced", "[http_client]") {
  LoopbackServer server(
      [](const SeenRequest&) { return Response(200, "OK", "ok", "Connection: close\r\n"); });
  HttpClient client("ferry/0.1.0", nullptr);
  CHECK(client.Post(Request(server.Url(), "one")).status == 200);
  CHECK(client.Post(Request(server.Url(), "two")).status == 200);
  CHECK(server.accepts() == 2);
}

}  // namespace
}  // namespace ferry
