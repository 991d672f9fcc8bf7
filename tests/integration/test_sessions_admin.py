"""Session administration with real sessions: who, kick in its four
forms, proxy list and proxy kick, every formatter, and Debian's doveadm on
the ipc socket (reference §7-9)."""
import os
import re
import socket
import subprocess

import pytest

import doveadm_print as dp
import loftlib
from conftest import BACKEND_IPS, LOFT_IP, NET
from imaputil import IMAP, IMAPS, dovecot_host, tls_context

SRC = ["%s.%d" % (NET, i) for i in (210, 211, 212)]


loftadm = loftlib.loftadm


def doveadm(*args):
    return subprocess.run(["doveadm"] + list(args), capture_output=True, text=True,
                          timeout=30)


class Held:
    """Logged-in IMAP sessions: (user, source) -> client."""

    def __init__(self, loft, pairs):
        self.loft = loft
        self.clients = []
        for user, src in pairs:
            m = IMAP(LOFT_IP, loft.port, source=src)
            m.login(user, "pass")
            self.clients.append((user, src, m))

    def alive(self, user, src):
        return [m for u, s, m in self.clients if u == user and s == src]

    def kicked(self, m):
        """The server said goodbye and closed: True; still serving: False."""
        try:
            m.noop()
            return False
        except (IMAP.abort, OSError, EOFError) as e:
            return "Kicked by admin." in str(e) or True

    def close(self):
        for _, _, m in self.clients:
            try:
                m.logout()
            except (IMAP.abort, IMAP.error, OSError, EOFError):
                pass


@pytest.fixture
def admin_loft(loft_factory, cluster):
    path = os.path.join(cluster.base, "sessions-users")
    with open(path, "w") as f:
        for i in range(1, 41):
            group = {3: "sales", 4: "sales", 5: "ops"}.get(i)
            f.write("user%d:{PLAIN}pass::::::%s\n" % (i, "user_group=" + group if group else ""))
    return loft_factory(passdb='{ driver = "passwd-file"; path = "%s"; }' % path)


@pytest.fixture
def held(admin_loft):
    h = Held(admin_loft, [("user3", SRC[0]), ("user3", SRC[1]), ("user4", SRC[0]),
                          ("user5", SRC[1]), ("user15", SRC[2]), ("user16", SRC[2])])
    yield h
    h.close()


def wait_gone(loft, count):
    """Waits until `count` sessions ended by a kick were logged."""
    loftlib.wait_for(lambda: loft.log_text().count('reason="kicked"') >= count, 10,
                     "%d kicked sessions to close" % count)


def survivors(h):
    return sorted((u, s) for u, s, m in h.clients if not h.kicked(m))


def test_kick_user_masks(held, admin_loft):
    r = loftadm("kick", "-a", admin_loft.admin, "user1?", "USER4")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "kicked connections from the following users:\nuser15 user16 user4 \n"
    wait_gone(admin_loft, 3)
    assert survivors(held) == [("user3", SRC[0]), ("user3", SRC[1]), ("user5", SRC[1])]
    # nothing left to match: doveadm's text and exit 68
    r = loftadm("kick", "-a", admin_loft.admin, "user1?")
    assert (r.returncode, r.stdout) == (68, "no users kicked\n")


def test_kicked_client_gets_the_goodbye(held, admin_loft, cluster):
    victim = held.alive("user5", SRC[1])[0]
    tls = IMAPS(LOFT_IP, admin_loft.tls_port, ssl_context=tls_context(cluster.certs["ca"]),
                timeout=10)
    tls.login("user6", "pass")
    assert loftadm("kick", "-a", admin_loft.admin, "user5", "user6").returncode == 0
    # the tagged response never comes: the BYE and the close do
    for m in (victim, tls):
        with pytest.raises(IMAP.abort, match="Kicked by admin"):
            m.noop()


def test_kick_network(held, admin_loft):
    r = loftadm("kick", "-a", admin_loft.admin, "%s/32" % SRC[0])
    assert r.stdout == "kicked connections from the following users:\nuser3 user4 \n"
    wait_gone(admin_loft, 2)
    assert survivors(held) == [("user15", SRC[2]), ("user16", SRC[2]),
                               ("user3", SRC[1]), ("user5", SRC[1])]


def test_kick_user_and_network(held, admin_loft):
    # only user3's session from the second address: never the other one
    r = loftadm("-v", "kick", "-a", admin_loft.admin, "user3", "%s/32" % SRC[1])
    assert r.stdout == ("kicked connections from the following users:\nuser3 \n"
                        "1 connections kicked\n")
    wait_gone(admin_loft, 1)
    assert ("user3", SRC[0]) in survivors(held)
    assert ("user3", SRC[1]) not in survivors(held)


def test_kick_backend_host(held, admin_loft):
    be = dovecot_host(BACKEND_IPS, "user15")
    on_be = sorted(u for u, _, _ in held.clients
                   if dovecot_host(BACKEND_IPS, u) == be)
    r = loftadm("-v", "kick", "-a", admin_loft.admin, "-h", be)
    assert r.returncode == 0
    assert r.stdout.splitlines()[1].split() == sorted(set(on_be))
    assert r.stdout.splitlines()[2] == "%d connections kicked" % len(on_be)
    wait_gone(admin_loft, len(on_be))
    # combined with a mask: only that user on that backend
    be3 = dovecot_host(BACKEND_IPS, "user3")
    r = loftadm("kick", "-a", admin_loft.admin, "-h", be3, "user3")
    assert r.returncode == (68 if be3 == be else 0)
    # a name that does not resolve is an error, not "nothing kicked"
    r = loftadm("kick", "-a", admin_loft.admin, "-h", "no-such-host.invalid")
    assert r.returncode == 68 and "no-such-host.invalid" in r.stderr


def test_kick_alternative_username(held, admin_loft):
    r = loftadm("kick", "-a", admin_loft.admin, "-f", "user_group", "sa*")
    assert r.stdout == "kicked connections from the following users:\nuser3 user4 \n"
    wait_gone(admin_loft, 3)
    assert survivors(held) == [("user15", SRC[2]), ("user16", SRC[2]), ("user5", SRC[1])]


def test_kick_usage_errors(admin_loft):
    for args, text in (((), "user and/or ip[/bits] must be specified."),
                       (("10.0.0.0/8", "10.1.0.0/16"), "Multiple network masks"),
                       (("-f", "user_group"), "Username must be given with passdb-field")):
        r = loftadm("kick", "-a", admin_loft.admin, *args)
        assert r.returncode == 64 and text in r.stderr, (args, r.stderr)
    r = loftadm("kick", "-a", "/nonexistent/admin", "user1")
    assert r.returncode == 75


def who_rows(admin_loft, *args):
    out = loftadm("-f", "tab", "-h", "who", "-a", admin_loft.admin, *args).stdout
    return [line.split("\t") for line in out.splitlines()]


WHO_COLS = [("username", ""), ("#", "right"), ("service", ""), ("(pids)", ""),
            ("(ips)", "")]
WHO_KEYS = ["username", "connections", "service", "pids", "ips"]


def test_who_every_formatter(held, admin_loft):
    rows = who_rows(admin_loft)
    assert sorted(r[0] for r in rows) == ["user15", "user16", "user3", "user4", "user5"]
    user3 = next(r for r in rows if r[0] == "user3")
    assert user3[1] == "2" and user3[4] == "(%s %s)" % (SRC[0], SRC[1])
    expect = {
        "table": dp.table(WHO_COLS, rows),
        "tab": dp.tab(WHO_COLS, rows),
        "flow": dp.flow(WHO_COLS, rows),
        "pager": dp.pager(WHO_COLS, rows),
        "json": dp.json(WHO_KEYS, rows),
    }
    for fmt, want in expect.items():
        r = loftadm("-f", fmt, "who", "-a", admin_loft.admin)
        assert r.returncode == 0
        assert r.stdout == want, fmt
    assert loftadm("who", "-a", admin_loft.admin).stdout == expect["table"]
    assert loftadm("-h", "who", "-a", admin_loft.admin).stdout == \
        dp.table(WHO_COLS, rows, hide=True)
    r = loftadm("-f", "formatted", "who", "-a", admin_loft.admin)
    assert r.returncode == 75 and "cannot be used without a format" in r.stderr


def test_who_one_per_line_columns(held, admin_loft):
    rows = who_rows(admin_loft, "-1", "user3", "user5")
    # username service pid ip dest_ip user_group dest_port session since
    assert sorted((r[0], r[3], r[5]) for r in rows) == [
        ("user3", SRC[0], "sales"), ("user3", SRC[1], "sales"), ("user5", SRC[1], "ops")]
    for r in rows:
        assert r[4] == dovecot_host(BACKEND_IPS, r[0]) and r[6] == "20143"
    # a network alone, and IPv4-mapped IPv6 networks, select the same
    assert len(who_rows(admin_loft, "-1", "%s/32" % SRC[2])) == 2
    assert len(who_rows(admin_loft, "-1", "::ffff:%s/128" % SRC[2])) == 2


PROXY_COLS = [("username", "expand"), ("user_group", "expand"), ("proto", ""),
              ("src ip", ""), ("dest ip", ""), ("port", "")]
PROXY_KEYS = ["username", "user_group", "service", "src-ip", "dest-ip", "dest-port"]


def test_proxy_list_matches_doveadm_byte_for_byte(held, admin_loft):
    ipc = os.path.join(admin_loft.base_dir, "ipc")
    rows = [line.split("\t") for line in
            loftadm("-f", "tab", "-h", "proxy", "list", "-a", admin_loft.admin)
            .stdout.splitlines()]
    assert len(rows) == 6
    for fmt in ("table", "tab", "flow", "pager", "json"):
        ours = loftadm("-f", fmt, "proxy", "list", "-a", admin_loft.admin)
        theirs = doveadm("-f", fmt, "proxy", "list", "-a", ipc)
        assert ours.returncode == 0 and theirs.returncode == 0, theirs.stderr
        assert ours.stdout == theirs.stdout, fmt
    assert loftadm("proxy", "list", "-a", admin_loft.admin).stdout == \
        dp.table(PROXY_COLS, rows)
    assert loftadm("-f", "json", "proxy", "list", "-a", admin_loft.admin).stdout == \
        dp.json(PROXY_KEYS, rows)


def test_proxy_kick_counts_and_wildcards(held, admin_loft):
    r = loftadm("proxy", "kick", "-a", admin_loft.admin, "user1*")
    assert (r.returncode, r.stdout) == (0, "2 connections kicked\n")
    r = loftadm("proxy", "kick", "-a", admin_loft.admin, "nobody*")
    assert (r.returncode, r.stdout) == (0, "0 connections kicked\n")
    r = loftadm("proxy", "kick", "-a", admin_loft.admin, "-f", "user_group", "sales")
    assert r.stdout == "3 connections kicked\n"
    wait_gone(admin_loft, 5)
    assert survivors(held) == [("user5", SRC[1])]
    r = loftadm("proxy", "kick", "-a", admin_loft.admin)
    assert r.returncode == 64


def test_doveadm_proxy_kick_on_ipc(held, admin_loft):
    ipc = os.path.join(admin_loft.base_dir, "ipc")
    # the true total of sessions, not one process's count
    r = doveadm("proxy", "kick", "-a", ipc, "user3")
    assert (r.returncode, r.stdout) == (0, "2 connections kicked\n")
    be = dovecot_host(BACKEND_IPS, "user5")
    expected = sum(1 for u, _, _ in held.clients
                   if u != "user3" and dovecot_host(BACKEND_IPS, u) == be)
    r = doveadm("proxy", "kick", "-a", ipc, "-h", be)
    assert r.stdout == "%d connections kicked\n" % expected
    r = doveadm("proxy", "kick", "-a", ipc, "-f", "user_group", "nobody")
    assert r.stdout == "0 connections kicked\n"
    wait_gone(admin_loft, 2 + expected)


def ipc_raw(path, line):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    s.sendall(line.encode())
    data = b""
    while not re.search(rb"(^|\n)[+-][^\n]*\n$", data):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode()


def test_ipc_protocol(held, admin_loft):
    ipc = os.path.join(admin_loft.base_dir, "ipc")
    out = ipc_raw(ipc, "proxy\t*\tLIST-FULL\n").splitlines()
    assert out[0] == ":username\tuser_group\tservice\tsrc-ip\tdest-ip\tdest-port"
    assert len(out) == 8 and out[-1] == "+"
    assert ipc_raw(ipc, "nope\t*\tLIST-FULL\n") == "-Unknown IPC group: nope\n"
    assert ipc_raw(ipc, "proxy\t7\tLIST-FULL\n") == "-Unknown IPC connection id: 7\n"
    assert ipc_raw(ipc, "proxy\t*\tKICK\n") == "-Missing parameter\n"
    assert ipc_raw(ipc, "proxy\t*\tFROB\tx\n") == "-Unknown command\n"
    assert ipc_raw(ipc, "proxy\t*\tKICK-DIRECTOR-HASH\tnotanumber\n") == \
        "-Invalid parameters\n"
    # the director's hash of user16, on any backend
    import imaputil
    h = imaputil.user_hash("user16")
    assert ipc_raw(ipc, "proxy\t*\tKICK-DIRECTOR-HASH\t%d\n" % h) == "+1\n"
    assert ipc_raw(ipc, "proxy\t*\tKICK-ALT\tuser_group\tops\n") == "+1\n"
    assert ipc_raw(ipc, "proxy\t*\tKICK-HOST\t10.99.99.*\n") == "+0\n"
