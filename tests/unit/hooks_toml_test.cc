// The Codex config.toml edit of `ferry hooks` (client/hooks_toml.cc): ferry owns only its
// own [[hooks.X]]/[[hooks.X.hooks]] pairs between its markers and keeps every other line.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "client/hooks_edit.h"

namespace ferry::client::hooks {
namespace {

const std::string kTomlCmd = "sh -c 'true' ferry-hook";
const std::vector<std::string> kTwo = {"SessionStart", "Stop"};

std::string Pair(const std::string& ev) {
  return "[[hooks." + ev + "]]\n[[hooks." + ev +
         ".hooks]]\ntype = \"command\"\ncommand = \"sh -c 'true' ferry-hook\"\ntimeout = 10\n";
}

const std::string kBegin =
    "# >>> ferry hooks >>> (added by `ferry hooks install codex`; `ferry hooks uninstall codex` "
    "removes ferry's tables from it)\n";
const std::string kEnd = "# <<< ferry hooks <<<\n";

TEST_CASE("hooks toml: install appends one block, uninstall takes it out again", "[hooks_toml]") {
  const std::string user = "model = \"o3\"\n";
  const TomlEdit in = EditToml(user, kTwo, kTomlCmd, true);
  REQUIRE(in.ok);
  CHECK(in.text == user + "\n" + kBegin + Pair("SessionStart") + "\n" + Pair("Stop") + kEnd);
  const TomlEdit again = EditToml(in.text, kTwo, kTomlCmd, true);
  REQUIRE(again.ok);
  CHECK(again.text == in.text);
  const TomlEdit out = EditToml(in.text, kTwo, kTomlCmd, false);
  REQUIRE(out.ok);
  CHECK(out.had_block);
  CHECK(out.text == user);
}

TEST_CASE("hooks toml: what Codex wrote inside the block stays, byte for byte", "[hooks_toml]") {
  const std::string codex =
      "\n[mcp_servers.mytools]\ncommand = \"/usr/bin/true\"\n"
      "\n# trusted\n[hooks.state.\"/h/.codex/config.toml:stop:0:0\"]\ntrusted_hash = "
      "\"sha256:1\"\n";
  const std::string file =
      "model = \"o3\"\n\n" + kBegin + Pair("SessionStart") + "\n" + Pair("Stop") + codex + kEnd;
  const TomlEdit again = EditToml(file, kTwo, kTomlCmd, true);
  REQUIRE(again.ok);
  CHECK(again.text == file);

  // A new event goes after ferry's last pair, before what Codex wrote.
  const TomlEdit more = EditToml(file, {"SessionStart", "Stop", "SessionEnd"}, kTomlCmd, true);
  REQUIRE(more.ok);
  CHECK(more.text == "model = \"o3\"\n\n" + kBegin + Pair("SessionStart") + "\n" + Pair("Stop") +
                         "\n" + Pair("SessionEnd") + codex + kEnd);

  // Another command: ferry's pairs are rewritten in place.
  const TomlEdit moved = EditToml(file, kTwo, "sh -c 'other' ferry-hook", true);
  REQUIRE(moved.ok);
  CHECK(moved.text.find(codex + kEnd) != std::string::npos);
  CHECK(moved.text.find("'true'") == std::string::npos);

  const TomlEdit out = EditToml(file, kTwo, kTomlCmd, false);
  REQUIRE(out.ok);
  CHECK(out.text == "model = \"o3\"\n" + codex);
}

TEST_CASE("hooks toml: a second ferry pair for an event goes on reinstall", "[hooks_toml]") {
  const std::string file = kBegin + Pair("Stop") + "\n" + Pair("Stop") + kEnd;
  const TomlEdit in = EditToml(file, {"Stop"}, kTomlCmd, true);
  REQUIRE(in.ok);
  CHECK(in.text == kBegin + Pair("Stop") + kEnd);
  std::vector<FerryEntry> entries;
  std::string error;
  REQUIRE(ListFerryToml(file, &entries, &error));
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].event == "Stop");
  CHECK(entries[0].command == kTomlCmd);
  CHECK(entries[0].has_timeout);
}

TEST_CASE("hooks toml: a ferry table with lines ferry did not write is refused", "[hooks_toml]") {
  const std::string extra_key = kBegin + Pair("Stop") + "statusMessage = \"x\"\n" + kEnd;
  TomlEdit e = EditToml(extra_key, {"Stop"}, kTomlCmd, true);
  CHECK_FALSE(e.ok);
  CHECK(e.error ==
        "2:1: ferry's [[hooks.Stop]] entry also holds `statusMessage = \"x\"` (line 7), which "
        "ferry did not write and will not delete or move. Take ferry's entry out by hand (or "
        "that line), then run this again");
  e = EditToml(extra_key, {"Stop"}, kTomlCmd, false);
  CHECK_FALSE(e.ok);

  const std::string in_group =
      kBegin + Pair("Stop") + "[[hooks.Stop.hooks]]\ntype = \"command\"\ncommand = \"x\"\n" + kEnd;
  e = EditToml(in_group, {"Stop"}, kTomlCmd, true);
  CHECK_FALSE(e.ok);
  CHECK(
      e.error.starts_with("2:1: ferry's [[hooks.Stop]] entry also holds a table that belongs "
                          "to its group (line 7)"));

  const std::string matcher = kBegin + "[[hooks.Stop]]\nmatcher = \"x\"\n" +
                              Pair("Stop").substr(std::string("[[hooks.Stop]]\n").size()) + kEnd;
  e = EditToml(matcher, {"Stop"}, kTomlCmd, true);
  CHECK_FALSE(e.ok);
  CHECK(e.error.find("a key in its [[hooks.Stop]] group") != std::string::npos);
}

TEST_CASE("hooks toml: CRLF files and a block without its end line", "[hooks_toml]") {
  const std::string crlf = "model = \"o3\"\r\n[profiles.x]\r\nmodel = \"m\"\r\n";
  const TomlEdit in = EditToml(crlf, kTwo, kTomlCmd, true);
  REQUIRE(in.ok);
  const TomlEdit out = EditToml(in.text, kTwo, kTomlCmd, false);
  REQUIRE(out.ok);
  CHECK(out.text == crlf);
  const TomlEdit cut = EditToml(kBegin + Pair("Stop"), kTwo, kTomlCmd, true);
  CHECK_FALSE(cut.ok);
  CHECK(cut.error ==
        "1:1: \"# >>> ferry hooks >>>\" without its \"# <<< ferry hooks <<<\" line; "
        "fix by hand");
}

}  // namespace
}  // namespace ferry::client::hooks
