// Deterministic randomized test of the frame decoder and event validation: random bytes and
// mutated EVENT / EVENT_BATCH streams go through DecodeFrame + EventRequest::Parse exactly as
// ferryd's ingest does. The seed is fixed and printed; set FERRY_FUZZ_SEED to try another.
//
// Properties:
//  - nothing crashes, hangs or reads outside the input (each input sits in an exact-size heap
//    block, so ASan sees a read one byte past its end);
//  - DecodeFrame never consumes more than it was given, and kError always explains itself;
//  - a frame is accepted as an event only when every event in it re-validates, and its
//    WriteEnvelope output re-parses to a valid envelope that serializes identically;
//  - random bytes (with or without a well-formed header) are never accepted as an event;
//  - feeding a valid stream in random chunks decodes the same frames as feeding it whole.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "proto/event.h"
#include "proto/frame.h"
#include "proto/messages.h"

namespace ferry::proto {
namespace {

// REQUIRE costs more than the code under test in a Debug build; hot loops use this and
// only report failures.
#define FUZZ_REQUIRE(...)                                       \
  do {                                                          \
    if (!(__VA_ARGS__)) FAIL("FUZZ_REQUIRE(" #__VA_ARGS__ ")"); \
  } while (false)

constexpr uint64_t kDefaultSeed = 0x5EEDF3A7C0FFEE01ull;
constexpr size_t kMaxBatchEvents = 16;

uint64_t Seed() {
  if (const char* s = std::getenv("FERRY_FUZZ_SEED"); s && *s) return std::strtoull(s, nullptr, 0);
  return kDefaultSeed;
}

// All draws go through operator() and modulo, so a seed gives the same inputs with any
// standard library (the std distributions are implementation-defined).
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  uint64_t operator()() { return gen_(); }
  size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(gen_() % n); }
  bool OneIn(size_t n) { return Below(n) == 0; }
  char Byte() { return static_cast<char>(gen_() & 0xff); }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Below(v.size())];
  }

 private:
  std::mt19937_64 gen_;
};

const std::vector<std::string> kSources = {"claude-code", "codex", "cursor", "gemini",
                                           "zsh",         "bash",  "fish",   "x"};
const std::vector<std::string> kKinds = {"PreToolUse", "PostToolUse",      "command",
                                         "Stop",       "UserPromptSubmit", "k"};
const std::vector<std::string> kStrings = {"",
                                           "a",
                                           "ls -la",
                                           "quote\"d",
                                           "back\\slash",
                                           "tab\t",
                                           "\xc3\xa9",
                                           "\xf0\x9f\x98\x80",
                                           "line\nbreak",
                                           "\x01\x1f",
                                           "/home/u/src",
                                           std::string("nul\0x", 5)};
// Pieces that tend to break parsers when spliced into JSON.
const std::vector<std::string> kTokens = {"{",
                                          "}",
                                          "[",
                                          "]",
                                          "\"",
                                          ":",
                                          ",",
                                          "\\",
                                          "\\u",
                                          "\\udc00",
                                          "\\ud800",
                                          "\\ud83d\\ude00",
                                          "\xed\xa0\x80",
                                          "\xff",
                                          "\xc0\xaf",
                                          "\xe2\x82",
                                          std::string(1, '\0'),
                                          "null",
                                          "true",
                                          "-0",
                                          "1e400",
                                          "18446744073709551616",
                                          "-9223372036854775809",
                                          "1.5",
                                          "\"id\":",
                                          "\"ts\":-1",
                                          "\"v\":2",
                                          "\"durable\":1",
                                          "\"payload\":",
                                          "\"events\":[]",
                                          "\"seq\":1",
                                          std::string(300, '['),
                                          "\"id\":\"zz\"",
                                          " ",
                                          "\t\n"};

std::string Hex(Rng& rng, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += kHex[rng.Below(16)];
  return s;
}

std::string RandomJson(Rng& rng, int depth) {
  const size_t kind = rng.Below(depth > 0 ? 8 : 5);
  switch (kind) {
    case 0:
      return "null";
    case 1:
      return rng.OneIn(2) ? "true" : "false";
    case 2:
      return std::to_string(static_cast<int64_t>(rng()));
    case 3:
      return std::to_string(rng.Below(100000)) + "." + std::to_string(rng.Below(1000)) + "e-3";
    case 4: {
      rapidjson::StringBuffer sb;
      JsonWriter w(sb);
      const std::string& s = rng.Pick(kStrings);
      w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
      return std::string(sb.GetString(), sb.GetSize());
    }
    case 5:
    case 6: {
      // Appended piece by piece: `"," + std::string` trips GCC 12's bogus -Wrestrict at -O3
      // (https://gcc.gnu.org/bugzilla/show_bug.cgi?id=105329).
      std::string s = "[";
      const size_t n = rng.Below(4);
      for (size_t i = 0; i < n; ++i) {
        if (i) s += ',';
        s += RandomJson(rng, depth - 1);
      }
      return s + "]";
    }
    default: {
      std::string s = "{";
      const size_t n = rng.Below(4);
      for (size_t i = 0; i < n; ++i) {
        s += i ? ",\"k" : "\"k";  // appended, not "k" + ...: GCC bug 105329 (above)
        s += std::to_string(i);
        s += "\":";
        s += RandomJson(rng, depth - 1);
      }
      return s + "}";
    }
  }
}

// A random valid EVENT body; the envelope alone (as BuildEventBody writes it) in *envelope.
std::string RandomEventBody(Rng& rng, bool durable, std::string* envelope = nullptr) {
  const std::string id = rng.OneIn(8) ? Hex(rng, 8) + "-" + Hex(rng, 4) : Hex(rng, 32);
  const std::string session = rng.OneIn(2) ? Hex(rng, rng.Below(40)) : "";
  const std::string cwd = rng.OneIn(2) ? rng.Pick(kStrings) : "";
  const std::string payload = rng.OneIn(4) ? "" : RandomJson(rng, 3);
  EnvelopeFields f;
  f.id = id;
  f.ts = static_cast<int64_t>(rng() >> 1);
  f.source = rng.Pick(kSources);
  f.kind = rng.Pick(kKinds);
  f.session = session;
  f.cwd = cwd;
  f.host = rng.OneIn(2) ? "box" : "";
  f.pid = rng.OneIn(3) ? -1 : static_cast<int64_t>(rng.Below(1u << 22));
  f.payload_json = payload;
  f.truncated = rng.OneIn(10);
  f.orig_size = rng.Below(1u << 30);
  std::string body = BuildEventBody(f, false);
  if (envelope) {
    constexpr std::string_view kPrefix = R"({"v":1,"event":)";
    *envelope = body.substr(kPrefix.size(), body.size() - kPrefix.size() - 1);
  }
  if (durable) body = BuildEventBody(f, true);
  return body;
}

std::string RandomBatchBody(Rng& rng, size_t max_events) {
  std::string s = R"({"v":1,)";
  if (rng.OneIn(2)) s += rng.OneIn(2) ? R"("durable":true,)" : R"("durable":false,)";
  s += R"("events":[)";
  const size_t n = 1 + rng.Below(max_events);
  for (size_t i = 0; i < n; ++i) {
    std::string envelope;
    RandomEventBody(rng, false, &envelope);
    s += (i ? "," : "") + envelope;
  }
  return s + "]}";
}

// One to three valid frames back to back, mostly EVENT and EVENT_BATCH.
std::string RandomValidStream(Rng& rng, size_t max_frames = 3,
                              size_t max_batch_events = kMaxBatchEvents) {
  std::string out;
  const size_t frames = 1 + rng.Below(max_frames);
  for (size_t i = 0; i < frames; ++i) {
    if (rng.OneIn(2)) {
      AppendFrame(out, FrameType::kEvent, RandomEventBody(rng, rng.OneIn(4)));
    } else {
      AppendFrame(out, FrameType::kEventBatch, RandomBatchBody(rng, max_batch_events));
    }
  }
  return out;
}

void Mutate(Rng& rng, std::string& s, const std::string& other) {
  const size_t rounds = 1 + rng.Below(4);
  for (size_t r = 0; r < rounds; ++r) {
    switch (rng.Below(11)) {
      case 0:  // flip one bit
        if (!s.empty()) s[rng.Below(s.size())] ^= static_cast<char>(1u << rng.Below(8));
        break;
      case 1:  // set a random byte
        if (!s.empty()) s[rng.Below(s.size())] = rng.Byte();
        break;
      case 2:  // truncate
        s.resize(rng.Below(s.size() + 1));
        break;
      case 3: {  // extend with random bytes
        const size_t n = 1 + rng.Below(64);
        for (size_t i = 0; i < n; ++i) s += rng.Byte();
        break;
      }
      case 4: {  // change the first length field
        if (s.size() < kLengthSize) break;
        const uint32_t old = GetU32Le(s.data());
        uint32_t v;
        switch (rng.Below(5)) {
          case 0:
            v = static_cast<uint32_t>(rng());
            break;
          case 1:
            v = old + 1;
            break;
          case 2:
            v = old - 1;
            break;
          case 3:
            v = old + static_cast<uint32_t>(rng.Below(64)) - 32;
            break;
          default:
            v = rng.OneIn(2) ? 0xFFFFFFFFu : 0u;
            break;
        }
        PutU32Le(s.data(), v);
        break;
      }
      case 5: {  // splice: a prefix of this and a suffix of another stream
        const size_t cut = rng.Below(s.size() + 1);
        const size_t from = rng.Below(other.size() + 1);
        s = s.substr(0, cut) + other.substr(from);
        break;
      }
      case 6: {  // insert a token
        const size_t at = rng.Below(s.size() + 1);
        s.insert(at, rng.Pick(kTokens));
        break;
      }
      case 7: {  // delete a range
        if (s.empty()) break;
        const size_t at = rng.Below(s.size());
        s.erase(at, 1 + rng.Below(16));
        break;
      }
      case 8: {  // duplicate a range
        if (s.empty()) break;
        const size_t at = rng.Below(s.size());
        const size_t n = 1 + rng.Below(32);
        s.insert(rng.Below(s.size() + 1), s.substr(at, n));
        break;
      }
      case 9:  // change the type byte
        if (s.size() > kLengthSize) s[kLengthSize] = static_cast<char>(rng.Below(12));
        break;
      default: {  // mutate inside the body and fix the length so the frame still decodes
        if (s.size() <= kHeaderSize) break;
        const size_t at = kHeaderSize + rng.Below(s.size() - kHeaderSize);
        if (rng.OneIn(2)) {
          s.insert(at, rng.Pick(kTokens));
        } else {
          s[at] = rng.Byte();
        }
        PutU32Le(s.data(), static_cast<uint32_t>(s.size() - kLengthSize));
        break;
      }
    }
  }
}

struct Stats {
  uint64_t inputs = 0;
  uint64_t frames = 0;
  uint64_t decode_errors = 0;
  uint64_t need_more = 0;
  uint64_t accepted_requests = 0;
  uint64_t accepted_events = 0;
  uint64_t refused_requests = 0;
};

// Checks one accepted event the way a journal reader would see it.
void CheckAcceptedEvent(const rapidjson::Value& event) {
  Error error;
  if (!ValidateEnvelope(event, "event", &error)) FAIL("accepted event fails: " << error.message);
  rapidjson::StringBuffer sb;
  JsonWriter writer(sb);
  WriteEnvelope(event, writer);
  const std::string once(sb.GetString(), sb.GetSize());

  rapidjson::Document doc;
  if (!ParseJson(once, &doc, &error) || !ValidateEnvelope(doc, "event", &error)) {
    FAIL("WriteEnvelope output is not a valid envelope: " << error.message << "\n" << once);
  }
  rapidjson::StringBuffer sb2;
  JsonWriter writer2(sb2);
  WriteEnvelope(doc, writer2);
  const std::string_view twice(sb2.GetString(), sb2.GetSize());
  if (twice != once) FAIL("canonical form changed on a second pass:\n" << once << "\n" << twice);
}

// Runs `input` through the decoder and the event parser like an ingest session. Returns the
// number of events accepted.
uint64_t Feed(std::string_view input, size_t max_frame, EventRequest& request, Stats& stats) {
  // An exact-size heap copy: any read past the end is an ASan report.
  std::unique_ptr<char[]> copy(new char[input.size() ? input.size() : 1]);
  if (!input.empty()) std::memcpy(copy.get(), input.data(), input.size());
  std::string_view rest(copy.get(), input.size());
  ++stats.inputs;
  uint64_t accepted = 0;
  while (true) {
    Frame frame;
    Error error;
    const DecodeResult r = DecodeFrame(rest, max_frame, &frame, &error);
    if (r == DecodeResult::kNeedMore) {
      ++stats.need_more;
      FUZZ_REQUIRE(error.ok());
      break;
    }
    if (r == DecodeResult::kError) {
      ++stats.decode_errors;
      FUZZ_REQUIRE((error.code == Errc::kFrameTooLarge || error.code == Errc::kEmptyFrame ||
                    error.code == Errc::kUnknownType));
      FUZZ_REQUIRE(!(error.message.empty()));
      break;
    }
    ++stats.frames;
    FUZZ_REQUIRE(frame.size >= kHeaderSize);
    FUZZ_REQUIRE(frame.size <= rest.size());
    FUZZ_REQUIRE(frame.size - kLengthSize <= max_frame);
    FUZZ_REQUIRE(frame.body.data() == rest.data() + kHeaderSize);
    FUZZ_REQUIRE(frame.body.size() == frame.size - kHeaderSize);
    FUZZ_REQUIRE(IsKnownFrameType(static_cast<uint8_t>(frame.type)));
    if (frame.type == FrameType::kEvent || frame.type == FrameType::kEventBatch) {
      if (request.Parse(frame.type, frame.body, kMaxBatchEvents, &error)) {
        FUZZ_REQUIRE(error.ok());
        FUZZ_REQUIRE(request.size() >= 1);
        FUZZ_REQUIRE(request.size() <= kMaxBatchEvents);
        FUZZ_REQUIRE((frame.type == FrameType::kEventBatch || request.size() == 1));
        for (size_t i = 0; i < request.size(); ++i) CheckAcceptedEvent(request.at(i));
        ++stats.accepted_requests;
        stats.accepted_events += request.size();
        accepted += request.size();
      } else {
        ++stats.refused_requests;
        FUZZ_REQUIRE(!(error.ok()));
        FUZZ_REQUIRE(!(error.message.empty()));
        // ingest closes the connection after a refused frame
        break;
      }
    }
    rest.remove_prefix(frame.size);
  }
  return accepted;
}

std::vector<std::pair<FrameType, std::string>> DecodeAll(std::string_view buf) {
  std::vector<std::pair<FrameType, std::string>> out;
  Frame frame;
  Error error;
  while (DecodeFrame(buf, kDefaultMaxFrame, &frame, &error) == DecodeResult::kFrame) {
    out.emplace_back(frame.type, std::string(frame.body));
    buf.remove_prefix(frame.size);
  }
  return out;
}

}  // namespace

TEST_CASE("random and mutated frames never crash the decoder or pass as events", "[fuzz][frame]") {
  const uint64_t seed = Seed();
  std::cout << "frame_decoder_random_test: seed 0x" << std::hex << seed << std::dec
            << " (set FERRY_FUZZ_SEED to change)" << std::endl;
  Rng rng(seed);
  Stats stats;
  EventRequest request;  // reused, as in an ingest session

  SECTION("valid streams are accepted, whole and in random chunks") {
    for (int i = 0; i < 500; ++i) {
      const std::string stream = RandomValidStream(rng);
      const auto frames = DecodeAll(stream);
      size_t expected_events = 0;
      for (const auto& [type, body] : frames) {
        Error error;
        INFO(body);
        REQUIRE(request.Parse(type, body, kMaxBatchEvents, &error));
        expected_events += request.size();
      }
      REQUIRE(Feed(stream, kDefaultMaxFrame, request, stats) == expected_events);

      // Bytes arrive in arbitrary pieces; the decoder must see the same frames.
      std::string buffered;
      std::vector<std::pair<FrameType, std::string>> chunked;
      size_t pos = 0;
      while (pos < stream.size()) {
        const size_t n = 1 + rng.Below(64);
        buffered.append(stream, pos, n);
        pos += n;
        Frame frame;
        Error error;
        DecodeResult r;
        while ((r = DecodeFrame(buffered, kDefaultMaxFrame, &frame, &error)) ==
               DecodeResult::kFrame) {
          chunked.emplace_back(frame.type, std::string(frame.body));
          buffered.erase(0, frame.size);
        }
        REQUIRE(r == DecodeResult::kNeedMore);
      }
      REQUIRE(buffered.empty());
      REQUIRE(chunked == frames);
    }
    CHECK(stats.accepted_events > 500);
  }

  SECTION("mutated EVENT and EVENT_BATCH streams") {
    constexpr int kRounds = 100000;
    // Mutants are copies from a pool of small valid streams: generating a fresh stream per
    // round would cost more than decoding it.
    std::vector<std::string> pool;
    for (int i = 0; i < 1000; ++i) pool.push_back(RandomValidStream(rng, 2, 4));
    for (int i = 0; i < kRounds; ++i) {
      std::string s = rng.Pick(pool);
      Mutate(rng, s, rng.Pick(pool));
      // Mostly the default limit, sometimes one small enough to trip on real frames.
      const size_t max_frame = rng.OneIn(10) ? 1 + rng.Below(512) : kDefaultMaxFrame;
      Feed(s, max_frame, request, stats);
    }
    std::cout << "  mutated: " << stats.inputs << " inputs, " << stats.frames << " frames, "
              << stats.decode_errors << " decode errors, " << stats.accepted_requests
              << " requests accepted, " << stats.refused_requests << " refused" << std::endl;
    CHECK(stats.inputs == kRounds);
    // The mix must exercise every path, or the test proves little.
    CHECK(stats.decode_errors > 1000);
    CHECK(stats.need_more > 1000);
    CHECK(stats.accepted_requests > 1000);
    CHECK(stats.refused_requests > 10000);
  }

  SECTION("random bytes are never an event") {
    constexpr int kRounds = 50000;
    uint64_t accepted = 0;
    for (int i = 0; i < kRounds; ++i) {
      std::string s(rng.Below(400), '\0');
      for (char& c : s) c = rng.Byte();
      accepted += Feed(s, kDefaultMaxFrame, request, stats);
    }
    CHECK(accepted == 0);
  }

  SECTION("random bodies behind a well-formed EVENT header are never an event") {
    constexpr int kRounds = 50000;
    uint64_t accepted = 0;
    for (int i = 0; i < kRounds; ++i) {
      std::string body(rng.Below(400), '\0');
      for (char& c : body) c = rng.Byte();
      if (rng.OneIn(2) && !body.empty()) body[0] = '{';
      const FrameType type = rng.OneIn(2) ? FrameType::kEvent : FrameType::kEventBatch;
      accepted += Feed(EncodeFrame(type, body), kDefaultMaxFrame, request, stats);
    }
    CHECK(accepted == 0);
    CHECK(stats.refused_requests == kRounds);
  }

  SECTION("random JSON that is not an envelope is never an event") {
    constexpr int kRounds = 20000;
    uint64_t accepted = 0;
    for (int i = 0; i < kRounds; ++i) {
      const bool batch = rng.OneIn(2);
      const std::string body = batch ? R"({"v":1,"events":[)" + RandomJson(rng, 3) + "]}"
                                     : R"({"v":1,"event":)" + RandomJson(rng, 4) + "}";
      accepted += Feed(EncodeFrame(batch ? FrameType::kEventBatch : FrameType::kEvent, body),
                       kDefaultMaxFrame, request, stats);
    }
    CHECK(accepted == 0);
  }
}

}  // namespace ferry::proto
