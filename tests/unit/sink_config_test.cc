// [[sink]] and [redact] tables in config.toml: defaults, every key, errors with file:line:col,
// and the reload diff by sink name.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "daemon/config/config.h"
#include "tests/unit/config_test_util.h"
#include "tests/unit/test_util.h"

namespace ferry {
namespace {

using std::chrono::milliseconds;

using test::Loaded;
using test::LoadError;

}  // namespace

TEST_CASE("sink config: no [[sink]] means no sinks", "[sink_config]") {
  Loaded l("log_level = \"info\"\n");
  REQUIRE(l.ok);
  CHECK(l.config.sinks.empty());
  CHECK(l.config.redact.builtin);
  CHECK(l.config.redact.rules.empty());
}

TEST_CASE("sink config: defaults and every key", "[sink_config]") {
  Loaded l(R"([[sink]]
name = "central"
type = "http-json"
url = "https://logs.example.com/ferry"

[[sink]]
name = "otel.local-1"
type = "otlp-http"
url = "http://127.0.0.1:4318"
token_env = "OTEL_TOKEN"
max_events = 50
max_bytes = "64KiB"
gzip = false
timeout = "2s"
connect_timeout = "500ms"
backoff_max = "30s"
batch_timeout = "0ms"
redact = false
headers = { "X-Team" = "infra", "X-Env" = "dev" }
)");
  REQUIRE(l.ok);
  REQUIRE(l.config.sinks.size() == 2);
  const SinkConfig& a = l.config.sinks[0];
  CHECK(a.name == "central");
  CHECK(a.type == "http-json");
  CHECK(a.EndpointUrl() == "https://logs.example.com/ferry");
  CHECK(a.max_events == 1000);
  CHECK(a.max_bytes == 1u << 20);
  CHECK(a.gzip);
  CHECK(a.timeout == milliseconds(10000));
  CHECK(a.connect_timeout == milliseconds(5000));
  CHECK(a.backoff_max == milliseconds(300000));
  CHECK(a.batch_timeout == milliseconds(1000));
  CHECK(a.redact);
  CHECK(a.headers.empty());
  CHECK(a.line == 1);
  const SinkConfig& b = l.config.sinks[1];
  CHECK(b.name == "otel.local-1");
  CHECK(b.EndpointUrl() == "http://127.0.0.1:4318/v1/logs");
  CHECK(b.token_env == "OTEL_TOKEN");
  CHECK(b.max_events == 50);
  CHECK(b.max_bytes == 64u << 10);
  CHECK_FALSE(b.gzip);
  CHECK(b.timeout == milliseconds(2000));
  CHECK(b.connect_timeout == milliseconds(500));
  CHECK(b.backoff_max == milliseconds(30000));
  CHECK(b.batch_timeout == milliseconds(0));
  CHECK_FALSE(b.redact);
  REQUIRE(b.headers.size() == 2);
}

TEST_CASE("sink config: otlp-http endpoint gets /v1/logs once", "[sink_config]") {
  SinkConfig s;
  s.type = "otlp-http";
  s.url = "http://h:4318/";
  CHECK(s.EndpointUrl() == "http://h:4318/v1/logs");
  s.url = "http://h:4318/v1/logs";
  CHECK(s.EndpointUrl() == "http://h:4318/v1/logs");
  s.url = "http://h:4318/base?x=1";
  CHECK(s.EndpointUrl() == "http://h:4318/base/v1/logs?x=1");
}

TEST_CASE("sink config: errors name the table, point at the key and say the problem",
          "[sink_config]") {
  CHECK(LoadError("[[sink]]\ntype = \"http-json\"\nurl = \"http://x\"\n") ==
        "F:1:1: [[sink]] #1: needs a name, e.g. name = \"upstream\"");
  CHECK(LoadError("[[sink]]\nname = \"a b\"\ntype = \"http-json\"\nurl = \"http://x\"\n") ==
        "F:2:1: [[sink]] #1 \"a b\": name: may only use letters, digits, '_', '.' and '-' "
        "(1-64 chars)");
  CHECK(LoadError("[[sink]]\nname = \"a\"\ntype = \"kafka\"\nurl = \"http://x\"\n") ==
        "F:3:8: [[sink]] #1 \"a\": \"sink.type\" is \"kafka\"; expected one of: http-json, "
        "otlp-http");
  CHECK(LoadError("[[sink]]\nname = \"a\"\nurl = \"http://x\"\n") ==
        "F:1:1: [[sink]] #1 \"a\": needs a type: \"http-json\" or \"otlp-http\"");
  CHECK(LoadError("[[sink]]\nname = \"a\"\ntype = \"http-json\"\n") ==
        "F:1:1: [[sink]] #1 \"a\": needs a url: http://... or https://...");
  CHECK(LoadError("[[sink]]\nname = \"a\"\ntype = \"http-json\"\nurl = \"ftp://x\"\n") ==
        "F:4:1: [[sink]] #1 \"a\": url: the scheme must be http:// or https:// in \"ftp://x\"");
  CHECK(LoadError("[[sink]]\nname = \"a\"\ntype = \"http-json\"\nurl = \"http://x\"\n"
                  "token_file = \"/t\"\ntoken_env = \"T\"\n") ==
        "F:6:1: [[sink]] #1 \"a\": token_env: set token_file or token_env, not both");
  CHECK(LoadError(
            "[[sink]]\nname = \"a\"\ntype = \"http-json\"\nurl = \"http://x\"\nmax_evnts = 3\n") ==
        "F:5:1: [[sink]] #1 \"a\": unknown key \"sink.max_evnts\" (did you mean "
        "\"sink.max_events\"?)");
  CHECK(LoadError("[[sink]]\nname = \"a\"\ntype = \"http-json\"\nurl = \"http://x\"\n"
                  "headers = { Authorization = \"Bearer x\" }\n") ==
        "F:5:29: [[sink]] #1 \"a\": header \"Authorization\" is set by ferry from token_file or "
        "token_env and cannot be configured");
  CHECK(LoadError("[[sink]]\nname = \"a\"\ntype = \"http-json\"\nurl = \"http://x\"\n"
                  "[[sink]]\nname = \"a\"\ntype = \"otlp-http\"\nurl = \"http://y\"\n") ==
        "F:6:1: [[sink]] #2 \"a\": name: already used by [[sink]] #1 at line 1");
  CHECK(LoadError("sink = 3\n") == "F:1:8: \"sink\" must be an array of tables ([[sink]])");
}

TEST_CASE("sink config: urls need http(s), a host and a port in 1-65535", "[sink_config]") {
  const auto url_error = [](const std::string& url) {
    return LoadError("[[sink]]\nname = \"a\"\ntype = \"http-json\"\n\n  url = \"" + url + "\"\n");
  };
  const std::string at = "F:5:3: [[sink]] #1 \"a\": url: ";
  CHECK(url_error("http://") == at + "no host in \"http://\"");
  CHECK(url_error("https:///path") == at + "no host in \"https:///path\"");
  CHECK(url_error("http://:8080/") == at + "no host in \"http://:8080/\"");
  CHECK(url_error("http://h:99999") == at + "port 99999 is out of range [1, 65535] in "
                                            "\"http://h:99999\"");
  CHECK(url_error("http://h:0/") == at + "port 0 is out of range [1, 65535] in \"http://h:0/\"");
  CHECK(url_error("http://h:/") == at + "no port after ':' in \"http://h:/\"");
  CHECK(url_error("http://h:80a/") == at + "port \"80a\" is not a number in \"http://h:80a/\"");
  CHECK(url_error("http://[::1/") == at + "the IPv6 host has no closing ']' in \"http://[::1/\"");
  CHECK(url_error("http://[]:80/") == at + "no host in \"http://[]:80/\"");
  CHECK(url_error("http://a b/") == at + "the host has a space or a control character in "
                                         "\"http://a b/\"");
  CHECK(url_error("localhost:4318") == at + "the scheme must be http:// or https:// in "
                                            "\"localhost:4318\"");
  // The credential in a url never reaches a message.
  CHECK(url_error("http://user:pw@:1/") == at + "no host in \"http://:1/\"");
  for (const char* good :
       {"http://h", "https://h:1/x", "http://h:65535/v1?a=1", "http://[::1]:4318",
        "https://user:pw@h.example.com/p", "http://127.0.0.1:9/#frag"}) {
    Loaded l(std::string("[[sink]]\nname = \"a\"\ntype = \"http-json\"\nurl = \"") + good + "\"\n");
    INFO(good << ": " << l.error);
    CHECK(l.ok);
  }
}

TEST_CASE("sink config: [redact] rules are compiled at load", "[sink_config]") {
  Loaded ok(R"([redact]
builtin = false

[[redact.rule]]
name = "corp-host"
pattern = '[a-z]+\.corp\.example\.com'
replacement = "[host]"
)");
  REQUIRE(ok.ok);
  CHECK_FALSE(ok.config.redact.builtin);
  REQUIRE(ok.config.redact.rules.size() == 1);
  CHECK(ok.config.redact.rules[0].name == "corp-host");
  CHECK(ok.config.redact.rules[0].replacement == "[host]");

  const std::string err = LoadError("[[redact.rule]]\nname = \"bad\"\npattern = \"(unclosed\"\n");
  INFO(err);
  CHECK(err.rfind("F:1:1: redact rule \"bad\": pattern: ", 0) == 0);
  CHECK(LoadError("[[redact.rule]]\nname = \"x\"\n") ==
        "F:1:1: [[redact.rule]] needs a name and a pattern");
}

TEST_CASE("sink config: reload diff by name", "[sink_config]") {
  Loaded a(R"([[sink]]
name = "keep"
type = "http-json"
url = "http://a"
[[sink]]
name = "change"
type = "http-json"
url = "http://b"
[[sink]]
name = "drop"
type = "http-json"
url = "http://c"
)");
  Loaded b(R"([[sink]]
name = "keep"
type = "http-json"
url = "http://a"
[[sink]]
name = "change"
type = "http-json"
url = "http://b2"
[[sink]]
name = "new"
type = "otlp-http"
url = "http://d"
[[redact.rule]]
name = "r"
pattern = "x+"
)");
  REQUIRE(a.ok);
  REQUIRE(b.ok);
  const ConfigChanges ch = DiffConfig(a.config, b.config);
  CHECK(ch.sinks_added == std::vector<std::string>{"new"});
  CHECK(ch.sinks_removed == std::vector<std::string>{"drop"});
  CHECK(ch.sinks_changed == std::vector<std::string>{"change"});
  CHECK(ch.redact_changed);
  CHECK(DiffConfig(a.config, a.config).empty());
}

}  // namespace ferry
