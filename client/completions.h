// `ferry completions bash|zsh|fish`: prints the shell's completion script for ferry, the same
// text `cmake --install` installs (client/completions/; compiled in by client/CMakeLists.txt).
// Not on the hook hot path. Exit 0 with the script on stdout, 2 (usage) for a missing or
// unknown shell, 0 with help for --help.
#pragma once

namespace ferry::client {

// argv holds the arguments after "completions".
int RunCompletions(int argc, char** argv);

}  // namespace ferry::client
