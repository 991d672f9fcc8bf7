"""Resource bounds (loft.conf(5) LIMITS): total connections, pre-login
connections per client address, replies held for a client that does not
read, idle time after login; and under 1,000 slowloris connections and a
flood of failing logins a well-behaved client still logs in."""
import re
import resource
import select
import socket
import subprocess
import threading

import pytest

import loftlib
from conftest import CLIENT_IP, LOFT_IP, NET
from imaputil import IMAP, Raw

BUSY = "* BYE [UNAVAILABLE] Server is busy, try again later."
PER_IP = "* BYE [UNAVAILABLE] Too many connections from your address, try again later."


@pytest.fixture(scope="module", autouse=True)
def enough_descriptors():
    """The slowloris test holds over a thousand sockets in this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def greeted(port, source=None):
    r = Raw(LOFT_IP, port, source=source)
    assert r.line().startswith("* OK")
    return r


def refused(port, text, source=None):
    r = Raw(LOFT_IP, port, source=source)
    assert r.line() == text
    assert r.closed()
    r.close()


def test_total_connection_limit(loft_factory):
    loft = loft_factory(extra_conf="limits = { max_connections = 12; };")
    held = [greeted(loft.port) for _ in range(8)]
    m = IMAP(LOFT_IP, loft.port)
    assert m.login("user1", "pass")[0] == "OK"   # logged-in sessions count too
    pop = [Raw(LOFT_IP, loft.pop3_port) for _ in range(3)]
    for r in pop:
        assert r.line().startswith("+OK")
    refused(loft.port, BUSY)
    r = Raw(LOFT_IP, loft.pop3_port)
    assert r.line() == "-ERR [SYS/TEMP] Server is busy, try again later."
    assert r.closed()
    loftlib.wait_for(lambda: "limits.max_connections reached" in loft.log_text(), 10,
                     "the refusal in the log")
    # a closed connection makes room again; the held ones never noticed
    held.pop().close()
    loftlib.wait_for(lambda: try_greeting(loft.port), 10, "room for one more")
    assert m.noop()[0] == "OK"
    m.logout()
    for r in held + pop:
        r.close()


def try_greeting(port, source=None):
    r = Raw(LOFT_IP, port, source=source)
    try:
        return r.line().startswith("* OK")
    finally:
        r.close()


def test_prelogin_limit_per_address(loft_factory):
    other = "%s.201" % NET
    loft = loft_factory(extra_conf="limits = { max_prelogin_per_ip = 4; };")
    held = [greeted(loft.port, CLIENT_IP) for _ in range(3)]
    m = IMAP(LOFT_IP, loft.port, source=CLIENT_IP)
    refused(loft.port, PER_IP, CLIENT_IP)
    # another address has its own slots
    extra = greeted(loft.port, other)
    # logging in frees the slot
    assert m.login("user2", "pass")[0] == "OK"
    last = greeted(loft.port, CLIENT_IP)
    refused(loft.port, PER_IP, CLIENT_IP)
    # so does leaving
    held.pop().close()
    loftlib.wait_for(lambda: try_greeting(loft.port, CLIENT_IP), 10, "a free slot")
    m.logout()
    for r in held + [extra, last]:
        r.close()


def test_trusted_networks_are_not_limited_per_address(loft_factory):
    loft = loft_factory(trusted='"%s/32"' % CLIENT_IP,
                        extra_conf="limits = { max_prelogin_per_ip = 2; };")
    held = [greeted(loft.port, CLIENT_IP) for _ in range(5)]
    for r in held:
        r.close()


def loft_recv_queue(port):
    """Bytes waiting in loftd's receive queues of its connections on port."""
    out = subprocess.run(["ss", "-tnH", "state", "established", "( sport = :%d )" % port],
                         capture_output=True, text=True, check=True).stdout
    return sum(int(line.split()[0]) for line in out.splitlines() if line.strip())


def test_unread_replies_stop_reading_and_lose_nothing(loft_factory):
    loft = loft_factory(extra_conf='limits = { session_buffer = "4k"; };')
    r = greeted(loft.port)
    # ~25 MB of replies, more than the kernel buffers between loftd and us
    count = 100000
    commands = b"".join(b"c%d CAPABILITY\r\n" % i for i in range(count))
    writer = threading.Thread(target=r.sock.sendall, args=(commands,))
    writer.start()
    # the client reads nothing: once those buffers are full, loftd stops
    # reading its commands, which wait in loftd's socket
    samples = []

    def backlog_stays():
        samples.append(loft_recv_queue(loft.port))
        return len(samples) >= 10 and samples[-1] > 0 and len(set(samples[-10:])) == 1
    loftlib.wait_for(backlog_stays, 60, "loftd to leave commands unread")
    # every command is answered, in order, once the client reads
    r.sock.settimeout(60)
    data = bytearray(r.buf)
    last = b"c%d OK" % (count - 1)
    while data.rfind(last) < 0:
        chunk = r.sock.recv(1 << 20)
        assert chunk, "closed after %d bytes" % len(data)
        data += chunk
    writer.join(60)
    tags = re.findall(rb"^c(\d+) OK ", bytes(data), re.M)
    assert [int(t) for t in tags] == list(range(count))
    assert "limits.session_buffer" not in loft.log_text()   # nothing was dropped
    r.buf = b""
    r.send("z LOGOUT\r\n")
    r.until("z OK")
    r.close()


def test_idle_timeout_after_login(loft_factory):
    loft = loft_factory(extra_conf='limits = { idle = { imap = "1s"; }; };')
    busy = Raw(LOFT_IP, loft.port)
    busy.line()
    busy.send("a LOGIN user3 pass\r\n")
    busy.until("a OK")
    idle = Raw(LOFT_IP, loft.port)
    idle.line()
    idle.send("a LOGIN user4 pass\r\n")
    idle.until("a OK")
    # the idle session is told and closed; the busy one, with a command
    # every 0.3 s, stays
    for i in range(10):
        busy.send("n%d NOOP\r\n" % i)
        busy.until("n%d OK" % i)
        ready, _, _ = select.select([idle.sock], [], [], 0.3)
        if ready:
            break
    assert idle.line() == "* BYE Disconnected for inactivity."
    assert idle.closed()
    busy.send("z NOOP\r\n")
    assert busy.until("z OK")[-1].startswith("z OK")
    loftlib.wait_for(lambda: re.search(r'imap user4 .*reason="idle timeout"',
                                       loft.log_text()), 10, "the log line")
    assert not re.search(r'imap user3 .*closed', loft.log_text())
    busy.close()


def test_slowloris_and_failing_logins_do_not_lock_out_a_client(loft_factory):
    """1,000 connections that trickle a command and never finish it, from
    50 addresses (NET.101-150), plus failing logins from 10 more addresses
    (NET.151-160) all the time:
    a well-behaved client still logs in, and none of the slow connections
    was closed to make that happen."""
    loft = loft_factory()
    slow = []
    for i in range(1000):
        s = socket.create_connection((LOFT_IP, loft.port), 10,
                                     source_address=("%s.%d" % (NET, 101 + i % 50), 0))
        s.sendall(b"a LOGIN us")
        slow.append(s)
    stop = threading.Event()
    failures = []

    def flood(n):
        # the failure penalty (up to 15 s) slows each address down
        while not stop.is_set():
            m = IMAP(LOFT_IP, loft.port, source="%s.%d" % (NET, 150 + n), timeout=30)
            try:
                m.login("user5", "wrong")
            except IMAP.error:
                failures.append(n)
            m.shutdown()
    floods = [threading.Thread(target=flood, args=(n,)) for n in range(1, 11)]
    for t in floods:
        t.start()
    try:
        loftlib.wait_for(lambda: len(failures) >= 10, 30, "failing logins under way")
        m = IMAP(LOFT_IP, loft.port, source=CLIENT_IP)
        assert m.login("user6", "pass")[0] == "OK"
        assert m.select("INBOX")[0] == "OK"
        m.logout()
    finally:
        stop.set()
        for t in floods:
            t.join(60)
    # every slow connection has its greeting and is still open: nothing
    # was sacrificed
    for s in slow:
        s.setblocking(False)
        data = b""
        while True:
            try:
                chunk = s.recv(4096)
            except BlockingIOError:
                break
            assert chunk, "a slow connection was closed after %r" % data
            data += chunk
        assert data.startswith(b"* OK") and data.count(b"\n") == 1, data
        s.close()
