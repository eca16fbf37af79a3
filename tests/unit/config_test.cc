#include "daemon/config/config.h"

#include <stdlib.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <string>

#include "tests/unit/config_test_util.h"
#include "tests/unit/test_util.h"

namespace ferry {
namespace {

using std::chrono::milliseconds;

using test::Loaded;
using test::LoadError;

void CheckDefaults(const Config& c) {
  CHECK(c.log_level == "info");
  CHECK(c.socket_path.empty());
  CHECK(c.state_dir.empty());
  CHECK(c.fsync == FsyncPolicy::kInterval);
  CHECK(c.fsync_interval == milliseconds(1000));
  CHECK(c.segment_bytes == 64ull << 20);
  CHECK(c.max_bytes == 1ull << 30);
  CHECK(c.max_frame_bytes == 4ull << 20);
  CHECK(c.max_connections == 1024);
  CHECK(c.idle_timeout == milliseconds(60000));
  CHECK(c.max_batch_events == 10000);
}

}  // namespace

TEST_CASE("config: defaults when there is no file", "[config]") {
  test::TempDir dir;
  Config config;
  std::string error;
  REQUIRE(LoadConfig(dir.Join("absent.toml"), /*required=*/false, &config, &error));
  CHECK(error.empty());
  CHECK(config.path.empty());
  CheckDefaults(config);
}

TEST_CASE("config: an empty file and a comments-only file give the defaults", "[config]") {
  for (const char* toml : {"", "# nothing here\n\n", "[journal]\n[ingest]\n"}) {
    Loaded l(toml);
    REQUIRE(l.ok);
    CHECK(l.config.path == l.path);
    CheckDefaults(l.config);
  }
}

TEST_CASE("config: every key set", "[config]") {
  Loaded l(R"(# ferryd config
log_level = "debug"
socket = "/run/user/1000/ferry/custom.sock"
state_dir = "/var/tmp/ferry-state"

[journal]
fsync = "always"
fsync_interval = "250ms"
segment_size = "8MiB"
max_bytes = "2GB"

[ingest]
max_frame = 65536
max_connections = 64
idle_timeout = "5m"
max_batch_events = 500
)");
  INFO(l.error);
  REQUIRE(l.ok);
  const Config& c = l.config;
  CHECK(c.path == l.path);
  CHECK(c.log_level == "debug");
  CHECK(c.socket_path == "/run/user/1000/ferry/custom.sock");
  CHECK(c.state_dir == "/var/tmp/ferry-state");
  CHECK(c.fsync == FsyncPolicy::kAlways);
  CHECK(c.fsync_interval == milliseconds(250));
  CHECK(c.segment_bytes == 8ull << 20);
  CHECK(c.max_bytes == 2000000000ull);
  CHECK(c.max_frame_bytes == 65536);
  CHECK(c.max_connections == 64);
  CHECK(c.idle_timeout == milliseconds(300000));
  CHECK(c.max_batch_events == 500);
}

TEST_CASE("config: every fsync policy and log level", "[config]") {
  CHECK(Loaded("journal.fsync = \"never\"").config.fsync == FsyncPolicy::kNever);
  CHECK(Loaded("journal.fsync = \"interval\"").config.fsync == FsyncPolicy::kInterval);
  CHECK(Loaded("journal.fsync = \"always\"").config.fsync == FsyncPolicy::kAlways);
  for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    Loaded l(std::string("log_level = \"") + level + "\"");
    REQUIRE(l.ok);
    CHECK(l.config.log_level == level);
  }
}

TEST_CASE("config: dotted keys and inline tables are the same as sections", "[config]") {
  Loaded dotted("journal.fsync = \"never\"\ningest.max_frame = \"1MiB\"\n");
  REQUIRE(dotted.ok);
  CHECK(dotted.config.fsync == FsyncPolicy::kNever);
  CHECK(dotted.config.max_frame_bytes == 1ull << 20);
  Loaded inline_table("journal = { fsync = \"never\", segment_size = 4096 }\n");
  INFO(inline_table.error);
  REQUIRE(inline_table.ok);
  CHECK(inline_table.config.fsync == FsyncPolicy::kNever);
  CHECK(inline_table.config.segment_bytes == 4096);
}

TEST_CASE("config: sizes and durations at the ends of their ranges", "[config]") {
  Loaded low(
      "[journal]\nfsync_interval = \"1ms\"\nsegment_size = 4096\nmax_bytes = \"1MiB\"\n"
      "[ingest]\nmax_frame = \"1KiB\"\nmax_connections = 1\nidle_timeout = \"10ms\"\n"
      "max_batch_events = 1\n");
  INFO(low.error);
  REQUIRE(low.ok);
  CHECK(low.config.fsync_interval == milliseconds(1));
  CHECK(low.config.segment_bytes == 4096);
  CHECK(low.config.max_bytes == 1ull << 20);
  CHECK(low.config.max_frame_bytes == 1024);
  CHECK(low.config.max_connections == 1);
  CHECK(low.config.idle_timeout == milliseconds(10));
  CHECK(low.config.max_batch_events == 1);

  Loaded high(
      "[journal]\nfsync_interval = \"1h\"\nsegment_size = \"4GiB\"\nmax_bytes = 1125899906842624\n"
      "[ingest]\nmax_frame = \"64MiB\"\nmax_connections = 1000000\nidle_timeout = \"24h\"\n"
      "max_batch_events = 1000000\n");
  INFO(high.error);
  REQUIRE(high.ok);
  CHECK(high.config.fsync_interval == milliseconds(3600000));
  CHECK(high.config.segment_bytes == 4ull << 30);
  CHECK(high.config.max_bytes == 1ull << 50);
  CHECK(high.config.max_frame_bytes == 64ull << 20);
  CHECK(high.config.max_connections == 1000000);
  CHECK(high.config.idle_timeout == milliseconds(86400000));
  CHECK(high.config.max_batch_events == 1000000);
}

TEST_CASE("config: unknown keys name the key and where, with a suggestion", "[config]") {
  CHECK(LoadError("[journal]\nfsnc = \"always\"\n") ==
        "F:2:1: unknown key \"journal.fsnc\" (did you mean \"journal.fsync\"?)");
  CHECK(LoadError("log_levl = \"debug\"\n") ==
        "F:1:1: unknown key \"log_levl\" (did you mean \"log_level\"?)");
  CHECK(LoadError("[ingest]\nmax_frame = 4096\n  idle_timeot = \"1s\"\n") ==
        "F:3:3: unknown key \"ingest.idle_timeot\" (did you mean \"ingest.idle_timeout\"?)");
  CHECK(LoadError("ingest.max_fram = 4096\n") ==
        "F:1:8: unknown key \"ingest.max_fram\" (did you mean \"ingest.max_frame\"?)");
  // Nothing close: no suggestion.
  CHECK(LoadError("\n\ncolour = \"blue\"\n") == "F:3:1: unknown key \"colour\"");
  // A key that belongs in another section.
  CHECK(LoadError("[ingest]\nfsync = \"always\"\n") == "F:2:1: unknown key \"ingest.fsync\"");
}

TEST_CASE("config: unknown sections", "[config]") {
  CHECK(LoadError("[jornal]\nfsync = \"always\"\n") ==
        "F:1:2: unknown key \"jornal\" (did you mean \"journal\"?)");
  CHECK(LoadError("[sinks]\n") == "F:1:2: unknown key \"sinks\"");
  CHECK(LoadError("[journal.deep]\nx = 1\n") == "F:1:10: unknown key \"journal.deep\"");
  // A known section that is not a table.
  CHECK(LoadError("journal = \"always\"\n") == "F:1:11: \"journal\" must be a table");
}

TEST_CASE("config: values of the wrong type", "[config]") {
  CHECK(LoadError("[journal]\nfsync = 1\n") == "F:2:9: \"journal.fsync\" must be a string");
  CHECK(LoadError("log_level = true\n") == "F:1:13: \"log_level\" must be a string");
  CHECK(LoadError("socket = [\"/a\"]\n") == "F:1:10: \"socket\" must be a string");
  CHECK(LoadError("[ingest]\nmax_connections = \"10\"\n") ==
        "F:2:19: \"ingest.max_connections\" must be an integer");
  CHECK(LoadError("[ingest]\nmax_batch_events = 1.5\n") ==
        "F:2:20: \"ingest.max_batch_events\" must be an integer");
  CHECK(LoadError("[ingest]\nmax_frame = 1.5\n") ==
        "F:2:13: \"ingest.max_frame\" must be a size: an integer of bytes or a string like "
        "\"64MiB\"");
  CHECK(LoadError("[journal]\nfsync_interval = 1000\n") ==
        "F:2:18: \"journal.fsync_interval\" must be a duration string such as \"200ms\", \"1s\", "
        "\"5m\", \"12h\" or \"7d\"");
  CHECK(LoadError("[journal.fsync]\nx = 1\n") == "F:1:1: \"journal.fsync\" must be a string");
}

TEST_CASE("config: bad enum values", "[config]") {
  CHECK(LoadError("[journal]\nfsync = \"sometimes\"\n") ==
        "F:2:9: \"journal.fsync\" is \"sometimes\"; expected one of: never, interval, always");
  CHECK(LoadError("[journal]\nfsync = \"Always\"\n") ==
        "F:2:9: \"journal.fsync\" is \"Always\"; expected one of: never, interval, always");
  CHECK(LoadError("log_level = \"verbose\"\n") ==
        "F:1:13: \"log_level\" is \"verbose\"; expected one of: trace, debug, info, warn, error, "
        "critical, off");
}

TEST_CASE("config: sizes out of range or malformed", "[config]") {
  CHECK(LoadError("[ingest]\nmax_frame = \"128MiB\"\n") ==
        "F:2:13: \"ingest.max_frame\" = 134217728 bytes is out of range [1024, 67108864]");
  CHECK(LoadError("[ingest]\nmax_frame = 1023\n") ==
        "F:2:13: \"ingest.max_frame\" = 1023 bytes is out of range [1024, 67108864]");
  CHECK(LoadError("[journal]\nsegment_size = \"5GiB\"\n") ==
        "F:2:16: \"journal.segment_size\" = 5368709120 bytes is out of range [4096, 4294967296]");
  CHECK(LoadError("[journal]\nmax_bytes = -1\n") ==
        "F:2:13: \"journal.max_bytes\" must not be negative");
  CHECK(LoadError("[journal]\nmax_bytes = \"lots\"\n") ==
        "F:2:13: \"journal.max_bytes\" is not a size (examples: 4096, \"512KiB\", \"64MiB\")");
  CHECK(LoadError("[journal]\nmax_bytes = \"99999999999999999999\"\n") ==
        "F:2:13: \"journal.max_bytes\" is not a size (examples: 4096, \"512KiB\", \"64MiB\")");
  CHECK(LoadError("[ingest]\nmax_connections = 0\n") ==
        "F:2:19: \"ingest.max_connections\" = 0 is out of range [1, 1000000]");
  CHECK(LoadError("[ingest]\nmax_connections = -3\n") ==
        "F:2:19: \"ingest.max_connections\" = -3 is out of range [1, 1000000]");
  CHECK(LoadError("[ingest]\nmax_batch_events = 1000001\n") ==
        "F:2:20: \"ingest.max_batch_events\" = 1000001 is out of range [1, 1000000]");
}

TEST_CASE("config: bad durations", "[config]") {
  CHECK(LoadError("[journal]\nfsync_interval = \"1 sec\"\n") ==
        "F:2:18: \"journal.fsync_interval\" must be a duration string such as \"200ms\", \"1s\", "
        "\"5m\", \"12h\" or \"7d\"");
  CHECK(LoadError("[ingest]\nidle_timeout = \"\"\n") ==
        "F:2:16: \"ingest.idle_timeout\" must be a duration string such as \"200ms\", \"1s\", "
        "\"5m\", \"12h\" or \"7d\"");
  CHECK(LoadError("[journal]\nfsync_interval = \"0ms\"\n") ==
        "F:2:18: \"journal.fsync_interval\" is out of range [1ms, 3600000ms]");
  CHECK(LoadError("[journal]\nfsync_interval = \"2h\"\n") ==
        "F:2:18: \"journal.fsync_interval\" is out of range [1ms, 3600000ms]");
  CHECK(LoadError("[ingest]\nidle_timeout = \"5ms\"\n") ==
        "F:2:16: \"ingest.idle_timeout\" is out of range [10ms, 86400000ms]");
}

TEST_CASE("config: TOML syntax errors give file:line:col", "[config]") {
  const std::string e1 = LoadError("[journal]\nfsync = \"always\n");
  CHECK_THAT(e1, Catch::StartsWith("F:2:"));
  const std::string e2 = LoadError("log_level = \"info\"\n[journal\nfsync = \"never\"\n");
  CHECK_THAT(e2, Catch::StartsWith("F:2:"));
  const std::string e3 = LoadError("[journal]\nfsync = \"never\"\nfsync = \"always\"\n");
  CHECK_THAT(e3, Catch::StartsWith("F:3:"));
  CHECK_THAT(e3, Catch::Contains("fsync"));
  const std::string e4 = LoadError("\n\nmax_frame == 3\n");
  CHECK_THAT(e4, Catch::StartsWith("F:3:"));
}

TEST_CASE("config: a missing file that was asked for is an error", "[config]") {
  test::TempDir dir;
  const std::string path = dir.Join("nope.toml");
  Config config;
  std::string error;
  CHECK_FALSE(LoadConfig(path, /*required=*/true, &config, &error));
  CHECK(error == path + ": cannot read the config file: No such file or directory");
}

TEST_CASE("config: a path through a file is an error, not a missing file", "[config]") {
  // ENOTDIR, like EACCES, means the path is wrong, not that the user has no config.
  test::TempDir dir;
  test::WriteFile(dir.Join("file"), "");
  const std::string path = dir.Join("file/config.toml");
  Config config;
  std::string error;
  CHECK_FALSE(LoadConfig(path, /*required=*/false, &config, &error));
  CHECK(error == path + ": cannot read the config file: Not a directory");
}

TEST_CASE("config: a directory is not a config file", "[config]") {
  test::TempDir dir;
  Config config;
  std::string error;
  CHECK_FALSE(LoadConfig(dir.path(), /*required=*/false, &config, &error));
  CHECK(error == dir.path() + ": cannot read the config file: Is a directory");
}

TEST_CASE("config: /dev/null gives the defaults", "[config]") {
  Config config;
  std::string error;
  REQUIRE(LoadConfig("/dev/null", /*required=*/true, &config, &error));
  CHECK(config.path == "/dev/null");
  CheckDefaults(config);
}

TEST_CASE("ParseByteSize", "[config]") {
  struct Case {
    std::string text;
    uint64_t bytes;
  };
  const Case c = GENERATE(values<Case>({
      {"0", 0},
      {"4096", 4096},
      {"1B", 1},
      {"1K", 1024},
      {"1KB", 1000},
      {"512KiB", 512 * 1024},
      {"1M", 1ull << 20},
      {"1MB", 1000000},
      {"64MiB", 64ull << 20},
      {"1G", 1ull << 30},
      {"2GB", 2000000000},
      {"4GiB", 4ull << 30},
      {"64 MiB", 64ull << 20},
      {"18446744073709551615", UINT64_MAX},
      {"17179869183GiB", 17179869183ull << 30},
  }));
  CAPTURE(c.text);
  uint64_t bytes = 12345;
  REQUIRE(ParseByteSize(c.text, &bytes));
  CHECK(bytes == c.bytes);
}

TEST_CASE("ParseByteSize refuses", "[config]") {
  const std::string text =
      GENERATE(as<std::string>{}, "", "MiB", "-1", "1.5MiB", "1mib", "1KiBs", "1TiB", " 1", "0x10",
               "18446744073709551616", "17179869184GiB", "1 2");
  CAPTURE(text);
  uint64_t bytes = 777;
  CHECK_FALSE(ParseByteSize(text, &bytes));
  CHECK(bytes == 777);
}

TEST_CASE("ParseDuration", "[config]") {
  struct Case {
    std::string text;
    int64_t ms;
  };
  const Case c = GENERATE(values<Case>({
      {"0ms", 0},
      {"200ms", 200},
      {"1s", 1000},
      {"90s", 90000},
      {"5m", 300000},
      {"1h", 3600000},
      {"24h", 86400000},
      {"7d", 604800000},
      {"2w", 1209600000},
      {"1000000d", 86400000000000},
      {"1099511627776ms", 1099511627776},
  }));
  CAPTURE(c.text);
  milliseconds d{-1};
  REQUIRE(ParseDuration(c.text, &d));
  CHECK(d.count() == c.ms);
}

TEST_CASE("ParseDuration refuses", "[config]") {
  const std::string text =
      GENERATE(as<std::string>{}, "", "1", "ms", "-1s", "1.5s", "1 s", "1sec", "1S", "1D", "1us",
               "1y", " 1s", "1099511627777ms", "99999999999999999999h");
  CAPTURE(text);
  milliseconds d{-7};
  CHECK_FALSE(ParseDuration(text, &d));
  CHECK(d.count() == -7);
}

TEST_CASE("config: DiffConfig sorts changes into live and needs-a-restart", "[config]") {
  Config a;
  a.socket_path = "/run/a.sock";
  a.state_dir = "/state";
  Config b = a;
  CHECK(DiffConfig(a, b).empty());
  b.log_level = "debug";
  b.fsync = FsyncPolicy::kAlways;
  b.fsync_interval = std::chrono::milliseconds(250);
  b.journal_max_age = std::chrono::hours(24);
  b.max_frame_bytes = 1024;
  b.max_connections = 7;
  b.idle_timeout = std::chrono::milliseconds(500);
  b.max_batch_events = 2;
  b.socket_path = "/run/b.sock";
  b.state_dir = "/other";
  b.segment_bytes = 4096;
  b.max_bytes = 1u << 20;
  const ConfigChanges ch = DiffConfig(a, b);
  CHECK(ch.live == std::vector<std::string>{
                       "log_level: \"info\" -> \"debug\"", "journal.fsync: interval -> always",
                       "journal.fsync_interval: 1000ms -> 250ms",
                       "journal.max_age: 0ms -> 86400000ms", "ingest.max_frame: 4194304 -> 1024",
                       "ingest.max_connections: 1024 -> 7", "ingest.idle_timeout: 60000ms -> 500ms",
                       "ingest.max_batch_events: 10000 -> 2"});
  CHECK(ch.restart == std::vector<std::string>{"socket: \"/run/a.sock\" -> \"/run/b.sock\"",
                                               "state_dir: \"/state\" -> \"/other\"",
                                               "journal.segment_size: 67108864 -> 4096",
                                               "journal.max_bytes: 1073741824 -> 1048576"});
}

TEST_CASE("config: LoadEffectiveConfig applies the flags over the file", "[config]") {
  test::TempDir tmp;
  const std::string path = tmp.Join("config.toml");
  test::WriteFile(path, "log_level = \"warn\"\nsocket = \"/from/file.sock\"\n");
  ConfigSource source;
  source.path = path;
  source.required = true;
  Config c;
  std::string error;
  ::unsetenv("FERRY_SOCKET");
  REQUIRE(LoadEffectiveConfig(source, &c, &error));
  CHECK(c.log_level == "warn");
  CHECK(c.socket_path == "/from/file.sock");
  source.log_level_flag = "debug";
  source.socket_flag = "/from/flag.sock";
  REQUIRE(LoadEffectiveConfig(source, &c, &error));
  CHECK(c.log_level == "debug");
  CHECK(c.socket_path == "/from/flag.sock");
  test::WriteFile(path, "log_level = 3\n");
  Config unchanged = c;
  CHECK_FALSE(LoadEffectiveConfig(source, &c, &error));
  CHECK(error == path + ":1:13: \"log_level\" must be a string");
  CHECK(c.log_level == unchanged.log_level);
}

}  // namespace ferry
