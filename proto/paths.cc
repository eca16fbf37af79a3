#include "proto/paths.h"

#include <unistd.h>

#include <algorithm>
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

namespace {
constexpr std::string_view kLetterExt = ".ndjson";
constexpr std::string_view kReplayExt = ".replay.ndjson";

std::string Cat(std::string_view a, std::string_view b, std::string_view c = {},
                std::string_view d = {}) {
  std::string out;
  out.reserve(a.size() + b.size() + c.size() + d.size());
  return out.append(a).append(b).append(c).append(d);
}
}  // namespace

std::string StateLockPath(std::string_view state_dir) { return Cat(state_dir, "/ferryd.lock"); }

std::string SinkCursorPath(std::string_view state_dir, std::string_view sink) {
  return Cat(state_dir, "/cursors/", sink);
}

std::string DeadletterDir(std::string_view state_dir) { return Cat(state_dir, "/deadletter"); }

std::string DeadletterPath(std::string_view state_dir, std::string_view sink) {
  return Cat(state_dir, "/deadletter/", sink, kLetterExt);
}

std::string DeadletterReplayPath(std::string_view state_dir, std::string_view sink) {
  return Cat(state_dir, "/deadletter/", sink, kReplayExt);
}

bool ValidSinkName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                              (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
                     }) &&
         name != "." && name != "..";
}

bool ParseDeadletterFileName(std::string_view file, std::string* sink, bool* replay) {
  if (file.size() <= kLetterExt.size() ||
      file.substr(file.size() - kLetterExt.size()) != kLetterExt)
    return false;
  const bool is_replay =
      file.size() > kReplayExt.size() && file.substr(file.size() - kReplayExt.size()) == kReplayExt;
  const std::string_view base =
      file.substr(0, file.size() - (is_replay ? kReplayExt.size() : kLetterExt.size()));
  if (!ValidSinkName(base)) return false;
  sink->assign(base);
  *replay = is_replay;
  return true;
}

}  // namespace ferry::proto
