"""A real HTTP/1.1 upstream for ferryd's sinks (docs/sinks.md), with fault controls.

In-process (tests):

    with UpstreamServer() as srv:
        url = srv.url("/ingest")             # http://127.0.0.1:<port>/ingest
        srv.fail_next(3)                     # 3 x 500, then normal answers
        ...
        srv.wait_for_events(100)
        events = srv.delivered_events()      # [{"seq":..,"id":..,...}] in arrival order

Standalone (benchmarks): `python3 upstream_server.py --port 0 --count-only` prints the port on
its first stdout line and serves until SIGTERM/SIGINT; `GET /_stats` answers the counters as
JSON, `POST /_reset` zeroes them. In count-only mode bodies are not kept.

Every request is recorded as a `Request` (method, path, headers with lower-case names, raw body,
decoded body (gunzipped when Content-Encoding: gzip), parsed JSON, the events found in it, the
status answered, arrival time). A request answered with no response (reset, or a stalled
request whose client went away) has status None.

How a POST is answered; each control is checked in this order, and a counter is consumed only
when its check is reached:

  1. reset_next(n)           close the connection without a response (SO_LINGER 0: RST)
  2. stall_next(n, s) /      read the request, then wait s seconds (or until release_stalled());
     stall_until_released(n) afterwards answer as below, unless the client closed meanwhile
  3. unauthorized(status)    401 (or the status given) to everything until reset_auth();
                             with echo_auth=True the body echoes the request's Authorization
                             header (as some servers do), plus `extra` text
  4. fail_next(n, status)    n x 500 (or the status given); then fail_randomly(p): each
                             request fails with probability p (500 or 503, seeded)
  5. throttle_next(n, ...)   n x 429 (or 503) with Retry-After (seconds or an HTTP date)
  6. max_body_bytes(n)       413 when the DECODED body (after gunzip) is longer than n bytes:
                             ferry's max_bytes counts uncompressed bytes too
  7. reject_event(id, st)    400 (or st) with {"error": ..., "id": <id>} when the batch holds
                             that event id (http-json "events" or OTLP attribute ferry.id)
  8. dedupe_by_key(True)     409 when this Idempotency-Key was answered 2xx before
  9. otherwise               200 {"accepted": <count>}

Standard library only; every method is thread-safe.
"""

import argparse
import base64
import email.utils
import gzip
import http.server
import io
import json
import random
import signal
import socket
import struct
import sys
import threading
import time
import zlib

__all__ = ["UpstreamServer", "Request", "http_date", "otlp_events", "any_value_to_python"]


def http_date(seconds_from_now):
    """An HTTP-date (IMF-fixdate) `seconds_from_now` seconds ahead, for Retry-After."""
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


# ---------------------------------------------------------------------------------------------
# Decoding bodies into events.


def any_value_to_python(v):
    """An OTLP/JSON AnyValue as the plain JSON value it encodes (intValue -> int)."""
    if not isinstance(v, dict) or not v:
        return None
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return v["boolValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return v["doubleValue"]
    if "arrayValue" in v:
        return [any_value_to_python(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return {kv["key"]: any_value_to_python(kv.get("value"))
                for kv in v["kvlistValue"].get("values", [])}
    if "bytesValue" in v:
        return base64.b64decode(v["bytesValue"])
    return None


def otlp_events(doc):
    """The log records of an ExportLogsServiceRequest as ferry events: a dict with the ferry.*
    attributes under their envelope names (ferry.seq -> "seq" as int), "payload" from the body,
    "ts"/"received" from the timestamps, and the raw record under "_otlp"."""
    out = []
    for rl in doc.get("resourceLogs", []) or []:
        for sl in rl.get("scopeLogs", []) or []:
            for lr in sl.get("logRecords", []) or []:
                ev = {}
                for kv in lr.get("attributes", []) or []:
                    key = kv.get("key", "")
                    if key.startswith("ferry."):
                        ev[key[len("ferry."):]] = any_value_to_python(kv.get("value"))
                if "body" in lr:
                    ev["payload"] = any_value_to_python(lr["body"])
                if "timeUnixNano" in lr:
                    ev["ts"] = int(lr["timeUnixNano"])
                if "observedTimeUnixNano" in lr:
                    ev["received"] = int(lr["observedTimeUnixNano"])
                ev["_otlp"] = lr
                out.append(ev)
    return out


def events_of(doc):
    """(format, events) of a parsed request body: "http-json", "otlp" or None."""
    if isinstance(doc, dict):
        if isinstance(doc.get("events"), list):
            return "http-json", [e for e in doc["events"] if isinstance(e, dict)]
        if "resourceLogs" in doc:
            try:
                return "otlp", otlp_events(doc)
            except (AttributeError, TypeError, ValueError):
                return "otlp", []
    return None, []


# ---------------------------------------------------------------------------------------------
# Records.


class Request:
    """One request as the server saw it."""

    __slots__ = ("n", "conn", "method", "path", "headers", "raw_body", "body", "json",
                 "decode_error", "size", "format", "events", "status", "response_body", "time",
                 "mono", "answered_mono", "note")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    @property
    def key(self):
        return self.headers.get("idempotency-key")

    @property
    def accepted(self):
        """2xx or 409: the batch is done from the sink's point of view."""
        return self.status is not None and (200 <= self.status < 300 or self.status == 409)

    @property
    def seqs(self):
        return [e.get("seq") for e in self.events]

    def __repr__(self):
        return ("Request(#%d %s %s status=%s key=%s seqs=%s%s)"
                % (self.n, self.method, self.path, self.status, self.key,
                   _span(self.seqs), (" " + self.note) if self.note else ""))


def _span(seqs):
    if not seqs:
        return "[]"
    if len(seqs) <= 4:
        return str(seqs)
    return "[%s..%s](%d)" % (seqs[0], seqs[-1], len(seqs))


class _Stall:
    def __init__(self, seconds):
        self.seconds = seconds  # None: until released
        self.released = threading.Event()


# ---------------------------------------------------------------------------------------------
# The handler.


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The status line and headers go out in one write and the body in another: with Nagle on,
    # the body waits for the client's delayed ACK (40 ms per request), which real servers
    # avoid with TCP_NODELAY, and so does this one.
    disable_nagle_algorithm = True
    server_version = "ferry-test-upstream/1"
    sys_version = ""

    def setup(self):
        super().setup()
        self.conn_id = self.server.upstream._new_connection()

    def log_message(self, fmt, *args):  # quiet
        pass

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status, body=b"", headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _abort(self):
        """Closes the TCP connection with RST and no response."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        for f in (self.rfile, self.wfile):
            try:
                f.close()
            except OSError:
                pass
        try:
            self.connection.close()
        except OSError:
            pass
        # BaseHTTPRequestHandler flushes wfile after each request and finish() closes both.
        self.rfile, self.wfile = io.BytesIO(), io.BytesIO()
        self.close_connection = True

    def _client_gone(self):
        """True when the peer closed (EOF or reset) while we held its request."""
        try:
            data = self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            return data == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def _stats_get(self):
        up = self.server.upstream
        self._answer(200, up.stats())

    def do_GET(self):
        if self.path == "/_stats":
            return self._stats_get()
        self._handle()

    def do_POST(self):
        if self.path == "/_reset":
            self._read_body()
            self.server.upstream.reset_stats()
            return self._answer(200, {"ok": True})
        self._handle()

    do_PUT = do_POST
    do_DELETE = do_GET
    do_PATCH = do_POST

    def _handle(self):
        up = self.server.upstream
        raw = self._read_body()
        req = up._arrive(self, raw)
        decision = up._decide_transport(req)
        if decision == "reset":
            up._finish(req, None, b"", "reset")
            self._abort()
            return
        if isinstance(decision, _Stall):
            up._stall_begin()
            try:
                if decision.seconds is None:
                    decision.released.wait()
                else:
                    decision.released.wait(decision.seconds)
            finally:
                up._stall_end()
            if self._client_gone():
                up._finish(req, None, b"", "client closed while stalled")
                self.close_connection = True
                return
        status, body, headers = up._decide_answer(req)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        up._finish(req, status, body, None)
        try:
            self._answer(status, body, headers)
        except OSError:
            self.close_connection = True


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A client killed mid-request (the crash tests SIGKILL ferryd) is not news.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


# ---------------------------------------------------------------------------------------------
# The server.


class UpstreamServer:
    def __init__(self, host="127.0.0.1", port=0, count_only=False, slim=False):
        """slim: keep each request's headers and, of its events, only "seq" and "id" (no
        bodies): long crash loops with large payloads would otherwise hold gigabytes."""
        self.count_only = count_only
        self.slim = slim
        self._lock = threading.Condition(threading.RLock())
        self._requests = []
        self._connections = 0
        self._stalled_now = 0
        # controls
        self._reset = 0
        self._stalls = []          # [_Stall] for the next requests
        self._live_stalls = []     # stalls handed out, to release on close
        self._auth_status = None
        self._auth_echo = (False, "")
        self._fail = []            # [(status, body)]
        self._random_fail = (0, (500,), None)
        self._throttle = []        # [(status, retry_after)]
        self._max_body = None
        self._rejected = {}        # id -> status
        self._dedupe = False
        self._accepted_keys = set()
        self._stats = self._zero_stats()
        self.httpd = _HTTPServer((host, port), _Handler)
        self.httpd.upstream = self
        self.host, self.port = self.httpd.server_address[:2]
        self._thread = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="upstream-server", daemon=True)
        self._thread.start()
        return self

    def close(self):
        self.release_stalled()
        with self._lock:
            self._stalls = []
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(10)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def url(self, path="/ingest"):
        return "http://%s:%d%s" % (self.host, self.port, path)

    # -- controls -------------------------------------------------------------------------------

    def fail_next(self, n, status=500, body='{"error":"injected failure"}'):
        with self._lock:
            self._fail.extend([(status, body)] * n)

    def throttle_next(self, n, retry_after="2", status=429):
        """n answers of `status` (429 or 503) with Retry-After: `retry_after` (seconds as a
        string or number, an HTTP date from http_date(), or a callable returning either,
        evaluated when answering, e.g. lambda: http_date(3); None: no header)."""
        with self._lock:
            self._throttle.extend([(status, retry_after)] * n)

    def max_body_bytes(self, n):
        """413 for any request whose decoded body exceeds n bytes (None: no limit)."""
        with self._lock:
            self._max_body = n

    def unauthorized(self, status=401, echo_auth=False, extra=""):
        with self._lock:
            self._auth_status = status
            self._auth_echo = (echo_auth, extra)

    def fail_randomly(self, p, statuses=(500, 503), seed=None):
        """Every request (after the fail_next ones) fails with probability p, answering one
        of `statuses` (503 without Retry-After); p=0 turns it off. Deterministic per seed."""
        with self._lock:
            self._random_fail = (p, tuple(statuses), random.Random(seed))

    def reset_auth(self):
        with self._lock:
            self._auth_status = None

    def reject_event(self, event_id, status=400):
        with self._lock:
            self._rejected[event_id] = status

    def accept_event(self, event_id):
        with self._lock:
            self._rejected.pop(event_id, None)

    def reset_next(self, n):
        with self._lock:
            self._reset += n

    def stall_next(self, n, seconds):
        with self._lock:
            self._stalls.extend(_Stall(seconds) for _ in range(n))

    def stall_until_released(self, n=1):
        """The next n requests are read, then held without an answer until release_stalled()."""
        self.stall_next(n, None)

    def release_stalled(self):
        with self._lock:
            for s in self._live_stalls:
                s.released.set()
            self._live_stalls = []

    def dedupe_by_key(self, on=True):
        with self._lock:
            self._dedupe = on

    def clear_controls(self):
        with self._lock:
            self._reset = 0
            self._stalls = []
            self._auth_status = None
            self._auth_echo = (False, "")
            self._fail = []
            self._random_fail = (0, (500,), None)
            self._throttle = []
            self._max_body = None
            self._rejected = {}
        self.release_stalled()

    # -- accessors ------------------------------------------------------------------------------

    @property
    def requests(self):
        with self._lock:
            return list(self._requests)

    @property
    def connections(self):
        with self._lock:
            return self._connections

    @property
    def stalled_now(self):
        with self._lock:
            return self._stalled_now

    def accepted_batches(self):
        """Requests answered 2xx or 409, in arrival order."""
        return [r for r in self.requests if r.accepted]

    def delivered_events(self, include_conflicts=False):
        """Events of the requests answered 2xx (and 409 with include_conflicts), in arrival
        order, each a dict with at least "seq" and "id" plus "_key" (its Idempotency-Key)."""
        out = []
        for r in self.requests:
            if r.status is None:
                continue
            if 200 <= r.status < 300 or (include_conflicts and r.status == 409):
                for e in r.events:
                    ev = dict(e)
                    ev["_key"] = r.key
                    out.append(ev)
        return out

    def delivered_seqs(self):
        return [e.get("seq") for e in self.delivered_events()]

    def events_by_id(self, accepted_only=True):
        """{event id: [(seq, Idempotency-Key, status), ...]} over every request (or only the
        2xx/409 ones) in arrival order."""
        out = {}
        for r in self.requests:
            if accepted_only and not r.accepted:
                continue
            for e in r.events:
                out.setdefault(e.get("id"), []).append((e.get("seq"), r.key, r.status))
        return out

    def duplicates(self):
        """{event id: set of Idempotency-Keys} for events accepted more than once."""
        return {i: {k for _, k, _ in v} for i, v in self.events_by_id().items() if len(v) > 1}

    def keys_by_seq(self):
        """{seq: [Idempotency-Key of every request that carried it, in order]}."""
        out = {}
        for r in self.requests:
            for e in r.events:
                out.setdefault(e.get("seq"), []).append(r.key)
        return out

    def wait_for(self, predicate, what, timeout=60.0):
        """Waits until predicate(self) holds; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                if predicate(self):
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("upstream: timed out waiting for %s; requests: %r"
                                         % (what, self._requests[-20:]))
                self._lock.wait(min(left, 0.2))

    def wait_for_events(self, n, timeout=60.0):
        """Waits until n distinct event ids have been delivered (2xx); returns delivered_events()."""
        self.wait_for(lambda s: len({e.get("id") for e in s.delivered_events()}) >= n,
                      "%d delivered events" % n, timeout)
        return self.delivered_events()

    def wait_for_request(self, count, timeout=60.0):
        """Waits until `count` requests have arrived (answered or not)."""
        self.wait_for(lambda s: len(s._requests) >= count, "%d requests" % count, timeout)
        return self.requests

    def wait_stalled(self, n=1, timeout=60.0):
        """Waits until n requests are being held by a stall right now."""
        self.wait_for(lambda s: s._stalled_now >= n, "%d stalled requests" % n, timeout)

    def stats(self):
        with self._lock:
            return dict(self._stats, statuses=dict(self._stats["statuses"]),
                        connections=self._connections)

    def reset_stats(self):
        with self._lock:
            self._stats = self._zero_stats()
            self._requests = []

    # -- internals ------------------------------------------------------------------------------

    @staticmethod
    def _zero_stats():
        return {"requests": 0, "events": 0, "raw_bytes": 0, "decoded_bytes": 0,
                "accepted_requests": 0, "accepted_events": 0, "statuses": {},
                "first_time": None, "last_time": None, "last_accepted_time": None}

    def _new_connection(self):
        with self._lock:
            self._connections += 1
            return self._connections

    def _stall_begin(self):
        with self._lock:
            self._stalled_now += 1
            self._lock.notify_all()

    def _stall_end(self):
        with self._lock:
            self._stalled_now -= 1
            self._lock.notify_all()

    def _arrive(self, handler, raw):
        now, mono = time.time(), time.monotonic()
        headers = {}
        for k, v in handler.headers.items():
            k = k.lower()
            headers[k] = v if k not in headers else headers[k] + ", " + v
        body, decode_error = raw, None
        if "gzip" in headers.get("content-encoding", "").lower():
            try:
                body = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error) as e:
                decode_error = "gunzip: %s" % e
        doc, fmt, events = None, None, []
        need_parse = not self.count_only or self._rejected or "x-ferry-count" not in headers
        if decode_error is None and body and need_parse:
            try:
                doc = json.loads(body)
            except ValueError as e:
                decode_error = "json: %s" % e
            fmt, events = events_of(doc)
        if self.count_only:
            count = headers.get("x-ferry-count")
            n_events = int(count) if count and count.isdigit() else len(events)
            req = Request(n=0, conn=handler.conn_id, method=handler.command, path=handler.path,
                          headers=headers, raw_body=None, body=None, json=None,
                          decode_error=decode_error, size=len(body), format=fmt,
                          events=events if self._rejected else [],
                          status=None, time=now, mono=mono, note=None)
            req.response_body = n_events  # stash the count; bodies are not kept
            with self._lock:
                st = self._stats
                st["requests"] += 1
                st["events"] += n_events
                st["raw_bytes"] += len(raw)
                st["decoded_bytes"] += len(body)
                st["first_time"] = st["first_time"] or now
                st["last_time"] = now
                self._lock.notify_all()
            return req
        raw_len, body_len = len(raw), len(body)
        if self.slim:
            raw = body = doc = None
            events = [{k: e[k] for k in ("seq", "id") if k in e} for e in events]
        req = Request(n=0, conn=handler.conn_id, method=handler.command, path=handler.path,
                      headers=headers, raw_body=raw, body=body, json=doc, decode_error=decode_error,
                      size=body_len, format=fmt, events=events, status=None, response_body=None,
                      time=now, mono=mono, note="pending")
        with self._lock:
            req.n = len(self._requests) + 1
            self._requests.append(req)
            st = self._stats
            st["requests"] += 1
            st["events"] += len(events)
            st["raw_bytes"] += raw_len
            st["decoded_bytes"] += body_len
            st["first_time"] = st["first_time"] or now
            st["last_time"] = now
            self._lock.notify_all()
        return req

    def _decide_transport(self, req):
        with self._lock:
            if self._reset > 0:
                self._reset -= 1
                return "reset"
            if self._stalls:
                s = self._stalls.pop(0)
                self._live_stalls.append(s)
                return s
        return None

    def _decide_answer(self, req):
        with self._lock:
            if self._auth_status is not None:
                body = {"error": "unauthorized"}
                echo, extra = self._auth_echo
                if echo:
                    body["echo"] = "Authorization: %s %s" % (
                        req.headers.get("authorization", ""), extra)
                return self._auth_status, body, ()
            if self._fail:
                status, body = self._fail.pop(0)
                return status, body, ()
            p, statuses, rng = self._random_fail
            if p > 0 and rng.random() < p:
                return rng.choice(statuses), {"error": "injected random failure"}, ()
            if self._throttle:
                status, ra = self._throttle.pop(0)
                if callable(ra):
                    ra = ra()
                ra = None if ra is None else str(ra)
                headers = () if ra is None else (("Retry-After", ra),)
                return status, {"error": "slow down"}, headers
            size = req.size
            if self._max_body is not None and size > self._max_body:
                return 413, {"error": "body of %d bytes is over %d" % (size, self._max_body)}, ()
            if self._rejected:
                for e in req.events:
                    if e.get("id") in self._rejected:
                        return (self._rejected[e["id"]],
                                {"error": "event %s rejected" % e["id"], "id": e["id"]}, ())
            key = req.headers.get("idempotency-key")
            if self._dedupe and key is not None and key in self._accepted_keys:
                return 409, {"error": "duplicate Idempotency-Key", "key": key}, ()
            if key is not None:
                self._accepted_keys.add(key)
            n = req.response_body if self.count_only else len(req.events)
            return 200, {"accepted": n}, ()

    def _finish(self, req, status, body, note):
        with self._lock:
            req.status = status
            req.note = note
            req.answered_mono = time.monotonic()
            st = self._stats
            key = str(status)
            st["statuses"][key] = st["statuses"].get(key, 0) + 1
            if self.count_only:
                if status is not None and 200 <= status < 300:
                    st["accepted_requests"] += 1
                    st["accepted_events"] += req.response_body
                    st["last_accepted_time"] = time.time()
            else:
                req.response_body = body
                if status is not None and 200 <= status < 300:
                    st["accepted_requests"] += 1
                    st["accepted_events"] += len(req.events)
                    st["last_accepted_time"] = time.time()
            self._lock.notify_all()


# ---------------------------------------------------------------------------------------------
# Standalone.


def main(argv=None):
    ap = argparse.ArgumentParser(description="test upstream HTTP server for ferry sinks")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--count-only", action="store_true",
                    help="keep counters only (GET /_stats), not the bodies")
    args = ap.parse_args(argv)
    srv = UpstreamServer(args.host, args.port, count_only=args.count_only)
    print(srv.port, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    srv.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        srv.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
