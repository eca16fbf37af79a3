// `ferry transcript SESSION [--source S]`: prints an archived agent transcript's bytes exactly
// as ferryd copied them (every generation, oldest first) to stdout (docs/archive.md). It asks
// ferryd page by page (TRANSCRIPT_REQ, proto/transcript.h) because the archive is zlib
// compressed and the client links no zlib; when ferryd is down a read-only ferryd answers
// (client/offline.h). Exit 0; 1 when nothing is archived for SESSION or the archive is
// damaged (what could be read is printed, and what could not is said on stderr); 2 bad usage
// or an ambiguous SESSION; 3 ferryd not running or not answering.
#pragma once

namespace ferry::client {

int RunTranscript(int argc, char** argv);

}  // namespace ferry::client
