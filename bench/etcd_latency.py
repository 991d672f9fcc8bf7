"""Latency of src/ring's etcd client against 3 local etcd members
(tests/integration/etcdlib.py), through build/tests/ring/etcd_drive: put,
create-if-absent txn and linearizable range, each sequential on one client,
and put-to-watch-event with the watch on another member. Once with the
requests going to the leader, once to a follower. Prints a Markdown table.

    make bench-etcd          (as root; members on $LOFT_TEST_NET.51-53)
"""
import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import etcdlib  # noqa: E402

NET = os.environ.get("LOFT_TEST_NET", "127.0.3")


def run(cluster, first, n, n_watch):
    d = etcdlib.Driver(cluster.endpoints(first=first))
    try:
        rows = {}
        for kind, count in (("put", n), ("txn", n), ("range", n), ("watch", n_watch)):
            # warm up the connections and etcd's caches first
            d.call("bench", kind=kind, n=20, key="/bench/warm-%s" % kind, timeout=60)
            r = d.call("bench", kind=kind, n=count, key="/bench/%s-%s" % (kind, first.name),
                       timeout=300)
            assert r["failures"] == 0, r
            rows[kind] = r
        return rows
    finally:
        d.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("--watch-n", type=int, default=300)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="loft-etcd-bench-", dir="/tmp")
    cluster = etcdlib.EtcdCluster(os.path.join(base, "cluster"), NET)
    try:
        cluster.start()
        leader = cluster.leader()
        follower = [m for m in cluster.members if m is not leader][0]
        by_leader = run(cluster, leader, args.n, args.watch_n)
        by_follower = run(cluster, follower, args.n, args.watch_n)
    finally:
        cluster.stop()
        etcdlib.rmtree(base)
    names = {"put": "put", "txn": "txn create-if-absent", "range": "range, linearizable",
             "watch": "put → event on a watch at another member"}
    print("| operation | requests to the leader: p50 / p99 ms | "
          "requests to a follower: p50 / p99 ms |")
    print("| --- | --- | --- |")
    for kind in ("put", "txn", "range", "watch"):
        a, b = by_leader[kind], by_follower[kind]
        print("| %s (n=%d) | %.2f / %.2f | %.2f / %.2f |" % (
            names[kind], a["n"], a["p50"], a["p99"], b["p50"], b["p99"]))


if __name__ == "__main__":
    main()
