"""[redact] local is on by default: what ferry stores has the secrets redacted, numbers and
all other bytes kept; `local = false` opts out and stores events exactly as sent."""

import json
import subprocess
import unittest

import ferry_harness as h
import test_event_fidelity as fidelity

# Secrets as numbers and arrays under secret keys, next to numbers that must keep their digits.
SENT = (b'{"n":123456789012345678901234567890,"password":12345,"f":[1.50,1E2],'
        b'"db":{"Password":[1,[2,{"x":3}]],"port":5432},"api_key":[],"pin":7,'
        b'"cmd":"mysql_pw=hunter2 git clone https://al:s3cr3t@h/r","token":null}')
STORED = (b'{"n":123456789012345678901234567890,"password":"[REDACTED:secret-pair]",'
          b'"f":[1.50,1E2],"db":{"Password":"[REDACTED:secret-pair]","port":5432},'
          b'"api_key":[],"pin":7,"cmd":"mysql_pw=[REDACTED:secret-pair] git clone '
          b'https://al:[REDACTED:url-credentials]@h/r","token":null}')


class RedactDefaultTest(unittest.TestCase):
    def run_daemon(self, config):
        d = h.Daemon(config=config)
        self.addCleanup(d.close)
        d.start()
        r = subprocess.run([h.FERRY, "emit", "--source", "red", "--kind", "k", "--data", SENT,
                            "--strict"], env=d.env(), capture_output=True, timeout=h.HANG_GUARD_S)
        self.assertEqual((r.returncode, r.stderr), (0, b""))
        (rec,) = d.journal(parse=False)
        d.wait_for(lambda st: st["store"]["cursor"] == 1, "the store")
        q = h.run_ferry(["query", "SELECT payload FROM events", "--json"], d.env())
        self.assertEqual(q.returncode, 0, q.stderr)
        return fidelity.FidelityTest.raw_payload(rec.body), json.loads(q.stdout)["payload"]

    def test_default_config_stores_redacted(self):
        journal, stored = self.run_daemon(None)
        self.assertEqual(journal, STORED)
        if isinstance(stored, str):  # query --json may give the payload as text
            stored = json.loads(stored)
        self.assertEqual(stored, json.loads(STORED))

    def test_local_false_stores_what_was_sent(self):
        journal, stored = self.run_daemon("[redact]\nlocal = false\n")
        self.assertEqual(journal, SENT)
        if isinstance(stored, str):
            stored = json.loads(stored)
        self.assertEqual(stored, json.loads(SENT))


if __name__ == "__main__":
    unittest.main()
