"""scripts/demo ring (scripts/demo.py): three Dovecot backends, a private
3-member etcd and three loftd nodes forming one director ring. It runs
here in a directory of its own (LOFT_DEMO_DIR) on a free loopback /24 of
its own (LOFT_DEMO_NET), outside the nets of this run's workers, so
neither a running ./scripts/demo nor the other tests are in the way.

The commands the demo prints are run as printed: a login through each
node lands on the same backend, every node lists the three members
synced, a host change made on one node is listed by the others; then
`demo.py stop` leaves no process of the demo behind."""
import imaplib
import os
import re
import shutil
import subprocess
import sys
import tempfile

import loftlib
from conftest import RUN_NET

DEMO = os.path.join(loftlib.REPO, "scripts", "demo.py")


def demo_net():
    """A free 127.a.b that is none of the nets this run's workers use."""
    ours = {loftlib.shifted_net(RUN_NET, k) for k in range(16)}
    for _ in range(100):
        net = loftlib.free_net()
        if net not in ours:
            return net
    raise RuntimeError("no free 127.a.b/24 outside this run's nets")


def processes_naming(path):
    """pid -> command line of every process whose command line names path."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if path in cmd:
            found[int(pid)] = cmd
    return found


def run_printed(line):
    r = subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, (line, r.stdout, r.stderr)
    return r.stdout


def test_demo_ring_starts_works_as_printed_and_stops_clean():
    net = demo_net()
    top = tempfile.mkdtemp(prefix="loft-demo-ring-", dir="/tmp")
    os.chmod(top, 0o755)   # the backends' login processes run as dovenull
    base = os.path.join(top, "demo")
    env = dict(os.environ, LOFT_DEMO_DIR=base, LOFT_DEMO_NET=net)
    ips = ["%s.%d" % (net, i) for i in (1, 2, 3)]
    new = "%s.14" % net

    def demo(*args):
        return subprocess.run([sys.executable, DEMO] + list(args), env=env,
                              capture_output=True, text=True, timeout=120)
    try:
        r = demo("ring")
        assert r.returncode == 0, r.stdout + r.stderr
        out = r.stdout
        # the commands to try, one per line, in the order printed
        lines = [line.strip() for line in out.splitlines() if line.startswith("      ")]
        admins = [os.path.join(base, "ring", "node%d" % i, "run", "admin") for i in (1, 2, 3)]
        for a in admins:
            assert a in out, out

        # a login through each node: three replies, one backend
        logins = [line for line in lines if line.startswith("for ip in")]
        assert len(logins) == 1 and " ".join(ips) in logins[0], lines
        backends = re.findall(r'"x-backend" "(be\d)"', run_printed(logins[0]))
        assert len(backends) == 3 and len(set(backends)) == 1, backends

        # the printed who on node 2 lists sessions held on nodes 1 and 3
        port = int(re.search(r"curl -s imap://\$ip:(\d+)/", logins[0]).group(1))
        held = [imaplib.IMAP4(ip, port) for ip in (ips[0], ips[2])]
        for m in held:
            m.login("user2", "pass")
        whos = [line for line in lines if line.endswith(" who -1")]
        assert len(whos) == 1 and admins[1] in whos[0], lines
        text = run_printed(whos[0])
        rows = [line.split() for line in text.splitlines()[1:]]
        assert sorted(row[-1] for row in rows) == ["%s:9090" % ips[0], "%s:9090" % ips[2]], \
            text
        for m in held:
            m.logout()

        # each printed ring status lists the three nodes, synced; so does
        # every node's
        statuses = [line for line in lines if "director ring status" in line]
        assert len(statuses) == 2, lines
        for line in statuses:
            text = run_printed(line)
            for ip in ips:
                assert re.search(r"^%s +9090 " % re.escape(ip), text, re.M), text
            assert text.count("ring synced") == 1 and text.count(" synced ") == 3, text
        for a in admins:
            r = loftlib.loftadm("-a", a, "-f", "tab", "director", "ring", "status")
            rows = [row.split("\t") for row in r.stdout.splitlines()[1:]]
            assert sorted(row[0] for row in rows) == ips, r.stdout
            assert sorted(row[4] for row in rows) == ["ring synced", "synced", "synced"]

        # a host change on node 1, answered once applied everywhere: the
        # two status commands (on nodes 2 and 3) list it at once
        changes = [line for line in lines if " director " in line and "director ring" not in line]
        assert len(changes) == 4, lines
        add, status2, status3, remove = changes
        assert admins[0] in add and add.endswith("director add %s 0" % new), add
        assert admins[1] in status2 and status2.endswith("director status"), status2
        assert status3 == "doveadm director status -a %s" % admins[2], status3
        assert admins[2] in remove and remove.endswith("director remove %s" % new), remove
        run_printed(add)
        for line in (status2, status3):
            row = [x for x in run_printed(line).splitlines() if x.startswith(new + " ")]
            assert len(row) == 1 and row[0].split()[1] == "0", (line, row)
        run_printed(remove)
        for a in admins:
            r = loftlib.loftadm("-a", a, "director", "status")
            assert r.returncode == 0 and new not in r.stdout and \
                len(r.stdout.splitlines()) == 4, r.stdout
    finally:
        pids = processes_naming(base + "/")
        r = demo("stop")
        left = processes_naming(base + "/")
        logs = [os.path.join(base, "ring", "node%d" % i, "loftd.log") for i in (1, 2, 3)]
        texts = []
        for log in logs:
            try:
                with open(log, errors="replace") as f:
                    texts.append(f.read())
            except OSError:
                texts.append("")
        listening = net in loftlib.listening_nets()
        shutil.rmtree(top, ignore_errors=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not left, left
    assert not listening, "something still listens in %s.0/24" % net
    # etcd x3, loftd x3, the SMTP sink and the Dovecot masters, each stopped
    assert len([p for p, cmd in pids.items() if "/etcd " in cmd]) == 3, pids
    assert r.stdout.count("stopped loftd node") == 3, r.stdout
    assert r.stdout.count("stopped etcd m") == 3, r.stdout
    assert "killed" not in r.stdout, r.stdout
    for log, text in zip(logs, texts):
        assert "ring: joined as" in text and "loftd stopped" in text, (log, text[-2000:])
        assert not re.search(r"ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:",
                             text), (log, text[-4000:])
