#include "client/query.h"

#include <time.h>

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "client/args.h"
#include "client/common.h"
#include "client/conn.h"
#include "proto/event.h"
#include "proto/messages.h"

namespace ferry::client {
namespace {

constexpr const char* kQueryHelp =
    "usage: ferry query SQL [--json] [--limit N] [--timeout-ms N]\n"
    "\n"
    "Runs one read-only SQL statement on ferry.db (tables events, sessions, meta; see\n"
    "docs/queries.md). ferryd runs it on a read-only connection with a time limit and a row\n"
    "cap; a statement that writes is refused. Output: an aligned table, or with --json one\n"
    "JSON object per row. Exit 0 on success, 1 when ferryd refuses or the SQL fails, 3 when\n"
    "ferryd is not running.\n";

constexpr const char* kSessionsHelp =
    "usage: ferry sessions [--source S] [--since DURATION] [--limit N] [--json]\n"
    "\n"
    "Recent sessions, newest first: source, session, start, duration, event and failure\n"
    "counts, and whether the session ended (end event), closed after going idle, or is open.\n"
    "DURATION is like 90s, 30m, 12h or 7d.\n";

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

void PrintJson(const rapidjson::Value& columns, const rapidjson::Value& rows) {
  for (const auto& row : rows.GetArray()) {
    rapidjson::StringBuffer sb;
    proto::JsonWriter w(sb);
    w.StartObject();
    for (rapidjson::SizeType c = 0; c < columns.Size() && c < row.Size(); ++c) {
      w.Key(columns[c].GetString(), columns[c].GetStringLength());
      row[c].Accept(w);
    }
    w.EndObject();
    std::printf("%s\n", sb.GetString());
  }
}

int Run(const std::string& sql, const QueryArgs& o) {
  const std::string socket = ResolveSocket(o.global);
  const auto deadline = Clock::now() + std::chrono::milliseconds(o.timeout_ms);
  Connection conn;
  proto::FrameType type;
  std::string body, error;
  if (!conn.Connect(socket, deadline, &error)) {
    Complain("ferryd is not running (no answer on " + socket + ": " + error + ")");
    return 3;
  }
  if (!conn.Send(proto::EncodeFrame(proto::FrameType::kQueryReq,
                                    proto::MakeQueryRequestBody({sql, o.limit})),
                 deadline, &error) ||
      !conn.Receive(deadline, &type, &body, &error)) {
    Complain("query: " + error);
    return 1;
  }
  if (type == proto::FrameType::kError) {
    proto::Error perr;
    proto::ParseErrorBody(body, &perr);
    Complain(std::string(proto::ErrcName(perr.code)) + ": " + perr.message);
    return 1;
  }
  rapidjson::Document doc;
  proto::Error perr;
  if (type != proto::FrameType::kQueryResult || !proto::ParseJson(body, &doc, &perr) ||
      !doc.IsObject() || !doc.HasMember("columns") || !doc["columns"].IsArray() ||
      !doc.HasMember("rows") || !doc["rows"].IsArray()) {
    Complain("ferryd returned an unreadable query result");
    return 1;
  }
  if (o.json) {
    PrintJson(doc["columns"], doc["rows"]);
  } else {
    PrintTable(doc["columns"], doc["rows"]);
  }
  std::fflush(stdout);
  if (doc.HasMember("truncated") && doc["truncated"].IsBool() && doc["truncated"].GetBool()) {
    const auto cap =
        doc.HasMember("row_cap") && doc["row_cap"].IsUint64() ? doc["row_cap"].GetUint64() : 0;
    Complain("result cut at " + std::to_string(doc["rows"].Size()) + " rows (row cap " +
             std::to_string(cap) + "); narrow the query or pass --limit");
  }
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
  const long long since_ns = o.since_ns;
  std::string sql =
      "SELECT source, session, "
      "strftime('%Y-%m-%d %H:%M:%S', first_ts / 1000000000, 'unixepoch') AS started, "
      "round((last_ts - first_ts) / 1e9, 1) AS duration_s, events, failures, "
      "CASE WHEN ended IS NULL THEN 'open' WHEN end_reason = 'idle' THEN 'idle' "
      "ELSE 'ended' END AS state, kinds FROM sessions WHERE 1";
  if (!source.empty()) sql += " AND source = " + SqlQuote(source);
  if (since_ns >= 0) {
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    const long long now = static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
    sql += " AND last_ts >= " + std::to_string(now - since_ns);
  }
  sql += " ORDER BY last_ts DESC";
  if (o.limit == 0) o.limit = 100;
  return Run(sql, o);
}

}  // namespace ferry::client
