"""Journal write and fdatasync failures, injected into the real ferryd with FERRY_TEST_FAULTS:
clients get ERROR journal_failed, `ferry status` says the daemon is degraded and why, and
everything acked before the failure stays intact on disk."""

import json
import os
import re
import unittest

import ferry_harness as h

WRITE_ERROR = "I/O error: write %s: No space left on device"
SYNC_ERROR = "I/O error: fdatasync %s: Input/output error"


class FaultCase(unittest.TestCase):
    def daemon(self, faults, config=None):
        d = h.Daemon(config=config, env={"FERRY_TEST_FAULTS": faults})
        self.addCleanup(d.close)
        d.start()
        self.assertIn("warning: test fault injection armed: " + faults, d.log())
        return d

    def assert_degraded(self, d, problem):
        r = h.run_ferry(["status"], d.env())
        self.assertEqual((r.returncode, r.stderr), (1, ""))
        lines = r.stdout.splitlines()
        self.assertTrue(lines[0].endswith("  DEGRADED"), lines[0])
        self.assertEqual(lines[1], "  problem: journal refuses appends: " + problem)
        r = h.run_ferry(["status", "--json"], d.env())
        self.assertEqual(r.returncode, 1)
        st = json.loads(r.stdout)
        self.assertEqual(st["healthy"], False)
        self.assertEqual(st["problems"], ["journal refuses appends: " + problem])
        self.assertEqual(st["journal"]["healthy"], False)
        self.assertEqual(st["journal"]["error"], problem)
        return st

    def assert_segment_holds(self, d, ids):
        """The last segment is exactly the magic plus whole records for `ids`, in order."""
        path = h.last_segment_path(d.state_dir)
        with open(path, "rb") as f:
            data = f.read()
        records, end, problem = h.scan_segment(data)
        self.assertEqual((problem, end), (None, len(data)))  # ends on a whole record
        self.assertEqual([r.seq for r in records], list(range(1, len(ids) + 1)))
        self.assertEqual([json.loads(r.body)["id"] for r in records], ids)

    def spooled_ids(self, d):
        spool = os.path.join(d.state_dir, "spool")
        ids = []
        for name in sorted(os.listdir(spool)) if os.path.isdir(spool) else []:
            if name.endswith(".ndjson"):
                with open(os.path.join(spool, name)) as f:
                    ids += [json.loads(l)["event"]["id"] for l in f.read().splitlines()]
        return ids

    def assert_refused_emit(self, d, message):
        """`ferry emit` is refused, says so with --strict, and spools the event either way
        (issue 10, defect 7). Returns the ids in the spool."""
        before = len(self.spooled_ids(d))
        r = d.emit("--source", "fault", "--kind", "emit", "--strict", "--timeout-ms", "5000")
        self.assertEqual((r.returncode, r.stdout), (1, ""))
        self.assertRegex(r.stderr, "^ferry: ferryd refused the event: journal_failed: " +
                         re.escape(message) + r"; spooled to .*/spool/\d+-\d+-[0-9a-f]+\.ndjson\n$")
        r = d.emit("--source", "fault", "--kind", "emit", "--timeout-ms", "5000")
        self.assertEqual((r.returncode, r.stderr), (0, ""))  # a hook is never failed without --strict
        ids = self.spooled_ids(d)
        self.assertEqual(len(ids), before + 2)
        return ids

    def restart_clean(self, d, ids, spooled=()):
        """Stops the failed daemon (exit 1), restarts it without faults, checks recovery: the
        journal holds `ids`, then the `spooled` events, imported from the spool."""
        self.assertEqual(d.stop(), 1)
        self.assertIn("error: stopped with a failed journal: ", d.log())
        d.extra_env = {}
        d.start()
        log = d.last_log()
        self.assertNotIn("journal recovery", log)
        self.assertNotIn("fault injection", log)
        self.assertIn("last seq %d" % len(ids), log)
        total = len(ids) + len(spooled)
        d.wait_for(lambda s: s["journal"]["last_seq"] == total and
                   s["spool"]["pending_files"] == 0, "the spool import")
        got = [r.body["id"] for r in d.journal()]
        self.assertEqual(got[:len(ids)], ids)
        self.assertEqual(sorted(got[len(ids):]), sorted(spooled))
        with d.client() as c:
            self.assertEqual(c.ack(h.make_event())["last_seq"], total + 1)
        self.assertEqual(h.run_ferry(["status"], d.env()).returncode, 0)


class WriteFailureTest(FaultCase):
    N = 5

    def test_write_fails_after_n_flushes(self):
        d = self.daemon("write_fail_after=%d" % self.N)
        seg = h.last_segment_path(d.state_dir)
        err = WRITE_ERROR % seg
        acked = []
        with d.client() as c, d.client() as other:
            # One event per flush: a sequential client waits for each ack.
            for i in range(self.N):
                ev = h.make_event(kind="ok", payload=i)
                self.assertEqual(c.ack(ev), {"first_seq": i + 1, "last_seq": i + 1,
                                             "durable": False})
                acked.append(ev["id"])
            # The next flush fails: the event is refused, not acked.
            ftype, body = c.send_event(h.make_event(kind="lost"))
            self.assertEqual((ftype, body), (h.ERROR, {
                "code": "journal_failed", "fatal": False,
                "message": "journal write failed; event not stored: " + err}))
            # The failure is sticky, for this connection and every other one; neither is
            # closed, and status still answers on them.
            for cl in (c, other):
                ftype, body = cl.send_event(h.make_event(kind="after"))
                self.assertEqual((ftype, body), (h.ERROR, {
                    "code": "journal_failed", "fatal": False,
                    "message": "journal refuses appends: " + err}))
                ftype, body = cl.send_batch([h.make_event(kind="after-batch")] * 3)
                self.assertEqual((ftype, body["code"]), (h.ERROR, "journal_failed"))
            self.assertEqual(other.status()["journal"]["last_seq"], self.N)
        self.assertIn("error: journal write failed, refusing further events: " + err, d.log())
        st = self.assert_degraded(d, err)
        self.assertEqual(st["journal"]["last_seq"], self.N)
        self.assertEqual(st["ingest"]["events_total"], self.N)
        self.assertEqual(st["ingest"]["rejected_total"], 0)  # the frames were fine
        spooled = self.assert_refused_emit(d, "journal refuses appends: " + err)
        # The half-written record was cut: the segment ends on the last acked record.
        self.assert_segment_holds(d, acked)
        self.restart_clean(d, acked, spooled)

    def test_write_fails_on_the_first_flush(self):
        d = self.daemon("write_fail_after=0")
        err = WRITE_ERROR % h.last_segment_path(d.state_dir)
        r = d.emit("--source", "fault", "--kind", "first", "--strict", "--timeout-ms", "5000")
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, "^ferry: ferryd refused the event: journal_failed: journal "
                                   "write failed; event not stored: %s; spooled to .*\\.ndjson\n$"
                                   % re.escape(err))
        self.assert_degraded(d, err)
        self.assertEqual(os.path.getsize(h.last_segment_path(d.state_dir)), 8)
        self.restart_clean(d, [], self.spooled_ids(d))

    def test_failed_batch_is_refused_whole(self):
        d = self.daemon("write_fail_after=1")
        with d.client() as c:
            batch = [h.make_event(kind="b1") for _ in range(4)]
            self.assertEqual(c.send_batch(batch), (h.ACK, {"first_seq": 1, "last_seq": 4,
                                                           "durable": False}))
            ftype, body = c.send_batch([h.make_event(kind="b2") for _ in range(4)])
            self.assertEqual((ftype, body["code"], body["fatal"]),
                             (h.ERROR, "journal_failed", False))
        st = self.assert_degraded(d, WRITE_ERROR % h.last_segment_path(d.state_dir))
        self.assertEqual((st["journal"]["last_seq"], st["ingest"]["events_total"]), (4, 4))
        self.assert_segment_holds(d, [e["id"] for e in batch])
        self.restart_clean(d, [e["id"] for e in batch])


class SyncFailureTest(FaultCase):
    N = 4

    def test_fsync_always_fails_after_n_syncs(self):
        d = self.daemon("fsync_fail_after=%d" % self.N, config='[journal]\nfsync = "always"\n')
        seg = h.last_segment_path(d.state_dir)
        err = SYNC_ERROR % seg
        acked = []
        with d.client() as c:
            for i in range(self.N):
                ev = h.make_event(kind="ok", payload=i)
                # Under "always" every ack is durable, asked or not.
                self.assertEqual(c.ack(ev), {"first_seq": i + 1, "last_seq": i + 1,
                                             "durable": True})
                acked.append(ev["id"])
            # Written, but its fdatasync fails: the durable ack becomes an error.
            unsynced = h.make_event(kind="unsynced")
            ftype, body = c.send_event(unsynced)
            self.assertEqual((ftype, body), (h.ERROR, {
                "code": "journal_failed", "fatal": False,
                "message": "fdatasync failed; event not durable: " + err}))
            ftype, body = c.send_event(h.make_event(kind="after"), durable=True)
            self.assertEqual((ftype, body), (h.ERROR, {
                "code": "journal_failed", "fatal": False,
                "message": "journal refuses appends: " + err}))
        self.assertIn("error: journal fdatasync failed, refusing further events: " + err, d.log())
        st = self.assert_degraded(d, err)
        self.assertEqual(st["journal"]["durable_seq"], self.N)
        self.assertEqual(st["journal"]["last_seq"], self.N + 1)
        spooled = self.assert_refused_emit(d, "journal refuses appends: " + err)
        # The acked records are intact. The refused one reached the page cache before its
        # fdatasync failed, so it is there too, whole: a client that retries it is deduped by
        # id later (at-least-once), and nothing is half-written.
        self.assert_segment_holds(d, acked + [unsynced["id"]])
        self.restart_clean(d, acked + [unsynced["id"]], spooled)

    def test_durable_ack_fails_with_fsync_never(self):
        # With fsync "never", only durable requests sync, so the count is exact.
        d = self.daemon("fsync_fail_after=2", config='[journal]\nfsync = "never"\n')
        err = SYNC_ERROR % h.last_segment_path(d.state_dir)
        ids = []
        with d.client() as c:
            for durable in (False, True, False, False, True):
                ev = h.make_event(kind="mixed")
                ack = c.ack(ev, durable=durable or None)
                self.assertEqual(ack["durable"], durable)
                ids.append(ev["id"])
            st = d.status()
            self.assertEqual((st["journal"]["last_seq"], st["journal"]["durable_seq"]), (5, 5))
            ev = h.make_event(kind="third-sync")
            ftype, body = c.send_event(ev, durable=True)
            self.assertEqual((ftype, body), (h.ERROR, {
                "code": "journal_failed", "fatal": False,
                "message": "fdatasync failed; event not durable: " + err}))
            ids.append(ev["id"])
        st = self.assert_degraded(d, err)
        self.assertEqual((st["journal"]["last_seq"], st["journal"]["durable_seq"]), (6, 5))
        self.assert_segment_holds(d, ids)
        r = d.emit("--source", "fault", "--kind", "emit", "--durable", "--strict",
                   "--timeout-ms", "5000")
        self.assertEqual(r.returncode, 1)
        self.restart_clean(d, ids, self.spooled_ids(d))


class FaultSpecTest(unittest.TestCase):
    def test_malformed_spec_is_refused(self):
        d = h.Daemon(env={"FERRY_TEST_FAULTS": "write_fail_after=soon"})
        self.addCleanup(d.close)
        d.spawn()
        self.assertEqual(d.proc.wait(timeout=h.HANG_GUARD_S), 2)
        self.assertIn("critical: FERRY_TEST_FAULTS is malformed: write_fail_after=soon", d.log())


if __name__ == "__main__":
    unittest.main()
