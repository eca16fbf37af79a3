#include "client/args.h"

#include <utility>

#include "proto/paths.h"

namespace ferry::client {

bool TakeGlobalOption(int argc, char** argv, int* i, GlobalOptions* opts, std::string* error) {
  const std::string_view arg = argv[*i];
  std::string* target = nullptr;
  std::string_view name;
  for (auto [flag, field] : {std::pair<std::string_view, std::string*>{"--socket", &opts->socket},
                             {"--state-dir", &opts->state_dir},
                             {"--config", &opts->config}}) {
    if (arg == flag || (arg.size() > flag.size() && arg.substr(0, flag.size()) == flag &&
                        arg[flag.size()] == '=')) {
      target = field;
      name = flag;
    }
  }
  if (!target) return false;
  if (arg.size() > name.size()) {
    *target = std::string(arg.substr(name.size() + 1));
  } else if (*i + 1 < argc) {
    *target = argv[++*i];
  } else {
    *error = std::string(name) + " needs a value";
  }
  return true;
}

bool ParseUint(std::string_view text, unsigned long long* out) {
  if (text.empty() || text.size() > 19) return false;
  unsigned long long v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned long long>(c - '0');
  }
  *out = v;
  return true;
}

bool ParseDurationNs(std::string_view text, long long* ns) {
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  unsigned long long n = 0;
  if (i == 0 || !ParseUint(text.substr(0, i), &n)) return false;
  const std::string_view unit = text.substr(i);
  long long mult = 0;
  if (unit == "s")
    mult = 1;
  else if (unit == "m")
    mult = 60;
  else if (unit == "h")
    mult = 3600;
  else if (unit == "d")
    mult = 86400;
  else if (unit == "w")
    mult = 7 * 86400;
  else
    return false;
  if (n > 100ull * 365 * 86400 / static_cast<unsigned long long>(mult)) return false;
  *ns = static_cast<long long>(n) * mult * 1000000000LL;
  return true;
}

namespace {

// emit's numeric flags, checked after the flag's value was taken.
bool CheckEmitNumber(std::string_view name, const std::string& text, EmitArgs* a,
                     std::string* error) {
  if (name == "--timeout-ms") {
    if (!ParseUint(text, &a->timeout_ms) || a->timeout_ms == 0 || a->timeout_ms > 3600000) {
      *error = "--timeout-ms must be a whole number of milliseconds in [1, 3600000], not \"" +
               text + "\"";
      return false;
    }
  } else if (!ParseUint(text, &a->max_event_bytes) || a->max_event_bytes < 1024) {
    *error =
        "--max-event-bytes must be a whole number of bytes, at least 1024, not \"" + text + "\"";
    return false;
  }
  return true;
}

}  // namespace

// One flat if-chain over emit's flags reads best next to the help text it mirrors.
Parsed ParseEmitArgs(int argc, char** argv, EmitArgs* a, std::string* error) {
  bool help = false;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (TakeGlobalOption(argc, argv, &i, &a->global, error)) {
      if (!error->empty()) return Parsed::kError;
      continue;
    }
    const size_t eq = arg.find('=');
    auto value = [&](std::string* out) {
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
    const std::string_view name = arg.substr(0, eq);
    std::string* text_flag = name == "--source"    ? &a->source
                             : name == "--kind"    ? &a->kind
                             : name == "--session" ? &a->session
                             : name == "--cwd"     ? &a->cwd
                                                   : nullptr;
    if (text_flag) {
      if (!value(text_flag)) return Parsed::kError;
    } else if (name == "--data") {
      if (eq != std::string_view::npos) {
        a->data = arg.substr(eq + 1);
      } else if (i + 1 < argc) {
        a->data = argv[++i];
      } else {
        *error = std::string(arg) + " needs a value";
        return Parsed::kError;
      }
      a->has_data = true;
    } else if (name == "--argv-json") {
      // Codex's notify appends the JSON as the last argument: `--argv-json` may stand last.
      if (eq != std::string_view::npos) {
        a->argv_json = arg.substr(eq + 1);
      } else if (i + 1 < argc) {
        a->argv_json = argv[++i];
      }
      a->has_argv_json = true;
    } else if (arg == "--stdin") {
      a->use_stdin = true;
    } else if (arg == "--durable") {
      a->durable = true;
    } else if (arg == "--ephemeral") {
      a->ephemeral = true;
    } else if (arg == "--strict") {
      a->strict = true;
    } else if (arg == "--print-ack") {
      a->print_ack = true;
    } else if (arg == "--help" || arg == "-h") {
      help = true;
    } else if (name == "--timeout-ms" || name == "--max-event-bytes") {
      std::string text;
      if (!value(&text) || !CheckEmitNumber(name, text, a, error)) return Parsed::kError;
    } else {
      *error = "emit: unknown argument \"" + std::string(arg) + "\" (ferry emit --help lists them)";
      return Parsed::kError;
    }
  }
  if (help) return Parsed::kHelp;
  if (a->source.empty())
    *error = "emit: --source is required";
  else if (a->kind.empty() && !a->use_stdin && !a->has_argv_json)
    *error = "emit: --kind is required";
  else if (a->has_data + a->use_stdin + a->has_argv_json > 1)
    *error = "emit: use only one of --data, --stdin and --argv-json";
  else if (a->durable && a->ephemeral)
    *error =
        "emit: --durable and --ephemeral exclude each other (an ephemeral event is never "
        "written to disk)";
  return error->empty() ? Parsed::kRun : Parsed::kError;
}

int EmitParseErrorExitCode(int argc, char** argv) {
  for (int i = 0; i < argc; ++i)
    if (std::string_view(argv[i]) == "--strict") return 1;
  return 0;
}

bool EmitNamesStdin(int argc, char** argv) {
  for (int i = 0; i < argc; ++i)
    if (std::string_view(argv[i]) == "--stdin") return true;
  return false;
}

Parsed ParseStatusArgs(int argc, char** argv, StatusArgs* a, std::string* error) {
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (TakeGlobalOption(argc, argv, &i, &a->global, error)) {
      if (!error->empty()) return Parsed::kError;
    } else if (arg == "--json") {
      a->json = true;
    } else if (arg == "--ack-lost") {
      a->ack_lost = true;
    } else if (arg == "--help" || arg == "-h") {
      return Parsed::kHelp;
    } else if (TakeTimeout(argc, argv, &i, &a->timeout_ms, error)) {
      if (!error->empty()) return Parsed::kError;
    } else {
      *error = "status: unknown argument \"" + std::string(arg) + "\"";
      return Parsed::kError;
    }
  }
  return Parsed::kRun;
}

Parsed ParseInitArgs(int argc, char** argv, InitArgs* a, std::string* error) {
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return Parsed::kHelp;
    if (!a->shell.empty() || arg.starts_with("-")) {
      *error = "init: unexpected argument \"" + std::string(arg) + "\" (ferry init --help)";
      return Parsed::kError;
    }
    a->shell = arg;
  }
  if (a->shell != "bash" && a->shell != "zsh" && a->shell != "fish") {
    *error = a->shell.empty() ? "init: which shell? bash, zsh or fish (ferry init --help)"
                              : "init: unknown shell \"" + a->shell + "\"; use bash, zsh or fish";
    return Parsed::kError;
  }
  return Parsed::kRun;
}

Parsed ParseHooksArgs(int argc, char** argv, HooksArgs* a, std::string* error) {
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return Parsed::kHelp;
    if (arg == "--dry-run") {
      a->dry_run = true;
    } else if (arg == "--scope" || arg.starts_with("--scope=")) {
      if (arg == "--scope" && i + 1 >= argc) {
        *error = "hooks: --scope needs a value: user or project";
        return Parsed::kError;
      }
      a->scope = arg == "--scope" ? argv[++i] : std::string(arg.substr(8));
    } else if (!arg.starts_with("-") && a->action.empty()) {
      a->action = arg;
    } else if (!arg.starts_with("-") && a->tool.empty()) {
      a->tool = arg;
    } else {
      *error = "hooks: unexpected argument \"" + std::string(arg) + "\" (ferry hooks --help)";
      return Parsed::kError;
    }
  }
  if (a->action != "install" && a->action != "uninstall") {
    *error = "hooks: say install or uninstall (ferry hooks --help)";
  } else if (a->scope != "user" && a->scope != "project") {
    *error = "hooks: --scope is user or project, not \"" + a->scope + "\"";
  }
  return error->empty() ? Parsed::kRun : Parsed::kError;
}

Parsed ParseServiceArgs(int argc, char** argv, ServiceArgs* a, std::string* error) {
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return Parsed::kHelp;
    if (arg == "--dry-run") {
      a->dry_run = true;
    } else if (arg == "--ferryd" && i + 1 < argc) {
      a->ferryd = argv[++i];
    } else if (arg.substr(0, 9) == "--ferryd=") {
      a->ferryd = std::string(arg.substr(9));
    } else if (a->action.empty() && (arg == "install" || arg == "uninstall")) {
      a->action = arg;
    } else {
      *error = "service: unexpected argument \"" + std::string(arg) + "\" (ferry service --help)";
      return Parsed::kError;
    }
  }
  if (a->action.empty()) {
    *error = "service: say install or uninstall (ferry service --help)";
    return Parsed::kError;
  }
  return Parsed::kRun;
}

bool ParseDurationMs(std::string_view text, unsigned long long* ms) {
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  unsigned long long n = 0;
  if (i == 0 || !ParseUint(text.substr(0, i), &n)) return false;
  const std::string_view unit = text.substr(i);
  unsigned long long mult = 0;
  if (unit == "ms") {
    mult = 1;
  } else if (unit == "s") {
    mult = 1000;
  } else if (unit == "m") {
    mult = 60 * 1000;
  } else if (unit == "h") {
    mult = 3600 * 1000;
  } else {
    return false;
  }
  if (n == 0 || n > kMaxWaitMs / mult) return false;
  *ms = n * mult;
  return true;
}

Parsed ParseDoctorArgs(int argc, char** argv, DoctorArgs* a, std::string* error) {
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (TakeGlobalOption(argc, argv, &i, &a->global, error)) {
      if (!error->empty()) return Parsed::kError;
    } else if (arg == "--json") {
      a->json = true;
    } else if (arg == "--help" || arg == "-h") {
      return Parsed::kHelp;
    } else if (TakeTimeout(argc, argv, &i, &a->timeout_ms, error)) {
      if (!error->empty()) return Parsed::kError;
    } else {
      *error = "doctor: unknown argument \"" + std::string(arg) + "\"";
      return Parsed::kError;
    }
  }
  return Parsed::kRun;
}

}  // namespace ferry::client
