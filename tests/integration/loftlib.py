"""Helpers shared by the integration tests and the local setup script:
private Dovecot backends, certificates, and a loftd process.

Every backend gets its own base_dir, state_dir and log on its own loopback
address; nothing here touches the system's Dovecot or files outside the
directory it is given. Waits poll with a deadline, never a fixed sleep."""
import os
import pwd
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import smtpsink

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MAILUSER = os.environ.get("LOFT_TEST_MAILUSER", "vmail")


def build_dir():
    return os.environ.get("LOFT_BUILD", os.path.join(REPO, "build"))


def wait_for(pred, timeout=10.0, what="condition", interval=0.02):
    """Polls pred() until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for %s" % what)
        time.sleep(interval)


def loftadm(*args):
    """Runs build/loftadm; its CompletedProcess, output as text."""
    return subprocess.run([os.path.join(build_dir(), "loftadm")] + list(args),
                          capture_output=True, text=True, timeout=60)


def port_open(ip, port):
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


def listening_nets():
    """The 127.a.b prefixes with a listening TCP socket on one of their
    addresses right now (a demo, a leftover loftd or Dovecot, a suite)."""
    nets = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            local, state = line.split()[1], line.split()[3]
            if state == "0A":   # TCP_LISTEN
                ip = socket.inet_ntoa(struct.pack("<I", int(local.split(":")[0], 16)))
                nets.add(ip.rpartition(".")[0])
    return nets


def shifted_net(net, k):
    """The k-th neighbour of a /24, a step in the second byte:
    127.0.43 -> 127.1.43 -> 127.2.43, clear of the other 127.0.x nets."""
    a, b, c = (int(x) for x in net.split("."))
    if b + k > 255:
        raise ValueError("no %d-th net after %s" % (k, net))
    return "%d.%d.%d" % (a, b + k, c)


def free_net(count=1):
    """A random 127.a.b (a in 64..191, never the 127.0.x of demos and fixed
    nets) whose /24 and its count - 1 shifted_net() neighbours have no
    listener: two runs at once or a leftover of a killed run do not meet."""
    busy = listening_nets()
    for _ in range(1000):
        net = "127.%d.%d" % (random.randrange(64, 192), random.randrange(256))
        if not any(shifted_net(net, k) in busy for k in range(count)):
            return net
    raise RuntimeError("no free 127.a.b/24 found")


def ensure_mailuser():
    try:
        pwd.getpwnam(MAILUSER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                        MAILUSER], check=True)
    return pwd.getpwnam(MAILUSER)


def make_certs(base, ips, key_type="rsa:2048"):
    """A CA and one server certificate valid for the given IP addresses;
    key_type is openssl req's -newkey for both, e.g. "rsa:2048" or "ec"
    (P-256)."""
    d = os.path.join(base, "certs")
    newkey = ["-newkey", key_type]
    if key_type == "ec":
        newkey += ["-pkeyopt", "ec_paramgen_curve:P-256"]
    os.makedirs(d, exist_ok=True)
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    key, csr, cert = (os.path.join(d, n) for n in ("server.key", "server.csr", "server.pem"))
    ext = os.path.join(d, "ext.cnf")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(["openssl", "req", "-x509"] + newkey + ["-nodes",
                    "-keyout", ca_key, "-out", ca, "-days", "2", "-subj",
                    "/CN=loft test CA"], check=True, **quiet)
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join("IP:" + ip for ip in ips) + "\n")
    subprocess.run(["openssl", "req"] + newkey + ["-nodes", "-keyout", key,
                    "-out", csr, "-subj", "/CN=loft test server"], check=True, **quiet)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
                    "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext],
                   check=True, **quiet)
    for p in (key, ca_key):
        os.chmod(p, 0o644)  # Dovecot reads it as root; test data only
    return {"ca": ca, "cert": cert, "key": key}



class ScriptServer:
    """A TCP server on ip (a free port) for a test's own dialogue: each
    connection, numbered from 0 in accept order, goes to the subclass's
    talk(conn, n) in a thread of its own. A subclass sets what talk uses
    before calling this __init__ (the server accepts at once)."""

    def __init__(self, ip):
        self.listener = socket.create_server((ip, 0))
        self.ip, self.port = ip, self.listener.getsockname()[1]
        self.conns = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.talk, args=(c, len(self.conns) - 1),
                             daemon=True).start()

    def talk(self, conn, n):
        raise NotImplementedError

    def close(self):
        self.listener.close()

# the backends' master user (fixtures/dovecot-backend.conf.in)
MASTER_USER, MASTER_PASSWORD = "loftmaster", "masterpass"


def write_passwd(path, users):
    """users: {name: password}; written in Dovecot's passwd-file format."""
    with open(path + ".tmp", "w") as f:
        for name, pw in users.items():
            f.write("%s:{PLAIN}%s::::::\n" % (name, pw))
    os.replace(path + ".tmp", path)
    os.chmod(path, 0o644)
    return path


def write_users(base, users):
    """The users file of the backends in base, and their master users'."""
    write_passwd(os.path.join(base, "masters.passwd"), {MASTER_USER: MASTER_PASSWORD})
    return write_passwd(os.path.join(base, "users.passwd"), users)


POP3_OFFSET = -33          # 20143 -> 20110, 1143 -> 1110
POP3_TLS_OFFSET = 2        # 20993 -> 20995
SIEVE_OFFSET = 4047        # 20143 -> 24190, 1143 -> 5190
SUBMISSION_OFFSET = 444    # 20143 -> 20587, 1143 -> 1587
RELAY_OFFSET = 5000        # 20143 -> 25143: where submission relays (a sink)
LMTP_OFFSET = -119         # 20143 -> 20024, 1143 -> 1024


class Backend:
    """One private Dovecot instance."""

    def __init__(self, base, name, ip, port, certs, ssl="yes", tls_port=0,
                 relay_ip="127.0.0.1", extra_conf=""):
        """extra_conf: Dovecot settings after the fixture's (a later
        setting wins, a passdb block is asked after the fixture's)."""
        self.base, self.name, self.ip, self.port = base, name, ip, port
        self.extra_conf = extra_conf
        self.tls_port = tls_port
        self.relay_ip = relay_ip
        # the other protocols sit at fixed offsets from IMAP's ports
        self.pop3_port = port + POP3_OFFSET
        self.pop3_tls_port = tls_port + POP3_TLS_OFFSET if tls_port else 0
        self.sieve_port = port + SIEVE_OFFSET
        self.submission_port = port + SUBMISSION_OFFSET
        self.relay_port = port + RELAY_OFFSET
        self.lmtp_port = port + LMTP_OFFSET
        self.dir = os.path.join(base, name)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.log = os.path.join(self.dir, "dovecot.log")
        self.certs, self.ssl = certs, ssl

    def write_config(self):
        for sub in ("run", "state"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        with open(os.path.join(HERE, "fixtures", "dovecot-backend.conf.in")) as f:
            text = f.read()
        repl = {"BASE": self.base, "NAME": self.name, "IP": self.ip,
                "PORT": str(self.port), "SPORT": str(self.tls_port),
                "POP3PORT": str(self.pop3_port), "POP3SPORT": str(self.pop3_tls_port),
                "SIEVEPORT": str(self.sieve_port),
                "SUBMISSIONPORT": str(self.submission_port),
                "RELAYHOST": self.relay_ip, "RELAYPORT": str(self.relay_port),
                "LMTPPORT": str(self.lmtp_port),
                "MAILUSER": MAILUSER, "SSL": self.ssl,
                "CERT": self.certs["cert"], "KEY": self.certs["key"]}
        text += self.extra_conf
        for k, v in repl.items():
            text = text.replace("@%s@" % k, v)
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self):
        self.write_config()
        err = open(os.path.join(self.dir, "master-stderr.log"), "ab")
        # the master keeps the stderr it was given: never hand it a pipe
        subprocess.run(["dovecot", "-c", self.conf], stdin=subprocess.DEVNULL,
                       stdout=err, stderr=err, check=True)
        err.close()
        wait_for(lambda: all(port_open(self.ip, p) for p in (
            self.port, self.pop3_port, self.sieve_port, self.submission_port,
            self.lmtp_port)), 20,
                 "dovecot %s on %s:%d" % (self.name, self.ip, self.port))

    def signal_stop(self):
        """Sends SIGTERM to this instance's master; returns its pid or None."""
        pidfile = os.path.join(self.dir, "run", "master.pid")
        try:
            pid = int(open(pidfile).read())
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if self.conf.encode() not in f.read():
                    return None  # not ours
            os.kill(pid, signal.SIGTERM)
            return pid
        except (OSError, ValueError, ProcessLookupError):
            return None

    @staticmethod
    def wait_gone(pid, what):
        def gone():
            try:
                os.kill(pid, 0)
                return False
            except ProcessLookupError:
                return True
        wait_for(gone, 20, what)

    def stop(self):
        pid = self.signal_stop()
        if pid is not None:
            self.wait_gone(pid, "dovecot %s to stop" % self.name)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


class Cluster:
    """Backends plus the shared users and maildirs."""

    def __init__(self, base, ips, port, users, ssl="yes", tls_port=0, cert_ips=(),
                 relay_ip="127.0.0.1", extra_conf=""):
        """relay_ip: where the backends' submission relays (the SMTP sink);
        extra_conf: see Backend."""
        self.base = base
        self.relay_ip = relay_ip
        os.makedirs(base, exist_ok=True)
        os.chmod(base, 0o755)  # login processes run as dovenull
        ent = ensure_mailuser()
        self.certs = make_certs(base, list(ips) + list(cert_ips) + ["127.0.0.1"])
        self.users = dict(users)
        write_users(base, self.users)
        mail = os.path.join(base, "mail")
        os.makedirs(mail, exist_ok=True)
        os.chown(mail, ent.pw_uid, ent.pw_gid)
        self.backends = [Backend(base, "be%d" % (i + 1), ip, port, self.certs, ssl,
                                 tls_port, relay_ip, extra_conf)
                         for i, ip in enumerate(ips)]

    def start(self, sink=True):
        """Starts the backends, and in this process the SMTP sink their
        submission service relays to (sink=False: the caller runs one)."""
        self.sink = None
        if sink:
            self.sink = smtpsink.SmtpSink(self.relay_ip, self.backends[0].relay_port)
            self.sink.start()
        for b in self.backends:
            b.start()

    def stop(self):
        if getattr(self, "sink", None) is not None:
            self.sink.stop()
            self.sink = None
        # all masters shut down at once: each takes seconds on its own
        pids = [(b, b.signal_stop()) for b in self.backends]
        for b, pid in pids:
            if pid is not None:
                Backend.wait_gone(pid, "dovecot %s to stop" % b.name)

    def by_ip(self, ip):
        return next(b for b in self.backends if b.ip == ip)


LOFT_CONF = """\
base_dir = "{base_dir}";
state_dir = "{state_dir}";
{privileges}
listeners = (
  {{ protocol = "imap"; address = "{ip}"; port = {port}; }},
  {{ protocol = "imap"; address = "{ip}"; port = {tls_port}; tls = true; }},
  {{ protocol = "pop3"; address = "{ip}"; port = {pop3_port}; }},
  {{ protocol = "pop3"; address = "{ip}"; port = {pop3_tls_port}; tls = true; }},
  {{ protocol = "managesieve"; address = "{ip}"; port = {sieve_port}; }},
  {{ protocol = "submission"; address = "{ip}"; port = {submission_port}; }},
  {{ protocol = "lmtp"; address = "{ip}"; port = {lmtp_port}; }}{extra_listeners}
);
tls = {{ cert = "{cert}"; key = "{key}"; {tls_extra} }};
login = {{ trusted_networks = [ {trusted} ]; disable_plaintext_auth = {dpa}; timeout = "{timeout}";
          max_line_length = "{max_line}"; max_literal_size = "{max_literal}";
          max_userip_connections = {max_userip}; }};
auth = {{ penalty = {penalty}; username_format = "{username_format}"; {auth_extra} }};
passdb = ( {passdb} );
director = {{ mail_servers = [ {servers} ]; user_expire = "{user_expire}"; username_hash = "%Lu";
             {director_extra} }};
backend = {{ imap_port = {backend_port}; pop3_port = {backend_pop3_port};
            managesieve_port = {backend_sieve_port};
            submission_port = {backend_submission_port}; lmtp_port = {backend_lmtp_port};
            ssl = "{backend_ssl}"; ssl_ca_file = "{ca}"; connect_timeout = "{connect_timeout}"; }};
lmtp = {{ {lmtp_extra} }};
log = {{ level = "{log_level}"; }};
{extra_conf}
"""


LOFT_POP3_OFFSET = -1033
LOFT_SIEVE_OFFSET = -7000    # 11143 -> 4143
LOFT_SUBMISSION_OFFSET = -9000   # 11143 -> 2143
LOFT_LMTP_OFFSET = -8500         # 11143 -> 2643 (clear of every other offset)


def terminate(proc, timeout=30):
    """SIGTERM, SIGKILL after timeout seconds; returns the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class Loftd:
    """A loftd process with its own config, base_dir and log."""

    def __init__(self, base, ip, port, tls_port, cluster, passdb=None, **opts):
        self.base, self.ip, self.port, self.tls_port = base, ip, port, tls_port
        # POP3 listeners below the IMAP ones: 11143 -> 10110 (TLS 10111)
        self.pop3_port = port + LOFT_POP3_OFFSET
        self.pop3_tls_port = self.pop3_port + 1
        self.sieve_port = port + LOFT_SIEVE_OFFSET
        self.submission_port = port + LOFT_SUBMISSION_OFFSET
        self.lmtp_port = port + LOFT_LMTP_OFFSET
        self.dir = os.path.join(base, "loftd-%d" % port)
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "loft.conf")
        self.log = os.path.join(self.dir, "loftd.log")
        self.base_dir = os.path.join(self.dir, "run")
        self.admin = os.path.join(self.base_dir, "admin")
        self.state_dir = os.path.join(self.dir, "state")
        # a new Loftd starts from its config; restarting the same one keeps
        # the state its admins made
        shutil.rmtree(self.state_dir, ignore_errors=True)
        if os.path.exists(self.log):
            os.unlink(self.log)
        self.cluster = cluster
        self.proc = None
        values = {
            "base_dir": self.base_dir, "state_dir": self.state_dir, "ip": ip,
            "port": port, "tls_port": tls_port, "pop3_port": self.pop3_port,
            "pop3_tls_port": self.pop3_tls_port,
            "backend_pop3_port": cluster.backends[0].pop3_port,
            "sieve_port": self.sieve_port,
            "backend_sieve_port": cluster.backends[0].sieve_port,
            "submission_port": self.submission_port,
            "backend_submission_port": cluster.backends[0].submission_port,
            "lmtp_port": self.lmtp_port,
            "backend_lmtp_port": cluster.backends[0].lmtp_port,
            "username_format": "%Lu", "lmtp_extra": "",
            "cert": cluster.certs["cert"], "key": cluster.certs["key"],
            "ca": cluster.certs["ca"], "trusted": "", "dpa": "false",
            "timeout": "60s", "max_line": "8k", "max_literal": "8k",
            "passdb": passdb or '{ driver = "backend"; }',
            "servers": ", ".join('"%s"' % b.ip for b in cluster.backends),
            "backend_port": cluster.backends[0].port, "backend_ssl": "no",
            "connect_timeout": "10s", "log_level": "info",
            "max_userip": 10, "penalty": "true", "auth_extra": "", "director_extra": "", "user_expire": "15m",
            "extra_listeners": "", "tls_extra": "",
            # test_privileges.py runs loftd as nobody
            "privileges": "allow_root = true;", "extra_conf": "", "auth_extra": "",
        }
        values.update(opts)
        with open(self.conf, "w") as f:
            f.write(LOFT_CONF.format(**values))

    def binary(self, name="loftd"):
        return os.path.join(build_dir(), name)

    def start(self):
        self.logf = open(self.log, "ab")
        # a restart appends to the same log
        starts = self.log_text().count("loftd started")
        self.proc = subprocess.Popen([self.binary(), "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        # "loftd started" comes after the last start-up step (the switch
        # to `user`, the signal handlers)
        wait_for(lambda: self.proc.poll() is not None or
                 (port_open(self.ip, self.port) and os.path.exists(self.admin) and
                  self.log_text().count("loftd started") > starts),
                 10, "loftd to listen")
        if self.proc.poll() is not None:
            raise RuntimeError("loftd exited %d:\n%s" % (self.proc.returncode,
                                                          self.log_text()))

    def stop(self):
        """SIGTERM; returns the exit status. Sanitizer reports fail here."""
        if self.proc is None:
            return 0
        rc = terminate(self.proc)
        self.logf.close()
        self.proc = None
        return rc

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def sanitizer_reports(self):
        text = self.log_text()
        return [m.group(0) for m in re.finditer(
            r"(ERROR: (Address|Leak|Undefined)Sanitizer.*|runtime error:.*)", text)]
