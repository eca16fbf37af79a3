// The detectors added for secrets typed at a shell prompt (issue 12): exact output for each
// case, and text that must come out unchanged (false positives).
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <catch2/catch.hpp>

#include <string>

#include "daemon/redact/redact.h"

namespace ferry {
namespace {

const Redactor& Builtin() {
  static const std::shared_ptr<const Redactor> r = [] {
    std::shared_ptr<const Redactor> out;
    REQUIRE(Redactor::Compile(RedactOptions{}, &out).ok());
    return out;
  }();
  return *r;
}

std::string RedactOnce(std::string text) {
  Builtin().RedactString(&text);
  return text;
}

// Redacts `json` as a document; returns it serialized and the replacement count in *n.
std::string RedactDoc(const std::string& json, size_t* n) {
  rapidjson::Document doc;
  REQUIRE_FALSE(doc.Parse(json.data(), json.size()).HasParseError());
  *n = Builtin().RedactJson(&doc, doc.GetAllocator());
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  doc.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

void StaysUnchanged(const std::string& text) {
  std::string out = text;
  INFO(text);
  CHECK(Builtin().RedactString(&out) == 0);
  CHECK(out == text);
}

TEST_CASE("redact: local redaction is the default", "[redact]") {
  CHECK(RedactOptions{}.local);
  CHECK(RedactOptions{}.builtin);
}

TEST_CASE("redact: commands typed at a prompt, exact output", "[redact]") {
  const std::pair<const char*, const char*> cases[] = {
      {R"(curl -H "Authorization: Bearer abc.def-123" https://api.example.com)",
       R"(curl -H "Authorization: Bearer [REDACTED:bearer]" https://api.example.com)"},
      {"curl -H 'authorization: token xyz' https://x",
       "curl -H 'authorization: token [REDACTED:bearer]' https://x"},
      {R"(curl -H "Authorization: abcdef0123456789abcd" x)",
       R"(curl -H "Authorization: [REDACTED:bearer]" x)"},
      {"echo ghp_FaKe0ToKeN0fOr0ReDaCtIoN0TeStS000000", "echo [REDACTED:github-token]"},
      {"password=$x ./deploy", "password=[REDACTED:secret-pair] ./deploy"},
      {"mysql_pw=hunter2 mysql -u root", "mysql_pw=[REDACTED:secret-pair] mysql -u root"},
      {"DB-PW: hunter2", "DB-PW: [REDACTED:secret-pair]"},
      {"MYSQL_PWD=hunter2 mysql", "MYSQL_PWD=[REDACTED:secret-pair] mysql"},
      {"export Db_Password=abc", "export Db_Password=[REDACTED:secret-pair]"},
      {"passphrase=correct-horse", "passphrase=[REDACTED:secret-pair]"},
      {"SSH_PRIVATE_KEY=abc", "SSH_PRIVATE_KEY=[REDACTED:secret-pair]"},
      {"mysql -u root -phunter2 db", "mysql -u root -p[REDACTED:cli-password] db"},
      {"mysqldump -h db -pHunter2 app > x.sql",
       "mysqldump -h db -p[REDACTED:cli-password] app > x.sql"},
      {"sshpass -p hunter2 ssh host", "sshpass -p [REDACTED:cli-password] ssh host"},
      {"curl -u alice:s3cret https://x", "curl -u alice:[REDACTED:cli-password] https://x"},
      {"curl --user=alice:s3cret https://x", "curl --user=alice:[REDACTED:cli-password] https://x"},
      {"docker login -u me --password hunter2 registry",
       "docker login -u me --password [REDACTED:secret-flag] registry"},
      {R"(tool --api-key "k 1" --verbose)", R"(tool --api-key "[REDACTED:secret-flag]" --verbose)"},
      {"git clone https://alice:s3cr3t@github.com/org/repo.git",
       "git clone https://alice:[REDACTED:url-credentials]@github.com/org/repo.git"},
      {"psql postgres://app:pa55@db:5432/app",
       "psql postgres://app:[REDACTED:url-credentials]@db:5432/app"},
      // An @ inside the password: the last @ before the host ends it.
      {"curl https://u:p@ss@host/x", "curl https://u:[REDACTED:url-credentials]@host/x"},
      // A secret pair between `://` and an @ (found by the redact fuzzer): its replacement's
      // colon is not a user:password separator the second time round.
      {"ps://ng\x11SECRET_ACCESS_KEY=fA/Ek\x01@Y",
       "ps://ng\x11SECRET_ACCESS_KEY=[REDACTED:secret-pair]\x01@Y"},
      {"ps://ng\x11SECRET_:ACCESS_KEY=fA/Ek\x01@Y",
       "ps://ng\x11SECRET_:ACCESS_KEY=[REDACTED:secret-pair]\x01@Y"},
      {R"(curl -d '{"password":[1,2,3],"user":"x"}' x)",
       R"(curl -d '{"password":[[REDACTED:secret-pair]],"user":"x"}' x)"},
      {R"(curl -d '{"pin":1,"Password":12345}' x)",
       R"(curl -d '{"pin":1,"Password":[REDACTED:secret-pair]}' x)"},
  };
  for (const auto& [in, out] : cases) {
    INFO(in);
    CHECK(RedactOnce(in) == out);
    StaysUnchanged(out);  // idempotent
  }
}

TEST_CASE("redact: non-secret text is never altered", "[redact]") {
  for (const char* text : {
           "echo password-reset.md",
           "git log --author=pass",
           "grep -r password src/",
           "kubectl get secrets",
           "git checkout feature/token-refresh",
           "docker login --password-stdin < f",
           "mysql -u root -p",
           "mysql -u root -P 3306 -h db",
           "PWD=/tmp make",
           "env OLDPWD=/x",
           "cpw=abc",
           "max_tokens=100",
           "echo 'the Authorization: header is missing'",
           "ssh git@github.com:org/repo.git",
           "ssh://git@host:22/repo",
           "curl http://host:8080/path@x",
           "curl https://user:@host/",
           "curl -u alice https://x",
           "--token-file=/run/secrets/t",
           "the bearer of bad news",
       }) {
    StaysUnchanged(text);
  }
}

TEST_CASE("redact: numbers and arrays under secret keys in JSON documents", "[redact]") {
  size_t n = 0;
  CHECK(RedactDoc(R"({"password":12345,"user":"me"})", &n) ==
        R"({"password":"[REDACTED:secret-pair]","user":"me"})");
  CHECK(n == 1);
  CHECK(RedactDoc(R"({"db":{"Password":[1,2,3],"port":5432},"mysql_pw":-1.5})", &n) ==
        R"({"db":{"Password":"[REDACTED:secret-pair]","port":5432},)"
        R"("mysql_pw":"[REDACTED:secret-pair]"})");
  CHECK(n == 2);
  CHECK(RedactDoc(R"({"pw":"x","url":"https://u:p@h/x","Authorization":"token abc"})", &n) ==
        R"({"pw":"[REDACTED:secret-pair]","url":"https://u:[REDACTED:url-credentials]@h/x",)"
        R"("Authorization":"token [REDACTED:bearer]"})");
  CHECK(n == 3);
  // An array of secrets in an object is replaced whole, strings included.
  CHECK(RedactDoc(R"({"api_keys":1,"api_key":["a","b"]})", &n) ==
        R"({"api_keys":1,"api_key":"[REDACTED:secret-pair]"})");
  CHECK(n == 1);
  // null, booleans, empty arrays and objects (walked into) stay; so do PWD and OLDPWD.
  const std::string kept = R"({"password":null,"secret":false,"token":{"a":"b"},"api_key":[],)"
                           R"("PWD":"/home/u","OLDPWD":"/","input_tokens":12})";
  CHECK(RedactDoc(kept, &n) == kept);
  CHECK(n == 0);
}

TEST_CASE("redact: MayChange is false only where RedactJson changes nothing", "[redact]") {
  const char* docs[] = {
      R"({"password":12345})",
      R"({"a":{"DB_PASSWORD":"x"}})",
      R"({"Authorization":"tok"})",
      R"({"k":["mysql -u r -pX"]})",
      R"({"u":"https://u:p@h/"})",
      R"({"x":"Bearer 0123456789abcdef"})",
      R"({"AKIAFAKE0EXAMPLE0KEY":1})",
      R"({"cmd":"echo password-reset.md"})",  // passes the prefilter, changes nothing
      R"({"a":[1,2,{"b":"c"}],"HOME":"/home/u"})",
      R"({"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","n":1})",
  };
  int changed = 0, skipped = 0;
  for (const char* json : docs) {
    INFO(json);
    rapidjson::Document doc;
    REQUIRE_FALSE(doc.Parse(json).HasParseError());
    const bool may = Builtin().MayChange(doc);
    const size_t n = Builtin().RedactJson(&doc, doc.GetAllocator());
    CHECK((n == 0 || may));
    changed += n > 0;
    skipped += !may;
  }
  CHECK(changed == 7);
  CHECK(skipped == 2);
  // With a user rule there is no prefilter; with no rules nothing can change.
  std::shared_ptr<const Redactor> user, none;
  REQUIRE(Redactor::Compile({false, {{"x", "x{5}", ""}}}, &user).ok());
  REQUIRE(Redactor::Compile({false, {}}, &none).ok());
  rapidjson::Document doc;
  doc.Parse(R"({"a":"b"})");
  CHECK(user->MayChange(doc));
  CHECK_FALSE(none->MayChange(doc));
}

}  // namespace
}  // namespace ferry
