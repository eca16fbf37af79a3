"""`ferry search` (issue 13 §2) through a real ferryd: the hosts' fixture payloads go in with
the real `ferry emit`, and the search prints the exact hits (order, session, snippet), honours
--source, --session, --since and --limit, prints exact --json objects, explains a query FTS5
cannot read (exit 2), finds the rows of a version-1 ferry.db once ferryd has upgraded it,
works with ferryd down, follows [store] search = false/true, and loses the hits of rows that
retention deleted."""

import json
import os
import sqlite3
import time
import unittest

import ferry_harness as h

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "hooks")
CLAUDE = "3f2c9a1e-7b4d-4c1a-9e8f-2d6b5a0c7e41"
CODEX = "0199b3a4-6c1e-7d3f-9a85-4e2b1c0d9f37"
GEMINI = "5d1c2b3a-9f8e-4d7c-b6a5-0e1f2a3b4c5d"
CURSOR = "c1f0e2d3-4b5a-4978-8a6b-5c4d3e2f1a0b"
ZSH = "01JD2Q7Y3R8ZB5N4K6X0W2M9C1"
CWD = "/home/dana/src/ferry"

# (source, kind, fixture, extra emit flags), emitted in this order: seq n+1 is EVENTS[n].
EVENTS = [
    ("claude-code", "SessionStart", "claude-code/SessionStart.json", []),
    ("claude-code", "UserPromptSubmit", "claude-code/UserPromptSubmit.json", []),
    ("claude-code", "PreToolUse", "claude-code/PreToolUse.json", []),
    ("claude-code", "PostToolUse", "claude-code/PostToolUse.json", []),
    ("claude-code", "PostToolUseFailure", "claude-code/PostToolUseFailure.json", []),
    ("codex", "UserPromptSubmit", "codex/UserPromptSubmit.json", []),
    ("codex", "PreToolUse", "codex/PreToolUse.json", []),
    ("codex", "PostToolUse", "codex/PostToolUse.json", []),
    ("gemini", "BeforeTool", "gemini/BeforeTool.json", []),
    ("gemini", "AfterTool", "gemini/AfterTool.json", []),
    ("cursor", "beforeShellExecution", "cursor/beforeShellExecution.json", []),
    ("cursor", "afterShellExecution", "cursor/afterShellExecution.json", []),
    ("zsh", "command", "shell/zsh-command.json", ["--session", ZSH]),
]

SYNTAX_HINT = (". Words of letters, digits and _ match as they are; put anything else in double "
               "quotes, e.g. ferry search '\"docker-compose\"' or '\"/etc/hosts\"'. AND, OR, NOT, "
               "NEAR(), * (prefix), ^ (first word), - and : (columns) are operators (ferry search "
               "--help; docs/queries.md \"Search\")\n")


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def emit_all(d, events=EVENTS):
    for source, kind, name, extra in events:
        r = h.run_ferry(["emit", "--source", source, "--kind", kind, "--stdin", "--durable",
                         "--strict", "--timeout-ms", "10000"] + extra, d.env(), input=fixture(name))
        assert (r.returncode, r.stdout, r.stderr) == (0, b"", b""), (name, r)


def utc_time(ts):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts // 1000000000))


def iso_time(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts // 1000000000))


class SearchTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.d = h.Daemon()
        cls.d.start()
        emit_all(cls.d)
        cls.d.wait_for(lambda s: s["store"]["rows"] >= len(EVENTS), "the store")
        r = h.run_ferry(["query", "--json", "SELECT seq, ts FROM events ORDER BY seq"], cls.d.env())
        cls.ts = {row["seq"]: row["ts"] for row in map(json.loads, r.stdout.splitlines())}

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def search(self, *args, **env):
        return h.run_ferry(["search"] + list(args), self.d.env(TZ="UTC", **env))

    def hits(self, *args):
        r = self.search(*(args + ("--json",)))
        self.assertEqual((r.returncode, r.stderr), (0, ""), args)
        return [json.loads(line) for line in r.stdout.splitlines()]

    def test_json_hits_in_rank_order(self):
        hits = self.hits("journal")
        ranks = [hit.pop("rank") for hit in hits]
        self.assertEqual(ranks, sorted(ranks))  # bm25: lower is better
        self.assertTrue(all(r < 0 for r in ranks), ranks)
        claude_resume = "cd /home/dana/src/ferry && claude --resume " + CLAUDE

        def hit(seq, source, session, kind, match, snippet, resume):
            return {"seq": seq, "ts": self.ts[seq], "time": iso_time(self.ts[seq]),
                    "source": source, "session": session, "cwd": CWD, "kind": kind,
                    "match": match, "snippet": snippet, "resume": resume}

        self.assertEqual(hits, [
            hit(12, "cursor", CURSOR, "afterShellExecution", "output",
                "a41c9e2 [journal]: truncate torn tail on open↵7be03f1 [journal]: crc32c over "
                "seq+ts+body↵19d7a6c [journal]…", None),
            hit(4, "claude-code", CLAUDE, "PostToolUse", "output",
                "…[journal]_append↵1/4 Test #12: [journal]_append ...................   Passed"
                "    0.04 sec↵    Start 13: [journal]_torn…", claude_resume),
            hit(3, "claude-code", CLAUDE, "PreToolUse", "tool",
                "…cmake --build build -j16 && ctest --test-dir build --output-on-failure -R "
                "[journal]↵Build and run…", claude_resume),
            hit(11, "cursor", CURSOR, "beforeShellExecution", "tool",
                "Shell: git log --oneline -n 20 -- daemon/[journal]", None),
            hit(13, "zsh", ZSH, "command", "shell",
                "ctest --test-dir build -R [journal] --output-on-failure", None),
        ])

    def test_text_for_people(self):
        r = self.search('"permission denied"', "--color", "never")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout, (
            "%s  claude-code  output (PostToolUseFailure)  %s\n"
            "  …ferry/build'↵install: cannot create directory '/opt/ferry': [Permission denied]"
            "↵make: *** [Makefile:112: install] Error 1\n"
            "  session %s; resume: cd /home/dana/src/ferry && claude --resume %s\n"
            % (utc_time(self.ts[5]), CWD, CLAUDE, CLAUDE)))
        coloured = self.search('"permission denied"', "--color", "always")
        self.assertEqual(coloured.returncode, 0)
        self.assertIn("'/opt/ferry': \033[1m\033[33mPermission denied\033[0m↵make:",
                      coloured.stdout)
        # auto: stdout is a pipe here, so no colour, NO_COLOR or not.
        self.assertEqual(self.search('"permission denied"', NO_COLOR="1").stdout, r.stdout)

    def test_resume_per_host_and_filters(self):
        codex = self.hits("durable", "--source", "codex")
        self.assertEqual([(x["seq"], x["match"], x["resume"]) for x in codex], [
            (8, "output", "codex resume " + CODEX),
            (7, "tool", "codex resume " + CODEX),
            (6, "prompt", "codex resume " + CODEX),
        ])
        self.assertEqual([x["resume"] for x in self.hits("TODO", "--source", "gemini")],
                         ["cd /home/dana/src/ferry && gemini --resume " + GEMINI] * 2)
        self.assertEqual([x["seq"] for x in self.hits("journal", "--session", "3f2c9a")], [4, 3])
        self.assertEqual([x["seq"] for x in self.hits("journal", "--limit", "2")], [12, 4])
        self.assertEqual([x["seq"] for x in self.hits("journal", "--since", "1h")],
                         [12, 4, 3, 11, 13])
        self.assertEqual([x["seq"] for x in self.hits("journal OR durable", "--source", "zsh")],
                         [13])
        later = self.search("journal", "--since", "2099-01-01", "--json")
        self.assertEqual((later.returncode, later.stdout, later.stderr), (1, "", ""))
        none = self.search("nosuchword")
        self.assertEqual((none.returncode, none.stdout, none.stderr),
                         (1, "", 'no match for "nosuchword"\n'))

    def test_a_query_fts5_cannot_read(self):
        for query, says in [("docker-compose", "no such column: compose"),
                             ('"journal', "unterminated string"),
                             ("journal AND", 'syntax error near ""'),
                             ("(journal", 'syntax error near ""')]:
            r = self.search(query)
            self.assertEqual((r.returncode, r.stdout), (2, ""), query)
            self.assertEqual(r.stderr, 'ferry: search: cannot read the query "%s" (FTS5 says: '
                             "%s)%s" % (query, says, SYNTAX_HINT), query)
        quoted = self.search('"docker-compose"')  # readable, just not there
        self.assertEqual((quoted.returncode, quoted.stdout, quoted.stderr),
                         (1, "", 'no match for ""docker-compose""\n'))

    def test_usage(self):
        r = self.search()
        self.assertEqual((r.returncode, r.stdout), (2, ""))
        self.assertEqual(r.stderr, "ferry: search needs a query, e.g. ferry search docker compose "
                         "(ferry search --help)\n")
        r = self.search("--help")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertTrue(r.stdout.startswith("usage: ferry search QUERY..."))


V1_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value);"
    "CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, ts INTEGER,"
    " received INTEGER, source TEXT, kind TEXT, session TEXT, cwd TEXT, host TEXT, pid INTEGER,"
    " payload TEXT);"
    "CREATE INDEX events_session ON events(source, session);"
    "CREATE INDEX events_ts ON events(ts);"
    "CREATE TABLE sessions (source TEXT NOT NULL, session TEXT NOT NULL, first_ts INTEGER,"
    " last_ts INTEGER, events INTEGER NOT NULL, kinds TEXT NOT NULL, failures INTEGER NOT NULL,"
    " ended INTEGER, end_reason TEXT, PRIMARY KEY(source, session));"
    "CREATE INDEX sessions_last_ts ON sessions(last_ts);"
    "INSERT INTO meta VALUES('schema_version', 1);")


class UpgradeAndOfflineTest(unittest.TestCase):
    def test_a_version_1_db_is_searchable_after_ferryd_upgrades_it(self):
        # A ferry.db from before search, whose rows are in no journal (the journal is empty):
        # the upgrade indexes the rows themselves.
        d = h.Daemon()
        self.addCleanup(d.close)
        if True:
            os.makedirs(d.state_dir, mode=0o700, exist_ok=True)
            db = sqlite3.connect(os.path.join(d.state_dir, "ferry.db"))
            db.executescript(V1_SCHEMA)
            rows = [(1, "codex", "UserPromptSubmit", "codex/UserPromptSubmit.json", CODEX),
                    (2, "codex", "PreToolUse", "codex/PreToolUse.json", CODEX),
                    (3, "zsh", "command", "shell/zsh-command.json", ZSH)]
            for seq, source, kind, name, session in rows:
                db.execute("INSERT INTO events VALUES(?, ?, ?, ?, ?, ?, ?, ?, 'h', 1, ?)",
                           (seq, "%032x" % seq, 1700000000000000000 + seq, seq, source, kind,
                            session, CWD, fixture(name).decode()))
            db.execute("INSERT INTO meta VALUES('cursor', 3)")
            db.commit()
            db.close()
            offline = h.run_ferry(["search", "durable"], d.env(FERRY_FERRYD=h.FERRYD))
            self.assertEqual((offline.returncode, offline.stdout), (1, ""))
            self.assertEqual(offline.stderr, "ferry: search: ferry.db has no search index yet: "
                             "it was made by an older ferryd; start ferryd once to upgrade it "
                             "(the upgrade indexes every stored event)\n")
            d.start()
            r = h.run_ferry(["search", "durable", "--json"], d.env(TZ="UTC"))
            self.assertEqual((r.returncode, r.stderr), (0, ""))
            got = [(x["seq"], x["match"], x["snippet"]) for x in map(json.loads, r.stdout.splitlines())]
            self.assertEqual(got, [
                (2, "tool", 'Bash: rg -n "[durable]" client/ docs/protocol.md'),
                (1, "prompt", "Add a --[durable] flag to `ferry emit` and document it in "
                              "docs/protocol.md"),
            ])
            q = h.run_ferry(["query", "SELECT value FROM meta WHERE key = 'schema_version'"],
                            d.env())
            self.assertEqual(q.stdout.split()[-1], "3")
            # ferryd down: a read-only ferryd answers the same.
            online = h.run_ferry(["search", "ctest"], d.env(TZ="UTC"))
            self.assertEqual(online.returncode, 0)
            self.assertIn("[ctest] --test-dir build -R journal --output-on-failure", online.stdout)
            d.stop()
            down = h.run_ferry(["search", "ctest"], d.env(TZ="UTC", FERRY_FERRYD=h.FERRYD))
            self.assertEqual((down.returncode, down.stdout, down.stderr), (0, online.stdout, ""))

    def test_search_off_then_on_and_rebuild(self):
        with h.daemon(config="[store]\nsearch = false\n") as d:
            emit_all(d, EVENTS[:4])
            d.wait_for(lambda s: s["store"]["rows"] >= 4, "the store")
            r = h.run_ferry(["search", "journal"], d.env())
            self.assertEqual((r.returncode, r.stdout), (1, ""))
            self.assertEqual(r.stderr, "ferry: search: the search index is off ([store] search "
                             "= false in the config): nothing is indexed; set it to true (or "
                             "remove it) and restart ferryd to index every stored event\n")
            with open(d.config_path, "w") as f:
                f.write("[store]\nsearch = true\n")
            d.restart()
            on = h.run_ferry(["search", "journal", "--json"], d.env())
            self.assertEqual(on.returncode, 0, on.stderr)
            self.assertEqual([json.loads(x)["seq"] for x in on.stdout.splitlines()], [4, 3])
            self.assertIn("search index re-created from the stored events", d.log())
            # ferry.db deleted: rebuilt from the journal, index and all.
            d.stop()
            for suffix in ("", "-wal", "-shm"):
                path = os.path.join(d.state_dir, "ferry.db" + suffix)
                if os.path.exists(path):
                    os.unlink(path)
            d.start()
            d.wait_for(lambda s: s["store"]["rows"] >= 4, "the rebuild")
            again = h.run_ferry(["search", "journal", "--json"], d.env())
            self.assertEqual((again.returncode, again.stdout), (0, on.stdout))

    def test_retention_deletes_the_hits_with_the_rows(self):
        with h.daemon(config="[store]\nretain_rows = 1\n") as d:
            emit_all(d, EVENTS[2:4])  # PreToolUse (seq 1), then PostToolUse (seq 2)
            d.wait_for(lambda s: s["store"]["retention_deleted"] >= 1, "retention")
            r = h.run_ferry(["search", "journal", "--json"], d.env())
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual([json.loads(x)["seq"] for x in r.stdout.splitlines()], [2])
            q = h.run_ferry(["query", "SELECT count(*) FROM search"], d.env())
            self.assertEqual(q.stdout.split()[-1], "1")


if __name__ == "__main__":
    unittest.main()
