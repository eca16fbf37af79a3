#pragma once
// URLs as ferryd shows them in status, logs and --check-config: never with a credential.
// Pure functions; any thread.

#include <string>
#include <string_view>

namespace ferry {

// `url` with any user:password@ removed and the query string's (and fragment's) values for
// keys that look like credentials (token, key, secret, password, sig, signature, auth,
// access_token, ...) replaced by "REDACTED".
std::string UrlForDisplay(std::string_view url);

}  // namespace ferry
