"""SIGUSR2 (loftd(8) SIGNALS): loftd starts the binary it was started from
as a new process that inherits the listening sockets; once the new one
serves, the old one stops accepting, relays its sessions until they end
(or shutdown.max_drain passes), then exits. Each loftd runs from a copy of
the binary in a directory of the test's, so that the file can be replaced
as a package upgrade does."""
import os
import re
import shutil
import signal
import smtplib
import tempfile
import threading
import time
import urllib.request

import pytest

import loftlib
from conftest import BACKEND_IPS, LOFT_IP, NET
from imaputil import IMAP, Raw, dovecot_host
from test_ring import LEASE, etcd, etcd_whole, live_members, members_lease, ring_conf  # noqa: F401
from test_systemd import NOBODY, manager, reachable_base, spawn, uid_of  # noqa: F401

SRC = "%s.246" % NET  # a trusted LMTP client, as an MTA is
METRICS_PORT = 9392
METRICS = 'metrics = { address = "%s"; port = %d; };' % (LOFT_IP, METRICS_PORT)


def scrape():
    url = "http://%s:%d/metrics" % (LOFT_IP, METRICS_PORT)
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200
        return r.read().decode()
SERVES = "upgrade: pid (\\d+) serves now"
LEASE_S = float(LEASE.rstrip("s"))


def install(path, source):
    """Puts source at path the way a package does: a new file renamed over
    the old one (the running process keeps its own inode)."""
    tmp = path + ".new"
    shutil.copyfile(source, tmp)
    os.chmod(tmp, 0o755)
    os.rename(tmp, path)


@pytest.fixture
def upgradable(loft_factory):
    """Yields (make, exe): make(**opts) starts a loftd from exe, a copy of
    build/loftd the test may replace. Every loftd the test left (old and
    new) is stopped after, and none may have sanitizer reports."""
    d = tempfile.mkdtemp(prefix="loft-upgrade-", dir="/tmp")
    os.chmod(d, 0o755)  # a loftd running as nobody starts its successor
    exe = os.path.join(d, "loftd")
    install(exe, os.path.join(loftlib.build_dir(), "loftd"))
    made = []

    def make(env=None, **opts):
        """env: started as test_systemd.spawn() does, with env added."""
        loft = loft_factory(start=False, username_format="%Ln",
                            trusted='"%s/32"' % SRC, **opts)
        loft.binary = lambda name="loftd": exe
        # a successor started as `user` reads the config and state_dir
        os.chmod(loft.dir, 0o755)
        if env is None:
            loft.start()
            loft_factory.started.append(loft)
        else:
            spawn(loft_factory, loft, **env)
        made.append(loft)
        return loft
    yield make, exe
    for loft in made:
        for pid in new_pids(loft):
            stop_pid(pid)
        if loft in loft_factory.started:
            loft_factory.started.remove(loft)
            assert loft.stop() == 0
        assert not loft.sanitizer_reports(), loft.log_text()[-4000:]
    shutil.rmtree(d, ignore_errors=True)


def new_pids(loft):
    return [int(p) for p in re.findall(SERVES, loft.log_text())]


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def stop_pid(pid):
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
        loftlib.wait_for(lambda: not alive(pid), 30, "loftd %d to exit" % pid)


def upgrade(loft):
    """SIGUSR2 to the process serving now; returns the new pid."""
    pids = new_pids(loft)
    serving = pids[-1] if pids else loft.proc.pid
    os.kill(serving, signal.SIGUSR2)
    loftlib.wait_for(lambda: len(new_pids(loft)) == len(pids) + 1, 30,
                     "the new loftd to serve")
    return new_pids(loft)[-1]


def login_ok(loft, user):
    c = IMAP(LOFT_IP, loft.port)
    try:
        c.login(user, "pass")
        c.select("INBOX")
    except Exception:
        c.shutdown()
        raise
    c.logout()
    return True


class LoginLoop(threading.Thread):
    """Logs in over and over until stopped; counts what failed."""

    def __init__(self, loft):
        super().__init__(daemon=True)
        self.loft, self.ok, self.failed = loft, 0, []
        self.halt = threading.Event()

    def run(self):
        n = 0
        while not self.halt.is_set():
            n += 1
            try:
                login_ok(self.loft, "user%d" % (1 + n % 20))
                self.ok += 1
            except Exception as e:  # noqa: BLE001 - every failure counts
                self.failed.append(repr(e))

    def stop(self):
        self.halt.set()
        self.join(30)


def backend_of(loft, user):
    c = IMAP(LOFT_IP, loft.port)
    c.login(user, "pass")
    name = c.backend_name()
    c.logout()
    return name


def idle(loft, user):
    r = Raw(LOFT_IP, loft.port)
    r.line()
    r.send("a LOGIN %s pass\r\n" % user)
    r.until("a OK")
    r.send("b SELECT INBOX\r\n")
    r.until("b OK")
    r.send("c IDLE\r\n")
    assert r.line().startswith("+ ")
    return r


def deliver(loft, user, subject):
    with smtplib.LMTP(LOFT_IP, loft.lmtp_port, source_address=(SRC, 0)) as s:
        assert s.sendmail("sender@example.net", ["%s@loft.test" % user],
                          "Subject: %s\r\n\r\nbody\r\n" % subject) == {}


def test_upgrade_drops_nothing(upgradable):
    make, exe = upgradable
    loft = make()
    old_pid = loft.proc.pid
    # a user an admin moved off its hash's backend
    hashed = dovecot_host(BACKEND_IPS, "user29")
    other = next(ip for ip in BACKEND_IPS if ip != hashed)
    r = loftlib.loftadm("director", "move", "-a", loft.admin, "user29", other)
    assert r.returncode == 0, r
    moved = backend_of(loft, "user29")
    assert moved == loft.cluster.by_ip(other).name
    held = idle(loft, "user21")
    loop = LoginLoop(loft)
    loop.start()
    loftlib.wait_for(lambda: loop.ok >= 20 or loop.failed, 30, "logins before the upgrade")
    assert loop.failed == []
    new_pid = upgrade(loft)
    before = loop.ok
    loftlib.wait_for(lambda: loop.ok >= before + 40, 60, "logins after the upgrade")
    loop.stop()
    assert loop.failed == []
    # the old loftd accepts no more: every login now is the new one's
    text = loft.log_text()
    assert "upgrade: new loftd started as pid %d" % new_pid in text
    assert alive(old_pid) and loft.proc.poll() is None
    # the new loftd took the old one's assignments over: the moved user
    # stays where the admin put it
    assert backend_of(loft, "user29") == moved
    taken = re.search(r"upgrade: (\d+) user assignments taken over", text)
    assert taken and int(taken.group(1)) >= 2, text[-3000:]  # user29, user21, the loop's
    # the IDLE session on the old loftd still hears of new mail, delivered
    # through the new loftd (which routes user21 to the same backend)
    deliver(loft, "user21", "after the upgrade")
    held.sock.settimeout(20)
    line = held.line()
    while not line.endswith(" EXISTS"):
        line = held.line()
    # who on the new loftd lists the old one's session too; kick reaches it
    who = loftlib.loftadm("-a", loft.admin, "who", "user21")
    assert who.returncode == 0 and "user21" in who.stdout, who
    kick = loftlib.loftadm("-a", loft.admin, "kick", "user21")
    assert kick.returncode == 0, kick
    loftlib.wait_for(held.closed, 10, "the kicked session to close")
    # the old loftd's last session ended: it exits, the new one serves on
    assert loft.proc.wait(30) == 0
    assert "upgrade: the last session of this old loftd ended" in loft.log_text()
    assert not os.path.exists(os.path.join(loft.base_dir, "admin.old-%d" % old_pid))
    assert os.path.exists(loft.admin)
    assert login_ok(loft, "user22")


def test_move_during_the_overlap_closes_the_old_sessions(upgradable):
    """While the old loftd relays sessions, the new one counts them: a move
    on the new one closes them in the old one and waits for them to end,
    so the user is never on two backends. That holds for a session logged
    in before the upgrade (in the assignments handed over) and for one
    that was finishing its login in the old loftd at the handover (told
    to the new one as it took its session). A director kick reaches the
    old one's sessions too."""
    make, exe = upgradable
    loft = make()
    old_pid = loft.proc.pid
    before = idle(loft, "user21")
    kicked = idle(loft, "user25")
    # connected to the old loftd (greeted), logged in only after the handover
    late = Raw(LOFT_IP, loft.port)
    late.line()
    upgrade(loft)
    late.send("a LOGIN user23 pass\r\n")
    late.until("a OK")
    late.send("b SELECT INBOX\r\n")
    late.until("b OK")
    for user, held in (("user21", before), ("user23", late)):
        hashed = dovecot_host(BACKEND_IPS, user)
        other = next(ip for ip in BACKEND_IPS if ip != hashed)
        r = loftlib.loftadm("director", "move", "-a", loft.admin, user, other)
        assert r.returncode == 0, r
        # the move was answered after the old loftd's session had ended
        assert held.closed(), held.buf
        assert "Kicked via director" in held.buf.decode(), held.buf
        assert backend_of(loft, user) == loft.cluster.by_ip(other).name
    # a director kick on the new loftd reaches the old one's session too
    r = loftlib.loftadm("director", "kick", "-a", loft.admin, "user25")
    assert r.returncode == 0, r
    assert kicked.closed(), kicked.buf
    assert "Kicked by admin" in kicked.buf.decode(), kicked.buf
    # its sessions gone, the old loftd exits; the new one logs that it ended
    assert loft.proc.wait(30) == 0
    new = new_pids(loft)[-1]
    loftlib.wait_for(lambda: "upgrade: the old loftd (pid %d) has ended" % old_pid
                     in loft.log_text(), 10, "the new loftd to see the old one end")
    assert alive(new)


def install_script(exe, text):
    with open(exe + ".new", "w") as f:
        f.write("#!/bin/sh\n" + text + "\n")
    os.chmod(exe + ".new", 0o755)
    os.rename(exe + ".new", exe)


def test_failed_upgrade_keeps_serving(upgradable):
    make, exe = upgradable
    loft = make(extra_conf=METRICS)
    held = idle(loft, "user23")
    install_script(exe, "exit 1")  # a binary that cannot start
    loft.proc.send_signal(signal.SIGUSR2)
    loftlib.wait_for(lambda: "upgrade failed" in loft.log_text(), 30, "the failure")
    assert ("upgrade failed: the new loftd %s (pid" % exe) in loft.log_text()
    assert "exited before it served, exit status 1; this one serves on" in loft.log_text()
    # the old loftd serves on: logins, its sessions, its admin socket
    assert login_ok(loft, "user24")
    who = loftlib.loftadm("-a", loft.admin, "who", "user23")
    assert who.returncode == 0 and "user23" in who.stdout, who
    assert [n for n in os.listdir(loft.base_dir) if ".old-" in n] == []
    # the metrics port the new one would have bound is served again
    scrape()
    # a good binary in its place: the next SIGUSR2 upgrades
    install(exe, os.path.join(loftlib.build_dir(), "loftd"))
    upgrade(loft)
    held.send("DONE\r\n")
    held.until("c OK")
    held.send("d LOGOUT\r\n")
    held.until("d OK")
    assert loft.proc.wait(30) == 0


def test_loftadm_reload_upgrade(upgradable):
    """loftadm reload --upgrade answers once the new loftd serves (0, -v
    names its pid), or with the reason and 75 (EX_TEMPFAIL) when the
    upgrade failed or was refused and the running loftd serves on."""
    make, exe = upgradable
    loft = make()
    held = idle(loft, "user30")
    install_script(exe, "exit 3")
    r = loftlib.loftadm("-a", loft.admin, "reload", "--upgrade")
    assert r.returncode == 75, r
    assert r.stderr.startswith("Error: upgrade failed: the new loftd %s (pid " % exe), r
    assert "exited before it served, exit status 3; this one serves on" in r.stderr
    assert login_ok(loft, "user31")
    install(exe, os.path.join(loftlib.build_dir(), "loftd"))
    r = loftlib.loftadm("-v", "-a", loft.admin, "reload", "--upgrade")
    assert r.returncode == 0, r
    assert "loftadm reload --upgrade: upgrading" in loft.log_text()
    # answered after the handover: the log says so already
    new = new_pids(loft)
    assert r.stderr == "Info: upgraded: pid %d serves now\n" % new[-1], r
    # the old one, which answered, relays held; asked again it refuses
    old_admin = os.path.join(loft.base_dir, "admin.old-%d" % loft.proc.pid)
    r = loftlib.loftadm("-a", old_admin, "reload", "--upgrade")
    assert r.returncode == 75, r
    assert "upgrade refused: this loftd was replaced already" in r.stderr, r
    held.close()
    assert loft.proc.wait(30) == 0


def test_an_upgrade_does_not_make_a_ring_node(upgradable):
    """A configuration that turns a lone loftd into a ring's node (or the
    reverse) needs a restart: the new loftd says so and exits, the old
    one serves on."""
    make, exe = upgradable
    loft = make()
    with open(loft.conf, "a") as f:
        f.write('ring = { etcd = [ "http://%s.250:2379" ]; port = 9393; };\n' % NET)
    r = loftlib.loftadm("-a", loft.admin, "reload", "--upgrade")
    assert r.returncode == 75 and "exited before it served" in r.stderr, r
    assert "upgrade: the loftd this one replaces is not a ring's node and this " \
        "configuration sets ring.etcd: restart loftd to change that" in loft.log_text()
    assert login_ok(loft, "user37")


def test_upgrade_timeout_and_stop_kill_a_slow_successor(upgradable):
    make, exe = upgradable
    loft = make(extra_conf='shutdown = { upgrade_timeout = "1s"; };')
    install_script(exe, "exec sleep 60")  # never serves
    loft.proc.send_signal(signal.SIGUSR2)
    loftlib.wait_for(lambda: "upgrade failed" in loft.log_text(), 30, "the failure")
    assert "did not serve within shutdown.upgrade_timeout (killed)" in loft.log_text()
    pid = int(re.findall(r"new loftd started as pid (\d+)", loft.log_text())[-1])
    assert not alive(pid)
    assert login_ok(loft, "user28")
    # a stop while a successor starts kills it too
    loft.proc.send_signal(signal.SIGUSR2)
    loftlib.wait_for(lambda: loft.log_text().count("new loftd started as pid") == 2, 30,
                     "the second start")
    pid = int(re.findall(r"new loftd started as pid (\d+)", loft.log_text())[-1])
    loft.proc.send_signal(signal.SIGTERM)
    assert loft.proc.wait(30) == 0
    assert "was stopped: this loftd is shutting down (killed)" in loft.log_text()
    assert not alive(pid)


def test_max_drain_ends_the_old_sessions(upgradable):
    make, exe = upgradable
    loft = make(extra_conf='shutdown = { max_drain = "1s"; }; ' + METRICS)
    held = idle(loft, "user25")
    scrape()
    upgrade(loft)
    held.sock.settimeout(20)
    loftlib.wait_for(held.closed, 20, "the old session to close")
    assert "* BYE Server shutting down." in held.buf.decode()
    assert loft.proc.wait(30) == 0
    assert "shutdown.max_drain passed with 1 sessions left" in loft.log_text()
    assert login_ok(loft, "user26")
    # the old one is gone: the new one binds the metrics port
    assert "loft_" in scrape()


def test_upgrade_under_systemd(upgradable, manager, reachable_base):  # noqa: F811
    """The new loftd becomes the unit's main process: the old one says
    MAINPID= with READY=1 (it is still the main process then) and falls
    silent; the new one, running as `user` like the old, takes over the
    watchdog pings."""
    make, exe = upgradable
    loft = make(env={"NOTIFY_SOCKET": manager.path, "WATCHDOG_USEC": "1000000"},
                privileges='user = "nobody";')
    old = loft.proc.pid
    manager.wait(lambda m: m.pid == old and m.fields().get("READY") == "1", 10, "READY=1")
    held = idle(loft, "user27")
    os.kill(old, signal.SIGUSR2)
    handover = manager.wait(lambda m: "MAINPID" in m.fields(), 30, "MAINPID=")
    new = int(handover.fields()["MAINPID"])
    assert handover.pid == old and handover.fields() == {"MAINPID": str(new), "READY": "1"}
    loftlib.wait_for(lambda: new_pids(loft) == [new], 10, "the log of the handover")
    assert uid_of(new) == NOBODY.pw_uid
    before = manager.seen[:manager.seen.index(handover)]
    assert [m for m in before if m.pid == old and "RELOADING" in m.fields()]
    # the new one said nothing the manager would take from a process that
    # is not the main one yet
    assert not [m for m in before if m.pid == new and "READY" in m.fields()]
    # from now on only the new main process speaks, and it pings
    later = manager.drain(2.0)
    assert [m for m in later if m.pid == new and m.fields().get("WATCHDOG") == "1"]
    assert not [m for m in later if m.pid == old]
    held.close()
    assert loft.proc.wait(30) == 0


RING_SECRET = 'secret = "upgrade-ring-secret-0123456789";'


def ring_pair(upgradable, loft_factory, etcd, prefix):  # noqa: F811
    """Node a (upgradable) and node b of a ring with links, both in it."""
    make, exe = upgradable
    a = make(extra_conf=ring_conf(etcd, 9391, prefix, RING_SECRET))
    b = loft_factory(username_format="%Ln", penalty="false",
                     extra_conf=ring_conf(etcd, 9392, prefix, RING_SECRET))
    for n in (a, b):
        loftlib.wait_for(lambda: live_members(n) == 2, 15, "two members")
    return a, b


def test_a_ring_node_upgrades_in_place(upgradable, loft_factory, etcd_whole):  # noqa: F811
    """A ring's node hands its successor the node's lease and the socket
    of its links: the node never leaves the ring (its member key keeps its
    lease past lease_ttl after the old process stopped renewing it), the
    other nodes' links reach the new process, and a move made on another
    node closes the old process's session before it is answered."""
    prefix = "/loft-upgrade/"
    a, b = ring_pair(upgradable, loft_factory, etcd_whole, prefix)
    name_a = "%s:9391" % LOFT_IP
    lease = members_lease(etcd_whole, prefix)[name_a]
    held = idle(a, "user32")
    hashed = dovecot_host(BACKEND_IPS, "user32")
    new_pid = upgrade(a)
    assert "ring: took over lease" in a.log_text()
    assert "ring: left the ring to the new loftd" in a.log_text()
    # the old process renews no more: the new one keeps the lease alive
    left = time.monotonic()
    while time.monotonic() - left < 2 * LEASE_S:
        assert members_lease(etcd_whole, prefix).get(name_a) == lease
        time.sleep(0.2)
    assert live_members(b) == 2
    # b's links reach the new process: its session is listed from b
    m = IMAP(LOFT_IP, a.port)
    m.login("user33", "pass")
    r = loftlib.loftadm("-f", "tab", "who", "-1", "-a", b.admin, "user33")
    assert r.returncode == 0 and name_a in r.stdout, r
    m.logout()
    # a move on b: the old process's session closes, then b answers
    other = next(ip for ip in BACKEND_IPS if ip != hashed)
    r = loftlib.loftadm("director", "move", "-a", b.admin, "user32", other)
    assert r.returncode == 0, r
    assert held.closed(), held.buf
    assert backend_of(a, "user32") == a.cluster.by_ip(other).name
    # its last session gone, the old process exits without revoking
    assert a.proc.wait(30) == 0
    assert alive(new_pid)
    assert members_lease(etcd_whole, prefix).get(name_a) == lease
    assert login_ok(a, "user34")


def test_a_ring_nodes_old_process_closes_its_sessions_when_the_new_one_dies(
        upgradable, loft_factory, etcd_whole):  # noqa: F811
    """The old process's sessions were safe on the lease the new process
    renews: when the new process dies, nobody renews it, so the old one
    closes them at once (before the ring gives their users to another
    node) and exits."""
    prefix = "/loft-upgrade-dies/"
    a, b = ring_pair(upgradable, loft_factory, etcd_whole, prefix)
    held = idle(a, "user35")
    new_pid = upgrade(a)
    os.kill(new_pid, signal.SIGKILL)
    held.sock.settimeout(20)
    loftlib.wait_for(held.closed, 20, "the old process's session to close")
    assert a.proc.wait(30) == 0
    assert "closing this loftd's 1 sessions (the ring's lease is the new loftd's)" \
        in a.log_text()
    # the node leaves the ring when its lease ends; b serves on
    loftlib.wait_for(lambda: live_members(b) == 1, 3 * LEASE_S, "a's lease to end")
    assert login_ok(b, "user36")
