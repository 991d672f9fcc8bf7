"""How long the event loop stalls while loftd reloads a large passwd-file.

  make bench-passwd-reload    (as root; or: python3 bench/passwd_reload_lag.py)

A probe client sends NOOP before login, which loftd answers itself, one
after the other: each round trip is one loop turn away, so its time shows
how long the loop was busy elsewhere. Meanwhile the passwd-file (SIZE MB
of users) is rewritten and a LOGIN makes loftd notice it (a lookup stat()s
the file). Printed per round: the probe's round trips before the reload
(p50, max) and during it (max, p99), the LOGIN's answer time and how long
the reload took until its log line. No backend is needed: the LOGIN is for
an unknown user."""
import argparse
import json
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
login = {{ timeout = "10m"; disable_plaintext_auth = false; }};
auth = {{ penalty = false; }};
passdb = ( {{ driver = "passwd-file"; path = "{users}"; }} );
director = {{ mail_servers = [ "{ip}" ]; }};
log = {{ level = "info"; }};
"""
# a SHA512-CRYPT hash as `doveadm pw` writes it: the size of a real line
HASH = ("{SHA512-CRYPT}$6$zGRvnphoMKxWJ0ph$iYm3R7H6awT0FR6WKLCw1LQuRhDfzk0AjRD0UBU8"
        "K7UfojrK3lC5PR2wRoJvN7rBu8FIMyP0DzGGQN7dnqP3t.")


def write_users(path, size_mb, extra):
    line_len = len("user0000000:%s::::::\n" % HASH)
    count = size_mb * 1000000 // line_len
    with open(path + ".tmp", "w") as f:
        for i in range(count):
            f.write("user%07d:%s::::::\n" % (i, HASH))
        f.write("extra%d:%s::::::\n" % (extra, HASH))
    os.replace(path + ".tmp", path)
    return count + 1


def read_line(sock, buf):
    while b"\n" not in buf[0]:
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError("loftd closed the connection")
        buf[0] += chunk
    line, buf[0] = buf[0].split(b"\n", 1)
    return line


class Probe(threading.Thread):
    """NOOP round trips, back to back, with their end times."""

    def __init__(self, ip, port):
        super().__init__(daemon=True)
        self.sock = socket.create_connection((ip, port), 10)
        self.buf = [b""]
        read_line(self.sock, self.buf)
        self.samples = []   # (monotonic end, rtt seconds)
        self.stop = False

    def run(self):
        n = 0
        while not self.stop:
            n += 1
            tag = b"p%d" % n
            start = time.monotonic()
            self.sock.sendall(tag + b" NOOP\r\n")
            while not read_line(self.sock, self.buf).startswith(tag + b" "):
                pass
            end = time.monotonic()
            self.samples.append((end, end - start))
        self.sock.close()

    def rtts(self, t0, t1):
        return [r for end, r in self.samples if t0 <= end <= t1]


def wait_log(path, text, count, timeout):
    deadline = time.monotonic() + timeout
    while True:
        with open(path, errors="replace") as f:
            if f.read().count(text) >= count:
                return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError("no %r in %s" % (text, path))
        time.sleep(0.005)


def ms(x):
    return round(x * 1000, 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--ip", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=31143)
    ap.add_argument("--size-mb", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="loft-bench-passwd-")
    users = os.path.join(work, "users")
    log = os.path.join(work, "loftd.log")
    count = write_users(users, args.size_mb, 0)
    conf = os.path.join(work, "loft.conf")
    with open(conf, "w") as f:
        f.write(CONF.format(dir=work, ip=args.ip, port=args.port, users=users))
    logf = open(log, "wb")
    proc = subprocess.Popen([os.path.join(args.build, "loftd"), "-c", conf],
                            stdin=subprocess.DEVNULL, stdout=logf,
                            stderr=subprocess.STDOUT)
    results = []
    try:
        wait_log(log, "loftd started", 1, 120)
        probe = Probe(args.ip, args.port)
        probe.start()
        for rnd in range(1, args.rounds + 1):
            time.sleep(1.0)     # a quiet second: the baseline
            t_base = time.monotonic()
            write_users(users, args.size_mb, rnd)
            t0 = time.monotonic()
            c = socket.create_connection((args.ip, args.port), 30)
            buf = [b""]
            read_line(c, buf)
            t_login = time.monotonic()
            c.sendall(b"b LOGIN nosuchuser x\r\n")
            reply = read_line(c, buf)
            login_s = time.monotonic() - t_login
            c.close()
            t_done = wait_log(log, "reloaded: ", rnd, 120)
            time.sleep(0.2)     # the round trips that end after it
            t1 = time.monotonic()
            base = probe.rtts(t_base - 1.0, t_base)
            during = probe.rtts(t0, t1)
            results.append({
                "base_p50_ms": ms(statistics.median(base)),
                "base_max_ms": ms(max(base)),
                "reload_max_ms": ms(max(during)),
                "reload_p99_ms": ms(sorted(during)[int(0.99 * (len(during) - 1))]),
                "login_reply_ms": ms(login_s),
                "reload_s": round(t_done - t_login, 3),
                "reply": reply.decode(errors="replace").strip(),
            })
        probe.stop = True
        probe.join(10)
        size = os.path.getsize(users)
    finally:
        proc.terminate()
        proc.wait(60)
        logf.close()
        shutil.rmtree(work, ignore_errors=True)
    print("passwd-file: %d users, %.1f MB; loftd %s" % (count, size / 1e6,
                                                       os.path.join(args.build, "loftd")))
    print("| round | NOOP p50 before, ms | NOOP max before, ms | NOOP max during "
          "reload, ms | NOOP p99 during, ms | LOGIN answered, ms | reload took, s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for i, r in enumerate(results, 1):
        print("| %d | %s | %s | %s | %s | %s | %s |" % (
            i, r["base_p50_ms"], r["base_max_ms"], r["reload_max_ms"],
            r["reload_p99_ms"], r["login_reply_ms"], r["reload_s"]))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
