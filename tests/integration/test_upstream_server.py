"""Self-tests of the test upstream (upstream_server.py) and the OTLP/JSON validator
(otlp_schema.py) with urllib/http.client only: no ferryd involved, a few seconds in all."""

import copy
import gzip
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

from otlp_schema import validate_any_value, validate_export_logs_request
from upstream_server import UpstreamServer, http_date

HERE = os.path.dirname(os.path.abspath(__file__))


def batch(seqs, prefix="id"):
    return {"format": "ferry.batch.v1", "first_seq": seqs[0], "last_seq": seqs[-1],
            "count": len(seqs),
            "events": [{"seq": s, "id": "%s%d" % (prefix, s), "kind": "k"} for s in seqs]}


def post(srv, doc, key="k", path="/ingest", gz=False, timeout=10):
    """POSTs with urllib; returns (status, headers, parsed body)."""
    data = json.dumps(doc).encode() if not isinstance(doc, bytes) else doc
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    if gz:
        data = gzip.compress(data)
        headers["Content-Encoding"] = "gzip"
    req = urllib.request.Request(srv.url(path), data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        with e:
            raw = e.read()
        try:
            return e.code, e.headers, json.loads(raw or b"null")
        except ValueError:
            return e.code, e.headers, raw


def otlp_sample(seqs=(101,), ids=None):
    ids = ids or ["id%d" % s for s in seqs]
    return {"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "ferry"}},
            {"key": "host.id", "value": {"stringValue": "4c1f"}}]},
        "scopeLogs": [{
            "scope": {"name": "ferry", "version": "0.1.0"},
            "logRecords": [{
                "timeUnixNano": "1764000000120000000",
                "observedTimeUnixNano": "1764000000123456789",
                "severityNumber": 9, "severityText": "INFO",
                "body": {"kvlistValue": {"values": [
                    {"key": "tool_name", "value": {"stringValue": "Bash"}},
                    {"key": "n", "value": {"intValue": "-3"}},
                    {"key": "f", "value": {"doubleValue": 1.5}},
                    {"key": "ok", "value": {"boolValue": True}},
                    {"key": "none", "value": {}},
                    {"key": "raw", "value": {"bytesValue": "AAEC"}},
                    {"key": "list", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}}]}},
                "attributes": [
                    {"key": "ferry.kind", "value": {"stringValue": "PreToolUse"}},
                    {"key": "ferry.id", "value": {"stringValue": i}},
                    {"key": "ferry.seq", "value": {"intValue": str(s)}}]}
                for s, i in zip(seqs, ids)]}]}]}


class ServerTest(unittest.TestCase):
    def setUp(self):
        self.srv = UpstreamServer().start()
        self.addCleanup(self.srv.close)

    def test_records_plain_and_gzip(self):
        self.assertEqual(post(self.srv, batch([1, 2]), key="a")[0], 200)
        self.assertEqual(post(self.srv, batch([3]), key="b", gz=True)[0], 200)
        r1, r2 = self.srv.requests
        self.assertEqual((r1.method, r1.path, r1.key, r1.format), ("POST", "/ingest", "a", "http-json"))
        self.assertEqual(r1.headers["content-type"], "application/json")
        self.assertEqual(r2.headers["content-encoding"], "gzip")
        self.assertEqual(gzip.decompress(r2.raw_body), r2.body)
        self.assertEqual(r2.json, batch([3]))
        self.assertEqual([(e["seq"], e["id"], e["_key"]) for e in self.srv.delivered_events()],
                         [(1, "id1", "a"), (2, "id2", "a"), (3, "id3", "b")])
        self.assertEqual(self.srv.wait_for_events(3), self.srv.delivered_events())
        self.assertEqual(self.srv.duplicates(), {})

    def test_keep_alive(self):
        conn = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=10)
        self.addCleanup(conn.close)
        for i in range(5):
            conn.request("POST", "/x", json.dumps(batch([i + 1])), {"Idempotency-Key": str(i)})
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
        self.assertEqual(self.srv.connections, 1)
        self.assertEqual({r.conn for r in self.srv.requests}, {1})

    def test_chunked_body(self):
        conn = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=10)
        self.addCleanup(conn.close)
        data = json.dumps(batch([1, 2, 3])).encode()
        conn.request("POST", "/c", body=iter([data[:10], data[10:]]),
                     headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
        r = conn.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        self.assertEqual(self.srv.requests[0].json, batch([1, 2, 3]))
        conn.request("POST", "/c", json.dumps(batch([4])))  # the connection is still usable
        self.assertEqual(conn.getresponse().status, 200)
        self.assertEqual(self.srv.delivered_seqs(), [1, 2, 3, 4])

    def test_fail_next_then_recover(self):
        self.srv.fail_next(2)
        self.srv.fail_next(1, status=502, body="bad gateway")
        got = [post(self.srv, batch([1]), key="k")[0] for _ in range(4)]
        self.assertEqual(got, [500, 500, 502, 200])
        self.assertEqual(self.srv.requests[2].response_body, b"bad gateway")
        self.assertEqual(len(self.srv.accepted_batches()), 1)
        self.assertEqual(self.srv.keys_by_seq(), {1: ["k"] * 4})

    def test_throttle_seconds_and_date(self):
        self.srv.throttle_next(1, retry_after="2")
        date = http_date(3)
        self.srv.throttle_next(1, retry_after=date, status=503)
        self.srv.throttle_next(1, retry_after=None)
        self.srv.throttle_next(1, retry_after=lambda: 7)
        s1, h1, _ = post(self.srv, batch([1]))
        s2, h2, _ = post(self.srv, batch([1]))
        s3, h3, _ = post(self.srv, batch([1]))
        s4, h4, _ = post(self.srv, batch([1]))
        self.assertEqual((s4, h4["Retry-After"]), (429, "7"))
        self.assertEqual((s1, h1["Retry-After"]), (429, "2"))
        self.assertEqual((s2, h2["Retry-After"]), (503, date))
        self.assertTrue(date.endswith(" GMT"))
        self.assertEqual((s3, h3["Retry-After"]), (429, None))
        self.assertEqual(post(self.srv, batch([1]))[0], 200)

    def test_max_body_counts_decoded_bytes(self):
        doc = batch(list(range(1, 200)))
        size = len(json.dumps(doc).encode())
        self.srv.max_body_bytes(size - 1)
        self.assertEqual(post(self.srv, doc, gz=True)[0], 413)  # gzip is far smaller: still 413
        self.srv.max_body_bytes(size)
        self.assertEqual(post(self.srv, doc, gz=True)[0], 200)

    def test_unauthorized_until_reset(self):
        self.srv.unauthorized()
        self.assertEqual(post(self.srv, batch([1]))[0], 401)
        self.srv.unauthorized(403)
        self.assertEqual(post(self.srv, batch([1]))[0], 403)
        self.srv.reset_auth()
        self.assertEqual(post(self.srv, batch([1]))[0], 200)

    def test_reject_event_both_formats(self):
        self.srv.reject_event("id2")
        st, _, body = post(self.srv, batch([1, 2, 3]))
        self.assertEqual((st, body["id"]), (400, "id2"))
        self.assertIn("id2", body["error"])
        self.assertEqual(post(self.srv, batch([1]))[0], 200)
        st, _, body = post(self.srv, otlp_sample([1, 2]), path="/v1/logs")
        self.assertEqual((st, body["id"]), (400, "id2"))
        self.srv.reject_event("id3", status=422)
        self.assertEqual(post(self.srv, batch([3]))[0], 422)
        self.srv.accept_event("id2")
        self.assertEqual(post(self.srv, otlp_sample([2]), path="/v1/logs")[0], 200)
        self.assertEqual([e["seq"] for e in self.srv.delivered_events()], [1, 2])

    def test_otlp_events_decoded(self):
        self.assertEqual(post(self.srv, otlp_sample([7, 8]), key="o", path="/v1/logs", gz=True)[0], 200)
        evs = self.srv.delivered_events()
        self.assertEqual([(e["seq"], e["id"], e["kind"], e["_key"]) for e in evs],
                         [(7, "id7", "PreToolUse", "o"), (8, "id8", "PreToolUse", "o")])
        self.assertEqual(evs[0]["payload"]["tool_name"], "Bash")
        self.assertEqual(evs[0]["payload"]["n"], -3)
        self.assertEqual(evs[0]["payload"]["list"], ["a"])
        self.assertIsNone(evs[0]["payload"]["none"])
        self.assertEqual(evs[0]["ts"], 1764000000120000000)
        self.assertEqual(self.srv.requests[0].format, "otlp")

    def test_reset_next_aborts_connection(self):
        self.srv.reset_next(1)
        with self.assertRaises((ConnectionResetError, http.client.RemoteDisconnected,
                                urllib.error.URLError)):
            post(self.srv, batch([1]))
        self.assertEqual(post(self.srv, batch([1]))[0], 200)
        r1, r2 = self.srv.requests
        self.assertIsNone(r1.status)
        self.assertEqual(r2.status, 200)
        self.assertEqual(self.srv.delivered_seqs(), [1])

    def test_stall_seconds_then_answer(self):
        self.srv.stall_next(1, 0.3)
        t0 = time.monotonic()
        self.assertEqual(post(self.srv, batch([1]))[0], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)

    def test_stall_past_client_timeout_is_not_delivered(self):
        self.srv.stall_until_released()
        with self.assertRaises((TimeoutError, urllib.error.URLError)):
            post(self.srv, batch([1]), key="x", timeout=0.3)
        self.srv.wait_stalled(1)
        self.srv.release_stalled()
        self.srv.wait_for(lambda s: s.requests[0].note != "pending", "stall over")
        self.assertEqual(self.srv.requests[0].note, "client closed while stalled")
        self.assertEqual(self.srv.delivered_events(), [])
        self.assertEqual(post(self.srv, batch([1]), key="x")[0], 200)
        self.assertEqual(self.srv.keys_by_seq(), {1: ["x", "x"]})

    def test_stall_until_released_answers_a_waiting_client(self):
        self.srv.stall_until_released()
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("r", post(self.srv, batch([1]))))
        t.start()
        self.srv.wait_for_request(1)
        self.srv.wait_stalled(1)
        self.assertEqual(self.srv.requests[0].note, "pending")
        self.srv.release_stalled()
        t.join(10)
        self.assertEqual(out["r"][0], 200)

    def test_dedupe_by_key(self):
        self.srv.dedupe_by_key(True)
        self.assertEqual(post(self.srv, batch([1, 2]), key="a")[0], 200)
        self.assertEqual(post(self.srv, batch([1, 2]), key="a")[0], 409)
        self.assertEqual(post(self.srv, batch([3]), key="b")[0], 200)
        self.assertEqual(len(self.srv.accepted_batches()), 3)
        self.assertEqual(self.srv.delivered_seqs(), [1, 2, 3])
        self.assertEqual(len(self.srv.delivered_events(include_conflicts=True)), 5)
        self.srv.dedupe_by_key(False)
        self.assertEqual(post(self.srv, batch([1, 2]), key="a")[0], 200)
        self.assertEqual(self.srv.duplicates(), {"id1": {"a"}, "id2": {"a"}})

    def test_controls_compose_in_order(self):
        self.srv.fail_next(1)
        self.srv.throttle_next(1, retry_after="1")
        self.srv.reject_event("id1")
        got = [post(self.srv, batch([1]))[0] for _ in range(3)]
        self.assertEqual(got, [500, 429, 400])

    def test_threads_concurrent_posts(self):
        def worker(k):
            for i in range(20):
                post(self.srv, batch([k * 100 + i]), key="%d-%d" % (k, i))
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        self.assertEqual(len(self.srv.requests), 160)
        self.assertEqual(sorted(self.srv.delivered_seqs()),
                         sorted(k * 100 + i for k in range(8) for i in range(20)))


class StandaloneTest(unittest.TestCase):
    def test_count_only_process(self):
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "upstream_server.py"),
                                 "--port", "0", "--count-only"], stdout=subprocess.PIPE, text=True)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(proc.wait, 10)
        self.addCleanup(proc.terminate)
        port = int(proc.stdout.readline())

        class Srv:
            def url(self, path):
                return "http://127.0.0.1:%d%s" % (port, path)
        for i in range(3):
            self.assertEqual(post(Srv(), batch([1, 2, 3]), gz=bool(i % 2))[0], 200)
        with urllib.request.urlopen(Srv().url("/_stats"), timeout=10) as r:
            st = json.loads(r.read())
        self.assertEqual((st["requests"], st["events"], st["accepted_events"], st["statuses"]),
                         (3, 9, 9, {"200": 3}))


class OtlpSchemaTest(unittest.TestCase):
    def test_valid_sample(self):
        self.assertEqual(validate_export_logs_request(otlp_sample([1, 2])), [])
        self.assertEqual(validate_export_logs_request({}), [])
        self.assertEqual(validate_export_logs_request({"resourceLogs": []}), [])

    def mutate(self, fn):
        doc = otlp_sample()
        fn(doc)
        return validate_export_logs_request(doc)

    def rec(self, doc):
        return doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]

    def test_wrong_types(self):
        cases = [
            (lambda d: self.rec(d).update(timeUnixNano=1764000000120000000),
             "$.resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano"),
            (lambda d: self.rec(d).update(observedTimeUnixNano="-1"), "observedTimeUnixNano"),
            (lambda d: self.rec(d).update(severityNumber="9"), "severityNumber"),
            (lambda d: self.rec(d).update(severityNumber=25), "severityNumber"),
            (lambda d: self.rec(d).update(severityNumber=True), "severityNumber"),
            (lambda d: self.rec(d)["attributes"][2]["value"].update(intValue=101),
             "logRecords[0].attributes[2].value.intValue"),
            (lambda d: self.rec(d)["attributes"][2]["value"].update(stringValue="x"),
             "attributes[2].value: AnyValue has more than one"),
            (lambda d: self.rec(d).update(body={"stringValue": 5}), "body.stringValue"),
            (lambda d: self.rec(d).update(body={"doubleValue": "1.5"}), "body.doubleValue"),
            (lambda d: self.rec(d).update(body={"bytesValue": "!!"}), "body.bytesValue"),
            (lambda d: self.rec(d).update(body={"kvlistValue": {"values": [{"value": {}}]}}),
             "KeyValue without key"),
            (lambda d: self.rec(d).update(flags=-1), "flags"),
            (lambda d: self.rec(d).update(traceId="abc"), "traceId"),
            (lambda d: self.rec(d).update(attributes={"ferry.id": "x"}), "attributes: expected an array"),
            (lambda d: d["resourceLogs"][0].update(resource=[]), "resource: expected an object"),
            (lambda d: self.rec(d)["attributes"].append(
                {"key": "ferry.id", "value": {"stringValue": "y"}}), "duplicate attribute key"),
        ]
        for fn, want in cases:
            errors = self.mutate(fn)
            self.assertTrue(errors and any(want in e for e in errors), (want, errors))

    def test_unknown_fields(self):
        cases = [
            (lambda d: d.update(resource_logs=[]), "$.resource_logs: unknown field"),
            (lambda d: self.rec(d).update(time_unix_nano="1"), "logRecords[0].time_unix_nano"),
            (lambda d: self.rec(d).update(severity="INFO"), "logRecords[0].severity"),
            (lambda d: d["resourceLogs"][0]["scopeLogs"][0]["scope"].update(ver="1"), "scope.ver"),
            (lambda d: d["resourceLogs"][0]["resource"].update(labels=[]), "resource.labels"),
            (lambda d: self.rec(d)["body"]["kvlistValue"].update(extra=1), "kvlistValue.extra"),
            (lambda d: self.rec(d).update(body={"stringvalue": "x"}), "body.stringvalue"),
        ]
        for fn, want in cases:
            errors = self.mutate(fn)
            self.assertTrue(errors and any(want in e and "unknown field" in e for e in errors),
                            (want, errors))

    def test_any_value(self):
        self.assertEqual(validate_any_value({}), [])
        self.assertEqual(validate_any_value({"intValue": "9223372036854775807"}), [])
        self.assertTrue(validate_any_value({"intValue": "9223372036854775808"}))
        self.assertTrue(validate_any_value({"intValue": "01"}))
        self.assertTrue(validate_any_value("x"))
        self.assertEqual(validate_any_value({"arrayValue": {}}), [])


if __name__ == "__main__":
    unittest.main()
