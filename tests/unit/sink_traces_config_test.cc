// [[sink]] signal and span_timeout (docs/sinks.md "Traces"): parsing, errors, the
// /v1/traces endpoint, the reload diff; and the cursor file's pending_spans.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <string>

#include "daemon/config/config.h"
#include "daemon/sink/cursor_file.h"
#include "daemon/sink/token.h"
#include "tests/unit/config_test_util.h"
#include "tests/unit/test_util.h"

namespace ferry {
namespace {

using test::Loaded;
using test::LoadError;

const char* kTraces = R"([[sink]]
name = "lf"
type = "otlp-http"
url = "http://h:4318/api/public/otel"
signal = "traces"
span_timeout = "10m"
)";

}  // namespace

TEST_CASE("sink config: signal and span_timeout", "[sink_config]") {
  Loaded l(kTraces);
  REQUIRE(l.ok);
  REQUIRE(l.config.sinks.size() == 1);
  const SinkConfig& s = l.config.sinks[0];
  CHECK(s.signal == "traces");
  CHECK(s.span_timeout == std::chrono::minutes(10));
  CHECK(s.EndpointUrl() == "http://h:4318/api/public/otel/v1/traces");
  Loaded d(
      "[[sink]]\nname = \"a\"\ntype = \"otlp-http\"\nurl = \"http://h/v1/traces\"\n"
      "signal = \"traces\"\n");
  REQUIRE(d.ok);
  CHECK(d.config.sinks[0].EndpointUrl() == "http://h/v1/traces");
  CHECK(d.config.sinks[0].span_timeout == std::chrono::hours(1));
  Loaded logs("[[sink]]\nname = \"a\"\ntype = \"otlp-http\"\nurl = \"http://h\"\n");
  REQUIRE(logs.ok);
  CHECK(logs.config.sinks[0].signal == "logs");
  CHECK(logs.config.sinks[0].EndpointUrl() == "http://h/v1/logs");
}

TEST_CASE("sink config: signal and span_timeout errors", "[sink_config]") {
  CHECK(LoadError("[[sink]]\nname = \"a\"\ntype = \"http-json\"\nurl = \"http://x\"\n"
                  "signal = \"traces\"\n") ==
        "F:5:1: [[sink]] #1 \"a\": signal: only an otlp-http sink has one; remove it or set "
        "type = \"otlp-http\"");
  CHECK(LoadError("[[sink]]\nname = \"a\"\ntype = \"otlp-http\"\nurl = \"http://x\"\n"
                  "span_timeout = \"1h\"\n") ==
        "F:5:1: [[sink]] #1 \"a\": span_timeout: only a sink with signal = \"traces\" pairs "
        "tool calls into spans; remove it or set signal = \"traces\"");
  CHECK(LoadError("[[sink]]\nname = \"a\"\ntype = \"otlp-http\"\nurl = \"http://x\"\n"
                  "signal = \"metrics\"\n") ==
        "F:5:10: [[sink]] #1 \"a\": \"sink.signal\" is \"metrics\"; expected one of: logs, "
        "traces");
}

TEST_CASE("sink config: a changed signal or span_timeout restarts the sink", "[sink_config]") {
  Loaded a(kTraces);
  std::string text = kTraces;
  Loaded b(text.replace(text.find("10m"), 3, "20m"));
  text = kTraces;
  Loaded c(text.replace(text.find("signal = \"traces\"\nspan_timeout = \"10m\"\n"), 39, ""));
  REQUIRE((a.ok && b.ok && c.ok));
  CHECK(DiffConfig(a.config, b.config).sinks_changed == std::vector<std::string>{"lf"});
  CHECK(DiffConfig(a.config, c.config).sinks_changed == std::vector<std::string>{"lf"});
  CHECK(DiffConfig(a.config, a.config).empty());
}

TEST_CASE("cursor file: pending_spans round trip and journal reset", "[sink_config]") {
  test::TempDir dir;
  const std::string path = dir.path() + "/c";
  sink::CursorState st{7, 8, 9, R"([{"seq":5,"start":1,"received":2}])"};
  REQUIRE(sink::SaveCursor(path, st, true).ok());
  CHECK(test::ReadFile(path) ==
        "{\"cursor\":7,\"inflight_first\":8,\"inflight_last\":9,"
        "\"pending_spans\":[{\"seq\":5,\"start\":1,\"received\":2}]}\n");
  sink::CursorState back;
  bool found = false, reset = false;
  REQUIRE(sink::LoadCursor(path, 1, 100, &back, &found, &reset).ok());
  CHECK((found && !reset && back.cursor == 7 && back.inflight_last == 9));
  CHECK(back.pending_spans == st.pending_spans);
  // The journal was reset: the calls' start events went with it.
  REQUIRE(sink::LoadCursor(path, 1, 3, &back, &found, &reset).ok());
  CHECK((reset && back.cursor == 0 && back.pending_spans.empty()));
}

}  // namespace ferry

namespace ferry {

TEST_CASE("sink auth: basic credentials are user:password in base64", "[sink_config]") {
  CHECK(Base64("") == "");
  CHECK(Base64("a") == "YQ==");
  CHECK(Base64("ab") == "YWI=");
  CHECK(Base64("pk-lf-1:sk-lf-2") == "cGstbGYtMTpzay1sZi0y");
  SinkConfig c;
  CHECK(AuthorizationValue(c, "") == "");
  CHECK(AuthorizationValue(c, "abc") == "Bearer abc");
  c.auth = "basic";
  CHECK(AuthorizationValue(c, "pk-lf-1:sk-lf-2") == "Basic cGstbGYtMTpzay1sZi0y");
  c.token_env = "FERRY_TEST_BASIC_TOKEN";
  ::setenv("FERRY_TEST_BASIC_TOKEN", "no-colon", 1);
  std::string token;
  CHECK(ReadSinkToken(c, &token) ==
        "auth = \"basic\" needs the token_env to hold user:password (for Langfuse: public "
        "key:secret key)");
  CHECK(token.empty());
  ::setenv("FERRY_TEST_BASIC_TOKEN", "pk:sk\n", 1);
  CHECK(ReadSinkToken(c, &token).empty());
  CHECK(token == "pk:sk");
  ::unsetenv("FERRY_TEST_BASIC_TOKEN");
  CHECK(test::LoadError("[[sink]]\nname = \"a\"\ntype = \"otlp-http\"\nurl = \"http://x\"\n"
                        "auth = \"basic\"\n") ==
        "F:5:1: [[sink]] #1 \"a\": auth: \"basic\" sends token_file or token_env "
        "(user:password) as Basic credentials; set one of them");
}

}  // namespace ferry
