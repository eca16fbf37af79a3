#include "client/query.h"

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "client/args.h"
#include "client/common.h"
#include "client/conn.h"
#include "client/read_conn.h"
#include "client/show.h"
#include "proto/event.h"
#include "proto/messages.h"

namespace ferry::client {
namespace {

constexpr const char* kQueryHelp =
    "usage: ferry query [--json] [--limit N] [--timeout DURATION] SQL\n"
    "\n"
    "Runs one read-only SQL statement on ferry.db (tables events, sessions, meta; view\n"
    "tool_spans; see docs/queries.md). ferryd runs it on a read-only connection with a\n"
    "time limit (store.query_timeout, default 5s) and a row cap (store.query_max_rows);\n"
    "a statement that writes is refused. Works when ferryd is down: a read-only ferryd\n"
    "answers.\n"
    "  --json              one JSON object per row instead of a table; a column named\n"
    "                      payload holds the stored payload as nested JSON (its bytes as\n"
    "                      received, numbers digit for digit), not as an escaped string\n"
    "  --limit N           at most N rows (no more than store.query_max_rows); the result\n"
    "                      is then cut at N without a warning\n"
    "  --timeout DURATION  how long to wait for the result (default 30s; 500ms, 2m). A\n"
    "                      ferryd that has not answered by then is reported as not\n"
    "                      answering; give more when store.query_timeout is longer\n"
    "Without --limit, stderr says when the row cap or the 3 MiB answer size cut a result.\n"
    "Exit status: 0 ok, 1 refused or failed, 2 bad usage, 3 ferryd not running or not\n"
    "answering.\n";

constexpr const char* kSessionsHelp =
    "usage: ferry sessions [--source S] [--since DURATION] [--limit N] [--json]\n"
    "                      [--timeout DURATION]\n"
    "\n"
    "Recent sessions, newest first: source, session id, when it started (local time, with\n"
    "the zone), how long it lasted (first to last event), event and failure counts, and\n"
    "whether it ended (end event), closed after going idle, or is open. Works when ferryd\n"
    "is down: a read-only ferryd answers.\n"
    "  --source S          only sessions of this source (zsh, claude-code, ...)\n"
    "  --since DURATION    only sessions with an event in the last DURATION (90s, 30m,\n"
    "                      12h, 7d)\n"
    "  --limit N           at most N sessions (default 100)\n"
    "  --json              one JSON object per session: started as RFC 3339 with the\n"
    "                      offset, duration_s in seconds, the counts and kinds (events per\n"
    "                      kind)\n"
    "  --timeout DURATION  how long to wait for ferryd's answer (default 10s)\n"
    "Exit status: 0 ok, 1 failed, 2 bad usage, 3 ferryd not running or not answering.\n";

constexpr size_t kMaxCell = 80;

std::string Cell(const rapidjson::Value& v) {
  if (v.IsNull()) return "";
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  v.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

// Display width in characters (UTF-8 continuation bytes do not count).
size_t Width(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

std::string Clip(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  }
  if (Width(s) <= kMaxCell) return s;
  size_t chars = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80 && ++chars > kMaxCell - 3) break;
  }
  return s.substr(0, i) + "...";
}

void PrintTable(const rapidjson::Value& columns, const rapidjson::Value& rows) {
  const size_t ncol = columns.Size();
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> width(ncol, 0);
  std::vector<std::string> header;
  for (size_t c = 0; c < ncol; ++c) {
    header.push_back(Cell(columns[static_cast<rapidjson::SizeType>(c)]));
    width[c] = Width(header[c]);
  }
  for (const auto& row : rows.GetArray()) {
    std::vector<std::string> line;
    for (size_t c = 0; c < ncol && c < row.Size(); ++c) {
      line.push_back(Clip(Cell(row[static_cast<rapidjson::SizeType>(c)])));
      width[c] = std::max(width[c], Width(line.back()));
    }
    cells.push_back(std::move(line));
  }
  auto print = [&](const std::vector<std::string>& line) {
    std::string out;
    for (size_t c = 0; c < line.size(); ++c) {
      out += line[c];
      if (c + 1 < line.size()) out.append(width[c] - Width(line[c]) + 2, ' ');
    }
    std::printf("%s\n", out.c_str());
  };
  print(header);
  std::vector<std::string> rule;
  for (size_t c = 0; c < ncol; ++c) rule.emplace_back(width[c], '-');
  print(rule);
  for (const auto& line : cells) print(line);
}

// True for a column that holds the stored payload: its text is printed as nested JSON.
bool PayloadColumn(const rapidjson::Value& name) {
  if (!name.IsString() || name.GetStringLength() != 7) return false;
  std::string lower(name.GetString(), 7);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return lower == "payload";
}

void PrintJson(const rapidjson::Value& columns, const rapidjson::Value& rows) {
  std::vector<bool> payload;
  for (const auto& c : columns.GetArray()) payload.push_back(PayloadColumn(c));
  for (const auto& row : rows.GetArray()) {
    rapidjson::StringBuffer sb;
    proto::JsonWriter w(sb);
    w.StartObject();
    for (rapidjson::SizeType c = 0; c < columns.Size() && c < row.Size(); ++c) {
      w.Key(columns[c].GetString(), columns[c].GetStringLength());
      rapidjson::Document nested;
      proto::Error perr;
      const std::string_view text =
          row[c].IsString() ? std::string_view(row[c].GetString(), row[c].GetStringLength())
                            : std::string_view();
      if (payload[c] && row[c].IsString() && proto::ParseJson(text, &nested, &perr)) {
        // The bytes as stored (numbers digit for digit), not a re-serialised copy.
        const std::string compact = proto::CompactJson(text);
        w.RawValue(compact.data(), compact.size(), nested.GetType());
      } else {
        row[c].Accept(w);
      }
    }
    w.EndObject();
    std::printf("%s\n", sb.GetString());
  }
}

// Sends `sql` and receives the QUERY_RESULT into *doc. Returns 0, or the exit status after
// printing why.
int Fetch(const std::string& sql, const QueryArgs& o, rapidjson::Document* doc) {
  const std::string socket = ResolveSocket(o.global);
  const auto deadline = Clock::now() + std::chrono::milliseconds(o.timeout_ms);
  Connection conn;
  if (!ConnectForRead(&conn, o.global, socket, deadline, /*allow_offline=*/true)) {
    return kNotRunningExitCode;
  }
  proto::FrameType type;
  std::string body;
  const std::string frame =
      proto::EncodeFrame(proto::FrameType::kQueryReq, proto::MakeQueryRequestBody({sql, o.limit}));
  if (const int rc = SendForRead(conn, frame, deadline, o.global, socket, "query")) return rc;
  if (const int rc = ReceiveForRead(conn, deadline, &type, &body, o.global, socket, "query")) {
    return rc;
  }
  if (type == proto::FrameType::kError) {
    proto::Error perr;
    proto::ParseErrorBody(body, &perr);
    Complain(std::string(proto::ErrcName(perr.code)) + ": " + perr.message);
    return 1;
  }
  proto::Error perr;
  if (type != proto::FrameType::kQueryResult || !proto::ParseJson(body, doc, &perr) ||
      !doc->IsObject() || !doc->HasMember("columns") || !(*doc)["columns"].IsArray() ||
      !doc->HasMember("rows") || !(*doc)["rows"].IsArray()) {
    Complain("ferryd returned an unreadable query result");
    return 1;
  }
  return 0;
}

// Says on stderr when the result was cut, unless it was cut at the --limit the user gave.
// `requested`: the limit sent (0: none); `user_limit`: the one the user gave (0: none).
void WarnIfCut(const rapidjson::Document& doc, unsigned long long requested,
               unsigned long long user_limit, const char* more) {
  if (!doc.HasMember("truncated") || !doc["truncated"].IsBool() || !doc["truncated"].GetBool())
    return;
  const uint64_t rows = doc["rows"].Size();
  const uint64_t cap =
      doc.HasMember("row_cap") && doc["row_cap"].IsUint64() ? doc["row_cap"].GetUint64() : 0;
  if (user_limit > 0 && rows == user_limit) return;  // what was asked for
  if (rows < cap) {
    Complain("result cut at " + std::to_string(rows) +
             " rows: the rest would pass the 3 MiB answer size; select fewer or smaller columns "
             "(e.g. substr(payload, 1, 1000))");
  } else if (requested > cap) {
    Complain("result cut at " + std::to_string(rows) + " rows: store.query_max_rows is " +
             std::to_string(cap) + (user_limit > 0 ? " (--limit cannot ask for more)" : ""));
  } else {
    Complain("result cut at " + std::to_string(rows) + " rows (row cap " + std::to_string(cap) +
             "); " + more);
  }
}

int Run(const std::string& sql, const QueryArgs& o) {
  rapidjson::Document doc;
  if (const int rc = Fetch(sql, o, &doc)) return rc;
  if (o.json) {
    PrintJson(doc["columns"], doc["rows"]);
  } else {
    PrintTable(doc["columns"], doc["rows"]);
  }
  std::fflush(stdout);
  WarnIfCut(doc, o.limit, o.limit,
            "narrow the query or pass --limit (at most store.query_max_rows)");
  return 0;
}

std::string SqlQuote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

// The sessions query's columns, in this order.
enum SessionCol { kSource, kSession, kFirst, kLast, kEvents, kFailures, kState, kKinds, kNCols };

int64_t Int(const rapidjson::Value& v) { return v.IsInt64() ? v.GetInt64() : 0; }

void PrintSessionsJson(const rapidjson::Value& rows) {
  for (const auto& row : rows.GetArray()) {
    if (row.Size() < kNCols) continue;
    rapidjson::StringBuffer sb;
    proto::JsonWriter w(sb);
    w.StartObject();
    w.Key("source");
    row[kSource].Accept(w);
    w.Key("session");
    row[kSession].Accept(w);
    w.Key("started");
    w.String(FormatIsoTime(Int(row[kFirst]), false).c_str());
    w.Key("duration_s");
    w.Double(static_cast<double>(Int(row[kLast]) - Int(row[kFirst])) / 1e9);
    w.Key("events");
    row[kEvents].Accept(w);
    w.Key("failures");
    row[kFailures].Accept(w);
    w.Key("state");
    row[kState].Accept(w);
    w.Key("kinds");
    rapidjson::Document kinds;
    proto::Error perr;
    if (row[kKinds].IsString() &&
        proto::ParseJson(std::string_view(row[kKinds].GetString(), row[kKinds].GetStringLength()),
                         &kinds, &perr)) {
      kinds.Accept(w);
    } else {
      row[kKinds].Accept(w);
    }
    w.EndObject();
    std::printf("%s\n", sb.GetString());
  }
}

// The table: times in local time with the zone, durations for people.
void PrintSessionsTable(const rapidjson::Value& rows) {
  rapidjson::Document shown(rapidjson::kObjectType);
  auto& alloc = shown.GetAllocator();
  rapidjson::Value columns(rapidjson::kArrayType), out(rapidjson::kArrayType);
  for (const char* name :
       {"source", "session", "started", "duration", "events", "failures", "state", "kinds"}) {
    columns.PushBack(rapidjson::StringRef(name), alloc);
  }
  for (const auto& row : rows.GetArray()) {
    if (row.Size() < kNCols) continue;
    rapidjson::Value line(rapidjson::kArrayType);
    line.PushBack(rapidjson::Value(row[kSource], alloc), alloc);
    line.PushBack(rapidjson::Value(row[kSession], alloc), alloc);
    const std::string started = FormatTime(Int(row[kFirst]), false, false, true);
    const std::string took = FormatDuration(Int(row[kLast]) - Int(row[kFirst]));
    line.PushBack(rapidjson::Value(started.c_str(), alloc), alloc);
    line.PushBack(rapidjson::Value(took.c_str(), alloc), alloc);
    for (int c : {kEvents, kFailures, kState, kKinds}) {
      line.PushBack(rapidjson::Value(row[static_cast<rapidjson::SizeType>(c)], alloc), alloc);
    }
    out.PushBack(line, alloc);
  }
  PrintTable(columns, out);
}

}  // namespace

int RunQuery(int argc, char** argv) {
  QueryArgs o;
  std::string error;
  switch (ParseQueryArgs(argc, argv, &o, &error)) {
    case Parsed::kError:
      Complain(error);
      return kUsageExitCode;
    case Parsed::kHelp:
      std::fputs(kQueryHelp, stdout);
      return 0;
    case Parsed::kRun:
      break;
  }
  const std::string sql = o.sql;
  return Run(sql, o);
}

int RunSessions(int argc, char** argv) {
  QueryArgs o;
  std::string error;
  switch (ParseSessionsArgs(argc, argv, &o, &error)) {
    case Parsed::kError:
      Complain(error);
      return kUsageExitCode;
    case Parsed::kHelp:
      std::fputs(kSessionsHelp, stdout);
      return 0;
    case Parsed::kRun:
      break;
  }
  const std::string& source = o.source;
  std::string sql =
      "SELECT source, session, first_ts, last_ts, events, failures, "
      "CASE WHEN ended IS NULL THEN 'open' WHEN end_reason = 'idle' THEN 'idle' "
      "ELSE 'ended' END AS state, kinds FROM sessions WHERE 1";
  if (!source.empty()) sql += " AND source = " + SqlQuote(source);
  if (o.since_ns >= 0) sql += " AND last_ts >= " + std::to_string(NowNs() - o.since_ns);
  sql += " ORDER BY last_ts DESC";
  const unsigned long long user_limit = o.limit;
  if (o.limit == 0) o.limit = 100;
  rapidjson::Document doc;
  if (const int rc = Fetch(sql, o, &doc)) return rc;
  if (o.json) {
    PrintSessionsJson(doc["rows"]);
  } else {
    PrintSessionsTable(doc["rows"]);
  }
  std::fflush(stdout);
  if (user_limit == 0 && doc["rows"].Size() == o.limit && doc.HasMember("truncated") &&
      doc["truncated"].IsBool() && doc["truncated"].GetBool()) {
    Complain("showing the " + std::to_string(o.limit) +
             " most recent sessions; --limit N shows more");
  } else {
    WarnIfCut(doc, o.limit, user_limit, "--limit N shows more");
  }
  return 0;
}

}  // namespace ferry::client
