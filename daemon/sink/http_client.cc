#include "daemon/sink/http_client.h"

// The declarations only: libcurl is loaded at run time (LoadCurl), not linked.
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
#include <dlfcn.h>
#include <locale.h>
#include <time.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <memory>
#include <mutex>

namespace ferry {
namespace {

// libcurl's functions, looked up in the library LoadCurl() opened. Filled once, then read-only.
// clang-format off
#define FERRY_CURL_FUNCTIONS(X)                                                        \
  X(global_init) X(easy_init) X(easy_cleanup) X(easy_getinfo) X(easy_setopt)          \
  X(easy_strerror) X(multi_add_handle) X(multi_cleanup) X(multi_info_read)            \
  X(multi_init) X(multi_perform) X(multi_poll) X(multi_remove_handle)                 \
  X(multi_strerror) X(slist_append) X(slist_free_all)
// clang-format on

struct CurlApi {
#define FERRY_CURL_MEMBER(name) decltype(&::curl_##name) name = nullptr;
  FERRY_CURL_FUNCTIONS(FERRY_CURL_MEMBER)
#undef FERRY_CURL_MEMBER
};

CurlApi g_curl;
std::string g_curl_error;  // why LoadCurl failed; empty once it succeeded
std::once_flag g_curl_once;

// Only after LoadCurl() returned true (HttpClient holds no handles otherwise).
const CurlApi& Curl() { return g_curl; }

void LoadCurlOnce() {
  void* lib = ::dlopen(kCurlLibrary, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = ::dlerror();
    g_curl_error = std::string("cannot load ") + kCurlLibrary + " (" + (why ? why : "unknown") +
                   "); http sinks need libcurl 4 (Debian/Ubuntu: libcurl4, Fedora: libcurl)";
    return;
  }
  CurlApi api;
  std::string missing;
#define FERRY_CURL_LOOKUP(name)                                                 \
  api.name = reinterpret_cast<decltype(api.name)>(::dlsym(lib, "curl_" #name)); \
  if (api.name == nullptr) missing += std::string(missing.empty() ? "" : ", ") + "curl_" #name;
  FERRY_CURL_FUNCTIONS(FERRY_CURL_LOOKUP)
#undef FERRY_CURL_LOOKUP
  if (!missing.empty()) {
    g_curl_error = std::string(kCurlLibrary) + " lacks " + missing +
                   " (ferryd needs libcurl 7.66 or later); http sinks cannot send";
    return;  // the library stays loaded: unloading what may hold state is not worth it
  }
  if (const CURLcode rc = api.global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK) {
    g_curl_error = std::string("curl_global_init failed (curl ") +
                   std::to_string(static_cast<int>(rc)) + "); http sinks cannot send";
    return;
  }
  g_curl = api;
}

constexpr size_t kBodyExcerptMax = 1024;
// How long the transfer loop waits on its sockets before it looks at the abort flag again.
constexpr int kAbortPollMs = 100;

// What the callbacks of one request fill in.
struct Transfer {
  const std::atomic<bool>* abort = nullptr;
  std::string* body_excerpt = nullptr;
  std::string retry_after;
  bool has_retry_after = false;
};

bool AbortRaised(const std::atomic<bool>* abort) {
  return abort != nullptr && abort->load(std::memory_order_relaxed);
}

size_t OnBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * nmemb;
  if (t->body_excerpt->size() < kBodyExcerptMax) {
    t->body_excerpt->append(data, std::min(n, kBodyExcerptMax - t->body_excerpt->size()));
  }
  return n;  // the rest is read and dropped, so the connection stays usable
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i]))) {
      return false;
    }
  }
  return true;
}

size_t OnHeader(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * nmemb;
  const std::string_view line(data, n);
  if (StartsWithNoCase(line, "HTTP/")) {
    // A new response starts (after a 1xx): only the final response's headers count.
    t->retry_after.clear();
    t->has_retry_after = false;
  } else if (StartsWithNoCase(line, "retry-after:")) {
    t->retry_after = std::string(Trim(line.substr(12)));
    t->has_retry_after = true;
  }
  return n;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return AbortRaised(static_cast<Transfer*>(user)->abort) ? 1 : 0;  // 1: CURLE_ABORTED_BY_CALLBACK
}

// "Name: value", with CR and LF (which would start another header) replaced by spaces. An
// empty value is written "Name;", libcurl's way to send a header with no value.
std::string HeaderLine(std::string_view name, std::string_view value) {
  std::string line(name);
  if (value.empty()) {
    line.push_back(';');
  } else {
    line.append(": ");
    line.append(value);
  }
  std::replace_if(
      line.begin(), line.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
  return line;
}

struct SlistDeleter {
  void operator()(curl_slist* l) const { Curl().slist_free_all(l); }
};

locale_t CLocale() {
  static const locale_t c = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(nullptr));
  return c;
}

}  // namespace

bool LoadCurl(std::string* error) {
  std::call_once(g_curl_once, LoadCurlOnce);
  if (!g_curl_error.empty()) {
    if (error != nullptr) *error = g_curl_error;
    return false;
  }
  return true;
}

HttpClient::HttpClient(std::string user_agent, const std::atomic<bool>* abort)
    : user_agent_(std::move(user_agent)), abort_(abort) {
  if (!LoadCurl(&load_error_)) return;
  curl_ = Curl().easy_init();
  multi_ = Curl().multi_init();
}

HttpClient::~HttpClient() {
  if (curl_ != nullptr) Curl().easy_cleanup(static_cast<CURL*>(curl_));
  if (multi_ != nullptr) Curl().multi_cleanup(static_cast<CURLM*>(multi_));
}

HttpResponse HttpClient::Post(const HttpRequest& request) {
  HttpResponse response;
  const auto start = std::chrono::steady_clock::now();
  auto finish = [&]() -> HttpResponse {
    response.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
    return std::move(response);
  };
  CURL* curl = static_cast<CURL*>(curl_);
  CURLM* multi = static_cast<CURLM*>(multi_);
  if (!load_error_.empty()) {
    response.transport_error = load_error_;
    return finish();
  }
  if (curl == nullptr || multi == nullptr) {
    response.transport_error = "curl_easy_init or curl_multi_init failed";
    return finish();
  }
  if (AbortRaised(abort_)) {
    response.aborted = true;
    response.transport_error = "aborted before the request started";
    return finish();
  }

  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add_header = [&](const std::string& line) {
    curl_slist* l = Curl().slist_append(headers.get(), line.c_str());
    if (l != nullptr) {
      headers.release();
      headers.reset(l);
    }
  };
  add_header(HeaderLine("Content-Type", request.content_type));
  if (!request.content_encoding.empty()) {
    add_header(HeaderLine("Content-Encoding", request.content_encoding));
  }
  add_header("Expect:");  // no "100-continue" round trip before large bodies
  for (const auto& [name, value] : request.headers) add_header(HeaderLine(name, value));

  Transfer transfer;
  transfer.abort = abort_;
  transfer.body_excerpt = &response.body_excerpt;
  char error_buffer[CURL_ERROR_SIZE] = {};

  // Every option is set on every request, so nothing of the last one carries over; the multi
  // handle keeps the connection cache, so a connection the server keeps alive is reused.
  Curl().easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  Curl().easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  Curl().easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  Curl().easy_setopt(curl, CURLOPT_USERAGENT, user_agent_.c_str());
  Curl().easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  Curl().easy_setopt(curl, CURLOPT_POST, 1L);
  Curl().easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
  Curl().easy_setopt(curl, CURLOPT_POSTFIELDS, request.body.data());
  Curl().easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  Curl().easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::max<int64_t>(request.connect_timeout.count(), 1)));
  Curl().easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(std::max<int64_t>(request.timeout.count(), 1)));
  Curl().easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  Curl().easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  Curl().easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  Curl().easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  Curl().easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  Curl().easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, OnProgress);
  Curl().easy_setopt(curl, CURLOPT_XFERINFODATA, &transfer);
  Curl().easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  Curl().easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, request.tls_verify ? 1L : 0L);
  Curl().easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, request.tls_verify ? 2L : 0L);
  Curl().easy_setopt(curl, CURLOPT_CAINFO,
                     request.ca_file.empty() ? nullptr : request.ca_file.c_str());
  // TLS verification (CURLOPT_SSL_VERIFYPEER/VERIFYHOST) is libcurl's default, on, unless the
  // sink opted out explicitly (shown in status and --check-config). The handle is reused, so
  // every option is set on every request. Proxies
  // come from http_proxy/https_proxy/no_proxy, which libcurl reads when CURLOPT_PROXY is unset.

  // curl_easy_perform() would call OnProgress only about once a second while the server is
  // silent; this loop looks at the abort flag every kAbortPollMs. Removing the handle
  // mid-transfer closes its connection.
  CURLcode rc = CURLE_OK;
  std::string multi_error;
  bool aborted_by_flag = false;
  if (const CURLMcode mc = Curl().multi_add_handle(multi, curl); mc != CURLM_OK) {
    multi_error = Curl().multi_strerror(mc);
  } else {
    while (true) {
      int running = 0;
      CURLMcode mc2 = Curl().multi_perform(multi, &running);
      if (mc2 == CURLM_OK && running == 0) break;
      if (mc2 == CURLM_OK && AbortRaised(abort_)) {
        aborted_by_flag = true;
        break;
      }
      if (mc2 == CURLM_OK) mc2 = Curl().multi_poll(multi, nullptr, 0, kAbortPollMs, nullptr);
      if (mc2 != CURLM_OK) {
        multi_error = Curl().multi_strerror(mc2);
        break;
      }
    }
    if (!aborted_by_flag && multi_error.empty()) {
      bool found = false;
      int left = 0;
      while (CURLMsg* msg = Curl().multi_info_read(multi, &left)) {
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == curl) {
          rc = msg->data.result;
          found = true;
        }
      }
      if (!found) multi_error = "the transfer ended without a result";
    }
    Curl().multi_remove_handle(multi, curl);
  }

  // The handle must not point at this frame's buffers after it returns.
  Curl().easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  Curl().easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  Curl().easy_setopt(curl, CURLOPT_POSTFIELDS, nullptr);

  if (aborted_by_flag) {
    response.aborted = true;
    response.transport_error = "aborted: ferryd is stopping";
  } else if (!multi_error.empty()) {
    response.transport_error = "libcurl: " + multi_error;
  } else if (rc == CURLE_OK) {
    long status = 0;
    Curl().easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    response.status = status;
    if (transfer.has_retry_after) {
      response.retry_after =
          ParseRetryAfter(transfer.retry_after, static_cast<int64_t>(time(nullptr)));
    }
  } else {
    // A transfer that failed part way (even after a status line) counts as not answered: the
    // sink sends it again, and the Idempotency-Key makes that safe.
    response.status = 0;
    response.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    response.aborted = rc == CURLE_ABORTED_BY_CALLBACK;
    response.transport_error = std::string(Curl().easy_strerror(rc)) + " (curl " +
                               std::to_string(static_cast<int>(rc)) + ")";
    if (error_buffer[0] != '\0') {
      response.transport_error += ": ";
      response.transport_error += error_buffer;
    }
  }
  return finish();
}

std::chrono::milliseconds ParseRetryAfter(std::string_view value, int64_t now_unix_s) {
  using std::chrono::milliseconds;
  value = Trim(value);
  if (value.empty()) return milliseconds(-1);
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    // delta-seconds; anything beyond ~31,000 years is as good as forever.
    constexpr int64_t kMaxSeconds = 1'000'000'000'000;
    int64_t seconds = 0;
    for (const char c : value) {
      seconds = seconds * 10 + (c - '0');
      if (seconds > kMaxSeconds) {
        seconds = kMaxSeconds;
        break;
      }
    }
    return milliseconds(seconds * 1000);
  }
  // HTTP-date (RFC 9110 5.6.7): IMF-fixdate, then the obsolete RFC 850 and asctime forms.
  // Day and month names are English whatever the process locale is.
  static constexpr const char* kFormats[] = {
      "%a, %d %b %Y %H:%M:%S GMT",  // Sun, 06 Nov 1994 08:49:37 GMT
      "%A, %d-%b-%y %H:%M:%S GMT",  // Sunday, 06-Nov-94 08:49:37 GMT
      "%a %b %e %H:%M:%S %Y",       // Sun Nov  6 08:49:37 1994
  };
  const std::string text(value);
  const locale_t c_locale = CLocale();
  for (const char* format : kFormats) {
    struct tm tm = {};
    const char* end = c_locale != static_cast<locale_t>(nullptr)
                          ? strptime_l(text.c_str(), format, &tm, c_locale)
                          : strptime(text.c_str(), format, &tm);
    if (end == nullptr || *end != '\0') continue;
    const time_t when = timegm(&tm);
    if (when == static_cast<time_t>(-1)) continue;
    const int64_t delta = static_cast<int64_t>(when) - now_unix_s;
    return milliseconds(std::max<int64_t>(delta, 0) * 1000);
  }
  return milliseconds(-1);
}

}  // namespace ferry
