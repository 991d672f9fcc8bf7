"""PROXY protocol v1 and v2 in front of loftd, as a load balancer sends it:
the client's address from the header is the one the backend logs, who and
kick show and match, and the per user+IP limit counts; a header from an
address outside login.trusted_networks, or a broken one, ends the
connection before a single byte is answered."""
import os
import re
import socket
import struct
import subprocess

import pytest

import loftlib
from conftest import BACKEND_IPS, LOFT_IP, NET
from imaputil import dovecot_host, tls_context

BALANCER = "%s.230" % NET		# the load balancer's address (trusted)
STRANGER = "%s.231" % NET		# not trusted
PP_IMAP, PP_IMAPS, PP_POP3, PP_LMTP = 12143, 12993, 12110, 12024

LISTENERS = "".join(
    ',\n  { protocol = "%s"; address = "%s"; port = %d; tls = %s; proxy_protocol = true; }'
    % (proto, LOFT_IP, port, tls)
    for proto, port, tls in (("imap", PP_IMAP, "false"), ("imap", PP_IMAPS, "true"),
                             ("pop3", PP_POP3, "false"), ("lmtp", PP_LMTP, "false")))


@pytest.fixture
def pp_loft(loft_factory):
    return loft_factory(trusted='"%s/32"' % BALANCER, extra_listeners=LISTENERS,
                        max_userip=1, penalty="false", username_format="%Ln")


def v1(src, sport, dport):
    return ("PROXY TCP4 %s %s %d %d\r\n" % (src, LOFT_IP, sport, dport)).encode()


def v2(src, sport, dport):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addrs = socket.inet_aton(src) + socket.inet_aton(LOFT_IP) + struct.pack("!HH", sport, dport)
    tlv = b"\x04\x00\x03abc"	# a TLV loft ignores
    body = addrs + tlv
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


class Conn:
    """A line client that sends the header first, optionally then TLS."""

    def __init__(self, port, header, source=BALANCER, tls_ca=None):
        self.sock = socket.create_connection((LOFT_IP, port), 10,
                                             source_address=(source, 0))
        self.sock.sendall(header)
        if tls_ca is not None:
            self.sock = tls_context(tls_ca).wrap_socket(self.sock, server_hostname=LOFT_IP)
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode()

    def until(self, prefix):
        while True:
            line = self.line()
            if line.startswith(prefix):
                return line

    def send(self, data):
        self.sock.sendall(data.encode())

    def closed_silently(self):
        """The server closed without sending anything."""
        data = b""
        try:
            while True:
                chunk = self.sock.recv(4096)
                if not chunk:
                    return data == b""
                data += chunk
        except ConnectionResetError:
            return data == b""


def imap_login(conn, user):
    assert conn.line().startswith("* OK")
    conn.send("a LOGIN %s pass\r\n" % user)
    return conn.until("a ")


def test_v1_and_v2_name_the_client(pp_loft, cluster):
    user = "user21"
    c = Conn(PP_IMAP, v1("192.0.2.77", 40000, PP_IMAP))
    assert imap_login(c, user).startswith("a OK")
    # pipelined bytes right behind a v2 header are the client's own
    c2 = socket.create_connection((LOFT_IP, PP_IMAP), 10, source_address=(BALANCER, 0))
    c2.sendall(v2("192.0.2.78", 40001, PP_IMAP) + b"a LOGIN user22 pass\r\n")
    data = b""
    while b"a OK" not in data:
        chunk = c2.recv(4096)
        assert chunk, data
        data += chunk
    # the backends log the addresses from the headers (forwarded by ID)
    for u, rip in ((user, "192.0.2.77"), ("user22", "192.0.2.78")):
        be = cluster.by_ip(dovecot_host(BACKEND_IPS, u))
        loftlib.wait_for(lambda: re.search(r"imap-login: Info: Login: user=<%s>.* rip=%s[ ,]"
                                           % (u, re.escape(rip)), be.log_text()),
                         10, "the backend to log %s from %s" % (u, rip))
    # who shows them, kick by their network closes them
    loftadm = os.path.join(loftlib.build_dir(), "loftadm")
    r = subprocess.run([loftadm, "-f", "tab", "who", "-1", "-a", pp_loft.admin],
                       capture_output=True, text=True, timeout=30)
    ips = sorted(line.split("\t")[3] for line in r.stdout.splitlines()[1:])
    assert ips == ["192.0.2.77", "192.0.2.78"]
    r = subprocess.run([loftadm, "kick", "-a", pp_loft.admin, "192.0.2.77/32"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "user21" in r.stdout
    assert c.until("* BYE") == "* BYE Kicked by admin."
    assert "imap user21 192.0.2.77:40000: proxying to" in pp_loft.log_text()
    c2.close()


def test_tls_after_the_header_and_pop3(pp_loft, cluster):
    ca = cluster.certs["ca"]
    c = Conn(PP_IMAPS, v2("198.51.100.9", 41000, PP_IMAPS), tls_ca=ca)
    assert imap_login(c, "user23").startswith("a OK")
    p = Conn(PP_POP3, v1("198.51.100.10", 41001, PP_POP3))
    assert p.line().startswith("+OK")
    p.send("USER user24\r\nPASS pass\r\n")
    assert p.line() == "+OK"
    assert p.line().startswith("+OK")
    for u, rip, proto in (("user23", "198.51.100.9", "imap"),
                          ("user24", "198.51.100.10", "pop3")):
        be = cluster.by_ip(dovecot_host(BACKEND_IPS, u))
        loftlib.wait_for(lambda: re.search(r"%s-login: Info: Login: user=<%s>.* rip=%s[ ,]"
                                           % (proto, u, re.escape(rip)), be.log_text()),
                         10, "the backend to log %s from %s" % (u, rip))


def test_lmtp_behind_a_balancer(pp_loft, cluster):
    # the LMTP session takes the client from the header: it is not the
    # trusted balancer (no XCLIENT offered), and the backend is told it
    c = Conn(PP_LMTP, v2("192.0.2.93", 42000, PP_LMTP))
    assert c.line().startswith("220 ")
    c.send("LHLO mta\r\n")
    lhlo = [c.line()]
    while lhlo[-1][3] == "-":
        lhlo.append(c.line())
    assert lhlo[-1] == "250 PIPELINING" and not any("XCLIENT" in x for x in lhlo)
    user = "user27"
    c.send("MAIL FROM:<>\r\nRCPT TO:<%s@loft.test>\r\nDATA\r\n" % user)
    assert [c.line()[:3] for _ in range(3)] == ["250", "250", "354"]
    c.send("Subject: behind a balancer\r\n\r\nhi\r\n.\r\n")
    assert c.line().startswith("250 2.0.0 <%s@loft.test>" % user)
    # the session's end closes the backend connection it kept, and Dovecot
    # names the client it was told when the connection ends
    c.send("QUIT\r\n")
    assert c.line().startswith("221")
    be = cluster.by_ip(dovecot_host(BACKEND_IPS, user))
    loftlib.wait_for(lambda: "Disconnect from 192.0.2.93" in be.log_text(), 10,
                     "the backend to log the client from the header")


def test_limits_count_the_header_address(pp_loft):
    # max_userip_connections = 1: per address from the header
    a = Conn(PP_IMAP, v1("192.0.2.80", 40010, PP_IMAP))
    assert imap_login(a, "user25").startswith("a OK")
    b = Conn(PP_IMAP, v1("192.0.2.80", 40011, PP_IMAP))
    assert imap_login(b, "user25").startswith("a NO [LIMIT]")
    c = Conn(PP_IMAP, v1("192.0.2.81", 40012, PP_IMAP))
    assert imap_login(c, "user25").startswith("a OK")


def test_untrusted_and_broken_headers_are_refused(pp_loft):
    c = Conn(PP_IMAP, v1("192.0.2.90", 40020, PP_IMAP), source=STRANGER)
    assert c.closed_silently()
    loftlib.wait_for(lambda: "PROXY protocol listener refused %s:" % STRANGER
                     in pp_loft.log_text(), 10, "the refusal to be logged")
    for header, why in ((b"a LOGIN user26 pass\r\n", "not a PROXY protocol header"),
                        (b"PROXY TCP4 192.0.2.1 nonsense\r\n", "invalid PROXY v1 line")):
        c = Conn(PP_IMAP, header)
        assert c.closed_silently()
        loftlib.wait_for(lambda: "PROXY protocol from %s:" % BALANCER in pp_loft.log_text()
                         and why in pp_loft.log_text(), 10, "'%s' to be logged" % why)
    # the plain listeners are not affected
    s = socket.create_connection((LOFT_IP, pp_loft.port), 10)
    assert s.recv(4096).startswith(b"* OK")
    s.close()
