// CRC-32C (Castagnoli), software slicing-by-8. Known answers in tests/unit/crc32c_test.cc
// (RFC 3720 B.4). Any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ferry::crc32c {

// Returns the CRC of data[0,n) continuing from the CRC `init` of earlier bytes.
uint32_t Extend(uint32_t init, const char* data, size_t n);
inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }

}  // namespace ferry::crc32c
