// HttpClient: one libcurl easy handle, reused for keep-alive; owned by one sink thread.
// TLS verification is on unless a request turns it off (tls_verify = false), proxies come from the
// environment (http_proxy, https_proxy, no_proxy, as libcurl reads them), User-Agent is
// ferry/<version>. CurlGlobalInit() must run once in main() before any thread starts.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry {

void CurlGlobalInit();

struct HttpRequest {
  std::string url;
  std::string body;  // already gzipped when content_encoding is set
  std::string content_type = "application/json";
  std::string content_encoding;                              // "" or "gzip"
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, in order
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds timeout{10000};  // whole request
  bool tls_verify = true;                    // false: no certificate or host name check
  std::string ca_file;                       // "" = the system's CA bundle
};

struct HttpResponse {
  // 0 when no HTTP status was received (transport error: see transport_error).
  long status = 0;
  std::string transport_error;  // curl's message and code, e.g. "Couldn't connect to server
                                // (curl 7): Failed to connect to 127.0.0.1 port 9: ..."
  bool timed_out = false;       // CURLE_OPERATION_TIMEDOUT
  bool aborted = false;         // the abort flag was raised mid-request
  std::string body_excerpt;     // the first 1024 bytes of the response body
  // The Retry-After header parsed into a delay from now (seconds or an HTTP date); -1 when
  // absent or unparseable.
  std::chrono::milliseconds retry_after{-1};
  std::chrono::microseconds elapsed{0};
};

class HttpClient {
 public:
  // `abort` (may be null): when it becomes true, a request in progress ends within ~100 ms
  // with aborted = true (shutdown).
  HttpClient(std::string user_agent, const std::atomic<bool>* abort);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpResponse Post(const HttpRequest& request);

 private:
  void* curl_ = nullptr;   // CURL*
  void* multi_ = nullptr;  // CURLM*: drives curl_ so the abort flag is seen every 100 ms; owns
                           // the connection cache that keeps connections alive between Posts
  std::string user_agent_;
  const std::atomic<bool>* abort_;
};

// Parses a Retry-After value: delta-seconds ("120") or an IMF-fixdate / RFC 850 / asctime
// date relative to `now_unix_s`. Returns -1 ms when unparseable; a date in the past gives 0.
std::chrono::milliseconds ParseRetryAfter(std::string_view value, int64_t now_unix_s);

}  // namespace ferry
