#include "proto/paths.h"

#include <unistd.h>

#include <cstdlib>

namespace ferry::proto {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string Home() {
  std::string home = Env("HOME");
  return home.empty() ? "/tmp" : home;
}

}  // namespace

std::string DefaultSocketPath() {
  if (std::string s = Env("FERRY_SOCKET"); !s.empty()) return s;
  if (std::string r = Env("XDG_RUNTIME_DIR"); !r.empty()) return r + "/ferry/ferry.sock";
  return "/tmp/ferry-" + std::to_string(::getuid()) + "/ferry.sock";
}

std::string DefaultStateDir() {
  if (std::string s = Env("FERRY_STATE_DIR"); !s.empty()) return s;
  if (std::string x = Env("XDG_STATE_HOME"); !x.empty()) return x + "/ferry";
  return Home() + "/.local/state/ferry";
}

std::string DefaultConfigPath() {
  if (std::string s = Env("FERRY_CONFIG"); !s.empty()) return s;
  if (std::string x = Env("XDG_CONFIG_HOME"); !x.empty()) return x + "/ferry/config.toml";
  return Home() + "/.config/ferry/config.toml";
}

bool ConfigPathFromEnv() { return !Env("FERRY_CONFIG").empty(); }

}  // namespace ferry::proto
