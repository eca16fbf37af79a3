// SinkConfig's derived settings and DiffConfig (what a reload changes): split out of
// config.cc. Contract in config.h.
#include <algorithm>
#include <string>
#include <vector>

#include "daemon/config/config.h"

namespace ferry {

namespace {

std::string Ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

template <typename T>
void Compare(const char* key, const T& a, const T& b, std::vector<std::string>* out,
             std::string (*show)(const T&)) {
  if (a != b) out->push_back(std::string(key) + ": " + show(a) + " -> " + show(b));
}

}  // namespace

std::string SinkConfig::EndpointUrl() const {
  if (type != "otlp-http") return url;
  const size_t q = url.find_first_of("?#");
  std::string base = url.substr(0, q);
  const std::string rest = q == std::string::npos ? "" : url.substr(q);
  const std::string suffix = signal == "traces" ? "/v1/traces" : "/v1/logs";
  if (base.size() >= suffix.size() &&
      base.compare(base.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return url;
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + suffix + rest;
}

bool SinkConfig::SameSettings(const SinkConfig& o) const {
  return name == o.name && type == o.type && url == o.url && token_file == o.token_file &&
         token_env == o.token_env && max_events == o.max_events && max_bytes == o.max_bytes &&
         gzip == o.gzip && gzip_level == o.gzip_level && timeout == o.timeout &&
         connect_timeout == o.connect_timeout && backoff_max == o.backoff_max &&
         batch_timeout == o.batch_timeout && degraded_after == o.degraded_after &&
         redact == o.redact && headers == o.headers && tls_verify == o.tls_verify &&
         ca_file == o.ca_file && signal == o.signal && span_timeout == o.span_timeout &&
         auth == o.auth;
}

ConfigChanges DiffConfig(const Config& running, const Config& next) {
  ConfigChanges ch;
  auto str = +[](const std::string& v) { return "\"" + v + "\""; };
  auto num = +[](const uint64_t& v) { return std::to_string(v); };
  auto dur = +[](const std::chrono::milliseconds& v) { return Ms(v); };
  auto pol = +[](const FsyncPolicy& v) { return std::string(FsyncPolicyName(v)); };
  Compare("log_level", running.log_level, next.log_level, &ch.live, str);
  Compare("journal.fsync", running.fsync, next.fsync, &ch.live, pol);
  Compare("journal.fsync_interval", running.fsync_interval, next.fsync_interval, &ch.live, dur);
  Compare("journal.max_age", running.journal_max_age, next.journal_max_age, &ch.live, dur);
  Compare("ingest.max_frame", running.max_frame_bytes, next.max_frame_bytes, &ch.live, num);
  Compare("ingest.max_connections", running.max_connections, next.max_connections, &ch.live, num);
  Compare("ingest.idle_timeout", running.idle_timeout, next.idle_timeout, &ch.live, dur);
  Compare("ingest.frame_timeout", running.frame_timeout, next.frame_timeout, &ch.live, dur);
  Compare("ingest.max_batch_events", running.max_batch_events, next.max_batch_events, &ch.live,
          num);
  // The socket and the state directory are what this process is; the segment size and the
  // byte cap belong to the open journal.
  Compare("socket", running.socket_path, next.socket_path, &ch.restart, str);
  Compare("state_dir", running.state_dir, next.state_dir, &ch.restart, str);
  Compare("journal.segment_size", running.segment_bytes, next.segment_bytes, &ch.restart, num);
  Compare("journal.max_bytes", running.max_bytes, next.max_bytes, &ch.restart, num);
  // The store opens ferry.db once; SetSearch runs then.
  auto flag = +[](const bool& v) { return std::string(v ? "true" : "false"); };
  Compare("store.search", running.store_search, next.store_search, &ch.restart, flag);
  // The archive worker is made with its settings at start.
  Compare("archive.enabled", running.archive_enabled, next.archive_enabled, &ch.restart, flag);
  Compare("archive.max_bytes", running.archive_max_bytes, next.archive_max_bytes, &ch.restart, num);
  for (const SinkConfig& n : next.sinks) {
    auto it = std::find_if(running.sinks.begin(), running.sinks.end(),
                           [&](const SinkConfig& r) { return r.name == n.name; });
    if (it == running.sinks.end()) {
      ch.sinks_added.push_back(n.name);
      ch.live.push_back("sink \"" + n.name + "\" added");
    } else if (!it->SameSettings(n)) {
      ch.sinks_changed.push_back(n.name);
      ch.live.push_back("sink \"" + n.name + "\" changed");
    }
  }
  for (const SinkConfig& r : running.sinks) {
    if (std::none_of(next.sinks.begin(), next.sinks.end(),
                     [&](const SinkConfig& n) { return n.name == r.name; })) {
      ch.sinks_removed.push_back(r.name);
      ch.live.push_back("sink \"" + r.name + "\" removed");
    }
  }
  const auto same_rules = [](const RedactOptions& a, const RedactOptions& b) {
    if (a.builtin != b.builtin || a.local != b.local || a.rules.size() != b.rules.size()) {
      return false;
    }
    for (size_t i = 0; i < a.rules.size(); ++i) {
      if (a.rules[i].name != b.rules[i].name || a.rules[i].pattern != b.rules[i].pattern ||
          a.rules[i].replacement != b.rules[i].replacement) {
        return false;
      }
    }
    return true;
  };
  if (!same_rules(running.redact, next.redact)) {
    ch.redact_changed = true;
    ch.live.push_back("redact rules changed");
  }
  return ch;
}

}  // namespace ferry
