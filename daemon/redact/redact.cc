#include "daemon/redact/redact.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <cstdint>
#include <new>
#include <set>
#include <string_view>
#include <utility>

#include "daemon/redact/detectors.h"

namespace ferry {
namespace {

// Text put in place of the rest of a string when a detector cannot finish matching it (match
// or heap limit): redaction fails closed.
constexpr std::string_view kMatchError = "[REDACTED:match-error]";

std::string Pcre2Message(int code) {
  PCRE2_UCHAR buf[256];
  int n = pcre2_get_error_message(code, buf, sizeof(buf));
  if (n < 0) return "PCRE2 error " + std::to_string(code);
  return std::string(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

struct CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
using CodePtr = std::unique_ptr<pcre2_code, CodeDeleter>;

struct MatchDataDeleter {
  void operator()(pcre2_match_data* md) const { pcre2_match_data_free(md); }
};
using MatchDataPtr = std::unique_ptr<pcre2_match_data, MatchDataDeleter>;

// Compiles `pattern` (UTF, invalid UTF-8 in subjects allowed) and JIT-compiles it when the
// library can; JIT failure is silent (the interpreter runs instead). On error *error is
// "<message> at offset <n>".
CodePtr CompilePattern(std::string_view pattern, std::string* error) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  CodePtr re(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                           PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C, &code,
                           &offset, nullptr));
  if (!re) {
    *error = Pcre2Message(code) + " at offset " + std::to_string(offset);
    return nullptr;
  }
  (void)pcre2_jit_compile(re.get(), PCRE2_JIT_COMPLETE);
  return re;
}

uint32_t CaptureCount(const pcre2_code* code) {
  uint32_t n = 0;
  pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &n);
  return n;
}

}  // namespace

struct Redactor::Impl {
  // A replacement is literal text and group references ($1, ${2}, ${name}, $name).
  struct Piece {
    std::string literal;
    int group = -1;  // >= 0: the text of this capture group (empty when unset)
  };
  struct Rule {
    std::string name;
    CodePtr code;
    std::vector<Piece> replacement;
  };

  struct MemberRule {
    CodePtr key;
    Rule value;
    bool whole_non_string = false;  // a number or non-empty array under the key: replaced
  };

  std::vector<Rule> rules;               // built-in first, then the user's, in order
  size_t builtin_count = 0;              // rules[0, builtin_count) are the built-ins
  std::vector<MemberRule> member_rules;  // with the built-in detectors only
  uint32_t ovector_pairs = 1;

  MatchDataPtr NewMatchData() const {
    MatchDataPtr md(pcre2_match_data_create(ovector_pairs, nullptr));
    if (!md) throw std::bad_alloc();
    return md;
  }

  size_t Apply(const Rule& rule, std::string* text, pcre2_match_data* md) const;
  // False when no built-in detector can match `text` (see redact::MayHoldTrigger).
  bool MayHoldBuiltin(std::string_view text) const {
    return builtin_count > 0 && redact::MayHoldTrigger(text);
  }
  size_t RedactText(std::string* text, pcre2_match_data* md) const {
    size_t n = 0;
    const size_t first = MayHoldBuiltin(*text) ? 0 : builtin_count;
    for (size_t i = first; i < rules.size(); ++i) n += Apply(rules[i], text, md);
    return n;
  }
  size_t RedactValue(rapidjson::Value* value, rapidjson::Document::AllocatorType& alloc,
                     pcre2_match_data* md) const;
  size_t RedactMember(rapidjson::Value* key, rapidjson::Value* value,
                      rapidjson::Document::AllocatorType& alloc, pcre2_match_data* md) const;
};

namespace {

// Parses a user replacement in PCRE2 substitution syntax: `$$`, `$<n>`, `${<n>}`, where <n>
// is a group number or name of `code`. Anything else after `$` is an error.
bool ParseReplacement(std::string_view text, const pcre2_code* code,
                      std::vector<Redactor::Impl::Piece>* out, std::string* error) {
  const uint32_t groups = CaptureCount(code);
  auto is_name_char = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  };
  std::string literal;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '$') {
      literal += text[i++];
      continue;
    }
    const size_t dollar = i++;
    if (i < text.size() && text[i] == '$') {
      literal += '$';
      ++i;
      continue;
    }
    std::string_view ref;
    if (i < text.size() && text[i] == '{') {
      size_t close = text.find('}', i + 1);
      if (close == std::string_view::npos) {
        *error = "missing } after ${ at offset " + std::to_string(dollar);
        return false;
      }
      ref = text.substr(i + 1, close - i - 1);
      i = close + 1;
    } else {
      size_t end = i;
      if (end < text.size() && text[end] >= '0' && text[end] <= '9') {
        while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
      } else {
        while (end < text.size() && is_name_char(text[end])) ++end;
      }
      ref = text.substr(i, end - i);
      i = end;
    }
    if (ref.empty()) {
      *error = "$ at offset " + std::to_string(dollar) +
               " is not followed by a group number, a group name or $";
      return false;
    }
    int group = -1;
    if (ref[0] >= '0' && ref[0] <= '9') {
      uint64_t n = 0;
      for (char c : ref) {
        if (c < '0' || c > '9' || n > groups) {
          n = UINT64_MAX;
          break;
        }
        n = n * 10 + static_cast<uint64_t>(c - '0');
      }
      if (n > groups) {
        *error = "unknown group " + std::string(ref);
        return false;
      }
      group = static_cast<int>(n);
    } else {
      for (char c : ref) {
        if (!is_name_char(c)) {
          *error = "bad group name \"" + std::string(ref) + "\"";
          return false;
        }
      }
      std::string name(ref);
      int n = pcre2_substring_number_from_name(code, reinterpret_cast<PCRE2_SPTR>(name.c_str()));
      if (n < 0) {
        *error = (n == PCRE2_ERROR_NOUNIQUESUBSTRING ? "ambiguous group name \""
                                                     : "unknown group name \"") +
                 name + "\"";
        return false;
      }
      group = n;
    }
    if (!literal.empty()) out->push_back({std::move(literal), -1});
    literal.clear();
    out->push_back({std::string(), group});
  }
  if (!literal.empty()) out->push_back({std::move(literal), -1});
  return true;
}

// Moves past one character: one byte, then any UTF-8 continuation bytes.
PCRE2_SIZE NextChar(const std::string& s, PCRE2_SIZE at) {
  ++at;
  while (at < s.size() && (static_cast<unsigned char>(s[at]) & 0xC0) == 0x80) ++at;
  return at;
}

}  // namespace

size_t Redactor::Impl::Apply(const Rule& rule, std::string* text, pcre2_match_data* md) const {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text->data());
  const PCRE2_SIZE length = text->size();
  std::string out;
  PCRE2_SIZE copied = 0;  // text[0, copied) is in `out` (or replaced)
  PCRE2_SIZE start = 0;
  uint32_t options = 0;
  size_t count = 0;
  while (start <= length) {
    int rc = pcre2_match(rule.code.get(), subject, length, start, options, md, nullptr);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
      // JIT stack or match limit: the interpreter keeps its frames on the heap.
      rc =
          pcre2_match(rule.code.get(), subject, length, start, options | PCRE2_NO_JIT, md, nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (rc < 0 || ov[0] < copied || ov[1] < ov[0]) {
      // Fails closed: nothing after `copied` leaves unredacted.
      out.append(text->data() + copied, start >= copied ? start - copied : 0);
      out.append(kMatchError);
      copied = length;
      ++count;
      break;
    }
    const PCRE2_SIZE match_start = ov[0];
    const PCRE2_SIZE match_end = ov[1];
    const uint32_t set = rc == 0 ? ovector_pairs : static_cast<uint32_t>(rc);
    out.append(text->data() + copied, match_start - copied);
    for (const Piece& piece : rule.replacement) {
      if (piece.group < 0) {
        out += piece.literal;
      } else if (static_cast<uint32_t>(piece.group) < set) {
        const auto g = static_cast<size_t>(piece.group);
        if (ov[2 * g] != PCRE2_UNSET && ov[2 * g + 1] >= ov[2 * g]) {
          out.append(text->data() + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
        }
      }
    }
    copied = match_end;
    ++count;
    if (match_end == match_start) {
      if (match_end == start && (options & PCRE2_NOTEMPTY_ATSTART) != 0) {
        // No progress (cannot happen with PCRE2's rules; a guard against looping).
        if (start >= length) break;
        start = NextChar(*text, start);
        options = 0;
        continue;
      }
      options = PCRE2_NOTEMPTY_ATSTART;  // next: a non-empty match here, or a later one
    } else {
      options = 0;
    }
    start = match_end;
  }
  if (count == 0) return 0;
  out.append(text->data() + copied, length - copied);
  text->swap(out);
  return count;
}

size_t Redactor::Impl::RedactValue(rapidjson::Value* value,
                                   rapidjson::Document::AllocatorType& alloc,
                                   pcre2_match_data* md) const {
  const std::string_view view(value->GetString(), value->GetStringLength());
  if (view.empty() || (rules.size() == builtin_count && !MayHoldBuiltin(view))) return 0;
  std::string text(view);
  size_t n = RedactText(&text, md);
  if (n > 0) value->SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()), alloc);
  return n;
}

size_t Redactor::Impl::RedactMember(rapidjson::Value* key, rapidjson::Value* value,
                                    rapidjson::Document::AllocatorType& alloc,
                                    pcre2_match_data* md) const {
  for (const MemberRule& rule : member_rules) {
    if (pcre2_match(rule.key.get(), reinterpret_cast<PCRE2_SPTR>(key->GetString()),
                    key->GetStringLength(), 0, 0, md, nullptr) < 0) {
      continue;
    }
    if (!value->IsString()) {
      const bool filled = value->IsNumber() || (value->IsArray() && !value->Empty());
      if (!rule.whole_non_string || !filled) return 0;
      const std::string& text = rule.value.replacement[0].literal;
      value->SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()), alloc);
      return 1;
    }
    std::string text(value->GetString(), value->GetStringLength());
    size_t n = Apply(rule.value, &text, md);
    if (n > 0) {
      value->SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()), alloc);
    }
    return n;
  }
  return 0;
}

Redactor::Redactor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Redactor::~Redactor() = default;

Status Redactor::Compile(const RedactOptions& options, std::shared_ptr<const Redactor>* out) {
  auto impl = std::make_unique<Impl>();
  std::set<std::string> names;
  std::set<std::string> builtin_names;
  std::string error;
  if (options.builtin) {
    for (redact::Builtin& b : redact::Builtins()) {
      CodePtr code = CompilePattern(b.pattern, &error);
      if (!code) {
        return Status::InvalidArgument("redact built-in \"" + std::string(b.name) +
                                       "\": pattern: " + error);
      }
      names.insert(b.name);
      builtin_names.insert(b.name);
      impl->rules.push_back(
          {b.name, std::move(code), {{"[REDACTED:" + std::string(b.name) + "]", -1}}});
    }
    impl->builtin_count = impl->rules.size();
    for (redact::MemberDetector& m : redact::MemberDetectors()) {
      CodePtr key = CompilePattern(m.key, &error);
      CodePtr value = key ? CompilePattern(m.value, &error) : nullptr;
      if (!value) {
        return Status::InvalidArgument("redact built-in \"" + std::string(m.name) +
                                       "\": member pattern: " + error);
      }
      impl->member_rules.push_back(
          {std::move(key),
           {m.name, std::move(value), {{"[REDACTED:" + std::string(m.name) + "]", -1}}},
           m.whole_non_string});
    }
  }
  for (const RedactRule& rule : options.rules) {
    if (rule.name.empty()) return Status::InvalidArgument("redact rule: empty name");
    const std::string what = "redact rule \"" + rule.name + "\": ";
    if (!names.insert(rule.name).second) {
      return Status::InvalidArgument(what + "duplicate name" +
                                     (builtin_names.count(rule.name) != 0
                                          ? std::string(" (a built-in detector has it)")
                                          : std::string()));
    }
    if (rule.pattern.empty()) return Status::InvalidArgument(what + "pattern: empty");
    CodePtr code = CompilePattern(rule.pattern, &error);
    if (!code) return Status::InvalidArgument(what + "pattern: " + error);
    uint32_t min_length = 0;
    pcre2_pattern_info(code.get(), PCRE2_INFO_MINLENGTH, &min_length);
    if (min_length == 0) {
      return Status::InvalidArgument(what + "pattern: can match an empty string");
    }
    Impl::Rule compiled{rule.name, std::move(code), {}};
    if (!ParseReplacement(rule.replacement.empty() ? std::string_view("[REDACTED]")
                                                   : std::string_view(rule.replacement),
                          compiled.code.get(), &compiled.replacement, &error)) {
      return Status::InvalidArgument(what + "replacement: " + error);
    }
    impl->rules.push_back(std::move(compiled));
  }
  for (const Impl::Rule& rule : impl->rules) {
    impl->ovector_pairs = std::max(impl->ovector_pairs, CaptureCount(rule.code.get()) + 1);
  }
  out->reset(new Redactor(std::move(impl)));
  return Status::Ok();
}

size_t Redactor::RedactString(std::string* text) const {
  if (impl_->rules.empty() || text->empty()) return 0;
  MatchDataPtr md = impl_->NewMatchData();
  return impl_->RedactText(text, md.get());
}

size_t Redactor::RedactJson(rapidjson::Value* value,
                            rapidjson::Document::AllocatorType& alloc) const {
  if (impl_->rules.empty()) return 0;
  MatchDataPtr md = impl_->NewMatchData();
  size_t n = 0;
  // Iterative, so a deeply nested document cannot exhaust the stack.
  std::vector<rapidjson::Value*> stack{value};
  while (!stack.empty()) {
    rapidjson::Value* v = stack.back();
    stack.pop_back();
    if (v->IsString()) {
      n += impl_->RedactValue(v, alloc, md.get());
    } else if (v->IsArray()) {
      for (auto& element : v->GetArray()) stack.push_back(&element);
    } else if (v->IsObject()) {
      for (auto& member : v->GetObject()) {
        n += impl_->RedactValue(&member.name, alloc, md.get());
        if (!member.value.IsString()) {
          // {"password": 1234} or [...]: replaced whole; anything else is walked into.
          const size_t whole =
              member.value.IsNumber() || member.value.IsArray()
                  ? impl_->RedactMember(&member.name, &member.value, alloc, md.get())
                  : 0;
          if (whole == 0) stack.push_back(&member.value);
          n += whole;
          continue;
        }
        n += impl_->RedactValue(&member.value, alloc, md.get());
        n += impl_->RedactMember(&member.name, &member.value, alloc, md.get());
      }
    }
  }
  return n;
}

bool Redactor::MayChange(const rapidjson::Value& value) const {
  if (impl_->rules.empty()) return false;
  if (impl_->rules.size() > impl_->builtin_count) return true;  // user rules: no prefilter
  // Every text match holds a trigger, and every member detector's key does too (its names
  // are among the trigger words), so strings and keys without one cannot change. The walk's
  // stack lives on the thread's stack up to 64 entries (an envelope needs ~20): this runs for
  // every event before its ACK.
  boost::container::small_vector<const rapidjson::Value*, 64> stack{&value};
  while (!stack.empty()) {
    const rapidjson::Value* v = stack.back();
    stack.pop_back();
    if (v->IsString()) {
      if (impl_->MayHoldBuiltin(std::string_view(v->GetString(), v->GetStringLength()))) {
        return true;
      }
    } else if (v->IsArray()) {
      for (const auto& element : v->GetArray()) stack.push_back(&element);
    } else if (v->IsObject()) {
      for (const auto& member : v->GetObject()) {
        stack.push_back(&member.name);
        stack.push_back(&member.value);
      }
    }
  }
  return false;
}

std::vector<std::string> Redactor::rule_names() const {
  std::vector<std::string> names;
  names.reserve(impl_->rules.size());
  for (const Impl::Rule& rule : impl_->rules) names.push_back(rule.name);
  return names;
}

}  // namespace ferry
