// The transcript archive's file format (daemon/archive/format.h) and its reader
// (daemon/archive/read.h): frames round-trip; a torn tail is ignored; a flipped byte, a bad
// magic or an offset gap stops the generation there, and AnswerTranscriptRequest says so and
// prints exactly the bytes before it; pages join up to the whole transcript.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <string>

#include "daemon/archive/extract.h"
#include "daemon/archive/format.h"
#include "daemon/archive/read.h"
#include "daemon/base/crc32c.h"
#include "proto/frame.h"
#include "proto/transcript.h"
#include "tests/unit/test_util.h"

namespace ferry {
namespace {

using archive::Damage;

std::string Frame(uint64_t offset, const std::string& raw, const std::string& prefix = "") {
  std::string frame;
  const std::string tail = prefix + raw;
  REQUIRE(archive::EncodeData(offset, raw, crc32c::Value(tail.data(), tail.size()), &frame));
  return frame;
}

// A generation file holding `chunks`, one data frame each.
std::string File(const std::vector<std::string>& chunks) {
  std::string file = archive::EncodeHeader("claude-code", "s-1", "/t.jsonl", 1, 7);
  uint64_t at = 0;
  std::string copied;
  for (const std::string& c : chunks) {
    file += Frame(at, c, copied);
    copied += c;
    at += c.size();
  }
  return file;
}

// What `ferry transcript` gets for the archive under `dir`: the bytes of every page, and the
// damage messages.
std::string ReadAll(const std::string& dir, std::vector<std::string>* damage,
                    size_t page = 1 << 20) {
  proto::TranscriptRequest req{"s-", "", 0, 0};
  std::string out;
  for (int pages = 0; pages < 1000; ++pages) {
    const std::string frame =
        archive::AnswerTranscriptRequest(dir, proto::MakeTranscriptRequestBody(req), page);
    proto::Frame f;
    proto::Error error;
    REQUIRE(proto::DecodeFrame(frame, 1 << 24, &f, &error) == proto::DecodeResult::kFrame);
    REQUIRE(f.type == proto::FrameType::kTranscriptResult);
    proto::TranscriptResult r;
    REQUIRE(proto::ParseTranscriptResultBody(f.body, &r, &error));
    REQUIRE(r.status == "ok");
    out += r.data;
    damage->insert(damage->end(), r.damage.begin(), r.damage.end());
    if (r.done) return out;
    req = {r.session, r.source, r.gen, r.at};
  }
  FAIL("no end of pages");
  return out;
}

struct ArchiveDir {
  ArchiveDir() : root(tmp.path()), session(root + "/claude-code/s-1") {
    REQUIRE(::mkdir((root + "/claude-code").c_str(), 0700) == 0);
    REQUIRE(::mkdir(session.c_str(), 0700) == 0);
  }
  void Put(uint32_t gen, const std::string& data) {
    test::WriteFile(session + "/" + archive::GenFileName(gen), data);
  }
  test::TempDir tmp;
  std::string root, session;
};

}  // namespace

TEST_CASE("archive frames round-trip and scan", "[archive]") {
  const std::string file = File({"line one\n", "line two\n"});
  const archive::Scan s = archive::ScanFile(file);
  CHECK(s.damage == Damage::kNone);
  CHECK(s.has_header);
  CHECK(s.header.path == "/t.jsonl");
  CHECK(s.header.session == "s-1");
  CHECK(s.end == 18);
  CHECK(s.valid_bytes == file.size());
  const std::string all = "line one\nline two\n";
  CHECK(s.tail_crc == crc32c::Value(all.data(), all.size()));
}

TEST_CASE("archive names encode every byte outside [A-Za-z0-9_.-]", "[archive]") {
  CHECK(archive::EncodeName("abc-1.x_Y") == "abc-1.x_Y");
  CHECK(archive::EncodeName("../a b/\xff") == "%2E.%2Fa%20b%2F%FF");
  std::string back;
  REQUIRE(archive::DecodeName("%2E.%2Fa%20b%2F%FF", &back));
  CHECK(back == "../a b/\xff");
  CHECK_FALSE(archive::DecodeName("%2", &back));
  CHECK_FALSE(archive::DecodeName("%zz", &back));
}

TEST_CASE("archive reader: torn tail ignored, corrupt frame stops the generation", "[archive]") {
  const std::string a = "first line\n", b = "second line\n", c = "third line\n";
  const std::string whole = File({a, b, c});
  const size_t third = whole.size() - Frame(a.size() + b.size(), c, a + b).size();
  ArchiveDir dir;
  std::vector<std::string> damage;

  dir.Put(1, whole);
  CHECK(ReadAll(dir.root, &damage) == a + b + c);
  CHECK(damage.empty());

  // Every cut inside the last frame is a torn tail: the first two chunks, no message.
  for (size_t cut = third; cut < whole.size(); ++cut) {
    dir.Put(1, whole.substr(0, cut));
    damage.clear();
    CHECK(ReadAll(dir.root, &damage) == a + b);
    CHECK(damage.empty());
    CHECK(archive::ScanFile(whole.substr(0, cut)).damage ==
          (cut == third ? Damage::kNone : Damage::kTorn));
  }

  // A flipped byte in the second frame's payload: the first chunk, and a message.
  std::string bad = whole;
  bad[third - 3] = static_cast<char>(bad[third - 3] ^ 0x40);
  dir.Put(1, bad);
  damage.clear();
  CHECK(ReadAll(dir.root, &damage) == a);
  REQUIRE(damage.size() == 1);
  const size_t second = whole.size() - (whole.size() - third) - Frame(a.size(), b, a).size();
  CHECK(damage[0] == dir.session + "/00000001.fta: damaged frame at byte " +
                         std::to_string(second) +
                         " (CRC mismatch); the rest of generation 1 is not printed");

  // Bad magic, and a frame whose offset leaves a gap.
  bad = whole;
  bad[second] = 'X';
  dir.Put(1, bad);
  damage.clear();
  CHECK(ReadAll(dir.root, &damage) == a);
  REQUIRE(damage.size() == 1);
  CHECK(damage[0].find("(no frame magic)") != std::string::npos);
  dir.Put(1, archive::EncodeHeader("claude-code", "s-1", "/t.jsonl", 1, 7) + Frame(0, a) +
                 Frame(a.size() + 1, b));
  damage.clear();
  CHECK(ReadAll(dir.root, &damage) == a);
  REQUIRE(damage.size() == 1);
  CHECK(damage[0].find("(data at offset 12, expected 11)") != std::string::npos);

  // A damaged generation does not hide the next one.
  dir.Put(1, bad);
  dir.Put(2, File({c}));
  damage.clear();
  CHECK(ReadAll(dir.root, &damage) == a + c);
  CHECK(damage.size() == 1);
}

TEST_CASE("archive reader pages join up across frames and generations", "[archive]") {
  ArchiveDir dir;
  std::string g1, g2;
  std::vector<std::string> chunks1, chunks2;
  for (int i = 0; i < 40; ++i) {
    chunks1.push_back(std::string(1000 + static_cast<size_t>(i), static_cast<char>('a' + i % 26)));
    g1 += chunks1.back();
  }
  for (int i = 0; i < 7; ++i) {
    chunks2.push_back(std::string(300, static_cast<char>('0' + i)));
    g2 += chunks2.back();
  }
  dir.Put(1, File(chunks1));
  dir.Put(3, File(chunks2));  // generations need not be consecutive (one was evicted, say)
  for (size_t page : {size_t{1}, size_t{999}, size_t{4096}, size_t{1} << 20}) {
    std::vector<std::string> damage;
    CHECK(ReadAll(dir.root, &damage, page) == g1 + g2);
    CHECK(damage.empty());
  }
}

TEST_CASE("transcript lines give user prompts and assistant text", "[archive]") {
  std::vector<TranscriptMessage> out;
  archive::ExtractMessages(
      "claude-code", "s",
      "{\"type\":\"user\",\"message\":{\"content\":\"hi\"},\"timestamp\":\"2025-11-24T06:12:41."
      "5Z\"}\n"
      "{\"type\":\"user\",\"isMeta\":true,\"message\":{\"content\":\"meta\"}}\n"
      "not json\n"
      "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
      "{\"type\":\"tool_use\"},{\"type\":\"text\",\"text\":\"b\"}]}}\n"
      "{\"type\":\"event_msg\",\"payload\":{\"type\":\"agent_message\",\"message\":\"c\"}}\n"
      "{\"type\":\"user\",\"message\":{\"content\":\"no newline yet\"}}",
      &out);
  REQUIRE(out.size() == 3);
  CHECK(out[0].role == "user");
  CHECK(out[0].text == "hi");
  CHECK(out[0].ts == 1763964761500000000);
  CHECK(out[1].role == "assistant");
  CHECK(out[1].text == "a\nb");
  CHECK(out[1].ts == 0);
  CHECK(out[2].text == "c");
  CHECK(archive::ParseIsoTimestamp("2025-11-24T06:12:41Z") == 1763964761000000000);
  CHECK(archive::ParseIsoTimestamp("2025-11-24 06:12:41") == 0);
}

}  // namespace ferry
