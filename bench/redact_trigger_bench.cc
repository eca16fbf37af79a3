// bench/redact_trigger_bench: what the redaction prefilter costs per string, the byte scan
// ferryd runs (redact::MayHoldTrigger) against the PCRE2 pattern it replaced
// (redact::Trigger(), compiled as the detectors are: UTF, caseless, JIT). docs/benchmarks.md,
// Run O.
//
//   redact_trigger_bench [calls]     (default 1,000,000 per string and method)
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "daemon/redact/detectors.h"

int main(int argc, char** argv) {
  const long calls = argc > 1 ? std::atol(argv[1]) : 1000000;
  if (calls <= 0) {
    std::fprintf(stderr, "usage: redact_trigger_bench [calls]\n");
    return 2;
  }
  const std::string pattern = ferry::redact::Trigger();
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                 PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C,
                                 &error, &offset, nullptr);
  if (re == nullptr) return 1;
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  struct Case {
    const char* name;
    std::string text;
  };
  const std::vector<Case> cases = {
      {"padding (ingest_bench's payload)", std::string(150, 'x')},
      {"English prose",
       "The quick brown fox jumps over the lazy dog while reading the manual page for grep and "
       "sed; then it runs make -j2 in /home/user/src/project and waits. "},
      {"a shell command", "git log --oneline -20 | grep -v merge > /tmp/log.txt"},
      {"hex id", "0123456789abcdef0123456789abcdef"},
  };
  std::printf("%-34s %6s %12s %12s %8s\n", "string", "bytes", "scan ns", "pcre2 ns", "ratio");
  for (const Case& c : cases) {
    using Clock = std::chrono::steady_clock;
    size_t hits = 0;
    auto t0 = Clock::now();
    for (long i = 0; i < calls; ++i) {
      hits += ferry::redact::MayHoldTrigger(c.text);
      asm volatile("" ::: "memory");
    }
    const double scan = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() /
                        static_cast<double>(calls);
    t0 = Clock::now();
    for (long i = 0; i < calls; ++i) {
      hits += pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(c.text.data()), c.text.size(), 0, 0, md,
                          nullptr) >= 0;
    }
    const double jit = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() /
                       static_cast<double>(calls);
    std::printf("%-34s %6zu %12.1f %12.1f %7.1fx%s\n", c.name, c.text.size(), scan, jit, jit / scan,
                hits ? "  (trigger found)" : "");
  }
  pcre2_match_data_free(md);
  pcre2_code_free(re);
  return 0;
}
