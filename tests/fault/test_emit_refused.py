"""`ferry emit` keeps every event ferryd does not ack (issue 10, defect 7): a failed journal
answers ERROR journal_failed, and the client must spool the event, exit 0, and have it imported
exactly once when ferryd runs again without the fault."""

import json
import os
import unittest

import ferry_harness as h

WRITE_ERROR = "I/O error: write %s: No space left on device"


def spool_lines(d):
    """{event id: EVENT body} of every complete spool file."""
    spool = os.path.join(d.state_dir, "spool")
    out = {}
    for name in sorted(os.listdir(spool)) if os.path.isdir(spool) else []:
        if not name.endswith(".ndjson"):
            continue
        with open(os.path.join(spool, name), "rb") as f:
            for line in f.read().splitlines():
                body = json.loads(line)
                out[body["event"]["id"]] = body
    return out


def tail_ids(d):
    r = h.run_ferry(["tail", "--json", "--from", "1"], d.env())
    assert r.returncode == 0, r.stderr
    return [json.loads(l) for l in r.stdout.splitlines()]


class JournalFailedEmitTest(unittest.TestCase):
    N = 11

    def test_refused_emits_are_spooled_and_imported_once(self):
        d = h.Daemon(env={"FERRY_TEST_FAULTS": "write_fail_after=0"})
        self.addCleanup(d.close)
        d.start()
        err = WRITE_ERROR % h.last_segment_path(d.state_dir)
        kinds = ["k%02d" % i for i in range(self.N)]
        for i, kind in enumerate(kinds):
            r = d.emit("--source", "fault", "--kind", kind, "--data", '{"i":%d}' % i,
                       "--timeout-ms", "5000")
            # A plain emit: exit 0, nothing on stdout or stderr, the event spooled.
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""), kind)
        # --strict says why and where, and exits 1; the event is spooled all the same.
        r = d.emit("--source", "fault", "--kind", "strict", "--strict", "--timeout-ms", "5000")
        self.assertEqual((r.returncode, r.stdout), (1, ""))
        self.assertRegex(r.stderr, r"^ferry: ferryd refused the event: journal_failed: journal "
                                   r"(write failed; event not stored|refuses appends): "
                                   + __import__("re").escape(err)
                                   + r"; spooled to .*/spool/\d+-\d+-[0-9a-f]+\.ndjson\n$")
        kinds.append("strict")
        spooled = spool_lines(d)
        self.assertEqual(sorted(b["event"]["kind"] for b in spooled.values()), kinds)
        self.assertEqual(d.status()["journal"]["last_seq"], 0)  # nothing was stored

        # Restarted without the fault: the spool is imported, every event exactly once.
        self.assertEqual(d.stop(), 1)  # stopped with a failed journal
        d.extra_env = {}
        d.start()
        st = d.wait_for(lambda s: s["spool"]["pending_files"] == 0
                        and s["journal"]["last_seq"] == len(kinds), "the spool import")
        self.assertEqual(st["spool"]["events_imported"], len(kinds))
        items = tail_ids(d)
        self.assertEqual(sorted(e["id"] for e in items), sorted(spooled))
        self.assertEqual(sorted(e["kind"] for e in items), kinds)
        self.assertEqual([e["seq"] for e in items], list(range(1, len(kinds) + 1)))
        for e in items:
            self.assertEqual(e["payload"] if "payload" in e else None,
                             spooled[e["id"]]["event"].get("payload"))


class ErrorFramesTest(unittest.TestCase):
    """Every ERROR a daemon can answer an EVENT with is spooled, whatever the code: a fake
    ferryd on the socket answers each code in turn."""

    def test_every_error_code_spools(self):
        import socket
        import struct
        import threading
        root = h.make_tempdir()
        self.addCleanup(lambda: __import__("shutil").rmtree(root, ignore_errors=True))
        path = os.path.join(root, "s.sock")
        state = os.path.join(root, "state")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(8)
        self.addCleanup(srv.close)
        codes = ["frame_too_large", "empty_frame", "unknown_type", "unexpected_type", "bad_json",
                 "not_object", "bad_version", "missing_field", "wrong_type", "bad_value",
                 "unknown_field", "too_many_events", "peer_rejected", "too_many_connections",
                 "idle_timeout", "journal_failed", "shutting_down", "truncated_frame",
                 "query_refused", "query_failed", "unknown_sink", "internal", "no_such_code"]
        replies = [("error", c) for c in codes] + [("close", None), ("garbage", None),
                                                   ("status", None)]

        def serve():
            for what, code in replies:
                conn, _ = srv.accept()
                with conn:
                    buf = b""
                    while len(buf) < 4 or len(buf) < 4 + struct.unpack("<I", buf[:4])[0]:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        buf += chunk
                    if what == "error":
                        conn.sendall(h.encode_frame(h.ERROR, {"code": code, "message": "m-" + code,
                                                              "fatal": False}))
                    elif what == "garbage":
                        conn.sendall(b"\x05\x00\x00\x00\x04{bad")
                    elif what == "status":
                        conn.sendall(h.encode_frame(h.STATUS, {"healthy": True}))

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        env = h.clean_env(FERRY_SOCKET=path, FERRY_STATE_DIR=state, HOME=root,
                          XDG_CONFIG_HOME=os.path.join(root, "cfg"))
        for i, (what, code) in enumerate(replies):
            r = h.run_ferry(["emit", "--source", "t", "--kind", "k%d" % i, "--data", '{"n":1}',
                             "--strict", "--timeout-ms", "5000"], env)
            self.assertEqual(r.returncode, 1, (what, code, r.stderr))
            self.assertIn("; spooled to ", r.stderr, (what, code))
            if what == "error":
                self.assertIn("m-" + code, r.stderr)
        t.join(timeout=h.HANG_GUARD_S)
        spool = os.path.join(state, "spool")
        bodies = []
        for name in sorted(os.listdir(spool)):
            with open(os.path.join(spool, name), "rb") as f:
                bodies.append(json.loads(f.read()))
        self.assertEqual(sorted(b["event"]["kind"] for b in bodies),
                         sorted("k%d" % i for i in range(len(replies))))
        by_kind = {b["event"]["kind"]: b["event"] for b in bodies}
        # A refusal about the event's content keeps the payload as text, which any ferryd takes.
        for i, (what, code) in enumerate(replies):
            ev = by_kind["k%d" % i]
            if code in ("bad_json", "not_object", "missing_field", "wrong_type", "bad_value",
                        "unknown_field"):
                self.assertEqual((ev["payload"], ev["payload_encoding"]), ('{"n":1}', "text"))
            else:
                self.assertEqual(ev["payload"], {"n": 1}, code)
                self.assertNotIn("payload_encoding", ev)


if __name__ == "__main__":
    unittest.main()
