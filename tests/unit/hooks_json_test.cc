// The JSON merge of `ferry hooks` (client/hooks_json.cc) for the flat styles of GitHub Copilot
// CLI ("version": 1, the command under "bash") and Windsurf (the event in --kind).
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "client/hooks_edit.h"

namespace ferry::client::hooks {
namespace {

const std::string kCmd =
    "sh -c 'f=\"/b/ferry\"; [ -n \"$f\" ] && exec \"$f\" emit --source x --stdin; cat "
    ">/dev/null; exit 0' ferry-hook";

TEST_CASE("hooks json: copilot entries in a new file, and out again", "[hooks_json]") {
  const JsonEdit in = EditJson("", JsonStyle::kCopilot, {"PreToolUse", "Stop"}, kCmd, true);
  REQUIRE(in.ok);
  const std::string h = "{\n        \"type\": \"command\",\n        \"bash\": " +
                        std::string(
                            "\"sh -c 'f=\\\"/b/ferry\\\"; [ -n \\\"$f\\\" ] && exec "
                            "\\\"$f\\\" emit --source x --stdin; cat >/dev/null; exit "
                            "0' ferry-hook\",\n        \"timeoutSec\": 10\n      }");
  CHECK(in.text == "{\n  \"version\": 1,\n  \"hooks\": {\n    \"PreToolUse\": [\n      " + h +
                       "\n    ],\n    \"Stop\": [\n      " + h + "\n    ]\n  }\n}\n");
  std::vector<FerryEntry> found;
  std::string error;
  REQUIRE(ListFerryJson(in.text, JsonStyle::kCopilot, &found, &error));
  REQUIRE(found.size() == 2);
  CHECK(found[0].event == "PreToolUse");
  CHECK(found[0].command == kCmd);
  CHECK(found[0].has_timeout);
  const JsonEdit out = EditJson(in.text, JsonStyle::kCopilot, {"PreToolUse", "Stop"}, "", false);
  REQUIRE(out.ok);
  CHECK(out.removed == 2);
  CHECK(out.empty);  // only {"version": 1} left: the file ferry created goes
}

TEST_CASE("hooks json: copilot keeps the user's handler of the same event", "[hooks_json]") {
  const std::string user =
      "{\"version\":1,\"hooks\":{\"preToolUse\":[{\"type\":\"command\",\"bash\":\"./check.sh\"}],"
      "\"PreToolUse\":[{\"type\":\"command\",\"bash\":\"./mine.sh\"}]}}";
  const JsonEdit in = EditJson(user, JsonStyle::kCopilot, {"PreToolUse"}, kCmd, true);
  REQUIRE(in.ok);
  const JsonEdit again = EditJson(in.text, JsonStyle::kCopilot, {"PreToolUse"}, kCmd, true);
  CHECK_FALSE(again.changed);
  const JsonEdit out = EditJson(in.text, JsonStyle::kCopilot, {"PreToolUse"}, "", false);
  REQUIRE(out.ok);
  CHECK(out.removed == 1);
  CHECK_FALSE(out.empty);
  CHECK(JsonEqual(out.text, user));
}

TEST_CASE("hooks json: windsurf names each event with --kind", "[hooks_json]") {
  CHECK(CommandWithKind(kCmd, "pre_run_command") ==
        "sh -c 'f=\"/b/ferry\"; [ -n \"$f\" ] && exec \"$f\" emit --source x --kind "
        "pre_run_command --stdin; cat >/dev/null; exit 0' ferry-hook");
  CHECK(CommandWithKind("no stdin here", "x") == "no stdin here");
  const JsonEdit in =
      EditJson("", JsonStyle::kWindsurf, {"pre_run_command", "post_run_command"}, kCmd, true);
  REQUIRE(in.ok);
  std::vector<FerryEntry> found;
  std::string error;
  REQUIRE(ListFerryJson(in.text, JsonStyle::kWindsurf, &found, &error));
  REQUIRE(found.size() == 2);
  CHECK(found[1].command == CommandWithKind(kCmd, "post_run_command"));
  // Windsurf hooks have no timeout key: nothing for `ferry doctor` to ask for.
  CHECK(in.text.find("timeout") == std::string::npos);
  CHECK(found[1].has_timeout);
  CHECK(in.text.find("\"version\"") == std::string::npos);
  CHECK(in.text.find("\"show_output\": false") != std::string::npos);
  const JsonEdit out =
      EditJson(in.text, JsonStyle::kWindsurf, {"pre_run_command", "post_run_command"}, "", false);
  REQUIRE(out.ok);
  CHECK(out.removed == 2);
  CHECK(out.empty);
}

}  // namespace
}  // namespace ferry::client::hooks
