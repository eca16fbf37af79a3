#include "daemon/sink/delivery_policy.h"

#include <algorithm>

namespace ferry::sink {

using std::chrono::milliseconds;

Verdict Classify(const HttpResponse& r) {
  if (r.aborted) return Verdict::kRetry;
  const long s = r.status;
  if (s == 0) return Verdict::kRetry;  // transport error, timeout
  if ((s >= 200 && s < 300) || s == 409) return Verdict::kDone;
  if (s == 413) return Verdict::kSplit413;
  if (s == 401 || s == 403 || s == 404 || s == 405 || s == 407) return Verdict::kPause;
  if (s == 408 || s == 425 || s == 429) return Verdict::kRetry;
  if (s >= 400 && s < 500) return Verdict::kBisect;
  return Verdict::kRetry;  // 5xx, 1xx/3xx (redirects are not followed)
}

std::string Describe(long status) {
  switch (status) {
    case 401:
    case 403:
      return "the server refused the credentials; fix token_file/token_env and reload "
             "(systemctl --user reload ferryd)";
    case 404:
    case 405:
      return "the server has no such endpoint; check the sink's url and reload";
    case 407:
      return "the proxy wants credentials (see https_proxy/http_proxy in ferryd's environment)";
    case 408:
      return "the server timed out reading the request; retrying";
    case 409:
      return "already delivered (409)";
    case 413:
      return "request too large; splitting the batch";
    case 429:
      return "throttled by the server; waiting as Retry-After says";
    default:
      break;
  }
  if (status >= 500) return "server error; retrying with backoff";
  if (status >= 400) return "the server rejected the batch; bisecting to find the event(s)";
  return "unexpected response; retrying with backoff";
}

milliseconds BackoffCap(uint32_t attempt, milliseconds backoff_max) {
  const uint32_t shift = std::min<uint32_t>(attempt, 30);
  return milliseconds(
      std::min<int64_t>(backoff_max.count(), kBackoffBase.count() * (int64_t{1} << shift)));
}

milliseconds RetryWait(const HttpResponse& r, milliseconds backoff_max, uint32_t* attempt,
                       std::mt19937_64* rng, bool* retry_after) {
  const bool server_said = (r.status == 429 || r.status == 503) && r.retry_after.count() >= 0;
  if (retry_after) *retry_after = server_said;
  if (server_said) return std::clamp(r.retry_after, kBackoffBase, backoff_max);
  const int64_t cap = BackoffCap(*attempt, backoff_max).count();
  std::uniform_int_distribution<int64_t> dist(0, std::max<int64_t>(cap, 0));
  ++*attempt;
  return milliseconds(std::max<int64_t>(dist(*rng), kMinBackoff.count()));
}

}  // namespace ferry::sink
