"""A sink that keeps failing is not "healthy": once every attempt has failed for its
degraded_after (default 60 s), status is degraded (exit 1) with the sink's last error and next
retry. Real ferryd, sinks aimed at a closed loopback port (connection refused)."""

import re
import socket
import unittest

import ferry_harness as h
from test_sinks import send_events, sink_toml
from upstream_server import UpstreamServer


def closed_port():
    """A loopback port nothing listens on (bound, then closed: connect is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SinkHealthTest(unittest.TestCase):
    def test_a_sink_that_never_delivers_degrades_status_after_its_threshold(self):
        url = "http://127.0.0.1:%d/" % closed_port()
        config = (sink_toml("fast", url, degraded_after="1s", backoff_max="200ms") +
                  sink_toml("slow", url, backoff_max="200ms"))
        with h.daemon(config) as d:
            send_events(d, 1)
            st = d.wait_for(lambda st: not st["healthy"], "a degraded status")
            fast, slow = st["sinks"]
            # "slow" fails just as often but has not reached its 60 s: not a problem yet.
            self.assertGreaterEqual(slow["consecutive_failures"], 1)
            self.assertEqual((slow["healthy"], slow["degraded_after_s"]), (True, 60.0))
            self.assertEqual((fast["healthy"], fast["degraded_after_s"]), (False, 1.0))
            # (Between two attempts; "sending" for the instant a refused connect takes.)
            self.assertIn(fast["state"], ("backing_off", "sending"))
            self.assertIsNone(fast["last_success"])
            self.assertIsNotNone(fast["failing_since"])
            self.assertEqual(len(st["problems"]), 1, st["problems"])
            iso = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
            # "; next retry" between attempts; while "sending" (state and text are read a
            # moment apart) no retry is scheduled.
            self.assertRegex(
                st["problems"][0],
                r"^sink fast has failed every attempt for \d+ s \(\d+ in a row, never "
                r"delivered\): .*[Cc]onnect.*?(; next retry %s)?$" % iso)
            self.assertIn(fast["last_error"]["message"], st["problems"][0])
            # Between two attempts (200 ms apart) the problem names the next one.
            st = d.wait_for(lambda st: st["problems"] and "; next retry " in st["problems"][0],
                            "a problem that names the next retry")
            self.assertRegex(
                st["problems"][0],
                r"^sink fast has failed every attempt for \d+ s \(\d+ in a row, never "
                r"delivered\): .*[Cc]onnect.*; next retry %s$" % iso)

            r = h.run_ferry(["status"], d.env())
            self.assertEqual(r.returncode, 1)
            lines = r.stdout.splitlines()
            self.assertRegex(lines[0], r" DEGRADED$")
            self.assertRegex(lines[1], r"^  problem: sink fast has failed every attempt for ")
            sink = lines.index("  sink     fast (http-json) %s" % url)
            self.assertRegex(lines[sink + 1], r"^           (backing_off|sending) \(DEGRADED\); "
                                              r"delivered up to seq 0; lag 1 event\(s\), ")
            self.assertRegex(lines[sink + 4], r"^           \d+ consecutive failure\(s\)(; next "
                                              r"retry %s)?; failing since %s$" % (iso, iso))
            slow_line = lines.index("  sink     slow (http-json) %s" % url) + 1
            self.assertNotIn("DEGRADED", lines[slow_line])

    def test_a_sink_that_recovers_is_healthy_again(self):
        srv = UpstreamServer().start()
        self.addCleanup(srv.close)
        srv.fail_randomly(1.0, statuses=(500,))  # every request fails until turned off
        with h.daemon(sink_toml("up", srv.url(), degraded_after="0s",
                                backoff_max="200ms")) as d:
            send_events(d, 3)
            st = d.wait_for(lambda st: not st["healthy"], "a degraded status")
            self.assertRegex(st["problems"][0], r"^sink up has failed every attempt for \d+ s "
                                                r"\(\d+ in a row, never delivered\): HTTP 500: ")
            srv.fail_randomly(0)
            st = d.wait_for(lambda st: st["healthy"] and st["sinks"][0]["cursor"] == 3,
                            "a healthy status, everything delivered")
            up = st["sinks"][0]
            self.assertEqual((up["healthy"], up["failing_since"], up["consecutive_failures"],
                              up["cursor"]), (True, None, 0, 3))
            self.assertEqual(h.run_ferry(["status"], d.env()).returncode, 0)


if __name__ == "__main__":
    unittest.main()
