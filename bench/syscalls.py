"""Syscalls loftd makes per login, or per LMTP recipient, counted with strace:

  python3 bench/syscalls.py [--build <dir>] [--seconds 3] [--lmtp RCPTS]
                                                              (as root)

Starts the bench backend and a loftd from --build (bench/harness), runs
`loadgen cycle` with 4 clients and divides `strace -c -f` of loftd by the
login cycles; with --lmtp, `loadgen lmtp` (4 connections of 10
transactions of RCPTS recipients, 4 KiB messages) divided by the
recipients delivered. The counts are deterministic where timings are
not: use it to see what a change to the login, relay or LMTP path
costs."""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness.systems import SOURCES, Backend, Loft  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build"))
    ap.add_argument("--tools", help="where loadgen and backend are (default: --build)")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--lmtp", type=int, metavar="RCPTS",
                    help="LMTP transactions of RCPTS recipients instead of logins")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    tools = os.path.abspath(args.tools or build)
    base = tempfile.mkdtemp(prefix="loft-syscalls-")
    backend = Backend(tools, base, 1 << 20, lmtp=args.lmtp is not None)
    loft = Loft(build, os.path.join(base, "loft"))
    out = os.path.join(base, "strace")
    try:
        backend.start()
        loft.start()
        st = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(loft.proc.pid)],
                              stderr=subprocess.DEVNULL)
        # strace attaches within a few ms; the first cycles may be missed,
        # which only rounds the figures down a little
        time.sleep(0.5)
        load = ["lmtp", "-t", loft.lmtp_target(), "-r", str(args.lmtp), "-m", "4096",
                "-x", "10"] if args.lmtp is not None else ["cycle", "-t", loft.target()]
        r = subprocess.run([os.path.join(tools, "bench", "loadgen")] + load +
                           ["-c", "4", "-d", str(args.seconds), "-u", "100", "-S", SOURCES],
                           capture_output=True, text=True, timeout=args.seconds + 60)
        st.terminate()
        st.wait()
        summary = json.loads(r.stdout.strip().splitlines()[-1])
        cycles = summary["deliveries" if args.lmtp is not None else "cycles"]
        loft.stop()
        total = 0
        for line in open(out):
            f = line.split()
            if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
                calls = int(f[3])
                total += calls
                if calls >= cycles // 10:
                    print("%-14s %6.2f" % (f[-1], calls / cycles))
        unit = "recipient" if args.lmtp is not None else "login"
        print("%-14s %6.2f  (%d %ss)" % ("per " + unit, total / cycles, cycles, unit))
    finally:
        loft.stop()
        backend.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
