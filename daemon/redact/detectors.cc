#include "daemon/redact/detectors.h"

namespace ferry::redact {
namespace {

// Names that make `name=value` / `name: value` a secret pair, also as the end of a longer name
// (GITHUB_TOKEN, SLACK_BOT_TOKEN, DB_PASSWORD, clientSecret, mysql_pw). Case-insensitive. `pw`
// only as a whole word or after _ . - (so `cpw` is not one).
constexpr std::string_view kPairWords =
    "password|passwd|passphrase|pwd|(?<![A-Za-z0-9])pw|secret|token|api[_-]?key|apikey|"
    "access[_-]?key|private[_-]?key|client_secret";

// Shell variables that end in one of the words but hold no secret (PWD=/home/u).
constexpr std::string_view kNotPairNames = "(?!(?:OLD)?PWD(?![A-Za-z0-9_.-]))";

// `\"`, `"`, `'` or nothing (a quoted name, also inside JSON text that sits in a string).
constexpr std::string_view kQuote = R"((?:\\?["'])?)";

// What the detectors do not touch again: their own replacement, also inside brackets.
constexpr std::string_view kNotRedacted = R"((?!\[+REDACTED))";

// A value after a name: quoted (up to the closing quote, also as \" inside JSON text), a
// bracketed list (`[1, 2]`, its content), or bare (up to white space, a control character, a
// quote or one of , ; & | < > ( ) { } \). An empty value is left.
std::string Value() {
  const std::string nr(kNotRedacted);
  return R"((?:\\?"\K)" + nr + R"((?:[^"\\\r\n]|\\(?!"))++)" + R"(|\\?'\K)" + nr +
         R"((?:[^'\\\r\n]|\\(?!'))++)" + R"(|\[(?!REDACTED)\K)" + nr + R"([^\]\r\n]++(?=\]))" +
         R"(|\K)" + nr + R"((?![:=])[^\s\x00-\x1f"'`,;&|<>(){}\\]++))";
}

}  // namespace

std::string Trigger() {
  std::string pattern = "(?i)";
  for (std::string_view w : kTriggerWords) pattern.append(w).append("|");
  return pattern + "://[^\\s/?#]*@";
}

std::vector<Builtin> Builtins() {
  const std::string words(kPairWords);
  const std::string pair_name =
      "(?<![A-Za-z0-9_.-])" + std::string(kNotPairNames) + "[A-Za-z0-9_.-]*(?i:" + words + ")";
  const std::string sep = std::string(kQuote) + "[ \\t]*[:=][ \\t]*";
  const std::string nr(kNotRedacted);
  const std::string token68 = R"([A-Za-z0-9\-._~+/]+=*)";
  // Authorization schemes after which the credential follows (RFC 9110 and common APIs).
  const std::string schemes =
      "(?:bearer|basic|token|digest|negotiate|ntlm|dpop|apikey|api-key|key|jwt|sso-key|"
      "aws4-hmac-sha256)";
  return {
      {"aws-access-key-id",
       R"((?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?![A-Za-z0-9]))"},
      {"aws-secret-key", "(?i:secret_access_key)" + sep + std::string(kQuote) +
                             R"(\K[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=]))"},
      {"github-token",
       R"((?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}))"},
      {"slack-token", R"((?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,})"},
      // An unterminated block (a truncated event) is redacted to the end of the string.
      {"private-key", R"(-----BEGIN[A-Z0-9 ]{0,64}PRIVATE KEY(?: BLOCK)?-----)"
                      R"((?:[\s\S]*?-----END[A-Z0-9 ]{0,64}PRIVATE KEY(?: BLOCK)?-----|[\s\S]*+))"},
      {"jwt", R"((?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]++\.[A-Za-z0-9_-]++\.[A-Za-z0-9_-]*+)"},
      // After `Authorization:` a known scheme and any token, or (no scheme) a token of 16 or
      // more characters with a digit; a lone `Bearer` needs 8 or more token characters (so
      // that prose such as "the bearer of" or "the Authorization: header" stays).
      {"bearer", "(?i)(?:\\b(?:proxy-)?authorization" + sep + std::string(kQuote) +
                     "(?:" + schemes + "[ \\t]+\\K" + nr + token68 + "|\\K" + nr +
                     R"((?=[A-Za-z0-9\-._~+/]*[0-9])[A-Za-z0-9\-._~+/]{16,}=*)|\bbearer[ \t]+\K)" +
                     nr + R"([A-Za-z0-9\-._~+/]{8,}=*))"},
      // scheme://user:password@host: the password (the last @ before the path ends it). The
      // user has no [ or ] (RFC 3986 user info never does) and the password holds no
      // replacement, so what another detector wrote between `://` and an @ is not taken for
      // user info the second time round (redacting twice changes nothing).
      {"url-credentials", R"((?i)\b[a-z][a-z0-9+.-]*://[^\s/?#@:'"\\\[\]]*:\K)" + nr +
                              R"((?:(?!\[REDACTED)[^\s/?#'"\\])+(?=@))"},
      // Passwords in the arguments of tools known to take them: mysql/mariadb -pSECRET,
      // sshpass -p SECRET, curl -u user:SECRET.
      {"cli-password",
       R"(\b(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump|mariadb-admin)\b[^\n;&|]*?[ \t]-p\K)" +
           nr + R"([^\s"'`;&|<>()\\]+|\bsshpass\b[^\n;&|]*?[ \t]-p[ \t]*\K)" + nr +
           R"([^\s"'`;&|<>()\\]+|\bcurl\b[^\n;&|]*?[ \t](?:-u|--user)(?:[ \t]+|=)?["']?[^\s:"']+:\K)" +
           nr + R"([^\s"'`;&|<>()\\]+)"},
      {"secret-pair", pair_name + sep + Value()},
      // --password VALUE (with a space; `--password=VALUE` is a secret-pair).
      {"secret-flag",
       "(?<![A-Za-z0-9_.-])--[A-Za-z0-9_.-]*(?i:" + words + ")[ \\t]+(?!-)" + Value()},
  };
}

std::vector<MemberDetector> MemberDetectors() {
  return {
      // {"DB_PASSWORD": "..."}: all of a non-empty value; {"password": 1234} or [...]: whole.
      {"secret-pair",
       "\\A" + std::string(kNotPairNames) + "[A-Za-z0-9_.-]*(?i:" + std::string(kPairWords) +
           ")\\z",
       "\\A" + std::string(kNotRedacted) + "[\\s\\S]+", true},
      // {"Authorization": "Basic ..."}: the value after the scheme, whatever its length.
      {"bearer", "\\A(?i:(?:proxy-)?authorization)\\z",
       "\\A(?:[A-Za-z][A-Za-z0-9_-]*[ \\t]+)?+\\K" + std::string(kNotRedacted) + "[\\s\\S]+",
       false},
  };
}

}  // namespace ferry::redact
