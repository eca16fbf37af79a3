// What the store thread and the archive worker (daemon/archive/) hand each other, without
// either knowing the other's class:
//  - TranscriptTrigger: the store writer saw a committed event that ends a turn or a session
//    (IsTranscriptTrigger) whose payload names a transcript file; it calls the callback the
//    app installed (StoreOptions::on_transcript), which posts to the archive worker's mailbox.
//  - TranscriptMessage: a user prompt or assistant text the archive worker read from newly
//    copied transcript lines; it pushes them into the store's TranscriptInbox, which the
//    store thread drains inside its next transaction (transcript_messages rows; the store
//    thread stays the only ferry.db writer).
//
// Threads: TranscriptInbox is safe from any thread (a leaf mutex held only to swap a vector).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/thread_annotations.h"

namespace ferry {

struct TranscriptTrigger {
  std::string source, session;
  std::vector<std::string> paths;  // transcript_path, and agent_transcript_path if any
};

struct TranscriptMessage {
  std::string source, session;
  int64_t ts = 0;    // ns since the epoch; 0 when the line had no timestamp
  std::string role;  // "user" or "assistant"
  std::string text;
};

// The events after which a transcript is copied: a turn, a subagent or a session ended, or
// the host is about to compact. Claude Code and Codex: Stop, SubagentStop, PreCompact,
// SessionEnd; Gemini CLI: AfterAgent, PreCompress, SessionEnd.
bool IsTranscriptTrigger(std::string_view kind);

class TranscriptInbox {
 public:
  void Push(std::vector<TranscriptMessage> messages) {
    MutexLock lock(mu_);
    for (auto& m : messages) pending_.push_back(std::move(m));
  }
  // Everything pushed so far, oldest first; the inbox is empty after.
  std::vector<TranscriptMessage> Take() {
    MutexLock lock(mu_);
    std::vector<TranscriptMessage> out;
    out.swap(pending_);
    return out;
  }
  // Puts back what a failed transaction took, ahead of anything pushed since.
  void Return(std::vector<TranscriptMessage> messages) {
    MutexLock lock(mu_);
    for (auto& m : pending_) messages.push_back(std::move(m));
    pending_.swap(messages);
  }
  bool empty() const {
    MutexLock lock(mu_);
    return pending_.empty();
  }

 private:
  mutable Mutex mu_;
  std::vector<TranscriptMessage> pending_ FERRY_GUARDED_BY(mu_);
};

}  // namespace ferry
