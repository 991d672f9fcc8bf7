"""The auth cache (loft.conf(5) auth.cache) in front of a real OpenLDAP
slapd (ldaplib's) and real Dovecot backends: with the directory stopped
(SIGSTOP) or killed, a cached user logs in (from an expired entry too)
and an uncached one gets NO [UNAVAILABLE] at once, again and again, with
no penalty delay; started again, the uncached user logs in, the same
loftd. A password changed in LDAP works at once and the old one fails;
loftadm auth cache flush sends the next login of a user to LDAP."""
import imaplib
import subprocess
import time

import loftlib
from conftest import BACKEND_IPS, BACKEND_PORT
from imaputil import IMAP, dovecot_host
from loftlib import loftadm
from ldaplib import PEOPLE, SLAPD_IP, SLAPD_PORT, SUFFIX, make_loft, ssha
from passdblib import login
from ldaplib import slapd  # noqa: F401 (a fixture)

CACHE = 'cache = { size = "1M"; ttl = "%s"; negative_ttl = "1h"; };'


def cached_loft(loft_factory, cluster, ttl):
    # the penalty on: a temporary failure must not raise it
    return make_loft(loft_factory, cluster, timeout='"2s"',
                     loft_opts={"penalty": "true", "auth_extra": CACHE % ttl})


def timed_login(loft, user, password):
    start = time.monotonic()
    typ, text, _ = login(loft, user, password)
    return typ, text, time.monotonic() - start


def set_password(user, password):
    ldif = "dn: uid=%s,%s\nchangetype: modify\nreplace: userPassword\nuserPassword: %s\n" \
        % (user, PEOPLE, ssha(password))
    subprocess.run(["ldapmodify", "-x", "-H", "ldap://%s:%d" % (SLAPD_IP, SLAPD_PORT),
                    "-D", "cn=admin," + SUFFIX, "-w", "adminpw"], input=ldif, text=True,
                   check=True, capture_output=True)


def test_directory_down(slapd, loft_factory, cluster):
    loft = cached_loft(loft_factory, cluster, "1s")
    assert login(loft, "user21", "pass")[0] == "OK"

    # stopped: the cached user waits for the LDAP timeout (its entry has
    # expired), then logs in from the cache; an uncached one fails
    # temporarily after the same wait
    slapd.stop()
    try:
        typ, text, took = timed_login(loft, "user22", "pass")
        assert typ == "NO" and "[UNAVAILABLE]" in text, (text, loft.log_text()[-3000:])
        assert took >= 1.5
        typ, text, took = timed_login(loft, "user21", "pass")
        assert typ == "OK", (text, loft.log_text()[-2000:])
    finally:
        slapd.resume()

    # killed: answered at once; the uncached user again and again, no
    # penalty growing (a failure's would hold the next login 4 s)
    slapd.kill()
    assert login(loft, "user21", "pass")[0] == "OK"
    for _ in range(3):
        typ, text, took = timed_login(loft, "user22", "pass")
        assert typ == "NO" and "[UNAVAILABLE]" in text, text
        assert took < 2, took
    # the cache answers only its password: a wrong one cannot be told
    typ, text, took = timed_login(loft, "user21", "wrong")
    assert typ == "NO" and "[UNAVAILABLE]" in text, text
    assert took < 2, took
    assert "answered from the auth cache" in loft.log_text()

    # started again: the uncached user logs in, the same loftd
    slapd.start()
    assert login(loft, "user22", "pass")[0] == "OK"
    assert login(loft, "user21", "pass")[0] == "OK"
    assert loft.log_text().count("loftd started") == 1


def backend_accepts(user, password):
    m = IMAP(dovecot_host(BACKEND_IPS, user), BACKEND_PORT)
    try:
        m.login(user, password)
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        m.shutdown()


def test_password_changed(slapd, loft_factory, cluster):
    loft = cached_loft(loft_factory, cluster, "1h")
    assert login(loft, "user21", "pass")[0] == "OK"
    try:
        # the backends check the password too (the one loft forwards):
        # theirs first, once they have it LDAP's
        cluster.users["user21"] = "changed"
        loftlib.write_users(cluster.base, cluster.users)
        loftlib.wait_for(lambda: backend_accepts("user21", "changed"), 10,
                         "the backend to read its new users file")
        set_password("user21", "changed")
        # the new password goes to LDAP and works at once ...
        typ, text, _ = login(loft, "user21", "changed")
        assert typ == "OK", (text, loft.log_text()[-3000:])
        # ... and replaced the entry: the old one goes to LDAP, which says no
        typ, text, _ = login(loft, "user21", "pass")
        assert typ == "NO" and "[AUTHENTICATIONFAILED]" in text, text
    finally:
        set_password("user21", "pass")
        cluster.users["user21"] = "pass"
        loftlib.write_users(cluster.base, cluster.users)
        loftlib.wait_for(lambda: backend_accepts("user21", "pass"), 10,
                         "the backend to read its users file again")


def test_flush(slapd, loft_factory, cluster):
    loft = cached_loft(loft_factory, cluster, "1h")
    for user in ("user21", "user22"):
        assert login(loft, user, "pass")[0] == "OK"
    assert login(loft, "user99", "pass")[0] == "NO"     # a negative entry
    slapd.kill()
    try:
        # fresh entries: no LDAP needed
        assert login(loft, "user22", "pass")[0] == "OK"
        r = loftadm("auth", "cache", "flush", "-a", loft.admin, "User22")
        assert (r.returncode, r.stdout, r.stderr) == (0, "1 cache entries flushed\n", "")
        # flushed: the next login asks LDAP, which is gone
        typ, text, _ = login(loft, "user22", "pass")
        assert typ == "NO" and "[UNAVAILABLE]" in text, text
        assert login(loft, "user21", "pass")[0] == "OK"
        r = loftadm("auth", "cache", "flush", "-a", loft.admin, "user22", "nobody")
        assert (r.returncode, r.stdout) == (0, "0 cache entries flushed\n")
        # all: user21 and user99's negative entry
        r = loftadm("-a", loft.admin, "auth", "cache", "flush")
        assert (r.returncode, r.stdout) == (0, "2 cache entries flushed\n")
        typ, text, _ = login(loft, "user21", "pass")
        assert typ == "NO" and "[UNAVAILABLE]" in text, text
    finally:
        slapd.start()
    assert login(loft, "user21", "pass")[0] == "OK"
    # loftd cannot be asked: unlike doveadm 2.3, an error and exit 75
    r = loftadm("auth", "cache", "flush", "-a", loft.admin + ".nonexistent")
    assert r.returncode == 75 and r.stdout == "", r
    assert r.stderr.endswith("Error: Cache flush failed\n"), r.stderr
    log = loft.log_text()
    assert "auth cache flushed for 1 users: 1 entries" in log
    assert "auth cache flushed: 2 entries" in log


def test_cache_off_by_default(slapd, loft_factory, cluster):
    """Without auth.cache every login asks LDAP: with it gone, a user who
    just logged in fails temporarily; flush says 0."""
    loft = make_loft(loft_factory, cluster, timeout='"2s"')
    assert login(loft, "user21", "pass")[0] == "OK"
    slapd.kill()
    try:
        typ, text, _ = login(loft, "user21", "pass")
        assert typ == "NO" and "[UNAVAILABLE]" in text, text
    finally:
        slapd.start()
    r = loftadm("auth", "cache", "flush", "-a", loft.admin)
    assert (r.returncode, r.stdout) == (0, "0 cache entries flushed\n")
    loftlib.wait_for(lambda: login(loft, "user21", "pass")[0] == "OK", 10,
                     "LDAP logins to work again")
