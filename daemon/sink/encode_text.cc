// The text pieces of daemon/sink/encode.h that are not JSON bodies: the host identity and
// name, the token's literal redaction and ISO times.
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>

#include <systemd/sd-id128.h>

#include "daemon/sink/encode.h"
#include "proto/event.h"

namespace ferry {
namespace {

// ferry's application id for sd_id128_get_machine_app_specific(): generated once (random),
// never to change, or every host's identity (and so every Idempotency-Key) changes with it.
// SD_ID128_ARRAY, not SD_ID128_MAKE: the latter is a C compound literal, which ISO C++ lacks.
constexpr sd_id128_t kFerryAppId =
    SD_ID128_ARRAY(90, 8c, 99, c0, 63, 68, 41, f3, 82, 39, a8, 41, 39, 72, 4c, 1e);

uint64_t Fnv1a(uint64_t h, std::string_view bytes) {
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string ComputeHostIdentity() {
  sd_id128_t id;
  if (sd_id128_get_machine_app_specific(kFerryAppId, &id) >= 0) {
    char buf[SD_ID128_STRING_MAX];
    sd_id128_to_string(id, buf);
    return std::string(buf, 32);
  }
  // No /etc/machine-id (a bare container): two FNV-1a hashes of ferry's application id and
  // the host name, 32 hex digits like the regular form. Stable while the host name is.
  const std::string_view app(reinterpret_cast<const char*>(kFerryAppId.bytes),
                             sizeof kFerryAppId.bytes);
  const std::string host = HostName();
  const uint64_t h1 = Fnv1a(Fnv1a(0xcbf29ce484222325ull, app), host);
  const uint64_t h2 = Fnv1a(Fnv1a(0xcbf29ce484222325ull, host), app);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[static_cast<size_t>(i)] = kHex[(h1 >> (60 - 4 * i)) & 0xf];
    out[static_cast<size_t>(16 + i)] = kHex[(h2 >> (60 - 4 * i)) & 0xf];
  }
  return out;
}

}  // namespace

std::string HostIdentity() {
  // /etc/machine-id does not change while ferryd runs.
  static const std::string identity = ComputeHostIdentity();
  return identity;
}

std::string HostName() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  // Host names are bytes from the OS; the JSON bodies must be valid UTF-8.
  return proto::SanitizeUtf8(std::string_view(buf, strnlen(buf, sizeof buf)));
}

size_t RedactLiteral(std::string* text, std::string_view secret) {
  if (secret.empty()) return 0;
  static constexpr std::string_view kMark = "[REDACTED:token]";
  size_t n = 0;
  for (size_t pos = text->find(secret); pos != std::string::npos;
       pos = text->find(secret, pos + kMark.size())) {
    text->replace(pos, secret.size(), kMark);
    ++n;
  }
  // A cut excerpt may end inside the secret.
  const size_t max = std::min(text->size(), secret.size() - 1);
  for (size_t len = max; len >= 4; --len) {
    if (text->compare(text->size() - len, len, secret.substr(0, len)) == 0) {
      text->replace(text->size() - len, len, kMark);
      ++n;
      break;
    }
  }
  return n;
}

std::string IsoTimeUtc(int64_t ns) {
  const time_t secs = static_cast<time_t>(ns / 1000000000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>((ns / 1000000) % 1000));
  return out;
}

}  // namespace ferry
