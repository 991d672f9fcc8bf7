"""The Debian package (debian/, `make deb`): built with dpkg-buildpackage
and clean under lintian (make deb fails otherwise), installed on this
machine with dpkg -i: the `loft` system user is made, the unit installed
but neither enabled nor started, /etc/loft/loft.conf a conffile; the
installed loftd checks its configuration (-n) and serves a login as
`loft` with the installed paths, the installed loftadm answers, and
systemd-analyze verifies the installed unit. dpkg --purge then leaves
nothing of it behind (the user stays, as Debian keeps system users).

It takes a minute or two (the package builds from scratch). Every tool it needs
comes from scripts/deps.sh; a missing one fails the test and says so."""
import os
import pwd
import shutil
import signal
import subprocess
import time

import pytest

import loftlib
from conftest import BACKEND_IPS, BACKEND_PORT, LOFT_IP
from imaputil import IMAP

REPO = loftlib.REPO
TOOLS = {"dpkg-buildpackage": "dpkg-dev", "dh": "debhelper", "lintian": "lintian",
         "scdoc": "scdoc", "systemd-analyze": "systemd", "adduser": "adduser",
         "deb-systemd-helper": "init-system-helpers"}
PORT = 12143
UNIT = "/lib/systemd/system/loft.service"
# what loftd or the maintainer scripts make at run time
RUNTIME = ["/etc/loft", "/var/lib/loft", "/run/loft", "/usr/share/doc/loft",
           "/var/lib/systemd/deb-systemd-helper-enabled/loft.service.dsh-also",
           "/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/loft.service",
           "/etc/systemd/system/multi-user.target.wants/loft.service"]


def run(args, timeout=120, **kw):
    # this test runs under make: its variables and jobserver stay there
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env["DEBIAN_FRONTEND"] = "noninteractive"
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          env=env, **kw)


def status(package="loft"):
    r = run(["dpkg-query", "-W", "-f=${Status}", package])
    return r.stdout if r.returncode == 0 else "not known"


def dpkg(*args):
    """dpkg, waiting (with a deadline) while another apt or dpkg holds its lock."""
    deadline = time.monotonic() + 180
    while True:
        r = run(["dpkg"] + list(args), timeout=300)
        if r.returncode == 0 or "lock" not in r.stderr or time.monotonic() > deadline:
            return r
        time.sleep(1)


def user_exists(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def loftd_pids():
    """Processes running the installed loftd."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink("/proc/%s/exe" % pid) == "/usr/sbin/loftd":
                pids.append(int(pid))
        except OSError:
            pass
    return pids


@pytest.fixture
def package():
    missing = ["%s (package %s)" % (t, p) for t, p in TOOLS.items() if not shutil.which(t)]
    assert not missing, "missing: %s; run scripts/deps.sh" % ", ".join(missing)
    assert "installed" not in status().split(), \
        "a loft package is installed on this machine already: this test installs " \
        "and purges its own; remove it first (dpkg --purge loft)"
    had_user = user_exists("loft") is not None
    r = run(["make", "deb"], cwd=REPO, timeout=900)
    assert r.returncode == 0, "make deb failed:\n%s\n%s" % (r.stdout[-6000:], r.stderr[-3000:])
    debs = [f for f in os.listdir(os.path.join(REPO, "build", "deb"))
            if f.startswith("loft_") and f.endswith(".deb")]
    assert len(debs) == 1, debs
    deb = os.path.join(REPO, "build", "deb", debs[0])
    try:
        yield deb, had_user
    finally:
        if "installed" in status().split() or "config-files" in status().split():
            dpkg("--purge", "loft")
        # the machine as it was: the user goes if this test made it
        if not had_user and user_exists("loft"):
            run(["deluser", "--system", "loft"])


def installed_files(deb):
    """The regular files and symlinks the package holds, as absolute paths."""
    r = run(["dpkg-deb", "-c", deb])
    assert r.returncode == 0, r.stderr
    return [line.split()[-1].lstrip(".") for line in r.stdout.splitlines()
            if line[0] in "-l"]


def loftd_conf():
    return """\
user = "loft";
base_dir = "/run/loft";
state_dir = "/var/lib/loft";
listeners = ( {{ protocol = "imap"; address = "{ip}"; port = {port}; }} );
passdb = ( {{ driver = "backend"; }} );
login = {{ disable_plaintext_auth = false; }};
director = {{ mail_servers = [ {servers} ]; }};
backend = {{ imap_port = {backend_port}; }};
""".format(ip=LOFT_IP, port=PORT, backend_port=BACKEND_PORT, servers=", ".join('"%s"' % ip for ip in BACKEND_IPS))


def test_package_installs_serves_and_purges(package, cluster, tmp_path):
    deb, _ = package
    files = installed_files(deb)
    for f in ("/usr/sbin/loftd", "/usr/bin/loftadm", "/etc/loft/loft.conf", UNIT,
              "/usr/share/man/man8/loftd.8.gz", "/usr/share/man/man1/loftadm.1.gz",
              "/usr/share/man/man5/loft.conf.5.gz", "/usr/share/doc/loft/copyright"):
        assert f in files, (f, files)

    r = dpkg("-i", deb)
    assert r.returncode == 0, r.stdout + r.stderr
    assert status() == "install ok installed"
    ent = user_exists("loft")
    assert ent is not None, "the package made no loft user"
    assert ent.pw_uid < 1000 and ent.pw_shell == "/usr/sbin/nologin", ent
    r = run(["dpkg-query", "-W", "-f=${Conffiles}", "loft"])
    assert [line.split()[0] for line in r.stdout.strip().splitlines()] == \
        ["/etc/loft/loft.conf"], r.stdout
    # installed, not enabled, not started
    assert os.path.exists(UNIT)
    assert not os.path.lexists("/etc/systemd/system/multi-user.target.wants/loft.service")
    assert run(["deb-systemd-helper", "--quiet", "was-enabled", "loft.service"]).returncode != 0
    assert loftd_pids() == []
    # the unit as installed, man pages included
    r = run(["systemd-analyze", "verify", UNIT])
    assert r.returncode == 0 and r.stderr == "", r.stderr

    # the installed programs, from the installed paths
    r = run(["/usr/sbin/loftd", "-n"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("# effective configuration of /etc/loft/loft.conf\n")
    assert '\nuser = "loft";' in r.stdout
    r = run(["/usr/bin/loftadm", "--help"])
    assert r.returncode == 0 and r.stdout.startswith("usage: loftadm "), r.stderr

    # and serving, as the package's user, in the package's directories
    conf = tmp_path / "loft.conf"
    conf.write_text(loftd_conf())
    log = open(tmp_path / "loftd.log", "wb")
    proc = subprocess.Popen(["/usr/sbin/loftd", "-c", str(conf)], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        loftlib.wait_for(lambda: proc.poll() is not None or (
            loftlib.port_open(LOFT_IP, PORT) and os.path.exists("/run/loft/admin")),
            10, "the installed loftd to listen")
        assert proc.poll() is None, (tmp_path / "loftd.log").read_text()
        c = IMAP(LOFT_IP, PORT)
        c.login("user7", "pass")
        assert c.backend_name() in ("be1", "be2", "be3")
        c.logout()
        with open("/proc/%d/status" % proc.pid) as f:
            uids = [line.split()[1:] for line in f if line.startswith("Uid:")][0]
        assert uids == [str(ent.pw_uid)] * 4
        # a host change is kept in state_dir
        r = run(["/usr/bin/loftadm", "-a", "/run/loft/admin", "director", "update",
                 BACKEND_IPS[0], "50"])
        assert r.returncode == 0, r.stderr
        loftlib.wait_for(lambda: os.listdir("/var/lib/loft"), 5, "the state file")
        assert os.stat("/var/lib/loft").st_uid == ent.pw_uid
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
        log.close()
    assert rc == 0, (tmp_path / "loftd.log").read_text()

    r = dpkg("--purge", "loft")
    assert r.returncode == 0, r.stdout + r.stderr
    assert status() in ("not known", "unknown ok not-installed"), status()
    left = [f for f in files + RUNTIME if os.path.lexists(f)]
    assert not left, "left behind by dpkg --purge: %s" % left
    # Debian keeps system users (files elsewhere may still be theirs)
    assert user_exists("loft") is not None
