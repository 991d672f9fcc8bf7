"""Session commands across the ring (doc/ring.md §14): loftadm who, kick,
proxy list and proxy kick on any node see and act on the sessions of
every node, through authenticated links between the nodes; a node that
does not answer is named within ring.peer_timeout and the exit code is
75; nobody without the ring's secret (or certificate) gets an answer."""
import hashlib
import hmac
import json
import os
import signal
import socket
import ssl
import time

import pytest

import loftlib
from conftest import LOFT_IP, NET
from imaputil import IMAP
from test_ring import etcd, etcd_whole, ring_conf, ring_status  # noqa: F401 (fixtures)

SECRET = "ring-test-secret-0123456789"
RING_PORT = 9190
SRC = ["%s.%d" % (NET, i) for i in (220, 221, 222)]


def ring_node(loft_factory, etcd, i, prefix, secret=SECRET, extra="", penalty="false",
              **opts):
    links = ('secret = "%s"; peer_timeout = "1500ms"; limits_interval = "200ms";'
             % secret) if secret else ""
    return loft_factory(penalty=penalty,
                        extra_conf=ring_conf(etcd, RING_PORT + i, prefix, links + extra),
                        **opts)


def name(i):
    return "%s:%d" % (LOFT_IP, RING_PORT + i)


def three(loft_factory, etcd, prefix, **kw):
    nodes = [ring_node(loft_factory, etcd, i, prefix, **kw) for i in range(3)]
    for n in nodes:
        loftlib.wait_for(lambda: len(ring_status(n)) == 3, 10, "three members")
    return nodes


def login(n, user, src=None):
    m = IMAP(LOFT_IP, n.port, source=src)
    m.login(user, "pass")
    return m


def is_closed(m):
    try:
        m.noop()
        return False
    except (IMAP.abort, OSError, EOFError):
        return True


def who(n, *args):
    return loftlib.loftadm("who", "-a", n.admin, *args)


def tab_rows(out):
    lines = out.splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"))) for line in lines[1:]]


def test_who_and_proxy_list_cover_every_node(loft_factory, etcd_whole):
    nodes = three(loft_factory, etcd_whole, "/loft-who/")
    held = [login(nodes[0], "bulk240"), login(nodes[0], "bulk240"),
            login(nodes[1], "bulk240"), login(nodes[1], "bulk241"),
            login(nodes[2], "bulk242", SRC[2])]
    # grouped: counts are totals over the ring
    r = loftlib.loftadm("-f", "tab", "who", "-a", nodes[1].admin)
    assert r.returncode == 0, r.stderr + "".join(n.log_text()[-3000:] for n in nodes)
    rows = {row["username"]: row for row in tab_rows(r.stdout)}
    assert sorted(rows) == ["bulk240", "bulk241", "bulk242"], r.stdout
    assert rows["bulk240"]["#"] == "3"
    assert rows["bulk242"]["(ips)"] == "(%s)" % SRC[2]
    # one per line: the node of each session
    r = loftlib.loftadm("-f", "tab", "who", "-1", "-a", nodes[1].admin)
    assert r.returncode == 0, r.stderr
    where = sorted((row["username"], row["director"]) for row in tab_rows(r.stdout))
    assert where == sorted([("bulk240", name(0)), ("bulk240", name(0)),
                            ("bulk240", name(1)), ("bulk241", name(1)),
                            ("bulk242", name(2))]), r.stdout
    # json names the node too
    r = loftlib.loftadm("-f", "json", "proxy", "list", "-a", nodes[2].admin)
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    assert sorted((x["username"], x["director"]) for x in listed) == where
    # --local: this node's sessions only, and no director column
    r = loftlib.loftadm("-f", "tab", "who", "-1", "--local", "-a", nodes[1].admin)
    assert r.returncode == 0, r.stderr
    local = tab_rows(r.stdout)
    assert sorted(row["username"] for row in local) == ["bulk240", "bulk241"]
    assert "director" not in local[0]
    # masks filter on every node
    r = loftlib.loftadm("-f", "tab", "who", "-a", nodes[0].admin, "bulk24[12]*")
    assert r.returncode == 0 and "bulk240" not in r.stdout, r.stdout
    for m in held:
        m.logout()


def test_kick_closes_exactly_the_matching_sessions_on_every_node(loft_factory,
                                                                 etcd_whole, cluster):
    nodes = three(loft_factory, etcd_whole, "/loft-kick2/")
    a = [login(n, "bulk243") for n in nodes]
    b = [login(n, "bulk244", SRC[0]) for n in nodes]
    c = login(nodes[1], "bulk245", SRC[1])
    keep = login(nodes[0], "bulk246")
    # by mask, from node 3, with each node's count
    r = loftlib.loftadm("-v", "kick", "-a", nodes[2].admin, "bulk243")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == ["kicked connections from the following users:",
                                         "bulk243 "], r.stdout
    for i in range(3):
        assert "%s: 1 connections kicked" % name(i) in r.stdout, r.stdout
    assert "3 connections kicked" in r.stdout.splitlines()[-1], r.stdout
    assert all(is_closed(m) for m in a)
    # by network
    r = loftlib.loftadm("kick", "-a", nodes[2].admin, SRC[0] + "/32")
    assert r.returncode == 0 and "bulk244" in r.stdout, (r.stdout, r.stderr)
    assert all(is_closed(m) for m in b)
    # by backend (-h): bulk245's backend holds nobody else's session here
    # except maybe bulk246's; kick by mask and backend together
    backend = [row for row in tab_rows(loftlib.loftadm(
        "-f", "tab", "who", "-1", "-a", nodes[0].admin, "bulk245").stdout)][0]["dest_ip"]
    r = loftlib.loftadm("kick", "-a", nodes[2].admin, "-h", backend, "bulk245")
    assert r.returncode == 0 and "bulk245" in r.stdout, (r.stdout, r.stderr)
    assert is_closed(c)
    # nothing else was touched; a kick of nobody still exits 68
    keep.noop()
    r = loftlib.loftadm("kick", "-a", nodes[1].admin, "nobody-here")
    assert r.returncode == 68 and "no users kicked" in r.stdout, r
    # proxy kick counts over the ring
    more = [login(n, "bulk247") for n in nodes]
    r = loftlib.loftadm("proxy", "kick", "-a", nodes[0].admin, "bulk247")
    assert r.returncode == 0 and r.stdout == "3 connections kicked\n", r
    assert all(is_closed(m) for m in more)
    keep.logout()


def test_a_stopped_node_cannot_hang_a_command(loft_factory, etcd_whole):
    nodes = three(loft_factory, etcd_whole, "/loft-stop/")
    held = [login(n, "bulk248") for n in nodes]
    os.kill(nodes[2].proc.pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        r = loftlib.loftadm("-f", "tab", "who", "-1", "-a", nodes[0].admin)
        took = time.monotonic() - start
        # the two nodes that answer are listed; the stopped one is named
        assert r.returncode == 75, (r.returncode, r.stdout, r.stderr)
        assert sorted(row["director"] for row in tab_rows(r.stdout)) == [name(0), name(1)]
        assert ("director %s did not answer within 1500ms" % name(2)) in r.stderr, r.stderr
        assert took < 10, took
        # a kick says the same, and acts where it can
        r = loftlib.loftadm("kick", "-a", nodes[1].admin, "bulk248")
        assert r.returncode == 75 and "bulk248" in r.stdout, (r.stdout, r.stderr)
        assert is_closed(held[0]) and is_closed(held[1])
    finally:
        os.kill(nodes[2].proc.pid, signal.SIGCONT)
    # a node that did not answer did not act (doc/ring.md §14): the kick
    # is the admin's to repeat once it is back (here it was stopped past
    # its lease, so it fenced and closed its sessions itself)
    loftlib.wait_for(lambda: loftlib.loftadm("kick", "-a", nodes[0].admin,
                                             "bulk248").returncode in (0, 68), 15,
                     "every node to answer again")
    assert is_closed(held[2])


def test_a_stopped_node_is_named_once_its_lease_is_gone(loft_factory, etcd_whole):
    """A node that left the ring (stopped) is listed as down at once."""
    nodes = three(loft_factory, etcd_whole, "/loft-gone/")
    nodes[2].stop()
    loftlib.wait_for(lambda: [r[4] for r in ring_status(nodes[0])].count("down") == 1,
                     15, "node 3 down")
    start = time.monotonic()
    r = who(nodes[0])
    assert r.returncode == 75 and "down" in r.stderr and name(2) in r.stderr, r
    assert time.monotonic() - start < 1.0


def peer_greeting(port):
    s = socket.create_connection((LOFT_IP, port), timeout=5)
    f = s.makefile("rwb", buffering=0)
    line = f.readline().decode()
    assert line.startswith("LOFT-RING-PEER\t1\t"), line
    return s, f, line.rstrip("\n").split("\t")[2]


def mac(secret, role, server_nonce, client_nonce, who_):
    msg = "loft-ring-peer 1 %s\n%s\n%s\n%s" % (role, server_nonce, client_nonce, who_)
    return hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


def test_the_links_answer_only_nodes_that_prove_the_secret(loft_factory, etcd_whole):
    nodes = three(loft_factory, etcd_whole, "/loft-auth/")
    held = login(nodes[0], "bulk249")
    port = RING_PORT
    # the protocol as doc/ring.md §14 gives it, with the right secret and
    # a member's name: answered
    s, f, ns = peer_greeting(port)
    nc = "ab" * 32
    f.write(("HELLO\t%s\t%s\t%s\n" % (name(1), nc, mac(SECRET, "client", ns, nc,
                                                        name(1)))).encode())
    ok = f.readline().decode().rstrip("\n").split("\t")
    assert ok == ["OK", name(0), mac(SECRET, "server", ns, nc, name(0))], ok
    f.write(b"SESSION-LIST\tlogged-in\n")
    head = f.readline().decode().split("\t")
    assert head[0] == "OK", head
    body = f.read(int(head[1])).decode()
    assert "\tbulk249\t" in body, body
    s.close()
    # a wrong secret, a replay (the MAC of the first nonce), a stranger's
    # name, garbage, silence: no answer, a log line each
    cases = [
        lambda n: (name(1), mac("wrong-secret-0123456789", "client", n, nc, name(1))),
        lambda n: (name(1), mac(SECRET, "client", ns, nc, name(1))),
        lambda n: ("stranger:1", mac(SECRET, "client", n, nc, "stranger:1")),
        None,
    ]
    for case in cases:
        s, f, ns2 = peer_greeting(port)
        line = "GET / HTTP/1.0\n" if case is None else \
            "HELLO\t%s\t%s\t%s\n" % (case(ns2)[0], nc, case(ns2)[1])
        f.write(line.encode())
        assert f.readline() == b"", line
        s.close()
    s, f, _ = peer_greeting(port)
    start = time.monotonic()
    assert f.readline() == b""      # closed after ring.peer_timeout
    assert 1.0 < time.monotonic() - start < 10
    s.close()
    log = nodes[0].log_text()
    assert "refused: wrong ring.secret" in log, log
    assert "refused: not a member of the ring" in log, log
    assert "refused: not a loft node's greeting" in log, log
    assert "refused: no greeting in time" in log, log
    # the node still serves, and its links still work
    r = who(nodes[1])
    assert r.returncode == 0 and "bulk249" in r.stdout, r
    held.logout()


def test_a_node_with_another_secret_gets_no_answers(loft_factory, etcd_whole):
    prefix = "/loft-badsecret/"
    good = [ring_node(loft_factory, etcd_whole, i, prefix) for i in range(2)]
    bad = ring_node(loft_factory, etcd_whole, 2, prefix, secret="another-secret-0123456789")
    for n in good + [bad]:
        loftlib.wait_for(lambda: len(ring_status(n)) == 3, 10, "three members")
    held = login(good[1], "bulk252")
    r = who(bad)
    assert r.returncode == 75 and "bulk252" not in r.stdout, r
    assert r.stderr.count("refused this node (see its log)") == 2, r.stderr
    assert "refused: wrong ring.secret" in good[0].log_text()
    # the good nodes cannot ask it either, and still hear each other
    r = who(good[0])
    assert r.returncode == 75 and "bulk252" in r.stdout, r
    assert r.stderr.count("refused this node") == 1 and name(2) in r.stderr, r.stderr
    assert "refused: wrong ring.secret" in bad.log_text()
    held.logout()


def test_links_over_tls_with_certificates_both_ways(loft_factory, etcd_whole, cluster):
    c = cluster.certs
    tls = 'tls_cert = "%s"; tls_key = "%s"; tls_ca_file = "%s";' % (
        c["cert"], c["key"], c["ca"])
    nodes = three(loft_factory, etcd_whole, "/loft-tls/", secret=None, extra=tls)
    held = [login(n, "bulk250") for n in nodes]
    r = loftlib.loftadm("-f", "tab", "who", "-1", "-a", nodes[2].admin)
    assert r.returncode == 0, r.stderr
    assert sorted(row["director"] for row in tab_rows(r.stdout)) == \
        [name(0), name(1), name(2)]
    # a client without a certificate: no greeting, refused in the log
    ctx = ssl.create_default_context(cafile=c["ca"])
    ctx.check_hostname = False
    raw = socket.create_connection((LOFT_IP, RING_PORT), timeout=5)
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        s = ctx.wrap_socket(raw)
        s.recv(100) or s.recv(100)
        raise OSError("closed")
    loftlib.wait_for(lambda: "refused" in nodes[0].log_text(), 5, "the refusal logged")
    # a certificate of another CA
    other = loftlib.make_certs(os.path.join(cluster.base, "other-ca"), [LOFT_IP])
    ctx = ssl.create_default_context(cafile=c["ca"])
    ctx.check_hostname = False
    ctx.load_cert_chain(other["cert"], other["key"])
    raw = socket.create_connection((LOFT_IP, RING_PORT), timeout=5)
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        s = ctx.wrap_socket(raw)
        s.recv(100) or s.recv(100)
        raise OSError("closed")
    for m in held:
        m.logout()


def test_without_links_every_other_node_is_named(loft_factory, etcd_whole):
    nodes = [ring_node(loft_factory, etcd_whole, i, "/loft-nolinks/", secret=None)
             for i in range(2)]
    for n in nodes:
        loftlib.wait_for(lambda: len(ring_status(n)) == 2, 10, "two members")
    held = login(nodes[0], "bulk251")
    r = who(nodes[0])
    assert r.returncode == 75 and "bulk251" in r.stdout, r
    assert "no links to the others (set ring.secret or ring.tls_cert)" in r.stderr, r.stderr
    # --local is this node's answer, complete: exit 0
    r = who(nodes[0], "--local")
    assert r.returncode == 0 and "bulk251" in r.stdout, r
    held.logout()
    # and failsafe, the default partition, falls back to fencing, saying so
    assert "failsafe mode needs links between the nodes" in nodes[0].log_text()


def test_user_ip_connections_are_limited_over_the_ring(loft_factory, etcd_whole):
    """login.max_userip_connections counts the sessions of every node
    (doc/ring.md §15), as they were one ring.limits_interval ago."""
    nodes = [ring_node(loft_factory, etcd_whole, i, "/loft-userip/", max_userip=2)
             for i in range(2)]
    for n in nodes:
        loftlib.wait_for(lambda: len(ring_status(n)) == 2, 10, "two members")
    held = [login(nodes[0], "bulk253", SRC[0]) for _ in range(2)]

    def refused_on_second():
        m = IMAP(LOFT_IP, nodes[1].port, source=SRC[0])
        try:
            m.login("bulk253", "pass")
        except IMAP.error as e:
            assert "Maximum number of connections from user+IP exceeded" in str(e), e
            return True
        m.logout()
        return False
    loftlib.wait_for(refused_on_second, 5, "node 2 to count node 1's sessions")
    # another address, another user: not limited
    login(nodes[1], "bulk253", SRC[1]).logout()
    login(nodes[1], "bulk254", SRC[0]).logout()
    # one session ends on node 1: node 2 admits one again
    held.pop().logout()
    loftlib.wait_for(lambda: not refused_on_second(), 5, "node 2 to see the logout")
    for m in held:
        m.logout()


def test_the_auth_penalty_follows_a_client_across_nodes(loft_factory, etcd_whole):
    """A failure on one node raises the client address's penalty on the
    others (reference §6.3: 4 s after the first failure)."""
    nodes = [ring_node(loft_factory, etcd_whole, i, "/loft-penalty/", penalty="true",
                       log_level="debug")
             for i in range(2)]
    for n in nodes:
        loftlib.wait_for(lambda: len(ring_status(n)) == 2, 10, "two members")
    m = IMAP(LOFT_IP, nodes[0].port, source=SRC[2])
    with pytest.raises(IMAP.error):
        m.login("bulk255", "wrong")
    m.logout()

    # (a login that succeeds meanwhile would reset the penalty there, as
    # Dovecot's does: the test waits for the news instead of polling)
    loftlib.wait_for(lambda: "saw 1 auth failures from %s" % SRC[2] in nodes[1].log_text(),
                     5, "node 2 to hear of the failure")
    start = time.monotonic()
    login(nodes[1], "bulk255", SRC[2]).logout()
    assert time.monotonic() - start >= 3.5
    # another address is not held back
    start = time.monotonic()
    login(nodes[1], "bulk255", SRC[1]).logout()
    assert time.monotonic() - start < 2


def test_the_links_limits(loft_factory, etcd_whole):
    """ring.peer_max_connections: more connections are closed at once; a
    line longer than 64 KiB closes its connection; the node serves on."""
    n = ring_node(loft_factory, etcd_whole, 0, "/loft-peerlimits/",
                  extra="peer_max_connections = 1;")
    loftlib.wait_for(lambda: len(ring_status(n)) == 1, 10, "the member")
    first, _, _ = peer_greeting(RING_PORT)
    second = socket.create_connection((LOFT_IP, RING_PORT), timeout=5)
    assert second.recv(100) == b""
    second.close()
    assert "ring.peer_max_connections (1) reached" in n.log_text()
    first.close()

    def greeted():
        try:
            return peer_greeting(RING_PORT)
        except (AssertionError, OSError):   # closed: the slot is not free yet
            return None
    s, f, _ = loftlib.wait_for(greeted, 5, "a slot again")
    s.sendall(b"x" * 70000)
    try:
        assert f.readline() == b""
    except ConnectionResetError:
        pass    # closed with the rest unread: a reset
    s.close()
    loftlib.wait_for(lambda: "refused: line too long" in n.log_text(), 5, "the log line")
    login(n, "bulk256").logout()


def test_an_answer_of_many_reads_arrives_whole(loft_factory, etcd_whole):
    """A node's answer larger than one read (the asking node reads a plain
    link's payload itself, in large reads: ring_peer_call.c) is listed
    whole, every session once."""
    nodes = [ring_node(loft_factory, etcd_whole, i, "/loft-big/") for i in range(2)]
    for n in nodes:
        loftlib.wait_for(lambda: len(ring_status(n)) == 2, 10, "two members")
    users = ["bulk%d" % i for i in range(171, 301)]
    held = [login(nodes[1], u) for u in users]
    r = loftlib.loftadm("-f", "tab", "who", "-1", "-a", nodes[0].admin)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) > 3 * 4096, len(r.stdout)	# several 4 KB reads
    rows = tab_rows(r.stdout)
    assert sorted(row["username"] for row in rows) == sorted(users)
    assert {row["director"] for row in rows} == {name(1)}
    for m in held:
        m.logout()
