#include "daemon/sink/token.h"

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "daemon/base/file_util.h"

namespace ferry {
namespace {

std::string ExpandHome(const std::string& path) {
  if (path.rfind("~/", 0) == 0) {
    const char* home = std::getenv("HOME");
    if (home && *home) return std::string(home) + path.substr(1);
  }
  return path;
}

}  // namespace

std::string ReadSinkToken(const SinkConfig& config, std::string* token) {
  std::string& tok = *token;
  std::string error;
  tok.clear();
  if (!config.token_env.empty()) {
    const char* v = std::getenv(config.token_env.c_str());
    if (!v || !*v) {
      error = "token_env " + config.token_env + " is not set in ferryd's environment";
      return error;
    }
    tok = v;
  } else if (!config.token_file.empty()) {
    const std::string path = ExpandHome(config.token_file);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      error = "token_file " + path + ": " + std::strerror(errno);
      return error;
    }
    if ((st.st_mode & 077) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      error = "token_file " + path + " is readable by group or others (mode " + mode +
              "); run: chmod 600 " + path;
      return error;
    }
    if (!ReadWholeFile(path, &tok)) {
      error = "token_file " + path + ": " + std::strerror(errno);
      return error;
    }
  } else {
    return {};
  }
  while (!tok.empty() && std::isspace(static_cast<unsigned char>(tok.back()))) {
    tok.pop_back();
  }
  while (!tok.empty() && std::isspace(static_cast<unsigned char>(tok.front()))) {
    tok.erase(0, 1);
  }
  if (tok.empty()) {
    error = config.token_env.empty() ? "token_file " + config.token_file + " is empty"
                                     : "token_env " + config.token_env + " is empty";
  } else if (tok.find_first_of("\r\n") != std::string::npos) {
    tok.clear();
    error = "the token contains a line break";
  }
  return error;
}

}  // namespace ferry
