#include "daemon/store/source_stats.h"

#include <time.h>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

namespace ferry::store {
namespace {

constexpr int64_t kNs = 1000000000;
constexpr size_t kMaxMessage = 200;

// The next local day's start after `day_start` (25 h on, back to midnight: DST-safe).
int64_t NextDayStart(int64_t day_start) { return LocalDayStart(day_start + 25 * 3600 * kNs); }

std::string IsoUtc(int64_t ns) {
  const time_t secs = static_cast<time_t>(ns / kNs);
  struct tm tm {};
  ::gmtime_r(&secs, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ns % kNs / 1000000));
  return buf;
}

// `s` cut to kMaxMessage bytes at a UTF-8 boundary, at its first line.
std::string Clip(std::string_view s) {
  s = s.substr(0, s.find('\n'));
  if (s.size() <= kMaxMessage) return std::string(s);
  size_t n = kMaxMessage;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) --n;
  return std::string(s.substr(0, n)) + "...";
}

}  // namespace

// localtime_r only: mktime re-reads TZ on every call (glibc frees and copies its zone name
// under a lock ThreadSanitizer cannot see), and the store and io threads both call this.
// main() calls tzset() once before any thread starts.
int64_t LocalDayStart(int64_t ns) {
  const time_t secs = static_cast<time_t>(ns / kNs);
  struct tm now {};
  ::localtime_r(&secs, &now);
  time_t midnight = secs - (now.tm_hour * 3600 + now.tm_min * 60 + now.tm_sec);
  struct tm then {};
  ::localtime_r(&midnight, &then);
  midnight += now.tm_gmtoff - then.tm_gmtoff;  // a DST change between midnight and `ns`
  return static_cast<int64_t>(midnight) * kNs;
}

std::string FailureMessage(std::string_view payload_json) {
  rapidjson::Document doc;
  proto::Error ignored;
  if (!proto::ParseJson(payload_json, &doc, &ignored) || !doc.IsObject()) return {};
  auto str = [&](const char* key) -> std::string_view {
    auto it = doc.FindMember(key);
    if (it == doc.MemberEnd() || !it->value.IsString()) return {};
    return {it->value.GetString(), it->value.GetStringLength()};
  };
  if (std::string_view error = str("error"); !error.empty()) return Clip(error);
  for (const char* key : {"exit_status", "exit_code", "exitCode"}) {
    auto it = doc.FindMember(key);
    if (it == doc.MemberEnd() || !it->value.IsNumber()) continue;
    std::string out = "exit " + (it->value.IsInt64() ? std::to_string(it->value.GetInt64())
                                                     : std::to_string(it->value.GetDouble()));
    if (std::string_view cmd = str("command"); !cmd.empty()) out += ": " + std::string(cmd);
    return Clip(out);
  }
  return {};
}

void SourceBatch::Begin(int64_t now_ns) {
  deltas.clear();
  day = LocalDayStart(now_ns);
  next_day = NextDayStart(day);
}

void SourceBatch::Add(std::string_view source, int64_t ts, std::string_view kind,
                      std::string_view session, bool failure, std::string_view payload_json) {
  auto it = deltas.find(source);
  if (it == deltas.end()) it = deltas.emplace(std::string(source), SourceDelta{}).first;
  SourceDelta& d = it->second;
  d.last_ts = std::max(d.last_ts, ts);
  if (ts < day || ts >= next_day) return;
  d.today++;
  if (failure && (!d.error || ts >= d.error->ts)) {
    d.error = SourceError{ts, std::string(kind), std::string(session),
                          payload_json.empty() ? "" : FailureMessage(payload_json)};
  }
}

void SourceStats::Seed(SQLite::Database& db, int64_t now_ns) {
  const int64_t day = LocalDayStart(now_ns), next = NextDayStart(day);
  std::map<std::string, Stat, std::less<>> stats;
  // Today's events through the events_ts index; open sessions and last times from the rollup.
  SQLite::Statement q(db,
                      "SELECT source, sum(today), max(last), sum(open) FROM ("
                      " SELECT source, count(*) AS today, max(ts) AS last, 0 AS open FROM events"
                      "  WHERE ts >= ?1 AND ts < ?2 GROUP BY source"
                      " UNION ALL"
                      " SELECT source, 0, max(last_ts), sum(ended IS NULL) FROM sessions"
                      "  GROUP BY source) WHERE source IS NOT NULL GROUP BY source");
  q.bind(1, day);
  q.bind(2, next);
  while (q.executeStep()) {
    Stat& s = stats[q.getColumn(0).getString()];
    s.day_start = day;
    s.today = q.getColumn(1).getInt64();
    s.last_ts = q.getColumn(2).isNull() ? INT64_MIN : q.getColumn(2).getInt64();
    s.open_sessions = q.getColumn(3).getInt64();
  }
  // Today's failures, oldest first, so the newest is kept (the rollup's failure rule).
  SQLite::Statement e(
      db,
      "SELECT source, ts, kind, session, payload FROM events WHERE ts >= ?1 AND ts < ?2 AND "
      "(substr(kind, -7) = 'Failure' OR (json_valid(payload) AND json_type(payload) = 'object'"
      " AND ((json_type(payload, '$.exit_status') IN ('integer', 'real')"
      "       AND json_extract(payload, '$.exit_status') != 0)"
      "   OR (json_type(payload, '$.exit_code') IN ('integer', 'real')"
      "       AND json_extract(payload, '$.exit_code') != 0)"
      "   OR (json_type(payload, '$.exitCode') IN ('integer', 'real')"
      "       AND json_extract(payload, '$.exitCode') != 0)))) ORDER BY ts, seq");
  e.bind(1, day);
  e.bind(2, next);
  while (e.executeStep()) {
    Stat& s = stats[e.getColumn(0).getString()];
    s.day_start = day;
    s.error = SourceError{e.getColumn(1).getInt64(), e.getColumn(2).getString(),
                          e.getColumn(3).getString(), FailureMessage(e.getColumn(4).getString())};
  }
  MutexLock lock(mu_);
  stats_ = std::move(stats);
}

void SourceStats::Apply(const SourceDeltas& deltas, int64_t day_start) {
  MutexLock lock(mu_);
  for (const auto& [source, d] : deltas) {
    auto it = stats_.find(source);
    if (it == stats_.end()) it = stats_.emplace(source, Stat{}).first;
    Stat& s = it->second;
    if (s.day_start != day_start) {  // a new day: yesterday's count and error are over
      s.day_start = day_start;
      s.today = 0;
      s.error.reset();
    }
    s.today += d.today;
    s.last_ts = std::max(s.last_ts, d.last_ts);
    s.open_sessions = std::max<int64_t>(0, s.open_sessions + d.opened);
    if (d.error && (!s.error || d.error->ts >= s.error->ts)) s.error = d.error;
  }
}

void SourceStats::Write(proto::JsonWriter& w, int64_t now_ns) const {
  const int64_t day = LocalDayStart(now_ns);
  MutexLock lock(mu_);
  w.StartArray();
  for (const auto& [source, s] : stats_) {
    const bool today = s.day_start == day;
    w.StartObject();
    w.Key("source");
    w.String(source.data(), static_cast<rapidjson::SizeType>(source.size()));
    w.Key("events_today");
    w.Int64(today ? s.today : 0);
    w.Key("last_ts");
    if (s.last_ts == INT64_MIN) {
      w.Null();
    } else {
      w.Int64(s.last_ts);
    }
    w.Key("last_time");
    if (s.last_ts == INT64_MIN) {
      w.Null();
    } else {
      w.String(IsoUtc(s.last_ts).c_str());
    }
    w.Key("open_sessions");
    w.Int64(s.open_sessions);
    w.Key("last_error");
    if (!today || !s.error) {
      w.Null();
    } else {
      const SourceError& e = *s.error;
      w.StartObject();
      w.Key("ts");
      w.Int64(e.ts);
      w.Key("time");
      w.String(IsoUtc(e.ts).c_str());
      w.Key("kind");
      w.String(e.kind.c_str());
      w.Key("session");
      w.String(e.session.c_str());
      w.Key("message");
      w.String(e.message.c_str());
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace ferry::store
