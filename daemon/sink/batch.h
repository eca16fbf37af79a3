// SinkBatch: the events of one request on their way upstream (the batcher's output). It owns
// everything the encoders read: the parsed, redacted envelopes (in one rapidjson allocator
// that is reused from batch to batch) and the journal bodies (kept for dead letters, and as
// the source of each event's raw payload). Sink thread only; no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "daemon/journal/reader.h"
#include "daemon/sink/encode.h"
#include "proto/event.h"

namespace ferry {

class Redactor;

class SinkBatch {
 public:
  SinkBatch();
  SinkBatch(const SinkBatch&) = delete;
  SinkBatch& operator=(const SinkBatch&) = delete;

  // Adds one journal record: parses it (ferry's parser, so numbers keep their digits),
  // redacts it when `redactor` is set, and keeps its body. False: the body is not a JSON
  // object; nothing was added. *redactions (may be null) gets how many values were rewritten.
  bool Add(JournalRecord&& rec, const Redactor* redactor, size_t* redactions);
  // Redoes every event with new rules (config reload): same seqs, same Idempotency-Keys.
  // Returns the redactions made.
  size_t Reredact(const Redactor* redactor);
  // Empties the batch. The allocator's first block is kept for the next batch; a batch that
  // grew beyond it gives the rest back, so one big batch does not keep its memory forever.
  void Clear();

  bool empty() const { return events_.empty(); }
  size_t size() const { return events_.size(); }
  const std::vector<SinkEvent>& events() const { return events_; }
  const SinkEvent& event(size_t i) const { return events_[i]; }
  // The journal body of event i (the envelope as the hook sent it, not the redacted copy).
  const std::string& raw(size_t i) const { return raw_[i]; }
  size_t bytes() const { return bytes_; }

  uint64_t end_cursor = 0;  // the cursor once this batch is done (covers skipped seqs too)

 private:
  using Allocator = rapidjson::MemoryPoolAllocator<>;

  static constexpr size_t kFirstBlock = 256 << 10;
  std::unique_ptr<char[]> first_block_;  // the allocator's reused block
  std::unique_ptr<Allocator> alloc_;
  std::deque<rapidjson::Value> values_;  // deque: SinkEvent::envelope points into it
  std::deque<std::string> raw_;          // deque: SinkEvent::payload_raw may point into it
  std::deque<std::string> compacted_;    // payloads that were not compact in the journal
  std::vector<SinkEvent> events_;
  std::vector<proto::PayloadSpan> spans_;  // scratch for Add
  size_t bytes_ = 0;
};

}  // namespace ferry
