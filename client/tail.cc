// `ferry tail`: asks ferryd for a TAIL_REQ stream and prints each TAIL_ITEM. With -f it
// follows for ever and survives a daemon restart: it reconnects with backoff and asks to
// resume at the seq after the last one it printed, so no seq is printed twice or skipped.
#include "client/tail.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>

#include "client/args.h"
#include "client/common.h"
#include "client/conn.h"
#include "proto/event.h"
#include "proto/messages.h"

namespace ferry::client {
namespace {

constexpr const char* kTailHelp =
    "usage: ferry tail [-f] [--from SEQ] [--last N] [--source S] [--kind K] [--json]\n"
    "\n"
    "Prints journal events, oldest first: from SEQ, or else the last N (default 10).\n"
    "  -f, --follow   keep printing new events as they arrive; survives a ferryd restart\n"
    "  --source S     only events whose source is S\n"
    "  --kind K       only events whose kind is K\n"
    "  --json         one JSON object per line: the envelope plus seq and received\n"
    "Notes (reconnecting, events no longer in the journal) go to stderr.\n";

std::string Str(const rapidjson::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return "-";
  if (it->value.IsString()) return std::string(it->value.GetString(), it->value.GetStringLength());
  return "-";
}

std::string Compact(std::string_view json, size_t max) {
  std::string s = proto::CompactJson(json);
  if (s.size() > max) {
    size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
    s = s.substr(0, cut) + "...";
  }
  return s;
}

std::string Time(int64_t ns) {
  const time_t secs = static_cast<time_t>(ns / 1000000000);
  struct tm tm {};
  ::gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ns % 1000000000 / 1000000));
  return buf;
}

// `payload_json`: the payload's bytes in the TAIL_ITEM (printed as they are, so numbers keep
// every digit), or empty.
void PrintEvent(const rapidjson::Document& item, std::string_view payload_json, bool json) {
  const uint64_t seq = item["seq"].GetUint64();
  const int64_t received = item["received"].IsInt64() ? item["received"].GetInt64() : 0;
  const rapidjson::Value& ev = item["event"];
  if (json) {
    rapidjson::StringBuffer sb;
    proto::JsonWriter w(sb);
    w.StartObject();
    w.Key("seq");
    w.Uint64(seq);
    w.Key("received");
    w.Int64(received);
    for (auto it = ev.MemberBegin(); it != ev.MemberEnd(); ++it) {
      const std::string_view name(it->name.GetString(), it->name.GetStringLength());
      if (name == "seq" || name == "received") continue;
      w.Key(it->name.GetString(), it->name.GetStringLength());
      if (name == "payload" && !payload_json.empty()) {
        const std::string compact = proto::CompactJson(payload_json);
        w.RawValue(compact.data(), compact.size(), it->value.GetType());
      } else {
        it->value.Accept(w);
      }
    }
    w.EndObject();
    std::printf("%s\n", sb.GetString());
    return;
  }
  auto ts = ev.FindMember("ts");
  const int64_t when =
      ts != ev.MemberEnd() && ts->value.IsInt64() ? ts->value.GetInt64() : received;
  auto payload = ev.FindMember("payload");
  std::printf("%s %8llu %-12s %-18s %-12s %s\n", Time(when).c_str(),
              static_cast<unsigned long long>(seq), Str(ev, "source").c_str(),
              Str(ev, "kind").c_str(), Str(ev, "session").c_str(),
              payload == ev.MemberEnd() ? "" : Compact(payload_json, 80).c_str());
}

enum class StreamEnd { kDone, kRefused, kLost };

// Reads items until the replay ends (kDone), ferryd refuses (kRefused, *error says why) or
// the connection drops (kLost). Advances *next past every seq printed.
StreamEnd Stream(Connection& conn, bool follow, bool json, uint64_t* next, std::string* error) {
  for (;;) {
    proto::FrameType type;
    std::string body;
    const auto deadline =
        Clock::now() + (follow ? std::chrono::hours(24 * 365) : std::chrono::hours(1));
    if (!conn.Receive(deadline, &type, &body, error)) return StreamEnd::kLost;
    if (type == proto::FrameType::kError) {
      proto::Error perr;
      proto::ParseErrorBody(body, &perr);
      *error = perr.message;
      // A daemon that is stopping will be back: a follower waits for it.
      return perr.code == proto::Errc::kShuttingDown ? StreamEnd::kLost : StreamEnd::kRefused;
    }
    rapidjson::Document item;
    std::vector<proto::PayloadSpan> spans;  // {"event":{...}} is the envelope at depth 2
    proto::Error perr;
    if (type != proto::FrameType::kTailItem ||
        !proto::ParseEnvelopes(body, 2, &item, &spans, &perr) || !item.IsObject()) {
      *error = "unexpected reply from ferryd";
      return StreamEnd::kRefused;
    }
    if (item.HasMember("seq") && item["seq"].IsUint64() && item.HasMember("event") &&
        item["event"].IsObject()) {
      const uint64_t seq = item["seq"].GetUint64();
      if (seq < *next) continue;  // never print a seq twice
      std::string_view payload_json;
      if (spans.size() == 1 && spans[0].present())
        payload_json = std::string_view(body).substr(spans[0].begin, spans[0].end - spans[0].begin);
      PrintEvent(item, payload_json, json);
      std::fflush(stdout);
      *next = seq + 1;
    } else if (item.HasMember("skipped") && item["skipped"].IsObject()) {
      const auto& sk = item["skipped"];
      const uint64_t from = sk["from"].GetUint64(), to = sk["to"].GetUint64();
      const std::string reason = Str(sk, "reason");
      if (reason == "-" || reason == "not in the journal") {
        Complain("seqs " + std::to_string(from) + ".." + std::to_string(to) +
                 " are no longer in the journal (deleted by retention); skipping them");
      } else {
        Complain("seqs " + std::to_string(from) + ".." + std::to_string(to) + " cannot be read (" +
                 reason + "); skipping them");
      }
      *next = std::max(*next, to + 1);
    } else if (item.HasMember("waiting") && item["waiting"].IsObject()) {
      const auto& wt = item["waiting"];
      const uint64_t seq = wt.HasMember("seq") && wt["seq"].IsUint64() ? wt["seq"].GetUint64() : 0;
      Complain("waiting at seq " + std::to_string(seq) + ": " + Str(wt, "reason") +
               "; ferryd retries the read");
    } else if (item.HasMember("end")) {
      return StreamEnd::kDone;
    }
  }
}

}  // namespace

int RunTail(int argc, char** argv) {
  TailArgs a;
  std::string error;
  switch (ParseTailArgs(argc, argv, &a, &error)) {
    case Parsed::kError:
      Complain(error);
      return kUsageExitCode;
    case Parsed::kHelp:
      std::fputs(kTailHelp, stdout);
      return 0;
    case Parsed::kRun:
      break;
  }
  const GlobalOptions& global = a.global;
  const bool json = a.json;
  proto::TailRequest req;
  req.follow = a.follow;
  req.from = a.from;
  req.last = a.last;
  req.source = a.source;
  req.kind = a.kind;
  const std::string socket = ResolveSocket(global);
  uint64_t next = req.from;  // 0 until something is printed: "last N"
  auto backoff = std::chrono::milliseconds(100);
  bool disconnected = false;
  for (;;) {
    if (next > 0) req.from = next;
    Connection conn;
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    if (conn.Connect(socket, deadline, &error) &&
        conn.Send(proto::EncodeFrame(proto::FrameType::kTailReq, proto::MakeTailRequestBody(req)),
                  deadline, &error)) {
      if (disconnected) {
        Complain("reconnected to ferryd" +
                 (next > 0 ? "; resuming at seq " + std::to_string(next) : std::string()));
        disconnected = false;
      }
      const StreamEnd end = Stream(conn, req.follow, json, &next, &error);
      if (end == StreamEnd::kDone) return 0;
      if (end == StreamEnd::kRefused) {
        Complain("ferryd refused the tail: " + error);
        return 1;
      }
      backoff = std::chrono::milliseconds(100);
    }
    if (!req.follow) {
      Complain("no answer from ferryd on " + socket + ": " + error);
      return 3;
    }
    if (!disconnected) {
      Complain("lost ferryd (" + error + "); reconnecting" +
               (next > 0 ? ", will resume at seq " + std::to_string(next) : std::string()));
      disconnected = true;
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

}  // namespace ferry::client
