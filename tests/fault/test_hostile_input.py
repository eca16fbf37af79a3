"""Hostile local input against the real ferryd (issue 10: fault campaign "Hostile local input",
#11 drip-feed, #12 out of descriptors): garbage, huge length fields, slowloris and drip-fed
frames, 1,000 idle connections (with a memory bound) while a durable emit must succeed,
JSON nested 1e6 deep, a client that never reads its replies, and a process whose open-file
limit is lower than the connections it is offered. After each, ferryd still answers."""

import json
import os
import random
import resource
import socket
import struct
import subprocess
import time
import unittest

import ferry_harness as h

MAX_FRAME = 4 << 20


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(h.HANG_GUARD_S)
    s.connect(path)
    return s


def read_error_or_eof(s):
    """Reads what ferryd sends until it closes: returns the ERROR body, or None on bare EOF."""
    buf = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            break
        buf += chunk
    if len(buf) < 5:
        return None
    (length,) = struct.unpack_from("<I", buf)
    assert buf[4] == h.ERROR, buf[:100]
    return json.loads(buf[5:4 + length])


def poll(predicate, what, guard=h.HANG_GUARD_S):
    deadline = time.monotonic() + guard
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.01)


class HostileInputTest(unittest.TestCase):
    CONFIG = '[ingest]\nframe_timeout = "1s"\nidle_timeout = "60s"\n'

    def setUp(self):
        self.d = h.Daemon(config=self.CONFIG).start()
        self.addCleanup(self.d.close)

    def assert_durable_emit(self, budget_ms=5000):
        start = time.monotonic()
        r = self.d.emit("--source", "hostile", "--kind", "durable", "--durable", "--strict",
                        "--timeout-ms", str(budget_ms))
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        return time.monotonic() - start

    def test_garbage_and_huge_lengths_get_an_error_and_close(self):
        cases = [
            (b"\xff\xff\xff\xff\x02abc",
             {"code": "frame_too_large", "fatal": True,
              "message": "frame length 4294967295 exceeds the limit of 4194304 bytes"}),
            (b"GET / HTTP/1.1\r\n\r\n",
             {"code": "frame_too_large", "fatal": True,
              "message": "frame length 542393671 exceeds the limit of 4194304 bytes"}),
            (b"\x05\x00\x00\x00\x63abcd",
             {"code": "unknown_type", "fatal": True, "message": "unknown frame type 99"}),
            (struct.pack("<IB", 0, 2), None),
        ]
        for data, want in cases:
            with self.subTest(data=data[:8]):
                s = connect(self.d.socket)
                s.sendall(data)
                got = read_error_or_eof(s)
                s.close()
                if want is not None:
                    self.assertEqual(got, want)
                else:
                    self.assertEqual(got["code"], "empty_frame")
        rng = random.Random(10)
        before = rss_kib(self.d.proc.pid)
        for _ in range(200):
            s = connect(self.d.socket)
            s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300))))
            s.shutdown(socket.SHUT_WR)
            read_error_or_eof(s)  # an ERROR or EOF; never a hang (frame_timeout at most)
            s.close()
        h.assert_memory_below(self, rss_kib(self.d.proc.pid) - before, 16 << 10, "RSS growth")
        self.assertEqual(self.d.status()["journal"]["last_seq"], 0)
        self.assert_durable_emit()

    def test_drip_fed_frame_is_closed_within_the_frame_budget(self):
        """#11: a 4 MiB header, then a byte every 100 ms: each read is well inside the idle
        timeout (60 s), but the frame's deadline (frame_timeout = 1 s) closes it."""
        s = connect(self.d.socket)
        start = time.monotonic()
        s.sendall(struct.pack("<IB", MAX_FRAME, h.EVENT))
        s.setblocking(False)
        sent = 1
        buf = b""
        while True:
            try:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            except BlockingIOError:
                pass
            except ConnectionResetError:
                break
            if time.monotonic() - start > 15:
                self.fail("a drip-fed frame was still open after 15 s")
            try:
                s.send(b"x")
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                pass
            time.sleep(0.1)
        took = time.monotonic() - start
        s.close()
        self.assertGreaterEqual(took, 1.0)
        self.assertLess(took, 3.0)
        (length,) = struct.unpack_from("<I", buf)
        body = json.loads(buf[5:4 + length])
        self.assertEqual(body["code"], "idle_timeout")
        self.assertRegex(body["message"],
                         r"^frame incomplete after \d+ bytes and 1000 ms \(ingest\.frame_timeout\); "
                         r"closing$")
        self.assertIn("warning: closed a connection whose frame was incomplete after ",
                      self.d.log())

    def test_1024_drips_and_slowloris_do_not_stop_a_durable_emit(self):
        """#11: 1,024 connections (every slot) drip a 4 MiB frame or send a partial header and
        go silent; each is closed at its frame deadline, so a durable emit gets through, and
        the log says so in a few lines, not 1,024."""
        base = rss_kib(self.d.proc.pid)
        peak = 0
        socks = []
        for i in range(1024):
            s = connect(self.d.socket)
            s.sendall(struct.pack("<IB", MAX_FRAME, h.EVENT) if i % 2 else b"\x10\x00")
            s.setblocking(False)
            socks.append(s)
        start = time.monotonic()
        closed = set()
        while len(closed) < len(socks):
            for i, s in enumerate(socks):
                if i in closed:
                    continue
                try:
                    if not s.recv(65536):
                        closed.add(i)
                        continue
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    closed.add(i)
                    continue
                if i % 2:
                    try:
                        s.send(b"x")  # the drip
                    except (BrokenPipeError, ConnectionResetError):
                        closed.add(i)
            peak = max(peak, rss_kib(self.d.proc.pid) - base)
            self.assertLess(time.monotonic() - start, 20, "%d drips still open" % (1024 - len(closed)))
            time.sleep(0.25)
        self.assert_durable_emit()
        for s in socks:
            s.close()
        # A header that claims 4 MiB costs at most 64 KiB until the bytes come (512 of them
        # used to cost 4 MiB each: 2 GiB). Measured: see the report.
        print("\n1024 drips/slowloris: peak +%d KiB RSS" % peak)
        h.assert_memory_below(self, peak, 96 << 10, "peak RSS growth")
        log = self.d.log()
        # One line per second at most (the rest are counted in the next line and in status).
        self.assertLessEqual(log.count("closed a connection whose frame was incomplete"), 25)
        self.assertEqual(self.d.status()["ingest"]["rejected_total"], 1024)

    def test_1000_idle_connections_bounded_memory_and_durable_emit(self):
        """Memory per idle connection: measured here 2.8 KiB each (1,000 idle: +2.8 MB RSS;
        +4 MB after one STATUS each), was ~66-97 KiB each (a 64 KiB read buffer per
        connection). Bound with slack: 1,000 idle connections add < 16 MB. A durable emit
        still succeeds within its 2 s budget."""
        self.assert_durable_emit()  # warm up the allocator and the store
        base = rss_kib(self.d.proc.pid)
        socks = [connect(self.d.socket) for _ in range(1000)]
        self.d.wait_for(lambda st: st["ingest"]["connections"] == 1001, "1000 idle connections")
        idle = rss_kib(self.d.proc.pid) - base
        took = self.assert_durable_emit(budget_ms=2000)
        # Each connection sends one status request: its buffers stay small afterwards.
        for s in socks:
            s.sendall(h.encode_frame(h.STATUS_REQ, {"v": 1}))
        for s in socks:
            c = h.RawClient.__new__(h.RawClient)
            c.sock, c.buf = s, b""
            self.assertEqual(c.recv_frame()[0], h.STATUS)
        used = rss_kib(self.d.proc.pid) - base
        print("\n1000 idle connections: +%d KiB RSS (%.1f KiB each); after one STATUS each: "
              "+%d KiB; durable emit %.0f ms" % (idle, idle / 1000, used, took * 1000))
        h.assert_memory_below(self, idle, 16 << 10, "1000 idle connections")
        h.assert_memory_below(self, used, 24 << 10, "after one STATUS each")
        for s in socks:
            s.close()
        self.d.wait_for(lambda st: st["ingest"]["connections"] == 1, "the connections to close")

    def test_json_nested_a_million_deep(self):
        deep = "[" * 1000000 + "]" * 1000000
        body = ('{"v":1,"event":{"id":"%s","ts":1,"source":"a","kind":"b","payload":%s}}'
                % (h.new_id(), deep))
        # Issue 10, defect 8: a payload nested deeper than the payload limit (253) is kept as
        # text (payload_encoding "text"), not refused; the parse is iterative, so no crash.
        with self.d.client() as c:
            ftype, ack = c.request(h.EVENT, body)
            self.assertEqual((ftype, ack["first_seq"]), (h.ACK, ack["last_seq"]))
        rec = [r for r in self.d.journal() if r.seq == ack["last_seq"]][0]
        self.assertEqual((rec.body["payload_encoding"], rec.body["payload"]), ("text", deep))
        # Through the client (which keeps what ferryd may refuse): no crash, exit 0.
        r = h.run_ferry(["emit", "--stdin", "--source", "a", "--kind", "b"], self.d.env(),
                        input=deep)
        self.assertEqual(r.returncode, 0, r.stderr[:500])
        self.assertEqual(self.d.proc.poll(), None)
        self.assert_durable_emit()

    def test_client_that_never_reads_is_closed_and_bounded(self):
        """A client pipelines events and never reads its acks: ferryd stops reading from it
        once 4 MiB or 4,096 replies are owed, stays responsive, and closes it once its write
        made no progress for idle_timeout."""
        self.d.close()
        self.d = h.Daemon(config='[ingest]\nidle_timeout = "2s"\n').start()
        self.addCleanup(self.d.close)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(self.d.socket)
        s.setblocking(False)
        frame = h.encode_frame(h.STATUS_REQ, {"v": 1})  # large replies: fills buffers fast
        sent = 0
        stalled_since = None
        while True:
            try:
                s.send(frame)
                sent += 1
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 0.5:
                    break  # ferryd stopped reading: its owed replies reached the limit
                time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                # ferryd already closed it (its writes made no progress for idle_timeout while
                # a loaded machine kept this loop from seeing a 0.5 s stall): the log line and
                # the connection count below still check that it did so for that reason.
                break
            self.assertLess(sent, 10 ** 6)
        base = rss_kib(self.d.proc.pid)
        took = self.assert_durable_emit(budget_ms=2000)
        self.assertLess(took, 2.0)
        self.d.wait_for(lambda st: st["ingest"]["connections"] == 1,
                        "ferryd to close the client that never reads")
        h.assert_memory_below(self, rss_kib(self.d.proc.pid) - base, 64 << 10, "RSS growth")
        self.assertIn("warning: closed a connection that did not read its replies for 2000 ms",
                      self.d.log())
        s.close()


class LowFdLimitDaemon(h.Daemon):
    """ferryd started with RLIMIT_NOFILE `limits` (default (64, 64): the soft limit cannot be
    raised)."""

    limits = (64, 64)

    def spawn(self, args=None, env_extra=None):
        env = self.env(**self.extra_env)
        log = open(self.log_path, "ab")
        self._log_offset = log.tell()
        self.proc = subprocess.Popen(
            [h.FERRYD], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, self.limits))
        log.close()
        self.starts += 1
        return self.proc


class OutOfDescriptorsTest(unittest.TestCase):
    """#12: more connections than descriptors: no busy loop, no log flood, and ferryd answers
    again once the connections close."""

    def hammer(self, d, n=300):
        socks = []
        for _ in range(n):
            try:
                socks.append(connect(d.socket))
            except OSError:
                break
        stat0 = self.cpu_s(d.proc.pid)
        t0 = time.monotonic()
        # Hold them for a while: a busy accept loop would burn a core and log megabytes.
        poll(lambda: time.monotonic() - t0 > 1.5, "the hold period", guard=10)
        used = (self.cpu_s(d.proc.pid) - stat0) / (time.monotonic() - t0)
        for s in socks:
            s.close()
        d.wait_for(lambda st: st["ingest"]["connections"] <= 1, "the connections to close")
        r = d.emit("--source", "fd", "--kind", "after", "--durable", "--strict", "--timeout-ms",
                   "5000")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        return used

    @staticmethod
    def cpu_s(pid):
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def test_low_hard_limit_clamps_max_connections(self):
        d = LowFdLimitDaemon()
        self.addCleanup(d.close)
        d.start()
        self.assertIn("warning: ingest.max_connections = 1024 does not fit the open-file limit "
                      "(64); using 32 (raise the limit, e.g. LimitNOFILE= in the unit, to allow "
                      "more)", d.log())
        cpu = self.hammer(d)
        log = d.log()
        self.assertLessEqual(log.count("accept failed"), 3, log[-3000:])
        self.assertLessEqual(log.count("refused connection"), 10, log[-3000:])
        self.assertLess(cpu, 0.5)

    def test_soft_limit_is_raised_to_the_hard_limit(self):
        d = LowFdLimitDaemon()
        d.limits = (64, 4096)
        self.addCleanup(d.close)
        d.start()
        self.assertIn("info: raised the open-file limit from 64 to 4096", d.log())
        self.assertNotIn("does not fit the open-file limit", d.log())
        with open("/proc/%d/limits" % d.proc.pid) as f:
            line = [l for l in f if l.startswith("Max open files")][0]
        self.assertEqual(line.split()[3:5], ["4096", "4096"])
        self.hammer(d, n=1100)  # more than the old soft limit: all served or refused in turn
        self.assertNotIn("accept failed", d.log())

    def test_limit_lowered_while_running_pauses_accepts(self):
        """The limit drops under a running ferryd (prlimit): accept(2) fails with EMFILE;
        ferryd pauses accepting instead of spinning and logs one line per 10 s."""
        d = h.Daemon().start()
        self.addCleanup(d.close)
        resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (64, 64))
        cpu = self.hammer(d)
        log = d.log()
        self.assertLessEqual(log.count("accept failed"), 3, log[-3000:])
        self.assertIn("warning: accept failed: Too many open files; pausing accepts for 200 ms "
                      "at a time", log[-3000:])
        self.assertLess(cpu, 0.5)


if __name__ == "__main__":
    unittest.main()
