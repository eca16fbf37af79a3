// DedupeWindow: the ids of the last N events appended to the journal, so an event that
// arrives twice (acked late, so also spooled by its client) is stored once.
// docs/operations.md "Spool" says why a window of recent ids is enough.
//
// Thread: the io thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_set>

#include "daemon/base/status.h"

namespace ferry {

class DedupeWindow {
 public:
  // Remembers at most `capacity` ids (0: remembers nothing, so nothing is ever a duplicate).
  explicit DedupeWindow(size_t capacity) : capacity_(capacity) {}
  DedupeWindow(const DedupeWindow&) = delete;
  DedupeWindow& operator=(const DedupeWindow&) = delete;

  bool Contains(std::string_view id) const;
  // Forgets every id (before a Load() after the journal refused events it had inserted).
  void Clear() {
    set_.clear();
    fifo_.clear();
  }
  // Remembers `id`, forgetting the oldest id when full.
  void Insert(std::string_view id);

  // Fills the window from the last `capacity` records of the journal in `dir`, whose highest
  // seq is `last_seq`. Records are canonical envelopes, so the id is read without a parse.
  Status Load(const std::string& dir, uint64_t last_seq);

  size_t size() const { return fifo_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  // 128 bits per id: a 32-hex-digit id (what ferry makes) is stored exactly; any other id
  // by two independent 64-bit hashes. ~60 bytes per id in all, not ~150 for std::string.
  struct Key {
    uint64_t a = 0, b = 0;
    bool operator==(const Key& o) const { return a == o.a && b == o.b; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return static_cast<size_t>(k.a ^ (k.b * 31)); }
  };
  static Key MakeKey(std::string_view id);

  const size_t capacity_;
  std::unordered_set<Key, KeyHash> set_;
  std::deque<Key> fifo_;  // insertion order, for eviction
};

// The id of a canonical envelope (journal record body), which starts {"id":"...".
// Empty when the body does not start that way.
std::string_view EnvelopeId(std::string_view body);

}  // namespace ferry
