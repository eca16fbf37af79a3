// StatusReport: what ferryd says about itself. The STATUS reply (`ferry status`, JSON:
// docs/protocol.md "Status object"), the one-line systemd STATUS=, the watchdog's liveness check,
// and the ingest rate (events_per_s, sampled once a second over the last 10 s).
//
// Guarantees: reads only (no component changes state because status was asked), except the
// rate sampler's own timer. `healthy` is false exactly when `problems` is non-empty.
// Thread: the io thread only (it reads io-thread state and consumer atomics).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "daemon/app/client_errors.h"
#include "daemon/base/asio.h"
#include "proto/event.h"

namespace ferry {

struct DaemonParts;

class StatusReport {
 public:
  // `parts` must outlive this; the parts it reads must exist before the first call.
  explicit StatusReport(const DaemonParts& parts, net::io_context& io);
  StatusReport(const StatusReport&) = delete;
  StatusReport& operator=(const StatusReport&) = delete;

  // The STATUS reply body.
  std::string Json() const;
  // systemd STATUS=: events, last and durable seq, connections; a failed journal says so.
  std::string Line() const;
  // Empty when ferryd is alive; else why the watchdog must not be fed (the journal refuses
  // appends, or one fdatasync has taken longer than `watchdog_interval`).
  std::string LivenessProblem(std::chrono::microseconds watchdog_interval) const;

  // Starts sampling the event count once a second; Stop() ends it.
  void StartSampling();
  void Stop();

 private:
  void Sample();
  double EventsPerSecond(uint64_t events_total) const;
  void WriteProblems(proto::JsonWriter& w) const;
  void WriteDaemon(proto::JsonWriter& w) const;
  void WriteConfig(proto::JsonWriter& w) const;
  void WriteClientErrors(proto::JsonWriter& w) const;
  void WriteJournal(proto::JsonWriter& w) const;
  void WriteIngest(proto::JsonWriter& w) const;
  void WriteSpool(proto::JsonWriter& w) const;
  void WriteStore(proto::JsonWriter& w) const;

  const DaemonParts& parts_;
  mutable ClientErrorLog client_errors_;  // caches the files; Read() refreshes it from Json()
  net::steady_timer timer_;
  bool stopped_ = false;
  // (time, events_total) once a second over the last 10 s.
  std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> samples_;
};

}  // namespace ferry
