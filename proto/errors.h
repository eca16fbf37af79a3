// Wire-level error codes. Each has a stable snake_case name that goes into ERROR frames
// ("code") so scripts can match on it; the human message says what and where.
#pragma once

#include <string>

namespace ferry::proto {

enum class Errc {
  kOk = 0,
  kFrameTooLarge,
  kEmptyFrame,
  kUnknownType,
  kUnexpectedType,
  kBadJson,
  kNotObject,
  kBadVersion,
  kMissingField,
  kWrongType,
  kBadValue,
  kUnknownField,
  kTooManyEvents,
  kPeerRejected,
  kTooManyConnections,
  kIdleTimeout,
  kJournalFailed,
  kShuttingDown,
  kTruncatedFrame,
  kQueryRefused,  // ferry query: a statement that would write, or more than one statement
  kQueryFailed,   // ferry query: SQL error, time limit, store unavailable
  kUnknownSink,   // ferry flush / deadletter: no sink of that name is configured
  kInternal,
};

const char* ErrcName(Errc code);

struct Error {
  Errc code = Errc::kOk;
  std::string message;

  bool ok() const { return code == Errc::kOk; }
};

}  // namespace ferry::proto
