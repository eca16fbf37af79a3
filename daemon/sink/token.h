// A sink's bearer token (docs/sinks.md "Credentials"), read from token_file or token_env.
// A function, no state; the sink thread calls it at start and on every reload.
#pragma once

#include <string>
#include <string_view>

#include "daemon/config/config.h"

namespace ferry {

// Reads the sink's token from token_file or token_env. Returns "" and fills *token (empty when
// the sink has none), or returns what is wrong (missing, empty, readable by group or others,
// a line break in it, no ':' in it with auth = "basic") and how to fix it; *token is then
// empty. The token itself never
// appears in the message. `~/` in token_file is $HOME.
std::string ReadSinkToken(const SinkConfig& config, std::string* token);

// The Authorization header's value for `token` ("" when there is none): "Bearer <token>", or
// with auth = "basic" "Basic " + base64(token).
std::string AuthorizationValue(const SinkConfig& config, const std::string& token);
// RFC 4648 base64 with padding.
std::string Base64(std::string_view in);

}  // namespace ferry
