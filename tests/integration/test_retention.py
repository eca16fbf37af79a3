"""Journal retention through the real binaries (docs/journal-format.md, "Retention"): the journal
is kept up to `journal.max_bytes` (and `journal.max_age`) whether or not its consumers have read
it; the cap deletes the oldest segments first, even unread ones, and counts every lost event
(total and per consumer), `ferry status` exits 1 until `--ack-lost`, the counts survive a
restart; max_age deletes only what every consumer has read; `ferry tail --from` and a rebuilt
ferry.db cover exactly the kept events; a sink that is down holds its segments below the cap
and is charged the loss over it; a tail whose segments are deleted under it skips forward with
a note.

The consumer is ferryd's test hook `[journal] test_hold_consumer = "NAME"`: a registered
consumer whose cursor moves only when a STATUS_REQ carries {"test_consumer_cursor": N}
(docs/operations.md, "Retention"). Retention runs after every segment roll, after every flush
over the cap and on that request, so the reply already shows its effect; what waits on the
store or a clock polls status with a deadline.
"""

import json
import os
import re
import signal
import socket
import time
import unittest

import ferry_harness as h
from test_sinks import sink_toml
from test_store import FAST, read_db, wait_store_caught_up
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

    def test_segments_a_consumer_has_read_stay_until_the_cap(self):
        # Before issue 12 a segment went as soon as every cursor was past it.
        emit_batches(self.d, 300, batch=50, payload_bytes=100)
        st = self.d.status()
        self.assertGreater(st["journal"]["segments"], 5)
        before = journal_files(self.d)
        self.assertEqual((st["journal"]["oldest_seq"], st["journal"]["deleted_segments"]), (1, 0))
        self.assertEqual(holder(st), {"name": "holder", "cursor": 0, "lost": 0})

        for cursor in (150, 300):
            st = set_cursor(self.d, cursor)  # runs retention before it answers
            self.assertEqual((st["journal"]["oldest_seq"], st["journal"]["deleted_segments"],
                              st["journal"]["segments"]), (1, 0, len(before)))
            self.assertEqual(journal_files(self.d), before)
            self.assertEqual((st["lost_events"], holder(st)["lost"], st["healthy"]), (0, 0, True))
            self.check_journal_figures(st)
        self.assertEqual(status_rc(self.d)[0], 0)

        # Over the cap the oldest go first. The holder reads everything at once (cursor far
        # ahead), so nothing is lost.
        set_cursor(self.d, 10**9)
        seen = set(before)
        for start in range(300, 1500, 100):
            emit_batches(self.d, 100, batch=4, payload_bytes=900, start=start)
            seen.update(journal_files(self.d))
        st = self.d.status()
        oldest = st["journal"]["oldest_seq"]
        self.assertGreater(oldest, 1)
        self.assertLessEqual(st["journal"]["bytes"], CAP)
        # Exactly the files named below the oldest kept seq are gone.
        self.assertEqual(journal_files(self.d),
                         sorted(p for p in seen if int(os.path.basename(p)[:20]) >= oldest))
        self.assertEqual((st["lost_events"], holder(st)["lost"]), (0, 0))
        self.check_journal_figures(st)

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
        # Reading on loses nothing more, and what it read stays (under the cap).
        segments = st["journal"]["segments"]
        st = set_cursor(self.d, st["journal"]["last_seq"])
        self.assertEqual((st["lost_events"], st["journal"]["segments"],
                          st["journal"]["oldest_seq"]), (oldest - 1 - 400, segments, oldest))
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


def iso_utc(ns):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + ".%03dZ" % (
        ns // 10**6 % 1000)


def segment_bytes(d):
    """Sizes of the segment files now (a file deleted while listing is skipped)."""
    sizes = []
    for path in journal_files(d):
        try:
            sizes.append(os.path.getsize(path))
        except FileNotFoundError:
            pass
    return sizes


def tail_seqs(d, *args):
    r = h.run_ferry(["tail", "--json"] + list(args), d.env())
    return r, [json.loads(line) for line in r.stdout.splitlines()]


def consumer(st, name):
    [c] = [c for c in st["consumers"] if c["name"] == name]
    return c


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def emit_rounds(test, d, start, total, check=None):
    """Emits ~1.1 KiB events 64 at a time (in batches of 4, about one 4 KiB segment each),
    waits for the store to apply each round, and calls check(status) after it."""
    seq = start
    while seq < start + total:
        emit_batches(d, 64, batch=4, payload_bytes=900, start=seq)
        seq += 64
        st = wait_store_caught_up(d)
        test.assertEqual(st["journal"]["last_seq"], seq)
        if check:
            check(st)
    return seq


STORE_CONFIG = FAST + '[journal]\nsegment_size = 4096\nmax_bytes = "1MiB"\n'


class KeepUntilTheCapTest(unittest.TestCase):
    def test_applied_segments_stay_until_the_cap_and_tail_and_rebuild_cover_what_is_kept(self):
        d = h.Daemon(config=STORE_CONFIG)
        self.addCleanup(d.close)
        d.start()
        largest = [0]
        under_cap = []  # journal bytes while nothing had been deleted yet

        def check(st):
            sizes = segment_bytes(d)
            largest[0] = max(largest[0], max(sizes))
            # On disk: never more than the cap plus one segment; after a flush: the cap.
            self.assertLessEqual(sum(sizes), CAP + largest[0])
            self.assertLessEqual(st["journal"]["bytes"], CAP)
            if st["journal"]["deleted_segments"] == 0:
                # The store applied everything, yet every segment is still there.
                self.assertEqual(st["journal"]["oldest_seq"], 1)
                self.assertEqual([r.seq for r in d.journal()],
                                 list(range(1, st["journal"]["last_seq"] + 1)))
                under_cap.append(st["journal"]["bytes"])

        last = emit_rounds(self, d, 0, 64 * 24, check)  # ~1.7 MB
        st = d.status()
        j = st["journal"]
        oldest = j["oldest_seq"]
        self.assertGreater(oldest, 1)
        self.assertGreater(j["deleted_segments"], 0)
        # Deletion began only once the journal was about to pass the cap (a round is ~72 KB).
        self.assertGreater(under_cap[-1], CAP - 100000)
        records = d.journal()
        self.assertEqual([r.seq for r in records], list(range(oldest, last + 1)))
        self.assertEqual((j["max_bytes"], j["max_age_s"], j["last_seq"]), (CAP, None, last))
        self.assertEqual(j["bytes"], sum(segment_bytes(d)))
        self.assertEqual(j["oldest_received_ns"], records[0].received_ns)
        self.assertEqual(j["oldest_time"], iso_utc(records[0].received_ns))
        self.assertEqual(st["consumers"], [{"name": "store", "cursor": last, "lost": 0}])
        self.assertEqual((st["lost_events"], st["healthy"]), (0, True))

        # `ferry tail --from <oldest kept seq>` returns exactly the kept events.
        r, items = tail_seqs(d, "--from", str(oldest))
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual([(i["seq"], i["id"]) for i in items],
                         [(r.seq, r.body["id"]) for r in records])
        # From 1: the same events, and a note for the seqs retention deleted.
        r, items = tail_seqs(d, "--from", "1")
        self.assertEqual(r.returncode, 0)
        self.assertEqual([i["seq"] for i in items], [r.seq for r in records])
        self.assertRegex(r.stderr, r"seqs 1\.\.%d are no longer in the journal" % (oldest - 1))

        # Delete ferry.db and restart: the store is rebuilt with exactly the kept events.
        rows, _, cursor = read_db(d)
        self.assertEqual(([row[0] for row in rows], int(cursor)), (list(range(1, last + 1)), last))
        kept_rows = [row for row in rows if row[0] >= oldest]
        self.assertEqual(d.stop(), 0)
        kept = d.journal()
        self.assertEqual(kept, records)
        db = os.path.join(d.state_dir, "ferry.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        d.start()
        st = wait_store_caught_up(d)
        rows, _, cursor = read_db(d)
        self.assertEqual(rows, kept_rows)
        self.assertEqual([row[0] for row in rows], [r.seq for r in kept])
        self.assertEqual((int(cursor), st["store"]["rows"]), (last, len(kept)))
        self.assertEqual(st["store"]["skipped_seqs"], oldest - 1)
        self.assertIn("rebuilding %s from the journal" % db, d.last_log())
        self.assertEqual(d.journal(), kept)  # the rebuild deleted nothing
        self.assertEqual((st["lost_events"], st["healthy"]), (0, True))


AGE_CONFIG = NO_STORE + """
[journal]
segment_size = 4096
max_age = "1h"
test_hold_consumer = "holder"
"""


class MaxAgeTest(unittest.TestCase):
    def test_max_age_deletes_old_segments_every_consumer_has_read(self):
        with h.daemon(config=AGE_CONFIG) as d:
            emit_batches(d, 80, batch=4, payload_bytes=900)
            segs = h.segment_paths(d.state_dir)
            self.assertGreater(len(segs), 10)
            two_hours_ago = time.time() - 7200
            for _, path in segs[:6]:
                os.utime(path, (two_hours_ago, two_hours_ago))

            # Old but unread: kept.
            st = set_cursor(d, 0)
            self.assertEqual((st["journal"]["oldest_seq"], st["journal"]["deleted_segments"],
                              st["journal"]["max_age_s"]), (1, 0, 3600.0))
            # Old and read: gone; the next one is old but unread, and holds the rest.
            st = set_cursor(d, segs[3][0] - 1)
            self.assertEqual((st["journal"]["oldest_seq"], st["journal"]["deleted_segments"]),
                             (segs[3][0], 3))
            # Read, but only the old ones go.
            st = set_cursor(d, 80)
            self.assertEqual((st["journal"]["oldest_seq"], st["journal"]["deleted_segments"]),
                             (segs[6][0], 6))
            self.assertEqual(h.segment_paths(d.state_dir), segs[6:])
            self.assertEqual((st["lost_events"], holder(st)["lost"], st["healthy"]), (0, 0, True))
            self.assertEqual([r.seq for r in d.journal()], list(range(segs[6][0], 81)))

    def test_max_age_applies_on_reload(self):
        with h.daemon(config=AGE_CONFIG.replace('max_age = "1h"\n', "")) as d:
            emit_batches(d, 40, batch=4, payload_bytes=900)
            segs = h.segment_paths(d.state_dir)
            self.assertGreater(len(segs), 5)
            two_hours_ago = time.time() - 7200
            for _, path in segs[:3]:
                os.utime(path, (two_hours_ago, two_hours_ago))
            st = set_cursor(d, 40)  # read, and old, but no age limit yet
            self.assertEqual((st["journal"]["deleted_segments"], st["journal"]["max_age_s"]),
                             (0, None))
            with open(d.config_path, "w") as f:
                f.write(AGE_CONFIG)
            d.proc.send_signal(signal.SIGHUP)
            st = d.wait_for(lambda st: st["journal"]["deleted_segments"] == 3,
                            "the reloaded max_age to delete the three old segments")
            self.assertEqual((st["journal"]["oldest_seq"], st["journal"]["max_age_s"],
                              st["lost_events"]), (segs[3][0], 3600.0, 0))
            self.assertEqual(h.segment_paths(d.state_dir), segs[3:])

    def test_a_short_max_age_empties_the_journal_of_what_the_store_applied(self):
        config = FAST + '[journal]\nsegment_size = 4096\nmax_age = "1s"\n'
        with h.daemon(config=config) as d:
            emit_batches(d, 80, batch=4, payload_bytes=900)
            wait_store_caught_up(d)
            # The once-a-second run deletes every closed segment once it is a second old.
            st = d.wait_for(lambda st: st["journal"]["segments"] == 1,
                            "max_age to delete the closed segments")
            [(first, _)] = h.segment_paths(d.state_dir)
            self.assertEqual(st["journal"]["oldest_seq"], first)
            self.assertGreater(first, 1)
            self.assertEqual([r.seq for r in d.journal()], list(range(first, 81)))
            self.assertEqual((st["lost_events"], consumer(st, "store")["lost"]), (0, 0))
            rows, _, _ = read_db(d)
            self.assertEqual([row[0] for row in rows], list(range(1, 81)))


class SinkDownTest(unittest.TestCase):
    def test_a_sink_that_is_down_holds_its_segments_until_the_cap_then_loses(self):
        config = (FAST + '[journal]\nsegment_size = 4096\nmax_bytes = "1MiB"\nmax_age = "1h"\n'
                  'test_hold_consumer = "holder"\n\n' +
                  sink_toml("down", "http://127.0.0.1:%d/" % free_port(), backoff_max="1s"))
        d = h.Daemon(config=config)
        self.addCleanup(d.close)
        d.start()
        set_cursor(d, 10**9)  # the holder has read everything, always
        last = emit_rounds(self, d, 0, 192)
        files = journal_files(d)
        two_hours_ago = time.time() - 7200
        for path in files[:-1]:
            os.utime(path, (two_hours_ago, two_hours_ago))
        # Old, read by the store and the holder, not by the sink: kept.
        st = set_cursor(d, 10**9)
        self.assertEqual((st["journal"]["oldest_seq"], st["journal"]["deleted_segments"]), (1, 0))
        self.assertEqual(journal_files(d), files)
        self.assertEqual(consumer(st, "sink:down"), {"name": "sink:down", "cursor": 0, "lost": 0})

        # Over the cap the oldest go anyway, and the sink is charged exactly what it never read.
        last = emit_rounds(self, d, last, 64 * 22)
        rc, st = status_rc(d)
        oldest = st["journal"]["oldest_seq"]
        self.assertGreater(oldest, 1)
        self.assertLessEqual(st["journal"]["bytes"], CAP)
        self.assertEqual(consumer(st, "sink:down"),
                         {"name": "sink:down", "cursor": 0, "lost": oldest - 1})
        self.assertEqual((consumer(st, "store")["lost"], holder(st)["lost"]), (0, 0))
        self.assertEqual((rc, st["healthy"], st["lost_events"]), (1, False, oldest - 1))
        log = d.log()
        self.assertRegex(log, r"lost by: sink:down \(\d+\)\.")
        ranges = [(int(a), int(b)) for a, b in re.findall(r"deleted seqs (\d+)\.\.(\d+)", log)]
        self.assertEqual(sum(b - a + 1 for a, b in ranges), oldest - 1)
        r = h.run_ferry(["status"], d.env())
        self.assertIn("consumer sink:down at seq 0, %d lost" % (oldest - 1), r.stdout)


class DefaultCapTest(unittest.TestCase):
    def test_the_default_cap_is_a_tenth_of_the_file_system_at_most_1_gib(self):
        with h.daemon(config=NO_STORE) as d:
            fs = os.statvfs(d.state_dir)
            want = min(max(fs.f_blocks * fs.f_frsize // 10, 1 << 20), 1 << 30)
            self.assertEqual(d.status()["journal"]["max_bytes"], want)
            self.assertIn("journal retention: keeping up to %d bytes (journal.max_bytes unset: "
                          "10%% of the file system, at most 1 GiB); no age limit" % want, d.log())


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
