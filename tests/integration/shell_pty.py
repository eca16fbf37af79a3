"""Drives a real interactive bash, zsh or fish under a pseudo-terminal (stdlib only).

Used by test_shell_init.py and bench/prompt_overhead.py. The shell gets a fixed prompt
(PROMPT_MARK) and, optionally, the `ferry init <shell>` snippet; run() types one line and
waits for the next prompt. Waits poll with a hang guard; nothing sleeps for correctness.
"""

import os
import re
import shutil
import pty
import select
import signal
import time

PROMPT_MARK = "FP>> "
HANG_GUARD_S = 60.0


def _rc_text(shell, init_file, extra_rc):
    load = ""
    if init_file:
        load = ("source %s\n" % init_file) if shell == "fish" else ('eval "$(cat %s)"\n' % init_file)
    if shell == "bash":
        return ("PS1='%s'\nunset PROMPT_COMMAND\nHISTFILE=\n%s%s" % (PROMPT_MARK, extra_rc, load))
    if shell == "zsh":
        return ("PS1='%s'\nunsetopt prompt_sp\nHISTFILE=\n%s%s" % (PROMPT_MARK, extra_rc, load))
    return ("set -g fish_greeting ''\nfunction fish_prompt; printf '%%s' '%s'; end\n"
            "function fish_right_prompt; end\nfunction fish_title; end\n%s%s"
            % (PROMPT_MARK, extra_rc, load))


class Shell:
    """One interactive shell on a pty. cwd: where it starts; env: its environment."""

    def __init__(self, shell, root, env, cwd, init_text=None, extra_rc=""):
        self.shell = shell
        init_file = None
        if init_text is not None:
            init_file = os.path.join(root, "ferry-init." + shell)
            with open(init_file, "w") as f:
                f.write(init_text)
        rc = os.path.join(root, "rc." + shell)
        with open(rc, "w") as f:
            f.write(_rc_text(shell, init_file, extra_rc))
        env = dict(env, TERM="dumb", HOME=root)
        if shell == "bash":
            argv = ["bash", "--noprofile", "--rcfile", rc, "-i"]
        elif shell == "zsh":
            zdot = os.path.join(root, "zdot")
            os.makedirs(zdot, exist_ok=True)
            shutil.copyfile(rc, os.path.join(zdot, ".zshrc"))
            env["ZDOTDIR"] = zdot
            argv = ["zsh", "-i"]
        else:
            env["XDG_CONFIG_HOME"] = os.path.join(root, "fishcfg")
            env["XDG_DATA_HOME"] = os.path.join(root, "fishdata")
            argv = ["fish", "-i", "--no-config", "-C", "source " + rc]
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            try:
                os.chdir(cwd)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.out = b""
        self.wait_prompt()

    def _read(self, deadline):
        r, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            raise AssertionError("%s exited; output:\n%s" % (self.shell, self.text()[-3000:]))
        self.out += chunk
        return True

    def wait_prompt(self, start=0, after_newline=False):
        """Waits for a prompt printed after offset `start` of the output (and after a newline
        there, when a line was submitted: shells repaint the prompt in place while typing)."""
        deadline = time.monotonic() + HANG_GUARD_S
        pattern = re.compile((b"\n[^\n]*" if after_newline else b"") + re.escape(PROMPT_MARK.encode()))
        while not pattern.search(self.out, start):
            if time.monotonic() > deadline:
                raise AssertionError("%s: no prompt within %ss; output:\n%s"
                                     % (self.shell, HANG_GUARD_S, self.text()[-3000:]))
            self._read(deadline)

    def run(self, line):
        """Types `line` and Enter; returns what the terminal showed until the next prompt."""
        start = len(self.out)
        os.write(self.fd, line.encode() + b"\r")
        self.wait_prompt(start, after_newline=True)
        return self.out[start:].decode(errors="replace")

    def text(self):
        return self.out.decode(errors="replace")

    def close(self):
        # Twice: zsh and fish refuse the first exit while a background job still runs.
        try:
            os.write(self.fd, b"exit\rexit\r")
        except OSError:
            pass
        deadline = time.monotonic() + HANG_GUARD_S
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                break
            try:
                if not self._read(min(deadline, time.monotonic() + 0.05)):
                    continue
            except AssertionError:
                continue
        else:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)
