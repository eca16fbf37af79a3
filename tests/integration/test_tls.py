"""TLS to an upstream: verification is on by default (a self-signed server is refused and the
reason is in status), ca_file trusts a private CA, and tls_verify = false is an explicit,
visible opt-out (status JSON, `ferry status` text and `ferryd --check-config` all say so).
A real HTTPS server on loopback, a real certificate made by openssl."""

import os
import shutil
import ssl
import subprocess
import unittest

import ferry_harness as h
from test_sinks import send_events, sink_toml
from upstream_server import UpstreamServer


def make_cert(dir):
    """A self-signed certificate for 127.0.0.1 (subjectAltName IP), key and cert in PEM."""
    key, cert = os.path.join(dir, "key.pem"), os.path.join(dir, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=ferry-test",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return key, cert


@unittest.skipIf(shutil.which("openssl") is None, "openssl is not installed")
class TlsTest(unittest.TestCase):
    def setUp(self):
        self.dir = h.make_tempdir()
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.key, self.cert = make_cert(self.dir)
        self.srv = UpstreamServer()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        # Handshakes happen in the handler threads, so a client that refuses the certificate
        # does not stall the accept loop.
        self.srv.httpd.socket = ctx.wrap_socket(self.srv.httpd.socket, server_side=True,
                                                do_handshake_on_connect=False)
        self.srv.httpd.handle_error = lambda request, address: None  # refused handshakes
        self.srv.start()
        self.addCleanup(self.srv.close)
        self.url = "https://127.0.0.1:%d/ingest" % self.srv.port

    def daemon(self, **sink_opts):
        d = h.Daemon(config=sink_toml("up", self.url, **sink_opts))
        self.addCleanup(d.close)
        d.start()
        return d

    def sink(self, st):
        return [s for s in st["sinks"] if s["name"] == "up"][0]

    def test_self_signed_server_is_refused_by_default(self):
        d = self.daemon()
        send_events(d, 3)
        st = d.wait_for(lambda st: self.sink(st)["consecutive_failures"] >= 1, "a failed POST")
        s = self.sink(st)
        self.assertTrue(s["tls_verify"])
        self.assertEqual(s["cursor"], 0)
        self.assertIn("certificate", s["last_error"]["message"].lower(), s["last_error"])
        self.assertEqual(self.srv.requests, [])  # no request got past the handshake
        r = h.run_ferry(["status"], d.env())
        self.assertNotIn("TLS VERIFICATION OFF", r.stdout)

    def test_ca_file_trusts_a_private_ca(self):
        d = self.daemon(ca_file=self.cert)
        send_events(d, 3)
        st = d.wait_for(lambda st: self.sink(st)["cursor"] == 3, "delivery over TLS")
        self.assertTrue(self.sink(st)["tls_verify"])
        self.assertEqual(self.sink(st)["delivered_events"], 3)
        self.assertEqual(self.srv.delivered_seqs(), [1, 2, 3])

    def test_tls_verify_false_delivers_and_says_so_everywhere(self):
        d = self.daemon(tls_verify=False)
        send_events(d, 3)
        st = d.wait_for(lambda st: self.sink(st)["cursor"] == 3, "delivery without verification")
        self.assertFalse(self.sink(st)["tls_verify"])
        r = h.run_ferry(["status"], d.env())
        self.assertIn("  sink     up (http-json) %s  TLS VERIFICATION OFF (tls_verify = false)\n"
                      % self.url, r.stdout)
        r = subprocess.run([h.FERRYD, "--check-config", "--config", d.config_path],
                           env=d.env(), capture_output=True, text=True, timeout=h.HANG_GUARD_S)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("tls_verify OFF", r.stdout)
        self.assertIn("ferryd: warning: sink up: tls_verify = false: the server's certificate is "
                      "not checked, so anyone on the path can read and change what is sent\n",
                      r.stderr)


if __name__ == "__main__":
    unittest.main()
