#include "daemon/base/thread_role.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

namespace ferry {

void SetThreadRole(std::string_view role, ThreadClass cls) {
  std::string name = "ferryd-";
  name.append(role);
  name.resize(std::min<size_t>(name.size(), 15));  // TASK_COMM_LEN - 1
  pthread_setname_np(pthread_self(), name.c_str());
  if (cls != ThreadClass::kBackground) return;
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  errno = 0;
  const int now = ::getpriority(PRIO_PROCESS, tid);  // this thread's nice (-1 is valid)
  if (now == -1 && errno != 0) return;
  ::setpriority(PRIO_PROCESS, tid, std::min(19, now + kBackgroundNiceSteps));
}

}  // namespace ferry
