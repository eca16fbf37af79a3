// Fuzz target: ferryd's config parser (daemon/config/config.h, ParseConfigText: toml++ and every
// key's checks), on the text of a config.toml. An accepted config then goes where ferryd
// sends it: its [redact] rules are compiled (Redactor::Compile, user patterns included) and
// it is diffed against the defaults and itself (DiffConfig, as a SIGHUP reload does).
//
// Invariants: nothing crashes or throws; a refusal has a message naming the file; an
// accepted config keeps its values within the documented bounds (segment size >= 4096,
// max_frame 1 KiB..64 MiB, every sink with a name, a type and a URL); a config diffed
// against itself has no changes.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "daemon/config/config.h"
#include "daemon/redact/redact.h"
#include "tests/fuzz/fuzz_util.h"

namespace ferry {
namespace {

void Run(std::string_view text) {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)quiet;
  Config config;
  std::string error;
  if (!ParseConfigText(text, "fuzz.toml", &config, &error)) {
    FUZZ_CHECK(error.rfind("fuzz.toml", 0) == 0, error);
    return;
  }
  FUZZ_CHECK(error.empty(), error);
  FUZZ_CHECK(config.segment_bytes >= 4096);
  FUZZ_CHECK(config.max_frame_bytes >= 1024 && config.max_frame_bytes <= (64ull << 20));
  FUZZ_CHECK(config.max_connections >= 1 && config.max_batch_events >= 1);
  for (const SinkConfig& sink : config.sinks) {
    FUZZ_CHECK(!sink.name.empty() && !sink.type.empty() && !sink.url.empty(), sink.name);
    (void)sink.EndpointUrl();
  }
  std::shared_ptr<const Redactor> redactor;
  const Status compiled = Redactor::Compile(config.redact, &redactor);
  if (!compiled.ok()) FUZZ_CHECK(!compiled.ToString().empty());
  FUZZ_CHECK(DiffConfig(config, config).empty());
  FUZZ_CHECK(DiffConfig(config, config).sinks_changed.empty());
  (void)DiffConfig(Config(), config);
}

}  // namespace
}  // namespace ferry

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ferry::Run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
