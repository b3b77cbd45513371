"""The deploy kit: what `meson install` puts where, whether the systemd
units point at it, whether the example configuration documents every
option, and the configuration file read by the real qbroker and qworker."""
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import BUILD, SOURCE, QBROKER, QWORKER, QCLIENT, wait_for  # noqa: E402

EXAMPLE = os.path.join(SOURCE, "deploy", "qjob.conf.example")
NOT_IN_FILE = {"help", "version", "config"}   # options a configuration file cannot set


def introspect(what):
    out = subprocess.run(["meson", "introspect", what, BUILD], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return json.loads(out)


def help_options(prog):
    """The long options a program's --help lists."""
    out = subprocess.run([prog, "--help"], capture_output=True, text=True, timeout=10,
                         check=True).stdout
    return set(re.findall(r"^\s+--([a-z][a-z0-9-]*)", out, re.M)) | \
        set(re.findall(r",\s+--([a-z][a-z0-9-]*)", out))


def example_keys():
    """{section: set of keys} of the example, commented-out ones included."""
    keys, section = {}, None
    with open(EXAMPLE) as f:
        for line in f:
            m = re.match(r"^\[([a-z]+)\]\s*$", line)
            if m:
                section = m.group(1)
                keys.setdefault(section, set())
                continue
            m = re.match(r"^#?([a-z][a-z0-9-]*) = ", line)
            if m:
                keys[section].add(m.group(1))
    return keys


def uncommented_example(path):
    """The example with every "#key = value" line made live."""
    with open(EXAMPLE) as f:
        text = re.sub(r"^#([a-z][a-z0-9-]* = )", r"\1", f.read(), flags=re.M)
    with open(path, "w") as f:
        f.write(text)


def read(path):
    """A file's text, or "" if it is not there (yet)."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


class InstallTest(unittest.TestCase):
    """meson install --destdir into a temp dir: the exact list of files."""

    @classmethod
    def setUpClass(cls):
        cls.dest = tempfile.mkdtemp(prefix="qjob-install-")
        r = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--destdir",
                            cls.dest], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            shutil.rmtree(cls.dest, ignore_errors=True)
            raise AssertionError("meson install failed:\n" + r.stdout[-3000:] + r.stderr[-3000:])
        opts = {o["name"]: o["value"] for o in introspect("--buildoptions")}
        cls.version = introspect("--projectinfo")["version"]
        cls.prefix = opts["prefix"]
        # A sanitized libqjob.so needs a program linked with the same runtime.
        sanitize = opts.get("b_sanitize", "none")
        cls.sanitize = [] if sanitize in ("none", "", []) else ["-fsanitize=" + (
            sanitize if isinstance(sanitize, str) else ",".join(sanitize))]

        def under(*parts):
            p = os.path.join(*parts)
            return p if os.path.isabs(p) else os.path.join(cls.prefix, p)
        cls.bindir = under(opts["bindir"])
        cls.libdir = under(opts["libdir"])
        cls.includedir = under(opts["includedir"])
        cls.mandir = under(opts["mandir"])
        cls.docdir = under(opts["datadir"], "doc", "qjob")
        cls.sysconfdir = under(opts["sysconfdir"])
        cls.unitdir = os.path.join(cls.prefix, "lib", "systemd", "system")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dest, ignore_errors=True)

    def d(self, path):
        """An installed path inside the destdir."""
        return self.dest + path

    def test_exact_file_list(self):
        want = {os.path.join(self.bindir, p) for p in ("qbroker", "qworker", "qclient")}
        want.add(os.path.join(self.includedir, "qjob.h"))
        want |= {os.path.join(self.libdir, p) for p in (
            "libqjob.so", "libqjob.so.0", "libqjob.so." + self.version)}
        want.add(os.path.join(self.libdir, "pkgconfig", "qjob.pc"))
        want |= {os.path.join(self.unitdir, u) for u in ("qbroker.service", "qworker@.service")}
        want.add(os.path.join(self.docdir, "qjob.conf.example"))
        if shutil.which("help2man"):
            want |= {os.path.join(self.mandir, "man1", p + ".1")
                     for p in ("qbroker", "qworker", "qclient")}
        got = set()
        for root, dirs, files in os.walk(self.dest):
            for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                got.add(os.path.join(root, name)[len(self.dest):])
        self.assertEqual(sorted(got - want), [], "installed but not expected")
        self.assertEqual(sorted(want - got), [], "expected but not installed")
        for prog in ("qbroker", "qworker", "qclient"):
            self.assertTrue(os.access(self.d(os.path.join(self.bindir, prog)), os.X_OK))

    def unit(self, name):
        """The installed unit file as {key: [values]} (all sections)."""
        path = self.d(os.path.join(self.unitdir, name))
        with open(path) as f:
            text = f.read()
        self.assertEqual(re.findall(r"@[a-z]+@", text), [], "left unsubstituted in " + name)
        entries = {}
        for line in text.splitlines():
            m = re.match(r"^([A-Za-z]+)=(.*)$", line)
            if m:
                entries.setdefault(m.group(1), []).append(m.group(2))
        return entries

    def check_unit(self, name, prog):
        u = self.unit(name)
        exec_start = u["ExecStart"]
        self.assertEqual(len(exec_start), 1)
        argv = exec_start[0].split()
        self.assertEqual(argv[0], os.path.join(self.bindir, prog))
        self.assertTrue(os.access(self.d(argv[0]), os.X_OK), "ExecStart names a file not installed")
        self.assertEqual(argv[1:3], ["--config", "${QJOB_CONFIG}"])
        self.assertIn("QJOB_CONFIG=" + os.path.join(self.sysconfdir, "qjob", "qjob.conf"),
                      u["Environment"])
        self.assertIn("-" + os.path.join(self.sysconfdir, "default", "qjob"), u["EnvironmentFile"])
        for key, value in [("DynamicUser", "yes"), ("ProtectSystem", "strict"),
                           ("ProtectHome", "yes"), ("NoNewPrivileges", "yes"),
                           ("PrivateTmp", "yes"), ("Restart", "on-failure")]:
            self.assertEqual(u.get(key), [value], key)
        self.assertIn("LimitNOFILE", u)
        self.assertIn("StateDirectory", u)
        self.assertEqual(u["WantedBy"], ["multi-user.target"])
        return u

    def test_units_point_at_the_install(self):
        u = self.check_unit("qbroker.service", "qbroker")
        self.assertEqual(u["StateDirectory"], ["qjob"])
        # the journal is written where the sandbox lets it write
        self.assertIn("--data-dir %S/qjob", u["ExecStart"][0])
        self.assertEqual(u["RuntimeDirectory"], ["qjob"])
        w = self.check_unit("qworker@.service", "qworker")
        self.assertEqual(w["KillMode"], ["mixed"])
        self.assertIn("%i", " ".join(w["ExecStart"] + w["EnvironmentFile"]))

    @unittest.skipUnless(shutil.which("systemd-analyze"), "no systemd-analyze")
    def test_units_verify(self):
        """systemd's own parser, on copies whose ExecStart points into the destdir."""
        tmp = tempfile.mkdtemp(prefix="qjob-units-")
        try:
            for name, inst in (("qbroker.service", "qbroker.service"),
                               ("qworker@.service", "qworker@test.service")):
                with open(self.d(os.path.join(self.unitdir, name))) as f:
                    text = f.read().replace("ExecStart=" + self.bindir,
                                            "ExecStart=" + self.d(self.bindir))
                path = os.path.join(tmp, inst)
                with open(path, "w") as f:
                    f.write(text)
                r = subprocess.run(["systemd-analyze", "verify", "--man=no", path],
                                   capture_output=True, text=True, timeout=60)
                bad = [l for l in (r.stdout + r.stderr).splitlines() if inst in l or
                       os.path.basename(path) in l]
                self.assertEqual((r.returncode, bad), (0, []), r.stdout + r.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_man_pages(self):
        if not shutil.which("help2man"):
            self.skipTest("no help2man: no man pages")
        for prog in ("qbroker", "qworker"):
            with open(self.d(os.path.join(self.mandir, "man1", prog + ".1"))) as f:
                page = f.read()
            self.assertIn(".TH " + prog.upper(), page)
            self.assertIn("CONFIGURATION FILE", page)
            for opt in sorted(help_options(os.path.join(BUILD, "server", prog))):
                self.assertIn("\\-\\-" + opt.replace("-", "\\-"), page,
                              prog + ".1 lacks --" + opt)

    def test_installed_library_links(self):
        """A client program built against the installed header, library and
        pkg-config file."""
        cc = shutil.which("cc")
        if not cc or not shutil.which("pkg-config"):
            self.skipTest("no cc or pkg-config")
        pcdir = self.d(os.path.join(self.libdir, "pkgconfig"))
        env = dict(os.environ, PKG_CONFIG_PATH=pcdir)
        flags = subprocess.run(["pkg-config", "--define-variable=prefix=" + self.d(self.prefix),
                                "--cflags", "--libs", "qjob"], capture_output=True, text=True,
                               env=env, check=True, timeout=30).stdout.split()
        self.assertIn("-lqjob", flags)
        tmp = tempfile.mkdtemp(prefix="qjob-cc-")
        try:
            src, exe = os.path.join(tmp, "t.c"), os.path.join(tmp, "t")
            with open(src, "w") as f:
                f.write('#include <stdio.h>\n#include <qjob.h>\n'
                        'int main(void) { qj_options o; qj_options_init(&o);\n'
                        '  puts("linked"); return 0; }\n')
            subprocess.run([cc, src, "-o", exe] + self.sanitize + flags, check=True, timeout=60)
            r = subprocess.run([exe], capture_output=True, text=True, timeout=10,
                               env=dict(os.environ, LD_LIBRARY_PATH=self.d(self.libdir)))
            self.assertEqual((r.returncode, r.stdout), (0, "linked\n"), r.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class ExampleTest(unittest.TestCase):
    """deploy/qjob.conf.example documents every option of both programs."""

    def test_every_option_documented(self):
        keys = example_keys()
        for prog, path in (("qbroker", QBROKER), ("qworker", QWORKER)):
            opts = help_options(path) - NOT_IN_FILE
            self.assertGreater(len(opts), 5)
            missing = sorted(o for o in opts if o not in keys.get(prog, set()) | keys["qjob"])
            self.assertEqual(missing, [], "qjob.conf.example lacks these %s options" % prog)
            unknown = sorted(keys[prog] - opts)
            self.assertEqual(unknown, [], "qjob.conf.example has options %s lacks" % prog)

    def test_example_parses_as_ini(self):
        cp = configparser.ConfigParser(strict=False, comment_prefixes=("#", ";"),
                                       inline_comment_prefixes=(";",))
        cp.read(EXAMPLE)
        self.assertEqual(cp.sections(), ["qjob", "qbroker", "qworker"])


class ConfigFileTest(harness.ClusterTest):
    """The configuration file read by the real programs."""

    def setUp(self):
        super().setUp()
        self.c.env.pop("QJOB_CONFIG", None)

    def test_missing_config_file_is_an_error(self):
        for prog in (QBROKER, QWORKER):
            r = subprocess.run([prog, "--config", "/nonexistent/qjob.conf", "--version"],
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("cannot open configuration file", r.stderr)

    def write(self, name, text):
        path = self.c.path(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_example_values_are_accepted(self):
        path = self.c.path("all.conf")
        uncommented_example(path)
        for prog in (QBROKER, QWORKER):
            r = subprocess.run([prog, "--config", path, "--help"], capture_output=True,
                               text=True, timeout=10, env=self.c.env)
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_broker_and_worker_from_the_file(self):
        sock = "ipc://" + self.c.path("b.sock")
        epfile = self.c.path("endpoint")
        conf = self.write("qjob.conf", "[qjob]\nlog-level = debug\n"
                          "[qbroker]\nbind = %s\nendpoint-file = %s\nheartbeat = 500\n"
                          "data-dir = %s\n"
                          "[qworker]\nbroker = %s\nprocs = 1\ncoros = 3\nname = fromfile\n"
                          % (sock, epfile, self.c.path("data"), sock))
        self.c.env["QJOB_CONFIG"] = conf
        self.c.start("qbroker", [QBROKER])
        wait_for(lambda: read(epfile).strip(),
                 what="qbroker to write the endpoint file the config names")
        self.assertEqual(read(epfile).split(), [sock])
        self.assertTrue(os.path.exists(self.c.path("data/LOCK")), "data-dir from the file")
        self.c.endpoint = sock
        self.c.start("qworker", [QWORKER])
        wait_for(lambda: self.c.total_slots() >= 3, timeout=15, what="3 slots from the file")
        names = [w["name"] for w in self.c.stats()["wlist"]]
        self.assertEqual(names, ["fromfile/0"])
        r = self.c.qclient("--broker", sock, "submit", "echo", '{"x": 1}', check=0)
        self.assertEqual(json.loads(r.stdout), {"x": 1})

    def test_command_line_replaces_file_binds(self):
        epfile = self.c.path("endpoint")
        conf = self.write("qjob.conf", "[qbroker]\nbind = ipc://%s\nbind = ipc://%s\n"
                          "endpoint-file = %s\ndata-dir = %s\n"
                          % (self.c.path("a.sock"), self.c.path("b.sock"), epfile,
                             self.c.path("data")))
        mine = "ipc://" + self.c.path("c.sock")
        self.c.start("qbroker", [QBROKER, "--config", conf, "--bind", mine])
        wait_for(lambda: read(epfile).strip(),
                 what="qbroker to write its endpoint file")
        self.assertEqual(read(epfile).split(), [mine])

    def test_bad_key_names_file_line_and_key(self):
        conf = self.write("bad.conf", "[qbroker]\nbind = ipc://x\n# c\nbnid = ipc://y\n")
        r = subprocess.run([QBROKER, "--config", conf], capture_output=True, text=True,
                           timeout=10, env=self.c.env)
        self.assertEqual(r.returncode, 2)
        self.assertIn(conf + ":4:", r.stderr)
        self.assertIn("'bnid'", r.stderr)
        conf = self.write("bad2.conf", "[qworker]\nprocs = many\n")
        r = subprocess.run([QWORKER, "--config", conf], capture_output=True, text=True,
                           timeout=10, env=self.c.env)
        self.assertEqual(r.returncode, 2)
        self.assertIn("procs", r.stderr)


if __name__ == "__main__":
    harness.main()
