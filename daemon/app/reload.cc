#include "daemon/app/reload.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "daemon/app/parts.h"
#include "daemon/base/logging.h"

namespace ferry {
namespace {

std::string JoinChanges(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& part : parts) out += (out.empty() ? "" : "; ") + part;
  return out;
}

// The new [redact] rules, or null when they did not change or do not compile (logged).
std::shared_ptr<const Redactor> ReloadRedactor(DaemonParts& p, const Config& next, bool changed) {
  if (!changed) return nullptr;
  std::shared_ptr<const Redactor> compiled;
  Status rs = Redactor::Compile(next.redact, &compiled);
  if (!rs.ok()) {
    spdlog::error("SIGHUP: redact rules: {}; keeping the running rules", rs.ToString());
    return nullptr;
  }
  p.redactor = compiled;
  p.server->SetLocalRedactor(next.redact.local ? compiled : nullptr);
  if (p.importer) p.importer->SetLocalRedactor(next.redact.local ? compiled : nullptr);
  return compiled;
}

int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

const char* ConfigHealth::RunningOn(const Config& running) const {
  if (!ok()) return on_defaults ? "defaults" : "last_good";
  return running.path.empty() ? "defaults" : "file";
}

std::string ConfigHealth::Problem(const ConfigSource& source) const {
  if (ok()) return {};
  return "config error at " + error + "; ferryd runs on " +
         (on_defaults ? "defaults" : "the last good config") + "; run: ferryd --check-config" +
         (source.required ? " --config " + source.path : "");
}

// Errors are "path:line:column: what" (or "path: what" for a file that cannot be read).
void ConfigHealth::Place(const std::string& path, int* line, int* column) const {
  *line = *column = 0;
  if (error.rfind(path + ":", 0) != 0) return;
  const char* p = error.c_str() + path.size() + 1;
  char* end = nullptr;
  const long l = std::strtol(p, &end, 10);
  if (end == p || *end != ':') return;
  const char* q = end + 1;
  const long c = std::strtol(q, &end, 10);
  if (end == q || *end != ':') return;
  *line = static_cast<int>(l);
  *column = static_cast<int>(c);
}

IngestLimits IngestLimitsFrom(const Config& cfg) {
  IngestLimits limits;
  limits.max_frame = cfg.max_frame_bytes;
  limits.max_connections = cfg.max_connections;
  limits.idle_timeout = cfg.idle_timeout;
  limits.frame_timeout = cfg.frame_timeout;
  limits.max_batch_events = cfg.max_batch_events;
  return limits;
}

void ReloadConfig(DaemonParts& p) {
  p.notifier->Reloading();
  Config next;
  std::string error;
  if (!LoadEffectiveConfig(p.source, &next, &error)) {
    spdlog::error("SIGHUP: {}; keeping the running configuration{}", error,
                  p.config_health.on_defaults ? " (the defaults)" : "");
    p.config_health.error = error;
    p.config_health.error_time_ns = WallNs();
    p.notifier->Reloaded();
    return;
  }
  if (!p.config_health.ok()) spdlog::info("SIGHUP: the config error is fixed");
  const ConfigChanges changes = DiffConfig(p.config, next);
  p.config_health = {};
  p.config_health.restart_pending = changes.restart;
  next.socket_path = p.config.socket_path;
  next.state_dir = p.config.state_dir;
  next.segment_bytes = p.config.segment_bytes;
  next.max_bytes = p.config.max_bytes;
  const std::string from = p.source.path + (next.path.empty() ? " (absent; defaults)" : "");
  if (!changes.restart.empty()) {
    spdlog::warn("SIGHUP: {} needs a restart to apply (keeping the running value): {}", from,
                 JoinChanges(changes.restart));
  }
  spdlog::info("SIGHUP: reloaded {}: {}", from,
               changes.live.empty() ? "nothing to apply" : JoinChanges(changes.live));
  SetLogLevel(next.log_level);
  p.server->SetLimits(IngestLimitsFrom(next));
  p.publisher->SetPolicy(next.fsync, next.fsync_interval);
  const std::shared_ptr<const Redactor> new_redactor =
      ReloadRedactor(p, next, changes.redact_changed);
  p.config = std::move(next);
  const auto listed = [](const std::vector<std::string>& v, const std::string& n) {
    return std::find(v.begin(), v.end(), n) != v.end();
  };
  p.sinks->Reload(
      [&](const std::string& name) {
        return listed(changes.sinks_removed, name) || listed(changes.sinks_changed, name);
      },
      new_redactor);
  for (const SinkConfig& sc : p.config.sinks) {
    if (listed(changes.sinks_added, sc.name) || listed(changes.sinks_changed, sc.name)) {
      p.sinks->Start(sc, p.redactor, p.journal->oldest_seq(), p.journal->written_seq());
    }
  }
  p.notifier->Reloaded();
}

}  // namespace ferry
