#include "daemon/ingest/dedupe_window.h"

#include <algorithm>
#include <array>
#include <vector>

#include <spdlog/spdlog.h>

#include "daemon/journal/reader.h"

namespace ferry {
namespace {

// Each byte's hex digit value, or 16 when it is not one.
constexpr std::array<uint8_t, 256> kHexDigit = [] {
  std::array<uint8_t, 256> t{};
  for (size_t c = 0; c < 256; ++c) {
    t[c] = c >= '0' && c <= '9'   ? static_cast<uint8_t>(c - '0')
           : c >= 'a' && c <= 'f' ? static_cast<uint8_t>(c - 'a' + 10)
           : c >= 'A' && c <= 'F' ? static_cast<uint8_t>(c - 'A' + 10)
                                  : 16;
  }
  return t;
}();

uint64_t Fnv1a(std::string_view s, uint64_t seed) {
  uint64_t h = seed;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

DedupeWindow::DedupeWindow(size_t capacity) : capacity_(capacity) {
  if (capacity_ == 0) return;
  table_.assign(16, 0);  // grows with the ids held, so a large capacity costs nothing up front
  mask_ = 15;
}

// Doubles the table and re-places every id held (load factor stays <= 1/2).
void DedupeWindow::Grow() {
  table_.assign(table_.size() * 2, 0);
  mask_ = table_.size() - 1;
  for (size_t idx = 0; idx < ring_.size(); ++idx) {
    const bool packed = overflow_.count(static_cast<uint32_t>(idx)) == 0;
    Place(ring_[idx], packed, idx);
  }
}

void DedupeWindow::Place(const Key& k, bool packed, size_t idx) {
  const uint32_t h = Hash(k);
  size_t slot = h & mask_;
  while (table_[slot] != 0) slot = (slot + 1) & mask_;
  table_[slot] = (static_cast<uint64_t>(h) << 32) | (packed ? 0 : kOverflowBit) | (idx + 1);
}

bool DedupeWindow::MakeKey(std::string_view id, Key* key) {
  Key k;
  if (id.size() == 32) {
    uint8_t bad = 0;  // bit 4 set: some byte is not a hex digit
    for (size_t i = 0; i < 32; ++i) {
      const uint8_t d = kHexDigit[static_cast<uint8_t>(id[i])];
      bad |= d;
      uint64_t& half = i < 16 ? k.a : k.b;
      half = (half << 4) | (d & 15u);
    }
    if ((bad & 16) == 0) {
      *key = k;
      return true;
    }
  }
  k.a = Fnv1a(id, 14695981039346656037ull);
  k.b = Fnv1a(id, 0x9e3779b97f4a7c15ull);
  *key = k;
  return false;
}

uint32_t DedupeWindow::Hash(const Key& k) const {
  if (hash_fn_ != nullptr) return hash_fn_(k.a, k.b);
  uint64_t h = (k.a ^ (k.b * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
  return static_cast<uint32_t>(h >> 32);
}

size_t DedupeWindow::Find(const Key& k, bool packed, std::string_view id) const {
  const uint32_t h = Hash(k);
  for (size_t slot = h & mask_;; slot = (slot + 1) & mask_) {
    const uint64_t e = table_[slot];
    if (e == 0) return npos;
    if (static_cast<uint32_t>(e >> 32) != h) continue;
    if (((e & kOverflowBit) == 0) != packed) continue;
    const uint32_t idx = static_cast<uint32_t>((e & (kOverflowBit - 1)) - 1);
    if (!(ring_[idx] == k)) continue;
    if (!packed && overflow_.at(idx) != id) continue;  // exact: never a false duplicate
    return slot;
  }
}

bool DedupeWindow::Contains(std::string_view id) const {
  if (capacity_ == 0) return false;
  Key k;
  const bool packed = MakeKey(id, &k);
  return Find(k, packed, id) != npos;
}

void DedupeWindow::Clear() {
  twins_.Clear();
  if (capacity_ == 0) return;
  table_.assign(16, 0);
  table_.shrink_to_fit();
  mask_ = 15;
  ring_.clear();
  overflow_.clear();
  head_ = 0;
  count_ = 0;
}

// Empties `slot` and shifts later entries of its probe run back (no tombstones).
void DedupeWindow::EraseSlot(size_t slot) {
  size_t hole = slot;
  for (size_t j = (slot + 1) & mask_;; j = (j + 1) & mask_) {
    const uint64_t e = table_[j];
    if (e == 0) break;
    const size_t home = static_cast<uint32_t>(e >> 32) & mask_;
    // The entry at j may move to the hole unless its home lies cyclically in (hole, j].
    const bool home_in_between =
        hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (home_in_between) continue;
    table_[hole] = e;
    hole = j;
  }
  table_[hole] = 0;
}

void DedupeWindow::Insert(std::string_view id) {
  if (capacity_ == 0) return;
  Key k;
  const bool packed = MakeKey(id, &k);
  if (Find(k, packed, id) != npos) return;
  size_t idx;
  if (ring_.size() < capacity_) {
    if ((ring_.size() + 1) * 2 > table_.size()) Grow();
    idx = ring_.size();
    ring_.push_back(k);
    ++count_;
  } else {  // full: evict the oldest, whose ring slot the new id takes
    idx = head_;
    head_ = (head_ + 1) % capacity_;
    const Key& old = ring_[idx];
    const uint32_t oh = Hash(old);
    for (size_t slot = oh & mask_;; slot = (slot + 1) & mask_) {
      const uint64_t e = table_[slot];
      if ((e & (kOverflowBit - 1)) == idx + 1) {
        EraseSlot(slot);
        break;
      }
    }
    overflow_.erase(static_cast<uint32_t>(idx));
    ring_[idx] = k;
  }
  if (!packed) overflow_.emplace(static_cast<uint32_t>(idx), std::string(id));
  Place(k, packed, idx);
}

Status DedupeWindow::Load(const std::string& dir, uint64_t last_seq) {
  if (capacity_ == 0 || last_seq == 0) return Status::Ok();
  const uint64_t start = last_seq > capacity_ ? last_seq - capacity_ + 1 : 1;
  JournalReader reader(dir, start);
  JournalRecord record;
  for (;;) {
    const JournalReader::Result r = reader.Next(last_seq, &record);
    if (r == JournalReader::Result::kEnd) break;
    if (r == JournalReader::Result::kIOError) {
      // The window is a best effort (the store dedupes by id too): start without the rest.
      spdlog::warn("dedupe window: {}; starting with the ids read so far", reader.error());
      break;
    }
    if (r == JournalReader::Result::kRecord) {
      const std::string_view id = EnvelopeId(record.body);
      if (!id.empty()) Insert(id);
    }
    // kCorruption: those records are lost to the window as to every reader; say so, go on.
    if (r == JournalReader::Result::kCorruption) {
      (void)journal_health::Observe("dedupe window", r, reader);
    }
  }
  return Status::Ok();
}

std::string_view EnvelopeId(std::string_view body) {
  constexpr std::string_view kPrefix = "{\"id\":\"";
  if (body.substr(0, kPrefix.size()) != kPrefix) return {};
  const size_t end = body.find('"', kPrefix.size());
  if (end == std::string_view::npos) return {};
  return body.substr(kPrefix.size(), end - kPrefix.size());
}

}  // namespace ferry
