// `ferry tail`: asks ferryd for a TAIL_REQ stream and prints each TAIL_ITEM. With -f it
// follows for ever and survives a daemon restart: it reconnects with backoff and asks to
// resume at the seq after the last one it printed, so no seq is printed twice or skipped.
//
// ferryd filters on source and kind (docs/protocol.md "Tail"); the other filters (--session,
// --cwd, --exit, --since, --until) are applied here. ferryd's "last N" counts records before
// any filter, so with a filter and without --from, tail reads the whole journal without
// following, keeps the last N matches and prints them; with -f it then follows from where
// that read ended.
#include "client/tail.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "client/args.h"
#include "client/common.h"
#include "client/conn.h"
#include "client/offline.h"
#include "client/read_conn.h"
#include "client/show.h"
#include "client/tail_line.h"
#include "proto/event.h"
#include "proto/messages.h"

namespace ferry::client {
namespace {

constexpr const char* kTailHelp =
    "usage: ferry tail [-f] [-n N] [--from SEQ] [--since WHEN] [--until WHEN]\n"
    "                  [--source S] [--kind K] [--session ID] [--cwd DIR] [--exit N|nonzero]\n"
    "                  [-o short|json|cat] [--utc] [--color WHEN] [--timeout DURATION]\n"
    "\n"
    "Prints recorded events, oldest first: the last 10, or what the options select. Works\n"
    "when ferryd is down (without -f): the events are read from the journal read-only.\n"
    "  -f, --follow        keep printing new events as they arrive; survives a ferryd restart\n"
    "  -n, --lines N       the last N events that match (default 10; \"all\": every one).\n"
    "                      --last N is the same\n"
    "  --from SEQ          every matching event from journal seq SEQ on (-n is ignored)\n"
    "  --since WHEN        only events at or after WHEN; without -n, every one of them\n"
    "  --until WHEN        only events before WHEN\n"
    "                      WHEN: 1h, 30m, 90s, 2d (that long ago), 2026-12-04T10:00[:SS],\n"
    "                      2026-12-04, 10:00 (today), today, yesterday, now; local time\n"
    "                      (UTC with --utc or a trailing Z)\n"
    "  --source S          only events whose source is S (claude-code, zsh, ...)\n"
    "  --kind K            only events whose kind is K (command, PreToolUse, ...)\n"
    "  --session ID        only this session; the first characters of its id are enough\n"
    "                      (the short output shows 8)\n"
    "  --cwd DIR           only events whose working directory is DIR or below it\n"
    "  --exit N|nonzero    only shell commands that exited with N (or with anything but 0)\n"
    "  -o, --output FMT    short (default): time, seq, source, kind, session and a summary,\n"
    "                      cut to the terminal's width; json: one JSON object per line (the\n"
    "                      envelope plus seq and received; --json is the same); cat: the\n"
    "                      payload only, one JSON value per line (null for none)\n"
    "  --utc               show (and read --since/--until as) UTC instead of local time\n"
    "  --color WHEN        auto (default: on a terminal, unless NO_COLOR is set), always, never\n"
    "  --timeout DURATION  without -f, how long to wait for each answer from ferryd\n"
    "                      (default 10s; 500ms, 30s, 5m)\n"
    "The short summary of a shell command reads \"exit 2    1.2s  make test\"; of an agent's\n"
    "tool call, the tool and its input; of a prompt or a message, its first line.\n"
    "Notes (reconnecting, events no longer in the journal) go to stderr.\n"
    "Exit status: 0 done, 1 ferryd refused, 2 bad usage, 3 ferryd not running (-f waits for\n"
    "it) or not answering.\n";

// An absolute path without ".", ".." (taken lexically), repeated or trailing slashes.
std::string Normalize(const std::string& path) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    const std::string part = path.substr(pos, end - pos);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    pos = end + 1;
  }
  std::string out;
  for (const std::string& part : parts) out += "/" + part;
  return out.empty() ? "/" : out;
}

using OnEvent = std::function<void(const rapidjson::Document& item, std::string_view payload)>;

// What the options select and how an event is printed.
class Printer {
 public:
  explicit Printer(const TailArgs& a) : a_(a) {
    style_.utc = a.utc;
    style_.color = a.output == TailOutput::kShort && UseColor(a.color);
    style_.width = TerminalWidth();
    const int64_t now = NowNs();
    if (a.since.kind != TimeArg::Kind::kNone) since_ = ResolveTime(a.since, a.utc, now);
    if (a.until.kind != TimeArg::Kind::kNone) until_ = ResolveTime(a.until, a.utc, now);
    cwd_ = a.cwd;
    if (!cwd_.empty() && cwd_[0] != '/') {
      // $PWD when it names this directory (the path the shell shows, symlinks kept, as the
      // shell snippets record it), else the kernel's.
      char* here = ::get_current_dir_name();
      const std::string base = here ? here : "/";
      std::free(here);
      cwd_ = base + "/" + cwd_;
    }
    if (!cwd_.empty()) cwd_ = Normalize(cwd_);
  }

  // A filter that ferryd does not apply.
  bool FiltersHere() const {
    return !a_.session.empty() || !cwd_.empty() || a_.exit != TailArgs::Exit::kAny ||
           since_ != kNone || until_ != kNone;
  }
  bool SinceGiven() const { return since_ != kNone; }

  bool Matches(const EventView& v) const {
    if (since_ != kNone && v.when_ns < since_) return false;
    if (until_ != kNone && v.when_ns >= until_) return false;
    if (!a_.session.empty() && !v.session.starts_with(a_.session)) return false;
    if (!cwd_.empty() && v.cwd != cwd_ &&
        !(v.cwd.starts_with(cwd_) && (cwd_ == "/" || v.cwd[cwd_.size()] == '/'))) {
      return false;
    }
    if (a_.exit == TailArgs::Exit::kCode && !(v.has_exit && v.exit == a_.exit_code)) return false;
    if (a_.exit == TailArgs::Exit::kNonzero && !(v.has_exit && v.exit != 0)) return false;
    return true;
  }

  // The line for one event, or false when the filters leave it out.
  bool Render(const rapidjson::Document& item, std::string_view payload, std::string* line) const {
    const EventView v = ViewOf(item);
    if (!Matches(v)) return false;
    if (a_.output == TailOutput::kShort) {
      *line = ShortLine(v, Summarize(item["event"]), style_);
    } else if (a_.output == TailOutput::kCat) {
      *line = payload.empty() ? "null" : proto::CompactJson(payload);
    } else {
      *line = Json(item, payload);
    }
    return true;
  }

 private:
  static constexpr int64_t kNone = INT64_MIN;

  // The envelope plus seq and received; the payload as its bytes were received.
  static std::string Json(const rapidjson::Document& item, std::string_view payload_json) {
    const rapidjson::Value& ev = item["event"];
    rapidjson::StringBuffer sb;
    proto::JsonWriter w(sb);
    w.StartObject();
    if (item.HasMember("seq") && item["seq"].IsUint64()) {
      w.Key("seq");
      w.Uint64(item["seq"].GetUint64());
    } else {  // ephemeral: no seq; "after" is the journal's last seq when it arrived
      w.Key("ephemeral");
      w.Bool(true);
      w.Key("after");
      w.Uint64(item.HasMember("after") && item["after"].IsUint64() ? item["after"].GetUint64() : 0);
    }
    w.Key("received");
    w.Int64(item.HasMember("received") && item["received"].IsInt64() ? item["received"].GetInt64()
                                                                     : 0);
    for (auto it = ev.MemberBegin(); it != ev.MemberEnd(); ++it) {
      const std::string_view name(it->name.GetString(), it->name.GetStringLength());
      if (name == "seq" || name == "received" || name == "ephemeral" || name == "after") continue;
      w.Key(it->name.GetString(), it->name.GetStringLength());
      if (name == "payload" && !payload_json.empty()) {
        const std::string compact = proto::CompactJson(payload_json);
        w.RawValue(compact.data(), compact.size(), it->value.GetType());
      } else {
        it->value.Accept(w);
      }
    }
    w.EndObject();
    return std::string(sb.GetString(), sb.GetSize());
  }

  const TailArgs& a_;
  LineStyle style_;
  int64_t since_ = kNone, until_ = kNone;
  std::string cwd_;
};

void Print(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
}

enum class StreamEnd { kDone, kRefused, kLost };

// The notes a tail prints on stderr (skipped seqs, a read being retried).
void Note(const rapidjson::Document& item, uint64_t* next) {
  auto str = [](const rapidjson::Value& obj, const char* key) {
    auto it = obj.FindMember(key);
    return it != obj.MemberEnd() && it->value.IsString() ? std::string(it->value.GetString())
                                                         : std::string("-");
  };
  if (item.HasMember("skipped") && item["skipped"].IsObject()) {
    const auto& sk = item["skipped"];
    const uint64_t from = sk["from"].GetUint64(), to = sk["to"].GetUint64();
    const std::string reason = str(sk, "reason");
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
    Complain("waiting at seq " + std::to_string(seq) + ": " + str(wt, "reason") +
             "; ferryd retries the read");
  }
}

// Reads items until the replay ends (kDone), ferryd refuses (kRefused, *error says why) or
// the connection drops or `wait` passes without a frame (kLost). Advances *next past every
// seq seen, and to the end's "next".
StreamEnd Stream(Connection& conn, std::chrono::milliseconds wait, const OnEvent& on_event,
                 uint64_t* next, std::string* error) {
  for (;;) {
    proto::FrameType type;
    std::string body;
    if (!conn.Receive(Clock::now() + wait, &type, &body, error)) return StreamEnd::kLost;
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
      on_event(item, payload_json);
      *next = seq + 1;
    } else if (item.HasMember("ephemeral") && item["ephemeral"].IsTrue() &&
               item.HasMember("event") && item["event"].IsObject()) {
      // Live only (ferry emit --ephemeral): printed in its place, never resumed from.
      std::string_view payload_json;
      if (spans.size() == 1 && spans[0].present())
        payload_json = std::string_view(body).substr(spans[0].begin, spans[0].end - spans[0].begin);
      on_event(item, payload_json);
    } else if (item.HasMember("end")) {
      if (item.HasMember("next") && item["next"].IsUint64())
        *next = std::max(*next, item["next"].GetUint64());
      return StreamEnd::kDone;
    } else {
      Note(item, next);
    }
  }
}

std::string RequestFrame(const proto::TailRequest& req) {
  return proto::EncodeFrame(proto::FrameType::kTailReq, proto::MakeTailRequestBody(req));
}

// One replay without follow on `conn` (connected), each answer within `a.timeout_ms`.
// Returns the exit status.
int Replay(const TailArgs& a, const std::string& socket, Connection& conn,
           const proto::TailRequest& req, const OnEvent& on_event, uint64_t* next) {
  const auto wait = std::chrono::milliseconds(a.timeout_ms);
  if (const int rc =
          SendForRead(conn, RequestFrame(req), Clock::now() + wait, a.global, socket, "tail")) {
    return rc;
  }
  std::string error;
  switch (Stream(conn, wait, on_event, next, &error)) {
    case StreamEnd::kDone:
      return 0;
    case StreamEnd::kRefused:
      Complain("ferryd refused the tail: " + error);
      return 1;
    case StreamEnd::kLost:
      break;
  }
  if (error.find("timed out") != std::string::npos) {
    Complain(DescribeUnanswered(a.global, socket));
    return kNotRunningExitCode;
  }
  Complain("tail: " + error);
  return 1;
}

// -f with a filter of the client's: waits for the running ferryd (never a read-only one)
// like Follow does, and returns the connection.
std::unique_ptr<Connection> WaitForDaemon(const TailArgs& a, const std::string& socket) {
  auto backoff = std::chrono::milliseconds(100);
  bool said = false;
  for (;;) {
    std::string error;
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    auto conn = std::make_unique<Connection>();
    if (ConnectOrOffline(conn.get(), a.global, socket, deadline, false, &error) == Reach::kDaemon) {
      if (said) Complain("reconnected to ferryd");
      return conn;
    }
    if (!said) Complain("lost ferryd (" + error + "); reconnecting");
    said = true;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
  }
}

// -f: follows for ever from `req` (from *next once something was seen), reconnecting.
int Follow(const TailArgs& a, const std::string& socket, proto::TailRequest req,
           const OnEvent& on_event, uint64_t next) {
  auto backoff = std::chrono::milliseconds(100);
  bool disconnected = false;
  std::string error;
  for (;;) {
    if (next > 0) req.from = next;
    Connection conn;
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    const Reach reach = ConnectOrOffline(&conn, a.global, socket, deadline, false, &error);
    if (reach == Reach::kDaemon && conn.Send(RequestFrame(req), deadline, &error)) {
      if (disconnected) {
        Complain("reconnected to ferryd" +
                 (next > 0 ? "; resuming at seq " + std::to_string(next) : std::string()));
        disconnected = false;
      }
      const StreamEnd end = Stream(conn, std::chrono::hours(24 * 365), on_event, &next, &error);
      if (end == StreamEnd::kDone) return 0;
      if (end == StreamEnd::kRefused) {
        Complain("ferryd refused the tail: " + error);
        return 1;
      }
      backoff = std::chrono::milliseconds(100);
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
  const Printer printer(a);
  const std::string socket = ResolveSocket(a.global);
  proto::TailRequest req;
  req.follow = a.follow;
  req.from = a.from;
  req.last = a.last;
  req.source = a.source;
  req.kind = a.kind;
  if (a.all && req.from == 0) req.from = 1;
  const OnEvent print = [&](const rapidjson::Document& item, std::string_view payload) {
    std::string line;
    if (printer.Render(item, payload, &line)) {
      Print(line);
      std::fflush(stdout);
    }
  };
  uint64_t next = req.from;  // 0 until something is seen: "last N"
  if ((printer.FiltersHere() || !a.source.empty() || !a.kind.empty()) && req.from == 0) {
    // ferryd's "last N" counts records before any filter: read everything (ferryd still
    // applies --source and --kind), keep the last N that match (every one with --since and
    // no -n).
    const bool keep_all = printer.SinceGiven() && !a.last_given;
    std::deque<std::string> kept;
    const OnEvent keep = [&](const rapidjson::Document& item, std::string_view payload) {
      std::string line;
      if (!printer.Render(item, payload, &line)) return;
      if (keep_all) {
        Print(line);
        return;
      }
      kept.push_back(std::move(line));
      if (kept.size() > a.last) kept.pop_front();
    };
    proto::TailRequest replay = req;
    replay.follow = false;
    replay.from = 1;
    next = 1;
    int rc = kNotRunningExitCode;
    Connection conn;
    if (a.follow) {
      rc = Replay(a, socket, *WaitForDaemon(a, socket), replay, keep, &next);
    } else if (ConnectForRead(&conn, a.global, socket,
                              Clock::now() + std::chrono::milliseconds(a.timeout_ms),
                              /*allow_offline=*/true)) {
      rc = Replay(a, socket, conn, replay, keep, &next);
    }
    for (const std::string& line : kept) Print(line);
    std::fflush(stdout);
    if (rc != 0 || !a.follow) return rc;
    return Follow(a, socket, req, print, next);
  }
  if (a.follow) return Follow(a, socket, req, print, next);
  Connection conn;
  if (!ConnectForRead(&conn, a.global, socket,
                      Clock::now() + std::chrono::milliseconds(a.timeout_ms),
                      /*allow_offline=*/true)) {
    return kNotRunningExitCode;
  }
  return Replay(a, socket, conn, req, print, &next);
}

}  // namespace ferry::client
