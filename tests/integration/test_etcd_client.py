"""The etcd client (src/ring/etcd*.c) against real etcd members, through
build/tests/ring/etcd_drive: compare-and-swap, ranges, leases, watches, and
what happens when a member dies, freezes, is partitioned or cut off, when
quorum is lost, with token authentication and with TLS client certificates.

Members live on <net>.51-53 (one-member clusters on .57-.59); a client that
must be cut off binds <net>.99. Each chaos test repairs the cluster after
itself; every wait polls with a deadline."""
import os
import tempfile
import time

import pytest

import etcdlib
import loftlib
from conftest import NET

CLIENT_SRC = "%s.99" % NET


@pytest.fixture(scope="module")
def base():
    d = tempfile.mkdtemp(prefix="loft-etcd-", dir="/tmp")
    yield d
    etcdlib.rmtree(d)


@pytest.fixture(scope="module")
def etcd_cluster(base):
    c = etcdlib.EtcdCluster(os.path.join(base, "cluster"), NET)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture
def etcd(etcd_cluster):
    """The shared cluster, whole again after the test (which also removes
    any iptables rule the test left)."""
    yield etcd_cluster
    etcd_cluster.repair()


@pytest.fixture
def drivers(base):
    started = []

    def make(endpoints, **kw):
        d = etcdlib.Driver(endpoints, log_dir=base, **kw)
        started.append(d)
        return d
    yield make
    for d in started:
        d.close()


def ok(r):
    assert r["outcome"] == "OK", r
    return r


def cmp(key, target, result, number=0, value=None):
    c = {"key": key, "target": target, "result": result, "number": number}
    if value is not None:
        c["value"] = value
    return c


def values(events, key=None):
    return [e["value"] for e in events if key is None or e["key"] == key]


def assert_in_order_once(events):
    """Revisions never go back, and no (key, revision) comes twice."""
    seen = set()
    last = 0
    for e in events:
        assert e["mod_revision"] >= last, events
        last = e["mod_revision"]
        assert (e["key"], e["mod_revision"]) not in seen, events
        seen.add((e["key"], e["mod_revision"]))


def test_txn_compare_and_swap(etcd, drivers):
    d = drivers(etcd.endpoints())
    k = "/t/cas/k"
    absent = [cmp(k, "CREATE", "EQUAL", 0)]
    r = ok(d.call("txn", compare=absent, success=[{"op": "put", "key": k, "value": "v1"}],
                  failure=[{"op": "range", "key": k}]))
    assert r["succeeded"] and r["responses"][0]["type"] == "put"
    # a second create-if-absent fails and reads what is there
    r = ok(d.call("txn", compare=absent, success=[{"op": "put", "key": k, "value": "v2"}],
                  failure=[{"op": "range", "key": k}]))
    assert not r["succeeded"]
    kv = r["responses"][0]["kvs"][0]
    assert kv["value"] == "v1" and kv["version"] == 1
    mod = kv["mod_revision"]

    swap = [cmp(k, "MOD", "EQUAL", mod)]
    r = ok(d.call("txn", compare=swap, success=[{"op": "put", "key": k, "value": "v3",
                                                 "prev_kv": True}]))
    assert r["succeeded"] and r["responses"][0]["kvs"][0]["value"] == "v1"
    # the same, now stale, revision loses
    r = ok(d.call("txn", compare=swap, success=[{"op": "put", "key": k, "value": "v4"}]))
    assert not r["succeeded"] and r["responses"] == []
    assert ok(d.call("range", key=k))["kvs"][0]["value"] == "v3"

    # the other targets and results
    assert ok(d.call("txn", compare=[cmp(k, "VERSION", "GREATER", 1)]))["succeeded"]
    assert not ok(d.call("txn", compare=[cmp(k, "VERSION", "LESS", 2)]))["succeeded"]
    assert not ok(d.call("txn", compare=[cmp(k, "VALUE", "NOT_EQUAL", value="v3")]))["succeeded"]
    assert ok(d.call("txn", compare=[cmp(k, "LEASE", "EQUAL", 0)]))["succeeded"]
    r = ok(d.call("txn", compare=[cmp(k, "VALUE", "EQUAL", value="v3")],
                  success=[{"op": "delete", "key": k, "prev_kv": True}]))
    assert r["succeeded"] and r["responses"][0]["deleted"] == 1
    assert ok(d.call("range", key=k))["kvs"] == []


def test_prefix_range(etcd, drivers):
    d = drivers(etcd.endpoints())
    for k in ("a", "b", "c"):
        ok(d.call("put", key="/t/range/" + k, value=k.upper()))
    ok(d.call("put", key="/t/rangeX", value="outside"))
    r = ok(d.call("range", key="/t/range/", prefix=True))
    assert [kv["key"] for kv in r["kvs"]] == ["/t/range/a", "/t/range/b", "/t/range/c"]
    assert r["count"] == 3 and not r["more"]
    rev_c = r["kvs"][2]["mod_revision"]
    r = ok(d.call("range", key="/t/range/", prefix=True, limit=2))
    assert len(r["kvs"]) == 2 and r["more"] and r["count"] == 3
    r = ok(d.call("range", key="/t/range/", prefix=True, count_only=True))
    assert r["count"] == 3 and r["kvs"] == []
    r = ok(d.call("range", key="/t/range/", prefix=True, keys_only=True))
    assert [kv["value"] for kv in r["kvs"]] == ["", "", ""]
    r = ok(d.call("range", key="/t/range/", prefix=True, serializable=True))
    assert r["count"] == 3
    r = ok(d.call("range", key="/t/range/a", range_end="/t/range/c"))
    assert [kv["key"] for kv in r["kvs"]] == ["/t/range/a", "/t/range/b"]
    # as it was before c was written
    r = ok(d.call("range", key="/t/range/", prefix=True, revision=rev_c - 1))
    assert r["count"] == 2
    r = ok(d.call("delete", key="/t/range/", prefix=True, prev_kv=True))
    assert r["deleted"] == 3 and len(r["kvs"]) == 3
    assert ok(d.call("range", key="/t/range/", prefix=True))["count"] == 0
    assert ok(d.call("range", key="/t/rangeX"))["count"] == 1


def test_lease_lifecycle(etcd, drivers):
    d = drivers(etcd.endpoints())
    r = ok(d.call("grant", ttl=30))
    lease = r["lease"]["id"]
    assert lease > 0 and r["lease"]["ttl"] == 30
    ok(d.call("put", key="/t/lease/k", value="v", lease=lease))
    assert ok(d.call("range", key="/t/lease/k"))["kvs"][0]["lease"] == lease
    assert ok(d.call("keepalive", lease=lease))["lease"]["ttl"] == 30
    r = ok(d.call("ttl", lease=lease, keys=True))
    assert r["lease"]["granted_ttl"] == 30 and r["lease"]["keys"] == ["/t/lease/k"]

    ok(d.call("revoke", lease=lease))
    assert ok(d.call("range", key="/t/lease/k"))["kvs"] == []
    # a gone lease: keepalive and revoke fail for good, timetolive says -1
    r = d.call("keepalive", lease=lease)
    assert r["outcome"] == "FAILED" and r["grpc"] == 5, r
    r = d.call("revoke", lease=lease)
    assert r["outcome"] == "FAILED" and r["http"] == 404 and r["grpc"] == 5, r
    assert ok(d.call("ttl", lease=lease))["lease"]["ttl"] == -1

    # expiry: the key goes by itself, not at once
    lease = ok(d.call("grant", ttl=2))["lease"]["id"]
    ok(d.call("put", key="/t/lease/short", value="v", lease=lease))
    t0 = time.monotonic()
    loftlib.wait_for(lambda: ok(d.call("range", key="/t/lease/short"))["count"] == 0,
                     10, "the lease to expire", interval=0.1)
    assert time.monotonic() - t0 > 1.0


def test_watch_puts_and_deletes_in_order(etcd, drivers):
    d = drivers(etcd.endpoints())
    p = "/t/watch/"
    ok(d.call("watch", watch="w", key=p, prefix=True))
    d.wait_update("w", lambda u: u["kind"] == "CREATED")
    first = ok(d.call("put", key=p + "a", value="1"))["header"]["revision"]
    ok(d.call("put", key=p + "a", value="2"))
    ok(d.call("put", key=p + "b", value="1"))
    ok(d.call("delete", key=p + "a"))
    ok(d.call("txn", success=[{"op": "put", "key": p + "c", "value": "1"},
                              {"op": "put", "key": p + "d", "value": "1"}]))
    ok(d.call("put", key="/t/watchX", value="not watched"))
    last = ok(d.call("put", key=p + "e", value="1"))["header"]["revision"]
    evs = d.wait_events("w", lambda e: len(e) >= 7)
    got = [(e["type"], e["key"][len(p):], e["value"],
            e["prev"]["value"] if e["prev"] else None) for e in evs]
    assert got == [("PUT", "a", "1", None), ("PUT", "a", "2", "1"), ("PUT", "b", "1", None),
                   ("DELETE", "a", "", "2"), ("PUT", "c", "1", None), ("PUT", "d", "1", None),
                   ("PUT", "e", "1", None)]
    assert_in_order_once(evs)
    # one txn, one revision, one message
    msgs = [u for u in d.updates("w") if u["kind"] == "EVENTS"]
    assert any(len(u["events"]) == 2 for u in msgs)
    assert evs[4]["mod_revision"] == evs[5]["mod_revision"]
    loftlib.wait_for(lambda: d.updates("w")[-1]["watch_revision"] >= last, 5,
                     "the watch's revision")

    # the same history again from its first revision
    ok(d.call("watch", watch="replay", key=p, prefix=True, start_revision=first))
    replay = d.wait_events("replay", lambda e: len(e) >= 7)
    assert [(e["key"], e["mod_revision"]) for e in replay] == \
        [(e["key"], e["mod_revision"]) for e in evs]

    # a canceled request never calls back (the driver reports it if so)
    r = d.call("put", key=p + "f", value="1", cancel=True)
    assert r == {"id": r["id"], "canceled": True}
    ok(d.call("unwatch", watch="replay"))


def test_watch_resumes_after_member_killed(etcd, drivers):
    victim = etcd.followers()[0]
    d = drivers(etcd.endpoints(first=victim))
    p = "/t/kill/"
    ok(d.call("watch", watch="w", key=p, prefix=True))
    _, created = d.wait_update("w", lambda u: u["kind"] == "CREATED")
    assert created["endpoint"] == victim.client_url
    for i in range(5):
        ok(d.call("put", key=p + "k", value=str(i)))
    d.wait_events("w", lambda e: len(e) == 5)
    victim.kill()
    for i in range(5, 10):
        r = ok(d.call("put", key=p + "k", value=str(i)))
        assert r["endpoint"] != victim.client_url
    i, lost = d.wait_update("w", lambda u: u["kind"] == "LOST", 10)
    d.wait_update("w", lambda u: u["kind"] == "CREATED", 10, after=i)
    evs = d.wait_events("w", lambda e: len(e) >= 10)
    assert values(evs) == [str(i) for i in range(10)]
    assert_in_order_once(evs)


def test_frozen_member(etcd, drivers):
    """SIGSTOP: a write on it is UNKNOWN within the timeout; the idle timer
    notices the silent watch, which resumes elsewhere without loss."""
    victim = etcd.followers()[0]
    d = drivers(etcd.endpoints(first=victim), timeout_ms=2000, idle_ms=3500)
    p = "/t/freeze/"
    ok(d.call("watch", watch="w", key=p, prefix=True))
    d.wait_update("w", lambda u: u["kind"] == "CREATED")
    for i in range(3):
        assert ok(d.call("put", key=p + "k", value=str(i)))["endpoint"] == victim.client_url
    victim.freeze()
    t0 = time.monotonic()
    r = d.call("put", key=p + "k", value="3")
    took = time.monotonic() - t0
    assert r["outcome"] == "UNKNOWN" and r["grpc"] == 4, r
    assert r["endpoint"] == victim.client_url
    # the 2 s timeout, never earlier; later only by a loaded machine
    assert 1.8 < took < 4.5, took
    for i in range(4, 7):
        assert ok(d.call("put", key=p + "k", value=str(i)))["endpoint"] != victim.client_url
    i, lost = d.wait_update("w", lambda u: u["kind"] == "LOST", 8)
    assert "nothing received" in lost["reason"]
    assert time.monotonic() - t0 < 3.5 + 2.5
    d.wait_update("w", lambda u: u["kind"] == "CREATED", 10, after=i)
    d.wait_events("w", lambda e: "6" in values(e))
    victim.thaw()
    ok(d.call("put", key=p + "k", value="7"))
    evs = d.wait_events("w", lambda e: "7" in values(e))
    # the timed-out write may still commit, late (reference §4)
    seen = values(evs)
    assert [v for v in seen if v != "3"] == ["0", "1", "2", "4", "5", "6", "7"]
    assert seen.count("3") <= 1
    assert_in_order_once(evs)


def test_partitioned_member_watch_ends_and_resumes(etcd, drivers):
    victim = etcd.followers()[0]
    others = [m for m in etcd.members if m is not victim]
    d = drivers(etcd.endpoints(first=victim))
    writer = drivers([m.client_url for m in others])
    p = "/t/partition/"
    ok(d.call("watch", watch="w", key=p, prefix=True))
    d.wait_update("w", lambda u: u["kind"] == "CREATED")
    for i in range(3):
        ok(writer.call("put", key=p + "k", value=str(i)))
    d.wait_events("w", lambda e: len(e) == 3)
    etcd.partition(victim)
    t0 = time.monotonic()
    for i in range(3, 6):
        ok(writer.call("put", key=p + "k", value=str(i)))
    # etcd ends a hasleader watch on a member without a leader
    i, lost = d.wait_update("w", lambda u: u["kind"] == "LOST", 12)
    assert "no leader" in lost["reason"], lost
    assert time.monotonic() - t0 < 10
    _, created = d.wait_update("w", lambda u: u["kind"] == "CREATED", 10, after=i)
    assert created["endpoint"] != victim.client_url
    evs = d.wait_events("w", lambda e: len(e) >= 6)
    assert values(evs) == [str(i) for i in range(6)]
    assert_in_order_once(evs)
    # and the client's requests have moved too
    assert ok(d.call("put", key=p + "k", value="6"))["endpoint"] != victim.client_url


def test_client_cut_off_from_member(etcd, drivers):
    """The client binds its own address; dropping it at one member's
    client port moves requests and the watch elsewhere."""
    victim = etcd.followers()[0]
    d = drivers(etcd.endpoints(first=victim), source=CLIENT_SRC)
    p = "/t/cut/"
    ok(d.call("watch", watch="w", key=p, prefix=True))
    d.wait_update("w", lambda u: u["kind"] == "CREATED")
    assert ok(d.call("put", key=p + "k", value="0"))["endpoint"] == victim.client_url
    etcd.cut_client(CLIENT_SRC, victim)
    t0 = time.monotonic()
    r = d.call("put", key=p + "k", value="1")
    # bounded by the 2 s timeout: without it a dropped connection hangs
    # for TCP's retransmissions (minutes); the margin is for a loaded CI
    # machine (4.5 s was once exceeded under the sanitizers)
    assert time.monotonic() - t0 < 10
    # UNKNOWN if sent on a kept-alive connection, FAILED if connecting
    assert r["outcome"] in ("UNKNOWN", "FAILED") and r["grpc"] == 4, r
    assert r["endpoint"] == victim.client_url
    r = ok(d.call("put", key=p + "k", value="2"))
    assert r["endpoint"] != victim.client_url
    i, lost = d.wait_update("w", lambda u: u["kind"] == "LOST", 8)
    d.wait_update("w", lambda u: u["kind"] == "CREATED", 8, after=i)
    evs = d.wait_events("w", lambda e: "2" in values(e))
    assert [v for v in values(evs) if v != "1"] == ["0", "2"]
    assert_in_order_once(evs)


def test_compacted_start_revision(etcd, drivers):
    d = drivers(etcd.endpoints())
    k = "/t/compact/k"
    first = ok(d.call("put", key=k, value="0"))["header"]["revision"]
    for i in range(1, 4):
        rev = ok(d.call("put", key=k, value=str(i)))["header"]["revision"]
    ok(d.call("compact", revision=rev))
    r = d.call("range", key=k, revision=first)
    assert r["outcome"] == "FAILED" and r["http"] == 400 and r["grpc"] == 11, r
    assert "compacted" in r["error"]
    ok(d.call("watch", watch="old", key=k, start_revision=first))
    i, u = d.wait_update("old", lambda u: u["kind"] in ("COMPACTED", "EVENTS"))
    assert u["kind"] == "COMPACTED" and u["compact_revision"] == rev, u
    # the owner's way back: read, then watch from the read's revision + 1
    r = ok(d.call("range", key=k))
    assert r["kvs"][0]["value"] == "3"
    ok(d.call("watch", watch="new", key=k, start_revision=r["header"]["revision"] + 1))
    ok(d.call("put", key=k, value="4"))
    assert values(d.wait_events("new", lambda e: len(e) >= 1)) == ["4"]
    # COMPACTED was final
    assert [u["kind"] for u in d.updates("old")] == ["CREATED", "COMPACTED"]


def test_quorum_lost_and_back(etcd, drivers):
    leader = etcd.leader()
    followers = [m for m in etcd.members if m is not leader]
    d = drivers(etcd.endpoints(first=leader), timeout_ms=2000)
    ok(d.call("put", key="/t/quorum/k", value="before"))
    for m in followers:
        m.kill()
    # every write ends within the timeout, and once the leader has stepped
    # down it is refused at once: FAILED, not executed
    deadline = time.monotonic() + 15

    def refused_fast():
        t0 = time.monotonic()
        r = d.call("put", key="/t/quorum/k", value="during")
        took = time.monotonic() - t0
        assert r["outcome"] in ("UNKNOWN", "FAILED"), r
        assert took < 4.5, (took, r)	# bounded by the 2 s timeout
        assert time.monotonic() < deadline, "no quick refusal: %s" % r
        return r["outcome"] == "FAILED" and took < 0.5 and r
    r = loftlib.wait_for(refused_fast, 20, "a quick refusal")
    assert r["grpc"] == 14, r
    for m in followers:
        m.start()

    def written():
        r = d.call("put", key="/t/quorum/k", value="after")
        return r["outcome"] == "OK" and r
    loftlib.wait_for(written, 20, "writes to work again", interval=0.2)
    assert ok(d.call("range", key="/t/quorum/k"))["kvs"][0]["value"] == "after"


def single_member(base, name, first, **kw):
    c = etcdlib.EtcdCluster(os.path.join(base, name), NET, n=1, first=first,
                            name=name, **kw)
    c.start()
    return c


def test_without_progress_notifications_idle_watch_resumes(base, drivers):
    """Without --experimental-watch-progress-notify-interval a healthy idle
    watch is silent: the idle timer restarts it, nothing is lost."""
    c = single_member(base, "plain", 57, tuned=False)
    try:
        d = drivers(c.endpoints(), idle_ms=1500)
        ok(d.call("watch", watch="w", key="/t/plain/", prefix=True))
        d.wait_update("w", lambda u: u["kind"] == "CREATED")
        i, lost = d.wait_update("w", lambda u: u["kind"] == "LOST", 5)
        assert "nothing received for 1500 ms" in lost["reason"]
        d.wait_update("w", lambda u: u["kind"] == "CREATED", 5, after=i)
        ok(d.call("put", key="/t/plain/k", value="1"))
        assert values(d.wait_events("w", lambda e: len(e) >= 1)) == ["1"]
        assert not any(u["kind"] == "PROGRESS" for u in d.updates("w"))
    finally:
        c.stop()


def test_token_auth(base, drivers):
    c = single_member(base, "auth", 58, extra_args=["--auth-token-ttl=2"])
    try:
        m = c.members[0]
        steps = [
            ("/v3/auth/user/add", {"name": "root", "password": "rootpw"}),
            ("/v3/auth/role/add", {"name": "root"}),
            ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
            ("/v3/auth/user/add", {"name": "loft", "password": "loft pw"}),
            ("/v3/auth/role/add", {"name": "loft"}),
            ("/v3/auth/role/grant", {"name": "loft", "perm": {
                "permType": "READWRITE", "key": etcdlib.b64("/loft/"),
                "range_end": etcdlib.b64("/loft0")}}),
            ("/v3/auth/user/grant", {"user": "loft", "role": "loft"}),
            ("/v3/auth/enable", {}),
        ]
        for path, body in steps:
            status, reply = m.post(path, body)
            assert status == 200, (path, status, reply)

        d = drivers(c.endpoints(), user="loft", password="loft pw")
        ok(d.call("put", key="/loft/a", value="1"))
        r = d.call("put", key="/other", value="1")
        assert r["outcome"] == "FAILED" and r["http"] == 403 and r["grpc"] == 7, r
        ok(d.call("watch", watch="w", key="/loft/", prefix=True))
        d.wait_update("w", lambda u: u["kind"] == "CREATED")
        ok(d.call("put", key="/loft/b", value="2"))
        assert values(d.wait_events("w", lambda e: len(e) >= 1)) == ["2"]

        # tokens expire (--auth-token-ttl=2): the client authenticates again
        status, reply = m.post("/v3/auth/authenticate",
                               {"name": "loft", "password": "loft pw"})
        token = reply["token"]
        # (every use renews a token: ask less often than it lives)
        loftlib.wait_for(lambda: m.post("/v3/kv/range", {"key": etcdlib.b64("/loft/a")},
                                        token=token)[0] == 401,
                         12, "the token to expire", interval=2.5)
        r = ok(d.call("range", key="/loft/a"))
        assert r["kvs"][0]["value"] == "1"

        bad = drivers(c.endpoints(), user="loft", password="wrong")
        r = bad.call("put", key="/loft/c", value="1")
        assert r["outcome"] == "FAILED" and r["http"] == 400, r
        assert "authenticate" in r["error"] and "invalid user ID or password" in r["error"]
        ok(bad.call("watch", watch="w", key="/loft/", prefix=True))
        _, u = bad.wait_update("w", lambda u: u["kind"] in ("CANCELED", "CREATED"))
        assert u["kind"] == "CANCELED" and "authenticate" in u["reason"], u
    finally:
        c.stop()


def test_tls_client_certificate(base, drivers):
    ip = "%s.59" % NET
    certs = loftlib.make_certs(os.path.join(base, "tls"), [ip])
    client_cert, client_key = etcdlib.make_client_cert(certs, base)
    tls = dict(certs, client_cert=client_cert, client_key=client_key)
    c = single_member(base, "tls", 59, tls=tls)
    try:
        d = drivers(c.endpoints(), ca=certs["ca"], cert=client_cert, key=client_key)
        r = ok(d.call("put", key="/t/tls/k", value="1"))
        assert r["endpoint"] == "https://%s:2379" % ip
        assert ok(d.call("range", key="/t/tls/k"))["kvs"][0]["value"] == "1"
        ok(d.call("watch", watch="w", key="/t/tls/", prefix=True))
        d.wait_update("w", lambda u: u["kind"] == "CREATED")
        ok(d.call("put", key="/t/tls/k", value="2"))
        assert values(d.wait_events("w", lambda e: len(e) >= 1)) == ["2"]

        # no client certificate: the handshake fails, nothing was sent
        anon = drivers(c.endpoints(), ca=certs["ca"])
        r = anon.call("put", key="/t/tls/k", value="3")
        assert r["outcome"] == "FAILED" and r["http"] == 0 and r["grpc"] == 14, r
        # a CA that did not sign etcd's certificate
        other = drivers(c.endpoints(), ca=client_cert, cert=client_cert, key=client_key)
        r = other.call("put", key="/t/tls/k", value="3")
        assert r["outcome"] == "FAILED" and "certificate verify failed" in r["error"], r
        assert ok(d.call("range", key="/t/tls/k"))["kvs"][0]["value"] == "2"
    finally:
        c.stop()
