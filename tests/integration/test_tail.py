"""`ferry tail` through the real binaries: replay then follow with no gap or duplicate across a
ferryd restart, --from, --last, filters, and a stopped tail that must not slow ingest."""

import json
import os
import signal
import subprocess
import time
import unittest

import ferry_harness as h


def emit_batches(d, total, batch=200, source="tail", kind="load", payload_bytes=0, start=0):
    """Sends `total` events in EVENT_BATCH frames on one raw connection; returns the acked
    (first_seq, last_seq) ranges."""
    pad = "x" * payload_bytes
    acks = []
    with d.client() as c:
        for first in range(start, start + total, batch):
            n = min(batch, start + total - first)
            events = [h.make_event(source=source, kind=kind, payload={"i": first + k, "pad": pad})
                      for k in range(n)]
            t, body = c.send_batch(events)
            if t != h.ACK:
                raise AssertionError("expected ACK, got %d %r" % (t, body))
            acks.append((body["first_seq"], body["last_seq"]))
    return acks


def wait_until(predicate, what):
    deadline = time.monotonic() + h.HANG_GUARD_S * 3
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def read_lines(path):
    with open(path, "rb") as f:
        data = f.read().decode()
    # Only whole lines: the tail may be mid-write.
    return data.split("\n")[:-1]


class TailProcess:
    """`ferry tail ARGS` with stdout and stderr in files (a pipe would fill and stop it)."""

    def __init__(self, d, *args):
        self.out = os.path.join(d.root, "tail-%d.out" % id(self))
        self.err = os.path.join(d.root, "tail-%d.err" % id(self))
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.proc = subprocess.Popen([h.FERRY, "tail"] + list(args), env=d.env(),
                                         stdin=subprocess.DEVNULL, stdout=o, stderr=e)

    def lines(self):
        return read_lines(self.out)

    def stderr(self):
        with open(self.err, "rb") as f:
            return f.read().decode()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
        return self.proc.wait(timeout=h.HANG_GUARD_S)


def run_tail(d, *args):
    r = h.run_ferry(["tail"] + list(args), d.env())
    return r


def seqs_of(lines):
    return [json.loads(line)["seq"] for line in lines]


class TailFollowTest(unittest.TestCase):
    def setUp(self):
        self.d = h.Daemon()
        self.d.start()
        self.tails = []

    def tearDown(self):
        for t in self.tails:
            t.stop()
        self.d.close()

    def tail(self, *args):
        t = TailProcess(self.d, *args)
        self.tails.append(t)
        return t

    def test_follow_prints_each_seq_once_in_order_across_a_restart(self):
        total = 10000
        t = self.tail("-f", "--json", "--from", "1")
        emit_batches(self.d, total // 2, batch=100)
        # Restart while the tail is (most likely) still catching up: it must resume after the
        # last seq it printed.
        self.d.restart()
        emit_batches(self.d, total - total // 2, batch=100, start=total // 2)
        wait_until(lambda: len(t.lines()) >= total, "the tail to print %d events" % total)
        self.assertIsNone(t.proc.poll(), "ferry tail -f exited: " + t.stderr())
        lines = t.lines()
        seqs = seqs_of(lines)
        self.assertEqual(seqs, list(range(1, total + 1)))
        payload_i = [json.loads(line)["payload"]["i"] for line in lines]
        self.assertEqual(payload_i, list(range(total)))
        first = json.loads(lines[0])
        for key in ("seq", "received", "id", "ts", "source", "kind", "payload"):
            self.assertIn(key, first)
        self.assertIn("reconnect", t.stderr())

    def test_follow_started_before_the_daemon_waits_for_it(self):
        self.d.stop()
        t = self.tail("-f", "--json", "--from", "1")
        wait_until(lambda: "reconnecting" in t.stderr(), "a note while disconnected")
        self.d.start()
        emit_batches(self.d, 10)
        wait_until(lambda: len(t.lines()) >= 10, "the tail to print 10 events")
        self.assertEqual(seqs_of(t.lines()), list(range(1, 11)))

    def test_live_events_follow_the_replay_without_gap(self):
        emit_batches(self.d, 300)
        t = self.tail("-f", "--json")  # the last 10, then live
        wait_until(lambda: len(t.lines()) >= 10, "the replayed tail")
        emit_batches(self.d, 300, start=300)
        wait_until(lambda: len(t.lines()) >= 310, "the live events")
        self.assertEqual(seqs_of(t.lines()), list(range(291, 601)))

    def test_filters_are_applied_live(self):
        t = self.tail("-f", "--json", "--from", "1", "--source", "a", "--kind", "x")
        want = []
        with self.d.client() as c:
            for i in range(40):
                ev = h.make_event(source="ab"[i % 2], kind="xy"[i // 2 % 2], payload={"i": i})
                seq = c.ack(ev)["last_seq"]
                if ev["source"] == "a" and ev["kind"] == "x":
                    want.append(seq)
        wait_until(lambda: len(t.lines()) >= len(want), "the filtered events")
        out = [json.loads(line) for line in t.lines()]
        self.assertEqual([o["seq"] for o in out], want)
        self.assertTrue(all(o["source"] == "a" and o["kind"] == "x" for o in out))

    def test_a_stopped_tail_does_not_slow_ingest(self):
        # Enough bytes to fill the tail's socket buffers many times over.
        emit_batches(self.d, 2000, payload_bytes=1000)
        t = self.tail("-f", "--json", "--from", "1")
        wait_until(lambda: len(t.lines()) >= 1, "the tail to start")
        t.proc.send_signal(signal.SIGSTOP)
        try:
            st = self.d.wait_for(lambda s: s["tails"] == 1, "the tail to be counted")
            # 20,000 events of ~1 KB while the tail reads nothing: every batch must be acked
            # (emit_batches fails on anything else; the hang guard is the only clock).
            acks = emit_batches(self.d, 20000, payload_bytes=1000, start=2000)
            self.assertEqual(acks[-1][1], 22000)
            st = self.d.status()
            self.assertEqual(st["ingest"]["events_total"], 22000)
            self.assertEqual(st["tails"], 1)
        finally:
            t.proc.send_signal(signal.SIGCONT)
        # Once it reads again it gets everything, in order.
        wait_until(lambda: len(t.lines()) >= 22000, "the tail to catch up")
        self.assertEqual(seqs_of(t.lines()), list(range(1, 22001)))


class TailReplayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = h.Daemon()
        cls.d.start()
        with cls.d.client() as c:
            for i in range(50):
                c.ack(h.make_event(source="src%d" % (i % 3), kind="k%d" % (i % 2),
                                   session="s1", payload={"i": i}))

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def test_from_replays_exactly_from_that_seq_and_ends(self):
        r = run_tail(self.d, "--from", "20", "--json")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        out = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual([o["seq"] for o in out], list(range(20, 51)))
        self.assertEqual([o["payload"]["i"] for o in out], list(range(19, 50)))

    def test_default_is_the_last_ten(self):
        r = run_tail(self.d, "--json")
        self.assertEqual(r.returncode, 0)
        self.assertEqual(seqs_of(r.stdout.splitlines()), list(range(41, 51)))
        r = run_tail(self.d, "--json", "--last", "3")
        self.assertEqual(seqs_of(r.stdout.splitlines()), [48, 49, 50])

    def test_from_past_the_end_prints_nothing(self):
        r = run_tail(self.d, "--from", "51")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))

    def test_filters(self):
        r = run_tail(self.d, "--from", "1", "--json", "--source", "src1", "--kind", "k0")
        out = [json.loads(line) for line in r.stdout.splitlines()]
        want = [i + 1 for i in range(50) if i % 3 == 1 and i % 2 == 0]
        self.assertEqual([o["seq"] for o in out], want)
        r = run_tail(self.d, "--from", "1", "--json", "--kind", "k1")
        self.assertEqual(len(r.stdout.splitlines()), 25)

    def test_human_lines(self):
        r = run_tail(self.d, "--from", "50")
        self.assertEqual(r.returncode, 0)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 1)
        # Local time, seq, source, kind, session, then the payload's short fields
        # (test_reading.py checks the columns exactly).
        self.assertRegex(lines[0], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}      50 src1        "
                                   r"k1               s1        i=49$")

    def test_usage_errors(self):
        for args in (["--from"], ["--from", "0"], ["--from", "x"], ["--bogus"], ["--source", ""]):
            r = run_tail(self.d, *args)
            self.assertEqual(r.returncode, 2, args)
            self.assertTrue(r.stderr.startswith("ferry: "), r.stderr)

    def test_raw_tail_request_and_bad_fields(self):
        with self.d.client() as c:
            c.send_frame(h.TAIL_REQ, {"v": 1, "from": 49, "follow": False})
            items = []
            while True:
                t, body = c.recv_frame()
                self.assertEqual(t, h.TAIL_ITEM)
                items.append(body)
                if body.get("end"):
                    break
            self.assertEqual([i["seq"] for i in items[:-1]], [49, 50])
            self.assertEqual(items[-1], {"v": 1, "end": True, "next": 51})
            c.expect_closed()
        with self.d.client() as c:
            t, body = c.request(h.TAIL_REQ, {"v": 1, "frm": 3})
            self.assertEqual((t, body["code"], body["fatal"]), (h.ERROR, "unknown_field", True))

    def test_no_daemon(self):
        env = dict(self.d.env(), FERRY_SOCKET=os.path.join(self.d.root, "nope.sock"))
        r = h.run_ferry(["tail"], env)
        self.assertEqual(r.returncode, 3)


if __name__ == "__main__":
    unittest.main()
