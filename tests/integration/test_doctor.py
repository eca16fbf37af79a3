"""`ferry doctor` against a real ferryd in a temp HOME: a clean setup passes; each planted
problem gives its exact line, the fix, and the exit code (0 ok, 1 a problem, 3 no ferryd).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import tomllib
import unittest

import ferry_harness as fh


SLOW_RUN = re.compile(r"^warn  (hook run \S+): took (\d+ ms) \(slow\)$")


def without_sanitizer_slowness(r):
    """`ferry doctor`'s result with each "hook run X: took N ms (slow)" warning read as the
    "ok" it is otherwise (the doctor warns of slowness only when the run drained stdin,
    printed nothing and exited 0), when ferry is built with a sanitizer and these are the only
    problems: ASan and TSan make every process start several times slower, so on a busy
    machine a hook run crosses the 500 ms mark. Release builds keep the warning."""
    if not fh.SANITIZER or r.returncode != 1:
        return r
    ok = "drains stdin, prints nothing, exits 0 in "
    if r.stdout.startswith("{"):
        doc = json.loads(r.stdout)
        for c in doc.get("checks", []):
            m = re.fullmatch(r"took (\d+ ms) \(slow\)", c.get("message", ""))
            if c.get("status") == "warn" and c.get("name", "").startswith("hook run ") and m:
                c.update(status="ok", message=ok + m.group(1), fix="")
        if any(c.get("status") != "ok" for c in doc.get("checks", [])):
            return r
        doc["exit"] = 0
        return subprocess.CompletedProcess(r.args, 0, json.dumps(doc), r.stderr)
    out, skip_fix = [], False
    for line in r.stdout.splitlines():
        m = SLOW_RUN.match(line)
        if m:
            out.append("ok    %s: %s%s" % (m.group(1), ok, m.group(2)))
            skip_fix = True
            continue
        if not (skip_fix and line.startswith("      fix: ")):
            out.append(line)
        skip_fix = False
    if any(not l.startswith(("ok    ", "      ")) for l in out):
        return r
    return subprocess.CompletedProcess(r.args, 0, "\n".join(out) + "\n", r.stderr)


class DoctorTest(unittest.TestCase):
    def setUp(self):
        self.d = fh.Daemon().start()
        self.home = self.d.root
        self.ferryd_dir = os.path.dirname(os.path.abspath(shutil.which(fh.FERRYD) or fh.FERRYD))
        for tool in ("claude-code", "codex"):
            os.makedirs(os.path.join(self.home, "." + tool.split("-")[0]), exist_ok=True)
            r = self.run_ferry(["hooks", "install", tool])
            self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(self.home, ".bashrc"), "w") as f:
            f.write('eval "$(ferry init bash)"\n')
        self.claude = os.path.join(self.home, ".claude", "settings.json")
        self.codex = os.path.join(self.home, ".codex", "config.toml")
        self.trust_codex_hooks()

    def trust_codex_hooks(self):
        """What Codex's /hooks writes when the user trusts ferry's hooks: one
        [hooks.state."<file>:<event>:<group>:<handler>"] table each, before the trailing
        comment (ferry's end marker), as toml_edit places new tables."""
        with open(self.codex, "rb") as f:
            text = f.read()
        doc = tomllib.loads(text.decode())
        trust = b""
        for ev, groups in doc["hooks"].items():
            snake = re.sub(r"(?<!^)([A-Z])", r"_\1", ev).lower()
            for gi, g in enumerate(groups):
                for hi, h in enumerate(g["hooks"]):
                    if h["command"].endswith(" ferry-hook"):
                        trust += (b'\n[hooks.state."%s:%s:%d:%d"]\ntrusted_hash = "sha256:%02d"\n'
                                  % (self.codex.encode(), snake.encode(), gi, hi, len(trust) % 97))
        with open(self.codex, "wb") as f:
            f.write(text.replace(b"# <<< ferry hooks <<<\n", trust + b"# <<< ferry hooks <<<\n"))

    def tearDown(self):
        if self.d.proc is not None and self.d.proc.poll() is None:
            self.d.proc.send_signal(signal.SIGCONT)
        self.d.close()

    def env(self, **extra):
        # ferryd (for --check-config) on PATH; no ferry there, so the hooks run the tested one.
        env = self.d.env(PATH=self.ferryd_dir + ":/usr/bin:/bin", SHELL="/bin/bash")
        env.update(extra)
        return env

    def run_ferry(self, args, **extra):
        return subprocess.run([fh.FERRY] + args, env=self.env(**extra), cwd=self.home,
                              capture_output=True, text=True, timeout=fh.HANG_GUARD_S)

    def doctor(self, *args, **extra):
        r = self.run_ferry(["doctor"] + list(args), **extra)
        self.assertEqual(r.stderr, "")
        return without_sanitizer_slowness(r)

    def lines(self, r):
        return r.stdout.splitlines()

    def assertLine(self, r, line, fix=None):
        out = self.lines(r)
        self.assertIn(line, out, r.stdout)
        if fix is not None:
            self.assertEqual(out[out.index(line) + 1], "      fix: " + fix, r.stdout)

    def test_clean_setup_passes(self):
        r = self.doctor()
        self.assertEqual(r.returncode, 0, r.stdout)
        for line in self.lines(r):
            self.assertRegex(line, r"^ok    ", r.stdout)
        pid = self.d.proc.pid
        self.assertLine(r, "ok    daemon: ferryd %s (pid %d) answers on %s and is healthy"
                        % (self.d.status()["daemon"]["version"], pid, self.d.socket))
        self.assertLine(r, "ok    state: %s is yours alone (0700)" % self.d.state_dir)
        self.assertLine(r, "ok    config: no %s/xdg-config/ferry/config.toml: the defaults apply"
                        % self.home)
        self.assertLine(r, "ok    spool: empty")
        self.assertLine(r, "ok    sinks: none configured")
        self.assertLine(r, "ok    hooks claude-code: installed once in %s (10 events, timeouts set)"
                        % self.claude)
        self.assertLine(r, "ok    hooks codex: installed once in %s/.codex/config.toml "
                           "(9 events, timeouts set)" % self.home)
        self.assertLine(r, "ok    hooks cursor: cursor is not set up here (no %s/.cursor)"
                        % self.home)
        self.assertLine(r, "ok    shell: %s/.bashrc loads `ferry init bash`" % self.home)
        for tool in ("claude-code", "codex"):
            self.assertTrue(any(re.fullmatch(r"ok    hook run %s: drains stdin, prints nothing, "
                                             r"exits 0 in \d+ ms" % tool, l)
                                for l in self.lines(r)), r.stdout)
        # The hook runs went to a throwaway socket: nothing was recorded.
        self.assertEqual(self.d.journal(), [])

        r = self.doctor("--json")
        self.assertEqual(r.returncode, 0)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["exit"], 0)
        self.assertEqual({c["status"] for c in doc["checks"]}, {"ok"})
        self.assertIn({"name": "spool", "status": "ok", "message": "empty", "fix": ""},
                      doc["checks"])

    def test_codex_hooks_not_trusted(self):
        # A reinstall that changes nothing keeps Codex's trust entries (they are not ferry's).
        self.assertEqual(self.run_ferry(["hooks", "install", "codex"]).returncode, 0)
        self.assertEqual(self.doctor().returncode, 0)
        os.unlink(self.codex)
        self.assertEqual(self.run_ferry(["hooks", "install", "codex"]).returncode, 0)
        r = self.doctor()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertLine(r, "warn  hooks codex: 9 of ferry's 9 hooks in %s are not trusted: Codex "
                           "runs a hook only after you trust it, and says nothing otherwise"
                        % self.codex, "open /hooks in codex and trust ferry's hooks")

    def test_cursor_and_claude_both_installed(self):
        os.makedirs(os.path.join(self.home, ".cursor"))
        self.assertEqual(self.run_ferry(["hooks", "install", "cursor"]).returncode, 0)
        r = self.doctor()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertLine(
            r, "FAIL  hooks cursor: ferry is in both %s/.cursor/hooks.json and %s: Cursor runs "
               "Claude Code's hooks too, so each Cursor event is recorded twice, once labelled "
               "claude-code" % (self.home, self.claude),
            'turn off "Third-party hooks" in Cursor\'s settings (Hooks), or, without Claude '
            'Code: ferry hooks uninstall claude-code')
        self.assertEqual([l for l in self.lines(r) if not l.startswith(("ok ", "      fix:"))],
                         [l for l in self.lines(r) if l.startswith("FAIL  hooks cursor:")])

    def edit_claude(self, change):
        with open(self.claude) as f:
            doc = json.load(f)
        for groups in doc["hooks"].values():
            for g in groups:
                for h in g["hooks"]:
                    change(h)
        with open(self.claude, "w") as f:
            json.dump(doc, f, indent=2)

    def test_malformed_host_config(self):
        path = os.path.join(self.home, ".gemini", "settings.json")
        os.makedirs(os.path.dirname(path))
        with open(path, "w") as f:
            f.write('{\n  "a": 1,\n  // comments are fine for Gemini\n  "hooks": {\n')
        r = self.doctor()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertLine(r, "FAIL  hooks gemini: %s:5:1: not valid JSON: Missing a name for object "
                           "member; gemini may not load it either" % path,
                        "edit %s (ferry hooks install gemini refuses to change it until it "
                        "parses)" % path)
        self.assertEqual([l for l in self.lines(r) if "hooks gemini" in l], [self.lines(r)[
            self.lines(r).index("FAIL  hooks gemini: %s:5:1: not valid JSON: Missing a name for "
                                "object member; gemini may not load it either" % path)]])

    def test_missing_timeout(self):
        self.edit_claude(lambda h: h.pop("timeout"))
        r = self.doctor()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertLine(r, "warn  hooks claude-code: 10 ferry handler(s) in %s without a "
                           "timeout: a stuck hook holds claude-code up to its default (600 s "
                           "for Claude Code and Codex)" % self.claude,
                        "ferry hooks install claude-code")
        self.assertEqual(self.run_ferry(["hooks", "install", "claude-code"]).returncode, 0)
        self.assertEqual(self.doctor().returncode, 0, "the fix fixes it")

    def test_hook_command_that_prints(self):
        self.edit_claude(lambda h: h.update(command="sh -c 'cat >/dev/null; echo hello' ferry-hook"))
        r = self.doctor()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertLine(r, 'FAIL  hook run claude-code: printed on stdout ("hello"): the host '
                           'reads hook output as context or a decision',
                        "ferry hooks install claude-code")

    def test_hook_command_that_does_not_read_stdin(self):
        self.edit_claude(lambda h: h.update(command="sh -c 'exit 0' ferry-hook"))
        r = self.doctor()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertLine(r, "FAIL  hook run claude-code: exited before reading all of stdin: "
                           "claude-code gets EPIPE on large payloads",
                        "ferry hooks install claude-code")

    def test_duplicate_and_missing_events(self):
        with open(self.claude) as f:
            doc = json.load(f)
        doc["hooks"]["Stop"].append(doc["hooks"]["Stop"][-1])
        del doc["hooks"]["SessionEnd"]
        with open(self.claude, "w") as f:
            json.dump(doc, f)
        r = self.doctor()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertLine(r, "FAIL  hooks claude-code: Stop has 2 ferry handlers in %s: each Stop "
                           "is recorded 2 times" % self.claude, "ferry hooks install claude-code")
        self.assertLine(r, "warn  hooks claude-code: not subscribed to SessionEnd (installed by "
                           "an older ferry?)", "ferry hooks install claude-code")

    def test_spool_file_with_ferryd_down(self):
        self.d.stop()
        spool = os.path.join(self.d.state_dir, "spool")
        event = {"v": 1, "event": fh.make_event()}
        with open(os.path.join(spool, "1700000000000000000-1-abc.ndjson"), "w") as f:
            f.write(json.dumps(event) + "\n")
        r = self.doctor()
        self.assertEqual(r.returncode, 3, r.stdout)
        self.assertLine(r, "FAIL  spool: 1 event(s) in 1 file(s) wait in %s: ferryd imports them "
                           "when it runs" % spool)
        self.assertLine(r, "warn  sinks: not checked: ferryd does not answer")

    def test_rejected_spool_file(self):
        spool = os.path.join(self.d.state_dir, "spool")
        with open(os.path.join(spool, "1-1-x.ndjson.rejected"), "w") as f:
            f.write("not json\n")
        r = self.doctor()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertLine(r, "warn  spool: 1 file(s) ferryd could not import are kept in %s as "
                           "*.rejected" % spool,
                        "read them (ferryd's log says why), then rm %s/*.rejected" % spool)

    def test_bad_config(self):
        bad = os.path.join(self.home, "bad.toml")
        with open(bad, "w") as f:
            f.write("frobnicate = 1\n")
        r = self.doctor(FERRY_CONFIG=bad)
        self.assertEqual(r.returncode, 1, r.stdout)
        ferryd = os.path.join(self.ferryd_dir, "ferryd")
        self.assertLine(r, 'FAIL  config: %s:1:1: unknown key "frobnicate"' % bad,
                        "edit %s, then %s --check-config --config %s" % (bad, ferryd, bad))

    def test_state_dir_open_to_others(self):
        os.chmod(self.d.state_dir, 0o755)
        r = self.doctor()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertLine(r, "FAIL  state: %s is mode 0755: other users can read what ferry "
                           "recorded" % self.d.state_dir, "chmod 700 " + self.d.state_dir)

    def test_ferryd_down(self):
        self.d.stop()
        r = self.doctor()
        self.assertEqual(r.returncode, 3, r.stdout)
        out = self.lines(r)
        self.assertRegex(out[0], r"^FAIL  daemon: ferryd does not answer on %s: connect %s: "
                                 r"(No such file or directory|Connection refused)$"
                         % (re.escape(self.d.socket), re.escape(self.d.socket)))
        self.assertTrue(out[1].startswith("      fix: systemctl --user start ferryd.socket"))
        # The offline checks still ran.
        self.assertLine(r, "ok    spool: empty")
        self.assertLine(r, "ok    hooks claude-code: installed once in %s (10 events, timeouts set)"
                        % self.claude)
        doc = json.loads(self.doctor("--json").stdout)
        self.assertEqual(doc["exit"], 3)
        self.assertEqual(doc["checks"][0]["status"], "fail")

    def test_ferryd_stopped_does_not_answer(self):
        self.d.proc.send_signal(signal.SIGSTOP)
        r = self.doctor("--timeout-ms", "300")
        self.assertEqual(r.returncode, 3, r.stdout)
        self.assertEqual(self.lines(r)[:2], [
            "FAIL  daemon: ferryd takes connections on %s but does not answer (stopped, hung or "
            "overloaded): waiting for a reply: timed out" % self.d.socket,
            "      fix: systemctl --user restart ferryd (or kill the stuck ferryd and start it)"])

    def test_latency_from_recorded_events(self):
        for _ in range(2):
            self.emit_fixture("claude-code", "claude-code/PreToolUse.json")
        self.wait_stored(2)
        r = self.doctor()
        self.assertRegex(r.stdout, r"\n(ok  |warn)  latency claude-code: PreToolUse 2x avg "
                                   r"\d+\.\d ms max \d+\.\d ms\n")

    def emit_fixture(self, source, fixture):
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                            "hooks", fixture)
        with open(path, "rb") as f:
            r = subprocess.run([fh.FERRY, "emit", "--source", source, "--stdin"], env=self.env(),
                               input=f.read(), capture_output=True, timeout=fh.HANG_GUARD_S)
        self.assertEqual(r.returncode, 0)

    def wait_stored(self, n):
        deadline = time.monotonic() + fh.HANG_GUARD_S
        while self.d.status()["store"]["cursor"] < n:  # the store applies events in batches
            self.assertLess(time.monotonic(), deadline, "the store never had %d events" % n)
            time.sleep(0.02)

    def test_cursor_events_recorded_as_claude_code(self):
        # What Cursor's "third-party hooks" produce: a Cursor payload through Claude's hook.
        # Since issue 13, ferryd stores it as cursor (docs/hooks.md "Which host sent it"), so
        # no claude-code row carries Cursor's payload and the doctor has nothing to warn of.
        # (Its check still finds such rows stored by an older ferryd.)
        self.emit_fixture("claude-code", "cursor/beforeShellExecution.json")
        self.wait_stored(1)
        r = self.doctor()
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertNotIn("warn  hooks cursor", r.stdout)
        self.assertIn("ok    latency cursor: beforeShellExecution 1x", r.stdout)

    def test_newer_hosts(self):
        r = self.doctor()
        self.assertLine(r, "ok    hooks copilot: copilot is not set up here (no %s/.copilot)"
                        % self.home)
        self.assertLine(r, "ok    hooks cline: cline is not set up here (no %s/Documents/Cline)"
                        % self.home)
        for d in (".copilot", ".codeium/windsurf", "Documents/Cline", "xdg-config/opencode"):
            os.makedirs(os.path.join(self.home, d), exist_ok=True)
        r = self.doctor()
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertLine(r, "ok    hooks windsurf: not installed (`ferry hooks install windsurf` "
                           "records windsurf)")
        self.assertLine(r, "ok    hooks opencode: not installed (`ferry hooks install opencode` "
                           "records opencode)")
        for tool in ("copilot", "windsurf", "cline", "opencode"):
            r = self.run_ferry(["hooks", "install", tool])
            self.assertEqual(r.returncode, 0, r.stderr)
        r = self.doctor()
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertLine(r, "ok    hooks copilot: installed once in %s/.copilot/hooks/ferry.json "
                           "(10 events, timeouts set)" % self.home)
        self.assertLine(r, "ok    hooks windsurf: installed once in %s/.codeium/windsurf/hooks.json "
                           "(7 events; windsurf has no hook timeout)" % self.home)
        cline_dir = os.path.join(self.home, "Documents", "Cline", "Hooks")
        plugins = os.path.join(self.home, "xdg-config", "opencode", "plugins")
        self.assertLine(r, "ok    hooks cline: installed in %s (8 event scripts)" % cline_dir)
        self.assertLine(r, "ok    hooks opencode: installed in %s (1 plugin)" % plugins)
        for tool in ("copilot", "windsurf", "cline"):
            self.assertTrue(any(re.fullmatch(r"ok    hook run %s: drains stdin, prints nothing, "
                                             r"exits 0 in \d+ ms" % tool, l)
                                for l in self.lines(r)), r.stdout)
        self.assertEqual(self.d.journal(), [])

        os.unlink(os.path.join(cline_dir, "PreCompact"))
        with open(os.path.join(plugins, "ferry.js"), "a") as f:
            f.write("// edited\n")
        r = self.doctor()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertLine(r, "warn  hooks cline: no ferry hook for PreCompact in %s (installed by "
                           "an older ferry, or removed)" % cline_dir, "ferry hooks install cline")
        self.assertLine(r, "warn  hooks opencode: ferry.js in %s differs from what this ferry "
                           "writes (an older ferry, another ferry binary, or edited)" % plugins,
                        "ferry hooks install opencode")

    def test_usage(self):
        r = self.run_ferry(["doctor", "--frob"])
        self.assertEqual((r.returncode, r.stdout), (2, ""))
        self.assertEqual(r.stderr, 'ferry: doctor: unknown argument "--frob"\n')
        r = self.run_ferry(["doctor", "--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("Exit status: 0 every check ok", r.stdout)


if __name__ == "__main__":
    unittest.main()
