// SinkSet: the running upstream sinks (docs/sinks.md), one thread each, and the requests that
// fan out to them: `ferry flush [--wait]` (FLUSH; the waits and their FLUSH_RESULT) and
// `ferry deadletter replay|purge` (DEADLETTER; one DEADLETTER_RESULT once every sink answered).
//
// Guarantees: a flush wait is answered exactly once: when every named sink's cursor reached
// the target, when one failed (paused, a new failure, removed by a reload), at its deadline,
// or at shutdown (FinishFlushWaits). A purge never blocks the io thread on a sink's disk I/O:
// each sink thread deletes its own files and answers through the io context.
// Errors: a request naming no configured sink gets ERROR unknown_sink (UnknownSinkFrame).
//
// Thread: the io thread only. Sinks are created, replaced and removed here only (start and
// SIGHUP); replies run on the io thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/base/asio.h"
#include "daemon/config/config.h"
#include "daemon/sink/sink.h"
#include "proto/messages.h"

namespace ferry {

class SinkSet {
 public:
  using Reply = std::function<void(std::string frame)>;

  // `io` must outlive this; `deps` is what every sink gets (state dir, progress, consumers).
  SinkSet(net::io_context& io, SinkDeps deps);
  ~SinkSet();
  SinkSet(const SinkSet&) = delete;
  SinkSet& operator=(const SinkSet&) = delete;

  // Opens the sink at its saved cursor (within the journal's [oldest, written]) and starts its
  // thread. A sink that cannot open is logged and left out; the others run.
  void Start(const SinkConfig& config, std::shared_ptr<const Redactor> redactor,
             uint64_t oldest_seq, uint64_t written_seq);
  // Stops and removes the sinks `remove` says yes to (joins their threads; cursor files stay);
  // the rest re-read their token and take `redactor` (null: keep theirs).
  void Reload(const std::function<bool(const std::string& name)>& remove,
              const std::shared_ptr<const Redactor>& redactor);

  // The shippable seq moved: every sink may send more.
  void WakeAll();

  Sink* Find(const std::string& name) const;
  // "configured: a, b" or "no sinks configured".
  std::string Names() const;
  // ERROR unknown_sink naming the configured sinks.
  std::string UnknownSinkFrame(const std::string& name) const;
  const std::vector<std::unique_ptr<Sink>>& sinks() const { return sinks_; }

  // FLUSH: asks the chosen sinks (all when req.sink is empty) to send up to `target`; with
  // req.wait, replies when they did (see above), else at once. The caller has checked
  // req.sink (UnknownSinkFrame) and made `target` shippable.
  void Flush(const proto::FlushRequest& req, uint64_t target, Reply reply);
  // DEADLETTER list, replay or purge on the chosen sinks (ERROR unknown_sink for a name no
  // sink has). Each sink does its file I/O on its own thread and answers through io_.
  void Deadletter(const proto::DeadletterRequest& req, Reply reply);

  // Shutdown, first step: answers every open flush wait now (before the socket closes).
  void FinishFlushWaits();
  // Shutdown, last step: stops every sink thread (an unfinished POST is resent after a
  // restart), then destroys them.
  void StopAll();
  void Clear() { sinks_.clear(); }

 private:
  void ListDeadletters(const proto::DeadletterRequest& req, Reply reply);

  struct FlushWait {
    uint64_t target = 0;
    std::vector<std::string> names;
    std::vector<uint64_t> failures_at_start;  // parallel to names
    std::chrono::steady_clock::time_point deadline;
    bool has_deadline = false;
    Reply reply;
  };
  // Replies to the flush waits that are done; re-arms the 20 ms timer while any remain.
  void CheckFlushWaits(bool final);
  std::string FlushResult(const FlushWait& fw, bool done, bool timed_out) const;

  net::io_context& io_;
  const SinkDeps deps_;
  std::vector<std::unique_ptr<Sink>> sinks_;
  std::vector<FlushWait> flush_waits_;
  net::steady_timer flush_timer_;
  bool flush_timer_armed_ = false;
  bool stopping_ = false;
};

}  // namespace ferry
