// Reading the transcript archive (format.h) for `ferry transcript`: finds the session a
// TRANSCRIPT_REQ names and returns one page of its bytes (proto/transcript.h). Read-only: it
// never writes or cuts a file, so the read-only ferryd (--serve-offline) uses it as it is, and
// the archive worker runs it on its own thread between copies.
//
// Threads: any; no shared state.
#pragma once

#include <string>
#include <string_view>

namespace ferry::archive {

// Raw transcript bytes per page (a page's base64 stays far under the 4 MiB frame limit).
inline constexpr size_t kPageBytes = 1u << 20;

// Answers the TRANSCRIPT_REQ `body` over the archive directory `dir`: the encoded reply frame
// (TRANSCRIPT_RESULT, or ERROR for a malformed request).
std::string AnswerTranscriptRequest(const std::string& dir, std::string_view body,
                                    size_t page_bytes = kPageBytes);

}  // namespace ferry::archive
