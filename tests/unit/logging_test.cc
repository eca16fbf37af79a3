// IsJournalStream: JOURNAL_STREAM counts only when it names the very file the fd is open on.
#include "daemon/base/logging.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "tests/unit/test_util.h"

namespace ferry {
namespace {

TEST_CASE("logging: JOURNAL_STREAM must match the fd's device and inode", "[logging]") {
  test::TempDir tmp;
  const std::string path = tmp.Join("log");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  const std::string dev = std::to_string(st.st_dev), ino = std::to_string(st.st_ino);
  CHECK(IsJournalStream((dev + ":" + ino).c_str(), fd));
  CHECK_FALSE(IsJournalStream(nullptr, fd));
  CHECK_FALSE(IsJournalStream("", fd));
  CHECK_FALSE(IsJournalStream((dev + ":" + std::to_string(st.st_ino + 1)).c_str(), fd));
  CHECK_FALSE(IsJournalStream((std::to_string(st.st_dev + 1) + ":" + ino).c_str(), fd));
  CHECK_FALSE(IsJournalStream((dev + ":" + ino + "x").c_str(), fd));
  CHECK_FALSE(IsJournalStream((dev + ino).c_str(), fd));
  CHECK_FALSE(IsJournalStream(":", fd));
  CHECK_FALSE(IsJournalStream("99999999999999999999999:1", fd));
  ::close(fd);
  CHECK_FALSE(IsJournalStream((dev + ":" + ino).c_str(), fd));  // closed fd
}

}  // namespace
}  // namespace ferry
