#!/usr/bin/env python3
"""Sink benchmark (docs/sinks.md; not run by ctest; writes nothing to docs).

One ferryd ([store] enabled = false, so only the sink reads the journal) with one http-json
sink aimed at tests/integration/upstream_server.py running alone in --count-only mode.

1. Live delivery, gzip off and on: LIVE events streamed in EVENT_BATCH frames of 100 (encoded
   before the clock starts) while the sink delivers; events/s as the server counted them,
   from the first request to the last accepted one.
2. Catch-up: a backlog of EVENTS events ingested with no sink configured (the ack rate of that
   ingest is the baseline), then ferryd restarted with the sink (a new sink starts at the
   journal's oldest seq); the time until the sink's cursor passes the backlog, and the ingest
   ack rate of a producer streaming meanwhile (hooks must not slow down while a sink catches up).

Each figure is the median over --runs. Run from anywhere after building ferryd and ferry:

   python3 bench/sink_bench.py [--events 1000000] [--live 200000] [--runs 3]
                               [--max-events 1000] [--json]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
INTEGRATION = os.path.join(ROOT, "tests", "integration")
sys.path.insert(0, INTEGRATION)
BUILD = os.path.join(ROOT, "build", "release")
os.environ.setdefault("FERRYD", os.path.join(BUILD, "daemon", "ferryd"))
os.environ.setdefault("FERRY", os.path.join(BUILD, "client", "ferry"))

import ferry_harness as h  # noqa: E402
import store_bench  # noqa: E402  (bench/ is this script's directory)

PER_FRAME = 100
GUARD_S = 3600.0


# -- the standalone upstream --------------------------------------------------------------------

class Upstream:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, os.path.join(INTEGRATION, "upstream_server.py"),
                                      "--port", "0", "--count-only"], stdout=subprocess.PIPE,
                                     text=True)
        self.port = int(self.proc.stdout.readline())
        self.base = "http://127.0.0.1:%d" % self.port

    def url(self):
        return self.base + "/ingest"

    def stats(self):
        with urllib.request.urlopen(self.base + "/_stats", timeout=30) as r:
            return json.loads(r.read())

    def reset(self):
        req = urllib.request.Request(self.base + "/_reset", data=b"{}", method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()

    def close(self):
        self.proc.terminate()
        self.proc.wait(30)
        self.proc.stdout.close()


# -- ferryd -------------------------------------------------------------------------------------

REDACT = True  # --no-redact turns the sink's redaction off (it is on by default in ferryd)
TYPE = "http-json"  # --type otlp-http measures the OTLP encoding instead


def config(sink_url=None, gzip=True, max_events=1000):
    text = '[store]\nenabled = false\n\n[journal]\nmax_bytes = "8GiB"\nsegment_size = "256MiB"\n\n'
    if sink_url:
        text += ('[[sink]]\nname = "bench"\ntype = "' + TYPE + '"\nurl = "%s"\nmax_events = %d\n'
                 'max_bytes = "4MiB"\ngzip = %s\nbatch_timeout = "50ms"\nbackoff_max = "1s"\n'
                 'redact = %s\n' % (sink_url, max_events, "true" if gzip else "false",
                                     "true" if REDACT else "false"))
    return text


def write_config(d, text):
    d.config_path = os.path.join(d.root, "config.toml")
    with open(d.config_path, "w") as f:
        f.write(text)


def sink_cursor(d):
    for s in d.status().get("sinks", []):
        if s["name"] == "bench":
            return s["cursor"]
    raise RuntimeError("no sink 'bench' in status")


def encode_frames(n, tag):
    """store_bench's frames of PER_FRAME events, each with its event count."""
    frames = store_bench.encode_batches(n, PER_FRAME, tag)
    return [(min(PER_FRAME, n - i * PER_FRAME), f) for i, f in enumerate(frames)]


def stream(d, frames, stop=None, window=8):
    """Sends frames pipelined (at most `window` unacked); returns (events acked, seconds).
    With `stop` (an Event), stops early once it is set."""
    acked = 0
    sizes = []
    t0 = time.monotonic()
    with d.client() as c:
        for n, f in frames:
            if stop is not None and stop.is_set():
                break
            c.send_raw(f)
            sizes.append(n)
            if len(sizes) >= window:
                ftype, body = c.recv_frame()
                if ftype != h.ACK:
                    raise RuntimeError("not acked: %r" % body)
                acked += sizes.pop(0)
        while sizes:
            ftype, body = c.recv_frame()
            if ftype != h.ACK:
                raise RuntimeError("not acked: %r" % body)
            acked += sizes.pop(0)
    return acked, time.monotonic() - t0


def wait_until(pred, what, interval=0.1):
    deadline = time.monotonic() + GUARD_S
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(interval)


# -- the two measurements -----------------------------------------------------------------------

def live_delivery(up, n, gzip, max_events):
    up.reset()
    frames = encode_frames(n, "live")
    d = h.Daemon(config=config(up.url(), gzip, max_events))
    try:
        d.start()
        acked, ingest_s = stream(d, frames)
        wait_until(lambda: up.stats()["accepted_events"] >= n, "live delivery", 0.05)
        st = up.stats()
        wait_until(lambda: sink_cursor(d) >= n, "the sink's cursor")
    finally:
        d.close()
    span = st["last_accepted_time"] - st["first_time"]
    return {"events_per_s": n / span if span > 0 else float("inf"),
            "ingest_acks_per_s": acked / ingest_s,
            "requests": st["accepted_requests"],
            "wire_bytes_per_event": st["raw_bytes"] / max(1, st["accepted_events"]),
            "body_bytes_per_event": st["decoded_bytes"] / max(1, st["accepted_events"])}


def catch_up(up, n, max_events):
    up.reset()
    backlog = encode_frames(n, "backlog")
    # The producer during catch-up sends at most 300,000 fresh events (stopping early when the
    # backlog is delivered): its ack rate covers at least the start of the catch-up.
    live = encode_frames(min(n, 300000), "during")
    d = h.Daemon(config=config())
    try:
        d.start()
        acked, secs = stream(d, backlog)
        baseline = acked / secs
        d.stop()
        write_config(d, config(up.url(), True, max_events))
        t0 = time.monotonic()
        d.start()
        stop = threading.Event()
        result = {}

        def producer():
            result["acked"], result["secs"] = stream(d, live, stop)
        t = threading.Thread(target=producer)
        t.start()
        try:
            wait_until(lambda: sink_cursor(d) >= n, "catch-up", 0.05)
            caught = time.monotonic() - t0
        finally:
            stop.set()
            t.join(GUARD_S)
    finally:
        d.close()
    return {"catch_up_s": caught, "catch_up_events_per_s": n / caught,
            "baseline_acks_per_s": baseline,
            "acks_per_s_during_catch_up": result["acked"] / result["secs"]}


def median_of(results, key):
    return statistics.median(r[key] for r in results)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1000000, help="catch-up backlog")
    ap.add_argument("--live", type=int, default=200000, help="events for the live delivery runs")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--max-events", type=int, default=1000, help="the sink's max_events")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-redact", action="store_true", help="sink redact = false")
    ap.add_argument("--type", choices=["http-json", "otlp-http"], default="http-json")
    args = ap.parse_args()
    global REDACT, TYPE
    REDACT = not args.no_redact
    TYPE = args.type

    up = Upstream()
    out = {"events": args.events, "live": args.live, "runs": args.runs,
           "max_events": args.max_events, "redact": REDACT, "type": TYPE}
    try:
        for gz in (False, True):
            runs = [live_delivery(up, args.live, gz, args.max_events) for _ in range(args.runs)]
            out["live_gzip" if gz else "live_plain"] = {
                k: median_of(runs, k) for k in runs[0]}
        runs = [catch_up(up, args.events, args.max_events) for _ in range(args.runs)]
        out["catch_up"] = {k: median_of(runs, k) for k in runs[0]}
    finally:
        up.close()

    if args.json:
        print(json.dumps(out, indent=1))
        return
    print("medians over %d runs, %s sink, max_events %d, redact %s"
          % (args.runs, TYPE, args.max_events, "on" if REDACT else "off"))
    for name in ("live_plain", "live_gzip"):
        r = out[name]
        print("%-10s %9.0f events/s delivered (%d requests, %.0f wire / %.0f body bytes per event),"
              " ingest %9.0f acks/s"
              % (name, r["events_per_s"], r["requests"], r["wire_bytes_per_event"],
                 r["body_bytes_per_event"], r["ingest_acks_per_s"]))
    c = out["catch_up"]
    print("catch-up   %d events in %.1f s (%.0f events/s, gzip); ingest %.0f acks/s during it, "
          "%.0f acks/s with no sink" % (args.events, c["catch_up_s"], c["catch_up_events_per_s"],
                                        c["acks_per_s_during_catch_up"], c["baseline_acks_per_s"]))


if __name__ == "__main__":
    main()
