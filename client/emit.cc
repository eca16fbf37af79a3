// `ferry emit`: the hook hot path. Every path ends in exit 0 unless --strict: a hook must
// never block the tool that runs it. Nothing goes to stdout unless --print-ack asks, nothing
// to stderr unless --strict; problems go to the problem log instead (client/client_errors.h).
#include "client/emit.h"

#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <string_view>

#include "client/args.h"
#include "client/client_errors.h"
#include "client/common.h"
#include "client/conn.h"
#include "client/host_fields.h"
#include "client/show.h"  // NowNs
#include "client/spool.h"
#include "proto/event.h"
#include "proto/messages.h"

namespace ferry::client {
namespace {

constexpr const char* kEmitHelp =
    "usage: ferry emit --source S [--kind K] [--session ID] [--cwd DIR]\n"
    "                  [--data JSON | --stdin | --argv-json JSON] [--durable | --ephemeral]\n"
    "                  [--timeout-ms N] [--max-event-bytes N] [--strict] [--print-ack]\n"
    "\n"
    "Sends one event to ferryd and exits 0 within the timeout, whatever happens. When ferryd\n"
    "does not ack it (down, slow, or refusing it for any reason), the event goes to the spool\n"
    "(<state_dir>/spool), which ferryd imports when it can.\n"
    "  --source S       who sends it: claude-code, codex, cursor, gemini, copilot, cline,\n"
    "                   windsurf, opencode, bash, zsh, fish, ...\n"
    "  --kind K         the event name: PreToolUse, command, ... (with --stdin or --argv-json,\n"
    "                   default: the payload's hook_event_name or type, else \"unknown\")\n"
    "  --session ID     session id (default: the payload's session_id, conversation_id,\n"
    "                   thread-id, taskId (Cline) or trajectory_id (Windsurf), else none)\n"
    "  --cwd DIR        working directory (default: the payload's cwd, else the current one)\n"
    "  --data JSON      the payload, a JSON value\n"
    "  --stdin          read the payload from stdin (to EOF; skipped when stdin is a terminal)\n"
    "                   With --data, --stdin and --argv-json, input that is not JSON, not\n"
    "                   UTF-8, or nested deeper than 253 levels is kept as a JSON string\n"
    "                   (payload_encoding \"text\"); JSON is kept as sent, number for number\n"
    "  --argv-json [JSON] the payload as an argument; Codex `notify` appends it last\n"
    "  --durable        wait until the event is on disk (fdatasync), not just in the journal\n"
    "  --ephemeral      for live tails only (`ferry tail -f`), e.g. high-rate progress: not\n"
    "                   journaled, stored or sent to sinks, and never spooled; when ferryd\n"
    "                   does not take it, it is dropped (exit 0; with --strict, exit 1)\n"
    "  --timeout-ms N   total budget for connect, send and ack (default 50)\n"
    "  --max-event-bytes N  larger payloads are cut and flagged truncated (default 4128768)\n"
    "  --strict         print the problem on stderr and exit 1 when the flags are wrong or\n"
    "                   the event was not acked (default: print nothing and exit 0; a refused\n"
    "                   or dropped event is noted in <state_dir>/client-errors.log, which\n"
    "                   `ferry status` counts as \"client problems\")\n"
    "  --print-ack      print the assigned seq on stdout (--ephemeral: \"ephemeral tails=N\",\n"
    "                   the number of live tails it was queued to)\n";

// Reads all of stdin. Called on every path that names --stdin, before anything can fail, so
// the host never blocks writing to a hook that stopped reading. Reads straight into the
// string, growing it a chunk at a time (4 KiB first, doubling to 64 KiB): a string grown to
// 64 KiB and then 128 KiB up front would zero-fill (and fault in) pages a 200-byte payload
// never uses, and a 16 KiB stack buffer costs stack pages of its own; a page fault costs more
// than the rest of the call on the VMs hooks run in (docs/benchmarks.md). A regular file is
// reserved at its size up front.
std::string DrainStdin() {
  std::string data;
  if (::isatty(0)) return data;
  struct stat st {};
  int queued = 0;  // a pipe's bytes already written: usually the whole payload
  if (::fstat(0, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
    data.reserve(static_cast<size_t>(st.st_size) + 1);
  else if (::ioctl(0, FIONREAD, &queued) == 0 && queued > 0)
    data.reserve(static_cast<size_t>(queued) + 1);
  size_t chunk = 4096;
  for (;;) {
    const size_t old = data.size();
    // What is reserved first (the +1 reads the end of the input without growing the string).
    const size_t room = data.capacity() > old ? data.capacity() - old : chunk;
    data.resize(old + room);
    const ssize_t n = ::read(0, data.data() + old, room);
    data.resize(old + static_cast<size_t>(std::max<ssize_t>(n, 0)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    chunk = std::min<size_t>(chunk * 2, 65536);
  }
  return data;
}

// The payload as it goes into the envelope, and what the host's JSON says about the event.
struct Payload {
  // JSON input is sent as it came: `input` views the caller's bytes (argv or the drained
  // stdin), which outlive the event, so a 20 KB payload is not copied once more.
  std::string_view input;
  std::string text_json;  // text: the input as a JSON string (or a cut prefix of it)
  bool text = false;      // the payload is text_json: input that was not JSON, or too large
  bool truncated = false;
  uint64_t orig_size = 0;
  HostFields host;  // kind, session and cwd from the payload, when present
  // A complete JSON value; empty: no payload.
  std::string_view json() const { return text ? std::string_view(text_json) : input; }
};

std::string JsonString(std::string_view text) {
  const std::string clean = proto::SanitizeUtf8(text);
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  w.String(clean.data(), static_cast<rapidjson::SizeType>(clean.size()));
  return std::string(sb.GetString(), sb.GetSize());
}

// The payload as a JSON string holding `text` (flagged "text"). Over `max_bytes`, a JSON
// string holding the longest prefix of the input (cut at a character boundary) whose escaped
// form fits, flagged truncated with the original size: a hook's event is never refused for
// its size.
Payload MakeTextPayload(std::string_view text, size_t max_bytes) {
  Payload p;
  p.text = true;
  p.text_json = JsonString(text);
  if (p.text_json.size() <= max_bytes) return p;
  p.truncated = true;
  p.orig_size = text.size();
  size_t n = std::min(text.size(), max_bytes);
  for (;;) {
    // Cut at a UTF-8 character boundary: back up over continuation bytes.
    size_t cut = n;
    while (cut > 0 && cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80)
      --cut;
    p.text_json = JsonString(text.substr(0, cut));
    if (p.text_json.size() <= max_bytes || cut == 0) break;
    // Escapes made it longer than the input: shrink in proportion, with a margin.
    n = static_cast<size_t>(static_cast<double>(cut) * static_cast<double>(max_bytes) /
                            static_cast<double>(p.text_json.size()) * 0.98);
  }
  return p;
}

// Turns raw input into the payload: itself when ferryd would take it as JSON (valid UTF-8
// JSON nested at most proto::kMaxPayloadDepth deep, the daemon's own rule), otherwise the
// input kept as text (MakeTextPayload). Never refused, never dropped. `host_fields`: take
// kind, session and cwd from the payload's top level (--stdin, --argv-json).
Payload MakePayload(std::string_view text, size_t max_bytes, bool host_fields) {
  Payload p;
  // Checked without a document: a 20 KB payload is read once, not copied into one.
  const std::span<const proto::WantedMember> wanted =
      host_fields ? HostFieldsWanted() : std::span<const proto::WantedMember>();
  std::string values[kHostFieldCount];
  proto::Error error;
  if (proto::ScanPayloadJson(text, wanted, values, &error)) {
    if (host_fields) p.host = PickHostFields(values);
    p.input = text;
    if (text.size() <= max_bytes) return p;
  }
  Payload t = MakeTextPayload(text, max_bytes);
  t.host = std::move(p.host);
  return t;
}

// Codes of ERROR frames that are about the event's own bytes: sent again (from the spool) as
// it is, it would be refused again, so the spool keeps it with its payload as text.
bool RefusesTheEvent(proto::Errc code) {
  switch (code) {
    case proto::Errc::kBadJson:
    case proto::Errc::kNotObject:
    case proto::Errc::kMissingField:
    case proto::Errc::kWrongType:
    case proto::Errc::kBadValue:
    case proto::Errc::kUnknownField:
      return true;
    default:
      return false;
  }
}

// A problem before the event exists (bad flags): dropped. Printed and exit 1 with --strict
// (anywhere in argv); otherwise silent, exit 0. Recorded in the problem log either way.
int EmitProblem(int argc, char** argv, const std::string& what) {
  RecordClientProblem(ResolveStateDir(ScanGlobalOptions(argc, argv)), what + "; event dropped");
  const int code = EmitParseErrorExitCode(argc, argv);
  if (code != 0) Complain(what);
  return code;
}

}  // namespace

// Over 80 lines: one straight path from input to ACK or spool reads better than pieces that
// each need the deadline, the envelope and the input.
int RunEmit(int argc, char** argv) {
  const auto start = Clock::now();
  std::string stdin_text = EmitNamesStdin(argc, argv) ? DrainStdin() : std::string();
  return EmitEvent(argc, argv, std::move(stdin_text), ::getppid(), start);
}

int EmitEvent(int argc, char** argv, std::string stdin_text, int host_pid,
              Clock::time_point start) {
  EmitArgs a;
  std::string error;
  switch (ParseEmitArgs(argc, argv, &a, &error)) {
    case Parsed::kError:
      return EmitProblem(argc, argv, error);
    case Parsed::kHelp: {
      [[maybe_unused]] ssize_t n = ::write(1, kEmitHelp, std::char_traits<char>::length(kEmitHelp));
      return 0;
    }
    case Parsed::kRun:
      break;
  }
  const auto deadline = start + std::chrono::milliseconds(a.timeout_ms);

  // The input exactly as the host gave it: when ferryd refuses the event for its content,
  // the spool keeps this as text.
  std::string_view input = a.has_data        ? a.data
                           : a.use_stdin     ? std::string_view(stdin_text)
                           : a.has_argv_json ? a.argv_json
                                             : std::string_view();
  bool has_input = a.has_data || a.use_stdin || a.has_argv_json;
  Payload payload;
  if (a.has_data) {
    // --data follows the same rule as --stdin: what ferryd would not take as JSON is kept as
    // text (flagged), never dropped.
    payload = MakePayload(a.data, a.max_event_bytes, /*host_fields=*/false);
  } else if (a.use_stdin) {
    if (stdin_text.find_first_not_of(" \t\r\n") != std::string::npos)
      payload = MakePayload(stdin_text, a.max_event_bytes, /*host_fields=*/true);
    else
      has_input = false;
  } else if (a.has_argv_json && !a.argv_json.empty()) {
    payload = MakePayload(a.argv_json, a.max_event_bytes, /*host_fields=*/true);
  } else {
    has_input = false;
  }
  if (a.kind.empty()) a.kind = payload.host.kind.empty() ? "unknown" : payload.host.kind;
  if (a.session.empty()) a.session = payload.host.session;
  if (a.cwd.empty()) a.cwd = payload.host.cwd;

  if (a.cwd.empty()) {
    // Into the heap, not a PATH_MAX stack buffer: one stack page fewer to fault in.
    std::string cwd(256, '\0');
    for (;;) {
      if (::getcwd(cwd.data(), cwd.size())) {
        cwd.resize(std::char_traits<char>::length(cwd.c_str()));
        a.cwd = std::move(cwd);
        break;
      }
      if (errno != ERANGE || cwd.size() >= 65536) break;  // gone (ENOENT): no cwd
      cwd.resize(cwd.size() * 4);
    }
  }
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
  f.pid = host_pid;  // the hook's host: the shell or agent that ran us
  f.payload_json = payload.json();
  f.truncated = payload.truncated;
  f.orig_size = payload.orig_size;
  if (payload.text) f.payload_encoding = "text";
  // Sent in parts: the payload (up to 4 MiB of a hook's stdin) from where it lies.
  proto::EventBodyParts event = proto::BuildEventBodyParts(f, a.durable, a.ephemeral);

  // Every way this can end without an ACK (no socket, refused, timed out, a short write, a
  // closed connection, any ERROR frame, a reply that is not an ACK) spools the event: the
  // only proof ferryd has it is an ACK (docs/protocol.md "Spool").
  const std::string socket = ResolveSocket(a.global);
  Connection conn;
  proto::FrameType type{};
  std::string body;
  bool replied = false;
  if (conn.Connect(socket, deadline, &error)) {
    std::string send_error;
    const std::string_view parts[] = {event.head, event.payload, event.tail};
    const bool sent = conn.SendFrameParts(proto::FrameType::kEvent, parts, deadline, &send_error);
    // A daemon that refuses the frame (too large, say) sends an ERROR and closes while we may
    // still be sending: read its reason rather than report a broken pipe.
    replied = conn.Receive(deadline, &type, &body, &error);
    if (!sent && !replied) error = send_error;
  }
  std::string why;  // empty: acked
  proto::Ack ack;
  proto::Error perr;
  Payload refused_text;  // a payload ferryd refused, as text: `event` views it
  if (!replied) {
    why = "event not delivered (ferryd not answering within " + std::to_string(a.timeout_ms) +
          " ms): " + error;
  } else if (type == proto::FrameType::kError) {
    if (!proto::ParseErrorBody(body, &perr)) perr = {proto::Errc::kInternal, "(unreadable ERROR)"};
    why = std::string("ferryd refused the event: ") + proto::ErrcName(perr.code) + ": " +
          perr.message;
    if (RefusesTheEvent(perr.code) && has_input && !payload.text) {
      // Refused for its content (say, an older ferryd with other limits): keep the input as
      // text, which any ferryd takes, rather than a line its importer would refuse again.
      refused_text = MakeTextPayload(input, a.max_event_bytes);
      f.payload_json = refused_text.json();
      f.truncated = refused_text.truncated;
      f.orig_size = refused_text.orig_size;
      f.payload_encoding = "text";
      event = proto::BuildEventBodyParts(f, a.durable);
    }
  } else if (type != proto::FrameType::kAck || !proto::ParseAckBody(body, &ack, &perr)) {
    why = "event not delivered: unexpected reply from ferryd (frame type " +
          std::to_string(static_cast<int>(type)) + ")";
  }
  if (!why.empty() && a.ephemeral) {
    // For live tails only: never spooled (it has no history to catch up on), and not logged
    // (a progress stream while ferryd is down would flood the problem log; no tail can miss
    // it then). docs/protocol.md "Ephemeral events".
    if (a.strict) Complain(why + "; ephemeral, so not spooled");
    return a.strict ? 1 : 0;
  }
  if (!why.empty()) {
    // Silent unless --strict: a hook's stderr may be shown to the user or the model.
    // `ferry status` shows what waits in the spool; a refusal, or an event that could not be
    // spooled, is also noted in the problem log, which `ferry status` counts.
    const std::string state_dir = ResolveStateDir(a.global);
    std::string path, spool_error;
    const bool spooled = SpoolEvent(state_dir, event.Join(), &path, &spool_error);
    why += spooled ? "; spooled to " + path : "; and not spooled: " + spool_error;
    // Not logged: no answer (the spool count shows it), and refusals that say ferryd is
    // stopping, failing or full (its status and log show those).
    const bool client_side =
        replied && type == proto::FrameType::kError && perr.code != proto::Errc::kShuttingDown &&
        perr.code != proto::Errc::kJournalFailed && perr.code != proto::Errc::kTooManyConnections;
    if (!spooled || client_side) RecordClientProblem(state_dir, why);
    if (a.strict) Complain(why);
    return a.strict ? 1 : 0;
  }
  if (a.print_ack) {
    const std::string line = a.ephemeral ? "ephemeral tails=" + std::to_string(ack.tails) + "\n"
                                         : std::to_string(ack.last_seq) + "\n";
    [[maybe_unused]] ssize_t n = ::write(1, line.data(), line.size());
  }
  return 0;
}

}  // namespace ferry::client
