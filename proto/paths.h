// Default locations (DESIGN.md "Names"), shared so ferry and ferryd always agree.
// Reads the environment only; no file-system access. Any thread.
#pragma once

#include <string>
#include <string_view>

namespace ferry::proto {

// FERRY_SOCKET, else $XDG_RUNTIME_DIR/ferry/ferry.sock, else /tmp/ferry-$UID/ferry.sock.
std::string DefaultSocketPath();
// FERRY_STATE_DIR, else $XDG_STATE_HOME/ferry, else $HOME/.local/state/ferry.
std::string DefaultStateDir();
// FERRY_CONFIG, else $XDG_CONFIG_HOME/ferry/config.toml, else $HOME/.config/ferry/config.toml.
std::string DefaultConfigPath();
// True when FERRY_CONFIG names the config (so a missing file is an error, not "defaults").
bool ConfigPathFromEnv();

// Files under a state directory that both ferryd and ferry name (docs/sinks.md, DESIGN.md):
// the one place that spells them, so the daemon and the client cannot drift apart.
std::string StateLockPath(std::string_view state_dir);  // <state>/ferryd.lock
std::string SinkCursorPath(std::string_view state_dir, std::string_view sink);  // cursors/<sink>
std::string DeadletterDir(std::string_view state_dir);  // <state>/deadletter
// <state>/deadletter/<sink>.ndjson: the sink's dead letters, one JSON object a line.
std::string DeadletterPath(std::string_view state_dir, std::string_view sink);
// <state>/deadletter/<sink>.replay.ndjson: the letters a replay in progress is sending again.
std::string DeadletterReplayPath(std::string_view state_dir, std::string_view sink);
// A file name found in DeadletterDir: true with *sink and *replay when it is one of the two
// above for a valid sink name (ValidSinkName).
bool ParseDeadletterFileName(std::string_view file, std::string* sink, bool* replay);
// [A-Za-z0-9_.-]{1,64}: the names config.toml accepts for a sink.
bool ValidSinkName(std::string_view name);

}  // namespace ferry::proto
