#include "daemon/journal/retention.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "daemon/base/file_util.h"
#include "daemon/journal/journal.h"

namespace ferry {

RetentionPlan PlanRetention(const std::vector<SegmentInfo>& segments, bool have_consumers,
                            uint64_t min_cursor, uint64_t max_bytes) {
  RetentionPlan plan;
  uint64_t total = 0;
  for (const SegmentInfo& s : segments) total += s.bytes;
  size_t i = 0;
  while (i + 1 < segments.size()) {
    const uint64_t last = segments[i + 1].first_seq - 1;
    const bool consumed = have_consumers && last <= min_cursor;
    if (!consumed && total <= max_bytes) break;
    total -= segments[i].bytes;
    ++i;
  }
  if (i == 0) return plan;
  plan.delete_count = i;
  plan.first_seq = segments[0].first_seq;
  plan.last_seq = segments[i].first_seq - 1;
  if (plan.last_seq < plan.first_seq) {  // only empty segments: nothing held
    plan.first_seq = plan.last_seq = 0;
    return plan;
  }
  if (have_consumers) {
    plan.lost_from = std::max(plan.first_seq, min_cursor + 1);
    plan.lost_to = plan.last_seq;
  }
  return plan;
}

uint64_t LostFor(const RetentionPlan& plan, uint64_t cursor) {
  if (plan.last_seq == 0 || cursor >= plan.last_seq) return 0;
  return plan.last_seq - std::max(cursor, plan.first_seq - 1);
}

Retention::Retention(Journal& journal, ConsumerRegistry& consumers, uint64_t max_bytes,
                     std::string state_file)
    : journal_(journal),
      consumers_(consumers),
      max_bytes_(max_bytes),
      state_file_(std::move(state_file)) {}

Status Retention::Load() {
  const int fd = ::open(state_file_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::FromErrno("open " + state_file_, errno);
  }
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(fd);
  rapidjson::Document doc;
  proto::Error error;
  if (!proto::ParseJson(text, &doc, &error) || !doc.IsObject()) {
    return Status::Corruption(state_file_ + ": " + error.message);
  }
  auto u64 = [&](const char* key) {
    auto it = doc.FindMember(key);
    return it != doc.MemberEnd() && it->value.IsUint64() ? it->value.GetUint64() : 0;
  };
  lost_events_ = u64("lost_events");
  acked_lost_ = std::min(u64("acked_lost"), lost_events_);
  deleted_segments_ = u64("deleted_segments");
  auto by = doc.FindMember("lost_by_consumer");
  if (by != doc.MemberEnd() && by->value.IsObject()) {
    for (auto it = by->value.MemberBegin(); it != by->value.MemberEnd(); ++it) {
      if (it->value.IsUint64()) lost_by_[it->name.GetString()] = it->value.GetUint64();
    }
  }
  return Status::Ok();
}

// Write a temp file, fsync, rename, fsync the directory: a crash leaves the old or the new
// counts, never a torn file. Runs only when a loss happens or is acknowledged.
Status Retention::Save() {
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  w.StartObject();
  w.Key("v");
  w.Uint(1);
  w.Key("lost_events");
  w.Uint64(lost_events_);
  w.Key("acked_lost");
  w.Uint64(acked_lost_);
  w.Key("deleted_segments");
  w.Uint64(deleted_segments_);
  w.Key("lost_by_consumer");
  w.StartObject();
  for (const auto& [name, lost] : lost_by_) {
    w.Key(name.c_str());
    w.Uint64(lost);
  }
  w.EndObject();
  w.EndObject();
  return WriteFileAtomically(state_file_, std::string_view(sb.GetString(), sb.GetSize()),
                             /*durable=*/true);
}

void Retention::Run() {
  std::vector<SegmentInfo> segments;
  segments.reserve(journal_.segments().size());
  for (const auto& [first, bytes] : journal_.segments()) segments.push_back({first, bytes});
  if (segments.size() < 2) return;
  bool have_consumers = false;
  consumers_.ForEach([&](const ConsumerRegistry::Slot&) { have_consumers = true; });
  const uint64_t min_cursor = consumers_.MinCursor();
  const RetentionPlan plan = PlanRetention(segments, have_consumers, min_cursor, max_bytes_);
  if (plan.delete_count == 0) return;

  // Count before deleting: a loss is never under-reported, even if an unlink then fails.
  if (plan.lost() > 0) {
    std::string who;
    consumers_.ForEach([&](const ConsumerRegistry::Slot& slot) {
      const uint64_t lost = LostFor(plan, slot.cursor.load());
      if (lost == 0) return;
      // ForEach hands out const slots; `lost` is the one field retention owns (the slots
      // themselves are not const objects, so this is well defined).
      const_cast<ConsumerRegistry::Slot&>(slot).lost.fetch_add(lost);
      lost_by_[slot.name] += lost;
      who += (who.empty() ? "" : ", ") + slot.name + " (" + std::to_string(lost) + ")";
    });
    lost_events_ += plan.lost();
    spdlog::error(
        "journal over its byte cap ({} bytes): deleted seqs {}..{} before every consumer had "
        "them; {} event(s) lost by: {}. `ferry status --ack-lost` acknowledges",
        max_bytes_, plan.lost_from, plan.lost_to, plan.lost(), who);
  }
  const size_t before = journal_.segments().size();
  Status s = journal_.DeleteOldestSegments(plan.delete_count);
  deleted_segments_ += before - journal_.segments().size();
  if (!s.ok()) spdlog::error("journal retention: {}", s.ToString());
  spdlog::debug("journal retention: deleted {} segment(s) holding seqs {}..{}",
                before - journal_.segments().size(), plan.first_seq, plan.last_seq);
  if (plan.lost() > 0) {
    s = Save();
    if (!s.ok()) spdlog::error("cannot save the retention counts: {}", s.ToString());
  }
}

void Retention::AckLost() {
  if (acked_lost_ == lost_events_) return;
  spdlog::warn("{} lost event(s) acknowledged", lost_events_ - acked_lost_);
  acked_lost_ = lost_events_;
  Status s = Save();
  if (!s.ok()) spdlog::error("cannot save the retention counts: {}", s.ToString());
}

uint64_t Retention::LostBy(const std::string& name) const {
  auto it = lost_by_.find(name);
  return it == lost_by_.end() ? 0 : it->second;
}

void Retention::WriteJournalKeys(proto::JsonWriter& w) const {
  w.Key("max_bytes");
  w.Uint64(max_bytes_);
  w.Key("deleted_segments");
  w.Uint64(deleted_segments_);
  w.Key("lost_events");
  w.Uint64(lost_events_);
  w.Key("acked_lost");
  w.Uint64(acked_lost_);
}

void Retention::WriteConsumers(proto::JsonWriter& w) const {
  w.StartArray();
  consumers_.ForEach([&](const ConsumerRegistry::Slot& slot) {
    w.StartObject();
    w.Key("name");
    w.String(slot.name.c_str());
    w.Key("cursor");
    w.Uint64(slot.cursor.load());
    w.Key("lost");
    w.Uint64(LostBy(slot.name));
    w.EndObject();
  });
  w.EndArray();
}

}  // namespace ferry
