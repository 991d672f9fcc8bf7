"""ManageSieve through loftd to real Dovecot (Pigeonhole) backends with a
raw client: capabilities, AUTHENTICATE PLAIN and LOGIN, STARTTLS with the
capabilities repeated, scripts stored on the user's backend, failures,
XCLIENT towards the backend, who and kick (RFC 5804)."""
import base64
import os
import re
import subprocess

import loftlib
from conftest import BACKEND_IPS, NET
from imaputil import Raw, dovecot_host, tls_context

SRC = "%s.240" % NET
SCRIPT = 'require "fileinto";\r\nif header :contains "subject" "loft" { fileinto "INBOX"; }\r\n'


def b64(s):
    return base64.b64encode(s.encode()).decode()


def read_caps(r):
    """Capability lines up to the OK; returns (caps, ok line)."""
    caps = {}
    while True:
        line = r.line()
        if not line.startswith('"'):
            return caps, line
        m = re.match(r'"([^"]+)"(?: "(.*)")?$', line)
        caps[m.group(1)] = m.group(2)


def login(r, user, password="pass"):
    r.send('AUTHENTICATE "PLAIN" "%s"\r\n' % b64("\0%s\0%s" % (user, password)))
    return r.line()


def test_capabilities_login_and_scripts(loft, cluster):
    r = Raw(loft.ip, loft.sieve_port, source=SRC)
    caps, ok = read_caps(r)
    assert ok == 'OK "loft ready."'
    assert caps["IMPLEMENTATION"] == "loft" and "fileinto" in caps["SIEVE"]
    assert caps["SASL"] == "PLAIN LOGIN" and "STARTTLS" in caps and caps["VERSION"] == "1.0"
    assert login(r, "user27") == 'OK "Logged in."'
    # from here on the backend answers
    r.send("PUTSCRIPT \"loft\" {%d+}\r\n%s\r\n" % (len(SCRIPT), SCRIPT))
    assert r.line().startswith("OK")
    r.send('SETACTIVE "loft"\r\nLISTSCRIPTS\r\n')
    assert r.line().startswith("OK")
    assert r.until("OK")[:-1] == ['"loft" ACTIVE']
    r.send("LOGOUT\r\n")
    assert r.line().startswith("OK")
    r.close()
    be = cluster.by_ip(dovecot_host(BACKEND_IPS, "user27"))
    # the backend saw the real client (XCLIENT) and stored the script
    assert re.search(r"managesieve-login: Info: Login: user=<user27>.* rip=%s," % SRC,
                     be.log_text())
    assert os.path.exists(os.path.join(cluster.base, "mail", "user27", "sieve", "loft.sieve"))


def test_auth_login_and_failures(loft):
    r = Raw(loft.ip, loft.sieve_port)
    read_caps(r)
    r.send('AUTHENTICATE "LOGIN"\r\n')
    assert r.line() == '"%s"' % b64("Username:")
    r.send('"%s"\r\n' % b64("user28"))
    assert r.line() == '"%s"' % b64("Password:")
    r.send("{%d+}\r\n%s\r\n" % (len(b64("pass")), b64("pass")))
    assert r.line() == 'OK "Logged in."'
    r.close()
    r = Raw(loft.ip, loft.sieve_port)
    read_caps(r)
    assert login(r, "user28", "wrong") == 'NO "Authentication failed."'
    r.send('AUTHENTICATE "PLAIN"\r\n"*"\r\n')
    assert r.line() == '""'
    assert r.line() == 'NO "Authentication aborted by client."'
    r.send("FOO\r\nBAR\r\nBAZ\r\n")
    assert [r.line() for _ in range(3)] == \
        ['NO "Error in MANAGESIEVE command received by server."'] * 2 + \
        ['BYE "Too many invalid MANAGESIEVE commands."']
    assert r.closed()


def test_starttls_repeats_capabilities(loft, cluster):
    r = Raw(loft.ip, loft.sieve_port)
    read_caps(r)
    r.send("STARTTLS\r\n")
    assert r.line() == 'OK "Begin TLS negotiation now."'
    r.sock = tls_context(cluster.certs["ca"]).wrap_socket(r.sock, server_hostname=loft.ip)
    caps, ok = read_caps(r)
    assert ok == 'OK "TLS negotiation successful."'
    assert "STARTTLS" not in caps and caps["SASL"] == "PLAIN LOGIN"
    assert login(r, "user29") == 'OK "Logged in."'
    r.close()


def test_who_and_kick(loft_factory):
    loft = loft_factory()
    r = Raw(loft.ip, loft.sieve_port, source=SRC)
    read_caps(r)
    assert login(r, "user30") == 'OK "Logged in."'
    loftadm = os.path.join(loftlib.build_dir(), "loftadm")
    out = subprocess.run([loftadm, "-f", "tab", "who", "-a", loft.admin],
                         capture_output=True, text=True, timeout=30).stdout
    assert out.splitlines()[1].split("\t")[:3] == ["user30", "1", "managesieve"]
    r2 = subprocess.run([loftadm, "kick", "-a", loft.admin, "user30"],
                        capture_output=True, text=True, timeout=30)
    assert r2.returncode == 0
    assert r.until("BYE")[-1] == 'BYE "Kicked by admin."'
