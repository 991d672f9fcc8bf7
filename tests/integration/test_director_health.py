"""Built-in health checks (director.health) against real Dovecot backends:
a backend that does not answer leaves the ring after `fall` checks, one
that starts answering comes back after `rise`, an admin's down wins over
the checks, and loftadm shows the verdict after doveadm's columns."""
import subprocess

import pytest

import loftlib
from conftest import BACKEND_IPS, BACKEND_PORT, BACKEND_TLS_PORT, LOFT_IP, NET
from imaputil import IMAP, dovecot_host
from test_admin_cli import admin_raw

FOURTH = "%s.14" % NET
USERS = ["user%d" % i for i in range(1, 41)]
HEALTH = ('health = { interval = "200ms"; timeout = "1s"; fall = 2; rise = 2; %s };')
# Dovecot answers a failed login after auth_failure_delay (2 s)
LOGIN_HEALTH = ('health = { interval = "200ms"; timeout = "5s"; fall = 2; rise = 2; '
                'user = "user40"; password = "%s"; };')


loftadm = loftlib.loftadm


def health_column(loft):
    """{ip: (state, health)} from loftadm's table, tab-separated."""
    r = loftadm("-f", "tab", "director", "status", "-a", loft.admin)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split("\t")[-1] == "health"
    return {f[0]: (f[3], f[6]) for f in (line.split("\t") for line in lines[1:])}


def wait_health(loft, ip, verdict):
    loftlib.wait_for(lambda: health_column(loft).get(ip, (None, None))[1] == verdict,
                     15, "%s to be %s" % (ip, verdict))


def current(loft, user):
    r = loftadm("director", "status", "-a", loft.admin, user)
    return r.stdout.splitlines()[0].split()[1]


def login(loft, user):
    m = IMAP(LOFT_IP, loft.port)
    m.login(user, "pass")
    return m


@pytest.fixture
def fourth(cluster):
    """A fourth Dovecot backend, started by the test when it wants it."""
    b = loftlib.Backend(cluster.base, "be4", FOURTH, BACKEND_PORT, cluster.certs,
                        tls_port=BACKEND_TLS_PORT)
    yield b
    b.stop()


def test_a_dead_backend_leaves_the_ring_and_comes_back(loft_factory, fourth):
    loft = loft_factory(penalty="false", director_extra=HEALTH % "")
    wait_health(loft, BACKEND_IPS[0], "ok")
    r = loftadm("director", "add", "-a", loft.admin, FOURTH)
    assert r.returncode == 0, r.stderr
    wait_health(loft, FOURTH, "failing")
    assert "director: backend %s failed 2 health checks in a row (connect failed: " \
        "Connection refused)" % FOURTH in loft.log_text()
    # the reason is kept for admins (HOST-HEALTH, loft's own command)
    out = admin_raw(loft.admin, ["HOST-HEALTH"], lambda d: d.endswith("\n\n"))
    rows = {f[0]: f[1:] for f in (line.split("\t") for line in out.split("\n")[1:] if line)}
    assert rows[FOURTH][0] == "failing" and int(rows[FOURTH][1]) > 0
    assert rows[FOURTH][2].startswith("connect failed: Connection refused")
    assert rows[BACKEND_IPS[0]][0] == "ok" and rows[BACKEND_IPS[0]][2] == ""
    # users the ring gives to the dead backend go to the next host instead
    four = BACKEND_IPS + [FOURTH]
    movers = [u for u in USERS if dovecot_host(four, u) == FOURTH][:2]
    m = login(loft, movers[0])
    assert current(loft, movers[0]) == dovecot_host(BACKEND_IPS, movers[0])
    m.logout()
    # doveadm still sees Dovecot's columns only
    r = subprocess.run(["doveadm", "-f", "tab", "director", "status", "-a", loft.admin],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.splitlines()[0].split("\t")[-1] == "users"

    fourth.start()
    wait_health(loft, FOURTH, "ok")
    assert "director: backend %s passed 2 health checks in a row" % FOURTH \
        in loft.log_text()
    m = login(loft, movers[1])
    assert current(loft, movers[1]) == FOURTH
    m.logout()

    # an admin's down wins over passing checks
    assert loftadm("director", "down", "-a", loft.admin, FOURTH).returncode == 0
    assert health_column(loft)[FOURTH] == ("down", "ok")
    r = loftadm("director", "flush", "-a", loft.admin, FOURTH)
    assert r.returncode == 0, r.stderr
    m = login(loft, movers[1])
    assert current(loft, movers[1]) == dovecot_host(BACKEND_IPS, movers[1])
    m.logout()


def test_a_failing_backend_with_an_idle_user_reroutes_it(loft_factory, fourth):
    fourth.start()
    loft = loft_factory(penalty="false", director_extra=HEALTH % "")
    assert loftadm("director", "add", "-a", loft.admin, FOURTH).returncode == 0
    wait_health(loft, FOURTH, "ok")
    four = BACKEND_IPS + [FOURTH]
    user = next(u for u in USERS if dovecot_host(four, u) == FOURTH)
    m = login(loft, user)
    assert current(loft, user) == FOURTH
    m.logout()
    fourth.stop()
    wait_health(loft, FOURTH, "failing")
    # its assignment points at a failing host and it has no session: it is
    # routed afresh rather than sent to a dead backend
    m = login(loft, user)
    assert current(loft, user) == dovecot_host(BACKEND_IPS, user)
    m.logout()


def test_checks_that_log_in(loft_factory):
    loft = loft_factory(penalty="false", director_extra=LOGIN_HEALTH % "wrong",
                        log_level="debug")
    wait_health(loft, BACKEND_IPS[1], "failing")
    # (Dovecot's own auth penalty then slows its answers past the timeout)
    assert "health check of %s failed: login as user40 refused: authentication " \
        "failed" % BACKEND_IPS[1] in loft.log_text()
    # every backend failing: no host is left, a login fails at once
    for ip in BACKEND_IPS:
        wait_health(loft, ip, "failing")
    m = IMAP(LOFT_IP, loft.port)
    with pytest.raises(IMAP.error):
        m.login("user1", "pass")
    m.logout()

    good = loft_factory(penalty="false", director_extra=LOGIN_HEALTH % "pass")
    for ip in BACKEND_IPS:
        wait_health(good, ip, "ok")
    # (only the checks: the start-up probe's own connection may log
    # "client connection failed" when it resets)
    assert "health checks in a row" not in good.log_text()


def test_no_checks_no_column(loft_factory):
    loft = loft_factory()
    r = loftadm("-f", "tab", "director", "status", "-a", loft.admin)
    assert r.stdout.splitlines()[0].split("\t")[-1] == "users"
    assert admin_raw(loft.admin, ["HOST-HEALTH"], lambda d: d.endswith("\n\n")) == \
        "VERSION\tdirector-doveadm\t1\t0\n\n"
