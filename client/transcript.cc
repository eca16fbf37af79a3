#include "client/transcript.h"

#include <chrono>
#include <cstdio>
#include <string>

#include "client/args.h"
#include "client/common.h"
#include "client/conn.h"
#include "client/read_conn.h"
#include "proto/frame.h"
#include "proto/messages.h"
#include "proto/transcript.h"

namespace ferry::client {
namespace {

constexpr const char* kHelp =
    "usage: ferry transcript SESSION [--source S] [--timeout DURATION]\n"
    "\n"
    "Prints the transcript of an agent session (Claude Code, Codex, Gemini CLI) as ferryd\n"
    "archived it: the transcript file's bytes, exactly, even after the agent deleted it.\n"
    "ferryd copies a transcript's new bytes at each Stop, SubagentStop, PreCompact and\n"
    "SessionEnd (Gemini: AfterAgent, PreCompress, SessionEnd). A file that was truncated or\n"
    "rewritten was archived again as a new generation; generations print oldest first.\n"
    "Works when ferryd is down: a read-only ferryd answers.\n"
    "  SESSION             the session id, or its start when that is unique\n"
    "  --source S          only the sessions of this source (claude-code, codex, gemini, ...)\n"
    "  --timeout DURATION  how long to wait for each page (default 30s)\n"
    "Exit status: 0 ok, 1 nothing archived for SESSION or the archive is damaged (what could\n"
    "be read is printed), 2 bad usage or SESSION matches several sessions, 3 ferryd not\n"
    "running or not answering.\n";

}  // namespace

int RunTranscript(int argc, char** argv) {
  TranscriptArgs o;
  std::string error;
  switch (ParseTranscriptArgs(argc, argv, &o, &error)) {
    case Parsed::kError:
      Complain(error);
      return kUsageExitCode;
    case Parsed::kHelp:
      std::fputs(kHelp, stdout);
      return 0;
    case Parsed::kRun:
      break;
  }
  const std::string socket = ResolveSocket(o.global);
  Connection conn;
  auto deadline = Clock::now() + std::chrono::milliseconds(o.timeout_ms);
  if (!ConnectForRead(&conn, o.global, socket, deadline, /*allow_offline=*/true)) {
    return kNotRunningExitCode;
  }
  proto::TranscriptRequest req{o.session, o.source, 0, 0};
  bool damaged = false;
  for (;;) {
    deadline = Clock::now() + std::chrono::milliseconds(o.timeout_ms);
    const std::string frame =
        proto::EncodeFrame(proto::FrameType::kTranscriptReq, proto::MakeTranscriptRequestBody(req));
    if (const int rc = SendForRead(conn, frame, deadline, o.global, socket, "transcript")) {
      return rc;
    }
    proto::FrameType type;
    std::string body;
    if (const int rc =
            ReceiveForRead(conn, deadline, &type, &body, o.global, socket, "transcript")) {
      return rc;
    }
    proto::Error perr;
    if (type == proto::FrameType::kError) {
      proto::ParseErrorBody(body, &perr);
      Complain("transcript: " + std::string(proto::ErrcName(perr.code)) + ": " + perr.message);
      return 1;
    }
    proto::TranscriptResult r;
    if (type != proto::FrameType::kTranscriptResult ||
        !proto::ParseTranscriptResultBody(body, &r, &perr)) {
      Complain("transcript: ferryd returned an unreadable answer");
      return 1;
    }
    if (r.status == "not_found") {
      Complain("transcript: " + r.message +
               " (ferryd archives a transcript at the session's Stop or SessionEnd; "
               "ferry sessions lists the sessions recorded)");
      return 1;
    }
    if (r.status == "ambiguous") {
      Complain("transcript: " + r.message);
      return kUsageExitCode;
    }
    if (r.status != "ok") {
      Complain("transcript: ferryd answered \"" + r.status + "\": " + r.message);
      return 1;
    }
    if (!r.data.empty() && std::fwrite(r.data.data(), 1, r.data.size(), stdout) != r.data.size()) {
      Complain("transcript: cannot write the output");
      return 1;
    }
    for (const std::string& d : r.damage) {
      Complain("transcript: archive damaged: " + d);
      damaged = true;
    }
    if (r.done) break;
    req = {r.session, r.source, r.gen, r.at};
  }
  if (std::fflush(stdout) != 0) {
    Complain("transcript: cannot write the output");
    return 1;
  }
  return damaged ? 1 : 0;
}

}  // namespace ferry::client
