// What flush.cc and deadletter.cc share: one request/reply exchange with ferryd and the
// printing of its answers (docs/sinks.md). Output goes to stdout/stderr; no state is kept.
// Called from the client's one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "client/args.h"
#include "client/conn.h"
#include "proto/event.h"
#include "proto/frame.h"

namespace ferry::client::sink_cli {

inline constexpr auto kConnectTimeout = std::chrono::seconds(5);
inline constexpr size_t kExcerptChars = 80;

// Prints "ferry <command>: <message>" to stderr (after flushing stdout).
void Fail(std::string_view command, const std::string& message);

// obj[name], or a null value when obj is no object or has no such member.
const rapidjson::Value& Member(const rapidjson::Value& obj, const char* name);
// A string value, or "" for anything else.
std::string Str(const rapidjson::Value& v);
// An integer value in decimal, or "-" for anything else.
std::string Num(const rapidjson::Value& v);
// Display width in characters (UTF-8 continuation bytes do not count).
size_t Width(std::string_view s);
// One line of at most `max` characters: control characters become spaces, and a longer text
// is cut at a character boundary and ends in "...".
std::string Excerpt(std::string s, size_t max = kExcerptChars);

// The ERROR of a reply, printed as "ferry <command>: <message>" (unknown_sink, whose message
// ferryd words for people) or "ferry <command>: <code>: <message>".
void PrintErrorReply(std::string_view command, const std::string& body);

enum class Exchange { kOk, kNotRunning, kNotAnswering, kFailed };

// Connects (ConnectOrOffline: to a read-only ferryd when ferryd is down and `allow_offline`),
// sends one request and receives one reply before `reply_deadline`. kNotRunning: no
// connection (*not_running says why, not yet printed). kNotAnswering: ferryd accepted but did
// not answer in time; "ferry <command>: " + DescribeUnanswered(...) is printed (exit 3).
// kFailed: the error is printed as "ferry <command>: ..." already.
Exchange RoundTrip(const GlobalOptions& global, std::string_view command, const std::string& frame,
                   Clock::time_point reply_deadline, bool allow_offline, proto::FrameType* type,
                   std::string* body, std::string* not_running);

}  // namespace ferry::client::sink_cli
