// How the read commands (tail, sessions, query) show things to a person: times in local time
// (or UTC), durations like 1m12s, the terminal's width and colour. No I/O but the ioctl on
// stdout and getenv; stateless; called from the client's one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "client/args.h"

namespace ferry::client {

// The width of the terminal on stdout (TIOCGWINSZ; COLUMNS when the ioctl says 0), or 0 when
// stdout is not a terminal: then lines are never cut.
size_t TerminalWidth();

// kAuto: stdout is a terminal, NO_COLOR is unset or empty (no-color.org) and TERM is not
// "dumb". kAlways and kNever as they say.
bool UseColor(ColorMode mode);

// Columns `s` takes on a terminal: UTF-8 continuation bytes, combining marks, zero-width
// joiners and variation selectors take 0, East Asian wide characters and emoji 2, others 1.
size_t DisplayWidth(std::string_view s);

// `s` cut to at most `width` columns at a character boundary, ending in "…" when cut.
std::string FitWidth(std::string_view s, size_t width);

// One line: each newline becomes "↵", other control characters a space.
std::string OneLine(std::string_view s);

// "2026-12-04 10:00:01.234" in local time (TZ), or "2026-12-04 10:00:01.234Z" with `utc`;
// `millis` false drops ".234"; `zone` adds the zone's abbreviation (" CET") in local time.
std::string FormatTime(int64_t ns, bool utc, bool millis, bool zone);

// "2026-12-04T10:00:01+01:00" (local, RFC 3339 with the offset) or "...Z" with `utc`.
std::string FormatIsoTime(int64_t ns, bool utc);

// A duration for people: 41µs, 8.8ms, 612ms, 1.2s, 59.9s, 1m12s, 2h03m, 3d04h.
std::string FormatDuration(int64_t ns);

// Nanoseconds since the epoch, now (CLOCK_REALTIME).
int64_t NowNs();

// The instant `t` names (client/args.h TimeArg), in local time or UTC (`utc`, or the arg's
// own "Z"), relative to `now_ns`. `t.kind` must not be kNone.
int64_t ResolveTime(const TimeArg& t, bool utc, int64_t now_ns);

// SGR colours for the read commands' output.
namespace sgr {
inline constexpr const char* kReset = "\033[0m";
inline constexpr const char* kDim = "\033[2m";
inline constexpr const char* kBold = "\033[1m";
inline constexpr const char* kRed = "\033[31m";
inline constexpr const char* kGreen = "\033[32m";
inline constexpr const char* kYellow = "\033[33m";
inline constexpr const char* kCyan = "\033[36m";
}  // namespace sgr

}  // namespace ferry::client
