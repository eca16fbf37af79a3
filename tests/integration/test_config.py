"""ferryd's configuration: --check-config, errors that name file:line and the key, log levels,
and where the socket and state dir come from."""

import json
import os
import subprocess
import time
import unittest

import ferry_harness as h

DEFAULTS = """\
log_level = info
journal.fsync = interval
journal.fsync_interval = 1000ms
journal.segment_size = 67108864
journal.max_bytes = 1073741824
journal.max_age = 0ms
ingest.max_frame = 4194304
ingest.max_connections = 1024
ingest.idle_timeout = 60000ms
ingest.frame_timeout = 10000ms
ingest.max_batch_events = 10000
store.enabled = true
store.batch_interval = 200ms
store.batch_events = 1000
store.session_idle_timeout = 1800000ms
store.retain_age = 0ms
store.retain_rows = 0
store.query_timeout = 5000ms
store.query_max_rows = 10000
store.search = true
archive.enabled = true
archive.max_bytes = 1073741824
redact.builtin = true
redact.local = true
redact.rules = 0
sinks: none (events stay on this machine)
"""


class CheckConfigTest(unittest.TestCase):
    def setUp(self):
        self.root = h.make_tempdir()
        self.env = h.clean_env(HOME=self.root)

    def tearDown(self):
        subprocess.run(["rm", "-rf", self.root], check=True)

    def write(self, text, name="config.toml"):
        path = os.path.join(self.root, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def ferryd(self, *args, env=None):
        return subprocess.run([h.FERRYD] + list(args), env=env or self.env, capture_output=True,
                              text=True, timeout=h.HANG_GUARD_S, stdin=subprocess.DEVNULL)

    def check_error(self, text, expected, prefix_only=False):
        """Asserts that --check-config refuses the file with exit 2 and exactly
        `ferryd: <file>:<expected>` (or a line starting so, with prefix_only). (A real start
        serves on the defaults and reports the same error: test_config_health.py.)"""
        path = self.write(text)
        want = "ferryd: %s:%s" % (path, expected)
        r = self.ferryd("--check-config", "--config", path)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertEqual(r.stdout, "")
        if prefix_only:
            self.assertTrue(r.stderr.startswith(want), r.stderr)
            self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        else:
            self.assertEqual(r.stderr, want + "\n")

    def test_defaults_without_a_file(self):
        r = self.ferryd("--check-config")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout, "config: %s/.config/ferry/config.toml (absent; defaults) OK\n"
                                   "socket = /tmp/ferry-%d/ferry.sock\n"
                                   "state_dir = %s/.local/state/ferry\n"
                         % (self.root, os.getuid(), self.root) + DEFAULTS)

    def test_xdg_paths(self):
        env = dict(self.env, XDG_RUNTIME_DIR="/run/user/4242", XDG_STATE_HOME="/x/state",
                   XDG_CONFIG_HOME=self.root + "/cfg")
        r = self.ferryd("--check-config", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines()[:3], [
            "config: %s/cfg/ferry/config.toml (absent; defaults) OK" % self.root,
            "socket = /run/user/4242/ferry/ferry.sock",
            "state_dir = /x/state/ferry"])

    def test_file_with_every_key(self):
        path = self.write("""\
# every key, with units
log_level = "warn"
socket = "/tmp/somewhere/f.sock"
state_dir = "/var/tmp/ferry-state"

[journal]
fsync = "always"
fsync_interval = "250ms"
segment_size = "1MiB"
max_bytes = "2GiB"
max_age = "7d"

[ingest]
max_frame = 65536
max_connections = 16
idle_timeout = "2m"
frame_timeout = "5s"
max_batch_events = 500

[[sink]]
name = "central"
type = "otlp-http"
url = "https://user:pw@logs.example.com:4318/"
token_env = "CENTRAL_TOKEN"
gzip_level = 6
""")
        r = self.ferryd("--check-config", "--config", path)
        # A valid file; the warning is about the environment ferryd would run in.
        self.assertEqual((r.returncode, r.stderr), (0, (
            "ferryd: warning: sink central: token_env CENTRAL_TOKEN is not set in ferryd's "
            "environment (the sink would stay paused until this is fixed)\n")))
        self.assertEqual(r.stdout, """\
config: %s OK
socket = /tmp/somewhere/f.sock
state_dir = /var/tmp/ferry-state
log_level = warn
journal.fsync = always
journal.fsync_interval = 250ms
journal.segment_size = 1048576
journal.max_bytes = 2147483648
journal.max_age = 604800000ms
ingest.max_frame = 65536
ingest.max_connections = 16
ingest.idle_timeout = 120000ms
ingest.frame_timeout = 5000ms
ingest.max_batch_events = 500
store.enabled = true
store.batch_interval = 200ms
store.batch_events = 1000
store.session_idle_timeout = 1800000ms
store.retain_age = 0ms
store.retain_rows = 0
store.query_timeout = 5000ms
store.query_max_rows = 10000
store.search = true
archive.enabled = true
archive.max_bytes = 1073741824
redact.builtin = true
redact.local = true
redact.rules = 0
sink central: otlp-http -> https://logs.example.com:4318/v1/logs; max_events 1000, max_bytes 1048576, gzip level 6, timeout 10000ms, backoff_max 300000ms, batch_timeout 1000ms, degraded_after 60000ms, redact on, tls_verify on, token from $CENTRAL_TOKEN
""" % path)

    def test_precedence_flag_env_file(self):
        path = self.write('socket = "/from/file.sock"\nstate_dir = "/from/file"\n'
                          'log_level = "warn"\n')
        r = self.ferryd("--check-config", "--config", path)
        self.assertEqual(r.stdout.splitlines()[1:4], ["socket = /from/file.sock",
                                                      "state_dir = /from/file",
                                                      "log_level = warn"])
        env = dict(self.env, FERRY_CONFIG=path, FERRY_SOCKET="/from/env.sock",
                   FERRY_STATE_DIR="/from/env")
        r = self.ferryd("--check-config", env=env)
        self.assertEqual(r.stdout.splitlines()[:3], ["config: %s OK" % path,
                                                     "socket = /from/env.sock",
                                                     "state_dir = /from/env"])
        r = self.ferryd("--check-config", "--socket", "/from/flag.sock", "--state-dir",
                        "/from/flag", "--log-level", "error", env=env)
        self.assertEqual(r.stdout.splitlines()[1:4], ["socket = /from/flag.sock",
                                                      "state_dir = /from/flag",
                                                      "log_level = error"])

    def test_missing_explicit_file(self):
        path = os.path.join(self.root, "nope.toml")
        r = self.ferryd("--check-config", "--config", path)
        self.assertEqual((r.returncode, r.stdout), (2, ""))
        self.assertEqual(r.stderr, "ferryd: %s: cannot read the config file: No such file or "
                                   "directory\n" % path)
        r = self.ferryd("--check-config", env=dict(self.env, FERRY_CONFIG=path))
        self.assertEqual(r.returncode, 2)

    def test_unknown_key(self):
        self.check_error('[journal]\nfsync = "always"\n\n[ingest]\nmax_frmae = 10\n',
                         '5:1: unknown key "ingest.max_frmae" (did you mean "ingest.max_frame"?)')

    def test_unknown_top_level_key(self):
        self.check_error('log_level = "info"\nsockt = "/x"\n',
                         '2:1: unknown key "sockt" (did you mean "socket"?)')

    def test_unknown_section(self):
        # (A "did you mean" hint may follow.)
        self.check_error('[jurnal]\nfsync = "always"\n', '1:2: unknown key "jurnal"',
                         prefix_only=True)

    def test_wrong_type(self):
        self.check_error('[ingest]\nmax_connections = "ten"\n',
                         '2:19: "ingest.max_connections" must be an integer')

    def test_wrong_type_string(self):
        self.check_error("log_level = 3\n", '1:13: "log_level" must be a string')

    def test_bad_value(self):
        self.check_error('[journal]\nfsync = "sometimes"\n',
                         '2:9: "journal.fsync" is "sometimes"; expected one of: never, interval, '
                         'always')

    def test_bad_duration(self):
        self.check_error('[ingest]\nidle_timeout = 5\n',
                         '2:16: "ingest.idle_timeout" must be a duration string such as "200ms", '
                         '"1s", "5m", "12h" or "7d"')

    def test_out_of_range(self):
        self.check_error('[journal]\nsegment_size = 10\n',
                         '2:16: "journal.segment_size" = 10 bytes is out of range '
                         '[4096, 4294967296]')

    def test_bad_size(self):
        self.check_error('[ingest]\nmax_frame = "4 parsecs"\n',
                         '2:13: "ingest.max_frame" is not a size (examples: 4096, "512KiB", '
                         '"64MiB")')

    def test_toml_syntax_error(self):
        self.check_error('log_level = "info"\n[journal\nfsync = "always"\n',
                         "2:9: Error while parsing table header: expected ']', saw '\\n'")

    def test_toml_syntax_error_in_a_value(self):
        self.check_error('[ingest]\nmax_frame = = 1\n',
                         "2:13: Error while parsing value: could not determine value type")

    def test_sink_errors_point_at_the_key_and_name_the_table(self):
        sink = '[[sink]]\nname = "%s"\ntype = "http-json"\nurl = "%s"\n\n'
        text = "log_level = \"info\"\n\n" + sink % ("local", "http://127.0.0.1:4318/")
        self.check_error(text + sink % ("upstream", "http://"),
                         '11:1: [[sink]] #2 "upstream": url: no host in "http://"')
        self.check_error(text + sink % ("upstream", "http://logs.example:99999/v1"),
                         '11:1: [[sink]] #2 "upstream": url: port 99999 is out of range '
                         '[1, 65535] in "http://logs.example:99999/v1"')
        self.check_error(text + '[[sink]]\nname = "upstream"\ntype = "http-json"\n'
                                'url = "https://h/"\nmax_events = "many"\n',
                         '12:14: [[sink]] #2 "upstream": "sink.max_events" must be an integer')

    def test_bad_log_level_flag(self):
        r = self.ferryd("--check-config", "--log-level", "loud")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--log-level: loud not in {trace,debug,info,warn,error,critical,off}",
                      r.stderr)

    def test_unknown_flag(self):
        r = self.ferryd("--frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--frobnicate", r.stderr)

    def test_help_and_version(self):
        r = self.ferryd("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--check-config", r.stdout)
        r = self.ferryd("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^ferryd \d+\.\d+\.\d+\n$")


class SocketFromConfigTest(unittest.TestCase):
    def test_daemon_and_client_find_the_socket_through_the_config_file(self):
        root = h.make_tempdir()
        self.addCleanup(subprocess.run, ["rm", "-rf", root])
        sock = os.path.join(root, "cfg-run", "ferry.sock")
        cfg = os.path.join(root, "config.toml")
        with open(cfg, "w") as f:
            f.write('# where things live\nsocket = "%s"\nstate_dir = "%s/cfg-state"\n\n'
                    '[journal]\nfsync = "always"\n' % (sock, root))
        env = h.clean_env(HOME=root, FERRY_CONFIG=cfg)
        with open(os.path.join(root, "log"), "wb") as log:
            proc = subprocess.Popen([h.FERRYD], env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + h.HANG_GUARD_S
            while h.run_ferry(["status"], env).returncode != 0:
                self.assertIsNone(proc.poll())
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.01)
            st = json.loads(h.run_ferry(["status", "--json"], env).stdout)
            self.assertEqual((st["daemon"]["pid"], st["daemon"]["socket"],
                              st["daemon"]["state_dir"], st["journal"]["fsync"]),
                             (proc.pid, sock, root + "/cfg-state", "always"))
            r = h.run_ferry(["emit", "--source", "s", "--kind", "k", "--strict", "--print-ack",
                             "--timeout-ms", "5000"], env)
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "1\n", ""))
            # --config on the command line works the same for the client.
            env2 = h.clean_env(HOME=root)
            r = h.run_ferry(["status", "--config", cfg], env2)
            self.assertEqual(r.returncode, 0, r.stdout)
            r = h.run_ferry(["emit", "--config", cfg, "--source", "s", "--kind", "k",
                             "--strict", "--print-ack", "--timeout-ms", "5000"], env2)
            self.assertEqual((r.returncode, r.stdout), (0, "2\n"))
            # FERRY_SOCKET beats the file.
            r = h.run_ferry(["status"], dict(env, FERRY_SOCKET=root + "/elsewhere.sock"))
            self.assertEqual(r.returncode, 3)
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(timeout=h.HANG_GUARD_S), 0)
        self.assertEqual(len(h.read_journal(root + "/cfg-state")), 2)


class LogLevelTest(unittest.TestCase):
    def test_default_level_logs_info(self):
        with h.daemon() as d:
            self.assertEqual(d.stop(), 0)
            log = d.log()
        self.assertRegex(log, r"ferryd\[\d+\] info: ferryd \S+ listening on %s" % d.socket)
        self.assertIn("info: stopped cleanly; journal durable up to seq 0", log)

    def test_log_level_flag(self):
        with h.Daemon(args=["--log-level", "warn"]) as d:
            d.start()
            self.assertEqual(d.stop(), 0)
            self.assertEqual(d.log(), "")

    def test_log_level_from_config_and_flag_wins(self):
        with h.Daemon(config='log_level = "error"\n') as d:
            d.start()
            self.assertEqual(d.stop(), 0)
            self.assertEqual(d.log(), "")
            d.args = ["--log-level", "info"]
            d.start()
            self.assertEqual(d.stop(), 0)
            self.assertIn("info: stopped cleanly", d.log())

    def test_journald_format(self):
        # JOURNAL_STREAM names the file stderr is open on: syslog priority prefixes, no
        # timestamps, so journald records each line's level and stamps it itself.
        with h.Daemon() as d:
            open(d.log_path, "ab").close()
            st = os.stat(d.log_path)
            d.extra_env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
            d.start()
            self.assertEqual(d.stop(), 0)
            lines = d.log().splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[2-7]>[^<0-9]")
        self.assertTrue(any(line.startswith("<6>ferryd ") and " listening on " in line
                            for line in lines), lines)

    def test_journal_stream_of_another_file_is_ignored(self):
        # An inherited JOURNAL_STREAM whose device:inode is not our stderr (a shell started
        # from a service, with stderr redirected) keeps the timestamped format.
        for value in ("8:1234", "garbage", ""):
            with self.subTest(value=value), h.Daemon(env={"JOURNAL_STREAM": value}) as d:
                d.start()
                self.assertEqual(d.stop(), 0)
                lines = d.log().splitlines()
                self.assertTrue(lines)
                for line in lines:
                    self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} ferryd\[\d+\] "
                                           r"(info|warning|error|critical): ")

    def test_config_values_take_effect(self):
        with h.daemon('[journal]\nfsync = "always"\n[ingest]\nmax_batch_events = 2\n') as d:
            st = d.status()
            self.assertEqual(st["journal"]["fsync"], "always")
            self.assertEqual(st["daemon"]["config"], d.config_path)
            with d.client() as c:
                ftype, body = c.send_batch([h.make_event() for _ in range(3)])
                self.assertEqual((ftype, body["code"], body["message"]),
                                 (h.ERROR, "too_many_events",
                                  "batch holds 3 events; the limit is 2"))


if __name__ == "__main__":
    unittest.main()
