// `ferry deadletter list|replay|purge` (client/sinks.h): through ferryd (DEADLETTER_REQ) when
// it runs; list and purge read and remove <state_dir>/deadletter/*.ndjson themselves when not.

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "client/common.h"
#include "client/conn.h"
#include "client/sink_reply.h"
#include "client/sinks.h"
#include "proto/event.h"
#include "proto/messages.h"
#include "proto/paths.h"

namespace ferry::client {
namespace {

using namespace sink_cli;  // NOLINT(google-build-using-namespace): this file's helpers

constexpr const char* kDeadletterHelp =
    "usage: ferry deadletter list [--sink NAME] [--json]\n"
    "       ferry deadletter replay [--sink NAME]\n"
    "       ferry deadletter purge [--sink NAME]\n"
    "\n"
    "Events an upstream sink's server rejected for good (a 4xx answer to that event alone;\n"
    "docs/sinks.md \"Responses\") are kept in <state_dir>/deadletter/<sink>.ndjson.\n"
    "  list    print them: sink, seq, id, HTTP status, time and the start of the response,\n"
    "          then a count per sink; --json prints one JSON object per line instead (the\n"
    "          dead-letter lines as stored; no counts). Asks ferryd when it runs (its\n"
    "          configured sinks); when it does not, a read-only ferryd or the files.\n"
    "          A torn last line is skipped (and said so).\n"
    "  replay  ask ferryd to send them again (rejected ones land in a fresh file)\n"
    "  purge   delete them: through ferryd, or, when ferryd is not running, by removing\n"
    "          <state_dir>/deadletter/<sink>.ndjson itself\n"
    "  --sink NAME         only this sink (default: every sink)\n"
    "  --json              list: one JSON object per dead letter, one per line\n"
    "  --timeout DURATION  how long to wait for ferryd's answer (default 10s; 500ms, 30s)\n"
    "Exit status: 0 ok, 1 failed or no such sink, 2 bad usage, 3 ferryd is not running\n"
    "(replay) or not answering.\n";

// --- deadletter files --------------------------------------------------------------------

struct DeadFile {
  std::vector<std::string> lines;  // each a JSON object
  size_t skipped = 0;              // lines that did not parse (torn last line included)
};

// Reads <path>; false when it cannot be read (*missing when it does not exist).
bool ReadFile(const std::string& path, std::string* text, bool* missing, std::string* error) {
  *missing = false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *missing = errno == ENOENT;
    *error = "cannot open " + path + ": " + std::strerror(errno);
    return false;
  }
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      text->append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      *error = "cannot read " + path + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
  }
  ::close(fd);
  return true;
}

// Splits a dead-letter file into its JSON lines. A last line without its newline is one the
// sink was writing when it stopped: kept when it is whole JSON, else skipped as torn.
DeadFile ParseDeadFile(const std::string& path, const std::string& text, bool quiet) {
  DeadFile out;
  size_t pos = 0, lineno = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    const bool complete = end != std::string::npos;
    if (!complete) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    rapidjson::Document doc;
    proto::Error perr;
    if (proto::ParseJson(line, &doc, &perr) && doc.IsObject()) {
      out.lines.emplace_back(line);
      continue;
    }
    ++out.skipped;
    if (quiet) continue;
    if (!complete) {
      Fail("deadletter", path + ": the last line is torn (" + std::to_string(line.size()) +
                             " bytes without a newline; the sink was stopped mid-write); skipped");
    } else {
      Fail("deadletter", path + ":" + std::to_string(lineno) + ": not a JSON object (" +
                             perr.message + "); skipped");
    }
  }
  return out;
}

struct DeadDir {
  std::string state;  // the state directory
  std::string dir;
  std::vector<std::string> sinks;         // with <name>.ndjson, sorted
  std::map<std::string, bool> replaying;  // with <name>.replay.ndjson
};

// Lists <state_dir>/deadletter (only `sink` when given). False with *error when the directory
// exists but cannot be read.
bool ScanDeadDir(const GlobalOptions& global, const std::string& sink, DeadDir* out,
                 std::string* error) {
  out->state = ResolveStateDir(global);
  out->dir = proto::DeadletterDir(out->state);
  DIR* d = ::opendir(out->dir.c_str());
  if (!d) {
    if (errno == ENOENT) return true;  // nothing was ever dead-lettered
    *error = "cannot read " + out->dir + ": " + std::strerror(errno);
    return false;
  }
  while (const struct dirent* e = ::readdir(d)) {
    std::string base;
    bool replay = false;
    if (!proto::ParseDeadletterFileName(e->d_name, &base, &replay)) continue;
    if (!sink.empty() && base != sink) continue;
    if (replay) {
      out->replaying[base] = true;
    } else {
      out->sinks.push_back(base);
    }
  }
  ::closedir(d);
  std::sort(out->sinks.begin(), out->sinks.end());
  return true;
}

// Lines of a replay file (for "replay in progress" counts); 0 if it cannot be read.
size_t CountReplay(const DeadDir& dd, const std::string& sink) {
  std::string text, error;
  bool missing = false;
  const std::string path = proto::DeadletterReplayPath(dd.state, sink);
  if (!ReadFile(path, &text, &missing, &error)) return 0;
  return ParseDeadFile(path, text, /*quiet=*/true).lines.size();
}

// What `deadletter list` shows, read from the files or received from ferryd.
struct LetterView {
  std::map<std::string, std::vector<std::string>> letters;  // sink -> its letters (JSON)
  std::map<std::string, size_t> replaying;                  // sink -> replay lines
};

// Reads the files itself (ferryd is not running). Returns the exit status so far.
int ViewFromFiles(const GlobalOptions& global, const std::string& sink, LetterView* view) {
  DeadDir dd;
  std::string error;
  if (!ScanDeadDir(global, sink, &dd, &error)) {
    Fail("deadletter", error);
    return 1;
  }
  int rc = 0;
  for (const std::string& name : dd.sinks) {
    const std::string path = proto::DeadletterPath(dd.state, name);
    std::string text;
    bool missing = false;
    if (!ReadFile(path, &text, &missing, &error)) {
      if (missing) continue;  // purged meanwhile
      Fail("deadletter", error);
      rc = 1;
      continue;
    }
    view->letters[name] = ParseDeadFile(path, text, /*quiet=*/false).lines;
  }
  for (const auto& [name, replaying] : dd.replaying) view->replaying[name] = CountReplay(dd, name);
  return rc;
}

// Asks ferryd (op "list"): its sink thread reads the files. kNotRunning when it does not run.
Exchange ViewFromDaemon(const GlobalOptions& global, const std::string& sink,
                        unsigned long long timeout_ms, LetterView* view, int* rc) {
  proto::FrameType type;
  std::string body, not_running;
  const auto r = RoundTrip(global, "deadletter",
                           proto::EncodeFrame(proto::FrameType::kDeadletterReq,
                                              proto::MakeDeadletterRequestBody({"list", sink})),
                           Clock::now() + std::chrono::milliseconds(timeout_ms),
                           /*allow_offline=*/true, &type, &body, &not_running);
  if (r != Exchange::kOk) return r;
  if (type == proto::FrameType::kError) {
    PrintErrorReply("deadletter", body);
    *rc = 1;
    return Exchange::kFailed;
  }
  std::vector<proto::DeadletterListEntry> sinks;
  proto::Error perr;
  if (type != proto::FrameType::kDeadletterResult ||
      !proto::ParseDeadletterListResultBody(body, &sinks, &perr)) {
    Fail("deadletter", "ferryd returned an unreadable DEADLETTER_RESULT");
    *rc = 1;
    return Exchange::kFailed;
  }
  for (proto::DeadletterListEntry& e : sinks) {
    if (!e.error.empty()) {
      Fail("deadletter", e.name + ": " + e.error);
      *rc = 1;
    }
    if (e.skipped > 0) {
      Fail("deadletter", e.name + ": " + std::to_string(e.skipped) +
                             " line(s) that are not JSON objects skipped (a torn last line is "
                             "one the sink was writing when it stopped)");
    }
    if (e.truncated) {
      Fail("deadletter", e.name + ": showing " + std::to_string(e.letters.size()) + " of " +
                             std::to_string(e.count) + " dead letters (the answer's size limit)");
    }
    if (e.replaying > 0) view->replaying[e.name] = e.replaying;
    if (e.count > 0 || !e.letters.empty()) view->letters[e.name] = std::move(e.letters);
  }
  return Exchange::kOk;
}

int PrintLetters(const LetterView& view, const std::string& sink, bool json) {
  if (json) {
    for (const auto& [name, lines] : view.letters) {
      for (const std::string& line : lines) std::printf("%s\n", line.c_str());
    }
    std::fflush(stdout);
    for (const auto& [name, n] : view.replaying) {
      Fail("deadletter",
           name + ": replay in progress (" + std::to_string(n) + " event(s) being sent again)");
    }
    return 0;
  }
  struct Row {
    std::string cells[6];
  };
  std::vector<Row> rows;
  for (const auto& [name, lines] : view.letters) {
    for (const std::string& line : lines) {
      rapidjson::Document doc;
      proto::Error perr;
      proto::ParseJson(line, &doc, &perr);
      const std::string entry_sink = Str(Member(doc, "sink"));
      rows.push_back(Row{{entry_sink.empty() ? name : entry_sink, Num(Member(doc, "seq")),
                          Str(Member(doc, "id")), Num(Member(doc, "status")),
                          Str(Member(doc, "time")), Excerpt(Str(Member(doc, "response")))}});
    }
  }
  size_t width[6] = {};
  for (const Row& r : rows) {
    for (size_t c = 0; c < 5; ++c) width[c] = std::max(width[c], Width(r.cells[c]));
  }
  for (const Row& r : rows) {
    std::string line;
    for (size_t c = 0; c < 6; ++c) {
      line += r.cells[c].empty() ? "-" : r.cells[c];
      if (c < 5) line.append(width[c] + 2 - std::max<size_t>(1, Width(r.cells[c])), ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  }
  if (!rows.empty()) std::printf("\n");
  std::map<std::string, size_t> per_sink;
  for (const auto& [name, lines] : view.letters) per_sink[name] = lines.size();
  for (const auto& [name, n] : view.replaying) per_sink.emplace(name, 0);
  if (per_sink.empty()) {
    std::printf(sink.empty() ? "no dead letters\n" : "%s: no dead letters\n", sink.c_str());
  }
  for (const auto& [name, n] : per_sink) {
    std::string line = name + ": " + std::to_string(n) + " dead letter(s)";
    if (auto it = view.replaying.find(name); it != view.replaying.end()) {
      line += "; replay in progress (" + std::to_string(it->second) + " event(s) being sent again)";
    }
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

// Through ferryd when it runs (it owns the files); from the files when it does not.
int ListDeadletters(const DeadletterArgs& args) {
  const GlobalOptions& global = args.global;
  const std::string& sink = args.sink;
  LetterView view;
  int rc = 0;
  const Exchange r = ViewFromDaemon(global, sink, args.timeout_ms, &view, &rc);
  if (r == Exchange::kNotRunning) {
    rc = ViewFromFiles(global, sink, &view);
  } else if (r == Exchange::kNotAnswering) {
    return 3;
  } else if (r != Exchange::kOk) {
    return 1;
  }
  const int printed = PrintLetters(view, sink, args.json);
  return rc != 0 ? rc : printed;
}

// `purge` without ferryd: removes <state_dir>/deadletter/<sink>.ndjson itself, holding
// ferryd's state lock so that no ferryd starts meanwhile.
int PurgeLocally(const GlobalOptions& global, const std::string& sink,
                 const std::string& not_running) {
  const std::string state_dir = ResolveStateDir(global);
  const std::string lock_path = proto::StateLockPath(state_dir);
  const int lock = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
  if (lock >= 0 && ::flock(lock, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock);
    Fail("deadletter", "a ferryd holds " + state_dir + " but does not answer (" + not_running +
                           "); not removing its files behind its back");
    return 1;
  }
  int rc = 0;
  DeadDir dd;
  std::string error;
  if (!ScanDeadDir(global, sink, &dd, &error)) {
    Fail("deadletter", error);
    rc = 1;
  } else {
    std::printf("ferryd is not running; purging %s itself\n", dd.dir.c_str());
    size_t removed = 0;
    for (const std::string& name : dd.sinks) {
      const std::string path = proto::DeadletterPath(dd.state, name);
      std::string text;
      bool missing = false;
      size_t lines = 0;
      if (ReadFile(path, &text, &missing, &error)) {
        lines = ParseDeadFile(path, text, /*quiet=*/true).lines.size();
      }
      if (::unlink(path.c_str()) != 0) {
        if (errno == ENOENT) continue;
        Fail("deadletter", "cannot remove " + path + ": " + std::strerror(errno));
        rc = 1;
        continue;
      }
      ++removed;
      std::printf("removed %s (%zu dead letter(s))\n", path.c_str(), lines);
    }
    if (removed == 0 && rc == 0) {
      std::printf(sink.empty() ? "no dead letters to purge\n" : "%s: no dead letters to purge\n",
                  sink.c_str());
    }
    for (const auto& [name, replaying] : dd.replaying) {
      std::printf("kept %s/%s.replay.ndjson: a replay in progress, resumed when ferryd starts\n",
                  dd.dir.c_str(), name.c_str());
    }
  }
  if (lock >= 0) ::close(lock);
  return rc;
}

int AskDaemon(const GlobalOptions& global, const proto::DeadletterRequest& request,
              unsigned long long timeout_ms) {
  proto::FrameType type;
  std::string body, not_running;
  const auto r = RoundTrip(global, "deadletter",
                           proto::EncodeFrame(proto::FrameType::kDeadletterReq,
                                              proto::MakeDeadletterRequestBody(request)),
                           Clock::now() + std::chrono::milliseconds(timeout_ms),
                           /*allow_offline=*/false, &type, &body, &not_running);
  if (r == Exchange::kNotRunning) {
    if (request.op == "purge") return PurgeLocally(global, request.sink, not_running);
    Fail("deadletter", not_running + "; a replay needs it");
    return 3;
  }
  if (r == Exchange::kNotAnswering) return 3;
  if (r != Exchange::kOk) return 1;
  if (type == proto::FrameType::kError) {
    PrintErrorReply("deadletter", body);
    return 1;
  }
  rapidjson::Document doc;
  proto::Error perr;
  if (type != proto::FrameType::kDeadletterResult || !proto::ParseJson(body, &doc, &perr) ||
      !doc.IsObject() || !Member(doc, "sinks").IsArray()) {
    Fail("deadletter", "ferryd returned an unreadable DEADLETTER_RESULT");
    return 1;
  }
  const bool replay = request.op == "replay";
  size_t shown = 0;
  int rc = 0;
  for (const auto& s : Member(doc, "sinks").GetArray()) {
    const std::string name = Str(Member(s, "name"));
    if (!request.sink.empty() && name != request.sink) continue;
    ++shown;
    const std::string n = Num(Member(s, replay ? "queued" : "purged"));
    const std::string err = Str(Member(s, "error"));
    if (!err.empty()) {
      Fail("deadletter", name + ": " + err);
      rc = 1;
      continue;
    }
    std::printf("%s: %s %s\n", name.c_str(), n.c_str(),
                replay ? "event(s) queued for replay" : "dead letter(s) purged");
  }
  if (shown == 0) {
    std::printf("no sinks configured; nothing to %s\n", request.op.c_str());
  }
  return rc;
}

}  // namespace

int RunDeadletter(int argc, char** argv) {
  DeadletterArgs args;
  std::string error;
  const Parsed parsed = ParseDeadletterArgs(argc, argv, &args, &error);
  if (parsed == Parsed::kHelp) {
    std::fputs(kDeadletterHelp, stdout);
    return 0;
  }
  if (parsed == Parsed::kError) {
    Fail("deadletter", error);
    return kUsageExitCode;
  }
  if (args.op == "list") return ListDeadletters(args);
  return AskDaemon(args.global, proto::DeadletterRequest{args.op, args.sink}, args.timeout_ms);
}

}  // namespace ferry::client
