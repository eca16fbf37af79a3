"""Reading what was recorded (issue 12), through the real binaries: `ferry tail`'s short lines
(local time, UUID sessions cut to 8, a line per shell command and agent event), its width on a
real terminal, colour and NO_COLOR, -o json|cat, the client-side filters and --since/--until;
`query --json` nesting the payload; `sessions` with local times and durations; a ferryd stopped
with SIGSTOP answered by exit 3 within the bound for every read command; help, --version,
--timeout and "did you mean"."""

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
import unittest

import ferry_harness as h

# A zone without DST or tzdata: UTC+5:30, abbreviated IST.
TZ = "IST-5:30"
# 2030-01-15T10:00:01.234Z: in the future, so no session is closed as idle.
T0 = 1894701601234000000
S = 1000000000
ZSH_SESSION = "4b1e9c2a-6f00-4d3b-9a77-0c5e8f1d2a33"
CLAUDE_SESSION = "3f2c9a1e-7b4d-4c1a-9e8f-2d6b5a0c7e41"
BASH_SESSION = "777-1894701841000000"
LONG_COMMAND = ("cmake --build build -j16 && ctest --test-dir build --output-on-failure -R "
                "journal --timeout 600 --repeat until-pass:3")

EVENTS = [
    dict(source="zsh", kind="command", session=ZSH_SESSION, cwd="/home/u/src/ferry", ts=T0,
         payload={"command": "make test", "exit_status": 2, "pipestatus": [2],
                  "duration_ns": 1234000000, "cwd": "/home/u/src/ferry"}),
    dict(source="zsh", kind="command", session=ZSH_SESSION, cwd="/home/u/src/ferry/docs",
         ts=T0 + 72 * S, payload={"command": "ls -la\nsecond line", "exit_status": 0,
                                  "duration_ns": 41000}),
    dict(source="claude-code", kind="PreToolUse", session=CLAUDE_SESSION, cwd="/home/u/src/other",
         ts=T0 + 120 * S, payload={"session_id": CLAUDE_SESSION, "hook_event_name": "PreToolUse",
                                   "tool_name": "Bash", "tool_input": {"command": LONG_COMMAND}}),
    dict(source="claude-code", kind="UserPromptSubmit", session=CLAUDE_SESSION,
         cwd="/home/u/src/other", ts=T0 + 180 * S,
         payload={"session_id": CLAUDE_SESSION, "prompt": "Fix the build\nthen run the tests"}),
    dict(source="bash", kind="command", session=BASH_SESSION, cwd="/tmp", ts=T0 + 240 * S,
         payload={"command": "nosuchcmd", "exit_status": 127, "duration_ns": 5000000,
                  "big": 123456789012345678901234567890}),
]

LINES = [
    "2030-01-15 15:30:01.234       1 zsh         command          4b1e9c2a  exit 2    1.2s  make test",
    "2030-01-15 15:31:13.234       2 zsh         command          4b1e9c2a  exit 0    41µs  ls -la (+1 line)",
    "2030-01-15 15:32:01.234       3 claude-code PreToolUse       3f2c9a1e  Bash  " + LONG_COMMAND,
    "2030-01-15 15:33:01.234       4 claude-code UserPromptSubmit 3f2c9a1e  Fix the build (+1 line)",
    "2030-01-15 15:34:01.234       5 bash        command          777-1894  exit 127 5.0ms  nosuchcmd",
]


def width(s):
    """Terminal columns of s (the characters these tests use are all one column wide)."""
    return len(s)


def run_on_pty(args, env, cols):
    """Runs ferry with stdout on a pseudo-terminal `cols` wide; returns (rc, stdout lines)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.OPOST  # no "\n" -> "\r\n": compare the bytes ferry wrote
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    p = subprocess.Popen([h.FERRY] + list(args), env=env, stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=subprocess.PIPE)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + h.HANG_GUARD_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if not ready:
            if p.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    rc = p.wait(timeout=h.HANG_GUARD_S)
    p.stderr.close()
    return rc, out.decode().splitlines()


class ReadingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = h.Daemon()
        cls.d.start()
        with cls.d.client() as c:
            for e in EVENTS:
                c.ack(h.make_event(**e))
        cls.d.wait_for(lambda s: s["store"]["rows"] >= len(EVENTS), "the store")

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def env(self, **extra):
        return self.d.env(TZ=TZ, **extra)

    def ferry(self, *args, **extra):
        return h.run_ferry(list(args), self.env(**extra))

    def tail(self, *args, **extra):
        r = self.ferry("tail", *args, **extra)
        self.assertEqual((r.returncode, r.stderr), (0, ""), args)
        return r.stdout.splitlines()

    # -- tail: lines ------------------------------------------------------------------------

    def test_short_lines_local_time_short_sessions_and_summaries(self):
        self.assertEqual(self.tail(), LINES)

    def test_utc(self):
        lines = self.tail("--utc", "-n", "1")
        self.assertEqual(lines, ["2030-01-15 10:04:01.234Z       5 bash        command          "
                                 "777-1894  exit 127 5.0ms  nosuchcmd"])

    def test_lines_are_not_cut_when_stdout_is_not_a_terminal(self):
        lines = self.tail("-n", "1", "--kind", "PreToolUse", COLUMNS="40")
        self.assertEqual(lines, [LINES[2]])

    def test_fits_the_terminal_width(self):
        rc, lines = run_on_pty(["tail", "--color", "never"], self.env(TERM="xterm"), 100)
        self.assertEqual(rc, 0)
        self.assertEqual(len(lines), 5)
        self.assertGreater(width(LINES[2]), 100)
        self.assertEqual(lines[2], LINES[2][:99] + "…")
        for got, full in zip(lines, LINES):
            self.assertLessEqual(width(got), 100)
            if width(full) <= 100:
                self.assertEqual(got, full)
        # Narrower than the fixed columns: still one line each, cut with "…".
        rc, lines = run_on_pty(["tail", "--color", "never", "-n", "1"], self.env(TERM="xterm"), 30)
        self.assertEqual(lines, [LINES[4][:29] + "…"])

    def test_colour_on_a_terminal_unless_no_color(self):
        rc, lines = run_on_pty(["tail", "-n", "1"], self.env(TERM="xterm"), 200)
        self.assertEqual(rc, 0)
        self.assertIn("\033[31mexit 127", lines[0])  # a failed command in red
        self.assertEqual(re.sub(r"\033\[[0-9;]*m", "", lines[0]), LINES[4])
        for extra in ({"NO_COLOR": "1"}, {"TERM": "dumb"}):
            env = self.env(**dict({"TERM": "xterm"}, **extra))
            rc, lines = run_on_pty(["tail", "-n", "1"], env, 200)
            self.assertEqual(lines, [LINES[4]], extra)
        rc, lines = run_on_pty(["tail", "-n", "1", "--color=never"], self.env(TERM="xterm"), 200)
        self.assertEqual(lines, [LINES[4]])
        # Not a terminal: no colour, unless asked for.
        self.assertEqual(self.tail("-n", "1"), [LINES[4]])
        [line] = self.tail("-n", "1", "--color", "always", NO_COLOR="1")
        self.assertIn("\033[", line)

    def test_output_json_and_cat(self):
        lines = self.tail("-o", "json", "-n", "1")
        self.assertEqual(len(lines), 1)
        obj = json.loads(lines[0])
        self.assertEqual((obj["seq"], obj["source"], obj["session"], obj["ts"]),
                         (5, "bash", BASH_SESSION, T0 + 240 * S))
        self.assertEqual(self.tail("--json", "-n", "1"), lines)
        # cat: the payload only, as received (every digit of the big number).
        self.assertEqual(self.tail("-o", "cat", "-n", "1"),
                         ['{"command":"nosuchcmd","exit_status":127,"duration_ns":5000000,'
                          '"big":123456789012345678901234567890}'])

    # -- tail: filters ----------------------------------------------------------------------

    def test_session_filter_takes_the_id_or_its_start(self):
        self.assertEqual(self.tail("--session", CLAUDE_SESSION), LINES[2:4])
        self.assertEqual(self.tail("--session", "4b1e9c2a"), LINES[0:2])
        self.assertEqual(self.tail("--session", "nope"), [])

    def test_cwd_filter_is_the_directory_or_below(self):
        self.assertEqual(self.tail("--cwd", "/home/u/src/ferry"), LINES[0:2])
        self.assertEqual(self.tail("--cwd", "/home/u/src/ferry/docs/"), LINES[1:2])
        self.assertEqual(self.tail("--cwd", "/home/u/src/fe"), [])
        self.assertEqual(self.tail("--cwd", "/home/u"), LINES[0:4])
        # A relative DIR is taken from the current directory.
        r = subprocess.run([h.FERRY, "tail", "--cwd", "."], env=self.env(PWD="/tmp"), cwd="/tmp",
                           capture_output=True, text=True, timeout=h.HANG_GUARD_S)
        self.assertEqual(r.stdout.splitlines(), LINES[4:5])
        r = subprocess.run([h.FERRY, "tail", "--cwd", "../tmp/"], env=self.env(PWD="/tmp"),
                           cwd="/tmp", capture_output=True, text=True, timeout=h.HANG_GUARD_S)
        self.assertEqual(r.stdout.splitlines(), LINES[4:5])
        self.assertEqual(self.tail("--cwd", "/home/u/./src//ferry/docs/../"), LINES[0:2])

    def test_exit_filter(self):
        self.assertEqual(self.tail("--exit", "nonzero"), [LINES[0], LINES[4]])
        self.assertEqual(self.tail("--exit", "0"), [LINES[1]])
        self.assertEqual(self.tail("--exit", "127", "--source", "zsh"), [])

    def test_lines_count_after_the_filters(self):
        # ferryd's "last N" counts before the client's filters: -n must count matches.
        self.assertEqual(self.tail("--exit", "nonzero", "-n", "1"), [LINES[4]])
        self.assertEqual(self.tail("-n", "2"), LINES[3:5])
        self.assertEqual(self.tail("-n", "all", "--source", "zsh"), LINES[0:2])
        self.assertEqual(self.tail("--lines", "0"), [])

    def test_since_and_until_absolute(self):
        # Local time (TZ): 15:31:13.234 is the second event.
        self.assertEqual(self.tail("--since", "2030-01-15T15:31:13"), LINES[1:5])
        self.assertEqual(self.tail("--since", "2030-01-15 15:31:14"), LINES[2:5])
        self.assertEqual(self.tail("--since", "2030-01-15T10:01:14Z"), LINES[2:5])
        self.assertEqual([l.replace("Z ", " ").replace("10:0", "15:3") for l in
                          self.tail("--utc", "--since", "2030-01-15T10:01:14")], LINES[2:5])
        self.assertEqual(self.tail("--until", "2030-01-15T15:32"), LINES[0:2])
        self.assertEqual(self.tail("--since", "2030-01-15T15:31", "--until", "2030-01-15T15:34",
                                   "-n", "1"), LINES[3:4])
        self.assertEqual(self.tail("--since", "2030-01-15"), LINES)
        self.assertEqual(self.tail("--since", "2030-01-16"), [])

    def test_since_relative_and_clock_times(self):
        now = time.time_ns()
        d = h.Daemon()
        self.addCleanup(d.close)
        d.start()
        with d.client() as c:
            c.ack(h.make_event(source="rel", kind="old", ts=now - 2 * 3600 * S, payload={"n": 1}))
            c.ack(h.make_event(source="rel", kind="new", ts=now - 60 * S, payload={"n": 2}))
        r = h.run_ferry(["tail", "--since", "1h", "-o", "cat"], d.env())
        self.assertEqual((r.returncode, r.stdout), (0, '{"n":2}\n'))
        r = h.run_ferry(["tail", "--until", "-30m", "-o", "cat"], d.env())
        self.assertEqual(r.stdout, '{"n":1}\n')
        r = h.run_ferry(["tail", "--since", "now", "-o", "cat"], d.env())
        self.assertEqual((r.returncode, r.stdout), (0, ""))
        r = h.run_ferry(["tail", "--since", "yesterday", "-o", "cat"], d.env())
        self.assertEqual(r.stdout, '{"n":1}\n{"n":2}\n')
        # HH:MM is today, in local time.
        hhmm = time.strftime("%H:%M", time.localtime((now + 120 * S) // S))
        if hhmm > time.strftime("%H:%M", time.localtime(now // S)):  # not across midnight
            r = h.run_ferry(["tail", "--since", hhmm, "-o", "cat"], d.env())
            self.assertEqual(r.stdout, "")

    def test_follow_with_a_client_filter_starts_with_the_last_matches(self):
        d = h.Daemon()  # its own: this test adds events
        self.addCleanup(d.close)
        d.start()
        with d.client() as c:
            for e in EVENTS:
                c.ack(h.make_event(**e))
        out = os.path.join(d.root, "follow.out")
        with open(out, "wb") as o:
            p = subprocess.Popen([h.FERRY, "tail", "-f", "--exit", "nonzero", "-n", "1"],
                                 env=d.env(TZ=TZ), stdout=o, stderr=subprocess.DEVNULL)
        self.addCleanup(p.wait, h.HANG_GUARD_S)
        self.addCleanup(p.terminate)
        want = [LINES[4]]
        deadline = time.monotonic() + h.HANG_GUARD_S
        while open(out).read().splitlines() != want:
            self.assertLess(time.monotonic(), deadline, open(out).read())
            time.sleep(0.05)
        with d.client() as c:
            c.ack(h.make_event(source="fish", kind="command", ts=T0 + 300 * S, session="f",
                               payload={"command": "true", "exit_status": 0, "duration_ns": 1}))
            c.ack(h.make_event(source="fish", kind="command", ts=T0 + 301 * S, session="f",
                               payload={"command": "false", "exit_status": 1,
                                        "duration_ns": 1500000}))
        want.append("2030-01-15 15:35:02.234       7 fish        command          f         "
                    "exit 1   1.5ms  false")
        while open(out).read().splitlines() != want:
            self.assertLess(time.monotonic(), deadline, open(out).read())
            time.sleep(0.05)

    def test_follow_with_a_client_filter_waits_for_ferryd(self):
        d = h.Daemon()  # not started yet
        self.addCleanup(d.close)
        out = os.path.join(d.root, "wait.out")
        err = os.path.join(d.root, "wait.err")
        with open(out, "wb") as o, open(err, "wb") as e:
            p = subprocess.Popen([h.FERRY, "tail", "-f", "--session", "4b1e", "-o", "cat"],
                                 env=d.env(), stdout=o, stderr=e)
        self.addCleanup(p.wait, h.HANG_GUARD_S)
        self.addCleanup(p.terminate)
        deadline = time.monotonic() + h.HANG_GUARD_S
        while "reconnecting" not in open(err).read():
            self.assertLess(time.monotonic(), deadline)
            self.assertIsNone(p.poll(), open(err).read())
            time.sleep(0.05)
        d.start()
        with d.client() as c:
            for e in EVENTS[:3]:
                c.ack(h.make_event(**e))
        want = ['{"command":"make test","exit_status":2,"pipestatus":[2],"duration_ns":1234000000,'
                '"cwd":"/home/u/src/ferry"}', '{"command":"ls -la\\nsecond line","exit_status":0,'
                '"duration_ns":41000}']
        while open(out).read().splitlines() != want:
            self.assertLess(time.monotonic(), deadline, open(out).read())
            time.sleep(0.05)
        self.assertIsNone(p.poll())

    # -- query and sessions -----------------------------------------------------------------

    def test_query_json_nests_the_payload(self):
        r = self.ferry("query", "--json", "SELECT seq, payload, json_extract(payload, '$.command')"
                       " AS cmd, json_object('a', 1) AS obj FROM events WHERE seq IN (1, 5)"
                       " ORDER BY seq")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        lines = r.stdout.splitlines()
        self.assertEqual(lines[1], '{"seq":5,"payload":{"command":"nosuchcmd","exit_status":127,'
                                   '"duration_ns":5000000,"big":123456789012345678901234567890},'
                                   '"cmd":"nosuchcmd","obj":"{\\"a\\":1}"}')
        self.assertEqual(json.loads(lines[0])["payload"]["command"], "make test")

    def test_query_limit_does_not_warn_at_the_limit_asked_for(self):
        r = self.ferry("query", "--limit", "2", "SELECT seq FROM events ORDER BY seq")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "seq\n---\n1\n2\n", ""))

    def test_query_cut_messages(self):
        with h.daemon(config="[store]\nquery_max_rows = 3\n") as d:
            with d.client() as c:
                for i in range(5):
                    c.ack(h.make_event(source="s%d" % i, session="x%d" % i, payload={"i": i}))
            d.wait_for(lambda s: s["store"]["rows"] >= 5, "the store")
            sql = "SELECT seq FROM events ORDER BY seq"
            r = h.run_ferry(["query", "--json", sql], d.env())
            self.assertEqual((r.returncode, r.stdout.splitlines(), r.stderr),
                             (0, ['{"seq":1}', '{"seq":2}', '{"seq":3}'],
                              "ferry: result cut at 3 rows (row cap 3); narrow the query or pass "
                              "--limit (at most store.query_max_rows)\n"))
            r = h.run_ferry(["query", "--json", "--limit", "2", sql], d.env())
            self.assertEqual((r.stdout.splitlines(), r.stderr), (['{"seq":1}', '{"seq":2}'], ""))
            r = h.run_ferry(["query", "--json", "--limit", "3", sql], d.env())
            self.assertEqual((len(r.stdout.splitlines()), r.stderr), (3, ""))
            r = h.run_ferry(["query", "--json", "--limit", "10", sql], d.env())
            self.assertEqual((len(r.stdout.splitlines()), r.stderr),
                             (3, "ferry: result cut at 3 rows: store.query_max_rows is 3 (--limit "
                                 "cannot ask for more)\n"))
            r = h.run_ferry(["sessions", "--limit", "2", "--json"], d.env())
            self.assertEqual(([json.loads(l)["session"] for l in r.stdout.splitlines()],
                              r.stderr), (["x4", "x3"], ""))
            r = h.run_ferry(["sessions", "--json"], d.env())
            self.assertEqual(len(r.stdout.splitlines()), 3)
            self.assertEqual(r.stderr, "ferry: result cut at 3 rows: store.query_max_rows is 3\n")

    def test_sessions_local_times_zone_and_durations(self):
        r = self.ferry("sessions", "--source", "zsh")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout.splitlines(), [
            "source  session                               started                  duration  "
            "events  failures  state  kinds",
            "------  ------------------------------------  -----------------------  --------  "
            "------  --------  -----  -------------",
            "zsh     4b1e9c2a-6f00-4d3b-9a77-0c5e8f1d2a33  2030-01-15 15:30:01 IST  1m12s     "
            "2       1         open   {\"command\":2}"])
        r = self.ferry("sessions", "--json", "--source", "zsh")
        self.assertEqual(json.loads(r.stdout), {
            "source": "zsh", "session": ZSH_SESSION, "started": "2030-01-15T15:30:01+05:30",
            "duration_s": 72.0, "events": 2, "failures": 1, "state": "open",
            "kinds": {"command": 2}})

    # -- help -------------------------------------------------------------------------------

    def test_help_explains_every_option(self):
        flags = {
            "tail": ["-f, --follow", "-n, --lines N", "--last N", "--from SEQ", "--since WHEN",
                     "--until WHEN", "--source S", "--kind K", "--session ID", "--cwd DIR",
                     "--exit N|nonzero", "-o, --output FMT", "--json", "--utc", "--color WHEN",
                     "NO_COLOR", "--timeout DURATION"],
            "query": ["--json", "--limit N", "--timeout DURATION", "payload"],
            "sessions": ["--source S", "--since DURATION", "--limit N", "--json",
                         "--timeout DURATION"],
            "flush": ["--sink NAME", "--wait", "--timeout DURATION"],
            "deadletter": ["--sink NAME", "--json", "--timeout DURATION"],
        }
        for cmd, want in flags.items():
            r = self.ferry(cmd, "--help")
            self.assertEqual((r.returncode, r.stderr), (0, ""), cmd)
            for flag in want:
                self.assertIn(flag, r.stdout, cmd)
            self.assertNotIn("timeout-ms", r.stdout, cmd)  # the hidden alias
        r = self.ferry("--help")
        for cmd in ("tail", "sessions", "query", "flush", "deadletter", "--version", "--timeout"):
            self.assertIn(cmd, r.stdout)

    def test_version_everywhere_and_did_you_mean(self):
        want = self.ferry("--version").stdout
        self.assertRegex(want, r"^ferry \d+\.\d+\.\d+\n$")
        for cmd in ("tail", "query", "sessions", "flush", "deadletter", "status"):
            r = self.ferry(cmd, "--version")
            self.assertEqual((r.returncode, r.stdout), (0, want), cmd)
        for typo, cmd in (("stauts", "status"), ("tial", "tail"), ("sesions", "sessions"),
                          ("qeury", "query")):
            r = self.ferry(typo)
            self.assertEqual((r.returncode, r.stdout, r.stderr),
                             (2, "", 'ferry: unknown command "%s"; did you mean "%s"? (ferry '
                                     '--help lists them)\n' % (typo, cmd)))
        r = self.ferry("frobnicate")
        self.assertEqual(r.stderr, 'ferry: unknown command "frobnicate" (ferry --help lists them)\n')

    def test_timeout_spelling(self):
        for args in (["status", "--timeout", "5s"], ["status", "--timeout-ms", "5000"],
                     ["tail", "--timeout", "5s", "-n", "1"], ["sessions", "--timeout=5s"],
                     ["query", "--timeout", "5s", "SELECT 1"], ["query", "--timeout-ms", "5000",
                                                                 "SELECT 1"],
                     ["deadletter", "list", "--timeout", "5s"], ["flush", "--timeout", "5s"]):
            r = self.ferry(*args)
            self.assertIn(r.returncode, (0, 1), (args, r.stderr))  # status may be degraded
            self.assertNotIn("timeout", r.stderr, args)
        r = self.ferry("tail", "--timeout", "soon")
        self.assertEqual((r.returncode, r.stderr),
                         (2, "ferry: --timeout needs a duration such as 500ms, 30s, 5m or 1h\n"))


class HungDaemonTest(unittest.TestCase):
    """ferryd stopped with SIGSTOP: the kernel still accepts connections, nobody answers."""

    @classmethod
    def setUpClass(cls):
        cls.d = h.Daemon()
        cls.d.start()
        with cls.d.client() as c:
            c.ack(h.make_event(source="zsh", kind="command", payload={"command": "x"}))
        cls.d.proc.send_signal(signal.SIGSTOP)

    @classmethod
    def tearDownClass(cls):
        cls.d.proc.send_signal(signal.SIGCONT)
        cls.d.close()

    def messages(self, prefix):
        """The message DescribeUnanswered gives (client/offline.h) for a stopped ferryd."""
        pid, sock = self.d.proc.pid, self.d.socket
        return {"%s: ferryd (pid %d) is not answering on %s: stopped (try: kill -CONT %d)\n"
                % (prefix, pid, sock, pid)}

    def check(self, args, prefix, bound):
        start = time.monotonic()
        r = h.run_ferry(args, self.d.env())
        took = time.monotonic() - start
        self.assertEqual((r.returncode, r.stdout), (3, ""), (args, r.stderr))
        self.assertIn(r.stderr, self.messages(prefix), args)
        self.assertLess(took, bound, args)
        return took

    def test_every_read_command_exits_3_within_its_timeout(self):
        for args, prefix in ((["tail", "--timeout", "1s"], "ferry"),
                             (["tail", "--since", "1h", "--timeout", "1s"], "ferry"),
                             (["sessions", "--timeout", "1s"], "ferry"),
                             (["query", "--timeout", "1s", "SELECT 1"], "ferry"),
                             (["query", "--timeout-ms", "1000", "SELECT 1"], "ferry"),
                             (["flush", "--timeout", "1s"], "ferry flush"),
                             (["deadletter", "list", "--timeout", "1s"], "ferry deadletter"),
                             (["deadletter", "replay", "--timeout", "1s"], "ferry deadletter")):
            with self.subTest(args=args):
                self.assertGreaterEqual(self.check(args, prefix, 1.0 + 4.0), 1.0)

    def test_flush_wait_gives_ferryd_its_timeout_plus_a_margin(self):
        took = self.check(["flush", "--wait", "--timeout", "1s"], "ferry flush", 6.0 + 4.0)
        self.assertGreaterEqual(took, 6.0)

    def test_default_bounds(self):
        # tail and sessions wait 10 s by default (query 30 s: docs/queries.md); run together.
        procs = []
        for args in (["tail"], ["sessions"], ["flush"]):
            procs.append((args, time.monotonic(), subprocess.Popen(
                [h.FERRY] + args, env=self.d.env(), stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)))
        for args, start, p in procs:
            out, err = p.communicate(timeout=h.HANG_GUARD_S)
            took = time.monotonic() - start
            self.assertEqual((p.returncode, out), (3, ""), args)
            self.assertIn(err, self.messages("ferry flush" if args == ["flush"] else "ferry"))
            self.assertGreaterEqual(took, 10.0, args)
            self.assertLess(took, 10.0 + 5.0, args)


if __name__ == "__main__":
    unittest.main()
