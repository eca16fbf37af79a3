#include "daemon/app/sink_set.h"

#include <spdlog/spdlog.h>

#include "daemon/sink/encode.h"
#include "daemon/sink/http_client.h"
#include "proto/event.h"

namespace ferry {
namespace {

// Answers a DEADLETTER request once every chosen sink answered (purge runs on sink threads).
struct PendingDeadletter {
  std::string op;
  std::vector<std::string> names;
  std::vector<uint64_t> counts;
  std::vector<std::string> errors;
  size_t left = 0;
  SinkSet::Reply reply;

  void Answer() {
    rapidjson::StringBuffer sb;
    proto::JsonWriter w(sb);
    w.StartObject();
    w.Key("op");
    w.String(op.c_str());
    w.Key("sinks");
    w.StartArray();
    for (size_t i = 0; i < names.size(); ++i) {
      w.StartObject();
      w.Key("name");
      w.String(names[i].c_str());
      w.Key(op == "replay" ? "queued" : "purged");
      w.Uint64(counts[i]);
      if (!errors[i].empty()) {
        w.Key("error");
        w.String(errors[i].c_str());
      }
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    reply(proto::EncodeFrame(proto::FrameType::kDeadletterResult,
                             std::string(sb.GetString(), sb.GetSize())));
  }
};

}  // namespace

SinkSet::SinkSet(net::io_context& io, SinkDeps deps)
    : io_(io), deps_(std::move(deps)), flush_timer_(io) {}

SinkSet::~SinkSet() = default;

void SinkSet::Start(const SinkConfig& config, std::shared_ptr<const Redactor> redactor,
                    uint64_t oldest_seq, uint64_t written_seq) {
  // libcurl is loaded with the first sink that needs it (http_client.h). A failure is
  // logged here; the sink still starts and keeps its events, its status shows the reason.
  std::string curl_error;
  if (!deps_.make_transport && !LoadCurl(&curl_error)) {
    spdlog::error("sink {}: {}", config.name, curl_error);
  }
  auto sink = std::make_unique<Sink>(config, deps_, std::move(redactor));
  Status s = sink->Open(oldest_seq, written_seq);
  if (!s.ok()) {
    spdlog::error("sink {}: {}; not started", config.name, s.ToString());
    return;
  }
  spdlog::info("sink {} ({}) -> {}", config.name, config.type, UrlForDisplay(config.EndpointUrl()));
  sink->Start();
  sinks_.push_back(std::move(sink));
}

void SinkSet::Reload(const std::function<bool(const std::string& name)>& remove,
                     const std::shared_ptr<const Redactor>& redactor) {
  for (auto it = sinks_.begin(); it != sinks_.end();) {
    const std::string& name = (*it)->name();
    if (remove(name)) {
      spdlog::info("SIGHUP: stopping sink {}", name);
      (*it)->Stop();
      it = sinks_.erase(it);  // joins the thread; the cursor file stays
    } else {
      (*it)->Reload(redactor);  // re-reads its token; a paused sink retries now
      ++it;
    }
  }
}

void SinkSet::WakeAll() {
  for (const auto& sink : sinks_) sink->OnWritten();
}

Sink* SinkSet::Find(const std::string& name) const {
  for (const auto& s : sinks_) {
    if (s->name() == name) return s.get();
  }
  return nullptr;
}

std::string SinkSet::Names() const {
  std::string names;
  for (const auto& s : sinks_) names += (names.empty() ? "" : ", ") + s->name();
  return names.empty() ? "no sinks configured" : "configured: " + names;
}

std::string SinkSet::UnknownSinkFrame(const std::string& name) const {
  return proto::EncodeFrame(
      proto::FrameType::kError,
      proto::MakeErrorBody(
          {proto::Errc::kUnknownSink, "no sink named \"" + name + "\" (" + Names() + ")"}, false));
}

std::string SinkSet::FlushResult(const FlushWait& fw, bool done, bool timed_out) const {
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  w.StartObject();
  w.Key("target_seq");
  w.Uint64(fw.target);
  w.Key("done");
  w.Bool(done);
  w.Key("timed_out");
  w.Bool(timed_out);
  w.Key("sinks");
  w.StartArray();
  for (size_t i = 0; i < fw.names.size(); ++i) {
    const Sink* sink = Find(fw.names[i]);
    w.StartObject();
    w.Key("name");
    w.String(fw.names[i].c_str());
    if (!sink) {
      w.Key("state");
      w.String("removed");
      w.Key("error");
      w.String("the sink was removed by a config reload");
      w.EndObject();
      continue;
    }
    const uint64_t cursor = sink->cursor();
    const bool failed =
        sink->state() == Sink::State::kPaused || sink->failures_total() > fw.failures_at_start[i];
    w.Key("cursor");
    w.Uint64(cursor);
    w.Key("caught_up");
    w.Bool(cursor >= fw.target);
    w.Key("state");
    w.String(Sink::StateName(sink->state()));
    w.Key("error");
    const std::string err = sink->last_error_text();
    if (failed && cursor < fw.target && !err.empty()) {
      w.String(err.c_str());
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

void SinkSet::Flush(const proto::FlushRequest& req, uint64_t target, Reply reply) {
  FlushWait fw;
  fw.target = target;
  for (const auto& s : sinks_) {
    if (!req.sink.empty() && s->name() != req.sink) continue;
    s->Flush(fw.target);
    fw.names.push_back(s->name());
    fw.failures_at_start.push_back(s->failures_total());
  }
  fw.reply = std::move(reply);
  if (!req.wait || fw.names.empty()) {
    fw.reply(proto::EncodeFrame(proto::FrameType::kFlushResult, FlushResult(fw, true, false)));
    return;
  }
  if (req.timeout_ms > 0) {
    fw.has_deadline = true;
    fw.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(req.timeout_ms);
  }
  flush_waits_.push_back(std::move(fw));
  CheckFlushWaits(false);
}

void SinkSet::CheckFlushWaits(bool final) {
  const auto now = std::chrono::steady_clock::now();
  for (size_t i = 0; i < flush_waits_.size();) {
    FlushWait& fw = flush_waits_[i];
    bool all_caught_up = true, failed = false;
    for (size_t k = 0; k < fw.names.size(); ++k) {
      const Sink* sink = Find(fw.names[k]);
      if (!sink) {
        failed = true;
        continue;
      }
      if (sink->cursor() >= fw.target) continue;
      all_caught_up = false;
      if (sink->state() == Sink::State::kPaused ||
          sink->failures_total() > fw.failures_at_start[k]) {
        failed = true;
      }
    }
    const bool timed_out = fw.has_deadline && now >= fw.deadline;
    if (all_caught_up || failed || timed_out || final) {
      fw.reply(proto::EncodeFrame(proto::FrameType::kFlushResult,
                                  FlushResult(fw, all_caught_up, timed_out && !all_caught_up)));
      flush_waits_.erase(flush_waits_.begin() + static_cast<ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  if (!flush_waits_.empty() && !flush_timer_armed_ && !final) {
    flush_timer_armed_ = true;
    flush_timer_.expires_after(std::chrono::milliseconds(20));
    flush_timer_.async_wait([this](const boost::system::error_code& ec) {
      flush_timer_armed_ = false;
      if (!ec) CheckFlushWaits(stopping_);
    });
  }
}

void SinkSet::FinishFlushWaits() {
  stopping_ = true;
  CheckFlushWaits(true);
  flush_timer_.cancel();
}

void SinkSet::Deadletter(const proto::DeadletterRequest& req, Reply reply) {
  if (!req.sink.empty() && !Find(req.sink)) return reply(UnknownSinkFrame(req.sink));
  if (req.op == "list") return ListDeadletters(req, std::move(reply));
  if (req.op != "replay" && req.op != "purge") {
    // proto::ParseDeadletterRequestBody admits only these three; refuse rather than purge.
    return reply(proto::EncodeFrame(
        proto::FrameType::kError,
        proto::MakeErrorBody(
            {proto::Errc::kBadValue, "op must be \"list\", \"replay\" or \"purge\""}, false)));
  }
  auto p = std::make_shared<PendingDeadletter>();
  p->op = req.op;
  p->reply = std::move(reply);
  std::vector<Sink*> chosen;
  for (const auto& s : sinks_) {
    if (!req.sink.empty() && s->name() != req.sink) continue;
    chosen.push_back(s.get());
    p->names.push_back(s->name());
    p->counts.push_back(req.op == "replay" ? s->RequestReplay() : 0);
    p->errors.emplace_back();
  }
  if (req.op == "replay" || chosen.empty()) return p->Answer();
  p->left = chosen.size();
  for (size_t i = 0; i < chosen.size(); ++i) {
    chosen[i]->PurgeDeadletters([this, p, i](uint64_t n, std::string error) {
      net::post(io_, [p, i, n, error = std::move(error)]() mutable {
        p->counts[i] = n;
        p->errors[i] = std::move(error);
        if (--p->left == 0) p->Answer();
      });
    });
  }
}

void SinkSet::ListDeadletters(const proto::DeadletterRequest& req, Reply reply) {
  struct Pending {
    std::vector<proto::DeadletterListEntry> entries;
    size_t left = 0;
    Reply reply;
    void Answer() {
      reply(proto::EncodeFrame(proto::FrameType::kDeadletterResult,
                               proto::MakeDeadletterListResultBody(entries)));
    }
  };
  auto p = std::make_shared<Pending>();
  p->reply = std::move(reply);
  std::vector<Sink*> chosen;
  for (const auto& s : sinks_) {
    if (req.sink.empty() || s->name() == req.sink) chosen.push_back(s.get());
  }
  if (chosen.empty()) return p->Answer();
  p->entries.resize(chosen.size());
  p->left = chosen.size();
  // The letters of one answer stay under 48 MiB (the client takes frames up to 64 MiB),
  // split evenly over the sinks asked; each sink's own thread reads its file.
  const size_t budget = (size_t{48} << 20) / chosen.size();
  for (size_t i = 0; i < chosen.size(); ++i) {
    chosen[i]->ListDeadletters(
        [this, p, i](proto::DeadletterListEntry e) {
          net::post(io_, [p, i, e = std::move(e)]() mutable {
            p->entries[i] = std::move(e);
            if (--p->left == 0) p->Answer();
          });
        },
        budget);
  }
}

void SinkSet::StopAll() {
  for (const auto& sink : sinks_) sink->Stop();
}

}  // namespace ferry
