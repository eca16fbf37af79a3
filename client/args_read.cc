// The flags of the commands that read what ferry recorded or ask its sinks: tail, query,
// sessions, flush, deadletter (client/args.h), and the --timeout spelling they share with
// status. Pure parsing: no clock, no environment, no I/O.
#include <utility>

#include "client/args.h"
#include "proto/paths.h"

namespace ferry::client {
namespace {

// Two to four digits at text[*pos] (exactly `digits` of them), then advances *pos.
bool TakeDigits(std::string_view text, size_t* pos, size_t digits, int* out) {
  if (*pos + digits > text.size()) return false;
  int v = 0;
  for (size_t k = 0; k < digits; ++k) {
    const char c = text[*pos + k];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += digits;
  *out = v;
  return true;
}

// "HH:MM" or "HH:MM:SS" from *pos to the end (or to a trailing "Z" when `zulu` may be set).
bool TakeClock(std::string_view text, size_t pos, TimeArg* out) {
  if (!TakeDigits(text, &pos, 2, &out->hour) || pos >= text.size() || text[pos++] != ':' ||
      !TakeDigits(text, &pos, 2, &out->minute)) {
    return false;
  }
  if (pos < text.size() && text[pos] == ':') {
    ++pos;
    if (!TakeDigits(text, &pos, 2, &out->second)) return false;
  }
  if (pos < text.size() && text[pos] == 'Z') {
    out->zulu = true;
    ++pos;
  }
  return pos == text.size() && out->hour <= 23 && out->minute <= 59 && out->second <= 60;
}

// tail's text filters; each needs a non-empty value.
bool TakeTailText(int argc, char** argv, int* i, TailArgs* a, std::string* error) {
  for (auto [name, field] : {std::pair<std::string_view, std::string*>{"--source", &a->source},
                             {"--kind", &a->kind},
                             {"--session", &a->session},
                             {"--cwd", &a->cwd}}) {
    if (TakeValue(argc, argv, i, name, field, error)) {
      if (error->empty() && field->empty()) *error = std::string(name) + " needs a value";
      return true;
    }
  }
  return false;
}

// tail's -n N (also -nN, --lines N, --last N; N may be "all").
bool TakeCount(int argc, char** argv, int* i, TailArgs* a, std::string* error) {
  const std::string_view arg = argv[*i];
  std::string v;
  if (arg.starts_with("-n") && arg.size() > 2 && arg[2] != '=') {
    v = std::string(arg.substr(2));
  } else if (!TakeValue(argc, argv, i, "-n", &v, error) &&
             !TakeValue(argc, argv, i, "--lines", &v, error) &&
             !TakeValue(argc, argv, i, "--last", &v, error)) {
    return false;
  }
  a->last_given = true;
  a->all = v == "all";
  if (error->empty() && !a->all && !ParseUint(v, &a->last))
    *error = "-n needs a number of events or \"all\", not \"" + v + "\"";
  return true;
}

constexpr const char* kBadSinkName = "--sink needs a sink name ([A-Za-z0-9_.-], 1-64 characters)";

}  // namespace

bool TakeValue(int argc, char** argv, int* i, std::string_view name, std::string* value,
               std::string* error) {
  const std::string_view arg = argv[*i];
  if (arg == name) {
    if (*i + 1 >= argc) {
      *error = std::string(name) + " needs a value";
    } else {
      *value = argv[++*i];
    }
    return true;
  }
  if (arg.size() > name.size() && arg.starts_with(name) && arg[name.size()] == '=') {
    *value = std::string(arg.substr(name.size() + 1));
    return true;
  }
  return false;
}

bool TakeColor(int argc, char** argv, int* i, ColorMode* color, std::string* error) {
  std::string v;
  if (!TakeValue(argc, argv, i, "--color", &v, error)) return false;
  if (v == "auto") {
    *color = ColorMode::kAuto;
  } else if (v == "always") {
    *color = ColorMode::kAlways;
  } else if (v == "never") {
    *color = ColorMode::kNever;
  } else if (error->empty()) {
    *error = "--color needs auto, always or never, not \"" + v + "\"";
  }
  return true;
}

bool TakeTimeout(int argc, char** argv, int* i, unsigned long long* ms, std::string* error) {
  std::string text;
  if (TakeValue(argc, argv, i, "--timeout", &text, error)) {
    if (error->empty() && !ParseDurationMs(text, ms)) {
      *error = "--timeout needs a duration such as 500ms, 30s, 5m or 1h";
    }
    return true;
  }
  if (TakeValue(argc, argv, i, "--timeout-ms", &text, error)) {  // the old spelling, hidden
    if (error->empty() && (!ParseUint(text, ms) || *ms == 0 || *ms > kMaxWaitMs)) {
      *error = "--timeout-ms needs a positive integer";
    }
    return true;
  }
  return false;
}

bool ParseTimeArg(std::string_view text, TimeArg* out) {
  TimeArg t;
  if (text == "now") {
    t.kind = TimeArg::Kind::kAgo;
  } else if (text == "today" || text == "yesterday") {
    t.kind = TimeArg::Kind::kDay;
    t.day_offset = text == "today" ? 0 : -1;
  } else if (ParseDurationNs(text.starts_with('-') ? text.substr(1) : text, &t.ago_ns)) {
    t.kind = TimeArg::Kind::kAgo;
  } else if (text.size() >= 5 && text[2] == ':') {
    t.kind = TimeArg::Kind::kClock;
    if (!TakeClock(text, 0, &t)) return false;
  } else {
    t.kind = TimeArg::Kind::kAbsolute;
    size_t pos = 0;
    if (!TakeDigits(text, &pos, 4, &t.year) || pos >= text.size() || text[pos++] != '-' ||
        !TakeDigits(text, &pos, 2, &t.month) || pos >= text.size() || text[pos++] != '-' ||
        !TakeDigits(text, &pos, 2, &t.day) || t.year < 1970 || t.month < 1 || t.month > 12 ||
        t.day < 1 || t.day > 31) {
      return false;
    }
    if (pos < text.size()) {
      if (text[pos] != 'T' && text[pos] != ' ') return false;
      if (!TakeClock(text, pos + 1, &t)) return false;
    }
  }
  *out = t;
  return true;
}

// One flat if-chain over tail's flags reads best next to the help text it mirrors.
Parsed ParseTailArgs(int argc, char** argv, TailArgs* a, std::string* error) {
  for (int i = 0; i < argc && error->empty(); ++i) {
    const std::string_view arg = argv[i];
    std::string v;
    if (TakeGlobalOption(argc, argv, &i, &a->global, error) ||
        TakeTimeout(argc, argv, &i, &a->timeout_ms, error)) {
      continue;
    }
    if (arg == "-f" || arg == "--follow") {
      a->follow = true;
    } else if (arg == "--json") {
      a->output = TailOutput::kJson;
    } else if (arg == "--utc") {
      a->utc = true;
    } else if (arg == "--help" || arg == "-h") {
      return Parsed::kHelp;
    } else if (TakeValue(argc, argv, &i, "--from", &v, error)) {
      if (error->empty() && (!ParseUint(v, &a->from) || a->from == 0))
        *error = "--from needs a seq, a positive integer, not \"" + v + "\"";
    } else if (TakeCount(argc, argv, &i, a, error) || TakeTailText(argc, argv, &i, a, error)) {
    } else if (TakeValue(argc, argv, &i, "--exit", &v, error)) {
      unsigned long long code = 0;
      if (v == "nonzero") {
        a->exit = TailArgs::Exit::kNonzero;
      } else if (ParseUint(v, &code) && code <= 255) {
        a->exit = TailArgs::Exit::kCode;
        a->exit_code = static_cast<long long>(code);
      } else if (error->empty()) {
        *error = "--exit needs an exit status (0-255) or \"nonzero\", not \"" + v + "\"";
      }
    } else if (TakeValue(argc, argv, &i, "--since", &v, error) ||
               TakeValue(argc, argv, &i, "--until", &v, error)) {
      const bool since = arg.starts_with("--since");
      if (error->empty() && !ParseTimeArg(v, since ? &a->since : &a->until))
        *error = std::string(since ? "--since" : "--until") + kBadTime + "; not \"" + v + "\"";
    } else if (TakeValue(argc, argv, &i, "-o", &v, error) ||
               TakeValue(argc, argv, &i, "--output", &v, error)) {
      if (v == "short") {
        a->output = TailOutput::kShort;
      } else if (v == "json") {
        a->output = TailOutput::kJson;
      } else if (v == "cat") {
        a->output = TailOutput::kCat;
      } else if (error->empty()) {
        *error = "-o needs short, json or cat, not \"" + v + "\"";
      }
    } else if (!TakeColor(argc, argv, &i, &a->color, error)) {
      *error = "tail: unknown argument \"" + std::string(arg) + "\" (ferry tail --help)";
    }
  }
  return error->empty() ? Parsed::kRun : Parsed::kError;
}

namespace {

// The options query and sessions share; false when argv[*i] is none of them.
bool TakeQueryCommon(int argc, char** argv, int* i, QueryArgs* o, std::string* error) {
  const std::string_view arg = argv[*i];
  std::string v;
  if (TakeGlobalOption(argc, argv, i, &o->global, error)) return true;
  if (TakeTimeout(argc, argv, i, &o->timeout_ms, error)) return true;
  if (arg == "--json") {
    o->json = true;
  } else if (TakeValue(argc, argv, i, "--limit", &v, error)) {
    if (error->empty() && (!ParseUint(v, &o->limit) || o->limit == 0))
      *error = "--limit needs a positive integer";
  } else {
    return false;
  }
  return true;
}

}  // namespace

Parsed ParseQueryArgs(int argc, char** argv, QueryArgs* a, std::string* error) {
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return Parsed::kHelp;
    if (TakeQueryCommon(argc, argv, &i, a, error)) {
      if (!error->empty()) return Parsed::kError;
      continue;
    }
    if (!arg.empty() && arg[0] == '-' && !a->sql.empty()) {
      *error = "query: unknown argument \"" + std::string(arg) + "\"";
    } else if (!arg.empty() && arg[0] == '-' && arg.size() > 1 && arg[1] == '-') {
      *error = "query: unknown option \"" + std::string(arg) + "\"";
    } else if (a->sql.empty()) {
      a->sql = arg;
    } else {
      *error = "query: one SQL argument expected (quote the statement); got also \"" +
               std::string(arg) + "\"";
    }
    if (!error->empty()) return Parsed::kError;
  }
  if (a->sql.empty()) {
    *error = "query: give a SQL statement (ferry query --help)";
    return Parsed::kError;
  }
  return Parsed::kRun;
}

Parsed ParseSessionsArgs(int argc, char** argv, QueryArgs* a, std::string* error) {
  a->timeout_ms = kReadTimeoutMs;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    std::string v;
    if (arg == "--help" || arg == "-h") return Parsed::kHelp;
    if (TakeQueryCommon(argc, argv, &i, a, error)) {
      if (!error->empty()) return Parsed::kError;
      continue;
    }
    if (TakeValue(argc, argv, &i, "--source", &a->source, error)) {
      if (error->empty() && a->source.empty()) *error = "--source needs a value";
    } else if (TakeValue(argc, argv, &i, "--since", &v, error)) {
      if (error->empty() && !ParseDurationNs(v, &a->since_ns))
        *error = "--since needs a duration such as 90s, 30m, 12h or 7d";
    } else {
      *error = "sessions: unknown argument \"" + std::string(arg) + "\"";
    }
    if (!error->empty()) return Parsed::kError;
  }
  return Parsed::kRun;
}

Parsed ParseStatsArgs(int argc, char** argv, StatsArgs* a, std::string* error) {
  for (int i = 0; i < argc && error->empty(); ++i) {
    const std::string_view arg = argv[i];
    std::string v;
    if (arg == "--help" || arg == "-h") return Parsed::kHelp;
    if (TakeGlobalOption(argc, argv, &i, &a->global, error)) continue;
    if (TakeTimeout(argc, argv, &i, &a->timeout_ms, error)) continue;
    if (arg == "--json") {
      a->json = true;
    } else if (TakeValue(argc, argv, &i, "--source", &a->source, error)) {
      if (error->empty() && a->source.empty()) *error = "--source needs a value";
    } else if (TakeValue(argc, argv, &i, "--since", &v, error)) {
      if (error->empty() && !ParseDurationNs(v, &a->since_ns))
        *error = "--since needs a duration such as 90s, 30m, 12h or 7d";
    } else {
      *error = "stats: unknown argument \"" + std::string(arg) + "\" (ferry stats --help)";
    }
  }
  return error->empty() ? Parsed::kRun : Parsed::kError;
}

Parsed ParseExportArgs(int argc, char** argv, ExportArgs* a, std::string* error) {
  for (int i = 0; i < argc && error->empty(); ++i) {
    const std::string_view arg = argv[i];
    std::string v;
    if (arg == "--help" || arg == "-h") return Parsed::kHelp;
    if (TakeGlobalOption(argc, argv, &i, &a->global, error)) continue;
    if (TakeTimeout(argc, argv, &i, &a->timeout_ms, error)) continue;
    if (TakeValue(argc, argv, &i, "--format", &a->format, error)) {
      if (error->empty() && a->format != "jsonl")
        *error = "--format: unknown format \"" + a->format + "\" (jsonl is the one there is)";
    } else if (TakeValue(argc, argv, &i, "--source", &a->source, error)) {
      if (error->empty() && a->source.empty()) *error = "--source needs a value";
    } else if (TakeValue(argc, argv, &i, "--session", &a->session, error)) {
      if (error->empty() && a->session.empty()) *error = "--session needs a value";
    } else if (TakeValue(argc, argv, &i, "--since", &v, error)) {
      if (error->empty() && !ParseDurationNs(v, &a->since_ns))
        *error = "--since needs a duration such as 90s, 30m, 12h or 7d";
    } else {
      *error = "export: unknown argument \"" + std::string(arg) + "\" (ferry export --help)";
    }
  }
  return error->empty() ? Parsed::kRun : Parsed::kError;
}

Parsed ParseTranscriptArgs(int argc, char** argv, TranscriptArgs* a, std::string* error) {
  for (int i = 0; i < argc && error->empty(); ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return Parsed::kHelp;
    if (TakeGlobalOption(argc, argv, &i, &a->global, error)) continue;
    if (TakeTimeout(argc, argv, &i, &a->timeout_ms, error)) continue;
    if (TakeValue(argc, argv, &i, "--source", &a->source, error)) {
      if (error->empty() && a->source.empty()) *error = "--source needs a value";
    } else if (!arg.empty() && arg[0] != '-' && a->session.empty()) {
      a->session = std::string(arg);
    } else if (!arg.empty() && arg[0] != '-') {
      *error = "transcript: one session at a time (got \"" + a->session + "\" and \"" +
               std::string(arg) + "\")";
    } else {
      *error =
          "transcript: unknown argument \"" + std::string(arg) + "\" (ferry transcript --help)";
    }
  }
  if (error->empty() && a->session.empty()) {
    *error = "transcript: which session? (ferry transcript SESSION; ferry sessions lists them)";
  }
  return error->empty() ? Parsed::kRun : Parsed::kError;
}

Parsed ParseFlushArgs(int argc, char** argv, FlushArgs* a, std::string* error) {
  for (int i = 0; i < argc && error->empty(); ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return Parsed::kHelp;
    if (TakeGlobalOption(argc, argv, &i, &a->global, error)) continue;
    if (TakeTimeout(argc, argv, &i, &a->timeout_ms, error)) continue;
    if (arg == "--wait") {
      a->wait = true;
    } else if (TakeValue(argc, argv, &i, "--sink", &a->sink, error)) {
      if (error->empty() && !proto::ValidSinkName(a->sink)) *error = kBadSinkName;
    } else {
      *error = "unknown argument \"" + std::string(arg) + "\" (ferry flush --help)";
    }
  }
  return error->empty() ? Parsed::kRun : Parsed::kError;
}

Parsed ParseDeadletterArgs(int argc, char** argv, DeadletterArgs* a, std::string* error) {
  for (int i = 0; i < argc && error->empty(); ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h" || (a->op.empty() && arg == "help")) return Parsed::kHelp;
    if (TakeGlobalOption(argc, argv, &i, &a->global, error)) continue;
    if (TakeTimeout(argc, argv, &i, &a->timeout_ms, error)) continue;
    if (TakeValue(argc, argv, &i, "--sink", &a->sink, error)) {
      if (error->empty() && !proto::ValidSinkName(a->sink)) *error = kBadSinkName;
    } else if (arg == "--json") {
      a->json = true;
    } else if (a->op.empty() && (arg == "list" || arg == "replay" || arg == "purge")) {
      a->op = arg;
    } else {
      *error = "unknown argument \"" + std::string(arg) + "\" (ferry deadletter --help)";
    }
  }
  if (error->empty() && a->op.empty())
    *error = "say list, replay or purge (ferry deadletter --help)";
  if (error->empty() && a->json && a->op != "list") *error = "--json goes with list only";
  return error->empty() ? Parsed::kRun : Parsed::kError;
}

}  // namespace ferry::client
