// `ferry flush` (client/sinks.h): FLUSH_REQ, then one line per sink from FLUSH_RESULT.
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

#include "client/args.h"
#include "client/common.h"
#include "client/conn.h"
#include "client/sink_reply.h"
#include "client/sinks.h"
#include "proto/event.h"
#include "proto/messages.h"

namespace ferry::client {
namespace {

using namespace sink_cli;  // NOLINT(google-build-using-namespace): this file's helpers

constexpr const char* kFlushHelp =
    "usage: ferry flush [--sink NAME] [--wait] [--timeout DURATION]\n"
    "\n"
    "Wakes ferryd's upstream sinks now (docs/sinks.md): a partial batch goes out without\n"
    "waiting for batch_timeout, and a sink backing off retries at once. Prints one line per\n"
    "sink: how far it got, or its error.\n"
    "  --sink NAME         only this sink (default: every configured sink)\n"
    "  --wait              return once every chosen sink has delivered everything the\n"
    "                      journal held when asked, or as soon as one is paused or fails\n"
    "  --timeout DURATION  with --wait: give up waiting for the sinks after this long\n"
    "                      (default: no limit); without --wait: how long to wait for\n"
    "                      ferryd's answer (default 10s). 500ms, 30s, 5m, 1h\n"
    "A ferryd that does not answer in time (with --wait: 5s after --timeout) is reported as\n"
    "not answering.\n"
    "Exit status: 0 done, 1 a chosen sink reports an error (or there is no such sink),\n"
    "2 timed out waiting for the sinks (or bad usage), 3 ferryd is not running or not\n"
    "answering.\n";

// A --wait reply comes when ferryd's own timeout fires; the socket waits this much longer.
constexpr auto kWaitMargin = std::chrono::seconds(5);

int PrintFlushResult(const std::string& body, const proto::FlushRequest& request,
                     unsigned long long timeout_ms) {
  rapidjson::Document doc;
  proto::Error perr;
  if (!proto::ParseJson(body, &doc, &perr) || !doc.IsObject() || !Member(doc, "sinks").IsArray()) {
    Fail("flush", "ferryd returned an unreadable FLUSH_RESULT");
    return 1;
  }
  const rapidjson::Value& sinks = Member(doc, "sinks");
  const std::string target = Num(Member(doc, "target_seq"));
  const bool timed_out = Member(doc, "timed_out").IsBool() && Member(doc, "timed_out").GetBool();
  bool any_error = false, any_behind = false, any_shown = false;
  for (const auto& s : sinks.GetArray()) {
    const std::string name = Str(Member(s, "name"));
    if (!request.sink.empty() && name != request.sink) continue;  // not a chosen sink
    any_shown = true;
    const std::string state = Str(Member(s, "state"));
    const rapidjson::Value& error = Member(s, "error");
    const bool caught_up = Member(s, "caught_up").IsBool() && Member(s, "caught_up").GetBool();
    const std::string cursor = Num(Member(s, "cursor"));
    std::string line = name + ": ";
    if (error.IsString() && error.GetStringLength() > 0) {
      any_error = true;
      line += (state.empty() ? std::string("error") : state) + ": " + Excerpt(Str(error), 200);
    } else if (caught_up) {
      line += "caught up to seq " + cursor;
    } else {
      any_behind = true;
      line += (request.wait ? "not caught up: at seq " : "flushing: at seq ") + cursor + " of " +
              target + (state.empty() ? "" : " (" + state + ")");
    }
    std::printf("%s\n", line.c_str());
  }
  std::fflush(stdout);
  if (!any_shown) {
    if (!request.sink.empty()) {
      Fail("flush", "ferryd did not report on sink \"" + request.sink + "\"");
      return 1;
    }
    std::printf("no sinks configured; nothing to flush\n");
    return 0;
  }
  if (any_error) return 1;
  if (request.wait && (timed_out || any_behind)) {
    Fail("flush", "timed out" +
                      (timeout_ms > 0 ? " after " + std::to_string(timeout_ms) + " ms" : "") +
                      " before every sink caught up to seq " + target);
    return 2;
  }
  return 0;
}

}  // namespace

int RunFlush(int argc, char** argv) {
  FlushArgs args;
  std::string error;
  const Parsed parsed = ParseFlushArgs(argc, argv, &args, &error);
  if (parsed == Parsed::kHelp) {
    std::fputs(kFlushHelp, stdout);
    return 0;
  }
  if (parsed == Parsed::kError) {
    Fail("flush", error);
    return kUsageExitCode;
  }
  const GlobalOptions& global = args.global;
  const unsigned long long timeout_ms = args.timeout_ms;
  proto::FlushRequest request;
  request.sink = args.sink;
  request.wait = args.wait;
  request.timeout_ms = timeout_ms;
  // With --wait the reply comes when ferryd's own timeout fires (or when done): the socket
  // waits for that plus a margin, and without --timeout as long as poll() allows.
  const auto wait = !request.wait
                        ? std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms : kReadTimeoutMs)
                    : timeout_ms > 0 ? std::chrono::milliseconds(timeout_ms) + kWaitMargin
                                     : std::chrono::milliseconds(kMaxWaitMs);
  if (!request.wait) request.timeout_ms = 0;  // not ferryd's: the wait for its answer
  proto::FrameType type;
  std::string body, not_running;
  const auto r = RoundTrip(
      global, "flush",
      proto::EncodeFrame(proto::FrameType::kFlushReq, proto::MakeFlushRequestBody(request)),
      Clock::now() + wait, /*allow_offline=*/false, &type, &body, &not_running);
  if (r == Exchange::kNotRunning) {
    Fail("flush", not_running);
    return 3;
  }
  if (r == Exchange::kNotAnswering) return 3;
  if (r != Exchange::kOk) return 1;
  if (type == proto::FrameType::kError) {
    PrintErrorReply("flush", body);
    return 1;
  }
  if (type != proto::FrameType::kFlushResult) {
    Fail("flush", std::string("ferryd answered with ") + proto::FrameTypeName(type) +
                      " instead of FLUSH_RESULT");
    return 1;
  }
  return PrintFlushResult(body, request, timeout_ms);
}

}  // namespace ferry::client
