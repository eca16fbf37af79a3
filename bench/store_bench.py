#!/usr/bin/env python3
"""Store benchmark (docs/benchmarks-store.md; not run by ctest).

1. Throughput: PRODUCERS connections stream EVENTS events (EVENT_BATCH frames of 100,
   encoded before the clock starts) into a fresh ferryd as fast as it acks them, while the
   store writer keeps ferry.db in step. Reports the ingest rate, the store's rows/s during
   ingest and overall (until its cursor reaches the last seq), and the largest lag seen.
2. Ceiling: bench/store_ceiling inserts the same rows from the same journal into a fresh db
   in transactions of the same size (store.batch_events).
3. Latency: LAT_N times, `ferry emit` one event, and from the moment it returns poll a
   QUERY_REQ on an open connection until the row is visible; p50/p99 of that delay.

   build/release/bench/... must be built:  cmake --build --preset release
   python3 bench/store_bench.py [--events N] [--producers N] [--latency N] [--json]
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
BUILD = os.path.join(ROOT, "build", "release")
os.environ.setdefault("FERRYD", os.path.join(BUILD, "daemon", "ferryd"))
os.environ.setdefault("FERRY", os.path.join(BUILD, "client", "ferry"))

import ferry_harness as h  # noqa: E402

QUERY_REQ, QUERY_RESULT = 11, 12


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def encode_batches(n, per_frame, tag):
    frames = []
    for start in range(0, n, per_frame):
        events = [h.make_event(source="claude-code", kind=["PreToolUse", "PostToolUse"][i % 2],
                               session="%s-%d" % (tag, i % 50), cwd="/home/u/src",
                               payload={"tool_name": "Bash", "tool_input": {"command": "ls -la"},
                                        "i": start + i})
                  for i in range(min(per_frame, n - start))]
        frames.append(h.encode_frame(h.EVENT_BATCH, {"v": 1, "events": events}))
    return frames


def producer(d, frames, errors):
    c = d.client()
    try:
        # Pipelined, with at most 8 frames in flight.
        inflight = 0
        for f in frames:
            c.send_raw(f)
            inflight += 1
            if inflight >= 8:
                ftype, body = c.recv_frame()
                inflight -= 1
                if ftype != h.ACK:
                    errors.append(body)
        for _ in range(inflight):
            ftype, body = c.recv_frame()
            if ftype != h.ACK:
                errors.append(body)
    finally:
        c.close()


def throughput(d, events, producers):
    per = events // producers
    frames = [encode_batches(per, 100, "p%d" % k) for k in range(producers)]
    total = per * producers
    errors = []
    samples = []
    threads = [threading.Thread(target=producer, args=(d, f, errors)) for f in frames]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    mon = d.client()
    while any(t.is_alive() for t in threads):
        st = mon.status()
        samples.append((time.monotonic() - t0, st["journal"]["last_seq"], st["store"]["cursor"]))
        time.sleep(0.05)
    for t in threads:
        t.join()
    t_ingest = time.monotonic() - t0
    st = mon.status()
    cursor_at_ingest_end = st["store"]["cursor"]
    while True:
        st = mon.status()
        if st["store"]["cursor"] >= st["journal"]["last_seq"]:
            break
        time.sleep(0.005)
    t_store = time.monotonic() - t0
    mon.close()
    max_lag = max([s[1] - s[2] for s in samples] or [0])
    return {
        "events": total, "errors": len(errors),
        "ingest_s": round(t_ingest, 3), "ingest_events_per_s": round(total / t_ingest),
        "store_rows_during_ingest_per_s": round(cursor_at_ingest_end / t_ingest),
        "store_all_rows_s": round(t_store, 3), "store_rows_per_s": round(total / t_store),
        "max_lag_events": max_lag,
        "last_batch_events": st["store"]["last_batch_events"],
    }


def latency(d, n):
    c = d.client()
    env = d.env()
    delays = []
    for i in range(n):
        kind = "lat%d" % i
        subprocess.run([h.FERRY, "emit", "--source", "bench", "--kind", kind,
                        "--data", '{"i":%d}' % i], env=env, check=True)
        t0 = time.monotonic()
        sql = "SELECT count(*) FROM events WHERE kind = '%s' AND seq > (SELECT max(seq) - 50 FROM events)" % kind
        while True:
            ftype, body = c.request(QUERY_REQ, {"v": 1, "sql": sql})
            if ftype != QUERY_RESULT:
                raise SystemExit("query failed: %r" % body)
            if body["rows"][0][0] == 1:
                break
            time.sleep(0.0005)
        delays.append((time.monotonic() - t0) * 1000.0)
        time.sleep(0.01)
    c.close()
    return {"n": n, "p50_ms": round(pct(delays, 50), 1), "p99_ms": round(pct(delays, 99), 1),
            "max_ms": round(max(delays), 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200000)
    ap.add_argument("--producers", type=int, default=2)
    ap.add_argument("--latency", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = {"machine": {"cpus": os.cpu_count(), "kernel": os.uname().release}}
    with h.daemon() as d:
        out["throughput"] = throughput(d, args.events, args.producers)
        d.stop()
        db = os.path.join(d.root, "ceiling.db")
        r = subprocess.run([os.path.join(BUILD, "bench", "store_ceiling"),
                            os.path.join(d.state_dir, "journal"), db, "1000"],
                           capture_output=True, text=True, check=True)
        out["ceiling"] = json.loads(r.stdout)
        out["throughput"]["store_vs_ceiling"] = round(
            out["throughput"]["store_rows_per_s"] / out["ceiling"]["rows_per_s"], 3)
    with h.daemon() as d:
        out["latency"] = latency(d, args.latency)
    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
