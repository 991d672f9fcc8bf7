"""Master users (loft.conf(5) passdb master, auth.master_user_separator),
as Dovecot's: a login "user*master" with the master's password, or SASL
PLAIN with authzid user and authcid master, is checked against the
passdbs marked master = true only (and those are asked for nothing
else), then routed and logged in as the user: the backend, a real
Dovecot with the same master user, gets SASL PLAIN with the master's
credentials and the user as authzid (reference §10.1, master=). who lists
the user."""
import base64
import os
import subprocess

import loftlib
from conftest import BACKEND_IPS, LOFT_IP
from imaputil import IMAP, POP3, dovecot_host

MASTER, MASTER_PW = loftlib.MASTER_USER, loftlib.MASTER_PASSWORD


def master_loft(loft_factory, separator='"*"', users='{ driver = "backend"; }'):
    """loftd with a master passdb (the backends' master user) before the
    users' passdb (by default the backend passdb, which lets the backends
    check the users' passwords)."""
    masters = os.path.join(loft_factory.cluster.base, "loft-masters.passwd")
    loftlib.write_passwd(masters, {MASTER: MASTER_PW})
    passdb = ('{ driver = "passwd-file"; path = "%s"; scheme = "PLAIN"; master = true; }, '
              '%s' % (masters, users))
    return loft_factory(passdb=passdb, penalty="false",
                        auth_extra="master_user_separator = %s;" % separator)


def backend_of(user):
    return next(b for b in BACKEND_IPS if b == dovecot_host(BACKEND_IPS, user))


def who_users(loft):
    r = loftlib.loftadm("-f", "tab", "who", "-1", "-a", loft.admin)
    assert r.returncode == 0, r.stderr
    return sorted(line.split("\t")[0] for line in r.stdout.splitlines()[1:])


def refused(loft, user, password):
    m = IMAP(LOFT_IP, loft.port)
    try:
        m.login(user, password)
    except IMAP.error as e:
        assert "AUTHENTICATIONFAILED" in str(e), e
        return True
    finally:
        m.shutdown()
    return False


def test_master_login_with_the_separator(loft_factory):
    loft = master_loft(loft_factory)
    m = IMAP(LOFT_IP, loft.port)
    assert m.login("user5*" + MASTER, MASTER_PW)[0] == "OK"
    # routed and logged in as user5, on user5's backend
    assert m.backend_name() == loft.cluster.by_ip(backend_of("user5")).name
    assert m.select("INBOX")[0] == "OK"
    assert who_users(loft) == ["user5"]
    m.logout()
    # the backend saw the master log in as the user
    log = loft.cluster.by_ip(backend_of("user5")).log
    with open(log) as f:
        assert any("Login: user=<user5>" in line for line in f)
    # POP3 too (USER/PASS with the separator)
    p = POP3(LOFT_IP, loft.pop3_port)
    p.user("user6*" + MASTER)
    assert p.pass_(MASTER_PW).startswith(b"+OK")
    p.quit()


def test_master_login_with_a_sasl_authzid(loft_factory):
    loft = master_loft(loft_factory)
    m = IMAP(LOFT_IP, loft.port)
    plain = "user7\0%s\0%s" % (MASTER, MASTER_PW)
    typ, _ = m.authenticate("PLAIN", lambda _: plain.encode())
    assert typ == "OK"
    assert m.backend_name() == loft.cluster.by_ip(backend_of("user7")).name
    assert who_users(loft) == ["user7"]
    m.logout()


def test_what_a_master_login_is_not(loft_factory):
    loft = master_loft(loft_factory)
    # a wrong master password
    assert refused(loft, "user5*" + MASTER, "wrong")
    # the master passdb is asked for master logins only: the master's
    # name and password alone are no login
    assert refused(loft, MASTER, MASTER_PW)
    # a user is no master of another (the master passdbs do not know it)
    assert refused(loft, "user5*user6", "pass")
    # an empty user or master
    assert refused(loft, "*" + MASTER, MASTER_PW)
    assert refused(loft, "user5*", MASTER_PW)
    # the users' own logins go on as before
    m = IMAP(LOFT_IP, loft.port)
    assert m.login("user8", "pass")[0] == "OK"
    m.logout()


def test_without_a_separator_the_name_is_taken_whole(loft_factory):
    """(loft checks the users' passwords here: with the backend passdb, the
    backend would take "user5*master" as a master login of its own.)"""
    users = os.path.join(loft_factory.cluster.base, "loft-users.passwd")
    loftlib.write_passwd(users, {"user5": "pass", "user9": "pass"})
    loft = master_loft(loft_factory, separator='""', users='{ driver = "passwd-file"; '
                       'path = "%s"; scheme = "PLAIN"; }' % users)
    assert refused(loft, "user5*" + MASTER, MASTER_PW)
    assert "unknown" in loft.log_text().split("login failed")[-1]
    # the SASL authzid still names the user
    m = IMAP(LOFT_IP, loft.port)
    plain = base64.b64encode(("user9\0%s\0%s" % (MASTER, MASTER_PW)).encode())
    typ, _ = m.authenticate("PLAIN", lambda _: base64.b64decode(plain))
    assert typ == "OK"
    m.logout()


def test_without_a_master_passdb_an_authzid_is_refused(loft_factory):
    loft = loft_factory(penalty="false")
    m = IMAP(LOFT_IP, loft.port)
    try:
        m.authenticate("PLAIN", lambda _: ("user5\0%s\0%s" % (MASTER, MASTER_PW)).encode())
        raise AssertionError("a master login without a master passdb")
    except IMAP.error as e:
        assert "AUTHENTICATIONFAILED" in str(e), e
    finally:
        m.shutdown()
    assert "login failed" in loft.log_text()


def test_config_rules(loft_factory):
    def check(loft):
        return subprocess.run([loft.binary(), "-c", loft.conf, "-n"], capture_output=True,
                              text=True, timeout=30)
    r = check(loft_factory(start=False, auth_extra='master_user_separator = "**";'))
    assert r.returncode != 0 and "one character" in r.stderr, r
    masters = os.path.join(loft_factory.cluster.base, "loft-masters.passwd")
    r = check(loft_factory(start=False, passdb='{ driver = "passwd-file"; path = "%s"; '
                           'master = true; }' % masters))
    assert r.returncode != 0 and "every passdb is a master one" in r.stderr, r


