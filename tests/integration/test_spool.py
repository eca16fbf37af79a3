"""The spool: `ferry emit` falls back to <state_dir>/spool when ferryd is down or hung, and
ferryd imports those events exactly once (dedupe by id), removes the files once durable,
skips and counts torn lines, and leaves files of live writers alone."""

import json
import os
import signal
import socket
import stat
import subprocess
import threading
import time
import unittest

import ferry_harness as h


class SpoolTest(unittest.TestCase):
    def setUp(self):
        self.d = h.Daemon().start()
        self.spool = os.path.join(self.d.state_dir, "spool")

    def tearDown(self):
        self.d.close()

    def emit(self, n, *extra):
        start = time.monotonic()
        r = self.d.emit("--source", "stest", "--kind", "n", "--data", json.dumps({"n": n}), *extra)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        self.assertLess(time.monotonic() - start, 30)  # hang guard only
        return r

    def spool_files(self):
        if not os.path.isdir(self.spool):
            return []
        return sorted(n for n in os.listdir(self.spool) if not n.endswith(".rejected"))

    def wait_imported(self):
        return self.d.wait_for(lambda st: st["spool"]["pending_files"] == 0 and
                               st["ingest"]["connections"] <= 1, "the spool to be imported")

    def assert_each_once(self, count):
        events = [r.body for r in self.d.journal()]
        self.assertEqual(len({e["id"] for e in events}), len(events), "duplicate ids")
        self.assertEqual(sorted(e["payload"]["n"] for e in events), list(range(count)))

    def down_status(self):
        r = h.run_ferry(["status"], self.d.env())
        self.assertEqual(r.returncode, 3)
        rj = h.run_ferry(["status", "--json"], self.d.env())
        self.assertEqual(rj.returncode, 3)
        return r.stdout, json.loads(rj.stdout)

    def test_daemon_down_200_emits_imported_once(self):
        self.assertEqual(self.d.stop(), 0)
        for n in range(200):
            self.emit(n)
        out, js = self.down_status()
        self.assertTrue(out.startswith("ferryd is not running"), out)
        self.assertIn("  spool    200 file(s), 200 event(s) waiting to be imported\n", out)
        self.assertEqual(js["spool"], {"pending_files": 200, "pending_events": 200})
        self.assertEqual(stat.S_IMODE(os.stat(self.spool).st_mode), 0o700)
        for name in self.spool_files():
            self.assertRegex(name, r"^\d{19}-\d+-[0-9a-f]{12}\.ndjson$")
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.spool, name)).st_mode), 0o600)
        self.d.start()
        st = self.wait_imported()
        self.assertEqual(st["spool"]["events_imported"], 200)
        self.assertEqual(st["spool"]["files_imported"], 200)
        self.assertEqual(self.spool_files(), [])
        self.assert_each_once(200)

    def test_concurrent_writers(self):
        self.assertEqual(self.d.stop(), 0)
        threads = [threading.Thread(target=lambda k=k: [self.emit(k * 20 + i) for i in range(20)])
                   for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(self.spool_files()), 160)
        self.d.start()
        self.wait_imported()
        self.assert_each_once(160)

    def test_new_files_imported_while_running(self):
        # A spool file that appears while ferryd runs (a client whose ack was late) is
        # picked up through inotify, not only at start.
        self.assertEqual(self.d.stop(), 0)
        self.emit(0)
        [name] = self.spool_files()
        with open(os.path.join(self.spool, name)) as f:
            line = f.read()
        os.unlink(os.path.join(self.spool, name))
        self.d.start()
        tmp = os.path.join(self.spool, ".x.part")
        with open(tmp, "w") as f:
            f.write(line)
        os.rename(tmp, os.path.join(self.spool, name))
        self.d.wait_for(lambda st: st["spool"]["events_imported"] == 1, "the import")
        self.wait_imported()
        self.assert_each_once(1)

    def test_stopped_daemon_nothing_lost_nothing_duplicated(self):
        self.d.proc.send_signal(signal.SIGSTOP)
        try:
            for n in range(20):
                self.emit(n, "--timeout-ms", "50")
            self.assertEqual(len(self.spool_files()), 20)
        finally:
            self.d.proc.send_signal(signal.SIGCONT)
        # Every frame reached the socket before the clients gave up: ferryd appends them on
        # resume, and drops each spooled copy (or the live one, if the import came first).
        st = self.d.wait_for(lambda st: st["spool"]["pending_files"] == 0 and
                             st["ingest"]["duplicates_total"] + st["spool"]["duplicates"] == 20,
                             "the late events and their spooled copies")
        self.assertEqual(st["journal"]["last_seq"], 20)
        self.assert_each_once(20)

    def test_acked_event_also_spooled_is_stored_once_after_restart(self):
        # The late-ack case across a restart: the journal has the event, the spool has its
        # copy. The dedupe window is rebuilt from the journal's tail at start.
        r = self.d.emit("--source", "stest", "--kind", "n", "--data", '{"n":0}', "--strict",
                        "--print-ack", "--timeout-ms", "5000")
        self.assertEqual(r.stdout, "1\n")
        self.assertEqual(self.d.stop(), 0)
        [rec] = self.d.journal()
        os.makedirs(self.spool, exist_ok=True)
        with open(os.path.join(self.spool, "0000000000000000001-1-aaaaaaaaaaaa.ndjson"), "w") as f:
            f.write(json.dumps({"v": 1, "event": rec.body}) + "\n")
        self.emit(1)
        self.d.start()
        st = self.wait_imported()
        self.assertEqual((st["spool"]["duplicates"], st["spool"]["events_imported"]), (1, 1))
        self.assert_each_once(2)

    def test_torn_line_skipped_and_counted_live_writer_left_alone(self):
        self.assertEqual(self.d.stop(), 0)
        self.emit(0)
        self.emit(1)
        names = self.spool_files()
        with open(os.path.join(self.spool, names[0])) as f:
            line0 = f.read()
        with open(os.path.join(self.spool, names[1])) as f:
            line1 = f.read()
        os.unlink(os.path.join(self.spool, names[1]))
        # A writer killed mid-write: its .tmp file holds one whole line and a torn one.
        dead = subprocess.Popen(["true"])
        dead.wait()
        with open(os.path.join(self.spool, ".%d-deadbeef0000.tmp" % dead.pid), "w") as f:
            f.write(line1 + line0[:len(line0) // 2])
        # A complete file whose last line lost its newline, and garbage.
        with open(os.path.join(self.spool, "0000000000000000002-2-bbbbbbbbbbbb.ndjson"), "w") as f:
            f.write('{"v":1,"event":{"id":"ab')
        with open(os.path.join(self.spool, "0000000000000000003-3-cccccccccccc.ndjson"), "w") as f:
            f.write('not an event\n')
        # A writer that still runs (this test's pid): not imported, not removed.
        live = os.path.join(self.spool, ".%d-livelivelive.tmp" % os.getpid())
        with open(live, "w") as f:
            f.write(line0)
        self.d.start()
        st = self.d.wait_for(lambda st: st["spool"]["files_imported"] == 3 and
                             st["spool"]["files_rejected"] == 1, "the import")
        self.assertEqual((st["spool"]["torn_lines"], st["spool"]["invalid_lines"]), (2, 1))
        self.assertEqual(st["spool"]["events_imported"], 2)
        self.assertEqual((st["spool"]["pending_files"], st["spool"]["pending_events"]), (1, 1))
        self.assertEqual(sorted(self.spool_files() + [n for n in os.listdir(self.spool)
                                                       if n.endswith(".rejected")]),
                         sorted([os.path.basename(live),
                                 "0000000000000000003-3-cccccccccccc.ndjson.rejected"]))
        self.assertIn("is torn", self.d.last_log())
        self.assert_each_once(2)
        os.unlink(live)



IS_ROOT = os.geteuid() == 0
NOBODY = 65534


def spool_line(payload):
    return json.dumps({"v": 1, "event": h.make_event("stest", "hostile", payload)}) + "\n"


def connect_when_up(d):
    """A RawClient to `d` (spawned) as soon as its socket accepts."""
    deadline = time.monotonic() + h.HANG_GUARD_S
    while True:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.connect(d.socket)
            return h.RawClient(d.socket)
        except (FileNotFoundError, ConnectionRefusedError):
            if d.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("ferryd did not come up; log:\n" + d.log())
            time.sleep(0.01)


class HostileSpoolTest(unittest.TestCase):
    """Issue 10 #5 and #6: entries in spool/ that are not regular files of ferryd's user (a
    FIFO, a symlink, a directory, another uid's file) are moved aside unread, with one log line
    each; ferryd and `ferry status` never block on them; the good files are imported."""

    def setUp(self):
        self.d = h.Daemon()
        self.addCleanup(self.d.close)
        self.spool = os.path.join(self.d.state_dir, "spool")
        os.makedirs(self.spool, mode=0o700)
        os.chmod(self.d.state_dir, 0o700)

    def path(self, n, tag):
        return os.path.join(self.spool, "%019d-%d-%s.ndjson" % (n, n, tag * 12))

    def test_fifo_symlink_dir_and_foreign_file_moved_aside_good_file_imported(self):
        fifo = self.path(1, "a")
        os.mkfifo(fifo, 0o600)
        outside = os.path.join(self.d.root, "outside.ndjson")
        with open(outside, "w") as f:
            f.write(spool_line({"from": "symlink target"}))
        link = self.path(2, "b")
        os.symlink(outside, link)
        directory = self.path(3, "c")
        os.mkdir(directory)
        good = self.path(5, "e")
        with open(good, "w") as f:
            f.write(spool_line({"from": "good"}))
        hostile = {fifo: "is a FIFO, not a regular file",
                   link: "is a symbolic link, not a regular file",
                   directory: "is a directory, not a regular file"}
        if IS_ROOT:
            foreign = self.path(4, "d")
            with open(foreign, "w") as f:
                f.write(spool_line({"from": "another uid"}))
            os.chown(foreign, NOBODY, NOBODY)
            hostile[foreign] = "belongs to uid %d, not to ferryd's uid 0" % NOBODY
        else:
            print("test_spool: not root: the other-uid spool file is not tried")

        # `ferry status` with ferryd down does not block on the FIFO either.
        r = h.run_ferry(["status", "--json"], self.d.env(), timeout=10)
        self.assertEqual(r.returncode, 3)
        self.assertEqual(json.loads(r.stdout)["spool"], {"pending_files": 1, "pending_events": 1})

        self.d.start()  # answers status: the io thread is not stuck in open()
        r = self.d.emit("--source", "stest", "--kind", "live", "--durable", "--strict",
                        "--timeout-ms", "5000")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        st = self.d.wait_for(lambda st: st["spool"]["events_imported"] == 1 and
                             st["spool"]["pending_files"] == 0, "the good file's import")
        self.assertEqual(st["spool"]["files_rejected"], len(hostile))
        self.assertEqual(st["spool"]["files_imported"], 1)
        payloads = sorted(json.dumps(r.body.get("payload")) for r in self.d.journal())
        self.assertEqual(payloads, sorted([json.dumps({"from": "good"}), "null"]))
        self.assertEqual(sorted(os.listdir(self.spool)),
                         sorted(os.path.basename(p) + ".rejected" for p in hostile))
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo + ".rejected").st_mode))
        self.assertTrue(os.path.islink(link + ".rejected"))
        log = self.d.log()
        for p, why in hostile.items():
            line = "warning: spool: %s %s; not read, moved aside to %s.rejected" % (p, why, p)
            self.assertEqual(log.count(line), 1, log)
        # A restart finds nothing more to do, and still answers.
        self.d.restart()
        self.assertEqual(self.d.status()["spool"]["files_rejected"], 0)
        self.assertEqual(len(self.d.journal()), 2)

    def test_fifo_dropped_in_while_running_does_not_stall(self):
        self.d.start()
        fifo = self.path(1, "a")
        os.mkfifo(fifo, 0o600)
        os.rename(fifo, fifo)  # no-op; the rescan (or inotify on a real rename) finds it
        tmp = os.path.join(self.spool, ".x.fifo")
        os.mkfifo(tmp, 0o600)
        os.rename(tmp, self.path(2, "b"))  # IN_MOVED_TO *.ndjson: a scan at once
        st = self.d.wait_for(lambda st: st["spool"]["files_rejected"] == 2, "the FIFOs moved aside")
        self.assertEqual(st["spool"]["pending_files"], 0)
        r = self.d.emit("--source", "stest", "--kind", "live", "--durable", "--strict",
                        "--timeout-ms", "5000")
        self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_status_answers_while_a_huge_spool_file_is_imported(self):
        """#10: counting the spool is the importer thread's job; status never reads files,
        and the import hands the io thread bounded slices, so status answers all along."""
        n = 50000
        pad = "x" * 120
        with open(self.path(1, "a"), "w") as f:
            f.write("".join(spool_line({"n": i, "pad": pad}) for i in range(n)))
        self.d.spawn()
        worst = 0.0
        seen = set()
        deadline = time.monotonic() + h.HANG_GUARD_S * 2
        with connect_when_up(self.d) as c:
            while True:
                t = time.monotonic()
                st = c.status()
                worst = max(worst, time.monotonic() - t)
                sp = st["spool"]
                seen.add((sp["pending_files"], sp["pending_events"]))
                if sp["pending_files"] == 0 and sp["events_imported"] == n:
                    break
                self.assertLess(time.monotonic(), deadline, "import did not finish: %r" % sp)
                time.sleep(0.005)
        # Before the importer counted the file: (0, 0); then the exact count until removal.
        self.assertLessEqual(seen, {(0, 0), (1, n)})
        self.assertIn((1, n), seen)
        self.assertLess(worst, 1.0, "a status took %.3f s during the import" % worst)
        print("\nspool import of %d events: worst status latency %.1f ms" % (n, worst * 1000))
        self.assertEqual(len(self.d.journal()), n)


if __name__ == "__main__":
    unittest.main()
