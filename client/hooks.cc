#include "client/hooks.h"

#include "client/common.h"

namespace ferry::client {
int RunHooks(int, char**) {
  Complain("hooks: not implemented yet");
  return 2;
}
}  // namespace ferry::client
