#include "daemon/redact/redact.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/test_util.h"

namespace ferry {
namespace {

std::shared_ptr<const Redactor> Make(RedactOptions options = {}) {
  std::shared_ptr<const Redactor> r;
  Status s = Redactor::Compile(options, &r);
  INFO(s.ToString());
  REQUIRE(s.ok());
  REQUIRE(r != nullptr);
  return r;
}

std::string CompileError(const RedactOptions& options) {
  std::shared_ptr<const Redactor> r;
  Status s = Redactor::Compile(options, &r);
  CHECK_FALSE(s.ok());
  CHECK(s.code() == Status::Code::kInvalidArgument);
  return s.message();
}

// The built-in redactor's rewrite of `text`.
std::string Redact(const std::string& text, size_t* count = nullptr) {
  static const std::shared_ptr<const Redactor> r = Make();
  std::string out = text;
  size_t n = r->RedactString(&out);
  if (count) *count = n;
  return out;
}

// Sanity of the count: 0 exactly when nothing changed.
void Unchanged(const std::string& text) {
  size_t n = 1;
  CHECK(Redact(text, &n) == text);
  CHECK(n == 0);
}

std::string Serialize(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

const std::string kAwsSecret = "fAkE/sEcReT+KeY/fOr/ReDaCtIoN/TeStS00000";  // 40
const std::string kGhp = "ghp_FaKe0ToKeN0fOr0ReDaCtIoN0TeStS000000";        // ghp_ + 36

TEST_CASE("redact: rule names, built-in first", "[redact]") {
  RedactOptions options;
  options.rules.push_back({"corp-host", R"([a-z0-9-]+\.corp\.example\.com)", "[REDACTED:host]"});
  CHECK(Make(options)->rule_names() ==
        std::vector<std::string>{"aws-access-key-id", "aws-secret-key", "github-token",
                                 "slack-token", "private-key", "jwt", "bearer", "url-credentials",
                                 "cli-password", "secret-pair", "secret-flag", "corp-host"});
  options.builtin = false;
  CHECK(Make(options)->rule_names() == std::vector<std::string>{"corp-host"});
  CHECK(Make(RedactOptions{false, {}})->rule_names().empty());
}

TEST_CASE("redact: aws-access-key-id", "[redact]") {
  size_t n = 0;
  CHECK(Redact("id AKIAFAKE0EXAMPLE0KEY.", &n) == "id [REDACTED:aws-access-key-id].");
  CHECK(n == 1);
  for (const char* prefix : {"AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA"}) {
    CHECK(Redact(std::string(prefix) + "ABCDEFGHIJ012345") == "[REDACTED:aws-access-key-id]");
  }
  CHECK(Redact("AWS_ACCESS_KEY_ID=AKIAFAKE0EXAMPLE0KEY") ==
        "AWS_ACCESS_KEY_ID=[REDACTED:aws-access-key-id]");
  // Inside ordinary words, too short, too long, lower case, unknown prefix: untouched.
  Unchanged("MAKIAFAKE0EXAMPLE0KEY");
  Unchanged("AKIAFAKE0EXAMPLE0KEYS");
  Unchanged("AKIAFAKE0EXAMPLE0KE");
  Unchanged("akiafake0example0key");
  Unchanged("AKIAfake0example0key");
  Unchanged("ABCDFAKE0EXAMPLE0KEY");
  Unchanged("the WIKIA AKIAK and ASIAN pages");
}

TEST_CASE("redact: aws-secret-key keeps the key name", "[redact]") {
  CHECK(Redact("AWS_SECRET_ACCESS_KEY=" + kAwsSecret) ==
        "AWS_SECRET_ACCESS_KEY=[REDACTED:aws-secret-key]");
  CHECK(Redact("aws_secret_access_key = " + kAwsSecret + "\n") ==
        "aws_secret_access_key = [REDACTED:aws-secret-key]\n");
  CHECK(Redact("secret_access_key: '" + kAwsSecret + "'") ==
        "secret_access_key: '[REDACTED:aws-secret-key]'");
  CHECK(Redact(R"({"aws_secret_access_key":")" + kAwsSecret + R"("})") ==
        R"({"aws_secret_access_key":"[REDACTED:aws-secret-key]"})");
  // 40 base64 characters without the name: nothing to say it is a key.
  Unchanged("sha " + kAwsSecret);
  // 39 or 41 characters: not this detector, but the name still ends in access_key.
  CHECK(Redact("AWS_SECRET_ACCESS_KEY=" + kAwsSecret.substr(1)) ==
        "AWS_SECRET_ACCESS_KEY=[REDACTED:secret-pair]");
  CHECK(Redact("AWS_SECRET_ACCESS_KEY=" + kAwsSecret + "A") ==
        "AWS_SECRET_ACCESS_KEY=[REDACTED:secret-pair]");
}

TEST_CASE("redact: github-token", "[redact]") {
  for (const char* prefix : {"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}) {
    CHECK(Redact(std::string("x ") + prefix + kGhp.substr(4) + " y") ==
          "x [REDACTED:github-token] y");
  }
  CHECK(Redact(kGhp + "moreChars") == "[REDACTED:github-token]");
  CHECK(Redact("github_pat_11ABCDEFG0123456789_abcdefXYZ") == "[REDACTED:github-token]");
  CHECK(Redact("-H 'Authorization: token " + kGhp + "'") ==
        "-H 'Authorization: token [REDACTED:github-token]'");
  Unchanged(kGhp.substr(0, kGhp.size() - 1));          // 35 characters
  Unchanged("ghx_" + kGhp.substr(4));                  // unknown prefix
  Unchanged("aghp_" + kGhp.substr(4));                 // inside a word
  Unchanged("github_pat_short_one");                   // under 22
  Unchanged("ghp_ is the prefix of GitHub's tokens");  // prose
}

TEST_CASE("redact: slack-token", "[redact]") {
  const std::string xoxb = "xoxb-000000000000-000000000000-FAKEfakeFAKEfakeFAKEfake";
  CHECK(Redact("SLACK=" + xoxb + " next") == "SLACK=[REDACTED:slack-token] next");
  for (char c : std::string("abposr")) {
    CHECK(Redact(std::string("xox") + c + "-1234567890") == "[REDACTED:slack-token]");
  }
  Unchanged("xoxb-123456789");  // 9 after the dash
  Unchanged("xoxz-1234567890");
  Unchanged("fxoxb-1234567890");
}

TEST_CASE("redact: private-key blocks", "[redact]") {
  const std::string block =
      "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2\nabc+/==\n"
      "-----END RSA PRIVATE KEY-----";
  CHECK(Redact("key:\n" + block + "\nafter") == "key:\n[REDACTED:private-key]\nafter");
  CHECK(Redact("-----BEGIN PRIVATE KEY-----\\nMIIB\\n-----END PRIVATE KEY----- x") ==
        "[REDACTED:private-key] x");
  CHECK(Redact("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----") ==
        "[REDACTED:private-key]");
  CHECK(Redact("-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQ\n-----END PGP PRIVATE KEY BLOCK-----") ==
        "[REDACTED:private-key]");
  // Two blocks are two replacements; the text between them stays.
  size_t n = 0;
  CHECK(Redact(block + " mid " + block, &n) == "[REDACTED:private-key] mid [REDACTED:private-key]");
  CHECK(n == 2);
  // No END (a truncated event): redacted to the end of the string.
  CHECK(Redact("cat id: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEE...") ==
        "cat id: [REDACTED:private-key]");
  Unchanged("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----");
  Unchanged("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
  Unchanged("a PRIVATE KEY is not a block");
}

TEST_CASE("redact: jwt", "[redact]") {
  const std::string jwt =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
      "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
  CHECK(Redact("token " + jwt + " end") == "token [REDACTED:jwt] end");
  CHECK(Redact("alg none: eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.") == "alg none: [REDACTED:jwt]");
  Unchanged("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0");  // two parts
  Unchanged("eyJ alone");
  Unchanged("xeyJhbGci.eyJzdWIi.abc");  // inside a word
}

TEST_CASE("redact: bearer keeps the scheme", "[redact]") {
  CHECK(Redact("Authorization: Bearer abc123XYZ.-_~+/=") ==
        "Authorization: Bearer [REDACTED:bearer]");
  CHECK(Redact("curl -H 'authorization: bearer short'") ==
        "curl -H 'authorization: bearer [REDACTED:bearer]'");
  CHECK(Redact("Bearer 0123456789abcdef") == "Bearer [REDACTED:bearer]");
  CHECK(Redact("BEARER 0123456789abcdef") == "BEARER [REDACTED:bearer]");
  CHECK(Redact("Authorization: Basic dXNlcjpwYXNzd29yZA==") ==
        "Authorization: Basic [REDACTED:bearer]");
  CHECK(Redact("Proxy-Authorization: Basic dXNlcjpw") ==
        "Proxy-Authorization: Basic [REDACTED:bearer]");
  CHECK(Redact(R"({"Authorization":"Basic dXNlcjpw"})") ==
        R"({"Authorization":"Basic [REDACTED:bearer]"})");
  // A bearer JWT is the jwt detector's; the bearer detector leaves its replacement alone.
  CHECK(Redact("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.sig") == "Bearer [REDACTED:jwt]");
  Unchanged("the bearer of bad news");  // a lone Bearer needs 8+ token characters
  Unchanged("Basic dXNlcjpwYXNzd29yZA== without the header");
  Unchanged("Authorization: Bearer [REDACTED]");
  Unchanged("Authorization: Bearer $TOKEN");
}

TEST_CASE("redact: secret-pair keeps the name", "[redact]") {
  for (const char* name : {"password", "passwd", "pwd", "secret", "token", "api_key", "apikey",
                           "access_key", "client_secret", "PASSWORD", "Api-Key"}) {
    INFO(name);
    CHECK(Redact(std::string(name) + "=hunter2") == std::string(name) + "=[REDACTED:secret-pair]");
    CHECK(Redact(std::string(name) + ": hunter2") ==
          std::string(name) + ": [REDACTED:secret-pair]");
  }
  // Names that end with one of the words.
  CHECK(Redact("export GITHUB_TOKEN=abc123 SLACK_BOT_TOKEN=def") ==
        "export GITHUB_TOKEN=[REDACTED:secret-pair] SLACK_BOT_TOKEN=[REDACTED:secret-pair]");
  CHECK(Redact("DB_PASSWORD: s3cr3t\nDB_HOST: db") ==
        "DB_PASSWORD: [REDACTED:secret-pair]\nDB_HOST: db");
  CHECK(Redact("--db-password=s3cr3t --user=me") ==
        "--db-password=[REDACTED:secret-pair] --user=me");
  CHECK(Redact("clientSecret: abc") == "clientSecret: [REDACTED:secret-pair]");
  CHECK(Redact("https://h/p?access_token=abc&page=2") ==
        "https://h/p?access_token=[REDACTED:secret-pair]&page=2");
  CHECK(Redact("Server=db;Password=p@ss w;User=sa") ==
        "Server=db;Password=[REDACTED:secret-pair] w;User=sa");
  // Quoted values run to the closing quote (spaces included), also inside JSON text.
  CHECK(Redact(R"(password = "correct horse battery")") ==
        R"(password = "[REDACTED:secret-pair]")");
  CHECK(Redact("secret: 'a b'") == "secret: '[REDACTED:secret-pair]'");
  CHECK(Redact(R"({"password":"p@ss","user":"me"})") ==
        R"({"password":"[REDACTED:secret-pair]","user":"me"})");
  CHECK(Redact(R"(echo {\"api_key\":\"k-123\"})") ==
        R"(echo {\"api_key\":\"[REDACTED:secret-pair]\"})");
  // Any non-empty value counts, however short: token=x is redacted.
  CHECK(Redact("token=x") == "token=[REDACTED:secret-pair]");
  // Already redacted (here or upstream), empty, a comparison, not a name: untouched.
  Unchanged("password=[REDACTED]");
  Unchanged("GITHUB_TOKEN=[REDACTED:github-token]");
  Unchanged("password=");
  Unchanged("password=\"\"");
  Unchanged("if token == expected");
  Unchanged("tokens=5 token_count=3 password_hint=x");
  Unchanged("the password is hunter2");
  // A value another detector took first is not redacted twice.
  CHECK(Redact("GITHUB_TOKEN=" + kGhp) == "GITHUB_TOKEN=[REDACTED:github-token]");
  // Idempotent: a second pass changes nothing.
  const std::string once = Redact("api_key=abc token=def " + kGhp);
  Unchanged(once);
}

TEST_CASE("redact: user rules with groups, after the built-in ones", "[redact]") {
  RedactOptions options;
  options.rules.push_back(
      {"corp-host", R"(([a-z0-9-]+)\.corp\.example\.com)", "$1.[REDACTED:host]"});
  options.rules.push_back({"ticket", R"((?<proj>[A-Z]+)-(?<num>\d+))", "${proj}-${num}/$num $$"});
  options.rules.push_back({"plain", "hunter[0-9]", ""});
  auto r = Make(options);
  std::string text = "ssh db1.corp.example.com; see OPS-42; hunter2; token=abc";
  CHECK(r->RedactString(&text) == 4);
  CHECK(text ==
        "ssh db1.[REDACTED:host]; see OPS-42/42 $; [REDACTED]; token=[REDACTED:secret-pair]");

  // Built-in off: only the user's rules.
  options.builtin = false;
  r = Make(options);
  text = "token=abc hunter7";
  CHECK(r->RedactString(&text) == 1);
  CHECK(text == "token=abc [REDACTED]");

  // A group that did not take part is empty.
  RedactOptions alt{false, {{"alt", "(a)|(b)", "<$1|$2>"}}};
  text = "ab";
  CHECK(Make(alt)->RedactString(&text) == 2);
  CHECK(text == "<a|><|b>");
}

TEST_CASE("redact: compile errors name the rule", "[redact]") {
  CHECK(CompileError({true, {{"corp-host", "(corp-h", ""}}}) ==
        R"(redact rule "corp-host": pattern: missing closing parenthesis at offset 7)");
  CHECK(CompileError({true, {{"x", "[a-z", ""}}}) ==
        R"(redact rule "x": pattern: missing terminating ] for character class at offset 4)");
  CHECK(CompileError({true, {{"", "a", ""}}}) == "redact rule: empty name");
  CHECK(CompileError({true, {{"a", "x", ""}, {"a", "y", ""}}}) ==
        R"(redact rule "a": duplicate name)");
  CHECK(CompileError({true, {{"jwt", "x", ""}}}) ==
        R"(redact rule "jwt": duplicate name (a built-in detector has it))");
  CHECK(CompileError({true, {{"e", "", ""}}}) == R"(redact rule "e": pattern: empty)");
  CHECK(CompileError({true, {{"e", "a*", ""}}}) ==
        R"(redact rule "e": pattern: can match an empty string)");
  CHECK(CompileError({true, {{"g", "(a)", "$2"}}}) ==
        R"(redact rule "g": replacement: unknown group 2)");
  CHECK(CompileError({true, {{"g", "(a)", "${nope}"}}}) ==
        R"(redact rule "g": replacement: unknown group name "nope")");
  CHECK(CompileError({true, {{"g", "(a)", "costs $ 5"}}}) ==
        R"(redact rule "g": replacement: $ at offset 6 is not followed by a group number, )"
        R"(a group name or $)");
  CHECK(CompileError({true, {{"g", "(a)", "${1"}}}) ==
        R"(redact rule "g": replacement: missing } after ${ at offset 0)");
  // Without the built-in detectors a user rule may take one of their names.
  Make({false, {{"jwt", "eyJ", ""}}});
}

TEST_CASE("redact: NUL bytes are ordinary characters", "[redact]") {
  using namespace std::string_literals;
  // A NUL ends a bare value (as any control character does) but not the string.
  std::string text = "a\0token=abc\0def\0"s + kGhp + "\0"s;
  size_t n = 0;
  CHECK(Redact(text, &n) == "a\0token=[REDACTED:secret-pair]\0def\0[REDACTED:github-token]\0"s);
  CHECK(n == 2);
  CHECK(Redact("password=\"p\0w\"\0tail"s) == "password=\"[REDACTED:secret-pair]\"\0tail"s);
  RedactOptions options{false, {{"nul", "x\0y"s, "[NUL]"}}};
  text = "ax\0yb\0"s;
  CHECK(Make(options)->RedactString(&text) == 1);
  CHECK(text == "a[NUL]b\0"s);
}

TEST_CASE("redact: invalid UTF-8 is matched around, not rejected", "[redact]") {
  std::string text = "\xff\xfe token=abc \xc3 " + kGhp + " \xe2\x82 end \xf0\x9f\x98\x80";
  size_t n = 0;
  CHECK(Redact(text, &n) ==
        "\xff\xfe token=[REDACTED:secret-pair] \xc3 [REDACTED:github-token] "
        "\xe2\x82 end \xf0\x9f\x98\x80");
  CHECK(n == 2);
  // A rule that matches any character copes with the bad bytes too.
  RedactOptions options{false, {{"any", ".", "_"}}};
  text = "a\xff\xc3\xa9z\x80";
  auto r = Make(options);
  r->RedactString(&text);
  CHECK(text.find('a') == std::string::npos);
  CHECK(text.find('z') == std::string::npos);
  CHECK(text.find("\xc3\xa9") == std::string::npos);
}

TEST_CASE("redact: a detector that cannot finish fails closed", "[redact]") {
  // Catastrophic backtracking hits PCRE2's match limit.
  RedactOptions options{false, {{"slow", "(a+)+$", ""}}};
  std::string text = "keep " + std::string(40, 'a') + "b secret";
  auto r = Make(options);
  CHECK(r->RedactString(&text) == 1);
  CHECK(text == "[REDACTED:match-error]");
}

TEST_CASE("redact: RedactJson walks values, keys, arrays and nested objects", "[redact]") {
  auto r = Make();
  // GHP stands for a GitHub token.
  std::string json =
      R"({"cmd":"token=abc","nested":{"list":[1,"x GHP",{"deep":["AKIAFAKE0EXAMPLE0KEY"]}],)"
      R"("n":null,"b":true},"GHP":"key is a token",)"
      R"("env":{"DB_PASSWORD":"hunter2","OPENAI_API_KEY":"sk-abc","GITHUB_TOKEN":"GHP",)"
      R"("HOME":"/home/u","token":""},)"
      R"("headers":{"Authorization":"Basic dXNl","proxy-authorization":"tok",)"
      R"("X-Auth":"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."},)"
      R"("nul":"a\u0000token=abc"})";
  for (size_t at; (at = json.find("GHP")) != std::string::npos;) json.replace(at, 3, kGhp);
  rapidjson::Document doc;
  REQUIRE_FALSE(doc.Parse(json.data(), json.size()).HasParseError());
  CHECK(r->RedactJson(&doc, doc.GetAllocator()) == 11);
  CHECK(Serialize(doc) ==
        R"({"cmd":"token=[REDACTED:secret-pair]",)"
        R"("nested":{"list":[1,"x [REDACTED:github-token]",)"
        R"({"deep":["[REDACTED:aws-access-key-id]"]}],"n":null,"b":true},)"
        R"("[REDACTED:github-token]":"key is a token",)"
        R"("env":{"DB_PASSWORD":"[REDACTED:secret-pair]",)"
        R"("OPENAI_API_KEY":"[REDACTED:secret-pair]","GITHUB_TOKEN":"[REDACTED:github-token]",)"
        R"("HOME":"/home/u","token":""},)"
        R"("headers":{"Authorization":"Basic [REDACTED:bearer]",)"
        R"("proxy-authorization":"[REDACTED:bearer]","X-Auth":"Bearer [REDACTED:jwt]"},)"
        R"("nul":"a\u0000token=[REDACTED:secret-pair]"})");
  // A plain string document, and nothing to do.
  rapidjson::Document s;
  s.SetString("password=x", s.GetAllocator());
  CHECK(r->RedactJson(&s, s.GetAllocator()) == 1);
  CHECK(std::string(s.GetString()) == "password=[REDACTED:secret-pair]");
  rapidjson::Document clean;
  clean.Parse(R"({"a":[1,2,{"b":"c"}]})");
  CHECK(r->RedactJson(&clean, clean.GetAllocator()) == 0);
  CHECK(Serialize(clean) == R"({"a":[1,2,{"b":"c"}]})");
}

TEST_CASE("redact: RedactJson copes with very deep nesting", "[redact]") {
  auto r = Make();
  rapidjson::Document doc;
  const int depth = 20000;
  std::string json = std::string(depth, '[') + "\"token=abc\"" + std::string(depth, ']');
  REQUIRE_FALSE(doc.Parse<rapidjson::kParseIterativeFlag>(json.c_str()).HasParseError());
  CHECK(r->RedactJson(&doc, doc.GetAllocator()) == 1);
  doc.SetNull();  // rapidjson's destructor is iterative; nothing else to check
}

TEST_CASE("redact: hook fixtures with secrets leave none in the output", "[redact]") {
  const std::string dir = FERRY_FIXTURES_DIR;
  struct stat st;
  if (::stat((dir + "/MANIFEST.json").c_str(), &st) != 0) {
    WARN("no hook fixtures at " << dir << "; skipped");
    return;
  }
  rapidjson::Document manifest;
  const std::string manifest_text = test::ReadFile(dir + "/MANIFEST.json");
  REQUIRE_FALSE(manifest.Parse(manifest_text.data(), manifest_text.size()).HasParseError());
  auto r = Make();
  int checked = 0;
  for (const auto& fx : manifest["fixtures"].GetArray()) {
    if (!fx.HasMember("expect") || !fx["expect"].HasMember("secrets")) continue;
    const std::string file = fx["file"].GetString();
    INFO(file);
    const std::string text = test::ReadFile(dir + "/" + file);
    rapidjson::Document doc;
    REQUIRE_FALSE(doc.Parse(text.data(), text.size()).HasParseError());
    CHECK(r->RedactJson(&doc, doc.GetAllocator()) > 0);
    const std::string out = Serialize(doc);
    for (const auto& secret : fx["expect"]["secrets"].GetArray()) {
      const std::string s(secret.GetString(), secret.GetStringLength());
      INFO(s);
      CHECK(out.find(s) == std::string::npos);
    }
    CHECK(out.find("[REDACTED:") != std::string::npos);
    ++checked;
  }
  CHECK(checked >= 3);
}

TEST_CASE("redact: one Redactor shared by four threads", "[redact]") {
  RedactOptions options;
  options.rules.push_back({"corp-host", R"(([a-z0-9-]+)\.corp\.example\.com)", "$1.[host]"});
  std::shared_ptr<const Redactor> r = Make(options);
  const std::string input =
      "AWS_SECRET_ACCESS_KEY=" + kAwsSecret + " " + kGhp + " db.corp.example.com token=abc";
  const std::string expected =
      "AWS_SECRET_ACCESS_KEY=[REDACTED:aws-secret-key] [REDACTED:github-token] db.[host] "
      "token=[REDACTED:secret-pair]";
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        std::string text = input + " #" + std::to_string(i);
        if (r->RedactString(&text) != 4 || text != expected + " #" + std::to_string(i)) {
          ++bad[static_cast<size_t>(t)];
        }
        rapidjson::Document doc;
        doc.Parse(R"({"password":"x","cmd":"Bearer 0123456789abcdef"})");
        if (r->RedactJson(&doc, doc.GetAllocator()) != 2) ++bad[static_cast<size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(bad == std::vector<int>(4, 0));
}

}  // namespace
}  // namespace ferry
