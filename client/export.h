// `ferry export --format jsonl`: every stored event (optionally since DURATION, of one session
// or one source) as one JSON line, in seq order: the stored columns as an envelope (seq, id,
// ts, received, source, kind, session, cwd, host, pid; NULL columns left out) with the payload
// nested as the bytes stored (numbers digit for digit). It pages through ferry.db by seq over
// one connection (each page within the query caps, store.query_max_rows and 3 MiB); a payload
// over kChunkChars characters comes in pieces. Works when ferryd is down (client/offline.h).
#pragma once

namespace ferry::client {

int RunExport(int argc, char** argv);

}  // namespace ferry::client
