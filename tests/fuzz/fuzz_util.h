// Helpers shared by the fuzz targets (tests/fuzz/README.md). FUZZ_CHECK states an invariant:
// when it does not hold, the target prints it and aborts, which libFuzzer (and the replay
// driver) report as a crash with the input saved. Independent of NDEBUG.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond, ...)                                                              \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      ::ferry::fuzz::Explain(__VA_ARGS__);                                                 \
      std::abort();                                                                        \
    }                                                                                      \
  } while (false)

namespace ferry::fuzz {

inline void Explain() {}
inline void Explain(std::string_view what) {
  std::fprintf(stderr, "  %.*s\n", static_cast<int>(what.size() > 2000 ? 2000 : what.size()),
               what.data());
}

// The first byte of an input, used by targets that try the rest several ways; 0 when empty.
inline unsigned char Selector(std::string_view* input) {
  if (input->empty()) return 0;
  const auto c = static_cast<unsigned char>(input->front());
  input->remove_prefix(1);
  return c;
}

}  // namespace ferry::fuzz
