// IngestSession: the requests a connection may send besides events (HELLO, STATUS_REQ,
// QUERY_REQ, FLUSH_REQ, DEADLETTER_REQ, TRANSCRIPT_REQ, TAIL_REQ): each is answered in
// request order with the events' ACKs (session.cc has the read path and the event path).
// Thread: the io thread only, like the rest of IngestSession.
#include <memory>
#include <string>
#include <utility>

#include "daemon/ingest/session.h"
#include "daemon/ingest/session_host.h"

namespace ferry {

bool IngestSession::HandleFrame(const proto::Frame& frame, bool* wants_flush, bool* wants_durable) {
  using proto::FrameType;
  switch (frame.type) {
    case FrameType::kEvent:
    case FrameType::kEventBatch:
      HandleEvents(frame, wants_flush, wants_durable);
      return !read_closed_;
    case FrameType::kStatusReq:
    case FrameType::kHello: {
      rapidjson::Document doc;
      proto::Error error;
      if (!proto::ParseVersionedRequest(frame.body, &doc, &error)) {
        RefuseFrame(error, /*fatal=*/true);
        return false;
      }
      if (frame.type == FrameType::kHello) {
        QueueFrame(FrameType::kHello,
                   std::string("{\"v\":1,\"server\":\"ferryd/") + FERRY_VERSION + "\"}");
      } else {
        QueueFrame(FrameType::kStatus, host_.StatusReply(doc));
      }
      return true;
    }
    case FrameType::kQueryReq:
      HandleQuery(frame);
      return true;
    case FrameType::kFlushReq:
      HandleSinkRequest(frame, &proto::ParseFlushRequestBody, host_.flush_handler(),
                        FrameType::kFlushResult);
      return true;
    case FrameType::kDeadletterReq:
      HandleSinkRequest(frame, &proto::ParseDeadletterRequestBody, host_.deadletter_handler(),
                        FrameType::kDeadletterResult);
      return true;
    case FrameType::kTranscriptReq:
      if (!host_.transcript_handler()) {
        QueueError({proto::Errc::kUnexpectedType, "this ferryd keeps no transcript archive"},
                   /*fatal=*/false);
        return true;
      }
      host_.transcript_handler()(std::string(frame.body),
                                 OweReply(proto::FrameType::kTranscriptResult));
      return true;
    case FrameType::kTailReq:
      if (host_.tail_handler()) return HandleTail(frame);
      QueueError({proto::Errc::kUnexpectedType, std::string(proto::FrameTypeName(frame.type)) +
                                                    " is not supported by ferryd " + FERRY_VERSION},
                 /*fatal=*/false);
      return true;
    default:
      RefuseFrame({proto::Errc::kUnexpectedType, std::string(proto::FrameTypeName(frame.type)) +
                                                     " is a reply type; a client may not send it"},
                  /*fatal=*/true);
      return false;
  }
}

// A tail connection leaves the io thread: its fd goes to a tail worker (TailServer), which
// does the journal reads and the blocking writes, so a slow tail never holds up ingest.
bool IngestSession::HandleTail(const proto::Frame& frame) {
  proto::TailRequest request;
  proto::Error error;
  if (!proto::ParseTailRequest(frame.body, &request, &error)) {
    RefuseFrame(error, /*fatal=*/true);
    return false;
  }
  if (!replies_.empty() || writing_active_ || !out_.empty()) {
    QueueError({proto::Errc::kUnexpectedType,
                "TAIL_REQ must be the only request on its connection (replies are owed)"},
               /*fatal=*/true);
    return false;
  }
  boost::system::error_code ec;
  idle_timer_.cancel();
  const int fd = socket_.release(ec);
  if (ec) {
    QueueError({proto::Errc::kInternal, "cannot hand the connection to a tail: " + ec.message()},
               /*fatal=*/true);
    return false;
  }
  std::string why;
  if (!host_.tail_handler()(fd, request, &why)) {
    // The handler refused and closed the fd; nothing more can be said on it.
    host_.counters().rejected_total++;
  }
  read_closed_ = true;
  Close();
  return false;
}

void IngestSession::HandleQuery(const proto::Frame& frame) {
  if (!host_.query_handler()) {
    QueueError({proto::Errc::kQueryFailed, "ferryd has no store to query"}, /*fatal=*/false);
    return;
  }
  host_.query_handler()(std::string(frame.body), OweReply(proto::FrameType::kQueryResult));
}

std::function<void(std::string)> IngestSession::OweReply(proto::FrameType type) {
  // The slot stays empty until the answer comes: Pump() holds every later reply behind it,
  // and OnIdle() does not count the wait as idleness (replies_ is not empty).
  auto slot = std::make_shared<std::string>();
  replies_.push_back(Reply{type, {}, {}, slot});
  return [self = shared_from_this(), slot, type](std::string encoded) {
    if (!slot->empty()) return;  // answered already (by this callback or a copy of it)
    if (encoded.empty()) {       // a bug of the handler's owner; the client still gets an answer
      encoded = proto::EncodeFrame(
          proto::FrameType::kError,
          proto::MakeErrorBody({proto::Errc::kInternal,
                                std::string("ferryd produced no ") + proto::FrameTypeName(type)},
                               /*fatal=*/false));
    }
    *slot = std::move(encoded);
    self->Pump();
  };
}

// FLUSH_REQ and DEADLETTER_REQ are about the sinks, which the daemon answers (its handler
// knows whether there are any); a body that does not parse is refused here, without closing
// the connection.
template <typename Request, typename Handler>
void IngestSession::HandleSinkRequest(const proto::Frame& frame,
                                      bool (*parse)(std::string_view, Request*, proto::Error*),
                                      const Handler& handler, proto::FrameType reply_type) {
  Request request;
  proto::Error error;
  if (!parse(frame.body, &request, &error)) {
    RefuseFrame(error, /*fatal=*/false);
    return;
  }
  if (!handler) {
    QueueError({proto::Errc::kUnexpectedType,
                std::string(proto::FrameTypeName(frame.type)) + " is not handled by this ferryd"},
               /*fatal=*/false);
    return;
  }
  handler(std::move(request), OweReply(reply_type));
}

}  // namespace ferry
