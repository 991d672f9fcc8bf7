"""What the passdb tests (test_passdb_ldap.py, test_passdb_sql.py) share:
a loftd with a passwd-file passdb before the one under test, IMAP logins
through it, and the helpers their users' fields need."""
import imaplib
import os
import subprocess
import threading
import time

import loftlib
from conftest import BACKEND_IPS, LOFT_IP
from imaputil import IMAP, dovecot_host

# in the passwd-file passdb before the one under test (the backends know
# user1..user40 with the password "pass")
PASSWD_USER = "user30"


def sha512_crypt(password):
    out = subprocess.run(["doveadm", "pw", "-s", "SHA512-CRYPT", "-p", password],
                         capture_output=True, text=True, check=True).stdout.strip()
    return "{CRYPT}" + out[len("{SHA512-CRYPT}"):]


def routed_elsewhere(user):
    """A backend that is not the one the director would choose for user."""
    return next(ip for ip in BACKEND_IPS if ip != dovecot_host(BACKEND_IPS, user))


def make_loft(loft_factory, cluster, passdb, log_level="info", name="passdb", **loft_opts):
    """A loftd with a passwd-file passdb (PASSWD_USER), then passdb
    (loft_opts: the Loftd's, the penalty off unless they say)."""
    path = os.path.join(cluster.base, "%s-first-%d.passwd" % (name, os.getpid()))
    with open(path, "w") as f:
        f.write("%s:{PLAIN}pass::::::\n" % PASSWD_USER)
    settings = {"penalty": "false", "log_level": log_level}
    settings.update(loft_opts)
    return loft_factory(passdb='{ driver = "passwd-file"; path = "%s"; }, %s'
                        % (path, passdb), **settings)


def login(loft, user, password):
    """(typ, text, backend) of LOGIN; the backend's name when it worked."""
    m = IMAP(LOFT_IP, loft.port)
    try:
        # imaplib sends the user name as it is: quote it, "*" and all
        typ, data = m.login('"%s"' % user.replace("\\", "\\\\").replace('"', '\\"'),
                            password)
    except imaplib.IMAP4.error as e:
        return "NO", str(e), None
    backend = m.backend_name()
    m.logout()
    return typ, data[0].decode(), backend


def backend_of(cluster, ip):
    return cluster.by_ip(ip).name


def fails(call):
    try:
        call()
        return False
    except (imaplib.IMAP4.abort, OSError):
        return True


def timed_login(loft, user, out):
    start = time.monotonic()
    out.append(login(loft, user, "pass")[:2] + (time.monotonic() - start,))


def stalled_login_check(loft, what):
    """With the passdb under test stopped (timeout 3 s): its user's login
    waits for the timeout and fails temporarily, while a passwd-file
    user's login meanwhile is not held up."""
    waiting = []
    t = threading.Thread(target=timed_login, args=(loft, "user22", waiting))
    t.start()
    loftlib.wait_for(lambda: "state pre-login -> auth" in loft.log_text(), 5,
                     "the %s login to start" % what)
    start = time.monotonic()
    assert login(loft, PASSWD_USER, "pass")[0] == "OK"
    assert time.monotonic() - start < 1.5
    assert t.is_alive()     # still waiting for the passdb
    t.join(15)
    typ, text, took = waiting[0]
    assert typ == "NO" and "[UNAVAILABLE]" in text, text
    assert took >= 2.5
