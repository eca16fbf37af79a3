// `ferryd --check-config`: prints the effective configuration (every key, one a line) to
// `out`, and to `err` the warnings a running ferryd would log about it (tls_verify off, a sink
// token that cannot be read). Prints only; never exits. (`--quiet` passes a null stream as
// `out`; `--strict` makes any warning exit 1.)
//
// config/ does not depend on sink/: the two sink helpers it needs (how a URL is shown, why a
// sink token cannot be read) are passed in by the caller (app/main.cc).
//
// Thread: any (main, before the daemon starts).
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <string_view>

#include "daemon/config/config.h"

namespace ferry {

struct ConfigPrintHooks {
  // The URL as shown to a user (credentials hidden).
  std::function<std::string(std::string_view url)> url_for_display;
  // Why the sink's token cannot be read; empty when it can (or none is configured).
  std::function<std::string(const SinkConfig& sink)> token_problem;
};

// `source_path` is where the config was looked for (printed when the file is absent).
// Returns the number of warnings printed to `err`.
int PrintCheckedConfig(const Config& config, const std::string& source_path,
                       const ConfigPrintHooks& hooks, std::ostream& out, std::ostream& err);

}  // namespace ferry
