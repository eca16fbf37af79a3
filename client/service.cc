// `ferry service install|uninstall`: puts ferryd.service and ferryd.socket in the user's
// systemd unit directory and enables them with `systemctl --user` when a user manager
// answers; otherwise says exactly what it wrote and what to run later. Not on the hook hot
// path, so it may fork and exec.
#include "client/service.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "client/args.h"
#include "client/common.h"
#include "client/service_units.h"

namespace ferry::client {
namespace {

constexpr const char* kServiceHelp =
    "usage: ferry service install|uninstall [--dry-run] [--ferryd PATH]\n"
    "\n"
    "install    writes ferryd.service and ferryd.socket to $XDG_CONFIG_HOME/systemd/user\n"
    "           (~/.config/systemd/user), then runs `systemctl --user daemon-reload` and\n"
    "           `systemctl --user enable --now ferryd.socket ferryd.service`\n"
    "uninstall  disables and stops both units, removes the files, reloads systemd; the\n"
    "           state directory (the journal) is kept\n"
    "\n"
    "Without a running systemd user manager, install still writes the units and prints the\n"
    "commands to run once there is one. When a systemctl step fails, everything systemctl\n"
    "said is printed, with what to run next; the exit status is then 1.\n"
    "\n"
    "  --dry-run      print what would be written and run; change nothing\n"
    "  --ferryd PATH  the ferryd for ExecStart= (default: the one beside this ferry, else\n"
    "                 " FERRY_INSTALL_BINDIR "/ferryd)\n";

// Functions, not globals: a global std::vector would be built at every start of ferry,
// including `ferry emit` on the hook hot path.
std::vector<std::string> ReloadCommand() { return {"systemctl", "--user", "daemon-reload"}; }
std::vector<std::string> EnableCommand() {
  return {"systemctl", "--user", "enable", "--now", "ferryd.socket", "ferryd.service"};
}
std::vector<std::string> DisableCommand() {
  return {"systemctl", "--user", "disable", "--now", "ferryd.service", "ferryd.socket"};
}

std::string Joined(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

// Runs argv (PATH lookup) with stdin from /dev/null; returns its exit status (127 when it
// cannot be run) and its stdout and stderr together in *output.
int Run(const std::vector<std::string>& argv, std::string* output) {
  output->clear();
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    *output = std::string("pipe: ") + std::strerror(errno);
    return 127;
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    *output = std::string("fork: ") + std::strerror(errno);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return 127;
  }
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(pipe_fds[1], 1);
    ::dup2(pipe_fds[1], 2);
    ::execvp(args[0], args.data());
    const std::string msg = argv[0] + ": " + std::strerror(errno) + "\n";
    [[maybe_unused]] ssize_t n = ::write(2, msg.data(), msg.size());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) output->append(buf, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string FirstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  return line.empty() ? "no output" : line;
}

// True when `systemctl --user` reaches a running user manager; else *why says what it said.
bool ManagerAnswers(std::string* why) {
  std::string output;
  const int rc = Run({"systemctl", "--user", "show", "--property=Version"}, &output);
  if (rc == 0) return true;
  *why = "systemctl --user: " + FirstLine(output);
  return false;
}

std::string UnitDir() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg && *xdg == '/') return std::string(xdg) + "/systemd/user";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "") + "/.config/systemd/user";
}

bool IsExecutable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

std::string Absolute(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : path;
}

// --ferryd, else the ferryd beside this ferry binary, else the installed one.
bool FindFerryd(const std::string& flag, std::string* path, std::string* error) {
  if (!flag.empty()) {
    if (!IsExecutable(flag)) {
      *error = "--ferryd " + flag + " is not an executable file";
      return false;
    }
    *path = Absolute(flag);
    return true;
  }
  char self[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string dir(self, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    if (IsExecutable(dir + "/ferryd")) {
      *path = dir + "/ferryd";
      return true;
    }
  }
  const std::string installed = std::string(FERRY_INSTALL_BINDIR) + "/ferryd";
  if (IsExecutable(installed)) {
    *path = installed;
    return true;
  }
  *error =
      "cannot find ferryd (not beside this ferry, not at " + installed + "); pass --ferryd PATH";
  return false;
}

// The docs installed with this ferryd (<prefix>/bin/ferryd -> <prefix>/share/doc/ferry, so an
// install made with `cmake --install --prefix P` names P's docs), else the configured place.
std::string DocDir(const std::string& ferryd) {
  const std::string bin = ferryd.substr(0, ferryd.rfind('/'));
  const std::string docs = bin.substr(0, bin.rfind('/')) + "/share/doc/ferry";
  struct stat st {};
  return ::stat((docs + "/operations.md").c_str(), &st) == 0 ? docs : FERRY_DOCDIR;
}

std::string Fill(std::string text, const std::string& ferryd) {
  for (auto [key, value] : {std::pair<std::string, std::string>{"@FERRYD_PATH@", ferryd},
                            {"@FERRY_DOCDIR@", DocDir(ferryd)}}) {
    for (size_t pos; (pos = text.find(key)) != std::string::npos;) {
      text.replace(pos, key.size(), value);
    }
  }
  return text;
}

bool MakeDirs(const std::string& path, std::string* error) {
  for (size_t pos = 1; pos != std::string::npos;) {
    pos = path.find('/', pos + 1);
    const std::string partial = path.substr(0, pos);
    if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
      *error = "cannot create " + partial + ": " + std::strerror(errno);
      return false;
    }
  }
  return true;
}

// Writes `text` to `path` through a temporary file and a rename, so systemd never reads half.
bool WriteFile(const std::string& path, const std::string& text, std::string* error) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = "cannot write " + tmp + ": " + std::strerror(errno);
    return false;
  }
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = "cannot write " + tmp + ": " + std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return false;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = "cannot write " + path + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return false;
  }
  return true;
}

// `text`, every line of it, each indented by two spaces ("" for no text).
std::string Indented(const std::string& text) {
  std::string out;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    out += "  " + text.substr(pos, end - pos) + "\n";
    pos = end + 1;
  }
  return out;
}

// Runs a systemctl step and reports it with everything systemctl said (indented below the
// command), on stdout when it worked; false, after printing it all to stderr followed by
// `next` (what to run to find out why), when it failed.
bool Step(const std::vector<std::string>& argv, const std::string& next) {
  std::string output;
  const int rc = Run(argv, &output);
  if (rc != 0) {
    Complain(Joined(argv) + " failed (exit " + std::to_string(rc) + ")" +
             (output.empty() ? " and printed nothing" : ":"));
    std::fputs(Indented(output).c_str(), stderr);
    std::fputs(next.c_str(), stderr);
    return false;
  }
  std::printf("ran: %s\n%s", Joined(argv).c_str(), Indented(output).c_str());
  return true;
}

// What to run after a failed step, to see why and to try again.
std::string NextSteps(const std::string& retry) {
  return "next: see why with `systemctl --user status ferryd` and `journalctl --user -u "
         "ferryd`,\n      then fix it and run `" +
         retry + "` again\n";
}

int Install(bool dry_run, const std::string& ferryd_flag) {
  std::string ferryd, error;
  if (!FindFerryd(ferryd_flag, &ferryd, &error)) {
    Complain(error);
    return 1;
  }
  const std::string dir = UnitDir();
  const std::pair<std::string, std::string> units[] = {
      {dir + "/ferryd.service", Fill(kServiceUnitTemplate, ferryd)},
      {dir + "/ferryd.socket", Fill(kSocketUnitTemplate, ferryd)}};
  if (dry_run) {
    for (const auto& [path, text] : units) {
      std::printf("would write %s:\n%s", path.c_str(), text.c_str());
    }
    std::printf("would run: %s\nwould run: %s\n", Joined(ReloadCommand()).c_str(),
                Joined(EnableCommand()).c_str());
    return 0;
  }
  if (!MakeDirs(dir, &error)) {
    Complain(error);
    return 1;
  }
  for (const auto& [path, text] : units) {
    if (!WriteFile(path, text, &error)) {
      Complain(error);
      return 1;
    }
    std::printf("wrote %s\n", path.c_str());
  }
  std::string why;
  if (!ManagerAnswers(&why)) {
    std::printf(
        "no systemd user manager answered (%s); once one runs, enable ferryd with:\n"
        "  %s\n  %s\n",
        why.c_str(), Joined(ReloadCommand()).c_str(), Joined(EnableCommand()).c_str());
    return 0;
  }
  if (!Step(ReloadCommand(), NextSteps("ferry service install")) ||
      !Step(EnableCommand(), NextSteps(Joined(EnableCommand())))) {
    return 1;
  }
  std::printf("ferryd runs as a systemd user service (ExecStart=%s); `ferry status` shows it\n",
              ferryd.c_str());
  return 0;
}

int Uninstall(bool dry_run) {
  const std::string dir = UnitDir();
  const std::string paths[] = {dir + "/ferryd.service", dir + "/ferryd.socket"};
  if (dry_run) {
    std::printf("would run: %s\n", Joined(DisableCommand()).c_str());
    for (const auto& path : paths) std::printf("would remove %s\n", path.c_str());
    std::printf("would run: %s\n", Joined(ReloadCommand()).c_str());
    return 0;
  }
  std::string why;
  const bool manager = ManagerAnswers(&why);
  // Disable before removing: systemctl needs the unit files to find the symlinks to remove.
  if (manager && !Step(DisableCommand(), NextSteps("ferry service uninstall"))) return 1;
  for (const auto& path : paths) {
    if (::unlink(path.c_str()) == 0) {
      std::printf("removed %s\n", path.c_str());
    } else if (errno == ENOENT) {
      std::printf("not installed: %s\n", path.c_str());
    } else {
      Complain("cannot remove " + path + ": " + std::strerror(errno));
      return 1;
    }
  }
  if (manager) {
    if (!Step(ReloadCommand(), NextSteps(Joined(ReloadCommand())))) return 1;
  } else {
    std::printf("no systemd user manager answered (%s); if one runs later, run:\n  %s\n",
                why.c_str(), Joined(ReloadCommand()).c_str());
  }
  std::printf("the state directory (the journal) is kept; remove it yourself if unwanted\n");
  return 0;
}

}  // namespace

int RunService(int argc, char** argv) {
  ServiceArgs a;
  std::string error;
  switch (ParseServiceArgs(argc, argv, &a, &error)) {
    case Parsed::kError:
      Complain(error);
      return kUsageExitCode;
    case Parsed::kHelp:
      std::fputs(kServiceHelp, stdout);
      return 0;
    case Parsed::kRun:
      break;
  }
  const std::string& action = a.action;
  const std::string& ferryd = a.ferryd;
  const bool dry_run = a.dry_run;
  return action == "install" ? Install(dry_run, ferryd) : Uninstall(dry_run);
}

}  // namespace ferry::client
