"""The director ring, first step (doc/ring.md): several loftd nodes on a
real 3-member etcd join one ring, refuse to join with settings that would
route differently, list each other in `doveadm director ring status`,
serve only once they have read the ring's state, fence themselves when
etcd stops answering (and serve again by themselves), and leave at once
on a clean stop. Host changes made on any node reach every node before
they are answered, and move nobody who has a session (pins). A move
closes the user's sessions on every node and holds its logins until every
node is done; a flush is such moves."""
import base64
import os
import re
import signal
import subprocess

import pytest

import etcdlib
import loftlib
from conftest import LOFT_IP, NET
from imaputil import IMAP, dovecot_host, user_hash

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


def live_members(loft):
    """How many directors ring status lists as live (not "down": a node
    that stopped or lost its lease stays listed until `ring remove`)."""
    return len([r for r in ring_status(loft) if r[4] != "down"])


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
    others = [r for r in rows if r[2] != "self"]
    assert [r[2] for r in others] == ["peer", "peer"], rows
    assert all(r[4] == "synced" for r in others), rows
    # a clean stop leaves at once: the others list it down well before its
    # lease would have run out (it stays a director of the ring until
    # `director ring remove`)
    assert nodes[2].stop() == 0

    def down(n):
        rows = ring_status(n)
        return [r for r in rows if r[1] == "9092" and r[4] == "down"] and rows
    rows = loftlib.wait_for(lambda: down(nodes[0]), 2.5, "the stopped node down")
    gone = [r for r in rows if r[1] == "9092"][0]
    assert gone[2] == "peer" and gone[3] != "never", gone


def test_a_node_that_drops_root_starts_without_a_state_dir(loft_factory, etcd_whole):
    """Regression: a ring keeps no state file, so loftd made no state_dir,
    but then tried to give it to `user` and exited ("cannot give .../state
    to user nobody")."""
    n = node(loft_factory, etcd_whole, 0, "/loft-user/", privileges='user = "nobody";')
    assert not os.path.exists(n.state_dir)
    assert "running as user nobody" in n.log_text()
    loftlib.wait_for(lambda: IMAPserves(n), 10, "the node to serve")


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


def doveadm(loft, *args, check=True):
    """doveadm -f tab <cmd> <subcmd> -a <loft's admin socket> <args>"""
    r = subprocess.run(["doveadm", "-f", "tab"] + list(args[:2]) + ["-a", loft.admin] +
                       list(args[2:]), capture_output=True, text=True, timeout=40)
    if check:
        assert r.returncode == 0, (args, r.stderr)
    return r


def director_status(loft):
    return doveadm(loft, "director", "status").stdout


def same_everywhere(nodes, want=None):
    texts = [director_status(n) for n in nodes]
    ok = all(t == texts[0] for t in texts) and (want is None or want(texts[0]))
    return ok and texts[0]


def test_host_changes_reach_every_node(loft_factory, etcd_whole, cluster):
    """doveadm on any node changes the ring's host list; the change is
    answered once every node applied it, so the other nodes list it at
    once (reference §2.5: "ring synced" before the answer)."""
    prefix = "/loft-hosts/"
    nodes = [node(loft_factory, etcd_whole, i, prefix) for i in range(3)]
    for n in nodes:
        loftlib.wait_for(lambda: len(ring_status(n)) == 3, 10, "three members")
    new = "%s.15" % NET
    doveadm(nodes[0], "director", "add", new, "7")
    for n in nodes:
        rows = [line.split("\t") for line in director_status(n).splitlines()[1:]]
        assert [r for r in rows if r[0] == new][0][2] == "7", (n.port, rows)
    doveadm(nodes[1], "director", "down", new)
    doveadm(nodes[2], "director", "update", new, "9")
    text = same_everywhere(nodes)
    assert text, [director_status(n) for n in nodes]
    row = [line.split("\t") for line in text.splitlines() if line.startswith(new)][0]
    assert row[2] == "9" and row[3] == "down", row
    # unknown hosts and unchanged states are answered as a lone director does
    r = doveadm(nodes[0], "director", "remove", "%s.16" % NET, check=False)
    assert r.returncode == 68 and "doesn't exist" in r.stderr, r.stderr
    doveadm(nodes[0], "director", "down", new)
    # flush -F (forget, kick nobody) is refused in a ring, with the reason
    r = doveadm(nodes[0], "director", "flush", "-F", cluster.backends[0].ip, check=False)
    assert r.returncode != 0 and "refused in a director ring" in r.stderr, r.stderr
    # a node that joins later routes by the ring's list, not its config
    late = node(loft_factory, etcd_whole, 3, prefix)
    loftlib.wait_for(lambda: same_everywhere(nodes + [late]), 10,
                     "the late node to list the ring's hosts")
    doveadm(late, "director", "remove", new)
    assert same_everywhere(nodes + [late], lambda t: new not in t)
    # a director kick still works on the node
    doveadm(nodes[0], "director", "kick", "nobody")


def user_row(loft, user):
    """doveadm director status USER: {"Current": ip, "Hashed": ip, ...}"""
    r = subprocess.run(["doveadm", "director", "status", "-a", loft.admin, user],
                       capture_output=True, text=True, timeout=40)
    assert r.returncode == 0, r.stderr
    fields = dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line)
    fields["Current"] = fields["Current"].split(" ")[0]
    return fields


def test_a_user_with_a_session_keeps_its_backend(loft_factory, etcd_whole, cluster):
    """A host change that moves users' hashes moves nobody who has a
    session or a record on any node: each node pins its users before the
    change is committed (doc/ring.md §3-4), and every node routes a pinned
    user to its pinned backend."""
    prefix = "/loft-pins/"
    nodes = [node(loft_factory, etcd_whole, i, prefix) for i in range(3)]
    for n in nodes:
        loftlib.wait_for(lambda: len(ring_status(n)) == 3, 10, "three members")
    users = ["user%d" % i for i in range(20, 32)]
    sessions = []
    for u in users:
        m = IMAP(LOFT_IP, nodes[0].port)
        m.login(u, "pass")
        sessions.append(m)
    before = {u: user_row(nodes[0], u)["Current"] for u in users}
    # a heavy new host: most hashes now point at it
    new = "%s.15" % NET
    doveadm(nodes[1], "director", "add", new, "1000")
    moved = [u for u in users if user_row(nodes[1], u)["Hashed"] == new]
    assert moved, "no user's hash moved to the new host"
    # node 0 keeps every user where it is; the others know the pins of
    # those whose hash moved
    for u in users:
        assert user_row(nodes[0], u)["Current"] == before[u], u
    for u in moved:
        for n in nodes[1:]:
            assert user_row(n, u)["Current"] == before[u], (n.port, u)
    # a second login of a moved user on another node reaches the old backend
    u = moved[0]
    m = IMAP(LOFT_IP, nodes[2].port)
    m.login(u, "pass")
    r = subprocess.run(["doveadm", "-f", "tab", "proxy", "list", "-a",
                        os.path.join(nodes[2].base_dir, "ipc")],
                       capture_output=True, text=True, timeout=40)
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    mine = [r for r in rows if u in r]
    assert len(mine) == 1 and before[u] in mine[0], rows
    m.logout()
    # a second change while they are pinned: node 0's pins keep them; a
    # node whose records are only others' pins pins nothing (else each
    # node's pin would keep the other's record, and so its pin, for ever)
    doveadm(nodes[1], "director", "add", "%s.16" % NET, "1000")
    for u in moved:
        for n in nodes:
            assert user_row(n, u)["Current"] == before[u], (n.port, u)
    holders = {h for u in moved for h in pins_of(etcd_whole, prefix, u)}
    assert len(holders) == 2, holders     # node 0, and node 2 for its login
    for s in sessions:
        s.logout()




def test_a_stuck_node_is_waited_for_until_its_lease_ends(loft_factory, etcd_whole,
                                                         cluster):
    """A host change waits for every live node's acknowledgement; another
    change meanwhile gets TRYAGAIN (doveadm exits 75). A node that stops
    answering is no longer waited for once its lease ends, and when it
    runs again it fences, reads the ring again and lists the change."""
    prefix = "/loft-stuck/"
    nodes = [node(loft_factory, etcd_whole, i, prefix) for i in range(2)]
    for n in nodes:
        loftlib.wait_for(lambda: len(ring_status(n)) == 2, 10, "two members")
    new = "%s.15" % NET
    os.kill(nodes[1].proc.pid, signal.SIGSTOP)
    try:
        first = subprocess.Popen(["doveadm", "director", "add", "-a", nodes[0].admin, new],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # the change is in flight until node 1's lease ends: any other
        # waits (an update that changes nothing is answered at once when
        # no change is in flight, so this never proposes one itself)
        def busy():
            r = doveadm(nodes[0], "director", "update", cluster.backends[0].ip, "100",
                        check=False)
            assert r.returncode in (0, 75), r.stderr
            return r.returncode == 75 and r
        r = loftlib.wait_for(busy, 10, "a second change to get TRYAGAIN")
        assert first.poll() is None
        assert "TRYAGAIN" in r.stderr, r.stderr
        out, err = first.communicate(timeout=40)
        assert first.returncode == 0, err
        assert new in director_status(nodes[0])
    finally:
        os.kill(nodes[1].proc.pid, signal.SIGCONT)
    loftlib.wait_for(lambda: new in director_status(nodes[1]), 30,
                     "the stopped node to list the change")
    loftlib.wait_for(lambda: len(ring_status(nodes[0])) == 2, 30, "node 1 back")
    doveadm(nodes[1], "director", "remove", new)
    assert new not in director_status(nodes[0])


def closed(m):
    try:
        m.noop()
        return False
    except (IMAP.abort, OSError):
        return True


def test_a_move_closes_sessions_everywhere_then_routes_to_the_new_host(
        loft_factory, etcd_whole, cluster):
    """director move on one node (reference §2.6, doc/ring.md §5): the
    user's sessions on every node are closed, its logins wait on every
    node until every node is done and user_kick_delay has passed, then
    land on the new host everywhere; a second move meanwhile gets
    TRYAGAIN."""
    prefix = "/loft-move/"
    nodes = [node(loft_factory, etcd_whole, i, prefix, log_level="debug",
                  director_extra='user_kick_delay = "2s";') for i in range(3)]
    for n in nodes:
        loftlib.wait_for(lambda: len(ring_status(n)) == 3, 10, "three members")
    user = "user33"
    sessions = []
    for n in nodes:
        m = IMAP(LOFT_IP, n.port)
        m.login(user, "pass")
        sessions.append(m)
    old = user_row(nodes[0], user)["Current"]
    new = next(b.ip for b in cluster.backends if b.ip != old)
    mover = subprocess.Popen(["doveadm", "director", "move", "-a", nodes[0].admin, user, new],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for m in sessions:
            loftlib.wait_for(lambda: closed(m), 10, "the move to close the session")
        # node 1 has seen the move (it closed its session): a login there
        # waits for the move, and a second move is refused meanwhile
        r = doveadm(nodes[1], "director", "move", user, old, check=False)
        assert r.returncode == 75 and "already being moved" in r.stderr, r.stderr
        waiting = IMAP(LOFT_IP, nodes[1].port)
        waiting.login(user, "pass")
        lines = nodes[1].log_text().splitlines()
        wait_line = r"imap %s \S+: state \S+ -> director-wait" % user
        waited = [i for i, line in enumerate(lines) if re.search(wait_line, line)]
        routed = [i for i, line in enumerate(lines)
                  if " imap %s " % user in line and "proxying to %s:" % new in line]
        assert len(waited) == 1 and len(routed) == 1 and waited[0] < routed[0], lines
        out, err = mover.communicate(timeout=40)
        assert mover.returncode == 0, err
        for n in nodes:
            assert user_row(n, user)["Current"] == new, n.port
        r = subprocess.run(["doveadm", "-f", "tab", "proxy", "list", "-a",
                            os.path.join(nodes[1].base_dir, "ipc")],
                           capture_output=True, text=True, timeout=40)
        mine = [line for line in r.stdout.splitlines() if user in line]
        assert len(mine) == 1 and new in mine[0], r.stdout
        waiting.logout()
        # every other node routes there too
        for n in (nodes[0], nodes[2]):
            m = IMAP(LOFT_IP, n.port)
            m.login(user, "pass")
            m.logout()
            assert user_row(n, user)["Current"] == new
        # a move to where the user already is changes nothing
        doveadm(nodes[2], "director", "move", user, new)
    finally:
        if mover.poll() is None:
            mover.kill()


def test_a_flush_moves_the_users_of_a_down_host_everywhere(loft_factory, etcd_whole,
                                                           cluster):
    """director flush on a node of a ring (reference §2.7): after a host
    went down its users with sessions stayed (pinned); a flush on another
    node moves exactly those to their hashed host, on every node, and
    leaves everyone else's session alone."""
    prefix = "/loft-flush/"
    nodes = [node(loft_factory, etcd_whole, i, prefix) for i in range(3)]
    for n in nodes:
        loftlib.wait_for(lambda: len(ring_status(n)) == 3, 10, "three members")
    users = ["user%d" % i for i in range(1, 13)]
    sessions = {}
    for u in users:
        m = IMAP(LOFT_IP, nodes[0].port)
        m.login(u, "pass")
        sessions[u] = m
    before = {u: user_row(nodes[0], u)["Current"] for u in users}
    down = before[users[0]]
    on_down = [u for u in users if before[u] == down]
    doveadm(nodes[1], "director", "down", down)
    # nobody moved yet: their sessions keep them there, on every node
    for u in on_down:
        for n in nodes:
            assert user_row(n, u)["Current"] == down, (n.port, u)
    doveadm(nodes[2], "director", "flush", down)
    for u in users:
        if u in on_down:
            assert closed(sessions[u]), u
            for n in nodes:
                row = user_row(n, u)
                assert row["Current"] == row["Hashed"] != down, (n.port, u, row)
        else:
            sessions[u].noop()
            sessions[u].logout()


def test_a_director_kick_closes_the_users_sessions_on_every_node(loft_factory,
                                                                 etcd_whole):
    """director kick on one node (reference §2.9): the user's sessions on
    every node are closed by the time the command is answered; other
    users' sessions live on."""
    prefix = "/loft-kick/"
    nodes = [node(loft_factory, etcd_whole, i, prefix) for i in range(3)]
    for n in nodes:
        loftlib.wait_for(lambda: len(ring_status(n)) == 3, 10, "three members")
    kicked = [IMAP(LOFT_IP, n.port) for n in nodes]
    for m in kicked:
        m.login("user35", "pass")
    other = IMAP(LOFT_IP, nodes[2].port)
    other.login("user36", "pass")
    doveadm(nodes[1], "director", "kick", "user35")
    for m in kicked:
        assert closed(m)
    other.noop()
    # loftadm -v also says how many sessions each node closed
    again = [IMAP(LOFT_IP, nodes[0].port) for _ in range(2)]
    for m in again:
        m.login("user35", "pass")
    r = loftlib.loftadm("-v", "director", "kick", "-a", nodes[2].admin, "user35")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert lines[0] == "Info: User user35 kicked", lines
    assert sorted(lines[1:]) == [
        "Info: %s:%d: %s closed" % (LOFT_IP, 9090 + i, "2 sessions" if i == 0 else
                                    "0 sessions") for i in range(3)], lines
    for m in again:
        assert closed(m)
    other.logout()
    # a kick of nobody is answered too (Dovecot: exit 0)
    doveadm(nodes[0], "director", "kick", "nobody")


HEALTH = 'health = { interval = "200ms"; timeout = "1s"; fall = 2; rise = 2; };'


def health_rows(loft):
    """loftadm's director status: {ip: health column}."""
    r = loftlib.loftadm("-f", "tab", "director", "status", "-a", loft.admin)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split("\t")[-1] == "health", lines[0]
    return {f[0]: f[-1] for f in (line.split("\t") for line in lines[1:])}


def agreed(nodes, ip, verdict):
    """Every node shows the verdict for ip, in the same director status
    but for the users column (each node counts the assignments it made)."""
    def hosts(n):
        return [line.split("\t")[:5] for line in director_status(n).splitlines()]
    return all(health_rows(n).get(ip) == verdict for n in nodes) and \
        all(hosts(n) == hosts(nodes[0]) for n in nodes)


def test_health_verdicts_are_agreed(loft_factory, etcd_whole, cluster):
    """Each node publishes its own checks' verdict; a backend leaves (and
    rejoins) the rings when most live nodes see it failing (passing), on
    every node at the same point (doc/ring.md §7). A node whose every
    check fails (a broken route of its own) changes nothing."""
    prefix = "/loft-health/"
    fourth_ip = "%s.14" % NET
    fourth = loftlib.Backend(cluster.base, "be4-ring", fourth_ip, cluster.backends[0].port,
                             cluster.certs)
    fourth.start()
    try:
        nodes = [node(loft_factory, etcd_whole, i, prefix, director_extra=HEALTH)
                 for i in range(2)]
        # the third node reaches no backend: its checks all fail
        nodes.append(node(loft_factory, etcd_whole, 2, prefix, director_extra=HEALTH,
                          backend_port=1))
        for n in nodes:
            loftlib.wait_for(lambda: len(ring_status(n)) == 3, 10, "three members")
        doveadm(nodes[0], "director", "add", fourth_ip)
        loftlib.wait_for(lambda: agreed(nodes, fourth_ip, "ok"), 20,
                         "every node to agree the new backend is ok")
        loftlib.wait_for(lambda: "backend %s failed 2 health checks" % fourth_ip
                         in nodes[2].log_text(), 10, "node 2's own checks to fail")
        assert all(v == "ok" for v in health_rows(nodes[2]).values())
        four = [b.ip for b in cluster.backends] + [fourth_ip]
        user = next("user%d" % i for i in range(1, 60)
                    if dovecot_host(four, "user%d" % i) == fourth_ip)
        m = IMAP(LOFT_IP, nodes[0].port)
        m.login(user, "pass")
        m.logout()
        assert user_row(nodes[0], user)["Current"] == fourth_ip

        # most nodes see it fail: it leaves the rings everywhere, and its
        # idle user is routed afresh (not kept on a dead backend)
        fourth.stop()
        loftlib.wait_for(lambda: agreed(nodes, fourth_ip, "failing"), 20,
                         "every node to agree the backend is failing")
        want = dovecot_host([b.ip for b in cluster.backends], user)
        for n in nodes[:2]:
            m = IMAP(LOFT_IP, n.port)
            m.login(user, "pass")
            m.logout()
            assert user_row(n, user)["Current"] == want, n.port
        assert "ring: backend %s is failing on most nodes" % fourth_ip in \
            "".join(n.log_text() for n in nodes)

        fourth.start()
        loftlib.wait_for(lambda: agreed(nodes, fourth_ip, "ok"), 20,
                         "every node to agree the backend is back")
    finally:
        fourth.stop()


def test_ring_add_and_remove(loft_factory, etcd_whole):
    """director ring add declares a director the ring expects (listed down
    until it joins); ring remove takes one out: a live node fences itself
    and stays out until it is added back, then serves again (reference
    §3.7, doc/ring.md §8)."""
    prefix = "/loft-ringadd/"
    nodes = [node(loft_factory, etcd_whole, i, prefix) for i in range(3)]
    for n in nodes:
        loftlib.wait_for(lambda: len(ring_status(n)) == 3, 10, "three members")
    later = "%s.9" % NET
    r = subprocess.run(["doveadm", "director", "ring", "add", "-a", nodes[0].admin, later,
                        "9190"], capture_output=True, text=True, timeout=40)
    assert r.returncode == 0, r.stderr
    for n in nodes:
        loftlib.wait_for(lambda: [row for row in ring_status(n)
                                  if row[0] == later and row[4] == "down"], 5,
                         "the added director listed down")
    # unknown directors: doveadm's "Not found", exit 68
    r = subprocess.run(["doveadm", "director", "ring", "remove", "-a", nodes[0].admin,
                        "%s.8" % NET], capture_output=True, text=True, timeout=40)
    assert r.returncode == 68, (r.returncode, r.stderr)
    r = loftlib.loftadm("-a", nodes[0].admin, "director", "ring", "remove", later)
    assert r.returncode == 0, r.stderr
    assert not [row for row in ring_status(nodes[1]) if row[0] == later]

    # a live node: removed on node 0, it fences; its session is closed
    m = IMAP(LOFT_IP, nodes[2].port)
    m.login("user7", "pass")
    r = loftlib.loftadm("-a", nodes[0].admin, "director", "ring", "remove", LOFT_IP, "9092")
    assert r.returncode == 0, r.stderr
    # answered once its membership is gone: nobody lists it any more
    for n in nodes[:2]:
        assert not [row for row in ring_status(n) if row[1] == "9092"], ring_status(n)
    assert closed(m)
    loftlib.wait_for(lambda: "removed from the ring by an admin" in nodes[2].log_text(),
                     5, "the removal logged")
    assert not IMAPserves(nodes[2])
    assert [row[4] for row in ring_status(nodes[2]) if row[2] == "self"] == ["removed"]
    # a node cannot remove itself
    r = loftlib.loftadm("-a", nodes[0].admin, "director", "ring", "remove", LOFT_IP, "9090")
    assert r.returncode == 75 and "cannot remove itself" in r.stderr, r.stderr

    # added back: it joins again and serves by itself
    r = loftlib.loftadm("-a", nodes[1].admin, "director", "ring", "add", LOFT_IP, "9092")
    assert r.returncode == 0, r.stderr
    loftlib.wait_for(lambda: IMAPserves(nodes[2]), 10, "the node added back to serve")
    for n in nodes:
        loftlib.wait_for(lambda: len(ring_status(n)) == 3 and all(
            row[4] in ("synced", "ring synced") for row in ring_status(n)), 10,
            "three synced members")


def test_a_woken_node_fences_before_it_relays_what_came_meanwhile(loft_factory,
                                                                  etcd_whole, cluster):
    """A node paused past its lease may have lost its users to other
    backends meanwhile (the ring stopped waiting for it). When it runs
    again, the client bytes that arrived during the pause must not reach
    the old backend: it fences first, so the backend sees the connection
    closed, not the client's LOGOUT (the backend's own log says which).
    (After SIGCONT epoll_wait() returns EINTR, so the lease check runs
    first; for a stall without a signal the lease timer has the loop's
    first priority, which this test cannot show.)"""
    prefix = "/loft-woken/"
    nodes = [node(loft_factory, etcd_whole, i, prefix) for i in range(2)]
    for n in nodes:
        loftlib.wait_for(lambda: len(ring_status(n)) == 2, 10, "two members")
    user = "user38"
    m = IMAP(LOFT_IP, nodes[1].port)
    m.login(user, "pass")
    backend = cluster.by_ip(user_row(nodes[1], user)["Current"])
    os.kill(nodes[1].proc.pid, signal.SIGSTOP)
    try:
        loftlib.wait_for(lambda: [r for r in ring_status(nodes[0])
                                  if r[1] == "9091" and r[4] == "down"], 15,
                         "node 1's lease to end")
        m.send(b"a1 LOGOUT\r\n")
    finally:
        os.kill(nodes[1].proc.pid, signal.SIGCONT)
    loftlib.wait_for(lambda: "fenced" in nodes[1].log_text(), 10, "node 1 to fence")

    def ended():
        lines = [line for line in open(backend.log, errors="replace")
                 if "imap(%s)" % user in line and ("Logged out" in line or
                                                   "Disconnected" in line)]
        return lines and lines[-1]
    last = loftlib.wait_for(ended, 10, "the backend to log the session's end")
    assert "Disconnected" in last, last


def test_a_change_a_live_node_never_acknowledges_is_given_up(loft_factory, etcd_whole):
    """A live member that never acknowledges (here a member key on a lease
    nobody serves) holds a host change until the admin's deadline: then
    the admin gets "Ring sync timed out" and the change is given up, so
    the next change is not refused with TRYAGAIN for as long as that
    member lives; nobody routes by the given-up list."""
    prefix = "/loft-giveup/"
    n = node(loft_factory, etcd_whole, 0, prefix)
    loftlib.wait_for(lambda: len(ring_status(n)) == 1, 10, "the node in the ring")
    member = etcd_whole.members[0]
    status, lease = member.post("/v3/lease/grant", {"TTL": 120})
    assert status == 200, lease
    ghost = '{"address":"%s.7","port":9999,"started":1}' % NET
    status, _ = member.post("/v3/kv/put", {"key": etcdlib.b64(prefix + "members/ghost"),
                                          "value": etcdlib.b64(ghost),
                                          "lease": lease["ID"]})
    assert status == 200
    try:
        loftlib.wait_for(lambda: len(ring_status(n)) == 2, 10, "the ghost listed")
        new = "%s.15" % NET
        r = doveadm(n, "director", "add", new, check=False)
        assert r.returncode == 75 and "Ring sync timed out" in r.stderr, r.stderr
        assert re.search(r"ring: host change \S+ given up after 30 s: not acknowledged "
                         r"by ghost", n.log_text()), n.log_text()
        assert new not in director_status(n)
        # the change is gone: the next one is looked at, not refused with
        # TRYAGAIN (an update of a host the ring does not have)
        r = doveadm(n, "director", "update", new, "5", check=False)
        assert "doesn't exist" in r.stderr and "try again" not in r.stderr, r.stderr
    finally:
        member.post("/v3/lease/revoke", {"ID": lease["ID"]})
    loftlib.wait_for(lambda: len(ring_status(n)) == 1, 10, "the ghost gone")
    doveadm(n, "director", "add", new)
    assert new in director_status(n)


# ---- pins: regressions of the faults the protocol model found (doc/ring.md §11)

def pin_put(etcd, prefix, user, node, host, lease):
    """Writes P/pins/<hash>//<node> = {"host": host} on lease, as a node
    of the ring would (the default tag is empty)."""
    key = "%spins/%d//%s" % (prefix, user_hash(user), node)
    value = '{"host":"%s"}' % host
    status, _ = etcd.members[0].post("/v3/kv/put", {"key": etcdlib.b64(key),
                                                   "value": etcdlib.b64(value),
                                                   "lease": lease})
    assert status == 200


def lease_grant(etcd, ttl=120):
    status, lease = etcd.members[0].post("/v3/lease/grant", {"TTL": ttl})
    assert status == 200, lease
    return lease["ID"]


def other_backend(cluster, ip):
    return [b.ip for b in cluster.backends if b.ip != ip][0]


def test_a_pin_written_again_with_another_host_is_applied_again(loft_factory, etcd_whole,
                                                                cluster):
    """P5: a node applied each pin key once; a key written again with
    another host kept the first host in its record, and the node routed
    there while the ring's pin said otherwise."""
    prefix = "/loft-repin/"
    n = node(loft_factory, etcd_whole, 0, prefix)
    loftlib.wait_for(lambda: live_members(n) == 1, 10, "the node in the ring")
    user = "user21"
    hashed = user_row(n, user)["Hashed"]
    first = other_backend(cluster, hashed)
    second = [b.ip for b in cluster.backends if b.ip not in (hashed, first)][0]
    lease = lease_grant(etcd_whole)
    try:
        pin_put(etcd_whole, prefix, user, "ghost", first, lease)
        loftlib.wait_for(lambda: user_row(n, user)["Current"] == first, 10,
                         "the pin applied")
        pin_put(etcd_whole, prefix, user, "ghost", second, lease)
        loftlib.wait_for(lambda: user_row(n, user)["Current"] == second, 10,
                         "the pin written again applied again")
    finally:
        etcd_whole.members[0].post("/v3/lease/revoke", {"ID": lease})
    # no record (n/a): the user follows its hash again
    loftlib.wait_for(lambda: user_row(n, user)["Current"] in ("n/a", hashed), 10,
                     "the user back on its hash once the pin is gone")


def etcd_range(etcd, key):
    """The key-values under key (a prefix ending in "/"), as etcd's
    gateway gives them (base64 keys and values)."""
    status, r = etcd.members[0].post("/v3/kv/range", {
        "key": etcdlib.b64(key), "range_end": etcdlib.b64(key[:-1] + "0")})
    assert status == 200, r
    return r.get("kvs", [])


def members_lease(etcd, prefix):
    """{member name: its lease} from P/members/."""
    plen = len(prefix + "members/")
    return {base64.b64decode(kv["key"]).decode()[plen:]: kv["lease"]
            for kv in etcd_range(etcd, prefix + "members/")}


def test_a_late_pin_of_its_own_makes_a_record(loft_factory, etcd_whole, cluster):
    """P4: a node's own pin that lands after its record of the user went
    (a write that timed out and ran late) is a pin the other nodes route
    by; the node itself routed by the hash, because a pin of its own for
    a user without a record did nothing."""
    prefix = "/loft-ownpin/"
    n = node(loft_factory, etcd_whole, 0, prefix)
    loftlib.wait_for(lambda: live_members(n) == 1, 10, "the node in the ring")
    [(name, lease)] = members_lease(etcd_whole, prefix).items()
    user = "user22"
    hashed = user_row(n, user)["Hashed"]
    pinned = other_backend(cluster, hashed)
    pin_put(etcd_whole, prefix, user, name, pinned, lease)
    loftlib.wait_for(lambda: user_row(n, user)["Current"] == pinned, 10,
                     "the node to route by its own pin")
    m = IMAP(LOFT_IP, n.port)
    m.login(user, "pass")
    r = subprocess.run(["doveadm", "-f", "tab", "proxy", "list", "-a",
                        os.path.join(n.base_dir, "ipc")],
                       capture_output=True, text=True, timeout=40)
    assert [row for row in r.stdout.splitlines() if user in row and pinned in row], r.stdout
    m.logout()


def test_a_node_back_with_a_new_lease_forgets_its_records(loft_factory, etcd_whole):
    """R1: a node stopped past its lease kept its records; the ring went
    on without it (a host change moved users' hashes, nobody pinned them
    for it), and once back it routed those users to their old backends.
    Now it forgets them (the fence closed their sessions) and follows the
    ring."""
    prefix = "/loft-rejoin/"
    nodes = [node(loft_factory, etcd_whole, i, prefix) for i in range(2)]
    for n in nodes:
        loftlib.wait_for(lambda: live_members(n) == 2, 10, "two members")
    users = ["user%d" % i for i in range(23, 35)]
    for u in users:
        m = IMAP(LOFT_IP, nodes[0].port)
        m.login(u, "pass")
        m.logout()
    before = {u: user_row(nodes[0], u)["Current"] for u in users}
    pid = nodes[0].proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        loftlib.wait_for(lambda: live_members(nodes[1]) == 1, 15, "node 0's lease to end")
        new = "%s.15" % NET
        doveadm(nodes[1], "director", "add", new, "1000")
    finally:
        os.kill(pid, signal.SIGCONT)
    moved = [u for u in users if user_row(nodes[1], u)["Hashed"] == new]
    assert moved, "no user's hash moved to the new host"
    loftlib.wait_for(lambda: "lease is gone" in nodes[0].log_text(), 15,
                     "node 0 to find its lease gone")
    loftlib.wait_for(lambda: live_members(nodes[1]) == 2, 15, "node 0 back in the ring")
    for u in moved:
        assert before[u] != new
        # no record (n/a): by the hash, the new host, as node 1 does
        loftlib.wait_for(lambda: user_row(nodes[0], u)["Current"] in ("n/a", new), 10,
                         "node 0 to route %s by the ring" % u)
        assert user_row(nodes[0], u)["Hashed"] == new


def test_a_host_change_pins_more_users_than_one_transaction_holds(loft_factory,
                                                                 etcd_whole):
    """B1: pins beyond one etcd transaction (126 here) went in transactions
    whose answers were ignored, the ack with the last: one that failed let
    the change commit with those users unpinned. Now each is answered, and
    the ack goes once all succeeded: every user keeps its backend."""
    prefix = "/loft-manypins/"
    nodes = [node(loft_factory, etcd_whole, i, prefix) for i in range(2)]
    for n in nodes:
        loftlib.wait_for(lambda: live_members(n) == 2, 10, "two members")
    users = ["bulk%d" % i for i in range(1, 301)]
    for u in users:
        m = IMAP(LOFT_IP, nodes[0].port)
        m.login(u, "pass")
        m.logout()
    before = {u: user_row(nodes[0], u)["Current"] for u in users}
    new = "%s.15" % NET
    doveadm(nodes[1], "director", "add", new, "1000")
    moved = [u for u in users if user_row(nodes[1], u)["Hashed"] == new]
    assert len(moved) > 126, len(moved)
    for u in moved:
        assert user_row(nodes[1], u)["Current"] == before[u], u


def pins_of(etcd, prefix, user):
    """{holder: host} of the user's pins in etcd."""
    key = "%spins/%d//" % (prefix, user_hash(user))
    return {base64.b64decode(kv["key"]).decode()[len(key):]:
            base64.b64decode(kv["value"]).decode() for kv in etcd_range(etcd, key)}


def test_an_expired_record_lets_its_pin_go_before_it_is_forgotten(loft_factory,
                                                                  etcd_whole):
    """P1: when a node's record of a user it pins expires, the node deletes
    its pin and forgets the record only once its view of etcd shows the
    pin gone. (A regression of this fix looked the pin up under the wrong
    key: the record went at once and the pin stayed in etcd for the whole
    life of the node's lease, pinning the user everywhere else.) The next
    host change writes no pin a node already holds."""
    prefix = "/loft-release/"
    nodes = [node(loft_factory, etcd_whole, i, prefix, user_expire="10s")
             for i in range(2)]
    for n in nodes:
        loftlib.wait_for(lambda: live_members(n) == 2, 10, "two members")
    users = ["user%d" % i for i in range(1, 13)]
    for u in users:
        m = IMAP(LOFT_IP, nodes[0].port)
        m.login(u, "pass")
        m.logout()
    new = "%s.15" % NET
    doveadm(nodes[1], "director", "add", new, "1000")
    moved = [u for u in users if user_row(nodes[1], u)["Hashed"] == new]
    assert moved, "no user's hash moved to the new host"
    name = [h for h in pins_of(etcd_whole, prefix, moved[0])][0]
    for u in moved:
        assert list(pins_of(etcd_whole, prefix, u)) == [name], u
    # a second change that moves them again writes none of them anew
    revisions = {kv["key"]: kv["mod_revision"]
                 for kv in etcd_range(etcd_whole, prefix + "pins/")}
    doveadm(nodes[1], "director", "add", "%s.16" % NET, "1000")
    assert all(revisions.get(kv["key"]) in (None, kv["mod_revision"])
               for kv in etcd_range(etcd_whole, prefix + "pins/"))
    # user_expire after the logouts, node 0's records expire: its pins go
    # from etcd, and then from both nodes' routing
    for u in moved:
        loftlib.wait_for(lambda: not pins_of(etcd_whole, prefix, u), 30,
                         "%s's pin to go" % u)
        for n in nodes:
            loftlib.wait_for(lambda: user_row(n, u)["Current"] in
                             ("n/a", user_row(n, u)["Hashed"]), 10,
                             "%s to follow its hash on node %d" % (u, n.port))


def test_a_node_joining_many_pins_serves_while_it_reads_them(loft_factory, etcd_whole,
                                                            cluster):
    """A node that joins a ring of more pins than it reads with the rest
    (10,000) serves at once and reads them afterwards, range by range; a
    login of a pinned user meanwhile reads that user's pins first and
    lands on the pinned backend. Every pin is read exactly once (the
    ranges cover every key, short hashes included)."""
    prefix = "/loft-manyjoin/"
    first = node(loft_factory, etcd_whole, 0, prefix)
    loftlib.wait_for(lambda: live_members(first) == 1, 10, "the first node")
    user = "user30"
    hashed = user_row(first, user)["Hashed"]
    pinned = other_backend(cluster, hashed)
    lease = lease_grant(etcd_whole, 300)
    value = etcdlib.b64('{"host":"%s"}' % pinned)
    hashes = [7, 42, 99, 100, 4294967295] + list(range(1000000, 1012000))
    hashes = [h for h in hashes if h != user_hash(user)]
    try:
        for i in range(0, len(hashes), 128):
            ops = [{"request_put": {"key": etcdlib.b64("%spins/%d//ghost" % (prefix, h)),
                                    "value": value, "lease": lease}}
                   for h in hashes[i:i + 128]]
            status, r = etcd_whole.members[0].post("/v3/kv/txn", {"success": ops},
                                                   timeout=10)
            assert status == 200, r
        pin_put(etcd_whole, prefix, user, "ghost", pinned, lease)
        late = node(loft_factory, etcd_whole, 1, prefix)
        loftlib.wait_for(lambda: "joined as" in late.log_text(), 10, "the node to join")
        m = IMAP(LOFT_IP, late.port)
        m.login(user, "pass")
        r = subprocess.run(["doveadm", "-f", "tab", "proxy", "list", "-a",
                            os.path.join(late.base_dir, "ipc")],
                           capture_output=True, text=True, timeout=40)
        assert [row for row in r.stdout.splitlines() if user in row and pinned in row], \
            r.stdout
        m.logout()
        found = loftlib.wait_for(lambda: re.search(r"ring: (\d+) pins read in \S+ s while "
                                                   r"serving", late.log_text()), 60,
                                 "every pin read")
        # the ghost's pins, and the login's own pin of the user if it was
        # taken before that user's range was read
        assert int(found.group(1)) in (len(hashes) + 1, len(hashes) + 2), found.group(0)
        assert user_row(late, user)["Current"] == pinned
        # "syncing" while it read them, "ring synced" now
        assert [row[4] for row in ring_status(late) if row[2] == "self"] == ["ring synced"]
    finally:
        etcd_whole.members[0].post("/v3/lease/revoke", {"ID": lease})


def etcd_sources(n):
    """The local addresses of loftd n's connections to etcd's client port."""
    r = subprocess.run(["ss", "-Htnp", "state", "established", "( dport = :2379 )"],
                       capture_output=True, text=True, timeout=10)
    pid = "pid=%d," % n.proc.pid
    return {line.split()[2].rsplit(":", 1)[0] for line in r.stdout.splitlines() if pid in line}


def test_connections_to_etcd_come_from_the_source_address(loft_factory, etcd_whole):
    """ring.etcd_source_address: every connection to etcd comes from it
    (a multi-homed director whose etcd admits one address); without it,
    the kernel's choice; not an IP address, loftd refuses to start."""
    prefix = "/loft-source/"
    plain = node(loft_factory, etcd_whole, 0, prefix)
    bound = node(loft_factory, etcd_whole, 1, prefix,
                 extra='etcd_source_address = "%s";' % LOFT_IP)
    for n in (plain, bound):
        loftlib.wait_for(lambda: live_members(n) == 2, 10, "two members")
    assert loftlib.wait_for(lambda: etcd_sources(bound), 10, "connections") == {LOFT_IP}
    assert LOFT_IP not in etcd_sources(plain)
    bad = node(loft_factory, etcd_whole, 2, prefix, start=False,
               extra='etcd_source_address = "etcd.example";')
    r = subprocess.run([bad.binary(), "-c", bad.conf], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "etcd source address etcd.example: not an IP address" \
        in r.stdout + r.stderr, r.stdout + r.stderr
