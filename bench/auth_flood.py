"""A flood of logins with expensive hashes from clients that give up.

  make bench-auth                  (as root; or: python3 bench/auth_flood.py)

Flooders connect from one address, read the greeting, send a LOGIN with a
wrong password for a user whose hash takes about --hash-ms to verify, and
close at once, as fast as they can for --seconds. Meanwhile a well-behaved
client on another address logs in (a slow hash too) one login after the
other, each through to the backend (bench/backend) and out.

Printed per scenario: flood connections, the good client's logins (how
many succeeded, p50 and max time), and the CPU time of loftd's worker
threads (from /proc/<pid>/task) during the flood; then one more good
login right after the flood, which waits for whatever the flood left
queued, and the worker time meanwhile. A good login still waiting when
the flood ends counts with its final outcome (login.timeout is 30 s). The good logins' own share is their count
times one hash (measured before the flood); what is left is worker time
spent on sessions that had already closed.

Scenarios: "penalty" (the default auth.penalty = true) and "no-penalty"
(auth.penalty = false: a flood from many addresses looks like this)."""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CONF = """\
base_dir = "{dir}/run";
state_dir = "";
allow_root = true;
listeners = ( {{ protocol = "imap"; address = "{ip}"; port = {port}; }} );
login = {{ timeout = "30s"; disable_plaintext_auth = false; }};
auth = {{ penalty = {penalty}; workers = {workers}; }};
passdb = ( {{ driver = "passwd-file"; path = "{users}"; }} );
director = {{ mail_servers = [ "{backend_ip}" ]; }};
backend = {{ imap_port = {backend_port}; }};
log = {{ level = "warning"; }};
"""
CLK_TCK = os.sysconf("SC_CLK_TCK")


def slow_hash(ms):
    """A SHA512-CRYPT hash of "pass" that takes about ms to verify."""
    rounds = max(1000, int(ms * 4000))  # ~0.25 µs per round on this kind of machine
    return subprocess.run(["doveadm", "pw", "-s", "SHA512-CRYPT", "-r", str(rounds),
                           "-p", "pass"], capture_output=True, text=True,
                          check=True).stdout.strip()


def worker_cpu(pid):
    """CPU seconds of every thread of pid but the main one (the loop)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        if int(tid) == pid:
            continue
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])   # utime, stime
    return total / CLK_TCK


def read_line(sock, buf):
    while b"\n" not in buf[0]:
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError("closed")
        buf[0] += chunk
    line, buf[0] = buf[0].split(b"\n", 1)
    return line.decode(errors="replace")


FAILURES = {}


def good_login(ip, port, source, timeout=30):
    """One login through to the backend; (ok, seconds)."""
    start = time.monotonic()
    line = "connection failed"
    try:
        with socket.create_connection((ip, port), timeout, (source, 0)) as s:
            buf = [b""]
            read_line(s, buf)
            s.sendall(b"a LOGIN good pass\r\n")
            while True:
                line = read_line(s, buf)
                if line.startswith("a "):
                    break
            ok = line.startswith("a OK")
            s.sendall(b"b LOGOUT\r\n")
            while not read_line(s, buf).startswith("b "):
                pass
    except (OSError, EOFError) as e:
        ok = False
        line = "%s (%s)" % (line, e)
    if not ok:
        FAILURES[line] = FAILURES.get(line, 0) + 1
    return ok, time.monotonic() - start


class Flooder(threading.Thread):
    def __init__(self, ip, port, source, until):
        super().__init__(daemon=True)
        self.ip, self.port, self.source, self.until = ip, port, source, until
        self.count = 0

    def run(self):
        while time.monotonic() < self.until:
            try:
                s = socket.create_connection((self.ip, self.port), 5, (self.source, 0))
                buf = [b""]
                read_line(s, buf)
                s.sendall(b"a LOGIN victim wrong\r\n")
                s.close()
                self.count += 1
            except (OSError, EOFError):
                time.sleep(0.01)   # refused (limits): try again


class GoodClient(threading.Thread):
    """Logs in, one login after the other, until the flood ends."""

    def __init__(self, ip, port, source, until):
        super().__init__(daemon=True)
        self.ip, self.port, self.source, self.until = ip, port, source, until
        self.results = []

    def run(self):
        while time.monotonic() < self.until:
            self.results.append(good_login(self.ip, self.port, self.source))


def wait_port(ip, port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("loftd exited %d" % proc.returncode)
        try:
            socket.create_connection((ip, port), 1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("loftd did not listen")


def scenario(args, name, penalty, users, work):
    net = args.net
    ip, backend_ip = net + ".61", net + ".62"
    flood_src, good_src = net + ".63", net + ".64"
    conf = os.path.join(work, "loft-%s.conf" % name)
    with open(conf, "w") as f:
        f.write(CONF.format(dir=work, ip=ip, port=args.port, users=users,
                            penalty="true" if penalty else "false",
                            workers=args.workers, backend_ip=backend_ip,
                            backend_port=args.port + 1))
    log = open(os.path.join(work, "loftd-%s.log" % name), "wb")
    backend = subprocess.Popen([os.path.join(args.build, "bench", "backend"), "-l",
                                "%s:%d" % (backend_ip, args.port + 1)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = subprocess.Popen([os.path.join(args.build, "loftd"), "-c", conf],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(ip, args.port, proc)
        # one hash: the worker time of a few quiet logins
        cpu0 = worker_cpu(proc.pid)
        quiet = [good_login(ip, args.port, good_src) for _ in range(10)]
        assert all(ok for ok, _ in quiet), "a quiet login failed"
        one_hash = (worker_cpu(proc.pid) - cpu0) / len(quiet)

        cpu_start = worker_cpu(proc.pid)
        until = time.monotonic() + args.seconds
        flooders = [Flooder(ip, args.port, flood_src, until) for _ in range(args.flooders)]
        good = GoodClient(ip, args.port, good_src, until)
        for t in flooders + [good]:
            t.start()
        time.sleep(max(0.0, until - time.monotonic()))
        cpu_flood = worker_cpu(proc.pid) - cpu_start
        for t in flooders:
            t.join(10)
        # what the flood left queued: a login right after it waits for that
        after_ok, after_s = good_login(ip, args.port, good_src)
        cpu_after = worker_cpu(proc.pid) - cpu_start - cpu_flood
        good.join(60)
        good = good.results
    finally:
        proc.terminate()
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        backend.terminate()
        backend.wait(10)
        log.close()
    times = [t for ok, t in good if ok]
    ok = len(times)
    return {
        "scenario": name,
        "flood": sum(t.count for t in flooders),
        "good": "%d of %d" % (ok, len(good)),
        "good_p50_ms": round(statistics.median(times) * 1000) if times else None,
        "good_max_ms": round(max(t for _, t in good) * 1000) if good else None,
        "one_hash_ms": round(one_hash * 1000, 1),
        "cpu_flood": round(cpu_flood, 2),
        "cpu_good": round(ok * one_hash, 2),
        "cpu_closed": round(max(0.0, cpu_flood - ok * one_hash), 2),
        "after": "%d ms" % round(after_s * 1000) if after_ok else
                 "failed after %d ms" % round(after_s * 1000),
        "cpu_after": round(cpu_after, 2),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--net", default="127.0.0", help="loopback /24 to use (.61-.64)")
    ap.add_argument("--port", type=int, default=32143)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--flooders", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--hash-ms", type=float, default=50.0)
    ap.add_argument("--scenario", choices=["penalty", "no-penalty", "both"],
                    default="both")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="loft-bench-auth-")
    try:
        h = slow_hash(args.hash_ms)
        users = os.path.join(work, "users")
        with open(users, "w") as f:
            f.write("victim:%s\ngood:%s\n" % (h, h))
        results = []
        for name, penalty in (("penalty", True), ("no-penalty", False)):
            if args.scenario in (name, "both"):
                results.append(scenario(args, name, penalty, users, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("loftd %s; %d workers; %d flooders for %.0f s" % (
        os.path.join(args.build, "loftd"), args.workers, args.flooders, args.seconds))
    print("| scenario | flood logins | good logins ok | good p50 ms | good max ms "
          "| one hash ms | worker CPU s in flood | of it good logins | of it closed "
          "sessions | a login after the flood | worker CPU s meanwhile |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print("| %(scenario)s | %(flood)d | %(good)s | %(good_p50_ms)s | %(good_max_ms)s "
              "| %(one_hash_ms)s | %(cpu_flood)s | %(cpu_good)s | %(cpu_closed)s "
              "| %(after)s | %(cpu_after)s |" % r)
    for line, n in FAILURES.items():
        print("good logins that failed: %d x %s" % (n, line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
