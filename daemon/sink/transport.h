// Transport: how a sink hands one request to its upstream and gets the answer. The real one
// is HttpClient (libcurl); tests script responses with a fake. One Transport belongs to one
// sink thread, which alone calls Post. Post never throws: every failure is a response with
// status 0 and transport_error set (or aborted when the sink is stopping).
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace ferry {

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

class Transport {
 public:
  virtual ~Transport() = default;
  virtual HttpResponse Post(const HttpRequest& request) = 0;
};

}  // namespace ferry
