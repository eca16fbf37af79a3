"""Bad input through the real socket: each bad frame gets an ERROR frame with the right code and
a message, then the connection closes, while a well-behaved client alongside keeps getting acks
and nothing acked is affected."""

import os
import re
import struct
import threading
import time
import unittest

import ferry_harness as h


class GoodClient(threading.Thread):
    """Streams events on one persistent connection and records every ack, until stopped."""

    def __init__(self, daemon):
        super().__init__(daemon=True)
        self.client = daemon.client()
        self.stop_flag = threading.Event()
        self.acked = []  # (seq, id)
        self.error = None

    def run(self):
        try:
            while not self.stop_flag.is_set():
                ev = h.make_event(source="good", kind="alongside")
                ack = self.client.ack(ev)
                if ack["first_seq"] != ack["last_seq"]:
                    raise AssertionError("ack %r" % ack)
                self.acked.append((ack["last_seq"], ev["id"]))
        except Exception as e:  # reported by finish()
            self.error = e

    def wait_acks(self, n):
        """Waits until at least n more acks than now arrived (hang guard only)."""
        target = len(self.acked) + n
        deadline = time.monotonic() + h.HANG_GUARD_S
        while len(self.acked) < target and self.error is None:
            if time.monotonic() > deadline:
                raise AssertionError("good client stalled at %d acks" % len(self.acked))
            time.sleep(0.001)
        if self.error:
            raise self.error

    def finish(self):
        self.stop_flag.set()
        self.join(h.HANG_GUARD_S)
        self.client.close()
        if self.error:
            raise self.error
        return self.acked


class BadFramesTest(unittest.TestCase):
    """Malformed frames, with the default (long) idle timeout."""

    def setUp(self):
        self.d = h.Daemon(config='[ingest]\nmax_frame = "64KiB"\n')
        self.d.start()
        self.good = GoodClient(self.d)
        self.good.start()
        self.good.wait_acks(1)
        self.rejected_before = self.d.status()["ingest"]["rejected_total"]
        self.other_acks = []  # events acked on connections other than the good client's

    def tearDown(self):
        try:
            acked = sorted(self.good.finish() + self.other_acks)
            # Nothing acked is affected: the journal holds exactly the good client's events,
            # at the seqs their acks named, with no gap.
            records = self.d.journal()
            self.assertEqual([(r.seq, r.body["id"]) for r in records], acked)
            self.assertEqual([r.seq for r in records], list(range(1, len(acked) + 1)))
        finally:
            self.d.close()

    def expect_error(self, data, code, message, fatal=True, rejected=1):
        """Sends `data` on a new connection; asserts one ERROR frame, then the close."""
        with self.d.client() as c:
            try:
                c.send_raw(data)
            except (BrokenPipeError, ConnectionResetError):
                # ferryd answered from the header alone and closed while we were still
                # sending the rest; its ERROR frame is already in our receive queue.
                pass
            ftype, body = c.recv_frame()
            self.assertEqual(ftype, h.ERROR, body)
            self.assertEqual(body, {"code": code, "message": message, "fatal": fatal})
            if fatal:
                c.expect_closed()
        self.good.wait_acks(3)  # the good client keeps getting acks
        self.assertEqual(self.d.status()["ingest"]["rejected_total"],
                         self.rejected_before + rejected)

    def expect_error_frame(self, c, code, message):
        ftype, body = c.recv_frame()
        self.assertEqual(ftype, h.ERROR, body)
        self.assertEqual(body, {"code": code, "message": message, "fatal": True})

    def test_garbage_bytes(self):
        # "GET " read as a length is 0x20544547 = 542393671.
        self.expect_error(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "frame_too_large",
                          "frame length 542393671 exceeds the limit of 65536 bytes")

    def test_4gib_length_prefix(self):
        self.expect_error(b"\xff\xff\xff\xff", "frame_too_large",
                          "frame length 4294967295 exceeds the limit of 65536 bytes")

    def test_4gib_length_prefix_with_body_following(self):
        self.expect_error(b"\xff\xff\xff\xff\x02" + b"x" * 100000, "frame_too_large",
                          "frame length 4294967295 exceeds the limit of 65536 bytes")

    def test_length_just_over_the_limit(self):
        self.expect_error(struct.pack("<IB", 65537, h.EVENT), "frame_too_large",
                          "frame length 65537 exceeds the limit of 65536 bytes")

    def test_zero_length(self):
        self.expect_error(b"\x00\x00\x00\x00", "empty_frame",
                          "frame length is 0; a frame holds at least its type byte")

    def test_unknown_type(self):
        self.expect_error(h.encode_frame(99, b"{}"), "unknown_type", "unknown frame type 99")
        self.expect_error(h.encode_frame(0, b"{}"), "unknown_type", "unknown frame type 0",
                          rejected=2)

    def test_reply_type_from_a_client(self):
        self.expect_error(h.encode_frame(h.ACK, {"first_seq": 1, "last_seq": 1}),
                          "unexpected_type", "ACK is a reply type; a client may not send it")

    def test_invalid_json(self):
        self.expect_error(h.encode_frame(h.EVENT, b'{"v":1,"event":{'), "bad_json",
                          "invalid JSON at byte 16: Missing a name for object member.")

    def test_json_not_an_object(self):
        self.expect_error(h.encode_frame(h.EVENT, b"[1,2]"), "not_object",
                          "frame body must be a JSON object")

    def test_missing_version(self):
        self.expect_error(h.encode_frame(h.EVENT, {"event": h.make_event()}), "bad_version",
                          'missing protocol version field "v"')

    def test_missing_event(self):
        self.expect_error(h.encode_frame(h.EVENT, {"v": 1}), "missing_field",
                          'EVENT needs an "event" object')

    def test_event_missing_kind(self):
        ev = h.make_event()
        del ev["kind"]
        self.expect_error(h.encode_frame(h.EVENT, {"v": 1, "event": ev}), "missing_field",
                          "event.kind is required")

    def test_batch_with_one_bad_event_appends_nothing(self):
        events = [h.make_event(), h.make_event(), h.make_event()]
        events[2]["ts"] = "yesterday"
        self.expect_error(h.encode_frame(h.EVENT_BATCH, {"v": 1, "events": events}), "wrong_type",
                          "events[2].ts must be a non-negative integer (ns since the epoch)")

    def test_unknown_envelope_field(self):
        self.expect_error(h.encode_frame(h.EVENT, {"v": 1, "event": h.make_event(colour="red")}),
                          "unknown_field", "event.colour is not an envelope field")

    def test_frame_stops_halfway_then_eof(self):
        frame = h.encode_frame(h.EVENT, {"v": 1, "event": h.make_event()})
        with self.d.client() as c:
            c.send_raw(frame[:len(frame) // 2])
            c.shutdown_write()
            # A half-closed peer still reads why nothing was stored, then the daemon closes.
            self.expect_error_frame(c, "truncated_frame",
                                    "connection closed after %d bytes of an incomplete frame; "
                                    "nothing of it was stored" % (len(frame) // 2))
            c.expect_closed()
        self.good.wait_acks(3)
        self.d.wait_for(lambda st: st["ingest"]["rejected_total"] == self.rejected_before + 1,
                        "the torn frame to be counted")

    def test_whole_frame_then_half_a_frame_then_eof(self):
        # The whole frame is acked; the torn one after it is dropped and counted.
        ev = h.make_event(source="good", kind="before-torn")
        torn = h.encode_frame(h.EVENT, {"v": 1, "event": h.make_event()})
        with self.d.client() as c:
            c.send_raw(h.encode_frame(h.EVENT, {"v": 1, "event": ev}) + torn[:-1])
            c.shutdown_write()
            ftype, body = c.recv_frame()
            self.assertEqual(ftype, h.ACK)
            self.expect_error_frame(c, "truncated_frame",
                                    "connection closed after %d bytes of an incomplete frame; "
                                    "nothing of it was stored" % (len(torn) - 1))
            c.expect_closed()
        self.other_acks.append((body["last_seq"], ev["id"]))
        self.d.wait_for(lambda st: st["ingest"]["rejected_total"] == self.rejected_before + 1,
                        "the torn frame to be counted")

    def test_sink_requests_without_sinks_are_answered_without_closing(self):
        # FLUSH_REQ and DEADLETTER_REQ (no sinks configured): answered at once, nothing refused.
        with self.d.client() as c:
            t, body = c.request(h.FLUSH_REQ, {"v": 1})
            self.assertEqual(t, h.FLUSH_RESULT, body)
            self.assertEqual(body["sinks"], [])
            self.assertTrue(body["done"])
            t, body = c.request(h.DEADLETTER_REQ, {"v": 1, "op": "purge"})
            self.assertEqual((t, body), (h.DEADLETTER_RESULT, {"op": "purge", "sinks": []}))
            ev = h.make_event(source="good", kind="after-sink-requests")
            self.other_acks.append((c.ack(ev)["last_seq"], ev["id"]))
        self.assertEqual(self.d.status()["ingest"]["rejected_total"], self.rejected_before)

    def test_status_request_with_a_bad_version(self):
        self.expect_error(h.encode_frame(h.STATUS_REQ, {"v": 7}), "bad_version",
                          "protocol version 7 is not supported; this build speaks version 1")

    def test_errors_after_good_frames_on_one_connection(self):
        # Replies owed for earlier frames go out first, in order; then the ERROR; then close.
        events = [h.make_event(source="good", kind="same-conn") for _ in range(3)]
        with self.d.client() as c:
            c.send_raw(b"".join(h.encode_frame(h.EVENT, {"v": 1, "event": e}) for e in events) +
                       b"\x00\x00\x00\x00" +
                       h.encode_frame(h.EVENT, {"v": 1, "event": h.make_event()}))
            replies = [c.recv_frame() for _ in range(4)]
            c.expect_closed()
        self.assertEqual([t for t, _ in replies], [h.ACK, h.ACK, h.ACK, h.ERROR])
        self.assertEqual(replies[3][1]["code"], "empty_frame")
        for (_, ack), ev in zip(replies[:3], events):
            self.other_acks.append((ack["last_seq"], ev["id"]))

    def test_frame_just_under_the_limit_is_accepted(self):
        ev = h.make_event(source="good", kind="big", payload="y" * 65000)
        frame = h.encode_frame(h.EVENT, {"v": 1, "event": ev})
        self.assertLessEqual(len(frame) - 4, 65536)
        with self.d.client() as c:
            ack = c.ack(ev)
        self.assertEqual(ack["durable"], False)
        self.other_acks.append((ack["last_seq"], ev["id"]))
        self.good.wait_acks(2)


class SlowReaderTest(unittest.TestCase):
    """A client that streams events but never reads its acks: the daemon stops reading from it
    once its replies back up (bounded memory) and keeps serving everyone else."""

    N = 150000

    def test_client_that_never_reads_its_acks(self):
        d = h.Daemon()
        self.addCleanup(d.close)
        d.start()
        template = h.make_event(kind="slow")
        frames = []
        for i in range(self.N):
            template["id"] = "%032x" % i
            frames.append(h.encode_frame(h.EVENT, {"v": 1, "event": template}))
        slow = d.client()
        self.addCleanup(slow.close)
        sender = threading.Thread(target=slow.send_raw, args=(b"".join(frames),), daemon=True)
        sender.start()
        # Wait until the daemon stops taking the slow client's events (a seq that holds still
        # between two looks); a pause that came too early only makes the bound looser.
        prev = -1
        while True:
            seq = d.status()["journal"]["last_seq"]
            if seq == prev and seq > 0:
                break
            prev = seq
            time.sleep(0.2)
        # Owed replies are capped (4 MiB of acks plus the socket buffers: about 80,000 here).
        self.assertLess(seq, self.N)
        self.assertTrue(sender.is_alive())  # still blocked sending
        good = h.make_event(kind="good")
        with d.client() as c:
            good_seq = c.ack(good)["last_seq"]
        # Now read: every ack arrives, in order, and the stream resumes to the end.
        acks = [slow.recv_frame() for _ in range(self.N)]
        sender.join(h.HANG_GUARD_S)
        self.assertTrue(all(t == h.ACK for t, _ in acks))
        seqs = [b["last_seq"] for _, b in acks]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(sorted(seqs + [good_seq]), list(range(1, self.N + 2)))
        records = d.journal()
        self.assertEqual(len(records), self.N + 1)
        self.assertEqual(records[good_seq - 1].body["id"], good["id"])


class LimitsCase(unittest.TestCase):
    CONFIG = ""

    def setUp(self):
        self.d = h.Daemon(config=self.CONFIG)
        self.d.start()
        self.acked = []

    def tearDown(self):
        try:
            records = self.d.journal()
            self.assertEqual([(r.seq, r.body["id"]) for r in records], self.acked)
        finally:
            self.d.close()

    def good_event(self):
        # A fresh connection per event: a persistent one would itself go idle between steps.
        ev = h.make_event(source="good", kind="fresh")
        with self.d.client() as c:
            ack = c.ack(ev)
        self.acked.append((ack["last_seq"], ev["id"]))
        self.assertEqual(ack["last_seq"], len(self.acked))


class IdleTimeoutTest(LimitsCase):
    """Silent clients, with a short idle timeout."""

    CONFIG = '[ingest]\nidle_timeout = "300ms"\n'

    def test_silent_client_times_out(self):
        with self.d.client() as c:
            self.good_event()
            ftype, body = c.recv_frame()  # blocks until the daemon gives up on us
            self.assertEqual((ftype, body), (h.ERROR, {
                "code": "idle_timeout", "fatal": True,
                "message": "no complete frame for 300 ms; closing"}))
            c.expect_closed()
        self.good_event()

    def test_half_frame_then_silence_times_out(self):
        frame = h.encode_frame(h.EVENT, {"v": 1, "event": h.make_event()})
        with self.d.client() as c:
            c.send_raw(frame[:20])
            self.good_event()
            ftype, body = c.recv_frame()
            self.assertEqual((ftype, body), (h.ERROR, {
                "code": "idle_timeout", "fatal": True,
                "message": "frame incomplete after 20 bytes and 300 ms idle; closing"}))
            c.expect_closed()
        self.good_event()


class ConnectionCapTest(LimitsCase):
    MAX_CONNECTIONS = 4
    CONFIG = "[ingest]\nmax_connections = %d\n" % MAX_CONNECTIONS

    def test_connection_cap(self):
        # Wait until only the status request's own connection is open.
        self.d.wait_for(lambda st: st["ingest"]["connections"] == 1, "connections to drain")
        refused_before = self.d.status()["ingest"]["connections_refused"]
        held = []
        try:
            for _ in range(self.MAX_CONNECTIONS):
                c = self.d.client()
                held.append(c)
                ftype, _ = c.request(h.HELLO, {"v": 1})  # accepted and served
                self.assertEqual(ftype, h.HELLO)
            with self.d.client() as extra:
                ftype, body = extra.recv_frame()
                self.assertEqual(ftype, h.ERROR)
                self.assertEqual(body["code"], "too_many_connections")
                self.assertEqual(body["fatal"], True)
                self.assertEqual(body["message"],
                                 "ferryd already has %d connections (ingest.max_connections); "
                                 "try again" % self.MAX_CONNECTIONS)
                extra.expect_closed()
            # The held connections keep working.
            for c in held:
                ev = h.make_event(source="good", kind="held")
                ack = c.ack(ev)
                self.acked.append((ack["last_seq"], ev["id"]))
            st = held[0].status()
            self.assertEqual(st["ingest"]["connections"], self.MAX_CONNECTIONS)
            self.assertEqual(st["ingest"]["connections_refused"], refused_before + 1)
        finally:
            for c in held:
                c.close()
        # Once they are gone, new connections are served again.
        self.d.wait_for(lambda st: st["ingest"]["connections"] == 1, "connections to drain")
        self.good_event()


class EmitStaysQuietTest(unittest.TestCase):
    """`ferry emit` prints nothing and exits 0 whatever goes wrong (a hook's stderr may reach
    the user or the model); --strict prints and exits 1. What went wrong is one line in
    <state>/client-errors.log, which `ferry status` counts."""

    def setUp(self):
        self.d = h.Daemon(config="[ingest]\nmax_frame = 1024\n")
        self.d.start()
        self.log = os.path.join(self.d.state_dir, "client-errors.log")

    def tearDown(self):
        self.d.close()

    def log_lines(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return f.read().splitlines()

    def test_bad_flags_bad_data_and_refusals_are_silent_and_logged(self):
        r = self.d.emit("--source", "s", "--kind", "ok", "--timeout-ms", "10000")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        self.assertFalse(os.path.exists(self.log))  # the success path writes nothing there
        cases = [
            (("--source", "s", "--kind", "k", "--bogus"),
             'emit: unknown argument "--bogus" (ferry emit --help lists them)'),
            (("--source", "s", "--kind", "k", "--data"), "--data needs a value"),
            (("--source", "s", "--kind", "k", "--data", "{}", "--argv-json", "{}"),
             "emit: use only one of --data, --stdin and --argv-json"),
        ]
        for args, message in cases:
            r = self.d.emit(*args)
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""), args)
            r = self.d.emit("--strict", *args)
            self.assertEqual((r.returncode, r.stdout, r.stderr), (1, "", "ferry: %s\n" % message))
        # Refused by ferryd (the frame is over [ingest] max_frame): spooled, silent, logged.
        big = '{"text": "%s"}' % ("x" * 2000)
        r = self.d.emit("--source", "s", "--kind", "big", "--data", big, "--timeout-ms", "10000")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        lines = self.log_lines()
        self.assertEqual(len(lines), 7, lines)
        who = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+\[\d+\]: "
        for i, (_, message) in enumerate(cases):
            for line in lines[2 * i:2 * i + 2]:
                self.assertRegex(line, who + re.escape(message + "; event dropped") + "$")
        self.assertRegex(lines[6], who + r"ferryd refused the event: frame_too_large: frame "
                                         r"length \d+ exceeds the limit of 1024 bytes; spooled to "
                                         r".*/spool/\d+-\d+-[0-9a-f]+\.ndjson$")
        # The refused event is not lost: the spool importer has no frame limit.
        self.d.wait_for(lambda st: st["journal"]["last_seq"] == 2, "the spool import")
        st = self.d.status()
        self.assertEqual(st["client_errors"]["count"], 7)
        self.assertEqual(st["client_errors"]["last"], lines[6])
        r = h.run_ferry(["status"], self.d.env())
        self.assertEqual(r.returncode, 0)
        self.assertIn("\n  client problems: 7 (last: %s at %s); see %s\n"
                      % (st["client_errors"]["last_what"][:157] + "...",
                         st["client_errors"]["last_time"], self.log), r.stdout)

    def test_an_event_spooled_for_lack_of_an_answer_is_not_a_problem(self):
        self.assertEqual(self.d.stop(), 0)
        r = self.d.emit("--source", "s", "--kind", "k", "--timeout-ms", "200")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        self.assertEqual(len(os.listdir(os.path.join(self.d.state_dir, "spool"))), 1)
        self.assertFalse(os.path.exists(self.log))

    def test_the_log_is_capped(self):
        os.makedirs(self.d.state_dir, exist_ok=True)
        old = "2026-01-01T00:00:00.000Z zsh[1]: an old problem\n"
        with open(self.log, "w") as f:
            f.write(old * (64 * 1024 // len(old) + 1))
        old_lines = 64 * 1024 // len(old) + 1
        r = self.d.emit("--bogus")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(len(self.log_lines()), 1)
        with open(self.log + ".1") as f:
            self.assertEqual(f.read(), old * old_lines)
        st = self.d.status()
        self.assertEqual(st["client_errors"]["count"], old_lines + 1)
        self.assertRegex(st["client_errors"]["last_what"], r"unknown argument \"--bogus\"")


if __name__ == "__main__":
    unittest.main()
