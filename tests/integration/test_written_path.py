"""One path after a journal flush, whoever flushed: an event imported from spool/ takes the same
written -> shippable -> retention path as an event from the socket (daemon/journal/publisher.h).

Retention runs after every flush that rolled a segment or left the journal over its byte cap,
before anything else on the io thread, so the status reply that first shows the events already
shows the journal back under its cap. A spool import that missed the trigger would stay over
the cap until the 1 s retention timer.

Segments are kept until the cap (docs/journal-format.md, "Retention"), so the events are
~20 KiB each: 60 of them are over the 1 MiB cap. The consumer is ferryd's test hook
`[journal] test_hold_consumer`; its cursor is set far ahead, so nothing deleted counts as lost
(no store: it would be a consumer too).
"""

import json
import os
import unittest

import ferry_harness as h

N = 60  # ~20 KiB events in 4 KiB segments: a roll per event, 1.2 MB in all
CAP = 1 << 20
PAD = "p" * 20000

CONFIG = """
[store]
enabled = false
[journal]
segment_size = 4096
max_bytes = "1MiB"
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
        r = self.d.emit("--source", "wtest", "--kind", "n", "--data", json.dumps({"n": n, "pad": PAD}))
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

    def assert_back_under_the_cap(self, st):
        self.assertGreater(st["journal"]["oldest_seq"], 1, st["journal"])
        self.assertGreater(st["journal"]["deleted_segments"], 0, st["journal"])
        self.assertLessEqual(st["journal"]["bytes"], CAP, st["journal"])
        self.assertEqual((st["lost_events"], st["journal"]["max_bytes"]), (0, CAP))

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
        self.assert_back_under_the_cap(st)
        self.assertEqual(st["journal"]["last_seq"], N)

    def test_socket_events_run_retention(self):
        self.d.start()
        self.release_holder()
        for n in range(N):
            self.emit(n)
        st = self.d.status()
        self.assert_back_under_the_cap(st)
        self.assertEqual(st["journal"]["last_seq"], N)


if __name__ == "__main__":
    unittest.main()
