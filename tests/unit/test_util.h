// Helpers shared by the unit tests.
#pragma once

#include <memory>
#include <string>

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

// Opens (creates) a journal in `dir` and starts a committer on it with fsync = never and no
// callbacks: the set-up of every unit test of a journal consumer (sessions, spool importer).
// Fails the test (REQUIRE) when the journal cannot be opened.
void OpenTestJournal(const std::string& dir, std::unique_ptr<Journal>* journal,
                     std::unique_ptr<JournalCommitter>* committer);

}  // namespace ferry::test
