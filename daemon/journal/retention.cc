#include "daemon/journal/retention.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>

#include <spdlog/spdlog.h>

#include "daemon/base/file_util.h"
#include "daemon/journal/format.h"
#include "daemon/journal/journal.h"

namespace ferry {

RetentionPlan PlanRetention(const std::vector<SegmentInfo>& segments, bool have_consumers,
                            uint64_t min_cursor, const RetentionLimits& limits) {
  RetentionPlan plan;
  uint64_t total = 0;
  for (const SegmentInfo& s : segments) total += s.bytes;
  size_t i = 0;
  while (i + 1 < segments.size()) {
    const uint64_t last = segments[i + 1].first_seq - 1;
    const bool read_by_all = !have_consumers || last <= min_cursor;
    if (total > limits.max_bytes) {
      ++plan.for_cap;
    } else if (read_by_all && limits.max_age_ns > 0 &&
               limits.now_ns - segments[i].mtime_ns > limits.max_age_ns) {
      ++plan.for_age;
    } else if (read_by_all && limits.make_room) {
      ++plan.for_room;
    } else {
      break;
    }
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

bool IsDiskFull(const Status& failure) {
  if (failure.ok()) return false;
  const std::string& m = failure.message();
  for (int err : {ENOSPC, EDQUOT}) {
    if (m.find(std::strerror(err)) != std::string::npos) return true;
  }
  return false;
}

namespace {

int64_t WallNs() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string IsoUtc(int64_t ns) {
  const time_t secs = static_cast<time_t>(ns / 1000000000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>((ns / 1000000) % 1000));
  return out;
}

// received_ns of the first record of `path`, or 0 when it holds none (yet) or cannot be read.
int64_t FirstReceivedNs(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  unsigned char b[8];
  const ssize_t n = ::pread(fd, b, sizeof b, journal::kMagicSize + 16);
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof b)) return 0;
  uint64_t v = 0;
  for (int k = 7; k >= 0; --k) v = (v << 8) | b[k];
  return static_cast<int64_t>(v);
}

}  // namespace

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

int64_t Retention::SegmentMtime(uint64_t first_seq) const {
  struct stat st {};
  const std::string path = journal_.dir() + "/" + journal::SegmentFileName(first_seq);
  // Unknown age (stat failed): taken as new, so age never deletes it.
  if (::stat(path.c_str(), &st) != 0) return INT64_MAX;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

void Retention::Run() {
  const auto& journal_segments = journal_.segments();
  if (journal_segments.size() < 2) return;
  RetentionLimits limits;
  limits.max_bytes = max_bytes_;
  limits.max_age_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(max_age_).count();
  limits.now_ns = now_ns_ ? now_ns_() : WallNs();
  limits.make_room = journal_.failed() && IsDiskFull(journal_.failure());
  std::vector<SegmentInfo> segments;
  segments.reserve(journal_segments.size());
  // Ages are read oldest first up to the first segment that is not too old: the plan stops
  // there anyway, so the rest count as new (no stat). Not cached: a segment's mtime is the
  // file's, whoever set it.
  bool aging = limits.max_age_ns > 0;
  for (size_t i = 0; i < journal_segments.size(); ++i) {
    const auto& [first, bytes] = journal_segments[i];
    int64_t mtime = INT64_MAX;
    if (aging && i + 1 < journal_segments.size()) {  // the active one is never deleted
      mtime = SegmentMtime(first);
      aging = limits.now_ns - mtime > limits.max_age_ns;
    }
    segments.push_back({first, bytes, mtime});
  }
  bool have_consumers = false;
  consumers_.ForEach([&](const ConsumerRegistry::Slot&) { have_consumers = true; });
  const uint64_t min_cursor = consumers_.MinCursor();
  const RetentionPlan plan = PlanRetention(segments, have_consumers, min_cursor, limits);
  if (plan.delete_count == 0) return;

  // Count before deleting: a loss is never under-reported, even if an unlink then fails.
  if (plan.lost() > 0) CountLoss(plan);
  const size_t before = journal_.segments().size();
  Status s = journal_.DeleteOldestSegments(plan.delete_count);
  const size_t deleted = before - journal_.segments().size();
  deleted_segments_ += deleted;
  if (!s.ok()) spdlog::error("journal retention: {}", s.ToString());
  LogDeleted(plan, deleted);
  if (plan.lost() > 0) {
    s = Save();
    if (!s.ok()) spdlog::error("cannot save the retention counts: {}", s.ToString());
  }
}

void Retention::CountLoss(const RetentionPlan& plan) {
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

void Retention::LogDeleted(const RetentionPlan& plan, size_t deleted) {
  if (plan.for_room > 0) {
    spdlog::warn(
        "journal: the disk is full; deleted {} segment(s) every consumer had read (seqs up to "
        "{}) to make room for new events",
        plan.for_room, plan.last_seq);
  }
  spdlog::debug(
      "journal retention: deleted {} segment(s) holding seqs {}..{} ({} over the byte cap of "
      "{} bytes, {} older than max_age {} s, {} to make room)",
      deleted, plan.first_seq, plan.last_seq, plan.for_cap, max_bytes_, plan.for_age,
      std::chrono::duration_cast<std::chrono::seconds>(max_age_).count(), plan.for_room);
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

void Retention::WriteJournalKeys(proto::JsonWriter& w) {
  w.Key("max_bytes");
  w.Uint64(max_bytes_);
  w.Key("max_age_s");
  if (max_age_.count() > 0) {
    w.Double(static_cast<double>(max_age_.count()) / 1000.0);
  } else {
    w.Null();
  }
  // The oldest kept record's receive time (read once per oldest segment).
  const uint64_t oldest = journal_.segments().empty() ? 0 : journal_.segments().front().first;
  if (oldest != oldest_cached_ || oldest_received_ns_ == 0) {
    oldest_cached_ = oldest;
    oldest_received_ns_ =
        oldest == 0 || journal_.written_seq() < oldest
            ? 0
            : FirstReceivedNs(journal_.dir() + "/" + journal::SegmentFileName(oldest));
  }
  w.Key("oldest_received_ns");
  if (oldest_received_ns_ > 0) {
    w.Int64(oldest_received_ns_);
  } else {
    w.Null();
  }
  w.Key("oldest_time");
  if (oldest_received_ns_ > 0) {
    w.String(IsoUtc(oldest_received_ns_).c_str());
  } else {
    w.Null();
  }
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
