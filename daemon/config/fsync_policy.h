// FsyncPolicy: when the journal's sync thread calls fdatasync ([journal] fsync in config.toml,
// docs/operations.md). A plain value; any thread.
#pragma once

namespace ferry {

// kAlways: after every flush (every ack is durable). kInterval: every fsync_interval and
// whenever a durable ack is owed. kNever: only when a durable ack is owed, at a roll and at
// stop.
enum class FsyncPolicy { kNever, kInterval, kAlways };

// "never" | "interval" | "always" (the config spelling).
const char* FsyncPolicyName(FsyncPolicy policy);

}  // namespace ferry
