#include "client/status.h"

#include <time.h>

#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>

#include "client/args.h"
#include "client/common.h"
#include "client/conn.h"
#include "client/offline.h"
#include "client/spool.h"
#include "proto/event.h"
#include "proto/messages.h"

namespace ferry::client {
namespace {

constexpr const char* kStatusHelp =
    "usage: ferry status [--json] [--ack-lost] [--timeout DURATION]\n"
    "\n"
    "Shows what ferryd is doing, its upstream sinks included. Exit status: 0 healthy,\n"
    "1 degraded (journal failing, events lost, a sink paused, failing for longer than its\n"
    "degraded_after or holding dead letters, a config error), 3 ferryd not running or not\n"
    "answering within the timeout (stopped with SIGSTOP, say).\n"
    "  --json       print the status as one JSON object (docs/protocol.md \"Status object\")\n"
    "  --timeout DURATION  how long to wait for ferryd's answer (default 2s; --timeout-ms N\n"
    "                  is the same in milliseconds)\n"
    "  --ack-lost   acknowledge the events lost so far to the journal byte cap, so that\n"
    "               status is healthy again (the count stays in lost_events)\n";

const rapidjson::Value& Get(const rapidjson::Value& obj, const char* a, const char* b = nullptr) {
  static const rapidjson::Value kNull;
  if (!obj.IsObject()) return kNull;
  auto it = obj.FindMember(a);
  if (it == obj.MemberEnd()) return kNull;
  if (!b) return it->value;
  return Get(it->value, b);
}

unsigned long long U(const rapidjson::Value& v) { return v.IsUint64() ? v.GetUint64() : 0; }
std::string S(const rapidjson::Value& v) { return v.IsString() ? v.GetString() : ""; }

std::string Bytes(unsigned long long n) {
  char buf[64];
  if (n >= (1ull << 30))
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(n) / (1ull << 30));
  else if (n >= (1ull << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(n) / (1ull << 20));
  else if (n >= 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(n) / 1024);
  else
    std::snprintf(buf, sizeof buf, "%llu B", n);
  return buf;
}

std::string Duration(double s) {
  char buf[64];
  const auto t = static_cast<unsigned long long>(s);
  if (t >= 86400)
    std::snprintf(buf, sizeof buf, "%llud%lluh", t / 86400, t % 86400 / 3600);
  else if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lluh%llum", t / 3600, t % 3600 / 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%llum%llus", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  return buf;
}

// One line of at most `max` characters (a response body can hold anything): control
// characters become spaces, a longer text is cut at a character boundary and ends in "...".
std::string Excerpt(std::string s, size_t max = 80) {
  size_t width = 0;
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    width += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  }
  if (width <= max) return s;
  size_t chars = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80 && ++chars > max - 3) break;
  }
  return s.substr(0, i) + "...";
}

std::string TimeOrNever(const rapidjson::Value& v) { return v.IsString() ? S(v) : "never"; }

// A time from the status (ns since the epoch) in local time: "HH:MM:SS" today, else the date
// too.
std::string LocalTime(const rapidjson::Value& ns) {
  if (!ns.IsInt64()) return "never";
  const time_t secs = static_cast<time_t>(ns.GetInt64() / 1000000000);
  const time_t now = ::time(nullptr);
  struct tm tm {
  }, today{};
  ::localtime_r(&secs, &tm);
  ::localtime_r(&now, &today);
  char buf[64];
  std::strftime(
      buf, sizeof buf,
      tm.tm_year == today.tm_year && tm.tm_yday == today.tm_yday ? "%H:%M:%S" : "%Y-%m-%d %H:%M:%S",
      &tm);
  return buf;
}

// The `sources` array of the status: one line per agent or shell.
void PrintSources(const rapidjson::Value& sources) {
  if (!sources.IsArray()) return;  // a ferryd from before per-source status
  for (const auto& s : sources.GetArray()) {
    const auto& today = Get(s, "events_today");
    const auto& open = Get(s, "open_sessions");
    std::printf("  source   %s: %lld event(s) today, last %s, %lld open session(s)",
                Excerpt(S(Get(s, "source"))).c_str(),
                static_cast<long long>(today.IsInt64() ? today.GetInt64() : 0),
                LocalTime(Get(s, "last_ts")).c_str(),
                static_cast<long long>(open.IsInt64() ? open.GetInt64() : 0));
    const auto& error = Get(s, "last_error");
    if (error.IsObject()) {
      std::string what = S(Get(error, "kind"));
      if (!S(Get(error, "message")).empty()) what += ": " + S(Get(error, "message"));
      std::printf("; last error %s %s", LocalTime(Get(error, "ts")).c_str(),
                  Excerpt(what, 100).c_str());
    }
    std::printf("\n");
  }
}

// The `sinks` array of the status (docs/sinks.md "Status"): a block per sink.
void PrintSinks(const rapidjson::Value& sinks) {
  if (!sinks.IsArray()) return;  // a ferryd without sinks support
  if (sinks.Empty()) {
    std::printf("  sinks    none configured\n");
    return;
  }
  for (const auto& s : sinks.GetArray()) {
    const auto& tls = Get(s, "tls_verify");
    std::printf(
        "  sink     %s (%s) %s%s\n", S(Get(s, "name")).c_str(), S(Get(s, "type")).c_str(),
        S(Get(s, "url")).c_str(),
        tls.IsBool() && !tls.GetBool() ? "  TLS VERIFICATION OFF (tls_verify = false)" : "");
    const auto& lag_s = Get(s, "lag_s");
    const auto& healthy = Get(s, "healthy");
    const bool degraded = healthy.IsBool() && !healthy.GetBool();
    std::printf("           %s%s; delivered up to seq %llu; lag %llu event(s), %s\n",
                S(Get(s, "state")).c_str(), degraded ? " (DEGRADED)" : "", U(Get(s, "cursor")),
                U(Get(s, "lag_events")),
                Duration(lag_s.IsNumber() ? lag_s.GetDouble() : 0).c_str());
    std::printf("           %llu event(s) delivered; last success %s; %llu dead letter(s)\n",
                U(Get(s, "delivered_events")), TimeOrNever(Get(s, "last_success")).c_str(),
                U(Get(s, "deadlettered")));
    const auto& err = Get(s, "last_error");
    if (err.IsObject()) {
      const unsigned long long status = U(Get(err, "status"));
      std::string what = status > 0 ? "HTTP " + std::to_string(status) : std::string();
      const std::string message = S(Get(err, "message"));
      if (!message.empty()) what += (what.empty() ? "" : ": ") + message;
      std::printf("           last error %s: %s\n", TimeOrNever(Get(err, "time")).c_str(),
                  Excerpt(what, 160).c_str());
      const std::string body = S(Get(err, "body"));
      if (!body.empty()) std::printf("           response: %s\n", Excerpt(body).c_str());
    }
    const unsigned long long failures = U(Get(s, "consecutive_failures"));
    const auto& next = Get(s, "next_retry");
    if (failures > 0 || next.IsString()) {
      std::printf("           %llu consecutive failure(s)", failures);
      if (next.IsString()) std::printf("; next retry %s", S(next).c_str());
      const auto& since = Get(s, "failing_since");
      if (since.IsString()) std::printf("; failing since %s", S(since).c_str());
      std::printf("\n");
    }
  }
}

void PrintHuman(const rapidjson::Document& st) {
  const bool healthy = Get(st, "healthy").IsBool() && Get(st, "healthy").GetBool();
  std::printf(
      "ferryd %s  pid %llu  up %s  %s\n", S(Get(st, "daemon", "version")).c_str(),
      U(Get(st, "daemon", "pid")),
      Duration(Get(st, "daemon", "uptime_s").IsNumber() ? Get(st, "daemon", "uptime_s").GetDouble()
                                                        : 0)
          .c_str(),
      healthy ? "healthy" : "DEGRADED");
  const auto& problems = Get(st, "problems");
  if (problems.IsArray()) {
    for (const auto& p : problems.GetArray())
      std::printf("  problem: %s\n", p.IsString() ? p.GetString() : "?");
  }
  const auto& pending = Get(st, "config", "restart_pending");
  if (pending.IsArray() && !pending.Empty()) {
    std::string list;
    for (const auto& change : pending.GetArray()) list += (list.empty() ? "" : "; ") + S(change);
    std::printf("  config   needs a restart to apply: %s\n", list.c_str());
  }
  std::printf("  socket   %s\n  state    %s\n", S(Get(st, "daemon", "socket")).c_str(),
              S(Get(st, "daemon", "state_dir")).c_str());
  std::printf(
      "  journal  last seq %llu, durable %llu, oldest %llu; %s in %llu segment(s); fsync %s\n",
      U(Get(st, "journal", "last_seq")), U(Get(st, "journal", "durable_seq")),
      U(Get(st, "journal", "oldest_seq")), Bytes(U(Get(st, "journal", "bytes"))).c_str(),
      U(Get(st, "journal", "segments")), S(Get(st, "journal", "fsync")).c_str());
  const auto& rate = Get(st, "ingest", "events_per_s");
  std::printf(
      "  ingest   %llu events (%.1f/s now); %llu connection(s) open; %llu frame(s) rejected\n",
      U(Get(st, "ingest", "events_total")), rate.IsNumber() ? rate.GetDouble() : 0.0,
      U(Get(st, "ingest", "connections")), U(Get(st, "ingest", "rejected_total")));
  std::printf("  spool    %llu file(s), %llu event(s) waiting to be imported\n",
              U(Get(st, "spool", "pending_files")), U(Get(st, "spool", "pending_events")));
  const auto& client = Get(st, "client_errors");
  if (U(Get(client, "count")) > 0) {
    std::printf("  client problems: %llu (last: %s at %s); see %s\n", U(Get(client, "count")),
                Excerpt(S(Get(client, "last_what")), 160).c_str(),
                S(Get(client, "last_time")).c_str(), S(Get(client, "file")).c_str());
  }
  const unsigned long long lost = U(Get(st, "lost_events"));
  std::printf("  lost     %llu event(s)", lost);
  if (lost > 0) std::printf(" (%llu acknowledged)", U(Get(st, "journal", "acked_lost")));
  std::printf("\n");
  if (Get(st, "store").IsObject()) {
    std::printf(
        "  store    applied up to seq %llu (lag %llu); %llu row(s), %s; last batch %llu event(s)",
        U(Get(st, "store", "cursor")), U(Get(st, "store", "lag_events")),
        U(Get(st, "store", "rows")), Bytes(U(Get(st, "store", "db_bytes"))).c_str(),
        U(Get(st, "store", "last_batch_events")));
    const auto& progress = Get(st, "store", "rebuild_progress");
    if (progress.IsNumber()) std::printf("; rebuilding %.0f%%", 100.0 * progress.GetDouble());
    std::printf("\n");
  }
  // The archive's line once it holds or met something (docs/archive.md "Status").
  if (Get(st, "archive").IsObject() &&
      U(Get(st, "archive", "sessions")) + U(Get(st, "archive", "triggers")) +
              U(Get(st, "archive", "failed")) + U(Get(st, "archive", "evicted_sessions")) >
          0) {
    std::printf(
        "  archive  %llu session(s), %s of %s; %s copied since start; %llu missing, "
        "%llu refused, %llu evicted",
        U(Get(st, "archive", "sessions")), Bytes(U(Get(st, "archive", "stored_bytes"))).c_str(),
        Bytes(U(Get(st, "archive", "max_bytes"))).c_str(),
        Bytes(U(Get(st, "archive", "copied_bytes"))).c_str(), U(Get(st, "archive", "missing")),
        U(Get(st, "archive", "refused")), U(Get(st, "archive", "evicted_sessions")));
    if (Get(st, "archive", "last_error").IsString())
      std::printf("; last error: %s", S(Get(st, "archive", "last_error")).c_str());
    std::printf("\n");
  }
  if (U(Get(st, "journal", "deleted_segments")) > 0) {
    std::printf("  retention %llu segment(s) deleted; journal cap %s\n",
                U(Get(st, "journal", "deleted_segments")),
                Bytes(U(Get(st, "journal", "max_bytes"))).c_str());
  }
  const auto& consumers = Get(st, "consumers");
  if (consumers.IsArray()) {
    for (const auto& c : consumers.GetArray()) {
      std::printf("  consumer %s at seq %llu, %llu lost\n", S(Get(c, "name")).c_str(),
                  U(Get(c, "cursor")), U(Get(c, "lost")));
    }
  }
  PrintSources(Get(st, "sources"));
  PrintSinks(Get(st, "sinks"));
}

}  // namespace

int RunStatus(int argc, char** argv) {
  StatusArgs a;
  std::string error;
  switch (ParseStatusArgs(argc, argv, &a, &error)) {
    case Parsed::kError:
      Complain(error);
      return kUsageExitCode;
    case Parsed::kHelp:
      std::fputs(kStatusHelp, stdout);
      return 0;
    case Parsed::kRun:
      break;
  }
  const GlobalOptions& global = a.global;
  const bool json = a.json, ack_lost = a.ack_lost;
  const unsigned long long timeout_ms = a.timeout_ms;
  const std::string socket = ResolveSocket(global);
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  Connection conn;
  proto::FrameType type;
  std::string body;
  const Reach reach =
      ConnectOrOffline(&conn, global, socket, deadline, /*allow_offline=*/false, &error);
  if (reach != Reach::kDaemon ||
      !conn.Send(proto::EncodeFrame(proto::FrameType::kStatusReq,
                                    ack_lost ? std::string("{\"v\":1,\"ack_lost\":true}")
                                             : proto::MakeStatusRequestBody()),
                 deadline, &error) ||
      !conn.Receive(deadline, &type, &body, &error)) {
    // Something took the connection (or holds the socket or the lock) and did not answer in
    // time, e.g. a ferryd stopped with SIGSTOP: not "not running".
    const bool unanswered = reach == Reach::kDaemon || reach == Reach::kNotAnswering;
    if (unanswered) error = DescribeUnanswered(global, socket);
    // Without ferryd, count the spool ourselves: it is what ferryd will import when it runs.
    const SpoolCount spool = CountSpool(ResolveStateDir(global));
    if (json) {
      rapidjson::StringBuffer sb;
      proto::JsonWriter w(sb);
      w.StartObject();
      w.Key("running");
      w.Bool(unanswered);
      w.Key("answering");
      w.Bool(false);
      w.Key("socket");
      w.String(socket.c_str());
      w.Key("error");
      w.String(error.c_str());
      w.Key("spool");
      w.StartObject();
      w.Key("pending_files");
      w.Uint64(spool.files);
      w.Key("pending_events");
      w.Uint64(spool.events);
      w.EndObject();
      w.EndObject();
      std::printf("%s\n", sb.GetString());
    } else {
      std::printf("%s\n", error.c_str());  // whole sentences (client/offline.h)
      std::printf("  spool    %llu file(s), %llu event(s) waiting to be imported\n",
                  static_cast<unsigned long long>(spool.files),
                  static_cast<unsigned long long>(spool.events));
    }
    return 3;
  }
  if (type != proto::FrameType::kStatus) {
    proto::Error perr;
    proto::ParseErrorBody(body, &perr);
    Complain("ferryd did not return its status: " + perr.message);
    return 1;
  }
  rapidjson::Document doc;
  proto::Error perr;
  if (!proto::ParseJson(body, &doc, &perr) || !doc.IsObject()) {
    Complain("ferryd returned an unreadable status: " + perr.message);
    return 1;
  }
  if (json) {
    std::printf("%s\n", body.c_str());
  } else {
    PrintHuman(doc);
  }
  const auto& healthy = Get(doc, "healthy");
  return healthy.IsBool() && healthy.GetBool() ? 0 : 1;
}

}  // namespace ferry::client
