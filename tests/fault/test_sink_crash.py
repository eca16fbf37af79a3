"""SIGKILL ferryd again and again while a sink delivers (and the server sometimes fails or
stalls), then check what the server accepted: every acked event exactly as often as keys
allow, in seq order per request, duplicates only ever under the same Idempotency-Key, and a
cursor file that agrees. Like test_store's cycles: FERRY_SIGKILL_CYCLES sets how many (10 in
the suite; the longer fault job in .ci/run runs more)."""

import json
import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import ferry_harness as h  # noqa: E402
from upstream_server import UpstreamServer  # noqa: E402

CYCLES = int(os.environ.get("FERRY_SIGKILL_CYCLES", "10"))


def config(url):
    # fsync "never": the sink may send what is written, so kills land mid-delivery often.
    return ('[journal]\nfsync = "never"\n[store]\nenabled = false\n'
            '[[sink]]\nname = "k"\ntype = "http-json"\nurl = "%s"\nmax_events = 37\n'
            'batch_timeout = "5ms"\nbackoff_max = "200ms"\ntimeout = "2s"\n' % url)


class Producer(threading.Thread):
    """Sends batches until told to stop or the daemon dies; remembers every acked event."""

    def __init__(self, d, acked):
        super().__init__(daemon=True)
        self.d, self.acked, self.stop = d, acked, threading.Event()

    def run(self):
        try:
            with self.d.client() as c:
                while not self.stop.is_set():
                    evs = [h.make_event(source="crash", kind="k", payload={"n": i})
                           for i in range(20)]
                    ftype, ack = c.send_batch(evs)
                    if ftype != h.ACK:
                        return
                    self.acked.extend(zip(range(ack["first_seq"], ack["last_seq"] + 1),
                                          [e["id"] for e in evs]))
        except Exception:  # noqa: BLE001 (h.Closed, OSError, ...)
            return  # ferryd was killed mid-request: that batch was not acked


class SinkCrashTest(unittest.TestCase):
    def test_sigkill_cycles_deliver_every_acked_event(self):
        srv = UpstreamServer().start()
        self.addCleanup(srv.close)
        d = h.Daemon(config=config(srv.url()))
        self.addCleanup(d.close)
        d.start()
        rng = random.Random(4321)
        acked = []
        for cycle in range(CYCLES):
            if cycle % 3 == 1:
                srv.fail_next(rng.randint(1, 3), status=503)
            if cycle % 4 == 2:
                srv.stall_next(1, 0.3)
            p = Producer(d, acked)
            p.start()
            target = len(srv.requests) + rng.randint(1, 6)
            srv.wait_for(lambda s: len(s.requests) >= target, "requests to flow", h.HANG_GUARD_S)
            time.sleep(rng.random() * 0.02)
            d.kill()
            p.stop.set()
            p.join(h.HANG_GUARD_S)
            d.start()
        # Let everything out, then compare.
        r = h.run_ferry(["flush", "--wait", "--timeout", "120s"], d.env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        last = d.status()["journal"]["last_seq"]
        d.stop()

        accepted = {}  # seq -> set of keys it was accepted under
        ids = {}
        for req in srv.accepted_batches():
            seqs = [e["seq"] for e in req.events]
            self.assertEqual(seqs, sorted(seqs), req.key)
            self.assertTrue(req.key.endswith("-%d-%d" % (seqs[0], seqs[-1])), req.key)
            for e in req.events:
                accepted.setdefault(e["seq"], set()).add(req.key)
                ids[e["seq"]] = e["id"]
        for seq, keys in accepted.items():
            self.assertEqual(len(keys), 1, "seq %d accepted under %r" % (seq, keys))
        # Every acked event reached the server with its id; nothing beyond the journal did.
        for seq, eid in acked:
            self.assertEqual(ids.get(seq), eid, "acked seq %d" % seq)
        self.assertEqual(sorted(accepted), list(range(1, last + 1)))
        with open(os.path.join(d.state_dir, "cursors", "k")) as f:
            self.assertEqual(json.load(f)["cursor"], last)


if __name__ == "__main__":
    unittest.main()
