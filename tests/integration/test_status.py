"""`ferry status` (human and --json) and ferryd's clean stop on SIGTERM."""

import json
import os
import re
import signal
import unittest

import ferry_harness as h


def journal_bytes(state_dir):
    return sum(os.path.getsize(p) for _, p in h.segment_paths(state_dir))


class StatusTest(unittest.TestCase):
    def setUp(self):
        # Small segments so a few events span several of them; fsync never so durable_seq
        # moves only when something asks.
        self.d = h.Daemon(config='[journal]\nfsync = "never"\nsegment_size = 4096\n')
        self.d.start()

    def tearDown(self):
        self.d.close()

    def test_json_keys_and_values(self):
        # No store here: as a journal consumer it lets retention delete the segments this test
        # compares with the status figures, while it reads them.
        self.d.close()
        self.d = h.Daemon(config='[store]\nenabled = false\n'
                                 '[journal]\nfsync = "never"\nsegment_size = 4096\n')
        self.d.start()
        with self.d.client() as c:
            for i in range(40):
                c.ack(h.make_event(kind="status", payload={"i": i, "pad": "p" * 200}))
            c.send_raw(b"\x00\x00\x00\x00")
            self.assertEqual(c.recv_frame()[1]["code"], "empty_frame")
        segments = h.segment_paths(self.d.state_dir)
        self.assertGreater(len(segments), 1)
        # Every segment closed by a roll is synced, whatever the policy; the sync thread
        # reports it asynchronously.
        self.d.wait_for(lambda st: st["journal"]["durable_seq"] >= segments[-1][0] - 1,
                        "the rolled segments to be synced")
        r = h.run_ferry(["status", "--json"], self.d.env())
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout.count("\n"), 1)
        st = json.loads(r.stdout)
        for key in ("daemon", "journal", "ingest", "lost_events"):
            self.assertIn(key, st)
        self.assertEqual(st["daemon"]["pid"], self.d.proc.pid)
        self.assertRegex(st["daemon"]["version"], r"^\d+\.\d+\.\d+$")
        self.assertIsInstance(st["daemon"]["uptime_s"], float)
        self.assertGreater(st["daemon"]["uptime_s"], 0)
        self.assertEqual(st["daemon"]["socket"], self.d.socket)
        self.assertEqual(st["daemon"]["state_dir"], self.d.state_dir)

        j = st["journal"]
        self.assertEqual(j["last_seq"], 40)
        self.assertGreaterEqual(j["durable_seq"], segments[-1][0] - 1)
        self.assertLessEqual(j["durable_seq"], 40)
        self.assertEqual(j["oldest_seq"], 1)
        self.assertEqual(j["segments"], len(segments))
        self.assertEqual(j["bytes"], journal_bytes(self.d.state_dir))
        self.assertEqual(j["fsync"], "never")

        i = st["ingest"]
        self.assertEqual(i["events_total"], 40)
        self.assertIsInstance(i["events_per_s"], (int, float))
        self.assertEqual(i["rejected_total"], 1)
        self.assertGreaterEqual(i["connections"], 1)  # at least this status request's own
        self.assertEqual(st["lost_events"], 0)
        self.assertEqual(st["healthy"], True)
        self.assertEqual(st["problems"], [])

    def test_empty_journal(self):
        st = self.d.status()
        self.assertEqual((st["journal"]["last_seq"], st["journal"]["durable_seq"],
                          st["journal"]["oldest_seq"], st["journal"]["segments"],
                          st["journal"]["bytes"]), (0, 0, 0, 1, 8))
        self.assertEqual(st["ingest"]["events_total"], 0)

    def test_durable_seq_follows_durable_acks(self):
        with self.d.client() as c:
            c.ack(h.make_event())
            c.ack(h.make_event())
            self.assertEqual(self.d.status()["journal"]["durable_seq"], 0)
            self.assertEqual(c.ack(h.make_event(), durable=True),
                             {"first_seq": 3, "last_seq": 3, "durable": True})
            self.assertEqual(self.d.status()["journal"]["durable_seq"], 3)

    def test_events_per_s(self):
        with self.d.client() as c:
            c.send_batch([h.make_event() for _ in range(100)])
        # The rate is sampled once a second: wait for a sample that sees the batch.
        st = self.d.wait_for(lambda st: st["ingest"]["events_per_s"] > 0, "a rate sample")
        self.assertLessEqual(st["ingest"]["events_per_s"], 100 / 0.5)

    def test_human(self):
        with self.d.client() as c:
            c.ack(h.make_event())
        # The per-source line counts what ferry.db holds: wait for the store.
        self.d.wait_for(lambda st: st["store"]["cursor"] == 1, "the store")
        r = h.run_ferry(["status"], self.d.env())
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"^ferryd \d+\.\d+\.\d+  pid %d  up \S+  healthy$"
                         % self.d.proc.pid)
        self.assertEqual(lines[1], "  socket   " + self.d.socket)
        self.assertEqual(lines[2], "  state    " + self.d.state_dir)
        self.assertEqual(lines[3], "  journal  last seq 1, durable 0, oldest 1; %d B in 1 "
                                   "segment(s); fsync never" % journal_bytes(self.d.state_dir))
        self.assertRegex(lines[4], r"^  ingest   1 events \(\d+\.\d/s now\); \d+ connection\(s\) "
                                   r"open; 0 frame\(s\) rejected$")
        self.assertEqual(lines[5], "  spool    0 file(s), 0 event(s) waiting to be imported")
        self.assertEqual(lines[6], "  lost     0 event(s)")
        self.assertRegex(lines[7], r"^  store    applied up to seq 1 \(lag 0\); 1 row\(s\), "
                                   r"\d+\.\d KiB; last batch 1 event\(s\)$")
        # The store writer is the journal's one consumer (it holds segments for retention).
        self.assertRegex(lines[8], r"^  consumer store at seq 1, 0 lost$")
        # One line per source (tests/integration/test_sources.py has the exact figures).
        self.assertRegex(lines[9], r"^  source   test: 1 event\(s\) today, last \d\d:\d\d:\d\d, "
                                   r"0 open session\(s\)$")
        self.assertEqual(lines[10], "  sinks    none configured")
        self.assertEqual(len(lines), 11)

    def test_not_running(self):
        self.assertEqual(self.d.stop(), 0)
        r = h.run_ferry(["status"], self.d.env())
        self.assertEqual(r.returncode, 3)
        self.assertEqual(r.stderr, "")
        self.assertEqual(r.stdout, "ferryd is not running (no answer on %s: connect %s: No such "
                                   "file or directory)\n"
                                   "  spool    0 file(s), 0 event(s) waiting to be imported\n"
                                   % (self.d.socket, self.d.socket))
        r = h.run_ferry(["status", "--json"], self.d.env())
        self.assertEqual(r.returncode, 3)
        self.assertEqual(json.loads(r.stdout), {
            "running": False, "answering": False, "socket": self.d.socket,
            "error": "ferryd is not running (no answer on %s: connect %s: No such file or "
                     "directory)" % (self.d.socket, self.d.socket),
            "spool": {"pending_files": 0, "pending_events": 0}})

    def test_not_answering(self):
        # A ferryd that holds the socket but does not answer (SIGSTOP) is not "not running".
        self.d.proc.send_signal(signal.SIGSTOP)
        try:
            r = h.run_ferry(["status", "--timeout-ms", "300"], self.d.env())
            self.assertEqual((r.returncode, r.stderr), (3, ""))
            lines = r.stdout.splitlines()
            self.assertRegex(lines[0], r"^ferryd (\(pid %d\) )?is not answering on %s"
                             % (self.d.proc.pid, re.escape(self.d.socket)))
            self.assertEqual(lines[1:], ["  spool    0 file(s), 0 event(s) waiting to be "
                                         "imported"])
            r = h.run_ferry(["status", "--json", "--timeout-ms", "300"], self.d.env())
            self.assertEqual(r.returncode, 3)
            st = json.loads(r.stdout)
            self.assertEqual((st["running"], st["answering"], st["socket"], st["error"]),
                             (True, False, self.d.socket, lines[0]))
        finally:
            self.d.proc.send_signal(signal.SIGCONT)
        self.d.wait_for(lambda st: st["healthy"], "ferryd to answer again")
        self.assertEqual(h.run_ferry(["status"], self.d.env()).returncode, 0)

    def test_client_problems(self):
        st = self.d.status()
        log = os.path.join(self.d.state_dir, "client-errors.log")
        self.assertEqual(st["client_errors"], {"count": 0, "file": log, "last": None,
                                               "last_time": None, "last_what": None})
        for bad in (["--bogus"], ["--source", "s", "--kind", "k", "--data", "{}", "--stdin"]):
            r = self.d.emit(*bad)
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        st = self.d.status()
        self.assertTrue(st["healthy"])  # the client's problems are reported, not ferryd's
        c = st["client_errors"]
        self.assertEqual((c["count"], c["file"]), (2, log))
        self.assertRegex(c["last_time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertRegex(c["last_what"], r"^\S+\[\d+\]: emit: use only one of --data, --stdin "
                                         r"and --argv-json; event dropped$")
        self.assertEqual(c["last"], c["last_time"] + " " + c["last_what"])
        r = h.run_ferry(["status"], self.d.env())
        self.assertEqual(r.returncode, 0)
        self.assertIn("  client problems: 2 (last: %s at %s); see %s\n"
                      % (c["last_what"], c["last_time"], log), r.stdout)

    def test_status_flags(self):
        r = h.run_ferry(["status", "--bogus"], self.d.env())
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, 'ferry: status: unknown argument "--bogus"\n')
        # --socket overrides the environment.
        env = dict(self.d.env(), FERRY_SOCKET="/nonexistent/ferry.sock")
        r = h.run_ferry(["status", "--json", "--socket", self.d.socket], env)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(json.loads(r.stdout)["daemon"]["pid"], self.d.proc.pid)
        r = h.run_ferry(["status"], env)
        self.assertEqual(r.returncode, 3)


class StopTest(unittest.TestCase):
    def setUp(self):
        self.d = h.Daemon(config='[journal]\nfsync = "never"\n')
        self.d.start()

    def tearDown(self):
        self.d.close()

    def test_sigterm_exits_0_with_the_journal_durable(self):
        for _ in range(25):
            r = self.d.emit("--source", "t", "--kind", "k", "--strict", "--timeout-ms", "5000")
            self.assertEqual(r.returncode, 0, r.stderr)
        st = self.d.status()
        self.assertEqual((st["journal"]["last_seq"], st["journal"]["durable_seq"]), (25, 0))
        self.assertEqual(self.d.stop(signal.SIGTERM), 0)
        log = self.d.log()
        self.assertIn("Terminated: stopping; acking what is in flight", log)
        self.assertIn("stopped cleanly; journal durable up to seq 25", log)
        self.assertFalse(os.path.exists(self.d.socket))
        self.d.start()
        self.assertIn("last seq 25", self.d.last_log())
        st = self.d.status()
        self.assertEqual((st["journal"]["last_seq"], st["journal"]["durable_seq"]), (25, 25))

    def test_sigint_exits_0(self):
        self.assertEqual(self.d.stop(signal.SIGINT), 0)
        self.assertIn("Interrupt: stopping", self.d.log())

    def test_sigterm_with_idle_connections_open(self):
        clients = [self.d.client() for _ in range(3)]
        try:
            for c in clients:
                c.request(h.HELLO, {"v": 1})
            self.assertEqual(self.d.stop(), 0)
            for c in clients:
                c.expect_closed()
        finally:
            for c in clients:
                c.close()
        self.assertNotIn("did not drain", self.d.log())

    def test_sigterm_with_events_in_flight(self):
        events = [h.make_event(kind="inflight", payload=i) for i in range(2000)]
        data = b"".join(h.encode_frame(h.EVENT, {"v": 1, "event": e}) for e in events)
        with self.d.client() as c:
            c.send_raw(data[:len(data) // 2])
            c.recv_frame()  # the daemon is reading this stream
            self.d.proc.send_signal(signal.SIGTERM)
            try:
                c.send_raw(data[len(data) // 2:])
            except (BrokenPipeError, ConnectionResetError):
                pass
            replies = []
            while True:
                try:
                    replies.append(c.recv_frame())
                except h.Closed:
                    break
        self.assertEqual(self.d.proc.wait(timeout=h.HANG_GUARD_S), 0)
        # Acks for a prefix of the stream, then at most refusals, then the close.
        n_acks = 1 + sum(1 for t, _ in replies if t == h.ACK)
        self.assertEqual([t for t, _ in replies[:n_acks - 1]], [h.ACK] * (n_acks - 1))
        for t, body in replies[n_acks - 1:]:
            self.assertEqual((t, body["code"]), (h.ERROR, "shutting_down"))
        self.d.start()
        self.assertEqual([r.body["id"] for r in self.d.journal()],
                         [e["id"] for e in events[:n_acks]])
        self.assertIn("stopped cleanly; journal durable up to seq %d" % n_acks, self.d.log())


if __name__ == "__main__":
    unittest.main()
