"""Real etcd for the etcd client's tests and measurements: clusters of
Debian's /usr/bin/etcd in a temporary directory on loopback addresses of the
run's net, with the chaos the client must survive (stop, kill, freeze,
restart a member, partition a member from its peers, cut a client address
off a member's client port), and a driver for build/tests/ring/etcd_drive.

Partitions use iptables (reference/etcd-gateway.md §6): members dial their
peers from 127.0.0.1, so each member runs in a cgroup2 directory of its
own and its connections are marked by cgroup. Every rule carries a comment
naming the net and is removed again (heal(), stop()). Waits poll with a
deadline, never a fixed sleep."""
import json
import os
import queue
import shutil
import signal
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import loftlib

ETCD = "/usr/bin/etcd"
CLIENT_PORT = 2379
PEER_PORT = 2380
# what the reference recommends and the client relies on
TUNED = ["--pre-vote=true", "--experimental-watch-progress-notify-interval=1s",
         "--auto-compaction-mode=periodic", "--auto-compaction-retention=1h"]


def cgroup_root():
    """The cgroup2 hierarchy: /sys/fs/cgroup/unified (hybrid) or /sys/fs/cgroup."""
    for root in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if os.path.exists(os.path.join(root, "cgroup.procs")) and \
                os.path.exists(os.path.join(root, "cgroup.controllers")):
            return root
    return None


def _opener(ssl_ctx=None):
    handlers = [urllib.request.ProxyHandler({})]
    if ssl_ctx is not None:
        handlers.append(urllib.request.HTTPSHandler(context=ssl_ctx))
    return urllib.request.build_opener(*handlers)


def http_post(url, path, body, token=None, timeout=2.0, ssl_ctx=None, hasleader=True):
    """POSTs JSON to the gateway; (status, decoded body), or (0, error text)."""
    headers = {"Content-Type": "application/json"}
    if hasleader:
        headers["Grpc-Metadata-hasleader"] = "true"
    if token is not None:
        headers["Authorization"] = token
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers=headers, method="POST")
    try:
        with _opener(ssl_ctx).open(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"{}")
        except ValueError:
            return e.code, {}
    except (OSError, ValueError) as e:
        return 0, str(e)


def b64(s):
    import base64
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


class Member:
    """One etcd process. Its data directory survives restarts."""

    def __init__(self, cluster, name, ip, index):
        self.cluster, self.name, self.ip, self.index = cluster, name, ip, index
        scheme = "https" if cluster.tls else "http"
        self.client_url = "%s://%s:%d" % (scheme, ip, CLIENT_PORT)
        self.peer_url = "http://%s:%d" % (ip, PEER_PORT)
        self.data_dir = os.path.join(cluster.base, name)
        self.log = os.path.join(cluster.base, name + ".log")
        self.cgroup = "%s-%s" % (cluster.tag, name)
        self.proc = None
        self.frozen = False
        self.member_id = None

    def args(self):
        c = self.cluster
        a = [ETCD, "--name", self.name, "--data-dir", self.data_dir,
             "--listen-client-urls", self.client_url,
             "--advertise-client-urls", self.client_url,
             "--listen-peer-urls", self.peer_url,
             "--initial-advertise-peer-urls", self.peer_url,
             "--initial-cluster", ",".join("%s=%s" % (m.name, m.peer_url)
                                           for m in c.members),
             "--initial-cluster-token", c.tag, "--initial-cluster-state", "new",
             "--logger", "zap", "--log-outputs", "stderr"]
        if c.tuned:
            a += TUNED
        if c.tls:
            a += ["--cert-file", c.tls["cert"], "--key-file", c.tls["key"],
                  "--trusted-ca-file", c.tls["ca"], "--client-cert-auth"]
        return a + list(c.extra_args)

    def start(self):
        assert not self.running(), "%s is still running" % self.name
        cg = self.cluster.cgroup_path(self)

        def enter_cgroup():
            if cg is not None:
                with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
        log = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log,
                                         preexec_fn=enter_cgroup)
        finally:
            log.close()
        self.frozen = False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout=20.0):
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError("etcd %s did not exit" % self.name)

    def stop(self, timeout=20.0):
        """SIGTERM and wait: a leader first hands leadership over (~5 s)."""
        if self.running():
            self.thaw()
            self.proc.send_signal(signal.SIGTERM)
            self.wait_exit(timeout)

    def kill(self):
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.wait_exit()
        self.frozen = False

    def freeze(self):
        self.proc.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self):
        if self.frozen and self.running():
            self.proc.send_signal(signal.SIGCONT)
        self.frozen = False

    def restart(self):
        """Waits for the old process to exit first: a start while it
        still holds its ports fails with "address already in use"."""
        self.stop()
        self.start()

    def post(self, path, body, token=None, timeout=2.0, hasleader=True):
        return http_post(self.client_url, path, body, token=token, timeout=timeout,
                         ssl_ctx=self.cluster.ssl_ctx(), hasleader=hasleader)

    def is_ready(self):
        """Answers a linearizable read (so it has a leader and a quorum)."""
        status, _ = self.post("/v3/kv/range", {"key": b64("ready")}, timeout=1.0)
        return status == 200

    def status(self):
        status, body = self.post("/v3/maintenance/status", {}, timeout=1.0,
                                 hasleader=False)
        return body if status == 200 else None


class EtcdCluster:
    """n members on <net>.<first>, <net>.<first+1>, ... ports 2379/2380.
    tuned: the recommended server flags (TUNED); tls: certificate paths
    {"ca", "cert", "key"} for https with client certificates."""

    def __init__(self, base, net, n=3, first=51, tuned=True, tls=None,
                 extra_args=(), name="etcd"):
        self.base = base
        os.makedirs(base, exist_ok=True)
        self.net = net
        self.tuned, self.tls, self.extra_args = tuned, tls, extra_args
        self.tag = "loft-%s-%s-%d" % (name, net.replace(".", "_"), first)
        self.members = [Member(self, "m%d" % (i + 1), "%s.%d" % (net, first + i), i)
                        for i in range(n)]
        self.rules = []
        self.cgroups = []
        self.client_tls = None  # (ca, cert, key) for ssl_ctx()

    # -- processes --

    def cgroup_path(self, member):
        root = cgroup_root()
        if root is None:
            return None
        path = os.path.join(root, member.cgroup)
        if path not in self.cgroups:
            os.makedirs(path, exist_ok=True)
            self.cgroups.append(path)
        return path

    def start(self, timeout=30.0):
        for m in self.members:
            m.start()
        self.wait_ready(timeout)
        for m in self.members:
            st = loftlib.wait_for(m.status, 10, "status of %s" % m.name)
            m.member_id = str(st["header"]["member_id"])

    def wait_ready(self, timeout=30.0, members=None):
        members = [m for m in (members or self.members) if m.running() and not m.frozen]
        loftlib.wait_for(lambda: all(m.is_ready() for m in members), timeout,
                         "etcd members %s ready" % [m.name for m in members])

    def repair(self, timeout=30.0):
        """Back to all members up and ready, no rules: after a chaos test."""
        self.heal()
        for m in self.members:
            m.thaw()
            if not m.running():
                m.start()
        self.wait_ready(timeout)

    def stop(self):
        self.heal()
        for m in self.members:
            m.thaw()
            if m.running():
                m.proc.send_signal(signal.SIGKILL)
                m.wait_exit()
        for path in self.cgroups:
            try:
                os.rmdir(path)
            except OSError:
                pass
        self.cgroups = []

    def endpoints(self, first=None):
        """Client URLs, with member first at the front."""
        ms = list(self.members)
        if first is not None:
            ms.remove(first)
            ms.insert(0, first)
        return [m.client_url for m in ms]

    def leader(self, timeout=15.0):
        def find():
            for m in self.members:
                if m.running() and not m.frozen:
                    st = m.status()
                    if st and st.get("leader") not in (None, "0"):
                        for x in self.members:
                            if x.member_id == str(st["leader"]):
                                return x
            return None
        return loftlib.wait_for(find, timeout, "an etcd leader")

    def followers(self):
        leader = self.leader()
        return [m for m in self.members if m is not leader]

    def ssl_ctx(self):
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=self.tls["ca"])
        ctx.load_cert_chain(self.tls["client_cert"], self.tls["client_key"])
        return ctx

    # -- partitions --

    def _iptables(self, table, action, spec):
        cmd = ["iptables", "-w", "-t", table, action, "OUTPUT"] + spec + \
              ["-m", "comment", "--comment", self.tag]
        subprocess.run(cmd, check=True, capture_output=True)

    def _add_rule(self, table, spec):
        self._iptables(table, "-I", spec)
        self.rules.append((table, spec))

    def partition(self, member):
        """Cuts member off from its peers; its client port stays open."""
        assert cgroup_root() is not None, "no cgroup2 hierarchy to mark members by"
        mark = "0x%x" % ((int(self.net.split(".")[-1]) << 8) | (member.index + 1))
        port = str(PEER_PORT)
        self._add_rule("mangle", ["-m", "cgroup", "--path", member.cgroup,
                                  "-j", "CONNMARK", "--set-mark", mark])
        self._add_rule("filter", ["-p", "tcp", "-m", "connmark", "--mark", mark,
                                  "--dport", port, "-j", "DROP"])
        self._add_rule("filter", ["-p", "tcp", "-m", "connmark", "--mark", mark,
                                  "--sport", port, "-j", "DROP"])
        self._add_rule("filter", ["-p", "tcp", "-d", member.ip, "--dport", port,
                                  "-j", "DROP"])
        self._add_rule("filter", ["-p", "tcp", "-s", member.ip, "--sport", port,
                                  "-j", "DROP"])

    def cut_client(self, source_ip, member):
        """Drops everything between source_ip and member's client port."""
        port = str(CLIENT_PORT)
        self._add_rule("filter", ["-p", "tcp", "-s", source_ip, "-d", member.ip,
                                  "--dport", port, "-j", "DROP"])
        self._add_rule("filter", ["-p", "tcp", "-s", member.ip, "--sport", port,
                                  "-d", source_ip, "-j", "DROP"])

    def heal(self):
        while self.rules:
            table, spec = self.rules.pop()
            self._iptables(table, "-D", spec)


def make_client_cert(certs, base):
    """A client certificate signed by loftlib.make_certs' CA."""
    d = os.path.dirname(certs["ca"])
    key, csr, cert = (os.path.join(d, n) for n in ("client.key", "client.csr",
                                                   "client.pem"))
    ext = os.path.join(d, "client-ext.cnf")
    with open(ext, "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", csr, "-subj", "/CN=loft etcd client"], check=True, **quiet)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", certs["ca"],
                    "-CAkey", os.path.join(d, "ca.key"), "-CAcreateserial",
                    "-out", cert, "-days", "2", "-extfile", ext], check=True, **quiet)
    return cert, key


def drive_path():
    return os.path.join(loftlib.build_dir(), "tests", "ring", "etcd_drive")


class Driver:
    """build/tests/ring/etcd_drive: commands in, results and watch updates
    out, all JSON lines."""

    def __init__(self, endpoints, timeout_ms=None, idle_ms=None, user=None,
                 password=None, ca=None, cert=None, key=None, source=None,
                 log_dir=None):
        path = drive_path()
        assert os.path.exists(path), "%s is not built (make %s)" % (
            path, os.path.relpath(path, loftlib.REPO))
        args = [path, "--endpoints", ",".join(endpoints)]
        for flag, value in (("--timeout", timeout_ms), ("--idle", idle_ms),
                            ("--user", user), ("--password", password),
                            ("--ca", ca), ("--cert", cert), ("--key", key),
                            ("--source", source)):
            if value is not None:
                args += [flag, str(value)]
        self.stderr_path = os.path.join(log_dir or "/tmp",
                                        "etcd_drive-%d.err" % id(self))
        self.stderr = open(self.stderr_path, "w+b")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, bufsize=1)
        self.next_id = 1
        self.results = {}
        self.watch_updates = {}
        self.bugs = []
        self.lines = queue.Queue()
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        first = self.lines.get(timeout=10)
        if "ready" not in first:
            raise RuntimeError("etcd_drive: %s" % first)

    def _read(self):
        for line in self.proc.stdout:
            msg = json.loads(line)
            with self.cond:
                if "watch" in msg:
                    self.watch_updates.setdefault(msg["watch"], []).append(msg)
                elif "id" in msg and "bug" not in msg:
                    if msg["id"] in self.results:
                        self.bugs.append({"bug": "two results", "msg": msg})
                    self.results[msg["id"]] = msg
                else:
                    if "bug" in msg:
                        self.bugs.append(msg)
                    self.lines.put(msg)
                self.cond.notify_all()

    def send(self, op, **fields):
        cmd = dict(fields, op=op, id=self.next_id)
        self.next_id += 1
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return cmd["id"]

    def result(self, rid, timeout=15.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while rid not in self.results:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise TimeoutError("no result for request %d" % rid)
                self.cond.wait(left)
            return self.results[rid]

    def call(self, op, timeout=15.0, **fields):
        return self.result(self.send(op, **fields), timeout)

    def updates(self, watch):
        with self.cond:
            return list(self.watch_updates.get(watch, []))

    def wait_update(self, watch, pred, timeout=15.0, what="a watch update", after=0):
        """The first update from index after on that satisfies pred."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                ups = self.watch_updates.get(watch, [])
                for i in range(after, len(ups)):
                    if pred(ups[i]):
                        return i, ups[i]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("timed out waiting for %s; got %s" % (
                        what, [(u["kind"], u.get("reason")) for u in ups[after:]]))
                self.cond.wait(left)

    def events(self, watch):
        """Every event delivered to watch, in order."""
        return [e for u in self.updates(watch) if u["kind"] == "EVENTS"
                for e in u["events"]]

    def wait_events(self, watch, pred, timeout=15.0, what="events"):
        deadline = time.monotonic() + timeout
        while True:
            evs = self.events(watch)
            if pred(evs):
                return evs
            if time.monotonic() > deadline:
                raise TimeoutError("timed out waiting for %s; got %s" % (
                    what, [(e["type"], e["key"], e["value"]) for e in evs]))
            with self.cond:
                self.cond.wait(0.1)

    def close(self):
        """Quits; the driver must exit 0 with no sanitizer report and no
        callback that should not have come."""
        if self.proc.poll() is None:
            try:
                self.send("quit")
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        self.stderr.seek(0)
        err = self.stderr.read().decode(errors="replace")
        self.stderr.close()
        os.unlink(self.stderr_path)
        problems = []
        if self.proc.returncode != 0:
            problems.append("etcd_drive exit %s" % self.proc.returncode)
        if "Sanitizer" in err or "runtime error" in err:
            problems.append(err[-4000:])
        if self.bugs:
            problems.append("etcd_drive: %s" % self.bugs)
        assert not problems, "\n".join(problems)


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)
