#pragma once
namespace ferry::client {
// `ferry tail [-f] [-n N] [--from SEQ] [--since/--until WHEN] [filters] [-o short|json|cat]`
// (flags: client/args.h TailArgs; help: tail.cc): exit 0 at the end of a replay, 1 on a
// refused request, 2 on bad usage, 3 when ferryd is not running or not answering (without -f).
int RunTail(int argc, char** argv);
}  // namespace ferry::client
