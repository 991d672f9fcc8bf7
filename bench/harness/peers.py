"""The proxies people would pick instead of loft, from Debian's packages
(`scripts/deps.sh bench`), each configured for its best and started on its
own loopback address in front of the bench backend. Templates are in
bench/peers/."""
import os
import pwd
import resource
import shutil
import subprocess

from harness.systems import (BACKEND_IPS, BACKEND_LMTP_PORT, BACKEND_PORT, IMAP_PORT,
                             IMAPS_PORT, LMTP_PORT, NET, System, stop_process, wait_port)
from harness import procstat
import loftlib

PEERS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "peers")


def render(template, path, **values):
    with open(os.path.join(PEERS_DIR, template)) as f:
        text = f.read().format(**values)
    with open(path, "w") as f:
        f.write(text)
    return path


def nofile():
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def read_pid(path):
    """A daemon's pid file, once it has written it."""
    loftlib.wait_for(lambda: os.path.exists(path) and os.path.getsize(path) > 0, 20,
                     "%s to appear" % path)
    with open(path) as f:
        return int(f.read().strip())


class Peer(System):
    tls = True
    starttls = True
    pid = None
    proc = None
    conf = None

    def roots(self):
        return [self.pid]

    def spawn(self, args, log_name, preexec_fn=None):
        """Runs a foreground server, its output to log_name, until it
        listens."""
        with open(os.path.join(self.dir, log_name), "ab") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
        self.pid = self.proc.pid
        wait_port(self.ip, IMAP_PORT, self.proc)

    def stop(self):
        stop_process(self.proc)


class Haproxy(Peer):
    name = "haproxy"
    description = ("HAProxy, TCP mode (no login parsing), round robin; TLS on 993 only "
                   "(it cannot speak IMAP STARTTLS)")
    ip = "%s.2" % NET
    starttls = False
    threads = "# nbthread: the default, one per CPU"

    def start(self):
        certs = self.certs()
        pem = os.path.join(self.dir, "server+key.pem")
        with open(pem, "w") as out:
            for p in (certs["cert"], certs["key"]):
                with open(p) as f:
                    out.write(f.read())
        servers = "\n".join("    server be%d %s:%d" % (i, ip, BACKEND_PORT)
                            for i, ip in enumerate(BACKEND_IPS))
        conf = render("haproxy.cfg.in", os.path.join(self.dir, "haproxy.cfg"),
                      maxconn=(nofile() - 100) // 2, ip=self.ip, port=IMAP_PORT,
                      tls_port=IMAPS_PORT, pem=pem, servers=servers, threads=self.threads)
        self.spawn(["haproxy", "-db", "-f", conf], "haproxy.log")


class Haproxy1(Haproxy):
    """HAProxy with one thread, as loftd has one loop thread: like with
    like for the latency tail (bench/compare.py --tail)."""
    name = "haproxy-1t"
    description = "the same HAProxy with nbthread 1"
    ip = "%s.8" % NET
    threads = "nbthread 1"


class Nginx(Peer):
    name = "nginx"
    description = ("nginx mail proxy, auth_http served by the same nginx, proxy_buffer 64k, "
                   "a shared TLS session cache")
    ip = "%s.3" % NET

    def start(self):
        certs = self.certs()
        digits = "\n".join("        ~%d$ %s;" % (d, BACKEND_IPS[d % len(BACKEND_IPS)])
                           for d in range(10))
        self.conf = render("nginx.conf.in", os.path.join(self.dir, "nginx.conf"),
                           dir=self.dir, nofile=nofile(),
                           # a worker may take most sessions: two each
                           worker_connections=nofile() - 100,
                           map=digits, ip=self.ip, backend_port=BACKEND_PORT,
                           cert=certs["cert"], key=certs["key"], port=IMAP_PORT,
                           tls_port=IMAPS_PORT)
        log = os.path.join(self.dir, "error.log")
        with open(os.path.join(self.dir, "master.log"), "ab") as out:
            subprocess.run(["nginx", "-e", log, "-p", self.dir + "/", "-c", self.conf],
                           check=True, stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT)
        wait_port(self.ip, IMAP_PORT)
        self.pid = read_pid(os.path.join(self.dir, "nginx.pid"))

    def stop(self):
        if self.pid is None:
            return
        subprocess.run(["nginx", "-e", os.path.join(self.dir, "error.log"), "-p",
                        self.dir + "/", "-c", self.conf, "-s", "quit"], check=False)
        loftlib.wait_for(lambda: not os.path.exists("/proc/%d" % self.pid), 30,
                         "nginx to stop")


class Perdition(Peer):
    name = "perdition"
    description = "perdition, a process per session, regex map, nofile 1024"
    ip = "%s.4" % NET
    tls = False
    max_idle = 1000		# a process per session: 9000 would take minutes
    starttls = False

    def start(self):
        with open(os.path.join(self.dir, "popmap.re"), "w") as f:
            for d in range(10):
                f.write("^user[0-9]*%d$:\t%s:%d\n" % (d, BACKEND_IPS[d % len(BACKEND_IPS)],
                                                      BACKEND_PORT))
        conf = render("perdition.conf.in", os.path.join(self.dir, "perdition.conf"),
                      ip=self.ip, port=IMAP_PORT, backend_port=BACKEND_PORT, dir=self.dir)
        log = os.path.join(self.dir, "perdition.log")
        open(log, "w").close()
        nobody = pwd.getpwnam("nobody")
        os.chown(log, nobody.pw_uid, nobody.pw_gid)	# it reopens it as nobody

        def low_nofile():
            # every forked child closes all descriptors up to the limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
        self.spawn(["perdition.imap4", "-f", conf], "stderr.log", low_nofile)


class Dovecot(Peer):
    """A Dovecot instance of its own configuration (self.conf)."""

    def stop(self):
        if self.conf is None:
            return
        subprocess.run(["dovecot", "-c", self.conf, "stop"], check=False)
        if self.pid is None:
            return
        loftlib.wait_for(lambda: not os.path.exists("/proc/%d" % self.pid), 30,
                         "dovecot to stop")


class DovecotDirector(Dovecot):
    name = "dovecot"
    description = "Dovecot 2.3 director + login proxy, service_count = 0"
    ip = "%s.5" % NET

    def start(self):
        certs = self.certs()
        for p in (certs["cert"], certs["key"]):
            os.chmod(p, 0o644)
        os.chmod(self.dir, 0o755)
        self.conf = render("dovecot-director.conf.in",
                           os.path.join(self.dir, "dovecot.conf"), dir=self.dir, ip=self.ip,
                           cert=certs["cert"], key=certs["key"],
                           servers=" ".join(BACKEND_IPS), port=IMAP_PORT,
                           tls_port=IMAPS_PORT, backend_port=BACKEND_PORT)
        with open(os.path.join(self.dir, "master.log"), "ab") as log:
            # the daemon must not keep our stdout open
            subprocess.run(["dovecot", "-c", self.conf], check=True, stdin=subprocess.DEVNULL,
                           stdout=log, stderr=subprocess.STDOUT)
        wait_port(self.ip, IMAP_PORT)
        self.pid = read_pid(os.path.join(self.dir, "run", "master.pid"))


class DovecotLmtp(Dovecot):
    """Dovecot's LMTP proxy; only in the LMTP comparison. userN's mail
    goes to BACKEND_IPS[N % 8]: recipients spread over the backends as
    loft's director spreads them."""
    name = "dovecot-lmtp"
    description = ("Dovecot 2.3 lmtp, lmtp_proxy = yes, passwd-file passdb with proxy=y "
                   "and a host per user, a process per connection (client_limit = 1)")
    ip = "%s.6" % NET
    tls = starttls = False
    lmtp = lmtp_only = True
    users = 1000		# userN for N up to this
    min_avail = 20		# lmtp processes started in advance
    process_limit = 1000

    def start(self):
        # its auth process reads the users file as user dovecot
        os.chmod(self.base, 0o711)
        os.chmod(self.dir, 0o755)
        with open(os.path.join(self.dir, "users"), "w") as f:
            for n in range(1, self.users + 1):
                f.write("user%d:::::::proxy=y host=%s port=%d\n"
                        % (n, BACKEND_IPS[n % len(BACKEND_IPS)], BACKEND_LMTP_PORT))
        self.conf = render("dovecot-lmtp.conf.in", os.path.join(self.dir, "dovecot.conf"),
                           dir=self.dir, ip=self.ip, port=LMTP_PORT,
                           min_avail=self.min_avail, process_limit=self.process_limit)
        with open(os.path.join(self.dir, "master.log"), "ab") as log:
            subprocess.run(["dovecot", "-c", self.conf], check=True, stdin=subprocess.DEVNULL,
                           stdout=log, stderr=subprocess.STDOUT)
        wait_port(self.ip, LMTP_PORT)
        self.pid = read_pid(os.path.join(self.dir, "run", "master.pid"))
        # the processes started in advance, before anything is measured
        loftlib.wait_for(lambda: len(procstat.named([self.pid], "lmtp")) >= self.min_avail,
                         20, "dovecot's lmtp processes")


class HaproxyLmtp(Peer):
    """HAProxy relaying each LMTP connection, unchanged, to one of the
    backend's addresses: the bench backend takes any recipient, so no
    routing is needed, and nothing a proxy must do could cost less. Only
    in the LMTP comparison."""
    name = "haproxy-tcp"
    description = ("HAProxy, TCP mode: each connection relayed unchanged to one backend "
                   "(round robin), no routing per recipient: the floor of any LMTP proxy")
    ip = "%s.9" % NET
    tls = starttls = False
    lmtp = lmtp_only = True

    def start(self):
        servers = "\n".join("    server be%d %s:%d" % (i, ip, BACKEND_LMTP_PORT)
                            for i, ip in enumerate(BACKEND_IPS))
        conf = render("haproxy-lmtp.cfg.in", os.path.join(self.dir, "haproxy.cfg"),
                      maxconn=(nofile() - 100) // 2, ip=self.ip, port=LMTP_PORT,
                      servers=servers)
        with open(os.path.join(self.dir, "haproxy.log"), "ab") as log:
            self.proc = subprocess.Popen(["haproxy", "-db", "-f", conf],
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        wait_port(self.ip, LMTP_PORT, self.proc)


PEERS = {cls.name: cls for cls in (Haproxy, Haproxy1, Nginx, Perdition, DovecotDirector)}
# peers only in the LMTP comparison
LMTP_PEERS = {cls.name: cls for cls in (DovecotLmtp, HaproxyLmtp)}


def available(name):
    exe = {"haproxy": "haproxy", "haproxy-1t": "haproxy", "haproxy-tcp": "haproxy",
           "nginx": "nginx",
           "perdition": "perdition.imap4",
           "dovecot": "dovecot", "dovecot-lmtp": "dovecot"}[name]
    return shutil.which(exe) is not None
