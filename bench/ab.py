"""A/B of two loftd builds on the login and relay paths, in one run:

  python3 bench/ab.py --a <build dir> --b <build dir> [--rounds 3]
        [--clients 32] [--seconds 5] [--bulk-seconds 5]
        [--b-scrape-ms MS]                                   (as root)

Each round runs A then B (then B then A, alternating), each a fresh loftd
in front of the same bench backend (bench/harness): `loadgen cycle` (logins
per second, loftd's CPU per login from /proc) and `loadgen bulk` (MB/s,
loftd's CPU per GB). Prints every round and the medians with B's ratio to
A. The machines are shared and noisy: compare ratios of one run, never
figures of different runs. The load generator and the backend come from
--tools (default: B's build). --b-scrape-ms gives B's loftd a metrics
endpoint and scrapes it every MS milliseconds while B is measured (A may
be the same build: the A/B of the scrape alone)."""
import argparse
import os
import statistics
import sys
import tempfile
import threading
import shutil
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare  # noqa: E402
from harness.systems import Backend, Loft  # noqa: E402


METRICS_PORT = 19101


class Scraper(threading.Thread):
    """GETs loftd's /metrics every interval until stopped; counts them."""

    def __init__(self, ip, interval_ms):
        super().__init__(daemon=True)
        self.url = "http://%s:%d/metrics" % (ip, METRICS_PORT)
        self.interval = interval_ms / 1000.0
        self.halt = threading.Event()
        self.scrapes = 0
        self.bytes = 0

    def run(self):
        while not self.halt.wait(self.interval):
            with urllib.request.urlopen(self.url, timeout=5) as r:
                self.bytes += len(r.read())
            self.scrapes += 1


def one(build, tools, base, p, scrape_ms=None):
    system = Loft(build, os.path.join(base, os.path.basename(os.path.normpath(build))))
    if scrape_ms:
        system.extra_conf = 'metrics = { address = "%s"; port = %d; };\n' % (
            system.ip, METRICS_PORT)
    system.start()
    scraper = Scraper(system.ip, scrape_ms) if scrape_ms else None
    try:
        if scraper:
            scraper.start()
        logins = compare.bench_logins(tools, system, p)
        bulk = compare.bench_bulk(tools, system, p)
    finally:
        if scraper:
            scraper.halt.set()
            scraper.join()
            print("  (%d scrapes of %d bytes)" % (scraper.scrapes,
                  scraper.bytes // max(scraper.scrapes, 1)), flush=True)
        system.stop()
    return {"logins/s": logins["cycles"] / p["seconds"],
            "cpu ms/login": logins["cpu_ms_per_login"],
            "p99 ms": logins.get("p99_ms"),
            "MB/s": bulk["bytes"] / 1e6 / p["bulk_seconds"],
            "cpu s/GB": bulk["cpu_s_per_gb"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--tools")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--bulk-seconds", type=float, default=5.0)
    ap.add_argument("--b-scrape-ms", type=float,
                    help="B serves metrics, scraped this often while measured")
    args = ap.parse_args()
    tools = os.path.abspath(args.tools or args.b)
    builds = {"A": os.path.abspath(args.a), "B": os.path.abspath(args.b)}
    p = {"clients": args.clients, "seconds": args.seconds, "users": 1000,
         "bulk_seconds": args.bulk_seconds}
    base = tempfile.mkdtemp(prefix="loft-ab-")
    backend = Backend(tools, base, 10 << 20)
    results = {"A": [], "B": []}
    try:
        backend.start()
        for r in range(args.rounds):
            order = ["A", "B"] if r % 2 == 0 else ["B", "A"]
            for name in order:
                res = one(builds[name], tools, os.path.join(base, "%s%d" % (name, r)), p,
                          args.b_scrape_ms if name == "B" else None)
                results[name].append(res)
                print("round %d %s: %s" % (r + 1, name, ", ".join(
                    "%s %.3f" % (k, v) for k, v in res.items() if v is not None)),
                    flush=True)
    finally:
        backend.stop()
        shutil.rmtree(base, ignore_errors=True)
    print("\nmedians (B/A):")
    for key in results["A"][0]:
        if results["A"][0][key] is None:
            continue
        a = statistics.median(x[key] for x in results["A"])
        b = statistics.median(x[key] for x in results["B"])
        print("  %-14s A %10.3f  B %10.3f  B/A %.3f" % (key, a, b, b / a if a else 0))


if __name__ == "__main__":
    main()
