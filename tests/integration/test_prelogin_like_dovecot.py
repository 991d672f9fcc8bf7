"""loft's answers before login next to Dovecot 2.3's own login processes.

The backends of the test cluster are real Dovecot 2.3.19 instances; each
test sends the same bytes to loftd and straight to a backend's
imap-login, pop3-login, managesieve-login or submission-login, with raw
sockets, and checks that loft answers as Dovecot does (reference
dovecot-behaviour.md §10.2-10.4 describe the proxy side of those
processes; their limits are hard-coded in Dovecot and measured here)."""
import socket
import time

import pytest

from conftest import BACKEND_IPS

# where each protocol's greeting ends, and how a command is written
GREETING_END = {"imap": "* OK", "pop3": "+OK", "managesieve": "OK ", "submission": "220 "}


def endpoints(loft, cluster, proto):
    """(name, ip, port) of loftd and of the first backend for proto."""
    be = cluster.backends[0]
    ports = {
        "imap": (loft.port, be.port),
        "pop3": (loft.pop3_port, be.pop3_port),
        "managesieve": (loft.sieve_port, be.sieve_port),
        "submission": (loft.submission_port, be.submission_port),
    }[proto]
    return [("loft", loft.ip, ports[0]), ("dovecot", BACKEND_IPS[0], ports[1])]


class Session:
    """A raw client that reads whole lines, notices the server closing,
    and never waits longer than its deadline."""

    def __init__(self, ip, port, proto, timeout=10):
        self.sock = socket.create_connection((ip, port), timeout)
        self.buf = b""
        self.eof = False
        self.deadline = time.monotonic() + timeout
        while not self.line().startswith(GREETING_END[proto]):
            pass

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def _fill(self):
        self.sock.settimeout(max(0.01, self.deadline - time.monotonic()))
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def line(self):
        while b"\n" not in self.buf:
            if self.eof:
                raise EOFError("closed; buffered %r" % self.buf)
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def lines_until_closed(self):
        """Every line until the server closes the connection."""
        lines = []
        while True:
            while b"\n" not in self.buf and not self.eof:
                self._fill()
            if b"\n" not in self.buf:
                assert self.buf == b"", "a partial line before the close: %r" % self.buf
                return lines
            lines.append(self.line())

    def close(self):
        self.sock.close()


def test_invalid_commands_end_the_session_as_in_dovecot(loft, cluster):
    """With max_bad_commands = 3 (loft's default, Dovecot's
    CLIENT_MAX_BAD_COMMANDS), measured on Dovecot 2.3.19.1:

    - imap-login answers two invalid commands with BAD and the third with
      "* BYE Too many invalid IMAP commands." alone, then closes;
    - managesieve-login likewise: NO, NO, BYE "Too many invalid
      MANAGESIEVE commands.";
    - pop3-login answers the third with "-ERR Unknown command." and then
      "-ERR Too many invalid bad commands.".

    Before this was fixed loft answered the third IMAP and ManageSieve
    command too, and said BYE after it."""
    cases = {
        "imap": ("".join("a%d FOO\r\n" % i for i in range(1, 6)),
                 ["a1 BAD Error in IMAP command received by server.",
                  "a2 BAD Error in IMAP command received by server.",
                  "* BYE Too many invalid IMAP commands."]),
        "managesieve": ("FOO\r\n" * 5,
                        ['NO "Error in MANAGESIEVE command received by server."'] * 2 +
                        ['BYE "Too many invalid MANAGESIEVE commands."']),
        "pop3": ("FOO\r\n" * 5,
                 ["-ERR Unknown command."] * 3 + ["-ERR Too many invalid bad commands."]),
    }
    for proto, (commands, expected) in cases.items():
        for name, ip, port in endpoints(loft, cluster, proto):
            s = Session(ip, port, proto)
            s.send(commands)
            assert s.lines_until_closed() == expected, (proto, name)
            s.close()


def test_invalid_submission_commands(loft, cluster):
    """Dovecot's submission-login (lib-smtp, max_bad_commands 10) answers
    ten unknown commands with "500 5.5.1 Unknown command" and the
    eleventh with "421 4.7.0 <hostname> Too many invalid commands." in
    its place, then closes. loft has one count for every protocol
    (login.max_bad_commands, 3), and answers the last one the same way."""
    s = Session(BACKEND_IPS[0], cluster.backends[0].submission_port, "submission")
    s.send("FOO\r\n" * 12)
    lines = s.lines_until_closed()
    assert lines == ["500 5.5.1 Unknown command"] * 10 + \
        ["421 4.7.0 be1.loft.test Too many invalid commands."]
    s.close()
    s = Session(loft.ip, loft.submission_port, "submission")
    s.send("FOO\r\n" * 5)
    lines = s.lines_until_closed()
    assert lines[:2] == ["500 5.5.1 Unknown command"] * 2
    assert len(lines) == 3 and lines[2].startswith("421 4.7.0 ") and \
        lines[2].endswith(" Too many invalid commands.") and \
        len(lines[2].split()) == 7, lines
    s.close()
