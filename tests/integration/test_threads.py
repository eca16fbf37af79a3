"""ferryd's threads are named for what they do, and the ones behind the journal run at a lower
CPU priority than the path a hook waits on (daemon/base/thread_role.h, docs/architecture.md
"Threads"): io and sync at the process's nice value, store, archive, query, spool import,
sinks and tails 10 steps nicer (at most 19).

Reads /proc/PID/task/TID/{comm,stat} of the real ferryd. Waits poll a condition; timeouts are
hang guards.
"""

import os
import subprocess
import time
import unittest

import ferry_harness as h
from test_sinks import sink_toml
from upstream_server import UpstreamServer

BACKGROUND_STEPS = 10
FOREGROUND = {"ferryd", "ferryd-sync"}
BACKGROUND = {"ferryd-store", "ferryd-archive", "ferryd-query", "ferryd-spool", "ferryd-sink:up",
              "ferryd-tail"}


def threads(pid):
    """{tid: (comm, nice)} of every thread of `pid`."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                comm = f.read().strip()
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                stat = f.read()
        except FileNotFoundError:  # the thread ended between listdir and open
            continue
        # Field 19 is nice; fields are counted after the ")" that ends comm (which may hold spaces).
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(tid)] = (comm, int(fields[16]))
    return out


def wait_threads(pid, names):
    """Polls until every name in `names` is a thread of `pid`; returns {comm: [nice, ...]}."""
    deadline = time.monotonic() + h.HANG_GUARD_S
    while True:
        by_name = {}
        for comm, nice in threads(pid).values():
            by_name.setdefault(comm, []).append(nice)
        if names <= by_name.keys():
            return by_name
        if time.monotonic() > deadline:
            raise AssertionError("threads %s never appeared; have %s" % (names, by_name))
        time.sleep(0.01)


class ThreadRoleTest(unittest.TestCase):
    def start(self):
        srv = UpstreamServer().start()
        self.addCleanup(srv.close)
        d = h.Daemon(config=sink_toml("up", srv.url()))
        self.addCleanup(d.close)
        d.start()
        return d

    def check(self, d, base_nice):
        # A tail thread exists only while a `ferry tail -f` reads.
        tail = subprocess.Popen([h.FERRY, "tail", "-f"], env=d.env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(tail.wait)
        self.addCleanup(tail.kill)
        want = FOREGROUND | BACKGROUND
        by_name = wait_threads(d.proc.pid, want)
        background_nice = min(19, base_nice + BACKGROUND_STEPS)
        for name in FOREGROUND:
            self.assertEqual(by_name[name], [base_nice] * len(by_name[name]), name)
        for name in want & BACKGROUND:
            self.assertEqual(by_name[name], [background_nice] * len(by_name[name]), name)
        # No thread is left unnamed (a new thread must say what it is).
        unnamed = set(by_name) - FOREGROUND - BACKGROUND
        self.assertEqual(unnamed, set(), "threads without a role: %s" % by_name)

    def test_names_and_priorities(self):
        d = self.start()
        self.check(d, os.getpriority(os.PRIO_PROCESS, 0))
        # Background work does not stop events: one is acked while the store is niced.
        self.assertEqual(h.run_ferry(["emit", "--source", "threads", "--kind", "k", "--data",
                                      "{}"], d.env()).returncode, 0)

    def test_background_nice_is_capped_at_19(self):
        """Started at nice 15, background threads sit at 19 (not 25), io and sync at 15."""
        own = os.getpriority(os.PRIO_PROCESS, 0)
        if own > 15:
            self.skipTest("this process already runs at nice %d" % own)
        os.setpriority(os.PRIO_PROCESS, 0, 15)  # ferryd inherits it

        def restore():
            try:
                os.setpriority(os.PRIO_PROCESS, 0, own)
            except PermissionError:  # lowering nice needs CAP_SYS_NICE: stays nicer
                pass

        self.addCleanup(restore)
        d = self.start()
        self.check(d, 15)


if __name__ == "__main__":
    unittest.main()
