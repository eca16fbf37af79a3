"""Upstream sinks end to end (docs/sinks.md): the real ferryd and ferry against the test
upstream of upstream_server.py on 127.0.0.1.

Delivery in seq order and exactly once against a healthy server; retries of 5xx, resets and
timeouts with the same Idempotency-Key; 429/503 Retry-After; 413 split down to one event and
dead-lettered; 401 pauses until SIGHUP; a 400 for one event dead-letters exactly that event,
then `ferry deadletter list/replay/purge`; SIGKILL mid-POST resends the same batch with the
same key; two sinks are independent; OTLP bodies validate against opentelemetry-proto; no
secret of the hook fixtures leaves the machine while the journal and ferry.db keep them;
`ferry flush`; the status keys; cursor and dead-letter files.

Waits poll a condition; timeouts are hang guards. Timing assertions are loose lower bounds.
"""

import json
import os
import re
import signal
import stat
import subprocess
import time
import unittest

import ferry_harness as h
from otlp_schema import validate_export_logs_request
from test_hooks import FIXTURES, load_manifest, run_emit
from upstream_server import UpstreamServer, http_date

GUARD = 90.0  # hang guard for deliveries (a slow sanitizer build with retries and backoff)

STATUS_KEYS = {"name", "type", "url", "cursor", "lag_events", "lag_s", "state", "last_success",
               "last_error", "next_retry", "consecutive_failures", "delivered_events",
               "delivered_batches", "requests", "bytes_sent", "deadlettered", "redacted",
               "skipped", "failures_total", "replay_pending", "tls_verify", "journal_seen",
               "failing_since", "degraded_after_s", "healthy"}
STATES = {"idle", "sending", "backing_off", "paused", "stopped"}
KEY_RE = re.compile(r"^ferry-(?P<sink>[A-Za-z0-9_.-]+)-(?P<host>[0-9a-f]{32})-(?P<first>\d+)-"
                    r"(?P<last>\d+)(?P<replay>-replay)?$")


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, dict):
        return "{ %s }" % ", ".join("%s = %s" % (json.dumps(k), toml_value(x)) for k, x in v.items())
    return json.dumps(v)


def sink_toml(name, url, type="http-json", **opts):
    """One [[sink]] table; fast defaults for tests unless overridden."""
    o = {"name": name, "type": type, "url": url, "max_events": 100, "batch_timeout": "50ms",
         "backoff_max": "1s", "timeout": "10s", "connect_timeout": "2s"}
    o.update(opts)
    return "[[sink]]\n" + "".join("%s = %s\n" % (k, toml_value(v)) for k, v in o.items()
                                  if v is not None) + "\n"


def send_events(d, n, batch=100, **kw):
    """Sends n events over the socket in EVENT_BATCH frames; returns [(seq, event)]."""
    out = []
    with d.client() as c:
        while len(out) < n:
            evs = [h.make_event(source="sinktest", kind="k%d" % ((len(out) + i) % 3),
                                session="s1", payload={"i": len(out) + i, "text": "x" * 40}, **kw)
                   for i in range(min(batch, n - len(out)))]
            ftype, ack = c.send_batch(evs)
            assert ftype == h.ACK, ack
            assert ack["last_seq"] - ack["first_seq"] + 1 == len(evs), ack
            out.extend(zip(range(ack["first_seq"], ack["last_seq"] + 1), evs))
    return out


def send_one(d, event):
    with d.client() as c:
        return c.ack(event)["first_seq"]


def read_json(path):
    with open(path) as f:
        return json.load(f)


def read_ndjson(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class SinkTest(unittest.TestCase):
    maxDiff = 4000

    # -- fixtures ---------------------------------------------------------------------------

    def server(self):
        srv = UpstreamServer().start()
        self.addCleanup(srv.close)
        return srv

    def daemon(self, config, env=None, start=True):
        d = h.Daemon(config=config, env=env)
        self.addCleanup(d.close)
        if start:
            d.start()
        return d

    # -- status helpers ---------------------------------------------------------------------

    def sink_status(self, d, name, st=None):
        st = st or d.status()
        for s in st.get("sinks", []):
            if s["name"] == name:
                return s
        raise AssertionError("no sink %r in status %r" % (name, st.get("sinks")))

    def wait_sink(self, d, name, pred, what):
        return d.wait_for(lambda st: any(s["name"] == name and pred(s) for s in st.get("sinks", [])),
                          "sink %s: %s" % (name, what))

    def wait_caught_up(self, d, name, idle=False):
        """Until the sink's cursor reaches the journal's last seq (and, with idle, its state
        says so too: the cursor moves a moment before the state does)."""
        st = d.wait_for(lambda st: any(s["name"] == name and s["cursor"] == st["journal"]["last_seq"]
                                       and (not idle or s["state"] == "idle")
                                       for s in st.get("sinks", [])),
                        "sink %s to catch up" % name)
        return self.sink_status(d, name, st)

    def wait_events(self, srv, n):
        return srv.wait_for_events(n, timeout=GUARD)

    # -- assertions -------------------------------------------------------------------------

    def assert_requests_well_formed(self, srv, name, fmt="http-json"):
        """Every request: POST, headers per docs/sinks.md ("Wire formats"), key matching its
        seqs; http-json bodies' own fields agree with the headers."""
        for r in srv.requests:
            self.assertEqual(r.method, "POST", r)
            self.assertIsNone(r.decode_error, r)
            self.assertEqual(r.headers.get("content-type"), "application/json", r)
            self.assertTrue(r.headers.get("user-agent", "").startswith("ferry/"), r.headers)
            self.assertEqual(r.headers.get("x-ferry-sink"), name, r)
            m = KEY_RE.match(r.key or "")
            self.assertIsNotNone(m, r.key)
            self.assertEqual(m["sink"], name)
            seqs = r.seqs
            self.assertTrue(seqs, r)
            self.assertEqual(seqs, sorted(seqs), r)
            self.assertEqual(len(set(seqs)), len(seqs), r)
            self.assertEqual((int(m["first"]), int(m["last"])), (seqs[0], seqs[-1]), r)
            self.assertEqual(r.headers.get("x-ferry-first-seq"), str(seqs[0]), r)
            self.assertEqual(r.headers.get("x-ferry-last-seq"), str(seqs[-1]), r)
            self.assertEqual(r.headers.get("x-ferry-count"), str(len(seqs)), r)
            if fmt == "http-json":
                b = r.json
                self.assertEqual((b["format"], b["sink"], b["first_seq"], b["last_seq"], b["count"]),
                                 ("ferry.batch.v1", name, seqs[0], seqs[-1], len(seqs)), r)
                self.assertEqual(b["host_id"], m["host"])
                self.assertIsInstance(b["host"], str)

    def assert_once_in_order(self, srv, sent):
        """Delivered (2xx) exactly the sent events, each once, in seq order."""
        got = [(e["seq"], e["id"]) for e in srv.delivered_events()]
        self.assertEqual(got, [(s, e["id"]) for s, e in sent])

    def assert_one_key_per_seq(self, srv):
        """The key is a function of the request's seq range (so a retry or a resend after a
        restart carries the same one), and a seq accepted more than once was accepted under
        one key: duplicates at the server only ever with the same Idempotency-Key. (A split
        or bisect sends a seq again inside a smaller range, which has its own key.)"""
        ranges = {}
        for r in srv.requests:
            seqs = [e.get("seq") for e in r.events]
            if not seqs:
                continue
            m = KEY_RE.match(r.key or "")
            self.assertIsNotNone(m, r.key)
            self.assertEqual((int(m["first"]), int(m["last"])), (seqs[0], seqs[-1]), r.key)
            ranges.setdefault(r.key, set()).add(tuple(seqs))
        for key, variants in ranges.items():
            self.assertEqual(len(variants), 1, "key %s was used for different batches" % key)
        accepted = {}
        for r in srv.accepted_batches():
            for e in r.events:
                accepted.setdefault(e.get("seq"), set()).add(r.key)
        for seq, keys in accepted.items():
            plain = {k for k in keys if not k.endswith("-replay")}
            self.assertLessEqual(len(plain), 1, "seq %d was accepted under keys %r" % (seq, keys))

    def assert_envelopes_match_journal(self, d, srv):
        journal = {r.seq: r for r in d.journal()}
        for e in srv.delivered_events():
            rec = journal[e["seq"]]
            want = dict(rec.body, seq=rec.seq, received=rec.received_ns)
            got = {k: v for k, v in e.items() if k != "_key"}
            self.assertEqual(got, want)

    # -- tests ------------------------------------------------------------------------------

    def test_healthy_server_gets_every_event_once_in_order(self):
        srv = self.server()
        d = self.daemon(sink_toml("central", srv.url("/ingest"), max_events=7))
        sent = send_events(d, 250, batch=13)
        self.wait_events(srv, 250)
        st = self.wait_caught_up(d, "central", idle=True)
        self.assert_once_in_order(srv, sent)
        self.assert_requests_well_formed(srv, "central")
        self.assert_envelopes_match_journal(d, srv)
        self.assertTrue(all(len(r.events) <= 7 for r in srv.requests))
        self.assertTrue(all(r.status == 200 for r in srv.requests))
        self.assertEqual(srv.duplicates(), {})
        # Keep-alive: one connection carries every request.
        self.assertEqual(srv.connections, 1)
        # Status counters and keys.
        self.assertEqual(set(st) - STATUS_KEYS, set(), st)
        self.assertEqual(STATUS_KEYS - set(st), set(), st)
        self.assertEqual((st["name"], st["type"], st["url"]),
                         ("central", "http-json", srv.url("/ingest")))
        self.assertEqual((st["cursor"], st["lag_events"], st["lag_s"], st["state"]),
                         (sent[-1][0], 0, 0, "idle"))
        self.assertEqual((st["delivered_events"], st["delivered_batches"], st["requests"]),
                         (250, len(srv.requests), len(srv.requests)))
        self.assertGreaterEqual(st["bytes_sent"], sum(len(r.raw_body) for r in srv.requests))
        self.assertEqual((st["consecutive_failures"], st["deadlettered"], st["skipped"]), (0, 0, 0))
        self.assertIsNone(st["last_error"])
        self.assertIsNone(st["next_retry"])
        self.assertRegex(st["last_success"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
        # The cursor file.
        cur = read_json(os.path.join(d.state_dir, "cursors", "central"))
        self.assertEqual(cur["cursor"], sent[-1][0])
        r = h.run_ferry(["status"], d.env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_max_bytes_and_gzip(self):
        srv = self.server()
        d = self.daemon(sink_toml("z", srv.url("/z"), max_events=1000, max_bytes="4KiB", gzip=True))
        sent = send_events(d, 120)
        big = h.make_event(source="sinktest", kind="big", payload={"blob": "b" * 9000})
        big_seq = send_one(d, big)
        sent.append((big_seq, big))
        self.wait_events(srv, 121)
        self.assert_once_in_order(srv, sent)
        self.assert_requests_well_formed(srv, "z")
        for r in srv.requests:
            self.assertEqual(r.headers.get("content-encoding"), "gzip", r)
            if len(r.events) > 1:
                self.assertLessEqual(len(r.body), 4096, r)
        # The event bigger than max_bytes went alone.
        [alone] = [r for r in srv.requests if big_seq in r.seqs]
        self.assertEqual(alone.seqs, [big_seq])
        self.assertGreater(len(alone.body), 9000)

    def test_5xx_retried_with_the_same_key(self):
        srv = self.server()
        srv.fail_next(4)
        srv.fail_next(1, status=502, body="<html>bad gateway</html>")
        d = self.daemon(sink_toml("c", srv.url(), backoff_max="500ms"))
        sent = send_events(d, 40, batch=40)
        self.wait_events(srv, 40)
        st = self.wait_caught_up(d, "c", idle=True)
        self.assert_once_in_order(srv, sent)
        self.assert_one_key_per_seq(srv)
        self.assert_requests_well_formed(srv, "c")
        reqs = srv.requests
        self.assertEqual([r.status for r in reqs[:5]], [500, 500, 500, 500, 502])
        # The failed batch went again as it was: same seqs, same key.
        self.assertEqual({(r.key, tuple(r.seqs)) for r in reqs[:6]}, {(reqs[0].key, tuple(reqs[0].seqs))})
        self.assertEqual(reqs[5].status, 200)
        self.assertEqual(st["delivered_events"], 40)
        self.assertEqual(st["consecutive_failures"], 0)
        self.assertGreaterEqual(st["requests"], 6)

    def test_409_for_a_known_key_counts_as_done(self):
        """The same seqs get the same key across restarts; a server that dedupes answers 409
        and the sink moves on."""
        d = self.daemon(None)
        sent = send_events(d, 30, batch=30)
        d.stop()
        srv = self.server()
        srv.dedupe_by_key(True)
        d.config_path = os.path.join(d.root, "config.toml")
        with open(d.config_path, "w") as f:
            f.write(sink_toml("c", srv.url(), max_events=10))
        d.start()
        self.wait_events(srv, 30)
        self.wait_caught_up(d, "c")
        self.assertEqual([(r.status, r.seqs[0], r.seqs[-1]) for r in srv.requests],
                         [(200, sent[0][0], sent[9][0]), (200, sent[10][0], sent[19][0]),
                          (200, sent[20][0], sent[29][0])])
        keys = [r.key for r in srv.requests]
        d.stop()
        os.unlink(os.path.join(d.state_dir, "cursors", "c"))  # forget what was delivered
        d.start()
        st = self.wait_caught_up(d, "c", idle=True)
        self.assertEqual([(r.status, r.key) for r in srv.requests[3:]], [(409, k) for k in keys])
        self.assert_once_in_order(srv, sent)
        self.assertEqual((st["state"], st["deadlettered"], st["consecutive_failures"]), ("idle", 0, 0))
        self.assertIsNotNone(st["last_success"])

    def test_retry_after_seconds_and_date_honoured_and_capped(self):
        srv = self.server()
        srv.throttle_next(1, retry_after="2")
        srv.throttle_next(1, retry_after=lambda: http_date(3), status=503)  # dated when answered
        d = self.daemon(sink_toml("c", srv.url(), backoff_max="30s"))
        sent = send_events(d, 20, batch=20)
        self.wait_events(srv, 20)
        self.assert_once_in_order(srv, sent)
        self.assert_one_key_per_seq(srv)
        r1, r2, r3 = srv.requests[:3]
        self.assertEqual((r1.status, r2.status, r3.status), (429, 503, 200))
        # Lower bounds only, with slack: 2 s, and an HTTP date (1 s resolution) ~3 s ahead.
        self.assertGreaterEqual(r2.mono - r1.answered_mono, 1.5)
        self.assertGreaterEqual(r3.mono - r2.answered_mono, 1.0)

        # Retry-After is capped at backoff_max.
        srv2 = self.server()
        srv2.throttle_next(1, retry_after="3600")
        d2 = self.daemon(sink_toml("c", srv2.url(), backoff_max="1s"))
        sent2 = send_events(d2, 5, batch=5)
        self.wait_events(srv2, 5)
        self.assert_once_in_order(srv2, sent2)
        self.assertLess(srv2.requests[1].mono - srv2.requests[0].answered_mono, 60)

    def test_413_split_to_single_event_then_dead_letter(self):
        srv = self.server()
        limit = 3000
        srv.max_body_bytes(limit)
        d = self.daemon(sink_toml("c", srv.url(), max_events=64, batch_timeout="500ms"))
        with d.client() as c:
            evs = [h.make_event(source="sinktest", kind="small", payload={"i": i, "t": "y" * 60})
                   for i in range(40)]
            big = h.make_event(source="sinktest", kind="big", payload={"blob": "B" * 6000})
            evs.insert(17, big)
            ack = c.send_batch(evs)[1]
        seqs = list(range(ack["first_seq"], ack["last_seq"] + 1))
        big_seq = seqs[17]
        self.wait_sink(d, "c", lambda s: s["deadlettered"] == 1 and s["cursor"] == seqs[-1],
                       "the big event dead-lettered and the rest delivered")
        want = [(s, e["id"]) for s, e in zip(seqs, evs) if e is not big]
        self.assertEqual([(e["seq"], e["id"]) for e in srv.delivered_events()], want)
        self.assert_one_key_per_seq(srv)
        self.assert_requests_well_formed(srv, "c")
        for r in srv.accepted_batches():
            self.assertLessEqual(len(r.body), limit, r)
        lone = [r for r in srv.requests if r.seqs == [big_seq]]
        self.assertTrue(lone and all(r.status == 413 for r in lone), lone)
        self.assertTrue(any(r.status == 413 and len(r.events) > 1 for r in srv.requests))
        # The dead-letter line (docs/sinks.md, "Dead letters").
        path = os.path.join(d.state_dir, "deadletter", "c.ndjson")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode) & 0o077, 0)
        [line] = read_ndjson(path)
        self.assertEqual((line["sink"], line["seq"], line["id"], line["status"]),
                         ("c", big_seq, big["id"], 413))
        self.assertRegex(line["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        self.assertIn("over %d" % limit, line["response"])
        self.assertEqual((line["event"]["seq"], line["event"]["id"], line["event"]["payload"]),
                         (big_seq, big["id"], big["payload"]))
        # Dead letters make `ferry status` exit 1 and say why.
        r = h.run_ferry(["status", "--json"], d.env())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertTrue(any("c" in p for p in json.loads(r.stdout)["problems"]), r.stdout)

    def test_401_pauses_until_sighup(self):
        srv = self.server()
        srv.unauthorized()
        d = self.daemon(sink_toml("auth", srv.url()))
        sent = send_events(d, 30, batch=30)
        st = self.wait_sink(d, "auth", lambda s: s["state"] == "paused", "paused")
        s = self.sink_status(d, "auth", st)
        self.assertEqual(s["last_error"]["status"], 401)
        self.assertIn("unauthorized", s["last_error"]["body"])
        self.assertIsNotNone(s["next_retry"])
        self.assertEqual(s["cursor"], 0)
        r = h.run_ferry(["status", "--json"], d.env())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertTrue(any("auth" in p for p in json.loads(r.stdout)["problems"]), r.stdout)
        r = h.run_ferry(["status"], d.env())
        self.assertEqual(r.returncode, 1)
        self.assertIn("paused", r.stdout + r.stderr)
        # flush --wait gives up at once on a paused sink.
        r = h.run_ferry(["flush", "--wait", "--timeout", "60s"], d.env())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertTrue("401" in r.stdout + r.stderr or "auth" in r.stdout + r.stderr, r)
        self.assertEqual(srv.delivered_events(), [])
        # Retried every 60 s only: no hammering meanwhile.
        n = len(srv.requests)
        self.assertLessEqual(n, 3, srv.requests)
        srv.reset_auth()
        d.proc.send_signal(signal.SIGHUP)
        self.wait_events(srv, 30)
        self.assert_once_in_order(srv, sent)
        self.wait_sink(d, "auth", lambda s: s["state"] == "idle", "idle after the reload")
        self.assertEqual(h.run_ferry(["status"], d.env()).returncode, 0)

    def test_403_404_pause_too(self):
        for status in (403, 404):
            srv = self.server()
            srv.unauthorized(status)
            d = self.daemon(sink_toml("p", srv.url()))
            send_events(d, 10, batch=10)
            st = self.wait_sink(d, "p", lambda s: s["state"] == "paused", "paused on %d" % status)
            self.assertEqual(self.sink_status(d, "p", st)["last_error"]["status"], status)
            self.assertEqual(self.sink_status(d, "p", st)["deadlettered"], 0)
            self.assertFalse(os.path.exists(os.path.join(d.state_dir, "deadletter", "p.ndjson"))
                             and read_ndjson(os.path.join(d.state_dir, "deadletter", "p.ndjson")))

    def test_400_dead_letters_exactly_one_event_then_replay_and_purge(self):
        srv = self.server()
        d = self.daemon(sink_toml("dl", srv.url(), max_events=50, batch_timeout="300ms"))
        evs = [h.make_event(source="sinktest", kind="k", payload={"i": i}) for i in range(60)]
        srv.reject_event(evs[23]["id"])
        with d.client() as c:
            ack = c.send_batch(evs)[1]
        seqs = list(range(ack["first_seq"], ack["last_seq"] + 1))
        bad_seq, bad_id = seqs[23], evs[23]["id"]
        self.wait_caught_up(d, "dl")
        self.assertEqual([(e["seq"], e["id"]) for e in srv.delivered_events()],
                         [(s, e["id"]) for s, e in zip(seqs, evs) if e["id"] != bad_id])
        self.assert_requests_well_formed(srv, "dl")
        self.assert_one_key_per_seq(srv)
        st = self.sink_status(d, "dl")
        self.assertEqual((st["deadlettered"], st["lag_events"]), (1, 0))
        [line] = read_ndjson(os.path.join(d.state_dir, "deadletter", "dl.ndjson"))
        self.assertEqual((line["seq"], line["id"], line["status"], line["sink"]),
                         (bad_seq, bad_id, 400, "dl"))
        self.assertIn(bad_id, line["response"])
        self.assertEqual(line["event"]["payload"], {"i": 23})

        # list (works without ferryd too)
        r = h.run_ferry(["deadletter", "list"], d.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(bad_id, r.stdout)
        r = h.run_ferry(["deadletter", "list", "--sink", "dl", "--json"], d.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(bad_id, r.stdout)
        self.assertEqual(h.run_ferry(["status"], d.env()).returncode, 1)
        # While ferryd runs, list asks it (op "list"): a client whose own state dir is empty
        # still sees the letter, and listing leaves the file as it was.
        before = open(os.path.join(d.state_dir, "deadletter", "dl.ndjson")).read()
        env = dict(d.env(), FERRY_STATE_DIR=os.path.join(d.root, "elsewhere"))
        r = h.run_ferry(["deadletter", "list", "--json"], env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([(l["seq"], l["id"]) for l in map(json.loads, r.stdout.splitlines())],
                         [(bad_seq, bad_id)])
        self.assertEqual(open(os.path.join(d.state_dir, "deadletter", "dl.ndjson")).read(), before)
        self.assertEqual(self.sink_status(d, "dl")["deadlettered"], 1)
        r = h.run_ferry(["deadletter", "list", "--sink", "nope"], d.env())
        self.assertEqual(r.returncode, 1)
        self.assertIn('no sink named "nope"', r.stderr)

        # replay once the server takes it: delivered with a -replay key, the file is gone.
        srv.accept_event(bad_id)
        r = h.run_ferry(["deadletter", "replay", "--sink", "dl"], d.env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        srv.wait_for(lambda s: any(e["id"] == bad_id for e in s.delivered_events()),
                     "the replayed event", GUARD)
        [rep] = [e for e in srv.delivered_events() if e["id"] == bad_id]
        self.assertEqual(rep["seq"], bad_seq)
        self.assertTrue(rep["_key"].endswith("-%d-%d-replay" % (bad_seq, bad_seq)), rep["_key"])
        self.wait_sink(d, "dl", lambda s: s["deadlettered"] == 0, "dead letters replayed")
        replay_file = os.path.join(d.state_dir, "deadletter", "dl.replay.ndjson")
        d.wait_for(lambda st: not os.path.exists(replay_file), "the replay file to go")
        r = h.run_ferry(["deadletter", "list"], d.env())
        self.assertNotIn(bad_id, r.stdout)
        self.assertEqual(h.run_ferry(["status"], d.env()).returncode, 0)

        # purge
        other = h.make_event(source="sinktest", kind="k", payload={"i": "other"})
        srv.reject_event(other["id"])
        send_one(d, other)
        self.wait_sink(d, "dl", lambda s: s["deadlettered"] == 1, "a second dead letter")
        r = h.run_ferry(["deadletter", "purge", "--sink", "dl"], d.env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.wait_sink(d, "dl", lambda s: s["deadlettered"] == 0, "purged")
        path = os.path.join(d.state_dir, "deadletter", "dl.ndjson")
        self.assertTrue(not os.path.exists(path) or read_ndjson(path) == [])
        self.assertNotIn(other["id"], h.run_ferry(["deadletter", "list"], d.env()).stdout)
        self.assertEqual(h.run_ferry(["status"], d.env()).returncode, 0)

    def test_http_json_sends_payload_numbers_exactly_as_received(self):
        # The payload leaves the machine as the journal holds it: a document would send
        # 1.2345678901234568e29 for the first number, and rapidjson 1.1 read 0e-77 as 8.96e102.
        srv = self.server()
        d = self.daemon(sink_toml("ex", srv.url(), redact=False))
        payload = '{"big":123456789012345678901234567890,"f":1.50,"z":-0,"e":0e-77,"n":[1E2]}'
        r = d.emit("--source", "nums", "--kind", "k", "--data", payload, "--print-ack")
        self.assertEqual(r.returncode, 0, r.stderr)
        seq = int(r.stdout)
        srv.wait_for_events(1)
        [req] = [q for q in srv.requests if seq in q.seqs]
        body = req.body.decode() if isinstance(req.body, bytes) else req.body
        self.assertIn('"payload":' + payload, body)

    def test_dead_letter_keeps_the_event_exactly_and_replay_sends_it_unchanged(self):
        # Issue 10, defect 1: the dead-letter writer cut the last digit of "received".
        srv = self.server()
        d = self.daemon(sink_toml("ex", srv.url(), max_events=10, batch_timeout="20ms"))
        evs = [h.make_event(source="sinktest", kind="k", session="s9", cwd="/tmp/x",
                            payload={"i": i, "big": 123456789012, "s": "\u00e9"}) for i in range(5)]
        srv.reject_event(evs[2]["id"])
        with d.client() as c:
            ack = c.send_batch(evs)[1]
        bad_seq = ack["first_seq"] + 2
        # flush asks for a sync and hurries the sink; the wait below is what synchronises (a
        # loaded sanitizer run once needed more than flush's 60 s for the bisect and the
        # dead letter's fdatasync, so flush's own timeout, exit 2, is not a failure here).
        r = h.run_ferry(["flush", "--wait", "--timeout", "60s"], d.env())
        self.assertIn(r.returncode, (0, 1, 2), r.stdout + r.stderr)  # 1: the 400 is a failure
        self.wait_sink(d, "ex", lambda s: s["deadlettered"] == 1 and s["lag_events"] == 0,
                       "the dead letter written")
        r = h.run_ferry(["tail", "--json", "--from", str(bad_seq)], d.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        tailed = json.loads(r.stdout.splitlines()[0])
        self.assertEqual((tailed["seq"], tailed["id"]), (bad_seq, evs[2]["id"]))
        [rec] = [x for x in d.journal() if x.seq == bad_seq]
        self.assertEqual(tailed["received"], rec.received_ns)
        r = h.run_ferry(["deadletter", "list", "--json"], d.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        [entry] = [json.loads(line) for line in r.stdout.splitlines()]  # one object per line
        self.assertEqual((entry["sink"], entry["seq"], entry["id"], entry["status"]),
                         ("ex", bad_seq, evs[2]["id"], 400))
        self.assertEqual(sorted(entry["event"]), sorted(tailed))
        for key in tailed:
            self.assertEqual(entry["event"][key], tailed[key], key)
        self.assertEqual(entry["event"]["received"], rec.received_ns)

        # The replay sends the original received time (and the rest) upstream.
        srv.accept_event(evs[2]["id"])
        r = h.run_ferry(["deadletter", "replay", "--sink", "ex"], d.env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        srv.wait_for(lambda s: any(e["id"] == evs[2]["id"] for e in s.delivered_events()),
                     "the replayed event", GUARD)
        [sent] = [e for e in srv.delivered_events() if e["id"] == evs[2]["id"]]
        self.assertTrue(sent["_key"].endswith("-%d-%d-replay" % (bad_seq, bad_seq)), sent["_key"])
        self.assertEqual({k: v for k, v in sent.items() if k != "_key"},
                         dict(rec.body, seq=bad_seq, received=rec.received_ns))

    def test_401_body_echoing_the_token_is_redacted_in_status_and_flush(self):
        # Issue 10, defect 13a: a 401 body that echoes the Authorization header went verbatim
        # into `ferry status` and `ferry flush`.
        srv = self.server()
        root = h.make_tempdir()
        self.addCleanup(subprocess.run, ["rm", "-rf", root])
        tok = os.path.join(root, "tok")
        with open(tok, "w") as f:
            f.write("Zq9-s3cr3t-T0KEN-77\n")
        os.chmod(tok, 0o600)
        aws = "AKIAIOSFODNN7EXAMPLE"  # a built-in detector's kind of secret
        srv.unauthorized(echo_auth=True, extra="key=" + aws)
        d = self.daemon(sink_toml("au", srv.url(), token_file=tok))
        send_events(d, 3, batch=3)
        st = self.wait_sink(d, "au", lambda s: s["state"] == "paused", "paused on 401")
        self.assertIn("Zq9-s3cr3t-T0KEN-77", srv.requests[0].response_body.decode())
        body = self.sink_status(d, "au", st)["last_error"]["body"]
        self.assertIn("Authorization: Bearer [REDACTED:token]", body)
        shown = [h.run_ferry(["status", "--json"], d.env()), h.run_ferry(["status"], d.env()),
                 h.run_ferry(["flush"], d.env()),
                 h.run_ferry(["flush", "--wait", "--timeout", "30s"], d.env())]
        self.assertEqual(shown[3].returncode, 1, shown[3].stdout + shown[3].stderr)
        self.assertIn("401", shown[3].stdout + shown[3].stderr)
        for r in shown:
            out = r.stdout + r.stderr
            self.assertNotIn("Zq9-s3cr3t-T0KEN-77", out)
            self.assertNotIn("s3cr3t-T0KEN", out)
            self.assertNotIn(aws, out)
        self.assertNotIn("Zq9-s3cr3t-T0KEN-77", d.log())

    def test_deadletter_commands_without_ferryd(self):
        srv = self.server()
        d = self.daemon(sink_toml("off", srv.url()))
        ev = h.make_event(source="sinktest", kind="k")
        srv.reject_event(ev["id"], status=422)
        send_one(d, ev)
        self.wait_sink(d, "off", lambda s: s["deadlettered"] == 1, "dead-lettered")
        self.assertEqual(d.stop(), 0)
        r = h.run_ferry(["deadletter", "list", "--json"], d.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(ev["id"], r.stdout)
        r = h.run_ferry(["deadletter", "purge"], d.env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        path = os.path.join(d.state_dir, "deadletter", "off.ndjson")
        self.assertTrue(not os.path.exists(path) or read_ndjson(path) == [])

    def test_connection_reset_and_stall_past_timeout_are_retried(self):
        srv = self.server()
        srv.reset_next(2)
        d = self.daemon(sink_toml("r", srv.url(), timeout="1s", backoff_max="300ms"))
        sent = send_events(d, 25, batch=25)
        self.wait_events(srv, 25)
        self.assert_once_in_order(srv, sent)
        self.assert_one_key_per_seq(srv)
        self.assertEqual([r.status for r in srv.requests[:3]], [None, None, 200])
        # A request held past the sink's timeout: the sink gives up and sends it again.
        srv.stall_next(1, 4.0)
        sent2 = send_events(d, 25, batch=25)
        self.wait_events(srv, 50)
        self.wait_caught_up(d, "r")
        self.assert_once_in_order(srv, sent + sent2)
        self.assert_one_key_per_seq(srv)
        srv.wait_for(lambda s: any(r.note == "client closed while stalled" for r in s.requests),
                     "the stalled request to end", GUARD)
        stalled = [r for r in srv.requests if r.note == "client closed while stalled"]
        self.assertEqual(len(stalled), 1)
        self.assertIn(stalled[0].key, {r.key for r in srv.accepted_batches()})

    def test_sigkill_mid_post_resends_the_same_batch(self):
        srv = self.server()
        srv.stall_until_released(1)
        d = self.daemon(sink_toml("k", srv.url(), timeout="60s", max_events=1000,
                                  batch_timeout="200ms"))
        sent = send_events(d, 50, batch=50)
        srv.wait_stalled(1, GUARD)
        [held] = [r for r in srv.requests if r.note == "pending"]
        self.assertTrue(held.seqs)
        cur = read_json(os.path.join(d.state_dir, "cursors", "k"))
        self.assertEqual((cur["inflight_first"], cur["inflight_last"]), (held.seqs[0], held.seqs[-1]))
        d.kill()
        srv.release_stalled()
        srv.wait_for(lambda s: held.note != "pending", "the held request to end", GUARD)
        self.assertIsNone(held.status)  # its client died: never answered
        d.start()
        more = send_events(d, 10, batch=10)
        self.wait_events(srv, 60)
        self.wait_caught_up(d, "k")
        after = [r for r in srv.requests if r.n > held.n]
        self.assertEqual((after[0].seqs, after[0].key), (held.seqs, held.key))
        self.assert_once_in_order(srv, sent + more)
        self.assert_one_key_per_seq(srv)
        self.assert_requests_well_formed(srv, "k")

    def test_two_sinks_are_independent(self):
        bad, good = self.server(), self.server()
        bad.fail_next(10 ** 6, status=500)
        d = self.daemon(sink_toml("bad", bad.url()) + sink_toml("good", good.url(), max_events=20))
        sent = send_events(d, 300, batch=50)
        self.wait_events(good, 300)
        self.assert_once_in_order(good, sent)
        self.wait_caught_up(d, "good")
        st = d.status()
        g, b = self.sink_status(d, "good", st), self.sink_status(d, "bad", st)
        self.assertEqual((g["cursor"], g["lag_events"]), (sent[-1][0], 0))
        self.assertEqual((b["cursor"], b["lag_events"], b["delivered_events"]), (0, 300, 0))
        self.assertIn(b["state"], {"backing_off", "sending"})
        self.assertGreaterEqual(b["consecutive_failures"], 1)
        self.assertEqual(b["last_error"]["status"], 500)
        self.assertEqual(bad.delivered_events(), [])
        self.assertTrue(all(r.status == 500 for r in bad.requests))
        self.wait_sink(d, "bad", lambda s: s["lag_s"] > 0, "lag_s to grow")
        for s in (g, b):
            self.assertEqual(set(s), STATUS_KEYS)
            self.assertIn(s["state"], STATES)

    def test_otlp_http_bodies_validate(self):
        srv = self.server()
        d = self.daemon(sink_toml("otel", srv.url("/collector"), type="otlp-http", gzip=True,
                                  max_events=16))
        payloads = [{"tool_name": "Bash", "n": 3, "neg": -7, "f": 1.5, "ok": True, "none": None,
                     "list": [1, "two", {"three": 3}], "nested": {"a": {"b": []}}},
                    "plain text", 42, [True, False], None, {"big": 2 ** 62}]
        sent = []
        with d.client() as c:
            for i in range(40):
                ev = h.make_event(source="claude-code", kind="PreToolUse", session="sess",
                                  payload=payloads[i % len(payloads)], cwd="/tmp/x")
                sent.append((c.ack(ev)["first_seq"], ev))
        self.wait_events(srv, 40)
        self.assert_requests_well_formed(srv, "otel", fmt="otlp")
        journal = {r.seq: r for r in d.journal()}
        for r in srv.requests:
            self.assertEqual(r.path, "/collector/v1/logs")
            self.assertEqual(r.headers.get("content-encoding"), "gzip")
            self.assertEqual(validate_export_logs_request(r.json), [], r)
            [rl] = r.json["resourceLogs"]
            attrs = {kv["key"]: kv["value"] for kv in rl["resource"]["attributes"]}
            self.assertEqual(attrs["service.name"], {"stringValue": "ferry"})
            self.assertRegex(attrs["host.id"]["stringValue"], r"^[0-9a-f]{32}$")
            self.assertIn("host.name", attrs)
            self.assertIn("service.version", attrs)
            [sl] = rl["scopeLogs"]
            self.assertEqual(sl["scope"]["name"], "ferry")
            for lr in sl["logRecords"]:
                self.assertEqual((lr["severityNumber"], lr["severityText"]), (9, "INFO"))
        got = srv.delivered_events()
        self.assertEqual([(e["seq"], e["id"]) for e in got], [(s, e["id"]) for s, e in sent])
        for e, (seq, ev) in zip(got, sent):
            rec = journal[seq]
            self.assertEqual(e.get("payload"), ev.get("payload"), e)
            self.assertEqual((e["source"], e["kind"], e["session"], e["cwd"]),
                             ("claude-code", "PreToolUse", "sess", "/tmp/x"))
            self.assertEqual((e["ts"], e["received"]), (ev["ts"], rec.received_ns))
        # A URL already ending in /v1/logs is kept as is.
        srv2 = self.server()
        d2 = self.daemon(sink_toml("otel2", srv2.url("/v1/logs"), type="otlp-http"))
        send_events(d2, 3, batch=3)
        self.wait_events(srv2, 3)
        self.assertEqual({r.path for r in srv2.requests}, {"/v1/logs"})

    def test_redaction_keeps_fixture_secrets_local(self):
        fixtures = [f for f in load_manifest() if f.get("expect", {}).get("secrets")]
        self.assertGreaterEqual(len(fixtures), 3)
        secrets = sorted({s for f in fixtures for s in f["expect"]["secrets"]})
        srv = self.server()
        d = self.daemon(sink_toml("red", srv.url(), redact=True)
                        + sink_toml("otel", srv.url("/otel"), type="otlp-http", redact=True)
                        + "[redact]\nbuiltin = true\nlocal = false\n"
                        + '[store]\nbatch_interval = "20ms"\n')
        for fx in fixtures:
            with open(os.path.join(FIXTURES, fx["file"]), "rb") as f:
                data = f.read()
            args = ["--source", fx["source"], "--timeout-ms", "10000", "--strict"]
            if fx["delivery"] == "shell-snippet":
                payload = json.loads(data)
                args += ["--kind", fx["kind"], "--session", payload["session"]]
            if fx["delivery"] == "argv-last":
                r = subprocess.run([h.FERRY, "emit"] + args + ["--argv-json", data.decode()],
                                   env=d.env(), stdin=subprocess.DEVNULL, capture_output=True,
                                   timeout=h.HANG_GUARD_S)
                self.assertEqual(r.returncode, 0, fx["file"])
            else:
                rc, out, err, _, epipe = run_emit(args + ["--stdin"], d.env(), data)
                self.assertEqual((rc, epipe), (0, False), (fx["file"], err))
        n = len(fixtures)
        srv.wait_for(lambda s: len([e for e in s.delivered_events()]) >= 2 * n,
                     "both sinks to deliver", GUARD)
        self.wait_caught_up(d, "red")
        self.wait_caught_up(d, "otel")
        self.assertEqual(len(srv.delivered_events()), 2 * n)
        for r in srv.requests:
            blobs = [r.body, r.raw_body, json.dumps(r.headers).encode()]
            for secret in secrets:
                forms = {secret.encode(), json.dumps(secret)[1:-1].encode()}
                for blob in blobs:
                    for form in forms:
                        self.assertNotIn(form, blob, "%s leaked in %r" % (secret, r))
        joined = b"".join(r.body for r in srv.requests)
        self.assertIn(b"[REDACTED:", joined)
        self.assertGreater(self.sink_status(d, "red")["redacted"], 0)
        self.assertGreater(self.sink_status(d, "otel")["redacted"], 0)
        self.assertEqual(validate_export_logs_request(
            [r for r in srv.requests if r.path.startswith("/otel")][0].json), [])
        # ferryd's log does not show them either.
        for secret in secrets:
            self.assertNotIn(secret, d.log())
        # Local copies keep what the hooks sent (local = false, the opt-out).
        journal = json.dumps([r.body for r in d.journal()])
        for secret in secrets:
            self.assertIn(json.dumps(secret)[1:-1], journal)
        d.wait_for(lambda st: st["store"]["cursor"] == st["journal"]["last_seq"], "store")
        r = h.run_ferry(["query", "SELECT payload FROM events ORDER BY seq", "--json"], d.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        for secret in secrets:
            self.assertTrue(secret in r.stdout or json.dumps(secret)[1:-1] in r.stdout, secret)

    def test_redact_local_keeps_secrets_out_of_the_journal_and_store(self):
        fixtures = [f for f in load_manifest() if f.get("expect", {}).get("secrets")
                    and f["delivery"] == "stdin"]
        self.assertGreaterEqual(len(fixtures), 2)
        secrets = sorted({s for f in fixtures for s in f["expect"]["secrets"]})
        d = self.daemon('[redact]\nlocal = true\n[store]\nbatch_interval = "20ms"\n')
        for fx in fixtures:
            with open(os.path.join(FIXTURES, fx["file"]), "rb") as f:
                data = f.read()
            rc, out, err, _, epipe = run_emit(["--source", fx["source"], "--timeout-ms", "10000",
                                               "--strict", "--stdin"], d.env(), data)
            self.assertEqual((rc, epipe), (0, False), (fx["file"], err))
        # And through the spool: ferryd stopped, the hook spools, ferryd imports on start.
        d.stop()
        fx = fixtures[0]
        with open(os.path.join(FIXTURES, fx["file"]), "rb") as f:
            data = f.read()
        rc, out, err, _, epipe = run_emit(["--source", fx["source"], "--stdin"], d.env(), data)
        self.assertEqual(rc, 0, err)
        d.start()
        n = len(fixtures) + 1
        d.wait_for(lambda st: st["journal"]["last_seq"] == n, "the spooled event imported")
        d.wait_for(lambda st: st["store"]["cursor"] == n, "the store")
        journal = json.dumps([r.body for r in d.journal()])
        self.assertIn("[REDACTED:", journal)
        r = h.run_ferry(["query", "SELECT payload FROM events ORDER BY seq", "--json"], d.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        for secret in secrets:
            for form in (secret, json.dumps(secret)[1:-1]):
                self.assertNotIn(form, journal, secret)
                self.assertNotIn(form, r.stdout, secret)

    def test_unwritable_dead_letter_file_holds_the_cursor_until_it_can_be_written(self):
        srv = self.server()
        d = self.daemon(sink_toml("dw", srv.url(), max_events=10), start=False)
        # A directory where the dead-letter file goes: every append fails (EISDIR), even as root.
        dl = os.path.join(d.state_dir, "deadletter", "dw.ndjson")
        os.makedirs(dl)
        d.start()
        evs = [h.make_event(source="sinktest", kind="k", payload={"i": i}) for i in range(6)]
        srv.reject_event(evs[2]["id"])
        with d.client() as c:
            ack = c.send_batch(evs)[1]
        seqs = list(range(ack["first_seq"], ack["last_seq"] + 1))
        st = self.wait_sink(d, "dw", lambda s: s["last_error"] is not None
                            and "cannot write the dead letter" in s["last_error"]["message"],
                            "the dead-letter write error")
        s = self.sink_status(d, "dw", st)
        self.assertLess(s["cursor"], seqs[2], s)  # not past the event it could not record
        self.assertEqual(s["deadlettered"], 0)
        os.rmdir(dl)
        d.proc.send_signal(signal.SIGHUP)  # retry now rather than in 10 s
        self.wait_caught_up(d, "dw")
        [line] = read_ndjson(dl)
        self.assertEqual((line["seq"], line["id"]), (seqs[2], evs[2]["id"]))
        got = [e["id"] for e in srv.delivered_events()]
        self.assertEqual(sorted(set(got)), sorted(e["id"] for i, e in enumerate(evs) if i != 2))

    def test_torn_dead_letter_line_is_mended_and_kept_through_replay(self):
        srv = self.server()
        d = self.daemon(sink_toml("dt", srv.url(), max_events=10), start=False)
        os.makedirs(os.path.join(d.state_dir, "deadletter"))
        path = os.path.join(d.state_dir, "deadletter", "dt.ndjson")
        with open(path, "w") as f:
            f.write('{"time": "2026-11-24T00:00:00Z", "sink": "dt", "seq": 9')  # torn, no newline
        d.start()
        evs = [h.make_event(source="sinktest", kind="k", payload={"i": i}) for i in range(3)]
        srv.reject_event(evs[1]["id"])
        with d.client() as c:
            ack = c.send_batch(evs)[1]
        self.wait_caught_up(d, "dt")
        with open(path) as f:
            lines = f.read().split("\n")
        self.assertEqual(lines[0], '{"time": "2026-11-24T00:00:00Z", "sink": "dt", "seq": 9')
        good = json.loads(lines[1])
        self.assertEqual((good["seq"], good["id"]), (ack["first_seq"] + 1, evs[1]["id"]))
        self.assertEqual(lines[2:], [""])
        # Replay with the server still refusing: the event comes back as a dead letter, and the
        # line that is not one is kept, not dropped.
        r = h.run_ferry(["deadletter", "replay", "--sink", "dt"], d.env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.wait_sink(d, "dt", lambda s: s["replay_pending"] == 0 and s["deadlettered"] == 2,
                       "the replay to end")
        self.assertFalse(os.path.exists(os.path.join(d.state_dir, "deadletter",
                                                     "dt.replay.ndjson")))
        with open(path) as f:
            text = f.read()
        self.assertIn('"seq": 9\n', text)
        self.assertEqual([json.loads(l)["id"] for l in text.splitlines() if '"id"' in l],
                         [evs[1]["id"]])

    def test_sinks_send_only_what_the_journal_has_made_durable(self):
        srv = self.server()
        d = self.daemon('[journal]\nfsync = "interval"\nfsync_interval = "1h"\n'
                        + sink_toml("du", srv.url(), batch_timeout="0ms"))
        sent = send_events(d, 5, batch=5)
        # The sink reports that it looked at the journal with all 5 written and went to wait
        # because none was shippable; a sink that shipped them would have sent them first.
        self.wait_sink(d, "du", lambda s: s["journal_seen"]["written"] >= 5,
                       "the sink to see the 5 written events")
        st = self.sink_status(d, "du")
        self.assertEqual(st["journal_seen"], {"written": 5, "shippable": 0})
        self.assertEqual(srv.requests, [])
        st = self.sink_status(d, "du")
        self.assertEqual((st["cursor"], st["lag_events"]), (0, 5))
        # flush asks the journal for an fdatasync, then the sink sends.
        r = h.run_ferry(["flush", "--wait", "--timeout", "60s"], d.env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_once_in_order(srv, sent)
        self.assertEqual(d.status()["journal"]["durable_seq"], 5)
        # A durable ack also makes what it covers shippable.
        with d.client() as c:
            ftype, ack = c.send_batch([h.make_event(source="sinktest", kind="k")], durable=True)
        self.assertEqual(ftype, h.ACK, ack)
        self.wait_events(srv, 6)

    def test_flush(self):
        srv = self.server()
        d = self.daemon(sink_toml("f", srv.url(), max_events=1000, batch_timeout="60s"))
        t0 = time.monotonic()
        sent = send_events(d, 5, batch=5)
        r = h.run_ferry(["flush", "--wait", "--timeout", "60s"], d.env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertLess(time.monotonic() - t0, 55)  # did not wait for batch_timeout
        self.assert_once_in_order(srv, sent)  # delivered when flush returned
        self.assertEqual(read_json(os.path.join(d.state_dir, "cursors", "f"))["cursor"], sent[-1][0])
        r = h.run_ferry(["flush", "--sink", "f", "--wait"], d.env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = h.run_ferry(["flush", "--sink", "nope"], d.env())
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nope", r.stderr)
        self.assertEqual(r.stdout, "")
        # A sink that cannot deliver: --wait ends at its timeout with 2, or 1 on the failure.
        srv.fail_next(10 ** 6)
        send_events(d, 1, batch=1)
        r = h.run_ferry(["flush", "--wait", "--timeout", "5s"], d.env())
        self.assertIn(r.returncode, (1, 2), r.stdout + r.stderr)

    def test_new_sink_sends_the_journal_then_resumes_from_its_cursor(self):
        d = self.daemon(None)
        srv = self.server()
        before = send_events(d, 30, batch=10)
        # Added by a reload: starts at the journal's oldest seq.
        d.config_path = os.path.join(d.root, "config.toml")
        with open(d.config_path, "w") as f:
            f.write(sink_toml("late", srv.url()))
        d.restart()
        self.wait_events(srv, 30)
        self.wait_caught_up(d, "late")
        self.assert_once_in_order(srv, before)
        d.stop()
        d.start()
        after = send_events(d, 10, batch=10)
        self.wait_events(srv, 40)
        self.wait_caught_up(d, "late")
        self.assert_once_in_order(srv, before + after)

    def test_sink_added_by_sighup(self):
        srv = self.server()
        d = self.daemon('log_level = "info"\n')
        sent = send_events(d, 12, batch=12)
        with open(d.config_path, "w") as f:
            f.write('log_level = "info"\n' + sink_toml("hup", srv.url()))
        d.proc.send_signal(signal.SIGHUP)
        self.wait_events(srv, 12)
        self.assert_once_in_order(srv, sent)

    def test_token_and_url_credentials_never_shown(self):
        srv = self.server()
        root = h.make_tempdir()
        tok = os.path.join(root, "tok")
        with open(tok, "w") as f:
            f.write("s3cr3t-T0KEN\n")
        os.chmod(tok, 0o600)
        url = "http://user:hunter2pw@%s:%d/ingest?token=qs-s3cr3t&x=1" % (srv.host, srv.port)
        d = self.daemon(sink_toml("t", url, token_file=tok, headers={"X-Team": "infra"})
                        + sink_toml("e", srv.url("/env"), token_env="FERRY_TEST_TOKEN_E"),
                        env={"FERRY_TEST_TOKEN_E": "env-T0KEN"})
        self.addCleanup(subprocess.run, ["rm", "-rf", root])
        send_events(d, 3, batch=3)
        srv.wait_for(lambda s: len(s.delivered_events()) >= 6, "both sinks", GUARD)
        for r in srv.requests:
            if r.path.startswith("/env"):
                self.assertEqual(r.headers["authorization"], "Bearer env-T0KEN")
            else:
                self.assertIn("Bearer s3cr3t-T0KEN", r.headers["authorization"])
                self.assertEqual(r.headers["x-team"], "infra")
        st = d.status()
        shown = json.dumps(st) + h.run_ferry(["status"], d.env()).stdout + d.log()
        for secret in ("hunter2pw", "qs-s3cr3t", "s3cr3t-T0KEN", "env-T0KEN"):
            self.assertNotIn(secret, shown)
        self.assertNotIn("hunter2pw", self.sink_status(d, "t", st)["url"])

    def test_token_file_too_open_pauses_with_a_reason(self):
        srv = self.server()
        root = h.make_tempdir()
        self.addCleanup(subprocess.run, ["rm", "-rf", root])
        tok = os.path.join(root, "tok")
        with open(tok, "w") as f:
            f.write("abc\n")
        os.chmod(tok, 0o644)
        d = self.daemon(sink_toml("open", srv.url(), token_file=tok))
        # --check-config says so too, without the token.
        r = subprocess.run([h.FERRYD, "--check-config", "--config", d.config_path],
                           capture_output=True, text=True, timeout=h.HANG_GUARD_S)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("warning: sink open: token_file %s is readable by group or others "
                      "(mode 0644); run: chmod 600 %s" % (tok, tok), r.stderr)
        self.assertNotIn("abc", r.stdout + r.stderr)
        send_events(d, 2, batch=2)
        st = self.wait_sink(d, "open", lambda s: s["state"] == "paused", "paused")
        msg = self.sink_status(d, "open", st)["last_error"]["message"]
        self.assertIn("token", msg.lower())
        self.assertEqual(srv.requests, [])
        os.chmod(tok, 0o600)
        d.proc.send_signal(signal.SIGHUP)
        self.wait_events(srv, 2)

    def test_bad_sink_config_refused(self):
        bad = [
            sink_toml("bad name", "http://127.0.0.1:9/"),
            sink_toml("x", "http://127.0.0.1:9/") + sink_toml("x", "http://127.0.0.1:9/"),
            sink_toml("x", "http://127.0.0.1:9/", type="syslog"),
            sink_toml("x", "http://127.0.0.1:9/", max_events=0),
            sink_toml("x", "http://127.0.0.1:9/", max_bytes="1KiB"),
            sink_toml("x", "http://127.0.0.1:9/", bogus=1),
        ]
        root = h.make_tempdir()
        self.addCleanup(subprocess.run, ["rm", "-rf", root])
        path = os.path.join(root, "config.toml")
        for text in bad:
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run([h.FERRYD, "--check-config", "--config", path], capture_output=True,
                               text=True, timeout=h.HANG_GUARD_S, env=h.clean_env(HOME=root))
            self.assertEqual(r.returncode, 2, (text, r.stdout, r.stderr))
            self.assertTrue(r.stderr.startswith("ferryd: %s:" % path), r.stderr)
        with open(path, "w") as f:
            f.write(sink_toml("ok", "http://127.0.0.1:9/") + sink_toml("ok2", "http://127.0.0.1:9/",
                                                                        type="otlp-http"))
        r = subprocess.run([h.FERRYD, "--check-config", "--config", path], capture_output=True,
                           text=True, timeout=h.HANG_GUARD_S, env=h.clean_env(HOME=root))
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
