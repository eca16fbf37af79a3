// bench/redact_trigger_bench: what the redaction prefilter costs per string, the scan ferryd
// runs (redact::MayHoldTrigger: 16-byte candidates, then the pair table), the pair table alone
// (MayHoldTriggerBytewise, Run O's scan) and the PCRE2 pattern both replaced (redact::Trigger(),
// compiled as the detectors are: UTF, caseless, JIT). docs/benchmarks.md, Runs O and Q.
//
//   redact_trigger_bench [calls]     (default 1,000,000 per 150-byte string and method; fewer
//                                      for longer strings, the same bytes in all)
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "daemon/redact/detectors.h"

namespace {

std::string Repeat(const std::string& piece, size_t size) {
  std::string out;
  while (out.size() + piece.size() <= size) out += piece;
  return out;
}

}  // namespace

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
      {"source code, 20 KB (a Read tool's output)",
       Repeat("  const size_t n = Flush(buffer_, \"journal\");\n", 20 << 10)},
      {"English prose, 20 KB",
       Repeat(
           "The quick brown fox jumps over the lazy dog while reading the manual page for grep and "
           "sed; then it runs make -j2 in /home/user/src/project and waits. ",
           20 << 10)},
  };
  std::printf("%-44s %6s %10s %10s %10s %9s %9s\n", "string", "bytes", "scan ns", "bytewise",
              "pcre2 ns", "ns/byte", "vs pcre2");
  for (const Case& c : cases) {
    using Clock = std::chrono::steady_clock;
    const long n = std::max<long>(1, calls * 150 / static_cast<long>(c.text.size()));
    size_t hits = 0;
    auto time = [&](auto&& fn) {
      const auto t0 = Clock::now();
      for (long i = 0; i < n; ++i) {
        hits += fn();
        asm volatile("" ::: "memory");
      }
      return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() /
             static_cast<double>(n);
    };
    const double scan = time([&] { return ferry::redact::MayHoldTrigger(c.text); });
    const double bytewise = time([&] { return ferry::redact::MayHoldTriggerBytewise(c.text); });
    const double jit = time([&] {
      return pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(c.text.data()), c.text.size(), 0, 0, md,
                         nullptr) >= 0;
    });
    std::printf("%-44s %6zu %10.1f %10.1f %10.1f %9.2f %8.1fx%s\n", c.name, c.text.size(), scan,
                bytewise, jit, scan / static_cast<double>(c.text.size()), jit / scan,
                hits ? "  (trigger found)" : "");
  }
  pcre2_match_data_free(md);
  pcre2_code_free(re);
  return 0;
}
