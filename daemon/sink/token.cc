#include "daemon/sink/token.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
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
  } else if (config.auth == "basic" && tok.find(':') == std::string::npos) {
    tok.clear();
    error = std::string("auth = \"basic\" needs the ") +
            (config.token_env.empty() ? "token_file" : "token_env") +
            " to hold user:password (for Langfuse: public key:secret key)";
  }
  return error;
}

std::string Base64(std::string_view in) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    const size_t n = std::min<size_t>(3, in.size() - i);
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    if (n > 1) v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
    if (n > 2) v |= static_cast<unsigned char>(in[i + 2]);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(n > 1 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back(n > 2 ? kAlphabet[v & 63] : '=');
  }
  return out;
}

std::string AuthorizationValue(const SinkConfig& config, const std::string& token) {
  if (token.empty()) return {};
  return config.auth == "basic" ? "Basic " + Base64(token) : "Bearer " + token;
}

}  // namespace ferry
