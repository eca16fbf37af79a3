"""The README's 60-second tour, run as written against a real ferryd: every command exits 0
and prints what the README shows, up to times, durations, pids, sizes and paths."""

import os
import re
import subprocess
import time
import unittest

import ferry_harness as h

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")


def tour():
    """(commands, outputs): the sh block after "In another terminal:" and the plain blocks
    after "What you see"."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    after = text.split("In another terminal:\n", 1)[1]
    commands = after.split("```sh\n", 1)[1].split("```", 1)[0]
    shown = after.split("What you see", 1)[1].split("\nHook ferry into", 1)[0]
    outputs = re.findall(r"```\n(.*?)```", shown, flags=re.S)
    return commands, outputs


def mask(text):
    """Blanks what differs from run to run: times, durations, numbers that are sizes or
    counts of time, the pid, paths; and the width of the whitespace between columns."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?( UTC)?", "TIME", line)
        line = re.sub(r"\b\d+(\.\d+)?(µs|ms|s)\b", "DUR", line)
        line = re.sub(r"pid \d+", "pid N", line)
        line = re.sub(r"up \S+", "up DUR", line)
        line = re.sub(r"\d+(\.\d+)? (B|KiB|MiB)", "SIZE", line)
        line = re.sub(r"\(\d+\.\d+/s now\)", "(RATE now)", line)
        line = re.sub(r"(?<!\S)/\S+", "PATH", line)
        line = re.sub(r"\b\d\d:\d\d:\d\d\b", "HMS", line)
        line = re.sub(r"last batch \d+", "last batch N", line)
        line = re.sub(r"[ -]{2,}", lambda m: "  " if m.group(0).strip() == "" else "--", line)
        out.append(line.rstrip())
    return out


class ReadmeTourTest(unittest.TestCase):
    def setUp(self):
        self.d = h.Daemon()
        self.d.start()

    def tearDown(self):
        self.d.close()

    def run_line(self, line, env):
        return subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True,
                              timeout=h.HANG_GUARD_S)

    def wait_store(self, seq):
        deadline = time.monotonic() + h.HANG_GUARD_S
        while self.d.status()["store"]["cursor"] < seq:
            self.assertLess(time.monotonic(), deadline, "the store did not apply seq %d" % seq)
            time.sleep(0.02)

    def wait_archived(self):
        deadline = time.monotonic() + h.HANG_GUARD_S
        while self.d.status()["archive"]["copies"] < 1:
            self.assertLess(time.monotonic(), deadline, "ferryd did not archive the transcript")
            time.sleep(0.02)

    def test_tour_runs_and_prints_what_the_readme_shows(self):
        commands, outputs = tour()
        lines = [x for x in commands.splitlines() if x.strip()]
        self.assertTrue(lines[0].startswith("ferry="), lines[0])
        env = self.d.env(TZ="UTC", ferry=h.FERRY)
        printed = []
        for line in lines[1:]:
            if line.startswith("$ferry status"):
                self.wait_store(3)  # what a user sees a second later: the store caught up
            if line.startswith("rm /tmp/ferry-tour.jsonl"):
                self.wait_archived()  # a person types slower than ferryd copies
            # As written, except that emit may wait 10 s for its ack: on a loaded test machine
            # a spooled event would be imported later, under another seq than the README shows.
            r = self.run_line(line.replace("$ferry emit ", "$ferry emit --timeout-ms 10000 "), env)
            self.assertEqual((r.returncode, r.stderr), (0, ""), line)
            if r.stdout and "--print-ack" not in line:
                printed.append(r.stdout)
            if "--print-ack" in line:
                self.assertEqual(r.stdout, "3\n")
        self.maxDiff = None
        self.assertEqual(len(printed), len(outputs), printed)
        for got, want in zip(printed, outputs):
            self.assertEqual(mask(got), mask(want))


if __name__ == "__main__":
    unittest.main()
