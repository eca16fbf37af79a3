// Where the running ferry binary lives, for commands that write its path into other
// programs' configuration (`ferry init`, `ferry hooks install`).
#pragma once

#include <string>

namespace ferry::client {

// The absolute path of the running binary (/proc/self/exe), or "ferry" (found on PATH at run
// time) when it cannot be read, was deleted, or holds characters that would need quoting in a
// shell double-quoted string (", $, `, \, ' or a newline).
std::string SelfExePath();

}  // namespace ferry::client
