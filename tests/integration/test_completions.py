"""`ferry completions bash|zsh|fish`: each script loads in its shell (when that shell is
installed here) and offers every command `ferry --help` lists and every option each
command's --help defines, plus the fixed values (actions, tools, formats). Also the rest of
the command-line surface: `ferryd --help` in ferry's style, and `--version` on every command.
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import ferry_harness as h
from test_install import help_commands, help_options


def ferry_out(*args):
    r = h.run_ferry(list(args), h.clean_env())
    if r.returncode != 0:
        raise AssertionError("ferry %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
    return r.stdout


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=h.HANG_GUARD_S, **kw)


class CompletionTest:
    """The checks every shell's script passes (mixed into one TestCase per shell)."""
    SHELL = None
    FILE = None

    def setUp(self):
        if not shutil.which(self.SHELL):
            self.skipTest("%s is not installed" % self.SHELL)
        self.root = h.make_tempdir()
        self.addCleanup(shutil.rmtree, self.root, True)
        self.env = h.clean_env(HOME=self.root)
        self.script = os.path.join(self.root, self.FILE)
        with open(self.script, "w") as f:
            f.write(ferry_out("completions", self.SHELL))

    def offered(self, *words):
        """What the completion offers for a command line ending in words[-1]."""
        raise NotImplementedError

    def test_syntax(self):
        r = run([self.SHELL, "-n", self.script], env=self.env)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))

    def test_every_command_and_option(self):
        commands = help_commands()
        self.assertIn("completions", commands)
        self.assertGreaterEqual(set(self.offered("ferry", "")), set(commands))
        for cmd in commands:
            with self.subTest(command=cmd):
                options = help_options(ferry_out(cmd, "--help"))
                self.assertTrue(options or cmd in ("init", "completions"), cmd)
                offered = set(self.offered("ferry", cmd, "-"))
                self.assertEqual(sorted(options - offered), [], "not offered")

    def test_values(self):
        for words, expected in (
                (("ferry", "hooks", ""), ["install", "uninstall"]),
                (("ferry", "hooks", "install", ""), ["claude-code", "cline", "codex", "copilot",
                                                     "cursor", "gemini", "opencode",
                                                     "windsurf"]),
                (("ferry", "hooks", "--scope", ""), ["project", "user"]),
                (("ferry", "service", ""), ["install", "uninstall"]),
                (("ferry", "deadletter", ""), ["list", "purge", "replay"]),
                (("ferry", "init", ""), ["bash", "fish", "zsh"]),
                (("ferry", "completions", ""), ["bash", "fish", "zsh"]),
                (("ferry", "tail", "--output", ""), ["cat", "json", "short"]),
                (("ferry", "tail", "--color", ""), ["always", "auto", "never"])):
            with self.subTest(words=words):
                self.assertEqual(sorted(self.offered(*words)), expected)


class BashTest(CompletionTest, unittest.TestCase):
    SHELL = "bash"
    FILE = "ferry.bash"

    def offered(self, *words):
        r = run(["bash", "--norc", "--noprofile", "-c",
                 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _ferry; '
                 'printf "%s\\n" "${COMPREPLY[@]}"', "bash", self.script] + list(words),
                env=self.env)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        return [w for w in r.stdout.split("\n") if w]

    def test_loads_and_registers(self):
        r = run(["bash", "--norc", "--noprofile", "-c", 'source "$1"; complete -p ferry', "bash",
                 self.script], env=self.env)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "complete -F _ferry ferry\n", ""))
        # The way the help text says to load it without bash-completion.
        r = run(["bash", "--norc", "--noprofile", "-c",
                 'eval "$("$1" completions bash)"; complete -p ferry', "bash", h.FERRY],
                env=self.env)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "complete -F _ferry ferry\n", ""))


class ZshTest(CompletionTest, unittest.TestCase):
    SHELL = "zsh"
    FILE = "_ferry"

    def zsh(self, script):
        r = run(["zsh", "-f", "-c", "autoload -U compinit; compinit -u -d %s/.zcompdump; %s"
                 % (self.root, script)], env=self.env)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        return r.stdout

    def test_loads_and_registers(self):
        # From $fpath, as installed (share/zsh/site-functions)...
        self.assertEqual(self.zsh("fpath=(%s $fpath); compinit -u -d %s/.zcompdump2; "
                                  "print -r -- $_comps[ferry]" % (self.root, self.root)),
                         "_ferry\n")
        # ... and eval'd after compinit, as `ferry completions --help` says.
        self.assertEqual(self.zsh('eval "$(%s completions zsh)"; print -r -- $_comps[ferry]'
                                  % h.FERRY), "_ferry\n")

    def test_completes_at_an_interactive_prompt(self):
        """A real interactive zsh (zpty) with the script on $fpath, as installed: TAB after
        `ferry hooks install ` lists the tools. zpty -r waits for the list itself; the
        subprocess timeout is only the guard."""
        script = (
            "zmodload zsh/zpty\n"
            "zpty z zsh -f -i\n"
            "zpty -w z \"PS1='P>'; fpath=($1 \\$fpath); autoload -U compinit; "
            "compinit -u -d $1/.zcompdump3; zstyle ':completion:*' list-prompt ''\"\n"
            "zpty -w -n z 'ferry hooks install '$'\\t'\n"
            "zpty -r z out '*windsurf*'\n"
            "print -r -- \"${out##*ferry hooks install}\"\n"
            "zpty -d z\n")
        r = run(["zsh", "-f", "-c", script, "zsh", self.root], env=self.env)
        self.assertEqual(r.returncode, 0, r.stderr)
        listed = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", r.stdout).split()
        # zsh lays the list out in columns (row by row on screen): compare as a sorted list.
        self.assertEqual(sorted(listed[-8:]), ["claude-code", "cline", "codex", "copilot", "cursor",
                                      "gemini", "opencode", "windsurf"], r.stdout)

    def offered(self, *words):
        """zsh completes only at an interactive prompt (one check above does that); for every
        command and option read the script instead: the command list, or the case arm of the command (with the options every command shares)."""
        with open(self.script) as f:
            text = f.read()
        if len(words) == 2:
            block = text.split("commands=(", 1)[1].split(")\n", 1)[0]
            return re.findall(r"'([\w-]+):", block)
        arms = dict((name.strip(), body) for names, body in
                    re.findall(r"^    ([\w |-]+)\)\n(.*?);;", text, re.M | re.S)
                    for name in names.split("|"))
        body = arms[words[1]]
        if "$global" in body:
            body += text.split("global=(", 1)[1].split("\n  )", 1)[0]
        if words[-1] == "-":
            # '--kind=[...]', '(-f --follow)'{-f,--follow}'[...]', '(- *)--help[...]'
            return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)(?=[=+\[,}])", body))
        previous = words[-2]
        if previous.startswith("-"):
            m = re.search(r"%s[=+]?[\]}'\[][^:\n]*:[\w ]+:\(([^)]*)\)" % re.escape(previous), body)
            return m.group(1).split() if m else []
        position = len([w for w in words[2:-1] if not w.startswith("-")]) + 1
        m = re.search(r"'%d:[\w ]+:\(([^)]*)\)'" % position, body)
        return m.group(1).split() if m else []


class FishTest(CompletionTest, unittest.TestCase):
    SHELL = "fish"
    FILE = "ferry.fish"

    def offered(self, *words):
        line = " ".join(words)
        r = run(["fish", "--no-config", "-c", 'source $argv[1]; complete -C $argv[2]',
                 self.script, line], env=self.env)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        return [entry.split("\t")[0] for entry in r.stdout.splitlines()]

    def test_syntax(self):
        r = run(["fish", "--no-execute", self.script], env=self.env)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))


class CommandLineTest(unittest.TestCase):
    def test_ferryd_help_is_in_ferrys_style_and_names_no_path(self):
        r = run([h.FERRYD, "--help"])
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertTrue(r.stdout.startswith("ferryd: the ferry daemon."), r.stdout)
        self.assertIn("\nusage: ferryd [options]\n\noptions:\n", r.stdout)
        self.assertNotIn("/", r.stdout.split("options:")[0].split("usage:")[1])
        self.assertNotIn(os.path.dirname(os.path.realpath(h.FERRYD)), r.stdout)
        self.assertNotIn("Usage:", r.stdout)  # CLI11's own text is gone
        for option in ("--config PATH", "--socket PATH", "--state-dir DIR", "--log-level LEVEL",
                       "--check-config", "--help, -h", "--version"):
            self.assertRegex(r.stdout, r"\n  %s  " % re.escape(option))
        self.assertEqual(run([h.FERRYD, "-h"]).stdout, r.stdout)

    def test_ferryd_usage_error(self):
        r = run([h.FERRYD, "--frobnicate"])
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (2, "", "ferryd: The following argument was not expected: --frobnicate "
                                 "(ferryd --help lists the options)\n"))

    def test_version_on_every_command(self):
        version = ferry_out("--version")
        self.assertRegex(version, r"^ferry \d+\.\d+\.\d+\n$")
        # emit logs its problem to <state>/client-errors.log: a private state dir, never the
        # user's.
        state = tempfile.mkdtemp(prefix="ferry-completions-")
        self.addCleanup(shutil.rmtree, state, True)
        for cmd in help_commands():
            with self.subTest(command=cmd):
                r = h.run_ferry([cmd, "--version"], h.clean_env(FERRY_STATE_DIR=state))
                # emit is the hook path: it prints nothing, whatever its arguments (a --data
                # value may well be "--version"); every other command prints the version.
                want = "" if cmd == "emit" else version
                self.assertEqual((r.returncode, r.stdout, r.stderr), (0, want, ""))
        r = run([h.FERRYD, "--version"])
        self.assertEqual((r.returncode, r.stdout, r.stderr),
                         (0, version.replace("ferry ", "ferryd "), ""))

    def test_completions_usage(self):
        for args, message in (
                ([], "completions: which shell? bash, zsh or fish (ferry completions --help)"),
                (["tcsh"], 'completions: unknown shell "tcsh"; use bash, zsh or fish'),
                (["bash", "zsh"], 'completions: unexpected argument "zsh" '
                                  "(ferry completions --help)")):
            r = h.run_ferry(["completions"] + args, h.clean_env())
            self.assertEqual((r.returncode, r.stdout, r.stderr), (2, "", "ferry: %s\n" % message))
        r = h.run_ferry(["completions", "--help"], h.clean_env())
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertTrue(r.stdout.startswith("usage: ferry completions bash|zsh|fish\n"))


if __name__ == "__main__":
    unittest.main()
