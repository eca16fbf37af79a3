"""`cmake --install` of the build under test (the build directory FERRYD was built in) into a
temporary prefix: every file lands under that prefix (including the systemd user units, whose
ExecStart= names <prefix>/bin/ferryd), with every doc, the man pages and the shell
completions. Also: the unit directory override (cmake/FerryInstallUnits.cmake), and the man
pages themselves: groff finds nothing to warn about, and they name every command, option and
config key the binaries have.
"""

import os
import re
import shutil
import subprocess
import unittest

import ferry_harness as h

SOURCE = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CMAKE = os.environ.get("CMAKE") or shutil.which("cmake")
MAN = os.path.join(SOURCE, "docs", "man")


def build_dir():
    """The build directory FERRYD belongs to (<build>/daemon/ferryd), or None."""
    d = os.path.dirname(os.path.dirname(os.path.realpath(h.FERRYD)))
    return d if os.path.exists(os.path.join(d, "CMakeCache.txt")) else None


def cmake_install(prefix, destdir=None):
    """Runs `cmake --install <build> --prefix <prefix>`; returns (every path it reported
    installing, the CompletedProcess)."""
    env = {k: v for k, v in os.environ.items() if k != "DESTDIR"}
    if destdir:
        env["DESTDIR"] = destdir
    r = subprocess.run([CMAKE, "--install", build_dir(), "--prefix", prefix], env=env,
                       capture_output=True, text=True, timeout=h.HANG_GUARD_S * 5)
    paths = re.findall(r"^-- (?:Installing|Up-to-date): (.*)$", r.stdout, re.M)
    return paths, r


def files_under(root):
    out = set()
    for d, _, names in os.walk(root):
        out.update(os.path.join(d, n) for n in names)
    return out


def help_commands():
    """The commands `ferry --help` lists: words indented by two spaces under "commands:" (a
    description's continuation line is indented further)."""
    r = subprocess.run([h.FERRY, "--help"], capture_output=True, text=True, timeout=h.HANG_GUARD_S)
    block = r.stdout.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.splitlines()
            if line.startswith("  ") and not line.startswith("   ")]


def help_options(text):
    """The options a --help text defines: those in its usage lines, and those an indented line
    starts with ("  -f, --follow   ..."). Options merely named in prose are not counted."""
    opts = set()
    in_usage = False
    for line in text.splitlines():
        if line.startswith("usage:"):
            in_usage = True
        elif not line.strip():
            in_usage = False
        if in_usage:
            opts.update(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", line))
            continue
        for token in line.split():
            token = token.rstrip(",")
            if not re.match(r"^--?[A-Za-z][\w-]*$", token):
                break
            opts.add(token)
    return opts


def man_text(name):
    with open(os.path.join(MAN, name)) as f:
        return f.read()


def man_sections(text):
    """{heading: body} for every .SH and .SS of a man page (headings unquoted)."""
    out = {}
    heading = None
    for line in text.splitlines():
        m = re.match(r"^\.S[HS] (.*)$", line)
        if m:
            heading = m.group(1).strip('"')
            out[heading] = ""
        elif heading is not None:
            out[heading] += line + "\n"
    return out


def roff(option):
    return option.replace("-", "\\-")


@unittest.skipUnless(CMAKE, "cmake is not installed")
class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not build_dir():
            raise unittest.SkipTest("FERRYD=%s is not in a CMake build directory" % h.FERRYD)
        cls.root = h.make_tempdir()
        cls.prefix = os.path.join(cls.root, "prefix")
        cls.paths, cls.result = cmake_install(cls.prefix)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def setUp(self):
        self.assertEqual(self.result.returncode, 0, self.result.stdout + self.result.stderr)

    def path(self, *parts):
        return os.path.join(self.prefix, *parts)

    def test_every_file_is_under_the_prefix(self):
        outside = [p for p in self.paths if not p.startswith(self.prefix + "/")]
        self.assertEqual(outside, [], self.result.stdout)
        self.assertEqual(set(self.paths), files_under(self.prefix))

    def test_the_units_follow_the_prefix(self):
        unit_dir = self.path("lib", "systemd", "user")
        self.assertEqual(sorted(os.listdir(unit_dir)), ["ferryd.service", "ferryd.socket"])
        with open(os.path.join(unit_dir, "ferryd.service")) as f:
            service = f.read()
        with open(os.path.join(unit_dir, "ferryd.socket")) as f:
            socket_unit = f.read()
        self.assertEqual(re.findall(r"^ExecStart=.*$", service, re.M),
                         ["ExecStart=%s/bin/ferryd" % self.prefix])
        for text in (service, socket_unit):
            self.assertEqual(re.findall(r"^Documentation=.*$", text, re.M),
                             ["Documentation=file://%s/share/doc/ferry/operations.md"
                              % self.prefix])
            self.assertNotIn("@", text)  # every placeholder filled in
        self.assertIn("\nListenStream=%t/ferry/ferry.sock\n", socket_unit)
        self.assertTrue(os.access(self.path("bin", "ferryd"), os.X_OK))

    def test_the_installed_binaries_run(self):
        for name in ("ferry", "ferryd"):
            r = subprocess.run([self.path("bin", name), "--version"], capture_output=True,
                               text=True, timeout=h.HANG_GUARD_S)
            self.assertEqual((r.returncode, r.stderr), (0, ""))
            self.assertRegex(r.stdout, r"^%s \d+\.\d+\.\d+\n$" % name)

    def test_every_doc(self):
        docs = sorted(n for n in os.listdir(os.path.join(SOURCE, "docs")) if n.endswith(".md"))
        self.assertGreaterEqual(len(docs), 11)
        self.assertEqual(sorted(os.listdir(self.path("share", "doc", "ferry"))),
                         sorted(docs + ["README.md"]))

    def test_man_pages(self):
        for section, name in (("man1", "ferry.1"), ("man5", "ferry.toml.5"),
                              ("man8", "ferryd.8")):
            with open(self.path("share", "man", section, name)) as f:
                self.assertEqual(f.read(), man_text(name))

    def test_completions_are_what_ferry_completions_prints(self):
        for shell, path in (("bash", ("bash-completion", "completions", "ferry")),
                            ("zsh", ("zsh", "site-functions", "_ferry")),
                            ("fish", ("fish", "vendor_completions.d", "ferry.fish"))):
            r = h.run_ferry(["completions", shell], h.clean_env())
            self.assertEqual((r.returncode, r.stderr), (0, ""))
            with open(self.path("share", *path)) as f:
                self.assertEqual(f.read(), r.stdout, shell)

    def test_the_installed_ferry_writes_units_for_the_installed_ferryd(self):
        """`ferry service install` from the installed ferry names the ferryd and the docs
        beside it, not the configured prefix."""
        home = os.path.join(self.root, "home")
        env = h.clean_env(HOME=home, XDG_CONFIG_HOME=os.path.join(home, "config"))
        r = subprocess.run([self.path("bin", "ferry"), "service", "install", "--dry-run"],
                           env=env, capture_output=True, text=True, timeout=h.HANG_GUARD_S)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertIn("\nExecStart=%s\n" % self.path("bin", "ferryd"), r.stdout)
        self.assertEqual(re.findall(r"^Documentation=.*$", r.stdout, re.M),
                         ["Documentation=file://%s/operations.md"
                          % self.path("share", "doc", "ferry")] * 2)

    def test_destdir_stages_the_prefix_without_changing_the_paths_inside(self):
        """A packager's `DESTDIR=stage cmake --install --prefix /usr`: files go below the
        stage, units still name the final /usr path."""
        stage = os.path.join(self.root, "stage")
        prefix = "/opt/ferry-install-test"
        paths, r = cmake_install(prefix, destdir=stage)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual([p for p in paths if not p.startswith(stage + prefix + "/")], [])
        self.assertEqual(set(paths), files_under(stage))
        self.assertFalse(os.path.exists(prefix))
        with open(stage + prefix + "/lib/systemd/user/ferryd.service") as f:
            self.assertIn("\nExecStart=%s/bin/ferryd\n" % prefix, f.read())


@unittest.skipUnless(CMAKE, "cmake is not installed")
class UnitDirTest(unittest.TestCase):
    """cmake/FerryInstallUnits.cmake, as `cmake --install` runs it, with each kind of
    FERRY_SYSTEMD_USER_UNIT_DIR."""

    def install_units(self, unit_dir):
        root = h.make_tempdir()
        self.addCleanup(shutil.rmtree, root, True)
        prefix = os.path.join(root, "p")
        r = subprocess.run([CMAKE, "-DCMAKE_INSTALL_PREFIX=" + prefix,
                            "-DFERRY_UNIT_TEMPLATES=" + os.path.join(SOURCE, "systemd"),
                            "-DFERRY_UNIT_WORK_DIR=" + os.path.join(root, "work"),
                            "-DFERRY_UNIT_DIR=" + unit_dir.replace("ROOT", root),
                            "-DFERRY_BINDIR=bin", "-DFERRY_DOCDIR=share/doc/ferry",
                            "-P", os.path.join(SOURCE, "cmake", "FerryInstallUnits.cmake")],
                           capture_output=True, text=True, timeout=h.HANG_GUARD_S)
        self.assertEqual(r.returncode, 0, r.stderr)
        installed = {p.replace(root, "ROOT")
                     for p in re.findall(r"^-- Installing: (.*)$", r.stdout, re.M)}
        with open(os.path.join(root, "work", "ferryd.service")) as f:
            self.assertIn("\nExecStart=%s/bin/ferryd\n" % prefix, f.read())
        return installed

    def test_default_relative_and_absolute(self):
        self.assertEqual(self.install_units(""),
                         {"ROOT/p/lib/systemd/user/ferryd.service",
                          "ROOT/p/lib/systemd/user/ferryd.socket"})
        self.assertEqual(self.install_units("share/systemd/user"),
                         {"ROOT/p/share/systemd/user/ferryd.service",
                          "ROOT/p/share/systemd/user/ferryd.socket"})
        self.assertEqual(self.install_units("ROOT/units"),
                         {"ROOT/units/ferryd.service", "ROOT/units/ferryd.socket"})


@unittest.skipUnless(CMAKE, "cmake is not installed")
class OldBuildDirTest(unittest.TestCase):
    """A build directory configured before the units followed the install-time prefix cached
    the old computed default (absolute): configuring it again forgets that default, so a later
    `cmake --install --prefix` stays in its prefix, and keeps any other value."""

    OLD_HELP = "//Where `cmake --install` puts ferryd.service and ferryd.socket\n"

    def configure(self, cache=None, args=()):
        build = h.make_tempdir()
        self.addCleanup(shutil.rmtree, build, True)
        home = os.path.join(build, "home")
        if cache is not None:
            with open(os.path.join(build, "CMakeCache.txt"), "w") as f:
                f.write(cache.replace("HOME", home))
        r = subprocess.run([CMAKE, "-S", SOURCE, "-B", build, "-DFERRY_BUILD_TESTS=OFF",
                            "-DFERRY_BUILD_BENCH=OFF"] + [a.replace("HOME", home) for a in args],
                           env=h.clean_env(HOME=home), capture_output=True, text=True,
                           timeout=h.HANG_GUARD_S * 5)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            values = re.findall(r"^FERRY_SYSTEMD_USER_UNIT_DIR:PATH=(.*)$", f.read(), re.M)
        return [v.replace(home, "HOME") for v in values], build

    def test_old_defaults_are_forgotten_other_values_kept(self):
        for old, now in (("/usr/local/lib/systemd/user", ""),
                         ("HOME/.config/systemd/user", ""),
                         ("/srv/units", "/srv/units")):
            with self.subTest(old=old):
                values, _ = self.configure(
                    self.OLD_HELP + "FERRY_SYSTEMD_USER_UNIT_DIR:PATH=%s\n" % old)
                self.assertEqual(values, [now])

    def test_a_value_given_now_is_kept(self):
        values, build = self.configure(args=["-DFERRY_SYSTEMD_USER_UNIT_DIR="
                                             "HOME/.config/systemd/user"])
        self.assertEqual(values, ["HOME/.config/systemd/user"])
        r = subprocess.run([CMAKE, build], capture_output=True, text=True,
                           timeout=h.HANG_GUARD_S * 5)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            self.assertIn("FERRY_SYSTEMD_USER_UNIT_DIR:PATH=%s/home/.config/systemd/user\n"
                          % build, f.read())


class ManPagesTest(unittest.TestCase):
    PAGES = ("ferry.1", "ferryd.8", "ferry.toml.5")

    def test_no_formatter_warnings(self):
        checked = 0
        for tool, args in (("groff", ["-man", "-ww", "-z"]), ("mandoc", ["-Tlint", "-Wwarning"])):
            if not shutil.which(tool):
                continue
            for page in self.PAGES:
                r = subprocess.run([tool] + args + [os.path.join(MAN, page)],
                                   capture_output=True, text=True, timeout=h.HANG_GUARD_S)
                self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""),
                                 "%s %s" % (tool, page))
                checked += 1
        if not checked:
            self.skipTest("neither groff nor mandoc is installed (Debian package groff-base)")

    def test_ferry_1_names_every_command_and_option(self):
        sections = man_sections(man_text("ferry.1"))
        common = sections["OPTIONS"]
        commands = help_commands()
        self.assertIn("completions", commands)
        for cmd in commands:
            with self.subTest(command=cmd):
                heading = [s for s in sections if s.startswith("ferry %s" % cmd)]
                self.assertEqual(len(heading), 1, "no .SS \"ferry %s ...\" in ferry.1" % cmd)
                body = heading[0] + "\n" + sections[heading[0]]
                r = h.run_ferry([cmd, "--help"], h.clean_env())
                self.assertEqual(r.returncode, 0, r.stderr)
                options = help_options(r.stdout)
                missing = sorted(o for o in options if roff(o) not in body and
                                 roff(o) not in common)
                self.assertEqual(missing, [], "ferry %s --help options not in ferry.1" % cmd)

    def test_ferryd_8_names_every_option(self):
        r = subprocess.run([h.FERRYD, "--help"], capture_output=True, text=True,
                           timeout=h.HANG_GUARD_S)
        self.assertEqual(r.returncode, 0)
        body = man_sections(man_text("ferryd.8"))["OPTIONS"]
        options = help_options(r.stdout)
        self.assertIn("--check-config", options)
        self.assertEqual(sorted(o for o in options if roff(o) not in body), [])

    def test_ferry_toml_5_names_every_config_key(self):
        """Every key config.cc's setters accept (but the test-only ones), under its table."""
        with open(os.path.join(SOURCE, "daemon", "config", "config.cc")) as f:
            # {"journal.fsync", String(...)}: a key, then its setter (or the headers lambda).
            keys = re.findall(r'\{"([a-z_]+(?:\.[a-z_]+)*)",\s*(?:[A-Z]\w*\(|headers\})',
                              f.read())
        keys = [k for k in keys if "test_" not in k]
        self.assertIn("journal.fsync", keys)
        self.assertIn("sink.url", keys)
        sections = man_sections(man_text("ferry.toml.5"))
        missing = []
        for key in keys:
            table, _, leaf = key.rpartition(".")
            heading = {"": "TOP\\-LEVEL KEYS", "sink": "[[sink]]",
                       "redact.rule": "[[redact.rule]]"}.get(table, "[%s]" % table)
            if "\n.B %s\n" % leaf not in "\n" + sections.get(heading, ""):
                missing.append(key)
        self.assertEqual(missing, [])


if __name__ == "__main__":
    unittest.main()
