// The helpers flush.cc and deadletter.cc share (client/sink_reply.h).
#include "client/sink_reply.h"

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>

#include "client/common.h"
#include "client/conn.h"
#include "client/offline.h"
#include "proto/event.h"
#include "proto/messages.h"

namespace ferry::client::sink_cli {

// Prints "ferry <command>: <message>" to stderr.
void Fail(std::string_view command, const std::string& message) {
  const std::string line = "ferry " + std::string(command) + ": " + message + "\n";
  std::fflush(stdout);  // keep the order of what both streams say when they share a terminal
  std::fputs(line.c_str(), stderr);
}

const rapidjson::Value& Member(const rapidjson::Value& obj, const char* name) {
  static const rapidjson::Value kNull;
  if (!obj.IsObject()) return kNull;
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? kNull : it->value;
}

std::string Str(const rapidjson::Value& v) {
  return v.IsString() ? std::string(v.GetString(), v.GetStringLength()) : std::string();
}

std::string Num(const rapidjson::Value& v) {
  if (v.IsUint64()) return std::to_string(v.GetUint64());
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  return "-";
}

// Display width in characters (UTF-8 continuation bytes do not count).
size_t Width(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

// One line of at most `max` characters: control characters become spaces, and a longer text
// is cut at a character boundary and ends in "...".
std::string Excerpt(std::string s, size_t max) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  if (Width(s) <= max) return s;
  size_t chars = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80 && ++chars > max - 3) break;
  }
  return s.substr(0, i) + "...";
}

// The ERROR of a reply, printed as "ferry <command>: <message>" (unknown_sink, whose message
// ferryd words for people) or "ferry <command>: <code>: <message>".
void PrintErrorReply(std::string_view command, const std::string& body) {
  proto::Error perr;
  if (!proto::ParseErrorBody(body, &perr)) {
    Fail(command, "ferryd sent an unreadable ERROR");
    return;
  }
  if (perr.code == proto::Errc::kUnknownSink) {
    Fail(command, perr.message);
  } else {
    Fail(command, std::string(proto::ErrcName(perr.code)) + ": " + perr.message);
  }
}

Exchange RoundTrip(const GlobalOptions& global, std::string_view command, const std::string& frame,
                   Clock::time_point reply_deadline, bool allow_offline, proto::FrameType* type,
                   std::string* body, std::string* not_running) {
  const std::string socket = ResolveSocket(global);
  Connection conn;
  std::string error;
  const auto connect_deadline = std::min(reply_deadline, Clock::now() + kConnectTimeout);
  switch (ConnectOrOffline(&conn, global, socket, connect_deadline, allow_offline, &error)) {
    case Reach::kDaemon:
    case Reach::kOffline:
      break;
    case Reach::kNotAnswering:
      Fail(command, error.empty() ? DescribeUnanswered(global, socket) : error);
      return Exchange::kNotAnswering;
    case Reach::kFailed:
      *not_running = error;  // a whole sentence (client/offline.h)
      return Exchange::kNotRunning;
  }
  if (conn.Send(frame, reply_deadline, &error) &&
      conn.Receive(reply_deadline, type, body, &error)) {
    return Exchange::kOk;
  }
  if (error.find("timed out") != std::string::npos) {
    Fail(command, DescribeUnanswered(global, socket));
    return Exchange::kNotAnswering;
  }
  Fail(command, error);
  return Exchange::kFailed;
}

}  // namespace ferry::client::sink_cli
