"""Tool spans, `ferry stats` and `ferry export` (issue 13 §3), through a real ferryd: the
payloads of a Claude Code session (pre/post pairs by tool_use_id, a failure, a call that never
finished, a subagent's call inside a Task), a Gemini and a Cursor pair (paired by their input,
having no ids) and shell commands with exit codes. Asserts the exact rows of the tool_spans
view, the exact numbers of `ferry stats --json`, and `ferry export` lines whose payloads are
the bytes that were sent."""

import json
import os
import sqlite3
import time
import unittest

import ferry_harness as h

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "hooks")
S = 1000000000
MS = 1000000
# Recent, so --since 1h keeps them; 10 min old, so no session is idle-closed meanwhile.
T0 = (time.time_ns() // S - 600) * S
CLAUDE = "3f2c9a1e-7b4d-4c1a-9e8f-2d6b5a0c7e41"
GEMINI = "5d1c2b3a-9f8e-4d7c-b6a5-0e1f2a3b4c5d"
CURSOR = "c1f0e2d3-4b5a-4978-8a6b-5c4d3e2f1a0b"
ZSH = "48211-1763965100118374000"
BASH = "50102-1763965300000000000"
CWD = "/home/dana/src/ferry"


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def claude(kind, **fields):
    """A Claude Code payload with the session's common fields first, as the host sends them."""
    p = {"session_id": CLAUDE, "transcript_path": "/home/dana/.claude/projects/x/" + CLAUDE +
         ".jsonl", "cwd": CWD, "permission_mode": "default", "hook_event_name": kind}
    p.update(fields)
    return json.dumps(p, separators=(",", ":"), ensure_ascii=False).encode()


def with_id(name, use_id):
    """A fixture's bytes with its tool_use_id replaced (the fixtures' pre and post differ)."""
    doc = json.loads(fixture(name))
    old = doc["tool_use_id"].encode()
    return fixture(name).replace(old, use_id.encode())


BASH_INPUT = {"command": "make -C build install DESTDIR=/opt/ferry", "description": "Install"}
TASK_INPUT = {"description": "Find append call sites", "prompt": "Find every caller",
              "subagent_type": "Explore"}
GREP_INPUT = {"pattern": "Journal::append", "path": "daemon"}
SUB = {"agent_id": "a7c3e9f1", "agent_type": "Explore"}
FOREVER = {"command": "sleep 1000", "description": "Wait"}
GEMINI_AFTER = fixture("gemini/AfterTool.json")
CURSOR_AFTER = fixture("cursor/afterShellExecution.json").replace(b"-n 3 --", b"-n 20 --")

# (source, kind, session, ts, payload bytes): sent as they are, in this order.
EVENTS = [
    ("claude-code", "SessionStart", CLAUDE, T0, fixture("claude-code/SessionStart.json")),
    ("claude-code", "UserPromptSubmit", CLAUDE, T0 + 1 * S,
     fixture("claude-code/UserPromptSubmit.json")),
    ("claude-code", "PreToolUse", CLAUDE, T0 + 2 * S, fixture("claude-code/PreToolUse.json")),
    ("claude-code", "PostToolUse", CLAUDE, T0 + 5 * S,
     with_id("claude-code/PostToolUse.json", "toolu_01Hq3vTnZx8bKc2mWfP4sR7d")),
    ("claude-code", "PreToolUse", CLAUDE, T0 + 6 * S,
     claude("PreToolUse", tool_name="Bash", tool_input=BASH_INPUT,
            tool_use_id="toolu_01Ce7fGh3iJk5lMn9oPq1rSt")),
    ("claude-code", "PostToolUseFailure", CLAUDE, T0 + 6 * S + 500 * MS,
     fixture("claude-code/PostToolUseFailure.json")),
    ("claude-code", "PreToolUse", CLAUDE, T0 + 7 * S,
     claude("PreToolUse", tool_name="Task", tool_input=TASK_INPUT, tool_use_id="toolu_task")),
    ("claude-code", "PreToolUse", CLAUDE, T0 + 8 * S,
     claude("PreToolUse", tool_name="Grep", tool_input=GREP_INPUT, tool_use_id="toolu_grep", **SUB)),
    ("claude-code", "PostToolUse", CLAUDE, T0 + 8 * S + 250 * MS,
     claude("PostToolUse", tool_name="Grep", tool_input=GREP_INPUT,
            tool_response={"mode": "files_with_matches", "numFiles": 2,
                           "filenames": ["daemon/ingest.cc", "daemon/spool.cc"]},
            tool_use_id="toolu_grep", **SUB)),
    ("claude-code", "SubagentStop", CLAUDE, T0 + 9 * S, fixture("claude-code/SubagentStop.json")),
    ("claude-code", "PostToolUse", CLAUDE, T0 + 10 * S,
     claude("PostToolUse", tool_name="Task", tool_input=TASK_INPUT,
            tool_response="Found 2 call sites.", tool_use_id="toolu_task")),
    ("claude-code", "UserPromptSubmit", CLAUDE, T0 + 11 * S,
     claude("UserPromptSubmit", prompt="now wait")),
    ("claude-code", "PreToolUse", CLAUDE, T0 + 12 * S,
     claude("PreToolUse", tool_name="Bash", tool_input=FOREVER, tool_use_id="toolu_forever")),
    ("gemini", "BeforeAgent", GEMINI, T0 + 20 * S, fixture("gemini/BeforeAgent.json")),
    ("gemini", "BeforeTool", GEMINI, T0 + 21 * S, fixture("gemini/BeforeTool.json")),
    ("gemini", "AfterTool", GEMINI, T0 + 21 * S + 645 * MS, GEMINI_AFTER),
    ("cursor", "beforeShellExecution", CURSOR, T0 + 30 * S,
     fixture("cursor/beforeShellExecution.json")),
    ("cursor", "afterShellExecution", CURSOR, T0 + 30 * S + 412 * MS, CURSOR_AFTER),
    ("zsh", "command", ZSH, T0 + 40 * S, fixture("shell/zsh-command.json")),
    ("bash", "command", BASH, T0 + 41 * S, fixture("shell/bash-command.json")),
    ("bash", "command", BASH, T0 + 42 * S,
     b'{"command":"make test","exit_status":2,"duration_ns":1500000000}'),
]


def cwd_of(source, payload):
    doc = json.loads(payload)
    return doc.get("cwd") or (doc.get("workspace_roots") or [CWD])[0]


def envelope(n, source, kind, session, ts, payload):
    """The EVENT body with the payload's bytes spliced in unchanged."""
    head = json.dumps({"id": "%032x" % (n + 1), "ts": ts, "source": source, "kind": kind,
                       "session": session, "cwd": cwd_of(source, payload)},
                      separators=(",", ":"))
    return b'{"v":1,"event":' + head[:-1].encode() + b',"payload":' + payload + b"}}"


class StatsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = h.Daemon()
        cls.d.start()
        with cls.d.client() as c:
            for n, e in enumerate(EVENTS):
                ftype, body = c.request(h.EVENT, envelope(n, *e))
                assert ftype == h.ACK, (ftype, body)
        cls.d.wait_for(lambda s: s["store"]["rows"] >= len(EVENTS), "the store")

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def ferry(self, *args):
        return h.run_ferry(list(args), self.d.env())

    def query(self, sql):
        r = self.ferry("query", "--json", sql)
        self.assertEqual((r.returncode, r.stderr), (0, ""), sql)
        return [json.loads(line) for line in r.stdout.splitlines()]

    # -- the view ---------------------------------------------------------------------------

    def test_span_rows(self):
        rows = self.query(
            "SELECT source, session, tool, input, tool_use_id, start_seq, end_seq, start - %d AS s,"
            " \"end\" - %d AS e, duration_ns, outcome, success, exit_status, output_bytes,"
            " agent_id, agent_type, parent_tool_use_id FROM tool_spans"
            " ORDER BY coalesce(start_seq, end_seq)" % (T0, T0))
        pre_out = json.loads(fixture("claude-code/PostToolUse.json"))["tool_response"]
        out_bytes = len(json.dumps(pre_out, separators=(",", ":"), ensure_ascii=False).encode())
        err_bytes = len(json.loads(fixture("claude-code/PostToolUseFailure.json"))["error"].encode())
        gem_bytes = len(json.dumps(json.loads(GEMINI_AFTER)["tool_response"],
                                   separators=(",", ":"), ensure_ascii=False).encode())
        cur_bytes = len(json.loads(CURSOR_AFTER)["output"].encode())
        grep_bytes = len(b'{"mode":"files_with_matches","numFiles":2,'
                         b'"filenames":["daemon/ingest.cc","daemon/spool.cc"]}')
        build = ("cmake --build build -j16 && ctest --test-dir build --output-on-failure -R "
                 "journal")

        def span(source, session, tool, inp, use_id, start_seq, end_seq, s, e, outcome,
                 exit_status=None, out=None, agent=(None, None), parent=None):
            return {"source": source, "session": session, "tool": tool, "input": inp,
                    "tool_use_id": use_id, "start_seq": start_seq, "end_seq": end_seq,
                    "s": s, "e": e, "duration_ns": None if e is None else e - s,
                    "outcome": outcome,
                    "success": {"ok": 1, "unfinished": None}.get(outcome, 0),
                    "exit_status": exit_status, "output_bytes": out, "agent_id": agent[0],
                    "agent_type": agent[1], "parent_tool_use_id": parent}

        self.assertEqual(rows, [
            span("claude-code", CLAUDE, "Bash", build, "toolu_01Hq3vTnZx8bKc2mWfP4sR7d", 3, 4,
                 2 * S, 5 * S, "ok", out=out_bytes),
            span("claude-code", CLAUDE, "Bash", BASH_INPUT["command"],
                 "toolu_01Ce7fGh3iJk5lMn9oPq1rSt", 5, 6, 6 * S, 6 * S + 500 * MS, "failed",
                 out=err_bytes),
            span("claude-code", CLAUDE, "Task", TASK_INPUT["description"], "toolu_task", 7, 11,
                 7 * S, 10 * S, "ok", out=len(b"Found 2 call sites.")),
            span("claude-code", CLAUDE, "Grep", "Journal::append", "toolu_grep", 8, 9, 8 * S,
                 8 * S + 250 * MS, "ok", out=grep_bytes, agent=("a7c3e9f1", "Explore"),
                 parent="toolu_task"),
            span("claude-code", CLAUDE, "Bash", "sleep 1000", "toolu_forever", 13, None, 12 * S,
                 None, "unfinished"),
            span("gemini", GEMINI, "run_shell_command", "rg -n 'TODO' daemon/", None, 15, 16,
                 21 * S, 21 * S + 645 * MS, "ok", out=gem_bytes),
            span("cursor", CURSOR, "Shell", "git log --oneline -n 20 -- daemon/journal", None,
                 17, 18, 30 * S, 30 * S + 412 * MS, "ok", out=cur_bytes),
            span("zsh", ZSH, "shell", "ctest --test-dir build -R journal --output-on-failure",
                 None, 19, 19, 40 * S - 612004000, 40 * S, "ok", exit_status=0),
            span("bash", BASH, "shell", "grep -c ERROR /var/log/ferry/ferryd.log | sort -n | tail -1",
                 None, 20, 20, 41 * S - 8803000, 41 * S, "failed", exit_status=1),
            span("bash", BASH, "shell", "make test", None, 21, 21, 42 * S - 1500 * MS, 42 * S,
                 "failed", exit_status=2),
        ])

    # -- ferry stats ------------------------------------------------------------------------

    def stats(self, *args):
        r = self.ferry("stats", "--json", *args)
        self.assertEqual((r.returncode, r.stderr), (0, ""), args)
        return json.loads(r.stdout)

    def test_stats_json(self):
        def group(key, name, sessions, prompts, events, calls=0, failed=0, unfinished=0,
                  rate=None, p50=None, p95=None, tools=(), exits=None):
            return {key: name, "sessions": sessions, "prompts": prompts, "events": events,
                    "tool_calls": calls, "failed": failed, "unfinished": unfinished,
                    "failure_rate": rate, "p50_ms": p50, "p95_ms": p95,
                    "tools": [{"tool": t, "calls": n, "failed": f, "unfinished": u}
                              for t, n, f, u in tools],
                    "shell_exit": exits or {}}

        claude_tools = [("Bash", 3, 1, 1), ("Grep", 1, 0, 0), ("Task", 1, 0, 0)]
        claude_host = group("source", "claude-code", 1, 2, 13, 5, 1, 1, 0.25, 500.0, 3000.0,
                            claude_tools)
        self.assertEqual(self.stats(), {
            "since_s": None, "source": None,
            "hosts": [
                group("source", "bash", 1, 0, 2, exits={"1": 1, "2": 1}),
                claude_host,
                group("source", "cursor", 1, 0, 2, 1, 0, 0, 0.0, 412.0, 412.0,
                      [("Shell", 1, 0, 0)]),
                group("source", "gemini", 1, 1, 3, 1, 0, 0, 0.0, 645.0, 645.0,
                      [("run_shell_command", 1, 0, 0)]),
                group("source", "zsh", 1, 0, 1, exits={"0": 1}),
            ],
            "projects": [
                # finished calls 250ms 412 500 645 3000 3000: p50 the 3rd, p95 the 6th.
                group("cwd", CWD, 5, 3, 20, 7, 1, 1, 1 / 6, 500.0, 3000.0,
                      [("Bash", 3, 1, 1), ("Grep", 1, 0, 0), ("Shell", 1, 0, 0),
                       ("Task", 1, 0, 0), ("run_shell_command", 1, 0, 0)],
                      exits={"0": 1, "2": 1}),
                group("cwd", CWD + "/daemon", 1, 0, 1, exits={"1": 1}),
            ],
            "slowest": [
                {"source": s, "session": sess, "cwd": cwd, "tool": tool, "input": inp,
                 "outcome": outcome, "duration_ms": ms}
                for s, sess, cwd, tool, inp, outcome, ms in [
                    ("claude-code", CLAUDE, CWD, "Bash", "cmake --build build -j16 && ctest "
                     "--test-dir build --output-on-failure -R journal", "ok", 3000.0),
                    ("claude-code", CLAUDE, CWD, "Task", "Find append call sites", "ok", 3000.0),
                    ("bash", BASH, CWD, "shell", "make test", "failed", 1500.0),
                    ("gemini", GEMINI, CWD, "run_shell_command", "rg -n 'TODO' daemon/", "ok",
                     645.0),
                    ("zsh", ZSH, CWD, "shell",
                     "ctest --test-dir build -R journal --output-on-failure", "ok", 612.004),
                    ("claude-code", CLAUDE, CWD, "Bash", BASH_INPUT["command"], "failed", 500.0),
                    ("cursor", CURSOR, CWD, "Shell", "git log --oneline -n 20 -- daemon/journal",
                     "ok", 412.0),
                    ("claude-code", CLAUDE, CWD, "Grep", "Journal::append", "ok", 250.0),
                    ("bash", BASH, CWD + "/daemon", "shell",
                     "grep -c ERROR /var/log/ferry/ferryd.log | sort -n | tail -1", "failed",
                     8.803),
                ]],
        })
        # --source keeps one host; --since keeps what is that recent.
        only = self.stats("--source", "claude-code")
        self.assertEqual(only["hosts"], [claude_host])
        self.assertEqual(only["source"], "claude-code")
        self.assertEqual(self.stats("--since", "1h")["hosts"], self.stats()["hosts"])
        self.assertEqual(self.stats("--since", "1m"),
                         {"since_s": 60, "source": None, "hosts": [], "projects": [],
                          "slowest": []})

    def test_stats_table(self):
        r = self.ferry("stats", "--source", "claude-code")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout.split("\n\n")[0].splitlines(), [
            "By host",
            "  host         sessions  prompts  events  tool calls  failed  unfinished  "
            "failure rate  p50    p95",
            "  claude-code  1         2        13      5           1       1           "
            "25.0%         500ms  3.0s",
        ])
        self.assertIn("Tool calls by tool\n  host         tool  calls  failed  unfinished\n"
                      "  claude-code  Bash  3      1       1\n", r.stdout)
        r = self.ferry("stats", "--since", "1m")
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (0, "no events recorded in that time\n", ""))

    # -- ferry export -----------------------------------------------------------------------

    def expected_lines(self, received, only=lambda e: True):
        """Each event as export prints it: the envelope, then the payload's bytes as sent."""
        lines = []
        for n, (source, kind, session, ts, payload) in enumerate(EVENTS):
            if not only(EVENTS[n]):
                continue
            head = json.dumps({"seq": n + 1, "id": "%032x" % (n + 1), "ts": ts,
                               "received": received[n + 1], "source": source, "kind": kind,
                               "session": session, "cwd": cwd_of(source, payload)},
                              separators=(",", ":"))
            lines.append(head[:-1] + ',"payload":' + payload.decode() + "}")
        return lines

    def export(self, *args, env=None):
        r = h.run_ferry(["export"] + list(args), env or self.d.env())
        self.assertEqual((r.returncode, r.stderr), (0, ""), args)
        return r.stdout.splitlines()

    def test_export_lines_are_the_events_as_sent(self):
        lines = self.export("--format", "jsonl")
        received = {json.loads(line)["seq"]: json.loads(line)["received"] for line in lines}
        self.assertEqual(lines, self.expected_lines(received))
        self.assertEqual(self.export("--session", CLAUDE[:8]),
                         self.expected_lines(received, lambda e: e[2] == CLAUDE))
        self.assertEqual(self.export("--source", "zsh"),
                         self.expected_lines(received, lambda e: e[0] == "zsh"))
        self.assertEqual(self.export("--since", "1h"), lines)
        self.assertEqual(self.export("--since", "1m"), [])
        r = self.ferry("export", "--format", "csv")
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (2, "", 'ferry: --format: unknown format "csv" (jsonl is the one there '
                                 'is)\n'))


class ExportPagingTest(unittest.TestCase):
    def test_pages_long_payloads_and_offline(self):  # stats offline too
        # query_max_rows 3: the export takes 8 pages for 21 events + the long payload, which
        # (327,791 bytes) comes in two pieces; then the same with ferryd stopped.
        longline = fixture("claude-code/PostToolUse-longline.json")
        events = EVENTS + [("claude-code", "PostToolUse", CLAUDE, T0 + 50 * S, longline)]
        with h.daemon(config="[store]\nquery_max_rows = 3\n") as d:
            with d.client() as c:
                for n, e in enumerate(events):
                    ftype, body = c.request(h.EVENT, envelope(n, *e))
                    self.assertEqual(ftype, h.ACK, body)
            d.wait_for(lambda s: s["store"]["rows"] >= len(events), "the store")
            r = h.run_ferry(["export"], d.env())
            self.assertEqual((r.returncode, r.stderr), (0, ""))
            lines = r.stdout.splitlines()
            self.assertEqual(len(lines), len(events))
            for n, (line, e) in enumerate(zip(lines, events)):
                self.assertTrue(line.endswith(',"payload":' + e[4].decode() + "}"), n)
                self.assertEqual(json.loads(line)["seq"], n + 1)
            online_stats = h.run_ferry(["stats", "--json"], d.env())
            self.assertEqual((online_stats.returncode, online_stats.stderr), (0, ""))
            d.stop()
            offline = h.run_ferry(["export"], d.env(FERRY_FERRYD=h.FERRYD))
            self.assertEqual((offline.returncode, offline.stdout, offline.stderr),
                             (0, r.stdout, ""))
            offline = h.run_ferry(["stats", "--json"], d.env(FERRY_FERRYD=h.FERRYD))
            self.assertEqual((offline.returncode, offline.stdout, offline.stderr),
                             (0, online_stats.stdout, ""))


class OfflineSortTest(unittest.TestCase):
    def test_a_sort_bigger_than_the_cache_works_offline(self):
        # 12 payloads of 320 KB: sorting them outgrows SQLite's 2 MB cache, which spills to a
        # temp file; the read-only ferryd may create none, so it sorts in memory.
        longline = fixture("claude-code/PostToolUse-longline.json")
        with h.daemon() as d:
            with d.client() as c:
                for n in range(12):
                    ftype, body = c.request(h.EVENT, envelope(
                        n, "claude-code", "PostToolUse", CLAUDE, T0 + n * S,
                        longline.replace(b'"PostToolUse"', b'"PostToolUse%02d"' % n)))
                    self.assertEqual(ftype, h.ACK, body)
            d.wait_for(lambda s: s["store"]["rows"] >= 12, "the store")
            d.stop()
            r = h.run_ferry(["query", "SELECT seq FROM events ORDER BY payload DESC"],
                            d.env(FERRY_FERRYD=h.FERRYD))
            self.assertEqual((r.returncode, r.stderr), (0, ""))
            self.assertEqual(r.stdout.split(), ["seq", "---"] + [str(n) for n in range(12, 0, -1)])


class ViewUpgradeTest(unittest.TestCase):
    def test_a_db_without_the_view_gets_it_when_ferryd_opens_it(self):
        # As left by a ferryd from before tool_spans: the hint offline, the view after a start.
        with h.daemon() as d:
            with d.client() as c:
                c.ack(h.make_event("zsh", "command", session=ZSH, cwd=CWD, ts=T0,
                                   payload={"command": "true", "exit_status": 0}))
            d.wait_for(lambda s: s["store"]["rows"] >= 1, "the store")
            d.stop()
            db = sqlite3.connect(os.path.join(d.state_dir, "ferry.db"))
            db.execute("DROP VIEW tool_spans")
            db.commit()
            db.close()
            r = h.run_ferry(["stats"], d.env(FERRY_FERRYD=h.FERRYD))
            self.assertEqual((r.returncode, r.stdout), (1, ""))
            self.assertEqual(r.stderr, "ferry: query_failed: SQL error: no such table: tool_spans "
                             "(ferry.db was made by an older ferryd; start ferryd once to upgrade "
                             "it)\n")
            d.start()
            r = h.run_ferry(["stats", "--json"], d.env())
            self.assertEqual((r.returncode, r.stderr), (0, ""))
            self.assertEqual(json.loads(r.stdout)["hosts"][0]["shell_exit"], {"0": 1})


if __name__ == "__main__":
    unittest.main()
