"""The state directory and the spool are checked, and what ferryd creates is private
(issue 10 #6): a state or spool dir that others can write to, or that belongs to another uid,
or a spool/ that is a symlink, is refused with a message naming the path, its mode and owner
and what to do; with umask 022 every file ferryd and `ferry emit` create is 0600 and every
directory 0700; a spool file of another uid is never imported."""

import json
import os
import stat
import unittest

import ferry_harness as h

IS_ROOT = os.geteuid() == 0
NOBODY = 65534


class StateDirTest(unittest.TestCase):
    def setUp(self):
        self.d = h.Daemon()
        self.addCleanup(self.d.close)

    def refused(self):
        """Starts ferryd and expects it to exit 1 at once; returns its log."""
        proc = self.d.spawn()
        self.assertEqual(proc.wait(timeout=h.HANG_GUARD_S), 1, self.d.log())
        return self.d.last_log()

    def assert_refused_with(self, message):
        log = self.refused()
        lines = [l for l in log.splitlines() if " critical: " in l]
        self.assertEqual(len(lines), 1, log)
        self.assertEqual(lines[0].split(" critical: ", 1)[1], "cannot start: " + message)

    def test_world_writable_state_dir_is_refused(self):
        os.makedirs(self.d.state_dir)
        os.chmod(self.d.state_dir, 0o777)
        sd = self.d.state_dir
        self.assert_refused_with(
            "state directory %s is mode 0777 (owner uid %d): other users can write to it; fix it "
            "with `chmod 700 %s` and start again" % (sd, os.geteuid(), sd))
        self.assertEqual(os.listdir(sd), [])  # nothing created in it
        os.chmod(sd, 0o700)
        self.d.start()  # fixed as told: starts

    def test_group_writable_spool_dir_is_refused(self):
        spool = os.path.join(self.d.state_dir, "spool")
        os.makedirs(spool)
        os.chmod(self.d.state_dir, 0o700)
        os.chmod(spool, 0o770)
        self.assert_refused_with(
            "spool directory %s is mode 0770 (owner uid %d): other users can write to it; fix it "
            "with `chmod 700 %s` and start again" % (spool, os.geteuid(), spool))

    def test_readable_state_dir_is_tightened(self):
        os.makedirs(self.d.state_dir)
        os.chmod(self.d.state_dir, 0o755)
        self.d.start()
        self.assertEqual(stat.S_IMODE(os.stat(self.d.state_dir).st_mode), 0o700)
        self.assertIn("warning: state directory %s was mode 0755; set it to 0700"
                      % self.d.state_dir, self.d.log())

    def test_spool_symlink_to_sticky_dir_is_refused(self):
        os.makedirs(self.d.state_dir, mode=0o700)
        shared = os.path.join(self.d.root, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        spool = os.path.join(self.d.state_dir, "spool")
        os.symlink(shared, spool)
        self.assert_refused_with(
            "spool directory %s is a symbolic link (to %s); ferry keeps it only as a real "
            "directory of its own: remove the link (rm %s) and start again"
            % (spool, shared, spool))
        # The client refuses it the same way and writes nothing into the shared directory.
        r = self.d.emit("--source", "t", "--kind", "k", "--strict", "--timeout-ms", "100")
        self.assertEqual(r.returncode, 1)
        self.assertIn("; and not spooled: spool directory %s is a symbolic link; ferry keeps it "
                      "only as a real directory of its own: remove the link (rm %s)\n"
                      % (spool, spool), r.stderr)
        self.assertEqual(os.listdir(shared), [])

    @unittest.skipUnless(IS_ROOT, "needs root to chown the state dir to another uid")
    def test_state_dir_of_another_uid_is_refused(self):
        os.makedirs(self.d.state_dir, mode=0o700)
        os.chown(self.d.state_dir, NOBODY, NOBODY)
        self.assert_refused_with(
            "state directory %s (mode 0700) belongs to uid %d, not to ferryd's uid %d: another "
            "user could read or forge its files; use a directory of your own (--state-dir) and "
            "start again" % (self.d.state_dir, NOBODY, os.geteuid()))

    @unittest.skipUnless(IS_ROOT, "needs root to chown the spool dir to another uid")
    def test_spool_dir_of_another_uid_is_refused_by_ferryd_and_emit(self):
        spool = os.path.join(self.d.state_dir, "spool")
        os.makedirs(spool, mode=0o700)
        os.chmod(self.d.state_dir, 0o700)
        os.chown(spool, NOBODY, NOBODY)
        self.assert_refused_with(
            "spool directory %s (mode 0700) belongs to uid %d, not to ferryd's uid %d: another "
            "user could read or forge its files; use a directory of your own (--state-dir) and "
            "start again" % (spool, NOBODY, os.geteuid()))
        r = self.d.emit("--source", "t", "--kind", "k", "--strict", "--timeout-ms", "100")
        self.assertEqual(r.returncode, 1)
        self.assertIn("; and not spooled: spool directory %s (mode 0700) belongs to uid %d, not to "
                      "uid %d\n" % (spool, NOBODY, os.geteuid()), r.stderr)
        self.assertEqual(os.listdir(spool), [])

    def test_umask_022_everything_created_is_private(self):
        old = os.umask(0o022)
        try:
            # The client creates the state and spool dirs and a spool file while ferryd is down.
            r = self.d.emit("--source", "t", "--kind", "spooled", "--timeout-ms", "100")
            self.assertEqual((r.returncode, r.stderr), (0, ""))
            self.d.start()
            self.d.wait_for(lambda st: st["spool"]["events_imported"] == 1 and
                            st["spool"]["pending_files"] == 0, "the spool import")
            for i in range(20):
                r = self.d.emit("--source", "t", "--kind", "live", "--durable")
                self.assertEqual((r.returncode, r.stderr), (0, ""))
            self.d.wait_for(lambda st: st["store"]["cursor"] == 21, "the store to catch up")
            # Files created before this fix (an old ferryd run with umask 022) are tightened.
            db = os.path.join(self.d.state_dir, "ferry.db")
            self.assertEqual(self.d.stop(), 0)
            os.chmod(db, 0o644)
            self.d.start()
            self.assertIn("warning: %s was mode 644; set it to 0600" % db, self.d.last_log())
            r = self.d.emit("--source", "t", "--kind", "live", "--durable")
            self.assertEqual((r.returncode, r.stderr), (0, ""))
            self.d.wait_for(lambda st: st["store"]["cursor"] == 22, "the store to catch up")
        finally:
            os.umask(old)
        seen = {}
        for top, dirs, files in os.walk(self.d.state_dir):
            for name in dirs:
                p = os.path.join(top, name)
                seen[os.path.relpath(p, self.d.state_dir)] = stat.S_IMODE(os.lstat(p).st_mode)
            for name in files:
                p = os.path.join(top, name)
                seen[os.path.relpath(p, self.d.state_dir)] = stat.S_IMODE(os.lstat(p).st_mode)
        seen["."] = stat.S_IMODE(os.stat(self.d.state_dir).st_mode)
        for must in (".", "spool", "journal", "ferry.db", "ferry.db-wal", "ferry.db-shm",
                     "ferryd.lock"):
            self.assertIn(must, seen)
        bad = {p: oct(m) for p, m in seen.items()
               if m != (0o700 if os.path.isdir(os.path.join(self.d.state_dir, p)) else 0o600)}
        self.assertEqual(bad, {})


if __name__ == "__main__":
    unittest.main()
