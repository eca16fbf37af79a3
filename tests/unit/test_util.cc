#include "tests/unit/test_util.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <catch2/catch.hpp>

#include "daemon/journal/committer.h"
#include "daemon/journal/journal.h"

namespace ferry::test {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/ferry-test-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

void SendBytes(int fd, const std::string& bytes) {
  REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(bytes.size()));
}

void SendFrame(int fd, proto::FrameType type, const std::string& body) {
  SendBytes(fd, proto::EncodeFrame(type, body));
}

bool Readable(int fd, std::chrono::milliseconds wait) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(wait.count())) == 1;
}

bool ReceiveFrame(int fd, proto::FrameType* type, std::string* body) {
  using namespace std::chrono_literals;
  std::string buf;
  for (;;) {
    proto::Frame frame;
    proto::Error error;
    const auto r = proto::DecodeFrame(buf, proto::kDefaultMaxFrame, &frame, &error);
    if (r == proto::DecodeResult::kFrame) {
      REQUIRE(frame.size == buf.size());  // one frame at a time: the tests read in step
      *type = frame.type;
      body->assign(frame.body);
      return true;
    }
    REQUIRE(r == proto::DecodeResult::kNeedMore);
    REQUIRE(Readable(fd, 10000ms));
    // Read no further than the frame so that the next one stays in the socket.
    const size_t want = buf.size() < proto::kLengthSize
                            ? proto::kLengthSize - buf.size()
                            : proto::kLengthSize + proto::GetU32Le(buf.data()) - buf.size();
    std::string chunk(want, '\0');
    const ssize_t n = ::recv(fd, chunk.data(), chunk.size(), 0);
    if (n <= 0) return false;
    buf.append(chunk.data(), static_cast<size_t>(n));
  }
}

void OpenTestJournal(const std::string& dir, std::unique_ptr<Journal>* journal,
                     std::unique_ptr<JournalCommitter>* committer) {
  using namespace std::chrono_literals;
  Journal::Options options;
  options.dir = dir;
  RecoveryReport report;
  REQUIRE(Journal::Open(options, journal, &report).ok());
  *committer = std::make_unique<JournalCommitter>(FsyncPolicy::kNever, 1000ms,
                                                  JournalCommitter::Callbacks{});
  (*committer)->Start((*journal)->active_segment(), (*journal)->written_seq());
}

}  // namespace ferry::test
