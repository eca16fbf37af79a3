#include "daemon/base/crc32c.h"

#include <catch2/catch.hpp>
#include <string>

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
