"""A full disk gives up history before new events (docs/journal-format.md, "Retention", rule 4):
the journal directory is a 1 MiB tmpfs holding segments the store has applied; a ballast file
fills the rest. The journal refuses appends (emits are spooled), retention deletes the segments
every consumer has read, and the journal recovers BY ITSELF with the ballast still there: no
event lost, none unread deleted. Needs root (mount); skips otherwise."""

import errno
import json
import os
import sqlite3
import subprocess
import unittest

import ferry_harness as h
from test_disk_full import spooled_lines

CONFIG = ('[journal]\nsegment_size = 65536\n'
          '[store]\nbatch_interval = "20ms"\n')


class FullDiskRetentionTest(unittest.TestCase):
    def setUp(self):
        self.d = h.Daemon(config=CONFIG)
        self.addCleanup(self.d.close)
        self.journal_dir = os.path.join(self.d.state_dir, "journal")
        os.makedirs(self.journal_dir, mode=0o700)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs",
                            self.journal_dir], capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs (needs root): %s" % r.stderr.strip())
        self.addCleanup(subprocess.run, ["umount", "-l", self.journal_dir])

    def test_a_full_disk_deletes_read_segments_and_the_journal_recovers(self):
        d = self.d
        d.start()
        acked = []
        with d.client() as c:
            for i in range(500):  # ~1.2 KiB each: ~9 segments of 64 KiB
                ev = h.make_event(payload={"i": i, "pad": "x" * 1000})
                c.ack(ev)
                acked.append(ev["id"])
        d.wait_for(lambda st: st["store"]["cursor"] == 500, "the store to apply 500")
        st = d.status()
        self.assertEqual((st["journal"]["oldest_seq"], st["journal"]["deleted_segments"]), (1, 0))
        segments = st["journal"]["segments"]
        self.assertGreater(segments, 5)

        path = os.path.join(self.journal_dir, "ballast")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\1" * 4096)
        except OSError as e:
            self.assertEqual(e.errno, errno.ENOSPC)
        finally:
            os.close(fd)

        spool = os.path.join(d.state_dir, "spool")
        emitted = 0
        while spooled_lines(spool) < 1 and emitted < 200:
            r = d.emit("--source", "full", "--kind", "emit", "--data",
                       json.dumps({"n": emitted, "pad": "y" * 4000}))
            self.assertEqual(r.returncode, 0)
            emitted += 1
        self.assertGreater(spooled_lines(spool) + emitted, 0)
        # The ballast stays; the journal recovers because retention made room.
        st = d.wait_for(lambda st: st["journal"]["healthy"] and st["journal"]["recoveries"] >= 1,
                        "the journal to recover with the ballast still there")
        self.assertTrue(os.path.exists(path))
        self.assertGreater(st["journal"]["deleted_segments"], 0)
        self.assertGreater(st["journal"]["oldest_seq"], 1)
        self.assertEqual(st["lost_events"], 0)
        self.assertRegex(d.log(), r"journal: the disk is full; deleted \d+ segment\(s\) every "
                                  r"consumer had read \(seqs up to \d+\) to make room for new events")
        # Every emit, acked or spooled and imported after the recovery, is stored once.
        def rows():
            con = sqlite3.connect("file:%s?mode=ro" % os.path.join(d.state_dir, "ferry.db"),
                                  uri=True)
            try:
                return con.execute("SELECT seq, id, source FROM events ORDER BY seq").fetchall()
            finally:
                con.close()
        d.wait_for(lambda st: len([r for r in rows() if r[2] == "full"]) >= emitted and
                   st["store"]["cursor"] == st["journal"]["last_seq"], "the spool import")
        got = rows()
        ids = [i for _, i, _ in got]
        for event_id in acked:
            self.assertEqual(ids.count(event_id), 1, event_id)
        self.assertEqual(len([r for r in got if r[2] == "full"]), emitted)
        self.assertEqual([s for s, _, _ in got], list(range(1, len(got) + 1)))


if __name__ == "__main__":
    unittest.main()
