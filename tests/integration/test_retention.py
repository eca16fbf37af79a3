"""Journal retention through the real binaries: a consumer holds segments, the byte cap deletes
unread segments and counts every lost event (total and per consumer), `ferry status` exits 1
until `--ack-lost`, the counts survive a restart, and a tail whose segments are deleted under it
skips forward with a note.

The consumer is ferryd's test hook `[journal] test_hold_consumer = "NAME"`: a registered
consumer whose cursor moves only when a STATUS_REQ carries {"test_consumer_cursor": N}
(docs/operations.md, "Retention"). Retention runs after every segment roll and on that request,
so the reply already shows its effect; nothing here waits on a clock.
"""

import json
import os
import re
import signal
import subprocess
import unittest

import ferry_harness as h
from test_tail import TailProcess, emit_batches, wait_until

SEGMENT = 4096
CAP = 1 << 20

# The store writer is a consumer too; these tests pin retention on the test consumer alone.
NO_STORE = "[store]\nenabled = false\n"

CONFIG = NO_STORE + """
[journal]
segment_size = %d
max_bytes = "1MiB"
test_hold_consumer = "holder"
""" % SEGMENT


def journal_files(d):
    return [path for _, path in h.segment_paths(d.state_dir)]


def status_rc(d, *extra):
    r = h.run_ferry(["status", "--json"] + list(extra), d.env())
    return r.returncode, json.loads(r.stdout)


def set_cursor(d, seq):
    with d.client() as c:
        t, body = c.request(h.STATUS_REQ, {"v": 1, "test_consumer_cursor": seq})
        assert t == h.STATUS, body
        return body


def holder(st):
    [c] = [c for c in st["consumers"] if c["name"] == "holder"]
    return c


class RetentionTest(unittest.TestCase):
    def setUp(self):
        self.d = h.Daemon(config=CONFIG)
        self.d.start()

    def tearDown(self):
        self.d.close()

    def check_journal_figures(self, st):
        files = journal_files(self.d)
        self.assertEqual(st["journal"]["segments"], len(files))
        self.assertEqual(st["journal"]["bytes"], sum(os.path.getsize(p) for p in files))
        records = self.d.journal()
        if not records:
            # A batch is never split across segments (issue 10 #9), so after a flush that
            # filled a segment the active one can be empty: it starts at the next seq.
            self.assertEqual(len(files), 1)
            self.assertEqual(st["journal"]["oldest_seq"], st["journal"]["last_seq"] + 1)
            return
        self.assertEqual(st["journal"]["oldest_seq"], records[0].seq)
        self.assertEqual([r.seq for r in records],
                         list(range(records[0].seq, st["journal"]["last_seq"] + 1)))

    def test_a_consumer_holds_segments_until_its_cursor_passes_them(self):
        emit_batches(self.d, 300, batch=50, payload_bytes=100)
        st = self.d.status()
        self.assertGreater(st["journal"]["segments"], 5)
        self.assertEqual(st["journal"]["oldest_seq"], 1)
        self.assertEqual(st["journal"]["deleted_segments"], 0)
        self.assertEqual(holder(st), {"name": "holder", "cursor": 0, "lost": 0})

        st = set_cursor(self.d, 150)
        oldest = st["journal"]["oldest_seq"]
        # Every segment wholly at or below 150 is gone; the one holding 151 stays.
        self.assertGreater(oldest, 1)
        self.assertLessEqual(oldest, 151)
        self.assertGreater(st["journal"]["deleted_segments"], 0)
        names = [int(os.path.basename(p).split(".")[0]) for p in journal_files(self.d)]
        self.assertEqual(names[0], oldest)
        self.assertGreater(names[1], 151)
        self.assertEqual((st["lost_events"], holder(st)["lost"], st["healthy"]), (0, 0, True))
        self.check_journal_figures(st)

        # Past everything: only the active segment remains.
        st = set_cursor(self.d, 300)
        self.assertEqual(st["journal"]["segments"], 1)
        self.assertEqual(st["lost_events"], 0)
        self.check_journal_figures(st)
        self.assertEqual(status_rc(self.d)[0], 0)

    def test_the_byte_cap_deletes_unread_segments_counts_and_alarms_until_acked(self):
        # ~1.5 MiB of records while the consumer reads nothing.
        emit_batches(self.d, 1500, batch=100, payload_bytes=900)
        rc, st = status_rc(self.d)
        self.assertEqual(rc, 1)
        self.assertFalse(st["healthy"])
        self.assertLessEqual(st["journal"]["bytes"], CAP)
        oldest = st["journal"]["oldest_seq"]
        self.assertGreater(oldest, 1)
        # Every seq deleted was unread by the holder (cursor 0): lost == oldest - 1, exactly.
        self.assertEqual(st["lost_events"], oldest - 1)
        self.assertEqual(st["journal"]["lost_events"], oldest - 1)
        self.assertEqual(holder(st)["lost"], oldest - 1)
        self.assertEqual(st["journal"]["acked_lost"], 0)
        self.assertEqual(st["journal"]["max_bytes"], CAP)
        self.assertTrue(any("lost" in p for p in st["problems"]), st["problems"])
        self.check_journal_figures(st)
        log = self.d.log()
        self.assertRegex(log, r"error: journal over its byte cap .* deleted seqs 1\.\.\d+ before "
                              r"every consumer had them; \d+ event\(s\) lost by: holder \(\d+\)")
        ranges = [(int(a), int(b)) for a, b in re.findall(r"deleted seqs (\d+)\.\.(\d+)", log)]
        self.assertEqual(sum(b - a + 1 for a, b in ranges), oldest - 1)

        r = h.run_ferry(["status"], self.d.env())
        self.assertEqual(r.returncode, 1)
        self.assertIn("DEGRADED", r.stdout)
        self.assertIn("consumer holder at seq 0, %d lost" % (oldest - 1), r.stdout)

        rc, st = status_rc(self.d, "--ack-lost")
        self.assertEqual((rc, st["healthy"], st["journal"]["acked_lost"]), (0, True, oldest - 1))
        self.assertEqual(st["lost_events"], oldest - 1)
        self.assertEqual(status_rc(self.d)[0], 0)

        # A restart neither forgets the loss nor raises the alarm again.
        self.d.restart()
        rc, st = status_rc(self.d)
        self.assertEqual((rc, st["lost_events"], st["journal"]["acked_lost"]),
                         (0, oldest - 1, oldest - 1))
        self.assertEqual(holder(st)["lost"], oldest - 1)
        self.check_journal_figures(st)

        # New losses alarm again, and an unacknowledged loss survives a restart.
        emit_batches(self.d, 300, batch=100, payload_bytes=900)
        rc, st = status_rc(self.d)
        self.assertEqual(rc, 1)
        lost2 = st["lost_events"]
        self.assertEqual(lost2, st["journal"]["oldest_seq"] - 1)
        self.d.restart()
        rc, st = status_rc(self.d)
        self.assertEqual((rc, st["lost_events"], st["journal"]["acked_lost"]),
                         (1, lost2, oldest - 1))
        self.assertEqual(status_rc(self.d, "--ack-lost")[0], 0)

    def test_only_seqs_past_the_consumer_cursor_count_as_lost(self):
        emit_batches(self.d, 400, batch=100, payload_bytes=900)  # under the cap
        st = set_cursor(self.d, 400)
        self.assertEqual(st["lost_events"], 0)
        emit_batches(self.d, 1100, batch=100, payload_bytes=900, start=400)
        rc, st = status_rc(self.d)
        oldest = st["journal"]["oldest_seq"]
        self.assertGreater(oldest, 401)
        self.assertEqual((rc, st["lost_events"], holder(st)["lost"]),
                         (1, oldest - 1 - 400, oldest - 1 - 400))
        self.assertRegex(self.d.log(), r"deleted seqs 401\.\.\d+ before every consumer")
        # Reading on loses nothing more, and what it read is simply deleted.
        st = set_cursor(self.d, st["journal"]["last_seq"])
        self.assertEqual((st["lost_events"], st["journal"]["segments"]), (oldest - 1 - 400, 1))
        self.check_journal_figures(st)


class NoConsumerTest(unittest.TestCase):
    def test_without_consumers_only_the_cap_deletes_and_nothing_is_lost(self):
        with h.daemon(config=NO_STORE + '[journal]\nsegment_size = 4096\nmax_bytes = "1MiB"\n') as d:
            emit_batches(d, 300, batch=100, payload_bytes=100)
            st = d.status()
            self.assertEqual((st["journal"]["oldest_seq"], st["journal"]["deleted_segments"]),
                             (1, 0))
            emit_batches(d, 1500, batch=100, payload_bytes=900)
            rc, st = status_rc(d)
            self.assertEqual((rc, st["lost_events"], st["consumers"]), (0, 0, []))
            self.assertGreater(st["journal"]["deleted_segments"], 0)
            self.assertLessEqual(st["journal"]["bytes"], CAP)


class TailUnderRetentionTest(unittest.TestCase):
    def test_a_tail_whose_segments_are_deleted_skips_forward_with_a_note(self):
        with h.daemon(config=NO_STORE + '[journal]\nsegment_size = 4096\nmax_bytes = "1MiB"\n') as d:
            emit_batches(d, 200, batch=100, payload_bytes=900)
            t = TailProcess(d, "-f", "--json", "--from", "1")
            try:
                wait_until(lambda: len(t.lines()) >= 1, "the tail to start")
                t.proc.send_signal(signal.SIGSTOP)
                # Push well over the cap while the tail reads nothing.
                emit_batches(d, 3000, batch=100, payload_bytes=900, start=200)
                st = d.status()
                self.assertGreater(st["journal"]["oldest_seq"], 1000)
                t.proc.send_signal(signal.SIGCONT)
                wait_until(lambda: t.lines() and json.loads(t.lines()[-1])["seq"] == 3200,
                           "the tail to reach the end")
                seqs = [json.loads(line)["seq"] for line in t.lines()]
                self.assertEqual(seqs, sorted(set(seqs)))
                self.assertLess(len(seqs), 3200)
                # Everything from the oldest seq still in the journal was printed.
                self.assertEqual(seqs[-(3200 - st["journal"]["oldest_seq"] + 1):],
                                 list(range(st["journal"]["oldest_seq"], 3201)))
                self.assertRegex(t.stderr(), r"seqs \d+\.\.\d+ are no longer in the journal")
                self.assertEqual(d.status()["lost_events"], 0)  # a tail is not a consumer
            finally:
                t.stop()


if __name__ == "__main__":
    unittest.main()
