"""Offline reads (docs/protocol.md "Offline reads"): with ferryd stopped, `ferryd --serve-offline`
answers QUERY_REQ, TAIL_REQ without follow and DEADLETTER_REQ list from ferry.db, the journal
and the dead-letter files exactly as the running ferryd did, refuses everything else with a
clear ERROR, and leaves the state directory byte for byte as it was (contents, sizes, mtimes
and ctimes of every file and directory, ferry.db and its -wal/-shm included).

OfflineServer drives `ferryd --serve-offline` directly over a socketpair, so it tests the
server on its own. OfflineCommands runs the real `ferry query`, `sessions`, `tail` and
`deadletter list`, which reach it through client/offline.h's ConnectOrOffline.
"""

import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import unittest

import ferry_harness as h

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

NOT_RUNNING = ("ferryd is not running; start it with: systemctl --user start ferryd "
               "(or run ferryd)")

SINK_CONFIG = """
[[sink]]
name = "central"
type = "http-json"
url = "http://127.0.0.1:9/ingest"
"""

LETTERS = [
    {"seq": 3, "status": 422, "event": {"id": "aa", "source": "offline", "kind": "k"}},
    {"seq": 5, "status": 400, "event": {"id": "bb", "source": "offline", "kind": "k"}},
]


def snapshot(top):
    """{relative path: what must not change} for every file and directory under `top`."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames + ["."]:
            path = os.path.normpath(os.path.join(dirpath, name))
            st = os.lstat(path)
            digest = None
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(path, top)] = (digest, st.st_size, st.st_mode, st.st_mtime_ns,
                                               st.st_ctime_ns, st.st_ino)
    return out


class OfflineConnection(h.RawClient):
    """`ferryd --serve-offline` on one end of a socketpair; this object is the other end."""

    def __init__(self, state_dir, config_path=None, env=None):
        self.sock, theirs = socket.socketpair()
        self.sock.settimeout(h.HANG_GUARD_S)
        self.buf = b""
        args = [h.FERRYD, "--serve-offline", "--offline-fd", str(theirs.fileno()),
                "--state-dir", state_dir]
        if config_path:
            args += ["--config", config_path]
        self.proc = subprocess.Popen(args, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env or h.clean_env(HOME="/nonexistent"))
        theirs.close()

    def finish(self):
        """Closes our end; returns (exit status, stdout, stderr) of the offline ferryd."""
        self.sock.close()
        out, err = self.proc.communicate(timeout=h.HANG_GUARD_S)
        return self.proc.returncode, out.decode(), err.decode()

    def tail(self, **req):
        """TAIL_REQ, then every TAIL_ITEM body up to the close (the offline ferryd then exits
        0 with nothing on stdout or stderr)."""
        self.send_frame(h.TAIL_REQ, dict({"v": 1}, **req))
        items = []
        while True:
            try:
                t, body = self.recv_frame()
            except h.Closed:
                break
            self.assert_type(t, h.TAIL_ITEM, body)
            items.append(body)
        done = self.finish()
        if done != (0, "", ""):
            raise AssertionError("the offline ferryd ended with %r" % (done,))
        return items

    @staticmethod
    def assert_type(t, want, body):
        if t != want:
            raise AssertionError("expected frame type %d, got %d %r" % (want, t, body))


def tail_over(path, **req):
    """The TAIL_ITEM bodies the running ferryd on `path` sends for a TAIL_REQ."""
    items = []
    with h.RawClient(path) as c:
        c.send_frame(h.TAIL_REQ, dict({"v": 1}, **req))
        while True:
            try:
                t, body = c.recv_frame()
            except h.Closed:
                return items
            items.append(body)


# Acked or failed, with room for a loaded machine (emit's own default wait is 50 ms).
STRICT = ("--strict", "--timeout-ms", "10000")

EVENTS_SQL = "SELECT seq, id, source, kind, session, payload FROM events ORDER BY seq"


class Recorded:
    """A state directory with 12 events (2 sessions), a dead-letter file for sink "central",
    and what the running ferryd answered about it, recorded before it was stopped."""

    def __init__(self):
        self.d = h.Daemon(config=SINK_CONFIG)
        self.d.start()
        for i in range(12):
            r = self.d.emit("--source", "offline", "--kind", "tool" if i % 3 else "start",
                            "--session", "s%d" % (i % 2), "--data", json.dumps({"i": i, "n": 1.50}),
                            *STRICT)
            assert r.returncode == 0, r.stderr
        self.d.wait_for(lambda st: st["store"]["cursor"] == st["journal"]["last_seq"] == 12,
                        "the store to apply all 12 events")
        os.makedirs(os.path.join(self.d.state_dir, "deadletter"), exist_ok=True)
        with open(os.path.join(self.d.state_dir, "deadletter", "central.ndjson"), "w") as f:
            f.write("".join(json.dumps(x) + "\n" for x in LETTERS) + '{"torn')
        with self.d.client() as c:
            self.query = c.request(h.QUERY_REQ, {"v": 1, "sql": EVENTS_SQL})
            self.deadletters = c.request(h.DEADLETTER_REQ, {"v": 1, "op": "list"})
        self.tail_last5 = tail_over(self.d.socket, last=5)
        self.tail_from10 = tail_over(self.d.socket, **{"from": 10})
        env = self.env()
        self.commands = {}
        for args in self.COMMANDS:
            r = h.run_ferry(args, env)
            assert r.returncode == 0, (args, r.returncode, r.stderr)
            self.commands[tuple(args)] = r.stdout
        assert self.d.stop() == 0, self.d.last_log()

    COMMANDS = [
        ["query", "SELECT seq, source, kind, session FROM events ORDER BY seq"],
        ["query", "--json", EVENTS_SQL],
        ["sessions"],
        ["sessions", "--json"],
        ["tail", "-n", "5"],
        ["tail", "--from", "10"],
        ["tail", "--json", "--last", "3"],
        ["deadletter", "list"],
        ["deadletter", "list", "--json"],
    ]

    def env(self, **extra):
        """The environment of a ferry aimed at this state directory (extra: None removes)."""
        env = self.d.env(FERRY_FERRYD=h.FERRYD)
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    def close(self):
        self.d.close()


class OfflineServer(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.rec = Recorded()
        cls.state = cls.rec.d.state_dir

    @classmethod
    def tearDownClass(cls):
        cls.rec.close()

    def setUp(self):
        self.before = snapshot(self.state)

    def tearDown(self):
        self.assertEqual(snapshot(self.state), self.before, "the state directory changed")

    def connect(self, state=None):
        return OfflineConnection(state or self.state, self.rec.d.config_path)

    def test_stopped_cleanly_leaves_no_wal(self):
        # What the other tests rely on: the read of a cleanly stopped store uses immutable=1.
        self.assertFalse(os.path.exists(os.path.join(self.state, "ferry.db-wal")))
        self.assertFalse(os.path.exists(os.path.join(self.state, "ferry.db-shm")))

    def test_query_answers_the_rows_ferryd_answered(self):
        c = self.connect()
        t, body = c.request(h.QUERY_REQ, {"v": 1, "sql": EVENTS_SQL})
        c.assert_type(t, h.QUERY_RESULT, body)
        want = self.rec.query[1]
        self.assertEqual(self.rec.query[0], h.QUERY_RESULT)
        self.assertEqual(len(want["rows"]), 12)
        for key in ("columns", "rows", "row_count", "truncated", "row_cap"):
            self.assertEqual(body[key], want[key], key)
        # A second query on the same connection, and the sessions table.
        t, body = c.request(h.QUERY_REQ, {"v": 1, "sql": "SELECT session, events FROM sessions "
                                                         "ORDER BY session"})
        c.assert_type(t, h.QUERY_RESULT, body)
        self.assertEqual(body["rows"], [["s0", 6], ["s1", 6]])
        self.assertEqual(c.finish(), (0, "", ""))  # no lag: no note on stderr

    def test_query_refusals_are_ferryds(self):
        c = self.connect()
        t, body = c.request(h.QUERY_REQ, {"v": 1, "sql": "DELETE FROM events"})
        self.assertEqual((t, body["code"], body["fatal"]), (h.ERROR, "query_refused", False))
        t, body = c.request(h.QUERY_REQ, {"v": 1, "sql": "SELECT nope FROM events"})
        self.assertEqual((t, body["code"]), (h.ERROR, "query_failed"))
        self.assertEqual(body["message"], "SQL error: no such column: nope")
        t, body = c.request(h.QUERY_REQ, {"v": 1, "sql": "SELECT count(*) FROM events"})
        self.assertEqual((t, body["rows"]), (h.QUERY_RESULT, [[12]]))
        self.assertEqual(c.finish()[0], 0)

    def test_tail_sends_the_frames_ferryd_sent(self):
        self.assertEqual([x.get("seq") for x in self.rec.tail_last5], [8, 9, 10, 11, 12, None])
        self.assertEqual(self.connect().tail(last=5), self.rec.tail_last5)
        self.assertEqual(self.connect().tail(**{"from": 10}), self.rec.tail_from10)
        self.assertEqual(self.connect().tail(**{"from": 13}), [{"v": 1, "end": True, "next": 13}])
        items = self.connect().tail(**{"from": 1, "kind": "start"})
        self.assertEqual([x.get("seq") for x in items], [1, 4, 7, 10, None])

    def test_deadletter_list_reads_the_files(self):
        c = self.connect()
        t, body = c.request(h.DEADLETTER_REQ, {"v": 1, "op": "list"})
        self.assertEqual((t, body), self.rec.deadletters)
        self.assertEqual(body, {"op": "list", "sinks": [{
            "name": "central", "count": 2, "skipped": 1, "replaying": 0, "truncated": False,
            "letters": LETTERS}]})
        t, body = c.request(h.DEADLETTER_REQ, {"v": 1, "op": "list", "sink": "other"})
        self.assertEqual((t, body), (h.ERROR, {
            "code": "unknown_sink", "message": 'no sink named "other" (configured: central)',
            "fatal": False}))
        self.assertEqual(c.finish()[0], 0)

    def test_everything_else_is_refused_with_how_to_start_ferryd(self):
        c = self.connect()
        only = "; this read-only ferryd answers query, tail without -f and deadletter list only"
        for ftype, body in [(h.STATUS_REQ, {"v": 1}),
                            (h.EVENT, {"v": 1, "event": h.make_event()}),
                            (h.EVENT_BATCH, {"v": 1, "events": [h.make_event()]}),
                            (h.FLUSH_REQ, {"v": 1})]:
            t, reply = c.request(ftype, body)
            self.assertEqual((t, reply), (h.ERROR, {"code": "unexpected_type",
                                                    "message": NOT_RUNNING + only,
                                                    "fatal": False}), ftype)
        for op in ("replay", "purge"):
            t, reply = c.request(h.DEADLETTER_REQ, {"v": 1, "op": op})
            self.assertEqual((t, reply), (h.ERROR, {
                "code": "unexpected_type",
                "message": NOT_RUNNING + "; deadletter %s needs it" % op, "fatal": False}))
        t, reply = c.request(h.HELLO, {"v": 1})
        self.assertEqual((t, reply), (h.HELLO, {"v": 1, "server": "ferryd/0.1.0",
                                                "offline": True}))
        t, reply = c.request(h.TAIL_REQ, {"v": 1, "follow": True})
        self.assertEqual((t, reply), (h.ERROR, {
            "code": "unexpected_type",
            "message": NOT_RUNNING + "; following new events needs it", "fatal": False}))
        # Nothing was purged: the letters are still there (tearDown checks every byte).
        t, reply = c.request(h.DEADLETTER_REQ, {"v": 1, "op": "list"})
        self.assertEqual(reply["sinks"][0]["count"], 2)
        self.assertEqual(c.finish(), (0, "", ""))

    def test_a_bad_frame_is_fatal(self):
        c = self.connect()
        c.send_frame(h.QUERY_REQ, {"v": 2, "sql": "SELECT 1"})
        t, reply = c.recv_frame()
        self.assertEqual((t, reply["code"]), (h.ERROR, "bad_version"))
        c.send_raw(b"\x01\x00\x00\x00\x63")  # unknown type 99
        t, reply = c.recv_frame()
        self.assertEqual((t, reply["code"], reply["fatal"]), (h.ERROR, "unknown_type", True))
        c.expect_closed()
        self.assertEqual(c.finish()[0], 0)

    def test_a_ferryd_started_meanwhile_starts(self):
        # On a copy: the started ferryd writes to its state directory.
        root = h.make_tempdir()
        try:
            shutil.copytree(self.state, os.path.join(root, "state"), symlinks=True)
            d = h.Daemon(config=SINK_CONFIG, root=root)
            c = OfflineConnection(d.state_dir, self.rec.d.config_path)
            t, body = c.request(h.QUERY_REQ, {"v": 1, "sql": "SELECT count(*) FROM events"})
            self.assertEqual((t, body["rows"]), (h.QUERY_RESULT, [[12]]))
            try:
                d.start()  # no lock is held: it starts, and answers
                self.assertEqual(d.status()["daemon"]["pid"], d.proc.pid)
                r = d.emit("--source", "offline", "--kind", "late", *STRICT)
                self.assertEqual(r.returncode, 0, r.stderr)
                # The offline connection answers on: the rows it read before ferryd started,
                # or, if ferryd rewrote ferry.db meanwhile, an error saying to ask again.
                t, body = c.request(h.QUERY_REQ, {"v": 1, "sql": "SELECT count(*) FROM events"})
                if t == h.ERROR:
                    self.assertEqual(body["message"], os.path.join(d.state_dir, "ferry.db") +
                                     " changed while it was read without ferryd (a ferryd "
                                     "started meanwhile?); run the command again")
                else:
                    self.assertEqual((t, body["rows"]), (h.QUERY_RESULT, [[12]]))
                self.assertEqual(c.finish()[0], 0)
            finally:
                d.close()
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def test_journal_records_newer_than_the_store_are_noted(self):
        root = h.make_tempdir()
        try:
            state = os.path.join(root, "state")
            shutil.copytree(self.state, state, symlinks=True)
            # Two records ferryd wrote to the journal but did not apply before it stopped.
            _, seg = h.segment_paths(state)[-1]
            body = json.dumps(h.make_event(source="late", kind="k"), separators=(",", ":"))
            with open(seg, "ab") as f:
                f.write(h.record_bytes(13, 1, body.encode()) + h.record_bytes(14, 2, body.encode()))
            c = OfflineConnection(state, self.rec.d.config_path)
            t, reply = c.request(h.QUERY_REQ, {"v": 1, "sql": "SELECT max(seq) FROM events"})
            self.assertEqual((t, reply["rows"]), (h.QUERY_RESULT, [[12]]))
            self.assertEqual(c.finish(), (0, "", (
                "ferry: ferryd is not running: ferry.db holds the events up to seq 12; the 2 "
                "after it (seqs 13..14) are only in the journal until ferryd starts (ferry "
                "tail shows them)\n")))
            items = OfflineConnection(state, self.rec.d.config_path).tail(last=3)
            self.assertEqual([x.get("seq") for x in items], [12, 13, 14, None])
            self.assertEqual(items[-1], {"v": 1, "end": True, "next": 15})
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def test_a_rollback_journal_is_refused(self):
        root = h.make_tempdir()
        try:
            state = os.path.join(root, "state")
            shutil.copytree(self.state, state, symlinks=True)
            with open(os.path.join(state, "ferry.db-journal"), "wb") as f:
                f.write(b"\0" * 512)
            c = OfflineConnection(state, self.rec.d.config_path)
            t, reply = c.request(h.QUERY_REQ, {"v": 1, "sql": "SELECT 1"})
            self.assertEqual((t, reply["code"], reply["message"]), (h.ERROR, "query_failed", (
                "%s/ferry.db-journal is there (an interrupted write); start ferryd once, then "
                "read again" % state)))
            self.assertEqual(c.finish()[0], 0)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def test_a_state_dir_others_can_write_is_refused(self):
        root = h.make_tempdir()
        try:
            state = os.path.join(root, "state")
            shutil.copytree(self.state, state, symlinks=True)
            os.chmod(state, 0o777)
            before = snapshot(state)
            for ftype, body in [(h.QUERY_REQ, {"v": 1, "sql": "SELECT 1"}),
                                (h.TAIL_REQ, {"v": 1}),
                                (h.DEADLETTER_REQ, {"v": 1, "op": "list"})]:
                c = OfflineConnection(state, self.rec.d.config_path)
                t, reply = c.request(ftype, body)
                self.assertEqual((t, reply), (h.ERROR, {
                    "code": "internal", "fatal": True,
                    "message": "the state directory %s is writable by others (mode 0777); ferryd "
                               "refuses it too: chmod 700 %s" % (state, state)}))
                c.expect_closed()
                self.assertEqual(c.finish()[0], 0)
            self.assertEqual(snapshot(state), before)  # not tightened either
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def test_no_state_dir(self):
        missing = os.path.join(self.rec.d.root, "no-such-state")
        c = OfflineConnection(missing, self.rec.d.config_path)
        t, reply = c.request(h.QUERY_REQ, {"v": 1, "sql": "SELECT 1"})
        self.assertEqual((t, reply), (h.ERROR, {
            "code": "query_failed",
            "message": "nothing recorded in ferry.db yet: %s/ferry.db does not exist" % missing,
            "fatal": False}))
        self.assertEqual(c.finish()[0], 0)
        self.assertEqual(OfflineConnection(missing).tail(), [{"v": 1, "end": True, "next": 1}])
        self.assertFalse(os.path.exists(missing))

    def test_without_a_socket_it_refuses_to_run(self):
        r = subprocess.run([h.FERRYD, "--serve-offline", "--offline-fd", "0",
                            "--state-dir", self.state], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=h.HANG_GUARD_S)
        self.assertEqual((r.returncode, r.stdout), (2, ""))
        self.assertEqual(r.stderr, (
            "ferryd: --serve-offline needs --offline-fd N, a connected socket (ferry starts it so "
            "when ferryd is not running; docs/protocol.md \"Offline reads\")\n"))


class OfflineAfterKill(unittest.TestCase):
    maxDiff = None
    """ferryd killed (SIGKILL): ferry.db-wal holds committed rows and -shm is stale; the
    offline read sees every row and writes neither."""

    def test_query_and_tail_after_sigkill(self):
        with h.daemon() as d:
            for i in range(5):
                self.assertEqual(d.emit("--source", "k", "--kind", "k", "--data",
                                        '{"i":%d}' % i, *STRICT).returncode, 0)
            d.wait_for(lambda st: st["store"]["cursor"] == 5, "the store to apply 5 events")
            d.kill()
            self.assertTrue(os.path.exists(os.path.join(d.state_dir, "ferry.db-wal")))
            self.assertTrue(os.path.exists(os.path.join(d.state_dir, "ferry.db-shm")))
            before = snapshot(d.state_dir)
            c = OfflineConnection(d.state_dir)
            t, body = c.request(h.QUERY_REQ, {"v": 1, "sql": "SELECT seq FROM events ORDER BY seq"})
            self.assertEqual((t, body["rows"]), (h.QUERY_RESULT, [[1], [2], [3], [4], [5]]))
            self.assertEqual(c.finish(), (0, "", ""))
            items = OfflineConnection(d.state_dir).tail(last=2)
            self.assertEqual([x.get("seq") for x in items], [4, 5, None])
            after = snapshot(d.state_dir)
            self.assertEqual(after, before)

    def test_a_wal_without_its_shm_is_refused_not_created(self):
        with h.daemon() as d:
            self.assertEqual(d.emit("--source", "k", "--kind", "k", *STRICT).returncode, 0)
            d.wait_for(lambda st: st["store"]["cursor"] == 1, "the store to apply 1 event")
            d.kill()
            db = os.path.join(d.state_dir, "ferry.db")
            os.unlink(db + "-shm")
            before = snapshot(d.state_dir)
            c = OfflineConnection(d.state_dir)
            t, body = c.request(h.QUERY_REQ, {"v": 1, "sql": "SELECT 1"})
            self.assertEqual((t, body["message"]), (h.ERROR, (
                "%s-wal is there without %s-shm, and reading it would create that file; start "
                "ferryd once (it applies the log), then read again" % (db, db))))
            self.assertEqual(c.finish()[0], 0)
            self.assertEqual(snapshot(d.state_dir), before)


@unittest.skipUnless(os.path.exists(h.FERRY), "needs the ferry client")
class OfflineCommands(unittest.TestCase):
    """The read commands with ferryd stopped print exactly what they printed while it ran."""

    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.rec = Recorded()
        cls.state = cls.rec.d.state_dir

    @classmethod
    def tearDownClass(cls):
        cls.rec.close()

    def setUp(self):
        self.before = snapshot(self.state)

    def tearDown(self):
        self.assertEqual(snapshot(self.state), self.before, "the state directory changed")

    def same_as_running(self, args):
        r = h.run_ferry(args, self.rec.env())
        self.assertEqual((r.returncode, r.stderr), (0, ""), args)
        self.assertEqual(r.stdout, self.rec.commands[tuple(args)], args)

    def test_query(self):
        self.same_as_running(Recorded.COMMANDS[0])
        self.same_as_running(Recorded.COMMANDS[1])
        self.assertEqual(len(self.rec.commands[tuple(Recorded.COMMANDS[1])].splitlines()), 12)

    def test_sessions(self):
        self.same_as_running(["sessions"])
        self.same_as_running(["sessions", "--json"])

    def test_tail(self):
        for args in (["tail", "-n", "5"], ["tail", "--from", "10"],
                     ["tail", "--json", "--last", "3"]):
            self.same_as_running(args)
        lines = self.rec.commands[("tail", "--json", "--last", "3")].splitlines()
        self.assertEqual([json.loads(x)["seq"] for x in lines], [10, 11, 12])

    def test_deadletter_list(self):
        # The recorded file holds one torn line: the same note as with ferryd running.
        note = ("ferry deadletter: central: 1 line(s) that are not JSON objects skipped (a torn "
                "last line is one the sink was writing when it stopped)\n")
        for args in (["deadletter", "list"], ["deadletter", "list", "--json"]):
            r = h.run_ferry(args, self.rec.env())
            self.assertEqual((r.returncode, r.stderr), (0, note), args)
            self.assertEqual(r.stdout, self.rec.commands[tuple(args)], args)

    def test_ferryd_found_on_path(self):
        env = self.rec.env(FERRY_FERRYD=None)
        env["PATH"] = os.path.dirname(os.path.abspath(h.FERRYD)) + ":/usr/bin:/bin"
        r = h.run_ferry(["query", "SELECT count(*) AS n FROM events"], env)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "n\n--\n12\n", ""))

    def test_no_state_dir(self):
        missing = os.path.join(self.rec.d.root, "never")
        r = h.run_ferry(["query", "SELECT 1"], self.rec.env(FERRY_STATE_DIR=missing))
        self.assertEqual((r.returncode, r.stdout), (3, ""))
        self.assertIn("nothing recorded yet: %s does not exist" % missing, r.stderr)
        self.assertFalse(os.path.exists(missing))

    def test_no_ferryd_binary(self):
        r = h.run_ferry(["query", "SELECT 1"], self.rec.env(FERRY_FERRYD="/nonexistent/ferryd"))
        self.assertEqual((r.returncode, r.stdout), (3, ""))
        self.assertIn("ferryd is not running, and FERRY_FERRYD=/nonexistent/ferryd is not an "
                      "executable file", r.stderr)


class LockProbeDuringStart(unittest.TestCase):
    """`ferry` tests ferryd.lock with a shared flock it holds for microseconds; a ferryd that
    starts at that moment must wait it out, not refuse to start as if a second ferryd ran."""

    def test_a_probe_held_at_start_does_not_stop_ferryd(self):
        d = h.Daemon()
        try:
            os.makedirs(d.state_dir, mode=0o700)
            with open(os.path.join(d.state_dir, "ferryd.lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
                d.spawn()
                time.sleep(0.1)  # ferryd meets the shared lock at its start (it waits 0.5 s)
                fcntl.flock(lock, fcntl.LOCK_UN)
            d.wait_ready()
            self.assertIsNone(d.proc.poll())
        finally:
            d.close()


if __name__ == "__main__":
    unittest.main()
