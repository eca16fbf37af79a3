"""`ferry flush`, `ferry deadletter` and the sinks section of `ferry status`, and ferryd's
FLUSH_REQ / DEADLETTER_REQ plumbing (docs/sinks.md, docs/protocol.md).

ferryd has no sink threads to answer these requests yet, so three kinds of tests:
- a real ferryd without sinks: the frames' validation and default replies;
- no ferryd at all: `deadletter list` and `purge` on synthesized dead-letter files;
- a fake ferryd (a Python socket server with canned replies): how the client renders what
  sinks report, and what it sends.
"""

import fcntl
import json
import os
import shutil
import socket
import struct
import threading
import time
import unittest

import ferry_harness as h


def entry(sink, seq, status=400, response='{"error":"field kind: not allowed"}', **extra):
    """One dead-letter line as a sink thread writes it (docs/sinks.md "Dead letters")."""
    ev_id = "%032x" % seq
    e = {"time": "2026-11-24T10:00:%02d.123Z" % (seq % 60), "sink": sink, "seq": seq,
         "id": ev_id, "status": status, "response": response,
         "event": {"seq": seq, "received": 1764000000123456789 + seq, "id": ev_id,
                   "ts": 1764000000000000000, "source": "bash", "kind": "command"}}
    e.update(extra)
    return e


def write_lines(path, entries, tail=b""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        for e in entries:
            f.write(json.dumps(e, separators=(",", ":")).encode() + b"\n")
        f.write(tail)


class PlumbingTest(unittest.TestCase):
    """A real ferryd with no sinks configured."""

    @classmethod
    def setUpClass(cls):
        cls.d = h.Daemon()
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def expect_error(self, c, ftype, body, code, message=None):
        t, reply = c.request(ftype, body)
        self.assertEqual(t, h.ERROR, reply)
        if message is None:  # worded by the JSON parser
            self.assertTrue(reply.pop("message"), reply)
            self.assertEqual(reply, {"code": code, "fatal": False})
        else:
            self.assertEqual(reply, {"code": code, "message": message, "fatal": False})

    def test_bad_flush_bodies_get_an_error_and_the_connection_goes_on(self):
        before = self.d.status()["ingest"]["rejected_total"]
        with self.d.client() as c:
            self.expect_error(c, h.FLUSH_REQ, {"v": 1, "wait": "yes"}, "wrong_type",
                              "wait must be a boolean")
            self.expect_error(c, h.FLUSH_REQ, {"v": 1, "timeout_ms": -5}, "wrong_type",
                              "timeout_ms must be an unsigned integer")
            self.expect_error(c, h.FLUSH_REQ, {"v": 1, "sinks": ["a"]}, "unknown_field",
                              '"sinks" is not a field of FLUSH_REQ')
            self.expect_error(c, h.FLUSH_REQ, {"v": 2}, "bad_version",
                              "protocol version 2 is not supported; this build speaks version 1")
            self.expect_error(c, h.FLUSH_REQ, b"{not json", "bad_json")
            self.expect_error(c, h.DEADLETTER_REQ, {"v": 1, "op": "forget"}, "bad_value",
                              'op must be "list", "replay" or "purge"')
            self.expect_error(c, h.DEADLETTER_REQ, {"v": 1}, "missing_field",
                              'op must be "list", "replay" or "purge"')
            # The same connection still takes events, status and a good FLUSH_REQ.
            ev = h.make_event(source="sinkcli", kind="after-bad-flush")
            seq = c.ack(ev)["last_seq"]
            t, body = c.request(h.FLUSH_REQ, {"v": 1, "wait": True, "timeout_ms": 1000})
            self.assertEqual(t, h.FLUSH_RESULT)
            self.assertEqual(body, {"target_seq": seq, "done": True, "timed_out": False,
                                    "sinks": []})
            self.assertEqual(c.status()["daemon"]["pid"], self.d.proc.pid)
        self.assertEqual(self.d.status()["ingest"]["rejected_total"], before + 7)

    def test_replies_stay_in_request_order(self):
        with self.d.client() as c:
            events = [h.make_event(source="sinkcli", kind="order") for _ in range(2)]
            c.send_raw(h.encode_frame(h.FLUSH_REQ, {"v": 1}) +
                       h.encode_frame(h.EVENT, {"v": 1, "event": events[0]}) +
                       h.encode_frame(h.DEADLETTER_REQ, {"v": 1, "op": "replay"}) +
                       h.encode_frame(h.EVENT, {"v": 1, "event": events[1]}) +
                       h.encode_frame(h.FLUSH_REQ, {"v": 1, "wait": False}))
            replies = [c.recv_frame() for _ in range(5)]
        self.assertEqual([t for t, _ in replies],
                         [h.FLUSH_RESULT, h.ACK, h.DEADLETTER_RESULT, h.ACK, h.FLUSH_RESULT])
        self.assertEqual(replies[2][1], {"op": "replay", "sinks": []})
        # The target is the journal's written seq when the request is read: an event sent in
        # the same breath may not be written yet, one whose ACK came back is.
        self.assertLess(replies[0][1]["target_seq"], replies[1][1]["last_seq"])
        self.assertLessEqual(replies[4][1]["target_seq"], replies[3][1]["last_seq"])
        with self.d.client() as c:
            seq = c.ack(h.make_event(source="sinkcli", kind="order"))["last_seq"]
            self.assertEqual(c.request(h.FLUSH_REQ, {"v": 1})[1]["target_seq"], seq)

    def test_named_sink_without_sinks_is_unknown(self):
        with self.d.client() as c:
            self.expect_error(c, h.FLUSH_REQ, {"v": 1, "sink": "central"}, "unknown_sink",
                              'no sink named "central" (no sinks configured)')
            self.expect_error(c, h.DEADLETTER_REQ, {"v": 1, "op": "purge", "sink": "central"},
                              "unknown_sink", 'no sink named "central" (no sinks configured)')
            self.assertEqual(c.request(h.FLUSH_REQ, {"v": 1})[0], h.FLUSH_RESULT)

    def test_cli_without_sinks(self):
        env = self.d.env()
        for args in (["flush"], ["flush", "--wait"], ["flush", "--wait", "--timeout", "5s"]):
            with self.subTest(args=args):
                r = h.run_ferry(args, env)
                self.assertEqual((r.returncode, r.stdout, r.stderr),
                                 (0, "no sinks configured; nothing to flush\n", ""))
        r = h.run_ferry(["flush", "--sink", "central"], env)
        self.assertEqual((r.returncode, r.stdout), (1, ""))
        self.assertEqual(r.stderr, 'ferry flush: no sink named "central" (no sinks configured)\n')
        r = h.run_ferry(["deadletter", "replay"], env)
        self.assertEqual((r.returncode, r.stdout), (0, "no sinks configured; nothing to replay\n"))
        # Through ferryd, purge leaves the files to it (here: it has no sinks to purge).
        path = os.path.join(self.d.state_dir, "deadletter", "old.ndjson")
        write_lines(path, [entry("old", 1)])
        try:
            r = h.run_ferry(["deadletter", "purge"], env)
            self.assertEqual((r.returncode, r.stdout),
                             (0, "no sinks configured; nothing to purge\n"))
            self.assertTrue(os.path.exists(path))
        finally:
            shutil.rmtree(os.path.dirname(path))

    def test_many_requests_on_one_connection(self):
        # The default replies are not left owed: each is answered before the next request.
        with self.d.client() as c:
            for i in range(50):
                t, _ = c.request(h.FLUSH_REQ if i % 2 else h.DEADLETTER_REQ,
                                 {"v": 1} if i % 2 else {"v": 1, "op": "purge"})
                self.assertEqual(t, h.FLUSH_RESULT if i % 2 else h.DEADLETTER_RESULT)


class UsageTest(unittest.TestCase):
    def setUp(self):
        self.root = h.make_tempdir()
        self.env = h.clean_env(FERRY_SOCKET=os.path.join(self.root, "none.sock"),
                               FERRY_STATE_DIR=os.path.join(self.root, "state"), HOME=self.root)

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def test_help_texts(self):
        r = h.run_ferry(["flush", "--help"], self.env)
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: ferry flush [--sink NAME] [--wait] [--timeout DURATION]", r.stdout)
        r = h.run_ferry(["deadletter", "--help"], self.env)
        self.assertEqual(r.returncode, 0)
        for op in ("list", "replay", "purge"):
            self.assertIn("ferry deadletter %s [--sink NAME]" % op, r.stdout)
        r = h.run_ferry(["--help"], self.env)
        self.assertIn("  flush ", r.stdout)
        self.assertIn("  deadletter ", r.stdout)

    def test_bad_usage_exits_2(self):
        for args in (["flush", "--timeout", "soon", "--wait"], ["flush", "--timeout", "0s"],
                     ["flush", "--sink", "../x"], ["flush", "--bogus"], ["deadletter"],
                     ["deadletter", "frobnicate"], ["deadletter", "purge", "--json"],
                     ["deadletter", "list", "--sink", "a/b"]):
            with self.subTest(args=args):
                r = h.run_ferry(args, self.env)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertRegex(r.stderr, r"^ferry (flush|deadletter): ")

    def test_daemon_not_running(self):
        for args in (["flush"], ["flush", "--wait"], ["deadletter", "replay"]):
            with self.subTest(args=args):
                r = h.run_ferry(args, self.env)
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertIn("ferryd is not running (no answer on %s" % self.env["FERRY_SOCKET"],
                              r.stderr)


class DeadletterFilesTest(unittest.TestCase):
    """`deadletter list` and `purge` on files, with no ferryd."""

    def setUp(self):
        self.root = h.make_tempdir()
        self.state = os.path.join(self.root, "state")
        self.dl = os.path.join(self.state, "deadletter")
        self.env = h.clean_env(FERRY_SOCKET=os.path.join(self.root, "none.sock"),
                               FERRY_STATE_DIR=self.state, HOME=self.root)
        self.central = [entry("central", 102), entry("central", 7, status=422,
                                                     response="x" * 300 + "\n\ttail")]
        self.backup = [entry("backup", 55, status=400, response="")]
        write_lines(os.path.join(self.dl, "central.ndjson"), self.central,
                    tail=b'{"time":"2026-11-24T10:01:00Z","sink":"central","seq":1')
        write_lines(os.path.join(self.dl, "backup.ndjson"), self.backup)
        write_lines(os.path.join(self.dl, "backup.replay.ndjson"),
                    [entry("backup", 1), entry("backup", 2)])
        with open(os.path.join(self.dl, "notes.txt"), "w") as f:
            f.write("not a dead-letter file\n")

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def ferry(self, *args):
        return h.run_ferry(list(args), self.env)

    def test_list_human(self):
        r = self.ferry("deadletter", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 6, r.stdout)
        fields = [l.split(None, 5) for l in lines[:3]]
        self.assertEqual([f[:4] for f in fields],
                         [["backup", "55", "%032x" % 55, "400"],
                          ["central", "102", "%032x" % 102, "400"],
                          ["central", "7", "%032x" % 7, "422"]])
        self.assertEqual(fields[0][4], "2026-11-24T10:00:55.123Z")
        self.assertEqual(fields[0][5], "-")  # empty response
        self.assertEqual(fields[1][5], '{"error":"field kind: not allowed"}')
        self.assertEqual(fields[2][5], "x" * 77 + "...")  # 80 characters, one line
        # Columns line up.
        self.assertEqual(len({l.index("2026-") for l in lines[:3]}), 1)
        self.assertEqual(lines[3], "")
        self.assertEqual(lines[4], "backup: 1 dead letter(s); replay in progress "
                                   "(2 event(s) being sent again)")
        self.assertEqual(lines[5], "central: 2 dead letter(s)")
        self.assertEqual(r.stderr, "ferry deadletter: %s/central.ndjson: the last line is torn "
                                   "(55 bytes without a newline; the sink was stopped "
                                   "mid-write); skipped\n" % self.dl)

    def test_list_json_and_sink_filter(self):
        r = self.ferry("deadletter", "list", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        # One object per line, like every --json output (issue 12).
        self.assertEqual([json.loads(l) for l in r.stdout.splitlines()],
                         self.backup + self.central)
        self.assertIn("torn", r.stderr)
        self.assertIn("ferry deadletter: backup: replay in progress (2 event(s)", r.stderr)
        r = self.ferry("deadletter", "list", "--json", "--sink", "central")
        self.assertEqual([json.loads(l) for l in r.stdout.splitlines()], self.central)
        r = self.ferry("deadletter", "list", "--sink", "backup")
        self.assertEqual(r.stdout.splitlines()[-1], "backup: 1 dead letter(s); replay in "
                                                    "progress (2 event(s) being sent again)")
        self.assertNotIn("central", r.stdout)
        r = self.ferry("deadletter", "list", "--sink", "nope")
        self.assertEqual((r.returncode, r.stdout), (0, "nope: no dead letters\n"))

    def test_list_without_any_file(self):
        shutil.rmtree(self.dl)
        r = self.ferry("deadletter", "list")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "no dead letters\n", ""))
        r = self.ferry("deadletter", "list", "--json")
        self.assertEqual((r.returncode, r.stdout), (0, ""))

    def test_list_reports_a_bad_line_in_the_middle(self):
        with open(os.path.join(self.dl, "backup.ndjson"), "ab") as f:
            f.write(b"garbage\n" + json.dumps(entry("backup", 56)).encode() + b"\n")
        r = self.ferry("deadletter", "list", "--sink", "backup", "--json")
        self.assertEqual([json.loads(l)["seq"] for l in r.stdout.splitlines()], [55, 56])
        self.assertIn("%s/backup.ndjson:2: not a JSON object" % self.dl, r.stderr)

    def test_purge_without_ferryd_removes_only_the_dead_letter_files(self):
        r = self.ferry("deadletter", "purge", "--sink", "central")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "ferryd is not running; purging %s itself\n"
                                   "removed %s/central.ndjson (2 dead letter(s))\n"
                         % (self.dl, self.dl))
        self.assertEqual(sorted(os.listdir(self.dl)),
                         ["backup.ndjson", "backup.replay.ndjson", "notes.txt"])
        r = self.ferry("deadletter", "purge")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("removed %s/backup.ndjson (1 dead letter(s))\n" % self.dl, r.stdout)
        self.assertIn("kept %s/backup.replay.ndjson: a replay in progress" % self.dl, r.stdout)
        self.assertEqual(sorted(os.listdir(self.dl)), ["backup.replay.ndjson", "notes.txt"])
        r = self.ferry("deadletter", "purge")
        self.assertIn("no dead letters to purge\n", r.stdout)
        self.assertEqual(self.ferry("deadletter", "list", "--sink", "central").stdout,
                         "central: no dead letters\n")

    def test_purge_refuses_while_a_ferryd_holds_the_state_dir(self):
        # A ferryd that holds the state lock but does not answer (say, SIGSTOPped before
        # listening): its files are not removed behind its back.
        with open(os.path.join(self.state, "ferryd.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            r = self.ferry("deadletter", "purge")
        # Exit 3 like every command that finds a ferryd not answering (client/offline.h).
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("ferryd is not answering on ", r.stderr)
        self.assertIn("central.ndjson", os.listdir(self.dl))


# ---------------------------------------------------------------------------------------------
# A fake ferryd: answers each request with what the test says.


class FakeDaemon:
    def __init__(self, root, answer):
        """answer(ftype, body_bytes) -> (delay_s, [(ftype, body)...])"""
        self.path = os.path.join(root, "fake.sock")
        self.answer = answer
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                buf = b""
                while len(buf) < 4 or len(buf) < 4 + struct.unpack_from("<I", buf)[0]:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                if len(buf) < 5:
                    continue
                (length,) = struct.unpack_from("<I", buf)
                ftype, body = buf[4], buf[5:4 + length]
                self.requests.append((ftype, json.loads(body)))
                delay, replies = self.answer(ftype, body)
                time.sleep(delay)
                try:
                    conn.sendall(b"".join(h.encode_frame(t, b) for t, b in replies))
                except OSError:
                    pass

    def close(self):
        # Wake the accept() and let the thread end before the fd is closed: closed first, its
        # number could go to the next test's socket and this thread would answer there.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(h.HANG_GUARD_S)
        self.sock.close()


class FakeDaemonTest(unittest.TestCase):
    def setUp(self):
        self.root = h.make_tempdir()
        self.reply = (0, [])
        self.fake = FakeDaemon(self.root, lambda t, b: self.reply)
        self.env = h.clean_env(FERRY_SOCKET=self.fake.path,
                               FERRY_STATE_DIR=os.path.join(self.root, "state"), HOME=self.root)

    def tearDown(self):
        self.fake.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def ferry(self, *args):
        return h.run_ferry(list(args), self.env)

    @staticmethod
    def sink(name, cursor, caught_up=True, state="idle", error=None):
        return {"name": name, "cursor": cursor, "caught_up": caught_up, "state": state,
                "error": error}

    def flush_result(self, sinks, target=1234, done=True, timed_out=False, delay=0):
        self.reply = (delay, [(h.FLUSH_RESULT, {"target_seq": target, "done": done,
                                                "timed_out": timed_out, "sinks": sinks})])

    def test_flush_caught_up(self):
        self.flush_result([self.sink("central", 1234), self.sink("backup", 1234)])
        r = self.ferry("flush", "--wait", "--timeout", "30s")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout, "central: caught up to seq 1234\n"
                                   "backup: caught up to seq 1234\n")
        self.assertEqual(self.fake.requests[-1],
                         (h.FLUSH_REQ, {"v": 1, "wait": True, "timeout_ms": 30000}))

    def test_flush_reports_a_paused_sink(self):
        self.flush_result([self.sink("central", 1234),
                           self.sink("backup", 900, False, "paused",
                                     "HTTP 401: invalid token\nsee docs")],
                          done=False)
        r = self.ferry("flush", "--wait")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "central: caught up to seq 1234\n"
                                   "backup: paused: HTTP 401: invalid token see docs\n")
        self.assertEqual(self.fake.requests[-1], (h.FLUSH_REQ, {"v": 1, "wait": True}))

    def test_flush_only_counts_the_chosen_sink(self):
        self.flush_result([self.sink("central", 1234),
                           self.sink("backup", 900, False, "paused", "HTTP 401: no")])
        r = self.ferry("flush", "--sink", "central")
        self.assertEqual((r.returncode, r.stdout), (0, "central: caught up to seq 1234\n"))
        self.assertEqual(self.fake.requests[-1],
                         (h.FLUSH_REQ, {"v": 1, "sink": "central", "wait": False}))

    def test_flush_timed_out(self):
        self.flush_result([self.sink("central", 1200, False, "sending")], done=False,
                          timed_out=True)
        r = self.ferry("flush", "--wait", "--timeout", "2s")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stdout, "central: not caught up: at seq 1200 of 1234 (sending)\n")
        self.assertEqual(r.stderr, "ferry flush: timed out after 2000 ms before every sink "
                                   "caught up to seq 1234\n")

    def test_flush_without_wait_is_not_a_timeout(self):
        self.flush_result([self.sink("central", 1200, False, "sending")], done=False)
        r = self.ferry("flush")
        self.assertEqual((r.returncode, r.stdout),
                         (0, "central: flushing: at seq 1200 of 1234 (sending)\n"), r.stderr)

    def test_flush_socket_waits_past_the_timeout_for_the_daemons_answer(self):
        # ferryd answers when its own timeout fires; the client must still be listening.
        self.flush_result([self.sink("central", 1234)], delay=1.5)
        r = self.ferry("flush", "--wait", "--timeout", "1s")
        self.assertEqual((r.returncode, r.stdout), (0, "central: caught up to seq 1234\n"))

    def test_unknown_sink(self):
        self.reply = (0, [(h.ERROR, {"code": "unknown_sink", "fatal": False,
                                     "message": 'no sink named "x" (configured: a, b)'})])
        r = self.ferry("flush", "--sink", "x")
        self.assertEqual((r.returncode, r.stdout), (1, ""))
        self.assertEqual(r.stderr, 'ferry flush: no sink named "x" (configured: a, b)\n')
        r = self.ferry("deadletter", "replay", "--sink", "x")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, 'ferry deadletter: no sink named "x" (configured: a, b)\n')
        self.reply = (0, [(h.ERROR, {"code": "shutting_down", "fatal": False,
                                     "message": "ferryd is stopping"})])
        r = self.ferry("flush")
        self.assertEqual((r.returncode, r.stderr),
                         (1, "ferry flush: shutting_down: ferryd is stopping\n"))

    def test_deadletter_replay_and_purge(self):
        self.reply = (0, [(h.DEADLETTER_RESULT, {"op": "replay", "sinks": [
            {"name": "central", "queued": 3}, {"name": "backup", "queued": 0}]})])
        r = self.ferry("deadletter", "replay")
        self.assertEqual((r.returncode, r.stdout),
                         (0, "central: 3 event(s) queued for replay\n"
                             "backup: 0 event(s) queued for replay\n"))
        self.assertEqual(self.fake.requests[-1], (h.DEADLETTER_REQ, {"v": 1, "op": "replay"}))
        self.reply = (0, [(h.DEADLETTER_RESULT, {"op": "purge", "sinks": [
            {"name": "central", "purged": 2}]})])
        os.makedirs(os.path.join(self.root, "state", "deadletter"))
        path = os.path.join(self.root, "state", "deadletter", "central.ndjson")
        write_lines(path, [entry("central", 1)])
        r = self.ferry("deadletter", "purge", "--sink", "central")
        self.assertEqual((r.returncode, r.stdout), (0, "central: 2 dead letter(s) purged\n"))
        self.assertEqual(self.fake.requests[-1],
                         (h.DEADLETTER_REQ, {"v": 1, "op": "purge", "sink": "central"}))
        self.assertTrue(os.path.exists(path))  # ferryd's to delete, not the client's

    def status_with(self, sinks, healthy=True):
        st = {"healthy": healthy, "problems": [] if healthy else ["sink backup is paused"],
              "daemon": {"pid": 1, "version": "0.1.0", "uptime_s": 5, "socket": "s",
                         "state_dir": "d"},
              "journal": {"last_seq": 1300}, "ingest": {}, "spool": {}}
        if sinks is not None:
            st["sinks"] = sinks
        self.reply = (0, [(h.STATUS, st)])

    def test_status_sinks_section(self):
        self.status_with([
            {"name": "central", "type": "http-json", "url": "https://logs.example.com/ferry",
             "state": "idle", "cursor": 1300, "lag_events": 0, "lag_s": 0,
             "last_success": "2026-11-24T10:00:00.000Z", "last_error": None,
             "next_retry": None, "consecutive_failures": 0, "delivered_events": 1300,
             "delivered_batches": 3, "deadlettered": 0},
            {"name": "backup", "type": "otlp-http", "url": "https://otel.example.com/v1/logs",
             "state": "paused", "cursor": 900, "lag_events": 400, "lag_s": 75.5,
             "last_success": None,
             "last_error": {"time": "2026-11-24T10:01:00.000Z", "status": 401,
                            "message": "unauthorized", "body": '{"error":"bad token"}\n' * 10},
             "next_retry": "2026-11-24T10:02:00.000Z", "consecutive_failures": 4,
             "delivered_events": 0, "deadlettered": 2}], healthy=False)
        r = self.ferry("status")
        self.assertEqual(r.returncode, 1, r.stderr)  # the daemon's `healthy` decides
        out = r.stdout[r.stdout.index("  sink "):].splitlines()
        self.assertEqual(out[:3], [
            "  sink     central (http-json) https://logs.example.com/ferry",
            "           idle; delivered up to seq 1300; lag 0 event(s), 0.0s",
            "           1300 event(s) delivered; last success 2026-11-24T10:00:00.000Z; "
            "0 dead letter(s)"])
        self.assertEqual(out[3:8], [
            "  sink     backup (otlp-http) https://otel.example.com/v1/logs",
            "           paused; delivered up to seq 900; lag 400 event(s), 1m15s",
            "           0 event(s) delivered; last success never; 2 dead letter(s)",
            "           last error 2026-11-24T10:01:00.000Z: HTTP 401: unauthorized",
            "           response: " + ('{"error":"bad token"} ' * 10)[:77] + "..."])
        self.assertEqual(out[8], "           4 consecutive failure(s); next retry "
                                 "2026-11-24T10:02:00.000Z")
        self.assertEqual(len(out), 9)

    def test_status_without_sinks(self):
        self.status_with([])
        r = self.ferry("status")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.endswith("  sinks    none configured\n"), r.stdout)
        self.status_with(None)
        r = self.ferry("status")
        self.assertEqual(r.returncode, 0)
        self.assertNotIn("sink", r.stdout)


if __name__ == "__main__":
    unittest.main()
