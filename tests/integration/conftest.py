"""Fixtures: three private Dovecot backends for the whole run, and loftd
processes made per test or per module. Every loftd is stopped with SIGTERM
at teardown and must exit 0 without sanitizer reports.

Everything listens in one loopback /24, NET, chosen per run: a random
127.a.b whose nets are free (LOFT_TEST_NET=127.a.b sets it). Under
pytest-xdist each worker gw<n> has its own, loftlib.shifted_net(that, n):
127.a.b, 127.a+1.b, ..., with its own backends, so ports repeat freely."""
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loftlib  # noqa: E402

# Chosen once, before xdist starts its workers: they inherit it. Room for
# 16 workers' nets is checked free.
if not os.environ.get("LOFT_TEST_NET"):
    os.environ["LOFT_TEST_NET"] = loftlib.free_net(16)
RUN_NET = os.environ["LOFT_TEST_NET"]
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
NET = loftlib.shifted_net(RUN_NET, int(WORKER[2:]))
BACKEND_IPS = ["%s.%d" % (NET, i) for i in (11, 12, 13)]
LOFT_IP = "%s.1" % NET
CLIENT_IP = "%s.200" % NET
RELAY_IP = "%s.253" % NET       # the SMTP sink the backends' submission relays to
BACKEND_PORT = 20143
BACKEND_TLS_PORT = 20993
USERS = {"user%d" % i: "pass" for i in range(1, 41)}
USERS.update({"jane": "Sécret pw", "bob": "bobpw"})
# more users than one etcd transaction can pin (tests/integration/test_ring.py)
USERS.update({"bulk%d" % i: "pass" for i in range(1, 301)})


def pytest_configure(config):
    if os.geteuid() != 0:
        pytest.exit("the integration tests start Dovecot backends and need root "
                    "(run them through the README's test command)", returncode=1)


def pytest_report_header(config):
    return "loft test net: LOFT_TEST_NET=%s (xdist worker gw<n>: its second byte + n)" \
        % RUN_NET


@pytest.fixture(scope="session")
def cluster():
    if NET in loftlib.listening_nets():
        raise RuntimeError("something already listens in %s.0/24 (a leftover loftd or "
                           "Dovecot of a killed run?): stop it or choose another "
                           "LOFT_TEST_NET" % NET)
    base = tempfile.mkdtemp(prefix="loft-it-", dir="/tmp")
    c = loftlib.Cluster(base, BACKEND_IPS, BACKEND_PORT, USERS,
                        tls_port=BACKEND_TLS_PORT, cert_ips=[LOFT_IP], relay_ip=RELAY_IP)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        shutil.rmtree(base, ignore_errors=True)


class LoftFactory:
    def __init__(self, cluster):
        self.cluster = cluster
        self.next_port = 11143
        self.started = []

    def __call__(self, start=True, **opts):
        port = self.next_port
        self.next_port += 2
        loft = loftlib.Loftd(self.cluster.base, LOFT_IP, port, port + 1,
                             self.cluster, **opts)
        if start:
            loft.start()
            self.started.append(loft)
        return loft

    def stop_all(self):
        problems = []
        for loft in self.started:
            rc = loft.stop()
            reports = loft.sanitizer_reports()
            if rc != 0 or reports:
                problems.append("loftd %s: exit %s %s\n%s" % (
                    loft.conf, rc, reports, loft.log_text()[-4000:]))
        self.started = []
        assert not problems, "\n".join(problems)


@pytest.fixture
def loft_factory(cluster):
    f = LoftFactory(cluster)
    yield f
    f.stop_all()


@pytest.fixture(scope="module")
def loft(cluster):
    """A loftd with the backend passdb, shared by a module's tests. Its auth
    penalty is off: one test's failed logins must not slow the next test's
    (the penalty's own tests make their own loftd)."""
    f = LoftFactory(cluster)
    f.next_port = 10143
    loft = f(penalty="false")
    yield loft
    f.stop_all()
