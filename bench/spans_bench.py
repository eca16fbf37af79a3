#!/usr/bin/env python3
"""tool_spans / ferry stats / ferry export cost (docs/queries.md "Tool spans"; not run by ctest).

Fills a fresh ferryd with EVENTS events shaped like a Claude Code day (sessions of 100 tool
calls: PreToolUse + PostToolUse with a tool_use_id and a 10..2000-byte Bash output, 1 in 20 a
PostToolUseFailure, a prompt every 10 calls) plus a zsh command every 4 calls, then times:
`ferry query "SELECT count(*) FROM tool_spans"`, `ferry stats --json` and `ferry export`,
each RUNS times (median).

   python3 bench/spans_bench.py [--events N] [--runs N]
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
BUILD = os.path.join(ROOT, "build", "release")
os.environ.setdefault("FERRYD", os.path.join(BUILD, "daemon", "ferryd"))
os.environ.setdefault("FERRY", os.path.join(BUILD, "client", "ferry"))

import ferry_harness as h  # noqa: E402


def events(n):
    rnd = random.Random(1)
    ts = time.time_ns() - 3600 * 10**9
    out = []
    while len(out) < n:
        session = "%032x" % rnd.getrandbits(128)
        cwd = "/home/u/p%d" % rnd.randrange(7)
        for i in range(100):
            tool = rnd.choice(["Bash", "Read", "Edit", "Grep", "Glob"])
            use_id = "toolu_%024x" % rnd.getrandbits(96)
            base = {"session_id": session, "cwd": cwd, "tool_name": tool,
                    "tool_input": {"command": "make -j%d test" % i, "description": "x" * 80},
                    "tool_use_id": use_id}
            if i % 10 == 0:
                ts += 10**6
                out.append(h.make_event("claude-code", "UserPromptSubmit", session=session,
                                        cwd=cwd, ts=ts, payload={"prompt": "go on %d" % i}))
            ts += 10**6
            out.append(h.make_event("claude-code", "PreToolUse", session=session, cwd=cwd,
                                    ts=ts, payload=dict(base, hook_event_name="PreToolUse")))
            ts += rnd.randint(1, 10**9)
            kind = "PostToolUseFailure" if rnd.random() < 0.05 else "PostToolUse"
            out.append(h.make_event("claude-code", kind, session=session, cwd=cwd, ts=ts,
                                    payload=dict(base, hook_event_name=kind, tool_response={
                                        "stdout": "y" * rnd.randint(10, 2000), "stderr": ""})))
            if i % 4 == 0:
                out.append(h.make_event("zsh", "command", session="z" + session, cwd=cwd, ts=ts,
                                        payload={"command": "ls", "exit_status": i % 3,
                                                 "duration_ns": 10**6}))
    return out[:n]


def timed(d, args, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run([h.FERRY] + args, env=d.env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=600)
        times.append(time.perf_counter() - t)
        if r.returncode != 0:
            raise SystemExit("%s: %s" % (args, r.stderr.decode()))
    return statistics.median(times), r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    evs = events(a.events)
    with h.daemon(config="[store]\nquery_timeout = \"120s\"\n") as d:
        with d.client() as c:
            for i in range(0, len(evs), 1000):
                c.send_batch(evs[i:i + 1000])
        d.wait_for(lambda s: s["store"]["rows"] >= len(evs), "the store")
        q, out = timed(d, ["query", "--timeout", "10m", "SELECT count(*) FROM tool_spans"],
                       a.runs)
        spans = int(out.split()[-1])
        s, _ = timed(d, ["stats", "--json", "--timeout", "10m"], a.runs)
        e, out = timed(d, ["export", "--timeout", "10m"], a.runs)
        print(json.dumps({"events": len(evs), "spans": spans, "count_tool_spans_s": round(q, 3),
                          "stats_s": round(s, 3), "export_s": round(e, 3),
                          "export_mib": round(len(out) / 2**20, 1)}))


if __name__ == "__main__":
    main()
