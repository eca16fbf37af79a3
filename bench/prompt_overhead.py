#!/usr/bin/env python3
"""Prompt overhead of the `ferry init` snippets (not run by ctest; docs/benchmarks-shell.md,
docs/benchmarks.md "Run L-prompt").

What it measures: the time from Enter to the next prompt, per prompt, of a real interactive
shell under a pty (tests/integration/shell_pty.py), with the snippet against a running ferryd
and without it. With --before-ferry, a third shell runs the snippet of that (older) ferry
binary, e.g. one built from main before `ferry relay` (one forked `ferry emit` per prompt),
so before and after are measured in the same run. The shells run side by side; each round
types one line into each of them, in a shuffled order, so a change of machine load hits
every variant alike. Between two prompts the driver waits until the event has reached the
journal (sent by the detached emit, or by the relay) and then --gap ms, as a person typing
would, so one prompt's sending is not measured as part of the next. Empty Enters are timed
in a block before the `:` block. Reported: the median per variant, the median difference
(added time per prompt) and the ratio to the same-run baseline, for a command (`:`) and an
empty Enter; then the median duration_ns each snippet recorded for `:` (the shell's own
measurement of a no-op command) and the load average before and after.

usage: bench/prompt_overhead.py [--prompts 500] [--gap-ms 25] [--shells bash,zsh,fish]
                                [--before-ferry PATH]
       FERRY / FERRYD default to build/release/{client/ferry,daemon/ferryd}
"""

import argparse
import os
import random
import re
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


def journal_size(d):
    segs = fh.segment_paths(d.state_dir)
    return os.path.getsize(segs[-1][1]) if segs else 0


def fork_cost(sh, shell):
    """Mean seconds of `: &` (one fork, not waited for) in this shell, now."""
    loop = {"bash": "for ((i = 0; i < 200; i++)); do : & done",
            "zsh": "repeat 200 { : &! }"}[shell]
    # bash: $EPOCHREALTIME has 6 decimals (integer arithmetic); zsh: 9 (float arithmetic).
    us = ("(${e/./} - ${t/./}) / 200" if shell == "bash" else "(e - t) * 1e6 / 200")
    out = sh.run("t=$EPOCHREALTIME; %s; e=$EPOCHREALTIME; wait; echo fork-us=$(( %s ))"
                 % (loop, us))
    found = [int(x) for x in re.findall(r"fork-us=(\d+)", out)]
    return found[-1] / 1e6 if found else float("nan")


def measure(d, shell, prompts, gap, before_ferry):
    """({variant: {line: [seconds]}}, fork seconds, {variant: shell pid}) for one shell."""
    variants = {"without": None, "with": fh.run_ferry(["init", shell], d.env()).stdout}
    if before_ferry:
        variants["before"] = subprocess.run([before_ferry, "init", shell], env=d.env(),
                                            capture_output=True, text=True, check=True).stdout
    roots, shells = [], {}
    try:
        for name, text in variants.items():
            root = fh.make_tempdir()
            roots.append(root)
            shells[name] = shell_pty.Shell(shell, root, d.env(), root, text)
            if shell == "zsh":
                shells[name].run("zmodload zsh/datetime")
        lines = ("", ":")
        for sh in shells.values():  # warm up
            for _ in range(20):
                for line in lines:
                    prompt_latency(sh, line)
        times = {name: {line: [] for line in lines} for name in shells}
        order = list(shells)
        # One block per line, so no sending of a `:` prompt lingers into an empty Enter's.
        for line in lines:
            for _ in range(prompts):
                random.shuffle(order)
                for name in order:
                    size = journal_size(d)
                    times[name][line].append(prompt_latency(shells[name], line))
                    if name != "without" and line:
                        # Let the event reach the journal: sending it is not part of the
                        # next prompt.
                        deadline = time.monotonic() + 2.0
                        while journal_size(d) == size and time.monotonic() < deadline:
                            time.sleep(0.001)
                    time.sleep(gap)
        fork = fork_cost(shells["without"], shell) if shell != "fish" else None
        return times, fork, {name: sh.pid for name, sh in shells.items()}
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
    ap.add_argument("--before-ferry", help="a ferry binary whose snippet to measure as 'before'")
    args = ap.parse_args()
    shells = [s for s in args.shells.split(",") if shutil.which(s)]
    load_before = os.getloadavg()
    print("%s; %d prompts per variant and line, %.0f ms between prompts; medians"
          % (subprocess.run([fh.FERRY, "--version"], capture_output=True, text=True).stdout.strip(),
             args.prompts, args.gap_ms))
    print()
    print("| shell | line | without snippet | before | added | ratio | with snippet | added "
          "| ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    med = statistics.median
    forks, pids = {}, {}
    with fh.daemon() as d:
        for shell in shells:
            t, fork, pids[shell] = measure(d, shell, args.prompts, args.gap_ms / 1000.0,
                                           args.before_ferry)
            if fork is not None:
                forks[shell] = fork
            for line, label in ((":", "`:`"), ("", "empty Enter")):
                a, b = med(t["without"][line]), med(t["with"][line])
                before = "n/a | n/a | n/a"
                if "before" in t:
                    c = med(t["before"][line])
                    before = "%.3f ms | %+.3f ms | %.2fx" % (c * 1e3, (c - a) * 1e3, c / a)
                print("| %s | %s | %.3f ms | %s | %.3f ms | %+.3f ms | %.2fx |"
                      % (shell_version(shell), label, a * 1e3, before, b * 1e3, (b - a) * 1e3,
                         b / a))
                sys.stdout.flush()
        print()
        durs = {}
        for r in d.journal():
            p = r.body.get("payload") or {}
            if r.body.get("kind") == "command" and p.get("command") == ":":
                durs.setdefault(p.get("pid"), []).append(p.get("duration_ns", 0))
        for shell in shells:
            for name, pid in sorted(pids[shell].items()):
                if durs.get(pid):
                    print("%s %s: median duration_ns recorded for `:` %.3f ms (%d events)"
                          % (shell, name, med(durs[pid]) / 1e6, len(durs[pid])))
    for shell, fork in forks.items():
        print("%s: one `: &` (a fork the shell does not wait for) took %.3f ms on average"
              % (shell, fork * 1e3))
    print("load average before: %.2f %.2f %.2f; after: %.2f %.2f %.2f"
          % (load_before + os.getloadavg()))


if __name__ == "__main__":
    main()
