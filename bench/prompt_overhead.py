#!/usr/bin/env python3
"""Prompt overhead of the `ferry init` snippets (not run by ctest; docs/benchmarks-shell.md).

What it measures: the time from Enter to the next prompt, per prompt, of a real interactive
shell under a pty (tests/integration/shell_pty.py), with the snippet against a running ferryd
and without it. Both shells (and a third with the snippet's background job stubbed out, bash
and zsh) run side by side in the same run; each round types one line into each of them, in
a shuffled order, so a change of machine load hits every variant alike. Between two prompts
the driver waits --gap ms, as a person typing would, so the detached `ferry emit` of one
prompt is not measured as part of the next. Reported: the median per variant, the median
difference (added time per prompt) and the ratio to the same-run baseline, for a command
(`:`) and an empty Enter; then the median duration_ns the snippet recorded for `:` (the
shell's own measurement of a no-op command) and the load average before and after.

usage: bench/prompt_overhead.py [--prompts 500] [--gap-ms 25] [--shells bash,zsh,fish]
       FERRY / FERRYD default to build/release/{client/ferry,daemon/ferryd}
"""

import argparse
import os
import random
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


def prompt_latency(sh, line):
    """Seconds from typing `line` + Enter to the next prompt."""
    start = len(sh.out)
    t0 = time.perf_counter()
    os.write(sh.fd, line.encode() + b"\r")
    sh.wait_prompt(start, after_newline=True)
    return time.perf_counter() - t0


def shell_version(shell):
    arg = "--version"
    out = subprocess.run([shell, arg], capture_output=True, text=True).stdout
    first = out.splitlines()[0] if out else shell
    for word in first.replace(",", " ").split():
        if word[:1].isdigit():
            return "%s %s" % (shell, word.split("(")[0])
    return first


def measure(d, shell, prompts, gap):
    """{variant: {line: [seconds]}} for one shell's variants, run side by side."""
    init = fh.run_ferry(["init", shell], d.env()).stdout
    variants = {"without": None, "with": init}
    if shell != "fish":
        # The prompt hook and its fork, without the background job's work.
        variants["stubbed"] = init + "\n__ferry_send() { :; }\n"
    roots, shells = [], {}
    try:
        for name, text in variants.items():
            root = fh.make_tempdir()
            roots.append(root)
            shells[name] = shell_pty.Shell(shell, root, d.env(), root, text)
        lines = (":", "")
        for sh in shells.values():  # warm up
            for _ in range(20):
                for line in lines:
                    prompt_latency(sh, line)
        times = {name: {line: [] for line in lines} for name in shells}
        order = list(shells)
        for _ in range(prompts):
            for line in lines:
                random.shuffle(order)
                for name in order:
                    times[name][line].append(prompt_latency(shells[name], line))
                    time.sleep(gap)
        return times
    finally:
        for sh in shells.values():
            sh.close()
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=500, help="prompts per variant and line")
    ap.add_argument("--gap-ms", type=float, default=25.0, help="pause after each prompt")
    ap.add_argument("--shells", default="bash,zsh,fish")
    args = ap.parse_args()
    shells = [s for s in args.shells.split(",") if shutil.which(s)]
    load_before = os.getloadavg()
    print("%s; %d prompts per variant and line, %.0f ms between prompts; medians"
          % (subprocess.run([fh.FERRY, "--version"], capture_output=True, text=True).stdout.strip(),
             args.prompts, args.gap_ms))
    print()
    print("| shell | line | without snippet | with snippet | added | ratio "
          "| emit stubbed out | added by hook + fork |")
    print("|---|---|---|---|---|---|---|---|")
    med = statistics.median
    with fh.daemon() as d:
        for shell in shells:
            t = measure(d, shell, args.prompts, args.gap_ms / 1000.0)
            for line, label in ((":", "`:`"), ("", "empty Enter")):
                a, b = med(t["without"][line]), med(t["with"][line])
                stub = "n/a | n/a"
                if "stubbed" in t:
                    c = med(t["stubbed"][line])
                    stub = "%.3f ms | %+.3f ms" % (c * 1e3, (c - a) * 1e3)
                print("| %s | %s | %.3f ms | %.3f ms | %+.3f ms | %.2fx | %s |"
                      % (shell_version(shell), label, a * 1e3, b * 1e3, (b - a) * 1e3, b / a, stub))
                sys.stdout.flush()
        print()
        durs = {}
        for r in d.journal():
            p = r.body.get("payload") or {}
            if r.body.get("kind") == "command" and p.get("command") == ":":
                durs.setdefault(r.body["source"], []).append(p.get("duration_ns", 0))
        for shell in shells:
            if durs.get(shell):
                print("%s: median duration_ns recorded for `:` %.3f ms (%d events)"
                      % (shell, med(durs[shell]) / 1e6, len(durs[shell])))
    print("load average before: %.2f %.2f %.2f; after: %.2f %.2f %.2f"
          % (load_before + os.getloadavg()))


if __name__ == "__main__":
    main()
