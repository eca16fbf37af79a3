// TwinWindow: recent Cursor hook calls, so the two deliveries of one call (once through
// ~/.cursor/hooks.json, labelled cursor; once through Claude Code's settings, labelled
// claude-code and relabelled) are stored once (docs/hooks.md "Which host sent it").
//
// The rule never merges two events that came the same way: an entry is matched only by a
// probe of the other way (native against relabelled), with the same key (kind, session and
// the payload's exact bytes) and client timestamps at most kMaxTsApart apart, and each match
// consumes the entry. So two hook calls with identical payloads, each delivered twice, are
// stored twice; events that differ in any payload byte (a tool_use_id, a generation_id) never
// match. Keys are compared byte for byte (no hash).
//
// Bounded: at most kMaxEntries entries and kMaxBytes of keys, the oldest forgotten first;
// a forgotten entry only means its twin, if it ever comes, is stored too.
//
// Thread: the io thread only (owned by DedupeWindow; cleared with it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "daemon/ingest/source_classify.h"

namespace ferry {

class TwinWindow {
 public:
  static constexpr int64_t kMaxTsApart = 10LL * 1000000000;  // 10 s
  static constexpr size_t kMaxEntries = 1024;
  static constexpr size_t kMaxBytes = 16u << 20;

  // True when `probe` is the twin of a remembered call of the other way; that entry is
  // then forgotten (the caller skips the event).
  bool Take(const TwinProbe& probe);
  // Remembers a stored event's probe (key not empty).
  void Insert(const TwinProbe& probe);
  void Clear();
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string key;
    bool relabelled;
    int64_t ts;
  };
  std::deque<Entry> entries_;  // oldest first
  size_t bytes_ = 0;
};

}  // namespace ferry
