#include "daemon/app/offline.h"

#include <fcntl.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string_view>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "daemon/archive/read.h"
#include "daemon/config/config.h"
#include "daemon/ingest/tail_server.h"
#include "daemon/journal/journal.h"
#include "daemon/journal/progress.h"
#include "daemon/journal/reader.h"
#include "daemon/sink/deadletter.h"
#include "daemon/store/query.h"
#include "proto/messages.h"
#include "proto/paths.h"

namespace ferry {
namespace {

constexpr const char* kNotRunning =
    "ferryd is not running; start it with: systemctl --user start ferryd (or run ferryd)";

// "file:///abs/path?params" with every byte but [A-Za-z0-9/._~-] percent-escaped, so no '?',
// '#' or '%' in a path can change what SQLite opens.
std::string SqliteUri(const std::string& path, const char* params) {
  std::string abs = path;
  if (abs.empty() || abs[0] != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd)) abs = std::string(cwd) + "/" + abs;
  }
  std::string uri = "file://";
  for (const char ch : abs) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || std::strchr("/._~-", c)) {
      uri += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      uri += hex;
    }
  }
  return uri + "?" + params;
}

// SQLite's unix VFS makes its system calls through a table that can be replaced
// (sqlite3_vfs::xSetSystemCall). In this process none of them may create, change, truncate,
// chmod, chown or delete a file: open never creates (O_CREAT and O_TRUNC are dropped), the
// writing calls fail with EROFS, and fchown/fchmod, which SQLite calls as root to give a -wal
// or -shm the db's owner (changing its ctime), do nothing. A read that would need to write
// fails instead of touching the state directory.
int OpenNoCreate(const char* path, int flags, int mode) {
  return ::open(path, flags & ~(O_CREAT | O_TRUNC), mode);
}
int NoChown(int, uid_t, gid_t) { return 0; }
int NoChmod(int, mode_t) { return 0; }
int NoUnlink(const char*) {
  errno = EROFS;
  return -1;
}
int NoTruncate(int, off_t) {
  errno = EROFS;
  return -1;
}
ssize_t NoWrite(int, const void*, size_t) {
  errno = EROFS;
  return -1;
}
ssize_t NoPwrite(int, const void*, size_t, off_t) {
  errno = EROFS;
  return -1;
}

bool MakeSqliteReadOnly() {
  sqlite3_vfs* vfs = sqlite3_vfs_find(nullptr);
  if (!vfs || vfs->iVersion < 3 || !vfs->xSetSystemCall) return false;
  const std::pair<const char*, sqlite3_syscall_ptr> calls[] = {
      {"open", reinterpret_cast<sqlite3_syscall_ptr>(&OpenNoCreate)},
      {"fchown", reinterpret_cast<sqlite3_syscall_ptr>(&NoChown)},
      {"fchmod", reinterpret_cast<sqlite3_syscall_ptr>(&NoChmod)},
      {"unlink", reinterpret_cast<sqlite3_syscall_ptr>(&NoUnlink)},
      {"ftruncate", reinterpret_cast<sqlite3_syscall_ptr>(&NoTruncate)},
      {"write", reinterpret_cast<sqlite3_syscall_ptr>(&NoWrite)},
      {"pwrite", reinterpret_cast<sqlite3_syscall_ptr>(&NoPwrite)},
      {"pwrite64", reinterpret_cast<sqlite3_syscall_ptr>(&NoPwrite)},
  };
  bool ok = true;
  for (const auto& [name, fn] : calls) {
    const int rc = vfs->xSetSystemCall(vfs, name, fn);
    // "open", "fchown", ... are in every unix VFS; pwrite/pwrite64 depend on the build.
    if (rc != SQLITE_OK && rc != SQLITE_NOTFOUND) ok = false;
    if (rc == SQLITE_NOTFOUND && std::string_view(name).substr(0, 6) != "pwrite") ok = false;
  }
  return ok;
}

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// The seq of the journal's last readable record (0 for an empty or missing journal): the last
// segment is named by its first seq, so only that segment is read.
bool JournalLastSeq(const std::string& dir, uint64_t* last, std::string* error) {
  *last = 0;
  std::vector<uint64_t> segments;
  if (Status s = ListSegments(dir, &segments); !s.ok()) {
    if (!Exists(dir)) return true;
    *error = s.message();
    return false;
  }
  if (segments.empty()) return true;
  *last = segments.back() - 1;
  JournalReader reader(dir, segments.back());
  for (;;) {
    JournalRecord rec;
    const JournalReader::Result r = reader.Next(UINT64_MAX, &rec);
    if (r == JournalReader::Result::kRecord) {
      *last = rec.seq;
    } else if (r == JournalReader::Result::kEnd) {
      return true;
    } else if (r == JournalReader::Result::kIOError) {
      *error = reader.error();
      return false;
    }  // kCorruption: the rest of that segment is dropped; read on
  }
}

// ferry.db, read without writing or creating anything in the state directory.
class OfflineStore {
 public:
  explicit OfflineStore(const Config& cfg) : cfg_(cfg), db_path_(cfg.state_dir + "/ferry.db") {}

  // Answers one QUERY_REQ body with a QUERY_RESULT or an ERROR frame.
  std::string Answer(const std::string& body) {
    if (!query_) {  // planned once: the checks below compare with the state seen then
      std::string uri, why;
      if (!Plan(&uri, &why)) return Error(why);
      QueryLimits limits{cfg_.query_timeout, cfg_.query_max_rows, 3u << 20};
      limits.temp_in_memory = true;  // it may create no temp file (MakeSqliteReadOnly)
      query_ = std::make_unique<StoreQuery>(uri, limits);
      NoteLag(uri);
    }
    std::string frame;
    query_->RunOne(body, [&](bool ok, std::string result, proto::Error error) {
      frame = ok ? proto::EncodeFrame(proto::FrameType::kQueryResult, result)
                 : proto::EncodeFrame(proto::FrameType::kError, proto::MakeErrorBody(error, false));
    });
    struct stat now {};
    if (immutable_ && (::stat(db_path_.c_str(), &now) != 0 || !SameFile(now, before_))) {
      return Error(db_path_ +
                   " changed while it was read without ferryd (a ferryd started meanwhile?); "
                   "run the command again");
    }
    return frame;
  }

 private:
  static std::string Error(const std::string& message) {
    return proto::EncodeFrame(proto::FrameType::kError,
                              proto::MakeErrorBody({proto::Errc::kQueryFailed, message}, false));
  }

  // How to open ferry.db: false with *why when it cannot be read without writing.
  bool Plan(std::string* uri, std::string* why) {
    if (!cfg_.store_enabled) {
      *why = "the store is disabled ([store] enabled = false): there is no ferry.db to query";
      return false;
    }
    if (::stat(db_path_.c_str(), &before_) != 0) {
      *why = errno == ENOENT ? "nothing recorded in ferry.db yet: " + db_path_ + " does not exist"
                             : "cannot read " + db_path_ + ": " + std::strerror(errno);
      return false;
    }
    if (Exists(db_path_ + "-journal")) {
      // ferryd keeps ferry.db in WAL mode; a rollback journal means a write was cut short,
      // and only a writer may roll it back.
      *why = db_path_ +
             "-journal is there (an interrupted write); start ferryd once, then read "
             "again";
      return false;
    }
    const bool wal = Exists(db_path_ + "-wal"), shm = Exists(db_path_ + "-shm");
    if (!wal) {
      // ferryd stopped cleanly (its last connection folded the log in and removed it): the
      // file is complete, and immutable=1 reads it with no lock and no -wal/-shm created.
      immutable_ = true;
      *uri = SqliteUri(db_path_, "immutable=1");
      return true;
    }
    if (!shm) {
      *why = db_path_ + "-wal is there without " + db_path_ +
             "-shm, and reading it would create that file; start ferryd once (it applies the "
             "log), then read again";
      return false;
    }
    // ferryd was killed: the log holds committed rows. readonly_shm reads it without writing
    // the index (SQLite's read-only WAL mode); SQLite's own locks keep it consistent.
    immutable_ = false;
    *uri = SqliteUri(db_path_, "mode=ro&readonly_shm=1");
    return true;
  }

  // One note on stderr when the journal holds records ferry.db does not have yet.
  void NoteLag(const std::string& uri) {
    sqlite3* db = nullptr;
    uint64_t cursor = 0, last = 0;
    bool have_cursor = false;
    if (sqlite3_open_v2(uri.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr) ==
        SQLITE_OK) {
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'cursor'", -1, &stmt,
                             nullptr) == SQLITE_OK) {
        const int rc = sqlite3_step(stmt);
        have_cursor = rc == SQLITE_DONE || rc == SQLITE_ROW;
        if (rc == SQLITE_ROW) cursor = static_cast<uint64_t>(sqlite3_column_int64(stmt, 0));
      }
      sqlite3_finalize(stmt);
    }
    sqlite3_close_v2(db);
    std::string error;
    if (!have_cursor || !JournalLastSeq(cfg_.state_dir + "/journal", &last, &error)) return;
    if (last <= cursor) return;
    std::cerr << "ferry: ferryd is not running: ferry.db holds the events up to seq " << cursor
              << "; the " << (last - cursor) << " after it (seqs " << cursor + 1 << ".." << last
              << ") are only in the journal until ferryd starts (ferry tail shows them)\n";
  }

  const Config& cfg_;
  const std::string db_path_;
  std::unique_ptr<StoreQuery> query_;
  struct stat before_ {};
  bool immutable_ = false;
};

bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

std::string ErrorFrame(proto::Errc code, const std::string& message, bool fatal) {
  return proto::EncodeFrame(proto::FrameType::kError, proto::MakeErrorBody({code, message}, fatal));
}

// Replays the journal to the TAIL_REQ on `fd` with TailServer (which takes the fd) and
// returns when it is done.
void ServeTail(int fd, const Config& cfg, const proto::TailRequest& req) {
  const std::string dir = cfg.state_dir + "/journal";
  uint64_t last = 0;
  std::string error;
  if (!JournalLastSeq(dir, &last, &error)) {
    SendAll(fd, ErrorFrame(proto::Errc::kInternal, "cannot read the journal: " + error, true));
    ::close(fd);
    return;
  }
  JournalProgress progress;
  progress.PublishWritten(last);
  TailServer tails(dir, progress);
  if (!tails.Start(fd, req, &error)) return;  // Start told the client and closed fd
  while (tails.active() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  tails.Stop();
}

std::string DeadletterList(const Config& cfg, const proto::DeadletterRequest& req) {
  std::vector<std::string> names;
  std::string configured;
  for (const SinkConfig& s : cfg.sinks) {
    configured += (configured.empty() ? "" : ", ") + s.name;
    if (req.sink.empty() || s.name == req.sink) names.push_back(s.name);
  }
  if (!req.sink.empty() && names.empty()) {
    return ErrorFrame(
        proto::Errc::kUnknownSink,
        "no sink named \"" + req.sink + "\" (" +
            (configured.empty() ? "no sinks configured" : "configured: " + configured) + ")",
        false);
  }
  std::vector<proto::DeadletterListEntry> entries(names.size());
  // The same budget as SinkSet: the letters of one answer stay under 48 MiB.
  const size_t budget = names.empty() ? 0 : (size_t{48} << 20) / names.size();
  for (size_t i = 0; i < names.size(); ++i) {
    entries[i].name = names[i];
    sink::DeadLetterFiles(cfg.state_dir, names[i]).List(budget, &entries[i]);
  }
  return proto::EncodeFrame(proto::FrameType::kDeadletterResult,
                            proto::MakeDeadletterListResultBody(entries));
}

// Waits for a whole frame in *buf. False when the client closed, went idle or sent garbage
// (then *reply may hold a fatal ERROR to send).
bool ReadFrame(int fd, size_t max_frame, std::string* buf, proto::Frame* frame,
               std::string* reply) {
  for (;;) {
    proto::Error perr;
    const auto r = proto::DecodeFrame(*buf, max_frame, frame, &perr);
    if (r == proto::DecodeResult::kFrame) return true;
    if (r == proto::DecodeResult::kError) {
      *reply = ErrorFrame(perr.code, perr.message, true);
      return false;
    }
    struct pollfd p {
      fd, POLLIN, 0
    };
    const int ready =
        ::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kOfflineIdleTimeout).count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      if (ready == 0) *reply = ErrorFrame(proto::Errc::kIdleTimeout, "no request; closing", true);
      return false;
    }
    char chunk[16384];
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf->append(chunk, static_cast<size_t>(n));
  }
}

// ferryd refuses a state directory that another user owns or can write to (PrepareStateDir),
// since they could have swapped its files; so does this reader, without tightening anything.
// Empty when it is fine (or missing: each request then says what is missing).
std::string UntrustedStateDir(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return {};
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
  if (st.st_uid != ::geteuid()) {
    return "the state directory " + dir + " belongs to uid " + std::to_string(st.st_uid) +
           ", not to you; ferryd refuses it too";
  }
  if ((st.st_mode & 022) != 0) {
    return "the state directory " + dir + " is writable by others (mode " + mode +
           "); ferryd refuses it too: chmod 700 " + dir;
  }
  return {};
}

Config LoadOfflineConfig(const OfflineOptions& o) {
  ConfigSource source;
  source.required = !o.config_path.empty() || proto::ConfigPathFromEnv();
  source.path = o.config_path.empty() ? proto::DefaultConfigPath() : o.config_path;
  source.state_dir_flag = o.state_dir;
  Config cfg;
  std::string error;
  if (!LoadEffectiveConfig(source, &cfg, &error)) {
    // What was recorded stays readable with a broken config: defaults, and say so.
    std::cerr << "ferry: " << error << "; reading with the default settings\n";
    cfg = Config{};
    cfg.state_dir = o.state_dir.empty() ? proto::DefaultStateDir() : o.state_dir;
  }
  return cfg;
}

}  // namespace

// Over 80 lines: one dispatch over the request types, each a few lines.
int ServeOffline(const OfflineOptions& options) {
  struct stat st {};
  if (options.fd < 0 || ::fstat(options.fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
    std::cerr << "ferryd: --serve-offline needs --offline-fd N, a connected socket (ferry starts "
                 "it so when ferryd is not running; docs/protocol.md \"Offline reads\")\n";
    return 2;
  }
  spdlog::set_level(spdlog::level::off);  // its stderr is the client's
  // StoreQuery opens the "file:" URI OfflineStore builds (set before sqlite3_initialize,
  // which sqlite3_vfs_find runs).
  const bool uri_ok = sqlite3_config(SQLITE_CONFIG_URI, 1) == SQLITE_OK && MakeSqliteReadOnly();
  const Config cfg = LoadOfflineConfig(options);
  OfflineStore store(cfg);
  const std::string untrusted = UntrustedStateDir(cfg.state_dir);
  const int fd = options.fd;
  std::string buf;
  for (;;) {
    proto::Frame frame;
    std::string reply;
    bool fatal = false;
    if (!ReadFrame(fd, cfg.max_frame_bytes, &buf, &frame, &reply)) {
      if (!reply.empty()) SendAll(fd, reply);
      ::close(fd);
      return 0;
    }
    const std::string body(frame.body);
    buf.erase(0, frame.size);
    proto::Error perr;
    const bool reads = frame.type == proto::FrameType::kQueryReq ||
                       frame.type == proto::FrameType::kTailReq ||
                       frame.type == proto::FrameType::kDeadletterReq ||
                       frame.type == proto::FrameType::kTranscriptReq;
    if (reads && !untrusted.empty()) {
      SendAll(fd, ErrorFrame(proto::Errc::kInternal, untrusted, true));
      ::close(fd);
      return 0;
    }
    switch (frame.type) {
      case proto::FrameType::kHello: {
        rapidjson::Document doc;
        reply = proto::ParseVersionedRequest(body, &doc, &perr)
                    ? proto::EncodeFrame(proto::FrameType::kHello,
                                         std::string("{\"v\":1,\"server\":\"ferryd/") +
                                             FERRY_VERSION + "\",\"offline\":true}")
                    : ErrorFrame(perr.code, perr.message, fatal = true);
        break;
      }
      case proto::FrameType::kQueryReq:
        reply = uri_ok ? store.Answer(body)
                       : ErrorFrame(proto::Errc::kInternal,
                                    "cannot set SQLite up to read without writing (URI file names, "
                                    "system calls)",
                                    false);
        break;
      case proto::FrameType::kTailReq: {
        proto::TailRequest req;
        if (!proto::ParseTailRequest(body, &req, &perr)) {
          reply = ErrorFrame(perr.code, perr.message, fatal = true);
        } else if (req.follow) {
          reply = ErrorFrame(proto::Errc::kUnexpectedType,
                             std::string(kNotRunning) + "; following new events needs it", false);
        } else {
          ServeTail(fd, cfg, req);  // the tail is the connection's only request; fd is closed
          return 0;
        }
        break;
      }
      case proto::FrameType::kDeadletterReq: {
        proto::DeadletterRequest req;
        if (!proto::ParseDeadletterRequestBody(body, &req, &perr)) {
          reply = ErrorFrame(perr.code, perr.message, false);
        } else if (req.op != "list") {
          reply =
              ErrorFrame(proto::Errc::kUnexpectedType,
                         std::string(kNotRunning) + "; deadletter " + req.op + " needs it", false);
        } else {
          reply = DeadletterList(cfg, req);
        }
        break;
      }
      case proto::FrameType::kTranscriptReq:  // the archive's files, read-only (archive/read.h)
        reply = archive::AnswerTranscriptRequest(cfg.state_dir + "/archive", body);
        break;
      case proto::FrameType::kEvent:
      case proto::FrameType::kEventBatch:
      case proto::FrameType::kStatusReq:
      case proto::FrameType::kFlushReq:
        reply = ErrorFrame(proto::Errc::kUnexpectedType,
                           std::string(kNotRunning) +
                               "; this read-only ferryd answers query, "
                               "tail without -f and deadletter list only",
                           false);
        break;
      default:
        reply = ErrorFrame(proto::Errc::kUnexpectedType,
                           std::string(proto::FrameTypeName(frame.type)) +
                               " is a reply type; a client may not send it",
                           fatal = true);
    }
    if (!SendAll(fd, reply) || fatal) {
      ::close(fd);
      return fatal ? 0 : 1;
    }
  }
}

}  // namespace ferry
