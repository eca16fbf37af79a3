#include "daemon/ingest/admit.h"

#include <unordered_set>

#include "daemon/ingest/dedupe_window.h"
#include "daemon/ingest/event_canon.h"
#include "daemon/journal/journal.h"

namespace ferry {
namespace {

// A canonical body above this is not kept as the reused buffer's capacity (one 4 MiB event
// should not pin 4 MiB for the daemon's lifetime).
constexpr size_t kKeepBodyBuffer = 256u << 10;

// Events of a parsed frame: canonicalised (and redacted) into the admitter's buffer.
struct RequestSource {
  const proto::EventRequest& request;
  const Redactor* redactor;
  rapidjson::StringBuffer& buffer;
  bool* grew;  // set when a body outgrew kKeepBodyBuffer

  std::string_view Id(size_t i) const {
    const rapidjson::Value& id = request.at(i)["id"];
    return {id.GetString(), id.GetStringLength()};
  }
  void Twin(size_t i, TwinProbe* probe) const {
    MakeTwinProbe(request.at(i),
                  request.payload_too_deep(i) ? std::string_view() : request.payload_json(i),
                  probe);
  }
  std::string_view Body(size_t i) const {
    const std::string_view body = CanonicalEventBody(request, i, redactor, buffer);
    if (buffer.GetSize() > kKeepBodyBuffer) *grew = true;
    return body;
  }
};

// Events canonicalised already (spool chunks).
struct CanonicalSource {
  const std::vector<CanonicalEvent>& events;
  std::string_view Id(size_t i) const { return events[i].id; }
  std::string_view Body(size_t i) const { return events[i].body; }
  void Twin(size_t i, TwinProbe* probe) const { *probe = events[i].twin; }
};

}  // namespace

// The one admit loop (see the header for the two modes).
template <typename Source>
AdmitResult EventAdmitter::Run(const Source& source, size_t count, bool all_or_nothing,
                               int64_t received_ns) {
  AdmitResult result;
  ids_.clear();
  twins_.clear();
  const bool dedupe = window_ && window_->capacity() > 0;
  // Duplicates inside one EVENT_BATCH (with a window); a spool chunk needs none: each id
  // enters the window right after its append.
  std::unordered_set<std::string_view> batch_ids;
  if (all_or_nothing) journal_.BeginBatch();
  for (size_t i = 0; i < count; ++i) {
    const std::string_view id = source.Id(i);
    if (window_ &&
        (window_->Contains(id) || (all_or_nothing && count > 1 && !batch_ids.insert(id).second))) {
      result.duplicates++;  // stored already (a late ack, then spooled)
      continue;
    }
    source.Twin(i, &probe_);
    if (dedupe && window_->twins().Take(probe_)) {
      result.duplicates++;  // the same Cursor hook call, delivered the other way
      result.twins++;
      continue;
    }
    uint64_t seq = 0;
    Status s = journal_.Append(received_ns, source.Body(i), &seq);
    if (!s.ok()) {
      result.status = std::move(s);
      if (all_or_nothing) {  // the journal took the batch's records back
        journal_.EndBatch();
        ids_.clear();
        twins_.clear();
      }
      return result;
    }
    if (window_) {
      if (all_or_nothing) {
        ids_.push_back(id);
      } else {
        window_->Insert(id);
      }
    }
    if (probe_.relabelled) result.relabelled++;
    if (dedupe && !probe_.key.empty()) {
      if (all_or_nothing) {
        twins_.push_back(std::move(probe_));
      } else {
        window_->twins().Insert(probe_);
      }
    }
    if (result.appended++ == 0) result.first_seq = seq;
    result.last_seq = seq;
  }
  if (all_or_nothing) {
    journal_.EndBatch();
    for (const std::string_view id : ids_) window_->Insert(id);
    ids_.clear();
    for (const TwinProbe& probe : twins_) window_->twins().Insert(probe);
    twins_.clear();
  }
  return result;
}

AdmitResult EventAdmitter::Admit(const proto::EventRequest& request, const Redactor* redactor,
                                 int64_t received_ns) {
  bool grew = false;
  AdmitResult result =
      Run(RequestSource{request, redactor, body_, &grew}, request.size(), true, received_ns);
  if (grew) body_ = rapidjson::StringBuffer();  // give a large event's buffer back
  return result;
}

AdmitResult EventAdmitter::AdmitCanonical(const std::vector<CanonicalEvent>& events,
                                          int64_t received_ns) {
  return Run(CanonicalSource{events}, events.size(), false, received_ns);
}

}  // namespace ferry
