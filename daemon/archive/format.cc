#include "daemon/archive/format.h"

#include <dirent.h>

#include <algorithm>
#include <cstdio>

#include <zlib.h>

#include "daemon/base/crc32c.h"
#include "proto/event.h"
#include "proto/frame.h"

namespace ferry::archive {
namespace {

constexpr char kMagic[4] = {'F', 'T', 'A', '1'};

bool Plain(unsigned char c, bool first) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || (c == '.' && !first);
}

void PutU64(char* p, uint64_t v) {
  proto::PutU32Le(p, static_cast<uint32_t>(v));
  proto::PutU32Le(p + 4, static_cast<uint32_t>(v >> 32));
}
uint64_t GetU64(const char* p) {
  return proto::GetU32Le(p) | (static_cast<uint64_t>(proto::GetU32Le(p + 4)) << 32);
}

}  // namespace

std::string EncodeName(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (Plain(c, i == 0)) {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

bool DecodeName(std::string_view encoded, std::string* name) {
  name->clear();
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '%') {
      name->push_back(encoded[i]);
      continue;
    }
    if (i + 2 >= encoded.size()) return false;
    int v = 0;
    for (char c : encoded.substr(i + 1, 2)) {
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return false;
      v = v * 16 + d;
    }
    name->push_back(static_cast<char>(v));
    i += 2;
  }
  return !name->empty();
}

std::string GenFileName(uint32_t gen) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08u.fta", gen);
  return buf;
}

bool ParseGenFileName(std::string_view name, uint32_t* gen) {
  if (name.size() != 12 || name.substr(8) != ".fta") return false;
  uint32_t v = 0;
  for (char c : name.substr(0, 8)) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  *gen = v;
  return v > 0;
}

std::string EncodeFrame(uint8_t type, std::string_view payload) {
  std::string out(kFrameHeader, '\0');
  std::copy(kMagic, kMagic + 4, out.begin());
  proto::PutU32Le(out.data() + 4, static_cast<uint32_t>(payload.size()));
  out[12] = static_cast<char>(type);
  uint32_t crc = crc32c::Extend(0, out.data() + 12, 1);
  crc = crc32c::Extend(crc, payload.data(), payload.size());
  proto::PutU32Le(out.data() + 8, crc);
  out.append(payload);
  return out;
}

std::string EncodeHeader(std::string_view source, std::string_view session, std::string_view path,
                         uint32_t gen, int64_t created_ns) {
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  w.StartObject();
  w.Key("v");
  w.Int(1);
  w.Key("source");
  w.String(source.data(), static_cast<rapidjson::SizeType>(source.size()));
  w.Key("session");
  w.String(session.data(), static_cast<rapidjson::SizeType>(session.size()));
  w.Key("path");
  w.String(path.data(), static_cast<rapidjson::SizeType>(path.size()));
  w.Key("gen");
  w.Uint(gen);
  w.Key("created_ns");
  w.Int64(created_ns);
  w.EndObject();
  return EncodeFrame(kHeaderFrame, std::string_view(sb.GetString(), sb.GetSize()));
}

bool EncodeData(uint64_t src_offset, std::string_view raw, uint32_t tail_crc, std::string* frame) {
  std::string payload(kDataHeader, '\0');
  PutU64(payload.data(), src_offset);
  proto::PutU32Le(payload.data() + 8, static_cast<uint32_t>(raw.size()));
  proto::PutU32Le(payload.data() + 12, tail_crc);
  uLongf bound = compressBound(static_cast<uLong>(raw.size()));
  payload.resize(kDataHeader + bound);
  if (compress2(reinterpret_cast<Bytef*>(payload.data() + kDataHeader), &bound,
                reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()),
                Z_DEFAULT_COMPRESSION) != Z_OK) {
    return false;
  }
  payload.resize(kDataHeader + bound);
  *frame = EncodeFrame(kDataFrame, payload);
  return true;
}

Damage ReadFrame(std::string_view data, size_t at, FrameView* frame, std::string* what) {
  if (data.size() - at < kFrameHeader) return Damage::kTorn;
  const char* p = data.data() + at;
  if (!std::equal(kMagic, kMagic + 4, p)) {
    *what = "no frame magic";
    return Damage::kCorrupt;
  }
  const uint32_t len = proto::GetU32Le(p + 4);
  if (len > kMaxFramePayload) {
    *what = "frame length " + std::to_string(len) + " over the limit";
    return Damage::kCorrupt;
  }
  if (data.size() - at - kFrameHeader < len) return Damage::kTorn;
  uint32_t crc = crc32c::Extend(0, p + 12, 1);
  crc = crc32c::Extend(crc, p + kFrameHeader, len);
  if (crc != proto::GetU32Le(p + 8)) {
    *what = "CRC mismatch";
    return Damage::kCorrupt;
  }
  frame->type = static_cast<uint8_t>(p[12]);
  frame->payload = std::string_view(p + kFrameHeader, len);
  frame->size = kFrameHeader + len;
  if (frame->type != kHeaderFrame && frame->type != kDataFrame) {
    *what = "unknown frame type " + std::to_string(frame->type);
    return Damage::kCorrupt;
  }
  if (frame->type == kDataFrame && len < kDataHeader) {
    *what = "data frame too short";
    return Damage::kCorrupt;
  }
  return Damage::kNone;
}

static bool ParseHeader(std::string_view payload, Header* h) {
  rapidjson::Document doc;
  proto::Error error;
  if (!proto::ParseJson(payload, &doc, &error) || !doc.IsObject()) return false;
  auto str = [&](const char* key, std::string* out) {
    auto it = doc.FindMember(key);
    if (it == doc.MemberEnd() || !it->value.IsString()) return false;
    out->assign(it->value.GetString(), it->value.GetStringLength());
    return true;
  };
  auto gen = doc.FindMember("gen");
  auto created = doc.FindMember("created_ns");
  if (gen == doc.MemberEnd() || !gen->value.IsUint()) return false;
  h->gen = gen->value.GetUint();
  h->created_ns =
      created != doc.MemberEnd() && created->value.IsInt64() ? created->value.GetInt64() : 0;
  return str("source", &h->source) && str("session", &h->session) && str("path", &h->path);
}

Scan ScanFile(std::string_view data) {
  Scan s;
  size_t at = 0;
  while (at < data.size()) {
    FrameView f;
    s.damage = ReadFrame(data, at, &f, &s.what);
    if (s.damage != Damage::kNone) break;
    if (!s.has_header) {
      if (f.type != kHeaderFrame || !ParseHeader(f.payload, &s.header)) {
        s.damage = Damage::kCorrupt;
        s.what = "no valid header frame";
        break;
      }
      s.has_header = true;
    } else if (f.type == kDataFrame) {
      const uint64_t off = GetU64(f.payload.data());
      if (off != s.end) {
        s.damage = Damage::kCorrupt;
        s.what = "data at offset " + std::to_string(off) + ", expected " + std::to_string(s.end);
        break;
      }
      s.end = off + proto::GetU32Le(f.payload.data() + 8);
      s.tail_crc = proto::GetU32Le(f.payload.data() + 12);
    } else {
      s.damage = Damage::kCorrupt;
      s.what = "a second header frame";
      break;
    }
    at += f.size;
    s.valid_bytes = at;
  }
  return s;
}

uint64_t DataOffset(std::string_view payload) { return GetU64(payload.data()); }
uint32_t DataLength(std::string_view payload) { return proto::GetU32Le(payload.data() + 8); }

bool DecodeData(std::string_view payload, uint64_t expect_offset, std::string* out,
                uint64_t* src_offset, std::string* what) {
  *src_offset = GetU64(payload.data());
  const uint32_t raw_len = proto::GetU32Le(payload.data() + 8);
  if (*src_offset != expect_offset) {
    *what = "data at offset " + std::to_string(*src_offset) + ", expected " +
            std::to_string(expect_offset);
    return false;
  }
  const size_t old = out->size();
  out->resize(old + raw_len);
  uLongf got = raw_len;
  const int rc = uncompress(reinterpret_cast<Bytef*>(out->data() + old), &got,
                            reinterpret_cast<const Bytef*>(payload.data() + kDataHeader),
                            static_cast<uLong>(payload.size() - kDataHeader));
  if (rc != Z_OK || got != raw_len) {
    out->resize(old);
    *what = "zlib data does not decompress";
    return false;
  }
  return true;
}

std::vector<uint32_t> ListGenerations(const std::string& dir) {
  std::vector<uint32_t> gens;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return gens;
  while (const dirent* e = ::readdir(d)) {
    uint32_t gen = 0;
    if (ParseGenFileName(e->d_name, &gen)) gens.push_back(gen);
  }
  ::closedir(d);
  std::sort(gens.begin(), gens.end());
  return gens;
}

}  // namespace ferry::archive
