// EventAdmitter: the one path by which an event enters the journal, shared by IngestSession
// (EVENT / EVENT_BATCH frames) and SpoolImporter (spool files):
//
//   dedupe (DedupeWindow: ids, then Cursor twins) -> [redact] local -> canonical JSON
//   (event_canon.h, which also relabels by payload: source_classify.h) -> Journal::Append
//
// Guarantees:
// - An event whose id is in the window is not appended again; it counts as a duplicate.
//   With no window (null), nothing is a duplicate.
// - Admit(request): the frame's events are all or nothing (Journal::BeginBatch): if one
//   Append fails, the journal holds none of them, and their ids never enter the window. Ids
//   enter the window only once every event is in, so a refused batch resent is not a
//   duplicate. Inside one EVENT_BATCH an id seen earlier in the batch is a duplicate (with a
//   window).
// - A Cursor hook call delivered twice (TwinWindow) is stored once: the second is a duplicate
//   (counted in `twins` too). A twin entry is remembered only once its event is appended (after
//   the whole frame, like ids); a match consumes its entry even if the frame then fails, so a
//   resent frame stores that event (never a loss).
// - AdmitCanonical(events): each event stands alone (a spool chunk): its id enters the window
//   right after its Append; a failed Append stops the chunk, the events before it stay.
// - Records reach the file only on Journal::Flush (the caller's job, as are acks).
//
// The canonical body is written into a buffer the admitter keeps and reuses, so admitting an
// event allocates nothing once the buffer has grown to the largest event seen.
//
// Thread: the io thread only (the journal's and the window's thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/ingest/source_classify.h"
#include "proto/messages.h"

namespace ferry {

class DedupeWindow;
class Journal;
class Redactor;

struct AdmitResult {
  Status status;  // not ok: the journal refused an append (see the modes above)
  // Records appended. After a failed Admit() (all or nothing): those appended before the
  // failure, which the journal took back, so none of them is stored.
  size_t appended = 0;
  size_t duplicates = 0;   // events skipped: their id was in the window, or twins (below)
  size_t twins = 0;        // of those, the second delivery of a Cursor hook call (TwinWindow)
  size_t relabelled = 0;   // appended under the source worked out from the payload
  uint64_t first_seq = 0;  // of the records appended (0 when none)
  uint64_t last_seq = 0;
};

// An event already in canonical form (SpoolImporter canonicalises on its own thread).
struct CanonicalEvent {
  std::string id;
  std::string body;  // canonical envelope, as it goes to the journal
  TwinProbe twin;    // MakeTwinProbe of the event (empty key: the twin rule does not apply)
};

class EventAdmitter {
 public:
  // `journal` must outlive the admitter; `window` too, when not null.
  EventAdmitter(Journal& journal, DedupeWindow* window) : journal_(journal), window_(window) {}
  EventAdmitter(const EventAdmitter&) = delete;
  EventAdmitter& operator=(const EventAdmitter&) = delete;

  void set_window(DedupeWindow* window) { window_ = window; }
  DedupeWindow* window() const { return window_; }

  // Admits every event of a parsed EVENT / EVENT_BATCH request, all or nothing, received at
  // `received_ns`. `redactor` may be null (no local redaction).
  AdmitResult Admit(const proto::EventRequest& request, const Redactor* redactor,
                    int64_t received_ns);
  // Admits canonical events one by one (a spool chunk), received at `received_ns`.
  AdmitResult AdmitCanonical(const std::vector<CanonicalEvent>& events, int64_t received_ns);

 private:
  template <typename Source>
  AdmitResult Run(const Source& source, size_t count, bool all_or_nothing, int64_t received_ns);

  Journal& journal_;
  DedupeWindow* window_;
  rapidjson::StringBuffer body_;       // reused for every canonical body written here
  std::vector<std::string_view> ids_;  // of the request being admitted (all or nothing)
  std::vector<TwinProbe> twins_;       // likewise, the twin probes to remember
  TwinProbe probe_;                    // scratch
};

}  // namespace ferry
