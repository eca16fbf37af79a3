"""`ferry hooks install|uninstall` for GitHub Copilot CLI, Windsurf, Cline and OpenCode, into a
temp HOME: exact files after install, re-install is a no-op, uninstall gives the bytes back,
the user's own hooks stay, --dry-run writes nothing; then each installed command, script and
plugin is run with a payload in the host's documented shape against a real ferryd, and with
no ferry at all. None of these hosts runs here: the files follow the shapes of their docs
(docs/hooks.md cites them).
"""

import json
import os
import shutil
import stat
import subprocess
import time
import unittest

import ferry_harness as fh

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = os.path.join(HERE, "..", "fixtures", "hooks-config")
PAYLOADS = os.path.join(HERE, "..", "fixtures", "hooks-hosts")

COPILOT_EVENTS = ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse",
                  "PostToolUseFailure", "PreCompact", "SubagentStop", "Stop", "ErrorOccurred",
                  "SessionEnd"]
WINDSURF_EVENTS = ["pre_user_prompt", "pre_run_command", "post_run_command", "post_write_code",
                   "pre_mcp_tool_use", "post_mcp_tool_use", "post_cascade_response"]
CLINE_EVENTS = ["TaskStart", "TaskResume", "TaskCancel", "TaskComplete", "UserPromptSubmit",
                "PreToolUse", "PostToolUse", "PreCompact"]
JSON_FILES = {"copilot": ".copilot/hooks/ferry.json", "windsurf": ".codeium/windsurf/hooks.json"}


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def write(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def command_for(bin_path, source, kind=None):
    k = " --kind " + kind if kind else ""
    return ("sh -c 'f=\"%s\"; [ -x \"$f\" ] || f=$(command -v ferry 2>/dev/null) || f=; "
            "[ -n \"$f\" ] && exec \"$f\" emit --source %s%s --stdin; cat >/dev/null; exit 0' "
            "ferry-hook" % (bin_path, source, k))


def cline_script(bin_path, event):
    return ("#!/bin/sh\n"
            "# ferry-hook: written by `ferry hooks install cline`; `ferry hooks uninstall cline` "
            "removes it.\n"
            "# Records Cline's %s event with ferry. Prints nothing and exits 0, so it never "
            "blocks Cline.\n"
            "f=\"%s\"; [ -x \"$f\" ] || f=$(command -v ferry 2>/dev/null) || f=; [ -n \"$f\" ] "
            "&& exec \"$f\" emit --source cline --kind %s --stdin; cat >/dev/null; exit 0\n"
            % (event, bin_path, event))


class HooksHostsTest(unittest.TestCase):
    def setUp(self):
        self.root = fh.make_tempdir()
        self.home = os.path.join(self.root, "home")
        os.makedirs(self.home)
        # ferry on PATH, so the installed path is known and stable: <root>/bin/ferry.
        self.bindir = os.path.join(self.root, "bin")
        os.makedirs(self.bindir)
        self.ferry = os.path.join(self.bindir, "ferry")
        os.symlink(os.path.abspath(fh.FERRY), self.ferry)

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def env(self, **extra):
        extra.setdefault("PATH", self.bindir + ":/usr/bin:/bin")
        return fh.clean_env(HOME=self.home, **extra)

    def hooks(self, *args, cwd=None, env=None):
        return subprocess.run([fh.FERRY, "hooks"] + list(args), env=env or self.env(),
                              capture_output=True, text=True, timeout=fh.HANG_GUARD_S, cwd=cwd)

    def ok(self, *args, **kw):
        r = self.hooks(*args, **kw)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        return r

    def tree(self):
        """{relative path: bytes} of every file under HOME."""
        out = {}
        for d, _, files in os.walk(self.home):
            for name in files:
                p = os.path.join(d, name)
                out[os.path.relpath(p, self.home)] = read(p)
        return out

    # --- JSON hosts: Copilot CLI, Windsurf ---------------------------------------------------

    def test_copilot_new_file_exact_content_and_round_trip(self):
        self.ok("install", "copilot")
        path = os.path.join(self.home, JSON_FILES["copilot"])
        cmd = command_for(self.ferry, "copilot")
        expected = {"version": 1, "hooks": {
            ev: [{"type": "command", "bash": cmd, "timeoutSec": 10}] for ev in COPILOT_EVENTS}}
        self.assertEqual(json.loads(read(path)), expected)
        self.assertEqual(list(json.loads(read(path))["hooks"]), COPILOT_EVENTS)
        before = self.tree()
        r = self.ok("install", "copilot")
        self.assertEqual(r.stdout, path + ": ferry's copilot hooks are already installed; "
                         "nothing changed\n")
        self.assertEqual(self.tree(), before)
        r = self.ok("uninstall", "copilot")
        self.assertFalse(os.path.exists(path), "the file ferry created goes again")
        self.assertIn("removed %s (ferry had created it)" % path, r.stdout)

    def check_merge_round_trip(self, tool, fixture, user_event, user_handler):
        path = os.path.join(self.home, JSON_FILES[tool])
        original = read(os.path.join(CONFIGS, fixture))
        write(path, original, 0o600)
        self.ok("install", tool)
        doc = json.loads(read(path))
        self.assertEqual(doc["hooks"][user_event][0], user_handler, "the user's hook stays first")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        backups = [n for n in os.listdir(os.path.dirname(path)) if ".ferry-bak-" in n]
        self.assertEqual(len(backups), 1)
        self.assertEqual(read(os.path.join(os.path.dirname(path), backups[0])), original)
        return path, original, doc

    def test_copilot_merge_keeps_users_hook_and_uninstall_restores_bytes(self):
        path, original, doc = self.check_merge_round_trip(
            "copilot", "copilot-hooks.json", "preToolUse",
            {"type": "command", "bash": "./scripts/security-check.sh", "timeoutSec": 15})
        self.assertEqual(read(path)[:18], b'{\n    "version": 1', "indent kept")
        self.assertEqual(list(doc["hooks"]), ["preToolUse"] + COPILOT_EVENTS)
        self.ok("uninstall", "copilot")
        self.assertEqual(read(path), original)

    def test_windsurf_merge_exact_entries_and_uninstall_restores_bytes(self):
        path, original, doc = self.check_merge_round_trip(
            "windsurf", "windsurf-hooks.json", "pre_run_command",
            {"command": "python3 /Users/dana/hooks/guard.py", "show_output": True})
        self.assertNotIn("version", doc)
        for ev in WINDSURF_EVENTS:
            ferry = [h for h in doc["hooks"][ev] if h["command"].endswith(" ferry-hook")]
            self.assertEqual(ferry, [{"command": command_for(self.ferry, "windsurf", ev),
                                      "show_output": False}], ev)
        self.assertEqual(len(doc["hooks"]["pre_run_command"]), 2)
        before = self.tree()
        self.ok("install", "windsurf")
        self.assertEqual(self.tree(), before, "re-install changes nothing")
        self.ok("uninstall", "windsurf")
        self.assertEqual(read(path), original)

    def test_project_scopes(self):
        proj = os.path.join(self.root, "proj")
        os.makedirs(proj)
        for tool, rel in (("copilot", ".github/hooks/ferry.json"),
                          ("windsurf", ".windsurf/hooks.json"),
                          ("cline", ".clinerules/hooks/PreToolUse"),
                          ("opencode", ".opencode/plugins/ferry.js")):
            self.ok("install", tool, "--scope", "project", cwd=proj)
            self.assertTrue(os.path.isfile(os.path.join(proj, rel)), rel)
            self.ok("uninstall", tool, "--scope", "project", cwd=proj)
            self.assertFalse(os.path.exists(os.path.join(proj, rel)), rel)
        self.assertEqual(self.tree(), {}, "nothing in HOME")

    # --- file hosts: Cline, OpenCode ---------------------------------------------------------

    def test_cline_scripts_exact_and_uninstall_removes_exactly_them(self):
        hooks = os.path.join(self.home, "Documents", "Cline", "Hooks")
        own = b"#!/bin/bash\necho '{\"cancel\": false}'\n"
        write(os.path.join(hooks, "PostToolUse"), own, 0o755)  # the user's own hook
        write(os.path.join(hooks, "notes.txt"), b"mine\n")
        r = self.hooks("install", "cline")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertIn(os.path.join(hooks, "PostToolUse") + ": a hook ferry did not write", r.stderr)
        self.assertEqual(sorted(os.listdir(hooks)), ["PostToolUse", "notes.txt"],
                         "refused before writing anything")
        os.unlink(os.path.join(hooks, "PostToolUse"))
        self.ok("install", "cline")
        self.assertEqual(sorted(os.listdir(hooks)), sorted(CLINE_EVENTS + ["notes.txt"]))
        for ev in CLINE_EVENTS:
            p = os.path.join(hooks, ev)
            self.assertEqual(read(p, "r"), cline_script(self.ferry, ev))
            self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o755)
        before = self.tree()
        r = self.ok("install", "cline")
        self.assertEqual(r.stdout, hooks + ": ferry's cline hooks are already installed; "
                         "nothing changed\n")
        self.assertEqual(self.tree(), before)
        # A user's hook for one event next to ferry's: uninstall leaves it.
        os.unlink(os.path.join(hooks, "TaskCancel"))
        write(os.path.join(hooks, "TaskCancel"), own, 0o755)
        self.ok("uninstall", "cline")
        self.assertEqual(sorted(os.listdir(hooks)), ["TaskCancel", "notes.txt"])
        self.assertEqual(read(os.path.join(hooks, "TaskCancel")), own)
        r = self.ok("uninstall", "cline")
        self.assertEqual(r.stdout, hooks + ": no ferry hooks in it; nothing changed\n")

    def test_reinstall_from_another_path_rewrites_ferrys_files(self):
        self.ok("install", "cline")
        self.ok("install", "opencode")
        other = os.path.join(self.root, "other")
        os.makedirs(other)
        os.symlink(os.path.abspath(fh.FERRY), os.path.join(other, "ferry"))
        env = self.env(PATH=other + ":/usr/bin:/bin")
        r = self.ok("install", "cline", env=env)
        hooks = os.path.join(self.home, "Documents", "Cline", "Hooks")
        self.assertIn('-f="%s"' % self.ferry, r.stdout)
        self.assertIn('+f="%s"' % os.path.join(other, "ferry"), r.stdout)
        for ev in CLINE_EVENTS:
            self.assertEqual(read(os.path.join(hooks, ev), "r"),
                             cline_script(os.path.join(other, "ferry"), ev))
        self.ok("install", "opencode", env=env)
        plugin = os.path.join(self.home, ".config", "opencode", "plugins", "ferry.js")
        self.assertIn('const FERRY = "%s";' % os.path.join(other, "ferry"), read(plugin, "r"))
        self.ok("uninstall", "cline", env=env)
        self.ok("uninstall", "opencode", env=env)
        self.assertEqual(self.tree(), {})

    def test_cline_follows_the_xdg_documents_dir(self):
        # What `xdg-user-dir DOCUMENTS` prints, which Cline uses on Linux.
        write(os.path.join(self.home, ".config", "user-dirs.dirs"),
              b'# written by xdg-user-dirs-update\nXDG_DESKTOP_DIR="$HOME/Schreibtisch"\n'
              b'XDG_DOCUMENTS_DIR="$HOME/Dokumente"\n')
        self.ok("install", "cline")
        hooks = os.path.join(self.home, "Dokumente", "Cline", "Hooks")
        self.assertEqual(sorted(os.listdir(hooks)), sorted(CLINE_EVENTS))
        self.assertFalse(os.path.exists(os.path.join(self.home, "Documents")))
        self.ok("uninstall", "cline")
        self.assertEqual(os.listdir(hooks), [])

    def test_opencode_plugin_follows_xdg_and_refuses_a_foreign_file(self):
        xdg = os.path.join(self.root, "xdg")
        env = self.env(XDG_CONFIG_HOME=xdg)
        plugin = os.path.join(xdg, "opencode", "plugins", "ferry.js")
        write(plugin, b"export const Mine = async () => ({});\n")
        r = self.hooks("install", "opencode", env=env)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(read(plugin), b"export const Mine = async () => ({});\n")
        r = self.hooks("uninstall", "opencode", env=env)
        self.assertEqual((r.returncode, r.stdout), (0, os.path.dirname(plugin) +
                                                    ": no ferry hooks in it; nothing changed\n"))
        self.assertTrue(os.path.exists(plugin), "not ferry's: never removed")
        os.unlink(plugin)
        self.ok("install", "opencode", env=env)
        text = read(plugin, "r")
        self.assertEqual(text.splitlines()[1], "// ferry-hook: written by `ferry hooks install "
                         "opencode`; `ferry hooks uninstall opencode` removes it.")
        self.assertIn('const FERRY = "%s";' % self.ferry, text)
        self.ok("uninstall", "opencode", env=env)
        self.assertEqual(os.listdir(os.path.dirname(plugin)), [])

    def test_dry_run_writes_nothing(self):
        path = os.path.join(self.home, JSON_FILES["windsurf"])
        write(path, read(os.path.join(CONFIGS, "windsurf-hooks.json")))
        before = self.tree()
        for tool in ("copilot", "windsurf", "cline", "opencode"):
            r = self.ok("install", tool, "--dry-run")
            self.assertTrue(r.stdout.endswith("(dry run: nothing written)\n"), r.stdout)
            self.assertIn("+++ b", r.stdout)
        self.assertEqual(self.tree(), before)
        for tool in ("copilot", "windsurf", "cline", "opencode"):
            self.ok("install", tool)
        after = self.tree()
        for tool in ("copilot", "windsurf", "cline", "opencode"):
            r = self.ok("uninstall", tool, "--dry-run")
            self.assertIn("--- a", r.stdout)
        self.assertEqual(self.tree(), after)

    # --- running what was installed ------------------------------------------------------------

    def run_hook(self, argv, payload, env):
        with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env) as p:
            try:
                p.stdin.write(payload)
                p.stdin.close()
                out, err = p.stdout.read(), p.stderr.read()
                return p.wait(timeout=fh.HANG_GUARD_S), out, err
            finally:
                if p.poll() is None:
                    p.kill()

    def installed(self):
        for tool in ("copilot", "windsurf", "cline"):
            self.ok("install", tool)
        copilot = json.loads(read(os.path.join(self.home, JSON_FILES["copilot"])))
        windsurf = json.loads(read(os.path.join(self.home, JSON_FILES["windsurf"])))
        return {
            "copilot": ["sh", "-c", copilot["hooks"]["PreToolUse"][0]["bash"]],
            "windsurf": ["sh", "-c", windsurf["hooks"]["pre_run_command"][0]["command"]],
            "cline": [os.path.join(self.home, "Documents", "Cline", "Hooks", "PreToolUse")],
        }

    FIXTURES = {"copilot": "copilot/PreToolUse.json", "windsurf": "windsurf/pre_run_command.json",
                "cline": "cline/PreToolUse.json"}

    def test_installed_hooks_deliver_events(self):
        argvs = self.installed()
        with fh.daemon() as d:
            env = d.env(PATH=self.bindir + ":/usr/bin:/bin")
            for tool, argv in argvs.items():
                code, out, err = self.run_hook(argv, read(os.path.join(PAYLOADS,
                                                                       self.FIXTURES[tool])), env)
                self.assertEqual((code, out, err), (0, b"", b""), tool)
            rows = {r.body["source"]: r.body for r in d.journal()}
        self.assertEqual(sorted(rows), ["cline", "copilot", "windsurf"])
        self.assertEqual((rows["copilot"]["kind"], rows["copilot"]["session"]),
                         ("PreToolUse", "6c1d9e52-8f7a-4b21-9d1e-3a0f5e7c2b10"))
        self.assertEqual(rows["copilot"]["cwd"], "/home/dana/src/ferry")
        self.assertEqual((rows["windsurf"]["kind"], rows["windsurf"]["session"]),
                         ("pre_run_command", "b0a5f3c2-6d1e-4c8b-9a77-2e41f0d8c913"))
        self.assertEqual((rows["cline"]["kind"], rows["cline"]["session"]),
                         ("PreToolUse", "1764847201337"))
        for tool in rows:
            self.assertEqual(rows[tool]["payload"],
                             json.loads(read(os.path.join(PAYLOADS, self.FIXTURES[tool]))))

    def test_installed_hooks_without_ferry_drain_stdin_and_exit_0(self):
        argvs = self.installed()
        os.unlink(self.ferry)
        env = self.env(PATH="/usr/bin:/bin")
        self.assertIsNone(shutil.which("ferry", path=env["PATH"]))
        big = json.dumps({"hookName": "PostToolUse", "blob": "x" * 300_000}).encode()
        for tool, argv in argvs.items():
            self.assertEqual(self.run_hook(argv, big, env), (0, b"", b""), tool)

    def test_installed_hooks_with_ferryd_down_exit_0(self):
        argvs = self.installed()
        env = self.env(FERRY_SOCKET=os.path.join(self.root, "nobody.sock"),
                       FERRY_STATE_DIR=os.path.join(self.root, "state"))
        for tool, argv in argvs.items():
            code, out, _ = self.run_hook(argv, read(os.path.join(PAYLOADS, self.FIXTURES[tool])),
                                         env)
            self.assertEqual((code, out), (0, b""), tool)

    @unittest.skipUnless(shutil.which("node"), "node is not installed")
    def test_opencode_plugin_delivers_events_and_never_throws(self):
        self.ok("install", "opencode")
        plugin = os.path.join(self.home, ".config", "opencode", "plugins", "ferry.js")
        mjs = os.path.join(self.root, "ferry.mjs")  # node needs .mjs for an ES module
        shutil.copy(plugin, mjs)
        driver = os.path.join(self.root, "drive.mjs")
        with open(driver, "w") as f:
            f.write("""
import { FerryPlugin } from %s;
const h = await FerryPlugin({ directory: "/home/dana/src/app" });
await h.event({ event: { type: "session.created", properties: { info: { id: "ses_1" } } } });
await h.event({ event: { type: "message.part.updated", properties: { sessionID: "ses_1" } } });
await h.event({ event: null });
await h["tool.execute.before"]({ tool: "bash", sessionID: "ses_1", callID: "c1" },
                               { args: { command: "ls" } });
await h["tool.execute.after"]({ tool: "bash", sessionID: "ses_1", callID: "c1" },
                              { title: "ls", output: "a\\nb\\n", metadata: { exit: 0 } });
await h["tool.execute.after"](undefined, undefined);
await h["chat.message"]({ sessionID: "ses_1" }, { message: { role: "user" }, parts: [] });
""" % json.dumps(mjs))
        with fh.daemon() as d:
            env = d.env(PATH=self.bindir + ":/usr/bin:/bin")
            r = subprocess.run(["node", driver], env=env, capture_output=True,
                               timeout=fh.HANG_GUARD_S)
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"", b""))
            # The plugin does not wait for ferry (its children outlive node): poll the journal.
            deadline = time.monotonic() + fh.HANG_GUARD_S
            while len(d.journal()) < 5 and time.monotonic() < deadline:
                time.sleep(0.02)
            rows = [r.body for r in d.journal()]
        got = sorted((e["source"], e["kind"], e.get("session") or "", e.get("cwd"))
                     for e in rows)
        app = "/home/dana/src/app"
        self.assertEqual(got, [
            ("opencode", "chat.message", "ses_1", app),
            ("opencode", "session.created", "ses_1", app),
            ("opencode", "tool.execute.after", "", app),
            ("opencode", "tool.execute.after", "ses_1", app),
            ("opencode", "tool.execute.before", "ses_1", app),
        ])
        before = next(e for e in rows if e["kind"] == "tool.execute.before")
        self.assertEqual(before["payload"], {
            "hook_event_name": "tool.execute.before", "session_id": "ses_1", "cwd": app,
            "tool": "bash", "call_id": "c1", "args": {"command": "ls"}})

    def test_opencode_plugin_syntax(self):
        if not shutil.which("node"):
            self.skipTest("node is not installed")
        self.ok("install", "opencode")
        plugin = os.path.join(self.home, ".config", "opencode", "plugins", "ferry.js")
        mjs = os.path.join(self.root, "check.mjs")
        shutil.copy(plugin, mjs)
        r = subprocess.run(["node", "--check", mjs], capture_output=True, timeout=fh.HANG_GUARD_S)
        self.assertEqual((r.returncode, r.stderr), (0, b""))


if __name__ == "__main__":
    unittest.main()
