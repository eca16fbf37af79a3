"""The socket and its directory: modes, a second ferryd, stale sockets, foreign peers."""

import json
import os
import socket
import stat
import unittest

import ferry_harness as h


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


class SocketTest(unittest.TestCase):
    def setUp(self):
        self.d = h.Daemon()
        self.others = []

    def tearDown(self):
        for o in self.others:
            o.close()
        self.d.close()

    def second(self, socket_path=None, state_dir=None):
        """A second ferryd in the same temp root, on the given socket and state dir."""
        other = h.Daemon(root=self.d.root)
        other.log_path = os.path.join(self.d.root, "second-%d.log" % len(self.others))
        other.socket = socket_path or other.socket
        other.state_dir = state_dir or os.path.join(self.d.root, "state-%d" % len(self.others))
        self.others.append(other)
        return other

    def assert_first_still_works(self):
        r = self.d.emit("--source", "t", "--kind", "still-alive", "--strict", "--print-ack",
                        "--timeout-ms", "5000")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.d.status()["daemon"]["pid"], self.d.proc.pid)
        return int(r.stdout)

    def test_modes(self):
        self.d.start()
        run_dir = os.path.dirname(self.d.socket)
        self.assertEqual(mode(run_dir), 0o700)
        self.assertTrue(stat.S_ISSOCK(os.lstat(self.d.socket).st_mode))
        self.assertEqual(mode(self.d.socket), 0o600)
        self.assertEqual(os.lstat(self.d.socket).st_uid, os.getuid())
        self.assertEqual(mode(self.d.state_dir), 0o700)
        self.assertEqual(mode(os.path.join(self.d.state_dir, "journal")), 0o700)
        self.assertEqual(mode(h.last_segment_path(self.d.state_dir)), 0o600)

    def test_open_socket_directory_of_ours_is_tightened(self):
        run_dir = os.path.dirname(self.d.socket)
        os.mkdir(run_dir, 0o755)
        os.chmod(run_dir, 0o755)
        self.d.start()
        self.assertEqual(mode(run_dir), 0o700)
        self.assertIn("socket directory %s was mode 755; set it to 0700" % run_dir, self.d.log())

    def test_shared_sticky_directory_is_left_alone(self):
        # A socket placed directly in a shared directory such as /tmp: ferryd must not
        # chmod the directory (as root that would lock every other user out of /tmp).
        shared = os.path.join(self.d.root, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        self.d.socket = os.path.join(shared, "ferry.sock")
        self.d.start()
        self.assertEqual(mode(shared), 0o1777)
        self.assertEqual(mode(self.d.socket), 0o600)
        self.assert_first_still_works()

    def test_socket_path_too_long(self):
        self.d.socket = os.path.join(self.d.root, "x" * 120, "ferry.sock")
        self.d.spawn()
        self.assertEqual(self.d.proc.wait(timeout=h.HANG_GUARD_S), 1)
        self.assertIn("Unix sockets allow 107: " + self.d.socket, self.d.log())

    def test_second_ferryd_on_the_same_socket_refuses(self):
        self.d.start()
        seq = self.assert_first_still_works()
        other = self.second(socket_path=self.d.socket)
        other.spawn()
        self.assertEqual(other.proc.wait(timeout=h.HANG_GUARD_S), 1)
        self.assertIn("cannot start: another ferryd is already running on %s (ferry status shows "
                      "it); not starting a second one" % self.d.socket, other.log())
        # The first is untouched: same socket inode serving, same journal.
        self.assertTrue(stat.S_ISSOCK(os.lstat(self.d.socket).st_mode))
        self.assertEqual(self.assert_first_still_works(), seq + 1)
        self.assertEqual([r.seq for r in self.d.journal()], [1, 2])

    def test_second_ferryd_on_the_same_state_dir_refuses(self):
        self.d.start()
        self.assert_first_still_works()
        other = self.second(socket_path=os.path.join(self.d.root, "run2", "ferry.sock"),
                            state_dir=self.d.state_dir)
        other.spawn()
        self.assertEqual(other.proc.wait(timeout=h.HANG_GUARD_S), 1)
        self.assertIn("another ferryd (pid %d) is using the state directory %s; not starting a "
                      "second one" % (self.d.proc.pid, self.d.state_dir), other.log())
        self.assertFalse(os.path.exists(other.socket))
        self.assertEqual(self.assert_first_still_works(), 2)
        self.assertEqual([r.seq for r in self.d.journal()], [1, 2])

    def test_state_dir_lock_is_released_on_exit(self):
        self.d.start()
        self.assertEqual(self.d.kill(), -9)
        self.d.start()  # a SIGKILLed ferryd's lock went with it
        self.assertEqual(self.d.stop(), 0)
        self.d.start()
        self.assertEqual(self.assert_first_still_works(), 1)

    def test_stale_socket_is_replaced(self):
        self.d.start()
        self.assert_first_still_works()
        self.assertEqual(self.d.kill(), -9)
        self.assertTrue(stat.S_ISSOCK(os.lstat(self.d.socket).st_mode))  # left behind
        r = h.run_ferry(["status"], self.d.env())
        self.assertEqual(r.returncode, 3)
        self.assertIn("Connection refused", r.stdout)
        self.d.start()
        self.assertIn("removing stale socket %s" % self.d.socket, self.d.last_log())
        self.assertEqual(mode(self.d.socket), 0o600)
        self.assertEqual(self.assert_first_still_works(), 2)

    def test_sigterm_removes_the_socket(self):
        self.d.start()
        self.assertEqual(self.d.stop(), 0)
        self.assertFalse(os.path.exists(self.d.socket))

    def test_path_that_is_not_a_socket_is_refused(self):
        os.makedirs(os.path.dirname(self.d.socket), 0o700)
        with open(self.d.socket, "w") as f:
            f.write("precious\n")
        self.d.spawn()
        self.assertEqual(self.d.proc.wait(timeout=h.HANG_GUARD_S), 1)
        self.assertIn("cannot start: %s exists and is not a socket; not touching it"
                      % self.d.socket, self.d.log())
        with open(self.d.socket) as f:
            self.assertEqual(f.read(), "precious\n")

    def test_socket_directory_of_another_user_is_refused(self):
        if os.getuid() != 0:
            self.skipTest("needs root to chown a directory to another uid")
        run_dir = os.path.dirname(self.d.socket)
        os.mkdir(run_dir, 0o700)
        os.chown(run_dir, 65534, 65534)
        self.d.spawn()
        self.assertEqual(self.d.proc.wait(timeout=h.HANG_GUARD_S), 1)
        self.assertIn("socket directory %s belongs to uid 65534, not to us (uid 0)" % run_dir,
                      self.d.log())

    def test_peer_of_another_uid_is_rejected(self):
        if os.getuid() != 0:
            self.skipTest("needs root to run a client as uid 65534")
        self.d.start()
        # Let uid 65534 reach the socket; SO_PEERCRED is then the only thing that stops it.
        os.chmod(self.d.root, 0o755)
        os.chmod(os.path.dirname(self.d.socket), 0o755)
        os.chmod(self.d.socket, 0o666)
        refused_before = self.d.status()["ingest"]["connections_refused"]
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: drop to nobody, try to send an event, report what came back
            code = 1
            try:
                os.close(rfd)
                os.setgid(65534)
                os.setuid(65534)
                c = h.RawClient(self.d.socket, timeout=30)
                try:
                    c.send_frame(h.EVENT, {"v": 1, "event": h.make_event(kind="intruder")})
                except OSError:
                    pass  # the daemon may already have closed; its ERROR is still readable
                ftype, body = c.recv_frame()
                c.expect_closed()
                os.write(wfd, json.dumps([ftype, body]).encode())
                code = 0
            except BaseException as e:  # noqa: B902 -- report anything to the parent
                os.write(wfd, json.dumps(["exception", repr(e)]).encode())
            finally:
                os._exit(code)
        os.close(wfd)
        with os.fdopen(rfd, "rb") as f:
            got = json.loads(f.read())
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0, got)
        ftype, body = got
        self.assertEqual(ftype, h.ERROR)
        self.assertEqual(body, {"code": "peer_rejected", "fatal": True,
                                "message": "peer uid 65534 is not the daemon's uid 0; ferryd "
                                           "serves one user"})
        self.assertIn("refused connection (pid ", self.d.log())
        st = self.d.status()
        self.assertEqual(st["ingest"]["connections_refused"], refused_before + 1)
        self.assertEqual(st["ingest"]["events_total"], 0)
        self.assertEqual(self.d.journal(), [])
        self.assertEqual(self.assert_first_still_works(), 1)

    def test_unreachable_socket_from_another_uid(self):
        # Without the test's chmods, the 0700 directory keeps other users out entirely.
        if os.getuid() != 0:
            self.skipTest("needs root to run a client as uid 65534")
        self.d.start()
        os.chmod(self.d.root, 0o755)
        pid = os.fork()
        if pid == 0:
            code = 3
            try:
                os.setgid(65534)
                os.setuid(65534)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(self.d.socket)
                    code = 0
                except PermissionError:
                    code = 13
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 13)


if __name__ == "__main__":
    unittest.main()
