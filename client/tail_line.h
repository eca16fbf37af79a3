// `ferry tail`'s short output: one line per event that a person can read at a glance
// (docs/operations.md "Tail"), and the fields its client-side filters look at. Pure functions
// of the TAIL_ITEM; called from the client's one thread.
#pragma once

#include <cstdint>
#include <string>

#include "proto/event.h"

namespace ferry::client {

// The parts of one event the short line and the filters use.
struct EventView {
  uint64_t seq = 0;        // 0 for an ephemeral event (it has none)
  bool ephemeral = false;  // a live-only event: the seq column shows "~"

  int64_t when_ns = 0;  // the envelope's ts (the client's clock), else `received`
  std::string source, kind, session, cwd;  // cwd: the envelope's, else the payload's
  bool has_exit = false;                   // a shell command: the payload's exit_status
  long long exit = 0;
};

// `item` is a TAIL_ITEM event body ({"seq","received","event":{...}}, or for an ephemeral
// event {"ephemeral":true,"after","received","event":{...}}), already checked to hold a uint64
// seq or "ephemeral":true, and an object event.
EventView ViewOf(const rapidjson::Value& item);

// The last column: for a shell command "exit 2    1.2s  make test"; for an agent's tool
// call the tool and its input ("Bash  cmake --build build"); a prompt or a message its first
// line; otherwise the payload's short fields as key=value. One line, not cut to a width.
std::string Summarize(const rapidjson::Value& event);

struct LineStyle {
  bool utc = false;
  bool color = false;
  size_t width = 0;  // 0: no limit
};

// An ephemeral event shows "~" where the seq goes.
// "2026-12-04 10:00:01.234      42 zsh         command          01JD2QA0  <summary>": fixed
// columns (a longer source or kind is cut with "…", a session id shows its first 8
// characters), then the summary, the whole cut to style.width with "…".
std::string ShortLine(const EventView& v, const std::string& summary, const LineStyle& style);

}  // namespace ferry::client
