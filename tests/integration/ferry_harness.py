"""Test harness for driving the real ferryd and ferry binaries over real sockets.

Used by tests/integration/test_*.py and tests/fault/test_*.py (ctest sets FERRYD, FERRY and
PYTHONPATH). Standard library only.

  Daemon        starts ferryd on a short temporary socket path and state dir, waits until
                `ferry status` answers for *this* process, stops it with SIGTERM or SIGKILL,
                restarts it on the same paths.
  RawClient     a blocking socket client that speaks the frame format byte for byte, so tests
                can send anything, well-formed or not.
  read_journal  a pure-Python journal reader (segment magic, record headers, CRC-32C) that
                returns [Record(seq, received_ns, body)] and refuses anything malformed.

Nothing here sleeps to make a test correct: waits poll a condition and time out only as a
guard against hangs (HANG_GUARD_S), so a slow sanitizer build passes, just later.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections import namedtuple

FERRYD = os.environ.get("FERRYD", "ferryd")
# FERRY_TEST_CLIENT, when set, replaces the client ctest names: the tsan stage of .ci/run runs
# the release client against the TSan ferryd (the client has one thread, so TSan has nothing
# to check in it, and its runtime costs ~55 ms per call; the daemon is what that stage tests).
FERRY = os.environ.get("FERRY_TEST_CLIENT") or os.environ.get("FERRY", "ferry")

# Only a guard against hangs; nothing relies on it being short.
HANG_GUARD_S = 60.0

def _sanitizer_of(binary):
    """'address' or 'thread' when `binary` is built with a sanitizer (the asan-ubsan and tsan
    presets), else None. Memory bounds are meaningless there (ASan keeps freed memory in a
    quarantine, TSan shadows every byte), so tests skip them and print the figure instead.
    ctest says so in FERRY_SANITIZE; by hand, gcc links the runtime as a library (ldd) and
    clang links it in (its __asan_init / __tsan_init symbol is in the file)."""
    if "FERRY_SANITIZE" in os.environ:  # ctest: the preset's value ("" without one)
        env = os.environ["FERRY_SANITIZE"]
        return "address" if "address" in env else "thread" if "thread" in env else None
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    if "libasan" in out:
        return "address"
    if "libtsan" in out:
        return "thread"
    try:
        with open(binary, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if b"__asan_init" in data:
        return "address"
    if b"__tsan_init" in data:
        return "thread"
    return None


SANITIZER = _sanitizer_of(FERRYD) if os.path.exists(FERRYD) else None


def assert_memory_below(test, kib, bound_kib, what):
    """test.assertLess(kib, bound_kib) in a plain build; under a sanitizer only prints."""
    if SANITIZER:
        print("%s: %d KiB (bound %d KiB not checked under the %s sanitizer)"
              % (what, kib, bound_kib, SANITIZER))
        return
    test.assertLess(kib, bound_kib, what)


# A sanitizer build (asan-ubsan preset) aborts on the first report; these lines in ferryd's log
# fail the test even when the abort itself went unnoticed.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "ThreadSanitizer")

# Frame types (proto/frame.h).
HELLO, EVENT, EVENT_BATCH, ACK, ERROR, STATUS_REQ, STATUS, TAIL_REQ, TAIL_ITEM, FLUSH_REQ = range(1, 11)
QUERY_REQ, QUERY_RESULT, FLUSH_RESULT, DEADLETTER_REQ, DEADLETTER_RESULT = range(11, 16)

# ---------------------------------------------------------------------------------------------
# CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table driven.


def _make_crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _make_crc_table()


def crc32c(data, crc=0):
    """CRC-32C of `data`, extending `crc` (the value of the bytes before it)."""
    c = crc ^ 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283, "crc32c self-check"

# ---------------------------------------------------------------------------------------------
# Journal reader (daemon/journal/format.h).

SEGMENT_MAGIC = b"FERRYJ01"
RECORD_HEADER = struct.Struct("<IIQq")  # length, crc32c, seq, received_ns
MAX_RECORD_BODY = 64 << 20

Record = namedtuple("Record", "seq received_ns body")


class JournalError(Exception):
    pass


def segment_name(first_seq):
    return "%020d.seg" % first_seq


def segment_paths(state_dir):
    """[(first_seq, path)] of the journal's segment files, ascending."""
    jdir = os.path.join(state_dir, "journal")
    out = []
    for name in os.listdir(jdir):
        if len(name) == 24 and name.endswith(".seg") and name[:20].isdigit():
            out.append((int(name[:20]), os.path.join(jdir, name)))
    out.sort()
    return out


def record_bytes(seq, received_ns, body):
    """One encoded journal record, as ferryd writes it."""
    head = struct.pack("<Qq", seq, received_ns)
    crc = crc32c(body, crc32c(head))
    return struct.pack("<II", len(body), crc) + head + body


def scan_segment(data):
    """Parses one segment's bytes. Returns (records, valid_end, problem): the whole records,
    the offset just past the last of them, and why scanning stopped early (None at EOF)."""
    if data[:8] != SEGMENT_MAGIC:
        return [], 0, "bad segment magic"
    records = []
    pos = 8
    while pos < len(data):
        if len(data) - pos < RECORD_HEADER.size:
            return records, pos, "torn record header at offset %d" % pos
        length, crc, seq, received_ns = RECORD_HEADER.unpack_from(data, pos)
        if length > MAX_RECORD_BODY:
            return records, pos, "bad length at offset %d" % pos
        end = pos + RECORD_HEADER.size + length
        if end > len(data):
            return records, pos, "torn body at offset %d" % pos
        if crc32c(data[pos + 8:end]) != crc:
            return records, pos, "checksum mismatch at offset %d" % pos
        records.append(Record(seq, received_ns, data[pos + RECORD_HEADER.size:end]))
        pos = end
    return records, pos, None


def read_journal(state_dir, parse=True, segment_gaps=False):
    """Every record of the journal in `state_dir`, in order, as Record(seq, received_ns, body)
    with body parsed from JSON (or raw bytes with parse=False). Raises JournalError on any
    malformed byte, on a segment whose first seq does not match its name, and on a seq gap;
    with segment_gaps=True a gap between segments is allowed (recovery leaves one when it
    continues above a seq a consumer has seen; docs/journal-format.md, Recovery)."""
    out = []
    for first, path in segment_paths(state_dir):
        with open(path, "rb") as f:
            data = f.read()
        records, end, problem = scan_segment(data)
        if problem is not None:
            raise JournalError("%s: %s (file is %d bytes)" % (path, problem, len(data)))
        if records and records[0].seq != first:
            raise JournalError("%s starts at seq %d" % (path, records[0].seq))
        for i, r in enumerate(records):
            if out and r.seq != out[-1].seq + 1 and not (segment_gaps and i == 0 and
                                                         r.seq > out[-1].seq):
                raise JournalError("%s: seq %d follows %d" % (path, r.seq, out[-1].seq))
            out.append(Record(r.seq, r.received_ns, json.loads(r.body) if parse else r.body))
    return out


def last_segment_path(state_dir):
    return segment_paths(state_dir)[-1][1]


# ---------------------------------------------------------------------------------------------
# Frames and a raw socket client (proto/frame.h, proto/messages.h).


def encode_frame(ftype, body):
    if isinstance(body, (dict, list)):
        body = json.dumps(body, separators=(",", ":"))
    if isinstance(body, str):
        body = body.encode()
    return struct.pack("<IB", len(body) + 1, ftype) + body


def new_id():
    return os.urandom(16).hex()


def make_event(source="test", kind="unit", payload=None, **extra):
    """An envelope with a fresh random id and the current time."""
    ev = {"id": new_id(), "ts": time.time_ns(), "source": source, "kind": kind}
    if payload is not None:
        ev["payload"] = payload
    ev.update(extra)
    return ev


class Closed(Exception):
    """The daemon closed the connection (EOF or reset) before a whole frame arrived."""


class RawClient:
    """One connection to ferryd. Every blocking call is bounded by HANG_GUARD_S."""

    def __init__(self, path, timeout=HANG_GUARD_S):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, ftype, body):
        self.sock.sendall(encode_frame(ftype, body))

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed("connection closed with %d bytes of a frame buffered" % len(self.buf))
        self.buf += chunk

    def recv_frame(self):
        """Returns (type, body) with body parsed from JSON."""
        while len(self.buf) < 4:
            self._fill()
        (length,) = struct.unpack_from("<I", self.buf)
        while len(self.buf) < 4 + length:
            self._fill()
        ftype, body = self.buf[4], self.buf[5:4 + length]
        self.buf = self.buf[4 + length:]
        return ftype, json.loads(body)

    def expect_closed(self):
        """Asserts that nothing more arrives and the daemon closed the connection."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.buf += chunk
        except ConnectionResetError:
            pass
        if self.buf:
            raise AssertionError("expected the connection to close, got bytes %r" % self.buf[:200])

    # -- requests --------------------------------------------------------------------------

    def request(self, ftype, body):
        self.send_frame(ftype, body)
        return self.recv_frame()

    def send_event(self, event, durable=None):
        body = {"v": 1, "event": event}
        if durable is not None:
            body["durable"] = durable
        return self.request(EVENT, body)

    def send_batch(self, events, durable=None):
        body = {"v": 1, "events": events}
        if durable is not None:
            body["durable"] = durable
        return self.request(EVENT_BATCH, body)

    def ack(self, event, durable=None):
        """Sends one event and returns its ACK body; fails on anything else."""
        ftype, body = self.send_event(event, durable)
        if ftype != ACK:
            raise AssertionError("expected ACK, got type %d %r" % (ftype, body))
        return body

    def status(self):
        ftype, body = self.request(STATUS_REQ, {"v": 1})
        if ftype != STATUS:
            raise AssertionError("expected STATUS, got type %d %r" % (ftype, body))
        return body


# ---------------------------------------------------------------------------------------------
# Processes.


def make_tempdir():
    # Short and under /tmp: the socket path must fit sun_path (108 bytes).
    return tempfile.mkdtemp(prefix="fy", dir="/tmp")


def clean_env(**overrides):
    """The environment without any FERRY_/XDG_ setting of the user's, so nothing leaks in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FERRY_", "XDG_")) and k not in ("JOURNAL_STREAM",)}
    env.update({k: v for k, v in overrides.items() if v is not None})
    return env


def run_ferry(args, env, input=None, timeout=HANG_GUARD_S):
    """Runs the ferry client; returns CompletedProcess with text stdout/stderr."""
    return subprocess.run([FERRY] + list(args), env=env, input=input, capture_output=True,
                          timeout=timeout, text=isinstance(input, str) or input is None)


class Daemon:
    """One ferryd on a private socket and state dir under a fresh temp dir.

    config: None (defaults; no file) or TOML text written to <tmp>/config.toml.
    """

    def __init__(self, config=None, env=None, args=(), root=None):
        self.root = root or make_tempdir()
        self.owns_root = root is None
        self.socket = os.path.join(self.root, "run", "ferry.sock")
        self.state_dir = os.path.join(self.root, "state")
        self.config_path = None
        if config is not None:
            self.config_path = os.path.join(self.root, "config.toml")
            with open(self.config_path, "w") as f:
                f.write(config)
        self.extra_env = dict(env or {})
        self.args = list(args)
        self.proc = None
        self.log_path = os.path.join(self.root, "ferryd.log")
        self.starts = 0
        self._log_offset = 0

    # -- environment ------------------------------------------------------------------------

    def env(self, **extra):
        """The environment for any ferry or ferryd process aimed at this daemon."""
        return clean_env(FERRY_SOCKET=self.socket, FERRY_STATE_DIR=self.state_dir,
                         FERRY_CONFIG=self.config_path, HOME=self.root,
                         XDG_CONFIG_HOME=os.path.join(self.root, "xdg-config"), **extra)

    # -- lifecycle --------------------------------------------------------------------------

    def spawn(self, args=None, env_extra=None):
        """Starts ferryd without waiting. Its stderr is appended to self.log_path."""
        assert self.proc is None or self.proc.poll() is not None, "ferryd already running"
        env = self.env(**self.extra_env)
        env.update(env_extra or {})
        log = open(self.log_path, "ab")
        self._log_offset = log.tell()
        self.proc = subprocess.Popen([FERRYD] + (self.args if args is None else list(args)),
                                     env=env, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        self.starts += 1
        return self.proc

    def start(self, **kw):
        self.spawn(**kw)
        self.wait_ready()
        return self

    def wait_ready(self):
        """Polls STATUS on the socket until this ferryd process answers."""
        deadline = time.monotonic() + HANG_GUARD_S
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("ferryd exited with %d before answering; log:\n%s"
                                     % (self.proc.returncode, self.log()))
            # No socket yet, an old ferryd going away, or an ERROR instead of a status (say,
            # too many connections): ask again.
            try:
                with RawClient(self.socket, timeout=5.0) as c:
                    st = c.status()
            except (OSError, Closed, ValueError, AssertionError):
                st = None
            if st and st["daemon"]["pid"] == self.proc.pid:
                return st
            if time.monotonic() > deadline:
                raise AssertionError("ferryd did not answer within %ss; log:\n%s"
                                     % (HANG_GUARD_S, self.log()))
            time.sleep(0.01)

    def stop(self, sig=signal.SIGTERM):
        """Signals ferryd and waits for it; returns its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=HANG_GUARD_S)

    def kill(self):
        return self.stop(signal.SIGKILL)

    def restart(self, **kw):
        self.stop()
        return self.start(**kw)

    def close(self):
        """Stops ferryd (SIGTERM, so a sanitizer build runs its exit checks), removes the temp
        dir, and fails if a sanitizer reported anything in the log."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGCONT)  # in case a test left it stopped
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=HANG_GUARD_S)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=HANG_GUARD_S)
            log = self.log() if os.path.exists(self.log_path) else ""
            for marker in SANITIZER_MARKERS:
                if marker in log:
                    raise AssertionError("ferryd log has a sanitizer report:\n" + log[-20000:])
        finally:
            if self.owns_root:
                shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- inspection -------------------------------------------------------------------------

    def log(self):
        """Everything ferryd wrote to stderr, over all its starts."""
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def last_log(self):
        """What the most recent start of ferryd wrote."""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")

    def status(self):
        """ferryd's status object (docs/protocol.md, "Status object"): the STATUS reply that
        `ferry status --json` prints, read here over the socket. Tests poll it often, and a
        client process per poll costs ~60 ms under a sanitizer; test_status checks the client's
        own output."""
        try:
            with RawClient(self.socket, timeout=HANG_GUARD_S) as c:
                return c.status()
        except (OSError, Closed) as e:
            raise AssertionError("no status from ferryd at %s: %s" % (self.socket, e))

    def journal(self, **kw):
        return read_journal(self.state_dir, **kw)

    def client(self):
        return RawClient(self.socket)

    def emit(self, *args, input=None):
        """Runs `ferry emit` aimed at this daemon; returns the CompletedProcess."""
        return run_ferry(["emit"] + list(args), self.env(), input=input)

    def wait_for(self, predicate, what):
        """Polls status until predicate(status) holds (hang guard only)."""
        deadline = time.monotonic() + HANG_GUARD_S
        while True:
            st = self.status()
            if predicate(st):
                return st
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s; last status %r" % (what, st))
            time.sleep(0.01)


@contextlib.contextmanager
def daemon(config=None, **kw):
    d = Daemon(config=config, **kw)
    try:
        d.start()
        yield d
    finally:
        d.close()
