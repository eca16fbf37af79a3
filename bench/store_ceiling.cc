// The raw SQLite ceiling for the store benchmark (bench/store_bench.py): reads every record
// of a journal and inserts the same rows into a fresh database with ferry's schema, in
// transactions of the same size as the store writer's batches, with one prepared statement
// and nothing else (no session aggregates, no cursor, no waiting for the journal).
//
//   store_ceiling JOURNAL_DIR OUT_DB [BATCH_EVENTS]      prints one JSON line
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include "daemon/journal/reader.h"
#include "daemon/store/schema.h"
#include "proto/event.h"

namespace {

std::string Str(const rapidjson::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: store_ceiling JOURNAL_DIR OUT_DB [BATCH_EVENTS]\n");
    return 2;
  }
  const size_t batch = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 1000;
  std::vector<ferry::JournalRecord> records;
  ferry::JournalReader reader(argv[1], 1);
  ferry::JournalRecord rec;
  while (true) {
    const auto r = reader.Next(UINT64_MAX, &rec);
    if (r == ferry::JournalReader::Result::kEnd) break;
    if (r == ferry::JournalReader::Result::kIOError) {
      std::fprintf(stderr, "%s\n", reader.error().c_str());
      return 1;
    }
    if (r == ferry::JournalReader::Result::kRecord) records.push_back(std::move(rec));
  }
  SQLite::Database db(argv[2], SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = NORMAL");
  ferry::store::Migrate(db);
  const auto t0 = std::chrono::steady_clock::now();
  SQLite::Statement ins(db,
                        "INSERT INTO events(seq, id, ts, received, source, kind, session, cwd, "
                        "host, pid, payload) VALUES(?,?,?,?,?,?,?,?,?,?,?) "
                        "ON CONFLICT(id) DO NOTHING");
  rapidjson::Document doc;
  rapidjson::StringBuffer sb;
  for (size_t i = 0; i < records.size(); i += batch) {
    SQLite::Transaction txn(db);
    for (size_t k = i; k < records.size() && k < i + batch; ++k) {
      ferry::proto::Error err;
      if (!ferry::proto::ParseJson(records[k].body, &doc, &err) || !doc.IsObject()) continue;
      ins.reset();
      ins.clearBindings();
      ins.bind(1, static_cast<int64_t>(records[k].seq));
      ins.bind(2, Str(doc, "id"));
      if (doc.HasMember("ts") && doc["ts"].IsInt64()) ins.bind(3, doc["ts"].GetInt64());
      ins.bind(4, records[k].received_ns);
      ins.bind(5, Str(doc, "source"));
      ins.bind(6, Str(doc, "kind"));
      ins.bind(7, Str(doc, "session"));
      if (doc.HasMember("payload")) {
        sb.Clear();
        ferry::proto::JsonWriter w(sb);
        doc["payload"].Accept(w);
        ins.bind(11, std::string(sb.GetString(), sb.GetSize()));
      }
      ins.exec();
    }
    txn.commit();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("{\"rows\":%zu,\"seconds\":%.3f,\"rows_per_s\":%.0f,\"batch_events\":%zu}\n",
              records.size(), s, static_cast<double>(records.size()) / s, batch);
  return 0;
}
