// Options every ferry command takes, and how they resolve (DESIGN.md "Names").
#pragma once

#include <string>
#include <string_view>

#include "client/args.h"  // GlobalOptions, TakeGlobalOption, ParseUint

namespace ferry::client {

// Flag, then FERRY_SOCKET, then `socket` in the config file, then the default path.
std::string ResolveSocket(const GlobalOptions& opts);
std::string ResolveStateDir(const GlobalOptions& opts);

// Prints "ferry: <message>" to stderr.
void Complain(const std::string& message);

}  // namespace ferry::client
