"""The SQLite store (ferry.db) and the read-only query path, through the real binaries:
exactly-once under SIGKILL, rebuild from the journal (missing and corrupt db), `ferry query`
refusals, row cap and time limit, `ferry sessions`."""

import json
import os
import random
import sqlite3
import threading
import time
import unittest

import ferry_harness as h

FAST = '[store]\nbatch_interval = "20ms"\nbatch_events = 50\n'


def db_path(d):
    return os.path.join(d.state_dir, "ferry.db")


def wait_store_caught_up(d):
    """Polls status until the store's cursor reaches the journal's last seq."""
    return d.wait_for(lambda st: st["store"]["cursor"] == st["journal"]["last_seq"]
                      and not st["store"]["rebuilding"], "store to catch up")


def read_db(d):
    con = sqlite3.connect("file:%s?mode=ro" % db_path(d), uri=True)
    try:
        events = con.execute("SELECT seq, id, ts, received, source, kind, session, cwd, host, "
                             "pid, payload FROM events ORDER BY seq").fetchall()
        sessions = con.execute("SELECT source, session, first_ts, last_ts, events, kinds, "
                               "failures, ended, end_reason FROM sessions "
                               "ORDER BY source, session").fetchall()
        cursor = con.execute("SELECT value FROM meta WHERE key = 'cursor'").fetchone()
        return events, sessions, cursor[0] if cursor else 0
    finally:
        con.close()


def recount_sessions(events):
    """Session aggregates recomputed from the events rows: {(source, session): (n, first, last,
    kinds)}."""
    out = {}
    for seq, _id, ts, _rcv, source, kind, session, *_ in events:
        if session is None:
            continue
        n, first, last, kinds = out.get((source, session), (0, ts, ts, {}))
        kinds = dict(kinds)
        kinds[kind] = kinds.get(kind, 0) + 1
        out[(source, session)] = (n + 1, min(first, ts), max(last, ts), kinds)
    return out


class Streamer(threading.Thread):
    def __init__(self, d, sessions):
        super().__init__(daemon=True)
        self.client = d.client()
        self.sessions = sessions

    def run(self):
        try:
            while True:
                batch = [h.make_event(source="crash", kind=random.choice(["a", "b", "c"]),
                                      session=random.choice(self.sessions),
                                      payload={"n": random.randint(0, 9)})
                         for _ in range(random.randint(1, 20))]
                ftype, _ = self.client.send_batch(batch)
                if ftype != h.ACK:
                    return
        except (h.Closed, OSError):
            pass
        finally:
            self.client.close()


class ExactlyOnceTest(unittest.TestCase):
    # 20 in the suite; the longer fault job in .ci/run sets FERRY_SIGKILL_CYCLES higher.
    CYCLES = int(os.environ.get("FERRY_SIGKILL_CYCLES", "20"))

    def test_sigkill_cycles_rows_equal_journal(self):
        d = h.Daemon(config=FAST)
        self.addCleanup(d.close)
        d.start()
        rng = random.Random(1234)
        for cycle in range(self.CYCLES):
            streamers = [Streamer(d, ["s%d" % k for k in range(5)]) for _ in range(2)]
            for s in streamers:
                s.start()
            # Kill at a random moment: after a random number of new journal records.
            target = d.status()["journal"]["last_seq"] + rng.randint(1, 400)
            d.wait_for(lambda st: st["journal"]["last_seq"] >= target, "events to flow")
            time.sleep(rng.random() * 0.05)
            d.kill()
            for s in streamers:
                s.join(h.HANG_GUARD_S)
            d.start()
        wait_store_caught_up(d)
        d.stop()
        journal = d.journal()
        events, sessions, cursor = read_db(d)
        self.assertEqual([e[0] for e in events], [r.seq for r in journal])
        self.assertEqual(cursor, journal[-1].seq)
        by_seq = {r.seq: r.body for r in journal}
        for e in events:
            self.assertEqual(e[1], by_seq[e[0]]["id"])
        recount = recount_sessions(events)
        got = {(s[0], s[1]): (s[4], s[2], s[3], json.loads(s[5])) for s in sessions}
        self.assertEqual(got, recount)


class RebuildTest(unittest.TestCase):
    def emit_some(self, d, n=300):
        c = d.client()
        try:
            for i in range(0, n, 30):
                events = [h.make_event(source=["bash", "claude-code"][k % 2], kind="k%d" % (k % 3),
                                       session="sess%d" % (k % 7), payload={"i": i + k})
                          for k in range(30)]
                self.assertEqual(c.send_batch(events)[0], h.ACK)
        finally:
            c.close()

    def test_missing_db_is_rebuilt_row_for_row(self):
        d = h.Daemon(config=FAST)
        self.addCleanup(d.close)
        d.start()
        self.emit_some(d)
        wait_store_caught_up(d)
        d.stop()
        before = read_db(d)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db_path(d) + suffix):
                os.unlink(db_path(d) + suffix)
        d.start()
        wait_store_caught_up(d)
        d.stop()
        self.assertIn("rebuilding", d.last_log())
        after = read_db(d)
        self.assertEqual(before[0], after[0])
        self.assertEqual(before[2], after[2])
        # Aggregates equal, except which sessions idle-closed is a matter of timing.
        self.assertEqual([s[:7] for s in before[1]], [s[:7] for s in after[1]])

    def test_a_large_rebuild_reports_its_progress(self):
        # 120,000 events: the log reports every 100,000 applied while rebuilding.
        n = 120000
        d = h.Daemon()
        self.addCleanup(d.close)
        d.start()
        with d.client() as c:
            for b in range(n // 1000):
                t, body = c.send_batch([{"id": "%08x%024x" % (b, i), "ts": 1, "source": "bulk",
                                         "kind": "k"} for i in range(1000)])
                self.assertEqual(t, h.ACK, body)
        wait_store_caught_up(d)
        d.stop()
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db_path(d) + suffix):
                os.unlink(db_path(d) + suffix)
        d.start()
        st = wait_store_caught_up(d)
        self.assertEqual((st["store"]["rows"], st["store"]["rebuilding"]), (n, False))
        log = d.last_log()
        path = db_path(d)
        self.assertIn("rebuilding %s from the journal: %d event(s) to apply" % (path, n), log)
        self.assertIn("rebuilding %s: 100000 of %d events (83%%)" % (path, n), log)
        self.assertIn("rebuild of %s done: %d event(s) applied" % (path, n), log)

    def test_corrupt_db_is_moved_aside_and_rebuilt(self):
        d = h.Daemon(config=FAST)
        self.addCleanup(d.close)
        d.start()
        self.emit_some(d)
        wait_store_caught_up(d)
        d.stop()
        before = read_db(d)
        with open(db_path(d), "r+b") as f:
            f.seek(0)
            f.write(b"\xde\xad\xbe\xef" * 25)  # garbage over the header page
        d.start()
        st = wait_store_caught_up(d)
        self.assertTrue(st["healthy"])
        d.stop()
        log = d.last_log()
        self.assertIn("is damaged", log)
        self.assertIn("moved it aside", log)
        aside = [n for n in os.listdir(d.state_dir) if n.startswith("ferry.db.corrupt-")]
        self.assertTrue(aside, os.listdir(d.state_dir))
        with open(os.path.join(d.state_dir, sorted(aside)[0]), "rb") as f:
            self.assertTrue(f.read(4) == b"\xde\xad\xbe\xef")
        after = read_db(d)
        self.assertEqual(before[0], after[0])


class QueryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = h.Daemon(config=FAST + 'query_timeout = "300ms"\nquery_max_rows = 50\n')
        cls.d.start()
        c = cls.d.client()
        events = [h.make_event(source="bash", kind="command", session="q1",
                               payload={"command": "ls %d" % i, "exit_status": i % 2})
                  for i in range(120)]
        events.append(h.make_event(source="claude-code", kind="PostToolUseFailure",
                                   session="c1", payload={"tool_name": "Bash"}))
        events.append(h.make_event(source="claude-code", kind="SessionEnd", session="c1"))
        assert c.send_batch(events)[0] == h.ACK
        c.close()
        wait_store_caught_up(cls.d)

    @classmethod
    def tearDownClass(cls):
        cls.d.close()

    def query(self, *args):
        return h.run_ferry(["query"] + list(args), self.d.env())

    def test_refuses_writes_with_a_clear_error(self):
        for sql in ["INSERT INTO meta VALUES('x', 1)", "DELETE FROM events",
                    "UPDATE sessions SET events = 0", "DROP TABLE events",
                    "ATTACH DATABASE '/tmp/ferry-evil.db' AS evil", "PRAGMA query_only = 0",
                    "PRAGMA journal_mode = DELETE", "SELECT 1; DELETE FROM events"]:
            with self.subTest(sql=sql):
                r = self.query(sql)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn("query_refused", r.stderr)
                self.assertTrue("read-only" in r.stderr or "one statement" in r.stderr, r.stderr)
        r = self.query("SELECT count(*) AS n FROM events", "--json")
        self.assertEqual(json.loads(r.stdout), {"n": 122})

    def test_sql_error_is_reported(self):
        r = self.query("SELECT nope FROM events")
        self.assertEqual(r.returncode, 1)
        self.assertIn("query_failed", r.stderr)
        self.assertIn("no such column", r.stderr)

    def test_row_cap_and_limit(self):
        r = self.query("SELECT seq FROM events", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout.splitlines()), 50)
        self.assertIn("row cap 50", r.stderr)
        r = self.query("SELECT seq FROM events ORDER BY seq", "--json", "--limit", "3")
        self.assertEqual([json.loads(l)["seq"] for l in r.stdout.splitlines()], [1, 2, 3])

    def test_time_limit_stops_a_runaway_query(self):
        r = self.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                       "SELECT count(*) FROM c")
        self.assertEqual(r.returncode, 1)
        self.assertIn("time limit", r.stderr)
        # Ingest went on meanwhile and the daemon still answers.
        self.assertEqual(self.d.emit("--source", "t", "--kind", "k").returncode, 0)
        self.assertEqual(self.query("SELECT 1").returncode, 0)

    def test_json_rows_and_payload_functions(self):
        r = self.query("SELECT seq, kind, json_extract(payload, '$.command') AS cmd, payload "
                       "FROM events WHERE source = 'bash' ORDER BY seq LIMIT 2", "--json")
        rows = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual(rows[0]["cmd"], "ls 0")
        self.assertEqual(rows[0]["kind"], "command")
        # The payload column is nested JSON, not an escaped string (issue 12).
        self.assertEqual(rows[1]["payload"], {"command": "ls 1", "exit_status": 1})

    def test_table_output_is_aligned(self):
        r = self.query("SELECT seq, kind FROM events ORDER BY seq LIMIT 3")
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["seq", "kind"])
        self.assertTrue(set(lines[1]) <= {"-", " "})
        col = lines[0].index("kind")
        for line in lines[2:]:
            self.assertEqual(line[col:].strip(), "command")

    def test_sessions(self):
        r = h.run_ferry(["sessions", "--json"], self.d.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = {row["session"]: row for row in map(json.loads, r.stdout.splitlines())}
        self.assertEqual(rows["q1"]["events"], 120)
        self.assertEqual(rows["q1"]["failures"], 60)  # exit_status != 0
        self.assertEqual(rows["q1"]["state"], "open")
        self.assertEqual(rows["c1"]["events"], 2)
        self.assertEqual(rows["c1"]["failures"], 1)  # PostToolUseFailure
        self.assertEqual(rows["c1"]["state"], "ended")
        r = h.run_ferry(["sessions", "--source", "claude-code", "--since", "1h"], self.d.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("c1", r.stdout)
        self.assertNotIn("q1", r.stdout)
        r = h.run_ferry(["sessions", "--since", "yesterday"], self.d.env())
        self.assertEqual(r.returncode, 2)

    def test_status_store_section(self):
        st = self.d.status()["store"]
        for key in ("cursor", "lag_events", "db_bytes", "last_batch_events", "last_batch_ms",
                    "rows", "duplicates", "rebuilding", "rebuild_progress"):
            self.assertIn(key, st)
        self.assertGreater(st["db_bytes"], 0)


class DuplicateAndIdleTest(unittest.TestCase):
    def send_one_id_twice(self, d):
        """Sends an event twice (same id) and another one; returns the caught-up status."""
        ev = h.make_event(source="bash", kind="command", session="dup")
        c = d.client()
        self.assertEqual(c.send_event(ev)[0], h.ACK)
        self.assertEqual(c.send_event(ev)[0], h.ACK)
        self.assertEqual(c.send_event(h.make_event(source="bash", kind="x"))[0], h.ACK)
        c.close()
        return wait_store_caught_up(d)

    def test_duplicate_ids_are_counted_not_stored(self):
        # The ingest dedupe window drops a repeated id before the journal; with the window off,
        # the duplicate reaches the journal and the store must skip and count it, not wedge.
        with h.daemon(config="[spool]\ndedupe_window = 0\n" + FAST) as d:
            st = self.send_one_id_twice(d)
            self.assertEqual(st["ingest"]["duplicates_total"], 0)
            self.assertEqual(st["store"]["duplicates"], 1)
            self.assertEqual(st["store"]["rows"], 2)

    def test_ingest_dedupe_window_drops_a_repeated_id_before_the_store(self):
        with h.daemon(config=FAST) as d:
            st = self.send_one_id_twice(d)
            self.assertEqual(st["ingest"]["duplicates_total"], 1)
            self.assertEqual(st["store"]["duplicates"], 0)
            self.assertEqual(st["store"]["rows"], 2)

    def test_idle_session_closes(self):
        with h.daemon(config=FAST + 'session_idle_timeout = "1s"\n') as d:
            self.assertEqual(d.emit("--source", "zsh", "--kind", "command", "--session", "z").returncode, 0)
            deadline = time.monotonic() + h.HANG_GUARD_S
            while True:
                r = h.run_ferry(["sessions", "--json"], d.env())
                rows = [json.loads(l) for l in r.stdout.splitlines()]
                if rows and rows[0]["state"] == "idle":
                    break
                self.assertLess(time.monotonic(), deadline, r.stdout + r.stderr)
                time.sleep(0.05)

    def test_events_older_than_retain_age_are_deleted_and_the_journal_is_not(self):
        with h.daemon(config=FAST + 'retain_age = "1s"\n') as d:
            c = d.client()
            for _ in range(3):
                self.assertEqual(c.send_event(h.make_event(source="bash", kind="command"))[0],
                                 h.ACK)
            c.close()
            wait_store_caught_up(d)
            # Maintenance runs every second; a row is due once it is a second old.
            st = d.wait_for(lambda st: st["store"]["retention_deleted"] == 3,
                            "the three rows to age out")
            self.assertEqual(st["store"]["rows"], 0)
            self.assertEqual(st["store"]["cursor"], 3)
            events, _, cursor = read_db(d)
            self.assertEqual((events, int(cursor)), ([], 3))
            # Events-table retention never touches the journal.
            self.assertEqual([r.seq for r in d.journal()], [1, 2, 3])


class StoreAsConsumerTest(unittest.TestCase):
    def test_segments_the_store_has_applied_stay_in_the_journal(self):
        # Issue 12: the journal is kept up to journal.max_bytes whatever the store has applied
        # (docs/journal-format.md, "Retention"); before, applied segments were deleted.
        with h.daemon(config=FAST + '[journal]\nsegment_size = 4096\n') as d:
            with d.client() as c:
                for _ in range(60):
                    c.ack(h.make_event(source="bash", kind="command", payload="z" * 100))
            st = wait_store_caught_up(d)
            segments, n = st["journal"]["segments"], 60
            self.assertGreater(segments, 1)
            # A roll runs retention; this one comes after the store applied the first 60.
            with d.client() as c:
                while d.status()["journal"]["segments"] == segments:
                    c.ack(h.make_event(source="bash", kind="command", payload="z" * 100))
                    n += 1
            st = wait_store_caught_up(d)
            self.assertEqual(st["consumers"], [{"name": "store", "cursor": n, "lost": 0}])
            self.assertEqual((st["journal"]["oldest_seq"], st["journal"]["deleted_segments"],
                              st["journal"]["segments"]), (1, 0, segments + 1))
            self.assertEqual((st["lost_events"], st["healthy"]), (0, True))
            self.assertEqual([r.seq for r in d.journal()], list(range(1, n + 1)))
            events, _, cursor = read_db(d)
            self.assertEqual(([e[0] for e in events], int(cursor)), (list(range(1, n + 1)), n))

if __name__ == "__main__":
    unittest.main()
