#include "client/common.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "proto/paths.h"

namespace ferry::client {
namespace {

// Reads a top-level string key (`socket = "..."`) from the config file without a TOML
// library: the hot path must not pay for one. Keys inside [sections] are ignored; the
// daemon validates the full file.
std::string ConfigString(const GlobalOptions& opts, std::string_view key) {
  const std::string path = opts.config.empty() ? proto::DefaultConfigPath() : opts.config;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string text;
  char buf[1024];  // config files are small; a large frame costs page faults on the hook path
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < (1u << 20)) {
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (!line.empty() && line.front() == '[') break;
    if (line.substr(0, key.size()) != key) continue;
    line.remove_prefix(key.size());
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() != '=') continue;
    line.remove_prefix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.size() < 2 || (line.front() != '"' && line.front() != '\'')) continue;
    const char quote = line.front();
    const size_t close = line.find(quote, 1);
    if (close == std::string_view::npos) continue;
    return std::string(line.substr(1, close - 1));
  }
  return {};
}

bool EnvSet(const char* name) {
  const char* v = std::getenv(name);
  return v && *v;
}

}  // namespace

std::string ResolveSocket(const GlobalOptions& opts) {
  if (!opts.socket.empty()) return opts.socket;
  if (!EnvSet("FERRY_SOCKET")) {
    std::string from_config = ConfigString(opts, "socket");
    if (!from_config.empty()) return from_config;
  }
  return proto::DefaultSocketPath();
}

std::string ResolveStateDir(const GlobalOptions& opts) {
  if (!opts.state_dir.empty()) return opts.state_dir;
  if (!EnvSet("FERRY_STATE_DIR")) {
    std::string from_config = ConfigString(opts, "state_dir");
    if (!from_config.empty()) return from_config;
  }
  return proto::DefaultStateDir();
}

void Complain(const std::string& message) {
  std::string line = "ferry: " + message + "\n";
  [[maybe_unused]] ssize_t n = ::write(2, line.data(), line.size());
}

}  // namespace ferry::client
