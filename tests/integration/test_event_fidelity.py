"""An event is kept byte for byte (issue 10, defect 8): payloads with numbers a double cannot
hold, -0, 1.50, nesting at the depth limit, input that is not JSON or not UTF-8, sent with
--data and --stdin (and by a raw client, for the daemon's own rule), read back through
`ferry tail --json`, `ferry query` and the journal. What ferryd would not take as JSON is kept
as text (payload_encoding "text") holding the input, never dropped or refused."""

import json
import subprocess
import unittest

import ferry_harness as h

LIMIT = 253  # proto::kMaxPayloadDepth: 256 less the EVENT_BATCH envelope's 3 levels


def nested(depth):
    return "[" * depth + "]" * depth


# (name, payload bytes, kept as JSON?)
CASES = [
    ("bigint", b'{"a":123456789012345678901234567890}', True),
    ("u64plus1", b'{"b":18446744073709551616,"c":-18446744073709551617}', True),
    ("negzero", b'{"z":-0,"y":-0.0}', True),
    ("tenth", b'[0.1,1.0,1.50,1E2,1e-7,2.5e+3]', True),
    ("scalar", b'12345678901234567890123', True),
    ("depth-1", nested(LIMIT - 1).encode(), True),
    ("depth", nested(LIMIT).encode(), True),
    ("depth+1", nested(LIMIT + 1).encode(), False),
    ("depth300", nested(300).encode(), False),
    ("huge-exp", b'{"e":1e400}', False),  # beyond a double: ferry's parser refuses it
    ("notjson", b'not json {', False),
    ("trailing", b'{"a":1} x', False),
    ("surrogate", b'"\\udc00"', False),
]


class FidelityTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = h.Daemon(config='[store]\nbatch_interval = "20ms"\n')
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def emit(self, kind, payload, how):
        if how == "data":
            args = ["emit", "--source", "fid", "--kind", kind, "--data", payload, "--strict",
                    "--timeout-ms", "10000"]
            r = subprocess.run([h.FERRY] + [a if isinstance(a, bytes) else a.encode()
                                            for a in args],
                               env=self.d.env(), capture_output=True, timeout=h.HANG_GUARD_S)
        else:
            r = subprocess.run([h.FERRY, "emit", "--source", "fid", "--kind", kind, "--stdin",
                                "--strict", "--timeout-ms", "10000"], input=payload,
                               env=self.d.env(), capture_output=True, timeout=h.HANG_GUARD_S)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"", b""), kind)

    def tail(self):
        r = subprocess.run([h.FERRY, "tail", "--json", "--from", "1"], env=self.d.env(),
                           capture_output=True, timeout=h.HANG_GUARD_S)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.splitlines()

    def query_payloads(self, n):
        """{kind: payload column bytes}, once the store holds n rows."""
        self.d.wait_for(lambda s: s["store"]["rows"] >= n, "the store")
        r = subprocess.run([h.FERRY, "query", "--json", "SELECT kind, payload FROM events"],
                           env=self.d.env(), capture_output=True, timeout=h.HANG_GUARD_S)
        self.assertEqual(r.returncode, 0, r.stderr)
        # The payload column comes nested, as its stored bytes: the last member of each line.
        return {json.loads(line)["kind"]: self.raw_payload(line) for line in r.stdout.splitlines()}

    @staticmethod
    def raw_payload(line):
        """The payload's bytes in a `tail --json` line or journal body (the last member)."""
        at = line.index(b'"payload":')
        assert line.endswith(b"}")
        return line[at + len(b'"payload":'):-1]

    def check(self, sent):
        """sent: [(kind, payload bytes, kept as JSON)]."""
        lines = {json.loads(l)["kind"]: l for l in self.tail()}
        journal = {json.loads(r.body)["kind"]: r.body for r in self.d.journal(parse=False)}
        stored = self.query_payloads(len(lines))
        for kind, payload, as_json in sent:
            with self.subTest(kind=kind):
                event = json.loads(lines[kind])
                for where, got in (("tail", self.raw_payload(lines[kind])),
                                   ("journal", self.raw_payload(journal[kind])),
                                   ("query", stored[kind])):
                    if as_json:
                        self.assertEqual(got, payload, where)
                    else:
                        # Kept as text: a JSON string holding exactly the input.
                        self.assertEqual(json.loads(got), payload.decode(), where)
                if as_json:
                    self.assertNotIn("payload_encoding", event)
                else:
                    self.assertEqual(event["payload_encoding"], "text")

    def test_data_and_stdin_keep_every_byte(self):
        sent = []
        for how in ("data", "stdin"):
            for name, payload, as_json in CASES:
                if how == "stdin" and name == "notjson":
                    payload = b"  not json {\n"  # stdin keeps its whitespace as text too
                kind = "%s-%s" % (how, name)
                self.emit(kind, payload, how)
                sent.append((kind, payload, as_json))
        self.check(sent)

    def test_not_utf8_is_kept_as_text_never_dropped(self):
        for how in ("data", "stdin"):
            self.emit(how + "-latin1", b'{"name":"caf\xe9"}', how)
        lines = {json.loads(l)["kind"]: json.loads(l) for l in self.tail()}
        for how in ("data", "stdin"):
            ev = lines[how + "-latin1"]
            # The invalid byte becomes U+FFFD (a JSON string cannot hold it); the rest is kept.
            self.assertEqual((ev["payload"], ev["payload_encoding"]),
                             ('{"name":"caf\ufffd"}', "text"))

    def test_daemon_applies_the_same_depth_rule(self):
        # A client that does not know the rule (an older ferry, a script): ferryd keeps a
        # payload nested deeper than the limit as text rather than refusing the event.
        events = {}
        with self.d.client() as c:
            for name, depth in (("raw-limit", LIMIT), ("raw-limit+1", LIMIT + 1),
                                ("raw-256", 256 - 2), ("raw-deep", 2000)):
                ev = h.make_event(source="fid", kind=name)
                body = json.dumps({"v": 1, "event": ev})[:-2] + ',"payload":' + nested(depth) + "}}"
                c.send_raw(h.encode_frame(h.EVENT, body.encode()))
                ftype, reply = c.recv_frame()
                self.assertEqual(ftype, h.ACK, reply)
                events[name] = depth
            # EVENT_BATCH puts its envelopes one level deeper: the limit is the same payload depth.
            ev = h.make_event(source="fid", kind="raw-batch-limit")
            body = (json.dumps({"v": 1, "events": [ev]})[:-3] + ',"payload":' + nested(LIMIT)
                    + "}]}")
            c.send_raw(h.encode_frame(h.EVENT_BATCH, body.encode()))
            self.assertEqual(c.recv_frame()[0], h.ACK)
            events["raw-batch-limit"] = LIMIT
        lines = {json.loads(l)["kind"]: l for l in self.tail()}
        for name, depth in events.items():
            with self.subTest(name=name):
                got = self.raw_payload(lines[name])
                if depth <= LIMIT:
                    self.assertEqual(got, nested(depth).encode())
                else:
                    self.assertEqual(json.loads(got), nested(depth))
                    self.assertEqual(json.loads(lines[name])["payload_encoding"], "text")

    def test_spool_import_keeps_numbers(self):
        # Spooled by the client (ferryd stopped), imported at the next start.
        d = h.Daemon()
        self.addCleanup(d.close)
        payload = b'{"a":123456789012345678901234567890,"z":-0,"f":1.50}'
        r = subprocess.run([h.FERRY, "emit", "--source", "fid", "--kind", "spooled", "--data",
                            payload], env=d.env(), capture_output=True, timeout=h.HANG_GUARD_S)
        self.assertEqual((r.returncode, r.stderr), (0, b""))
        d.start()
        d.wait_for(lambda s: s["journal"]["last_seq"] == 1, "the spool import")
        (rec,) = d.journal(parse=False)
        self.assertEqual(self.raw_payload(rec.body), payload)


class RedactLocalFidelityTest(unittest.TestCase):
    """With [redact] local, a payload in which a rule matched keeps its numbers as sent; one
    without a match keeps every byte."""

    def test_redacted_payload_keeps_its_numbers(self):
        d = h.Daemon(config="[redact]\nlocal = true\n")
        self.addCleanup(d.close)
        d.start()
        secret = (b'{"n":123456789012345678901234567890,"key":"AKIAIOSFODNN7EXAMPLE",'
                  b'"z":-0,"f":[1.50,1E2],"password":"hunter2","k\\u00e9":"\\u00e9"}')
        clean = b'{"n":18446744073709551616,"s":"caf\\u00e9","f":1.50}'
        for kind, payload in (("secret", secret), ("clean", clean)):
            r = subprocess.run([h.FERRY, "emit", "--source", "fid", "--kind", kind, "--data",
                                payload, "--strict"], env=d.env(), capture_output=True,
                               timeout=h.HANG_GUARD_S)
            self.assertEqual((r.returncode, r.stderr), (0, b""))
        bodies = {json.loads(r.body)["kind"]: r.body for r in d.journal(parse=False)}
        got = FidelityTest.raw_payload(bodies["secret"])
        self.assertEqual(got, b'{"n":123456789012345678901234567890,"key":"[REDACTED:aws-access-key-id]",'
                              b'"z":-0,"f":[1.50,1E2],"password":"[REDACTED:secret-pair]","k\xc3\xa9":"\xc3\xa9"}')
        self.assertEqual(FidelityTest.raw_payload(bodies["clean"]), clean)


if __name__ == "__main__":
    unittest.main()
