#include "daemon/journal/reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>

#include <spdlog/spdlog.h>

#include "daemon/base/file_seam.h"
#include "daemon/base/thread_annotations.h"
#include "daemon/journal/format.h"
#include "daemon/journal/journal.h"

namespace ferry {

JournalReader::JournalReader(std::string dir, uint64_t start_seq)
    : dir_(std::move(dir)), next_seq_(start_seq == 0 ? 1 : start_seq) {}

JournalReader::~JournalReader() {
  if (fd_ >= 0) fs::Close(fd_);
}

std::string JournalReader::SegmentPath() const {
  return dir_ + "/" + journal::SegmentFileName(segment_first_);
}

// A journal directory that does not exist (yet) has no records: kEnd. Any other failure to
// list it is an I/O error, not "no segments".
JournalReader::Io JournalReader::List(std::vector<uint64_t>* seqs) {
  const Status s = ListSegments(dir_, seqs);
  if (s.ok()) return Io::kOk;
  struct stat st {};
  if (::stat(dir_.c_str(), &st) != 0 && errno == ENOENT) return Io::kEnd;
  error_ = "cannot list the journal: " + s.message();
  return Io::kError;
}

// Opens the segment whose range holds `seq`: the one with the greatest first seq <= seq
// (binary search over the sorted names). A seq below every segment (deleted by retention)
// starts at the oldest segment, and the gap is counted in skipped_seqs(). A segment deleted
// between the listing and the open (ENOENT) is looked up again.
JournalReader::Io JournalReader::OpenSegmentFor(uint64_t seq) {
  for (int attempt = 0;; ++attempt) {
    std::vector<uint64_t> seqs;
    const Io listed = List(&seqs);
    if (listed != Io::kOk) return listed;
    if (seqs.empty()) return Io::kEnd;
    auto it = std::upper_bound(seqs.begin(), seqs.end(), seq);
    const uint64_t first = it == seqs.begin() ? seqs.front() : *(it - 1);
    const std::string path = dir_ + "/" + journal::SegmentFileName(first);
    const int fd = fs::Open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == EINTR || (err == ENOENT && attempt < 3)) continue;
      if (err == ENOENT) return Io::kEnd;  // still racing retention: the caller comes back
      error_ = "cannot open " + path + ": " + std::strerror(err);
      return Io::kError;
    }
    if (fd_ >= 0) fs::Close(fd_);
    fd_ = fd;
    segment_first_ = first;
    segment_seq_ = first;
    file_offset_ = 0;
    buf_.clear();
    pos_ = 0;
    magic_checked_ = false;
    skip_rest_ = false;
    if (first > next_seq_) {
      skipped_seqs_ += first - next_seq_;
      next_seq_ = first;
    }
    return Io::kOk;
  }
}

JournalReader::Io JournalReader::NextSegmentExists() {
  std::vector<uint64_t> seqs;
  const Io listed = List(&seqs);
  if (listed != Io::kOk) return listed;
  return std::upper_bound(seqs.begin(), seqs.end(), segment_first_) != seqs.end() ? Io::kOk
                                                                                  : Io::kEnd;
}

JournalReader::Io JournalReader::AdvanceToNextSegment() {
  std::vector<uint64_t> seqs;
  const Io listed = List(&seqs);
  if (listed != Io::kOk) return listed;
  auto it = std::upper_bound(seqs.begin(), seqs.end(), segment_first_);
  if (it == seqs.end()) return Io::kEnd;
  return OpenSegmentFor(*it);
}

// On an error nothing is lost: the bytes already in buf_ stay there, file_offset_ still
// matches buf_[0], and the next call reads the same file range again.
JournalReader::Io JournalReader::Fill() {
  if (pos_ > 0) {
    file_offset_ += pos_;
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  const size_t old = buf_.size();
  const size_t want = std::max<size_t>(1 << 16, old);
  buf_.resize(old + want);
  ssize_t n;
  do {
    n = fs::Pread(fd_, buf_.data() + old, want, static_cast<off_t>(file_offset_ + old));
  } while (n < 0 && errno == EINTR);
  const int err = errno;
  buf_.resize(old + static_cast<size_t>(n > 0 ? n : 0));
  if (n < 0) {
    error_ = "cannot read " + SegmentPath() + " at offset " + std::to_string(file_offset_ + old) +
             ": " + std::strerror(err);
    return Io::kError;
  }
  return n > 0 ? Io::kOk : Io::kEnd;
}

// Drops everything from pos_ to the end of the current segment and moves to the next one, if
// any; the seqs it held are counted as skipped when the next segment opens. Without a next
// segment the reader stays at the end of this one, so calling again reports nothing twice.
// A read or listing error on the way is kIOError with nothing dropped yet: the next call
// meets the same damage and tries again.
JournalReader::Result JournalReader::DropRestOfSegment(std::string why) {
  for (;;) {
    const Io io = Fill();
    if (io == Io::kError) return Result::kIOError;
    if (io == Io::kEnd) break;
  }
  std::vector<uint64_t> seqs;
  if (List(&seqs) == Io::kError) return Result::kIOError;
  auto next = std::upper_bound(seqs.begin(), seqs.end(), segment_first_);
  // The seqs this reader still wanted that the damage takes away.
  const uint64_t first = std::max(segment_seq_, next_seq_);
  const uint64_t last = next == seqs.end() ? kUnknownLast : *next - 1;
  const uint64_t dropped = buf_.size() - pos_;
  damaged_segment_ = journal::SegmentFileName(segment_first_);
  damage_reason_ = std::move(why);
  std::string lost;
  if (last == kUnknownLast) {
    lost_first_ = first;
    lost_last_ = last;
    lost = "seqs from " + std::to_string(first) + " on unreadable";
  } else if (first <= last) {
    lost_first_ = first;
    lost_last_ = last;
    lost = "seqs " + std::to_string(first) + "-" + std::to_string(last) + " unreadable";
  } else {
    lost_first_ = lost_last_ = 0;
    lost = "no seqs lost, but damage";
  }
  const std::string message = lost + " in segment " + damaged_segment_ + " (" + damage_reason_ +
                              "); " + std::to_string(dropped) + " bytes dropped";
  dropped_bytes_ += dropped;
  pos_ = buf_.size();
  magic_checked_ = true;
  skip_rest_ = true;  // until the next segment opens
  // A failure to open the next segment is met again (and reported) by the next call.
  (void)AdvanceToNextSegment();
  error_ = message;
  return Result::kCorruption;
}

// Over 80 lines on purpose: one pass of the reader's state machine (open the next segment, read,
// check, report damage, skip); every exit sets the state the next call resumes from.
JournalReader::Result JournalReader::Next(uint64_t limit_seq, JournalRecord* record) {
  error_.clear();
  lost_first_ = lost_last_ = 0;
  damaged_segment_.clear();
  damage_reason_.clear();
  if (next_seq_ > limit_seq) return Result::kEnd;
  if (fd_ < 0) {
    const Io io = OpenSegmentFor(next_seq_);
    if (io == Io::kError) return Result::kIOError;
    if (io == Io::kEnd) return Result::kEnd;
  }
  for (;;) {
    if (skip_rest_) {
      // The rest of a damaged segment that had no successor when it was dropped: whatever
      // was appended since is dropped too (its framing cannot be trusted), silently; once a
      // later segment exists (read once more first, as below), reading goes on there.
      bool later_seen = false;
      for (;;) {
        const Io io = Fill();
        if (io == Io::kError) return Result::kIOError;
        if (io == Io::kOk) continue;
        dropped_bytes_ += buf_.size() - pos_;
        pos_ = buf_.size();
        if (later_seen) break;
        const Io later = NextSegmentExists();
        if (later == Io::kError) return Result::kIOError;
        if (later == Io::kEnd) return Result::kEnd;
        later_seen = true;
      }
      const Io advanced = AdvanceToNextSegment();
      if (advanced == Io::kError) return Result::kIOError;
      if (advanced == Io::kEnd) return Result::kEnd;
      continue;
    }
    if (!magic_checked_) {
      while (buf_.size() - pos_ < journal::kMagicSize) {
        const Io io = Fill();
        if (io == Io::kError) return Result::kIOError;
        if (io == Io::kEnd) break;
      }
      if (buf_.size() - pos_ < journal::kMagicSize) {
        // The live segment is created empty and gets its magic at once; a short file with a
        // later segment after it was damaged.
        const Io later = NextSegmentExists();
        if (later == Io::kError) return Result::kIOError;
        if (later == Io::kEnd) return Result::kEnd;
        const Io io = Fill();
        if (io == Io::kError) return Result::kIOError;
        if (io == Io::kOk) continue;
        return DropRestOfSegment("too short for the segment magic");
      }
      if (std::memcmp(buf_.data() + pos_, journal::kSegmentMagic, journal::kMagicSize) != 0) {
        return DropRestOfSegment("bad magic");
      }
      pos_ += journal::kMagicSize;
      magic_checked_ = true;
      segment_seq_ = segment_first_;
    }
    journal::RecordView rec;
    const auto check = journal::CheckRecord(std::string_view(buf_).substr(pos_), &rec);
    if (check == journal::RecordCheck::kOk) {
      // The same rule as recovery: the n-th record of a segment carries the segment's first
      // seq + n. A valid CRC around the wrong seq (a gap or a duplicate) means the writer's
      // framing can no longer be trusted, so the rest of the segment goes, as for a bad CRC.
      // Trusting the seq instead would let one bad record skip or repeat whole ranges.
      if (rec.seq != segment_seq_) {
        return DropRestOfSegment("sequence " + std::to_string(rec.seq) + " where " +
                                 std::to_string(segment_seq_) + " was expected at offset " +
                                 std::to_string(file_offset_ + pos_));
      }
      pos_ += rec.size;
      ++segment_seq_;
      if (rec.seq < next_seq_) continue;  // before the start seq
      record->seq = rec.seq;
      record->received_ns = rec.received_ns;
      record->body.assign(rec.body);
      next_seq_ = rec.seq + 1;
      return Result::kRecord;
    }
    if (check == journal::RecordCheck::kTornHeader || check == journal::RecordCheck::kTornBody ||
        check == journal::RecordCheck::kZeroFill) {
      // Maybe only the end of our buffer: a short run of zero bytes can be the start of a
      // header (the low bytes of its length) cut by the buffer boundary.
      Io io = Fill();
      if (io == Io::kError) return Result::kIOError;
      if (io == Io::kOk) continue;
      // The end of the file's data. Without a later segment this is the live end, or a torn
      // tail that recovery will cut: report nothing yet. With one, the writer has finished
      // this segment (it rolls only after writing), so read once more in case it finished
      // after our last read, then whatever is left over is damage.
      const Io later = NextSegmentExists();
      if (later == Io::kError) return Result::kIOError;
      if (later == Io::kEnd) return Result::kEnd;
      io = Fill();
      if (io == Io::kError) return Result::kIOError;
      if (io == Io::kOk) continue;
      const uint64_t leftover = buf_.size() - pos_;
      if (leftover == 0) {
        const Io advanced = AdvanceToNextSegment();
        if (advanced == Io::kError) return Result::kIOError;
        if (advanced == Io::kEnd) return Result::kEnd;
        continue;
      }
      return DropRestOfSegment(std::string(journal::RecordCheckName(check)) + " at offset " +
                               std::to_string(file_offset_ + pos_) +
                               " (end of a finished segment)");
    }
    // Checksum or length failure in the middle: the rest of this segment cannot be framed
    // reliably, so it is dropped and reading resumes at the next segment (after leveldb's
    // log_reader: a bad CRC drops the rest of the block rather than guess at boundaries).
    return DropRestOfSegment(std::string(journal::RecordCheckName(check)) + " at offset " +
                             std::to_string(file_offset_ + pos_));
  }
}

namespace journal_health {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);
constexpr auto kLogEvery = std::chrono::seconds(60);

struct Episode {
  std::string error;
  uint64_t retries = 0;
  Clock::time_point last_log;
  std::chrono::milliseconds backoff{0};
};
struct Damage {
  uint64_t first = 0, last = 0;  // 0, 0: no seqs lost; last == kUnknownLast: to the end
  std::string path;
  bool acked = false;  // acknowledged: not listed in problems
};

// Lock order: g_mu is a leaf lock (spdlog is called under it; spdlog takes only its own).
Mutex g_mu;
std::map<std::string, Episode, std::less<>> g_episodes FERRY_GUARDED_BY(g_mu);  // by who
// By (segment, reason).
std::map<std::pair<std::string, std::string>, Damage> g_damage FERRY_GUARDED_BY(g_mu);
std::atomic<size_t> g_open{0};  // g_episodes.size(): lets readers skip g_mu when all is well

std::string Range(uint64_t first, uint64_t last) {
  if (first == 0) return "no seqs lost, but damage";
  if (last == JournalReader::kUnknownLast) {
    return "seqs from " + std::to_string(first) + " on unreadable";
  }
  return "seqs " + std::to_string(first) + "-" + std::to_string(last) + " unreadable";
}

}  // namespace

std::chrono::milliseconds Observe(std::string_view who, JournalReader::Result result,
                                  const JournalReader& reader) {
  if (result == JournalReader::Result::kRecord || result == JournalReader::Result::kEnd) {
    if (g_open.load(std::memory_order_relaxed) == 0) return std::chrono::milliseconds(0);
    MutexLock lock(g_mu);
    auto it = g_episodes.find(who);
    if (it == g_episodes.end()) return std::chrono::milliseconds(0);
    spdlog::info("{}: journal reads succeed again after {} retr{} (was: {})", who,
                 it->second.retries, it->second.retries == 1 ? "y" : "ies", it->second.error);
    g_episodes.erase(it);
    g_open.store(g_episodes.size());
    return std::chrono::milliseconds(0);
  }
  MutexLock lock(g_mu);
  if (result == JournalReader::Result::kCorruption) {
    const uint64_t first = reader.lost_first(), last = reader.lost_last();
    spdlog::warn("{}: journal damage: {}; reading goes on with the next segment", who,
                 reader.error());
    auto key = std::make_pair(reader.damaged_segment(), reader.damage_reason());
    auto it = g_damage.find(key);
    if (it == g_damage.end()) {
      if (g_damage.size() >= kMaxDamage) return std::chrono::milliseconds(0);
      it = g_damage.emplace(key, Damage{first, last, reader.dir() + "/" + key.first}).first;
    } else if (first != 0) {
      Damage& d = it->second;
      const Damage before = d;
      if (d.first == 0 || first < d.first) d.first = first;
      if (d.first != 0 && (d.last == 0 || last > d.last)) d.last = last;
      if (d.first != before.first || d.last != before.last) d.acked = false;
    }
    return std::chrono::milliseconds(0);
  }
  // kIOError
  auto it = g_episodes.find(who);
  const auto now = Clock::now();
  if (it == g_episodes.end()) {
    it = g_episodes.emplace(std::string(who), Episode{}).first;
    g_open.store(g_episodes.size());
    it->second.last_log = now;
    it->second.backoff = kFirstBackoff;
    spdlog::warn("{}: {}; retrying with backoff (the cursor stays at seq {})", who, reader.error(),
                 reader.next_seq() - 1);
  } else {
    ++it->second.retries;
    it->second.backoff = std::min(it->second.backoff * 2, kMaxBackoff);
    if (now - it->second.last_log >= kLogEvery) {
      it->second.last_log = now;
      spdlog::warn("{}: journal reads still failing after {} retries: {}", who, it->second.retries,
                   reader.error());
    }
  }
  it->second.error = reader.error();
  return it->second.backoff;
}

std::string IoError(std::string_view who) {
  if (g_open.load(std::memory_order_relaxed) == 0) return {};
  MutexLock lock(g_mu);
  auto it = g_episodes.find(who);
  return it == g_episodes.end() ? std::string() : it->second.error;
}

void Forget(std::string_view who) {
  MutexLock lock(g_mu);
  auto it = g_episodes.find(who);
  if (it != g_episodes.end()) g_episodes.erase(it);
  g_open.store(g_episodes.size());
}

std::vector<std::string> Problems() {
  std::vector<std::string> out;
  MutexLock lock(g_mu);
  for (const auto& [key, d] : g_damage) {
    if (d.acked) continue;
    out.push_back("journal: " + Range(d.first, d.last) + " in segment " + key.first + " (" +
                  key.second + "); the damaged bytes stay in " + d.path +
                  " until retention deletes it");
  }
  for (const auto& [who, e] : g_episodes) out.push_back(who + ": " + e.error + "; retrying");
  return out;
}

void AckDamage() {
  MutexLock lock(g_mu);
  for (auto& [key, d] : g_damage) d.acked = true;
}

void TEST_Reset() {
  MutexLock lock(g_mu);
  g_episodes.clear();
  g_damage.clear();
  g_open.store(0);
}

}  // namespace journal_health
}  // namespace ferry
