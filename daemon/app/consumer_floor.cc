#include "daemon/app/consumer_floor.h"

#include <dirent.h>

#include <spdlog/spdlog.h>

#include "daemon/base/file_util.h"
#include "daemon/store/schema.h"
#include "proto/event.h"

namespace ferry {

uint64_t ConsumerFloor(const Config& cfg, std::string* source) {
  uint64_t floor = 1;
  const auto raise = [&](uint64_t seen, const std::string& who) {
    if (seen + 1 > floor) {
      floor = seen + 1;
      *source = who + " has seen seq " + std::to_string(seen);
    }
  };
  if (cfg.store_enabled) {
    const std::string db = cfg.state_dir + "/ferry.db";
    uint64_t cursor = 0;
    std::string error;
    if (store::ReadCursorReadOnly(db, &cursor, &error)) {
      raise(cursor, db);
    } else {
      spdlog::warn(
          "cannot read the cursor of {} before opening the journal ({}); if the "
          "journal lost its tail, seqs ferry.db applied may be handed out again",
          db, error);
    }
  }
  const std::string dir = cfg.state_dir + "/cursors";
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name.empty() || name[0] == '.' || name.find(".tmp") != std::string::npos) continue;
      std::string text;
      if (!ReadWholeFile(dir + "/" + name, &text)) continue;
      rapidjson::Document doc;
      doc.Parse(text.c_str(), text.size());
      if (doc.HasParseError() || !doc.IsObject()) continue;
      for (const char* key : {"cursor", "inflight_last"}) {
        auto it = doc.FindMember(key);
        if (it != doc.MemberEnd() && it->value.IsUint64()) {
          raise(it->value.GetUint64(), dir + "/" + name);
        }
      }
    }
    ::closedir(d);
  }
  return floor;
}

void LogRecovery(const std::string& journal_dir, const RecoveryReport& report) {
  for (const std::string& stray : report.strays) {
    spdlog::warn(
        "journal recovery: moved a stray segment aside (its name does not continue "
        "the sequence): {}",
        stray);
  }
  if (report.dropped_bytes > 0) {
    spdlog::warn("journal recovery: dropped {} bytes at offset {} of the last segment ({}){}",
                 report.dropped_bytes, report.dropped_at, report.reason,
                 report.saved_path.empty() ? "" : "; the bytes are kept in " + report.saved_path);
  }
  if (report.next_seq > report.segments_next_seq) {
    spdlog::warn(
        "journal recovery: the segments end at seq {} but {}: seqs {}-{} are skipped "
        "and never handed out; continuing at seq {}",
        report.segments_next_seq - 1, report.next_seq_reason, report.segments_next_seq,
        report.next_seq - 1, report.next_seq);
  }
  spdlog::info("journal {}: {} segment(s), last seq {}", journal_dir, report.segments,
               report.last_seq);
}

}  // namespace ferry
