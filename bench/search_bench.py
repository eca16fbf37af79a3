#!/usr/bin/env python3
"""`ferry search` benchmark (docs/benchmarks.md "Run L"; not run by ctest).

1. Journal: EVENTS hook-shaped events with realistic text (a prompt, Bash and Read calls with
   their output, shell commands; about 1 KiB each on average) go into a ferryd whose store is
   off ([store] enabled = false), so the journal holds them and ferry.db does not exist.
2. Store cost, with and without the index, same run: ferryd is started on that journal with
   the store on, [store] search = false (B) or true (A), alternating B A B A (--rounds). It
   rebuilds ferry.db from the journal while nothing else happens, so ferryd's CPU from start
   until the store's cursor reaches the last seq, over EVENTS, is the store's CPU per event.
   ferry.db is deleted before each round.
3. Search latency: with the last A's ferry.db and ferryd running, each query of QUERIES runs
   REPEAT times through the real `ferry search --json --limit 20`; the median wall time per
   query is reported (it includes starting ferry and the socket round trip).

    cmake --build --preset release --target ferryd ferry
    python3 bench/search_bench.py [--events N] [--rounds N] [--repeat N] [--json]
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(ROOT, "build", "release")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, HERE)

# 64 MiB segments (the default) open quickly; the cap keeps every event of the run.
JOURNAL = "[journal]\nmax_bytes = \"8GiB\"\n"
QUERIES = ["docker compose", "journal", "segfault", '"permission denied"', "kubectl AND logs",
           "cmake OR ninja", "timeout*", "retry NOT backoff"]

WORDS = ("the build test journal store writer segment cursor socket daemon retry backoff "
         "timeout docker compose kubectl logs deploy cmake ninja make error warning failed "
         "passed permission denied segfault core dump fsync sqlite index query session hook "
         "emit spool replay upstream sink batch frame header length crc checksum offset "
         "module package import export function return value string number array object "
         "client server request response status header token config file path directory "
         "user group owner mode read write open close seek tell flush sync commit rollback").split()


def words(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def lines(rng, n):
    return "\n".join("%s:%d: %s" % (rng.choice(["src/a.cc", "lib/b.py", "docs/c.md"]),
                                    rng.randrange(1, 900), words(rng, rng.randrange(4, 14)))
                     for _ in range(n))


def payloads(rng, i, session):
    """The i-th event of a session: (kind, payload). 1 prompt, 4 tool calls, 1 shell in 10."""
    r = i % 10
    if r == 0:
        return "UserPromptSubmit", {"session_id": session, "hook_event_name": "UserPromptSubmit",
                                    "prompt": words(rng, rng.randrange(10, 60))}
    if r == 9:
        return "command", {"command": "%s %s" % (rng.choice(["git", "make", "ls", "rg"]),
                                                 words(rng, 3)), "exit_status": rng.choice([0, 1])}
    use = "toolu_%d" % i
    if r % 2 == 1:
        if rng.random() < 0.5:
            inp = {"command": "%s %s" % (rng.choice(["cmake --build", "docker compose up",
                                                     "kubectl logs", "ctest -R"]), words(rng, 2)),
                   "description": words(rng, 5)}
            name = "Bash"
        else:
            inp = {"file_path": "/home/u/src/%s.cc" % rng.choice(WORDS)}
            name = "Read"
        return "PreToolUse", {"session_id": session, "hook_event_name": "PreToolUse",
                              "tool_name": name, "tool_input": inp, "tool_use_id": use}
    out = lines(rng, rng.randrange(2, 40))
    return "PostToolUse", {"session_id": session, "hook_event_name": "PostToolUse",
                           "tool_name": "Bash", "tool_input": {"command": "make"},
                           "tool_response": {"stdout": out, "stderr": "", "interrupted": False},
                           "tool_use_id": use}


def make_frames(h, n, k, seed):
    rng = random.Random(seed)
    frames, batch = [], []
    ts = time.time_ns() - 86400 * 10**9
    for i in range(n):
        session = "s%d-%d" % (k, i // 200)
        kind, payload = payloads(rng, i, session)
        batch.append(json.dumps({"id": "%02x%030x" % (k, i), "ts": ts + i * 1000,
                                 "source": "claude-code", "kind": kind, "session": session,
                                 "cwd": "/home/u/src", "host": "bench", "pid": 1000 + k,
                                 "payload": payload}, separators=(",", ":")))
        if len(batch) == 100 or i == n - 1:
            frames.append(h.encode_frame(h.EVENT_BATCH, '{"v":1,"events":[' + ",".join(batch) + "]}"))
            batch = []
    return frames


def cpu_seconds(pid):
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rebuild(h, root, search, events):
    db = os.path.join(root, "state", "ferry.db")
    for s in ("", "-wal", "-shm"):
        if os.path.exists(db + s):
            os.unlink(db + s)
    d = h.Daemon(config=JOURNAL + "[store]\nsearch = %s\n" % ("true" if search else "false"),
                 root=root)
    d.spawn()
    deadline = time.monotonic() + 600  # opening ferry.db may take a while on a loaded machine
    while time.monotonic() < deadline:
        try:
            d.status()
            break
        except Exception:  # noqa: BLE001  (not answering yet)
            time.sleep(0.5)
    pid = d.proc.pid
    t0 = time.monotonic()
    while d.status()["store"]["cursor"] < events:
        time.sleep(0.2)
    cpu = cpu_seconds(pid)
    wall = time.monotonic() - t0
    size = os.path.getsize(db) + (os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else 0)
    return d, {"search": search, "cpu_us_per_event": round(cpu * 1e6 / events, 2),
               "wall_s": round(wall, 1), "db_mib": round(size / 2**20, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--producers", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2, help="A B pairs")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each query")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("FERRYD", os.path.join(BUILD, "daemon", "ferryd"))
    os.environ.setdefault("FERRY", os.path.join(BUILD, "client", "ferry"))
    import ferry_harness as h  # noqa: E402  (reads FERRYD at import)
    from store_bench import producer  # noqa: E402  (pipelined, 8 frames in flight)

    out = {"events": args.events}
    root = h.make_tempdir()
    per = args.events // args.producers
    frames = [make_frames(h, per, k, k) for k in range(args.producers)]
    out["journal_bytes_per_event"] = round(
        sum(len(f) for fs in frames for f in fs) / (per * args.producers))
    d = h.Daemon(config=JOURNAL + "[store]\nenabled = false\n", root=root)
    d.start()
    errors = []
    threads = [threading.Thread(target=producer, args=(d, f, errors)) for f in frames]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:1]
    d.stop()
    d.proc = None
    events = per * args.producers
    runs = []
    for _ in range(args.rounds):
        for search in (False, True):
            d, r = rebuild(h, root, search, events)
            runs.append(r)
            if search and _ == args.rounds - 1:
                break  # keep the last run (with the index) going for the latency part
            d.stop()
            d.proc = None
    out["runs"] = runs
    a = [r["cpu_us_per_event"] for r in runs if r["search"]]
    b = [r["cpu_us_per_event"] for r in runs if not r["search"]]
    out["ratio_median"] = round(statistics.median(a) / statistics.median(b), 2)
    for r in runs:
        print("  store rebuild, search=%-5s  %6.2f us CPU/event  %6.1f s  ferry.db %7.1f MiB"
              % (str(r["search"]).lower(), r["cpu_us_per_event"], r["wall_s"], r["db_mib"]),
              flush=True)
    lat = {}
    for q in QUERIES:
        times = []
        for _ in range(args.repeat):
            t0 = time.monotonic()
            p = subprocess.run([os.environ["FERRY"], "search", q, "--json", "--limit", "20"],
                               env=d.env(), capture_output=True)
            times.append(time.monotonic() - t0)
            hits = len(p.stdout.splitlines()) if p.returncode == 0 else p.stderr.decode().strip()
        lat[q] = {"median_ms": round(statistics.median(times) * 1000, 1), "hits": hits}
    out["search"] = lat
    d.close()
    shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(out))
        return
    print("%d events, %d journal bytes per event on average" % (events, out["journal_bytes_per_event"]))
    print("  index cost: median with / median without = %.2f" % out["ratio_median"])
    for q, v in lat.items():
        print("  ferry search %-22s median %6.1f ms over %d runs (%s hits shown)"
              % (q, v["median_ms"], args.repeat, v["hits"]))


if __name__ == "__main__":
    main()
