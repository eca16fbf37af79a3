"""One path after a journal flush, whoever flushed: an event imported from spool/ takes the same
written -> shippable -> retention path as an event from the socket (daemon/journal/publisher.h).

Retention runs after every flush that rolled a segment, before anything else on the io thread,
so the status reply that first shows the events already shows the rolled segments deleted. A
spool import that missed the trigger would keep them until the 1 s retention timer.

The consumer is ferryd's test hook `[journal] test_hold_consumer`; its cursor is set far ahead,
so every closed segment may be deleted at once (no store: it would hold segments too).
"""

import json
import os
import unittest

import ferry_harness as h

N = 60  # ~300-byte events in 4 KiB segments: several rolls

CONFIG = """
[store]
enabled = false
[journal]
segment_size = 4096
test_hold_consumer = "holder"
"""


class WrittenPathTest(unittest.TestCase):
    def setUp(self):
        self.d = h.Daemon(config=CONFIG)
        self.spool = os.path.join(self.d.state_dir, "spool")

    def tearDown(self):
        self.d.close()

    def release_holder(self):
        with self.d.client() as c:
            t, body = c.request(h.STATUS_REQ, {"v": 1, "test_consumer_cursor": 10**9})
            self.assertEqual(t, h.STATUS, body)

    def emit(self, n):
        r = self.d.emit("--source", "wtest", "--kind", "n", "--data", json.dumps({"n": n}))
        self.assertEqual((r.returncode, r.stderr), (0, ""))

    def spooled_lines(self):
        """N events as spool lines, written by `ferry emit` while ferryd is down."""
        lines = []
        for n in range(N):
            self.emit(n)
        for name in sorted(os.listdir(self.spool)):
            with open(os.path.join(self.spool, name)) as f:
                lines.append(f.read())
            os.unlink(os.path.join(self.spool, name))
        self.assertEqual(len(lines), N)
        return "".join(lines)

    def assert_rolled_segments_deleted(self, st):
        self.assertGreater(st["journal"]["oldest_seq"], 1, st["journal"])
        self.assertEqual(st["journal"]["segments"], 1, st["journal"])

    def test_spool_import_runs_retention_like_a_socket_event(self):
        self.d.start()
        self.assertEqual(self.d.stop(), 0)
        body = self.spooled_lines()
        self.d.start()
        self.release_holder()
        tmp = os.path.join(self.spool, ".batch.part")
        with open(tmp, "w") as f:
            f.write(body)
        os.rename(tmp, os.path.join(self.spool, "batch.ndjson"))
        st = self.d.wait_for(lambda st: st["spool"]["events_imported"] == N, "the import")
        self.assert_rolled_segments_deleted(st)
        self.assertEqual(st["journal"]["last_seq"], N)

    def test_socket_events_run_retention(self):
        self.d.start()
        self.release_holder()
        for n in range(N):
            self.emit(n)
        st = self.d.status()
        self.assert_rolled_segments_deleted(st)
        self.assertEqual(st["journal"]["last_seq"], N)


if __name__ == "__main__":
    unittest.main()
