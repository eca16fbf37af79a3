// The delivery policy of a sink (docs/sinks.md "Responses"): what a response means, how a
// batch is cut after a 413 or a 4xx, and how long to wait before the next attempt. Pure
// functions and one small value type: no I/O, no clock, no threads; any thread. The sink
// thread applies them (daemon/sink/sink_deliver.cc); unit tests drive them directly.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "daemon/sink/transport.h"

namespace ferry::sink {

// What a response asks the sink to do.
//   kDone     2xx or 409 (already delivered): the part is delivered.
//   kSplit413 413: send the part in halves; a single event left is dead-lettered.
//   kBisect   any other 4xx: halve until the events the server refuses stand alone; each
//             of those is dead-lettered, the rest delivered.
//   kRetry    no answer (transport error, timeout), 408, 425, 429, 5xx, 1xx/3xx (redirects
//             are not followed): the same part again after a wait (RetryWait).
//   kPause    401, 403, 404, 405, 407: the sink waits for a config reload (SIGHUP) and also
//             retries every kPausedRetry.
enum class Verdict { kDone, kSplit413, kBisect, kRetry, kPause };

inline constexpr std::chrono::milliseconds kBackoffBase{200};
inline constexpr std::chrono::milliseconds kPausedRetry{60000};
// After a dead letter could not be written (disk full): the event is not dropped, the part
// is sent again after this long.
inline constexpr std::chrono::milliseconds kDeadletterRetry{kPausedRetry / 6};
// Shortest jittered backoff.
inline constexpr std::chrono::milliseconds kMinBackoff{10};

// An aborted request (the sink is stopping) is kRetry: it is sent again after a restart.
Verdict Classify(const HttpResponse& response);

// What an HTTP status means for this sink, for status and logs (the code is shown beside it).
std::string Describe(long status);

// The wait before retrying after a kRetry response. A 429 or 503 with Retry-After waits
// that long, clamped to [kBackoffBase, backoff_max] (never a tight loop on "Retry-After: 0")
// and leaves *attempt alone; anything else waits a full-jitter backoff, uniform in
// [0, min(backoff_max, kBackoffBase * 2^*attempt)] and at least kMinBackoff, and counts
// *attempt up. `retry_after` says which of the two it was.
std::chrono::milliseconds RetryWait(const HttpResponse& response,
                                    std::chrono::milliseconds backoff_max, uint32_t* attempt,
                                    std::mt19937_64* rng, bool* retry_after = nullptr);

// The upper bound of the jittered backoff for `attempt` (for tests and status).
std::chrono::milliseconds BackoffCap(uint32_t attempt, std::chrono::milliseconds backoff_max);

// The parts of one batch still to send, as [lo, hi) index ranges. Next() is sent first;
// Split() replaces it with its two halves, left half first, so delivery stays in seq order.
class PartQueue {
 public:
  explicit PartQueue(size_t events) {
    if (events > 0) todo_.emplace_back(0, events);
  }
  bool empty() const { return todo_.empty(); }
  std::pair<size_t, size_t> Next() const { return todo_.back(); }
  void Done() { todo_.pop_back(); }
  // Requires Next() to hold two or more events.
  void Split() {
    const auto [lo, hi] = todo_.back();
    const size_t mid = lo + (hi - lo) / 2;
    todo_.pop_back();
    todo_.emplace_back(mid, hi);
    todo_.emplace_back(lo, mid);
  }

 private:
  std::vector<std::pair<size_t, size_t>> todo_;
};

}  // namespace ferry::sink
