// Options every ferry command takes, and how they resolve (DESIGN.md "Names").
#pragma once

#include <string>
#include <string_view>

namespace ferry::client {

struct GlobalOptions {
  std::string socket;     // --socket
  std::string state_dir;  // --state-dir
  std::string config;     // --config
};

// Consumes a global option at argv[*i] (advancing *i past its value). Returns true if it was
// one; sets *error when its value is missing.
bool TakeGlobalOption(int argc, char** argv, int* i, GlobalOptions* opts, std::string* error);

// Flag, then FERRY_SOCKET, then `socket` in the config file, then the default path.
std::string ResolveSocket(const GlobalOptions& opts);
std::string ResolveStateDir(const GlobalOptions& opts);

// Prints "ferry: <message>" to stderr.
void Complain(const std::string& message);

// Parses a non-negative decimal integer; false for anything else.
bool ParseUint(std::string_view text, unsigned long long* out);

}  // namespace ferry::client
