"""The systems under test, each in front of the same bench backend:
start() brings it up on its own loopback address, roots() names the
processes whose CPU and memory count, stop() ends it.

Addresses (all loopback): the bench backend listens on BACKEND_IPS (several
addresses, so a proxy's connections to it never run out of ports), each
system on its own address, the load generator connects from SOURCES. The
backend also speaks LMTP on BACKEND_LMTP_PORT of the same addresses, and
a system with an LMTP listener has it on LMTP_PORT."""
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import loftlib  # noqa: E402  (certificates)

# compare.py --quick (in make check) sets both to free nets of its own
NET = os.environ.get("LOFT_BENCH_NET", "127.0.6")
BACKEND_IPS = ["%s.%d" % (NET, 11 + i) for i in range(8)]
BACKEND_PORT = 1143
SOURCE_NET = os.environ.get("LOFT_BENCH_SOURCE_NET", "127.0.7")
SOURCES = "%s.1-%s.60" % (SOURCE_NET, SOURCE_NET)
IMAP_PORT, IMAPS_PORT = 1143, 1993
BACKEND_LMTP_PORT = LMTP_PORT = 1024


def wait_port(ip, port, proc=None, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited %d" % (proc.args[0], proc.returncode))
        try:
            socket.create_connection((ip, port), 1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on %s:%d" % (ip, port))


def stop_process(proc, timeout=30):
    """SIGTERM, then SIGKILL after timeout; returns the exit status."""
    return 0 if proc is None else loftlib.terminate(proc, timeout)


class Backend:
    """bench/backend on every BACKEND_IPS address: IMAP, and LMTP if asked
    (a backend built before it spoke LMTP refuses -m)."""

    def __init__(self, build, base, message_size, lmtp=False):
        self.build, self.base, self.message_size = build, base, message_size
        self.lmtp = lmtp
        self.proc = None

    def start(self):
        args = [os.path.join(self.build, "bench", "backend"), "-s", str(self.message_size)]
        for ip in BACKEND_IPS:
            args += ["-l", "%s:%d" % (ip, BACKEND_PORT)]
            if self.lmtp:
                args += ["-m", "%s:%d" % (ip, BACKEND_LMTP_PORT)]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        for ip in BACKEND_IPS:
            wait_port(ip, BACKEND_PORT, self.proc)
            if self.lmtp:
                wait_port(ip, BACKEND_LMTP_PORT, self.proc)

    def stop(self):
        stop_process(self.proc)


class System:
    name = "?"
    description = ""
    tls = False			# has an implicit-TLS IMAP listener
    starttls = False		# offers STARTTLS on its plain IMAP listener
    kick = False		# can kick sessions by user mask
    lmtp = False		# has an LMTP listener (LMTP_PORT)
    lmtp_only = False		# only in the LMTP comparison
    key_type = "rsa:2048"	# of its certificate (loftlib.make_certs)

    def __init__(self, build, base):
        self.build, self.base = build, base
        self.dir = os.path.join(base, self.name)
        os.makedirs(self.dir, exist_ok=True)

    def target(self, tls=False):
        return "%s:%d" % (self.ip, IMAPS_PORT if tls else IMAP_PORT)

    def lmtp_target(self):
        return "%s:%d" % (self.ip, LMTP_PORT)

    def certs(self):
        """A fresh certificate of key_type for its address."""
        return loftlib.make_certs(self.dir, [self.ip], self.key_type)

    def roots(self):
        return []

    def start(self):
        pass

    def stop(self):
        pass


class Direct(System):
    """No proxy: the load generator talks to the backend itself (the
    ceiling)."""
    name = "direct"
    description = "no proxy, straight to the backend"

    lmtp = True

    def target(self, tls=False):
        return ",".join("%s:%d" % (ip, BACKEND_PORT) for ip in BACKEND_IPS)

    def lmtp_target(self):
        return ",".join("%s:%d" % (ip, BACKEND_LMTP_PORT) for ip in BACKEND_IPS)


LOFT_CONF = """\
base_dir = "{dir}/run";
state_dir = "{dir}/state";
allow_root = true;
listeners = (
  {{ protocol = "imap"; address = "{ip}"; port = {port}; }},
  {{ protocol = "imap"; address = "{ip}"; port = {tls_port}; tls = true; }},
  {{ protocol = "lmtp"; address = "{ip}"; port = {lmtp_port}; }}
);
tls = {{ cert = "{cert}"; key = "{key}"; }};
login = {{ disable_plaintext_auth = false; max_userip_connections = 0; }};
auth = {{ penalty = false; username_format = "%Ln"; }};
passdb = ( {{ driver = "backend"; }} );
director = {{ mail_servers = [ {servers} ]; }};
backend = {{ imap_port = {backend_port}; lmtp_port = {backend_lmtp_port}; ssl = "no"; }};
log = {{ level = "warning"; }};
"""


class Loft(System):
    """loftd: director routing over the backend addresses, the backend
    checks the password (passdb "backend"), as a real deployment would.
    LMTP recipients "userN@bench.test" are routed as user userN."""
    name = "loft"
    description = "build/loftd, log level warning"
    ip = "%s.1" % NET
    tls = True
    starttls = True
    kick = True
    lmtp = True
    proc = None
    extra_conf = ""     # appended to the configuration (bench/ab.py)

    def start(self):
        certs = self.certs()
        self.conf = os.path.join(self.dir, "loft.conf")
        with open(self.conf, "w") as f:
            f.write(LOFT_CONF.format(
                dir=self.dir, ip=self.ip, port=IMAP_PORT, tls_port=IMAPS_PORT,
                cert=certs["cert"], key=certs["key"], backend_port=BACKEND_PORT,
                lmtp_port=LMTP_PORT, backend_lmtp_port=BACKEND_LMTP_PORT,
                servers=", ".join('"%s"' % ip for ip in BACKEND_IPS)) + self.extra_conf)
        self.log = open(os.path.join(self.dir, "loftd.log"), "ab")
        self.proc = subprocess.Popen([os.path.join(self.build, "loftd"), "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_port(self.ip, IMAP_PORT, self.proc)
        wait_port(self.ip, IMAPS_PORT, self.proc)
        wait_port(self.ip, LMTP_PORT, self.proc)

    def roots(self):
        return [self.proc.pid]

    def kick_all(self):
        """Kicks every session by mask; returns (sessions kicked, seconds)."""
        t0 = time.monotonic()
        r = subprocess.run([os.path.join(self.build, "loftadm"), "-v", "kick", "-a",
                            os.path.join(self.dir, "run", "admin"), "user*"],
                           capture_output=True, text=True, timeout=300)
        seconds = time.monotonic() - t0
        if r.returncode != 0:
            raise RuntimeError("loftadm kick failed: %s%s" % (r.stdout, r.stderr))
        last = r.stdout.strip().splitlines()[-1]
        return int(last.split()[0]), seconds

    def stop(self):
        """Stops loftd; a non-zero exit (a sanitizer's report, a crash)
        fails the run."""
        if self.proc is None:
            return
        rc = stop_process(self.proc)
        self.log.close()
        if rc != 0:
            with open(self.log.name, errors="replace") as f:
                raise RuntimeError("loftd exited %d:\n%s" % (rc, f.read()[-4000:]))


class LoftBefore(Loft):
    """Another loftd build (bench/compare.py --before: e.g. the commit
    before a change, built in a worktree of its own) beside build/loftd,
    in the same run."""
    name = "loft-before"
    ip = "%s.7" % NET
    build = None		# set by compare.py --before

    def __init__(self, build, base):
        super().__init__(LoftBefore.build or build, base)
    description = "the loftd of --before's build (the commit before a change), log level warning"


SYSTEMS = {cls.name: cls for cls in (Direct, Loft, LoftBefore)}
