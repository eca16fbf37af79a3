#include "daemon/sink/batch.h"

#include <string_view>

#include "daemon/redact/redact.h"
#include "proto/event.h"

namespace ferry {
SinkBatch::SinkBatch()
    : first_block_(new char[kFirstBlock]),
      alloc_(std::make_unique<Allocator>(first_block_.get(), kFirstBlock)) {}

void SinkBatch::Clear() {
  events_.clear();
  values_.clear();
  raw_.clear();
  compacted_.clear();
  bytes_ = 0;
  end_cursor = 0;
  // Drops every chunk but the user-supplied first block.
  alloc_->Clear();
}

bool SinkBatch::Add(JournalRecord&& rec, const Redactor* redactor, size_t* redactions) {
  if (redactions) *redactions = 0;
  rapidjson::Value v;
  {
    rapidjson::Document tmp(alloc_.get());
    // ferry's parser, not rapidjson's number conversion (which reads 0e-77 as 8.96e102).
    proto::Error parse_error;
    if (!proto::ParseEnvelopes(rec.body, 1, &tmp, &spans_, &parse_error) || !tmp.IsObject()) {
      return false;
    }
    v = std::move(tmp.Move());  // the value's memory is in the batch's allocator
  }
  size_t n = 0;
  if (redactor) n = redactor->RedactJson(&v, *alloc_);
  if (redactions) *redactions = n;
  values_.push_back(std::move(v));
  raw_.push_back(std::move(rec.body));
  const std::string& body = raw_.back();
  SinkEvent ev;
  // The payload goes out as the journal holds it unless redaction rewrote something in the
  // event (then the redacted document is written, numbers as doubles).
  if (n == 0 && spans_.size() == 1 && spans_[0].present() && !spans_[0].too_deep) {
    const std::string_view payload =
        std::string_view(body).substr(spans_[0].begin, spans_[0].end - spans_[0].begin);
    if (proto::IsCompactJson(payload)) {
      ev.payload_raw = payload;
    } else {
      ev.payload_raw = compacted_.emplace_back(proto::CompactJson(payload));
    }
  }
  ev.seq = rec.seq;
  ev.received_ns = rec.received_ns;
  ev.envelope = &values_.back();
  ev.approx_bytes = body.size() + 48;
  bytes_ += ev.approx_bytes;
  events_.push_back(ev);
  return true;
}

size_t SinkBatch::Reredact(const Redactor* redactor) {
  std::deque<std::string> raw = std::move(raw_);
  std::vector<SinkEvent> events = std::move(events_);
  const uint64_t end = end_cursor;
  Clear();
  end_cursor = end;
  size_t total = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    JournalRecord rec;
    rec.seq = events[i].seq;
    rec.received_ns = events[i].received_ns;
    rec.body = std::move(raw[i]);
    size_t n = 0;
    Add(std::move(rec), redactor, &n);
    total += n;
  }
  return total;
}

}  // namespace ferry
