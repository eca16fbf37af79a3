"""Agent hook payloads through the real `ferry emit`: every fixture in tests/fixtures/hooks
(a copy of ../shared/fixtures/hooks) delivered as its MANIFEST.json says, then found exactly
once in the journal with the right source, kind, session and payload."""

import json
import os
import subprocess
import threading
import time
import unittest

import ferry_harness as h

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "hooks")


def load_manifest():
    with open(os.path.join(FIXTURES, "MANIFEST.json")) as f:
        return json.load(f)["fixtures"]


def run_emit(args, env, data=None):
    """Runs ferry emit with `data` written to a pipe on its stdin by a separate thread, so the
    test sees whether the writer ever got EPIPE (the client must read stdin to EOF).
    Returns (returncode, stdout, stderr, bytes_written, broken_pipe)."""
    rfd, wfd = os.pipe()
    proc = subprocess.Popen([h.FERRY, "emit"] + list(args), env=env, stdin=rfd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(rfd)
    result = {"written": 0, "epipe": False}

    def writer():
        try:
            view = memoryview(data or b"")
            while result["written"] < len(view):
                result["written"] += os.write(wfd, view[result["written"]:result["written"] + 65536])
        except BrokenPipeError:
            result["epipe"] = True
        finally:
            os.close(wfd)

    t = threading.Thread(target=writer)
    t.start()
    out, err = proc.communicate(timeout=h.HANG_GUARD_S)
    t.join()
    return proc.returncode, out, err, result["written"], result["epipe"]


def strings(value):
    """Every string in a parsed JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def expected_session(payload, fixture):
    if not isinstance(payload, dict):
        return None
    for key in ("session_id", "conversation_id", "thread-id"):
        if isinstance(payload.get(key), str):
            return payload[key]
    if fixture["delivery"] == "shell-snippet":
        return payload.get("session")
    return None


def expected_cwd(payload):
    if isinstance(payload, dict):
        if isinstance(payload.get("cwd"), str):
            return payload["cwd"]
        roots = payload.get("workspace_roots")
        if isinstance(roots, list) and roots and isinstance(roots[0], str):
            return roots[0]
    return None


class HookFixturesTest(unittest.TestCase):
    def setUp(self):
        # Every fixture must land exactly as sent, the ones holding secrets too: local
        # redaction (on by default; test_redact_default, test_sinks) is turned off here.
        self.d = h.Daemon(config="[redact]\nlocal = false\n").start()

    def tearDown(self):
        self.d.close()

    def wait_settled(self, count):
        """Waits until `count` events are stored and nothing waits in the spool (an emit that
        missed its budget under a slow build spooled its event instead)."""
        return self.d.wait_for(
            lambda st: st["spool"]["pending_files"] == 0 and st["journal"]["last_seq"] >= count,
            "%d events stored" % count)

    def emit_fixture(self, fx, extra=()):
        with open(os.path.join(FIXTURES, fx["file"]), "rb") as f:
            data = f.read()
        args = ["--source", fx["source"]] + list(extra)
        if fx["delivery"] == "argv-last":
            # Codex notify: stdin, stdout and stderr are /dev/null; the JSON is the last argument.
            r = subprocess.run([h.FERRY, "emit"] + args + ["--argv-json", data.decode()],
                               env=self.d.env(), stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=h.HANG_GUARD_S)
            return r.returncode, r.stdout, r.stderr, data
        if fx["delivery"] == "shell-snippet":
            payload = json.loads(data)
            args += ["--kind", fx["kind"], "--session", payload["session"]]
        rc, out, err, written, epipe = run_emit(args + ["--stdin"], self.d.env(), data)
        self.assertFalse(epipe, fx["file"])
        self.assertEqual(written, len(data), fx["file"])
        return rc, out, err, data

    def test_every_fixture_lands_once(self):
        fixtures = load_manifest()
        self.assertGreaterEqual(len(fixtures), 30)
        for fx in fixtures:
            rc, out, err, _ = self.emit_fixture(fx)
            self.assertEqual((rc, out, err), (0, b"", b""), fx["file"])
        self.wait_settled(len(fixtures))
        events = [r.body for r in self.d.journal()]
        self.assertEqual(len(events), len(fixtures))
        self.assertEqual(len({e["id"] for e in events}), len(events))
        for fx in fixtures:
            with open(os.path.join(FIXTURES, fx["file"]), "rb") as f:
                want = json.loads(f.read())
            found = [e for e in events if e.get("payload") == want]
            self.assertEqual(len(found), 1, fx["file"])
            e = found[0]
            self.assertEqual((e["source"], e["kind"]), (fx["source"], fx["kind"]), fx["file"])
            self.assertEqual(e.get("session"), expected_session(want, fx), fx["file"])
            if expected_cwd(want):
                self.assertEqual(e["cwd"], expected_cwd(want), fx["file"])
            self.assertNotIn("truncated", e)
            self.assertNotIn("payload_encoding", e)
            if fx.get("expect", {}).get("contains_nul"):
                self.assertTrue(any("\0" in v for v in strings(e["payload"])), fx["file"])

    def test_large_payload_truncated_and_flagged(self):
        fx = next(f for f in load_manifest() if f["file"] == "claude-code/PostToolUse-large.json")
        rc, out, err, data = self.emit_fixture(fx, ["--max-event-bytes", "65536"])
        self.assertEqual((rc, out, err), (0, b"", b""))
        self.wait_settled(1)
        [rec] = self.d.journal()
        e = rec.body
        self.assertEqual((e["truncated"], e["orig_size"], e["payload_encoding"]),
                         (True, len(data), "text"))
        self.assertIsInstance(e["payload"], str)
        self.assertTrue(data.decode().startswith(e["payload"]))
        self.assertGreater(len(e["payload"]), 50000)  # less the escapes' overhead
        self.assertLessEqual(len(json.dumps(e["payload"], ensure_ascii=False).encode()), 65536)
        # The kind and session still come from the whole input.
        self.assertEqual((e["kind"], e["session"]), ("PostToolUse", json.loads(data)["session_id"]))

    def test_truncation_cuts_at_a_character_boundary(self):
        text = ("é" * 40000).encode()  # 80000 bytes, 2 per character
        rc, out, err, written, epipe = run_emit(
            ["--source", "claude-code", "--stdin", "--max-event-bytes", "4097"], self.d.env(),
            text)
        self.assertEqual((rc, out, err, written, epipe), (0, b"", b"", len(text), False))
        self.wait_settled(1)
        e = self.d.journal()[0].body
        self.assertEqual((e["truncated"], e["orig_size"]), (True, 80000))
        self.assertEqual(e["payload"], "é" * len(e["payload"]))
        self.assertGreater(len(e["payload"]), 2000)

    def test_text_and_non_utf8_input_kept_as_a_flagged_string(self):
        cases = [(b"not json {", "not json {"),
                 (b"\xff\xfe caf\xc3\xa9 \x80", "\ufffd\ufffd caf\u00e9 \ufffd"),
                 (b'{"hook_event_name": "PreToolUse", "x": 1', '{"hook_event_name": "PreToolUse", "x": 1')]
        for data, _ in cases:
            rc, out, err, written, epipe = run_emit(["--source", "claude-code", "--stdin"],
                                                    self.d.env(), data)
            self.assertEqual((rc, out, err, written, epipe), (0, b"", b"", len(data), False))
        self.wait_settled(len(cases))
        events = [r.body for r in self.d.journal()]
        self.assertEqual([(e["kind"], e["payload_encoding"], e["payload"]) for e in events],
                         [("unknown", "text", want) for _, want in cases])

    def test_unknown_events_and_fields_kept(self):
        payload = {"hook_event_name": "SomeFutureEvent", "session_id": "s-1", "new_field": [1, {"a": None}],
                   "nested": {"deep": "ok"}}
        rc, out, err, _, _ = run_emit(["--source", "gemini", "--stdin"], self.d.env(),
                                      json.dumps(payload).encode())
        self.assertEqual((rc, out, err), (0, b"", b""))
        # --kind and --session given on the command line win over the payload's.
        rc, out, err, _, _ = run_emit(["--source", "gemini", "--stdin", "--kind", "K", "--session",
                                       "S"], self.d.env(), json.dumps(payload).encode())
        self.assertEqual((rc, out, err), (0, b"", b""))
        self.wait_settled(2)
        a, b = [r.body for r in self.d.journal()]
        self.assertEqual((a["kind"], a["session"], a["payload"]), ("SomeFutureEvent", "s-1", payload))
        self.assertEqual((b["kind"], b["session"], b["payload"]), ("K", "S", payload))

    def test_stdin_drained_on_usage_errors_and_daemon_down(self):
        data = b'{"hook_event_name":"Stop"}' + b" " * (300 << 10)  # over a pipe buffer
        rc, out, err, written, epipe = run_emit(["--source", "claude-code", "--stdin", "--bogus"],
                                                self.d.env(), data)
        self.assertEqual((rc, out, written, epipe), (0, b"", len(data), False))
        self.assertEqual(self.d.stop(), 0)
        start = time.monotonic()
        rc, out, err, written, epipe = run_emit(["--source", "claude-code", "--stdin"],
                                                self.d.env(), data)
        self.assertEqual((rc, out, err, written, epipe), (0, b"", b"", len(data), False))
        self.assertLess(time.monotonic() - start, 30)  # a hang guard, not a timing assert
        r = h.run_ferry(["status"], self.d.env())
        self.assertEqual(r.returncode, 3)
        self.assertIn("  spool    1 file(s), 1 event(s) waiting to be imported", r.stdout)


if __name__ == "__main__":
    unittest.main()
