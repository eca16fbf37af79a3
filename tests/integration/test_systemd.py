"""ferryd as a systemd citizen, with the real binaries and no service manager: socket
activation (systemd-socket-activate, and a small activator of our own that holds the socket
across restarts like systemd does), sd_notify messages on a test NOTIFY_SOCKET, SIGTERM under
load, SIGHUP reloads, the unit files (systemd-analyze verify) and `ferry service`.

Nothing waits on the clock for correctness: waits poll a condition with HANG_GUARD_S as a
guard. The one timing assertion (watchdog pings over a window) has wide bounds.
"""

import fcntl
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
import unittest

import ferry_harness as h

SD_LISTEN_FDS_START = 3


def wait_until(predicate, what, guard=h.HANG_GUARD_S):
    deadline = time.monotonic() + guard
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.01)


def sanitizer_env():
    """Sanitizer settings from ctest's environment, for children started with a clean env."""
    return {k: v for k, v in os.environ.items() if k.endswith("SAN_OPTIONS")}


class NotifyListener:
    """A NOTIFY_SOCKET: collects (monotonic time, {key: value}) for each datagram."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.messages = []
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            with self.lock:
                self.messages.append((time.monotonic(), fields))

    def close(self):
        self.done = True
        self.thread.join()
        self.sock.close()

    def snapshot(self):
        with self.lock:
            return list(self.messages)

    def with_key(self, key, value=None):
        return [(t, m) for t, m in self.snapshot()
                if key in m and (value is None or m[key] == value)]

    def wait_for(self, key, value=None, after=0):
        """The first message with key (=value) received after `after` messages of its kind."""
        msgs = wait_until(lambda: len(self.with_key(key, value)) > after and self.with_key(key, value),
                          "%s=%s on NOTIFY_SOCKET; got %r" % (key, value, self.snapshot()))
        return msgs[after][1]


def listening_unix_sockets(pid):
    """{inode: path} of the listening AF_UNIX sockets among `pid`'s open fds, plus the fds."""
    fds = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except FileNotFoundError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        if m:
            fds.setdefault(int(m.group(1)), []).append(int(fd))
    out = {}
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            inode, flags = int(parts[6]), int(parts[3], 16)
            if inode in fds and flags & 0x10000:  # __SO_ACCEPTCON: listening
                out[inode] = (parts[7] if len(parts) > 7 else "", fds[inode])
    return out


class Activator:
    """Holds a listening socket the way systemd's ferryd.socket does and starts ferryd with it
    (LISTEN_FDS=1, LISTEN_PID = ferryd's pid, the socket at fd 3). The socket outlives each
    ferryd, so connections made while ferryd stops or restarts wait in its backlog."""

    def __init__(self, d):
        self.d = d
        os.makedirs(os.path.dirname(d.socket), mode=0o700, exist_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(d.socket)
        self.sock.listen(4096)
        # A copy above 9 (never 3 itself), for the redirection that puts it at fd 3.
        self.fd = fcntl.fcntl(self.sock.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)

    def start(self):
        fd = self.fd
        script = ('export LISTEN_FDS=1 LISTEN_PID=$$; exec "$0" "$@" %d<&%d %d<&-'
                  % (SD_LISTEN_FDS_START, fd, fd))
        env = self.d.env()
        env.update(self.d.extra_env)
        log = open(self.d.log_path, "ab")
        self.d._log_offset = log.tell()
        # bash, not sh: dash cannot name an fd above 9 in a redirection.
        self.d.proc = subprocess.Popen(["bash", "-c", script, h.FERRYD] + self.d.args, env=env,
                                       stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, pass_fds=(fd,))
        log.close()
        self.d.starts += 1
        return self.d.proc

    def close(self):
        os.close(self.fd)
        self.sock.close()


class SocketActivationTest(unittest.TestCase):
    def test_first_emit_starts_ferryd_through_the_passed_socket(self):
        tool = shutil.which("systemd-socket-activate")
        if not tool:
            self.skipTest("systemd-socket-activate is not installed (Debian package systemd)")
        with h.Daemon() as d:
            os.makedirs(os.path.dirname(d.socket), mode=0o700)
            env = d.env()
            passed = ["FERRY_SOCKET", "FERRY_STATE_DIR", "HOME", "XDG_CONFIG_HOME"]
            args = [tool, "-l", d.socket]
            for name in passed:
                args += ["-E", "%s=%s" % (name, env[name])]
            for name, value in sanitizer_env().items():
                args += ["-E", "%s=%s" % (name, value)]
            log = open(d.log_path, "ab")
            d.proc = subprocess.Popen(args + [h.FERRYD], env=env, stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=subprocess.STDOUT)
            log.close()
            # systemd-socket-activate binds, then waits for the first connection before it
            # execs ferryd in its own process.
            wait_until(lambda: os.path.exists(d.socket), "systemd-socket-activate to listen")
            r = d.emit("--source", "test", "--kind", "first", "--strict", "--print-ack",
                       "--timeout-ms", str(int(h.HANG_GUARD_S * 1000)))
            self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "1\n", ""), d.log())
            self.assertEqual([(rec.seq, rec.body["kind"]) for rec in d.journal()], [(1, "first")])
            st = d.status()
            self.assertEqual(st["daemon"]["pid"], d.proc.pid)  # exec'd in place
            self.assertIn("listening on %s (socket passed by systemd)" % d.socket, d.log())
            # One listening socket, the one passed at fd 3; no second bind.
            self.assertEqual(list(listening_unix_sockets(d.proc.pid).values()),
                             [(d.socket, [SD_LISTEN_FDS_START])])
            self.assertEqual(d.stop(), 0)
            # The socket is systemd's: ferryd neither unlinked nor chmodded it.
            self.assertTrue(stat.S_ISSOCK(os.lstat(d.socket).st_mode))

    def test_passed_socket_for_another_path_is_refused(self):
        with h.Daemon() as d:
            act = Activator(d)
            try:
                d.extra_env["FERRY_SOCKET"] = d.socket + ".other"
                act.start()
                self.assertEqual(d.proc.wait(timeout=h.HANG_GUARD_S), 1)
                self.assertIn("cannot start: socket activation: systemd passed a socket bound to "
                              "%s but ferryd is configured for %s.other" % (d.socket, d.socket),
                              d.log())
            finally:
                act.close()

    def test_sigterm_under_load_loses_no_acked_event_and_queues_new_connections(self):
        """Several clients stream events; ferryd gets SIGTERM and the activator starts the next
        one on the same socket, as systemd would. Every acked event is in the journal with
        the acked seq, and no connect() ever fails: connections made while ferryd stops wait
        in the socket's backlog for the next start."""
        clients, per_client_after = 4, 25
        with h.Daemon() as d:
            act = Activator(d)
            try:
                act.start()
                d.wait_ready()
                acked = {}  # event id -> seq
                lock = threading.Lock()
                restarted = threading.Event()
                failures = []
                stop = threading.Event()

                def worker(n):
                    after = 0
                    event = h.make_event(kind="load", payload={"client": n})
                    try:
                        while not stop.is_set() and after < per_client_after:
                            c = h.RawClient(d.socket)  # a refused connect() fails the test
                            try:
                                while after < per_client_after:
                                    ftype, body = c.send_event(event)
                                    if ftype == h.ACK:
                                        with lock:
                                            acked[event["id"]] = body["last_seq"]
                                        if restarted.is_set():
                                            after += 1
                                        event = h.make_event(kind="load", payload={"client": n})
                                    elif body.get("code") != "shutting_down":
                                        raise AssertionError("unexpected reply %r" % body)
                            except (h.Closed, BrokenPipeError, ConnectionResetError):
                                pass  # the old ferryd closed us; this event was not stored
                            finally:
                                c.close()
                    except Exception as e:  # reported by the main thread
                        failures.append(repr(e))

                threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
                for t in threads:
                    t.start()
                wait_until(lambda: len(acked) >= 50 or failures, "the first acks")
                first = d.proc
                first.send_signal(signal.SIGTERM)
                self.assertEqual(first.wait(timeout=h.HANG_GUARD_S), 0, d.log())
                restarted.set()
                act.start()
                for t in threads:
                    t.join(timeout=h.HANG_GUARD_S * 2)
                stop.set()
                self.assertEqual(failures, [])
                self.assertFalse(any(t.is_alive() for t in threads))
                self.assertEqual(d.stop(), 0)
                journal = {rec.body["id"]: rec.seq for rec in d.journal()}
                for event_id, seq in acked.items():
                    self.assertEqual(journal.get(event_id), seq, event_id)
                self.assertGreaterEqual(len(acked), 50 + clients * per_client_after)
                self.assertEqual(d.log().count("(socket passed by systemd)"), 2)
            finally:
                act.close()


class NotifyTest(unittest.TestCase):
    def setUp(self):
        self.d = h.Daemon()
        self.notify = NotifyListener(os.path.join(self.d.root, "notify"))

    def tearDown(self):
        self.d.close()
        self.notify.close()

    def spawn(self, watchdog_usec=None, config=None):
        """Starts ferryd with NOTIFY_SOCKET (and WATCHDOG_USEC with WATCHDOG_PID = ferryd's
        own pid, through an exec so the pid is known before ferryd runs)."""
        env = self.d.env(**self.d.extra_env)
        env["NOTIFY_SOCKET"] = self.notify.path
        script = 'exec "$0" "$@"'
        if watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
            script = 'WATCHDOG_PID=$$ exec "$0" "$@"'
        log = open(self.d.log_path, "ab")
        self.d.proc = subprocess.Popen(["sh", "-c", script, h.FERRYD], env=env,
                                       stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT)
        log.close()
        return self.d.proc

    def test_ready_status_watchdog_reload_stopping(self):
        self.spawn(watchdog_usec=400000)
        ready = self.notify.wait_for("READY", "1")
        self.assertEqual(ready["STATUS"], "0 events; last seq 0; durable seq 0; 0 connections")
        # READY=1 means the socket accepts: no retry loop needed.
        with self.d.client() as c:
            self.assertEqual(c.ack(h.make_event())["last_seq"], 1)
        self.assertIn("systemd watchdog: 400 ms; pinging every 200 ms while the journal is "
                      "healthy", self.d.log())

        # WATCHDOG=1 every 200 ms: over 3 s expect ~15; the bounds only rule out "never"
        # and "much too often", whatever the machine's speed.
        t0 = time.monotonic()
        time.sleep(3)
        pings = [t for t, _ in self.notify.with_key("WATCHDOG", "1") if t0 <= t <= t0 + 3]
        self.assertGreaterEqual(len(pings), 3)
        self.assertLessEqual(len(pings), 22)

        # STATUS= is refreshed (every 5 s) once something changed.
        wait_until(lambda: any(m.get("STATUS", "").startswith("1 events; last seq 1;")
                               for _, m in self.notify.snapshot()), "a refreshed STATUS=")

        readies = len(self.notify.with_key("READY", "1"))
        self.d.proc.send_signal(signal.SIGHUP)
        reloading = self.notify.wait_for("RELOADING", "1")
        self.assertRegex(reloading["MONOTONIC_USEC"], r"^\d+$")
        self.notify.wait_for("READY", "1", after=readies)
        kinds = [k for _, m in self.notify.snapshot() for k in m if k in ("RELOADING", "READY")]
        self.assertEqual(kinds[-2:], ["RELOADING", "READY"])

        self.d.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.d.proc.wait(timeout=h.HANG_GUARD_S), 0)
        self.assertEqual(len(self.notify.with_key("STOPPING", "1")), 1)
        last = max(t for t, _ in self.notify.with_key("STOPPING", "1"))
        self.assertEqual([m for t, m in self.notify.snapshot() if t > last], [])

    def test_watchdog_for_another_pid_is_not_ours(self):
        # WATCHDOG_PID names another process (ours is a child of a service's main process,
        # say): ferryd must not ping for it.
        env_pid = os.getpid()
        self.d.extra_env.update({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(env_pid)})
        self.spawn()
        self.notify.wait_for("READY", "1")
        self.d.wait_ready()
        self.assertEqual(self.d.stop(), 0)
        self.assertEqual(self.notify.with_key("WATCHDOG"), [])
        self.assertNotIn("systemd watchdog", self.d.log())

    def test_no_watchdog_ping_while_the_journal_is_failed(self):
        # An injected write failure makes the journal refuse appends: the watchdog stops
        # pinging (so systemd restarts us) and says why, once.
        self.d.extra_env["FERRY_TEST_FAULTS"] = "write_fail_after=0"
        self.spawn(watchdog_usec=200000)
        self.notify.wait_for("READY", "1")
        self.notify.wait_for("WATCHDOG", "1")
        with self.d.client() as c:
            ftype, body = c.send_event(h.make_event())
            self.assertEqual((ftype, body["code"]), (h.ERROR, "journal_failed"))
        wait_until(lambda: "watchdog: not pinging systemd" in self.d.log(), "the watchdog error")
        failed_at = time.monotonic()
        # Wait for a STATUS= that says so (sent with the error), then check no ping followed
        # it by more than one in-flight timer.
        wait_until(lambda: any("JOURNAL FAILED" in m.get("STATUS", "")
                               for _, m in self.notify.snapshot()), "STATUS= with the failure")
        time.sleep(1)
        late = [t for t, _ in self.notify.with_key("WATCHDOG", "1") if t > failed_at]
        self.assertLessEqual(len(late), 1)
        self.assertEqual(self.d.log().count("watchdog: not pinging systemd"), 1)


class ReloadTest(unittest.TestCase):
    def write_config(self, d, text):
        with open(d.config_path + ".tmp", "w") as f:
            f.write(text)
        os.rename(d.config_path + ".tmp", d.config_path)

    def reload(self, d, marker):
        count = d.log().count(marker)
        d.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: d.log().count(marker) > count, "%r in the log" % marker)

    def test_valid_and_invalid_config(self):
        with h.daemon('log_level = "info"\n') as d:
            with d.client() as c:
                c.ack(h.make_event())
            self.assertNotIn("debug: connection from pid", d.log())

            self.write_config(d, 'log_level = "debug"\n[journal]\nfsync = "always"\n'
                                 'segment_size = "1MiB"\n[ingest]\nmax_batch_events = 2\n')
            self.reload(d, "SIGHUP: reloaded ")
            self.assertIn('SIGHUP: reloaded %s: log_level: "info" -> "debug"; journal.fsync: '
                          'interval -> always; ingest.max_batch_events: 10000 -> 2'
                          % d.config_path, d.log())
            self.assertIn("SIGHUP: %s needs a restart to apply (keeping the running value): "
                          "journal.segment_size: 67108864 -> 1048576" % d.config_path, d.log())
            st = d.status()
            self.assertEqual(st["journal"]["fsync"], "always")
            with d.client() as c:
                # Every ack is durable under "always" now.
                self.assertTrue(c.ack(h.make_event())["durable"])
                ftype, body = c.send_batch([h.make_event() for _ in range(3)])
                self.assertEqual((ftype, body["code"]), (h.ERROR, "too_many_events"))
            wait_until(lambda: "debug: connection from pid" in d.log(), "a debug line")

            self.write_config(d, '[ingest]\nmax_batch_events = 5\n[jornal]\nfsync = "never"\n')
            self.reload(d, "keeping the running configuration")
            self.assertIn('SIGHUP: %s:3:2: unknown key "jornal" (did you mean "journal"?); '
                          'keeping the running configuration' % d.config_path, d.log())
            self.write_config(d, 'log_level = "loud"\n')
            self.reload(d, "keeping the running configuration")
            self.assertIn('SIGHUP: %s:1:13: "log_level" is "loud"; expected one of: trace, '
                          'debug, info, warn, error, critical, off; keeping the running '
                          'configuration' % d.config_path, d.log())
            # Still serving, on the old values.
            self.assertEqual(d.status()["journal"]["fsync"], "always")
            with d.client() as c:
                self.assertTrue(c.ack(h.make_event())["durable"])
                ftype, body = c.send_batch([h.make_event() for _ in range(3)])
                self.assertEqual((ftype, body["code"]), (h.ERROR, "too_many_events"))
            self.assertEqual(d.proc.poll(), None)
            self.assertEqual(d.stop(), 0)
            self.assertEqual(len(d.journal()), 3)

    def test_flag_wins_over_reloaded_log_level(self):
        with h.daemon('log_level = "warn"\n', args=["--log-level", "info"]) as d:
            self.write_config(d, 'log_level = "debug"\n')
            self.reload(d, "SIGHUP: reloaded ")
            self.assertIn("SIGHUP: reloaded %s: nothing to apply" % d.config_path, d.log())
            with d.client() as c:
                c.ack(h.make_event())
            self.assertEqual(d.stop(), 0)
            self.assertNotIn("debug:", d.log())


class UnitFilesTest(unittest.TestCase):
    def setUp(self):
        self.root = h.make_tempdir()
        self.bin = os.path.join(self.root, "bin")
        os.makedirs(self.bin)
        self.calls = os.path.join(self.root, "systemctl.calls")
        self.env = h.clean_env(HOME=self.root,
                               XDG_CONFIG_HOME=os.path.join(self.root, "config"),
                               PATH=self.bin + os.pathsep + os.environ.get("PATH", ""))
        self.unit_dir = os.path.join(self.root, "config", "systemd", "user")

    def tearDown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def fake_systemctl(self, manager_running):
        """A systemctl on PATH that logs its arguments and acts as if a user manager runs
        (or none does, as on these machines)."""
        body = ('echo "$*" >> %s\n' % self.calls)
        if manager_running:
            body += "exit 0\n"
        else:
            body += 'echo "Failed to connect to bus: No medium found" >&2\nexit 1\n'
        path = os.path.join(self.bin, "systemctl")
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(path, 0o755)

    def calls_made(self):
        if not os.path.exists(self.calls):
            return []
        with open(self.calls) as f:
            return f.read().splitlines()

    def service(self, *args):
        return h.run_ferry(["service"] + list(args), self.env)

    def expected_units(self):
        ferryd = os.path.realpath(h.FERRYD)
        r = self.service("install", "--dry-run", "--ferryd", h.FERRYD)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.match(r"would write (\S+):\n(.*?)would write (\S+):\n(.*?)would run: ", r.stdout,
                     re.S)
        self.assertTrue(m, r.stdout)
        self.assertIn("\nExecStart=%s\n" % ferryd, m.group(2))
        return {m.group(1): m.group(2), m.group(3): m.group(4)}

    def test_dry_run_prints_units_and_commands_and_writes_nothing(self):
        self.fake_systemctl(manager_running=True)
        r = self.service("install", "--dry-run", "--ferryd", h.FERRYD)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        service = os.path.join(self.unit_dir, "ferryd.service")
        socket_unit = os.path.join(self.unit_dir, "ferryd.socket")
        self.assertTrue(r.stdout.startswith("would write %s:\n" % service), r.stdout)
        self.assertIn("\nwould write %s:\n" % socket_unit, r.stdout)
        self.assertTrue(r.stdout.endswith(
            "would run: systemctl --user daemon-reload\n"
            "would run: systemctl --user enable --now ferryd.socket ferryd.service\n"), r.stdout)
        for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=30s", "Restart=on-failure",
                     "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes",
                     "ProtectSystem=strict", "ListenStream=%t/ferry/ferry.sock",
                     "SocketMode=0600", "DirectoryMode=0700"):
            self.assertIn("\n" + line + "\n", r.stdout)
        self.assertNotIn("@", r.stdout)  # every placeholder filled in
        self.assertFalse(os.path.exists(self.unit_dir))
        self.assertEqual(self.calls_made(), [])

        r = self.service("uninstall", "--dry-run")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout,
                         "would run: systemctl --user disable --now ferryd.service ferryd.socket\n"
                         "would remove %s\nwould remove %s\n"
                         "would run: systemctl --user daemon-reload\n" % (service, socket_unit))
        self.assertEqual(self.calls_made(), [])

    def test_install_without_a_user_manager_writes_units_and_says_what_to_run(self):
        self.fake_systemctl(manager_running=False)
        units = self.expected_units()
        r = self.service("install", "--ferryd", h.FERRYD)
        service = os.path.join(self.unit_dir, "ferryd.service")
        socket_unit = os.path.join(self.unit_dir, "ferryd.socket")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout,
                         "wrote %s\nwrote %s\n"
                         "no systemd user manager answered (systemctl --user: Failed to connect "
                         "to bus: No medium found); once one runs, enable ferryd with:\n"
                         "  systemctl --user daemon-reload\n"
                         "  systemctl --user enable --now ferryd.socket ferryd.service\n"
                         % (service, socket_unit))
        for path, text in units.items():
            with open(path) as f:
                self.assertEqual(f.read(), text)
        self.assertEqual(sorted(os.listdir(self.unit_dir)), ["ferryd.service", "ferryd.socket"])
        self.assertEqual(self.calls_made(), ["--user show --property=Version"])

        r = self.service("uninstall")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout,
                         "removed %s\nremoved %s\n"
                         "no systemd user manager answered (systemctl --user: Failed to connect "
                         "to bus: No medium found); if one runs later, run:\n"
                         "  systemctl --user daemon-reload\n"
                         "the state directory (the journal) is kept; remove it yourself if "
                         "unwanted\n" % (service, socket_unit))
        self.assertEqual(os.listdir(self.unit_dir), [])

    def test_install_with_a_user_manager_enables_the_units(self):
        self.fake_systemctl(manager_running=True)
        r = self.service("install", "--ferryd", h.FERRYD)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertTrue(r.stdout.endswith(
            "ran: systemctl --user daemon-reload\n"
            "ran: systemctl --user enable --now ferryd.socket ferryd.service\n"
            "ferryd runs as a systemd user service (ExecStart=%s); `ferry status` shows it\n"
            % os.path.realpath(h.FERRYD)), r.stdout)
        self.assertEqual(self.calls_made(), ["--user show --property=Version",
                                             "--user daemon-reload",
                                             "--user enable --now ferryd.socket ferryd.service"])
        r = self.service("uninstall")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(self.calls_made()[3:], ["--user show --property=Version",
                                                 "--user disable --now ferryd.service "
                                                 "ferryd.socket",
                                                 "--user daemon-reload"])

    def fake_failing_enable(self):
        """A systemctl whose `enable` creates one symlink, then fails with several stderr
        lines, like a real one whose start job fails; every other call succeeds."""
        path = os.path.join(self.bin, "systemctl")
        with open(path, "w") as f:
            f.write('#!/bin/sh\necho "$*" >> %s\ncase "$*" in *enable*)\n'
                    '  echo "Created symlink /x/sockets.target.wants/ferryd.socket -> /x/ferryd.socket." >&2\n'
                    '  echo "Job for ferryd.service failed because the control process exited with error code." >&2\n'
                    '  echo "See \\"systemctl --user status ferryd.service\\" for details." >&2\n'
                    '  exit 1;;\nesac\nexit 0\n' % self.calls)
        os.chmod(path, 0o755)

    def test_install_fails_loudly_when_systemctl_fails(self):
        self.fake_failing_enable()
        r = self.service("install", "--ferryd", h.FERRYD)
        self.assertEqual(r.returncode, 1)
        # Everything systemctl said, not just its first line, then what to run next.
        self.assertEqual(r.stderr,
                         "ferry: systemctl --user enable --now ferryd.socket ferryd.service "
                         "failed (exit 1):\n"
                         "  Created symlink /x/sockets.target.wants/ferryd.socket -> "
                         "/x/ferryd.socket.\n"
                         "  Job for ferryd.service failed because the control process exited "
                         "with error code.\n"
                         '  See "systemctl --user status ferryd.service" for details.\n'
                         "next: see why with `systemctl --user status ferryd` and "
                         "`journalctl --user -u ferryd`,\n"
                         "      then fix it and run `systemctl --user enable --now "
                         "ferryd.socket ferryd.service` again\n")
        self.assertEqual(r.stdout, "wrote %s\nwrote %s\nran: systemctl --user daemon-reload\n"
                         % (os.path.join(self.unit_dir, "ferryd.service"),
                            os.path.join(self.unit_dir, "ferryd.socket")))
        self.assertEqual(self.calls_made(), ["--user show --property=Version",
                                             "--user daemon-reload",
                                             "--user enable --now ferryd.socket ferryd.service"])

    def test_a_failing_step_that_prints_nothing_says_so(self):
        path = os.path.join(self.bin, "systemctl")
        with open(path, "w") as f:
            f.write('#!/bin/sh\ncase "$*" in *daemon-reload*) exit 4;; esac\nexit 0\n')
        os.chmod(path, 0o755)
        r = self.service("install", "--ferryd", h.FERRYD)
        self.assertEqual((r.returncode, r.stderr), (1, (
            "ferry: systemctl --user daemon-reload failed (exit 4) and printed nothing\n"
            "next: see why with `systemctl --user status ferryd` and "
            "`journalctl --user -u ferryd`,\n"
            "      then fix it and run `ferry service install` again\n")))

    def test_uninstall_shows_all_of_a_failing_disable(self):
        path = os.path.join(self.bin, "systemctl")
        with open(path, "w") as f:
            f.write('#!/bin/sh\ncase "$*" in *disable*) echo "Removed /x/a." ; '
                    'echo "Failed to disable unit: Access denied" >&2; '
                    'echo "second line" >&2; exit 1;; esac\nexit 0\n')
        os.chmod(path, 0o755)
        r = self.service("uninstall")
        self.assertEqual((r.returncode, r.stdout), (1, ""))
        self.assertEqual(r.stderr,
                         "ferry: systemctl --user disable --now ferryd.service ferryd.socket "
                         "failed (exit 1):\n  Removed /x/a.\n"
                         "  Failed to disable unit: Access denied\n  second line\n"
                         "next: see why with `systemctl --user status ferryd` and "
                         "`journalctl --user -u ferryd`,\n"
                         "      then fix it and run `ferry service uninstall` again\n")

    def test_systemctl_output_is_shown_when_it_works(self):
        path = os.path.join(self.bin, "systemctl")
        with open(path, "w") as f:
            f.write('#!/bin/sh\ncase "$*" in *enable*) echo "Created symlink a -> b." >&2;; '
                    'esac\nexit 0\n')
        os.chmod(path, 0o755)
        r = self.service("install", "--ferryd", h.FERRYD)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertIn("ran: systemctl --user enable --now ferryd.socket ferryd.service\n"
                      "  Created symlink a -> b.\n"
                      "ferryd runs as a systemd user service", r.stdout)

    def test_usage_errors(self):
        for args, message in (([], "service: say install or uninstall (ferry service --help)"),
                              (["restart"], 'service: unexpected argument "restart" '
                                            "(ferry service --help)"),
                              (["install", "--ferryd", "/nonexistent/ferryd"],
                               "--ferryd /nonexistent/ferryd is not an executable file")):
            r = self.service(*args)
            self.assertEqual((r.returncode, r.stdout, r.stderr),
                             (1 if "--ferryd" in args else 2, "", "ferry: %s\n" % message))

    def test_systemd_analyze_verify(self):
        tool = shutil.which("systemd-analyze")
        if not tool:
            self.skipTest("systemd-analyze is not installed (Debian package systemd)")
        self.fake_systemctl(manager_running=False)
        r = self.service("install", "--ferryd", h.FERRYD)
        self.assertEqual(r.returncode, 0, r.stderr)
        runtime = os.path.join(self.root, "runtime")
        os.mkdir(runtime, 0o700)
        env = h.clean_env(HOME=self.root, XDG_RUNTIME_DIR=runtime)
        for units in (["ferryd.socket", "ferryd.service"], ["ferryd.service"]):
            with self.subTest(units=units):
                if units == ["ferryd.service"]:
                    os.unlink(os.path.join(self.unit_dir, "ferryd.socket"))  # service alone
                v = subprocess.run([tool, "verify", "--user"] + ["./" + u for u in units],
                                   cwd=self.unit_dir, env=env, capture_output=True, text=True,
                                   timeout=h.HANG_GUARD_S)
                self.assertEqual((v.returncode, v.stdout, v.stderr), (0, "", ""))


if __name__ == "__main__":
    unittest.main()
