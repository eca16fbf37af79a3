#include "client/completions.h"

#include <cstdio>
#include <string>
#include <string_view>

#include "client/args.h"
#include "client/common.h"
#include "client/completion_scripts.h"  // generated: kBashCompletion, kZshCompletion, ...

namespace ferry::client {
namespace {

constexpr const char* kCompletionsHelp =
    "usage: ferry completions bash|zsh|fish\n"
    "\n"
    "Prints the shell completion script for ferry (every command, option and option value).\n"
    "`cmake --install` installs the same scripts where each shell finds them:\n"
    "  bash  <prefix>/share/bash-completion/completions/ferry\n"
    "  zsh   <prefix>/share/zsh/site-functions/_ferry\n"
    "  fish  <prefix>/share/fish/vendor_completions.d/ferry.fish\n"
    "Without an installed copy:\n"
    "  bash (~/.bashrc):                  eval \"$(ferry completions bash)\"\n"
    "  zsh  (~/.zshrc, after compinit):   eval \"$(ferry completions zsh)\"\n"
    "  fish: ferry completions fish > ~/.config/fish/completions/ferry.fish\n";

}  // namespace

int RunCompletions(int argc, char** argv) {
  std::string shell;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kCompletionsHelp, stdout);
      return 0;
    }
    if (!shell.empty() || arg.starts_with("-")) {
      Complain("completions: unexpected argument \"" + std::string(arg) +
               "\" (ferry completions --help)");
      return kUsageExitCode;
    }
    shell = arg;
  }
  const char* script = shell == "bash"   ? kBashCompletion
                       : shell == "zsh"  ? kZshCompletion
                       : shell == "fish" ? kFishCompletion
                                         : nullptr;
  if (!script) {
    Complain(shell.empty()
                 ? "completions: which shell? bash, zsh or fish (ferry completions --help)"
                 : "completions: unknown shell \"" + shell + "\"; use bash, zsh or fish");
    return kUsageExitCode;
  }
  std::fputs(script, stdout);
  return 0;
}

}  // namespace ferry::client
