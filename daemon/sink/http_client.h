// HttpClient: the Transport over libcurl: one libcurl easy handle, reused for keep-alive; owned by
// one sink thread. TLS verification is on unless a request turns it off (tls_verify = false),
// proxies come from the environment (http_proxy, https_proxy, no_proxy, as libcurl reads them),
// User-Agent is ferry/<version>.
//
// libcurl is not linked: LoadCurl() opens kCurlLibrary with dlopen() the first time an
// HttpClient is made (or the sink set starts its first sink), so a ferryd without http sinks
// never maps libcurl and its TLS, Kerberos and LDAP libraries (~10 MiB of RSS). If it cannot
// be loaded, every Post() fails with that reason as its transport_error (the sink keeps its
// events and retries, and its status shows the reason).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/sink/transport.h"

namespace ferry {

inline constexpr const char* kCurlLibrary = "libcurl.so.4";

// Loads libcurl and runs curl_global_init, once per process (thread-safe; libcurl >= 7.84
// initialises thread-safely, and nothing else in ferryd uses it). Returns false with *error
// (may be null) saying why it cannot be used; the answer does not change afterwards.
bool LoadCurl(std::string* error);

class HttpClient final : public Transport {
 public:
  // `abort` (may be null): when it becomes true, a request in progress ends within ~100 ms
  // with aborted = true (shutdown).
  HttpClient(std::string user_agent, const std::atomic<bool>* abort);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpResponse Post(const HttpRequest& request) override;

 private:
  void* curl_ = nullptr;   // CURL*
  void* multi_ = nullptr;  // CURLM*: drives curl_ so the abort flag is seen every 100 ms; owns
                           // the connection cache that keeps connections alive between Posts
  std::string user_agent_;
  const std::atomic<bool>* abort_;
  std::string load_error_;  // LoadCurl's reason when libcurl is unusable: every Post fails
};

// Parses a Retry-After value: delta-seconds ("120") or an IMF-fixdate / RFC 850 / asctime
// date relative to `now_unix_s`. Returns -1 ms when unparseable; a date in the past gives 0.
std::chrono::milliseconds ParseRetryAfter(std::string_view value, int64_t now_unix_s);

}  // namespace ferry
