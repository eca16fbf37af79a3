// Default locations (DESIGN.md "Names"), shared so ferry and ferryd always agree.
// Reads the environment only; no file-system access.
#pragma once

#include <string>

namespace ferry::proto {

// FERRY_SOCKET, else $XDG_RUNTIME_DIR/ferry/ferry.sock, else /tmp/ferry-$UID/ferry.sock.
std::string DefaultSocketPath();
// FERRY_STATE_DIR, else $XDG_STATE_HOME/ferry, else $HOME/.local/state/ferry.
std::string DefaultStateDir();
// FERRY_CONFIG, else $XDG_CONFIG_HOME/ferry/config.toml, else $HOME/.config/ferry/config.toml.
std::string DefaultConfigPath();
// True when FERRY_CONFIG names the config (so a missing file is an error, not "defaults").
bool ConfigPathFromEnv();

}  // namespace ferry::proto
