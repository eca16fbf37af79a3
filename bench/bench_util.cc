#include "bench/bench_util.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <thread>

#include "proto/frame.h"
#include "proto/messages.h"

extern char** environ;

namespace ferry::bench {

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string ExeDir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string path(buf, static_cast<size_t>(n));
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

bool IsExecutable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

MachineInfo GetMachineInfo() {
  MachineInfo info;
  info.cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  struct utsname uts {};
  if (::uname(&uts) == 0) info.kernel = uts.release;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos)
        info.cpu_model = line.substr(line.find_first_not_of(' ', colon + 1));
      break;
    }
  }
  return info;
}

TempDir::TempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + "XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Daemon::~Daemon() {
  if (pid_ > 0) Stop();
}

bool Daemon::Start(const std::string& ferryd, const std::string& dir, const std::string& fsync,
                   std::string* error) {
  socket_ = dir + "/ferry.sock";
  log_ = dir + "/ferryd.log";
  const std::string config = dir + "/config.toml";
  const std::string state = dir + "/state";
  {
    std::ofstream out(config);
    out << "[journal]\nfsync = \"" << fsync << "\"\n";
    // FERRY_BENCH_DAEMON_TOML: more config for every ferryd a benchmark starts, e.g.
    // "[store]\nenabled = false" to measure without the store thread.
    if (const char* extra = std::getenv("FERRY_BENCH_DAEMON_TOML")) out << extra << "\n";
    if (!out) {
      *error = "cannot write " + config;
      return false;
    }
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  std::vector<std::string> args = {ferryd,        "--config", config,        "--socket", socket_,
                                   "--state-dir", state,      "--log-level", "warn"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = ::posix_spawn(&pid_, ferryd.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    *error = "spawn " + ferryd + ": " + std::strerror(rc);
    return false;
  }
  const auto start = Clock::now();
  while (SecondsSince(start) < 10) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      *error = "ferryd exited during start; see " + log_;
      return false;
    }
    std::string ignored;
    const int fd = ConnectUnix(socket_, &ignored);
    if (fd >= 0) {
      ::close(fd);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  *error = "ferryd did not listen on " + socket_ + " within 10 s; see " + log_;
  Stop();
  return false;
}

std::string Daemon::Stop() {
  if (pid_ <= 0) return "not running";
  ::kill(pid_, SIGTERM);
  int status = 0;
  const auto start = Clock::now();
  for (;;) {
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) break;
    if (SecondsSince(start) > 10) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  pid_ = -1;
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "unknown";
}

int ConnectUnix(const std::string& socket, std::string* error) {
  struct sockaddr_un addr {};
  if (socket.size() >= sizeof addr.sun_path) {
    *error = "socket path too long: " + socket;
    return -1;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket.c_str(), socket.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    *error = "connect " + socket + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

bool RequestStatus(const std::string& socket, rapidjson::Document* doc, std::string* error) {
  const int fd = ConnectUnix(socket, error);
  if (fd < 0) return false;
  const std::string frame =
      proto::EncodeFrame(proto::FrameType::kStatusReq, proto::MakeStatusRequestBody());
  bool ok = ::write(fd, frame.data(), frame.size()) == static_cast<ssize_t>(frame.size());
  std::string in;
  proto::Frame reply;
  while (ok) {
    proto::Error perr;
    const auto r = proto::DecodeFrame(in, proto::kDefaultMaxFrame, &reply, &perr);
    if (r == proto::DecodeResult::kFrame) break;
    if (r == proto::DecodeResult::kError) {
      *error = "bad status reply: " + perr.message;
      ok = false;
      break;
    }
    char buf[16384];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      *error = "status: connection closed";
      ok = false;
      break;
    }
    in.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (!ok) return false;
  if (reply.type != proto::FrameType::kStatus) {
    *error = "status: unexpected reply " + std::string(reply.body);
    return false;
  }
  doc->Parse(reply.body.data(), reply.body.size());
  if (doc->HasParseError() || !doc->IsObject()) {
    *error = "status: reply is not a JSON object";
    return false;
  }
  return true;
}

uint64_t StatusUint(const rapidjson::Document& doc, const char* section, const char* key) {
  auto s = doc.FindMember(section);
  if (s == doc.MemberEnd() || !s->value.IsObject()) return 0;
  auto k = s->value.FindMember(key);
  if (k == s->value.MemberEnd() || !k->value.IsUint64()) return 0;
  return k->value.GetUint64();
}

long ProcStatusKiB(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return std::strtol(line.c_str() + prefix.size(), nullptr, 10);
  }
  return -1;
}

double ProcCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return -1;
  const char* p = text.c_str() + close + 2;
  // p is at field 3 (state); utime and stime are fields 14 and 15.
  for (int field = 3; field < 14 && *p; ++field) {
    p = std::strchr(p, ' ');
    if (!p) return -1;
    ++p;
  }
  char* end = nullptr;
  const unsigned long long utime = std::strtoull(p, &end, 10);
  const unsigned long long stime = std::strtoull(end, nullptr, 10);
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double ThreadCpuSeconds() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

Summary Summarize(std::vector<double> samples) {
  Summary s;
  s.n = samples.size();
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  auto rank = [&](double q) {
    size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(samples.size())));
    return samples[std::min(samples.size() - 1, i == 0 ? 0 : i - 1)];
  };
  s.min = samples.front();
  s.max = samples.back();
  s.p50 = rank(0.50);
  s.p90 = rank(0.90);
  s.p99 = rank(0.99);
  s.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(s.n);
  return s;
}

double Median(std::vector<double> samples) { return Summarize(std::move(samples)).p50; }

void WriteHexId(uint64_t hi, uint64_t lo, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) {
    out[i] = kHex[(hi >> (60 - 4 * i)) & 15];
    out[16 + i] = kHex[(lo >> (60 - 4 * i)) & 15];
  }
}

uint64_t RandomU64() {
  uint64_t v = 0;
  if (::getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
    v = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  }
  return v;
}

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    std::string line;
    for (size_t i = 0; i < rows[r].size(); ++i) {
      const std::string& cell = rows[r][i];
      const std::string pad(width[i] - cell.size(), ' ');
      if (i > 0) line += "  ";
      line += i == 0 ? cell + pad : pad + cell;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
    if (r == 0) {
      size_t total = 0;
      for (size_t w : width) total += w + 2;
      std::printf("%s\n", std::string(total - 2, '-').c_str());
    }
  }
  std::fflush(stdout);
}

std::string Fmt(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

void WriteMachineJson(proto::JsonWriter& w, const MachineInfo& m, const std::string& load_start) {
  w.Key("machine");
  w.StartObject();
  w.Key("cpus");
  w.Int64(m.cpus);
  w.Key("kernel");
  w.String(m.kernel.c_str());
  w.Key("cpu_model");
  w.String(m.cpu_model.c_str());
  w.Key("loadavg_start");
  w.String(load_start.c_str());
  w.Key("loadavg_end");
  w.String(LoadAverage().c_str());
  w.EndObject();
}

bool SpawnResult::exited_zero() const {
  return spawn_error == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

SpawnResult SpawnAndWait(char* const argv[], const posix_spawn_file_actions_t* actions) {
  SpawnResult r;
  const auto start = Clock::now();
  pid_t pid = -1;
  r.spawn_error = ::posix_spawn(&pid, argv[0], actions, nullptr, argv, environ);
  if (r.spawn_error == 0) {
    struct rusage ru {};
    while (::wait4(pid, &r.status, 0, &ru) < 0 && errno == EINTR) {
    }
    r.cpu_ms = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  }
  r.wall_ms = SecondsSince(start) * 1e3;
  return r;
}

}  // namespace ferry::bench
