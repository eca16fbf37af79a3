// Where ferryd's configuration comes from: the file, then the command line's and the
// environment's overrides (config.h, ConfigSource).
#include <cstdlib>

#include "daemon/config/config.h"
#include "proto/paths.h"

namespace ferry {
namespace {

void ApplySourceOverrides(const ConfigSource& source, Config* c) {
  const char* env_socket = std::getenv("FERRY_SOCKET");
  const char* env_state = std::getenv("FERRY_STATE_DIR");
  if (!source.socket_flag.empty()) {
    c->socket_path = source.socket_flag;
  } else if ((env_socket && *env_socket) || c->socket_path.empty()) {
    c->socket_path = proto::DefaultSocketPath();
  }
  if (!source.state_dir_flag.empty()) {
    c->state_dir = source.state_dir_flag;
  } else if ((env_state && *env_state) || c->state_dir.empty()) {
    c->state_dir = proto::DefaultStateDir();
  }
  if (!source.log_level_flag.empty()) c->log_level = source.log_level_flag;
  // journal.max_bytes unset: 10% of the state dir's file system (journal_cap.cc).
  if (c->max_bytes_auto) c->max_bytes = DefaultJournalCap(c->state_dir);
}

}  // namespace

bool LoadEffectiveConfig(const ConfigSource& source, Config* config, std::string* error) {
  Config c;
  if (!LoadConfig(source.path, source.required, &c, error)) return false;
  ApplySourceOverrides(source, &c);
  *config = std::move(c);
  return true;
}

Config DefaultEffectiveConfig(const ConfigSource& source) {
  Config c;
  ApplySourceOverrides(source, &c);
  return c;
}

}  // namespace ferry
