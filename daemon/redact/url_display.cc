#include "daemon/redact/url_display.h"

#include <algorithm>
#include <string>

namespace ferry {
namespace {

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool LooksLikeCredential(std::string_view key) {
  std::string k(key);
  std::transform(k.begin(), k.end(), k.begin(), AsciiLower);
  // Exact names that are too short to look for inside other names.
  for (std::string_view exact : {"sig", "pwd", "pass", "code"}) {
    if (k == exact) return true;
  }
  for (std::string_view part : {"token", "key", "secret", "password", "passwd", "signature", "auth",
                                "credential", "session"}) {
    if (k.find(part) != std::string::npos) return true;
  }
  return false;
}

// Rewrites "k=v&k2=v2" with the values of credential-like keys replaced.
void AppendMaskedParams(std::string_view params, std::string* out) {
  size_t pos = 0;
  while (true) {
    const size_t amp = params.find('&', pos);
    const std::string_view param =
        params.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
    const size_t eq = param.find('=');
    if (eq != std::string_view::npos && LooksLikeCredential(param.substr(0, eq))) {
      out->append(param.substr(0, eq + 1));
      out->append("REDACTED");
    } else {
      out->append(param);
    }
    if (amp == std::string_view::npos) break;
    out->push_back('&');
    pos = amp + 1;
  }
}

}  // namespace

std::string UrlForDisplay(std::string_view url) {
  std::string out;
  out.reserve(url.size());
  size_t authority = 0;
  if (const size_t scheme_end = url.find("://"); scheme_end != std::string_view::npos) {
    authority = scheme_end + 3;
  }
  out.append(url.substr(0, authority));
  const size_t authority_end = std::min(url.find_first_of("/?#", authority), url.size());
  std::string_view host_port = url.substr(authority, authority_end - authority);
  if (const size_t at = host_port.rfind('@'); at != std::string_view::npos) {
    host_port.remove_prefix(at + 1);  // user:password@ dropped
  }
  out.append(host_port);
  const std::string_view rest = url.substr(authority_end);
  const size_t query = rest.find('?');
  const size_t fragment = rest.find('#');
  if (query == std::string_view::npos || (fragment != std::string_view::npos && fragment < query)) {
    out.append(rest.substr(0, fragment));
  } else {
    out.append(rest.substr(0, query + 1));
    const size_t query_end = fragment == std::string_view::npos ? rest.size() : fragment;
    AppendMaskedParams(rest.substr(query + 1, query_end - query - 1), &out);
  }
  // A fragment never goes on the wire, but OAuth puts tokens there: mask it the same way.
  if (fragment != std::string_view::npos) {
    out.push_back('#');
    AppendMaskedParams(rest.substr(fragment + 1), &out);
  }
  return out;
}

}  // namespace ferry
