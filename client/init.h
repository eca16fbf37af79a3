// `ferry init bash|zsh|fish`: prints the shell integration snippet (docs/hooks.md).
#pragma once

namespace ferry::client {

// argv holds the arguments after "init". Prints the snippet on stdout; returns the exit code
// (0, or 2 for a usage error).
int RunInit(int argc, char** argv);

}  // namespace ferry::client
