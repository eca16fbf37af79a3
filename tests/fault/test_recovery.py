"""Journal recovery never reuses a seq a consumer has seen, never discards ferry.db's rows, and
moves stray segments aside (issue 10 #3, #13b), through the real ferryd and ferry.

Run: cd tests/fault && FERRYD=... FERRY=... PYTHONPATH=$PWD/../integration python3 -m unittest -v test_recovery
"""

import json
import os
import sqlite3
import unittest

import ferry_harness as h

# Default retention (segments stay up to journal.max_bytes), 4 KiB segments, a quick store.
CONFIG = ('[journal]\nsegment_size = 4096\n'
          '[store]\nbatch_interval = "20ms"\nbatch_events = 50\n')


def count_rows(d):
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(d.state_dir, "ferry.db"), uri=True)
    try:
        return (con.execute("SELECT count(*), min(seq), max(seq) FROM events").fetchone(),
                con.execute("SELECT value FROM meta WHERE key = 'cursor'").fetchone()[0])
    finally:
        con.close()


class RecoveryTest(unittest.TestCase):
    def start_with_200(self):
        d = h.Daemon(config=CONFIG)
        self.addCleanup(d.close)
        d.start()
        with d.client() as c:
            for i in range(200):
                self.assertEqual(c.ack(h.make_event(payload={"i": i, "pad": "x" * 100}))
                                 ["last_seq"], i + 1)
        d.wait_for(lambda st: st["store"]["cursor"] == 200, "the store to apply 200")
        d.kill()  # no clean stop: the high-water file does not know seq 200
        self.assertEqual(count_rows(d), ((200, 1, 200), 200))
        return d

    def assert_continues_at_201(self, d, segments_end):
        st = d.status()
        self.assertEqual(st["journal"]["recovery"]["segments_end_seq"], segments_end)
        self.assertEqual(st["journal"]["recovery"]["next_seq"], 201)
        self.assertEqual(st["journal"]["recovery"]["skipped_seqs"], 200 - segments_end)
        self.assertEqual(st["journal"]["recovery"]["skipped_reason"],
                         "%s/ferry.db has seen seq 200" % d.state_dir)
        self.assertEqual(st["journal"]["last_seq"], 200)
        self.assertEqual(st["store"]["cursor"], 200)
        self.assertEqual(st["store"]["beyond_journal"], 0)  # the journal was opened above it
        self.assertEqual(count_rows(d), ((200, 1, 200), 200))  # nothing moved aside
        self.assertFalse([n for n in os.listdir(d.state_dir) if ".corrupt-" in n])
        with d.client() as c:
            ack = c.ack(h.make_event(kind="after"))
        self.assertEqual((ack["first_seq"], ack["last_seq"]), (201, 201))
        d.wait_for(lambda st: st["store"]["cursor"] == 201, "the store to apply 201")
        self.assertEqual(count_rows(d), ((201, 1, 201), 201))
        log = d.last_log()
        self.assertIn("journal recovery: the segments end at seq %d but %s/ferry.db has seen seq "
                      "200: seqs %d-200 are skipped and never handed out; continuing at seq 201"
                      % (segments_end, d.state_dir, segments_end + 1), log)
        self.assertNotIn("moved it aside", log)

    def test_bit_flip_in_newest_record_keeps_rows_and_seqs(self):
        d = self.start_with_200()
        path = h.last_segment_path(d.state_dir)
        with open(path, "rb") as f:
            data = bytearray(f.read())
        records, end, problem = h.scan_segment(bytes(data))
        self.assertEqual(records[-1].seq, 200)
        data[-10] ^= 0x01  # one bit of the newest record's body
        with open(path, "wb") as f:
            f.write(data)
        d.start()
        self.assertIn("journal recovery: dropped", d.last_log())
        self.assertIn("checksum mismatch", d.last_log())
        self.assert_continues_at_201(d, 199)

    def test_deleted_newest_segment_no_seq_reuse(self):
        d = self.start_with_200()
        path = h.last_segment_path(d.state_dir)
        with open(path, "rb") as f:
            records, _, _ = h.scan_segment(f.read())
        first = records[0].seq
        only = len(h.segment_paths(d.state_dir)) == 1  # retention may have deleted the rest
        os.unlink(path)
        d.start()
        self.assert_continues_at_201(d, 0 if only else first - 1)

    def test_stray_segment_is_moved_aside(self):
        d = h.Daemon(config=CONFIG)
        self.addCleanup(d.close)
        d.start()
        with d.client() as c:
            for i in range(5):
                c.ack(h.make_event(payload={"i": i}))
        self.assertEqual(d.stop(), 0)
        stray = os.path.join(d.state_dir, "journal", "00000000000001000000.seg")
        with open(stray, "wb") as f:
            f.write(b"FERRYJ01")
        d.start()
        self.assertIn("journal recovery: moved a stray segment aside (its name does not "
                      "continue the sequence): %s -> %s.stray-1" % (stray, stray), d.last_log())
        st = d.status()
        self.assertEqual(st["journal"]["last_seq"], 5)
        self.assertEqual(st["journal"]["recovery"]["strays"], ["%s -> %s.stray-1" % (stray, stray)])
        self.assertTrue(os.path.exists(stray + ".stray-1"))
        with d.client() as c:
            self.assertEqual(c.ack(h.make_event())["last_seq"], 6)


class StoreUnavailableTest(unittest.TestCase):
    """#13d: ferryd starts and serves ingest when ferry.db cannot be opened, reports the store
    as failed, and starts it once it opens. Trigger: ferry.db is a directory (open fails with
    SQLITE_CANTOPEN even for root, unlike chmod 000); removing it fixes it."""

    def test_ingest_runs_while_the_store_cannot_open(self):
        d = h.Daemon(config=CONFIG)
        self.addCleanup(d.close)
        os.makedirs(os.path.join(d.state_dir, "ferry.db"))
        d.start()
        self.assertIn("serving ingest without the store and retrying", d.last_log())
        with d.client() as c:
            for i in range(5):
                self.assertEqual(c.ack(h.make_event(payload={"i": i}))["last_seq"], i + 1)
        st = d.status()
        self.assertFalse(st["healthy"])
        self.assertFalse(st["store"]["healthy"])
        self.assertTrue(st["store"]["error"].startswith(
            "I/O error: cannot open %s/ferry.db: " % d.state_dir), st["store"]["error"])
        self.assertIn("store: " + st["store"]["error"], st["problems"])
        self.assertEqual(st["journal"]["last_seq"], 5)
        self.assertTrue(os.path.isdir(os.path.join(d.state_dir, "ferry.db")))  # left alone
        os.rmdir(os.path.join(d.state_dir, "ferry.db"))
        st = d.wait_for(lambda st: st["store"]["cursor"] == 5, "the store to open and catch up")
        self.assertTrue(st["healthy"], st["problems"])
        self.assertIsNone(st["store"]["error"])
        self.assertEqual(count_rows(d), ((5, 1, 5), 5))
        self.assertIn("opened after a failure; applied up to seq 0; catching up", d.last_log())


if __name__ == "__main__":
    unittest.main()
