"""The Prometheus endpoint (metrics.*, loftd(8) METRICS) with real logins
against real Dovecot backends: scraped with urllib and checked for the
values the test caused (a good login, a failed one, a kick, a move, a
backend that refuses connections), checked with `promtool check
metrics`, its HTTP manners (404, 405, HEAD, pipelining, the idle
timeout), and scraped by a real Prometheus server whose HTTP API is
asked for a value the test caused."""
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import etcdlib
import loftlib
from conftest import BACKEND_IPS, LOFT_IP, NET
from imaputil import IMAP, dovecot_host

loftadm = loftlib.loftadm

METRICS_PORT = 19101
FOURTH = "%s.14" % NET          # in the host list, nothing listens there
# users the hash gives to a live backend with FOURTH in the list (which
# ones depends on the test net's addresses)
LIVE = [u for u in ("user%d" % i for i in range(1, 41))
        if dovecot_host(BACKEND_IPS + [FOURTH], u) != FOURTH]
PROMETHEUS_IP = "%s.90" % NET
PROMETHEUS_PORT = 19090
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def metrics_conf(port=METRICS_PORT, timeout="10s"):
    return 'metrics = { address = "%s"; port = %d; timeout = "%s"; };' % (
        LOFT_IP, port, timeout)


def url(port=METRICS_PORT, path="/metrics"):
    return "http://%s:%d%s" % (LOFT_IP, port, path)


def scrape(port=METRICS_PORT):
    with urllib.request.urlopen(url(port), timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return r.read().decode()


def parse(text):
    """{(name, ((label, value), ...)): value} of every sample."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = tuple(sorted(LABEL.findall(m.group(2) or "")))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def total(samples, name, **labels):
    """The sum over the samples of name that have these labels."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def backend_of(loft, user):
    r = loftadm("director", "status", "-a", loft.admin, user)
    return r.stdout.splitlines()[0].split()[1]


def promtool_check(text):
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", \
        "promtool: %d %s%s" % (r.returncode, r.stdout, r.stderr)


@pytest.fixture
def mloft(loft_factory):
    """A loftd with the metrics endpoint on; FOURTH is one of its hosts
    (the tests log in as LIVE users only, or move them there) and a backend connection fails
    within a second."""
    return loft_factory(penalty="false", connect_timeout="1s",
                        servers=", ".join('"%s"' % ip for ip in BACKEND_IPS + [FOURTH]),
                        extra_conf=metrics_conf())


def test_off_by_default(loft_factory):
    loft = loft_factory(penalty="false")
    out = subprocess.run([loft.binary(), "-n", "-c", loft.conf], capture_output=True,
                         text=True, check=True).stdout
    assert re.search(r"^metrics\s*=\s*\{[^}]*\bport\s*=\s*0\s*;", out, re.M | re.S), out
    assert "metrics on" not in loft.log_text()
    assert not loftlib.port_open(LOFT_IP, 9101)


def test_logins_kicks_and_bytes(mloft):
    before = parse(scrape())
    good = IMAP(LOFT_IP, mloft.port)
    good.login(LIVE[0], "pass")
    good.noop()
    bad = IMAP(LOFT_IP, mloft.port)
    with pytest.raises(IMAP.error):
        bad.login(LIVE[1], "wrong")
    bad.logout()
    text = scrape()
    promtool_check(text)
    after = parse(text)

    def delta(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("loft_connections_total", protocol="imap", result="accepted") == 2
    assert delta("loft_logins_total", protocol="imap", result="ok") == 1
    assert delta("loft_logins_total", protocol="imap", result="auth_failed") == 1
    assert delta("loft_logins_total", protocol="imap") == 2
    assert delta("loft_logins_total", protocol="pop3") == 0
    # passdb "backend": the backend checked both passwords; a wrong one is
    # not the backend's failure
    assert delta("loft_backend_connections_total") == 2
    assert delta("loft_backend_failures_total") == 0
    assert value(after, "loft_sessions", protocol="imap", state="proxying") == 1
    be = backend_of(mloft, LIVE[0])
    assert value(after, "loft_backend_sessions", backend=be) == 1
    assert value(after, "loft_backend_users", backend=be, tag="") >= 1
    # one login through to proxying, its backend login inside it
    assert delta("loft_login_duration_seconds_count") == 1
    assert delta("loft_backend_login_duration_seconds_count") == 1
    assert value(after, "loft_login_duration_seconds_bucket", le="+Inf") == \
        value(after, "loft_login_duration_seconds_count")
    assert 0 < delta("loft_login_duration_seconds_sum") < 60
    assert delta("loft_relayed_bytes_total", direction="to_backend") > 0
    assert delta("loft_relayed_bytes_total", direction="to_client") > 0
    assert value(after, "process_open_fds") > 0
    assert value(after, "process_resident_memory_bytes") > 1 << 20
    assert abs(value(after, "process_start_time_seconds") - time.time()) < 600

    r = loftadm("kick", "-a", mloft.admin, LIVE[0])
    assert r.returncode == 0, r.stdout + r.stderr
    loftlib.wait_for(lambda: value(parse(scrape()), "loft_sessions", protocol="imap",
                                   state="proxying") == 0, 10, "the kicked session to end")
    end = parse(scrape())
    assert total(end, "loft_kicks_total") - total(before, "loft_kicks_total") == 1
    assert value(end, "loft_backend_sessions", backend=be) == 0


def test_limits_counted(loft_factory):
    loft = loft_factory(penalty="false", max_userip=1, extra_conf=metrics_conf() +
                        "\nlimits = { max_prelogin_per_ip = 1; };")
    before = parse(scrape())
    first = IMAP(LOFT_IP, loft.port)        # holds the address's pre-login slot
    with socket.create_connection((LOFT_IP, loft.port), 5) as s:
        assert s.recv(200).startswith(b"* BYE [UNAVAILABLE] Too many connections")
    first.login("user6", "pass")            # the slot is free again
    second = IMAP(LOFT_IP, loft.port)
    with pytest.raises(IMAP.error, match="Maximum number of connections"):
        second.login("user6", "pass")
    after = parse(scrape())

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)
    assert delta("loft_connections_total", protocol="imap", result="limit") == 1
    assert delta("loft_connections_total", protocol="imap", result="accepted") == 2
    assert delta("loft_logins_total", protocol="imap", result="ok") == 1
    assert delta("loft_logins_total", protocol="imap", result="limit") == 1
    first.logout()
    second.logout()


def test_move_flush_and_a_failing_backend(mloft):
    before = parse(scrape())
    r = loftadm("director", "move", "-a", mloft.admin, "user3", FOURTH)
    assert r.returncode == 0, r.stdout + r.stderr
    m = IMAP(LOFT_IP, mloft.port)
    with pytest.raises(IMAP.error):
        m.login("user3", "pass")
    m.logout()
    after = parse(scrape())
    assert value(after, "loft_moves_total") - value(before, "loft_moves_total") == 1
    assert value(after, "loft_backend_users", backend=FOURTH, tag="") == 1
    assert value(after, "loft_backend_connections_total", backend=FOURTH) - \
        value(before, "loft_backend_connections_total", backend=FOURTH) == 1
    assert value(after, "loft_backend_failures_total", backend=FOURTH) - \
        value(before, "loft_backend_failures_total", backend=FOURTH) == 1
    assert total(after, "loft_logins_total", result="backend_failed") - \
        total(before, "loft_logins_total", result="backend_failed") == 1

    assert value(after, "loft_backend_up", backend=FOURTH) == 1
    assert loftadm("director", "down", "-a", mloft.admin, FOURTH).returncode == 0
    assert value(parse(scrape()), "loft_backend_up", backend=FOURTH) == 0
    assert loftadm("director", "flush", "-a", mloft.admin, FOURTH).returncode == 0
    end = parse(scrape())
    assert value(end, "loft_flushes_total") - value(before, "loft_flushes_total") == 1
    promtool_check(scrape())


def test_health_checks_counted(loft_factory):
    health = 'health = { interval = "200ms"; timeout = "1s"; fall = 2; rise = 2; };'
    loft = loft_factory(penalty="false", director_extra=health, extra_conf=metrics_conf(),
                        servers=", ".join('"%s"' % ip for ip in BACKEND_IPS + [FOURTH]))

    def figures():
        s = parse(scrape())
        return (value(s, "loft_health_checks_total", backend=BACKEND_IPS[0],
                      result="passed"),
                value(s, "loft_health_checks_total", backend=FOURTH, result="failed"),
                value(s, "loft_backend_health", backend=BACKEND_IPS[0], state="ok"),
                value(s, "loft_backend_health", backend=FOURTH, state="failing"))
    loftlib.wait_for(lambda: (lambda f: f[0] >= 2 and f[1] >= 2 and f[2] == 1 and
                              f[3] == 1)(figures()), 15, "health verdicts in the metrics")
    s = parse(scrape())
    assert value(s, "loft_health_checks_total", backend=BACKEND_IPS[0], result="failed") == 0
    assert value(s, "loft_backend_health", backend=FOURTH, state="ok") == 0
    promtool_check(scrape())


def http_raw(request, port=METRICS_PORT):
    """Sends raw bytes on one connection; returns everything until the
    server closes it."""
    with socket.create_connection((LOFT_IP, port), 5) as s:
        s.sendall(request)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


def test_http_manners(loft_factory):
    loft = loft_factory(penalty="false", extra_conf=metrics_conf(timeout="1s"))
    for path in ("/", "/metricsx", "/metrics/x"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url(path=path), timeout=5)
        assert e.value.code == 404
    req = urllib.request.Request(url(), data=b"x=1", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 405 and e.value.headers["Allow"] == "GET, HEAD"
    with urllib.request.urlopen(urllib.request.Request(url(), method="HEAD"),
                                timeout=5) as r:
        assert r.status == 200 and r.read() == b""
    # a query string does not change the path
    with urllib.request.urlopen(url(path="/metrics?x=1"), timeout=5) as r:
        assert b"loft_logins_total" in r.read()
    # pipelined requests: answered one after the other, in order
    one = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = http_raw(one + one + last)
    assert [int(c) for c in re.findall(rb"^HTTP/1\.1 (\d+)", out, re.M)] == [200, 200, 404]
    # an idle connection is closed after metrics.timeout
    t0 = time.monotonic()
    with socket.create_connection((LOFT_IP, METRICS_PORT), 5) as s:
        s.settimeout(10)
        assert s.recv(1) == b""
    assert 0.5 < time.monotonic() - t0 < 5
    # a flood of pipelined requests nobody reads: loftd reads a little and
    # stops, and the connection ends at the timeout; scrapes go on
    with socket.create_connection((LOFT_IP, METRICS_PORT), 5) as s:
        s.setblocking(False)
        sent, chunk = 0, one * 1024
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if not select.select([], [s], [], 0.5)[1]:
                break       # stuck for half a second: loftd stopped reading
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                pass
            except OSError:
                break       # closed at the timeout
        assert sent < 16 << 20, "loftd kept reading: %d bytes" % sent
        assert "loft_logins_total" in scrape()
    assert "loft_logins_total" in scrape()
    assert loft.proc.poll() is None


def test_config_errors_and_reload(loft_factory):
    loft = loft_factory(start=False, extra_conf='metrics = { address = "localhost"; '
                        'port = %d; };' % METRICS_PORT)
    r = subprocess.run([loft.binary(), "-c", loft.conf], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0
    assert "metrics.address: 'localhost' is not an IP address" in r.stderr
    # the port is taken: loftd says so and does not start
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind((LOFT_IP, METRICS_PORT))
        taken.listen(1)
        loft = loft_factory(start=False, extra_conf=metrics_conf())
        r = subprocess.run([loft.binary(), "-c", loft.conf], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode != 0
        assert re.search(r"metrics.*cannot listen on %s port %d: Address already in use"
                         % (re.escape(LOFT_IP), METRICS_PORT), r.stderr), r.stderr
    # a reload keeps the running endpoint: a new address needs a restart
    loft = loft_factory(extra_conf=metrics_conf())
    with open(loft.conf) as f:
        conf = f.read()
    with open(loft.conf, "w") as f:
        f.write(conf.replace("port = %d;" % METRICS_PORT, "port = %d;" % (METRICS_PORT + 1)))
    loft.proc.send_signal(signal.SIGHUP)
    loftlib.wait_for(lambda: "reload done" in loft.log_text(), 10, "the reload")
    assert "reload: metrics.port changed, but only a restart applies it" in loft.log_text()
    assert "loft_logins_total" in scrape()
    assert not loftlib.port_open(LOFT_IP, METRICS_PORT + 1)


PROMETHEUS_CONF = """\
global:
  scrape_interval: 200ms
  scrape_timeout: 150ms
scrape_configs:
  - job_name: loft
    static_configs:
      - targets: ["{target}"]
"""


class Prometheus:
    """A real Prometheus server on loopback, with its own config and data."""

    def __init__(self, target):
        self.dir = tempfile.mkdtemp(prefix="loft-prom-", dir="/tmp")
        conf = os.path.join(self.dir, "prometheus.yml")
        with open(conf, "w") as f:
            f.write(PROMETHEUS_CONF.format(target=target))
        self.log = open(os.path.join(self.dir, "prometheus.log"), "wb")
        self.api = "http://%s:%d/api/v1/" % (PROMETHEUS_IP, PROMETHEUS_PORT)
        self.proc = subprocess.Popen(
            ["prometheus", "--config.file=" + conf,
             "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=%s:%d" % (PROMETHEUS_IP, PROMETHEUS_PORT)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)

    def get(self, what, **params):
        with urllib.request.urlopen(self.api + what + "?" + urllib.parse.urlencode(params),
                                    timeout=5) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr):
        """The value of an instant query's only series, or None."""
        try:
            result = self.get("query", query=expr)["result"]
        except (OSError, urllib.error.URLError):
            return None     # not up yet
        return float(result[0]["value"][1]) if len(result) == 1 else None

    def log_text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def stop(self):
        rc = loftlib.terminate(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


@pytest.fixture
def prometheus():
    p = Prometheus("%s:%d" % (LOFT_IP, METRICS_PORT))
    yield p
    assert p.stop() == 0


def test_prometheus_scrapes_loftd(loft_factory, prometheus):
    loft = loft_factory(penalty="false", extra_conf=metrics_conf())
    expr = 'loft_logins_total{job="loft",protocol="imap",result="auth_failed"}'
    # Prometheus scrapes: the target is up and the series is there
    loftlib.wait_for(lambda: prometheus.query(expr) == 0, 30,
                     "Prometheus to scrape loftd: %s" % prometheus.log_text()[-2000:])
    assert prometheus.query('up{job="loft"}') == 1
    for user in ("user4", "user5"):
        m = IMAP(LOFT_IP, loft.port)
        with pytest.raises(IMAP.error):
            m.login(user, "wrong")
        m.logout()
    loftlib.wait_for(lambda: prometheus.query(expr) == 2, 15,
                     "Prometheus to see the two failed logins")
    targets = prometheus.get("targets")["activeTargets"]
    assert [(t["health"], t["lastError"]) for t in targets] == [("up", "")]


@pytest.fixture
def etcd1(cluster):
    """One etcd member: enough for a node's ring figures."""
    c = etcdlib.EtcdCluster(os.path.join(cluster.base, "etcd-metrics"), NET, n=1)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def test_ring_figures(loft_factory, etcd1):
    ring = ('ring = { etcd = [ "%s" ]; prefix = "/loft-metrics/"; port = 9090; '
            'lease_ttl = "3s"; };' % etcd1.endpoints()[0])
    loft = loft_factory(penalty="false", extra_conf=metrics_conf() + "\n" + ring)

    def state():
        s = parse(scrape())
        return [k[1][0][1] for k, v in s.items() if k[0] == "loft_ring_state" and v == 1]
    loftlib.wait_for(lambda: state() == ["synced"], 10, "the node synced")
    s = parse(scrape())
    assert value(s, "loft_ring_members", status="synced") == 1
    assert total(s, "loft_ring_members") == 1
    assert value(s, "loft_ring_etcd_ping_seconds") < 3
    promtool_check(scrape())
    # etcd stops answering: past its lease the node fences itself, and
    # says so here too
    etcd1.members[0].freeze()
    try:
        loftlib.wait_for(lambda: state() == ["fenced"], 15, "the node fenced")
        assert value(parse(scrape()), "loft_ring_members", status="fenced") == 1
    finally:
        etcd1.members[0].thaw()
    loftlib.wait_for(lambda: state() == ["synced"], 15, "the node synced again")
