// Writes the seed corpora of tests/fuzz/corpus/<target>/ from the shared hook payloads
// (tests/fixtures/hooks), the config examples and ferry's own encoders: frames from
// EncodeFrame and the Make*Body functions, event bodies from BuildEventBody, spool lines as
// the client writes them, segment files written by Journal. Built in the asan-ubsan preset only
// (target fuzz_make_seeds, not part of `fuzzers`):
//   build/fuzz/tests/fuzz/fuzz_make_seeds <repo> <out-dir>
// Deterministic: fixed ids and times, so a re-run rewrites the same files.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "daemon/journal/format.h"
#include "daemon/journal/journal.h"
#include "proto/event.h"
#include "proto/frame.h"
#include "proto/messages.h"

namespace {

using namespace ferry;

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

std::vector<std::string> List(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name.size() > suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        out.push_back(dir + "/" + name);
      }
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Base(const std::string& path) {
  const size_t slash = path.rfind('/');
  std::string dir = path.substr(0, slash);
  const std::string name = path.substr(slash + 1);
  return dir.substr(dir.rfind('/') + 1) + "-" + name.substr(0, name.rfind('.'));
}

std::string Id(size_t i) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%032zx", i + 1);
  return buf;
}

// The EVENT body the client builds for a hook payload (JSON, or text when it is not JSON).
std::string EventBody(const std::string& payload, size_t i, const std::string& kind) {
  proto::EnvelopeFields f;
  f.id = Id(i);
  f.ts = 1796334689144160208 + static_cast<int64_t>(i);
  f.source = "fixture";
  f.kind = kind;
  f.session = "s-1";
  f.cwd = "/home/u/src/ferry";
  f.host = "devbox";
  f.pid = 4242;
  rapidjson::Document doc;
  proto::Error error;
  std::string text;
  if (proto::ParseJson(payload, &doc, &error)) {
    f.payload_json = payload;
  } else {
    rapidjson::StringBuffer sb;
    proto::JsonWriter w(sb);
    const std::string clean = proto::SanitizeUtf8(payload);
    w.String(clean.data(), static_cast<rapidjson::SizeType>(clean.size()));
    text.assign(sb.GetString(), sb.GetSize());
    f.payload_json = text;
    f.payload_encoding = "text";
  }
  return proto::BuildEventBody(f, i % 2 == 0);
}

// The canonical envelope (journal body) inside an EVENT body.
std::string Envelope(const std::string& body) {
  proto::EventRequest request;
  proto::Error error;
  if (!request.Parse(proto::FrameType::kEvent, body, 1, &error)) {
    std::fprintf(stderr, "seed body refused: %s\n", error.message.c_str());
    std::exit(1);
  }
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  proto::WriteEnvelope(request.at(0), w);
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <repo> <out-dir>\n", argv[0]);
    return 2;
  }
  const std::string repo = argv[1], out = argv[2];
  for (const char* t : {"frame", "event", "journal", "spool", "config", "redact"}) {
    ::mkdir((out + "/" + t).c_str(), 0755);
  }
  // Hook payloads under 8 KiB (the large ones only cost time; the fuzzer grows inputs).
  std::vector<std::pair<std::string, std::string>> payloads;  // (name, bytes)
  for (const char* host : {"claude-code", "codex", "cursor", "gemini", "shell"}) {
    for (const std::string& path : List(repo + "/tests/fixtures/hooks/" + host, ".json")) {
      std::string bytes = Read(path);
      if (bytes.size() <= 8192) payloads.emplace_back(Base(path), std::move(bytes));
    }
  }
  std::vector<std::string> bodies, envelopes;
  for (size_t i = 0; i < payloads.size(); ++i) {
    bodies.push_back(EventBody(payloads[i].second, i, payloads[i].first));
    envelopes.push_back(Envelope(bodies.back()));
  }
  bodies.push_back(EventBody("not json \xff\xfe", payloads.size(), "text"));
  envelopes.push_back(Envelope(bodies.back()));

  // event: raw payloads (mode 2), EVENT bodies (mode 0), one EVENT_BATCH body (mode 1).
  for (size_t i = 0; i < payloads.size(); ++i) {
    Write(out + "/event/payload-" + payloads[i].first, std::string(1, '\2') + payloads[i].second);
    if (i % 3 == 0)
      Write(out + "/event/event-" + payloads[i].first, std::string(1, '\0') + bodies[i]);
  }
  std::string batch = "{\"v\":1,\"events\":[";
  for (size_t i = 0; i < 4; ++i) batch += (i ? "," : "") + envelopes[i];
  batch += "]}";
  Write(out + "/event/batch-4", std::string(1, '\1') + batch);

  // frame: one file per request / reply type, and one stream of several frames.
  using proto::FrameType;
  proto::TailRequest tail;
  tail.from = 5;
  tail.follow = true;
  tail.source = "claude-code";
  proto::FlushRequest flush;
  flush.sink = "central";
  flush.wait = true;
  flush.timeout_ms = 3000;
  proto::QueryRequest query;
  query.sql = "select kind, count(*) from events group by kind";
  query.limit = 10;
  proto::DeadletterRequest deadletter;
  deadletter.op = "replay";
  proto::Error err;
  err.code = proto::Errc::kBadJson;
  err.message = "invalid JSON at byte 3";
  const std::vector<std::pair<std::string, std::string>> frames = {
      {"hello", proto::EncodeFrame(FrameType::kHello, "{\"v\":1,\"client\":\"ferry/0.1.0\"}")},
      {"event", proto::EncodeFrame(FrameType::kEvent, bodies[0])},
      {"event-text", proto::EncodeFrame(FrameType::kEvent, bodies.back())},
      {"batch", proto::EncodeFrame(FrameType::kEventBatch, batch)},
      {"status-req", proto::EncodeFrame(FrameType::kStatusReq, proto::MakeStatusRequestBody())},
      {"tail-req", proto::EncodeFrame(FrameType::kTailReq, proto::MakeTailRequestBody(tail))},
      {"flush-req", proto::EncodeFrame(FrameType::kFlushReq, proto::MakeFlushRequestBody(flush))},
      {"query-req", proto::EncodeFrame(FrameType::kQueryReq, proto::MakeQueryRequestBody(query))},
      {"deadletter-req",
       proto::EncodeFrame(FrameType::kDeadletterReq, proto::MakeDeadletterRequestBody(deadletter))},
      {"ack", proto::EncodeFrame(FrameType::kAck, proto::MakeAckBody({7, 9, true}))},
      {"error", proto::EncodeFrame(FrameType::kError, proto::MakeErrorBody(err, false))},
  };
  std::string stream;
  for (const auto& [name, bytes] : frames) {
    Write(out + "/frame/" + name, bytes);
    if (name != "batch") stream += bytes;
  }
  Write(out + "/frame/stream", stream);

  // spool: files of lines as `ferry emit` spools them (the EVENT body, newlines as spaces).
  auto line = [](std::string body) {
    for (char& c : body) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    return body + "\n";
  };
  for (size_t i = 0; i < bodies.size(); i += 4) {
    std::string file;
    for (size_t k = i; k < std::min(i + 3, bodies.size()); ++k) file += line(bodies[k]);
    Write(out + "/spool/spool-" + std::to_string(i / 4), file);
  }
  Write(out + "/spool/blank-and-torn", line(bodies[1]) + " \t\r\n" + bodies[2].substr(0, 40));

  // journal: segments written by Journal (4 KiB segments, so several), as one segment, two
  // concatenated, with and without the CRC-repair flag (tests/fuzz/journal_fuzzer.cc).
  char tmpl[] = "/tmp/ferry-seeds-XXXXXX";
  if (!::mkdtemp(tmpl)) return 1;
  const std::string dir = tmpl;
  {
    Journal::Options options;
    options.dir = dir;
    options.segment_bytes = 4096;
    std::unique_ptr<Journal> journal;
    RecoveryReport report;
    if (!Journal::Open(options, &journal, &report).ok()) return 1;
    for (size_t i = 0; i < envelopes.size(); ++i) {
      uint64_t seq = 0;
      if (!journal->Append(1796334689144160208 + static_cast<int64_t>(i), envelopes[i], &seq)
               .ok() ||
          !journal->Flush().ok()) {
        return 1;
      }
    }
  }
  std::vector<uint64_t> seqs;
  if (!ListSegments(dir, &seqs).ok() || seqs.size() < 3) return 1;
  std::vector<std::string> segments;
  for (uint64_t s : seqs) {
    const std::string path = dir + "/" + journal::SegmentFileName(s);
    segments.push_back(Read(path));
    ::unlink(path.c_str());
  }
  ::rmdir(dir.c_str());
  const std::string plain("\0\0\0", 3), repair("\1\0\0", 3);
  Write(out + "/journal/one-segment", plain + segments[0]);
  Write(out + "/journal/two-segments", plain + segments[0] + segments[1]);
  Write(out + "/journal/two-segments-repair", repair + segments[1] + segments[2]);
  Write(out + "/journal/torn-tail",
        plain + segments[0] + segments[1].substr(0, segments[1].size() - 7));
  Write(out + "/journal/limit-start", std::string("\6\0\3", 3) + segments[0]);
  Write(out + "/journal/magic-only",
        plain + std::string(journal::kSegmentMagic, journal::kMagicSize));

  // config: the TOML examples in the docs and the hook configs, plus each [[redact.rule]] form.
  auto blocks = [](const std::string& text) {
    std::vector<std::string> out_blocks;
    for (size_t pos = 0; (pos = text.find("```toml\n", pos)) != std::string::npos;) {
      const size_t start = pos + 8, end = text.find("```", start);
      if (end == std::string::npos) break;
      out_blocks.push_back(text.substr(start, end - start));
      pos = end + 3;
    }
    return out_blocks;
  };
  int n = 0;
  for (const char* doc : {"operations", "sinks", "hooks"}) {
    for (const std::string& block : blocks(Read(repo + "/docs/" + doc + ".md"))) {
      Write(out + "/config/" + doc + "-" + std::to_string(n++), block);
    }
  }
  for (const std::string& path : List(repo + "/tests/fixtures/hooks-config", ".toml")) {
    Write(out + "/config/" + Base(path), Read(path));
  }
  Write(out + "/config/redact-rules",
        "[redact]\nbuiltin = true\nlocal = true\n\n[[redact.rule]]\nname = \"corp-host\"\n"
        "pattern = '([a-z]+)\\.corp\\.example'\nreplacement = \"$1.[host]\"\n\n"
        "[[redact.rule]]\nname = \"ticket\"\npattern = 'TICKET-(?<n>[0-9]+)'\n"
        "replacement = \"T-${n}\"\n");
  Write(out + "/config/sink-headers",
        "[[sink]]\nname = \"otel\"\ntype = \"otlp-http\"\nurl = \"http://127.0.0.1:4318\"\n"
        "token_env = \"OTEL_TOKEN\"\ngzip_level = 6\nheaders = { \"X-Team\" = \"infra\" }\n"
        "max_bytes = \"512KiB\"\nbatch_timeout = \"250ms\"\n");

  // redact: the payloads that hold secrets, as text (mode 0) and as JSON (mode 1).
  for (const auto& [name, bytes] : payloads) {
    if (name.find("secret") == std::string::npos && name.find("PreToolUse") == std::string::npos)
      continue;
    Write(out + "/redact/text-" + name, std::string(1, '\0') + bytes);
    Write(out + "/redact/json-" + name, std::string(1, '\1') + bytes);
  }
  Write(out + "/redact/text-mixed",
        std::string(1, '\0') +
            "export AWS_ACCESS_KEY_ID=AKIAFAKE0KEY0FOR0TEST password=hunter2 "
            "Authorization: Bearer abcdefghijklmnop ghp_FaKe0ToKeN0fOr0ReDaCtIoN0TeStS000000 "
            "xoxb-0000000000-fake eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln "
            "-----BEGIN RSA PRIVATE KEY-----\nMIIfake\n-----END RSA PRIVATE KEY-----\n");
  Write(out + "/redact/json-members",
        std::string(1, '\1') +
            "{\"DB_PASSWORD\":\"hunter2\",\"Authorization\":\"Basic dXNlcjpwYXNz\","
            "\"env\":{\"GITHUB_TOKEN\":\"ghp_FaKe0ToKeN0fOr0ReDaCtIoN0TeStS000000\"},"
            "\"cmd\":\"curl -H 'Authorization: Bearer abcdefghij' https://x\"}");
  return 0;
}
