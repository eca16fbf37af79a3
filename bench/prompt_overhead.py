#!/usr/bin/env python3
"""Prompt overhead of the `ferry init` snippets (not run by ctest).

Drives real interactive bash and zsh under a pty (tests/integration/shell_pty.py) and times
N prompts without the snippet and with it, in the same run, alternating rounds. Two kinds
of prompt: `:` (a command ran, so the snippet forks its detached emit) and an empty Enter
(no command; the snippet only checks that nothing started). A third variant stubs out the
background job, to separate the prompt's own cost (hook + fork) from the CPU the detached
`ferry emit` takes from everything else. Prints a Markdown table; note the machine's load.

usage: bench/prompt_overhead.py [--prompts 1000] [--rounds 3] [--shells bash,zsh]
       FERRY / FERRYD default to build/release/{client/ferry,daemon/ferryd}
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("FERRY", os.path.join(ROOT, "build/release/client/ferry"))
os.environ.setdefault("FERRYD", os.path.join(ROOT, "build/release/daemon/ferryd"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import ferry_harness as fh  # noqa: E402
import shell_pty  # noqa: E402


def time_prompts(d, shell, init_text, line, n):
    root = fh.make_tempdir()
    try:
        s = shell_pty.Shell(shell, root, d.env(), root, init_text)
        try:
            for _ in range(20):  # warm up
                s.run(line)
            t0 = time.perf_counter()
            for _ in range(n):
                s.run(line)
            return time.perf_counter() - t0
        finally:
            s.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shells", default="bash,zsh")
    args = ap.parse_args()
    print("ferry %s; %d prompts per run, %d rounds alternating without/with; median of rounds"
          % (subprocess.run([fh.FERRY, "--version"], capture_output=True, text=True).stdout.strip(),
             args.prompts, args.rounds))
    print()
    print("| shell | prompt | without snippet (ms / 1000 prompts) | with snippet | overhead per prompt "
          "| with snippet, emit stubbed out | overhead of that |")
    print("|---|---|---|---|---|---|---|")
    with fh.daemon() as d:
        for shell in args.shells.split(","):
            init = fh.run_ferry(["init", shell], d.env()).stdout
            for label, line in (("`:` (command)", ":"), ("empty Enter", "")):
                # "stubbed": the background job does nothing, so what remains is the prompt
                # hook plus the fork, without ferry emit competing for the CPU.
                stub = init + "\n__ferry_send() { :; }\n"
                without, with_, stubbed = [], [], []
                for _ in range(args.rounds):
                    without.append(time_prompts(d, shell, None, line, args.prompts))
                    with_.append(time_prompts(d, shell, init, line, args.prompts))
                    stubbed.append(time_prompts(d, shell, stub, line, args.prompts))
                a, b, c = (statistics.median(x) for x in (without, with_, stubbed))
                scale = 1000.0 / args.prompts
                print("| %s | %s | %.0f | %.0f | %+.3f ms | %.0f | %+.3f ms |"
                      % (shell, label, a * 1000 * scale, b * 1000 * scale,
                         (b - a) * 1000 / args.prompts, c * 1000 * scale,
                         (c - a) * 1000 / args.prompts))
                sys.stdout.flush()
        n = sum(1 for r in d.journal() if r.body.get("kind") == "command")
        print()
        print("events recorded during the runs: %d" % n)


if __name__ == "__main__":
    main()
