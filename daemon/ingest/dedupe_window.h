// DedupeWindow: the ids of the last N events appended to the journal, so an event that
// arrives twice (acked late, so also spooled by its client) is stored once.
// docs/operations.md "Spool" says why a window of recent ids is enough.
//
// Thread: the io thread only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/ingest/twin_window.h"

namespace ferry {

class DedupeWindow {
 public:
  // Remembers at most `capacity` ids (0: remembers nothing, so nothing is ever a duplicate).
  explicit DedupeWindow(size_t capacity);
  DedupeWindow(const DedupeWindow&) = delete;
  DedupeWindow& operator=(const DedupeWindow&) = delete;

  // Exact: true only for an id inserted earlier and not yet evicted. A 32-hex-digit id (what
  // ferry makes) matches case-insensitively; any other id byte for byte.
  bool Contains(std::string_view id) const;
  // Forgets every id (before a Load() after the journal refused events it had inserted), and
  // every remembered Cursor hook call (twins()).
  void Clear();
  // The Cursor hook calls stored recently (twin_window.h): the other half of the dedupe.
  TwinWindow& twins() { return twins_; }
  // Remembers `id`, forgetting the oldest id when full.
  void Insert(std::string_view id);

  // Fills the window from the last `capacity` records of the journal in `dir`, whose highest
  // seq is `last_seq`. Records are canonical envelopes, so the id is read without a parse.
  Status Load(const std::string& dir, uint64_t last_seq);

  size_t size() const { return count_; }
  size_t capacity() const { return capacity_; }

  // Tests only: replaces the table hash (e.g. by a constant, to force collisions).
  using HashFn = uint32_t (*)(uint64_t a, uint64_t b);
  void SetHashForTest(HashFn fn) { hash_fn_ = fn; }

 private:
  // A 32-hex-digit id is packed exactly into (a, b); any other id is keyed by two 64-bit
  // hashes and its bytes are kept in overflow_, so a match is always exact.
  struct Key {
    uint64_t a = 0, b = 0;
    bool operator==(const Key& o) const { return a == o.a && b == o.b; }
  };
  static bool MakeKey(std::string_view id, Key* key);  // true: packed (exact) key
  uint32_t Hash(const Key& k) const;
  // Table slot holding ring index `idx`, or npos; `packed`/`id` as from MakeKey.
  size_t Find(const Key& k, bool packed, std::string_view id) const;
  void EraseSlot(size_t slot);
  void Place(const Key& k, bool packed, size_t idx);
  void Grow();

  // Table entries: 0 empty, else hash32 << 32 | kOverflowBit (non-packed id) | (ring index + 1).
  static constexpr uint64_t kOverflowBit = 1ull << 31;
  static constexpr size_t npos = static_cast<size_t>(-1);

  const size_t capacity_;
  HashFn hash_fn_ = nullptr;
  std::vector<uint64_t> table_;  // open addressing, linear probing, load <= 1/2
  size_t mask_ = 0;
  std::vector<Key> ring_;  // insertion order; slot head_ is the oldest once full
  size_t head_ = 0;
  size_t count_ = 0;
  std::unordered_map<uint32_t, std::string> overflow_;  // ring index -> id, non-packed ids
  TwinWindow twins_;
};

// The id of a canonical envelope (journal record body), which starts {"id":"...".
// Empty when the body does not start that way.
std::string_view EnvelopeId(std::string_view body);

}  // namespace ferry
