// The flags of `ferry search` (client/args.h ParseSearchArgs). Pure parsing: no clock, no
// environment, no I/O.
#include <string>
#include <string_view>

#include "client/args.h"

namespace ferry::client {
namespace {

// --color, --limit and --since; false when argv[*i] is none of them.
bool TakeSearchValue(int argc, char** argv, int* i, SearchArgs* a, std::string* error) {
  std::string v;
  if (TakeValue(argc, argv, i, "--limit", &v, error)) {
    if (error->empty() && (!ParseUint(v, &a->limit) || a->limit == 0))
      *error = "--limit needs a positive integer, not \"" + v + "\"";
  } else if (TakeValue(argc, argv, i, "--since", &v, error)) {
    if (error->empty() && !ParseTimeArg(v, &a->since))
      *error = std::string("--since") + kBadTime + "; not \"" + v + "\"";
  } else {
    return TakeColor(argc, argv, i, &a->color, error);
  }
  return true;
}

}  // namespace

Parsed ParseSearchArgs(int argc, char** argv, SearchArgs* a, std::string* error) {
  bool words_only = false;  // after "--": every argument is a word of the query
  for (int i = 0; i < argc && error->empty(); ++i) {
    const std::string_view arg = argv[i];
    if (!words_only) {
      if (arg == "--help" || arg == "-h") return Parsed::kHelp;
      if (arg == "--") {
        words_only = true;
        continue;
      }
      if (TakeGlobalOption(argc, argv, &i, &a->global, error) ||
          TakeTimeout(argc, argv, &i, &a->timeout_ms, error) ||
          TakeSearchValue(argc, argv, &i, a, error)) {
        continue;
      }
      if (arg == "--json") {
        a->json = true;
        continue;
      }
      if (TakeValue(argc, argv, &i, "--source", &a->source, error)) {
        if (error->empty() && a->source.empty()) *error = "--source needs a value";
        continue;
      }
      if (TakeValue(argc, argv, &i, "--session", &a->session, error)) {
        if (error->empty() && a->session.empty()) *error = "--session needs a value";
        continue;
      }
      if (arg.size() > 1 && arg[0] == '-') {
        *error = "search: unknown option \"" + std::string(arg) +
                 "\" (ferry search --help; a query that starts with - goes after --)";
        break;
      }
    }
    if (!a->query.empty()) a->query += ' ';
    a->query += arg;
  }
  if (error->empty() && a->query.find_first_not_of(" \t\n") == std::string::npos) {
    *error = "search needs a query, e.g. ferry search docker compose (ferry search --help)";
  }
  return error->empty() ? Parsed::kRun : Parsed::kError;
}

}  // namespace ferry::client
