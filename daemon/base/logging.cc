#include "daemon/base/logging.h"

#include <sys/stat.h>

#include <cstdlib>
#include <memory>
#include <string_view>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace ferry {
namespace {

// "%*" in the journal pattern: the sd-daemon(3) priority prefix journald parses.
class SyslogPriorityFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string_view prefix;
    switch (msg.level) {
      case spdlog::level::trace:
      case spdlog::level::debug:
        prefix = "<7>";
        break;
      case spdlog::level::info:
        prefix = "<6>";
        break;
      case spdlog::level::warn:
        prefix = "<4>";
        break;
      case spdlog::level::err:
        prefix = "<3>";
        break;
      case spdlog::level::critical:
        prefix = "<2>";
        break;
      default:
        prefix = "<6>";
        break;
    }
    dest.append(prefix.data(), prefix.data() + prefix.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<SyslogPriorityFlag>();
  }
};

bool ParseUnsigned(std::string_view text, unsigned long long* out) {
  if (text.empty()) return false;
  unsigned long long v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<unsigned long long>(c - '0');
    if (v > (~0ull - digit) / 10) return false;
    v = v * 10 + digit;
  }
  *out = v;
  return true;
}

}  // namespace

bool IsJournalStream(const char* journal_stream, int fd) {
  if (!journal_stream) return false;
  const std::string_view value(journal_stream);
  const size_t colon = value.find(':');
  unsigned long long dev = 0, ino = 0;
  if (colon == std::string_view::npos || !ParseUnsigned(value.substr(0, colon), &dev) ||
      !ParseUnsigned(value.substr(colon + 1), &ino)) {
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

void SetUpLogging(const std::string& level) {
  auto logger = spdlog::stderr_logger_mt("ferryd");
  if (IsJournalStream(std::getenv("JOURNAL_STREAM"), 2)) {
    // journald stamps each line itself and takes the level from the prefix.
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<SyslogPriorityFlag>('*').set_pattern("%*%v");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e ferryd[%P] %l: %v");
  }
  spdlog::set_default_logger(logger);
  SetLogLevel(level);
  spdlog::flush_on(spdlog::level::trace);
}

bool SetLogLevel(const std::string& level) {
  const auto parsed = spdlog::level::from_str(level);
  // from_str answers "off" for any name it does not know.
  if (parsed == spdlog::level::off && level != "off") return false;
  spdlog::set_level(parsed);
  return true;
}

}  // namespace ferry
