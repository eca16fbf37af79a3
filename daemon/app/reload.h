// Config reload (SIGHUP): reads the config file again and applies in place what a running
// ferryd can change: log level, ingest limits, the fsync policy and interval, the [redact]
// rules, and the [[sink]] set (added sinks start, removed ones stop, changed ones restart from
// their saved cursor; unchanged ones re-read their token). Keys that need a restart (socket,
// state_dir, segment_size, max_bytes, ...) are named in the log and keep their running value.
//
// Errors: an invalid file changes nothing (logged); invalid redact rules keep the running
// rules (logged) while the rest applies. Tells systemd RELOADING=1 first and READY=1 last.
// Thread: the io thread only.
#pragma once

namespace ferry {

struct DaemonParts;
struct Config;
struct IngestLimits;

// The [ingest] limits of `cfg`, as the ingest server takes them (start and reload).
IngestLimits IngestLimitsFrom(const Config& cfg);

// Applies the reloaded config to `parts` (see above) and makes it parts.config.
void ReloadConfig(DaemonParts& parts);

}  // namespace ferry
