#include "client/show.h"

#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ferry::client {
namespace {

// Decodes the code point at s[*i] (advancing *i); a bad byte counts as one column.
char32_t NextCodePoint(std::string_view s, size_t* i) {
  const auto b = static_cast<unsigned char>(s[*i]);
  size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 1;
  if (*i + len > s.size()) len = 1;
  char32_t cp = len == 1 ? b : len == 2 ? (b & 0x1f) : len == 3 ? (b & 0x0f) : (b & 0x07);
  for (size_t k = 1; k < len; ++k) {
    const auto c = static_cast<unsigned char>(s[*i + k]);
    if ((c & 0xc0) != 0x80) {
      len = 1;
      cp = b;
      break;
    }
    cp = (cp << 6) | (c & 0x3f);
  }
  *i += len;
  return cp;
}

int CodePointWidth(char32_t c) {
  if ((c >= 0x300 && c <= 0x36f) || (c >= 0x200b && c <= 0x200f) || (c >= 0xfe00 && c <= 0xfe0f) ||
      (c >= 0x1f3fb && c <= 0x1f3ff) || (c >= 0xe0100 && c <= 0xe01ef) || c == 0x20e3) {
    return 0;
  }
  if ((c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf && c != 0x303f) ||
      (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
      (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
      (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) ||
      (c >= 0x1f900 && c <= 0x1f9ff) || (c >= 0x1f680 && c <= 0x1f6ff) ||
      (c >= 0x1f1e6 && c <= 0x1f1ff) || (c >= 0x20000 && c <= 0x3fffd) || c == 0x2705 ||
      c == 0x274c || c == 0x2728) {
    return 2;
  }
  return 1;
}

struct tm Broken(int64_t ns, bool utc) {
  time_t secs = static_cast<time_t>(ns / 1000000000);
  if (ns < 0 && ns % 1000000000 != 0) --secs;
  struct tm tm {};
  if (utc) {
    ::gmtime_r(&secs, &tm);
  } else {
    ::localtime_r(&secs, &tm);
  }
  return tm;
}

// The length after a snprintf that wrote `wrote` bytes at `at`, kept inside the buffer.
size_t Put(const char* /*buf*/, size_t size, size_t at, int wrote) {
  if (wrote < 0) return at;
  return std::min(size - 1, at + static_cast<size_t>(wrote));
}

int Millis(int64_t ns) {
  const int64_t r = ns % 1000000000;
  return static_cast<int>((r < 0 ? r + 1000000000 : r) / 1000000);
}

}  // namespace

size_t TerminalWidth() {
  if (!::isatty(1)) return 0;
  struct winsize ws {};
  if (::ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  const char* columns = std::getenv("COLUMNS");
  unsigned long long n = 0;
  if (columns && ParseUint(columns, &n) && n > 0 && n < 100000) return static_cast<size_t>(n);
  return 0;
}

bool UseColor(ColorMode mode) {
  if (mode != ColorMode::kAuto) return mode == ColorMode::kAlways;
  const char* no_color = std::getenv("NO_COLOR");
  const char* term = std::getenv("TERM");
  return ::isatty(1) && !(no_color && *no_color) && !(term && std::strcmp(term, "dumb") == 0);
}

size_t DisplayWidth(std::string_view s) {
  size_t width = 0;
  for (size_t i = 0; i < s.size();)
    width += static_cast<size_t>(CodePointWidth(NextCodePoint(s, &i)));
  return width;
}

std::string FitWidth(std::string_view s, size_t width) {
  if (DisplayWidth(s) <= width) return std::string(s);
  if (width == 0) return {};
  size_t used = 0, i = 0;
  while (i < s.size()) {
    size_t next = i;
    const int w = CodePointWidth(NextCodePoint(s, &next));
    if (used + static_cast<size_t>(w) > width - 1) break;  // leave a column for "…"
    used += static_cast<size_t>(w);
    i = next;
  }
  return std::string(s.substr(0, i)) + "…";
}

std::string OneLine(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\n') {
      out += "↵";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatTime(int64_t ns, bool utc, bool millis, bool zone) {
  const struct tm tm = Broken(ns, utc);
  char buf[96];
  size_t n = Put(buf, sizeof buf, 0,
                 std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900,
                               tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec));
  if (millis)
    n = Put(buf, sizeof buf, n, std::snprintf(buf + n, sizeof buf - n, ".%03d", Millis(ns)));
  if (utc) {
    std::snprintf(buf + n, sizeof buf - n, "Z");
  } else if (zone && tm.tm_zone) {
    std::snprintf(buf + n, sizeof buf - n, " %s", tm.tm_zone);
  }
  return buf;
}

std::string FormatIsoTime(int64_t ns, bool utc) {
  const struct tm tm = Broken(ns, utc);
  char buf[64];
  const size_t n =
      Put(buf, sizeof buf, 0,
          std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec));
  const long off = utc ? 0 : tm.tm_gmtoff;
  if (off == 0 && utc) {
    std::snprintf(buf + n, sizeof buf - n, "Z");
  } else {
    const long a = off < 0 ? -off : off;
    std::snprintf(buf + n, sizeof buf - n, "%c%02ld:%02ld", off < 0 ? '-' : '+', a / 3600,
                  a % 3600 / 60);
  }
  return buf;
}

std::string FormatDuration(int64_t ns) {
  if (ns < 0) ns = 0;
  char buf[32];
  if (ns < 1000000) {
    std::snprintf(buf, sizeof buf, "%lldµs", static_cast<long long>(ns / 1000));
  } else if (ns < 10000000) {
    std::snprintf(buf, sizeof buf, "%.1fms", static_cast<double>(ns) / 1e6);
  } else if (ns < 1000000000) {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ns / 1000000));
  } else if (ns < 60000000000LL) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ns / 100000000) / 10);
  } else {
    const long long s = ns / 1000000000;
    if (s < 3600) {
      std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
    } else if (s < 86400) {
      std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    } else {
      std::snprintf(buf, sizeof buf, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
    }
  }
  return buf;
}

int64_t NowNs() {
  // By system call, not the vDSO: `ferry emit` reads the time once, and mapping the vDSO's
  // two pages costs two page faults (35 us and more each on a VM) against ~1 us for the call
  // (docs/benchmarks.md "Run M").
  struct timespec ts {};
  ::syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

int64_t ResolveTime(const TimeArg& t, bool utc, int64_t now_ns) {
  if (t.kind == TimeArg::Kind::kAgo) return now_ns - t.ago_ns;
  utc = utc || t.zulu;
  struct tm tm = Broken(now_ns, utc);
  if (t.kind == TimeArg::Kind::kAbsolute) {
    tm.tm_year = t.year - 1900;
    tm.tm_mon = t.month - 1;
    tm.tm_mday = t.day;
  } else if (t.kind == TimeArg::Kind::kDay) {
    tm.tm_mday += t.day_offset;
  }
  tm.tm_hour = t.hour;
  tm.tm_min = t.minute;
  tm.tm_sec = t.second;
  tm.tm_isdst = -1;
  const time_t secs = utc ? ::timegm(&tm) : ::mktime(&tm);
  return static_cast<int64_t>(secs) * 1000000000LL;
}

}  // namespace ferry::client
