"""loftd leaves root after start-up (loft.conf(5) user, group,
allow_root) and its admin and ipc sockets admit only root, its own user
and admin.allow_users, a bounded number at a time (loft.conf(5) ADMIN)."""
import os
import pwd
import socket
import subprocess

import pytest

import loftlib
from conftest import LOFT_IP
from imaputil import IMAP

NOBODY = pwd.getpwnam("nobody")
DAEMON = pwd.getpwnam("daemon")   # uid 1 on Debian
BIN = pwd.getpwnam("bin")         # uid 2


@pytest.fixture
def reachable_base(cluster):
    """nobody must reach the directories loftd gets (the test base is 0700)."""
    mode = os.stat(cluster.base).st_mode & 0o777
    os.chmod(cluster.base, 0o755)
    yield
    os.chmod(cluster.base, mode)


def proc_ids(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return [int(x) for x in line.split()[1:]]
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def as_user(pw):
    def switch():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    return switch


def loftadm_as(pw, loft, *args):
    """loftadm args -a <admin socket>, as pw (None: root)."""
    return subprocess.run([loft.binary("loftadm")] + list(args) + ["-a", loft.admin],
                          capture_output=True, text=True, timeout=20,
                          preexec_fn=as_user(pw) if pw is not None else None)


def test_refuses_to_stay_root(loft_factory):
    loft = loft_factory(start=False, privileges="")
    r = subprocess.run([loft.binary(), "-c", loft.conf], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1
    assert "loftd would run as root: set user" in r.stderr
    assert not os.path.exists(loft.admin)


@pytest.mark.parametrize("setting, message", [
    ('user = "no-such-user-here";', "user no-such-user-here: no such user"),
    ('user = "root";', "user root is root: set allow_root = true"),
    ('user = "nobody"; group = "no-such-group";', "group no-such-group: no such group"),
])
def test_bad_user_settings(loft_factory, setting, message):
    loft = loft_factory(start=False, privileges=setting)
    r = subprocess.run([loft.binary(), "-c", loft.conf], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1
    assert message in r.stderr


def test_runs_as_user_after_start(loft_factory, reachable_base):
    loft = loft_factory(privileges='user = "nobody";')
    pid = loft.proc.pid
    assert proc_ids(pid, "Uid") == [NOBODY.pw_uid] * 4
    assert proc_ids(pid, "Gid") == [NOBODY.pw_gid] * 4
    assert 0 not in proc_ids(pid, "Groups")
    assert "running as user nobody (uid %d, gid %d)" % (NOBODY.pw_uid, NOBODY.pw_gid) \
        in loft.log_text()
    for d in (loft.base_dir, loft.state_dir):
        assert os.stat(d).st_uid == NOBODY.pw_uid
    # listeners bound as root keep working, and so does the state file
    m = IMAP(LOFT_IP, loft.port)
    assert m.login("user38", "pass")[0] == "OK"
    m.logout()
    r = loftadm_as(None, loft, "director", "add", "127.0.0.99")
    assert r.returncode == 0, r.stderr
    state = os.path.join(loft.state_dir, "director.state")
    assert "127.0.0.99" in open(state).read()
    assert os.stat(state).st_uid == NOBODY.pw_uid
    # without admin.allow_users only root reaches the sockets
    assert oct(os.stat(loft.admin).st_mode & 0o777) == "0o600"
    assert loftadm_as(DAEMON, loft, "who").returncode != 0


def test_admin_socket_checks_the_peer(loft_factory, reachable_base):
    loft = loft_factory(privileges='user = "nobody";',
                        extra_conf='admin = { allow_users = [ "daemon" ]; };')
    assert oct(os.stat(loft.admin).st_mode & 0o777) == "0o666"
    ok = loftadm_as(DAEMON, loft, "who")
    assert ok.returncode == 0, ok.stderr
    refused = loftadm_as(BIN, loft, "who")
    assert refused.returncode != 0
    loftlib.wait_for(lambda: "refused a connection from uid %d" % BIN.pw_uid
                     in loft.log_text(), 10, "the refusal in the log")
    ipc = os.path.join(loft.base_dir, "ipc")
    # doveadm exits 0 either way; what it says differs
    for pw, allowed in ((DAEMON, True), (BIN, False)):
        r = subprocess.run(["doveadm", "proxy", "list", "-a", ipc], capture_output=True,
                           text=True, timeout=20, preexec_fn=as_user(pw))
        assert ("Disconnected" not in r.stderr) == allowed, (pw.pw_name, r.stderr)


def test_admin_max_clients(loft_factory):
    loft = loft_factory(extra_conf="admin = { max_clients = 2; };")
    held = []
    for _ in range(2):
        s = socket.socket(socket.AF_UNIX)
        s.connect(loft.admin)
        held.append(s)
    # both are served: a handshake answers
    for s in held:
        s.sendall(b"VERSION\tdirector-doveadm\t1\t0\n")
    extra = socket.socket(socket.AF_UNIX)
    extra.settimeout(10)
    extra.connect(loft.admin)
    assert extra.recv(100) == b""   # closed at once
    extra.close()
    assert "2 clients are connected (admin.max_clients)" in loft.log_text()
    held.pop().close()
    loftlib.wait_for(lambda: loftadm_as(None, loft, "who").returncode == 0, 10,
                     "a free admin slot")
    for s in held:
        s.close()
