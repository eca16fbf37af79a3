#include "daemon/base/crc32c.h"

#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

using ferry::crc32c::Extend;
using ferry::crc32c::Value;

// Known answers from RFC 3720 B.4 (as in leveldb util/crc32c_test.cc).
TEST_CASE("crc32c matches RFC 3720 vectors", "[crc32c]") {
  std::string buf(32, '\0');
  CHECK(Value(buf.data(), buf.size()) == 0x8a9136aau);
  buf.assign(32, '\xff');
  CHECK(Value(buf.data(), buf.size()) == 0x62a8ab43u);
  for (int i = 0; i < 32; ++i) buf[static_cast<size_t>(i)] = static_cast<char>(i);
  CHECK(Value(buf.data(), buf.size()) == 0x46dd794eu);
  for (int i = 0; i < 32; ++i) buf[static_cast<size_t>(i)] = static_cast<char>(31 - i);
  CHECK(Value(buf.data(), buf.size()) == 0x113fdb5cu);
  CHECK(Value("123456789", 9) == 0xe3069283u);
}

TEST_CASE("crc32c extends across any split", "[crc32c]") {
  const std::string s = "hello world, this is a longer string that crosses eight-byte lanes";
  const uint32_t whole = Value(s.data(), s.size());
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    CHECK(Extend(Value(s.data(), cut), s.data() + cut, s.size() - cut) == whole);
  }
}

TEST_CASE("crc32c software and hardware paths agree on the RFC 3720 vectors", "[crc32c]") {
  INFO("hardware path available: " << ferry::crc32c::HardwareAvailable());
  for (auto fn : {&ferry::crc32c::ExtendSoftware, &ferry::crc32c::ExtendHardware}) {
    std::string buf(32, '\0');
    CHECK(fn(0, buf.data(), buf.size()) == 0x8a9136aau);
    buf.assign(32, '\xff');
    CHECK(fn(0, buf.data(), buf.size()) == 0x62a8ab43u);
    for (int i = 0; i < 32; ++i) buf[static_cast<size_t>(i)] = static_cast<char>(i);
    CHECK(fn(0, buf.data(), buf.size()) == 0x46dd794eu);
    for (int i = 0; i < 32; ++i) buf[static_cast<size_t>(i)] = static_cast<char>(31 - i);
    CHECK(fn(0, buf.data(), buf.size()) == 0x113fdb5cu);
    CHECK(fn(0, "123456789", 9) == 0xe3069283u);
  }
}

TEST_CASE("crc32c software and hardware agree on every length 0..300 and alignment 0..7",
          "[crc32c]") {
  std::mt19937 rng(42);
  std::vector<char> buf(300 + 8);
  for (char& c : buf) c = static_cast<char>(rng());
  for (size_t align = 0; align < 8; ++align) {
    for (size_t len = 0; len <= 300; ++len) {
      const char* p = buf.data() + align;
      const uint32_t init = static_cast<uint32_t>(rng());
      REQUIRE(ferry::crc32c::ExtendSoftware(init, p, len) ==
              ferry::crc32c::ExtendHardware(init, p, len));
      REQUIRE(ferry::crc32c::ExtendSoftware(0, p, len) == Value(p, len));
    }
  }
}
