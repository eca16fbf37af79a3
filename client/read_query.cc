#include "client/read_query.h"

#include <chrono>
#include <utility>

#include "client/common.h"
#include "client/read_conn.h"
#include "proto/messages.h"

namespace ferry::client {

ReadQuery::ReadQuery(const GlobalOptions& global, unsigned long long timeout_ms, std::string what)
    : global_(global), timeout_ms_(timeout_ms), what_(std::move(what)) {}

int ReadQuery::Run(const std::string& sql, unsigned long long limit, rapidjson::Document* doc,
                   std::string* error_message) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms_);
  if (!connected_) {
    socket_ = ResolveSocket(global_);
    if (!ConnectForRead(&conn_, global_, socket_, deadline, /*allow_offline=*/true)) {
      return kNotRunningExitCode;
    }
    connected_ = true;
  }
  const std::string frame =
      proto::EncodeFrame(proto::FrameType::kQueryReq, proto::MakeQueryRequestBody({sql, limit}));
  if (const int rc = SendForRead(conn_, frame, deadline, global_, socket_, what_)) return rc;
  proto::FrameType type;
  std::string body;
  if (const int rc = ReceiveForRead(conn_, deadline, &type, &body, global_, socket_, what_)) {
    return rc;
  }
  proto::Error perr;
  if (type == proto::FrameType::kError) {
    proto::ParseErrorBody(body, &perr);
    if (error_message) {
      *error_message = perr.message;
      return 1;
    }
    std::string message = std::string(proto::ErrcName(perr.code)) + ": " + perr.message;
    if (perr.message.find("no such table: tool_spans") != std::string::npos) {
      message += " (ferry.db was made by an older ferryd; start ferryd once to upgrade it)";
    }
    Complain(message);
    return 1;
  }
  if (type != proto::FrameType::kQueryResult || !proto::ParseJson(body, doc, &perr) ||
      !doc->IsObject() || !doc->HasMember("columns") || !(*doc)["columns"].IsArray() ||
      !doc->HasMember("rows") || !(*doc)["rows"].IsArray()) {
    Complain("ferryd returned an unreadable query result");
    return 1;
  }
  return 0;
}

std::string SqlString(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

}  // namespace ferry::client
