"""Reloads free what they replace (loftd(8) SIGHUP): the configuration is
reference-counted, a session keeps the one it started with, and the last
reference frees it, so a thousand reloads leave loftd's memory flat."""
import os
import signal

import loftlib
from conftest import LOFT_IP
from imaputil import IMAP

RELOADS = 1000
WARMUP = 100
# what 900 reloads may add: +7.5 MiB before (+12 MiB under ASan), now
# ~50 KiB (~500 KiB under ASan, whose small quarantine still counts)
MAX_GROWTH_KIB = 1024


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


class LogCounter:
    """Counts a text in a growing log, reading only what is new."""

    def __init__(self, path, text):
        self.f = open(path, "rb")
        self.text = text.encode()
        self.count = 0
        self.rest = b""

    def poll(self):
        data = self.rest + self.f.read()
        lines = data.split(b"\n")
        self.rest = lines.pop()
        self.count += sum(self.text in line for line in lines)
        return self.count

    def close(self):
        self.f.close()


def edit_conf(loft, old, new):
    with open(loft.conf) as f:
        text = f.read()
    assert old in text
    with open(loft.conf, "w") as f:
        f.write(text.replace(old, new))


def test_reloads_leave_memory_flat(loft_factory, monkeypatch):
    # ASan's quarantine holds freed memory back (256 MiB by default):
    # kept small, the RSS shows what loftd keeps, not what ASan delays
    opts = [o for o in os.environ.get("ASAN_OPTIONS", "").split(":") if o]
    monkeypatch.setenv("ASAN_OPTIONS", ":".join(opts + ["quarantine_size_mb=1"]))
    loft = loft_factory()
    # a session from before the reloads keeps its configuration (its
    # greeting, its timeouts) through them and ends after them
    early = IMAP(LOFT_IP, loft.port)
    assert b"loft ready." in early.welcome
    # each reload applies a setting and keeps one that needs a restart
    edit_conf(loft, "login = { ", 'login = { greeting = "reloaded."; ')
    edit_conf(loft, "port = %d; }" % loft.port, "port = %d; }" % (loft.port + 1000))
    done = LogCounter(loft.log, "reload done: ")
    pid = loft.proc.pid
    rss = {}
    for i in range(1, RELOADS + 1):
        os.kill(pid, signal.SIGHUP)
        loftlib.wait_for(lambda: done.poll() >= i, 10, "reload %d" % i)
        if i == WARMUP:
            rss["before"] = vm_rss_kib(pid)
    rss["after"] = vm_rss_kib(pid)
    done.close()
    growth = rss["after"] - rss["before"]
    print("VmRSS after %d and %d reloads: %s KiB" % (WARMUP, RELOADS, rss))
    assert growth < MAX_GROWTH_KIB, "VmRSS %s: +%d KiB over %d reloads" % (
        rss, growth, RELOADS - WARMUP)
    text = loft.log_text()
    assert "reload: login.greeting changed" in text
    assert "reload: listeners changed, but only a restart applies it" in text
    assert text.count("reload done: 0 settings changed, 1 need a restart") == RELOADS - 1
    # new clients get the new settings, on the port that stayed
    late = IMAP(LOFT_IP, loft.port)
    assert b"reloaded." in late.welcome
    assert late.login("user5", "pass")[0] == "OK"
    late.logout()
    assert early.login("user6", "pass")[0] == "OK"
    assert early.select("INBOX")[0] == "OK"
    early.logout()
