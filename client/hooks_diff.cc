// Line diff by longest common subsequence: config files are small, so the O(n*m) table is
// cheap; past a size limit the whole file is shown as replaced, which is still correct.
#include <algorithm>
#include <cstdint>

#include "client/hooks_edit.h"

namespace ferry::client::hooks {
namespace {

struct Line {
  std::string_view text;  // without its newline
  bool newline;           // whether a newline ended it
  bool operator==(const Line& o) const { return text == o.text && newline == o.newline; }
};

std::vector<Line> SplitLines(std::string_view s) {
  std::vector<Line> out;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t end = s.find('\n', pos);
    if (end == std::string_view::npos) {
      out.push_back({s.substr(pos), false});
      break;
    }
    out.push_back({s.substr(pos, end - pos), true});
    pos = end + 1;
  }
  return out;
}

enum class Op { kKeep, kDel, kAdd };

std::vector<std::pair<Op, const Line*>> Script(const std::vector<Line>& a,
                                               const std::vector<Line>& b) {
  std::vector<std::pair<Op, const Line*>> ops;
  const size_t n = a.size(), m = b.size();
  if (n * m > 16'000'000) {
    for (const auto& l : a) ops.push_back({Op::kDel, &l});
    for (const auto& l : b) ops.push_back({Op::kAdd, &l});
    return ops;
  }
  std::vector<uint32_t> lcs((n + 1) * (m + 1), 0);
  auto at = [&](size_t i, size_t j) -> uint32_t& { return lcs[i * (m + 1) + j]; };
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;)
      at(i, j) = a[i] == b[j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      ops.push_back({Op::kKeep, &a[i]});
      ++i, ++j;
    } else if (i < n && (j == m || at(i + 1, j) >= at(i, j + 1))) {
      ops.push_back({Op::kDel, &a[i++]});
    } else {
      ops.push_back({Op::kAdd, &b[j++]});
    }
  }
  return ops;
}

}  // namespace

std::string UnifiedDiff(std::string_view before, std::string_view after, const std::string& name_a,
                        const std::string& name_b) {
  if (before == after) return {};
  const auto a = SplitLines(before), b = SplitLines(after);
  const auto ops = Script(a, b);
  constexpr size_t kContext = 3;
  std::string out = "--- " + name_a + "\n+++ " + name_b + "\n";
  size_t k = 0;
  std::vector<size_t> line_a(ops.size() + 1), line_b(ops.size() + 1);  // 0-based before op k
  for (size_t x = 0, la = 0, lb = 0; x <= ops.size(); ++x) {
    line_a[x] = la, line_b[x] = lb;
    if (x < ops.size()) {
      la += ops[x].first != Op::kAdd;
      lb += ops[x].first != Op::kDel;
    }
  }
  while (k < ops.size()) {
    if (ops[k].first == Op::kKeep) {
      ++k;
      continue;
    }
    // A hunk: from kContext lines before this change to kContext after the last change that
    // is no more than 2*kContext unchanged lines from the next.
    const size_t start = k >= kContext ? k - kContext : 0;
    size_t end = k;
    for (size_t x = k; x < ops.size(); ++x) {
      if (ops[x].first != Op::kKeep) {
        end = x + 1;
      } else if (x - end >= 2 * kContext) {
        break;
      }
    }
    end = std::min(ops.size(), end + kContext);
    size_t count_a = 0, count_b = 0;
    for (size_t x = start; x < end; ++x) {
      count_a += ops[x].first != Op::kAdd;
      count_b += ops[x].first != Op::kDel;
    }
    out += "@@ -" + std::to_string(line_a[start] + (count_a ? 1 : 0)) + "," +
           std::to_string(count_a) + " +" + std::to_string(line_b[start] + (count_b ? 1 : 0)) +
           "," + std::to_string(count_b) + " @@\n";
    for (size_t x = start; x < end; ++x) {
      out += ops[x].first == Op::kKeep ? ' ' : ops[x].first == Op::kDel ? '-' : '+';
      out.append(ops[x].second->text);
      out += '\n';
      if (!ops[x].second->newline) out += "\\ No newline at end of file\n";
    }
    k = end;
  }
  return out;
}

}  // namespace ferry::client::hooks
