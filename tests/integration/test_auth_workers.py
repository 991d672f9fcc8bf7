"""Password verification in the worker pool (loft.conf(5) auth, loftd(8)
SIGNALS): a stop while a hash is being verified, the queue bound, and the
jobs of clients that left."""
import os
import signal
import subprocess

import pytest

import loftlib
from conftest import LOFT_IP
from imaputil import Raw

# SHA512-CRYPT rounds that take about a second to verify here
SLOW_ROUNDS = 4000000


@pytest.fixture(scope="module")
def slow_hash():
    """A `doveadm pw` hash of "pass" that is slow to verify."""
    return subprocess.run(["doveadm", "pw", "-s", "SHA512-CRYPT", "-r", str(SLOW_ROUNDS),
                           "-p", "pass"], capture_output=True, text=True,
                          check=True).stdout.strip()


def write_passwd(base, name, lines):
    path = os.path.join(base, "%s-%d.passwd" % (name, os.getpid()))
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def slow_loft(loft_factory, cluster, slow_hash, **opts):
    path = write_passwd(cluster.base, "slow", [
        "slow:%s" % slow_hash, "fast:{PLAIN}pass"] +
        ["user%d:{PLAIN}pass" % i for i in range(1, 40)])  # not user40
    opts.setdefault("log_level", "debug")
    loft = loft_factory(passdb='{ driver = "passwd-file"; path = "%s"; }' % path,
                        **opts)
    loft.passwd = path
    return loft


def wait_count(loft, text, n, timeout=20):
    loftlib.wait_for(lambda: loft.log_text().count(text) >= n, timeout,
                     "%d x %r in the log" % (n, text))


def test_stop_while_a_hash_is_verified(loft_factory, cluster, slow_hash):
    """B8: SIGTERM while a worker verifies a login's password: the
    verdict of the session that shutdown closed finds no session (and no
    freed proxy); loftd exits 0 with no sanitizer report."""
    loft = slow_loft(loft_factory, cluster, slow_hash,
                     extra_conf='shutdown = { max_disconnect_delay = "0s"; };')
    c = Raw(LOFT_IP, loft.port)
    c.line()
    c.send("a LOGIN slow pass\r\n")
    wait_count(loft, "state pre-login -> auth", 1)
    loft.proc.send_signal(signal.SIGTERM)
    # the client that stays hears the goodbye
    assert c.line() == "* BYE Server shutting down."
    loftlib.wait_for(lambda: loft.proc.poll() is not None, 30, "loftd to exit")
    loft_factory.started.remove(loft)
    assert loft.stop() == 0
    assert not loft.sanitizer_reports(), loft.log_text()[-4000:]
    assert "loftd stopped" in loft.log_text()


def login_reply(loft, user, password):
    c = Raw(LOFT_IP, loft.port)
    c.line()
    c.send("a LOGIN %s %s\r\n" % (user, password))
    reply = c.until("a ")[-1]
    c.sock.close()
    return reply


def test_passwd_file_reload(loft_factory, cluster, slow_hash):
    """B6: a changed passwd-file is read by a worker; the login that
    noticed the change is answered from the users loaded before, and the
    reload is logged by loftd (the passdb itself logs nothing)."""
    loft = slow_loft(loft_factory, cluster, slow_hash, log_level="info", penalty="false")
    with open(loft.passwd) as f:
        text = f.read()
    with open(loft.passwd + ".tmp", "w") as f:
        f.write(text.replace("user7:{PLAIN}pass", "user7:{PLAIN}changed") +
                "user40:{PLAIN}pass\n")
    os.replace(loft.passwd + ".tmp", loft.passwd)
    assert login_reply(loft, "user7", "pass").startswith("a OK")
    wait_count(loft, "passwd-file %s reloaded: 42 users" % loft.passwd, 1)
    assert login_reply(loft, "user40", "pass").startswith("a OK")
    assert login_reply(loft, "user7", "pass").startswith("a NO [AUTHENTICATIONFAILED]")
    # a broken file keeps the users, and says so once
    with open(loft.passwd, "a") as f:
        f.write(":no user here\n")
    assert login_reply(loft, "user40", "pass").startswith("a OK")
    wait_count(loft, "passwd-file reload failed, keeping the loaded users: %s: line 43: "
               "empty username" % loft.passwd, 1)
    assert login_reply(loft, "user40", "pass").startswith("a OK")
    assert loft.log_text().count("passwd-file reload failed") == 1
