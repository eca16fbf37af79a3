// Span ids (SHA-256) and the pending calls' JSON in the cursor file: see spans.h.
#include <array>
#include <cstring>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "daemon/sink/spans.h"
#include "proto/event.h"

namespace ferry {
namespace {

constexpr std::array<uint32_t, 64> kK = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

uint32_t Rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void Compress(std::array<uint32_t, 8>& h, const unsigned char* block) {
  std::array<uint32_t, 64> w{};
  for (size_t i = 0; i < 16; ++i) {
    w[i] = (uint32_t{block[4 * i]} << 24) | (uint32_t{block[4 * i + 1]} << 16) |
           (uint32_t{block[4 * i + 2]} << 8) | uint32_t{block[4 * i + 3]};
  }
  for (size_t i = 16; i < 64; ++i) {
    const uint32_t s0 = Rotr(w[i - 15], 7) ^ Rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    const uint32_t s1 = Rotr(w[i - 2], 17) ^ Rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
  for (size_t i = 0; i < 64; ++i) {
    const uint32_t t1 =
        hh + (Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25)) + ((e & f) ^ (~e & g)) + kK[i] + w[i];
    const uint32_t t2 = (Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    hh = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
  h[5] += f;
  h[6] += g;
  h[7] += hh;
}

// The first `bytes` bytes of SHA-256(data) as lowercase hex; never all zeros (an invalid
// OTLP id): a zero id becomes ...01.
std::string HexId(const std::string& data, size_t bytes) {
  const std::string digest = Sha256(data);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  bool zero = true;
  for (size_t i = 0; i < bytes; ++i) {
    const auto b = static_cast<unsigned char>(digest[i]);
    zero = zero && b == 0;
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  if (zero) out.back() = '1';
  return out;
}

}  // namespace

std::string Sha256(std::string_view data) {
  std::array<uint32_t, 8> h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  size_t pos = 0;
  for (; pos + 64 <= data.size(); pos += 64) {
    Compress(h, reinterpret_cast<const unsigned char*>(data.data() + pos));
  }
  unsigned char tail[128] = {};
  const size_t rest = data.size() - pos;
  std::memcpy(tail, data.data() + pos, rest);
  tail[rest] = 0x80;
  const size_t len = rest + 9 <= 64 ? 64 : 128;
  const uint64_t bits = static_cast<uint64_t>(data.size()) * 8;
  for (size_t i = 0; i < 8; ++i) tail[len - 1 - i] = static_cast<unsigned char>(bits >> (8 * i));
  Compress(h, tail);
  if (len == 128) Compress(h, tail + 64);
  std::string out(32, '\0');
  for (size_t i = 0; i < 32; ++i) out[i] = static_cast<char>(h[i / 4] >> (24 - 8 * (i % 4)));
  return out;
}

std::string TraceId(std::string_view source, std::string_view session) {
  std::string in = "ferry.trace\n";
  in.append(source).append("\n").append(session);
  return HexId(in, 16);
}

std::string SpanId(std::string_view source, std::string_view session, std::string_view call) {
  std::string in = "ferry.span\n";
  in.append(source).append("\n").append(session).append("\n").append(call);
  return HexId(in, 8);
}

namespace {

// The string members of a PendingCall, in the order the JSON holds them.
struct Field {
  const char* name;
  std::string PendingCall::*member;
};
constexpr std::array<Field, 13> kFields = {{
    {"source", &PendingCall::source},
    {"session", &PendingCall::session},
    {"cwd", &PendingCall::cwd},
    {"key", &PendingCall::key},
    {"trace_id", &PendingCall::trace_id},
    {"span_id", &PendingCall::span_id},
    {"parent_span_id", &PendingCall::parent_span_id},
    {"tool", &PendingCall::tool},
    {"input", &PendingCall::input},
    {"tool_use_id", &PendingCall::tool_use_id},
    {"agent_id", &PendingCall::agent_id},
    {"agent_type", &PendingCall::agent_type},
    {"subagent_type", &PendingCall::subagent_type},
}};

}  // namespace

std::string PendingCallsToJson(const std::vector<PendingCall>& pending) {
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  w.StartArray();
  for (const PendingCall& p : pending) {
    w.StartObject();
    for (const Field& f : kFields) {
      const std::string& v = p.*f.member;
      if (v.empty()) continue;
      w.Key(f.name);
      w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
    }
    w.Key("seq");
    w.Uint64(p.seq);
    w.Key("start");
    w.Int64(p.start_ns);
    w.Key("received");
    w.Int64(p.received_ns);
    w.EndObject();
  }
  w.EndArray();
  return std::string(sb.GetString(), sb.GetSize());
}

bool PendingCallsFromJson(const rapidjson::Value& v, std::vector<PendingCall>* out) {
  out->clear();
  if (!v.IsArray()) return false;
  for (const auto& item : v.GetArray()) {
    if (!item.IsObject() || !item.HasMember("seq") || !item["seq"].IsUint64() ||
        !item.HasMember("start") || !item["start"].IsInt64() || !item.HasMember("received") ||
        !item["received"].IsInt64()) {
      out->clear();
      return false;
    }
    PendingCall p;
    for (const Field& f : kFields) {
      auto it = item.FindMember(f.name);
      if (it == item.MemberEnd()) continue;
      if (!it->value.IsString()) {
        out->clear();
        return false;
      }
      (p.*f.member).assign(it->value.GetString(), it->value.GetStringLength());
    }
    p.seq = item["seq"].GetUint64();
    p.start_ns = item["start"].GetInt64();
    p.received_ns = item["received"].GetInt64();
    out->push_back(std::move(p));
  }
  return true;
}

}  // namespace ferry
