// client/offline.h's probes: who holds the state lock, and the message for a ferryd that does
// not answer (DescribeUnansweredIn), with a real flock and a real stopped process.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "client/offline.h"
#include "tests/unit/test_util.h"

namespace ferry::client {
namespace {

// A child that only waits for signals; killed and reaped by the destructor.
class Sleeper {
 public:
  Sleeper() {
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      for (;;) ::pause();
    }
  }
  ~Sleeper() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }
  // SIGSTOP, then waits (WUNTRACED) until the kernel reports it stopped.
  void Stop() {
    REQUIRE(::kill(pid_, SIGSTOP) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid_, &status, WUNTRACED) == pid_);
    REQUIRE(WIFSTOPPED(status));
  }

 private:
  pid_t pid_ = -1;
};

// Holds <dir>/ferryd.lock exclusively, as ferryd's StateDirLock does, with `content` in it.
class HeldLock {
 public:
  HeldLock(const std::string& dir, const std::string& content) {
    test::WriteFile(dir + "/ferryd.lock", content);
    fd_ = ::open((dir + "/ferryd.lock").c_str(), O_RDWR | O_CLOEXEC);
    REQUIRE(fd_ >= 0);
    REQUIRE(::flock(fd_, LOCK_EX | LOCK_NB) == 0);
  }
  ~HeldLock() { ::close(fd_); }

 private:
  int fd_ = -1;
};

TEST_CASE("no lock file: nobody holds it, and the probe creates none", "[offline]") {
  test::TempDir dir;
  CHECK(StateLockHolder(dir.path()) == -1);
  CHECK(DescribeUnansweredIn(dir.path(), "/r/ferry.sock") ==
        "ferryd is not answering on /r/ferry.sock");
  struct stat st {};
  CHECK(::stat(dir.Join("ferryd.lock").c_str(), &st) != 0);
}

TEST_CASE("a lock file nobody holds: -1, the lock is not kept, the file is unchanged",
          "[offline]") {
  test::TempDir dir;
  test::WriteFile(dir.Join("ferryd.lock"), "4242\n");
  CHECK(StateLockHolder(dir.path()) == -1);
  CHECK(DescribeUnansweredIn(dir.path(), "/s") == "ferryd is not answering on /s");
  // A ferryd starting now still gets its exclusive lock.
  const int fd = ::open(dir.Join("ferryd.lock").c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  CHECK(::flock(fd, LOCK_EX | LOCK_NB) == 0);
  ::close(fd);
  CHECK(test::ReadFile(dir.Join("ferryd.lock")) == "4242\n");
}

TEST_CASE("a held lock names its holder: stopped", "[offline]") {
  test::TempDir dir;
  Sleeper child;
  child.Stop();
  const std::string pid = std::to_string(child.pid());
  HeldLock lock(dir.path(), pid + "\n");
  CHECK(StateLockHolder(dir.path()) == child.pid());
  CHECK(ProcessState(child.pid()) == 'T');
  CHECK(DescribeUnansweredIn(dir.path(), "/r/ferry.sock") ==
        "ferryd (pid " + pid + ") is not answering on /r/ferry.sock: stopped (try: kill -CONT " +
            pid + ")");
}

TEST_CASE("a held lock names its holder: running but busy", "[offline]") {
  test::TempDir dir;
  Sleeper child;
  const std::string pid = std::to_string(child.pid());
  HeldLock lock(dir.path(), pid + "\n");
  CHECK(DescribeUnansweredIn(dir.path(), "/s") ==
        "ferryd (pid " + pid + ") is not answering on /s: busy (running, but no answer in time)");
}

TEST_CASE("a held lock without a pid in it names the socket only", "[offline]") {
  test::TempDir dir;
  HeldLock lock(dir.path(), "");
  CHECK(StateLockHolder(dir.path()) == 0);
  CHECK(DescribeUnansweredIn(dir.path(), "/s") == "ferryd is not answering on /s");
}

TEST_CASE("a held lock naming a process that is gone names the socket only", "[offline]") {
  test::TempDir dir;
  pid_t gone = -1;
  {
    Sleeper child;
    gone = child.pid();
  }  // killed and reaped
  HeldLock lock(dir.path(), std::to_string(gone) + "\n");
  CHECK(StateLockHolder(dir.path()) == gone);
  CHECK(ProcessState(gone) == 0);
  CHECK(DescribeUnansweredIn(dir.path(), "/s") == "ferryd is not answering on /s");
}

TEST_CASE("ProcessState reads /proc: this process runs, a missing one has none", "[offline]") {
  CHECK(ProcessState(::getpid()) == 'R');
  CHECK(ProcessState(0) == 0);
  CHECK(ProcessState(-5) == 0);
}

}  // namespace
}  // namespace ferry::client
