// CRC-32C (Castagnoli): the SSE4.2 crc32 instruction when the CPU has it (checked once at
// run time), else software slicing-by-8; both give the same results. Known answers in
// tests/unit/crc32c_test.cc (RFC 3720 B.4). Any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ferry::crc32c {

// Returns the CRC of data[0,n) continuing from the CRC `init` of earlier bytes.
uint32_t Extend(uint32_t init, const char* data, size_t n);
// The two paths, for tests: Extend() uses the hardware one when HardwareAvailable().
uint32_t ExtendSoftware(uint32_t init, const char* data, size_t n);
bool HardwareAvailable();
// Only when HardwareAvailable(); otherwise the same as ExtendSoftware().
uint32_t ExtendHardware(uint32_t init, const char* data, size_t n);

inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }

}  // namespace ferry::crc32c
