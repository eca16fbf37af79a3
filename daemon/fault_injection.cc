#include "daemon/fault_injection.h"

#include <cerrno>
#include <charconv>
#include <string>

namespace ferry::fault {
namespace {

struct FaultPoint {
  std::atomic<int64_t> remaining{-1};
  std::atomic<int> error{0};
};
FaultPoint g_points[2];

FaultPoint& At(Point p) { return g_points[static_cast<int>(p)]; }

}  // namespace

void Arm(Point point, int64_t after, int error_number) {
  At(point).error.store(error_number);
  At(point).remaining.store(after);
}

void DisarmAll() {
  for (auto& p : g_points) p.remaining.store(-1);
}

int Check(Point point) {
  FaultPoint& p = At(point);
  int64_t left = p.remaining.load(std::memory_order_relaxed);
  while (left >= 0) {
    if (left == 0) return p.error.load();
    if (p.remaining.compare_exchange_weak(left, left - 1)) return 0;
  }
  return 0;
}

bool ArmFromSpec(std::string_view spec) {
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    const std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) return false;
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = item.substr(eq + 1);
    int64_t n = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || ptr != value.data() + value.size()) return false;
    if (key == "write_fail_after") {
      Arm(Point::kWrite, n, ENOSPC);
    } else if (key == "fsync_fail_after") {
      Arm(Point::kSync, n, EIO);
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace ferry::fault
