#!/usr/bin/env python3
# Rebuild benchmark (docs/benchmarks-store.md): 1,000,000 events into one large segment,
# then ferry.db deleted and rebuilt from the journal; prints the time and the progress seen.
# Run from tests/integration with FERRYD and FERRY set, e.g.
#   cd tests/integration && FERRYD=../../build/release/daemon/ferryd FERRY=../../build/release/client/ferry python3 ../../bench/rebuild_bench.py
import os, time, sys
sys.path.insert(0, ".")
import ferry_harness as h
n = 1000000
d = h.Daemon(config="[journal]\nsegment_size = \"1GiB\"\n")
d.start()
t0 = time.time()
with d.client() as c:
    for b in range(n // 1000):
        t, body = c.send_batch([{"id": "%08x%024x" % (b, i), "ts": 1, "source": "bulk", "kind": "k"} for i in range(1000)])
        assert t == h.ACK, body
t1 = time.time()

while d.status()["store"]["cursor"] != n: time.sleep(0.5)
t2 = time.time()
d.stop()
db = os.path.join(d.state_dir, "ferry.db")
for s in ("", "-wal", "-shm"):
    if os.path.exists(db + s): os.unlink(db + s)
d.start()
t3 = time.time()
seen = []
while True:
    st = d.status()["store"]
    if st["rebuilding"]: seen.append(round(st["rebuild_progress"], 2))
    if st["cursor"] == n and not st["rebuilding"]: break
    time.sleep(1)
t4 = time.time()
print("ingest %.1fs, store caught up %.1fs, rebuild %.1fs (%.0f rows/s)" % (t1-t0, t2-t0, t4-t3, n/(t4-t3)))
print("status rebuild_progress samples:", seen[:12])
print("\n".join(l for l in d.last_log().splitlines() if "rebuild" in l))
d.close()
