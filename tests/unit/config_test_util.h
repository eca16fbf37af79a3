// Loading a config.toml written by a test: shared by config_test.cc and sink_config_test.cc.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "daemon/config/config.h"
#include "tests/unit/test_util.h"

namespace ferry::test {

// Writes `toml` to a fresh config.toml and loads it on top of the defaults.
struct Loaded {
  TempDir dir;
  std::string path = dir.Join("config.toml");
  Config config;
  std::string error;
  bool ok = false;

  explicit Loaded(const std::string& toml) {
    WriteFile(path, toml);
    ok = LoadConfig(path, /*required=*/true, &config, &error);
  }
};

// Loads `toml`, which must fail, and returns the error with the file path replaced by "F".
inline std::string LoadError(const std::string& toml) {
  Loaded l(toml);
  INFO(toml);
  CHECK_FALSE(l.ok);
  REQUIRE(l.error.rfind(l.path + ":", 0) == 0);
  // Appended, not `"F" + ...`: that trips GCC 12's bogus -Wrestrict at -O3
  // (https://gcc.gnu.org/bugzilla/show_bug.cgi?id=105329).
  std::string out = "F";
  out += l.error.substr(l.path.size());
  return out;
}

}  // namespace ferry::test
