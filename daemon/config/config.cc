#include "daemon/config/config.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <vector>

#include <toml++/toml.h>

#include "daemon/config/url_check.h"
#include "daemon/redact/url_display.h"
#include "proto/paths.h"

namespace ferry {
namespace {

struct Context {
  const std::string& path;
  std::string* error;
  std::string scope = {};  // inside a [[sink]]: `[[sink]] #2 "name"`, put before each message

  bool Fail(const toml::source_region& where, const std::string& message) {
    *error = path + ":" + std::to_string(where.begin.line) + ":" +
             std::to_string(where.begin.column) + ": " + (scope.empty() ? "" : scope + ": ") +
             message;
    return false;
  }
};

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

using Setter = std::function<bool(const toml::node&, const std::string& key, Context&)>;

Setter String(std::string* out, std::vector<std::string> allowed = {}) {
  return [out, allowed](const toml::node& n, const std::string& key, Context& ctx) {
    auto v = n.value<std::string>();
    if (!n.is_string() || !v) return ctx.Fail(n.source(), "\"" + key + "\" must be a string");
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), *v) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return ctx.Fail(n.source(), "\"" + key + "\" is \"" + *v + "\"; expected one of: " + list);
    }
    *out = *v;
    return true;
  };
}

Setter Bytes(uint64_t* out, uint64_t min, uint64_t max) {
  return [=](const toml::node& n, const std::string& key, Context& ctx) {
    uint64_t bytes = 0;
    if (n.is_integer()) {
      const int64_t v = *n.value<int64_t>();
      if (v < 0) return ctx.Fail(n.source(), "\"" + key + "\" must not be negative");
      bytes = static_cast<uint64_t>(v);
    } else if (n.is_string()) {
      if (!ParseByteSize(*n.value<std::string>(), &bytes)) {
        return ctx.Fail(n.source(),
                        "\"" + key + "\" is not a size (examples: 4096, \"512KiB\", \"64MiB\")");
      }
    } else {
      return ctx.Fail(
          n.source(),
          "\"" + key + "\" must be a size: an integer of bytes or a string like \"64MiB\"");
    }
    if (bytes < min || bytes > max) {
      return ctx.Fail(n.source(), "\"" + key + "\" = " + std::to_string(bytes) +
                                      " bytes is out of range [" + std::to_string(min) + ", " +
                                      std::to_string(max) + "]");
    }
    *out = bytes;
    return true;
  };
}

Setter Bool(bool* out) {
  return [out](const toml::node& n, const std::string& key, Context& ctx) {
    if (!n.is_boolean()) return ctx.Fail(n.source(), "\"" + key + "\" must be true or false");
    *out = *n.value<bool>();
    return true;
  };
}

Setter Count(uint64_t* out, uint64_t min, uint64_t max) {
  return [=](const toml::node& n, const std::string& key, Context& ctx) {
    if (!n.is_integer()) return ctx.Fail(n.source(), "\"" + key + "\" must be an integer");
    const int64_t v = *n.value<int64_t>();
    if (v < 0 || static_cast<uint64_t>(v) < min || static_cast<uint64_t>(v) > max) {
      return ctx.Fail(n.source(), "\"" + key + "\" = " + std::to_string(v) + " is out of range [" +
                                      std::to_string(min) + ", " + std::to_string(max) + "]");
    }
    *out = static_cast<uint64_t>(v);
    return true;
  };
}

Setter Duration(std::chrono::milliseconds* out, std::chrono::milliseconds min,
                std::chrono::milliseconds max) {
  return [=](const toml::node& n, const std::string& key, Context& ctx) {
    std::chrono::milliseconds d{};
    if (!n.is_string() || !ParseDuration(*n.value<std::string>(), &d)) {
      return ctx.Fail(
          n.source(),
          "\"" + key +
              "\" must be a duration string such as \"200ms\", \"1s\", \"5m\", \"12h\" or \"7d\"");
    }
    if (d < min || d > max) {
      return ctx.Fail(n.source(), "\"" + key + "\" is out of range [" +
                                      std::to_string(min.count()) + "ms, " +
                                      std::to_string(max.count()) + "ms]");
    }
    *out = d;
    return true;
  };
}

bool Walk(const toml::table& table, const std::string& prefix,
          const std::map<std::string, Setter>& setters, Context& ctx) {
  for (auto&& [k, node] : table) {
    const std::string key = prefix + std::string(k.str());
    bool known_section = false;
    for (const auto& [name, setter] : setters) known_section |= name.rfind(key + ".", 0) == 0;
    if (known_section) {
      if (!node.is_table()) return ctx.Fail(node.source(), "\"" + key + "\" must be a table");
      if (!Walk(*node.as_table(), key + ".", setters, ctx)) return false;
      continue;
    }
    auto it = setters.find(key);
    if (it == setters.end()) {
      // Suggest a section as well as a key, so "[jornal]" points at "journal".
      std::vector<std::string> candidates;
      for (const auto& [name, setter] : setters) {
        candidates.push_back(name);
        for (size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1)) {
          candidates.push_back(name.substr(0, dot));
        }
      }
      std::string best;
      size_t best_d = 3;
      for (const auto& name : candidates) {
        const size_t d = EditDistance(key, name);
        if (d < best_d) best_d = d, best = name;
      }
      std::string msg = "unknown key \"" + key + "\"";
      if (!best.empty()) msg += " (did you mean \"" + best + "\"?)";
      const toml::source_region& where = k.source().begin.line ? k.source() : node.source();
      return ctx.Fail(where, msg);
    }
    if (!it->second(node, key, ctx)) return false;
  }
  return true;
}

bool ValidSinkName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return name != "." && name != "..";
}

// Where `key` is written in `table` (the key itself), or the table's header when it is absent.
toml::source_region KeyRegion(const toml::table& table, std::string_view key) {
  for (auto&& [k, node] : table) {
    if (k.str() == key) return k.source().begin.line ? k.source() : node.source();
  }
  return table.source();
}

// `index` counts the [[sink]] tables from 1; errors name the table (`[[sink]] #2 "up"`) and
// point at the key they are about, or at the table's header for a key that is missing.
bool ParseSink(const toml::table& table, size_t index, Context& outer, SinkConfig* sink) {
  Context ctx{outer.path, outer.error, "[[sink]] #" + std::to_string(index)};
  if (auto name = table["name"].value<std::string>()) ctx.scope += " \"" + *name + "\"";
  uint64_t gzip_level = static_cast<uint64_t>(sink->gzip_level);
  sink->line = static_cast<int>(table.source().begin.line);
  auto headers = [sink](const toml::node& n, const std::string& key, Context& c) {
    if (!n.is_table()) {
      return c.Fail(
          n.source(),
          "\"" + key + "\" must be a table of strings, e.g. headers = { \"X-Team\" = \"infra\" }");
    }
    for (auto&& [k, v] : *n.as_table()) {
      const std::string name(k.str());
      auto value = v.value<std::string>();
      if (!v.is_string() || !value) {
        return c.Fail(v.source(), "header \"" + name + "\" must be a string");
      }
      std::string lower = name;
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      static const char* kReserved[] = {"content-length",  "content-type", "content-encoding",
                                        "idempotency-key", "host",         "transfer-encoding",
                                        "authorization"};
      for (const char* r : kReserved) {
        if (lower == r) {
          return c.Fail(v.source(),
                        "header \"" + name + "\" is set by ferry" +
                            (lower == "authorization" ? " from token_file or token_env" : "") +
                            " and cannot be configured");
        }
      }
      if (name.empty() || name.find_first_of(":\r\n \t") != std::string::npos ||
          value->find_first_of("\r\n") != std::string::npos) {
        return c.Fail(v.source(), "header \"" + name + "\" is not a valid HTTP header");
      }
      sink->headers.emplace_back(name, *value);
    }
    return true;
  };
  const std::map<std::string, Setter> setters = {
      {"sink.name", String(&sink->name)},
      {"sink.type", String(&sink->type, {"http-json", "otlp-http"})},
      {"sink.url", String(&sink->url)},
      {"sink.token_file", String(&sink->token_file)},
      {"sink.token_env", String(&sink->token_env)},
      {"sink.max_events", Count(&sink->max_events, 1, 100000)},
      {"sink.max_bytes", Bytes(&sink->max_bytes, 4096, 64ull << 20)},
      {"sink.gzip", Bool(&sink->gzip)},
      {"sink.gzip_level", Count(&gzip_level, 1, 9)},
      {"sink.timeout",
       Duration(&sink->timeout, std::chrono::milliseconds(10), std::chrono::minutes(10))},
      {"sink.connect_timeout",
       Duration(&sink->connect_timeout, std::chrono::milliseconds(10), std::chrono::minutes(10))},
      {"sink.backoff_max",
       Duration(&sink->backoff_max, std::chrono::milliseconds(200), std::chrono::hours(24))},
      {"sink.batch_timeout",
       Duration(&sink->batch_timeout, std::chrono::milliseconds(0), std::chrono::minutes(10))},
      {"sink.degraded_after",
       Duration(&sink->degraded_after, std::chrono::milliseconds(0), std::chrono::hours(24 * 7))},
      {"sink.redact", Bool(&sink->redact)},
      {"sink.tls_verify", Bool(&sink->tls_verify)},
      {"sink.ca_file", String(&sink->ca_file)},
      {"sink.headers", headers},
      {"sink.signal", String(&sink->signal, {"logs", "traces"})},
      {"sink.auth", String(&sink->auth, {"bearer", "basic"})},
      {"sink.span_timeout",
       Duration(&sink->span_timeout, std::chrono::seconds(1), std::chrono::hours(24 * 7))},
  };
  if (!Walk(table, "sink.", setters, ctx)) return false;
  sink->gzip_level = static_cast<int>(gzip_level);
  const auto& where = table.source();
  if (sink->name.empty()) return ctx.Fail(where, "needs a name, e.g. name = \"upstream\"");
  if (!ValidSinkName(sink->name)) {
    return ctx.Fail(KeyRegion(table, "name"),
                    "name: may only use letters, digits, '_', '.' and '-' (1-64 chars)");
  }
  if (sink->type.empty()) return ctx.Fail(where, "needs a type: \"http-json\" or \"otlp-http\"");
  if (sink->url.empty()) return ctx.Fail(where, "needs a url: http://... or https://...");
  if (table.contains("signal") && sink->type != "otlp-http") {
    return ctx.Fail(
        KeyRegion(table, "signal"),
        "signal: only an otlp-http sink has one; remove it or set type = \"otlp-http\"");
  }
  if (sink->auth == "basic" && sink->token_file.empty() && sink->token_env.empty()) {
    return ctx.Fail(KeyRegion(table, "auth"),
                    "auth: \"basic\" sends token_file or token_env (user:password) as Basic "
                    "credentials; set one of them");
  }
  if (table.contains("span_timeout") && sink->signal != "traces") {
    return ctx.Fail(KeyRegion(table, "span_timeout"),
                    "span_timeout: only a sink with signal = \"traces\" pairs tool calls into "
                    "spans; remove it or set signal = \"traces\"");
  }
  if (const std::string problem = UrlProblem(sink->url); !problem.empty()) {
    return ctx.Fail(KeyRegion(table, "url"),
                    "url: " + problem + " in \"" + UrlForDisplay(sink->url) + "\"");
  }
  if (!sink->token_file.empty() && !sink->token_env.empty()) {
    return ctx.Fail(KeyRegion(table, "token_env"),
                    "token_env: set token_file or token_env, not both");
  }
  return true;
}

bool ParseRedactRules(const toml::node& node, Context& ctx, RedactOptions* redact) {
  const toml::array* rules = node.as_array();
  if (!rules || !rules->is_array_of_tables()) {
    return ctx.Fail(node.source(), "\"redact.rule\" must be an array of tables ([[redact.rule]])");
  }
  for (const toml::node& item : *rules) {
    RedactRule rule;
    rule.replacement = "[REDACTED]";
    const std::map<std::string, Setter> setters = {
        {"redact.rule.name", String(&rule.name)},
        {"redact.rule.pattern", String(&rule.pattern)},
        {"redact.rule.replacement", String(&rule.replacement)},
    };
    if (!Walk(*item.as_table(), "redact.rule.", setters, ctx)) return false;
    if (rule.name.empty() || rule.pattern.empty()) {
      return ctx.Fail(item.source(), "[[redact.rule]] needs a name and a pattern");
    }
    redact->rules.push_back(std::move(rule));
  }
  std::shared_ptr<const Redactor> compiled;
  const Status st = Redactor::Compile(*redact, &compiled);
  if (!st.ok()) return ctx.Fail(node.source(), st.message());
  return true;
}

}  // namespace

bool ParseByteSize(const std::string& text, uint64_t* bytes) {
  size_t i = 0;
  uint64_t n = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    const auto digit = static_cast<uint64_t>(text[i] - '0');
    if (n > (UINT64_MAX - digit) / 10) return false;
    n = n * 10 + digit;
    ++i;
  }
  if (i == 0) return false;
  while (i < text.size() && text[i] == ' ') ++i;
  const std::string unit = text.substr(i);
  static const std::map<std::string, uint64_t> kUnits = {
      {"", 1},           {"B", 1},           {"K", 1024},        {"KB", 1000},
      {"KiB", 1024},     {"M", 1ull << 20},  {"MB", 1000000},    {"MiB", 1ull << 20},
      {"G", 1ull << 30}, {"GB", 1000000000}, {"GiB", 1ull << 30}};
  auto it = kUnits.find(unit);
  if (it == kUnits.end() || n > UINT64_MAX / it->second) return false;
  *bytes = n * it->second;
  return true;
}

bool ParseDuration(const std::string& text, std::chrono::milliseconds* out) {
  size_t i = 0;
  uint64_t n = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    n = n * 10 + static_cast<uint64_t>(text[i] - '0');
    if (n > (1ull << 40)) return false;
    ++i;
  }
  if (i == 0) return false;
  const std::string unit = text.substr(i);
  uint64_t mult;
  if (unit == "ms")
    mult = 1;
  else if (unit == "s")
    mult = 1000;
  else if (unit == "m")
    mult = 60000;
  else if (unit == "h")
    mult = 3600000;
  else if (unit == "d")
    mult = 86400000;
  else if (unit == "w")
    mult = 7 * 86400000ull;
  else
    return false;
  if (n > static_cast<uint64_t>(INT64_MAX) / mult) return false;
  const uint64_t ms = n * mult;
  *out = std::chrono::milliseconds(static_cast<int64_t>(ms));
  return true;
}

namespace {

std::string ParseErrorMessage(const std::string& path, const toml::parse_error& e) {
  return path + ":" + std::to_string(e.source().begin.line) + ":" +
         std::to_string(e.source().begin.column) + ": " + std::string(e.description());
}

// Applies a parsed file to *config: every key checked, named in errors as path:line:column.
bool ApplyConfig(toml::table root, const std::string& path, Config* config, std::string* error);

}  // namespace

bool LoadConfig(const std::string& path, bool required, Config* config, std::string* error) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    // Only a file that is not there means "run on the defaults"; one we cannot reach
    // (EACCES, ELOOP, ...) would otherwise be silently ignored.
    if (!required && errno == ENOENT) return true;
    *error = path + ": cannot read the config file: " + std::strerror(errno);
    return false;
  }
  // toml++ reads a directory as an empty file, which would mean "all defaults". (Other
  // non-regular files are fine: --config /dev/null is a way to ask for the defaults.)
  if (S_ISDIR(st.st_mode)) {
    *error = path + ": cannot read the config file: " + std::strerror(EISDIR);
    return false;
  }
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    *error = ParseErrorMessage(path, e);
    return false;
  }
  return ApplyConfig(std::move(root), path, config, error);
}

bool ParseConfigText(std::string_view text, const std::string& path, Config* config,
                     std::string* error) {
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    *error = ParseErrorMessage(path, e);
    return false;
  }
  return ApplyConfig(std::move(root), path, config, error);
}

namespace {

bool ApplyConfig(toml::table root, const std::string& path, Config* config, std::string* error) {
  config->path = path;
  std::string fsync = FsyncPolicyName(config->fsync);
  const std::map<std::string, Setter> setters = {
      {"log_level",
       String(&config->log_level, {"trace", "debug", "info", "warn", "error", "critical", "off"})},
      {"socket", String(&config->socket_path)},
      {"state_dir", String(&config->state_dir)},
      {"journal.fsync", String(&fsync, {"never", "interval", "always"})},
      {"journal.fsync_interval",
       Duration(&config->fsync_interval, std::chrono::milliseconds(1), std::chrono::hours(1))},
      {"journal.segment_size", Bytes(&config->segment_bytes, 4096, 1ull << 32)},
      {"journal.max_bytes",
       [config, set = Bytes(&config->max_bytes, 1ull << 20, 1ull << 50)](
           const toml::node& n, const std::string& key, Context& c) {
         config->max_bytes_auto = false;
         return set(n, key, c);
       }},
      {"journal.max_age",
       Duration(&config->journal_max_age, std::chrono::seconds(1), std::chrono::hours(24 * 36500))},
      {"journal.test_hold_consumer", String(&config->test_hold_consumer)},
      {"ingest.max_frame", Bytes(&config->max_frame_bytes, 1024, 64ull << 20)},
      {"ingest.max_connections", Count(&config->max_connections, 1, 1000000)},
      {"ingest.idle_timeout",
       Duration(&config->idle_timeout, std::chrono::milliseconds(10), std::chrono::hours(24))},
      {"ingest.frame_timeout",
       Duration(&config->frame_timeout, std::chrono::milliseconds(10), std::chrono::hours(1))},
      {"ingest.max_batch_events", Count(&config->max_batch_events, 1, 1000000)},
      {"spool.dedupe_window", Count(&config->dedupe_window, 0, 100000000)},
      {"store.enabled", Bool(&config->store_enabled)},
      {"store.batch_interval", Duration(&config->store_batch_interval, std::chrono::milliseconds(1),
                                        std::chrono::minutes(10))},
      {"store.batch_events", Count(&config->store_batch_events, 1, 1000000)},
      {"store.session_idle_timeout",
       Duration(&config->session_idle_timeout, std::chrono::seconds(1),
                std::chrono::hours(24 * 365))},
      {"store.retain_age", Duration(&config->store_retain_age, std::chrono::milliseconds(0),
                                    std::chrono::hours(24 * 36500))},
      {"store.retain_rows", Count(&config->store_retain_rows, 0, 1ull << 62)},
      {"store.query_timeout",
       Duration(&config->query_timeout, std::chrono::milliseconds(10), std::chrono::hours(1))},
      {"store.query_max_rows", Count(&config->query_max_rows, 1, 10000000)},
      {"store.search", Bool(&config->store_search)},
      {"archive.enabled", Bool(&config->archive_enabled)},
      {"archive.max_bytes", Bytes(&config->archive_max_bytes, 1ull << 20, 1ull << 50)},
      {"redact.builtin", Bool(&config->redact.builtin)},
      {"redact.local", Bool(&config->redact.local)},
  };
  Context ctx{path, error};
  // [[sink]] and [[redact.rule]] are arrays of tables: parsed on their own, then removed so
  // the key walk sees only plain keys.
  if (const toml::node* sinks = root.get("sink")) {
    const toml::array* list = sinks->as_array();
    if (!list || !list->is_array_of_tables()) {
      return ctx.Fail(sinks->source(), "\"sink\" must be an array of tables ([[sink]])");
    }
    for (const toml::node& item : *list) {
      SinkConfig sink;
      if (!ParseSink(*item.as_table(), config->sinks.size() + 1, ctx, &sink)) return false;
      for (size_t i = 0; i < config->sinks.size(); ++i) {
        if (config->sinks[i].name == sink.name) {
          return ctx.Fail(KeyRegion(*item.as_table(), "name"),
                          "[[sink]] #" + std::to_string(config->sinks.size() + 1) + " \"" +
                              sink.name + "\": name: already used by [[sink]] #" +
                              std::to_string(i + 1) + " at line " +
                              std::to_string(config->sinks[i].line));
        }
      }
      config->sinks.push_back(std::move(sink));
    }
    root.erase("sink");
  }
  if (toml::table* redact = root.get_as<toml::table>("redact")) {
    if (const toml::node* rules = redact->get("rule")) {
      if (!ParseRedactRules(*rules, ctx, &config->redact)) return false;
      redact->erase("rule");
    }
  }
  if (!Walk(root, "", setters, ctx)) return false;
  config->fsync = fsync == "never"    ? FsyncPolicy::kNever
                  : fsync == "always" ? FsyncPolicy::kAlways
                                      : FsyncPolicy::kInterval;
  return true;
}

}  // namespace

}  // namespace ferry
