"""Disk full (issue 10, "The fault campaign / Disk full"): the journal directory is a small
tmpfs that a ballast file fills. Emits exit 0 (refused events are spooled by the client, into
<state>/spool on another file system, so the spool itself has room), ferryd stays up and
reports the journal failed with the reason, and when the ballast is deleted the journal
recovers BY ITSELF (a fresh segment, no restart): status healthy again, new events acked, and
every acked event is in the journal exactly once. Needs root (mount); skips otherwise."""

import errno
import json
import os
import sqlite3
import subprocess
import unittest

import ferry_harness as h

CONFIG = '[journal]\nsegment_size = 65536\n[store]\nbatch_interval = "20ms"\n'


def spooled_lines(spool):
    if not os.path.isdir(spool):
        return 0
    n = 0
    for name in os.listdir(spool):
        with open(os.path.join(spool, name), "rb") as f:
            n += f.read().count(b"\n")
    return n


class DiskFullTest(unittest.TestCase):
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

    def fill(self):
        path = os.path.join(self.journal_dir, "ballast")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\1" * 4096)
        except OSError as e:
            self.assertEqual(e.errno, errno.ENOSPC)
        finally:
            os.close(fd)
        return path

    def test_disk_full_then_space_returns(self):
        d = self.d
        d.start()
        acked = []
        with d.client() as c:
            for i in range(20):
                ev = h.make_event(payload={"i": i})
                c.ack(ev)
                acked.append(ev["id"])
        ballast = self.fill()

        # Emits while the disk is full exit 0 and say nothing; the refused ones are spooled
        # (the first few may still fit in the last page of the active segment).
        spool = os.path.join(d.state_dir, "spool")
        emitted = 0
        while spooled_lines(spool) < 3:
            self.assertLess(emitted, 100, "no emit was spooled")
            r = d.emit("--source", "diskfull", "--kind", "emit", "--data",
                       json.dumps({"n": emitted}))
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
            emitted += 1
        st = d.status()
        self.assertFalse(st["healthy"])
        self.assertFalse(st["journal"]["healthy"])
        self.assertIn("No space left on device", st["journal"]["error"])
        self.assertTrue(any(p.startswith("journal refuses appends: ") and
                            "No space left on device" in p for p in st["problems"]),
                        st["problems"])
        self.assertIsNone(d.proc.poll())  # ferryd stays up

        os.unlink(ballast)
        st = d.wait_for(lambda st: st["journal"]["healthy"], "the journal to recover by itself")
        self.assertEqual(st["journal"]["recoveries"], 1)
        self.assertIn("journal recovered from", d.last_log())
        with d.client() as c:
            for i in range(5):
                ev = h.make_event(payload={"after": i})
                c.ack(ev)
                acked.append(ev["id"])
        st = d.wait_for(lambda st: st["healthy"] and
                        st["store"]["cursor"] == st["journal"]["last_seq"], "the store")
        # ferry.db holds every event.
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(d.state_dir, "ferry.db"), uri=True)
        rows = con.execute("SELECT seq, id FROM events ORDER BY seq").fetchall()
        con.close()
        ids = [i for _, i in rows]
        for event_id in acked:
            self.assertEqual(ids.count(event_id), 1, event_id)
        # Every emit, acked or spooled and imported after the recovery (the importer's
        # periodic rescan finds the files it skipped while the journal was failed), is stored
        # exactly once.
        def diskfull_ns():
            con = sqlite3.connect("file:%s?mode=ro" % os.path.join(d.state_dir, "ferry.db"),
                                  uri=True)
            try:
                return sorted(json.loads(p)["n"] for (p,) in con.execute(
                    "SELECT payload FROM events WHERE source = 'diskfull'"))
            finally:
                con.close()
        st = d.wait_for(lambda st: len(diskfull_ns()) >= emitted and
                        st["store"]["cursor"] == st["journal"]["last_seq"], "the spool import")
        self.assertEqual(diskfull_ns(), list(range(emitted)))
        # The status above can predate the last imports (the db was read after it): wait for
        # the store to meet the journal again before comparing the two.
        st = d.wait_for(lambda st: st["store"]["cursor"] == st["journal"]["last_seq"],
                        "the store to catch up with the last import")
        con = sqlite3.connect("file:%s?mode=ro" % os.path.join(d.state_dir, "ferry.db"), uri=True)
        rows = con.execute("SELECT seq, id FROM events ORDER BY seq").fetchall()
        con.close()
        # Gap-free across the failure: the refused events' seqs were given back.
        self.assertEqual([s for s, _ in rows], list(range(1, len(rows) + 1)))
        journal_seqs = [r.seq for r in h.read_journal(d.state_dir)]
        self.assertEqual(journal_seqs[-1], st["journal"]["last_seq"])


if __name__ == "__main__":
    unittest.main()
