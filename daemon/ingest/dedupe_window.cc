#include "daemon/ingest/dedupe_window.h"

#include <vector>

#include <spdlog/spdlog.h>

#include "daemon/journal/reader.h"

namespace ferry {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

uint64_t Fnv1a(std::string_view s, uint64_t seed) {
  uint64_t h = seed;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

DedupeWindow::Key DedupeWindow::MakeKey(std::string_view id) {
  Key k;
  if (id.size() == 32) {
    bool hex = true;
    for (size_t i = 0; i < 32 && hex; ++i) {
      const int d = HexDigit(id[i]);
      hex = d >= 0;
      uint64_t& half = i < 16 ? k.a : k.b;
      half = (half << 4) | static_cast<uint64_t>(d < 0 ? 0 : d);
    }
    if (hex) return k;
  }
  // Not 32 hex digits (a UUID with dashes, say): two independent 64-bit hashes. A collision
  // with another id in the window (odds ~N/2^128) would drop one event as a duplicate.
  k.a = Fnv1a(id, 14695981039346656037ull);
  k.b = Fnv1a(id, 0x9e3779b97f4a7c15ull);
  return k;
}

bool DedupeWindow::Contains(std::string_view id) const {
  return capacity_ > 0 && set_.count(MakeKey(id)) > 0;
}

void DedupeWindow::Insert(std::string_view id) {
  if (capacity_ == 0) return;
  const Key k = MakeKey(id);
  if (!set_.insert(k).second) return;
  fifo_.push_back(k);
  if (fifo_.size() > capacity_) {
    set_.erase(fifo_.front());
    fifo_.pop_front();
  }
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
