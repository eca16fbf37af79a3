#include "daemon/archive/read.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "daemon/archive/format.h"
#include "daemon/base/file_util.h"
#include "proto/frame.h"
#include "proto/messages.h"
#include "proto/transcript.h"

namespace ferry::archive {
namespace {

struct Found {
  std::string source, session, dir;
};

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return names;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// Sessions under `dir` whose id starts with `prefix` (an exact id wins), of `source` if given.
std::vector<Found> FindSessions(const std::string& dir, const std::string& source,
                                const std::string& prefix) {
  std::vector<Found> found, exact;
  for (const std::string& src_name : ListDir(dir)) {
    std::string src;
    if (!DecodeName(src_name, &src) || (!source.empty() && src != source)) continue;
    for (const std::string& name : ListDir(dir + "/" + src_name)) {
      std::string session;
      if (!DecodeName(name, &session) || session.compare(0, prefix.size(), prefix) != 0) continue;
      Found f{src, session, dir + "/" + src_name + "/" + name};
      if (ListGenerations(f.dir).empty()) continue;
      if (session == prefix) exact.push_back(f);
      found.push_back(std::move(f));
    }
  }
  return exact.empty() ? found : exact;
}

// Appends generation `gen`'s bytes from file offset *at to *out until `limit` bytes; *at moves
// on; true when the file's end (or damage, recorded in *damage) was reached.
bool ReadGeneration(const std::string& path, uint32_t gen, uint64_t* at, size_t limit,
                    std::string* out, std::vector<std::string>* damage) {
  std::string data;
  if (!ReadWholeFile(path, &data)) {
    damage->push_back("cannot read " + path);
    return true;
  }
  std::string_view view(data);
  // Offsets are re-checked from the header on: a page boundary is a frame boundary.
  Scan scan = ScanFile(view);
  const size_t valid = scan.valid_bytes;
  size_t pos = *at;
  uint64_t expect = 0;
  if (pos == 0) {
    FrameView f;
    std::string what;
    if (ReadFrame(view, 0, &f, &what) != Damage::kNone || f.type != kHeaderFrame) {
      damage->push_back(path + ": no valid header (" + (what.empty() ? std::string("torn") : what) +
                        "); generation " + std::to_string(gen) + " skipped");
      return true;
    }
    pos = f.size;
  }
  while (pos < valid && out->size() < limit) {
    FrameView f;
    std::string what;
    ReadFrame(view, pos, &f, &what);  // valid up to `valid`: checked by ScanFile
    uint64_t off = 0;
    // A page's first frame starts where it says (ScanFile checked the run of offsets).
    if (pos == *at) expect = DataOffset(f.payload);
    if (!DecodeData(f.payload, expect, out, &off, &what)) {
      damage->push_back(path + ": damaged frame at byte " + std::to_string(pos) + " (" + what +
                        "); the rest of generation " + std::to_string(gen) + " is not printed");
      return true;
    }
    expect = off + DataLength(f.payload);
    pos += f.size;
  }
  *at = pos;
  if (pos < valid) return false;
  if (scan.damage == Damage::kCorrupt) {
    damage->push_back(path + ": damaged frame at byte " + std::to_string(valid) + " (" + scan.what +
                      "); the rest of generation " + std::to_string(gen) + " is not printed");
  }
  return true;  // a torn tail (a copy cut by a crash) is not damage: it was never acknowledged
}

std::string Result(const proto::TranscriptResult& r) {
  return proto::EncodeFrame(proto::FrameType::kTranscriptResult,
                            proto::MakeTranscriptResultBody(r));
}

}  // namespace

std::string AnswerTranscriptRequest(const std::string& dir, std::string_view body,
                                    size_t page_bytes) {
  proto::TranscriptRequest req;
  proto::Error error;
  if (!proto::ParseTranscriptRequestBody(body, &req, &error)) {
    return proto::EncodeFrame(proto::FrameType::kError, proto::MakeErrorBody(error, false));
  }
  proto::TranscriptResult r;
  const std::vector<Found> found = FindSessions(dir, req.source, req.session);
  const std::string which =
      "session " + req.session + (req.source.empty() ? std::string() : " of source " + req.source);
  if (found.empty()) {
    r.status = "not_found";
    r.message = "no archived transcript for " + which + " in " + dir;
    return Result(r);
  }
  if (found.size() > 1) {
    r.status = "ambiguous";
    r.message = which + " is ambiguous; it matches:";
    for (size_t i = 0; i < found.size() && i < 10; ++i) {
      r.message += " " + found[i].source + ":" + found[i].session;
    }
    if (found.size() > 10) r.message += " (and " + std::to_string(found.size() - 10) + " more)";
    r.message += " (give more of the id, or --source)";
    return Result(r);
  }
  const Found& f = found[0];
  r.status = "ok";
  r.source = f.source;
  r.session = f.session;
  const std::vector<uint32_t> gens = ListGenerations(f.dir);
  auto it = std::lower_bound(gens.begin(), gens.end(), std::max<uint32_t>(req.gen, 1));
  uint64_t at = it != gens.end() && *it == req.gen ? req.at : 0;
  r.done = true;
  for (; it != gens.end(); ++it) {
    const bool whole =
        ReadGeneration(f.dir + "/" + GenFileName(*it), *it, &at, page_bytes, &r.data, &r.damage);
    if (!whole) {
      r.gen = *it;
      r.at = at;
      r.done = false;
      break;
    }
    at = 0;
    if (r.data.size() >= page_bytes && it + 1 != gens.end()) {
      r.gen = *(it + 1);
      r.at = 0;
      r.done = false;
      break;
    }
  }
  return Result(r);
}

}  // namespace ferry::archive
