"""Per-source status (`sources` in `ferry status --json`, one `source` line in `ferry status`)
and the source worked out from the payload (a Cursor payload labelled claude-code), through a
real ferryd and the real client."""

import datetime
import json
import os
import unittest

import ferry_harness as h

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "hooks")


def fixture(path):
    with open(os.path.join(FIXTURES, path), "rb") as f:
        return f.read()


def iso(ns):
    t = datetime.datetime.fromtimestamp(ns // 10**9, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ns % 10**9 // 10**6)


def hms(ns):
    return datetime.datetime.fromtimestamp(ns // 10**9, datetime.timezone.utc).strftime("%H:%M:%S")


class Base(unittest.TestCase):
    def setUp(self):
        # UTC for ferryd and the client, so "today" and the printed times are known here.
        self.d = h.Daemon(env={"TZ": "UTC"})
        self.d.start()

    def tearDown(self):
        self.d.close()

    def env(self):
        return self.d.env(TZ="UTC")

    def emit(self, *args, data=None):
        r = h.run_ferry(["emit", "--strict", "--timeout-ms", "10000"] + list(args), self.env(),
                        input=data)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", "") if data is None else (0, b"", b""))

    def query(self, sql):
        r = h.run_ferry(["query", "--json", sql], self.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def stored(self):
        """Waits until ferry.db holds every event in the journal; returns the status."""
        return self.d.wait_for(
            lambda st: st["store"]["cursor"] == st["journal"]["last_seq"], "the store")

    def last_ts(self, source):
        return self.query("SELECT max(ts) AS t FROM events WHERE source = '%s'" % source)


class SourcesTest(Base):
    def emit_mix(self):
        for name in ("SessionStart", "PreToolUse", "PostToolUseFailure"):
            self.emit("--source", "claude-code", "--stdin",
                      data=fixture("claude-code/%s.json" % name))
        self.emit("--source", "zsh", "--kind", "command", "--session", "z1",
                  "--data", fixture("shell/zsh-command.json").decode())
        self.emit("--source", "bash", "--kind", "command", "--session", "b1",
                  "--data", fixture("shell/bash-command.json").decode())
        self.emit("--source", "bash", "--kind", "exit", "--session", "b1", "--data", "{}")

    def expected(self):
        rows = self.query("SELECT source, max(ts) AS last FROM events GROUP BY source")
        last = {r["source"]: r["last"] for r in rows}
        fail_ts = self.query("SELECT ts FROM events WHERE kind = 'PostToolUseFailure'")[0]["ts"]
        bash_fail = self.query("SELECT ts FROM events WHERE source = 'bash' AND kind = 'command'")[0]["ts"]
        return [
            {"source": "bash", "events_today": 2, "last_ts": last["bash"],
             "last_time": iso(last["bash"]), "open_sessions": 0,
             "last_error": {"ts": bash_fail, "time": iso(bash_fail), "kind": "command",
                            "session": "b1",
                            "message": "exit 1: grep -c ERROR /var/log/ferry/ferryd.log | sort -n | tail -1"}},
            {"source": "claude-code", "events_today": 3, "last_ts": last["claude-code"],
             "last_time": iso(last["claude-code"]), "open_sessions": 1,
             "last_error": {"ts": fail_ts, "time": iso(fail_ts), "kind": "PostToolUseFailure",
                            "session": "3f2c9a1e-7b4d-4c1a-9e8f-2d6b5a0c7e41",
                            "message": "Exit code 2"}},
            {"source": "zsh", "events_today": 1, "last_ts": last["zsh"],
             "last_time": iso(last["zsh"]), "open_sessions": 1, "last_error": None},
        ]

    def test_sources_json_human_and_restart(self):
        self.assertEqual(self.d.status()["sources"], [])
        self.emit_mix()
        st = self.stored()
        want = self.expected()
        self.assertEqual(st["sources"], want)
        r = h.run_ferry(["status"], self.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [l for l in r.stdout.splitlines() if l.startswith("  source ")]
        self.assertEqual(lines, [
            "  source   bash: 2 event(s) today, last %s, 0 open session(s); last error %s "
            "command: exit 1: grep -c ERROR /var/log/ferry/ferryd.log | sort -n | tail -1"
            % (hms(want[0]["last_ts"]), hms(want[0]["last_error"]["ts"])),
            "  source   claude-code: 3 event(s) today, last %s, 1 open session(s); last error "
            "%s PostToolUseFailure: Exit code 2"
            % (hms(want[1]["last_ts"]), hms(want[1]["last_error"]["ts"])),
            "  source   zsh: 1 event(s) today, last %s, 1 open session(s)"
            % hms(want[2]["last_ts"]),
        ])
        # Seeded from ferry.db at start: the same figures.
        self.d.restart()
        self.assertEqual(self.stored()["sources"], want)
        # And counting on from there: the claude session ends.
        self.emit("--source", "claude-code", "--stdin", data=fixture("claude-code/SessionEnd.json"))
        got = self.stored()["sources"]
        self.assertEqual(got[1]["events_today"], 4)
        self.assertEqual(got[1]["open_sessions"], 0)
        self.d.restart()
        self.assertEqual(self.stored()["sources"], got)


class CursorRelabelTest(Base):
    """A Cursor payload labelled claude-code (Cursor runs Claude Code's hooks) is stored as
    cursor, once when it also comes through Cursor's own hooks.json."""

    def rows(self):
        return self.query("SELECT seq, source, kind, session, cwd FROM events ORDER BY seq")

    def journal_sources(self):
        return [(r.body["source"], r.body.get("source_claimed")) for r in self.d.journal()]

    def test_cursor_payload_twice_is_stored_once_as_cursor(self):
        shell = fixture("cursor/beforeShellExecution.json")
        self.emit("--source", "claude-code", "--stdin", data=shell)  # via ~/.claude/settings.json
        self.emit("--source", "cursor", "--stdin", data=shell)       # via ~/.cursor/hooks.json
        self.emit("--source", "claude-code", "--stdin", data=fixture("claude-code/PreToolUse.json"))
        st = self.stored()
        conv = "c1f0e2d3-4b5a-4978-8a6b-5c4d3e2f1a0b"
        self.assertEqual(self.rows(), [
            {"seq": 1, "source": "cursor", "kind": "beforeShellExecution", "session": conv,
             "cwd": "/home/dana/src/ferry"},
            {"seq": 2, "source": "claude-code", "kind": "PreToolUse",
             "session": "3f2c9a1e-7b4d-4c1a-9e8f-2d6b5a0c7e41", "cwd": "/home/dana/src/ferry"},
        ])
        self.assertEqual(self.journal_sources(), [("cursor", "claude-code"), ("claude-code", None)])
        self.assertEqual((st["ingest"]["twins_total"], st["ingest"]["relabelled_total"],
                          st["ingest"]["duplicates_total"]), (1, 1, 1))
        # The stored payload is the bytes sent.
        got = self.query("SELECT payload FROM events WHERE seq = 1")[0]["payload"]
        self.assertEqual(got, json.loads(shell))
        # Native first, then the relabelled twin: the same.
        stop = fixture("cursor/stop.json")
        self.emit("--source", "cursor", "--stdin", data=stop)
        self.emit("--source", "claude-code", "--stdin", data=stop)
        self.stored()
        self.assertEqual([(r["seq"], r["source"], r["kind"]) for r in self.rows()][2:],
                         [(3, "cursor", "stop")])
        self.assertEqual(self.journal_sources()[2:], [("cursor", None)])

    def test_distinct_calls_are_never_merged(self):
        base = json.loads(fixture("cursor/beforeShellExecution.json"))
        one = json.dumps(dict(base, tool_use_id="toolu_A"))
        two = json.dumps(dict(base, tool_use_id="toolu_B"))
        # Two calls that differ only in their ids, each delivered both ways: two rows.
        self.emit("--source", "claude-code", "--stdin", data=one.encode())
        self.emit("--source", "claude-code", "--stdin", data=two.encode())
        self.emit("--source", "cursor", "--stdin", data=two.encode())
        self.emit("--source", "cursor", "--stdin", data=one.encode())
        # The same payload twice the same way (two identical calls): both kept.
        same = fixture("cursor/afterFileEdit.json")
        self.emit("--source", "cursor", "--stdin", data=same)
        self.emit("--source", "cursor", "--stdin", data=same)
        self.emit("--source", "claude-code", "--stdin", data=same)
        self.emit("--source", "claude-code", "--stdin", data=same)
        self.stored()
        rows = self.query("SELECT seq, source, kind, json_extract(payload, '$.tool_use_id') AS t "
                          "FROM events ORDER BY seq")
        self.assertEqual(rows, [
            {"seq": 1, "source": "cursor", "kind": "beforeShellExecution", "t": "toolu_A"},
            {"seq": 2, "source": "cursor", "kind": "beforeShellExecution", "t": "toolu_B"},
            {"seq": 3, "source": "cursor", "kind": "afterFileEdit", "t": None},
            {"seq": 4, "source": "cursor", "kind": "afterFileEdit", "t": None},
        ])
        self.assertEqual(self.d.status()["ingest"]["twins_total"], 4)


if __name__ == "__main__":
    unittest.main()
