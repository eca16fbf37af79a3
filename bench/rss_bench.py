#!/usr/bin/env python3
"""ferryd memory benchmark (docs/benchmarks.md; not run by ctest).

Starts the real ferryd (store on, fsync=interval unless --config says otherwise) on a private
socket and state dir, and reads VmRSS / VmHWM from /proc/PID/status:

1. idle after start (1 s after it answers STATUS);
2. idle after EVENTS events (EVENT_BATCH frames of 100 from PRODUCERS connections, 8 frames in
   flight each), once the store's cursor has reached the journal's last seq and IDLE seconds
   have passed;
3. per idle connection: opens CONNS connections that send nothing, waits until ferryd has
   accepted them all (ingest.connections in STATUS), reads VmRSS again and reports
   (after - before) / CONNS; then closes them.

   build/release/daemon/ferryd must be built:  cmake --build --preset release
   python3 bench/rss_bench.py [--events N] [--conns N] [--idle S] [--ferryd PATH] [--json]
"""

import argparse
import json
import os
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
BUILD = os.path.join(ROOT, "build", "release")
sys.path.insert(0, HERE)

from store_bench import producer  # noqa: E402  (pipelined, 8 frames in flight)


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[k] = int(v.split()[0])
    return out


def cpu_seconds(pid):
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def make_frames(h, n, k):
    """EVENT_BATCH frames of 100 events shaped like hook events (about 250 bytes each)."""
    frames = []
    ts = time.time_ns()
    prefix = os.urandom(8).hex()
    for start in range(0, n, 100):
        evs = []
        for i in range(start, min(n, start + 100)):
            evs.append('{"id":"%s%02x%014x","ts":%d,"source":"claude-code","kind":"%s",'
                       '"session":"s%d-%d","cwd":"/home/u/src","host":"bench","pid":%d,'
                       '"payload":{"tool_name":"Bash","tool_input":{"command":"ls -la"},'
                       '"i":%d}}' % (prefix, k, i, ts + i,
                                      "PreToolUse" if i % 2 else "PostToolUse", k, i % 50,
                                      1000 + i % 7, i))
        body = '{"v":1,"events":[' + ",".join(evs) + "]}"
        frames.append(h.encode_frame(h.EVENT_BATCH, body))
    return frames


def wait_store(d, timeout=600):
    deadline = time.monotonic() + timeout
    while True:
        st = d.status()
        if st["store"]["cursor"] >= st["journal"]["last_seq"]:
            return st
        if time.monotonic() > deadline:
            raise AssertionError("store did not catch up")
        time.sleep(0.1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1000000)
    ap.add_argument("--producers", type=int, default=4)
    ap.add_argument("--conns", type=int, default=500)
    ap.add_argument("--idle", type=float, default=3.0, help="seconds idle before reading RSS")
    ap.add_argument("--ferryd", default=os.path.join(BUILD, "daemon", "ferryd"))
    ap.add_argument("--config", default="[journal]\nfsync = \"interval\"\n[ingest]\nmax_connections = 4000\n")
    ap.add_argument("--env", action="append", default=[],
                    help="K=V for ferryd's environment (e.g. MALLOC_ARENA_MAX=2); repeatable")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ["FERRYD"] = os.path.abspath(args.ferryd)
    os.environ.setdefault("FERRY", os.path.join(BUILD, "client", "ferry"))
    import ferry_harness as h  # noqa: E402  (reads FERRYD at import)
    # store_bench imported the harness already (before FERRYD was set above): without this,
    # --ferryd was ignored and every run measured build/release's ferryd.
    h.FERRYD = os.environ["FERRYD"]

    out = {"ferryd": args.ferryd, "events": args.events, "conns": args.conns}
    per = args.events // args.producers
    frames = [make_frames(h, per, k) for k in range(args.producers)]
    env = dict(kv.split("=", 1) for kv in args.env)
    out["env"] = env
    with h.Daemon(config=args.config, env=env) as d:
        d.start()
        pid = d.proc.pid
        time.sleep(1.0)
        out["start"] = proc_status(pid)
        cpu0 = cpu_seconds(pid)
        errors = []
        t0 = time.monotonic()
        threads = [threading.Thread(target=producer, args=(d, f, errors)) for f in frames]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        t_ingest = time.monotonic() - t0
        cpu1 = cpu_seconds(pid)
        cursor1 = d.status()["store"]["cursor"]
        st = wait_store(d)
        cpu2 = cpu_seconds(pid)
        out["ingest_s"] = round(t_ingest, 3)
        out["store_done_s"] = round(time.monotonic() - t0, 3)
        out["ferryd_cpu_us_per_event"] = round(
            (cpu_seconds(pid) - cpu0) * 1e6 / (per * args.producers), 2)
        # The store alone: ferryd's CPU from the end of ingest until the store caught up,
        # over the events it applied meanwhile (the io thread is idle then).
        caught = st["store"]["cursor"] - cursor1
        out["store_catchup_events"] = caught
        out["store_cpu_us_per_event"] = round((cpu2 - cpu1) * 1e6 / caught, 2) if caught else None
        out["errors"] = len(errors)
        out["rows"] = st["store"]["rows"]
        time.sleep(args.idle)
        out["after_load"] = proc_status(pid)

        # Idle connections: connect, then wait until ferryd has accepted every one.
        before = proc_status(pid)["VmRSS"]
        socks = []
        for _ in range(args.conns):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.socket)
            socks.append(s)
        deadline = time.monotonic() + 30
        while True:
            ing = d.status().get("ingest", {})
            conns = ing.get("connections", ing.get("connections_open", None))
            if conns is None or conns >= args.conns or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        time.sleep(1.0)
        after = proc_status(pid)["VmRSS"]
        out["conns_rss_kib_before"] = before
        out["conns_rss_kib_after"] = after
        out["conns_accepted"] = conns
        out["kib_per_idle_conn"] = round((after - before) / args.conns, 2)
        for s in socks:
            s.close()
        time.sleep(args.idle)
        out["after_conns_closed"] = proc_status(pid)
        out["exit"] = d.stop()

    if args.json:
        print(json.dumps(out))
        return
    mib = lambda k: "%.1f" % (k / 1024.0)  # noqa: E731
    print("ferryd %s %s, %d events (EVENT_BATCH x100, %d producers), %d idle connections"
          % (args.ferryd, " ".join(args.env), args.events, args.producers, args.conns))
    print("  RSS idle after start        %s MiB" % mib(out["start"]["VmRSS"]))
    print("  ingest %.2f s, store caught up at %.2f s, ferryd CPU %.2f us/event, rows %d, "
          "errors %d" % (out["ingest_s"], out["store_done_s"], out["ferryd_cpu_us_per_event"],
                         out["rows"], out["errors"]))
    print("  store alone (catch-up after ingest): %s us CPU/event over %d events"
          % (out["store_cpu_us_per_event"], out["store_catchup_events"]))
    print("  RSS idle after load         %s MiB (anon %s, file %s; peak VmHWM %s)"
          % (mib(out["after_load"]["VmRSS"]), mib(out["after_load"]["RssAnon"]),
             mib(out["after_load"]["RssFile"]), mib(out["after_load"]["VmHWM"])))
    print("  RSS per idle connection     %.1f KiB (%d connections, %d -> %d KiB, accepted %s)"
          % (out["kib_per_idle_conn"], args.conns, before, after, conns))
    print("  RSS after closing them      %s MiB" % mib(out["after_conns_closed"]["VmRSS"]))
    print("  ferryd exit %s" % out["exit"])


if __name__ == "__main__":
    main()
