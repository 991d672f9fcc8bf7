"""The director ring, first step (doc/ring.md): several loftd nodes on a
real 3-member etcd join one ring, refuse to join with settings that would
route differently, list each other in `doveadm director ring status`,
serve only once they have read the ring's state, fence themselves when
etcd stops answering (and serve again by themselves), and leave at once
on a clean stop. Host changes and moves are refused in a ring until they
are ring-wide."""
import os
import subprocess

import pytest

import etcdlib
import loftlib
from conftest import LOFT_IP, NET
from imaputil import IMAP

LEASE = "3s"


@pytest.fixture(scope="module")
def etcd(cluster):
    c = etcdlib.EtcdCluster(os.path.join(cluster.base, "etcd"), NET)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture
def etcd_whole(etcd):
    yield etcd
    etcd.repair()


def ring_conf(etcd, port, prefix, extra=""):
    endpoints = ", ".join('"%s"' % e for e in etcd.endpoints())
    return ('ring = { etcd = [ %s ]; prefix = "%s"; port = %d; lease_ttl = "%s"; %s };'
            % (endpoints, prefix, port, LEASE, extra))


def node(loft_factory, etcd, i, prefix, start=True, extra="", **opts):
    return loft_factory(start=start, penalty="false",
                        extra_conf=ring_conf(etcd, 9090 + i, prefix, extra), **opts)


def ring_status(loft):
    r = subprocess.run(["doveadm", "-f", "tab", "director", "ring", "status", "-a",
                        loft.admin], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return [line.split("\t") for line in r.stdout.splitlines()[1:]]


def test_nodes_join_and_list_each_other(loft_factory, etcd_whole):
    prefix = "/loft-join/"
    nodes = [node(loft_factory, etcd_whole, i, prefix) for i in range(3)]
    want = sorted(["%s:%d" % (LOFT_IP, 9090 + i) for i in range(3)])

    def listed(n):
        rows = ring_status(n)
        return sorted("%s:%s" % (r[0], r[1]) for r in rows) == want and rows
    for n in nodes:
        rows = loftlib.wait_for(lambda: listed(n), 10, "every node in ring status")
        selfs = [r for r in rows if r[2] == "self"]
        assert len(selfs) == 1 and selfs[0][4] == "ring synced", rows
        assert selfs[0][1] == str(9090 + nodes.index(n))
    # every node routes (the hash, the same everywhere)
    for n in nodes:
        m = IMAP(LOFT_IP, n.port)
        m.login("user7", "pass")
        m.logout()
    # a clean stop leaves at once: the others stop listing it well
    # before its lease would have run out
    assert nodes[2].stop() == 0
    want.remove("%s:%d" % (LOFT_IP, 9092))
    loftlib.wait_for(lambda: listed(nodes[0]), 2.5, "the stopped node gone")


def test_a_node_with_other_routing_settings_cannot_join(loft_factory, etcd_whole):
    prefix = "/loft-settings/"
    node(loft_factory, etcd_whole, 0, prefix)
    other = node(loft_factory, etcd_whole, 1, prefix, start=False,
                 username_format="%n")
    other.logf = open(other.log, "ab")
    proc = subprocess.Popen([other.binary(), "-c", other.conf],
                            stdin=subprocess.DEVNULL, stdout=other.logf,
                            stderr=subprocess.STDOUT)
    try:
        assert proc.wait(30) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
        other.logf.close()
    text = other.log_text()
    assert 'the ring\'s auth.username_format is "%Lu", this node\'s is "%n"' in text, text
    assert not loftlib.port_open(LOFT_IP, other.port)


def test_serves_only_once_etcd_answers(loft_factory, etcd_whole):
    for m in etcd_whole.members:
        m.stop()
    n = node(loft_factory, etcd_whole, 0, "/loft-late/", start=False)
    n.logf = open(n.log, "ab")
    n.proc = subprocess.Popen([n.binary(), "-c", n.conf], stdin=subprocess.DEVNULL,
                              stdout=n.logf, stderr=subprocess.STDOUT)
    loftlib.wait_for(lambda: "retrying" in n.log_text(), 10, "loftd to say it waits")
    # bound, but nobody is served before the ring's state is read
    assert not IMAPserves(n)
    etcd_whole.repair()
    loftlib.wait_for(lambda: IMAPserves(n), 30, "loftd to serve once etcd answers")
    assert "ring: joined as" in n.log_text()
    loftlib.wait_for(lambda: os.path.exists(n.admin), 5, "the admin socket")
    assert n.stop() == 0


def IMAPserves(n):
    try:
        m = IMAP(LOFT_IP, n.port, timeout=1)
        m.login("user8", "pass")
        m.logout()
        return True
    except (OSError, IMAP.error):
        return False


def test_cut_off_from_etcd_the_node_fences_then_serves_again(loft_factory, etcd_whole):
    n = node(loft_factory, etcd_whole, 0, "/loft-fence/")
    loftlib.wait_for(lambda: IMAPserves(n), 10, "the node to serve")
    m = IMAP(LOFT_IP, n.port)
    m.login("user9", "pass")
    for member in etcd_whole.members:
        member.freeze()
    try:
        # past the lease: the proxied session is closed with a goodbye,
        # new logins get a temporary failure
        def closed():
            try:
                m.noop()
                return False
            except (IMAP.abort, OSError):
                return True
        loftlib.wait_for(closed, 10, "the fence to close the session")
        with pytest.raises(IMAP.error, match=r"UNAVAILABLE"):
            c = IMAP(LOFT_IP, n.port)
            c.login("user10", "pass")
        assert "fenced, no logins are served" in n.log_text()
    finally:
        for member in etcd_whole.members:
            member.thaw()
    loftlib.wait_for(lambda: IMAPserves(n), 30, "the node to serve again")
    assert "in touch with etcd again: serving" in n.log_text()


def test_serve_mode_keeps_routing_cut_off(loft_factory, etcd_whole):
    n = node(loft_factory, etcd_whole, 0, "/loft-serve/", extra='partition = "serve";')
    loftlib.wait_for(lambda: IMAPserves(n), 10, "the node to serve")
    for member in etcd_whole.members:
        member.freeze()
    try:
        loftlib.wait_for(lambda: "still routing on the last state" in n.log_text(), 10,
                         "the warning")
        assert IMAPserves(n)
    finally:
        for member in etcd_whole.members:
            member.thaw()


def test_host_changes_are_refused_in_a_ring(loft_factory, etcd_whole):
    n = node(loft_factory, etcd_whole, 0, "/loft-refuse/")
    loftlib.wait_for(lambda: IMAPserves(n), 10, "the node to serve")
    r = subprocess.run(["doveadm", "director", "add", "-a", n.admin, "%s.15" % NET],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "not ring-wide in this version" in r.stderr
    # a director kick still works on the node
    r = subprocess.run(["doveadm", "director", "kick", "-a", n.admin, "nobody"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
