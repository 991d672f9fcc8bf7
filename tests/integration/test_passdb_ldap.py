"""The LDAP passdb (loft.conf(5) LDAP) against a real OpenLDAP slapd,
started on loopback in a temporary directory with a small tree, and real
Dovecot backends behind loftd: passwords read ({SSHA}, {CRYPT}) or
checked by binding as the user, the mailHost field routing, nologin, an
alternative username, STARTTLS and ldaps:// (and a certificate from the
wrong CA refused), the user's DN in the base, injection attempts in user
names, and the directory going away: stopped
(SIGSTOP), LDAP logins wait and a passwd-file user of the passdb before it
logs in at once; killed, LDAP logins fail temporarily; started again,
they work without restarting loftd."""
import time

import pytest

import loftlib
from loftlib import loftadm
from conftest import BACKEND_IPS, LOFT_IP
from imaputil import IMAP, dovecot_host
from ldaplib import PEOPLE, SLAPD_IP, SLAPD_TLS_PORT, make_loft
from ldaplib import slapd  # noqa: F401 (a fixture)
from passdblib import PASSWD_USER, backend_of, fails, login, routed_elsewhere, stalled_login_check


def test_password_read_from_ldap(slapd, loft_factory, cluster):
    loft = make_loft(loft_factory, cluster)
    for user in ("user21", "user22"):
        typ, text, backend = login(loft, user, "pass")
        assert typ == "OK", (user, text, loft.log_text()[-2000:])
        assert backend == backend_of(cluster, dovecot_host(BACKEND_IPS, user))
        typ, text, _ = login(loft, user, "wrong")
        assert typ == "NO" and "[AUTHENTICATIONFAILED]" in text, text
    # the backend's password is not LDAP's: LDAP says no first
    assert login(loft, "user25", "pass")[0] == "NO"
    # unknown to both passdbs
    assert login(loft, "user39", "pass")[0] == "NO"
    # the passwd-file before LDAP still answers its own users
    assert login(loft, PASSWD_USER, "pass")[0] == "OK"


def test_fields_host_and_nologin(slapd, loft_factory, cluster):
    loft = make_loft(loft_factory, cluster)
    typ, text, backend = login(loft, "user23", "pass")
    assert typ == "OK", text
    assert backend == backend_of(cluster, routed_elsewhere("user23"))
    typ, text, _ = login(loft, "user24", "pass")
    assert typ == "NO" and "Account moved away." in text, text
    # a wrong password hears nothing of the account's state
    typ, text, _ = login(loft, "user24", "wrong")
    assert typ == "NO" and "moved" not in text
    # user_email = "mail": an alternative username a kick can match
    held = IMAP(LOFT_IP, loft.port)
    assert held.login("user22", "pass")[0] == "OK"
    r = loftadm("kick", "-a", loft.admin, "-f", "user_email", "user22@example.*")
    assert r.stdout == "kicked connections from the following users:\nuser22 \n", r.stdout
    loftlib.wait_for(lambda: fails(held.noop), 10, "the kicked session to close")



def test_auth_bind(slapd, loft_factory, cluster):
    """auth_bind: slapd checks the password; nothing is read but fields."""
    loft = make_loft(loft_factory, cluster, auth_bind="true",
                     fields='{ user = "uid"; host = "mailHost"; }')
    assert login(loft, "user21", "pass")[0] == "OK"
    assert login(loft, "user22", "pass")[0] == "OK"
    typ, text, backend = login(loft, "user23", "pass")
    assert typ == "OK" and backend == backend_of(cluster, routed_elsewhere("user23"))
    assert login(loft, "user21", "wrong")[0] == "NO"
    # an empty password would be an unauthenticated bind, which succeeds
    assert login(loft, "user21", "")[0] == "NO"
    # the bind as a user does not stick: the next search binds as reader
    assert login(loft, "user22", "pass")[0] == "OK"


@pytest.mark.parametrize("auth_bind", ["false", "true"])
def test_injection_finds_nobody(slapd, loft_factory, cluster, auth_bind):
    """Names that would widen the filter find nobody: the login fails as
    an unknown user (not a temporary failure, which several entries
    matching would be), for every password."""
    loft = make_loft(loft_factory, cluster, auth_bind=auth_bind)
    for name in ("*", "user2*", "*)(uid=*", "user21)(uid=*", "user21)(|(uid=*",
                 "*)(|(objectClass=*", "user21\\", "user21)"):
        typ, text, _ = login(loft, name, "pass")
        assert typ == "NO" and "AUTHENTICATIONFAILED" in text, (name, text)
    assert "matched more than one" not in loft.log_text()
    assert login(loft, "user21", "pass")[0] == "OK"


def test_tls(slapd, loft_factory, cluster):
    """STARTTLS and ldaps:// with the directory's CA; a certificate from
    another CA is refused (a temporary failure, never a plain search)."""
    ca = '"%s"' % slapd.certs["ca"]
    loft = make_loft(loft_factory, cluster, starttls="true", tls_ca_file=ca)
    assert login(loft, "user21", "pass")[0] == "OK", loft.log_text()[-2000:]
    loft = make_loft(loft_factory, cluster, tls_ca_file=ca,
                     uris='[ "ldaps://%s:%d" ]' % (SLAPD_IP, SLAPD_TLS_PORT))
    assert login(loft, "user22", "pass")[0] == "OK", loft.log_text()[-2000:]
    for opts in ({"starttls": "true"},
                 {"uris": '[ "ldaps://%s:%d" ]' % (SLAPD_IP, SLAPD_TLS_PORT)}):
        loft = make_loft(loft_factory, cluster, tls_ca_file='"%s"' % cluster.certs["ca"],
                         **opts)
        typ, text, _ = login(loft, "user21", "pass")
        assert typ == "NO" and "[UNAVAILABLE]" in text, (opts, text)


def test_user_in_the_base(slapd, loft_factory, cluster):
    """The user's DN from the base itself (scope base, %n DN-escaped)."""
    loft = make_loft(loft_factory, cluster, scope='"base"',
                     base='"uid=%%n,%s"' % PEOPLE, filter='"(objectClass=posixAccount)"')
    assert login(loft, "user21", "pass")[0] == "OK"
    assert login(loft, "user21@example.org", "pass")[0] == "OK"
    for name in ("user99", "user21,ou=people", "*", "user21+cn=user21"):
        typ, text, _ = login(loft, name, "pass")
        assert typ == "NO" and "AUTHENTICATIONFAILED" in text, (name, text)



def test_directory_stopped_killed_restarted(slapd, loft_factory, cluster):
    loft = make_loft(loft_factory, cluster, log_level="debug", timeout='"3s"')
    assert login(loft, "user21", "pass")[0] == "OK"

    # stopped: an LDAP login waits for the timeout; a passwd-file user's
    # login meanwhile is not held up
    slapd.stop()
    try:
        stalled_login_check(loft, "LDAP")
    finally:
        slapd.resume()

    # killed: a temporary failure at once, no penalty
    slapd.kill()
    start = time.monotonic()
    typ, text, _ = login(loft, "user21", "pass")
    assert typ == "NO" and "[UNAVAILABLE]" in text, text
    assert time.monotonic() - start < 2
    assert login(loft, PASSWD_USER, "pass")[0] == "OK"

    # started again: logins work, the same loftd
    slapd.start()
    assert login(loft, "user21", "pass")[0] == "OK"
    assert login(loft, "user23", "pass")[0] == "OK"
    assert loft.log_text().count("loftd started") == 1
