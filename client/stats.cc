#include "client/stats.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "client/args.h"
#include "client/common.h"
#include "client/read_query.h"
#include "client/show.h"
#include "proto/event.h"

namespace ferry::client {
namespace {

constexpr const char* kHelp =
    "usage: ferry stats [--since DURATION] [--source S] [--json] [--timeout DURATION]\n"
    "\n"
    "What the agents and shells did, per host (source) and per project (cwd): sessions,\n"
    "prompts, events, tool calls by tool, the share of finished calls that failed, the\n"
    "median (p50) and p95 tool-call duration, the slowest calls and commands, and shell\n"
    "commands by exit status. Tool calls are the tool_spans view (docs/queries.md). Works\n"
    "when ferryd is down: a read-only ferryd answers.\n"
    "  --since DURATION    only what happened in the last DURATION (90s, 30m, 12h, 7d)\n"
    "  --source S          only this source (claude-code, zsh, ...)\n"
    "  --json              one JSON object (hosts, projects, slowest) instead of tables\n"
    "  --timeout DURATION  how long to wait for ferryd's answer (default 30s)\n"
    "Exit status: 0 ok, 1 failed, 2 bad usage, 3 ferryd not running or not answering.\n";

constexpr size_t kSlowest = 10;

// Every prompt event, whichever host sent it.
constexpr const char* kPromptKinds =
    "'UserPromptSubmit', 'BeforeAgent', 'beforeSubmitPrompt', 'userPromptSubmitted'";

// One statement, so that the tool_spans view is computed once (MATERIALIZED). Each row is
// (section, dim, grp, tool, a, b, c, d, detail):
//   activity  dim grp  -     sessions  prompts  events
//   tool      dim grp  tool  calls     failed   unfinished
//   pct       dim grp  -     p50_ns    p95_ns   finished calls
//   exit      dim grp  -     status    commands
//   slow      source cwd tool duration outcome exit_status session input
std::string StatsSql(const StatsArgs& o) {
  std::string ev = "1", sp = "1";
  if (!o.source.empty()) {
    ev += " AND source = " + SqlString(o.source);
    sp += " AND source = " + SqlString(o.source);
  }
  if (o.since_ns >= 0) {
    const std::string since = std::to_string(NowNs() - o.since_ns);
    ev += " AND ts >= " + since;
    sp += " AND coalesce(start, \"end\") >= " + since;
  }
  std::string sql =
      "WITH e AS MATERIALIZED (SELECT source, coalesce(cwd, '') AS cwd, CASE WHEN session IS NOT "
      "NULL THEN source || char(31) || session END AS s, kind IN (" +
      std::string(kPromptKinds) + ") AS prompt FROM events WHERE " + ev +
      "), t AS MATERIALIZED (SELECT source, coalesce(cwd, '') AS cwd, session, tool, input, "
      "duration_ns AS d, outcome, exit_status FROM tool_spans WHERE " +
      sp +
      "), a AS (SELECT * FROM t WHERE tool IS NOT 'shell'), r AS (SELECT source, cwd, d, "
      "row_number() OVER (PARTITION BY source ORDER BY d) AS rs, count(*) OVER (PARTITION BY "
      "source) AS ns, row_number() OVER (PARTITION BY cwd ORDER BY d) AS rc, count(*) OVER "
      "(PARTITION BY cwd) AS nc FROM a WHERE d IS NOT NULL)";
  for (const char* dim : {"source", "cwd"}) {
    const std::string d = dim, rn = d == "source" ? "rs" : "rc", n = d == "source" ? "ns" : "nc";
    sql += std::string(d == "source" ? " SELECT" : " UNION ALL SELECT") + " 'activity', '" + d +
           "', " + d +
           ", NULL, count(DISTINCT s), sum(prompt), count(*), NULL, NULL FROM e GROUP BY " + d +
           " UNION ALL SELECT 'tool', '" + d + "', " + d +
           ", tool, count(*), sum(outcome IN ('failed', 'interrupted')), sum(outcome = "
           "'unfinished'), NULL, NULL FROM a GROUP BY " +
           d + ", tool UNION ALL SELECT 'pct', '" + d + "', " + d + ", NULL, max(CASE WHEN " + rn +
           " = (" + n + " * 50 + 99) / 100 THEN d END), max(CASE WHEN " + rn + " = (" + n +
           " * 95 + 99) / 100 THEN d END), max(" + n + "), NULL, NULL FROM r GROUP BY " + d +
           " UNION ALL SELECT 'exit', '" + d + "', " + d +
           ", NULL, exit_status, count(*), NULL, NULL, NULL FROM t WHERE tool = 'shell' GROUP BY " +
           d + ", exit_status";
  }
  sql +=
      " UNION ALL SELECT * FROM (SELECT 'slow', source, cwd, tool, d, outcome, exit_status, "
      "session, input FROM t WHERE d IS NOT NULL ORDER BY d DESC, source, session LIMIT " +
      std::to_string(kSlowest) + ")";
  return sql;
}

struct Tool {
  std::string name;
  int64_t calls = 0, failed = 0, unfinished = 0;
};

struct Group {
  int64_t sessions = 0, prompts = 0, events = 0;
  int64_t calls = 0, failed = 0, unfinished = 0;
  int64_t p50 = -1, p95 = -1;  // ns; -1: no finished call
  std::vector<Tool> tools;
  std::map<std::string, int64_t> exits;  // exit status ("unknown" when none) -> commands
};

struct Slow {
  std::string source, cwd, tool, outcome, session, input, exit_status;
  int64_t duration = 0;
};

struct Stats {
  std::map<std::string, Group> hosts, projects;
  std::vector<Slow> slowest;
};

int64_t Int(const rapidjson::Value& v) {
  if (v.IsInt64()) return v.GetInt64();
  if (v.IsDouble()) return static_cast<int64_t>(v.GetDouble());
  return 0;
}

std::string Text(const rapidjson::Value& v) {
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  return "";
}

void Collect(const rapidjson::Value& rows, Stats* st) {
  for (const auto& row : rows.GetArray()) {
    if (row.Size() < 9) continue;
    const std::string section = Text(row[0]);
    if (section == "slow") {
      st->slowest.push_back({Text(row[1]), Text(row[2]), Text(row[3]), Text(row[5]), Text(row[7]),
                             Text(row[8]), row[6].IsNull() ? "" : Text(row[6]), Int(row[4])});
      continue;
    }
    Group& g = (Text(row[1]) == "source" ? st->hosts : st->projects)[Text(row[2])];
    if (section == "activity") {
      g.sessions = Int(row[4]);
      g.prompts = Int(row[5]);
      g.events = Int(row[6]);
    } else if (section == "tool") {
      g.tools.push_back({Text(row[3]), Int(row[4]), Int(row[5]), Int(row[6])});
      g.calls += Int(row[4]);
      g.failed += Int(row[5]);
      g.unfinished += Int(row[6]);
    } else if (section == "pct" && !row[4].IsNull()) {
      g.p50 = Int(row[4]);
      g.p95 = Int(row[5]);
    } else if (section == "exit") {
      g.exits[row[4].IsNull() ? "unknown" : Text(row[4])] += Int(row[5]);
    }
  }
  for (auto* m : {&st->hosts, &st->projects}) {
    for (auto& [name, g] : *m) {
      std::sort(g.tools.begin(), g.tools.end(), [](const Tool& a, const Tool& b) {
        return a.calls != b.calls ? a.calls > b.calls : a.name < b.name;
      });
    }
  }
}

// Failed calls over finished ones; negative when none finished.
double FailureRate(const Group& g) {
  const int64_t finished = g.calls - g.unfinished;
  return finished > 0 ? static_cast<double>(g.failed) / static_cast<double>(finished) : -1;
}

void WriteGroup(proto::JsonWriter& w, const char* key, const std::string& name, const Group& g) {
  w.StartObject();
  w.Key(key);
  w.String(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
  for (auto [k, v] : {std::pair{"sessions", g.sessions}, std::pair{"prompts", g.prompts},
                      std::pair{"events", g.events}, std::pair{"tool_calls", g.calls},
                      std::pair{"failed", g.failed}, std::pair{"unfinished", g.unfinished}}) {
    w.Key(k);
    w.Int64(v);
  }
  w.Key("failure_rate");
  if (FailureRate(g) < 0)
    w.Null();
  else
    w.Double(FailureRate(g));
  w.Key("p50_ms");
  if (g.p50 < 0)
    w.Null();
  else
    w.Double(static_cast<double>(g.p50) / 1e6);
  w.Key("p95_ms");
  if (g.p95 < 0)
    w.Null();
  else
    w.Double(static_cast<double>(g.p95) / 1e6);
  w.Key("tools");
  w.StartArray();
  for (const Tool& t : g.tools) {
    w.StartObject();
    w.Key("tool");
    w.String(t.name.c_str(), static_cast<rapidjson::SizeType>(t.name.size()));
    w.Key("calls");
    w.Int64(t.calls);
    w.Key("failed");
    w.Int64(t.failed);
    w.Key("unfinished");
    w.Int64(t.unfinished);
    w.EndObject();
  }
  w.EndArray();
  w.Key("shell_exit");
  w.StartObject();
  for (const auto& [status, n] : g.exits) {
    w.Key(status.c_str());
    w.Int64(n);
  }
  w.EndObject();
  w.EndObject();
}

void PrintJson(const Stats& st, const StatsArgs& o) {
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  w.StartObject();
  w.Key("since_s");
  if (o.since_ns < 0)
    w.Null();
  else
    w.Int64(o.since_ns / 1000000000);
  w.Key("source");
  if (o.source.empty())
    w.Null();
  else
    w.String(o.source.c_str());
  w.Key("hosts");
  w.StartArray();
  for (const auto& [name, g] : st.hosts) WriteGroup(w, "source", name, g);
  w.EndArray();
  w.Key("projects");
  w.StartArray();
  for (const auto& [name, g] : st.projects) WriteGroup(w, "cwd", name, g);
  w.EndArray();
  w.Key("slowest");
  w.StartArray();
  for (const Slow& s : st.slowest) {
    w.StartObject();
    for (auto [k, v] : {std::pair{"source", &s.source}, std::pair{"session", &s.session},
                        std::pair{"cwd", &s.cwd}, std::pair{"tool", &s.tool},
                        std::pair{"input", &s.input}, std::pair{"outcome", &s.outcome}}) {
      w.Key(k);
      w.String(v->c_str(), static_cast<rapidjson::SizeType>(v->size()));
    }
    w.Key("duration_ms");
    w.Double(static_cast<double>(s.duration) / 1e6);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::printf("%s\n", sb.GetString());
}

using Table = std::vector<std::vector<std::string>>;

size_t Width(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  return n;
}

// Whether a table was printed: tables are separated by one blank line, none after the last.
bool g_table_printed = false;

// An aligned table under a title; the header row first.
void PrintTable(const char* title, const Table& t) {
  if (t.size() < 2) return;
  if (g_table_printed) std::printf("\n");
  g_table_printed = true;
  std::vector<size_t> width;
  for (const auto& line : t) {
    width.resize(std::max(width.size(), line.size()), 0);
    for (size_t c = 0; c < line.size(); ++c) width[c] = std::max(width[c], Width(line[c]));
  }
  std::printf("%s\n", title);
  for (size_t r = 0; r < t.size(); ++r) {
    std::string out;
    for (size_t c = 0; c < t[r].size(); ++c) {
      out += t[r][c];
      if (c + 1 < t[r].size()) out.append(width[c] - Width(t[r][c]) + 2, ' ');
    }
    std::printf("  %s\n", out.c_str());
  }
}

std::string Percent(double rate) {
  if (rate < 0) return "-";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", rate * 100);
  return buf;
}

// Clipped to `max` characters, on one line.
std::string Short(const std::string& s, size_t max) {
  std::string one = OneLine(s);
  if (Width(one) <= max) return one;
  size_t chars = 0, i = 0;
  for (; i < one.size(); ++i) {
    if ((static_cast<unsigned char>(one[i]) & 0xc0) != 0x80 && ++chars > max - 3) break;
  }
  return one.substr(0, i) + "...";
}

void PrintGroups(const char* title, const char* what, const std::map<std::string, Group>& m) {
  Table t = {{what, "sessions", "prompts", "events", "tool calls", "failed", "unfinished",
              "failure rate", "p50", "p95"}};
  for (const auto& [name, g] : m) {
    t.push_back({name.empty() ? "(none)" : name, std::to_string(g.sessions),
                 std::to_string(g.prompts), std::to_string(g.events), std::to_string(g.calls),
                 std::to_string(g.failed), std::to_string(g.unfinished), Percent(FailureRate(g)),
                 g.p50 < 0 ? "-" : FormatDuration(g.p50), g.p95 < 0 ? "-" : FormatDuration(g.p95)});
  }
  PrintTable(title, t);
}

void PrintText(const Stats& st, const std::string& since) {
  if (st.hosts.empty()) {
    std::printf("no events recorded%s\n", since.c_str());
    return;
  }
  PrintGroups("By host", "host", st.hosts);
  PrintGroups("By project", "project", st.projects);
  Table tools = {{"host", "tool", "calls", "failed", "unfinished"}};
  for (const auto& [name, g] : st.hosts) {
    for (const Tool& t : g.tools) {
      tools.push_back({name, t.name, std::to_string(t.calls), std::to_string(t.failed),
                       std::to_string(t.unfinished)});
    }
  }
  PrintTable("Tool calls by tool", tools);
  Table slow = {{"duration", "host", "tool", "outcome", "input"}};
  for (const Slow& s : st.slowest) {
    slow.push_back({FormatDuration(s.duration), s.source, s.tool,
                    s.outcome + (s.exit_status.empty() ? "" : " " + s.exit_status),
                    Short(s.input, 60)});
  }
  PrintTable("Slowest calls and commands", slow);
  Table exits = {{"host", "exit status", "commands"}};
  for (const auto& [name, g] : st.hosts) {
    for (const auto& [status, n] : g.exits) exits.push_back({name, status, std::to_string(n)});
  }
  PrintTable("Shell commands by exit status", exits);
}

}  // namespace

int RunStats(int argc, char** argv) {
  StatsArgs o;
  std::string error;
  switch (ParseStatsArgs(argc, argv, &o, &error)) {
    case Parsed::kError:
      Complain(error);
      return kUsageExitCode;
    case Parsed::kHelp:
      std::fputs(kHelp, stdout);
      return 0;
    case Parsed::kRun:
      break;
  }
  ReadQuery query(o.global, o.timeout_ms, "stats");
  rapidjson::Document doc;
  if (const int rc = query.Run(StatsSql(o), 0, &doc)) return rc;
  Stats st;
  Collect(doc["rows"], &st);
  if (o.json) {
    PrintJson(st, o);
  } else {
    PrintText(st, o.since_ns >= 0 ? " in that time" : "");
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace ferry::client
