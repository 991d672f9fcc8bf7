"""A first look at loftd's cost, with Python clients (too slow to load a C
proxy; the C load generator of the benchmark issue replaces this).

  sudo /usr/bin/python3 bench/first_look.py [--cycles N] [--clients C] [--idle M]

Starts three private Dovecot backends and loftd (build/loftd), then
1. runs N login cycles (connect, greeting, LOGIN, LOGOUT) from C threads,
   directly against the backends and through loftd, and reports cycles/s
   and loftd's CPU per login (utime+stime from /proc);
2. holds M idle logged-in sessions through loftd and reports loftd's RSS
   growth per session."""
import argparse
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "integration"))
import loftlib  # noqa: E402

NET = "127.0.4"


def cycle(host, port, user, src):
    s = socket.create_connection((host, port), 10, source_address=(src, 0))
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"a LOGIN %s pass\r\n" % user.encode())
    while not f.readline().startswith(b"a "):
        pass
    s.sendall(b"b LOGOUT\r\n")
    while not f.readline().startswith(b"b "):
        pass
    s.close()


def run_cycles(targets, n, clients):
    done = [0]
    lock = threading.Lock()

    def worker(k):
        i = k
        while True:
            with lock:
                if done[0] >= n:
                    return
                done[0] += 1
            host, port = targets[i % len(targets)]
            cycle(host, port, "user%d" % (1 + i % 100), "%s.%d" % (NET, 100 + k))
            i += clients
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return n / (time.monotonic() - t0)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--idle", type=int, default=500)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="loft-bench-", dir="/tmp")
    ips = ["%s.%d" % (NET, i) for i in (11, 12, 13)]
    cluster = loftlib.Cluster(base, ips, 20143, {"user%d" % i: "pass" for i in range(1, 101)},
                              ssl="no")
    loft = loftlib.Loftd(base, "%s.1" % NET, 10143, 10993, cluster, log_level="warning")
    try:
        cluster.start()
        loft.start()
        pid = loft.proc.pid
        backends = [(ip, 20143) for ip in ips]
        run_cycles(backends, 200, args.clients)  # warm up the backends
        direct = run_cycles(backends, args.cycles, args.clients)
        cpu0 = cpu_seconds(pid)
        proxied = run_cycles([(loft.ip, loft.port)], args.cycles, args.clients)
        cpu = cpu_seconds(pid) - cpu0
        print("login cycles/s, %d clients: direct %.0f, through loftd %.0f (ratio %.2f)"
              % (args.clients, direct, proxied, proxied / direct))
        print("loftd CPU per login: %.3f ms" % (cpu * 1000 / args.cycles))

        rss0 = rss_kib(pid)
        held = []
        for i in range(args.idle):
            s = socket.create_connection((loft.ip, loft.port), 10,
                                         source_address=("%s.%d" % (NET, 100 + i % 50), 0))
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"a LOGIN user%d pass\r\n" % (1 + i % 100))
            while not f.readline().startswith(b"a "):
                pass
            held.append((s, f))
        rss1 = rss_kib(pid)
        print("loftd RSS: %d KiB idle, %d KiB with %d idle sessions: %.1f KiB per session"
              % (rss0, rss1, args.idle, (rss1 - rss0) / args.idle))
        for s, _ in held:
            s.close()
    finally:
        loft.stop()
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
