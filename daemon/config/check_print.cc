#include "daemon/config/check_print.h"

namespace ferry {
namespace {

// Returns the number of warnings.
int PrintSink(const SinkConfig& sink, const ConfigPrintHooks& hooks, std::ostream& out,
              std::ostream& err) {
  int warnings = 0;
  out << "sink " << sink.name << ": " << sink.type
      << (sink.signal == "traces"
              ? " traces (span_timeout " + std::to_string(sink.span_timeout.count()) + "ms)"
              : std::string())
      << " -> " << hooks.url_for_display(sink.EndpointUrl()) << "; max_events " << sink.max_events
      << ", max_bytes " << sink.max_bytes << ", gzip "
      << (sink.gzip ? "level " + std::to_string(sink.gzip_level) : std::string("off"))
      << ", timeout " << sink.timeout.count() << "ms, backoff_max " << sink.backoff_max.count()
      << "ms, batch_timeout " << sink.batch_timeout.count() << "ms, degraded_after "
      << sink.degraded_after.count() << "ms, redact " << (sink.redact ? "on" : "off")
      << ", tls_verify " << (sink.tls_verify ? "on" : "OFF")
      << (sink.ca_file.empty() ? "" : " (ca_file " + sink.ca_file + ")") << ", token "
      << (!sink.token_file.empty()  ? "from file " + sink.token_file
          : !sink.token_env.empty() ? "from $" + sink.token_env
                                    : std::string("none"))
      << (sink.auth == "basic" ? " (auth basic)" : "") << "\n";
  if (!sink.tls_verify) {
    err << "ferryd: warning: sink " << sink.name
        << ": tls_verify = false: the server's certificate is not checked, so anyone on "
           "the path can read and change what is sent\n";
    ++warnings;
  }
  const std::string problem = hooks.token_problem(sink);
  if (!problem.empty()) {
    err << "ferryd: warning: sink " << sink.name << ": " << problem
        << " (the sink would stay paused until this is fixed)\n";
    ++warnings;
  }
  return warnings;
}

}  // namespace

int PrintCheckedConfig(const Config& config, const std::string& source_path,
                       const ConfigPrintHooks& hooks, std::ostream& out, std::ostream& err) {
  out << "config: " << (config.path.empty() ? source_path + " (absent; defaults)" : config.path)
      << " OK\n"
      << "socket = " << config.socket_path << "\n"
      << "state_dir = " << config.state_dir << "\n"
      << "log_level = " << config.log_level << "\n"
      << "journal.fsync = " << FsyncPolicyName(config.fsync) << "\n"
      << "journal.fsync_interval = " << config.fsync_interval.count() << "ms\n"
      << "journal.segment_size = " << config.segment_bytes << "\n"
      << "journal.max_bytes = " << config.max_bytes << "\n"
      << "journal.max_age = " << config.journal_max_age.count() << "ms\n"
      << "ingest.max_frame = " << config.max_frame_bytes << "\n"
      << "ingest.max_connections = " << config.max_connections << "\n"
      << "ingest.idle_timeout = " << config.idle_timeout.count() << "ms\n"
      << "ingest.frame_timeout = " << config.frame_timeout.count() << "ms\n"
      << "ingest.max_batch_events = " << config.max_batch_events << "\n"
      << "store.enabled = " << (config.store_enabled ? "true" : "false") << "\n"
      << "store.batch_interval = " << config.store_batch_interval.count() << "ms\n"
      << "store.batch_events = " << config.store_batch_events << "\n"
      << "store.session_idle_timeout = " << config.session_idle_timeout.count() << "ms\n"
      << "store.retain_age = " << config.store_retain_age.count() << "ms\n"
      << "store.retain_rows = " << config.store_retain_rows << "\n"
      << "store.query_timeout = " << config.query_timeout.count() << "ms\n"
      << "store.query_max_rows = " << config.query_max_rows << "\n"
      << "store.search = " << (config.store_search ? "true" : "false") << "\n"
      << "archive.enabled = " << (config.archive_enabled ? "true" : "false") << "\n"
      << "archive.max_bytes = " << config.archive_max_bytes << "\n"
      << "redact.builtin = " << (config.redact.builtin ? "true" : "false") << "\n"
      << "redact.local = " << (config.redact.local ? "true" : "false") << "\n"
      << "redact.rules = " << config.redact.rules.size() << "\n";
  if (config.sinks.empty()) out << "sinks: none (events stay on this machine)\n";
  int warnings = 0;
  for (const SinkConfig& sink : config.sinks) warnings += PrintSink(sink, hooks, out, err);
  return warnings;
}

}  // namespace ferry
