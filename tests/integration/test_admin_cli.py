"""The admin socket, loftadm and doveadm against loftd, and loftd's own
command line."""
import os
import re
import socket
import subprocess

import pytest

import loftlib
from conftest import BACKEND_IPS, CLIENT_IP, LOFT_IP, NET
from imaputil import IMAP, dovecot_host


loftadm = loftlib.loftadm


def loftd(*args):
    return subprocess.run([os.path.join(loftlib.build_dir(), "loftd")] + list(args),
                          capture_output=True, text=True, timeout=30)


@pytest.fixture
def sessions(loft_factory, cluster):
    path = os.path.join(cluster.base, "admin-users")
    with open(path, "w") as f:
        for i in range(1, 41):
            extra = " user_group=sales" if i in (3, 4) else ""
            f.write("user%d:{PLAIN}pass::::::%s\n" % (i, extra))
    loft = loft_factory(passdb='{ driver = "passwd-file"; path = "%s"; }' % path)
    clients = []
    for user, src in (("user3", CLIENT_IP), ("user3", "%s.201" % NET),
                      ("user4", CLIENT_IP), ("user15", "%s.202" % NET)):
        m = IMAP(LOFT_IP, loft.port, source=src)
        m.login(user, "pass")
        clients.append(m)
    # a client that has not logged in is not listed by who
    idle = IMAP(LOFT_IP, loft.port)
    yield loft
    for m in clients:
        m.logout()
    idle.logout()


def test_who_grouped(sessions):
    r = loftadm("who", "-a", sessions.admin)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert re.match(r"username +# service +\(pids\) +\(ips\) +$", lines[0])
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"user3", "user4", "user15"}
    assert re.match(r"user3 +2 imap +\(%d\) +\(%s %s\.201\) *$"
                    % (sessions.proc.pid, re.escape(CLIENT_IP), re.escape(NET)), rows["user3"])
    # the table is 80 columns wide when stdout is not a terminal
    assert all(len(line) <= 80 for line in lines)


def test_who_one_per_line_and_filters(sessions):
    r = loftadm("who", "-1", "-a", sessions.admin)
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["username", "service", "pid", "ip", "dest_ip",
                                "user_group", "dest_port", "session", "since"]
    assert len(lines) == 5
    row = next(line for line in lines if line.startswith("user15"))
    assert dovecot_host(BACKEND_IPS, "user15") in row
    assert re.search(r" [0-9a-f]{16} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", row)

    # several masks (any matches), wildcards, case-insensitive
    r = loftadm("who", "-1", "-a", sessions.admin, "USER1?", "user4")
    users = sorted(line.split()[0] for line in r.stdout.splitlines()[1:])
    assert users == ["user15", "user4"]
    # a network
    r = loftadm("who", "-1", "-a", sessions.admin, "%s.200/32" % NET)
    users = sorted(line.split()[0] for line in r.stdout.splitlines()[1:])
    assert users == ["user3", "user4"]
    # -f: the mask matches an alternative username field
    r = loftadm("who", "-1", "-a", sessions.admin, "-f", "user_group", "sal*")
    users = sorted(line.split()[0] for line in r.stdout.splitlines()[1:])
    assert users == ["user3", "user3", "user4"]
    # nothing matches: the header only, exit 0 (as doveadm)
    r = loftadm("who", "-a", sessions.admin, "nobody")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 1
    # tab formatter, titles hidden
    r = loftadm("-f", "tab", "-h", "who", "-a", sessions.admin, "user4")
    assert r.stdout == "user4\t1\timap\t(%d)\t(%s)\n" % (sessions.proc.pid, CLIENT_IP)


def test_who_errors(sessions, tmp_path):
    r = loftadm("who", "-a", str(tmp_path / "nope"))
    assert r.returncode == 75
    assert "connect(%s) failed" % (tmp_path / "nope") in r.stderr
    r = loftadm("who", "-a", sessions.admin, "10.0.0.0/8", "192.168.0.0/16")
    assert r.returncode == 64 and "Multiple network masks not supported" in r.stderr
    r = loftadm("who", "-a", sessions.admin, "-f", "user_group")
    assert r.returncode == 64
    r = loftadm("-f", "xml", "who", "-a", sessions.admin)
    assert r.returncode == 75 and "Unknown print formatter: xml" in r.stderr
    r = loftadm("frobnicate")
    assert r.returncode == 64
    r = loftadm("who", "-x")
    assert r.returncode == 64 and "usage: loftadm who" in r.stderr


def test_loftadm_help():
    r = loftadm("--help")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("usage: loftadm ")
    assert "\n  director ring status " in r.stdout
    # without a command it is a usage error, on stderr
    r = loftadm()
    assert r.returncode == 64 and r.stdout == "" and r.stderr.startswith("usage: loftadm ")


def test_loftadm_finds_socket_through_config(sessions):
    r = loftadm("-c", sessions.conf, "who")
    assert r.returncode == 0, r.stderr
    assert "user15" in r.stdout
    r = loftadm("-c", sessions.conf, "-o", "base_dir=/nonexistent", "who")
    assert r.returncode == 75 and "/nonexistent/admin" in r.stderr


def test_doveadm_director_status_against_loftd(sessions):
    r = subprocess.run(["doveadm", "director", "status", "-a", sessions.admin],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["mail", "server", "ip"]
    listed = [line.split()[0] for line in lines[1:]]
    assert listed == sorted(BACKEND_IPS, key=socket.inet_aton)
    users = {line.split()[0]: int(line.split()[-1]) for line in lines[1:]}
    expected = {ip: 0 for ip in BACKEND_IPS}
    for u in ("user3", "user4", "user15"):
        expected[dovecot_host(BACKEND_IPS, u)] += 1
    assert users == expected


def admin_raw(path, lines, done):
    """Sends the handshake and lines at once; reads until done(text)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    s.sendall(("VERSION\tdirector-doveadm\t1\t0\n" + "".join(l + "\n" for l in lines)).encode())
    data = ""
    while not done(data):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk.decode()
    s.close()
    return data


def test_admin_protocol_errors_keep_the_connection(loft):
    # handshake, three errors, three hosts and the list's empty line
    out = admin_raw(loft.admin, ["BOGUS\tx", "", "HOST-LIST\textra", "HOST-LIST"],
                    lambda d: d.count("\n") >= 8 and d.endswith("\n\n"))
    lines = out.split("\n")
    assert lines[0] == "VERSION\tdirector-doveadm\t1\t0"
    assert lines[1] == "ERROR\tunknown command: BOGUS"
    assert lines[2] == "ERROR\tempty command"
    assert lines[3] == "ERROR\tHOST-LIST: wrong number of parameters"
    # the pipelined command after the errors is answered, none dropped
    assert lines[4].startswith(BACKEND_IPS[0] + "\t100\t")


def test_the_bench_hooks_are_not_in_a_normal_build(loft):
    """BENCH-FAKE-SESSIONS (src/admin/cmd_bench.c) exists only in a
    build made with BENCH_HOOKS=1: the loftd under test has neither the
    command nor its name."""
    out = admin_raw(loft.admin, ["BENCH-FAKE-SESSIONS\t10\tfake-"],
                    lambda d: d.count("\n") >= 2)
    assert out.split("\n")[1] == "ERROR\tunknown command: BENCH-FAKE-SESSIONS", out
    with open(os.path.join(loftlib.build_dir(), "loftd"), "rb") as f:
        assert b"BENCH-FAKE-SESSIONS" not in f.read()


def test_admin_socket_mode_and_single_instance(loft):
    assert oct(os.stat(loft.admin).st_mode & 0o777) == "0o600"
    other = loftlib.Loftd(loft.cluster.base, LOFT_IP, 12301, 12302, loft.cluster)
    with open(other.conf) as f:
        text = f.read().replace(other.base_dir, loft.base_dir)
    with open(other.conf, "w") as f:
        f.write(text)
    r = loftd("-c", other.conf)
    assert r.returncode != 0
    assert "is in use: is another loftd running?" in r.stderr


def test_loftd_print_config(loft):
    r = loftd("-c", loft.conf, "-n")
    assert r.returncode == 0, r.stderr
    assert 'base_dir = "%s";' % loft.base_dir in r.stdout
    assert 'timeout = "1m";' in r.stdout
    assert "max_bad_commands = 3;" in r.stdout


@pytest.mark.parametrize("text,message", [
    ('listeners = ( { protocol = "imap"; } );\npassdb = ( { driver = "backend"; } );\n'
     'director = { mail_servers = [ "10.0.0.1" ]; };\nlogin = { timeout = "soon"; };\n',
     "bad.conf:4: login.timeout: 'soon': expected a duration"),
    ('listeners = ( { protocol = "imap"; } );\npassdb = ( { driver = "backend"; } );\n'
     'director = { mail_servers = [ "10.0.0.1", "10.0.0.9-10.0.0.3" ]; };\n',
     "bad.conf:3: director.mail_servers: invalid address range"),
    ('listeners = ( { protocol = "imap"; } ;\n', "bad.conf:1: syntax error"),
    ('listeners = ( { protocol = "imap"; } );\npassdb = ( { driver = "backend"; } );\n'
     'director = { mail_servers = [ "10.0.0.1" ]; };\nloging = { };\n',
     "bad.conf:4: unknown setting 'loging'"),
    ('listeners = ( { protocol = "imap"; } );\npassdb = ( { driver = "backend"; } );\n'
     'director = { mail_servers = [ "10.0.0.1" ]; };\nstate_dir = "var/lib/loft";\n',
     "bad.conf:4: state_dir: must be an absolute path"),
])
def test_config_errors_name_file_and_line(tmp_path, text, message):
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    for extra in ([], ["-n"]):
        r = loftd("-c", str(conf), *extra)
        assert r.returncode == 1
        assert message in r.stderr, r.stderr


def test_listen_failure_is_reported(loft, tmp_path):
    conf = tmp_path / "dup.conf"
    with open(loft.conf) as f:
        conf.write_text(f.read().replace(loft.base_dir, str(tmp_path / "run"))
                        .replace(loft.state_dir, str(tmp_path / "state")))
    r = loftd("-c", str(conf))
    assert r.returncode == 1
    assert "cannot listen on %s port %d: Address already in use" % (LOFT_IP, loft.port) \
        in r.stderr
