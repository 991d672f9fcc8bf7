"""loftd under systemd (loftd(8) SYSTEMD): this test plays systemd's side
of $NOTIFY_SOCKET, a datagram socket that receives each message with its
sender's credentials as systemd does, and checks each message comes at
its moment: READY=1 once the listeners accept, from the main process and
after the switch to `user` (a ring's node: once it has read the ring's
state), RELOADING=1 with MONOTONIC_USEC and READY=1 around SIGHUP,
STOPPING=1 as SIGTERM begins a stop, STATUS= with the session counts at
most every 5 s, WATCHDOG=1 at half of $WATCHDOG_USEC. log.target = "syslog"
sends the log to /dev/log (a socket of the test's, in a mount namespace).
And etc/loft.service passes `systemd-analyze verify` and keeps its
sandbox."""
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

import etcdlib
import loftlib
from conftest import LOFT_IP, NET
from imaputil import IMAP

NOBODY = pwd.getpwnam("nobody")
UNIT = os.path.join(loftlib.REPO, "etc", "loft.service")
STATUS_INTERVAL = 5.0
# the sandbox's exposure as `systemd-analyze security` rates it (0-100):
# 24 is what etc/loft.service has; raise it only on purpose
EXPOSURE_THRESHOLD = 24


class Message:
    def __init__(self, text, pid, uid, at):
        self.text, self.pid, self.uid, self.at = text, pid, uid, at

    def fields(self):
        return dict(line.split("=", 1) for line in self.text.split("\n"))

    def __repr__(self):
        return "<%r from pid %d uid %d at %.2f>" % (self.text, self.pid, self.uid, self.at)


class Manager:
    """systemd's end of $NOTIFY_SOCKET: each datagram with the sender's
    pid and uid (SO_PASSCRED, as systemd checks NotifyAccess=main)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(path)
        os.chmod(path, 0o777)  # as systemd's: loftd sends after leaving root
        self.seen = []

    def recv(self, timeout):
        """The next message, or None after timeout seconds."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return None
        pid = uid = -1
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, uid, _ = struct.unpack("iII", cdata[:12])
        m = Message(data.decode(), pid, uid, time.monotonic())
        self.seen.append(m)
        return m

    def wait(self, pred, timeout, what):
        """The first message pred() accepts, within timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv(deadline - time.monotonic())
            if m is not None and pred(m):
                return m
            if time.monotonic() >= deadline:
                raise TimeoutError("no %s from loftd within %ss; got %r"
                                   % (what, timeout, self.seen))

    def wait_text(self, text, timeout=10):
        return self.wait(lambda m: m.text == text, timeout, repr(text))

    def drain(self, seconds):
        """Every message within the next `seconds`."""
        got = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            m = self.recv(deadline - time.monotonic())
            if m is not None:
                got.append(m)
        return got

    def close(self):
        self.sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)


@pytest.fixture
def manager():
    d = tempfile.mkdtemp(prefix="loft-notify-", dir="/tmp")
    os.chmod(d, 0o755)
    m = Manager(os.path.join(d, "notify"))
    yield m
    m.close()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def reachable_base(cluster):
    """nobody must reach the directories loftd gets."""
    mode = os.stat(cluster.base).st_mode & 0o777
    os.chmod(cluster.base, 0o755)
    yield
    os.chmod(cluster.base, mode)


def spawn(loft_factory, loft, wrapper=(), args=(), **env):
    """Starts loft with env added (and no systemd variables of our own),
    without waiting: the manager's messages say when it is up. wrapper:
    a command that execs loftd (its pid stays loftd's)."""
    full = {k: v for k, v in os.environ.items()
            if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    full.update(env)
    loft.logf = open(loft.log, "ab")
    loft.proc = subprocess.Popen(list(wrapper) + [loft.binary(), "-c", loft.conf] + list(args),
                                 env=full,
                                 stdin=subprocess.DEVNULL, stdout=loft.logf,
                                 stderr=subprocess.STDOUT)
    loft_factory.started.append(loft)
    return loft


def greets(loft):
    """An IMAP client gets the greeting (the listener accepts and serves)."""
    try:
        with socket.create_connection((LOFT_IP, loft.port), timeout=2) as s:
            s.settimeout(2)
            return s.recv(100).startswith(b"* OK")
    except OSError:
        return False


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError("no Uid in /proc/%d/status" % pid)


def monotonic_usec():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def test_ready_once_listening_after_leaving_root(loft_factory, manager, reachable_base):
    loft = spawn(loft_factory, loft_factory(start=False, privileges='user = "nobody";'),
                 NOTIFY_SOCKET=manager.path)
    ready = manager.wait(lambda m: m.fields().get("READY") == "1", 10, "READY=1")
    # at this moment loftd serves: the listener greets, the admin socket is there
    assert greets(loft)
    assert os.path.exists(loft.admin)
    # the main process sent it (systemd's NotifyAccess=main), after the
    # switch to `user` (the kernel's credentials of the sender)
    assert ready.pid == loft.proc.pid
    assert ready.uid == NOBODY.pw_uid, ready
    assert ready.fields()["STATUS"] == "sessions: 0 (0 pre-login, 0 logging in, 0 proxying)"
    # READY=1 is the first message, and there is one
    assert manager.seen[0] is ready
    assert not [m for m in manager.drain(1.0) if "READY" in m.fields()]
    # no watchdog was asked for: no pings
    assert not [m for m in manager.seen if "WATCHDOG" in m.fields()]


def test_status_counts_sessions_at_most_every_5s(loft_factory, manager):
    # a watchdog makes the timer tick every 0.5 s: the status still waits 5 s
    loft = spawn(loft_factory, loft_factory(start=False), NOTIFY_SOCKET=manager.path,
                 WATCHDOG_USEC="1000000")
    ready = manager.wait(lambda m: "READY" in m.fields(), 10, "READY=1")
    c = IMAP(LOFT_IP, loft.port)
    c.login("user3", "pass")
    one = manager.wait(lambda m: "STATUS" in m.fields(), 2 * STATUS_INTERVAL,
                       "a STATUS= line")
    assert one.fields()["STATUS"] == "sessions: 1 (0 pre-login, 0 logging in, 1 proxying)"
    c.logout()
    zero = manager.wait(lambda m: "STATUS" in m.fields(), 2 * STATUS_INTERVAL,
                        "the next STATUS= line")
    assert zero.fields()["STATUS"] == "sessions: 0 (0 pre-login, 0 logging in, 0 proxying)"
    gaps = [one.at - ready.at, zero.at - one.at]
    assert all(g > STATUS_INTERVAL - 0.5 for g in gaps), gaps
    # the pings went on beside the status
    assert [m for m in manager.seen if m.at > ready.at and "WATCHDOG" in m.fields()]
    # unchanged: no STATUS= line again
    assert not [m for m in manager.drain(STATUS_INTERVAL + 1) if "STATUS" in m.fields()]
    assert loft.proc.poll() is None


def test_reloading_then_ready_around_sighup(loft_factory, manager):
    loft = spawn(loft_factory, loft_factory(start=False), NOTIFY_SOCKET=manager.path)
    manager.wait(lambda m: "READY" in m.fields(), 10, "READY=1")
    before = monotonic_usec()
    loft.proc.send_signal(signal.SIGHUP)
    reloading = manager.wait(lambda m: "RELOADING" in m.fields(), 10, "RELOADING=1")
    after = monotonic_usec()
    f = reloading.fields()
    assert sorted(f) == ["MONOTONIC_USEC", "RELOADING"] and f["RELOADING"] == "1", f
    # systemd 253+ matches it against its own CLOCK_MONOTONIC
    assert before <= int(f["MONOTONIC_USEC"]) <= after
    ready = manager.recv(10)
    assert ready is not None and ready.text == "READY=1", manager.seen
    loftlib.wait_for(lambda: "reload done" in loft.log_text(), 5, "the reload")
    # a file that does not load: loftd runs on as before, and says so
    with open(loft.conf) as f:
        good = f.read()
    with open(loft.conf, "w") as f:
        f.write(good + "\nnot a setting\n")
    try:
        loft.proc.send_signal(signal.SIGHUP)
        manager.wait(lambda m: "RELOADING" in m.fields(), 10, "RELOADING=1")
        again = manager.recv(10)
        assert again is not None and again.text == "READY=1", manager.seen
        assert "reload failed" in loft.log_text()
    finally:
        with open(loft.conf, "w") as f:
            f.write(good)
    assert greets(loft)


def test_stopping_when_sigterm_begins_the_stop(loft_factory, manager):
    loft = spawn(loft_factory, loft_factory(
        start=False, extra_conf='shutdown = { max_disconnect_delay = "3s"; };'),
        NOTIFY_SOCKET=manager.path)
    manager.wait(lambda m: "READY" in m.fields(), 10, "READY=1")
    c = IMAP(LOFT_IP, loft.port)
    c.login("user4", "pass")
    loft.proc.send_signal(signal.SIGTERM)
    stopping = manager.wait(lambda m: "STOPPING" in m.fields(), 5, "STOPPING=1")
    # at the start of the stop, not its end: the session is still there
    assert loft.proc.poll() is None
    assert stopping.fields() == {
        "STOPPING": "1",
        "STATUS": "stopping; sessions: 1 (0 pre-login, 0 logging in, 1 proxying)"}
    assert loft.proc.wait(30) == 0


def test_watchdog_pings_at_half_the_interval(loft_factory, manager):
    spawn(loft_factory, loft_factory(start=False), NOTIFY_SOCKET=manager.path,
          WATCHDOG_USEC="1000000")
    manager.wait(lambda m: "READY" in m.fields(), 10, "READY=1")
    pings = [m for m in manager.drain(3.0) if m.fields().get("WATCHDOG") == "1"]
    gaps = [b.at - a.at for a, b in zip(pings, pings[1:])]
    assert len(pings) >= 4, manager.seen
    assert all(0.3 < g < 0.8 for g in gaps), gaps


def test_watchdog_of_another_process_is_not_pinged(loft_factory, manager):
    # WATCHDOG_PID names who must ping: another pid, no pings
    spawn(loft_factory, loft_factory(start=False), NOTIFY_SOCKET=manager.path,
          WATCHDOG_USEC="400000", WATCHDOG_PID=str(os.getpid()))
    manager.wait(lambda m: "READY" in m.fields(), 10, "READY=1")
    assert not [m for m in manager.drain(1.5) if "WATCHDOG" in m.fields()]


def test_watchdog_pid_of_loftd_is_pinged(loft_factory, manager):
    loft = loft_factory(start=False)
    env = {k: v for k, v in os.environ.items() if k != "WATCHDOG_PID"}
    env.update(NOTIFY_SOCKET=manager.path, WATCHDOG_USEC="400000")
    loft.logf = open(loft.log, "ab")
    # the shell's pid is loftd's once it execs
    loft.proc = subprocess.Popen(
        ["sh", "-c", 'WATCHDOG_PID=$$ exec "$0" -c "$1"', loft.binary(), loft.conf],
        env=env, stdin=subprocess.DEVNULL, stdout=loft.logf, stderr=subprocess.STDOUT)
    loft_factory.started.append(loft)
    manager.wait(lambda m: "READY" in m.fields(), 10, "READY=1")
    ping = manager.wait(lambda m: "WATCHDOG" in m.fields(), 2, "WATCHDOG=1")
    assert ping.pid == loft.proc.pid


def test_unusable_notify_socket_is_refused(loft_factory):
    loft = loft_factory(start=False)
    env = dict(os.environ, NOTIFY_SOCKET="run/notify")
    r = subprocess.run([loft.binary(), "-c", loft.conf], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1
    assert "NOTIFY_SOCKET=run/notify: not an absolute path or @abstract name" in r.stderr
    env = dict(os.environ, NOTIFY_SOCKET="/run/notify", WATCHDOG_USEC="30s")
    r = subprocess.run([loft.binary(), "-c", loft.conf], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1
    assert "WATCHDOG_USEC=30s: not a number" in r.stderr


def test_a_manager_gone_is_said_once_and_back_again(loft_factory):
    d = tempfile.mkdtemp(prefix="loft-notify-", dir="/tmp")
    path = os.path.join(d, "notify")
    try:
        # nobody listens yet: the pings (every 100 ms) fail, said once
        loft = spawn(loft_factory, loft_factory(start=False), NOTIFY_SOCKET=path,
                     WATCHDOG_USEC="200000")
        loftlib.wait_for(lambda: "loftd started" in loft.log_text(), 10, "loftd to start")
        time.sleep(1.0)  # ten failed pings: the log must not grow by ten
        assert loft.log_text().count("systemd notification not sent") == 1
        assert "No such file or directory" in loft.log_text()
        # the manager (re)appears: messages get through, and that is said
        m = Manager(path)
        try:
            m.wait_text("WATCHDOG=1", 2)
        finally:
            m.close()
        loftlib.wait_for(lambda: "systemd notifications are taken again" in loft.log_text(),
                         5, "the recovery to be logged")
        assert loft.proc.poll() is None
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def etcd_down(cluster):
    """One etcd member, not started yet (the test starts it)."""
    c = etcdlib.EtcdCluster(os.path.join(cluster.base, "etcd-systemd"), NET, n=1,
                            first=61, name="systemd")
    try:
        yield c
    finally:
        c.stop()


def ring_conf(etcd, port, extra=""):
    endpoints = ", ".join('"%s"' % e for e in etcd.endpoints())
    return ('ring = { etcd = [ %s ]; prefix = "/loft-systemd/"; port = %d; '
            'lease_ttl = "3s"; %s };' % (endpoints, port, extra))


def test_a_ring_node_is_ready_once_it_read_the_ring(loft_factory, manager, etcd_down):
    loft = spawn(loft_factory, loft_factory(
        start=False, penalty="false", extra_conf=ring_conf(etcd_down, 9190)),
        NOTIFY_SOCKET=manager.path)
    loftlib.wait_for(lambda: "retrying" in loft.log_text(), 10, "loftd to wait for etcd")
    # bound, but not ready, and says why
    waiting = manager.wait(lambda m: "STATUS" in m.fields(), STATUS_INTERVAL + 3,
                           "a STATUS= line while waiting")
    assert waiting.fields() == {"STATUS": "waiting for the ring's state from etcd"}
    assert not [m for m in manager.seen if "READY" in m.fields()]
    assert not greets(loft)
    etcd_down.start()
    ready = manager.wait(lambda m: "READY" in m.fields(), 30, "READY=1")
    assert "ring: joined as" in loft.log_text()
    assert greets(loft)
    assert ready.pid == loft.proc.pid
    c = IMAP(LOFT_IP, loft.port)
    c.login("user5", "pass")
    c.logout()
    # a node the ring refuses stops, and the manager hears why
    other = loft_factory(start=False, penalty="false", username_format="%n",
                         extra_conf=ring_conf(etcd_down, 9191))
    m2 = Manager(manager.path + "2")
    try:
        spawn(loft_factory, other, NOTIFY_SOCKET=m2.path)
        assert other.proc.wait(30) == 1
        loft_factory.started.remove(other)
        other.logf.close()
        stopping = m2.wait(lambda m: "STOPPING" in m.fields(), 5, "STOPPING=1")
        assert "the ring's auth.username_format is \"%Lu\", this node's is \"%n\"" \
            in stopping.fields()["STATUS"], stopping
        assert not [m for m in m2.seen if "READY" in m.fields()]
    finally:
        m2.close()


# Runs "$@" in a mount namespace of its own whose /dev holds only a few
# devices and, when $1/log is a socket, that socket as /dev/log: loftd's
# syslog lines reach the test, and the host's /dev is not touched.
PRIVATE_DEV = r"""
set -e
t=$1; shift
mkdir -p "$t/olddev"
mount --bind /dev "$t/olddev"
mount -t tmpfs -o mode=0755 loft-test-dev /dev
for n in null zero full random urandom; do
    touch "/dev/$n"
    mount --bind "$t/olddev/$n" "/dev/$n"
done
ln -s /proc/self/fd /dev/fd
if [ -S "$t/log" ]; then
    touch /dev/log
    mount --bind "$t/log" /dev/log
fi
exec "$@"
"""


def private_dev(tmp_path):
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", PRIVATE_DEV,
            "private-dev", str(tmp_path)]


def test_log_target_syslog(loft_factory, tmp_path):
    syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    syslog.bind(str(tmp_path / "log"))
    syslog.settimeout(10)
    loft = spawn(loft_factory, loft_factory(start=False), wrapper=private_dev(tmp_path),
                 args=["-o", "log.target=syslog"])

    def line(text):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            got = syslog.recv(4096).decode()
            if text in got:
                return got
        raise TimeoutError("no syslog line with %r" % text)
    # facility mail (2 << 3), level info (6); syslog's own time, then
    # loftd[pid], then the line as on stderr
    started = line("loftd started")
    assert re.match(r"<22>\w{3} [ \d]\d \d\d:\d\d:\d\d loftd\[%d\]: info: loftd started "
                    % loft.proc.pid, started), started
    c = IMAP(LOFT_IP, loft.port)
    c.login("user6", "pass")
    c.logout()
    assert " user6 " in line(": closed: ")
    # nothing went to stderr
    assert "loftd started" not in loft.log_text()
    syslog.close()


def test_log_target_syslog_without_a_syslog_daemon(loft_factory, tmp_path):
    loft = loft_factory(start=False)
    r = subprocess.run(private_dev(tmp_path) + [loft.binary(), "-c", loft.conf, "-o",
                                                "log.target=syslog"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "log.target = syslog: cannot reach syslog at /dev/log: No such file or " \
        "directory" in r.stderr
    assert not loftlib.port_open(LOFT_IP, loft.port)


def unit_for_build(tmp_path):
    """etc/loft.service with ExecStart= on this build's loftd (systemd-analyze
    checks that the binary exists; the installed unit is checked by
    test_package.py as it is)."""
    with open(UNIT) as f:
        text = f.read()
    assert "ExecStart=/usr/sbin/loftd " in text
    path = tmp_path / "loft.service"
    path.write_text(text.replace("/usr/sbin/loftd", os.path.join(loftlib.build_dir(), "loftd")))
    return str(path)


def systemd_analyze():
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: run scripts/deps.sh (package systemd)"
    return tool


def test_unit_file_verifies(tmp_path):
    r = subprocess.run([systemd_analyze(), "verify", "--man=no", unit_for_build(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_unit_file_keeps_its_sandbox(tmp_path):
    with open(UNIT) as f:
        text = f.read()
    for line in ("Type=notify", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "RuntimeDirectory=loft", "StateDirectory=loft",
                 "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID CAP_CHOWN",
                 "ExecReload=/bin/kill -HUP $MAINPID"):
        assert "\n%s\n" % line in text, line
    # the directories systemd makes are loft.conf's defaults
    with open(os.path.join(loftlib.REPO, "etc", "loft.conf")) as f:
        conf = f.read()
    assert '\nbase_dir = "/run/loft";' in conf and '\nstate_dir = "/var/lib/loft";' in conf
    r = subprocess.run([systemd_analyze(), "security", "--offline=yes",
                        "--threshold=%d" % EXPOSURE_THRESHOLD, unit_for_build(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
