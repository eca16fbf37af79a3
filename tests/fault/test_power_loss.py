"""Power loss, simulated inside a real ferryd: FERRY_TEST_FAULTS power_loss=SIGUSR2 routes every
journal, cursor, spool and dead-letter write through the fault file system, and on the signal
puts the disk back to what was synced (unsynced bytes, unsynced new files and renames are
dropped; daemon/base/fault_injection.h) and exits 137, while clients stream. SQLite's own writes are
not cut, so ferry.db can end up ahead of the journal, which is the case recovery must handle.

Asserted after every restart, with fsync = "always" (every ack waits for its fdatasync):
  - every acked event is in the journal at its acked seq, with its id (nothing acked lost);
  - no seq ever names two different events, across all rounds, in the journal or in the store
    (no seq reused, even when the store had applied records the power loss took away);
  - the store holds every journal event at the journal's seq once it has caught up.
With fsync = "interval", only durable acks must survive, and a plain ack's seq that no
consumer persisted may be handed out again after a power loss (nothing on disk knows it);
every seq the journal or ferry.db has held is still never reused.
Rounds: FERRY_POWER_LOSS_ROUNDS (default 3; run 50+ by hand)."""

import json
import os
import signal
import time
import unittest

import ferry_harness as h
from test_crash import Streamer

ROUNDS = int(os.environ.get("FERRY_POWER_LOSS_ROUNDS", "3"))
ACKS_PER_ROUND = 800
CONFIG = ('[journal]\nfsync = "always"\nsegment_size = "16KiB"\n'
          '[store]\nbatch_interval = "10ms"\nquery_max_rows = 100000\n')


class PowerLossTest(unittest.TestCase):
    maxDiff = 3000

    def store_rows(self, d):
        r = h.run_ferry(["query", "--json", "select seq, id from events order by seq"], d.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        return [(row["seq"], row["id"]) for row in map(json.loads, r.stdout.splitlines())]

    def wait_store(self, d, last):
        d.wait_for(lambda st: st["store"]["cursor"] >= last, "the store at seq %d" % last)

    def test_fsync_always_every_ack_survives_and_no_seq_is_reused(self):
        streamers = [("durable%d" % i, {"durable": True}) for i in range(3)] + \
                    [("plain", {"expect_durable": True}), ("batch", {"batch": 20, "durable": True})]
        self.rounds(CONFIG, streamers, must_survive=lambda name: True)

    def test_fsync_interval_durable_acks_survive_and_no_seq_is_reused(self):
        # Plain acks under fsync "interval" may be lost by a power loss (they were only
        # written), and the store has often applied them: recovery must then continue above
        # the store's cursor instead of handing those seqs to new events.
        # 1 MiB segments: a closed segment is synced at once, so the unsynced tail (what a
        # power loss takes) is the active segment's.
        config = CONFIG.replace('fsync = "always"', 'fsync = "interval"\nfsync_interval = "2s"')
        config = config.replace('segment_size = "16KiB"', 'segment_size = "1MiB"')
        streamers = [("durable%d" % i, {"durable": True}) for i in range(2)] + \
                    [("plain%d" % i, {}) for i in range(2)] + [("batch", {"batch": 20})]
        self.rounds(config, streamers, must_survive=lambda name: "durable" in name)

    def rounds(self, config, streamers, must_survive):
        d = h.Daemon(config=config, env={"FERRY_TEST_FAULTS": "power_loss=SIGUSR2"})
        self.addCleanup(d.close)
        d.start()
        self.assertIn("test fault injection armed: power_loss=SIGUSR2", d.log())
        acked = {}      # id -> seq, every ack that had to survive
        seq_owner = {}  # seq -> id, every seq ever seen holding an event
        for rnd in range(ROUNDS):
            threads = [Streamer(d, "r%d-%s" % (rnd, name), **kw) for name, kw in streamers]
            for t in threads:
                t.start()
            deadline = time.monotonic() + h.HANG_GUARD_S
            while sum(len(t.acked) for t in threads) < ACKS_PER_ROUND:
                self.assertTrue(all(t.is_alive() for t in threads), [t.bad_reply for t in threads])
                self.assertLess(time.monotonic(), deadline, "streamers stalled")
                time.sleep(0.001)
            self.assertEqual(d.stop(signal.SIGUSR2), 137, d.last_log()[-3000:])
            for t in threads:
                t.join(h.HANG_GUARD_S)
                self.assertIsNone(t.bad_reply)
                if must_survive(t.name):
                    acked.update(t.acked)

            d.start()
            records = d.journal(segment_gaps=True)
            self.assertTrue(all(a.seq < b.seq for a, b in zip(records, records[1:])))
            by_id = {}
            for r in records:
                ev = r.body
                by_id[ev["id"]] = r.seq
                owner = seq_owner.setdefault(r.seq, ev["id"])
                self.assertEqual(owner, ev["id"], "seq %d reused after a power loss" % r.seq)
            # Retention may have deleted the oldest segments (journal.max_bytes), so check the
            # acked events the journal covers, then the store for all.
            oldest = records[0].seq if records else d.status()["journal"]["last_seq"] + 1
            lost = {i: s for i, s in acked.items() if s >= oldest and by_id.get(i) != s}
            self.assertEqual(lost, {}, "acked events lost or moved in the journal")

            # The store (ahead of the journal or not) agrees with the journal, seq for seq.
            self.wait_store(d, d.status()["journal"]["last_seq"])
            rows = self.store_rows(d)
            for seq, ident in rows:
                owner = seq_owner.setdefault(seq, ident)
                self.assertEqual(owner, ident, "store seq %d holds another event" % seq)
            store_seq = {ident: seq for seq, ident in rows}
            self.assertEqual(set(by_id) - set(store_seq), set(), "journal events not in the store")
            lost = {i: (s, store_seq.get(i)) for i, s in acked.items() if store_seq.get(i) != s}
            self.assertEqual(lost, {}, "acked events lost or moved in the store")

        # New events after the last power loss get seqs above everything ever handed out.
        r = d.emit("--source", "after", "--kind", "k", "--durable", "--print-ack",
                   "--timeout-ms", "30000")
        self.assertEqual(r.returncode, 0, r.stderr)
        new_seq = int(r.stdout.split()[-1]) if r.stdout.strip() else None
        self.assertIsNotNone(new_seq, r.stdout)
        self.assertGreater(new_seq, max(seq_owner))


if __name__ == "__main__":
    unittest.main()
