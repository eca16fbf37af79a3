"""The transcript archive (issue 13 §1, docs/archive.md), through a real ferryd and the real
`ferry emit` with hook payloads shaped like the fixtures' (tests/fixtures/hooks), pointing at
transcript files in a temp dir: what `ferry transcript` prints (exact bytes), what status
counts (exact numbers), which paths are refused, and that ferryd keeps answering meanwhile."""

import json
import os
import shutil
import sqlite3
import time
import unittest

import ferry_harness as h

CLAUDE = "3f2c9a1e-7b4d-4c1a-9e8f-2d6b5a0c7e41"
CODEX = "0199b3a4-6c1e-7d3f-9a85-4e2b1c0d9f37"
GEMINI = "5d1c2b3a-9f8e-4d7c-b6a5-0e1f2a3b4c5d"

USER1 = (b'{"type":"user","message":{"role":"user","content":"fix the spool"},'
         b'"timestamp":"2025-11-24T06:12:41.123Z"}\n')
ASSIST1 = (b'{"type":"assistant","message":{"role":"assistant","content":[{"type":"text",'
           b'"text":"Done."},{"type":"tool_use","id":"t1"}]},"timestamp":"2025-11-24T06:12:45Z"}\n')
USER2 = (b'{"type":"user","message":{"role":"user","content":[{"type":"tool_result",'
         b'"content":"ok"}]},"timestamp":"2025-11-24T06:12:46Z"}\n')
ASSIST2 = (b'{"type":"assistant","message":{"content":[{"type":"text","text":"All 4 pass \xe2\x9c\x85"}]},'
           b'"timestamp":"2025-11-24T06:12:50.5Z"}\n')


def payload(kind, session, path, **fields):
    p = {"session_id": session, "transcript_path": path, "cwd": "/home/dana/src/ferry",
         "hook_event_name": kind}
    p.update(fields)
    return json.dumps(p, separators=(",", ":")).encode()


def archive(st):
    return st["archive"]


class ArchiveTest(unittest.TestCase):
    def setUp(self):
        self.d = h.Daemon().start()
        self.tmp = os.path.join(self.d.root, "transcripts")
        os.mkdir(self.tmp)

    def tearDown(self):
        self.d.close()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write(self, name, data, mode="wb"):
        with open(self.path(name), mode) as f:
            f.write(data)

    def stop(self, source, session, path, kind="Stop", **fields):
        r = self.d.emit("--source", source, "--kind", kind, "--stdin",
                        input=payload(kind, session, path, **fields))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"")

    def wait_archive(self, pred, what):
        return archive(self.d.wait_for(lambda st: pred(archive(st)) and
                                       archive(st)["pending"] == 0, what))

    def wait_triggers(self, n):
        """Waits until the archive has handled n triggers (copied, refused or missing)."""
        return self.wait_archive(lambda a: a["triggers"] == n, "%d triggers handled" % n)

    def transcript(self, *args):
        # FERRY_FERRYD: when ferryd is down, the read-only ferryd `ferry` starts is this build's.
        return h.run_ferry(["transcript"] + list(args), self.d.env(FERRY_FERRYD=h.FERRYD),
                           input=b"")

    def test_stop_copies_then_only_new_bytes(self):
        self.write("c.jsonl", USER1 + ASSIST1)
        self.stop("claude-code", CLAUDE, self.path("c.jsonl"))
        a = self.wait_archive(lambda a: a["copies"] == 1, "the first copy")
        self.assertEqual(a["copied_bytes"], len(USER1 + ASSIST1))
        r = self.transcript(CLAUDE)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, USER1 + ASSIST1, b""))
        # Appended bytes (one line half written) are copied once, at the next Stop.
        self.write("c.jsonl", USER2 + ASSIST2[:20], "ab")
        self.stop("claude-code", CLAUDE, self.path("c.jsonl"))
        a = self.wait_archive(lambda a: a["copies"] == 2, "the second copy")
        self.write("c.jsonl", ASSIST2[20:], "ab")
        self.stop("claude-code", CLAUDE, self.path("c.jsonl"), kind="SessionEnd", reason="exit")
        a = self.wait_archive(lambda a: a["copies"] == 3, "the third copy")
        whole = USER1 + ASSIST1 + USER2 + ASSIST2
        self.assertEqual(a["copied_bytes"], len(whole))
        self.assertEqual((a["sessions"], a["generations"], a["missing"], a["refused"]), (1, 1, 0, 0))
        human = h.run_ferry(["status"], self.d.env()).stdout.splitlines()
        self.assertIn("  archive  1 session(s), %d B of 1.0 GiB; %d B copied since start; 0 missing, "
                      "0 refused, 0 evicted" % (a["stored_bytes"], len(whole)), human)
        # A Stop with nothing new copies nothing.
        self.stop("claude-code", CLAUDE, self.path("c.jsonl"))
        self.assertEqual(self.wait_triggers(4)["copies"], 3)
        # The prefix of the id is enough; --source too.
        for args in ([CLAUDE[:6]], [CLAUDE, "--source", "claude-code"]):
            r = self.transcript(*args)
            self.assertEqual((r.returncode, r.stdout), (0, whole), args)
        # The agent deletes its transcript: ferry still prints it.
        os.unlink(self.path("c.jsonl"))
        self.stop("claude-code", CLAUDE, self.path("c.jsonl"))
        a = self.wait_archive(lambda a: a["missing"] == 1, "the missing file counted")
        self.assertEqual(self.transcript(CLAUDE).stdout, whole)
        self.assertIn("transcript " + self.path("c.jsonl") + " does not exist", self.d.log())
        # Messages: user prompts and assistant text, not tool results or tool calls.
        db = sqlite3.connect(os.path.join(self.d.state_dir, "ferry.db"))
        rows = db.execute("SELECT source, session, ts, role, text FROM transcript_messages "
                          "ORDER BY id").fetchall()
        self.assertEqual(rows, [
            ("claude-code", CLAUDE, 1763964761123000000, "user", "fix the spool"),
            ("claude-code", CLAUDE, 1763964765000000000, "assistant", "Done."),
            ("claude-code", CLAUDE, 1763964770500000000, "assistant", "All 4 pass \u2705"),
        ])
        # ferry search finds what the assistant wrote (the user's words are indexed from
        # their prompt events instead), with the session and how to resume it.
        r = h.run_ferry(["search", "pass", "--json"], self.d.env(TZ="UTC"))
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        hits = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual([(x["seq"], x["ts"], x["source"], x["session"], x["kind"], x["match"],
                           x["snippet"]) for x in hits],
                         [(None, 1763964770500000000, "claude-code", CLAUDE, "transcript",
                           "assistant", "All 4 [pass] \u2705")])
        self.assertEqual(hits[0]["resume"], "cd %s && claude --resume %s" % (hits[0]["cwd"], CLAUDE))
        for args, rc in ((["--session", CLAUDE[:4]], 0), (["--source", "claude-code"], 0),
                         (["--source", "codex"], 1), (["--since", "1h"], 1)):
            r = h.run_ferry(["search", "pass", "--json"] + args, self.d.env())
            self.assertEqual((r.returncode, len(r.stdout.splitlines())), (rc, 1 - rc), args)
        r = h.run_ferry(["search", "spool"], self.d.env())
        self.assertEqual((r.returncode, r.stdout), (1, ""))

    def test_not_archived_and_usage(self):
        r = self.transcript("nosuch")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, b"")
        self.assertIn(b"no archived transcript for session nosuch", r.stderr)
        self.assertEqual(self.transcript().returncode, 2)
        self.assertEqual(self.transcript("a", "b").returncode, 2)
        self.assertEqual(self.transcript("a", "--bogus").returncode, 2)
        # Two sessions that start alike: ambiguous (2), each in full works.
        self.write("x1", b"one\n")
        self.write("x2", b"two\n")
        self.stop("claude-code", "same-1", self.path("x1"))
        self.stop("codex", "same-2", self.path("x2"))
        self.wait_archive(lambda a: a["copies"] == 2, "two copies")
        r = self.transcript("same")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"claude-code:same-1", r.stderr)
        self.assertIn(b"codex:same-2", r.stderr)
        self.assertEqual(self.transcript("same", "--source", "codex").stdout, b"two\n")
        self.assertEqual(self.transcript("same-1").stdout, b"one\n")

    def test_host_equivalents_and_subagent(self):
        # Codex Stop, Gemini AfterAgent/PreCompress, Claude PreCompact and SubagentStop (with
        # the agent's own transcript): each copies; other events do not.
        self.write("codex.jsonl", b'{"timestamp":"2025-11-24T06:12:41Z","type":"event_msg",'
                   b'"payload":{"type":"user_message","message":"add --durable"}}\n')
        self.write("gem.json", b'{"sessionId":"g","messages":[]}')
        self.write("main.jsonl", USER1)
        self.write("agent.jsonl", ASSIST1)
        self.stop("codex", CODEX, self.path("codex.jsonl"), turn_id="7")
        self.stop("gemini", GEMINI, self.path("gem.json"), kind="AfterAgent")
        self.stop("gemini", GEMINI, self.path("gem.json"), kind="BeforeAgent")
        self.stop("claude-code", CLAUDE, self.path("main.jsonl"), kind="SubagentStop",
                  agent_transcript_path=self.path("agent.jsonl"))
        self.stop("claude-code", CLAUDE, self.path("main.jsonl"), kind="UserPromptSubmit")
        a = self.wait_archive(lambda a: a["copies"] == 4, "four copies")
        self.assertEqual(self.transcript(CODEX).stdout, self.read("codex.jsonl"))
        self.assertEqual(self.transcript(GEMINI).stdout, b'{"sessionId":"g","messages":[]}')
        # Two paths of one session: a generation each, in the order first copied.
        self.assertEqual(self.transcript(CLAUDE).stdout, USER1 + ASSIST1)
        self.assertEqual(a["generations"], 4)
        # Gemini rewrites its JSON file: a new generation (the whole file again).
        self.write("gem.json", b'{"sessionId":"g","messages":[{"type":"user"}]}')
        self.stop("gemini", GEMINI, self.path("gem.json"), kind="PreCompress")
        self.wait_archive(lambda a: a["copies"] == 5, "gemini again")
        self.assertEqual(self.transcript(GEMINI).stdout,
                         b'{"sessionId":"g","messages":[]}'
                         b'{"sessionId":"g","messages":[{"type":"user"}]}')
        db = sqlite3.connect(os.path.join(self.d.state_dir, "ferry.db"))
        self.d.wait_for(lambda st: db.execute(
            "SELECT count(*) FROM transcript_messages").fetchone()[0] == 3, "messages")
        self.assertEqual(db.execute("SELECT source, role, text FROM transcript_messages "
                                    "ORDER BY source, role").fetchall(),
                         [("claude-code", "assistant", "Done."),
                          ("claude-code", "user", "fix the spool"),
                          ("codex", "user", "add --durable")])

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def test_truncated_or_rewritten_is_a_new_generation(self):
        self.write("c.jsonl", USER1 + ASSIST1)
        self.stop("claude-code", CLAUDE, self.path("c.jsonl"))
        self.wait_archive(lambda a: a["copies"] == 1, "first copy")
        self.write("c.jsonl", USER2)  # truncated (shorter)
        self.stop("claude-code", CLAUDE, self.path("c.jsonl"))
        self.wait_archive(lambda a: a["copies"] == 2, "truncated copy")
        # Rewritten: as long as before, different bytes before the copied offset.
        rewritten = USER2.replace(b"ok", b"OK") + ASSIST2
        self.write("c.jsonl", rewritten)
        self.stop("claude-code", CLAUDE, self.path("c.jsonl"))
        a = self.wait_archive(lambda a: a["copies"] == 3, "rewritten copy")
        self.assertEqual(a["generations"], 3)
        r = self.transcript(CLAUDE)
        self.assertEqual((r.returncode, r.stdout), (0, USER1 + ASSIST1 + USER2 + rewritten))
        gens = sorted(os.listdir(os.path.join(self.d.state_dir, "archive", "claude-code", CLAUDE)))
        self.assertEqual(gens, ["00000001.fta", "00000002.fta", "00000003.fta"])
        self.assertIn("was rewritten", self.d.log())

    def test_refused_paths_and_ferryd_answers(self):
        os.symlink(self.path("real.jsonl"), self.path("link.jsonl"))
        self.write("real.jsonl", USER1)
        os.mkfifo(self.path("fifo"))
        t0 = time.monotonic()
        # A file of another user's (ferryd runs as root in some CI containers: chown one).
        other = "/etc/passwd"
        if os.geteuid() == 0:
            other = self.path("other.jsonl")
            self.write("other.jsonl", USER1)
            os.chown(other, 65534, 65534)
        for i, p in enumerate([self.path("link.jsonl"), self.path("fifo"), "/dev/null",
                               self.tmp, "relative/t.jsonl", other]):
            self.stop("claude-code", "s%d" % i, p)
        a = self.wait_triggers(6)
        self.assertLess(time.monotonic() - t0, 30)  # the FIFO never blocked the archive
        self.assertEqual((a["refused"], a["copies"], a["sessions"], a["stored_bytes"]),
                         (6, 0, 0, 0))
        log = self.d.log()
        self.assertIn("not copying transcript %s: it is a symbolic link" % self.path("link.jsonl"),
                      log)
        self.assertIn("not copying transcript %s: not a regular file" % self.path("fifo"), log)
        self.assertIn("not copying transcript relative/t.jsonl: not an absolute path", log)
        self.assertIn("not copying transcript %s: owned by uid %d, not by ferryd's user"
                      % (other, os.stat(other).st_uid), log)
        # Logged once per path.
        self.stop("claude-code", "s1", self.path("fifo"))
        self.assertEqual(self.wait_triggers(7)["refused"], 7)
        self.assertEqual(self.d.log().count("not copying transcript %s:" % self.path("fifo")), 1)
        self.assertEqual(self.d.status()["daemon"]["pid"], self.d.proc.pid)
        self.assertEqual(self.transcript("s1").returncode, 1)

    def test_cap_evicts_oldest_sessions(self):
        self.d.close()
        self.d = h.Daemon(config="[archive]\nmax_bytes = \"1MiB\"\n").start()
        self.tmp = os.path.join(self.d.root, "transcripts")
        os.mkdir(self.tmp)
        # Incompressible bytes, so the stored size is about the copied size.
        blobs = [os.urandom(400 * 1024) for _ in range(3)]
        for i, blob in enumerate(blobs):
            self.write("t%d" % i, blob)
            self.stop("claude-code", "sess-%d" % i, self.path("t%d" % i))
            self.wait_archive(lambda a, i=i: a["copies"] == i + 1, "copy %d" % i)
        a = archive(self.d.status())
        self.assertEqual((a["sessions"], a["evicted_sessions"], a["max_bytes"]), (2, 1, 1 << 20))
        self.assertLessEqual(a["stored_bytes"], 1 << 20)
        self.assertEqual(self.transcript("sess-0").returncode, 1)
        self.assertEqual(self.transcript("sess-1").stdout, blobs[1])
        self.assertEqual(self.transcript("sess-2").stdout, blobs[2])
        self.assertIn("removed session sess-0 of claude-code", self.d.log())

    def test_big_transcript_pages_and_ferryd_down(self):
        # Over a page (1 MiB) and several frames; then ferryd stops and a read-only one answers.
        big = b"".join(b'{"type":"progress","n":%d,"pad":"%s"}\n' % (i, b"x" * (i % 300))
                       for i in range(20000))
        self.assertGreater(len(big), 3 << 20)
        self.write("big.jsonl", big)
        self.stop("claude-code", CLAUDE, self.path("big.jsonl"))
        self.wait_archive(lambda a: a["copies"] == 1, "the big copy")
        self.assertEqual(self.transcript(CLAUDE).stdout, big)
        self.assertEqual(self.d.stop(), 0)
        os.unlink(self.path("big.jsonl"))
        r = self.transcript(CLAUDE[:8])
        self.assertEqual((r.returncode, r.stdout == big, r.stderr), (0, True, b""))
        r = self.transcript("nosuch")
        self.assertEqual(r.returncode, 1)

    def test_torn_tail_and_corrupt_frame(self):
        self.write("c.jsonl", USER1)
        self.stop("claude-code", CLAUDE, self.path("c.jsonl"))
        self.wait_archive(lambda a: a["copies"] == 1, "first copy")
        self.write("c.jsonl", ASSIST1, "ab")
        self.stop("claude-code", CLAUDE, self.path("c.jsonl"))
        self.wait_archive(lambda a: a["copies"] == 2, "second copy")
        self.assertEqual(self.d.stop(), 0)
        gen = os.path.join(self.d.state_dir, "archive", "claude-code", CLAUDE, "00000001.fta")
        with open(gen, "rb") as f:
            good = f.read()
        # A torn tail (a copy cut by a kill): the last frame is ignored, silently.
        with open(gen, "wb") as f:
            f.write(good[:-5])
        r = self.transcript(CLAUDE)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, USER1, b""))
        # A flipped byte inside the last data frame: what comes before it prints, exit 1.
        bad = bytearray(good)
        bad[-3] ^= 0xFF
        with open(gen, "wb") as f:
            f.write(bytes(bad))
        r = self.transcript(CLAUDE)
        self.assertEqual((r.returncode, r.stdout), (1, USER1))
        self.assertRegex(r.stderr.decode(), r"^ferry: transcript: archive damaged: " + gen +
                         r": damaged frame at byte \d+ \(CRC mismatch\); the rest of generation 1 "
                         r"is not printed\n$")
        # ferryd cuts the torn tail on its next copy, and copies the bytes again.
        with open(gen, "wb") as f:
            f.write(good[:-5])
        self.d.start()
        self.stop("claude-code", CLAUDE, self.path("c.jsonl"))
        a = self.wait_archive(lambda a: a["copies"] == 1, "copy after the restart")
        self.assertEqual((a["stored_bytes"], a["sessions"]), (os.path.getsize(gen), 1))
        r = self.transcript(CLAUDE)
        self.assertEqual((r.returncode, r.stdout), (0, USER1 + ASSIST1))
        self.assertIn("cut a torn last frame", self.d.last_log())


if __name__ == "__main__":
    unittest.main()
