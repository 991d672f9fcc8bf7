"""loftd features that need their own configuration: passdbs, plaintext
policy, TLS towards backends, failures on the backend side, limits."""
import os
import socket
import threading
import re
import subprocess

import pytest

import loftlib
from conftest import BACKEND_IPS, BACKEND_TLS_PORT, CLIENT_IP, LOFT_IP, NET
from imaputil import IMAP, Raw, dovecot_host, tls_context

# doveadm pw -s SHA512-CRYPT -p pass / -s ARGON2ID -p bobpw style hashes
PASSWD = """\
user21:{SHA512-CRYPT}$6$zGRvnphoMKxWJ0ph$iYm3R7H6awT0FR6WKLCw1LQuRhDfzk0AjRD0UBU8K7UfojrK3lC5PR2wRoJvN7rBu8FIMyP0DzGGQN7dnqP3t.
user22:{PLAIN}pass::::::host=%(be2)s user_group=staff
user23:{PLAIN}pass::::::nologin reason=Mailbox.moved.to.the.new.system
user24:{PLAIN}pass::::::destuser=user25
"""


def write_passwd(base, text):
    path = os.path.join(base, "loft-users-%d" % os.getpid())
    with open(path, "w") as f:
        f.write(text)
    return path


@pytest.fixture
def sha512_hash():
    out = subprocess.run(["doveadm", "pw", "-s", "SHA512-CRYPT", "-p", "pass"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return out


def test_passwd_file_passdb(loft_factory, cluster, sha512_hash):
    text = PASSWD.replace(PASSWD.splitlines()[0].split(":", 1)[1].split("\n")[0],
                          sha512_hash) % {"be2": BACKEND_IPS[1]}
    path = write_passwd(cluster.base, text)
    loft = loft_factory(passdb='{ driver = "passwd-file"; path = "%s"; }' % path,
                        penalty="false")  # many failures here; the penalty has its own test
    name_to_ip = {b.name: b.ip for b in cluster.backends}

    m = IMAP(LOFT_IP, loft.port)
    with pytest.raises(IMAP.error, match="AUTHENTICATIONFAILED"):
        m.login("user21", "wrong")
    with pytest.raises(IMAP.error, match="AUTHENTICATIONFAILED"):
        m.login("nosuchuser", "pass")
    assert m.login("user21", "pass")[0] == "OK"
    m.logout()

    # host= overrides the director
    m = IMAP(LOFT_IP, loft.port)
    m.login("user22", "pass")
    assert name_to_ip[m.backend_name()] == BACKEND_IPS[1]
    m.logout()

    # nologin: the reason only after the right password
    m = IMAP(LOFT_IP, loft.port)
    with pytest.raises(IMAP.error, match=r"\[AUTHENTICATIONFAILED\] Authentication failed"):
        m.login("user23", "wrong")
    with pytest.raises(IMAP.error, match=r"Mailbox\.moved\.to\.the\.new\.system"):
        m.login("user23", "pass")
    m.logout()

    # destuser: logs in to the backend as another name, routed by it
    m = IMAP(LOFT_IP, loft.port)
    m.login("user24", "pass")
    assert name_to_ip[m.backend_name()] == dovecot_host(BACKEND_IPS, "user25")
    m.logout()


def test_plaintext_auth_disabled(loft_factory, cluster):
    loft = loft_factory(dpa="true")
    r = Raw(LOFT_IP, loft.port, source=CLIENT_IP)
    greeting = r.line()
    assert "LOGINDISABLED" in greeting and "AUTH=PLAIN" not in greeting
    r.send("a LOGIN user26 pass\r\n")
    assert r.line() == ("a NO [PRIVACYREQUIRED] Plaintext authentication disallowed "
                        "on non-secure (SSL/TLS) connections.")
    r.close()
    m = IMAP(LOFT_IP, loft.port, source=CLIENT_IP)
    m.starttls(ssl_context=tls_context(cluster.certs["ca"]))
    assert m.login("user26", "pass")[0] == "OK"
    m.logout()


def test_plaintext_allowed_from_trusted_network(loft_factory):
    loft = loft_factory(dpa="true", trusted='"%s/32"' % CLIENT_IP)
    m = IMAP(LOFT_IP, loft.port, source=CLIENT_IP)
    assert b"AUTH=PLAIN" in m.welcome
    assert m.login("user26", "pass")[0] == "OK"
    m.logout()


def test_backend_starttls(loft_factory, cluster):
    loft = loft_factory(backend_ssl="starttls")
    m = IMAP(LOFT_IP, loft.port)
    assert m.login("user27", "pass")[0] == "OK"
    assert m.select("INBOX")[0] == "OK"
    m.logout()
    be = cluster.by_ip(dovecot_host(BACKEND_IPS, "user27"))
    loftlib.wait_for(lambda: re.search(r"Login: user=<user27>.*TLS", be.log_text()),
                     10, "a TLS login on the backend")


def test_backend_implicit_tls(loft_factory, cluster):
    loft = loft_factory(backend_ssl="yes", backend_port=BACKEND_TLS_PORT)
    m = IMAP(LOFT_IP, loft.port)
    assert m.login("user28", "pass")[0] == "OK"
    assert m.backend_name() is not None
    m.logout()


def test_backend_certificate_is_verified(loft_factory, cluster):
    # a CA that did not sign the backends' certificate
    other = loftlib.make_certs(os.path.join(cluster.base, "other-ca"), ["127.0.0.1"])
    loft = loft_factory(backend_ssl="starttls", ca=other["ca"])
    m = IMAP(LOFT_IP, loft.port)
    with pytest.raises(IMAP.error, match=r"\[UNAVAILABLE\] Account is temporarily unavailable\."):
        m.login("user29", "pass")
    m.logout()
    try:
        loftlib.wait_for(lambda: "TLS handshake failed: certificate verify failed"
                         in loft.log_text(), 10, "the verification failure in the log")
    except TimeoutError:
        pytest.fail(loft.log_text()[-2000:])


def test_backend_unreachable(loft_factory, cluster):
    # a host nobody listens on: refused at once, retried, then NO
    loft = loft_factory(servers='"%s.14"' % NET, connect_timeout="5s")
    m = IMAP(LOFT_IP, loft.port)
    with pytest.raises(IMAP.error, match=r"\[UNAVAILABLE\] Account is temporarily unavailable\."):
        m.login("user30", "pass")
    # the session is still usable
    assert m.noop()[0] == "OK"
    m.logout()
    assert re.search(r"login failed: backend %s\.14:20143: connect failed: Connection refused"
                     % re.escape(NET), loft.log_text())


def test_login_timeout(loft_factory):
    loft = loft_factory(timeout="1s")
    r = Raw(LOFT_IP, loft.port)
    r.line()
    # no fixed sleep: the server must speak first, within the deadline
    assert r.line() == "* BYE Disconnected for inactivity."
    assert r.closed()
    loftlib.wait_for(lambda: 'reason="login timeout"' in loft.log_text(), 10, "log")


def test_proxy_ttl_loop_guard(loft_factory):
    loft = loft_factory(trusted='"%s/32"' % CLIENT_IP)
    r = Raw(LOFT_IP, loft.port, source=CLIENT_IP)
    r.line()
    r.send('a ID ("x-originating-ip" "192.0.2.9" "x-proxy-ttl" "1")\r\n')
    r.until("a OK")
    r.send("b LOGIN user31 pass\r\n")
    assert r.line() == "b NO [UNAVAILABLE] Account is temporarily unavailable."
    r.close()
    log = loft.log_text()
    assert "TTL reached zero - proxies appear to be looping?" in log
    # the forwarded address is the one logged
    assert re.search(r"imap user31 192\.0\.2\.9:0: login failed", log)


def test_forwarded_address_reaches_backend(loft_factory, cluster):
    """A trusted upstream proxy's x-originating-ip is what the backend sees."""
    loft = loft_factory(trusted='"%s/32"' % CLIENT_IP)
    r = Raw(LOFT_IP, loft.port, source=CLIENT_IP)
    r.line()
    r.send('a ID ("x-originating-ip" "192.0.2.77" "x-originating-port" "4242")\r\n')
    r.until("a OK")
    r.send("b LOGIN user32 pass\r\n")
    assert r.until("b ")[-1].startswith("b OK")
    r.send("c LOGOUT\r\n")
    r.until("c ")
    be = cluster.by_ip(dovecot_host(BACKEND_IPS, "user32"))
    loftlib.wait_for(lambda: re.search(r"Login: user=<user32>.*rip=192\.0\.2\.77, rport=4242",
                                       be.log_text()), 10, "the forwarded address")


def test_sigterm_says_goodbye(loft_factory):
    loft = loft_factory()
    pre = Raw(LOFT_IP, loft.port)
    pre.line()
    m = IMAP(LOFT_IP, loft.port)
    m.login("user33", "pass")
    assert loft.stop() == 0
    loft_factory.started.remove(loft)
    assert pre.line() == "* BYE Server shutting down."
    assert pre.closed()
    with pytest.raises((IMAP.abort, OSError, EOFError)):
        m.noop()
        m.noop()
    assert not loft.sanitizer_reports()


class FakeBackend:
    """A TCP server that accepts and then says `banner` (or nothing)."""

    def __init__(self, ip, banner):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.banner = banner
        self.conns = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            if self.banner:
                c.sendall(self.banner)

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.mark.parametrize("banner,logged", [
    (None, r"timed out \(backend-login\)"),
    (b"+OK POP3 ready\r\n", r"Invalid banner"),
])
def test_misbehaving_backend(loft_factory, cluster, banner, logged):
    fake = FakeBackend("%s.15" % NET, banner)
    path = write_passwd(cluster.base, "user34:{PLAIN}pass::::::host=%s.15 port=%d\n"
                        % (NET, fake.port))
    loft = loft_factory(passdb='{ driver = "passwd-file"; path = "%s"; }' % path,
                        connect_timeout="2s")
    try:
        m = IMAP(LOFT_IP, loft.port)
        with pytest.raises(IMAP.error,
                           match=r"\[UNAVAILABLE\] Account is temporarily unavailable\."):
            m.login("user34", "pass")
        assert m.noop()[0] == "OK"
        m.logout()
        assert re.search(r"login failed: backend %s\.15:%d: %s"
                         % (re.escape(NET), fake.port, logged), loft.log_text())
    finally:
        fake.close()


def test_userip_connection_limit(loft_factory):
    loft = loft_factory(max_userip=2)
    held = [IMAP(LOFT_IP, loft.port, source=CLIENT_IP) for _ in range(2)]
    for m in held:
        m.login("user35", "pass")
    third = IMAP(LOFT_IP, loft.port, source=CLIENT_IP)
    with pytest.raises(IMAP.error, match=r"\[LIMIT\] Maximum number of connections from "
                                         r"user\+IP exceeded \(mail_max_userip_connections=2\)"):
        third.login("user35", "pass")
    # another address, or another user, is not affected
    other = IMAP(LOFT_IP, loft.port, source="%s.201" % NET)
    assert other.login("user35", "pass")[0] == "OK"
    assert third.login("user36", "pass")[0] == "OK"
    # once a session ends there is room again
    held[0].logout()
    fourth = IMAP(LOFT_IP, loft.port, source=CLIENT_IP)
    loftlib.wait_for(lambda: 'user35 %s' % CLIENT_IP in loft.log_text() and
                     loft.log_text().count("user35 %s" % CLIENT_IP) and
                     re.search(r"imap user35 %s:\d+: closed" % re.escape(CLIENT_IP),
                               loft.log_text()), 10, "the first session to close")
    assert fourth.login("user35", "pass")[0] == "OK"
    for m in (held[1], third, other, fourth):
        m.logout()


def test_auth_failure_penalty_delays_only_that_address(loft_factory):
    loft = loft_factory(log_level="debug")
    bad = "%s.203" % NET
    m = IMAP(LOFT_IP, loft.port, source=bad)
    with pytest.raises(IMAP.error, match="AUTHENTICATIONFAILED"):
        m.login("user37", "wrong1")
    # the next login from that address waits (4 s); meanwhile another
    # address logs in and out: the delay holds back that client only
    r = Raw(LOFT_IP, loft.port, source=bad)
    r.line()
    r.send("a LOGIN user37 pass\r\n")
    loftlib.wait_for(lambda: "auth delayed 4000ms by failure penalty" in loft.log_text(),
                     10, "the penalty delay")
    quick = IMAP(LOFT_IP, loft.port, source=CLIENT_IP)
    assert quick.login("user38", "pass")[0] == "OK"
    quick.logout()
    assert "a OK" not in r.buf.decode()
    assert r.until("a ")[-1].startswith("a OK [CAPABILITY")
    # the success cleared it: the next login is not delayed
    m2 = IMAP(LOFT_IP, loft.port, source=bad)
    m2.login("user37", "pass")
    m2.logout()
    assert loft.log_text().count("delayed") == 1
    m.logout()
    r.close()
