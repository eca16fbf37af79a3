"""The OTLP traces sink end to end (docs/sinks.md "Traces"): the real ferryd and `ferry emit`
of the hook fixtures, against the loopback upstream of upstream_server.py.

Asserts the exact spans posted to <url>/v1/traces (ids recomputed here with hashlib, names,
times from the journal, status, every attribute in order); a call whose pre and post events
go out in two batches; a ferryd SIGKILL between pre and post (the span still arrives, once,
with its final values); a failure post (ERROR); a session end (an unfinished span); a 500
retried with the same body, and resent with the same body and key after a SIGKILL mid-POST;
secrets redacted out of the spans and the pending calls; the config keys' checks.

Waits poll a condition; timeouts are hang guards.
"""

import hashlib
import json
import os
import re
import subprocess
import unittest

import ferry_harness as h
from test_hooks import FIXTURES, load_manifest
from test_sinks import sink_toml
from upstream_server import UpstreamServer

GUARD = 90.0
HEX = re.compile(r"^[0-9a-f]+$")


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return json.loads(f.read())


def trace_id(source, session):
    return hashlib.sha256(("ferry.trace\n%s\n%s" % (source, session)).encode()).hexdigest()[:32]


def span_id(source, session, call):
    return hashlib.sha256(("ferry.span\n%s\n%s\n%s" % (source, session, call)).encode()).hexdigest()[:16]


def compact(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def s(key, value):
    return {"key": key, "value": {"stringValue": value}}


def i(key, value):
    return {"key": key, "value": {"intValue": str(value)}}


def expected_span(env_start, env_end, name, input, outcome, output_bytes=None, tool_use_id=None,
                  start_seq=None, end_seq=None, message=None, shell=False, exit_code=None,
                  start=None, parent=None):
    """The span docs/protocol.md ("otlp-http traces") promises, from the journal envelopes."""
    first = env_start or env_end
    src, sess = first["source"], first.get("session", "")
    if shell:
        call = "event:" + first["id"]
    elif tool_use_id:
        call = "call:" + tool_use_id
    else:
        call = "event:" + first["id"]
    attrs = [s("ferry.source", src), s("session.id", sess), s("ferry.cwd", first["cwd"])]
    if not shell:
        attrs.append(s("gen_ai.operation.name", "execute_tool"))
        attrs.append(s("gen_ai.tool.name", name))
        if tool_use_id:
            attrs.append(s("gen_ai.tool.call.id", tool_use_id))
    attrs += [s("ferry.input", input), s("ferry.outcome", outcome)]
    if output_bytes is not None:
        attrs.append(i("ferry.output_bytes", output_bytes))
    if exit_code is not None:
        attrs.append(i("process.exit.code", exit_code))
    if start_seq:
        attrs.append(i("ferry.start_seq", start_seq))
    if end_seq:
        attrs.append(i("ferry.end_seq", end_seq))
    if outcome == "unfinished":
        attrs.append({"key": "ferry.unfinished", "value": {"boolValue": True}})
    code = {"ok": 1, "failed": 2, "interrupted": 2}.get(outcome, 0)
    status = {"code": code}
    if code == 2:
        status["message"] = message
    span = {"traceId": trace_id(src, sess), "spanId": span_id(src, sess, call)}
    if parent:
        span["parentSpanId"] = parent
    begin = start if start is not None else first["ts"]
    end = env_end["ts"] if env_end else begin
    span.update({"name": name, "kind": 1, "startTimeUnixNano": str(begin),
                 "endTimeUnixNano": str(end), "attributes": attrs, "status": status})
    return span


def check_request_shape(test, doc):
    """An ExportTraceServiceRequest as OTLP/JSON has it: only the fields ferry documents, ids
    as lowercase hex of 32/16 digits, 64-bit times as decimal strings."""
    test.assertEqual(set(doc), {"resourceSpans"})
    [rs] = doc["resourceSpans"]
    test.assertEqual(set(rs), {"resource", "scopeSpans"})
    attrs = {kv["key"]: kv["value"] for kv in rs["resource"]["attributes"]}
    test.assertEqual(attrs["service.name"], {"stringValue": "ferry"})
    test.assertRegex(attrs["host.id"]["stringValue"], r"^[0-9a-f]{32}$")
    test.assertEqual(set(attrs), {"service.name", "service.version", "host.name", "host.id"})
    [ss] = rs["scopeSpans"]
    test.assertEqual(ss["scope"]["name"], "ferry")
    for span in ss["spans"]:
        test.assertLessEqual(set(span), {"traceId", "spanId", "parentSpanId", "name", "kind",
                                         "startTimeUnixNano", "endTimeUnixNano", "attributes",
                                         "status"})
        test.assertTrue(HEX.match(span["traceId"]) and len(span["traceId"]) == 32, span)
        test.assertTrue(HEX.match(span["spanId"]) and len(span["spanId"]) == 16, span)
        test.assertTrue(span["startTimeUnixNano"].isdigit() and span["endTimeUnixNano"].isdigit())
        test.assertLessEqual(int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"]))
    return ss["spans"]


class TracesSinkTest(unittest.TestCase):
    maxDiff = None

    def server(self):
        srv = UpstreamServer().start()
        self.addCleanup(srv.close)
        return srv

    def daemon(self, srv, extra="", **opts):
        cfg = extra + sink_toml("tr", srv.url("/otel"), type="otlp-http", signal="traces",
                                gzip=False, **opts)
        d = h.Daemon(config=cfg)
        self.addCleanup(d.close)
        d.start()
        return d

    def emit(self, d, source, payload, *extra):
        data = payload if isinstance(payload, bytes) else compact(payload).encode()
        r = d.emit("--source", source, "--stdin", "--durable", "--strict", "--print-ack",
                   "--timeout-ms", "10000", *extra, input=data)
        self.assertEqual(r.returncode, 0, r.stderr)
        return int(r.stdout.strip())

    def flush(self, d):
        r = h.run_ferry(["flush", "--wait", "--timeout", "60s"], d.env())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def envelope(self, d, seq):
        [rec] = [r for r in d.journal() if r.seq == seq]
        return rec.body

    def spans(self, srv):
        """Every span the server accepted, in the order it got them."""
        out = []
        for r in srv.requests:
            if r.accepted:
                self.assertEqual(r.path, "/otel/v1/traces")
                out.extend(check_request_shape(self, r.json))
        return out

    def wait_spans(self, srv, n):
        srv.wait_for(lambda _: len(self.spans(srv)) >= n, "%d span(s)" % n, GUARD)
        return self.spans(srv)

    def cursor_file(self, d):
        with open(os.path.join(d.state_dir, "cursors", "tr")) as f:
            return json.load(f)

    # -- tests ------------------------------------------------------------------------------

    def test_tool_calls_and_shell_commands_become_exact_spans(self):
        srv = self.server()
        d = self.daemon(srv)
        pre, post = fixture("codex/PreToolUse.json"), fixture("codex/PostToolUse.json")
        before, after = fixture("gemini/BeforeTool.json"), fixture("gemini/AfterTool.json")
        shell = fixture("shell/bash-command.json")
        seqs = [self.emit(d, "codex", pre), self.emit(d, "gemini", before),
                self.emit(d, "gemini", after), self.emit(d, "codex", post),
                self.emit(d, "bash", shell, "--kind", "command", "--session", shell["session"])]
        self.flush(d)
        got = self.wait_spans(srv, 3)
        env = [self.envelope(d, q) for q in seqs]
        want = [
            expected_span(env[1], env[2], "run_shell_command", before["tool_input"]["command"],
                          "ok", len(compact(after["tool_response"]).encode()),
                          start_seq=seqs[1], end_seq=seqs[2]),
            expected_span(env[0], env[3], "Bash", pre["tool_input"]["command"], "ok",
                          len(post["tool_response"].encode()), tool_use_id=pre["tool_use_id"],
                          start_seq=seqs[0], end_seq=seqs[3]),
            expected_span(env[4], env[4], "shell", shell["command"], "failed", shell=True,
                          exit_code=1, start_seq=seqs[4], end_seq=seqs[4],
                          message="exit status 1", start=env[4]["ts"] - shell["duration_ns"]),
        ]
        self.assertEqual(got, want)
        self.assertEqual(env[0]["source"], "codex")
        self.assertEqual(self.cursor_file(d), {"cursor": seqs[-1]})  # nothing pending

    def test_pre_and_post_in_two_batches_then_a_failure(self):
        srv = self.server()
        d = self.daemon(srv)
        fail = fixture("claude-code/PostToolUseFailure.json")
        pre = dict(fail, hook_event_name="PreToolUse")
        for k in ("error", "is_interrupt"):
            del pre[k]
        first = self.emit(d, "claude-code", pre)
        self.flush(d)
        # The pre's batch is done: no span yet, nothing sent, the call saved with the cursor.
        self.assertEqual(srv.requests, [])
        cur = self.cursor_file(d)
        self.assertEqual(cur["cursor"], first)
        [pending] = cur["pending_spans"]
        self.assertEqual((pending["seq"], pending["tool_use_id"], pending["tool"]),
                         (first, fail["tool_use_id"], "Bash"))
        st = [s_ for s_ in d.status()["sinks"] if s_["name"] == "tr"][0]
        self.assertEqual((st["cursor"], st["requests"], st["delivered_events"], st["signal"],
                          st["pending_spans"]), (first, 0, 1, "traces", 1))
        second = self.emit(d, "claude-code", fail)
        self.flush(d)
        [span] = self.wait_spans(srv, 1)
        want = expected_span(self.envelope(d, first), self.envelope(d, second), "Bash",
                             fail["tool_input"]["command"], "failed", len(fail["error"].encode()),
                             tool_use_id=fail["tool_use_id"], start_seq=first, end_seq=second,
                             message=fail["error"][:200])
        self.assertEqual(span, want)
        self.assertEqual(span["status"]["code"], 2)
        self.assertEqual(self.cursor_file(d), {"cursor": second})
        st = [s_ for s_ in d.status()["sinks"] if s_["name"] == "tr"][0]
        self.assertEqual((st["pending_spans"], st["requests"]), (0, 1))

    def test_sigkill_between_pre_and_post_still_sends_the_span_once(self):
        srv = self.server()
        d = self.daemon(srv)
        post = fixture("claude-code/PostToolUse.json")
        pre = {k: v for k, v in post.items() if k != "tool_response"}
        pre["hook_event_name"] = "PreToolUse"
        other = fixture("claude-code/PreToolUse.json")  # a call that is still running
        first = self.emit(d, "claude-code", pre)
        running = self.emit(d, "claude-code", other)
        self.flush(d)
        self.assertEqual(len(self.cursor_file(d)["pending_spans"]), 2)
        d.kill()
        st = d.start().wait_ready()
        self.assertEqual([x["pending_spans"] for x in st["sinks"]], [2])
        second = self.emit(d, "claude-code", post)
        self.flush(d)
        [span] = self.wait_spans(srv, 1)
        want = expected_span(self.envelope(d, first), self.envelope(d, second), "Bash",
                             post["tool_input"]["command"], "ok",
                             len(compact(post["tool_response"]).encode()),
                             tool_use_id=post["tool_use_id"], start_seq=first, end_seq=second)
        self.assertEqual(span, want)
        [left] = self.cursor_file(d)["pending_spans"]
        self.assertEqual((left["seq"], left["tool_use_id"]), (running, other["tool_use_id"]))
        # The session's end sends the call that never finished, as unfinished, end = start.
        end = self.emit(d, "claude-code", fixture("claude-code/SessionEnd.json"))
        self.flush(d)
        spans = self.wait_spans(srv, 2)
        self.assertEqual(len(spans), 2)
        self.assertEqual(spans[1], expected_span(
            self.envelope(d, running), None, "Bash", other["tool_input"]["command"], "unfinished",
            tool_use_id=other["tool_use_id"], start_seq=running))
        self.assertEqual(self.cursor_file(d), {"cursor": end})
        self.assertIn("2 tool call(s) waiting for their end event", d.log())

    def test_secrets_stay_local_in_spans_and_the_pending_calls(self):
        [fx] = [f for f in load_manifest() if f["file"] == "claude-code/PreToolUse-secrets.json"]
        secrets = fx["expect"]["secrets"]
        srv = self.server()
        d = self.daemon(srv, extra="[redact]\nlocal = false\n\n")
        with open(os.path.join(FIXTURES, fx["file"]), "rb") as f:
            raw = f.read()
        pre = json.loads(raw)
        first = self.emit(d, "claude-code", raw)
        self.flush(d)
        with open(os.path.join(d.state_dir, "cursors", "tr")) as f:
            cursor_text = f.read()
        [pending] = json.loads(cursor_text)["pending_spans"]
        self.assertEqual(pending["seq"], first)
        self.assertIn("[REDACTED:", pending["input"])
        post = dict(pre, hook_event_name="PostToolUse", tool_response={"stdout": "done"})
        self.emit(d, "claude-code", post)
        self.flush(d)
        [span] = self.wait_spans(srv, 1)
        attrs = {a["key"]: a["value"] for a in span["attributes"]}
        self.assertEqual(attrs["ferry.input"], {"stringValue": pending["input"]})
        body = srv.requests[0].raw_body.decode()
        journal = json.dumps([r.body for r in d.journal()])
        for secret in secrets:
            self.assertIn(secret, journal)  # local = false: the journal keeps what was sent
            for text in (cursor_text, body):
                self.assertNotIn(secret, text)
                self.assertNotIn(json.dumps(secret)[1:-1], text)

    def test_sigkill_mid_post_resends_the_same_spans(self):
        srv = self.server()
        srv.stall_until_released(1)
        d = self.daemon(srv, timeout="60s")
        pre, post = fixture("codex/PreToolUse.json"), fixture("codex/PostToolUse.json")
        first = self.emit(d, "codex", pre)
        self.emit(d, "codex", post)
        h.run_ferry(["flush"], d.env())
        srv.wait_stalled(1, GUARD)
        [held] = srv.requests
        d.kill()
        srv.release_stalled()
        srv.wait_for(lambda _: held.note != "pending", "the held request to end", GUARD)
        self.assertIsNone(held.status)
        # Whether the pre went in the held batch or alone before it (then it waits in the
        # cursor file), the restarted sink sends the same span, same ids, under the same key.
        d.start()
        h.run_ferry(["flush"], d.env())
        [span] = self.wait_spans(srv, 1)
        [again] = [r for r in srv.requests if r.accepted]
        self.assertEqual((again.json, again.key), (held.json, held.key))
        self.assertEqual(span["spanId"], span_id("codex", pre["session_id"],
                                                 "call:" + pre["tool_use_id"]))
        self.assertEqual(span["attributes"][-2], i("ferry.start_seq", first))

    def test_retry_sends_the_same_spans(self):
        srv = self.server()
        srv.fail_next(2, status=500)
        d = self.daemon(srv)
        pre, post = fixture("codex/PreToolUse.json"), fixture("codex/PostToolUse.json")
        self.emit(d, "codex", pre)
        self.emit(d, "codex", post)
        r = h.run_ferry(["flush"], d.env())  # no --wait: it would report the first 500
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        [span] = self.wait_spans(srv, 1)
        bodies = [r.json for r in srv.requests]
        self.assertEqual([r.status for r in srv.requests], [500, 500, 200])
        self.assertEqual(bodies[0], bodies[2])
        self.assertEqual(len({r.key for r in srv.requests}), 1)
        self.assertEqual(span["name"], "Bash")

    def test_langfuse_shape_basic_auth_and_its_echo_redacted(self):
        srv = self.server()
        d = h.Daemon(config=None)
        self.addCleanup(d.close)
        token = os.path.join(d.root, "langfuse.keys")
        with open(os.open(token, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write("pk-lf-1:sk-lf-2\n")
        with open(os.path.join(d.root, "config.toml"), "w") as f:
            f.write(sink_toml("lf", srv.url("/api/public/otel"), type="otlp-http",
                              signal="traces", auth="basic", token_file=token,
                              headers={"x-langfuse-ingestion-version": "4"}))
        d.config_path = os.path.join(d.root, "config.toml")
        d.start()
        pre, post = fixture("codex/PreToolUse.json"), fixture("codex/PostToolUse.json")
        self.emit(d, "codex", pre)
        self.emit(d, "codex", post)
        srv.wait_for(lambda _: any(r.accepted for r in srv.requests), "a span", GUARD)
        [r] = srv.requests
        self.assertEqual(r.path, "/api/public/otel/v1/traces")
        self.assertEqual(r.headers.get("authorization"), "Basic cGstbGYtMTpzay1sZi0y")
        self.assertEqual(r.headers.get("x-langfuse-ingestion-version"), "4")
        self.assertEqual(r.headers.get("content-encoding"), "gzip")
        self.assertEqual([sp["name"] for sp in r.json["resourceSpans"][0]["scopeSpans"][0]["spans"]],
                         ["Bash"])
        # A 401 whose body echoes the credentials: neither form reaches status.
        srv.unauthorized(401, echo_auth=True)
        self.emit(d, "codex", fixture("shell/bash-command.json"), "--kind", "command")
        st = d.wait_for(lambda st: any(x["name"] == "lf" and x["state"] == "paused"
                                       for x in st.get("sinks", [])), "the sink to pause")
        [lf] = [x for x in st["sinks"] if x["name"] == "lf"]
        self.assertEqual(lf["last_error"]["status"], 401)
        self.assertIn("[REDACTED:token]", lf["last_error"]["body"])
        text = json.dumps(st)
        for secret in ("cGstbGYtMTpzay1sZi0y", "sk-lf-2", "pk-lf-1:sk-lf-2"):
            self.assertNotIn(secret, text)

    def test_config_keys(self):
        def check(text):
            root = h.make_tempdir()
            self.addCleanup(lambda: subprocess.run(["rm", "-rf", root]))
            path = os.path.join(root, "config.toml")
            with open(path, "w") as f:
                f.write(text)
            return subprocess.run([h.FERRYD, "--check-config", "--config", path],
                                  env=h.clean_env(), capture_output=True, text=True)

        r = check(sink_toml("tr", "http://127.0.0.1:4318/", type="otlp-http", signal="traces",
                            span_timeout="10m"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("sink tr: otlp-http traces (span_timeout 600000ms) -> "
                      "http://127.0.0.1:4318/v1/traces; max_events 100,", r.stdout)
        r = check(sink_toml("tr", "http://127.0.0.1:4318/v1/traces", type="otlp-http",
                            signal="traces"))
        self.assertIn("-> http://127.0.0.1:4318/v1/traces;", r.stdout)
        r = check(sink_toml("tr", "http://127.0.0.1/", signal="traces"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("signal: only an otlp-http sink has one", r.stderr)
        r = check(sink_toml("tr", "http://127.0.0.1/", type="otlp-http", span_timeout="1h"))
        self.assertEqual(r.returncode, 2)
        self.assertIn('span_timeout: only a sink with signal = "traces"', r.stderr)
        r = check(sink_toml("tr", "http://127.0.0.1/", type="otlp-http", auth="basic",
                            token_env="LF_KEYS"))
        self.assertIn("token from $LF_KEYS (auth basic)\n", r.stdout)
        r = check(sink_toml("tr", "http://127.0.0.1/", type="otlp-http", signal="metrics"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("signal", r.stderr)


if __name__ == "__main__":
    unittest.main()
