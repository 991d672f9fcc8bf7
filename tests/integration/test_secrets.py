"""Secrets in loftd's memory (DESIGN §5 "secrets are wiped"): a password
that went through a login is gone from the process's writable memory
afterwards, and loftd is not dumpable after it left root (except in
sanitizer builds, whose leak checker needs that)."""
import os
import pwd
import re

import pytest

import loftlib
from conftest import LOFT_IP
from imaputil import Raw

NOBODY = pwd.getpwnam("nobody")
# larger regions are the sanitizers' shadow memory, never a heap
MAX_REGION = 64 << 20


def is_sanitizer_build(loft):
    with open(loft.binary(), "rb") as f:
        return b"__asan_init" in f.read()


def memory_holds(pid, needle):
    """Whether any writable mapping of pid holds needle (read as root)."""
    found = []
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if not fields[1].startswith("rw") or end - start > MAX_REGION:
                continue
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except OSError:
                continue
            if needle in data:
                found.append(line.strip())
    return found


@pytest.fixture
def reachable_base(cluster):
    """nobody must reach the directories loftd gets (the test base is 0700)."""
    mode = os.stat(cluster.base).st_mode & 0o777
    os.chmod(cluster.base, 0o755)
    yield
    os.chmod(cluster.base, mode)


def test_not_dumpable_after_leaving_root(loft_factory, reachable_base):
    """B10: an undumpable process writes no core (with passwords and the
    TLS key); the kernel shows it by giving its /proc files to root."""
    loft = loft_factory(privileges='user = "nobody";')
    owner = os.stat("/proc/%d/status" % loft.proc.pid).st_uid
    if is_sanitizer_build(loft):
        assert owner == NOBODY.pw_uid   # LeakSanitizer needs it dumpable
    else:
        assert owner == 0


def test_password_is_wiped_after_the_login(loft_factory):
    """B10: the client's LOGIN line (pre-login input) and the backend's
    login line (which the backend refuses here) leave no copy of the
    password in loftd's memory, freed or not."""
    loft = loft_factory(penalty="false")
    secret = "Zq-%s-wiped" % os.urandom(8).hex()
    c = Raw(LOFT_IP, loft.port)
    c.line()
    c.send("a LOGIN user1 %s\r\n" % secret)
    assert c.until("a ").pop().startswith("a NO [AUTHENTICATIONFAILED]")
    c.send("b LOGOUT\r\n")
    c.until("b OK")
    loftlib.wait_for(lambda: "closed:" in loft.log_text(), 10, "the session to close")
    assert memory_holds(loft.proc.pid, secret.encode()) == []
    # the scan itself finds what is there: the session of a client that
    # stays with its password unsent holds it in its input buffer
    d = Raw(LOFT_IP, loft.port)
    d.line()
    d.send("c LOGIN user1 {%d}\r\n" % len(secret))
    d.until("+ ")
    d.send(secret[:-1])
    loftlib.wait_for(lambda: memory_holds(loft.proc.pid, secret[:-1].encode()), 10,
                     "the partial literal in memory")
    d.sock.close()
