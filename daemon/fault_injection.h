// Test-only fault points for the journal's write and fdatasync calls (STYLE.md §7,
// "fail-the-n-th-operation"). Unit tests set them directly; ferryd reads them once at start
// from FERRY_TEST_FAULTS="write_fail_after=N,fsync_fail_after=N" so integration tests can make
// a real daemon hit ENOSPC or EIO. Unset, every check is one relaxed atomic load.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

namespace ferry::fault {

enum class Point { kWrite, kSync };

// Fails the operation at `point` once `after` more calls have succeeded (-1: never).
void Arm(Point point, int64_t after, int error_number);
void DisarmAll();
// Returns 0 to proceed, or the errno the operation must fail with.
int Check(Point point);
// Parses the FERRY_TEST_FAULTS syntax; false on a malformed spec.
bool ArmFromSpec(std::string_view spec);

}  // namespace ferry::fault
