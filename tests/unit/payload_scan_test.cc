// ScanPayloadJson (the hook path's payload check, no document) against ParsePayloadJson and
// FindMember on the document: the same verdict and error for any text, and the same top-level
// strings, on every hook fixture and on random objects built to hit the edge cases (repeated
// names, non-string values, the same names nested, arrays, texts cut short).
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "client/host_fields.h"
#include "proto/event.h"

namespace ferry::proto {
namespace {

// ferry emit's list: kind (0, 1), session (2 - 7), cwd (8) and workspace_roots[0] (9).
const std::vector<WantedMember> kWanted(client::HostFieldsWanted().begin(),
                                        client::HostFieldsWanted().end());

// The reference: the document's first member of each name (FindMember), as ferry emit read
// it before it stopped building a document.
std::vector<std::string> FromDocument(const rapidjson::Document& doc) {
  std::vector<std::string> out(kWanted.size());
  if (!doc.IsObject()) return out;
  for (size_t i = 0; i < kWanted.size(); ++i) {
    const std::string name(kWanted[i].name);
    auto it = doc.FindMember(name.c_str());
    if (it == doc.MemberEnd()) continue;
    const rapidjson::Value* v = &it->value;
    if (kWanted[i].first_element) {
      if (!v->IsArray() || v->Empty()) continue;
      v = &(*v)[0];
    }
    if (v->IsString()) out[i].assign(v->GetString(), v->GetStringLength());
  }
  return out;
}

// Checks one text both ways; returns whether it was taken.
bool Compare(const std::string& text) {
  INFO(text.substr(0, 400));
  rapidjson::Document doc;
  Error want_error;
  const bool want = ParsePayloadJson(text, &doc, &want_error);
  std::vector<std::string> got(kWanted.size(), "stale");
  Error got_error;
  const bool ok = ScanPayloadJson(text, kWanted, got.data(), &got_error);
  REQUIRE(ok == want);
  if (!ok) {
    REQUIRE(got_error.code == want_error.code);
    REQUIRE(got_error.message == want_error.message);
    return false;
  }
  REQUIRE(got == FromDocument(doc));
  return true;
}

TEST_CASE("ScanPayloadJson reads every hook fixture as the document does", "[event][scan]") {
  size_t files = 0, named = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(FERRY_FIXTURES_DIR)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    CAPTURE(entry.path().string());
    if (Compare(ss.str())) {
      std::vector<std::string> got(kWanted.size());
      Error error;
      ScanPayloadJson(ss.str(), kWanted, got.data(), &error);
      named += !got[0].empty() || !got[1].empty();
    }
    ++files;
  }
  CHECK(files > 30);
  CHECK(named > 20);  // the hosts' event names were found, not just agreed to be absent
}

// A random value at `depth` whose objects use the wanted names (and others), repeated and
// nested, with values of every kind.
std::string RandomValue(std::mt19937& rng, int depth) {
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  static const std::vector<std::string> kNames = {
      "cwd",    "type", "session_id", "workspace_roots", "hook_event_name",
      "taskId", "x",    "c\\u0077d"};
  static const std::vector<std::string> kStrings = {
      "\"\"", "\"/home/u\"", "\"Stop\"", "\"a\\\"b\\n\"", "\"\\u00e9t\\u00e9\"", "\"x\xc3\xa9\""};
  const size_t kind = depth > 3 ? pick(5) : pick(8);
  switch (kind) {
    case 0:
      return kStrings[pick(kStrings.size())];
    case 1:
      return std::to_string(static_cast<int>(pick(2000)) - 1000);
    case 2:
      return pick(2) ? "true" : "null";
    case 3:
      return "1.5e3";
    case 4:
      return kStrings[pick(kStrings.size())];
    case 5:
    case 6: {
      std::string s = "{";
      for (size_t n = pick(6); n > 0; --n) {
        if (s.size() > 1) s += ',';
        s += '"' + kNames[pick(kNames.size())] + "\":" + RandomValue(rng, depth + 1);
      }
      return s + "}";
    }
    default: {
      std::string s = "[";
      for (size_t n = pick(4); n > 0; --n) {
        if (s.size() > 1) s += ',';
        s += RandomValue(rng, depth + 1);
      }
      return s + "]";
    }
  }
}

TEST_CASE("ScanPayloadJson agrees with the document on random objects", "[event][scan]") {
  std::mt19937 rng(5122026);
  size_t taken = 0, refused = 0, found = 0;
  for (int n = 0; n < 20000; ++n) {
    // Mostly objects whose members are the names the hook path wants; some any value.
    std::string text;
    if (n % 10 == 0) {
      text = RandomValue(rng, 0);
    } else {
      text = "{";
      for (int k = std::uniform_int_distribution<int>(0, 7)(rng); k > 0; --k) {
        if (text.size() > 1) text += ',';
        text += k % 2 ? "\"cwd\":" : "\"workspace_roots\":";
        text += RandomValue(rng, 1);
      }
      text += n % 3 == 0 ? " }" : "}";
    }
    // Now and then broken: cut short, or a byte replaced.
    if (n % 7 == 0) text.resize(std::uniform_int_distribution<size_t>(0, text.size())(rng));
    if (n % 11 == 0 && !text.empty())
      text[std::uniform_int_distribution<size_t>(0, text.size() - 1)(rng)] = "\x01]\"\\:"[n % 5];
    if (Compare(text)) {
      ++taken;
      std::vector<std::string> got(kWanted.size());
      Error error;
      ScanPayloadJson(text, kWanted, got.data(), &error);
      found += !got[8].empty() || !got[9].empty();
    } else {
      ++refused;
    }
  }
  CHECK(taken > 5000);
  CHECK(refused > 1000);
  CHECK(found > 2000);
}

TEST_CASE("ScanPayloadJson: the first member of a name counts, whatever its value",
          "[event][scan]") {
  std::vector<std::string> got(kWanted.size());
  Error error;
  REQUIRE(ScanPayloadJson(R"({"cwd":1,"cwd":"/b","type":"T","type":"U"})", kWanted, got.data(),
                          &error));
  CHECK(got[8].empty());
  CHECK(got[1] == "T");
  REQUIRE(ScanPayloadJson(R"({"a":{"cwd":"/nested"},"workspace_roots":["/w","/v"]})", kWanted,
                          got.data(), &error));
  CHECK(got[8].empty());
  CHECK(got[9] == "/w");
  REQUIRE(ScanPayloadJson(R"({"workspace_roots":[["/x"],"/w"]})", kWanted, got.data(), &error));
  CHECK(got[9].empty());
  REQUIRE(ScanPayloadJson(R"(["cwd","/x"])", kWanted, got.data(), &error));
  CHECK(got[8].empty());
  // The payload's nesting limit, as ParsePayloadJson applies it.
  const std::string deep = std::string(kMaxPayloadDepth, '[') + std::string(kMaxPayloadDepth, ']');
  CHECK(Compare(deep));
  CHECK_FALSE(Compare("[" + deep + "]"));
  CHECK_FALSE(Compare(R"({"cwd":"\udc00"})"));  // a lone surrogate escape, refused alike
}

TEST_CASE("emit's host fields: the first member of each field with a non-empty string",
          "[event][scan]") {
  std::vector<std::string> values(kWanted.size());
  Error error;
  REQUIRE(ScanPayloadJson(
      R"({"hook_event_name":"","type":"T","session_id":"","conversation_id":"c","taskId":"t",)"
      R"("cwd":"","workspace_roots":["/w"]})",
      kWanted, values.data(), &error));
  client::HostFields f = client::PickHostFields(values.data());
  CHECK((f.kind == "T" && f.session == "c" && f.cwd == "/w"));
  REQUIRE(ScanPayloadJson(R"({"cwd":"/c","workspace_roots":["/w"],"session_id":"s"})", kWanted,
                          values.data(), &error));
  f = client::PickHostFields(values.data());
  CHECK((f.kind.empty() && f.session == "s" && f.cwd == "/c"));
}

}  // namespace
}  // namespace ferry::proto
