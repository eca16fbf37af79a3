"""libcurl is loaded only when a sink needs it (daemon/sink/http_client.h, docs/benchmarks.md
"Run L-lat"): a ferryd without sinks does not map libcurl (nor its TLS stack), keeps
acking events, and a sink added later by SIGHUP loads it and delivers.

Reads /proc/PID/maps of the real ferryd. Waits poll a condition; timeouts are hang guards.
"""

import signal
import unittest

import ferry_harness as h
from test_sinks import GUARD, send_events, sink_toml
from upstream_server import UpstreamServer


def mapped_libraries(pid):
    """The file names of the shared objects mapped into `pid`, e.g. {"libc.so.6", ...}."""
    names = set()
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and ".so" in parts[5]:
                names.add(parts[5].rsplit("/", 1)[-1])
    return names


def maps_libcurl(pid):
    return any(name.startswith("libcurl") for name in mapped_libraries(pid))


class LazyLibcurlTest(unittest.TestCase):
    def daemon(self, config):
        d = h.Daemon(config=config)
        self.addCleanup(d.close)
        d.start()
        return d

    def server(self):
        srv = UpstreamServer().start()
        self.addCleanup(srv.close)
        return srv

    def test_without_sinks_libcurl_is_not_mapped(self):
        d = self.daemon("")
        sent = send_events(d, 20, batch=10)
        self.assertEqual([seq for seq, _ in sent], list(range(1, 21)))
        libs = mapped_libraries(d.proc.pid)
        self.assertIn("libc.so.6", libs)  # the reading works
        self.assertEqual(sorted(n for n in libs if n.startswith("libcurl")), [])
        self.assertEqual(d.status()["sinks"], [])

    def test_http_sink_loads_libcurl_and_delivers(self):
        srv = self.server()
        d = self.daemon(sink_toml("central", srv.url("/ingest")))
        sent = send_events(d, 30, batch=10)
        events = srv.wait_for_events(30, timeout=GUARD)
        self.assertEqual([e["id"] for e in events], [ev["id"] for _, ev in sent])
        self.assertTrue(maps_libcurl(d.proc.pid))

    def test_sink_added_by_sighup_loads_libcurl_then(self):
        srv = self.server()
        d = self.daemon("")
        send_events(d, 5, batch=5)
        self.assertFalse(maps_libcurl(d.proc.pid))
        with open(d.config_path, "w") as f:
            f.write(sink_toml("later", srv.url("/ingest")))
        d.proc.send_signal(signal.SIGHUP)
        events = srv.wait_for_events(5, timeout=GUARD)
        self.assertEqual([e["seq"] for e in events], [1, 2, 3, 4, 5])
        self.assertTrue(maps_libcurl(d.proc.pid))


if __name__ == "__main__":
    unittest.main()
