"""`ferry init bash|zsh|fish` in real interactive shells under a pseudo-terminal.

Each test starts ferryd on a temp socket, runs a shell with the snippet (loaded twice, to
prove the guard), types commands and reads the events back from the journal. Waits poll the
journal with a hang guard; nothing sleeps for correctness.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

import ferry_harness as fh
import shell_pty

SHELLS = ("bash", "zsh", "fish")
UNICODE_CMD = "echo 'q\"uo' \"back\\\\slash\" \u00fc\u20ac\U0001F600 tab\\there"


def shell_events(d, shell):
    return [r.body for r in d.journal() if r.body.get("source") == shell]


def wait_events(d, shell, pred, what):
    deadline = time.monotonic() + fh.HANG_GUARD_S
    while True:
        evs = shell_events(d, shell)
        if pred(evs):
            return evs
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s; have %r"
                                 % (what, [e["payload"].get("command") for e in evs]))
        time.sleep(0.02)


def recorded_exactly(d, shell, sh, expected):
    """Waits for every expected command's event, then for a sentinel typed after them (so a
    stray event for a command that should not be recorded has had its time to land); returns
    the recorded commands, sorted, without the sentinel."""
    wait_events(d, shell, lambda evs: set(expected) <= {e["payload"]["command"] for e in evs},
                "events for %r" % (expected,))
    sh.run("echo final-sentinel")
    evs = wait_events(d, shell, lambda evs: "echo final-sentinel" in
                      {e["payload"]["command"] for e in evs}, "the sentinel")
    return sorted(e["payload"]["command"] for e in evs
                  if e["payload"]["command"] != "echo final-sentinel")


def relay_pids(shell_pid):
    """The live `ferry relay` processes serving shell_pid (not the one-shot --stdin ones)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if (b"relay" in argv and b"--stdin" not in argv and b"--shell-pid" in argv
                and argv[argv.index(b"--shell-pid") + 1] == str(shell_pid).encode()):
            pids.append(int(name))
    return pids


def wait_gone(pid, what):
    """Waits until process `pid` no longer exists (not even as a zombie)."""
    deadline = time.monotonic() + fh.HANG_GUARD_S
    while os.path.exists("/proc/%d" % pid):
        if time.monotonic() > deadline:
            with open("/proc/%d/stat" % pid) as f:
                raise AssertionError("%s (pid %d) is still there: %s" % (what, pid, f.read()))
        time.sleep(0.02)


def relay_fifos(d):
    run = os.path.dirname(d.socket)
    return sorted(n for n in os.listdir(run) if n.startswith("relay-")) if os.path.isdir(run) else []


class ShellInitTest(unittest.TestCase):
    def setUp(self):
        self.d = fh.Daemon()
        self.d.start()
        self.shells = []

    def tearDown(self):
        for s in self.shells:
            s.close()
        self.d.close()

    def init_text(self, shell, ferry=None):
        r = subprocess.run([ferry or fh.FERRY, "init", shell], env=self.d.env(),
                           capture_output=True, text=True, timeout=fh.HANG_GUARD_S)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def start_shell(self, shell, extra_rc="", env_extra=None, twice=True, ferry=None):
        if not shutil.which(shell):
            self.skipTest("%s is not installed (scripts/setup installs it)" % shell)
        work = os.path.join(self.d.root, "work-" + shell)
        os.makedirs(os.path.join(work, "sub"), exist_ok=True)
        text = self.init_text(shell, ferry)
        env = self.d.env(**(env_extra or {}))
        s = shell_pty.Shell(shell, self.d.root, env, work, text + "\n" + text if twice else text,
                            extra_rc=extra_rc)
        self.shells.append(s)
        return s, work

    def run_session(self, shell, **kw):
        """Types the standard command list; returns (events by command, terminal, work dir)."""
        s, work = self.start_shell(shell, **kw)
        status_var = "$status" if shell == "fish" else "$?"
        cmds = ["false", "true | false", " echo hidden-leading-space", UNICODE_CMD,
                "export MY_TOKEN=abc123", "false", "echo " + status_var, "cd sub",
                "echo done-marker"]
        shown = {c: s.run(c) for c in cmds}
        recorded = ["false", "true | false", UNICODE_CMD, "false", "echo " + status_var,
                    "cd sub", "echo done-marker"]
        wait_events(self.d, shell, lambda evs: set(recorded) <= {e["payload"]["command"] for e in evs}
                    and len(evs) >= len(recorded), "%d events" % len(recorded))
        s.run("echo final-sentinel")
        evs = wait_events(self.d, shell,
                          lambda evs: any(e["payload"]["command"] == "echo final-sentinel" for e in evs),
                          "the sentinel")
        evs = [e for e in evs if e["payload"]["command"] != "echo final-sentinel"]
        return s, evs, recorded, shown, work

    def check_session(self, shell, **kw):
        s, evs, recorded, shown, work = self.run_session(shell, **kw)
        # $? (fish: $status) seen by the user is the failing command's.
        status_out = shown["echo $status" if shell == "fish" else "echo $?"]
        self.assertIn("\r\n1\r\n", status_out.replace("\x1b[?2004l\r", ""))
        commands = sorted(e["payload"]["command"] for e in evs)
        self.assertEqual(commands, sorted(recorded), "exactly the recorded commands, once each")
        by = {}
        for e in evs:
            by.setdefault(e["payload"]["command"], []).append(e)
        session = evs[0]["session"]
        self.assertTrue(session.startswith(str(s.pid) + "-"), session)
        for e in evs:
            p = e["payload"]
            self.assertEqual((e["source"], e["kind"]), (shell, "command"))
            self.assertEqual(p["shell"], shell)
            self.assertEqual(e["session"], session)
            self.assertEqual(p["session"], session)
            self.assertEqual(p["pid"], s.pid)
            self.assertGreaterEqual(p["duration_ns"], 0)
            self.assertIsInstance(p["exit_status"], int)
            self.assertEqual(p["cwd"], e["cwd"])
            if shell != "fish":
                self.assertGreater(p["started_at_ns"], 1_600_000_000 * 10**9)
        self.assertEqual([e["payload"]["exit_status"] for e in by["false"]], [1, 1])
        self.assertEqual(by["false"][0]["payload"]["pipestatus"], [1])
        pipe = by["true | false"][0]["payload"]
        self.assertEqual((pipe["exit_status"], pipe["pipestatus"]), (1, [0, 1]))
        self.assertEqual(by[UNICODE_CMD][0]["payload"]["exit_status"], 0)
        self.assertEqual(by["cd sub"][0]["cwd"], work)
        self.assertEqual(by["echo done-marker"][0]["cwd"], os.path.join(work, "sub"))
        if shell != "fish":
            starts = [by[c][0]["payload"]["started_at_ns"] for c in ("true | false", UNICODE_CMD, "cd sub", "echo done-marker")]
            self.assertEqual(starts, sorted(starts))
        for e in evs:
            self.assertNotIn("hidden", e["payload"]["command"])
            self.assertNotIn("TOKEN", e["payload"]["command"])
        return by

    def test_bash(self):
        self.check_session("bash")

    def test_bash_ignoreboth_and_existing_prompt_command(self):
        # Debian's default ~/.bashrc sets HISTCONTROL=ignoreboth; a user PROMPT_COMMAND keeps
        # running and sees $? unchanged.
        rc = ("HISTCONTROL=ignoreboth\n__user_pc=0\n"
              "PROMPT_COMMAND='__user_st=$?; __user_pc=$((__user_pc+1))'\n")
        s, work = self.start_shell("bash", extra_rc=rc)
        s.run("false")
        out = s.run('echo "user:$__user_st:$__user_pc"')
        self.assertRegex(out, r"user:1:[0-9]+")
        s.run(" echo hidden-leading-space")
        s.run("echo done-marker")
        expected = sorted(["false", 'echo "user:$__user_st:$__user_pc"', "echo done-marker"])
        self.assertEqual(recorded_exactly(self.d, "bash", s, expected), expected)

    def test_bash_with_a_bash_preexec_style_framework(self):
        # bash-preexec is not packaged for Debian; this stand-in follows its interface
        # (bash_preexec_imported, precmd_functions/preexec_functions, BP_PIPESTATUS, $?
        # restored before each precmd function, preexec given the `history 1` text).
        shim = r"""
bash_preexec_imported=defined
precmd_functions=() preexec_functions=()
__bp_armed=
__bp_precmd() {
  __bp_last_ret_value=$? BP_PIPESTATUS=("${PIPESTATUS[@]}")
  local f
  for f in "${precmd_functions[@]}"; do (exit $__bp_last_ret_value); "$f"; done
  __bp_armed=on
}
__bp_preexec() {
  [[ -n ${COMP_LINE-} || -z $__bp_armed ]] && return
  __bp_armed=
  local line; line=$(HISTTIMEFORMAT= builtin history 1)
  [[ $line =~ ^\ *[0-9]+\*?\ \ (.*)$ ]] || return
  local f; for f in "${preexec_functions[@]}"; do "$f" "${BASH_REMATCH[1]}"; done
}
trap '__bp_preexec' DEBUG
PROMPT_COMMAND=__bp_precmd
"""
        s, _ = self.start_shell("bash", extra_rc=shim)
        s.run("false")
        self.assertIn("\r\n1\r\n", s.run("echo $?"))
        s.run("true | false")
        expected = sorted(["false", "echo $?", "true | false"])
        self.assertEqual(recorded_exactly(self.d, "bash", s, expected), expected)
        by = {e["payload"]["command"]: e["payload"] for e in shell_events(self.d, "bash")}
        self.assertEqual(by["false"]["exit_status"], 1)
        self.assertEqual((by["true | false"]["exit_status"], by["true | false"]["pipestatus"]), (1, [0, 1]))
        self.assertEqual(by["echo $?"]["exit_status"], 0)

    def test_zsh(self):
        self.check_session("zsh", extra_rc="precmd_functions+=(__user_precmd)\n__user_precmd() { __user_st=$? }\n")

    def test_fish(self):
        self.check_session("fish")

    def test_dollar_bang_still_names_the_users_job(self):
        for shell in ("bash", "zsh"):
            s, _ = self.start_shell(shell)
            # Before the user's first job the snippet's own job may move $! (there is no job
            # of theirs to name); from then on it never does.
            s.run("true")
            s.run("sleep 0 &")

            def bg_pid():
                # The pty echoes the typed line (with line-editor redraws and escapes) before
                # the output, and on a slow machine a read can end before the output: take
                # the last "bg=<digits>", asking again if the answer has not arrived yet.
                for _ in range(3):
                    found = re.findall(r"bg=(\d+)", s.run("echo bg=$!"))
                    if found:
                        return found[-1]
                self.fail("%s never printed bg=<pid>" % shell)

            first = bg_pid()
            s.run("true")
            self.assertEqual(first, bg_pid(), shell)

    def check_background(self, shell):
        s, _ = self.start_shell(shell)
        bg = ["sleep 1 &"] + (["sleep 1 &!"] if shell == "zsh" else [])
        cmds = ["true | false"] + bg + ["sleep 0 & wait", "echo after"]
        for c in cmds:
            s.run(c)
        self.assertEqual(recorded_exactly(self.d, shell, s, sorted(cmds)), sorted(cmds))
        by = {e["payload"]["command"]: e["payload"] for e in shell_events(self.d, shell)}
        for c in bg:
            # The job's status is not known at the prompt: no exit_status, no (stale) pipestatus.
            p = by[c]
            self.assertEqual((p.get("background"), "exit_status" in p, "pipestatus" in p),
                             (True, False, False), (c, p))
        # A background job waited for in the same line: a foreground command after all.
        fg = by["sleep 0 & wait"]
        self.assertEqual((fg["exit_status"], fg["pipestatus"], "background" in fg), (0, [0], False))
        after = by["echo after"]
        self.assertEqual((after["exit_status"], after["pipestatus"], "background" in after),
                         (0, [0], False))

    def test_background_job_bash(self):
        self.check_background("bash")

    def test_background_job_zsh(self):
        self.check_background("zsh")

    def test_background_job_fish(self):
        self.check_background("fish")

    def wait_session_closed(self, shell, session):
        """Waits until ferry.db's sessions row of `session` is closed; returns its end_reason."""
        sql = ("SELECT end_reason FROM sessions WHERE source = '%s' AND session = '%s'"
               % (shell, session))
        deadline = time.monotonic() + fh.HANG_GUARD_S
        while True:
            r = fh.run_ferry(["query", sql, "--json"], self.d.env())
            rows = [json.loads(l) for l in r.stdout.splitlines() if l.strip()] if r.returncode == 0 else []
            if rows and rows[0].get("end_reason"):
                return rows[0]["end_reason"]
            if time.monotonic() > deadline:
                raise AssertionError("session %s never closed: %r %r" % (session, r.stdout, r.stderr))
            time.sleep(0.05)

    def check_session_end(self, shell, extra_rc="", exit_line="exit"):
        s, work = self.start_shell(shell, extra_rc=extra_rc)
        s.run("true")
        evs = wait_events(self.d, shell, lambda evs: len(evs) >= 1, "the command")
        session = evs[0]["session"]
        try:
            os.write(s.fd, exit_line.encode() + b"\r")
        except OSError:
            pass
        s.close()
        self.shells.remove(s)
        # fish also records the `exit` line itself (its fish_postexec runs for it). That event
        # is sent in the background and session_end in the foreground: either may land first.
        commands = ["true"] + ([exit_line] if shell == "fish" else [])
        evs = wait_events(self.d, shell, lambda evs: len(evs) >= len(commands) + 1,
                          "the session_end event")
        self.assertEqual(sorted((e["kind"], e["session"], e["payload"].get("command") or "")
                                for e in evs),
                         sorted([("command", session, c) for c in commands]
                                + [("session_end", session, "")]))
        end = [e for e in evs if e["kind"] == "session_end"][0]["payload"]
        self.assertEqual((end["shell"], end["session"], end["pid"]), (shell, session, s.pid))
        self.assertEqual(self.wait_session_closed(shell, session), "end")
        return end

    def test_session_end_bash(self):
        self.assertEqual(self.check_session_end("bash")["shell_status"], 0)

    def test_session_end_zsh(self):
        self.check_session_end("zsh")

    def test_session_end_fish(self):
        self.check_session_end("fish")

    def test_session_end_when_the_terminal_closes(self):
        # Closing the terminal window: the shell gets SIGHUP, not `exit`.
        for shell in SHELLS:
            if not shutil.which(shell):
                continue
            s, _ = self.start_shell(shell)
            self.shells.remove(s)
            s.run("true")
            evs = wait_events(self.d, shell, lambda evs: len(evs) >= 1, "the command")
            session = evs[0]["session"]
            os.close(s.fd)
            os.waitpid(s.pid, 0)
            evs = wait_events(self.d, shell,
                              lambda evs: any(e["kind"] == "session_end" for e in evs),
                              "%s's session_end after a hangup" % shell)
            self.assertEqual(sorted((e["kind"], e["session"]) for e in evs),
                             [("command", session), ("session_end", session)], shell)
            self.assertEqual(self.wait_session_closed(shell, session), "end")

    def test_bash_exit_trap_of_the_user_is_kept_and_sees_the_status(self):
        # An EXIT trap set before the snippet keeps running, after ferry's, with the shell's $?.
        rc = """trap 'echo "user-trap:$?" > "$HOME/trap.out"' EXIT\n"""
        end = self.check_session_end("bash", extra_rc=rc, exit_line="exit 3")
        self.assertEqual(end["shell_status"], 3)
        deadline = time.monotonic() + fh.HANG_GUARD_S
        path = os.path.join(self.d.root, "trap.out")
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        with open(path) as f:
            self.assertEqual(f.read(), "user-trap:3\n")

    # Typed at the prompt -> what `ferry query` shows (the default [redact] local = true).
    REDACTED = [
        ('curl -H "Authorization: Bearer abc.def-123" https://api.example.com',
         'curl -H "Authorization: Bearer [REDACTED:bearer]" https://api.example.com'),
        ("echo ghp_FaKe0ToKeN0fOr0ReDaCtIoN0TeStS000000", "echo [REDACTED:github-token]"),
        ("password=$x", "password=[REDACTED:secret-pair]"),
        ("mysql_pw=hunter2 mysql -u root", "mysql_pw=[REDACTED:secret-pair] mysql -u root"),
        ("mysql -u root -phunter2 app", "mysql -u root -p[REDACTED:cli-password] app"),
        ("git clone https://alice:s3cr3t@github.com/org/repo.git",
         "git clone https://alice:[REDACTED:url-credentials]@github.com/org/repo.git"),
        ("curl -d '{\"Password\":12345}' https://api.example.com",
         "curl -d '{\"Password\":[REDACTED:secret-pair]}' https://api.example.com"),
        # Not secrets: recorded exactly as typed.
        ("echo password-reset.md", "echo password-reset.md"),
        ("git log --author=pass", "git log --author=pass"),
    ]
    SECRETS = ["abc.def-123", "ghp_FaKe0ToKeN0fOr0ReDaCtIoN0TeStS000000", "hunter2", "s3cr3t",
               "12345"]

    def check_redacted(self, shell):
        # curl, mysql and git are stubbed out: only the typed text matters.
        if shell == "fish":
            rc = "function curl; end\nfunction mysql; end\nfunction git; end\n"
        else:
            rc = "curl() { :; }\nmysql() { :; }\ngit() { :; }\n"
        s, _ = self.start_shell(shell, extra_rc=rc)
        for typed, _ in self.REDACTED:
            s.run(typed)
        want = [stored for _, stored in self.REDACTED]
        self.assertEqual(recorded_exactly(self.d, shell, s, want), sorted(want))
        sql = ("SELECT json_extract(payload, '$.command') AS command FROM events "
               "WHERE source = '%s' AND kind = 'command' ORDER BY seq" % shell)
        deadline = time.monotonic() + fh.HANG_GUARD_S
        while True:
            r = fh.run_ferry(["query", sql, "--json"], self.d.env())
            got = [json.loads(l)["command"] for l in r.stdout.splitlines() if l.strip()]
            if len(got) > len(want) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        # Each command is its own detached `ferry emit`: seq order need not be typing order.
        self.assertEqual((r.returncode, sorted(got)), (0, sorted(want + ["echo final-sentinel"])),
                         r.stderr)
        # Neither the journal nor ferry.db holds them.
        journal = json.dumps([r.body for r in self.d.journal()])
        for secret in self.SECRETS:
            self.assertNotIn(secret, journal)

    def test_secrets_typed_in_bash_are_stored_redacted(self):
        self.check_redacted("bash")

    def test_secrets_typed_in_zsh_are_stored_redacted(self):
        self.check_redacted("zsh")

    def test_secrets_typed_in_fish_are_stored_redacted(self):
        self.check_redacted("fish")

    def test_custom_ignore_list_replaces_the_defaults(self):
        s, work = self.start_shell("bash", env_extra={"FERRY_IGNORE": "*secret-word*:ls *"})
        for c in ["echo secret-word", "ls /", "export MY_TOKEN=kept", "echo done-marker"]:
            s.run(c)
        # Not ignored any more, so recorded; the default local redaction still hides the value.
        expected = ["echo done-marker", "export MY_TOKEN=[REDACTED:secret-pair]"]
        self.assertEqual(recorded_exactly(self.d, "bash", s, expected), expected)

    def test_non_interactive_shells_record_nothing(self):
        ran = []
        for shell in SHELLS:
            if not shutil.which(shell):
                continue
            text = self.init_text(shell)
            path = os.path.join(self.d.root, "init." + shell)
            with open(path, "w") as f:
                f.write(text)
            if shell == "fish":
                argv = ["fish", "-c", "source %s; true; false; echo ok" % path]
            else:
                argv = [shell, "-c", 'eval "$(cat %s)"; true; false; echo ok' % path]
            r = subprocess.run(argv, env=self.d.env(), capture_output=True, text=True,
                               timeout=fh.HANG_GUARD_S, stdin=subprocess.DEVNULL)
            self.assertEqual((r.stdout, r.stderr), ("ok\n", ""), shell)
            ran.append(shell)
        r = self.d.emit("--source", "marker", "--kind", "end", "--strict", "--timeout-ms", "10000")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([e.body["source"] for e in self.d.journal()], ["marker"], ran)

    # -- the relay (client/relay.h): one per shell, so the prompt never forks -------------

    def relay_of(self, s):
        """The one relay serving shell `s` (waits for it: it starts with the shell)."""
        deadline = time.monotonic() + fh.HANG_GUARD_S
        while True:
            pids = relay_pids(s.pid)
            if len(pids) == 1:
                return pids[0]
            if time.monotonic() > deadline:
                raise AssertionError("relays of %s %d: %r" % (s.shell, s.pid, pids))
            time.sleep(0.02)

    def rows(self, shell):
        """(command, exit_status, pipestatus, cwd) of each command event, in seq order."""
        return [(e["payload"]["command"], e["payload"].get("exit_status"),
                 e["payload"].get("pipestatus"), e["cwd"])
                for e in shell_events(self.d, shell) if e["kind"] == "command"]

    def wait_last(self, shell, command):
        return wait_events(self.d, shell, lambda evs: any(e["payload"].get("command") == command
                                                          for e in evs), repr(command))

    def check_relay_rows(self, shell):
        # A copy of ferry, removed once the shell has started: the prompts run no ferry at all
        # (the relay, already running, sends every event), yet every command is recorded.
        bindir = os.path.join(self.d.root, "bin")
        os.makedirs(bindir, exist_ok=True)
        ferry = os.path.join(bindir, "ferry")
        shutil.copy2(fh.FERRY, ferry)
        s, work = self.start_shell(shell, ferry=ferry)
        relay = self.relay_of(s)
        os.unlink(ferry)
        cmds = ["true", "false", "true | false", "cd sub", "echo relay-done"]
        for c in cmds:
            s.run(c)
        self.wait_last(shell, "echo relay-done")
        s.run("echo final-sentinel")
        self.wait_last(shell, "echo final-sentinel")
        sub = os.path.join(work, "sub")
        # One relay sends in typing order: seq order is the order of the commands.
        self.assertEqual(self.rows(shell), [
            ("true", 0, [0], work), ("false", 1, [1], work), ("true | false", 1, [0, 1], work),
            ("cd sub", 0, [0], work), ("echo relay-done", 0, [0], sub),
            ("echo final-sentinel", 0, [0], sub)])
        evs = shell_events(self.d, shell)
        self.assertEqual({(e["source"], e["session"], e["pid"], e["payload"]["pid"]) for e in evs},
                         {(shell, evs[0]["session"], s.pid, s.pid)})
        self.assertEqual(relay_pids(s.pid), [relay], "the same relay throughout")

    def test_relay_records_exact_rows_bash(self):
        self.check_relay_rows("bash")

    def test_relay_records_exact_rows_zsh(self):
        self.check_relay_rows("zsh")

    def test_relay_records_exact_rows_fish(self):
        self.check_relay_rows("fish")

    def check_relay_killed(self, shell):
        s, _ = self.start_shell(shell)
        s.run("echo one")
        self.wait_last(shell, "echo one")
        old = self.relay_of(s)
        os.kill(old, signal.SIGKILL)
        wait_gone(old, "the killed relay")
        # The next prompt sees the relay gone and starts another on the same FIFO; no error
        # reaches the terminal.
        out = s.run("echo two")
        self.assertNotIn("ferry", out.replace("echo two", ""))
        s.run("echo three")
        self.wait_last(shell, "echo three")
        s.run("echo final-sentinel")
        self.wait_last(shell, "echo final-sentinel")
        self.assertEqual([r[0] for r in self.rows(shell)],
                         ["echo one", "echo two", "echo three", "echo final-sentinel"])
        new = self.relay_of(s)
        self.assertNotEqual(new, old)
        self.assertEqual(len(relay_fifos(self.d)), 1, relay_fifos(self.d))
        # No zombie left behind: the shell has reaped every child it started.
        with open("/proc/%d/task/%d/children" % (s.pid, s.pid)) as f:
            children = f.read().split()
        states = []
        for c in children:
            try:
                with open("/proc/%s/stat" % c) as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except OSError:
                pass
        self.assertNotIn("Z", states)

    def check_relay_cannot_start(self, shell):
        # The relay is gone and another cannot start (its FIFO became a regular file): each
        # command goes through a one-shot `ferry relay --stdin`, recorded once, silently.
        s, _ = self.start_shell(shell)
        s.run("echo one")
        self.wait_last(shell, "echo one")
        old = self.relay_of(s)
        [name] = relay_fifos(self.d)
        path = os.path.join(os.path.dirname(self.d.socket), name)
        os.kill(old, signal.SIGKILL)
        wait_gone(old, "the killed relay")
        os.unlink(path)
        with open(path, "w"):
            pass
        out = s.run("echo two")
        self.assertNotIn("ferry", out.replace("echo two", ""))
        self.assertNotIn("FIFO", out)
        s.run("echo three")
        self.wait_last(shell, "echo three")
        s.run("echo final-sentinel")
        self.wait_last(shell, "echo final-sentinel")
        self.assertEqual(sorted(r[0] for r in self.rows(shell)),
                         ["echo final-sentinel", "echo one", "echo three", "echo two"])
        self.assertEqual(relay_pids(s.pid), [])
        with open(path) as f:
            self.assertEqual(f.read(), "", "nothing was written to the impostor")

    def test_relay_cannot_start_bash(self):
        self.check_relay_cannot_start("bash")

    def test_relay_cannot_start_zsh(self):
        self.check_relay_cannot_start("zsh")

    def test_relay_cannot_start_fish(self):
        self.check_relay_cannot_start("fish")

    def test_relay_killed_mid_session_bash(self):
        self.check_relay_killed("bash")

    def test_relay_killed_mid_session_zsh(self):
        self.check_relay_killed("zsh")

    def test_relay_killed_mid_session_fish(self):
        self.check_relay_killed("fish")

    def check_relay_spools(self, shell):
        s, _ = self.start_shell(shell)
        s.run("echo before")
        self.wait_last(shell, "echo before")
        self.assertEqual(self.d.stop(), 0)
        s.run("echo while-down-1")
        s.run("echo while-down-2")
        spool = os.path.join(self.d.state_dir, "spool")
        deadline = time.monotonic() + fh.HANG_GUARD_S
        while True:
            files = sorted(os.listdir(spool)) if os.path.isdir(spool) else []
            if len(files) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.assertEqual(len(files), 2, files)
        self.d.start()
        s.run("echo after")
        self.wait_last(shell, "echo after")
        wait_events(self.d, shell, lambda evs: len(evs) >= 4, "the spooled events")
        s.run("echo final-sentinel")
        self.wait_last(shell, "echo final-sentinel")
        self.assertEqual(sorted(r[0] for r in self.rows(shell)),
                         ["echo after", "echo before", "echo final-sentinel",
                          "echo while-down-1", "echo while-down-2"])

    def test_relay_spools_while_ferryd_is_down_bash(self):
        self.check_relay_spools("bash")

    def test_relay_spools_while_ferryd_is_down_zsh(self):
        self.check_relay_spools("zsh")

    def test_relay_spools_while_ferryd_is_down_fish(self):
        self.check_relay_spools("fish")

    def test_relay_ends_with_the_shell(self):
        # `exit`: the shell's own session_end, then the relay is gone and its FIFO removed,
        # although a background job still holds the shell's end of the FIFO.
        for shell in SHELLS:
            if not shutil.which(shell):
                continue
            s, _ = self.start_shell(shell)
            relay = self.relay_of(s)
            # Disowned (and under nohup): the shell's exit does not take it along.
            s.run("nohup sleep 300 >/dev/null 2>&1 " + ("&!" if shell == "zsh" else "& disown"))
            job = int(re.findall(r"job=(\d+)", s.run("echo job=$last_pid" if shell == "fish"
                                                    else "echo job=$!"))[-1])
            deadline = time.monotonic() + fh.HANG_GUARD_S
            while open("/proc/%d/comm" % job).read() != "sleep\n":  # nohup has run
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)
            fifo = os.path.realpath(os.path.join(os.path.dirname(self.d.socket),
                                                 relay_fifos(self.d)[0]))
            held = {os.path.realpath("/proc/%d/fd/%s" % (job, fd))
                    for fd in os.listdir("/proc/%d/fd" % job)}
            # bash cannot mark the fd close-on-exec: its jobs inherit it (zsh's sysopen can).
            self.assertEqual(fifo in held, shell == "bash", shell)
            try:
                s.close()
                self.shells.remove(s)
                wait_events(self.d, shell, lambda evs: any(e["kind"] == "session_end"
                                                         for e in evs), "session_end")
                wait_gone(relay, "%s's relay after exit" % shell)
                ends = [e["payload"] for e in shell_events(self.d, shell)
                        if e["kind"] == "session_end"]
                self.assertEqual(len(ends), 1, ends)
                self.assertNotIn("ended_by", ends[0])
                self.assertEqual(relay_fifos(self.d), [], shell)
                self.assertTrue(os.path.exists("/proc/%d" % job), "the job outlived the shell")
            finally:
                try:
                    os.kill(job, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def test_relay_ends_a_killed_shells_session(self):
        # A shell killed outright runs no exit hook: its relay sends the session_end.
        for shell in SHELLS:
            if not shutil.which(shell):
                continue
            s, _ = self.start_shell(shell)
            relay = self.relay_of(s)
            s.run("echo last")
            self.wait_last(shell, "echo last")
            os.kill(s.pid, signal.SIGKILL)
            os.waitpid(s.pid, 0)
            os.close(s.fd)
            self.shells.remove(s)
            evs = wait_events(self.d, shell, lambda evs: any(e["kind"] == "session_end"
                                                           for e in evs), "session_end")
            end = [e for e in evs if e["kind"] == "session_end"]
            self.assertEqual([(e["session"], e["pid"], e["payload"]) for e in end],
                             [(evs[0]["session"], s.pid,
                               {"shell": shell, "session": evs[0]["session"], "pid": s.pid,
                                "ended_by": "relay"})])
            wait_gone(relay, "%s's relay" % shell)
            self.assertEqual(relay_fifos(self.d), [], shell)

    def test_zsh_subshell_exit_is_not_the_sessions_end(self):
        s, _ = self.start_shell("zsh")
        s.run("(exit 3)")
        s.run("echo still-here")
        self.wait_last("zsh", "echo still-here")
        s.run("echo final-sentinel")
        self.wait_last("zsh", "echo final-sentinel")
        self.assertEqual([e["kind"] for e in shell_events(self.d, "zsh")], ["command"] * 3)
        self.assertEqual(len(relay_pids(s.pid)), 1)

    def test_init_usage(self):
        r = fh.run_ferry(["init", "tcsh"], self.d.env())
        self.assertEqual(r.returncode, 2)
        self.assertIn("bash, zsh or fish", r.stderr)
        r = fh.run_ferry(["init", "--help"], self.d.env())
        self.assertEqual(r.returncode, 0)
        self.assertIn("FERRY_IGNORE", r.stdout)
        self.assertIn("before it stores an event ([redact] local = true, the default; see\n"
                      "docs/security.md). With `local = false` under [redact] in ferry's config.toml, commands\n"
                      "are stored as typed.\n", r.stdout)
        self.assertIn('recorded with "background": true and no exit status', r.stdout)


if __name__ == "__main__":
    unittest.main()
