// ArchiveWorker::Copy: one transcript's new bytes into its generation file (worker.h says the
// rules; format.h the file).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "daemon/archive/extract.h"
#include "daemon/archive/format.h"
#include "daemon/archive/worker.h"
#include "daemon/base/crc32c.h"
#include "daemon/base/file_util.h"

namespace ferry {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads exactly [at, at + n) of `fd` into *out; false on an error or a file that got shorter.
bool ReadAt(int fd, uint64_t at, size_t n, std::string* out) {
  out->resize(n);
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, out->data() + got, n - got, static_cast<off_t>(at + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

std::string LastBlock(std::string s) {
  if (s.size() > archive::kTailBlock) s.erase(0, s.size() - archive::kTailBlock);
  return s;
}

}  // namespace

ArchiveWorker::Transcript& ArchiveWorker::Lookup(SessionInfo& si, const SessionKey& key,
                                                 const std::string& path) {
  const std::string tkey = key.first + '\0' + key.second + '\0' + path;
  auto it = transcripts_.find(tkey);
  if (it != transcripts_.end()) return it->second;
  Transcript& t = transcripts_[tkey];
  const std::vector<uint32_t> gens = archive::ListGenerations(si.dir);
  for (auto g = gens.rbegin(); g != gens.rend(); ++g) {
    const std::string file = si.dir + "/" + archive::GenFileName(*g);
    std::string data;
    if (!ReadWholeFile(file, &data)) continue;
    const archive::Scan scan = archive::ScanFile(data);
    if (!scan.has_header || scan.header.path != path) continue;
    if (scan.valid_bytes < data.size()) {
      // A copy cut by a crash (torn) or damaged bytes: keep them aside, cut the file, and copy
      // again from where the valid frames end.
      const std::string aside = file + ".damaged-" + std::to_string(scan.valid_bytes);
      if (scan.damage == archive::Damage::kCorrupt) {
        (void)WriteFileAtomically(aside, std::string_view(data).substr(scan.valid_bytes), true);
        spdlog::warn(
            "archive: {}: damaged frame at byte {} ({}); kept the rest in {} and "
            "copying the transcript again from byte {}",
            file, scan.valid_bytes, scan.what, aside, scan.end);
      } else {
        spdlog::info("archive: {}: cut a torn last frame at byte {} (a copy interrupted)", file,
                     scan.valid_bytes);
      }
      if (::truncate(file.c_str(), static_cast<off_t>(scan.valid_bytes)) != 0) {
        SetError("cannot cut " + file + ": " + std::strerror(errno));
        break;  // a new generation then
      }
      // The cut bytes leave the file (a kept-aside copy is still in the session's directory).
      uint64_t cut = data.size() - scan.valid_bytes;
      if (scan.damage != archive::Damage::kCorrupt) {
        cut = std::min(cut, si.bytes);
        si.bytes -= cut;
        counters_.stored_bytes.fetch_sub(std::min(cut, counters_.stored_bytes.load()));
      }
    }
    t.gen = *g;
    t.end = scan.end;
    t.tail_crc = scan.tail_crc;
    t.skip_line = scan.end > 0;  // decided by the last copied byte in Copy
    break;
  }
  return t;
}

void ArchiveWorker::Copy(const std::string& source, const std::string& session,
                         const std::string& path) {
  if (path.empty() || path[0] != '/') return Refuse(path, "not an absolute path");
  Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return Missing(path);
    if (err == ELOOP) return Refuse(path, "it is a symbolic link");
    return Refuse(path, std::string("cannot open it: ") + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Refuse(path, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return Refuse(path, "not a regular file");
  if (st.st_uid != ::geteuid()) {
    return Refuse(path, "owned by uid " + std::to_string(st.st_uid) + ", not by ferryd's user");
  }
  const SessionKey key{source, session};
  auto [sit, fresh] = sessions_.try_emplace(key);
  SessionInfo& si = sit->second;
  if (fresh) {
    si.dir = options_.dir + "/" + archive::EncodeName(source) + "/" + archive::EncodeName(session);
    counters_.sessions.store(sessions_.size());
  }
  Transcript& t = Lookup(si, key, path);
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  bool new_gen = t.gen == 0;
  std::string tail, why;
  if (!new_gen && size < t.end) {
    new_gen = true;
    why = "is shorter than what was copied (" + std::to_string(size) + " < " +
          std::to_string(t.end) + " bytes)";
  } else if (!new_gen && t.end > 0) {
    const size_t block = static_cast<size_t>(std::min<uint64_t>(t.end, archive::kTailBlock));
    if (!ReadAt(fd.get(), t.end - block, block, &tail) ||
        crc32c::Value(tail.data(), tail.size()) != t.tail_crc) {
      new_gen = true;
      why = "was rewritten (its bytes before offset " + std::to_string(t.end) + " changed)";
    }
  }
  if (new_gen) {
    tail.clear();
  } else if (t.skip_line) {
    t.skip_line = tail.empty() || tail.back() != '\n';  // resumed at a line's start?
  }
  const uint64_t from = new_gen ? 0 : t.end;
  if (size == from) return;
  if (new_gen && t.gen != 0) {
    spdlog::info("archive: transcript {} {}; archiving it again as a new generation", path, why);
  }
  if (CopyRange(fd.get(), key, si, t, new_gen, path, from, size, std::move(tail))) {
    Evict(key);
    counters_.copies.fetch_add(1);  // last: a reader that sees it sees the rest
  }
}

// Appends [from, size) of `src_fd` as data frames; false after recording the failure (the
// file is cut back, so the archive is as before).
bool ArchiveWorker::CopyRange(int src_fd, const SessionKey& key, SessionInfo& si, Transcript& t,
                              bool new_gen, const std::string& path, uint64_t from, uint64_t size,
                              std::string tail) {
  const uint32_t gen = new_gen ? si.max_gen + 1 : t.gen;
  const std::string file = si.dir + "/" + archive::GenFileName(gen);
  if (Status s = MakeDirs(si.dir); !s.ok()) {
    counters_.failed.fetch_add(1);
    SetError(s.ToString());
    return false;
  }
  const int flags = O_WRONLY | O_APPEND | O_CLOEXEC | (new_gen ? O_CREAT | O_EXCL : 0);
  Fd out(::open(file.c_str(), flags, 0600));
  struct stat before {};
  if (out.get() < 0 || ::fstat(out.get(), &before) != 0) {
    counters_.failed.fetch_add(1);
    SetError("archive: cannot open " + file + ": " + std::strerror(errno));
    return false;
  }
  std::string frames, chunk, frame, lines;
  if (new_gen) frames = archive::EncodeHeader(key.first, key.second, path, gen, NowNs());
  std::vector<TranscriptMessage> messages;
  uint64_t pos = from;
  Status s = Status::Ok();
  Transcript next = t;
  if (new_gen) next = Transcript{};
  while (pos < size && s.ok()) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(archive::kChunkBytes, size - pos));
    if (!ReadAt(src_fd, pos, n, &chunk)) {
      s = Status::IOError("read " + path + " at byte " + std::to_string(pos) +
                          ": it got shorter or failed");
      break;
    }
    tail = LastBlock(tail + chunk);
    if (!archive::EncodeData(pos, chunk, crc32c::Value(tail.data(), tail.size()), &frame)) {
      s = Status::IOError("zlib failed to compress " + path);
      break;
    }
    frames += frame;
    pos += n;
    // Messages from the complete lines (a partial line waits for the next copy).
    lines = next.partial + chunk;
    size_t start = 0;
    if (next.skip_line) {
      const size_t nl = lines.find('\n');
      start = nl == std::string::npos ? lines.size() : nl + 1;
      next.skip_line = nl == std::string::npos;
    }
    const size_t last_nl = lines.rfind('\n');
    if (last_nl != std::string::npos && last_nl >= start) {
      archive::ExtractMessages(key.first, key.second,
                               std::string_view(lines).substr(start, last_nl + 1 - start),
                               &messages);
      start = last_nl + 1;
    }
    next.partial = lines.size() - start <= (4u << 20) ? lines.substr(start) : std::string();
    if (frames.size() >= (1u << 20) || pos == size) {
      s = WriteAll(out.get(), frames, "write " + file);
      frames.clear();
    }
  }
  if (s.ok() && ::fdatasync(out.get()) != 0) s = Status::FromErrno("fdatasync " + file, errno);
  if (!s.ok()) {
    counters_.failed.fetch_add(1);
    SetError(s.ToString());
    spdlog::warn("archive: copying {} failed: {}; the archive is unchanged", path, s.ToString());
    if (new_gen) {
      ::unlink(file.c_str());
    } else if (::ftruncate(out.get(), before.st_size) != 0) {
      // Read the file again (and cut its tail) next time; `t` is gone after this.
      transcripts_.erase(key.first + '\0' + key.second + '\0' + path);
    }
    return false;
  }
  struct stat after {};
  ::fstat(out.get(), &after);
  const uint64_t added = static_cast<uint64_t>(after.st_size - before.st_size);
  next.gen = gen;
  next.end = pos;
  next.tail_crc = crc32c::Value(tail.data(), tail.size());
  t = std::move(next);
  if (new_gen) {
    si.max_gen = gen;
    counters_.generations.fetch_add(1);
  }
  si.bytes += added;
  si.last_write_ns = NowNs();
  counters_.stored_bytes.fetch_add(added);
  counters_.copied_bytes.fetch_add(pos - from);
  SetError("");
  if (!messages.empty() && options_.on_messages) {
    counters_.messages.fetch_add(messages.size());
    options_.on_messages(std::move(messages));
  }
  return true;
}

}  // namespace ferry
