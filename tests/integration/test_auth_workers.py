"""Password verification in the worker pool (loft.conf(5) auth, loftd(8)
SIGNALS): a stop while a hash is being verified, the queue bound, and the
jobs of clients that left."""
import base64
import os
import signal
import smtplib
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


# users whose password is slow to verify; the others are {PLAIN}
SLOW_USERS = ["user%d" % i for i in range(31, 39)]


def slow_loft(loft_factory, cluster, slow_hash, auth="", **opts):
    """A loftd with SLOW_USERS in a passwd-file; auth: more auth settings."""
    path = write_passwd(cluster.base, "slow", [
        "%s:%s" % (u, slow_hash if u in SLOW_USERS else "{PLAIN}pass")
        for u in ("user%d" % i for i in range(1, 40))])  # not user40
    opts.setdefault("log_level", "debug")
    loft = loft_factory(passdb='{ driver = "passwd-file"; path = "%s"; }' % path,
                        start=False, **opts)
    with open(loft.conf) as f:
        text = f.read()
    with open(loft.conf, "w") as f:
        f.write(text.replace("auth = { ", "auth = { %s " % auth))
    loft.start()
    loft_factory.started.append(loft)
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
    c.send("a LOGIN user31 pass\r\n")
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
    wait_count(loft, "passwd-file %s reloaded: 40 users" % loft.passwd, 1)
    assert login_reply(loft, "user40", "pass").startswith("a OK")
    assert login_reply(loft, "user7", "pass").startswith("a NO [AUTHENTICATIONFAILED]")
    # a broken file keeps the users, and says so once
    with open(loft.passwd, "a") as f:
        f.write(":no user here\n")
    assert login_reply(loft, "user40", "pass").startswith("a OK")
    wait_count(loft, "passwd-file reload failed, keeping the loaded users: %s: line 41: "
               "empty username" % loft.passwd, 1)
    assert login_reply(loft, "user40", "pass").startswith("a OK")
    assert loft.log_text().count("passwd-file reload failed") == 1


def start_login(loft, user, password="pass", n=None):
    """A client whose IMAP LOGIN is in the auth state (the n-th so far)."""
    c = Raw(LOFT_IP, loft.port)
    c.line()
    c.send("a LOGIN %s %s\r\n" % (user, password))
    if n is not None:
        wait_count(loft, "state pre-login -> auth", n)
    return c


def worker_cpu_ticks(loft):
    """CPU clock ticks of loftd's threads but the loop's (the workers)."""
    pid, total = loft.proc.pid, 0
    for tid in os.listdir("/proc/%d/task" % pid):
        if int(tid) != pid:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total


def leave_while_verified(loft, user, password):
    """A client that leaves once a worker is busy with its hash (the only
    one: no other login is in flight)."""
    before = worker_cpu_ticks(loft)
    c = start_login(loft, user, password)
    loftlib.wait_for(lambda: worker_cpu_ticks(loft) > before, 10, "a worker to hash")
    c.sock.close()


def b64(text):
    return base64.b64encode(text.encode()).decode()


def test_queue_bound_refuses_with_a_temporary_failure(loft_factory, cluster, slow_hash):
    """B3: beyond auth.max_queue jobs waiting for or held by a worker, a
    login gets the protocol's temporary failure at once; the queued ones
    go on."""
    loft = slow_loft(loft_factory, cluster, slow_hash, penalty="false",
                     auth="workers = 1; max_queue = 2;")
    a = start_login(loft, "user31", n=1)
    b = start_login(loft, "user32", n=2)
    # the queue is full while user31's hash is being verified
    imap = start_login(loft, "user1")
    assert imap.until("a ")[-1] == "a NO [UNAVAILABLE] Temporary authentication failure."
    pop3 = Raw(LOFT_IP, loft.pop3_port)
    pop3.line()
    pop3.send("USER user2\r\nPASS pass\r\n")
    assert pop3.line() == "+OK"
    assert pop3.line() == "-ERR [SYS/TEMP] Temporary authentication failure."
    sieve = Raw(LOFT_IP, loft.sieve_port)
    while not sieve.line().startswith("OK"):
        pass
    sieve.send('AUTHENTICATE "PLAIN" "%s"\r\n' % b64("\0user3\0pass"))
    assert sieve.line() == 'NO (TRYLATER) "Temporary authentication failure."'
    smtp = smtplib.SMTP(LOFT_IP, loft.submission_port, timeout=10)
    smtp.ehlo("client.example")
    code, text = smtp.docmd("AUTH", "PLAIN " + b64("\0user4\0pass"))
    assert (code, text) == (454, b"4.7.0 Temporary authentication failure.")
    smtp.close()
    # the queued logins were not harmed
    assert a.until("a ")[-1].startswith("a OK")
    assert b.until("a ")[-1].startswith("a OK")
    assert loft.log_text().count("login failed: auth queue full (auth.max_queue = 2)") == 4
    # and with room again, logins work
    assert login_reply(loft, "user5", "pass").startswith("a OK")


def test_closed_sessions_cost_no_hash(loft_factory, cluster, slow_hash):
    """B3: a client that leaves while its login waits for a worker takes
    its job out of the queue (no worker ever verifies it); a job already
    being verified finishes, but its verdict goes nowhere."""
    loft = slow_loft(loft_factory, cluster, slow_hash, penalty="false",
                     auth="workers = 1;")
    assert login_reply(loft, "user31", "pass").startswith("a OK")
    first = start_login(loft, "user32", n=2)
    leavers = [start_login(loft, u, n=n) for n, u in enumerate(SLOW_USERS[2:6], 3)]
    for c in leavers:
        c.sock.close()
    wait_count(loft, "verification cancelled, the client left", 4)
    # one worker, six slow hashes asked for: the four whose clients left
    # were taken out of the queue unverified (the log says so for each,
    # and no verdict of theirs is logged), the others go on
    last = start_login(loft, "user37", n=7)
    assert first.until("a ")[-1].startswith("a OK")
    assert last.until("a ")[-1].startswith("a OK")
    for u in SLOW_USERS[2:6]:
        assert "verification of %s finished" % u not in loft.log_text()
    # a client that leaves while its hash is verified: it runs to its end,
    # and its verdict is dropped
    leave_while_verified(loft, "user38", "pass")
    wait_count(loft, "verification of user38 finished after its client left", 1)
    assert loft.log_text().count("verification cancelled") == 4


def test_a_client_that_leaves_still_earns_its_penalty(loft_factory, cluster, slow_hash):
    """B3: a wrong password raises the client address's penalty even when
    the client left before the verdict, so connect-LOGIN-close loops are
    held back like any other failures."""
    loft = slow_loft(loft_factory, cluster, slow_hash,
                     auth="workers = 1;")
    leave_while_verified(loft, "user31", "wrong")
    wait_count(loft, "verification of user31 finished after its client left", 1)
    later = start_login(loft, "user1")
    wait_count(loft, "auth delayed 4000ms by failure penalty", 1)
    later.sock.close()
    # a right password from a client that left raises nothing
    loft2 = slow_loft(loft_factory, cluster, slow_hash, auth="workers = 1;")
    leave_while_verified(loft2, "user31", "pass")
    wait_count(loft2, "verification of user31 finished after its client left", 1)
    assert login_reply(loft2, "user1", "pass").startswith("a OK")
    assert "failure penalty" not in loft2.log_text()
