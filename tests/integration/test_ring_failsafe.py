"""ring.partition = "failsafe" (doc/ring.md §13) under chaos, with
test_ring_chaos.py's harness: etcd losing its quorum while every node is
up (mail flows on, admin changes fail with a reason, and everything is as
before once etcd is back), a node cut off from etcd and from its peers
(it fences), a node cut off from etcd only (it fences, the others carry
on). As in every chaos test, the backends' logs are the judge: no user was
ever logged in on two backends at once."""
import threading
import time

import loftlib
from conftest import LOFT_IP  # noqa: F401
from test_ring_chaos import (FENCED, LEASE_S, SHARED, SPARE, UNFENCED, VICTIM_ONLY,  # noqa: F401
                             assert_unavailable, chaos, closed, etcd, log_times,
                             other_backend, timed_doveadm)
from test_ring import doveadm, IMAPserves, ring_status

FAILSAFE = "serving in failsafe mode on the last state"
FAILSAFE_ENDS = "failsafe mode ends"


def self_status(n):
    return [r[4] for r in ring_status(n) if r[2] == "self"][0]


def test_etcd_quorum_lost_mail_flows_on(chaos):
    """Two of etcd's three members killed: past lease_ttl every node serves
    on in failsafe mode (each confirms to the others), held sessions live
    on and logins work through every node; an admin change fails with a
    reason. With the members back, the nodes leave failsafe mode by
    themselves and admin changes work again."""
    nodes = chaos.ring("/loft-fs-quorum/", partition="failsafe")
    load = chaos.load()
    held = chaos.hold(nodes[2], VICTIM_ONLY)
    load.wait_ok(10, what="logins before the chaos")
    gone = chaos.etcd.members[:2]
    for m in gone:
        m.kill()
    lost = time.time()
    for n in nodes:
        loftlib.wait_for(lambda: log_times(n, FAILSAFE), LEASE_S + 5, ":%d failsafe" % n.port)
        assert not log_times(n, FENCED), n.log_text()[-3000:]
        assert self_status(n) == "failsafe"
    # well past the lease: held sessions are open, logins work everywhere
    loftlib.wait_for(lambda: time.time() > lost + 2 * LEASE_S, 3 * LEASE_S, "two leases")
    assert not any(closed(m) for m in chaos.held)
    for n in nodes:
        load.wait_ok(10, since=time.time(), port=n.port, what="logins through :%d" % n.port)
    assert chaos.visit(nodes[0], VICTIM_ONLY) == held     # where they were
    r = timed_doveadm(nodes[1], "director", "update", chaos.cluster.backends[0].ip, "50")
    assert r.returncode != 0 and r.seconds < 10 and r.stderr.strip(), (r.returncode, r.stderr)
    assert "etcd cannot take the change now" in r.stderr, r.stderr
    # a node that gave confirmations and starts again waits until they
    # lapse (rule 8). (Its peers fence if their confirmations from it
    # lapse before it answers again: a slow start, a sanitizer build.)
    chaos.kill(nodes[1])
    chaos.restart(nodes[1])
    assert "gave a failsafe confirmation that binds it for" in nodes[1].log_text()
    for m in gone:
        m.start()
    for n in (nodes[0], nodes[2]):
        if not log_times(n, FENCED):
            loftlib.wait_for(lambda: log_times(n, FAILSAFE_ENDS), 30, ":%d back" % n.port)
    for n in nodes:
        loftlib.wait_for(lambda: self_status(n) == "ring synced", 30,
                         ":%d synced again" % n.port)
    # admin changes work again: a user with sessions through two nodes moved
    user = SPARE[0]
    old = chaos.hold(nodes[0], [user])[user]
    new = other_backend(chaos.cluster, old)
    r = doveadm(nodes[2], "director", "move", user, new, check=False)
    assert r.returncode == 0, r.stderr
    assert chaos.visit(nodes[1], [user]) == {user: new}
    chaos.verdict([user])


def test_cut_off_from_etcd_and_peers_the_node_fences(chaos):
    """Nobody can confirm for a node that reaches neither etcd nor its
    peers: it fences at its deadline, as in fence mode, and serves again
    once healed. The others carry on."""
    a, b, x = chaos.ring("/loft-fs-alone/", partition="failsafe", cgroup_last=True)
    load = chaos.load()
    chaos.hold(x, VICTIM_ONLY)
    load.wait_ok(10, what="logins before the chaos")
    chaos.cut_from_peers(x)
    chaos.cut(x)
    loftlib.wait_for(lambda: log_times(x, FENCED), LEASE_S + 5, "x to fence")
    assert not log_times(x, FAILSAFE)
    assert all(closed(m) for m in chaos.held)
    assert_unavailable(x)
    for n in (a, b):
        load.wait_ok(10, since=time.time(), port=n.port, what="logins through :%d" % n.port)
        assert not log_times(n, FENCED) and not log_times(n, FAILSAFE)
    chaos.heal()
    loftlib.wait_for(lambda: log_times(x, UNFENCED), 30, "x to serve again")
    loftlib.wait_for(lambda: IMAPserves(x), 10, "x to serve logins")
    chaos.verdict()


def test_cut_off_from_etcd_only_the_node_fences_the_others_carry_on(chaos):
    """A node that reaches its peers but not etcd hears NO from them (they
    are in touch): it fences at its deadline; they are not bound by it and
    a host change made meanwhile goes through without it. Healed, it reads
    the change and serves again."""
    a, b, x = chaos.ring("/loft-fs-etcd/", partition="failsafe", cgroup_last=True)
    load = chaos.load()
    chaos.hold(x, VICTIM_ONLY)
    load.wait_ok(10, what="logins before the chaos")
    chaos.cut(x)
    loftlib.wait_for(lambda: log_times(x, FENCED), LEASE_S + 5, "x to fence")
    assert not log_times(x, FAILSAFE)
    assert all(closed(m) for m in chaos.held)
    # the others are not frozen: an admin change goes through once x's
    # lease is gone
    target = chaos.cluster.backends[0].ip
    change = {}
    t = threading.Thread(target=lambda: change.update(r=timed_doveadm(
        a, "director", "update", target, "0")))
    t.start()
    t.join(40)
    assert change["r"].returncode == 0, change["r"].stderr
    for n in (a, b):
        assert self_status(n) == "ring synced"
        load.wait_ok(10, since=time.time(), port=n.port, what="logins through :%d" % n.port)
    chaos.heal()
    loftlib.wait_for(lambda: log_times(x, UNFENCED), 30, "x to serve again")
    loftlib.wait_for(lambda: IMAPserves(x), 10, "x to serve logins")
    chaos.verdict()


def test_the_only_director_serves_on_while_etcd_is_down(chaos):
    """A ring of one director: nobody else could route its users, so with
    etcd down it goes failsafe on no confirmation (every other director
    confirmed: there is none), and looks again every failsafe_confirm."""
    (n,) = chaos.ring("/loft-fs-one/", count=1, partition="failsafe")
    load = chaos.load()
    load.wait_ok(10, what="logins before the chaos")
    for m in chaos.etcd.members:
        m.kill()
    loftlib.wait_for(lambda: log_times(n, FAILSAFE), LEASE_S + 5, "failsafe")
    lost = time.time()
    loftlib.wait_for(lambda: time.time() > lost + 2 * LEASE_S, 3 * LEASE_S, "two leases")
    assert not log_times(n, FENCED)
    load.wait_ok(10, since=time.time(), port=n.port, what="logins during the outage")
    for m in chaos.etcd.members:
        m.start()
    loftlib.wait_for(lambda: log_times(n, FAILSAFE_ENDS), 30, "back")
    loftlib.wait_for(lambda: self_status(n) == "ring synced", 30, "synced again")
    chaos.verdict()
