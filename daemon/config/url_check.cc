#include "daemon/config/url_check.h"

#include <cctype>

namespace ferry {

std::string UrlProblem(std::string_view url) {
  std::string_view rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
  } else {
    return "the scheme must be http:// or https://";
  }
  // The authority ends at the path, the query or the fragment (RFC 3986 3.2).
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {  // an IPv6 literal: [::1]:4318
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return "the IPv6 host has no closing ']'";
    host = authority.substr(0, close + 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return "unexpected text after the IPv6 host";
    if (!after.empty()) port = after.substr(1);
    if (host.size() == 2) return "no host";
  } else if (const size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return "no host";
  for (const char c : host) {
    if (std::isspace(static_cast<unsigned char>(c)) ||
        std::iscntrl(static_cast<unsigned char>(c))) {
      return "the host has a space or a control character";
    }
  }
  if (authority.size() != host.size()) {  // a ':' was written, so a port must follow
    if (port.empty()) return "no port after ':'";
    unsigned long value = 0;
    for (const char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c))) {
        return "port \"" + std::string(port) + "\" is not a number";
      }
      if (value <= 65535) value = value * 10 + static_cast<unsigned long>(c - '0');
    }
    if (value < 1 || value > 65535) {
      return "port " + std::string(port) + " is out of range [1, 65535]";
    }
  }
  return {};
}

}  // namespace ferry
