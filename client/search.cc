#include "client/search.h"

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
    "usage: ferry search QUERY... [--source S] [--since DURATION|TIME] [--session PREFIX]\n"
    "                    [--limit N] [--json] [--color WHEN] [--timeout DURATION]\n"
    "\n"
    "Finds recorded prompts, tool calls, tool output and shell commands, best match first\n"
    "(bm25): each hit shows when, which host, what matched, the directory, a snippet with the\n"
    "matching words highlighted, the session, and how to resume it where the host can\n"
    "(claude --resume, codex resume, gemini --resume). Works when ferryd is down.\n"
    "\n"
    "QUERY is SQLite FTS5 syntax; several arguments are joined with spaces. Words match whole\n"
    "words, case and accents ignored; every word must match (docker compose), or use OR and\n"
    "NOT (cmake OR ninja, retry NOT backoff), \"a phrase\", prefix* and NEAR(a b, 5). A word with\n"
    "characters other than letters, digits and _ goes in double quotes:\n"
    "ferry search '\"docker-compose\"'. docs/queries.md \"Search\" says what is indexed.\n"
    "  --source S          only hits from this source (claude-code, codex, zsh, ...)\n"
    "  --since WHEN        only events since WHEN: 1h, 30m or 2d ago; 2026-12-04T10:00; 10:00\n"
    "                      (today); today; yesterday (local time)\n"
    "  --session PREFIX    only the session whose id starts with PREFIX\n"
    "  --limit N           at most N hits (default 20)\n"
    "  --json              one JSON object per hit and line (docs/queries.md)\n"
    "  --color WHEN        highlight with colour: auto (a terminal, NO_COLOR unset), always,\n"
    "                      never (then matches are shown in [brackets])\n"
    "  --timeout DURATION  how long to wait for ferryd's answer (default 30s)\n"
    "Exit status: 0 hits found, 1 no hit or failed, 2 bad usage or a query FTS5 cannot\n"
    "read, 3 ferryd not running or not answering.\n";

// Marks snippet() puts around each match (replaced by colour or brackets).
constexpr char kOpen = '\x02', kClose = '\x03';
constexpr int kSnippetTokens = 16;

enum Col : rapidjson::SizeType {
  kSeq,
  kTs,
  kSource,
  kSession,
  kCwd,
  kKind,
  kMatch,
  kSnippet,
  kRank,
  kNCols
};

// The best `limit` hits are picked from the index alone (bm25 needs no text), then read back
// with their snippet (which reads the stored text) and their event. Every match is ranked, so
// a word found in most events costs the most (docs/benchmarks.md "Run L"). Filters need each
// match's event row; --since also bounds the seqs (events_ts index), so the index skips older
// matches.
std::string SearchSql(const SearchArgs& o, int64_t since_ns) {
  const std::string match = SqlString(o.query);
  // A hit is an event (rowid = seq) or an archived transcript's assistant message
  // (rowid = -transcript_messages.id).
  const std::string docs =
      " LEFT JOIN events e ON e.seq = search.rowid"
      " LEFT JOIN transcript_messages t ON t.id = -search.rowid";
  std::string where;
  if (!o.source.empty()) where += " AND coalesce(e.source, t.source) = " + SqlString(o.source);
  if (since_ns > 0) {
    const std::string since = std::to_string(since_ns);
    where += " AND coalesce(e.ts, t.ts) >= " + since +
             " AND (search.rowid < 0 OR search.rowid >= (SELECT coalesce(min(seq), 1 << 62) FROM "
             "events WHERE ts >= " +
             since + "))";
  }
  if (!o.session.empty()) {
    // Bytes, not characters: the prefix's length is its size in bytes.
    where += " AND substr(CAST(coalesce(e.session, t.session) AS BLOB), 1, " +
             std::to_string(o.session.size()) + ") = CAST(" + SqlString(o.session) + " AS BLOB)";
  }
  const std::string from = where.empty() ? " FROM search" : " FROM search" + docs;
  return "WITH top AS MATERIALIZED (SELECT search.rowid AS rid, search.rank AS r" + from +
         " WHERE search MATCH " + match + where +
         " ORDER BY search.rank, search.rowid DESC LIMIT " + std::to_string(o.limit) +
         ") SELECT e.seq, coalesce(e.ts, t.ts), coalesce(e.source, t.source), "
         "coalesce(e.session, t.session), coalesce(e.cwd, (SELECT cwd FROM events c WHERE "
         "c.source = t.source AND c.session = t.session AND c.cwd IS NOT NULL LIMIT 1)), "
         "coalesce(e.kind, 'transcript'), search.kind, "
         "snippet(search, 2, char(2), char(3), '…', " +
         std::to_string(kSnippetTokens) + "), top.r FROM top CROSS JOIN search" + docs +
         " WHERE search.rowid = top.rid AND search MATCH " + match +
         " ORDER BY top.r, top.rid DESC";
}

std::string Str(const rapidjson::Value& v) {
  return v.IsString() ? std::string(v.GetString(), v.GetStringLength()) : std::string();
}

// `s` with the match marks as `open`/`close`, on one line.
std::string Marked(const std::string& s, std::string_view open, std::string_view close) {
  std::string out, piece;
  const auto flush = [&] {
    out += OneLine(piece);
    piece.clear();
  };
  for (char c : s) {
    if (c == kOpen || c == kClose) {
      flush();
      out += c == kOpen ? open : close;
    } else {
      piece += c;
    }
  }
  flush();
  return out;
}

// A word the shell reads as it is, or the word in single quotes.
std::string ShellWord(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789/._-+:@%=,") == std::string::npos) {
    return s;
  }
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// What an FTS5 error means for the person who typed the query; "" when it is not about the
// query.
std::string ExplainQueryError(const std::string& message, const std::string& query) {
  std::string what = message;
  if (what.starts_with("SQL error: ")) what = what.substr(11);
  if (what.starts_with("fts5: ")) what = what.substr(6);
  bool about_query = false;
  for (const char* sign : {"syntax error", "no such column", "unterminated string",
                           "unknown special query", "parser stack overflow"}) {
    if (what.starts_with(sign)) about_query = true;
  }
  if (!about_query && message.find("fts5:") == std::string::npos) return "";
  return "search: cannot read the query \"" + query + "\" (FTS5 says: " + what +
         "). Words of letters, digits and _ match as they are; put anything else in double "
         "quotes, e.g. ferry search '\"docker-compose\"' or '\"/etc/hosts\"'. AND, OR, NOT, "
         "NEAR(), * (prefix), ^ (first word), - and : (columns) are operators (ferry search "
         "--help; docs/queries.md \"Search\")";
}

void PrintJson(const rapidjson::Value& row, const std::string& resume) {
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  w.StartObject();
  w.Key("seq");  // null for a transcript's message (kind "transcript")
  row[kSeq].Accept(w);
  w.Key("ts");
  row[kTs].Accept(w);
  w.Key("time");
  const std::string time = row[kTs].IsInt64() ? FormatIsoTime(row[kTs].GetInt64(), false) : "";
  w.String(time.c_str(), static_cast<rapidjson::SizeType>(time.size()));
  for (auto [key, col] :
       {std::pair{"source", kSource}, std::pair{"session", kSession}, std::pair{"cwd", kCwd},
        std::pair{"kind", kKind}, std::pair{"match", kMatch}}) {
    w.Key(key);
    row[col].Accept(w);
  }
  w.Key("snippet");
  const std::string snippet = Marked(Str(row[kSnippet]), "[", "]");
  w.String(snippet.c_str(), static_cast<rapidjson::SizeType>(snippet.size()));
  w.Key("rank");
  row[kRank].Accept(w);
  w.Key("resume");
  if (resume.empty()) {
    w.Null();
  } else {
    w.String(resume.c_str(), static_cast<rapidjson::SizeType>(resume.size()));
  }
  w.EndObject();
  std::printf("%s\n", sb.GetString());
}

void PrintHit(const rapidjson::Value& row, const std::string& resume, bool color, bool first) {
  if (!first) std::printf("\n");
  const std::string when =
      row[kTs].IsInt64() ? FormatTime(row[kTs].GetInt64(), false, false, false) : "-";
  const std::string cwd = row[kCwd].IsString() ? Str(row[kCwd]) : "-";
  const std::string what = Str(row[kMatch]) + " (" + Str(row[kKind]) + ")";
  if (color) {
    std::printf("%s%s%s  %s%s%s  %s  %s\n", sgr::kDim, when.c_str(), sgr::kReset, sgr::kCyan,
                Str(row[kSource]).c_str(), sgr::kReset, what.c_str(), cwd.c_str());
  } else {
    std::printf("%s  %s  %s  %s\n", when.c_str(), Str(row[kSource]).c_str(), what.c_str(),
                cwd.c_str());
  }
  const std::string open = color ? std::string(sgr::kBold) + sgr::kYellow : "[";
  const std::string close = color ? std::string(sgr::kReset) : "]";
  std::printf("  %s\n", Marked(Str(row[kSnippet]), open, close).c_str());
  if (!row[kSession].IsString()) return;
  if (resume.empty()) {
    std::printf("  session %s\n", Str(row[kSession]).c_str());
  } else {
    std::printf("  session %s; resume: %s\n", Str(row[kSession]).c_str(), resume.c_str());
  }
}

// No hit: says so, and why there may be none (the index is off). Returns the exit status.
int NoHits(ReadQuery& q, const SearchArgs& o) {
  rapidjson::Document doc;
  if (const int rc = q.Run("SELECT value FROM meta WHERE key = 'search'", 1, &doc)) return rc;
  const auto& rows = doc["rows"];
  if (rows.Size() == 1 && rows[0].IsArray() && rows[0].Size() == 1 && rows[0][0].IsString() &&
      std::string_view(rows[0][0].GetString()) == "off") {
    Complain(
        "search: the search index is off ([store] search = false in the config): nothing is "
        "indexed; set it to true (or remove it) and restart ferryd to index every stored event");
    return 1;
  }
  if (!o.json) std::fprintf(stderr, "no match for \"%s\"\n", o.query.c_str());
  return 1;
}

}  // namespace

std::string ResumeCommand(const std::string& source, const std::string& session,
                          const std::string& cwd) {
  if (session.empty()) return "";
  const std::string in = cwd.empty() ? "" : "cd " + ShellWord(cwd) + " && ";
  if (source == "claude-code") return in + "claude --resume " + ShellWord(session);
  if (source == "codex") return "codex resume " + ShellWord(session);
  if (source == "gemini") return in + "gemini --resume " + ShellWord(session);
  return "";
}

int RunSearch(int argc, char** argv) {
  SearchArgs o;
  std::string error;
  switch (ParseSearchArgs(argc, argv, &o, &error)) {
    case Parsed::kError:
      Complain(error);
      return kUsageExitCode;
    case Parsed::kHelp:
      std::fputs(kHelp, stdout);
      return 0;
    case Parsed::kRun:
      break;
  }
  const int64_t since =
      o.since.kind == TimeArg::Kind::kNone ? 0 : ResolveTime(o.since, false, NowNs());
  ReadQuery q(o.global, o.timeout_ms, "search");
  rapidjson::Document doc;
  std::string failed;
  if (const int rc = q.Run(SearchSql(o, since), o.limit, &doc, &failed)) {
    if (failed.empty()) return rc;  // printed already (not running, unreadable answer)
    if (const std::string why = ExplainQueryError(failed, o.query); !why.empty()) {
      Complain(why);
      return kUsageExitCode;
    }
    if (failed.find("no such table: search") != std::string::npos ||
        failed.find("no such table: transcript_messages") != std::string::npos) {
      Complain(
          "search: ferry.db has no search index yet: it was made by an older ferryd; start "
          "ferryd once to upgrade it (the upgrade indexes every stored event)");
      return 1;
    }
    Complain("query_failed: " + failed);
    return 1;
  }
  const auto& rows = doc["rows"];
  if (rows.Size() == 0) return NoHits(q, o);
  const bool color = !o.json && UseColor(o.color);
  bool first = true;
  for (const auto& row : rows.GetArray()) {
    if (!row.IsArray() || row.Size() != kNCols || !(row[kSeq].IsInt64() || row[kSeq].IsNull())) {
      Complain("search: ferryd returned an unreadable row");
      return 1;
    }
    const std::string resume = ResumeCommand(Str(row[kSource]), Str(row[kSession]),
                                             row[kCwd].IsString() ? Str(row[kCwd]) : "");
    if (o.json) {
      PrintJson(row, resume);
    } else {
      PrintHit(row, resume, color, first);
    }
    first = false;
  }
  if (std::fflush(stdout) != 0) {
    Complain("search: cannot write the output");
    return 1;
  }
  return 0;
}

}  // namespace ferry::client
