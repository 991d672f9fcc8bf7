"""Clients and reference models for the integration tests."""
import hashlib
import imaplib
import poplib
import re
import socket
import ssl

imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))


class FromSource:
    """Mixin for imaplib and poplib clients: connect from a chosen source
    address (source=...), so that tests can tell clients apart."""

    def __init__(self, host, port, source=None, timeout=10):
        self._source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self._source, 0)
                                        if self._source else None)


class IMAP(FromSource, imaplib.IMAP4):
    """imaplib's client, optionally from a chosen source address."""

    def backend_name(self):
        """The backend's x-backend from "ID NIL" after login."""
        typ, dat = self._simple_command("ID", "NIL")
        typ, dat = self._untagged_response(typ, dat, "ID")
        m = re.search(rb'"x-backend" "([^"]+)"', dat[0] or b"")
        return m.group(1).decode() if m else None


class POP3(FromSource, poplib.POP3):
    """poplib's client, optionally from a chosen source address."""


class IMAPS(imaplib.IMAP4_SSL):
    def backend_name(self):
        return IMAP.backend_name(self)


def tls_context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    return ctx


class Raw:
    """A line client for what imaplib will not send."""

    def __init__(self, host, port, source=None, timeout=10, tls_ca=None):
        self.sock = socket.create_connection((host, port), timeout,
                                             source_address=(source, 0) if source else None)
        if tls_ca is not None:
            self.sock = tls_context(tls_ca).wrap_socket(self.sock, server_hostname=host)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; buffered: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def until(self, prefix):
        """Reads lines until one starts with prefix; returns them all."""
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(prefix):
                return lines

    def closed(self):
        """True once the server has closed the connection."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, ssl.SSLError):
            return True

    def close(self):
        self.sock.close()


# An independent model of Dovecot's director hashing (reference §1), used
# to predict where loft must route; test_dovecot_model checks the model
# against the placement a real Dovecot director chose.
def md5_u32(data):
    return int.from_bytes(hashlib.md5(data.encode()).digest()[:4], "big")


def user_hash(user):
    return md5_u32(user.lower()) or 1


def vhost_ring(ips, vhosts=100):
    return sorted((md5_u32("%s-%d" % (ip, i)), socket.inet_aton(ip), ip)
                  for ip in ips for i in range(vhosts))


def dovecot_host(ips, user):
    ring = vhost_ring(ips)
    h = user_hash(user)
    for value, _, ip in ring:
        if value >= h:
            return ip
    return ring[0][2]
