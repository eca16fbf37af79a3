#include "proto/event.h"

#include <sys/random.h>
#if defined(__SSE2__)
#include <emmintrin.h>  // MayHoldSurrogateEscape
#endif

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <iterator>
#include <limits>
#include <span>
#include <type_traits>

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include "proto/json_stream.h"

namespace ferry::proto {
namespace {

// Forwards SAX events to a Document while counting depth, so the iterative reader can
// refuse a document nested deeper than the limit before anything recursive sees it. With an
// envelope depth, it also records where each envelope's "payload" member lies in the text
// (the reader calls Start/End handlers before it takes the bracket, and the others after
// their token), and lets a payload nest deeper than kMaxPayloadDepth by handing the
// document one null in place of each container beyond that depth. `Target` is a rapidjson
// handler: the Document being built, or MemberStrings (ScanPayloadJson).
template <class Target>
class DepthLimitedHandler {
 public:
  DepthLimitedHandler(Target& doc, int max_depth, std::string_view text, const JsonStream* stream,
                      int envelope_depth, std::vector<PayloadSpan>* spans)
      : doc_(doc),
        max_depth_(max_depth),
        text_(text),
        stream_(stream),
        envelope_depth_(envelope_depth),
        check_surrogates_(MayHoldSurrogateEscape(text)),
        spans_(spans) {}

  bool Null() { return Scalar() && (skip_ || doc_.Null()); }
  bool Bool(bool b) { return Scalar() && (skip_ || doc_.Bool(b)); }
  bool Int(int i) { return Scalar() && (skip_ || doc_.Int(i)); }
  bool Uint(unsigned u) { return Scalar() && (skip_ || doc_.Uint(u)); }
  bool Int64(int64_t i) { return Scalar() && (skip_ || doc_.Int64(i)); }
  bool Uint64(uint64_t u) { return Scalar() && (skip_ || doc_.Uint64(u)); }
  bool Double(double d) { return Scalar() && (skip_ || doc_.Double(d)); }
  // The reader hands every number over as text (kParseNumbersAsStringsFlag): rapidjson 1.1's
  // own conversion runs __builtin_clzll(0) for a zero mantissa with an exponent (0e-77 came
  // out as 8.96e102; found by tests/fuzz), so numbers are converted here with from_chars,
  // which rounds correctly, into the same kinds rapidjson would pick.
  bool RawNumber(const char* s, rapidjson::SizeType n, bool /*copy*/) {
    if (!Scalar()) return false;
    if (skip_) return true;
    const char* end = s + n;
    const bool integral =
        std::find_if(s, end, [](char c) { return c == '.' || c == 'e' || c == 'E'; }) == end;
    if (integral && !(n == 2 && s[0] == '-' && s[1] == '0')) {
      if (s[0] == '-') {
        int64_t v = 0;
        if (auto r = std::from_chars(s, end, v); r.ec == std::errc() && r.ptr == end) {
          return v >= std::numeric_limits<int32_t>::min() ? doc_.Int(static_cast<int>(v))
                                                          : doc_.Int64(v);
        }
      } else {
        uint64_t v = 0;
        if (auto r = std::from_chars(s, end, v); r.ec == std::errc() && r.ptr == end) {
          return v <= std::numeric_limits<uint32_t>::max() ? doc_.Uint(static_cast<unsigned>(v))
                                                           : doc_.Uint64(v);
        }
      }
    }
    double d = 0;
    const auto r = std::from_chars(s, end, d);
    if (r.ec == std::errc::result_out_of_range) {
      // Underflow (1e-400) is a zero, as rapidjson reads it; overflow is refused.
      const char* e = std::find_if(s, end, [](char c) { return c == 'e' || c == 'E'; });
      if (e != end && e + 1 != end && e[1] == '-') return doc_.Double(s[0] == '-' ? -0.0 : 0.0);
      number_too_big_at_ = stream_->Tell() - n;
      number_too_big_ = true;
      return false;
    }
    if (r.ec != std::errc() || r.ptr != end) return false;
    return doc_.Double(d);
  }
  bool number_too_big() const { return number_too_big_; }
  size_t number_too_big_at() const { return number_too_big_at_; }
  bool String(const char* s, rapidjson::SizeType n, bool copy) {
    if (skip_) return Scalar();
    return CheckSurrogates(s, n) && Scalar() && doc_.String(s, n, copy);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) {
    if (skip_) return true;
    if (spans_ && depth_ == envelope_depth_ && std::string_view(s, n) == "payload") {
      // The value starts after the key's closing quote, the colon and any whitespace.
      size_t at = stream_->Tell();
      while (at < text_.size() && (text_[at] == ':' || text_[at] == ' ' || text_[at] == '\t' ||
                                   text_[at] == '\n' || text_[at] == '\r'))
        ++at;
      in_payload_ = true;
      payload_begin_ = at;
    }
    return CheckSurrogates(s, n) && doc_.Key(s, n, copy);
  }
  // The reader calls StartObject and EndObject before it takes the bracket: Tell() is at it.
  bool StartObject() {
    if (!Open()) return false;
    if (skip_) return skip_ > 1 || doc_.Null();
    if (spans_ && depth_ == envelope_depth_) spans_->emplace_back().object_begin = stream_->Tell();
    return doc_.StartObject();
  }
  bool EndObject(rapidjson::SizeType n) {
    const bool forward = !skip_;
    if (forward && spans_ && depth_ == envelope_depth_ && !spans_->empty()) {
      spans_->back().object_end = stream_->Tell() + 1;
    }
    Close();
    return !forward || (doc_.EndObject(n) && ClosedValue());
  }
  bool StartArray() {
    if (!Open()) return false;
    if (skip_) return skip_ > 1 || doc_.Null();
    return doc_.StartArray();
  }
  bool EndArray(rapidjson::SizeType n) {
    const bool forward = !skip_;
    Close();
    return !forward || (doc_.EndArray(n) && ClosedValue());
  }
  bool too_deep() const { return too_deep_; }
  bool lone_surrogate() const { return lone_surrogate_; }

 private:
  // A container opens: depth_ counts it. Inside a payload, one beyond kMaxPayloadDepth starts
  // (or deepens) a skipped part; elsewhere one beyond the limit fails the parse.
  bool Open() {
    ++depth_;
    if (skip_) {
      ++skip_;
      return true;
    }
    if (in_payload_ && depth_ - envelope_depth_ > kMaxPayloadDepth) {
      skip_ = 1;
      if (!spans_->empty()) spans_->back().too_deep = true;
      return true;
    }
    if (depth_ > max_depth_) {
      too_deep_ = true;
      return false;
    }
    return true;
  }
  // A container closes: ends a skipped part (its null was handed over when it opened).
  void Close() {
    --depth_;
    if (skip_ && --skip_ == 0) ClosedValue(/*bracket=*/true);
  }
  // A scalar, or a container whose end was handed over, completed a value.
  bool Scalar() {
    if (!skip_) ClosedValue(/*bracket=*/false);
    return true;
  }
  bool ClosedValue(bool bracket = true) {
    if (in_payload_ && depth_ == envelope_depth_) {
      in_payload_ = false;
      if (!spans_->empty()) {
        spans_->back().begin = payload_begin_;
        spans_->back().end = stream_->Tell() + (bracket ? 1 : 0);
      }
    }
    return true;
  }

  // rapidjson 1.1 refuses a lone high surrogate escape but decodes a lone low one
  // ("\udc00") into the bytes ED B0 80, which are not UTF-8: the envelope would be accepted
  // and written to the journal as text no reader can parse. The raw input is already
  // validated, so an ED A0..ED BF sequence can only have come from such an escape.
  // Only an escape can produce those bytes, so text without a `\uD`/`\ud` skips the check
  // (MayHoldSurrogateEscape: one pass over the input instead of one memchr per string).
  bool CheckSurrogates(const char* s, rapidjson::SizeType n) {
    if (!check_surrogates_) return true;
    const char* end = s + n;
    for (const char* p = s;
         (p = static_cast<const char*>(std::memchr(p, 0xed, static_cast<size_t>(end - p)))); ++p) {
      if (p + 1 < end && static_cast<unsigned char>(p[1]) >= 0xa0) {
        lone_surrogate_ = true;
        return false;
      }
    }
    return true;
  }

  Target& doc_;
  const int max_depth_;
  const std::string_view text_;
  const JsonStream* const stream_;
  const int envelope_depth_;  // 0 with no spans
  const bool check_surrogates_;
  bool number_too_big_ = false;
  size_t number_too_big_at_ = 0;
  std::vector<PayloadSpan>* const spans_;  // null: no envelopes to look for
  int depth_ = 0;
  int skip_ = 0;  // > 0: inside a payload's part beyond kMaxPayloadDepth, this many deep
  bool in_payload_ = false;
  size_t payload_begin_ = 0;
  bool too_deep_ = false;
  bool lone_surrogate_ = false;
};

bool Fail(Error* error, Errc code, std::string message) {
  error->code = code;
  error->message = std::move(message);
  return false;
}

std::string Field(std::string_view where, std::string_view name) {
  std::string s(where);
  s += '.';
  s += name;
  return s;
}

bool CheckString(const rapidjson::Value& v, std::string_view where, std::string_view name,
                 size_t max_len, bool non_empty, Error* error) {
  if (!v.IsString()) return Fail(error, Errc::kWrongType, Field(where, name) + " must be a string");
  const size_t len = v.GetStringLength();
  if (non_empty && len == 0) return Fail(error, Errc::kBadValue, Field(where, name) + " is empty");
  if (len > max_len) {
    return Fail(error, Errc::kBadValue,
                Field(where, name) + " is " + std::to_string(len) + " bytes; the limit is " +
                    std::to_string(max_len));
  }
  return true;
}

// The envelope's fields in canonical (journal) order; the first kRequiredFields are required.
constexpr std::string_view kEnvelopeFields[] = {
    "id",        "ts",        "source",           "kind",           "session", "cwd", "host", "pid",
    "truncated", "orig_size", "payload_encoding", "source_claimed", "payload"};
constexpr size_t kRequiredFields = 4;
static_assert(kEnvelopeFields[0] == "id" && kEnvelopeFields[1] == "ts" &&
                  kEnvelopeFields[2] == "source" && kEnvelopeFields[3] == "kind" &&
                  kEnvelopeFields[4] == "session" && kEnvelopeFields[5] == "cwd" &&
                  kEnvelopeFields[6] == "host" && kEnvelopeFields[7] == "pid" &&
                  kEnvelopeFields[8] == "truncated" && kEnvelopeFields[9] == "orig_size" &&
                  kEnvelopeFields[10] == "payload_encoding" &&
                  kEnvelopeFields[11] == "source_claimed" && kEnvelopeFields[12] == "payload" &&
                  std::size(kEnvelopeFields) == 13,
              "FieldIndex below knows this order");

bool IsIdChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '-';
}

// What ScanPayloadJson's caller wants of a top-level object, as a rapidjson handler: for
// each wanted name, the first member with that name (as FindMember finds it), its value when
// a string, or with first_element the first element of its array value when a string.
class MemberStrings {
 public:
  MemberStrings(std::span<const WantedMember> wanted, std::string* values)
      : wanted_(wanted), values_(values) {}
  bool Null() { return Element(); }
  bool Bool(bool) { return Element(); }
  bool Int(int) { return Element(); }
  bool Uint(unsigned) { return Element(); }
  bool Int64(int64_t) { return Element(); }
  bool Uint64(uint64_t) { return Element(); }
  bool Double(double) { return Element(); }
  bool String(const char* s, rapidjson::SizeType n, bool /*copy*/) {
    if (depth_ == 1 && current_ >= 0 && !wanted_[static_cast<size_t>(current_)].first_element)
      values_[static_cast<size_t>(current_)].assign(s, n);
    if (depth_ == 2 && array_first_) values_[static_cast<size_t>(array_slot_)].assign(s, n);
    return Element();
  }
  bool Key(const char* s, rapidjson::SizeType n, bool /*copy*/) {
    if (depth_ != 1) return true;
    current_ = -1;
    const std::string_view key(s, n);
    for (size_t i = 0; i < wanted_.size() && i < kMaxWanted; ++i) {
      if (wanted_[i].name != key || seen_[i]) continue;
      seen_[i] = true;  // only the first member of a name counts, as FindMember's
      current_ = static_cast<int>(i);
      break;
    }
    return true;
  }
  bool StartObject() {
    Element();
    ++depth_;
    return true;
  }
  bool StartArray() {
    const int slot = depth_ == 1 ? current_ : -1;
    Element();
    ++depth_;
    if (slot >= 0 && wanted_[static_cast<size_t>(slot)].first_element) {
      array_slot_ = slot;
      array_first_ = true;
    }
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    --depth_;
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    if (depth_ == 2) array_first_ = false;  // an empty array
    --depth_;
    return true;
  }
  static constexpr size_t kMaxWanted = 32;

 private:
  // A value starts at depth_: a member's value ends the member; an array's first element
  // ends the wait for it.
  bool Element() {
    if (depth_ == 1) current_ = -1;
    if (depth_ == 2) array_first_ = false;
    return true;
  }
  const std::span<const WantedMember> wanted_;
  std::string* const values_;
  std::array<bool, kMaxWanted> seen_{};
  int depth_ = 0;
  int current_ = -1;  // the wanted member whose value comes next
  int array_slot_ = 0;
  bool array_first_ = false;  // the next element is the first of a wanted array
};

template <class Target>
bool Parse(std::string_view text, Target* target, Error* error, int max_depth, int envelope_depth,
           std::vector<PayloadSpan>* spans) {
  // One pass over the bytes checks UTF-8 (with an ASCII fast path), so the parser need not
  // check every character of every string again. Outside strings a non-ASCII byte is a
  // syntax error either way.
  if (const size_t bad = FirstInvalidUtf8(text); bad != std::string_view::npos) {
    return Fail(error, Errc::kBadJson,
                "invalid JSON at byte " + std::to_string(bad) + ": Invalid encoding in string.");
  }
  if (spans) spans->clear();
  // The reader copies each string into its own stack, which starts at 256 bytes and grows by
  // half at a time: a 20 KB string would be copied through a dozen ever larger blocks. No
  // string is longer than the text, so a stack of the text's size (up to 64 KiB) is never
  // regrown for it.
  rapidjson::Reader reader(nullptr, std::min<size_t>(text.size() + 16, size_t{64} << 10));
  JsonStream stream(text);  // strings read 16 bytes at a time (proto/json_stream.h)
  rapidjson::ParseResult result;
  bool too_deep = false, lone_surrogate = false, too_big = false;
  size_t too_big_at = 0;
  auto generator = [&](Target& d) {
    DepthLimitedHandler<Target> handler(d, max_depth, text, &stream, spans ? envelope_depth : 0,
                                        spans);
    // Numbers arrive as text and are converted by the handler (correctly rounded, and clear
    // of rapidjson's zero-mantissa bug), so a payload's numbers never change in a round trip.
    result = reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag>(
        stream, handler);
    too_deep = handler.too_deep();
    lone_surrogate = handler.lone_surrogate();
    too_big = handler.number_too_big();
    too_big_at = handler.number_too_big_at();
    return !result.IsError();
  };
  if constexpr (std::is_same_v<Target, rapidjson::Document>) {
    target->Populate(generator);
  } else {
    generator(*target);
  }
  // rapidjson takes a NUL byte for the end of the input, so "{}\0junk" would parse as "{}".
  // Anything left over after the value is trailing garbage like any other.
  if (!result.IsError() && stream.Tell() != text.size()) {
    return Fail(error, Errc::kBadJson,
                "invalid JSON at byte " + std::to_string(stream.Tell()) +
                    ": The document root must not be followed by other values.");
  }
  if (!result.IsError()) return true;
  if (lone_surrogate) {
    return Fail(error, Errc::kBadJson,
                "invalid JSON at byte " + std::to_string(result.Offset()) +
                    ": a \\u escape encodes a lone UTF-16 surrogate");
  }
  if (too_big) {
    return Fail(error, Errc::kBadJson,
                "invalid JSON at byte " + std::to_string(too_big_at) +
                    ": Number too big to be stored in double.");
  }
  if (too_deep) {
    return Fail(error, Errc::kBadJson,
                "JSON nested deeper than " + std::to_string(max_depth) + " levels at byte " +
                    std::to_string(result.Offset()));
  }
  return Fail(error, Errc::kBadJson,
              std::string("invalid JSON at byte ") + std::to_string(result.Offset()) + ": " +
                  rapidjson::GetParseError_En(result.Code()));
}

}  // namespace

bool MayHoldSurrogateEscape(std::string_view text) {
  const char* p = text.data();
  const size_t n = text.size();
  size_t i = 0;
#if defined(__SSE2__)
  // 16 positions a step: a backslash at j and a 'u' at j + 1 (a second, unaligned load).
  // Code and tool output have a backslash every few dozen bytes (\n, \"), so a memchr per
  // backslash cost more than this whole pass.
  const __m128i backslash = _mm_set1_epi8('\\'), u = _mm_set1_epi8('u');
  for (; i + 17 <= n; i += 16) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 1));
    auto hits = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, backslash), _mm_cmpeq_epi8(b, u))));
    for (; hits != 0; hits &= hits - 1) {
      const size_t at = i + static_cast<size_t>(__builtin_ctz(hits));
      if (at + 2 < n && (p[at + 2] | 0x20) == 'd') return true;
    }
  }
#endif
  for (; i + 2 < n; ++i) {
    if (p[i] == '\\' && p[i + 1] == 'u' && (p[i + 2] | 0x20) == 'd') return true;
  }
  return false;
}

bool ParseJson(std::string_view text, rapidjson::Document* doc, Error* error) {
  return Parse(text, doc, error, kMaxJsonDepth, 0, nullptr);
}

bool ParsePayloadJson(std::string_view text, rapidjson::Document* doc, Error* error) {
  return Parse(text, doc, error, kMaxPayloadDepth, 0, nullptr);
}

bool ScanPayloadJson(std::string_view text, std::span<const WantedMember> wanted,
                     std::string* values, Error* error) {
  for (size_t i = 0; i < wanted.size(); ++i) values[i].clear();
  MemberStrings members(wanted.first(std::min(wanted.size(), MemberStrings::kMaxWanted)), values);
  return Parse(text, &members, error, kMaxPayloadDepth, 0, nullptr);
}

bool ParseEnvelopes(std::string_view text, int envelope_depth, rapidjson::Document* doc,
                    std::vector<PayloadSpan>* spans, Error* error) {
  return Parse(text, doc, error, kMaxJsonDepth, envelope_depth, spans);
}

void RecycleDocument(rapidjson::Document* doc, size_t keep) {
  if (doc->GetAllocator().Size() <= keep) return;
  doc->SetNull();
  doc->GetAllocator().Clear();
}

std::string CompactJson(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < json.size()) {
        out += json[++i];
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      out += c;
      in_string = c == '"';
    }
  }
  return out;
}

bool IsCompactJson(std::string_view json) {
  // Strings are skipped with memchr to their closing quote (a quote after an odd number of
  // backslashes is escaped): a 20 KB tool output is one string, and this runs for every
  // event before its ACK.
  const char* p = json.data();
  const char* const end = p + json.size();
  while (p < end) {
    const char c = *p++;
    if (c == '"') {
      for (;;) {
        const auto* quote =
            static_cast<const char*>(std::memchr(p, '"', static_cast<size_t>(end - p)));
        if (quote == nullptr) return true;  // not valid JSON; nothing outside a string follows
        const char* run = quote;
        while (run > p && run[-1] == '\\') --run;
        p = quote + 1;
        if ((quote - run) % 2 == 0) break;
      }
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      return false;
    }
  }
  return true;
}

namespace {

// kEnvelopeFields' index of `name`, or kNoField.
constexpr size_t kFieldCount = std::size(kEnvelopeFields);
constexpr size_t kNoField = kFieldCount;
// Every event's every member is looked up here (twice: ValidateEnvelope, WriteEnvelope), so
// the fields are told apart by length and first letter before one compare.
size_t FieldIndex(std::string_view name) {
  auto is = [name](size_t i) { return name == kEnvelopeFields[i] ? i : kNoField; };
  if (name.size() < 2) return kNoField;
  switch (name.size()) {
    case 2:
      return name[0] == 'i' ? is(0) : is(1);  // id, ts
    case 3:
      return name[0] == 'c' ? is(5) : is(7);  // cwd, pid
    case 4:
      return name[0] == 'k' ? is(3) : is(6);  // kind, host
    case 6:
      return is(2);  // source
    case 7:
      return name[0] == 's' ? is(4) : is(12);  // session, payload
    case 9:
      return name[0] == 't' ? is(8) : is(9);  // truncated, orig_size
    case 14:
      return is(11);  // source_claimed
    case 16:
      return is(10);  // payload_encoding
    default:
      return kNoField;
  }
}

}  // namespace

bool ValidateEnvelope(const rapidjson::Value& event, std::string_view where, Error* error) {
  if (!event.IsObject())
    return Fail(error, Errc::kNotObject, std::string(where) + " must be an object");
  // A repeated field is refused: WriteEnvelope keeps only the first, so accepting
  // {"payload":1,"payload":2} would silently drop data (and two ids would defeat dedupe).
  unsigned seen = 0;
  for (auto it = event.MemberBegin(); it != event.MemberEnd(); ++it) {
    const std::string_view name(it->name.GetString(), it->name.GetStringLength());
    const rapidjson::Value& v = it->value;
    const size_t known = FieldIndex(name);
    if (known == kNoField) {
      return Fail(error, Errc::kUnknownField, Field(where, name) + " is not an envelope field");
    }
    const unsigned bit = 1u << known;
    if (seen & bit)
      return Fail(error, Errc::kBadValue, Field(where, name) + " appears more than once");
    seen |= bit;
    if (name == "id") {
      if (!CheckString(v, where, name, kMaxIdLength, true, error)) return false;
      for (size_t i = 0; i < v.GetStringLength(); ++i) {
        if (!IsIdChar(v.GetString()[i])) {
          return Fail(error, Errc::kBadValue,
                      Field(where, name) + " must be hex (128-bit random or UUID)");
        }
      }
    } else if (name == "ts") {
      if (!v.IsInt64() || v.GetInt64() < 0) {
        return Fail(error, Errc::kWrongType,
                    Field(where, name) + " must be a non-negative integer (ns since the epoch)");
      }
    } else if (name == "source" || name == "kind" || name == "source_claimed") {
      if (!CheckString(v, where, name, kMaxNameLength, true, error)) return false;
    } else if (name == "session" || name == "cwd" || name == "host") {
      if (!CheckString(v, where, name, kMaxStringLength, false, error)) return false;
    } else if (name == "pid") {
      if (!v.IsInt64() || v.GetInt64() < 0) {
        return Fail(error, Errc::kWrongType,
                    Field(where, name) + " must be a non-negative integer");
      }
    } else if (name == "truncated") {
      if (!v.IsBool())
        return Fail(error, Errc::kWrongType, Field(where, name) + " must be a boolean");
    } else if (name == "orig_size") {
      if (!v.IsUint64())
        return Fail(error, Errc::kWrongType,
                    Field(where, name) + " must be a non-negative integer");
    } else if (name == "payload_encoding") {
      // "text": the payload is a JSON string holding input that was not JSON (or a cut
      // prefix of it, with truncated). Other encodings may come later; refuse them until then.
      if (!v.IsString() || std::string_view(v.GetString(), v.GetStringLength()) != "text")
        return Fail(error, v.IsString() ? Errc::kBadValue : Errc::kWrongType,
                    Field(where, name) + " must be \"text\"");
    }
    // payload: any JSON value.
  }
  // kEnvelopeFields starts with the required ones, in the order they are reported.
  for (size_t i = 0; i < kRequiredFields; ++i) {
    if (!(seen & (1u << i))) {
      return Fail(error, Errc::kMissingField, Field(where, kEnvelopeFields[i]) + " is required");
    }
  }
  return true;
}

void WriteEnvelope(const rapidjson::Value& event, JsonWriter& writer, std::string_view payload_json,
                   bool payload_as_text, std::string_view relabel) {
  payload_as_text = payload_as_text && !payload_json.empty();
  // One pass over the members (a validated envelope holds each field at most once), then the
  // fields in canonical order.
  std::array<const rapidjson::Value*, kFieldCount> field{};
  for (auto m = event.MemberBegin(); m != event.MemberEnd(); ++m) {
    const size_t i = FieldIndex(std::string_view(m->name.GetString(), m->name.GetStringLength()));
    if (i != kNoField && field[i] == nullptr) field[i] = &m->value;
  }
  writer.StartObject();
  for (size_t i = 0; i < kFieldCount; ++i) {
    const std::string_view key = kEnvelopeFields[i];
    auto write_key = [&] { writer.Key(key.data(), static_cast<rapidjson::SizeType>(key.size())); };
    if (!relabel.empty() && (key == "source" || key == "source_claimed")) {
      // The source worked out from the payload; the client's label kept beside it.
      const rapidjson::Value& claimed = event["source"];
      write_key();
      if (key == "source") {
        writer.String(relabel.data(), static_cast<rapidjson::SizeType>(relabel.size()));
      } else {
        writer.String(claimed.GetString(), claimed.GetStringLength());
      }
      continue;
    }
    if (payload_as_text && key == "payload_encoding") {
      write_key();
      writer.String("text");
      continue;
    }
    const rapidjson::Value* value = field[i];
    if (value == nullptr) continue;
    write_key();
    if (key == "payload" && payload_as_text) {
      writer.String(payload_json.data(), static_cast<rapidjson::SizeType>(payload_json.size()));
    } else if (key == "payload" && !payload_json.empty()) {
      if (IsCompactJson(payload_json)) {
        writer.RawValue(payload_json.data(), payload_json.size(), value->GetType());
      } else {
        const std::string compact = CompactJson(payload_json);
        writer.RawValue(compact.data(), compact.size(), value->GetType());
      }
    } else {
      value->Accept(writer);
    }
  }
  writer.EndObject();
}

bool WritesAsReceived(const rapidjson::Value& event, std::string_view object,
                      std::string_view payload_json) {
  if (!event.IsObject() || object.size() < 2) return false;
  // The payload is written as received when it is compact; the rest must hold no white space
  // (none between tokens, and no string that WriteEnvelope would write differently: one
  // without an escape is written byte for byte) and no backslash.
  size_t payload_at = object.size();
  if (!payload_json.empty()) {
    if (payload_json.data() < object.data() ||
        payload_json.data() + payload_json.size() > object.data() + object.size() ||
        !IsCompactJson(payload_json)) {
      return false;
    }
    payload_at = static_cast<size_t>(payload_json.data() - object.data());
  }
  auto plain = [](std::string_view part) {
    for (const char c : part) {
      if (c == '\\' || c == ' ' || c == '\t' || c == '\n' || c == '\r') return false;
    }
    return true;
  };
  if (!plain(object.substr(0, payload_at)) ||
      !plain(object.substr(std::min(object.size(), payload_at + payload_json.size())))) {
    return false;
  }
  // Canonical order, and values WriteEnvelope writes as they were read: strings, booleans,
  // null, and integers (a number the parser kept as an integer was written in the one form
  // JSON allows for it; "-0", fractions and exponents became doubles).
  size_t last = 0;
  bool first = true;
  bool has_payload = false;
  for (auto m = event.MemberBegin(); m != event.MemberEnd(); ++m) {
    const size_t i = FieldIndex(std::string_view(m->name.GetString(), m->name.GetStringLength()));
    if (i == kNoField || (!first && i <= last)) return false;
    first = false;
    last = i;
    if (kEnvelopeFields[i] == "payload") {
      has_payload = true;
      continue;
    }
    const rapidjson::Value& v = m->value;
    const bool as_read =
        v.IsString() || v.IsBool() || v.IsNull() || (v.IsNumber() && !v.IsDouble());
    if (!as_read) return false;
  }
  return has_payload == !payload_json.empty();
}

namespace {

// A rapidjson output stream that writes into a std::string: the envelope is built in the
// string BuildEventBody returns, not in a buffer copied out at the end. PutReserve and
// PutUnsafe are found by argument-dependent lookup from rapidjson's Writer.
struct StringOutput {
  using Ch = char;
  std::string* out;
  void Put(char c) { out->push_back(c); }
  void Flush() {}
};
inline void PutReserve(StringOutput& s, size_t count) { s.out->reserve(s.out->size() + count); }
inline void PutUnsafe(StringOutput& s, char c) { s.out->push_back(c); }

}  // namespace

std::string EventBodyParts::Join() const {
  std::string body;
  body.reserve(head.size() + payload.size() + tail.size());
  body.append(head).append(payload).append(tail);
  return body;
}

std::string BuildEventBody(const EnvelopeFields& f, bool durable, bool ephemeral) {
  return BuildEventBodyParts(f, durable, ephemeral).Join();
}

EventBodyParts BuildEventBodyParts(const EnvelopeFields& f, bool durable, bool ephemeral) {
  // Sized once for the whole head: grown from a small buffer, it would be copied through ever
  // larger buffers, each in fresh heap pages (a page fault each in a short-lived client).
  EventBodyParts out;
  std::string& body = out.head;
  body.reserve(f.cwd.size() + f.session.size() + f.host.size() + f.source.size() + f.kind.size() +
               256);
  StringOutput sb{&body};
  rapidjson::Writer<StringOutput> w(sb);
  auto str = [&](const char* key, std::string_view v, size_t max_len) {
    const std::string clean = SanitizeUtf8(v, max_len);
    w.Key(key);
    w.String(clean.data(), static_cast<rapidjson::SizeType>(clean.size()));
  };
  w.StartObject();
  w.Key("v");
  w.Uint(1);
  if (durable) {
    w.Key("durable");
    w.Bool(true);
  }
  if (ephemeral) {
    w.Key("ephemeral");
    w.Bool(true);
  }
  w.Key("event");
  w.StartObject();
  str("id", f.id, kMaxIdLength);
  w.Key("ts");
  w.Int64(f.ts);
  str("source", f.source, kMaxNameLength);
  str("kind", f.kind, kMaxNameLength);
  if (!f.session.empty()) str("session", f.session, kMaxStringLength);
  if (!f.cwd.empty()) str("cwd", f.cwd, kMaxStringLength);
  if (!f.host.empty()) str("host", f.host, kMaxStringLength);
  if (f.pid >= 0) {
    w.Key("pid");
    w.Int64(f.pid);
  }
  if (f.truncated) {
    w.Key("truncated");
    w.Bool(true);
    w.Key("orig_size");
    w.Uint64(f.orig_size);
  }
  if (!f.payload_encoding.empty()) str("payload_encoding", f.payload_encoding, kMaxNameLength);
  if (!f.payload_json.empty()) {
    // The payload is the last field: left where it lies, and the two objects closed by hand.
    // (rapidjson's RawValue copies a byte at a time: a push_back for each of a 20 KB tool
    // output's bytes, the largest cost of such a hook's `ferry emit` after start-up.)
    body.append(",\"payload\":");
    out.payload = f.payload_json;
    out.tail = "}}";
    return out;
  }
  w.EndObject();
  w.EndObject();
  return out;
}

// Strings from the OS (a cwd, a host name) and hook input are bytes, not text; the daemon
// refuses invalid UTF-8 and over-long fields, and a hook must not lose its event over either.
namespace {

// Length of the valid UTF-8 sequence at s[i] (1 to 4), or 0 when none starts there:
// overlong forms, UTF-16 surrogates and code points above U+10FFFF are invalid (RFC 3629).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t len = c < 0x80           ? 1
                     : (c >> 5) == 0x6  ? 2
                     : (c >> 4) == 0xe  ? 3
                     : (c >> 3) == 0x1e ? 4
                                        : 0;
  if (len <= 1) return len;
  if (i + len > s.size()) return 0;
  uint32_t cp = c & (0xffu >> (len + 1));
  for (size_t k = 1; k < len; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc >> 6) != 0x2) return 0;
    cp = (cp << 6) | (cc & 0x3fu);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

}  // namespace

size_t FirstInvalidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // Eight ASCII bytes at a time: most of a hook payload is ASCII.
    if (i + 8 <= s.size()) {
      uint64_t word;
      std::memcpy(&word, s.data() + i, sizeof word);
      if ((word & 0x8080808080808080ull) == 0) {
        i += 8;
        continue;
      }
    }
    const size_t len = Utf8SequenceLength(s, i);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

std::string SanitizeUtf8(std::string_view s, size_t max_len) {
  std::string out;
  out.reserve(std::min(s.size(), max_len));
  size_t i = 0;
  while (i < s.size()) {
    const size_t len = Utf8SequenceLength(s, i);
    const std::string_view piece = len ? s.substr(i, len) : std::string_view("\xef\xbf\xbd");
    if (out.size() + piece.size() > max_len) break;
    out.append(piece);
    i += len ? len : 1;
  }
  return out;
}

std::string NewEventId() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (size_t i = 0; i < sizeof bytes; ++i) {
    id[2 * i] = kHex[bytes[i] >> 4];
    id[2 * i + 1] = kHex[bytes[i] & 0xf];
  }
  return id;
}

}  // namespace ferry::proto
