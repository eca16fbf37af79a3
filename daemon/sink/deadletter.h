// A sink's dead-letter files (docs/sinks.md "Dead letters"), named by proto/paths.h:
//   deadletter/<sink>.ndjson         events the server refused for good, one JSON line each
//   deadletter/<sink>.replay.ndjson  the letters a replay in progress is sending again
// Only the sink thread touches them while ferryd runs (the client reads them itself only
// when no ferryd holds the state directory). Every call here does disk I/O: sink thread
// only. Writes go through the file seam (fault injection) and are fdatasync'd.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"
#include "proto/messages.h"

namespace ferry::sink {

class DeadLetterFiles {
 public:
  DeadLetterFiles(const std::string& state_dir, const std::string& sink);

  const std::string& path() const { return path_; }
  const std::string& replay_path() const { return replay_path_; }

  // Lines in each file (0 when it is missing).
  uint64_t CountLetters() const;
  uint64_t CountReplay() const;
  bool ReplayInProgress() const;  // the replay file exists

  // Appends whole lines ('\n'-terminated) and syncs them. An error leaves the file as it was
  // or with a torn last line, which readers skip.
  Status Append(std::string_view lines);
  // Deletes the letters file; *lines = how many it held. A missing file is not an error.
  Status Purge(uint64_t* lines);

  // Starts a replay: moves the letters file aside unless a replay file is already there (a
  // replay cut short by a stop, resumed). False: nothing to replay (*error set when the move
  // failed for another reason than a missing file).
  bool BeginReplay(std::string* error);
  bool ReadReplay(std::string* text) const;
  void EndReplay();  // removes the replay file

  // The letters for DEADLETTER_RESULT "list": each whole line that is a JSON object, in file
  // order, until `max_bytes` of them (then entry->truncated); entry->count counts them all,
  // entry->skipped the lines that are not (a torn last line included), entry->replaying the
  // lines of the replay file. entry->name is left alone.
  void List(size_t max_bytes, proto::DeadletterListEntry* entry) const;

 private:
  const std::string path_;
  const std::string replay_path_;
};

}  // namespace ferry::sink
