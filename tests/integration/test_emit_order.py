"""The hook path's code sits together at the start of the static client's .text
(client/emit.order, scripts/emit-order, docs/benchmarks.md "Where a hook's time goes").

lld places every function listed in client/emit.order first; the list names functions by
their mangled names, so a rename silently drops one from the hook path's pages. These tests
fail when the list has gone stale (most of its ferry functions no longer exist) or when the
release client was linked without it. They read the binary (nm, readelf); nothing is timed.
"""

import os
import re
import subprocess
import unittest

import ferry_harness as h

ORDER_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "client",
                          "emit.order")
# The functions every `ferry emit` runs, as they are declared (mangled names change with
# signatures; these are matched by their demangled prefix).
HOOK_PATH = [
    "ferry::client::RunEmit(",
    "ferry::client::EmitEvent(",
    "ferry::client::ParseEmitArgs(",
    "ferry::client::Connection::Connect(",
    "ferry::client::Connection::SendFrameParts(",
    "ferry::client::Connection::Receive(",
    "ferry::proto::BuildEventBodyParts(",
    "ferry::proto::ScanPayloadJson(",
    "ferry::proto::ParseAckBody(",
]


def linked_by_lld(binary):
    out = subprocess.run(["readelf", "-p", ".comment", binary], capture_output=True,
                         text=True).stdout
    return "LLD" in out


def symbols(binary, demangle=False):
    """name -> address of the binary's functions."""
    args = ["nm", "-C"] if demangle else ["nm"]
    out = subprocess.run(args + [binary], capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in out.splitlines():
        m = re.match(r"^([0-9a-f]+) ([tTWi]) (.+)$", line)
        if m:
            syms[m.group(3)] = int(m.group(1), 16)
    return syms


def text_section(binary):
    out = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        m = re.search(r"\]\s+\.text\s+PROGBITS\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if m:
            return int(m.group(1), 16), int(m.group(2), 16)
    raise AssertionError("no .text in " + binary)


class EmitOrderTest(unittest.TestCase):
    def setUp(self):
        if not linked_by_lld(h.FERRY):
            self.skipTest("this ferry was not linked by lld with client/emit.order "
                          "(sanitizer build, or no lld: scripts/setup installs it)")

    def test_the_order_file_names_functions_that_exist(self):
        with open(ORDER_FILE) as f:
            listed = [l.strip() for l in f if l.strip() and not l.startswith("#")]
        ours = [name for name in listed if name.startswith("_ZN5ferry")]
        self.assertGreater(len(ours), 20, "client/emit.order lists too few ferry functions")
        present = symbols(h.FERRY)
        missing = [name for name in ours if name not in present]
        self.assertLessEqual(len(missing), len(ours) // 10,
                             "client/emit.order is stale (run scripts/emit-order): %d of %d "
                             "ferry functions are gone, e.g. %s" %
                             (len(missing), len(ours), missing[:3]))

    def test_the_hook_path_is_at_the_start_of_text(self):
        start, size = text_section(h.FERRY)
        self.assertGreater(size, 1 << 20)  # the whole client: the hook path is a small part
        syms = symbols(h.FERRY, demangle=True)
        for prefix in HOOK_PATH:
            # GCC moves the error paths of a function into "[clone .cold]" parts, elsewhere
            # on purpose; the function itself is what runs.
            found = [addr for name, addr in syms.items()
                     if name.startswith(prefix) and "::{lambda" not in name and
                     not name.endswith("[clone .cold]")]
            self.assertTrue(found, prefix + " not in the binary")
            for addr in found:
                # The listed functions and their neighbours take ~330 KiB today.
                self.assertLess(addr - start, 512 * 1024,
                                "%s is %d KiB into .text: client/emit.order did not apply "
                                "(run scripts/emit-order)" % (prefix, (addr - start) // 1024))


if __name__ == "__main__":
    unittest.main()
