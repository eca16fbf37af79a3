// The check config.toml applies to a [[sink]] url: scheme http or https, a host, and a port
// (when given) in 1-65535. Pure function; any thread.
#pragma once

#include <string>
#include <string_view>

namespace ferry {

// Empty when `url` is usable as a sink url; else what is wrong, without the url itself, e.g.
// "no host", "port 99999 is out of range [1, 65535]", "the scheme must be http:// or https://".
std::string UrlProblem(std::string_view url);

}  // namespace ferry
