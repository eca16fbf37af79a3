#include "daemon/sink/deadletter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <rapidjson/document.h>

#include "daemon/base/file_seam.h"
#include "daemon/base/file_util.h"
#include "proto/paths.h"

namespace ferry::sink {
namespace {

// Lines of `path` (0 when it is missing). Dead-letter files can be large: read in chunks.
uint64_t CountLines(const std::string& path) {
  const int fd = fs::Open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  uint64_t n = 0;
  std::vector<char> buf(1 << 16);
  for (;;) {
    const ssize_t got = fs::Read(fd, buf.data(), buf.size());
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    n += static_cast<uint64_t>(std::count(buf.data(), buf.data() + got, '\n'));
  }
  fs::Close(fd);
  return n;
}

}  // namespace

DeadLetterFiles::DeadLetterFiles(const std::string& state_dir, const std::string& sink)
    : path_(proto::DeadletterPath(state_dir, sink)),
      replay_path_(proto::DeadletterReplayPath(state_dir, sink)) {}

uint64_t DeadLetterFiles::CountLetters() const { return CountLines(path_); }
uint64_t DeadLetterFiles::CountReplay() const { return CountLines(replay_path_); }

bool DeadLetterFiles::ReplayInProgress() const {
  struct stat st {};
  return ::stat(replay_path_.c_str(), &st) == 0;
}

Status DeadLetterFiles::Append(std::string_view lines) { return AppendLinesSynced(path_, lines); }

Status DeadLetterFiles::Purge(uint64_t* lines) {
  *lines = CountLines(path_);
  if (fs::Unlink(path_.c_str()) != 0 && errno != ENOENT) {
    *lines = 0;
    return Status::IOError("cannot delete " + path_ + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

bool DeadLetterFiles::BeginReplay(std::string* error) {
  error->clear();
  if (ReplayInProgress()) return true;
  if (fs::Rename(path_.c_str(), replay_path_.c_str()) == 0) return true;
  if (errno != ENOENT) {
    *error = "cannot move " + path_ + " aside for replay: " + std::strerror(errno);
  }
  return false;
}

bool DeadLetterFiles::ReadReplay(std::string* text) const {
  return ReadWholeFile(replay_path_, text);
}

void DeadLetterFiles::EndReplay() { fs::Unlink(replay_path_.c_str()); }

void DeadLetterFiles::List(size_t max_bytes, proto::DeadletterListEntry* entry) const {
  entry->letters.clear();
  entry->count = entry->skipped = 0;
  entry->truncated = false;
  entry->replaying = CountReplay();
  std::string text;
  if (!ReadWholeFile(path_, &text)) {
    if (errno != ENOENT) entry->error = "cannot read " + path_ + ": " + std::strerror(errno);
    return;
  }
  size_t pos = 0, used = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    rapidjson::Document doc;
    doc.Parse(line.data(), line.size());
    if (doc.HasParseError() || !doc.IsObject()) {
      ++entry->skipped;
      continue;
    }
    ++entry->count;
    if (used + line.size() > max_bytes) {
      entry->truncated = true;
      continue;
    }
    used += line.size();
    entry->letters.emplace_back(line);
  }
}

}  // namespace ferry::sink
