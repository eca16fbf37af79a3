"""Journal read faults through the real ferryd (issue 10 #2 and #4).

#2: EIO on reading one segment (FERRY_TEST_FAULTS=fail=read:EIO:<segment>:<after>:<times>) is
an error, not the end of the journal: the store and tail never move past the unread events,
`ferry status` shows the problem while it lasts, and once the fault clears every event is in
the store exactly once.

#4: a bit flipped in a middle segment is reported, never skipped in silence: a warning in the
log with the segment, offset, reason and the seqs lost, a status `problems` entry, a `skipped`
item in tail with the exact range and reason, and the store holds exactly the other seqs.
"""

import json
import os
import re
import sqlite3
import unittest

import ferry_harness as h
from test_sinks import sink_toml
from test_tail import TailProcess, emit_batches
from upstream_server import UpstreamServer

SEGMENT = 4096
EVENTS = 200
# The test consumer (cursor 0) keeps retention from deleting the segments the store has read,
# so a tail from seq 1 finds every segment (docs/operations.md, "Retention").
JOURNAL = '[journal]\nsegment_size = %d\ntest_hold_consumer = "holder"\n' % SEGMENT
NO_STORE = "[store]\nenabled = false\n" + JOURNAL
WITH_STORE = JOURNAL


def store_seqs(d):
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(d.state_dir, "ferry.db"), uri=True)
    try:
        return [row[0] for row in con.execute("SELECT seq FROM events ORDER BY seq")]
    finally:
        con.close()


def raw_tail(d, start):
    """Every TAIL_ITEM of a non-follow tail from `start`, up to and including the end item."""
    items = []
    with d.client() as c:
        c.send_frame(h.TAIL_REQ, {"v": 1, "from": start, "follow": False})
        while True:
            t, body = c.recv_frame()
            if t != h.TAIL_ITEM:
                raise AssertionError("expected TAIL_ITEM, got %d %r" % (t, body))
            items.append(body)
            if body.get("end"):
                return items


class ReadFaultCase(unittest.TestCase):
    def journal_of(self, events, config=WITH_STORE):
        """A daemon whose journal holds `events` events in 4 KiB segments, stopped; the store
        is off, so a restart with it on rebuilds ferry.db by reading every segment."""
        d = h.Daemon(config=NO_STORE)
        self.addCleanup(d.close)
        d.start()
        # Batches never straddle a segment (a roll comes first), so small ones keep segments
        # near their 4 KiB size.
        acks = emit_batches(d, events, batch=10, payload_bytes=60)
        self.assertEqual((acks[0][0], acks[-1][1]), (1, events))
        self.assertEqual(d.stop(), 0)
        segs = h.segment_paths(d.state_dir)
        self.assertGreater(len(segs), 6)
        with open(d.config_path, "w") as f:
            f.write(config)
        return d, segs


class CorruptMiddleSegmentTest(ReadFaultCase):
    def test_a_flipped_bit_is_reported_with_the_exact_seqs_everywhere(self):
        d, segs = self.journal_of(EVENTS)
        # Flip one bit in the body of the third record of a middle segment.
        index = len(segs) // 2
        first, path = segs[index]
        next_first = segs[index + 1][0]
        with open(path, "rb") as f:
            data = bytearray(f.read())
        records, end, problem = h.scan_segment(bytes(data))
        self.assertEqual((problem, end, records[0].seq), (None, len(data), first))
        offset = 8 + sum(h.RECORD_HEADER.size + len(r.body) for r in records[:2])
        data[offset + h.RECORD_HEADER.size + 5] ^= 0x10
        with open(path, "wb") as f:
            f.write(data)
        lost_first, lost_last = first + 2, next_first - 1
        name = h.segment_name(first)
        reason = "checksum mismatch at offset %d" % offset
        lost = "seqs %d-%d unreadable in segment %s (%s)" % (lost_first, lost_last, name, reason)

        d.start()
        st = d.wait_for(lambda s: s["store"]["cursor"] == EVENTS, "the store to catch up")
        expected = [s for s in range(1, EVENTS + 1) if not lost_first <= s <= lost_last]
        self.assertEqual(store_seqs(d), expected)
        self.assertEqual(st["store"]["skipped_seqs"], lost_last - lost_first + 1)
        self.assertEqual(st["store"]["read_error"], None)
        self.assertEqual(st["healthy"], False)
        self.assertEqual(st["problems"], [
            "journal: %s; the damaged bytes stay in %s until retention deletes it"
            % (lost, path)])
        dropped = len(data) - offset
        self.assertIn("warning: store: journal damage: %s; %d bytes dropped; reading goes on "
                      "with the next segment" % (lost, dropped), d.log())

        # The tail says which seqs it cannot deliver and why, in the shape of retention's note.
        items = raw_tail(d, 1)
        self.assertEqual([i["seq"] for i in items if "seq" in i], expected)
        skipped = [i for i in items if "skipped" in i]
        self.assertEqual(skipped, [{"v": 1, "skipped": {
            "from": lost_first, "to": lost_last,
            "reason": "damaged journal: %s in segment %s" % (reason, name)}}])
        at = [i.get("seq") or i.get("skipped", {}).get("from") for i in items[:-1]]
        self.assertEqual(at, sorted(at))  # the note comes where the seqs would have been
        self.assertIn("warning: tail #", d.log())

        r = h.run_ferry(["tail", "--from", "1", "--json"], d.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([json.loads(line)["seq"] for line in r.stdout.splitlines()], expected)
        self.assertEqual(r.stderr, "ferry: seqs %d..%d cannot be read (damaged journal: %s in "
                         "segment %s); skipping them\n" % (lost_first, lost_last, reason, name))

        r = h.run_ferry(["status"], d.env())
        self.assertEqual(r.returncode, 1)
        self.assertIn("  problem: journal: " + lost, r.stdout)
        # Acknowledged like events lost to the byte cap: healthy again, the count stays.
        r = h.run_ferry(["status", "--ack-lost", "--json"], d.env())
        self.assertEqual(r.returncode, 0, r.stdout)
        st = json.loads(r.stdout)
        self.assertEqual((st["healthy"], st["problems"]), (True, []))
        self.assertEqual(st["store"]["skipped_seqs"], lost_last - lost_first + 1)


class ReadErrorTest(ReadFaultCase):
    def test_eio_on_a_middle_segment_holds_the_store_and_tail_then_recovers(self):
        d, segs = self.journal_of(EVENTS)
        index = len(segs) // 2
        first, path = segs[index]
        name = h.segment_name(first)
        times = 6
        faults = "fail=read:EIO:%s:0:%d" % (name, times)
        d.extra_env = {"FERRY_TEST_FAULTS": faults}
        d.start()
        self.assertIn("test fault injection armed: " + faults, d.last_log())
        tail = TailProcess(d, "--from", "1", "--json")
        self.addCleanup(tail.stop)

        # While reads fail: status shows it, and the store never passes the unread events.
        error = "cannot read %s at offset 0: Input/output error" % path
        seen = []

        def check(st):
            self.assertLessEqual(st["store"]["cursor"], first - 1)
            if st["store"]["read_error"] is not None:
                self.assertEqual(st["store"]["read_error"], error)
                self.assertEqual(st["store"]["error"], error)
                self.assertEqual(st["store"]["healthy"], False)
                self.assertEqual(st["healthy"], False)
                self.assertIn("store: %s; retrying" % error, st["problems"])
                seen.append(st)
            return len(seen) >= 2

        d.wait_for(check, "status to show the store's read error")

        # The fault clears after `times` failed reads; everything then arrives, once. The
        # readers share the failing reads: the tail may still be in its backoff (its problem
        # listed) when the store has caught up, and clears at its next read.
        st = d.wait_for(lambda s: s["store"]["cursor"] == EVENTS and not s["problems"],
                        "the store to catch up and every reader to read again")
        self.assertEqual(st["store"]["read_error"], None)
        self.assertEqual(st["store"]["skipped_seqs"], 0)
        self.assertEqual(st["problems"], [])
        self.assertEqual(st["healthy"], True)
        self.assertEqual(store_seqs(d), list(range(1, EVENTS + 1)))
        log = d.log()
        self.assertIn("warning: store: %s; retrying with backoff (the cursor stays at seq %d)"
                      % (error, first - 1), log)
        self.assertRegex(log, r"info: store: journal reads succeed again after \d+ retr")
        self.assertNotIn("damage", log)
        self.assertNotIn("magic", log)

        self.assertEqual(tail.proc.wait(timeout=h.HANG_GUARD_S), 0)
        self.assertEqual([json.loads(line)["seq"] for line in tail.lines()],
                         list(range(1, EVENTS + 1)))
        err = tail.stderr()
        self.assertNotIn("skipping", err)
        # The tail may or may not have met the fault (the store and tail share its budget).
        for line in err.splitlines():
            self.assertEqual(line, "ferry: waiting at seq %d: %s; ferryd retries the read"
                             % (first, error))
        self.assertEqual(raw_tail(d, 1)[-1], {"v": 1, "end": True, "next": EVENTS + 1})


    def test_eio_holds_a_sink_then_it_delivers_every_event_once(self):
        srv = UpstreamServer().start()
        self.addCleanup(srv.close)
        d, segs = self.journal_of(EVENTS, config=NO_STORE + sink_toml("up", srv.url()))
        first, path = segs[len(segs) // 2]
        # Six failures: the backoff (100 ms doubling) holds the error in status for ~3 s, so a
        # status poll on a loaded sanitizer run cannot miss it (three gave a ~0.3 s window).
        faults = "fail=read:EIO:%s:0:6" % h.segment_name(first)
        d.extra_env = {"FERRY_TEST_FAULTS": faults}
        d.start()
        error = "cannot read %s at offset 0: Input/output error" % path
        seen = []

        def check(st):
            [sink] = st["sinks"]
            if "sink up: %s; retrying" % error in st["problems"]:
                self.assertLessEqual(sink["cursor"], first - 1)
                self.assertEqual(st["healthy"], False)
                self.assertEqual(sink["last_error"]["message"], "journal read failed: " + error)
                seen.append(st)
            return len(seen) >= 1

        d.wait_for(check, "status to show the sink's read error")
        st = d.wait_for(lambda s: s["sinks"][0]["cursor"] == EVENTS and not s["problems"],
                        "the sink to catch up")
        self.assertEqual(st["healthy"], True)
        delivered = srv.wait_for_events(EVENTS, timeout=h.HANG_GUARD_S)
        self.assertEqual(sorted(e["seq"] for e in delivered), list(range(1, EVENTS + 1)))
        self.assertEqual(srv.duplicates(), {})
        self.assertIn("warning: sink up: %s; retrying with backoff (the cursor stays at seq %d)"
                      % (error, first - 1), d.log())
        self.assertRegex(d.log(), r"info: sink up: journal reads succeed again after \d+ retr")

if __name__ == "__main__":
    unittest.main()
