"""loft's answers before login next to Dovecot 2.3's own login processes.

The backends of the test cluster are real Dovecot 2.3.19 instances; the
tests send the same bytes to loftd and straight to a backend's
imap-login, pop3-login, managesieve-login or submission-login, with raw
sockets or imaplib, and check that loft answers as Dovecot does, or where
it answers differently on purpose, how (reference dovecot-behaviour.md
§10.2-10.4 describe the proxy side of those processes; their limits are
hard-coded in Dovecot and measured here: each docstring says what was
measured)."""
import re
import socket
import time

import pytest

import loftlib
from conftest import BACKEND_IPS
from imaputil import IMAP, dovecot_host

# how each protocol's greeting ends (its last line)
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


def test_overlong_imap_line_answers_its_tag(loft, cluster):
    """Measured on Dovecot 2.3.19.1's imap-login: it takes lines of up to
    8194 bytes (without CRLF); a longer one made of short arguments gets
    "a1 BAD IMAP command line too large", the rest of the line is skipped
    and the next command is served; if the rest does not fit its input
    buffer (about 1 KiB) it says "* BYE Input buffer full, aborting" and
    closes, as it does at once for a single argument over about 1 KiB; a
    SASL response over 8 KiB (AUTHENTICATE PLAIN with 100 KiB) closes the
    connection without a reply ("Authentication response too large" in
    its log). loft (login.max_line_length here 8k) answers every over-long
    line with "<tag> BAD Command line too long." as soon as the limit is
    passed, skips the rest, and serves the next command. Before this was
    fixed it said "* BAD", and a client waiting for its tag hung until
    login.timeout."""
    line = "a1 NOOP " + "x " * 4600 + "\r\na2 NOOP\r\n"
    for name, ip, port in endpoints(loft, cluster, "imap"):
        s = Session(ip, port, "imap")
        s.send(line)
        reply = s.line()
        assert reply.startswith("a1 BAD "), (name, reply)
        assert s.line() == "a2 OK NOOP completed.", name
        s.close()
    # (each case in a session of its own: each counts as invalid)
    s = Session(loft.ip, loft.port, "imap")
    s.send("a1 NOOP " + "x " * 4600 + "\r\na2 NOOP\r\n")
    assert s.line() == "a1 BAD Command line too long."
    assert s.line() == "a2 OK NOOP completed."
    s.close()
    # a 100 KiB SASL initial response
    s = Session(loft.ip, loft.port, "imap")
    s.send("a3 AUTHENTICATE PLAIN " + "A" * 102400 + "\r\na4 NOOP\r\n")
    assert s.line() == "a3 BAD Command line too long."
    assert s.line() == "a4 OK NOOP completed."
    s.close()
    # a line that does not end: the tag is answered while it is still open
    s = Session(loft.ip, loft.port, "imap")
    s.send("a5 LOGIN " + "x" * 20000)
    assert s.line() == "a5 BAD Command line too long."
    s.send("x" * 20000 + "\r\na6 NOOP\r\n")
    assert s.line() == "a6 OK NOOP completed."
    s.close()


def test_overlong_lines_in_the_untagged_protocols(loft):
    """POP3, ManageSieve and Submission have no tags, but the same shape
    of bug would be a command never answered. Each answers an over-long
    line at once: POP3 with "-ERR Input line too long, aborting." and a
    close (pop3-login says "-ERR Input buffer full, aborting"), Submission
    with "500 5.5.2 Line too long, aborting." and a close (submission-login
    says "500 5.5.2 Line too long" and reads on), ManageSieve with a NO that
    counts as an invalid command, the rest of the line skipped (as
    managesieve-login's NO "MANAGESIEVE command line too large"). The
    limit is login.max_line_length; Dovecot's are about 1 KiB for these
    three, so loft takes every line Dovecot takes."""
    big = "x" * 9000
    s = Session(loft.ip, loft.pop3_port, "pop3")
    s.send("CAPA " + big)
    assert s.lines_until_closed() == ["-ERR Input line too long, aborting."]
    s.close()
    s = Session(loft.ip, loft.submission_port, "submission")
    s.send("NOOP " + big)
    assert s.lines_until_closed() == ["500 5.5.2 Line too long, aborting."]
    s.close()
    s = Session(loft.ip, loft.sieve_port, "managesieve")
    s.send('NOOP "' + big)
    assert s.line() == 'NO "Error in MANAGESIEVE command received by server."'
    s.send('"\r\nNOOP\r\n')
    assert s.line() == 'OK "NOOP Completed"'
    s.close()


def loft_with_defaults(loft_factory):
    """A loftd whose login.max_line_length is left at its default."""
    loft = loft_factory(start=False)
    with open(loft.conf) as f:
        text = f.read()
    text = re.sub(r'max_line_length = "[^"]*";', "", text)
    with open(loft.conf, "w") as f:
        f.write(text)
    loft.start()
    loft_factory.started.append(loft)
    return loft


def test_default_line_length_takes_what_dovecot_takes(loft_factory, cluster):
    """Measured on Dovecot 2.3.19.1 with its defaults: the longest SASL
    initial response imap-login and pop3-login read is 8191 bytes of
    base64, managesieve-login's 8192 (one byte more is dropped without a
    reply: "Authentication response too large"). With loft's former
    default of 8k such a line was "too long"; the default 9k leaves room
    for the tag and the command. Invalid base64 ("!") shows that the
    response was read whole, without an authentication attempt."""
    loft = loft_with_defaults(loft_factory)
    cases = [
        ("imap", "a1 AUTHENTICATE PLAIN " + "!" * 8191 + "\r\n",
         "a1 BAD Invalid base64 data in initial response"),
        ("pop3", "AUTH PLAIN " + "!" * 8191 + "\r\n",
         "-ERR [AUTH] Invalid base64 data in initial response"),
        ("managesieve", 'AUTHENTICATE "PLAIN" "' + "!" * 8192 + '"\r\n',
         'NO "Invalid base64 data in '),
    ]
    for proto, line, reply in cases:
        for name, ip, port in endpoints(loft, cluster, proto):
            s = Session(ip, port, proto)
            s.send(line)
            got = s.line()
            assert got.startswith(reply), (proto, name, got)
            s.close()


def id_command(tag, pairs, value_len):
    """An ID with `pairs` fields of value_len bytes each."""
    return "%s ID (%s)\r\n" % (tag, " ".join(
        '"k%d" "%s"' % (i, "v" * value_len) for i in range(pairs)))


def test_big_ids_like_dovecot(loft, cluster):
    """Measured on Dovecot 2.3.19.1's imap-login, which reads ID one
    parameter at a time: 30 fields of 1020 bytes (31 KB, RFC 2971's
    largest), 1000 fields of 100 bytes (110 KB), 3000 (330 KB) are all
    answered "* ID (...)" and "OK ID completed."; only one value over about
    1 KiB (its input buffer) gets "* BYE Input buffer full, aborting", and
    a key over 30 bytes "BAD Invalid ID parameters". loft (max_line_length
    8k here) read ID as one command line and refused the first two with
    "* BAD Command line too long." and "BAD Too many arguments.", so such
    clients failed only through loft; it now reads ID in pieces too, each
    string bounded by login.max_line_length. After the ID the client logs
    in as usual."""
    for pairs, value_len in ((30, 1020), (1000, 100), (3000, 100)):
        command = id_command("a1", pairs, value_len)
        for name, ip, port in endpoints(loft, cluster, "imap"):
            s = Session(ip, port, "imap")
            s.send(command)
            lines = [s.line(), s.line()]
            assert lines[0].startswith("* ID ("), (pairs, name, lines)
            assert lines[1] == "a1 OK ID completed.", (pairs, name, lines)
            s.close()
    # a real client: imaplib sends the ID, then logs in through loft
    m = IMAP(loft.ip, loft.port)
    params = "(%s)" % " ".join('"k%d" "%s"' % (i, "v" * 1000) for i in range(30))
    typ, data = m._simple_command("ID", params)
    assert typ == "OK"
    assert m.login("user35", "pass")[0] == "OK"
    assert m.select("INBOX")[0] == "OK"
    m.logout()


def loft_with_login(loft_factory, **settings):
    """A loftd with more login.* settings."""
    loft = loft_factory(start=False)
    with open(loft.conf) as f:
        text = f.read()
    extra = " ".join("%s = %s;" % kv for kv in settings.items())
    text = text.replace("login = {", "login = { " + extra, 1)
    with open(loft.conf, "w") as f:
        f.write(text)
    loft.start()
    loft_factory.started.append(loft)
    return loft


@pytest.mark.parametrize("retain", [True, False])
def test_imap_id_retain(loft_factory, cluster, retain):
    """login.imap_id_retain = true (Dovecot's imap_id_retain): the
    client's own ID fields reach the backend, before loft's x-* fields,
    which the backend logs (imap_id_log = * in the test backends). An
    untrusted client's x-* fields are dropped: the backend still sees the
    real client address loft sends. Without the setting (the default, as
    in Dovecot) the backend gets loft's fields only."""
    loft = loft_with_login(loft_factory, imap_id_retain="true" if retain else "false")
    m = IMAP(loft.ip, loft.port)
    client_ip, client_port = m.sock.getsockname()[:2]
    typ, data = m._simple_command(
        "ID", '("name" "loft-it-client" "version" "1.2.3" '
        '"x-originating-ip" "203.0.113.9" "os" NIL)')
    assert typ == "OK"
    assert m.login("user36", "pass")[0] == "OK"
    m.logout()
    be = cluster.by_ip(dovecot_host(BACKEND_IPS, "user36"))
    marker = "x-originating-port=%d," % client_port
    line = loftlib.wait_for(lambda: next((line for line in be.log_text().splitlines()
                                          if "ID sent:" in line and marker in line), None),
                            10, "the backend's ID log line")
    sent = line.split("ID sent: ", 1)[1]
    if retain:
        assert sent.startswith("name=loft-it-client, version=1.2.3, os=NIL, "
                               "x-session-id="), line
    else:
        assert sent.startswith("x-session-id="), line
    assert "x-originating-ip=%s," % client_ip in sent and "203.0.113.9" not in sent
