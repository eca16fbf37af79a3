// Helpers shared by the unit tests.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "proto/frame.h"

namespace ferry {
class Journal;
class JournalCommitter;
}  // namespace ferry

namespace ferry::test {

// A fresh empty directory under $TMPDIR, removed (recursively) when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& data);

// Frames over a connected socket, for the tests that drive ferryd's sessions directly.
// SendBytes/SendFrame fail the test unless every byte went out in one send.
void SendBytes(int fd, const std::string& bytes);
void SendFrame(int fd, proto::FrameType type, const std::string& body);
// True when bytes (or EOF) arrive within `wait`.
bool Readable(int fd, std::chrono::milliseconds wait);
// Receives exactly one frame, reading no further than it so the next one stays in the
// socket (hang guard 10 s, a failed REQUIRE); false on EOF.
bool ReceiveFrame(int fd, proto::FrameType* type, std::string* body);

// Opens (creates) a journal in `dir` and starts a committer on it with fsync = never and no
// callbacks: the set-up of every unit test of a journal consumer (sessions, spool importer).
// Fails the test (REQUIRE) when the journal cannot be opened.
void OpenTestJournal(const std::string& dir, std::unique_ptr<Journal>* journal,
                     std::unique_ptr<JournalCommitter>* committer);

}  // namespace ferry::test
