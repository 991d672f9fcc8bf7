"""Where a slow login's time goes inside loftd: the latency tail of issue 17.

  make bench-tail     (builds build-bench with BENCH_HOOKS=1, then:)
  python3 bench/tail.py --build build-bench[,other bench build...]
                        [--clients 32,256] [--seconds 5] [--rounds 1]
                        [--rate N]                                     (as root)

Runs a bench build of loftd (make BENCH_HOOKS=1: src/common/bench_trace.h)
in front of the bench backend, loads it with `loadgen cycle`, and reads
back what the bench build recorded: every loop turn (from epoll_wait()'s
return to its next call, and the events it returned) and every login's
timeline (accept, LOGIN read, auth done, backend connected, backend
greeting, backend OK and the client's OK, LOGOUT read, close), each step
also with the start of the loop turn it ran in. For the slowest 1% and
0.1% of logins (by loftd's own accept-to-close time) it prints the mean
of each step's share, split into the time the ready descriptor waited
behind the turn's other callbacks ("in-turn") and the rest (waiting for
the client, the backend, or the CPU). Beside it, from
/proc/<pid>/schedstat, how long each process (loftd, the backend, the
load generator) was runnable but not running, per login: the scheduler's
share of the latency on a machine whose cores they share. Several builds
(e.g. one of the commit before a change, made with BENCH_HOOKS=1 in a
worktree of its own) are measured in turn, round after round, in front of
the same backend; the load generator and the backend are the first
build's. With --rate, an open loop: login cycles start at N per second
(Poisson, loadgen -A), at most --clients in flight, as in compare.py
--tail's open-loop rows."""
import argparse
import os
import statistics
import subprocess
import sys
import shutil
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
os.environ.setdefault("LOFT_BENCH_NET", "127.0.6")
import compare  # noqa: E402
from harness.systems import SOURCES, Backend, Loft  # noqa: E402

STEPS = ["accept", "LOGIN read", "auth done", "backend connected", "backend greeting",
         "backend OK, client OK", "LOGOUT read", "close"]


def schedstat(pid):
    """(ns on a CPU, ns runnable and waiting) of every thread of pid."""
    run = wait = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                a, b, _ = f.read().split()
            run += int(a)
            wait += int(b)
    except OSError:
        pass
    return run, wait


class Watch(threading.Thread):
    """The last schedstat of a process that may exit any time."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.last, self.halt = pid, (0, 0), threading.Event()

    def run(self):
        while not self.halt.is_set():
            s = schedstat(self.pid)
            if s != (0, 0):
                self.last = s
            time.sleep(0.02)


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))]


def parse(path):
    turns, logins = [], []
    with open(path) as f:
        for line in f:
            w = line.split()
            if w[0] == "turn":
                turns.append((int(w[1]), int(w[2])))
            elif w[0] == "login":
                v = [int(x) for x in w[1:]]
                logins.append((v[:len(STEPS)], v[len(STEPS):]))
    return turns, logins


def breakdown(logins, share):
    """Mean per step (ms) of the slowest share of logins by accept->close:
    (in-turn wait, the rest)."""
    done = [lg for lg in logins if lg[0][-1] > 0]
    done.sort(key=lambda lg: lg[0][-1])
    tail = done[int(len(done) * (1 - share)):] or done[-1:]
    rows = []
    for i in range(1, len(STEPS)):
        gaps, waits = [], []
        for at, turn in tail:
            if at[i] < 0 or at[i - 1] < 0:
                continue
            gaps.append(at[i] - at[i - 1])
            # behind the other callbacks of its turn, since the turn
            # began or, within the turn of the step before, since that
            waits.append(at[i] - max(turn[i], at[i - 1]) if turn[i] >= 0 else 0)
        if gaps:
            rows.append((STEPS[i - 1] + " -> " + STEPS[i], statistics.mean(waits) / 1e6,
                         statistics.mean(gaps) / 1e6 - statistics.mean(waits) / 1e6))
    return len(tail), statistics.mean(at[-1] for at, _ in tail) / 1e6, rows


def one(build, tools, base, clients, seconds, users, rate):
    trace = os.path.join(base, "trace")
    os.environ["LOFT_BENCH_TRACE"] = trace
    try:
        system = Loft(build, base)
        system.start()
    finally:
        del os.environ["LOFT_BENCH_TRACE"]
    backend_pid = BACKEND.proc.pid
    before = {"loftd": schedstat(system.proc.pid), "backend": schedstat(backend_pid)}
    proc = subprocess.Popen([os.path.join(tools, "bench", "loadgen"), "cycle", "-t",
                             system.target(), "-c", str(clients), "-d", str(seconds), "-u",
                             str(users), "-S", SOURCES] + (["-A", "%g" % rate] if rate else []),
                            stdout=subprocess.PIPE, text=True)
    w = Watch(proc.pid)
    w.start()
    out = proc.communicate(timeout=seconds + 60)[0]
    w.halt.set()
    w.join()
    after = {"loftd": schedstat(system.proc.pid), "backend": schedstat(backend_pid),
             "loadgen": w.last}
    before["loadgen"] = (0, 0)
    system.stop()
    summary = compare.json.loads(out.strip().splitlines()[-1])
    turns, logins = parse(trace)
    return summary, before, after, turns, logins


def report(name, clients, summary, before, after, turns, logins):
    n = summary["cycles"]
    print("\n== %s, %d clients: %d logins, %.0f/s; loadgen latency p50 %.2f p99 %.2f p99.9 %.2f ms"
          % (name, clients, n, summary["cycles_per_s"], summary["p50_ms"], summary["p99_ms"],
             summary["p999_ms"]))
    print("scheduler, per login (ms): process  on-CPU  runnable-but-waiting")
    sched = {}
    for proc in ("loftd", "backend", "loadgen"):
        sched[proc] = [(after[proc][i] - before[proc][i]) / 1e6 / n for i in (0, 1)]
        print("  %-8s %.3f  %.3f" % (proc, sched[proc][0], sched[proc][1]))
    busy = [t for t, e in turns if e > 0]
    ev = [e for t, e in turns if e > 0]
    print("loop turns with events: %d (%.1f per login), events per turn p50 %d p99 %d max %d"
          % (len(busy), len(busy) / max(n, 1), pct(ev, 50), pct(ev, 99), max(ev or [0])))
    print("  turn duration ms p50 %.3f p99 %.3f p99.9 %.3f max %.3f" % tuple(
        pct(busy, p) / 1e6 for p in (50, 99, 99.9, 100)))
    # the loop turns a login's steps ran in: each one more is a wait for
    # the loop to come round, behind every other ready descriptor
    hops = [len({x for x in turn if x >= 0}) for at, turn in logins if at[-1] > 0]
    print("loop turns per login (accept to close): mean %.2f" % statistics.mean(hops or [0]))
    spans = [at[-1] / 1e6 for at, _ in logins if at[-1] > 0]
    oks = [at[5] / 1e6 for at, _ in logins if at[5] > 0]
    print("loftd's own span ms (accept -> close): p50 %.2f p99 %.2f p99.9 %.2f; "
          "(accept -> client OK): p50 %.2f p99 %.2f p99.9 %.2f"
          % (pct(spans, 50), pct(spans, 99), pct(spans, 99.9), pct(oks, 50), pct(oks, 99),
             pct(oks, 99.9)))
    steps = {}
    for share in (0.5, 0.01, 0.001):
        k, mean, rows = breakdown(logins, share)
        print("slowest %g%% (%d logins, mean span %.2f ms), mean ms per step: in-turn / rest"
              % (share * 100, k, mean))
        for label, wait, rest in rows:
            print("  %-45s %7.3f  %7.3f" % (label, wait, rest))
            if share == 0.01:
                steps[label] = wait + rest
    return {"p99 ms": summary["p99_ms"], "p99.9 ms": summary["p999_ms"],
            "turns per login": statistics.mean(hops or [0]),
            "slowest 1%: LOGIN read -> auth done ms": steps.get(
                "LOGIN read -> auth done", float("nan")),
            "slowest 1%: backend connected -> greeting ms": steps.get(
                "backend connected -> backend greeting", float("nan")),
            "loftd on-CPU ms per login": sched["loftd"][0],
            "loftd run-queue wait ms per login": sched["loftd"][1]}


def summarize(rows):
    """The medians over the rounds, a Markdown table: a column per build
    and clients."""
    cols = list(rows)
    print("\n| median of the rounds | " + " | ".join(
        "%s, %d clients" % (os.path.basename(os.path.normpath(b)), c) for b, c in cols) + " |")
    print("| --- |" + " --- |" * len(cols))
    for key in rows[cols[0]][0]:
        print("| %s | %s |" % (key, " | ".join(
            "%.3f" % statistics.median(r[key] for r in rows[col]) for col in cols)))


BACKEND = None


def main():
    global BACKEND
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build-bench"))
    ap.add_argument("--clients", default="32,256")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--rate", type=float, help="logins started per second (open loop)")
    args = ap.parse_args()
    builds = [os.path.abspath(b) for b in args.build.split(",")]
    base = tempfile.mkdtemp(prefix="loft-tail-")
    BACKEND = Backend(builds[0], base, 1 << 20)
    try:
        BACKEND.start()
        run, rows = 0, {}
        clients = [int(x) for x in args.clients.split(",")]
        for b in builds:
            for c in clients:
                rows[(b, c)] = []
        for r in range(args.rounds):
            for c in clients:
                for b in (builds if r % 2 == 0 else builds[::-1]):
                    run += 1
                    rows[(b, c)].append(report(b, c, *one(
                        b, builds[0], os.path.join(base, str(run)), c, args.seconds,
                        args.users, args.rate)))
        summarize(rows)
    finally:
        BACKEND.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
