// `ferry hooks install|uninstall <tool>`: merges ferry's hook entries into an AI agent's
// config file, or takes them out again (docs/hooks.md).
#pragma once

namespace ferry::client {

// argv holds the arguments after "hooks". Returns the exit code: 0 done (or nothing to do),
// 1 the config file is malformed or cannot be written (left untouched), 2 usage error.
int RunHooks(int argc, char** argv);

}  // namespace ferry::client
