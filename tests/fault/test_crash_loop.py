"""The crash loop with everything on (issue 10, "The fault campaign"): 8 concurrent emitters
(single `ferry emit`, durable and not, ~100 KiB payloads, and EVENT_BATCH frames over the
socket, since `ferry emit` has no batch mode) with the store and two sinks (one answering 500
or 503 to ~30% of requests at random) while ferryd is SIGKILLed at random moments, some of them
0-50 ms after it was spawned (during start-up, spool import and recovery).

At the end ferryd starts cleanly, the spool is imported and the sinks drain; then:
  - every event whose emit printed an ack (--print-ack) is in the journal (`ferry tail --json
    --from 1`) exactly once, at the seq it was acked with, and in the store (`ferry query`);
  - every acked batch event too, at its seq, with its id;
  - the journal's seqs are 1..N without a gap, its event ids unique, and the store holds
    exactly those rows (seq and id);
  - every event whose emit exited 0 without an ack (spooled) is in the journal exactly once;
  - each sink's server accepted every journal seq with the journal's id, and a seq accepted
    more than once only ever under one Idempotency-Key, which always named the same seqs.

FERRY_CRASH_CYCLES sets the number of kill cycles (20 by default, for CI; >= 200 by hand:
  FERRY_CRASH_CYCLES=200 FERRYD=... FERRY=... PYTHONPATH=tests/integration \\
    python3 -m unittest -v test_crash_loop   (from tests/fault)
FERRY_CRASH_SEED picks the random sequence (printed on failure)."""

import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import ferry_harness as h  # noqa: E402
from upstream_server import UpstreamServer  # noqa: E402

CYCLES = int(os.environ.get("FERRY_CRASH_CYCLES", "20"))
SEED = int(os.environ.get("FERRY_CRASH_SEED", str(random.SystemRandom().randrange(1 << 30))))
LARGE = 100 * 1024  # bytes of a large payload's filler


def sink_toml(name, url):
    return ('[[sink]]\nname = "%s"\ntype = "http-json"\nurl = "%s"\nmax_events = 50\n'
            'batch_timeout = "20ms"\nbackoff_max = "200ms"\ntimeout = "5s"\n'
            'connect_timeout = "2s"\n\n' % (name, url))


def config(ok_url, flaky_url):
    # The held consumer and a byte cap far above what a run writes (200 cycles: ~1-2 GiB of
    # 100 KiB payloads; the 1 GiB default cap deleted the oldest) keep every segment, so
    # `ferry tail --from 1` can show them all.
    return ('[journal]\nfsync_interval = "50ms"\nsegment_size = "4MiB"\n'
            'test_hold_consumer = "crashloop"\nmax_bytes = "64GiB"\n'
            '[store]\nbatch_interval = "20ms"\nbatch_events = 50\n\n'
            + sink_toml("ok", ok_url) + sink_toml("flaky", flaky_url))


class Ledger:
    """What the emitters know for sure, shared by their threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}        # marker -> seq (single emits that printed an ack)
        self.spooled = {}      # marker -> stderr of emits that exited 0 without an ack
        self.refused = {}      # marker -> stderr (ferryd answered ERROR: neither acked nor spooled)
        self.batch_acked = {}  # seq -> id (EVENT_BATCH frames that got their ACK)
        self.batch_unknown = set()  # ids of batches sent without an ACK back (may be in)
        self.errors = []


class EmitThread(threading.Thread):
    """Runs `ferry emit` again and again with a unique marker in each payload."""

    def __init__(self, name, d, ledger, stop, rng, durable, large):
        super().__init__(daemon=True, name=name)
        self.d, self.ledger, self.stop, self.rng = d, ledger, stop, rng
        self.durable, self.large = durable, large
        self.n = 0

    def run(self):
        env = self.d.env()
        while not self.stop.is_set():
            self.n += 1
            marker = "%s-%d" % (self.name, self.n)
            payload = {"m": marker}
            if self.large:
                payload["fill"] = "x" * (LARGE + self.rng.randrange(1024))
            args = [h.FERRY, "emit", "--source", "crashloop", "--kind", self.name,
                    "--session", "s%d" % (self.n % 4), "--print-ack",
                    "--timeout-ms", str(self.rng.choice([50, 1000, 3000]))]
            if self.durable:
                args.append("--durable")
            args += ["--stdin"]
            try:
                r = subprocess.run(args, env=env, input=json.dumps(payload), capture_output=True,
                                   text=True, timeout=h.HANG_GUARD_S)
            except subprocess.TimeoutExpired:
                with self.ledger.lock:
                    self.ledger.errors.append("%s: ferry emit hung" % marker)
                return
            out = r.stdout.strip()
            with self.ledger.lock:
                if r.returncode != 0:
                    self.ledger.errors.append("%s: exit %d: %s" % (marker, r.returncode, r.stderr))
                elif out:
                    self.ledger.acked[marker] = int(out)
                elif "refused" in r.stderr:
                    self.ledger.refused[marker] = r.stderr.strip()
                else:
                    self.ledger.spooled[marker] = r.stderr.strip()


def connect(path):
    """A RawClient, or OSError without leaking the socket (RawClient's own constructor does)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    c = h.RawClient.__new__(h.RawClient)
    c.sock, c.buf = sock, b""
    return c


class BatchThread(threading.Thread):
    """Sends EVENT_BATCH frames over its own connection, reconnecting after each kill."""

    def __init__(self, name, d, ledger, stop, rng, durable):
        super().__init__(daemon=True, name=name)
        self.d, self.ledger, self.stop, self.rng, self.durable = d, ledger, stop, rng, durable
        self.n = 0

    def run(self):
        c = None
        while not self.stop.is_set():
            try:
                if c is None:
                    c = connect(self.d.socket)
                evs = []
                for _ in range(self.rng.randint(1, 20)):
                    self.n += 1
                    evs.append(h.make_event(source="crashloop", kind=self.name,
                                            session="b%d" % (self.n % 3),
                                            payload={"m": "%s-%d" % (self.name, self.n)}))
                with self.ledger.lock:
                    self.ledger.batch_unknown.update(e["id"] for e in evs)
                ftype, ack = c.send_batch(evs, durable=self.durable or None)
                if ftype != h.ACK:
                    raise h.Closed("answer %d %r" % (ftype, ack))
                if ack["last_seq"] - ack["first_seq"] + 1 != len(evs):
                    with self.ledger.lock:
                        self.ledger.errors.append("batch ack %r for %d events" % (ack, len(evs)))
                    return
                with self.ledger.lock:
                    for seq, e in zip(range(ack["first_seq"], ack["last_seq"] + 1), evs):
                        self.ledger.batch_acked[seq] = e["id"]
                        self.ledger.batch_unknown.discard(e["id"])
                time.sleep(self.rng.random() * 0.02)  # leave room for the single emits
            except (h.Closed, OSError, ValueError):
                if c is not None:
                    c.close()
                c = None
                time.sleep(0.005)  # ferryd is down or starting
        if c is not None:
            c.close()


class CrashLoopTest(unittest.TestCase):
    maxDiff = 2000

    def test_sigkill_loop_with_store_and_sinks_loses_and_duplicates_nothing(self):
        rng = random.Random(SEED)
        note = "FERRY_CRASH_SEED=%d FERRY_CRASH_CYCLES=%d" % (SEED, CYCLES)
        ok_srv = UpstreamServer(slim=True).start()
        self.addCleanup(ok_srv.close)
        flaky_srv = UpstreamServer(slim=True).start()
        self.addCleanup(flaky_srv.close)
        flaky_srv.fail_randomly(0.3, statuses=(500, 503), seed=SEED)
        # FERRY_CRASH_KEEP=1: the temp dir (state, ferryd.log) stays for a post-mortem.
        keep = os.environ.get("FERRY_CRASH_KEEP") == "1"
        d = h.Daemon(config=config(ok_srv.url("/ok"), flaky_srv.url("/flaky")),
                     root=h.make_tempdir() if keep else None)
        self.addCleanup(d.close)
        note += (" state kept in " + d.root) if keep else ""
        d.start()

        ledger, stop = Ledger(), threading.Event()
        threads = [
            EmitThread("single", d, ledger, stop, random.Random(rng.random()), False, False),
            EmitThread("single2", d, ledger, stop, random.Random(rng.random()), False, False),
            EmitThread("durable", d, ledger, stop, random.Random(rng.random()), True, False),
            EmitThread("durable2", d, ledger, stop, random.Random(rng.random()), True, False),
            EmitThread("large", d, ledger, stop, random.Random(rng.random()), False, True),
            EmitThread("largedur", d, ledger, stop, random.Random(rng.random()), True, True),
            BatchThread("batch", d, ledger, stop, random.Random(rng.random()), False),
            BatchThread("batchdur", d, ledger, stop, random.Random(rng.random()), True),
        ]
        for t in threads:
            t.start()
        self.addCleanup(stop.set)

        started = time.monotonic()
        early_kills = 0
        for cycle in range(CYCLES):
            # Let events flow for a random while (journal, store, sinks, spool import all busy),
            # then SIGKILL at a random moment.
            time.sleep(0.1 + rng.random() * 0.8)
            d.kill()
            if rng.random() < 0.3:
                # Killed during start-up: 0-50 ms after spawn (recovery, spool import, sinks
                # reading their cursors).
                d.spawn()
                time.sleep(rng.random() * 0.05)
                d.kill()
                early_kills += 1
            # Emitters keep going while ferryd is down: those events go to the spool.
            time.sleep(rng.random() * 0.05)
            d.start()
        stop.set()
        for t in threads:
            t.join(h.HANG_GUARD_S)
            self.assertFalse(t.is_alive(), "%s did not stop (%s)" % (t.name, note))
        self.assertEqual(ledger.errors, [], note)
        loop_s = time.monotonic() - started

        # A clean start: import the spool, let the store and both sinks catch up.
        d.restart()
        # The spool is imported once its files are gone from disk (removed only when their
        # events are durable). Not status' pending_files alone: it reads 0 until the importer
        # thread's first scan after a start.
        spool_dir = os.path.join(d.state_dir, "spool")

        def spool_empty(st):
            names = os.listdir(spool_dir) if os.path.isdir(spool_dir) else []
            return st["spool"]["pending_files"] == 0 and not [
                n for n in names if n.endswith((".ndjson", ".tmp"))]
        d.wait_for(spool_empty, "the spool to be imported")
        deadline = time.monotonic() + 180
        while True:
            # --wait returns at the flaky sink's first failure: ask again until all is sent.
            r = h.run_ferry(["flush", "--wait", "--timeout", "60s"], d.env())
            if r.returncode == 0:
                break
            if d.proc.poll() is not None or time.monotonic() >= deadline:
                self.fail("flush: %s %s (%s); ferryd exit status %r; its log ends:\n%s"
                          % (r.stdout, r.stderr, note, d.proc.poll(), d.last_log()[-4000:]))
        st = d.wait_for(lambda st: st["store"]["cursor"] == st["journal"]["last_seq"],
                        "the store to catch up")
        last = st["journal"]["last_seq"]
        for s in st["sinks"]:
            self.assertEqual((s["name"], s["cursor"], s["deadlettered"]), (s["name"], last, 0), note)

        # The journal, as `ferry tail` shows it (streamed: the large payloads add up).
        journal = []  # (seq, id, marker)
        with tempfile.TemporaryFile("w+") as err:
            tail = subprocess.Popen([h.FERRY, "tail", "--json", "--from", "1"], env=d.env(),
                                    stdout=subprocess.PIPE, stderr=err, text=True)
            for line in tail.stdout:
                e = json.loads(line)
                p = e.get("payload")
                journal.append((e["seq"], e["id"], p.get("m") if isinstance(p, dict) else None))
            self.assertEqual(tail.wait(timeout=h.HANG_GUARD_S), 0)
            err.seek(0)
            self.assertEqual(err.read(), "", note)  # no "skipped" or "deleted" note
        seqs = [seq for seq, _, _ in journal]
        self.assertEqual(seqs, list(range(1, last + 1)), "journal seqs not gap-free (%s)" % note)
        by_seq = {seq: eid for seq, eid, _ in journal}
        ids = [eid for _, eid, _ in journal]
        self.assertEqual(len(set(ids)), len(ids), "an event id twice in the journal (%s)" % note)
        markers = {}
        for seq, _, m in journal:
            if m is not None:
                markers.setdefault(m, []).append(seq)
        twice = {m: s for m, s in markers.items() if len(s) > 1}
        self.assertEqual(twice, {}, "events in the journal more than once (%s)" % note)

        # Acked single emits: at their seq, once.
        for marker, seq in ledger.acked.items():
            self.assertEqual(markers.get(marker), [seq], "acked %s (%s)" % (marker, note))
        # Acked batch events: at their seq with their id.
        for seq, eid in ledger.batch_acked.items():
            self.assertEqual(by_seq[seq], eid, "acked batch seq %d (%s)" % (seq, note))
        # Spooled: imported, once; nothing left or moved aside in the spool.
        left = sorted(os.listdir(spool_dir)) if os.path.isdir(spool_dir) else []
        for marker, err in ledger.spooled.items():
            self.assertEqual(len(markers.get(marker, [])), 1, "spooled %s, emit said %r; spool "
                             "dir holds %r (%s)" % (marker, err, left[:10], note))
        self.assertEqual(left, [], note)

        # The store: the same seqs with the same ids (paged under the query row cap).
        rows = []
        for lo in range(1, last + 1, 5000):
            q = h.run_ferry(["query", "--json", "--limit", "5000",
                             "SELECT seq, id FROM events WHERE seq BETWEEN %d AND %d ORDER BY seq"
                             % (lo, lo + 4999)], d.env())
            self.assertEqual(q.returncode, 0, q.stderr)
            rows += [json.loads(line) for line in q.stdout.splitlines() if line.strip()]
        self.assertEqual([(x["seq"], x["id"]) for x in rows], [(seq, eid) for seq, eid, _ in journal],
                         "store rows differ from the journal (%s)" % note)

        # Upstream: every seq accepted with its id; repeats only under one key per seq, and a
        # key always names the same seqs.
        for srv in (ok_srv, flaky_srv):
            key_ranges, accepted = {}, {}
            for req in srv.requests:
                rseqs = tuple(e["seq"] for e in req.events)
                if req.key is None or not rseqs:
                    continue
                key_ranges.setdefault(req.key, set()).add(rseqs)
                self.assertTrue(req.key.endswith("-%d-%d" % (rseqs[0], rseqs[-1])), req.key)
            for key, variants in key_ranges.items():
                self.assertEqual(len(variants), 1, "key %s named different seqs (%s)" % (key, note))
            for req in srv.accepted_batches():
                for e in req.events:
                    accepted.setdefault(e["seq"], set()).add(req.key)
                    self.assertEqual(e["id"], by_seq[e["seq"]], "seq %d (%s)" % (e["seq"], note))
            self.assertEqual(sorted(accepted), seqs, "not every seq accepted upstream (%s)" % note)
            multi = {s: k for s, k in accepted.items() if len(k) > 1}
            self.assertEqual(multi, {}, "seqs accepted under several keys (%s)" % note)

        print("\ncrash loop: %d cycles (%d during start-up) in %.1f s; %d events in the journal "
              "(%d acked emits, %d spooled, %d refused, %d acked batch events); upstream "
              "requests ok=%d flaky=%d (%s)"
              % (CYCLES, early_kills, loop_s, last, len(ledger.acked), len(ledger.spooled),
                 len(ledger.refused), len(ledger.batch_acked), len(ok_srv.requests),
                 len(flaky_srv.requests), note), file=sys.stderr)
        if ledger.refused:
            print("refused (neither acked nor spooled): %r" % list(ledger.refused.items())[:5],
                  file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
