"""The director ring's costs against issue 13's goals, on loopback
(doc/ring.md; the figures, and what explains them, are in
docs/BENCHMARKS.md under "Director ring"), and ring-wide who and kick
at scale against issue 14's (under "ring-wide who and kick"):

  make bench-ring [BENCH_ARGS="..."]          (as root)
  python3 bench/ring.py [--build DIR] [--net 127.a.b]
        [--figures cpu,requests,changes,move,join] [--rounds 5] [--seconds 5]
        [--clients 32] [--count-seconds 10] [--changes 100] [--moves 100]
        [--pins 100000 | --million] [--join-rounds 3]
  make bench-ring-sessions [BENCH_ARGS="..."]  (issue 14's scale figure)
  python3 bench/ring.py --build build-bench [--normal-build build]
        --figures sessions [--sessions 200000] [--session-rounds 5] [--tls-links]

The net is --net, else $LOFT_TEST_NET, else a random free one; the load
comes from the next net in the second byte (127.a+1.b.1-60). A private
3-member etcd (tests/integration/etcdlib.py) on <net>.51-53, the bench
backend (bench/backend, any password) on <net>.11-18, a lone loftd on
<net>.1 and three ring nodes on <net>.2-4 (a joining fourth on .5), all in
front of the same backend. Figures:

  cpu       loftd's CPU per login through ring node 1 against the lone
            loftd, interleaved rounds of `loadgen cycle` (goal: ratio <= 1.05)
  requests  etcd requests per 1,000 logins of users with no pin, through all
            three nodes: every member's grpc_server_started_total before and
            after, the nodes' lease keepalives apart (goal: 0)
  changes   host changes on node 1 (add, then remove, an extra host) sent as
            doveadm sends them: until every node routes a user of the extra
            host by it, idle and with 1,000 user records per node (goal:
            median and p99 < 100 ms)
  move      USER-MOVE on node 1 of a user with a session open on each node,
            director.user_kick_delay = 0 on the nodes (nothing subtracted):
            until a login on every node lands on the new host (goal: median
            and p99 < 200 ms)
  join      N pins written into etcd, then a fourth node started: from its
            exec to a login answered (goal: < 2 s at 1,000,000, --million),
            and the bytes each pin costs etcd
  sessions  (not by default: it needs a bench build, make BUILD=build-bench
            BENCH_HOOKS=1, whose admin socket has BENCH-FAKE-SESSIONS,
            src/admin/cmd_bench.c) the ring with ring.secret, --sessions
            synthetic sessions spread evenly over its nodes (users
            n<node>-a-<i> on backend 10.255.0.1 and n<node>-b-<i> on
            10.255.0.2, two sessions each), then from node 1, timed from
            loftadm's exec to its exit, with node 1's CPU (the asking node)
            and the others' meanwhile: loftadm who (grouped), who -1,
            -f tab proxy list, and kicks of half the sessions by -h
            10.255.0.1 and by the mask *a-* (the sessions refilled between
            kicks) (goals: who < 1 s, kick < 200 ms); and, loftadm apart,
            RING-ALL SESSION-LIST on node 1's admin socket read at once
            (when each node's block arrives) and node 2's own SESSION-LIST

Every load is bounded (seconds or counts) and every wait has a deadline.
The machine is shared and has 2 cores: compare the ratios of one run. Each
figure is printed as it is measured, the goals in a table at the end."""
import argparse
import base64
import hashlib
import http.client
import json
import math
import os
import re
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import loftlib  # noqa: E402

FIGURES = ("cpu", "requests", "changes", "move", "join")
EXTRA_FIGURES = ("sessions",)	# asked for by name only
RING_SECRET = "bench-ring-secret-0123456789"
FAKE_BACKENDS = ("10.255.0.1", "10.255.0.2")	# cmd_bench.c's defaults
PREFIX = "/loft-bench/"
LEASE_TTL_S = 10		# ring.lease_ttl's default: keepalives every 3.3 s
PIN_HOLDER = "bench-pins"	# the pins' holder: no node of the ring
TXN_OPS = 128			# etcd's --max-txn-ops default
TXN_TRIES = 10


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--net", default=os.environ.get("LOFT_TEST_NET"),
                    help="a free 127.a.b (default: $LOFT_TEST_NET, else a random free one)")
    ap.add_argument("--figures", default=",".join(FIGURES))
    ap.add_argument("--rounds", type=int, default=5, help="cpu: rounds of each")
    ap.add_argument("--seconds", type=float, default=5.0, help="cpu: seconds per round")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--count-seconds", type=float, default=10.0,
                    help="requests: seconds of logins counted")
    ap.add_argument("--changes", type=int, default=100,
                    help="changes: host changes timed per condition (half add, half remove)")
    ap.add_argument("--doveadm-changes", type=int, default=10,
                    help="changes: more through doveadm itself, process start included")
    ap.add_argument("--moves", type=int, default=100, help="move: moves timed")
    ap.add_argument("--pins", type=int, default=100000, help="join: pinned users")
    ap.add_argument("--million", action="store_true", help="join: --pins 1000000")
    ap.add_argument("--join-rounds", type=int, default=3)
    ap.add_argument("--join-timeout", type=float, default=120.0)
    ap.add_argument("--writers", type=int, default=3,
                    help="join: threads writing the pins, one connection each")
    ap.add_argument("--sessions", type=int, default=200000,
                    help="sessions: synthetic sessions over the 3 nodes")
    ap.add_argument("--session-rounds", type=int, default=5,
                    help="sessions: timed runs of each command")
    ap.add_argument("--normal-build", help="sessions: a normal build whose loftd must "
                    "not have the bench hooks (checked)")
    ap.add_argument("--tls-links", action="store_true",
                    help="sessions: the links are TLS (ring.tls_cert, one CA) besides "
                    "the secret")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    if args.million:
        args.pins = 1000000
    args.figures = [f for f in args.figures.split(",") if f]
    bad = [f for f in args.figures if f not in FIGURES + EXTRA_FIGURES]
    if bad:
        ap.error("unknown figure %s (known: %s)" % (",".join(bad),
                                                     ",".join(FIGURES + EXTRA_FIGURES)))
    return args


# harness.systems reads both nets when imported
ARGS = parse_args()
os.environ["LOFT_BENCH_NET"] = ARGS.net or os.environ.get("LOFT_BENCH_NET") or \
    loftlib.free_net(2)
os.environ.setdefault("LOFT_BENCH_SOURCE_NET",
                      loftlib.shifted_net(os.environ["LOFT_BENCH_NET"], 1))

import etcdlib  # noqa: E402
from compare import Failure, loadgen, machine  # noqa: E402
from harness import procstat  # noqa: E402
from harness.systems import (BACKEND_IPS, BACKEND_LMTP_PORT, BACKEND_PORT, IMAP_PORT,  # noqa: E402
                             IMAPS_PORT, LMTP_PORT, LOFT_CONF, NET, SOURCES, Backend,
                             Loft)

b64 = etcdlib.b64


def now():
    return time.monotonic()


def pct(values, q):
    """The q-quantile (0..1) by the nearest rank: of 100, p99 is the 99th."""
    return sorted(values)[max(0, math.ceil(q * len(values)) - 1)]


def ms3(values):
    """"p50 / p99 / max" in ms of values in seconds."""
    v = [x * 1000 for x in values]
    return "%.1f / %.1f / %.1f" % (statistics.median(v), pct(v, 0.99), max(v))


def under(values, limit):
    """The goal's verdict: median and p99 of values below limit."""
    return "met" if statistics.median(values) < limit and pct(values, 0.99) < limit \
        else "**missed**"


# ---- the systems -------------------------------------------------------------

class RingNode(Loft):
    """loftd as a node of the ring: the lone loftd's config (bench/harness)
    plus a ring block; it listens at once and serves once it has read the
    ring's state."""

    def __init__(self, build, base, index, etcd, log_level="warning", ring_extra=""):
        self.name = "ring%d" % (index + 1)
        self.ip = "%s.%d" % (NET, 2 + index)
        self.etcd, self.log_level, self.ring_extra = etcd, log_level, ring_extra
        super().__init__(build, base)
        self.admin = os.path.join(self.dir, "run", "admin")
        self.log_path = os.path.join(self.dir, "loftd.log")

    def write_conf(self):
        certs = loftlib.make_certs(self.dir, [self.ip])
        conf = LOFT_CONF.format(
            dir=self.dir, ip=self.ip, port=IMAP_PORT, tls_port=IMAPS_PORT,
            cert=certs["cert"], key=certs["key"], backend_port=BACKEND_PORT,
            lmtp_port=LMTP_PORT, backend_lmtp_port=BACKEND_LMTP_PORT, servers=", ".join('"%s"' % ip for ip in BACKEND_IPS))
        conf = conf.replace('level = "warning"', 'level = "%s"' % self.log_level)
        # the move figure excludes the kick delay by setting it to 0
        conf = conf.replace("director = {", 'director = { user_kick_delay = "0";')
        endpoints = ", ".join('"%s"' % e for e in self.etcd.endpoints())
        conf += ('ring = { etcd = [ %s ]; prefix = "%s"; port = 9090; '
                 'lease_ttl = "%ds"; %s };\n' % (endpoints, PREFIX, LEASE_TTL_S,
                                                 self.ring_extra))
        self.conf = os.path.join(self.dir, "loft.conf")
        with open(self.conf, "w") as f:
            f.write(conf)

    def spawn(self):
        """Starts loftd; returns at once."""
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([os.path.join(self.build, "loftd"), "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def start(self):
        self.write_conf()
        self.spawn()
        wait_serving(self.ip, self.proc, 60)
        loftlib.wait_for(lambda: os.path.exists(self.admin), 10, "%s's admin socket"
                         % self.name)


def recv_line(sock, buf, deadline):
    """(line without CRLF, rest of the buffer); raises on EOF or timeout."""
    while b"\n" not in buf:
        left = deadline - now()
        if left <= 0:
            raise TimeoutError("no line")
        sock.settimeout(left)
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("closed")
        buf += data
    line, rest = buf.split(b"\n", 1)
    return line.rstrip(b"\r").decode(errors="replace"), rest


def imap_login(sock, user, deadline, logout=True):
    """Greeting and LOGIN on a connected socket (then LOGOUT): the
    monotonic time the tagged OK arrived, None if it was not OK."""
    line, buf = recv_line(sock, b"", deadline)
    if not line.startswith("* OK"):
        return None
    sock.sendall(b"a LOGIN %s pass\r\n" % user.encode())
    while not line.startswith("a "):
        line, buf = recv_line(sock, buf, deadline)
    at = now()
    if not line.startswith("a OK"):
        return None
    if logout:
        sock.sendall(b"b LOGOUT\r\n")
    return at


def wait_serving(ip, proc, timeout, user="probe"):
    """Waits until a login through ip succeeds; returns the monotonic time
    its tagged OK arrived. A ring node accepts once it has read the ring: a
    connection made early waits in the listen queue until then."""
    deadline = now() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise Failure("loftd exited %d before serving" % proc.returncode)
        if now() > deadline:
            raise Failure("%s did not serve a login within %.0f s" % (ip, timeout))
        try:
            with socket.create_connection((ip, IMAP_PORT), timeout=0.2) as sock:
                at = imap_login(sock, user, deadline)
                if at is not None:
                    return at
        except (OSError, TimeoutError):
            pass
        time.sleep(0.002)


class Admin:
    """The director-admin protocol on loftd's admin socket, as doveadm
    speaks it, and loft's SESSION-LIST."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        version = self.line(now() + 10)
        if not version.startswith("VERSION\tdirector-doveadm\t1\t"):
            raise Failure("admin: unexpected greeting %r" % version)
        self.sock.sendall(b"VERSION\tdirector-doveadm\t1\t0\n")

    def line(self, deadline):
        line, self.buf = recv_line(self.sock, self.buf, deadline)
        return line

    def cmd(self, text, timeout=40):
        self.sock.sendall(text.encode() + b"\n")
        return self.line(now() + timeout)

    def block(self, text, timeout=40):
        self.sock.sendall(text.encode() + b"\n")
        out = []
        deadline = now() + timeout
        while True:
            line = self.line(deadline)
            if line == "":
                return out
            out.append(line)

    def lookup(self, user):
        """(current, hashed) host of a user name or hash."""
        f = self.cmd("USER-LOOKUP\t%s" % user).split("\t")
        return f[0], f[2]

    def session_backend(self, user, client_port):
        """The backend address of the user's session from client_port."""
        for line in self.block("SESSION-LIST\tuser=%s" % user):
            f = line.split("\t")
            if f[5] == str(client_port):
                return f[6]
        return None

    def close(self):
        self.sock.close()


def each_admin(nodes, fn):
    """fn(Admin) on every node, one connection each: the results."""
    out = []
    for n in nodes:
        ad = Admin(n.admin)
        try:
            out.append(fn(ad))
        finally:
            ad.close()
    return out


def cycles(build, target, clients, seconds, roots=None):
    """loadgen cycle (connect, LOGIN, LOGOUT over user0..user999) against
    target; its result, with the CPU seconds of each named tree of roots."""
    roots = roots or {}
    before = {k: procstat.cpu_seconds(v) for k, v in roots.items()}
    out = loadgen(build, ["cycle", "-t", target, "-c", str(clients), "-d", str(seconds),
                          "-u", "1000", "-S", SOURCES], seconds + 60)
    out["cpu"] = {k: procstat.cpu_seconds(v) - before[k] for k, v in roots.items()}
    if out["errors"] or out["cycles"] == 0:
        raise Failure("login cycles through %s failed: %s" % (target, out))
    return out


# ---- etcd ----------------------------------------------------------------------

def prefix_end(prefix):
    b = bytearray(prefix.encode())
    b[-1] += 1
    return bytes(b)


METRIC = re.compile(r'^grpc_server_started_total'
                    r'\{grpc_method="([^"]+)",grpc_service="([^"]+)",[^}]*\} (\S+)$')


def grpc_started(cluster):
    """{service.method: gRPC calls started} summed over every member."""
    total = {}
    for m in cluster.members:
        with etcdlib._opener().open(m.client_url + "/metrics", timeout=10) as r:
            text = r.read().decode()
        for line in text.splitlines():
            g = METRIC.match(line)
            if g:
                key = "%s.%s" % (g.group(2).split(".")[-1], g.group(1))
                total[key] = total.get(key, 0) + float(g.group(3))
    return total


def count_pins(cluster):
    status, body = cluster.leader().post("/v3/kv/range", {
        "key": b64(PREFIX + "pins/"), "range_end": b64(prefix_end(PREFIX + "pins/")),
        "count_only": True}, timeout=30)
    return int(body.get("count", 0)) if status == 200 else None


def gateway(member, path, body, timeout=120):
    """One POST on a connection of its own: (seconds, status, reply bytes)."""
    conn = http.client.HTTPConnection(member.ip, etcdlib.CLIENT_PORT, timeout=timeout)
    try:
        t0 = now()
        conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json",
                                                      "Grpc-Metadata-hasleader": "true"})
        r = conn.getresponse()
        return now() - t0, r.status, r.read()
    finally:
        conn.close()


def range_read(member, page=0, timeout=300.0):
    """The whole prefix read through the gateway as loftd reads it when it
    joins (page 0: one request), or in pages at one revision: (seconds,
    reply bytes, keys), or what went wrong."""
    key, rev, size, keys = b64(PREFIX), 0, 0, 0
    t0 = now()
    while True:
        body = {"key": key, "range_end": b64(prefix_end(PREFIX)), "limit": page}
        if rev:
            body["revision"] = rev
        try:
            _, status, data = gateway(member, "/v3/kv/range", body,
                                      timeout=max(1.0, t0 + timeout - now()))
        except (OSError, http.client.HTTPException) as e:
            return "%s after %.1f s" % (e or "timed out", now() - t0)
        if status != 200:
            return "HTTP %d %s after %.1f s" % (status, data[:200], now() - t0)
        size += len(data)
        if not page:
            return now() - t0, size, data.count(b'"key":')
        o = json.loads(data)
        rev = rev or int(o["header"]["revision"])
        kvs = o.get("kvs", [])
        keys += len(kvs)
        if not o.get("more") or not kvs:
            return now() - t0, size, keys
        key = b64(base64.b64decode(kvs[-1]["key"]) + b"\0")


class Writer(threading.Thread):
    """Writes its share of the pins in transactions of TXN_OPS puts, on one
    keep-alive connection to one member. A transaction that fails (etcd
    answers "request timed out" when its disk falls behind) is sent again,
    at most TXN_TRIES times: its puts are the same whether the first try
    committed or not."""

    def __init__(self, member, batches, lease):
        super().__init__(daemon=True)
        self.member, self.batches, self.lease = member, batches, lease
        self.error, self.retries = None, 0

    def run(self):
        conn = None
        try:
            for batch in self.batches:
                body = json.dumps({"success": [
                    {"requestPut": {"key": k, "value": v, "lease": self.lease}}
                    for k, v in batch]})
                for attempt in range(TXN_TRIES):
                    try:
                        conn = conn or http.client.HTTPConnection(
                            self.member.ip, etcdlib.CLIENT_PORT, timeout=30)
                        conn.request("POST", "/v3/kv/txn", body,
                                     {"Content-Type": "application/json"})
                        r = conn.getresponse()
                        data = r.read()
                        if r.status == 200 and b'"succeeded":true' in data:
                            break
                        error = "HTTP %d %s" % (r.status, data[:300])
                    except (OSError, http.client.HTTPException) as e:
                        error = str(e)
                        conn.close()
                        conn = None
                    self.retries += 1
                    time.sleep(0.5)
                else:
                    raise Failure("txn failed %d times, the last: %s" % (TXN_TRIES, error))
        except Exception as e:  # noqa: BLE001 (reported by the main thread)
            self.error = e
        finally:
            if conn is not None:
                conn.close()


def user_hash(name):
    """Dovecot's director hash of a %Lu username (reference §1.1)."""
    h = int.from_bytes(hashlib.md5(name.lower().encode()).digest()[:4], "big")
    return h or 1


# ---- cpu: CPU per login ------------------------------------------------------------

def fig_cpu(ctx):
    a = ctx["args"]
    single, ring, cluster = ctx["single"], ctx["nodes"], ctx["etcd"]
    roots = {"single": {"node": [single.proc.pid]},
             "ring": {"node": [ring[0].proc.pid], "others": [n.proc.pid for n in ring[1:]],
                      "etcd": [m.proc.pid for m in cluster.members]}}
    target = {"single": single.target(), "ring": ring[0].target()}
    rounds = []
    for r in range(a.rounds):
        res = {}
        for name in (("single", "ring") if r % 2 == 0 else ("ring", "single")):
            out = cycles(a.build, target[name], a.clients, a.seconds, roots[name])
            out["ms"] = out["cpu"]["node"] * 1000.0 / out["cycles"]
            res[name] = out
        res["ratio"] = res["ring"]["ms"] / res["single"]["ms"]
        rounds.append(res)
        print("cpu round %d: lone %.4f ms/login (%d logins, %.0f/s), ring node %.4f "
              "ms/login (%d logins, %.0f/s), ratio %.3f; meanwhile the other nodes %.3f s, "
              "etcd %.3f s of CPU"
              % (r + 1, res["single"]["ms"], res["single"]["cycles"],
                 res["single"]["cycles_per_s"], res["ring"]["ms"], res["ring"]["cycles"],
                 res["ring"]["cycles_per_s"], res["ratio"], res["ring"]["cpu"]["others"],
                 res["ring"]["cpu"]["etcd"]), flush=True)
    ratios = [r["ratio"] for r in rounds]
    ratio = statistics.median(ratios)
    return [("ring CPU per login ÷ lone loftd's (median of %d rounds; rounds %s)"
             % (len(rounds), ", ".join("%.3f" % x for x in ratios)),
             "%.3f (%.4f vs %.4f ms)" % (ratio, statistics.median(r["ring"]["ms"] for r in rounds),
                                         statistics.median(r["single"]["ms"] for r in rounds)),
             "≤ 1.05", "met" if ratio <= 1.05 else "**missed**")]


# ---- requests: etcd requests per 1,000 logins ------------------------------------------

def fig_requests(ctx):
    a = ctx["args"]
    nodes, cluster = ctx["nodes"], ctx["etcd"]
    pins = count_pins(cluster)
    before = grpc_started(cluster)
    t0 = now()
    out = cycles(a.build, ",".join(n.target() for n in nodes), a.clients, a.count_seconds)
    after = grpc_started(cluster)
    window = now() - t0
    started = {k: int(after[k] - before.get(k, 0)) for k in after if after[k] != before.get(k)}
    keepalives = started.pop("Lease.LeaseKeepAlive", 0)
    requests = sum(started.values())
    # the method's check: ten requests of the bench's own must count ten
    c0 = grpc_started(cluster)
    for i in range(5):
        cluster.members[1].post("/v3/kv/put", {"key": b64("/bench-control/%d" % i),
                                               "value": b64("x")})
        cluster.members[1].post("/v3/kv/range", {"key": b64("/bench-control/%d" % i)})
    control = sum(v - c0.get(k, 0) for k, v in grpc_started(cluster).items()
                  if k != "Lease.LeaseKeepAlive")
    per_1000 = requests * 1000.0 / out["cycles"]
    print("requests: %d logins in %.1f s through %d nodes; gRPC calls started: keepalives "
          "%d (about %.0f expected), others %s = %.3f per 1000 logins; the check's 10 "
          "requests counted %d; pins in etcd %s before, %s after"
          % (out["cycles"], window, len(nodes), keepalives,
             len(nodes) * window / (LEASE_TTL_S / 3.0), started or "none", per_1000,
             control, pins, count_pins(cluster)), flush=True)
    return [("etcd requests per 1,000 logins of unpinned users (%d logins, keepalives "
             "apart; the method's check: 10 requests counted %d)" % (out["cycles"], control),
             "%.3f" % per_1000, "0",
             "met" if requests == 0 else "**missed**")]


# ---- changes: a host change until every node routes by it --------------------------------

class Poller:
    """Polls one node's HOST-LIST and USER-LOOKUP of the probe user,
    non-blocking, one poll in flight."""

    def __init__(self, node, probe):
        self.node, self.probe = node, probe
        self.admin = Admin(node.admin)
        self.sock = self.admin.sock
        self.sock.setblocking(False)
        self.busy = False
        self.next_at = 0.0

    def send(self):
        self.sock.sendall(b"HOST-LIST\nUSER-LOOKUP\t%s\n" % self.probe.encode())
        self.busy = True
        self.sent_at = now()

    def feed(self):
        """(hosts, hashed host of the probe) once the poll's answers are in."""
        data = self.sock.recv(65536)
        if not data:
            raise Failure("%s closed the admin connection" % self.node.name)
        buf = self.admin.buf = self.admin.buf + data
        # HOST-LIST's block ends with an empty line (alone if no host)
        end = 1 if buf.startswith(b"\n") else buf.find(b"\n\n") + 2
        nl = buf.find(b"\n", end) if end > 1 or buf.startswith(b"\n") else -1
        if nl < 0:
            return None
        hosts = {line.split(b"\t")[0].decode() for line in buf[:end].split(b"\n") if line}
        lookup = buf[end:nl].decode().split("\t")
        self.admin.buf = buf[nl + 1:]
        self.busy = False
        return hosts, lookup[2] if len(lookup) > 2 else ""

    def drain(self):
        """Reads a poll still in flight, so the next change starts clean."""
        deadline = now() + 10
        while self.busy and now() < deadline:
            try:
                self.feed()
            except BlockingIOError:
                time.sleep(0.0005)


def one_change(admin, pollers, line, present, extra, pause=0.0005, timeout=35.0):
    """Sends one change on node 1's admin connection; returns its reply and,
    in seconds from the send, its answer and per node when HOST-LIST showed
    it and the probe's routing followed it, and whether a node still routed
    the old way in a poll sent after the answer had arrived."""
    sel = selectors.DefaultSelector()
    admin.sock.setblocking(False)
    sel.register(admin.sock, selectors.EVENT_READ, None)
    for p in pollers:
        sel.register(p.sock, selectors.EVENT_READ, p)
    names = [p.node.name for p in pollers]
    shown, routed = dict.fromkeys(names), dict.fromkeys(names)
    stale = dict.fromkeys(names, False)
    reply = answered = None
    t0 = now()
    admin.sock.sendall(line.encode() + b"\n")
    try:
        while answered is None or None in shown.values() or None in routed.values():
            if now() - t0 > timeout:
                raise Failure("%r: not done after %.0f s: answered %s, shown %s, routed %s"
                              % (line, timeout, answered, shown, routed))
            for p in pollers:
                if not p.busy and p.next_at <= now() and \
                        None in (shown[p.node.name], routed[p.node.name]):
                    p.send()
            for key, _ in sel.select(pause):
                if key.data is None:
                    data = admin.sock.recv(4096)
                    if not data:
                        raise Failure("node 1 closed the admin connection")
                    admin.buf += data
                    if b"\n" in admin.buf:
                        answered = now() - t0
                        reply, admin.buf = admin.buf.split(b"\n", 1)
                        reply = reply.decode()
                    continue
                p = key.data
                res = p.feed()
                if res is None:
                    continue
                t, name = now() - t0, p.node.name
                if shown[name] is None and (extra in res[0]) == present:
                    shown[name] = t
                if routed[name] is None and (res[1] == extra) == present:
                    routed[name] = t
                elif routed[name] is None and answered is not None and \
                        p.sent_at - t0 > answered:
                    stale[name] = True
                p.next_at = now() + pause
    finally:
        sel.close()
        admin.sock.setblocking(True)
    for p in pollers:
        p.drain()
    return reply, {"answer": answered, "shown": max(shown.values()),
                   "routed": max(routed.values()), "per_node": routed,
                   "stale": sum(stale.values())}


def find_probe(admin, extra):
    """A user name the extra host takes (its hashed host while it is in)."""
    for i in range(20000):
        if admin.lookup("probe%d" % i)[1] == extra:
            return "probe%d" % i
    raise Failure("no user of 20000 hashes to %s" % extra)


def doveadm_change(node, args):
    t0 = now()
    r = subprocess.run(["doveadm", "director"] + args[:1] + ["-a", node.admin] + args[1:],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise Failure("doveadm director %s: exit %d: %s" % (" ".join(args), r.returncode,
                                                          r.stderr.strip()))
    return now() - t0


def fig_changes(ctx, label):
    a = ctx["args"]
    nodes = ctx["nodes"]
    extra = "%s.30" % NET		# nothing listens: health checks are off in a ring
    admin = Admin(nodes[0].admin)
    try:
        # warm up, and find a user the extra host takes
        for line in ("HOST-SET\t%s\t100" % extra, "HOST-REMOVE\t%s" % extra):
            if admin.cmd(line) != "OK":
                raise Failure("%r failed" % line)
            if line.startswith("HOST-SET"):
                probe = find_probe(admin, extra)
        pins = [count_pins(ctx["etcd"])]
        pollers = [Poller(n, probe) for n in nodes]
        samples, tryagain = [], 0
        for i in range(a.changes):
            add = i % 2 == 0
            line = "HOST-SET\t%s\t100" % extra if add else "HOST-REMOVE\t%s" % extra
            for _ in range(100):
                reply, s = one_change(admin, pollers, line, add, extra)
                if reply != "TRYAGAIN":
                    break
                tryagain += 1
                time.sleep(0.01)
            if reply != "OK":
                raise Failure("%r answered %r" % (line, reply))
            samples.append(s)
        for p in pollers:
            p.admin.close()
        pins.append(count_pins(ctx["etcd"]))
        cli = [doveadm_change(nodes[0], ["add", extra, "100"] if i % 2 == 0
                              else ["remove", extra]) for i in range(a.doveadm_changes)]
        if extra in [h.split("\t")[0] for h in admin.block("HOST-LIST")]:
            admin.cmd("HOST-REMOVE\t%s" % extra)	# the ring ends as it began
    finally:
        admin.close()
    users = each_admin(nodes, lambda ad: len(ad.block("USER-LIST")))
    routed = [s["routed"] for s in samples]
    print("changes (%s; user records on the nodes %s; pins in etcd %s -> %s): %d changes "
          "(%d TRYAGAIN retried), ms p50 / p99 / max: the answer %s; every node's status "
          "shows it %s; every node routes by it %s (%s); node routings still old in a poll "
          "sent after the answer: %d of %d; doveadm process %s"
          % (label, "/".join(map(str, users)), pins[0], pins[1], len(samples), tryagain,
             ms3([s["answer"] for s in samples]), ms3([s["shown"] for s in samples]),
             ms3(routed), "; ".join("%s %s" % (n.name, ms3([s["per_node"][n.name]
                                                             for s in samples]))
                                    for n in nodes),
             sum(s["stale"] for s in samples), len(samples) * len(nodes),
             ms3(cli) if cli else "-"), flush=True)
    return [("host change on node 1 until every node routes by it, %s (%d changes; "
             "%s user records per node)" % (label, len(samples), "/".join(map(str, users))),
             ms3(routed) + " ms", "p50, p99 < 100 ms", under(routed, 0.1))]


# ---- move: a user with sessions on every node moved until logins flow -------------------

class Prober(threading.Thread):
    """Logs the user in on one node again and again from the move's start
    until a login lands on the new host (by the node's SESSION-LIST of the
    login's client port): at is when its tagged OK arrived, from t0.
    Logins that landed on the old host stay open (old: the move must close
    them); closed counts logins closed before their answer."""

    def __init__(self, node, user, new, t0, deadline):
        super().__init__(daemon=True)
        self.node, self.user, self.new, self.t0, self.deadline = node, user, new, t0, deadline
        self.at, self.old, self.closed, self.error = None, [], 0, None

    def run(self):
        admin = Admin(self.node.admin)
        try:
            while self.at is None and now() < self.deadline:
                s = socket.create_connection((self.node.ip, IMAP_PORT), timeout=5)
                try:
                    ok = imap_login(s, self.user, self.deadline, logout=False)
                except ConnectionError:
                    ok = None	# a login the move's kill closed
                if ok is None:
                    self.closed += 1
                elif admin.session_backend(self.user, s.getsockname()[1]) == self.new:
                    self.at = ok - self.t0
                else:
                    self.old.append(s)
                    s = None
                if s is not None:
                    s.close()
                if self.at is None:
                    time.sleep(0.001)
        except Exception as e:  # noqa: BLE001 (reported by the main thread)
            self.error = e
        finally:
            admin.close()


def still_open(s, timeout=1.0):
    """Whether loftd left the client connection open (EOF not within timeout)."""
    deadline = now() + timeout
    try:
        while True:
            s.settimeout(max(0.001, deadline - now()))
            if not s.recv(4096):
                return False
    except (ConnectionResetError, BrokenPipeError):
        return False
    except (TimeoutError, socket.timeout):
        return True
    finally:
        s.close()


def one_move(admin, nodes, user, timeout=30.0):
    """USER-MOVE of user, with a session open on every node, to the next
    backend on node 1's admin connection; seconds from the send until the
    answer, until each held session was closed, and until each node's
    logins landed on the new host."""
    held = []
    for n in nodes:
        s = socket.create_connection((n.ip, IMAP_PORT), timeout=10)
        held.append(s)
        if imap_login(s, user, now() + 10, logout=False) is None:
            raise Failure("%s: %s's login failed" % (n.name, user))
    old = admin.lookup(user)[0]
    new = BACKEND_IPS[(BACKEND_IPS.index(old) + 1) % len(BACKEND_IPS)]
    t0 = now()
    deadline = t0 + timeout
    admin.sock.sendall(("USER-MOVE\t%s\t%s\n" % (user, new)).encode())
    probers = [Prober(n, user, new, t0, deadline) for n in nodes]
    for p in probers:
        p.start()
    sel = selectors.DefaultSelector()
    sel.register(admin.sock, selectors.EVENT_READ, None)
    for i, s in enumerate(held):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
    closed, reply, answered = [None] * len(held), None, None
    try:
        while answered is None or None in closed:
            if now() > deadline:
                raise Failure("move of %s: answered %s, sessions closed %s after %.0f s"
                              % (user, answered, closed, timeout))
            for key, _ in sel.select(0.05):
                if key.data is None:
                    data = admin.sock.recv(4096)
                    admin.buf += data
                    if not data or b"\n" in admin.buf:
                        answered = now() - t0
                        reply, admin.buf = admin.buf.split(b"\n", 1) if data else (b"", b"")
                        reply = reply.decode()
                        sel.unregister(admin.sock)
                    continue
                try:
                    data = key.fileobj.recv(4096)	# a BYE, then the end
                except ConnectionResetError:
                    data = b""
                if not data:
                    closed[key.data] = now() - t0
                    sel.unregister(key.fileobj)
    finally:
        sel.close()
        for s in held:
            s.close()
        for p in probers:
            p.join(max(0.1, deadline - now()))
    if reply != "OK":
        raise Failure("USER-MOVE %s %s answered %r" % (user, new, reply))
    for p in probers:
        if p.error is not None or p.at is None:
            raise Failure("%s: no login of %s on %s: %s" % (p.node.name, user, new, p.error))
    # a login on the old host still open once logins flow to the new one:
    # the user on two backends (expected: none)
    alive = sum(still_open(x) for p in probers for x in p.old)
    return {"answer": answered, "closed": max(closed), "flow": max(p.at for p in probers),
            "old_logins": sum(len(p.old) for p in probers), "alive": alive,
            "closed_logins": sum(p.closed for p in probers),
            "per_node": {p.node.name: p.at for p in probers}}


def fig_move(ctx):
    a = ctx["args"]
    nodes = ctx["nodes"]
    sys.setswitchinterval(0.0005)	# the probers' times are not the GIL's
    admin = Admin(nodes[0].admin)
    samples = []
    try:
        for i in range(a.moves):
            samples.append(one_move(admin, nodes, "move%d" % i))
    finally:
        admin.close()
    flow = [s["flow"] for s in samples]
    print("move: %d moves of a user with a session on each of %d nodes, ms p50 / p99 / max: "
          "the answer %s; the last held session closed %s; logins flow to the new host on "
          "every node %s (%s); the probes' logins that landed on the old host first %d "
          "(of them still open when logins flowed to the new host: %d), closed before "
          "their answer %d"
          % (len(samples), len(nodes), ms3([s["answer"] for s in samples]),
             ms3([s["closed"] for s in samples]), ms3(flow),
             "; ".join("%s %s" % (n.name, ms3([s["per_node"][n.name] for s in samples]))
                       for n in nodes),
             sum(s["old_logins"] for s in samples), sum(s["alive"] for s in samples),
             sum(s["closed_logins"] for s in samples)),
          flush=True)
    return [("move of a user with sessions on 3 nodes until logins flow to the new host on "
             "every node, user_kick_delay 0 (%d moves)" % len(samples), ms3(flow) + " ms",
             "p50, p99 < 200 ms", under(flow, 0.2))]


# ---- join: a node joins a ring of N pins ----------------------------------------------

def pinned_hashes(n):
    """{hash: name}: n distinct hashes of the users pinned0, pinned1, ...
    (a few names share a hash; they are skipped)."""
    out = {}
    i = 0
    while len(out) < n:
        out.setdefault(user_hash("pinned%d" % i), "pinned%d" % i)
        i += 1
    return out


def status_kib(pids, field):
    """The sum of a /proc/<pid>/status field (VmRSS, VmHWM) in KiB."""
    total = 0
    for pid in pids:
        with open("/proc/%d/status" % pid) as f:
            total += next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
    return total


def write_pins(cluster, hashes, host, writers):
    status, body = cluster.leader().post("/v3/lease/grant", {"TTL": 3600}, timeout=10)
    if status != 200:
        raise Failure("lease grant: %s %s" % (status, body))
    value = json.dumps({"host": host}, separators=(",", ":"))
    keys = ["%spins/%d//%s" % (PREFIX, h, PIN_HOLDER) for h in hashes]
    batches = [[(b64(k), b64(value)) for k in keys[i:i + TXN_OPS]]
               for i in range(0, len(keys), TXN_OPS)]
    threads = [Writer(cluster.members[i % len(cluster.members)], batches[i::writers],
                      body["ID"]) for i in range(writers)]
    t0 = now()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for t in threads:
        if t.error is not None:
            raise Failure("writing the pins: %s" % t.error)
    return {"seconds": now() - t0, "txns": len(batches),
            "retries": sum(t.retries for t in threads),
            "key_len": statistics.mean(len(k) for k in keys), "value_len": len(value)}


def log_times(node, pid, wall0):
    """Seconds from wall0 to this run's "loftd started" and "ring: joined"
    lines in the node's log and to each "fenced" line after wall0, and its
    "retrying" warnings."""
    out = {"started": None, "joined": None, "retries": [], "fenced": [], "pins": None}
    mark = "loftd[%d]: " % pid
    with open(node.log_path, errors="replace") as f:
        for line in f:
            if mark not in line:
                continue
            try:
                ts = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) + \
                    float(line[19:23]) - wall0
            except ValueError:
                continue
            text = line.split(mark, 1)[1].strip()
            for key, what in (("started", "loftd started"), ("joined", "ring: joined as")):
                if what in text:
                    out[key] = ts
            if "retrying" in text:
                out["retries"].append(text)
            m = re.search(r"ring: (\d+) pins read in \S+ s while serving", text)
            if m:
                out["pins"] = (ts, int(m.group(1)))
            if "fenced" in text and ts >= 0:
                out["fenced"].append(ts)
    return out


def fig_join(ctx):
    a = ctx["args"]
    nodes, cluster = ctx["nodes"], ctx["etcd"]
    host = BACKEND_IPS[0]
    names = pinned_hashes(a.pins)
    hashes = list(names)
    def status():
        return loftlib.wait_for(lambda: cluster.leader().status(), 60, "etcd's status")
    st0 = status()
    rss0 = status_kib([m.proc.pid for m in cluster.members], "VmRSS")
    node0 = status_kib([nodes[0].proc.pid], "VmRSS")
    w = write_pins(cluster, hashes, host, a.writers)
    # the running nodes follow through their watch: the last one written
    # is known when every node routes it to the pin
    t1 = now()
    each_admin(nodes, lambda ad: loftlib.wait_for(
        lambda: ad.lookup(str(hashes[-1]))[0] == host, max(60, a.pins / 5000),
        "a node to apply the last pin", interval=0.05))
    caught_up = now() - t1
    st1 = status()
    rss1 = status_kib([m.proc.pid for m in cluster.members], "VmRSS")
    node1 = status_kib([nodes[0].proc.pid], "VmRSS")
    db = (int(st1["dbSize"]) - int(st0["dbSize"])) / len(hashes)
    print("join: %d pins written in %d txns (%d sent again) in %.1f s; the running nodes "
          "applied them %.2f s after the last write; per pin: key %.0f + value %d bytes, "
          "etcd db size %.0f bytes (in use %.0f), etcd member RSS %.0f bytes, a running "
          "node's RSS %.0f bytes"
          % (len(hashes), w["txns"], w["retries"], w["seconds"], caught_up, w["key_len"],
             w["value_len"],
             db, (int(st1.get("dbSizeInUse", 0)) - int(st0.get("dbSizeInUse", 0))) / len(hashes),
             (rss1 - rss0) * 1024.0 / len(hashes) / len(cluster.members),
             (node1 - node0) * 1024.0 / len(hashes)), flush=True)
    # a pinned user whose hash is elsewhere: the new node must route it to
    # the pin, so it has read the pins when it serves
    def find_check(ad):
        for h in hashes[:2000]:
            cur, hashed = ad.lookup(str(h))
            if cur == host and hashed != host:
                return h
        raise Failure("none of 2000 pinned users hashes elsewhere")
    check = each_admin(nodes[:1], find_check)[0]
    # etcd alone, before any join loads it
    reads = [range_read(cluster.leader()), range_read(cluster.leader(), 10000)]
    print("join: etcd alone, the whole prefix through the gateway in one read as loftd "
          "sends it: %s; in pages of 10,000 keys at one revision: %s" % tuple(
              "%.2f s, %.1f MB, %d keys" % (r[0], r[1] / 1e6, r[2])
              if isinstance(r, tuple) else r
              for r in reads), flush=True)
    joiner = RingNode(a.build, ctx["base"], 3, cluster, log_level="info")
    joiner.write_conf()
    times, fences = [], set()
    for r in range(a.join_rounds):
        t0, wall0 = now(), time.time()
        joiner.spawn()
        pid = joiner.proc.pid
        try:
            # the first login is a pinned user's: a node that reads the
            # pins while it serves reads this user's first
            t = wait_serving(joiner.ip, joiner.proc, a.join_timeout, user=names[check]) - t0
            loftlib.wait_for(lambda: os.path.exists(joiner.admin), 10, "the admin socket")
            routed = each_admin([joiner], lambda ad: ad.lookup(str(check))[0])[0]
            if routed != host:
                raise Failure("the joined node routed pinned user %d to %r, not to its pin "
                              "%s" % (check, routed, host))
            # and when it has every pin
            loftlib.wait_for(lambda: log_times(joiner, pid, wall0)["pins"] or
                             joiner.proc.poll() is not None, a.join_timeout,
                             "the joined node to read every pin")
            cpu, peak = procstat.cpu_seconds([pid]), status_kib([pid], "VmHWM")
            lt = log_times(joiner, pid, wall0)
            times.append(t)
            print("join round %d: serving %.3f s after exec (loftd started %.3f s, ring "
                  "joined %.3f s, %d reads retried); every pin read %s; CPU %.2f s; peak "
                  "RSS %d MB"
                  % (r + 1, t, lt["started"], lt["joined"], len(lt["retries"]),
                     "%.1f s after exec (%d pins)" % lt["pins"] if lt["pins"] else
                     "(in the one read)", cpu, peak / 1024), flush=True)
        except Failure as e:
            alive = joiner.proc.poll() is None
            lt = log_times(joiner, pid, wall0)
            print("join round %d: %s; CPU %s s, peak RSS %s MB, %d reads retried: %s"
                  % (r + 1, e, procstat.cpu_seconds([pid]) if alive else "?",
                     status_kib([pid], "VmHWM") // 1024 if alive else "?",
                     len(lt["retries"]), sorted(set(lt["retries"]))[:3]), flush=True)
            times.append(None)
            break
        finally:
            joiner.stop()
            # what the join did to the running nodes
            for n in nodes:
                fenced = log_times(n, n.proc.pid, wall0)["fenced"]
                if fenced:
                    fences.add(n.name)
                    print("join round %d: running node %s fenced itself %.1f s after the "
                          "join's exec" % (r + 1, n.name, fenced[0]), flush=True)
    ok = [t for t in times if t is not None]
    served = "%s s (rounds: %s)" % ("%.3f" % statistics.median(ok) if ok else "—",
                                    ", ".join("%.3f" % t if t is not None else
                                              "not within %.0f s" % a.join_timeout
                                              for t in times)) + \
        ("; meanwhile running nodes fenced: %s" % ", ".join(sorted(fences)) if fences else "")
    return [("a 4th node joins a ring of %s pins: exec to its first login (a pinned "
             "user's, at its pin)" %
             "{:,}".format(len(hashes)), served,
             "< 2 s" + ("" if a.pins >= 1000000 else " (at 1,000,000)"),
             ("met" if ok and len(ok) == len(times) and max(ok) < 2 else "**missed**")
             if a.pins >= 1000000 else "—"),
            ("bytes per pinned user in etcd (db size / N; key + value %.0f + %d)"
             % (w["key_len"], w["value_len"]), "%.0f" % db, "—", "—")]


# ---- sessions: ring-wide who and kick over synthetic sessions (issue 14) ---------------

HOOK = b"BENCH-FAKE-SESSIONS"


def check_builds(a):
    """The nodes' loftd has the bench hook; a normal build's has not."""
    with open(os.path.join(a.build, "loftd"), "rb") as f:
        if HOOK not in f.read():
            raise Failure("%s/loftd has no bench hooks: build it with make BUILD=build-bench "
                          "BENCH_HOOKS=1" % a.build)
    if a.normal_build:
        with open(os.path.join(a.normal_build, "loftd"), "rb") as f:
            if HOOK in f.read():
                raise Failure("%s/loftd, a normal build, has the bench hooks"
                              % a.normal_build)


def fake_sessions(node, count, prefix):
    """Registers count synthetic sessions on node; how many it has then."""
    ad = Admin(node.admin)
    try:
        reply = ad.cmd("BENCH-FAKE-SESSIONS\t%d\t%s" % (count, prefix), timeout=120)
    finally:
        ad.close()
    if not reply.startswith("OK\t"):
        raise Failure("%s: BENCH-FAKE-SESSIONS answered %r" % (node.name, reply))
    return int(reply.split("\t")[1])


def thread_cpu_ns(pid):
    """CPU time of every thread of pid, in ns (/proc/<pid>/task/*/schedstat)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def settle(nodes, window=0.3, idle_ms=3.0, deadline=60.0):
    """Waits until no node spends more than idle_ms of CPU in a window:
    the ring-wide limits' sync of what changed (ring.limits_interval, every
    new or ended session's user+IP pair sent to every peer) is over.
    Returns (seconds waited, CPU ms the nodes spent meanwhile)."""
    t0 = time.monotonic()
    start = [thread_cpu_ns(n.proc.pid) for n in nodes]
    last = start
    while True:
        time.sleep(window)  # a sampling window, not a wait for an event
        now = [thread_cpu_ns(n.proc.pid) for n in nodes]
        if all((b - a) / 1e6 <= idle_ms for a, b in zip(last, now)):
            return time.monotonic() - t0, sum(b - a for a, b in zip(start, now)) / 1e6
        if time.monotonic() - t0 > deadline:
            raise Failure("the ring stayed busy for %.0f s after a refill" % deadline)
        last = now


def timed_loftadm(a, args, out_path, asker, others):
    """Runs loftadm; (seconds from its exec to its exit, its CPU seconds,
    the asking node's, the other nodes', exit code)."""
    cmd = [os.path.join(a.build, "loftadm")] + args
    c0 = thread_cpu_ns(asker.proc.pid)
    o0 = [thread_cpu_ns(n.proc.pid) for n in others]
    with open(out_path, "wb") as out, open(out_path + ".err", "wb") as err:
        t0 = now()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = now() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    return {"wall": wall, "cli": usage.ru_utime + usage.ru_stime,
            "asker": (thread_cpu_ns(asker.proc.pid) - c0) / 1e9,
            "others": sum(thread_cpu_ns(n.proc.pid) - c for n, c in zip(others, o0)) / 1e9,
            "rc": p.returncode}


def count_lines(path):
    with open(path, "rb") as f:
        return f.read().count(b"\n")


def raw_list(node, ring_all):
    """SESSION-LIST (logged-in) on node's admin socket, read as fast as it
    comes: (seconds to the first byte, to each node's block, to the end,
    bytes). What the nodes and the link cost, loftadm apart."""
    ad = Admin(node.admin)
    try:
        line = ("RING-ALL\t" if ring_all else "") + "SESSION-LIST\tlogged-in\n"
        end = b"\n\n\n" if ring_all else b"\n\n"
        t0 = now()
        ad.sock.sendall(line.encode())
        first, blocks, total, tail = None, [], 0, b"\n"
        ad.sock.settimeout(60)
        while True:
            data = ad.sock.recv(1 << 20)
            if not data:
                raise Failure("%s closed the admin connection" % node.name)
            t = now() - t0
            first = t if first is None else first
            # a block starts after an empty line, or at the start (tail's
            # first value)
            seen = tail + data
            blocks += [t] * seen.count(b"\nNODE\t")
            total += len(data)
            tail = seen[-5:]	# shorter than "\nNODE\t": none counted twice
            if tail.endswith(end) and (not ring_all or len(blocks) == 3):
                return first, blocks, now() - t0, total
    finally:
        ad.close()


def fig_sessions(ctx):
    a = ctx["args"]
    nodes = ctx["nodes"]
    asker, others = nodes[0], nodes[1:]
    check_builds(a)
    per_node = [a.sessions // 3 + (1 if i < a.sessions % 3 else 0) for i in range(3)]
    total = sum(per_node)
    # session i is an "a" session when (i/2)%2 == 0
    half = sum(sum(1 for i in range(c) if (i // 2) % 2 == 0) for c in per_node)
    out = os.path.join(ctx["base"], "loftadm.out")
    sock = ["-a", asker.admin]

    def fill():
        """Every node back to its share of synthetic sessions: what a
        kick left is kicked first, untimed, on that node alone."""
        for i, n in enumerate(nodes):
            have = fake_sessions(n, 0, "")
            if have:
                r = subprocess.run([os.path.join(a.build, "loftadm"), "kick", "--local",
                                    "-a", n.admin, "*"], capture_output=True, timeout=300)
                if r.returncode != 0:
                    raise Failure("%s: clearing %d sessions: exit %d %s"
                                  % (n.name, have, r.returncode, r.stderr[-300:]))
            have = fake_sessions(n, per_node[i], "n%d-" % (i + 1))
            if have != per_node[i]:
                raise Failure("%s holds %d sessions, not %d" % (n.name, have, per_node[i]))
        # the commands are timed on a quiet ring: the limits' sync of the
        # refill (every pair ended and begun, to every peer) is its own figure
        waited, cpu = settle(nodes)
        settles.append((waited, cpu))

    # (name, loftadm arguments, output lines expected, kick?)
    cases = [
        ("who (grouped)", ["who"] + sock, None, False),
        ("who -1", ["who", "-1"] + sock, total + 1, False),
        ("-f tab proxy list", ["-f", "tab", "proxy", "list"] + sock, total + 1, False),
        ("kick -h %s" % FAKE_BACKENDS[0], ["-v", "kick", "-h", FAKE_BACKENDS[0]] + sock,
         None, True),
        ("kick '*a-*'", ["-v", "kick"] + sock + ["*a-*"], None, True),
    ]
    settles = []
    fill()
    results = {c[0]: [] for c in cases}
    for r in range(a.session_rounds):
        for name, args, lines, kick in cases:
            res = timed_loftadm(a, args, out, asker, others)
            if res["rc"] != 0:
                with open(out + ".err", errors="replace") as f:
                    raise Failure("loftadm %s: exit %d: %s" % (" ".join(args), res["rc"],
                                                                f.read()[-500:]))
            if lines is not None and count_lines(out) != lines:
                raise Failure("loftadm %s printed %d lines, not %d"
                              % (" ".join(args), count_lines(out), lines))
            if kick:
                with open(out, errors="replace") as f:
                    last = f.read().splitlines()[-1]
                if last != "%d connections kicked" % half:
                    raise Failure("loftadm %s: %r, not %d kicked" % (" ".join(args), last,
                                                                      half))
                fill()
            elif name == "who (grouped)":
                # a row per user (two sessions each) and the header
                want = sum((c + 1) // 2 for c in per_node) + 1
                if count_lines(out) != want:
                    raise Failure("loftadm who printed %d lines, not %d"
                                  % (count_lines(out), want))
            res["bytes"] = os.path.getsize(out)
            results[name].append(res)
            print("sessions round %d: loftadm %s: %.1f ms (loftadm CPU %.1f ms, node 1 "
                  "%.1f ms, the others %.1f ms; %d bytes out)"
                  % (r + 1, " ".join(args), res["wall"] * 1000, res["cli"] * 1000,
                     res["asker"] * 1000, res["others"] * 1000, res["bytes"]), flush=True)
    print("sessions: after each refill (%d), the ring was busy for %.1f s (median) with "
          "the ring-wide limits' sync: %.0f ms of the nodes' CPU together (median, max %.0f)"
          % (len(settles), statistics.median(s[0] for s in settles),
             statistics.median(s[1] for s in settles), max(s[1] for s in settles)),
          flush=True)
    # the same lists without loftadm: what the nodes and the links cost
    raw = [raw_list(asker, True) for _ in range(a.session_rounds)]
    alone = [raw_list(others[0], False) for _ in range(a.session_rounds)]
    med = statistics.median
    print("sessions: RING-ALL SESSION-LIST on node 1's admin socket, read at once "
          "(medians of %d): first byte %.1f ms, node 1's block from %.1f ms, the others' "
          "from %.1f and %.1f ms, the end %.1f ms (max %.1f), %d bytes; SESSION-LIST on "
          "node 2 alone: first byte %.1f ms, end %.1f ms"
          % (len(raw), med(r[0] for r in raw) * 1000, med(r[1][0] for r in raw) * 1000,
             med(r[1][1] for r in raw) * 1000, med(r[1][2] for r in raw) * 1000,
             med(r[2] for r in raw) * 1000, max(r[2] for r in raw) * 1000, raw[0][3],
             med(r[0] for r in alone) * 1000, med(r[2] for r in alone) * 1000), flush=True)
    rows = []
    for name, args, lines, kick in cases:
        rs = results[name]
        wall = [x["wall"] for x in rs]
        goal = 0.2 if kick else 1.0
        what = ("kick of %d of %d sessions (%s)" % (half, total, name) if kick else
                "%s of %d sessions" % (name, total))
        rows.append(("loftadm %s from node 1, exec to exit (%d rounds; loftadm CPU, node "
                     "1's, the other two nodes' together: medians)" % (what, len(rs)),
                     "%.0f / %.0f ms (CPU %.0f, %.0f, %.0f ms)"
                     % (statistics.median(wall) * 1000, max(wall) * 1000,
                        statistics.median(x["cli"] for x in rs) * 1000,
                        statistics.median(x["asker"] for x in rs) * 1000,
                        statistics.median(x["others"] for x in rs) * 1000),
                     "median < %d ms" % (goal * 1000),
                     "met" if statistics.median(wall) < goal else "**missed**"))
    return rows


# ---- main ------------------------------------------------------------------------------

def run(a):
    base = tempfile.mkdtemp(prefix="loft-ring-bench-")
    ctx = {"args": a, "base": base}
    backend = Backend(a.build, base, 1 << 20)
    cluster = etcdlib.EtcdCluster(os.path.join(base, "etcd"), NET, name="ringbench")
    started, goals = [], []
    try:
        for s in (backend, cluster):
            s.start()
            started.append(s)
        ctx["etcd"] = cluster
        single = Loft(a.build, base)
        started.append(single)
        single.start()
        ctx["single"] = single
        # the links between the nodes (ring-wide who and kick) need a secret
        links = 'secret = "%s";' % RING_SECRET if "sessions" in a.figures else ""
        if a.tls_links:
            certs = loftlib.make_certs(os.path.join(base, "links"),
                                       ["%s.%d" % (NET, 2 + i) for i in range(3)])
            links += ('tls_cert = "%s"; tls_key = "%s"; tls_ca_file = "%s";'
                      % (certs["cert"], certs["key"], certs["ca"]))
        nodes = [RingNode(a.build, base, i, cluster, ring_extra=links) for i in range(3)]
        for n in nodes:
            started.append(n)
            n.start()
        ctx["nodes"] = nodes
        each_admin(nodes[:1], lambda ad: loftlib.wait_for(
            lambda: len(ad.block("DIRECTOR-LIST")) == 3, 20, "three members in the ring"))
        print("bench: %s; etcd %s on %s.51-53; loftd: lone on %s, ring on %s; load from %s"
              % (machine(), cluster.members[0].status().get("version", "?"), NET,
                 single.ip, ", ".join(n.ip for n in nodes), SOURCES), flush=True)
        if "changes" in a.figures:
            goals += fig_changes(ctx, "idle ring")
        if "cpu" in a.figures:
            goals += fig_cpu(ctx)
        if "requests" in a.figures:
            goals += fig_requests(ctx)
        if "changes" in a.figures:
            # every node holds a record of each of the 1,000 users
            cycles(a.build, ",".join(n.target() for n in nodes), a.clients, 3)
            goals += fig_changes(ctx, "after 1,000 users logged in")
        if "move" in a.figures:
            goals += fig_move(ctx)
        if "join" in a.figures:
            goals += fig_join(ctx)
        if "sessions" in a.figures:
            goals += fig_sessions(ctx)
    finally:
        for s in reversed(started):
            try:
                s.stop()
            except Exception as e:  # noqa: BLE001 (report, stop the rest)
                print("bench: stopping: %s" % e, file=sys.stderr)
        if a.keep:
            print("bench: kept %s" % base, file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
    return goals


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    a = ARGS
    a.build = os.path.abspath(a.build)
    t0, load0 = now(), loadavg()
    try:
        goals = run(a)
    except (Failure, TimeoutError) as e:
        print("bench: %s" % e, file=sys.stderr)
        return 1
    print("\nload average %s at the start, %s at the end\n\n"
          "| figure | measured | goal (issues 13, 14) | verdict |\n| --- | --- | --- | --- |"
          % (load0, loadavg()))
    for row in goals:
        print("| %s |" % " | ".join(row))
    print("bench: done in %.0f s" % (now() - t0), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
