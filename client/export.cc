#include "client/export.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "client/args.h"
#include "client/common.h"
#include "client/read_query.h"
#include "client/show.h"
#include "proto/event.h"

namespace ferry::client {
namespace {

constexpr const char* kHelp =
    "usage: ferry export [--format jsonl] [--since DURATION] [--session ID] [--source S]\n"
    "                    [--timeout DURATION]\n"
    "\n"
    "Prints every stored event as one JSON line, oldest first: seq, id, ts and received (ns\n"
    "since the epoch), source, kind, session, cwd, host, pid (absent when not recorded) and\n"
    "the payload nested as stored (its bytes as received, numbers digit for digit). For\n"
    "taking your data elsewhere: ferry export > events.jsonl. Works when ferryd is down: a\n"
    "read-only ferryd answers.\n"
    "  --format jsonl      the output format (jsonl, the only one, is the default)\n"
    "  --since DURATION    only events of the last DURATION (90s, 30m, 12h, 7d)\n"
    "  --session ID        only the events of this session (its id, or the id's start)\n"
    "  --source S          only the events of this source (claude-code, zsh, ...)\n"
    "  --timeout DURATION  how long to wait for each page of events (default 30s)\n"
    "Exit status: 0 ok, 1 failed (the lines printed so far are whole), 2 bad usage, 3\n"
    "ferryd not running or not answering.\n";

// Rows asked for per page; ferryd's caps may return fewer, and the next page starts after
// the last seq received.
constexpr unsigned long long kPageRows = 2000;
// Payloads longer than this (in characters, so at most 4 bytes each) come in pieces: a page
// then stays far under the 3 MiB answer size.
constexpr int64_t kChunkChars = 262144;

enum Col : rapidjson::SizeType {
  kSeq,
  kId,
  kTs,
  kReceived,
  kSource,
  kKind,
  kSession,
  kCwd,
  kHost,
  kPid,
  kPayload,
  kLength,
  kNCols
};
constexpr const char* kNames[] = {"seq",  "id",      "ts",  "received", "source",
                                  "kind", "session", "cwd", "host",     "pid"};

std::string Where(const ExportArgs& o) {
  std::string w;
  if (!o.source.empty()) w += " AND source = " + SqlString(o.source);
  if (!o.session.empty()) {
    // Bytes, not characters: the prefix's length is its size in bytes.
    w += " AND substr(CAST(session AS BLOB), 1, " + std::to_string(o.session.size()) + ") = CAST(" +
         SqlString(o.session) + " AS BLOB)";
  }
  if (o.since_ns >= 0) w += " AND ts >= " + std::to_string(NowNs() - o.since_ns);
  return w;
}

// The payload of event `seq`, `length` characters long, in pieces. False after printing why.
int LongPayload(ReadQuery& q, int64_t seq, int64_t length, std::string* out) {
  for (int64_t at = 1; at <= length; at += kChunkChars) {
    rapidjson::Document doc;
    const std::string sql = "SELECT substr(payload, " + std::to_string(at) + ", " +
                            std::to_string(kChunkChars) +
                            ") FROM events WHERE seq = " + std::to_string(seq);
    if (const int rc = q.Run(sql, 1, &doc)) return rc;
    const auto& rows = doc["rows"];
    if (rows.Size() != 1 || !rows[0].IsArray() || rows[0].Size() != 1 || !rows[0][0].IsString()) {
      Complain("export: event " + std::to_string(seq) + " went away while it was read");
      return 1;
    }
    out->append(rows[0][0].GetString(), rows[0][0].GetStringLength());
  }
  return 0;
}

// One line for `row`; 0, or the exit status after printing why.
int PrintLine(ReadQuery& q, const rapidjson::Value& row) {
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  w.StartObject();
  for (rapidjson::SizeType c = kSeq; c < kPayload; ++c) {
    if (row[c].IsNull()) continue;
    w.Key(kNames[c]);
    row[c].Accept(w);
  }
  std::string payload;
  if (row[kPayload].IsString()) {
    payload.assign(row[kPayload].GetString(), row[kPayload].GetStringLength());
  } else if (!row[kLength].IsNull()) {
    if (const int rc = LongPayload(q, row[kSeq].GetInt64(), row[kLength].GetInt64(), &payload)) {
      return rc;
    }
  }
  rapidjson::Document nested;
  proto::Error perr;
  if (!payload.empty()) {
    w.Key("payload");
    // The stored bytes, which are compact JSON already; a payload that somehow is not JSON
    // goes out as a string rather than breaking the line.
    if (proto::ParseJson(payload, &nested, &perr)) {
      w.RawValue(payload.data(), payload.size(), nested.GetType());
    } else {
      w.String(payload.c_str(), static_cast<rapidjson::SizeType>(payload.size()));
    }
  }
  w.EndObject();
  std::fwrite(sb.GetString(), 1, sb.GetSize(), stdout);
  std::fputc('\n', stdout);
  return 0;
}

}  // namespace

int RunExport(int argc, char** argv) {
  ExportArgs o;
  std::string error;
  switch (ParseExportArgs(argc, argv, &o, &error)) {
    case Parsed::kError:
      Complain(error);
      return kUsageExitCode;
    case Parsed::kHelp:
      std::fputs(kHelp, stdout);
      return 0;
    case Parsed::kRun:
      break;
  }
  ReadQuery q(o.global, o.timeout_ms, "export");
  const std::string where = Where(o);
  int64_t after = 0;
  for (;;) {
    const std::string sql =
        "SELECT seq, id, ts, received, source, kind, session, cwd, host, pid, CASE WHEN "
        "length(payload) <= " +
        std::to_string(kChunkChars) +
        " THEN payload END, length(payload) FROM events WHERE seq > " + std::to_string(after) +
        where + " ORDER BY seq LIMIT " + std::to_string(kPageRows);
    rapidjson::Document doc;
    if (const int rc = q.Run(sql, kPageRows, &doc)) return rc;
    const auto& rows = doc["rows"];
    for (const auto& row : rows.GetArray()) {
      if (!row.IsArray() || row.Size() != kNCols || !row[kSeq].IsInt64()) {
        Complain("export: ferryd returned an unreadable row");
        return 1;
      }
      if (const int rc = PrintLine(q, row)) return rc;
      after = row[kSeq].GetInt64();
    }
    const bool cut =
        doc.HasMember("truncated") && doc["truncated"].IsBool() && doc["truncated"].GetBool();
    if (rows.Size() == 0 || (!cut && rows.Size() < kPageRows)) break;
  }
  if (std::fflush(stdout) != 0) {
    Complain("export: cannot write the output");
    return 1;
  }
  return 0;
}

}  // namespace ferry::client
