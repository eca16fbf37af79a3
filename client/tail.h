#pragma once
namespace ferry::client {
// `ferry tail [-f] [--from SEQ] [--source S] [--kind K] [--json]`: exit 0 at the end of a
// replay, 1 on a refused request, 2 on bad usage, 3 when ferryd does not answer (without -f).
int RunTail(int argc, char** argv);
}  // namespace ferry::client
