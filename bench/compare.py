"""loft side by side with the proxies people would pick instead, each in
front of the same bench backend (bench/backend), loaded by bench/loadgen.

  make bench         python3 bench/compare.py            (as root)
  make bench-tls     python3 bench/compare.py --tls-only
  make bench-lmtp    python3 bench/compare.py --lmtp-only
  make bench-quick   python3 bench/compare.py --quick
  (by hand)          python3 bench/compare.py --tail [--before <build>]

Figures, for every system in the same run (rounds interleaved, medians):
logins/s at fixed concurrency, latency p50/p99/p99.9 and the proxy's CPU
per 1000 logins; memory per idle logged-in session (PSS growth of the
proxy's processes / sessions); relay MB/s and CPU per GB; kicking every
session by mask. The TLS part (issue 17) does the login cycles again over
implicit TLS and STARTTLS, full and resumed handshakes, TLS 1.3 and 1.2,
with an ECDSA P-256 and an RSA-2048 certificate made for the run, counts
the handshakes that resumed, and holds idle TLS sessions. The LMTP part
(issue 17, its own run: --lmtp-only) delivers through loft, through
Dovecot's LMTP proxy and through HAProxy relaying TCP (the floor of any
proxy: no routing) against direct delivery to the backend, with 1 and
10 recipients and 4 KiB and 100 KiB messages: deliveries/s, transaction
latency, CPU per recipient, and the memory of connections held after
LHLO and mid-DATA. The tail part (--tail, its own run) measures login
latency closed-loop and then open-loop: cycles started at a fixed rate
(loadgen -A), 60 % of the slowest system's closed-loop logins/s, so the
percentiles are each proxy's at one load, not Little's law of a
saturated loop (make bench does not run it: 15 minutes). The full run
writes its sections of docs/BENCHMARKS.md; --quick runs loft and direct
with small numbers for a few seconds and only checks that the harness
works (never a speed), for `make check`."""
import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import loftlib  # noqa: E402

if "--quick" in sys.argv[1:] and not os.environ.get("LOFT_BENCH_NET"):
    # make check runs --quick, perhaps beside the demo, another suite or a
    # full bench: it takes two free nets of its own (harness.systems reads
    # them when imported, below)
    os.environ["LOFT_BENCH_NET"] = loftlib.free_net(2)
    os.environ["LOFT_BENCH_SOURCE_NET"] = loftlib.shifted_net(os.environ["LOFT_BENCH_NET"], 1)

from harness import procstat, report  # noqa: E402
from harness.peers import LMTP_PEERS, PEERS  # noqa: E402
from harness.systems import SOURCES, SYSTEMS, Backend, LoftBefore  # noqa: E402

KNOWN = dict(SYSTEMS, **PEERS, **LMTP_PEERS)	# every system, by name

# The TLS login cycles: label -> (loadgen options, certificate key type).
# -T implicit TLS (port 993's role), -s STARTTLS; -V the one version
# offered; -R offer the session the previous connection ended with; -N no
# tickets, so TLS 1.2 resumes by session id. The certificate's key only
# works in a full handshake: resumed cycles run with the ECDSA one.
ECDSA, RSA = "ec", "rsa:2048"
TLS_MODES = {
    "993 TLS 1.3 full ECDSA": (["-T", "-V", "1.3"], ECDSA),
    "993 TLS 1.3 full RSA": (["-T", "-V", "1.3"], RSA),
    "993 TLS 1.3 resumed (ticket)": (["-T", "-V", "1.3", "-R"], ECDSA),
    "993 TLS 1.2 full ECDSA, no tickets": (["-T", "-V", "1.2", "-N"], ECDSA),
    "993 TLS 1.2 resumed (session id)": (["-T", "-V", "1.2", "-N", "-R"], ECDSA),
    "993 TLS 1.2 resumed (ticket)": (["-T", "-V", "1.2", "-R"], ECDSA),
    "STARTTLS TLS 1.3 full ECDSA": (["-s", "-V", "1.3"], ECDSA),
    "STARTTLS TLS 1.3 full RSA": (["-s", "-V", "1.3"], RSA),
    "STARTTLS TLS 1.3 resumed (ticket)": (["-s", "-V", "1.3", "-R"], ECDSA),
    "STARTTLS TLS 1.2 resumed (session id)": (["-s", "-V", "1.2", "-N", "-R"], ECDSA),
}
# resumed cycles and the full ones their CPU is compared with
TLS_RESUMED = [("993 TLS 1.3 resumed (ticket)", "993 TLS 1.3 full ECDSA"),
               ("993 TLS 1.3 resumed (ticket)", "993 TLS 1.3 full RSA"),
               ("993 TLS 1.2 resumed (session id)", "993 TLS 1.2 full ECDSA, no tickets"),
               ("993 TLS 1.2 resumed (ticket)", "993 TLS 1.2 full ECDSA, no tickets"),
               ("STARTTLS TLS 1.3 resumed (ticket)", "STARTTLS TLS 1.3 full ECDSA")]

# the TLS cycles also run with p["many_clients"]
TLS_MANY_MODES = ["993 TLS 1.3 full ECDSA", "993 TLS 1.3 resumed (ticket)"]


def many(mode, p):
    """The label of a TLS mode's cycles with p's many clients."""
    return "%s, %d clients" % (mode, p["many_clients"])


# The LMTP transactions: (recipients, message bytes). The recipients of
# one are distinct random users of p["users"], so they spread over the
# backends.
LMTP_MODES = [(1, 4 << 10), (10, 4 << 10), (1, 100 << 10), (10, 100 << 10)]

PROFILES = {
    "quick": {"systems": ["direct", "loft"], "rounds": 1, "clients": 8, "seconds": 1.0,
              "many_clients": 16, "many_seconds": 1.0,
              "tls_many_modes": ["993 TLS 1.3 resumed (ticket)"],
              "users": 100, "idle": [200], "bulk_seconds": 1.0, "message": 1 << 20,
              "tls_modes": ["993 TLS 1.2 full ECDSA, no tickets",
                            "STARTTLS TLS 1.3 resumed (ticket)"],
              "tls_rounds": 1, "tls_seconds": 1.0,
              "lmtp_systems": ["direct", "loft"], "lmtp_modes": [(10, 4 << 10)],
              "lmtp_clients": 4, "lmtp_per_conn": 5, "lmtp_rounds": 1, "lmtp_seconds": 1.0,
              "lmtp_hold": 20, "lmtp_hold_size": 100 << 10, "lmtp_hold_rcpts": [1]},
    # --tail: login latency only, loft beside loft-before (--before) and
    # HAProxy with its default threads and with one, as loftd has one loop
    "tail": {"systems": ["loft", "haproxy", "haproxy-1t"], "rounds": 3, "clients": 32,
             "seconds": 5.0, "many_clients": 256, "many_seconds": 5.0, "users": 1000,
             "message": 1 << 20, "tls_modes": TLS_MANY_MODES, "tls_many_modes": TLS_MANY_MODES,
             "tls_rounds": 3, "tls_seconds": 4.0, "lmtp_systems": [],
             # then an open loop (loadgen -A) at open_load of the slowest
             # system's closed-loop logins/s at p["clients"], at most
             # many_clients in flight (issue 17: the tail at a fixed load)
             "open_modes": ["plain", "993 TLS 1.3 full ECDSA"], "open_load": 0.6,
             "open_seconds": 5.0},
    "full": {"systems": ["direct", "loft", "haproxy", "nginx", "dovecot", "perdition"],
             "rounds": 3, "clients": 32, "seconds": 10.0,
             # the latency tail under more clients than the loop has
             # events per epoll_wait() (issue 17)
             "many_clients": 256, "many_seconds": 5.0,
             "users": 1000, "idle": [10000, 100000], "bulk_seconds": 5.0,
             "message": 10 << 20,
             "tls_modes": list(TLS_MODES), "tls_rounds": 2, "tls_seconds": 4.0,
             "tls_many_modes": TLS_MANY_MODES,
             # 20 connections: Postfix's default_destination_concurrency_limit
             "lmtp_systems": ["direct", "haproxy-tcp", "loft", "dovecot-lmtp"],
             "lmtp_modes": LMTP_MODES,
             "lmtp_clients": 20, "lmtp_per_conn": 10, "lmtp_rounds": 3, "lmtp_seconds": 4.0,
             "lmtp_hold": 100, "lmtp_hold_size": 100 << 10, "lmtp_hold_rcpts": [1, 10]},
}


class Failure(Exception):
    pass


BACKEND = []	# the bench backend's pid, once started (its run-queue waits)


def loadgen(build, args, timeout):
    r = subprocess.run([os.path.join(build, "bench", "loadgen")] + args,
                       capture_output=True, text=True, timeout=timeout)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise Failure("loadgen %s: %s" % (" ".join(args), r.stderr.strip() or r.stdout))


def measured(system, fn):
    """Runs fn(); returns its result and the system's CPU seconds meanwhile."""
    before = procstat.cpu_seconds(system.roots())
    result = fn()
    return result, procstat.cpu_seconds(system.roots()) - before


def bench_logins(build, system, p, tls_args=(), seconds=None, clients=None, rate=None):
    """Login cycles for seconds (default p's) from clients (default p's);
    tls_args: loadgen's TLS options (TLS_MODES). With a rate, an open
    loop: cycles start at rate per second (Poisson), at most clients in
    flight."""
    seconds = seconds or p["seconds"]
    waits = [procstat.run_queue_seconds(system.roots()), procstat.run_queue_seconds(BACKEND)]
    open_loop = ["-A", "%g" % rate] if rate else []
    out, cpu = measured(system, lambda: loadgen(build, [
        "cycle", "-t", system.target("-T" in tls_args), "-c", str(clients or p["clients"]),
        "-d", str(seconds), "-u", str(p["users"]), "-S", SOURCES] + list(tls_args) + open_loop,
        seconds + 60))
    if out["errors"] or out["cycles"] == 0:
        raise Failure("%s: login cycles %s failed: %s" % (system.name, " ".join(tls_args),
                                                          out))
    out["cpu_ms_per_login"] = cpu * 1000.0 / out["cycles"] if system.roots() else None
    # Little's law: with every client always in a cycle, the mean latency
    # is clients / (cycles/s) whatever the proxy does; the p99 in units of
    # it is the tail's shape, apart from the throughput
    # (an open loop's clients are only a bound: no such law)
    if not rate:
        out["p99_per_mean"] = out["p99_ms"] * out["cycles_per_s"] / ((clients or p["clients"])
                                                                    * 1e3)
    else:
        # an arrival still in flight 10 s after the end has no latency:
        # it counts with those dropped
        out["dropped_pct"] = 100.0 * (out["dropped"] + out["unfinished"]) / out["offered"]
        out["late_pct"] = 100.0 * out["late"] / out["offered"]
    out["wait_ms_per_login"] = ((procstat.run_queue_seconds(system.roots()) - waits[0]) * 1000.0
                                / out["cycles"] if system.roots() else None)
    out["backend_wait_ms_per_login"] = ((procstat.run_queue_seconds(BACKEND) - waits[1])
                                        * 1000.0 / out["cycles"])
    if out["handshakes"]:
        out["resumed_pct"] = 100.0 * out["resumed"] / out["handshakes"]
    return out


def bench_bulk(build, system, p):
    out, cpu = measured(system, lambda: loadgen(build, [
        "bulk", "-t", system.target(), "-d", str(p["bulk_seconds"])], p["bulk_seconds"] + 60))
    if out["errors"] or out["bytes"] == 0:
        raise Failure("%s: bulk fetch failed: %s" % (system.name, out))
    out["cpu_s_per_gb"] = cpu / (out["bytes"] / 1e9) if system.roots() else None
    return out


def lmtp_label(rcpts, size):
    return "%d rcpt%s, %d KiB" % (rcpts, "" if rcpts == 1 else "s", size >> 10)


def bench_lmtp(build, system, p, rcpts, size):
    """LMTP transactions of rcpts recipients and size-byte messages for
    p's lmtp_seconds."""
    seconds = p["lmtp_seconds"]
    out, cpu = measured(system, lambda: loadgen(build, [
        "lmtp", "-t", system.lmtp_target(), "-c", str(p["lmtp_clients"]), "-d", str(seconds),
        "-r", str(rcpts), "-m", str(size), "-x", str(p["lmtp_per_conn"]),
        "-u", str(p["users"]), "-S", SOURCES], seconds + 60))
    if out["errors"] or out["deliveries"] == 0:
        raise Failure("%s: LMTP %s failed: %s" % (system.name, lmtp_label(rcpts, size), out))
    out["cpu_ms_per_rcpt"] = cpu * 1000.0 / out["deliveries"] if system.roots() else None
    return out


def hold_lmtp(build, system, n, stage, rcpts, size):
    """The growth of the system's private dirty memory (KiB) with n LMTP
    connections held at stage: "lhlo" after LHLO, "data" with all of a
    size-byte message to rcpts recipients sent but its final dot, once the
    system has read everything they sent. The messages are then
    delivered."""
    before = procstat.private_dirty_kib(system.roots())
    proc = subprocess.Popen([os.path.join(build, "bench", "loadgen"), "lmtp", "-H", stage,
                             "-t", system.lmtp_target(), "-c", str(n), "-r", str(rcpts),
                             "-m", str(size), "-S", SOURCES],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ready = proc.stdout.readline().split()
        if len(ready) != 3 or ready[0] != "READY" or ready[1] != str(n):
            raise Failure("%s: %d LMTP connections not held at %s: %s"
                          % (system.name, n, stage, ready))
        ip, port = system.lmtp_target().split(":")
        loftlib.wait_for(lambda: procstat.unread_bytes(ip, int(port)) == 0, 30,
                         "%s to read what its LMTP clients sent" % system.name)
        grown = procstat.private_dirty_kib(system.roots()) - before
    finally:
        proc.stdin.close()
        tail = proc.stdout.read()
        proc.wait(300)
    summary = json.loads(tail.strip().splitlines()[-1])
    if summary["errors"]:
        raise Failure("%s: held LMTP connections failed: %s" % (system.name, summary))
    return grown


def hold_sessions(build, system, n, tls, then):
    """Holds n idle logged-in sessions; calls then() while they are held
    and returns (PSS KiB per session, then()'s result, login seconds)."""
    mem_before = procstat.pss_kib(system.roots())
    args = ["idle", "-t", system.target(tls), "-c", str(n), "-S", SOURCES]
    if tls:
        args.append("-T")
    proc = subprocess.Popen([os.path.join(build, "bench", "loadgen")] + args,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ready = proc.stdout.readline().split()
        if len(ready) != 3 or ready[0] != "READY" or ready[1] == "0":
            raise Failure("%s: %d sessions not held: %s" % (system.name, n, ready))
        held = int(ready[1])
        if held != n and system.name == "loft":
            raise Failure("loft: only %d of %d sessions held" % (held, n))
        # a peer that refuses some is reported with what it held
        per_session = (procstat.pss_kib(system.roots()) - mem_before) / held
        if held != n:
            per_session = (per_session, "%d of %d held" % (held, n))
        result = then()
    finally:
        proc.stdin.close()
        tail = proc.stdout.read()
        proc.wait(300)
    summary = json.loads(tail.strip().splitlines()[-1])
    return per_session, result, summary["login_seconds"]


def idle_sizes(wanted):
    """The idle-session counts this machine allows: a proxy holds two
    descriptors per session, and RLIMIT_NOFILE's hard limit can only be
    raised with CAP_SYS_RESOURCE (which containers often lack)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1048576, 1048576))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    most = (limit - 1000) // 2 // 1000 * 1000
    sizes = sorted({min(n, most) for n in wanted})
    if len(sizes) < len(wanted) and sizes[0] > 1000:
        sizes.insert(0, 1000)	# still two points to see how it scales
    return sizes


class Started:
    """The named systems, started with key_type certificates, for a
    with block; stopped at its end even if they only half started."""

    def __init__(self, build, base, names, key_type=RSA):
        self.systems = [KNOWN[name](build, base) for name in names]
        for s in self.systems:
            s.key_type = key_type
        self.started = []

    def __enter__(self):
        try:
            for s in self.systems:
                self.started.append(s)
                s.start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self.systems

    def __exit__(self, *exc):
        for s in reversed(self.started):
            s.stop()
        self.started = []


def hold_idle(build, s, p, results, tls):
    """Memory per idle session at each of p's sizes; the largest plain
    one is also kicked by mask where the system can."""
    for n in p["idle"]:
        if n > getattr(s, "max_idle", n):
            continue
        kick = s.kick and not tls and n == max(p["idle"])
        per, kicked, _ = hold_sessions(build, s, n, tls, s.kick_all if kick else lambda: None)
        results[s.name]["tls_idle" if tls else "idle"][n] = per
        if kicked is not None:
            if kicked[0] != n:
                raise Failure("%s: kicked %d of %d" % (s.name, kicked[0], n))
            results[s.name]["kick"] = {"sessions": n, "seconds": kicked[1]}


def run_plain(build, base, p, results):
    with Started(build, base, p["systems"]) as systems:
        for _ in range(p["rounds"]):
            for s in systems:
                results[s.name]["logins"].append(bench_logins(build, s, p))
            for s in systems:
                results[s.name]["logins_many"].append(bench_logins(
                    build, s, p, seconds=p["many_seconds"], clients=p["many_clients"]))
        for _ in range(p["rounds"]):
            for s in systems:
                results[s.name]["bulk"].append(bench_bulk(build, s, p))
        for s in systems:
            if s.roots():
                hold_idle(build, s, p, results, False)


def run_tls(build, base, p, results):
    """The TLS login cycles, every system started once per certificate
    key type; the idle TLS sessions with the ECDSA certificate."""
    names = [n for n in p["systems"] if KNOWN[n].tls]
    for key_type in (ECDSA, RSA):
        modes = [m for m in p["tls_modes"] if TLS_MODES[m][1] == key_type]
        if not modes and key_type != ECDSA:
            continue
        with Started(build, base, names, key_type) as systems:
            for _ in range(p["tls_rounds"]):
                for mode in modes:
                    args = TLS_MODES[mode][0]
                    for s in systems:
                        if "-s" in args and not s.starttls:
                            continue
                        results[s.name]["tls"].setdefault(mode, []).append(
                            bench_logins(build, s, p, args, p["tls_seconds"]))
                        if mode in p["tls_many_modes"]:
                            results[s.name]["tls"].setdefault(many(mode, p), []).append(
                                bench_logins(build, s, p, args, p["tls_seconds"],
                                             p["many_clients"]))
            if key_type == ECDSA:
                for s in systems:
                    hold_idle(build, s, p, results, True)


def run_lmtp(build, base, p, results):
    """The LMTP transactions, rounds interleaved over the systems; then the
    memory held, each figure on freshly started systems (so that no
    figure reuses memory the one before freed)."""
    names = p["lmtp_systems"]
    with Started(build, base, names) as systems:
        for _ in range(p["lmtp_rounds"]):
            for rcpts, size in p["lmtp_modes"]:
                for s in systems:
                    results[s.name]["lmtp"].setdefault(lmtp_label(rcpts, size), []).append(
                        bench_lmtp(build, s, p, rcpts, size))
    held = [("lhlo", 1)] + [("data", r) for r in p["lmtp_hold_rcpts"]]
    n = p["lmtp_hold"]
    proxies = [m for m in names if m != "direct"]	# direct has no process of its own
    for stage, rcpts in held:
        with Started(build, base, proxies) as systems:
            for s in systems:
                kib = hold_lmtp(build, s, n, stage, rcpts, p["lmtp_hold_size"])
                results[s.name]["lmtp_mem"][(stage, rcpts)] = kib / n


def closed_runs(r, mode):
    """A system's closed-loop login cycles of mode ("plain" or a TLS mode)
    with p's clients."""
    return r["logins"] if mode == "plain" else r["tls"].get(mode, [])


def open_label(mode, rate):
    return "%s, open loop %d/s" % (mode, rate)


def run_tail(build, base, p, results):
    """Login cycles only, plain and 993 TLS 1.3, with p's clients and
    many_clients, every figure's rounds interleaved over the systems;
    then p's open_modes in an open loop at a rate open_load of the
    slowest system's closed-loop logins/s (p["open_rates"])."""
    names = p["systems"]
    modes = [([], p["seconds"], "logins", "logins_many")] + [
        (TLS_MODES[m][0], p["tls_seconds"], m, many(m, p)) for m in p["tls_modes"]]
    with Started(build, base, names, ECDSA) as systems:
        for r in range(p["rounds"]):
            for args, seconds, few, lots in modes:
                for clients, key in ((p["clients"], few), (p["many_clients"], lots)):
                    for s in (systems if r % 2 == 0 else systems[::-1]):
                        out = bench_logins(build, s, p, args, seconds, clients)
                        if args:
                            results[s.name]["tls"].setdefault(key, []).append(out)
                        else:
                            results[s.name][key].append(out)
        p["open_rates"] = {}
        for mode in p.get("open_modes", []):
            capacity = min(statistics.median(o["cycles_per_s"]
                                             for o in closed_runs(results[s.name], mode))
                           for s in systems)
            rate = max(10, int(round(p["open_load"] * capacity, -1)))
            p["open_rates"][mode] = (rate, capacity)
            args = TLS_MODES[mode][0] if mode != "plain" else []
            for r in range(p["rounds"]):
                for s in (systems if r % 2 == 0 else systems[::-1]):
                    out = bench_logins(build, s, p, args, p["open_seconds"],
                                       p["many_clients"], rate)
                    results[s.name]["open"].setdefault(open_label(mode, rate), []).append(out)


def run(args):
    """Runs the parts args asks for; returns the profile, the systems of
    the login parts, those of the LMTP part, and every system's results."""
    p = dict(PROFILES["quick" if args.quick else "tail" if args.tail else "full"])
    if args.before:
        LoftBefore.build = os.path.abspath(args.before)
        p["systems"] = ["loft-before"] + p["systems"]
        if p["lmtp_systems"]:	# --lmtp-only: the LMTP figures of both builds
            p["lmtp_systems"] = ["loft-before"] + p["lmtp_systems"]
    if args.systems:
        wanted = args.systems.split(",")
        p["systems"] = [n for n in wanted if not KNOWN[n].lmtp_only]
        p["lmtp_systems"] = [n for n in wanted if KNOWN[n].lmtp]
    build = os.path.abspath(args.build)
    p["idle"] = idle_sizes(p.get("idle", []))
    base = tempfile.mkdtemp(prefix="loft-bench-")
    lmtp = args.lmtp_only or args.quick
    backend = Backend(build, base, p["message"], lmtp=lmtp)
    systems = [KNOWN[name] for name in p["systems"]]
    lmtp_systems = [KNOWN[name] for name in p["lmtp_systems"]]
    results = {s.name: {"logins": [], "logins_many": [], "bulk": [], "idle": {}, "tls": {},
                        "tls_idle": {}, "lmtp": {}, "lmtp_mem": {}, "open": {}}
               for s in systems + lmtp_systems}
    try:
        backend.start()
        BACKEND[:] = [backend.proc.pid]
        if args.tail:
            run_tail(build, base, p, results)
        elif not args.tls_only and not args.lmtp_only:
            run_plain(build, base, p, results)
        if not args.no_tls and not args.lmtp_only and not args.tail:
            run_tls(build, base, p, results)
        if lmtp:
            run_lmtp(build, base, p, results)
    finally:
        backend.stop()
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return p, systems, lmtp_systems, results


def machine():
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return "%d CPUs, %.0f GiB, kernel %s" % (os.cpu_count(), mem_kib / 1048576,
                                             platform.release())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="loft and direct, small, no report")
    ap.add_argument("--systems", help="comma-separated subset (default: all of the profile)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "BENCHMARKS.md"))
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    part = ap.add_mutually_exclusive_group()
    part.add_argument("--tls-only", action="store_true", help="only the TLS part")
    part.add_argument("--no-tls", action="store_true", help="without the TLS part")
    part.add_argument("--lmtp-only", action="store_true",
                      help="only the LMTP part (not in the default run, for time)")
    part.add_argument("--tail", action="store_true",
                      help="only login latency, plain and TLS, few and many clients, "
                      "beside HAProxy with one thread (and --before)")
    ap.add_argument("--before", help="a second loftd build, system loft-before")
    args = ap.parse_args()
    t0 = time.monotonic()
    try:
        p, systems, lmtp_systems, results = run(args)
    except Failure as e:
        print("bench: %s" % e, file=sys.stderr)
        return 1
    command = "python3 bench/compare.py" + (" --quick" if args.quick else "") + \
        (" --systems " + args.systems if args.systems else "") + \
        (" --tls-only" if args.tls_only else "") + (" --no-tls" if args.no_tls else "") + \
        (" --lmtp-only" if args.lmtp_only else "") + (" --tail" if args.tail else "") + \
        (" --before <the build of the commit before>" if args.before else "")
    date = datetime.date.today().isoformat()
    parts = []
    if args.tail:
        parts.append((report.TAIL, report.render_tail(command, date, machine(), p, systems,
                                                      results, statistics.median, many,
                                                      open_label)))
    elif not args.tls_only and not args.lmtp_only:
        parts.append((report.PLAIN, report.render(command, date, machine(), p, systems,
                                                  results, statistics.median)))
    if not args.no_tls and not args.lmtp_only and not args.tail:
        parts.append((report.TLS, report.render_tls(
            command, date, machine(), p, [s for s in systems if s.tls], results,
            statistics.median, list(TLS_MODES), TLS_RESUMED, many)))
    if args.lmtp_only or args.quick:
        parts.append((report.LMTP, report.render_lmtp(
            command, date, machine(), p, lmtp_systems, results, statistics.median,
            lmtp_label)))
    for section, text in parts:
        print(text)
        if not args.quick:
            report.write_section(args.out, section, text)
    print("bench: done in %.0f s" % (time.monotonic() - t0), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
