// `ferry emit`: the hook hot path. Every path ends in exit 0 unless --strict: a hook must
// never block the tool that runs it. Nothing goes to stdout unless --print-ack asks.
#include "client/emit.h"

#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <string_view>

#include "client/common.h"
#include "client/conn.h"
#include "proto/event.h"
#include "proto/messages.h"

namespace ferry::client {
namespace {

constexpr const char* kEmitHelp =
    "usage: ferry emit --source S --kind K [--session ID] [--cwd DIR]\n"
    "                  [--data JSON | --stdin | --argv-json JSON] [--durable]\n"
    "                  [--timeout-ms N] [--strict] [--print-ack]\n"
    "\n"
    "Sends one event to ferryd and exits 0 within the timeout, whatever happens.\n"
    "  --source S       who sends it: claude-code, codex, cursor, gemini, bash, zsh, fish, ...\n"
    "  --kind K         the event name: PreToolUse, command, ...\n"
    "  --session ID     session id (default: none)\n"
    "  --cwd DIR        working directory (default: the current one)\n"
    "  --data JSON      the payload, a JSON value\n"
    "  --stdin          read the payload from stdin (to EOF; skipped when stdin is a terminal);\n"
    "                   text that is not JSON is kept as a JSON string\n"
    "  --argv-json JSON the payload as an argument (Codex `notify` passes it last)\n"
    "  --durable        wait until the event is on disk (fdatasync), not just in the journal\n"
    "  --timeout-ms N   total budget for connect, send and ack (default 50)\n"
    "  --strict         exit 1 when the event was not acked (default: always exit 0)\n"
    "  --print-ack      print the assigned seq on stdout\n";

int64_t NowNs() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Reads all of stdin in large chunks. Called on every path that names --stdin, before
// anything can fail, so the host never blocks writing to a hook that stopped reading.
std::string DrainStdin() {
  std::string data;
  if (::isatty(0)) return data;
  size_t chunk = 64u << 10;
  for (;;) {
    const size_t at = data.size();
    data.resize(at + chunk);
    const ssize_t n = ::read(0, data.data() + at, chunk);
    if (n < 0 && errno == EINTR) {
      data.resize(at);
      continue;
    }
    data.resize(at + static_cast<size_t>(n > 0 ? n : 0));
    if (n <= 0) break;
    if (chunk < (4u << 20)) chunk *= 2;
  }
  return data;
}

struct EmitArgs {
  GlobalOptions global;
  std::string source, kind, session, cwd, data, argv_json;
  bool has_data = false, use_stdin = false, has_argv_json = false;
  bool durable = false, strict = false, print_ack = false, help = false;
  unsigned long long timeout_ms = 50;
};

bool ParseArgs(int argc, char** argv, EmitArgs* a, std::string* error) {
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (TakeGlobalOption(argc, argv, &i, &a->global, error)) {
      if (!error->empty()) return false;
      continue;
    }
    auto value = [&](std::string* out) {
      const size_t eq = arg.find('=');
      if (eq != std::string_view::npos) {
        *out = std::string(arg.substr(eq + 1));
        return true;
      }
      if (i + 1 >= argc) {
        *error = std::string(arg) + " needs a value";
        return false;
      }
      *out = argv[++i];
      return true;
    };
    const std::string_view name = arg.substr(0, arg.find('='));
    std::string timeout;
    if (name == "--source") {
      if (!value(&a->source)) return false;
    } else if (name == "--kind") {
      if (!value(&a->kind)) return false;
    } else if (name == "--session") {
      if (!value(&a->session)) return false;
    } else if (name == "--cwd") {
      if (!value(&a->cwd)) return false;
    } else if (name == "--data") {
      if (!value(&a->data)) return false;
      a->has_data = true;
    } else if (name == "--argv-json") {
      // Codex's notify appends the JSON as the last argument: `--argv-json` may stand last.
      if (i + 1 < argc && arg.find('=') == std::string_view::npos) {
        a->argv_json = argv[++i];
      } else if (arg.find('=') != std::string_view::npos) {
        a->argv_json = std::string(arg.substr(arg.find('=') + 1));
      }
      a->has_argv_json = true;
    } else if (arg == "--stdin") {
      a->use_stdin = true;
    } else if (arg == "--durable") {
      a->durable = true;
    } else if (arg == "--strict") {
      a->strict = true;
    } else if (arg == "--print-ack") {
      a->print_ack = true;
    } else if (arg == "--help" || arg == "-h") {
      a->help = true;
    } else if (name == "--timeout-ms") {
      if (!value(&timeout)) return false;
      if (!ParseUint(timeout, &a->timeout_ms) || a->timeout_ms == 0 || a->timeout_ms > 3600000) {
        *error = "--timeout-ms must be a whole number of milliseconds in [1, 3600000], not \"" +
                 timeout + "\"";
        return false;
      }
    } else {
      *error = "emit: unknown argument \"" + std::string(arg) + "\" (ferry emit --help lists them)";
      return false;
    }
  }
  if (a->help) return true;
  if (a->source.empty())
    *error = "emit: --source is required";
  else if (a->kind.empty())
    *error = "emit: --kind is required";
  else if (a->has_data + a->use_stdin + a->has_argv_json > 1) {
    *error = "emit: use only one of --data, --stdin and --argv-json";
  }
  return error->empty();
}

// Turns raw text into a JSON payload: itself when it is JSON, otherwise a JSON string.
std::string PayloadJson(const std::string& text) {
  rapidjson::Document doc;
  proto::Error error;
  if (proto::ParseJson(text, &doc, &error)) return text;
  const std::string clean = proto::SanitizeUtf8(text);
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  w.String(clean.data(), static_cast<rapidjson::SizeType>(clean.size()));
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace

int RunEmit(int argc, char** argv) {
  const auto start = Clock::now();
  bool names_stdin = false;
  for (int i = 0; i < argc; ++i) names_stdin |= std::string_view(argv[i]) == "--stdin";
  std::string stdin_text = names_stdin ? DrainStdin() : std::string();

  EmitArgs a;
  std::string error;
  bool strict = false;
  for (int i = 0; i < argc; ++i) strict |= std::string_view(argv[i]) == "--strict";
  if (!ParseArgs(argc, argv, &a, &error)) {
    Complain(error);
    return strict ? 1 : 0;
  }
  if (a.help) {
    [[maybe_unused]] ssize_t n = ::write(1, kEmitHelp, std::char_traits<char>::length(kEmitHelp));
    return 0;
  }
  const auto deadline = start + std::chrono::milliseconds(a.timeout_ms);

  std::string payload;
  if (a.has_data) {
    rapidjson::Document doc;
    proto::Error perr;
    if (!proto::ParseJson(a.data, &doc, &perr)) {
      Complain("emit: --data is not JSON: " + perr.message);
      return a.strict ? 1 : 0;
    }
    payload = a.data;
  } else if (a.use_stdin) {
    if (stdin_text.find_first_not_of(" \t\r\n") != std::string::npos)
      payload = PayloadJson(stdin_text);
  } else if (a.has_argv_json && !a.argv_json.empty()) {
    payload = PayloadJson(a.argv_json);
  }

  char cwd_buf[4096];
  if (a.cwd.empty() && ::getcwd(cwd_buf, sizeof cwd_buf)) a.cwd = cwd_buf;
  struct utsname uts {};
  ::uname(&uts);

  proto::EnvelopeFields f;
  f.id = proto::NewEventId();
  f.ts = NowNs();
  f.source = a.source;
  f.kind = a.kind;
  f.session = a.session;
  f.cwd = a.cwd;
  f.host = uts.nodename;
  f.pid = ::getppid();  // the hook's host: the shell or agent that ran us
  f.payload_json = payload;
  const std::string frame =
      proto::EncodeFrame(proto::FrameType::kEvent, proto::BuildEventBody(f, a.durable));

  const std::string socket = ResolveSocket(a.global);
  Connection conn;
  proto::FrameType type;
  std::string body;
  bool replied = false;
  if (conn.Connect(socket, deadline, &error)) {
    std::string send_error;
    const bool sent = conn.Send(frame, deadline, &send_error);
    // A daemon that refuses the frame (too large, say) sends an ERROR and closes while we may
    // still be sending: read its reason rather than report a broken pipe.
    replied = conn.Receive(deadline, &type, &body, &error);
    if (!sent && !replied) error = send_error;
  }
  if (!replied) {
    Complain("event not delivered (ferryd not answering within " + std::to_string(a.timeout_ms) +
             " ms): " + error);
    return a.strict ? 1 : 0;
  }
  if (type == proto::FrameType::kError) {
    proto::Error perr;
    proto::ParseErrorBody(body, &perr);
    Complain(std::string("ferryd refused the event: ") + proto::ErrcName(perr.code) + ": " +
             perr.message);
    return a.strict ? 1 : 0;
  }
  proto::Ack ack;
  proto::Error perr;
  if (type != proto::FrameType::kAck || !proto::ParseAckBody(body, &ack, &perr)) {
    Complain("unexpected reply from ferryd");
    return a.strict ? 1 : 0;
  }
  if (a.print_ack) {
    const std::string line = std::to_string(ack.last_seq) + "\n";
    [[maybe_unused]] ssize_t n = ::write(1, line.data(), line.size());
  }
  return 0;
}

}  // namespace ferry::client
