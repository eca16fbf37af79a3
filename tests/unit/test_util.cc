#include "tests/unit/test_util.h"

#include <stdlib.h>

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
