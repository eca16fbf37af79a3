"""A bad config.toml never takes ferryd (and under systemd its socket) down: at start ferryd
serves on the defaults, on SIGHUP it keeps the last good config, and both show in `ferry status`
(exit 1) until a reload succeeds. `systemctl reload` checks the file first (ExecReload). Real
ferryd, real socket, real files."""

import json
import os
import re
import signal
import subprocess
import time
import unittest

import ferry_harness as h

SERVICE_IN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "systemd",
                          "ferryd.service.in")
TYPO = '[journal]\nfsnc = "always"\n'


def write(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def wait_until(predicate, what):
    deadline = time.monotonic() + h.HANG_GUARD_S
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.01)


class BadConfigTest(unittest.TestCase):
    def reload(self, d, marker):
        count = d.log().count(marker)
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: d.log().count(marker) > count, "%r in the log" % marker)

    def status(self, d):
        r = h.run_ferry(["status"], d.env())
        return r.returncode, r.stdout.splitlines()

    def test_start_with_a_typo_serves_and_says_so_until_a_reload_fixes_it(self):
        with h.Daemon(config=TYPO) as d:
            d.start()
            where = "%s:2:1" % d.config_path
            error = '%s: unknown key "journal.fsnc" (did you mean "journal.fsync"?)' % where
            self.assertIn("error: %s; serving on the defaults (no sinks) until the file is fixed "
                          "and reloaded" % error, d.log())
            # The socket serves: an event is acked.
            r = d.emit("--source", "s", "--kind", "k", "--strict", "--print-ack",
                       "--timeout-ms", "10000")
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "1\n", ""))
            code, lines = self.status(d)
            self.assertEqual(code, 1)
            self.assertRegex(lines[0], r" DEGRADED$")
            self.assertEqual(lines[1], "  problem: config error at %s; ferryd runs on defaults; "
                                       "run: ferryd --check-config --config %s"
                             % (error, d.config_path))
            st = d.status()
            self.assertFalse(st["healthy"])
            cfg = dict(st["config"])
            self.assertRegex(cfg.pop("error_time"), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertEqual(cfg, {
                "ok": False, "file": d.config_path, "running_on": "defaults", "error": error,
                "line": 2, "column": 1, "problem": lines[1][len("  problem: "):],
                "restart_pending": []})
            self.assertEqual(st["journal"]["fsync"], "interval")  # the default, not the file's

            # Another bad file: still the defaults (nothing good has loaded yet).
            write(d.config_path, 'log_level = "loud"\n')
            self.reload(d, "keeping the running configuration")
            self.assertIn("error: SIGHUP: %s:1:13: \"log_level\" is \"loud\"; expected one of: "
                          "trace, debug, info, warn, error, critical, off; keeping the running "
                          "configuration (the defaults)\n" % d.config_path, d.log())
            self.assertEqual((d.status()["config"]["running_on"], d.status()["config"]["line"]),
                             ("defaults", 1))

            # Fixed file + SIGHUP: healthy, and the file's values apply.
            # (A key that only a restart applies is named, not hidden.)
            write(d.config_path, '[journal]\nfsync = "always"\nsegment_size = "1MiB"\n')
            self.reload(d, "SIGHUP: reloaded ")
            self.assertIn("info: SIGHUP: the config error is fixed", d.log())
            code, lines = self.status(d)
            self.assertEqual(code, 0, lines)
            self.assertNotIn("problem", "\n".join(lines))
            self.assertEqual(lines[1], "  config   needs a restart to apply: "
                                       "journal.segment_size: 67108864 -> 1048576")
            st = d.status()
            self.assertEqual(st["config"], {
                "ok": True, "file": d.config_path, "running_on": "file", "error": None,
                "line": None, "column": None, "error_time": None, "problem": None,
                "restart_pending": ["journal.segment_size: 67108864 -> 1048576"]})
            self.assertEqual(st["journal"]["fsync"], "always")

            # A good file with a sink, then a typo: the last good config (and its sink) stays.
            write(d.config_path, '[journal]\nfsync = "always"\n\n[[sink]]\nname = "up"\n'
                                 'type = "http-json"\nurl = "http://127.0.0.1:9/"\n')
            self.reload(d, "SIGHUP: reloaded ")
            st = d.status()
            self.assertEqual(([s["name"] for s in st["sinks"]], st["config"]["restart_pending"]),
                             (["up"], []))
            write(d.config_path, '[journal]\nfsync = "never"\n\n[[sink]]\nname = "up"\n'
                                 'type = "http-json"\nurl = "http://127.0.0.1:99999/"\n')
            self.reload(d, "keeping the running configuration")
            error = ('%s:7:1: [[sink]] #1 "up": url: port 99999 is out of range [1, 65535] in '
                     '"http://127.0.0.1:99999/"' % d.config_path)
            self.assertIn("error: SIGHUP: %s; keeping the running configuration\n" % error,
                          d.log())
            code, lines = self.status(d)
            self.assertEqual(code, 1)
            self.assertEqual(lines[1], "  problem: config error at %s; ferryd runs on the last "
                                       "good config; run: ferryd --check-config --config %s"
                             % (error, d.config_path))
            st = d.status()
            self.assertEqual((st["config"]["ok"], st["config"]["running_on"],
                              st["config"]["line"], st["config"]["column"]),
                             (False, "last_good", 7, 1))
            self.assertEqual(st["journal"]["fsync"], "always")
            self.assertEqual([(s["name"], s["url"]) for s in st["sinks"]],
                             [("up", "http://127.0.0.1:9/")])
            self.assertEqual(d.stop(), 0)
            self.assertEqual(len(d.journal()), 1)

    def test_start_with_a_missing_explicit_file(self):
        with h.Daemon() as d:
            missing = os.path.join(d.root, "nope.toml")
            d.args = ["--config", missing]
            d.start()
            st = d.status()
            self.assertEqual(st["config"]["error"], "%s: cannot read the config file: No such "
                                                    "file or directory" % missing)
            self.assertEqual((st["config"]["line"], st["config"]["running_on"], st["healthy"]),
                             (None, "defaults", False))
            self.assertIn("config error at %s: cannot read the config file: No such file or "
                          "directory; ferryd runs on defaults; run: ferryd --check-config "
                          "--config %s" % (missing, missing), st["problems"])

    def test_absent_default_file_is_healthy(self):
        with h.daemon() as d:
            st = d.status()
            self.assertTrue(st["healthy"], st["problems"])
            self.assertEqual((st["config"]["ok"], st["config"]["running_on"]),
                             (True, "defaults"))
            self.assertEqual(st["config"]["file"],
                             os.path.join(d.root, "xdg-config", "ferry", "config.toml"))
            # The hint names no --config when ferryd found the file by itself.
            os.makedirs(os.path.join(d.root, "xdg-config", "ferry"))
            write(st["config"]["file"], "x = 1\n")
            self.reload(d, "keeping the running configuration")
            self.assertEqual(d.status()["problems"],
                             ['config error at %s:1:1: unknown key "x"; ferryd runs on the last '
                              'good config; run: ferryd --check-config' % st["config"]["file"]])


class SocketActivationTest(unittest.TestCase):
    def test_a_typo_under_socket_activation_keeps_serving_the_passed_socket(self):
        # What took the socket unit down under systemd: now ferryd starts on the defaults and
        # serves the socket systemd passed, even when the (unreadable) file would have named
        # another path; FERRY_SOCKET disagrees here to prove it.
        from test_systemd import Activator
        with h.Daemon(config='socket = "/nowhere/ferry.sock"\n' + TYPO) as d:
            act = Activator(d)
            self.addCleanup(act.close)
            d.extra_env["FERRY_SOCKET"] = d.socket + ".other"
            act.start()
            st = d.wait_ready()
            self.assertEqual((st["daemon"]["socket"], st["config"]["running_on"]),
                             (d.socket, "defaults"))
            self.assertIn("listening on %s (socket passed by systemd)" % d.socket, d.log())
            r = d.emit("--source", "s", "--kind", "k", "--strict", "--print-ack",
                       "--timeout-ms", "10000")
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "1\n", ""))
            self.assertEqual(d.stop(), 0)


class ExecReloadTest(unittest.TestCase):
    """The unit's ExecReload lines, run as systemd would: the check first (its failure fails
    `systemctl reload` and the kill never runs), then SIGHUP."""

    def exec_reload_lines(self):
        with open(SERVICE_IN) as f:
            return re.findall(r"^ExecReload=(.*)$", f.read(), re.M)

    def test_reload_checks_the_file_first(self):
        lines = self.exec_reload_lines()
        self.assertEqual(lines, ["@FERRYD_PATH@ --check-config --quiet",
                                 "/bin/kill -HUP $MAINPID"])
        root = h.make_tempdir()
        self.addCleanup(subprocess.run, ["rm", "-rf", root])
        cfg = os.path.join(root, "config", "ferry", "config.toml")
        os.makedirs(os.path.dirname(cfg))
        # The unit's environment: no FERRY_CONFIG, the path from XDG_CONFIG_HOME as ferryd's.
        env = h.clean_env(HOME=root, XDG_CONFIG_HOME=os.path.join(root, "config"))
        check = lines[0].replace("@FERRYD_PATH@", h.FERRYD).split()

        write(cfg, TYPO)
        r = subprocess.run(check, env=env, capture_output=True, text=True,
                           timeout=h.HANG_GUARD_S)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (2, "", (
            'ferryd: %s:2:1: unknown key "journal.fsnc" (did you mean "journal.fsync"?)\n'
            % cfg)))
        write(cfg, '[journal]\nfsync = "always"\n')
        r = subprocess.run(check, env=env, capture_output=True, text=True,
                           timeout=h.HANG_GUARD_S)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))


class CheckConfigStrictTest(unittest.TestCase):
    def test_warnings_exit_0_unless_strict(self):
        root = h.make_tempdir()
        self.addCleanup(subprocess.run, ["rm", "-rf", root])
        cfg = os.path.join(root, "config.toml")
        write(cfg, '[[sink]]\nname = "up"\ntype = "http-json"\nurl = "https://h.example/"\n'
                   'tls_verify = false\n')
        warning = ("ferryd: warning: sink up: tls_verify = false: the server's certificate is "
                   "not checked, so anyone on the path can read and change what is sent\n")
        env = h.clean_env(HOME=root)

        def check(*flags):
            return subprocess.run([h.FERRYD, "--check-config", "--config", cfg] + list(flags),
                                  env=env, capture_output=True, text=True,
                                  timeout=h.HANG_GUARD_S)

        r = check()
        self.assertEqual((r.returncode, r.stderr), (0, warning))
        self.assertTrue(r.stdout.startswith("config: %s OK\n" % cfg), r.stdout)
        r = check("--strict")
        self.assertEqual((r.returncode, r.stderr), (1, warning))
        r = check("--strict", "--quiet")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (1, "", warning))
        write(cfg, '[[sink]]\nname = "up"\ntype = "http-json"\nurl = "https://h.example/"\n')
        r = check("--strict", "--quiet")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))


if __name__ == "__main__":
    unittest.main()
