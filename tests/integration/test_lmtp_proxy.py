"""LMTP through loftd to real Dovecot LMTP backends (RFC 2033, reference
§10.4): each recipient is looked up and routed by the director to its own
backend, one message for users on different backends is split and
delivered to each, the client reads one reply per accepted recipient in
RCPT order, and the messages are then fetched over IMAP through loftd.
smtplib's LMTP reads a single reply after DATA, so the client is here."""
import os
import re
import smtplib
import socket
import time

import pytest

import loftlib
from conftest import BACKEND_IPS, LOFT_IP, NET
from imaputil import IMAP, dovecot_host

SRC = "%s.245" % NET
DOMAIN = "loft.test"


class LMTP:
    """Reads whole replies (multiline ones joined); one per command, and
    after DATA one per accepted recipient."""

    def __init__(self, port, source=None, host=LOFT_IP, bufsize=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if bufsize is not None:  # before connect, so the window follows
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
        if source:
            self.sock.bind((source, 0))
        self.sock.settimeout(10)
        self.sock.connect((host, port))
        self.buf = b""

    def reply(self):
        lines = []
        while True:
            while b"\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError(self.buf)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            line = line.rstrip(b"\r").decode()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return lines

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def replies_until_eof(self):
        """Every reply (its last line) until the server closes."""
        got = []
        while True:
            try:
                got.append(self.reply()[-1])
            except EOFError as e:
                assert e.args[0] == b"", "a partial reply at EOF: %r" % e.args[0]
                return got

    def send_message(self, sender, rcpts, body):
        """MAIL, RCPTs, DATA; returns (rcpt replies, data replies)."""
        assert self.cmd("MAIL FROM:<%s>" % sender)[-1].startswith("250")
        rcpt_replies = [self.cmd("RCPT TO:<%s>" % r)[-1] for r in rcpts]
        accepted = sum(1 for r in rcpt_replies if r.startswith("250"))
        data = self.cmd("DATA")[-1]
        if not data.startswith("354"):
            return rcpt_replies, [data]
        stuffed = b"\r\n".join(b"." + ln if ln.startswith(b".") else ln
                               for ln in body.split(b"\r\n"))
        self.sock.sendall(stuffed + b"\r\n.\r\n")
        return rcpt_replies, [self.reply()[-1] for _ in range(accepted)]

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def lmtp_loft(cluster):
    f = __import__("conftest").LoftFactory(cluster)
    f.next_port = 11301
    # "user5@loft.test" is user5 for the director, as for IMAP logins
    loft = f(username_format="%Ln", trusted='"%s/32"' % SRC)
    yield loft
    f.stop_all()


def users_on_two_backends():
    a = next(u for u in ("user%d" % i for i in range(1, 41))
             if dovecot_host(BACKEND_IPS, u) == BACKEND_IPS[0])
    b = next(u for u in ("user%d" % i for i in range(1, 41))
             if dovecot_host(BACKEND_IPS, u) == BACKEND_IPS[1])
    return a, b


def imap_bodies(loft, user, needle):
    m = IMAP(LOFT_IP, loft.port)
    m.login(user, "pass")
    m.select("INBOX")
    typ, data = m.search(None, "SUBJECT", '"%s"' % needle)
    found = []
    for num in data[0].split():
        found.append(m.fetch(num, "(BODY.PEEK[])")[1][0][1])
    m.logout()
    return found


def test_one_message_split_over_two_backends(lmtp_loft, cluster):
    a, b = users_on_two_backends()
    c = LMTP(lmtp_loft.lmtp_port)
    greeting = c.reply()
    assert greeting[0].startswith("220 ")
    lhlo = c.cmd("LHLO mta.example")
    assert lhlo[-1] == "250 PIPELINING" and any(x.startswith("250-SIZE ") for x in lhlo)
    body = (b"Subject: split delivery\r\n\r\nfor two backends\r\n"
            b".leading dot stays\r\n")
    rcpts = ["%s@%s" % (a, DOMAIN), "nosuchuser@%s" % DOMAIN, "%s@%s" % (b, DOMAIN)]
    rcpt_replies, data_replies = c.send_message("sender@example.net", rcpts, body)
    assert rcpt_replies[0].startswith("250 2.1.5")
    assert rcpt_replies[1] == ("550 5.1.1 <nosuchuser@%s> User doesn't exist: "
                               "nosuchuser@%s" % (DOMAIN, DOMAIN))
    assert rcpt_replies[2].startswith("250 2.1.5")
    # one reply per accepted recipient, in RCPT order, from each backend
    assert len(data_replies) == 2
    assert data_replies[0].startswith("250 2.0.0 <%s@%s>" % (a, DOMAIN))
    assert data_replies[1].startswith("250 2.0.0 <%s@%s>" % (b, DOMAIN))
    assert c.cmd("QUIT")[-1].startswith("221")
    c.close()
    # each user reads it over IMAP through loft, dot-stuffing undone
    for user in (a, b):
        got = imap_bodies(lmtp_loft, user, "split delivery")
        assert len(got) == 1 and b"\r\n.leading dot stays\r\n" in got[0]
    # each backend got its own recipient only, and was told the client
    for user, ip in ((a, BACKEND_IPS[0]), (b, BACKEND_IPS[1])):
        log = cluster.by_ip(ip).log_text()
        # (the session id loft gave in XCLIENT)
        assert re.search(r"lmtp\(%s(@%s)?\)<\d+><[0-9a-f]{16}(:R\d+)?>: Info: .*saved mail to INBOX"
                         % (user, re.escape(DOMAIN)), log), \
            [x for x in log.splitlines() if "saved mail" in x][-3:]
    log = lmtp_loft.log_text()
    assert "%s@%s: delivered via %s:" % (a, DOMAIN, BACKEND_IPS[0]) in log


def test_transaction_rules_and_limits(lmtp_loft):
    c = LMTP(lmtp_loft.lmtp_port)
    c.reply()
    c.cmd("LHLO mta")
    assert c.cmd("RCPT TO:<user1@loft.test>")[-1].startswith("503")
    assert c.cmd("DATA")[-1].startswith("503")
    assert c.cmd("MAIL FROM:<> SIZE=999999999999")[-1].startswith("552")
    assert c.cmd("MAIL FROM:<>")[-1].startswith("250")
    assert c.cmd("MAIL FROM:<>")[-1] == "503 5.5.1 MAIL already given"
    assert c.cmd("DATA")[-1] == "554 5.5.1 No valid recipients"
    assert c.cmd("RSET")[-1].startswith("250")
    assert c.cmd("BOGUS")[-1] == "500 5.5.1 Unknown command"
    c.close()


def test_mail_parameters_checked_and_passed_on(lmtp_loft):
    # smtplib sends SIZE= (offered by loft, not by Dovecot's LMTP) and the
    # caller's BODY=8BITMIME; loft checks SIZE and hands BODY on only
    # where the backend offers 8BITMIME, so the delivery succeeds
    msg = "Subject: params through\r\n\r\ncaf\u00e9\r\n".encode()
    with smtplib.LMTP(LOFT_IP, lmtp_loft.lmtp_port) as s:
        refused = s.sendmail("sender@example.net", ["user3@loft.test"], msg,
                             mail_options=["BODY=8BITMIME"])
        assert refused == {}
    assert len(imap_bodies(lmtp_loft, "user3", "params through")) == 1
    c = LMTP(lmtp_loft.lmtp_port)
    c.reply()
    c.cmd("LHLO mta")
    assert c.cmd("MAIL FROM:<> RET=HDRS")[-1] == "555 5.5.4 Unsupported parameters"
    assert c.cmd("MAIL FROM:<> SIZE=1x")[-1] == "501 5.5.4 Invalid parameters"
    assert c.cmd("MAIL FROM:<> BODY=BINARYMIME")[-1] == "501 5.5.4 Invalid parameters"
    assert c.cmd("MAIL FROM:<> body=7bit size=10")[-1].startswith("250")
    assert c.cmd("RCPT TO:<user3@loft.test> NOTIFY=NEVER")[-1] == \
        "555 5.5.4 Unsupported parameters"
    c.close()


def test_size_limit_during_data(loft_factory):
    loft = loft_factory(username_format="%Ln", lmtp_extra='max_message_size = "10k";')
    c = LMTP(loft.lmtp_port)
    c.reply()
    assert any(x == "250-SIZE 10240" for x in c.cmd("LHLO mta"))
    big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 60
    rcpt_replies, data_replies = c.send_message("", ["user2@loft.test"], big)
    assert rcpt_replies[0].startswith("250")
    # read to its end, refused for every recipient, and the session goes on
    assert data_replies == ["552 5.3.4 Message size exceeds fixed maximum message size"]
    assert c.cmd("NOOP")[-1].startswith("250")
    c.close()
    assert imap_bodies(loft, "user2", "big") == []


def test_ttl_loop_and_xclient_from_a_trusted_relay(lmtp_loft, cluster):
    c = LMTP(lmtp_loft.lmtp_port, source=SRC)
    c.reply()
    assert any("XCLIENT" in x for x in c.cmd("LHLO relay"))
    # a trusted relay says who the client is; the backend hears it
    assert c.cmd("XCLIENT ADDR=198.51.100.44 PORT=2525 TTL=3")[-1].startswith("220")
    c.cmd("LHLO relay")
    user = "user6"
    replies = c.send_message("x@example.net", ["%s@%s" % (user, DOMAIN)],
                             b"Subject: via relay\r\n\r\nhi\r\n")
    assert replies[1][0].startswith("250")
    be = cluster.by_ip(dovecot_host(BACKEND_IPS, user))
    # a TTL at the floor means proxies loop
    assert c.cmd("XCLIENT TTL=1")[-1].startswith("220")
    # the new XCLIENT closed the backend connection loft kept, which had
    # told the backend the relayed client (Dovecot names it at the end)
    loftlib.wait_for(lambda: "Disconnect from 198.51.100.44" in be.log_text(), 10,
                     "the backend to see the relayed client")
    c.cmd("LHLO relay")
    c.cmd("MAIL FROM:<>")
    assert c.cmd("RCPT TO:<user6@loft.test>")[-1] == \
        "554 5.4.6 <user6@loft.test> Proxying appears to be looping (TTL=0)"
    c.close()
    # an untrusted client may not use XCLIENT
    d = LMTP(lmtp_loft.lmtp_port)
    d.reply()
    assert d.cmd("XCLIENT ADDR=1.2.3.4")[-1].startswith("550")
    d.close()


def test_pipelined_transaction_with_an_unknown_recipient(lmtp_loft):
    # PIPELINING: the whole transaction in one write; the replies come in
    # order, the unknown user refused by its backend, the others delivered
    a, b = users_on_two_backends()
    c = LMTP(lmtp_loft.lmtp_port)
    c.reply()
    c.cmd("LHLO mta")
    c.sock.sendall(("MAIL FROM:<x@example.net>\r\nRCPT TO:<%s@%s>\r\n"
                    "RCPT TO:<nosuchuser@%s>\r\nRCPT TO:<%s@%s>\r\nDATA\r\n"
                    "Subject: pipelined\r\n\r\nbody\r\n.\r\nNOOP\r\n"
                    % (a, DOMAIN, DOMAIN, b, DOMAIN)).encode())
    replies = [c.reply()[-1] for _ in range(8)]
    assert replies[0].startswith("250") and replies[1].startswith("250")
    assert replies[2].startswith("550 5.1.1 "), replies
    assert replies[3].startswith("250") and replies[4].startswith("354")
    assert replies[5].startswith("250 2.0.0 <%s@%s>" % (a, DOMAIN)), replies
    assert replies[6].startswith("250 2.0.0 <%s@%s>" % (b, DOMAIN)), replies
    assert replies[7].startswith("250")
    c.close()
    for user in (a, b):
        assert len(imap_bodies(lmtp_loft, user, "pipelined")) == 1


def test_unknown_user_and_a_dead_backend_spare_the_others(loft_factory, cluster):
    # a passdb that knows its users answers for the unknown one itself; a
    # recipient whose backend is down is deferred, the others delivered
    path = os.path.join(cluster.base, "lmtp-users")
    with open(path, "w") as f:
        f.write("user7:{PLAIN}pass::::::\n")
        f.write("user8:{PLAIN}pass::::::host=%s port=1\n" % BACKEND_IPS[0])
    loft = loft_factory(username_format="%Ln",
                        passdb='{ driver = "passwd-file"; path = "%s"; }' % path)
    c = LMTP(loft.lmtp_port)
    c.reply()
    c.cmd("LHLO mta")
    rcpt, data = c.send_message("", ["user9@loft.test", "user8@loft.test",
                                     "user7@loft.test"],
                                b"Subject: survivors\r\n\r\nhi\r\n")
    assert rcpt[0] == "550 5.1.1 <user9@loft.test> User doesn't exist: user9@loft.test"
    assert rcpt[1].startswith("451 4.4.0 Remote server not answering ("), rcpt
    assert rcpt[2].startswith("250")
    assert len(data) == 1 and data[0].startswith("250 2.0.0 <user7@loft.test>")
    c.close()
    assert len(imap_bodies(loft, "user7", "survivors")) == 1


def test_long_body_lines_pass_whole(lmtp_loft):
    # a 300 KB line is bigger than every input buffer: it is taken in
    # pieces and arrives intact
    line = b"".join(b"%07d" % i for i in range(300 * 1024 // 7))
    c = LMTP(lmtp_loft.lmtp_port)
    c.reply()
    c.cmd("LHLO mta")
    rcpt, data = c.send_message("", ["user3@loft.test"],
                                b"Subject: long line\r\n\r\n" + line + b"\r\n.x\r\n")
    assert data[0].startswith("250"), data
    c.close()
    got = imap_bodies(lmtp_loft, "user3", "long line")
    assert len(got) == 1 and (b"\r\n" + line + b"\r\n.x\r\n") in got[0]


def test_shutdown_says_421(loft_factory):
    # LMTP sessions are in no `who` list and no kick reaches them (as with
    # Dovecot); a stopping loftd still says goodbye mid-transaction
    loft = loft_factory(username_format="%Ln")
    c = LMTP(loft.lmtp_port)
    c.reply()
    c.cmd("LHLO mta")
    assert c.cmd("MAIL FROM:<>")[-1].startswith("250")
    assert c.cmd("RCPT TO:<user4@loft.test>")[-1].startswith("250")
    assert loft.stop() == 0
    assert c.reply() == ["421 4.3.2 Server shutting down."]
    with pytest.raises(EOFError):
        c.reply()
    c.close()


# ---- timers: a backend's proxy_timeout runs only while it owes an answer --

class StalledLMTP(loftlib.ScriptServer):
    """An LMTP server that greets, takes LHLO and MAIL, then never answers
    RCPT: a backend that hangs in the middle of a transaction."""

    def __init__(self, ip):
        self.rcpts = 0
        super().__init__(ip)

    def talk(self, c, n):
        f = c.makefile("rb")
        try:
            c.sendall(b"220 stalled LMTP\r\n")
            for line in f:
                verb = line[:4].upper()
                if verb == b"LHLO":
                    c.sendall(b"250-stalled\r\n250 PIPELINING\r\n")
                elif verb == b"MAIL":
                    c.sendall(b"250 2.1.0 OK\r\n")
                elif verb == b"RCPT":
                    self.rcpts += 1  # and no answer, ever
        except OSError:
            pass

    def close(self):
        super().close()
        for c in self.conns:
            c.close()


def test_client_pauses_longer_than_proxy_timeout(loft_factory):
    # RFC 5321 §4.5.3.2 gives a sender minutes between its commands and
    # inside the body; the backends owe nothing meanwhile, so their
    # proxy_timeout does not run, and login.timeout is not LMTP's limit
    loft = loft_factory(username_format="%Ln", timeout="1s",
                        lmtp_extra='proxy_timeout = "2s";')
    a, b = users_on_two_backends()
    c = LMTP(loft.lmtp_port)
    c.reply()
    c.cmd("LHLO mta")
    assert c.cmd("MAIL FROM:<pause@example.net>")[-1].startswith("250")
    for user in (a, b):
        assert c.cmd("RCPT TO:<%s@%s>" % (user, DOMAIN))[-1].startswith("250 2.1.5")
    # the pauses are the stimulus (nothing to poll for): longer than
    # proxy_timeout and than login.timeout
    time.sleep(3)
    assert c.cmd("DATA")[-1].startswith("354")
    c.sock.sendall(b"Subject: paused sender\r\n\r\nfirst half\r\n")
    time.sleep(3)
    c.sock.sendall(b"second half\r\n.\r\n")
    data = [c.reply()[-1] for _ in range(2)]
    assert data[0].startswith("250 2.0.0 <%s@%s>" % (a, DOMAIN)), data
    assert data[1].startswith("250 2.0.0 <%s@%s>" % (b, DOMAIN)), data
    assert c.cmd("QUIT")[-1].startswith("221")
    c.close()
    for user in (a, b):
        got = imap_bodies(loft, user, "paused sender")
        assert len(got) == 1 and b"first half\r\nsecond half\r\n" in got[0]


def test_a_stalled_backend_spares_recipients_already_accepted(loft_factory, cluster):
    stall = StalledLMTP("%s.250" % NET)
    path = os.path.join(cluster.base, "lmtp-stall-users")
    with open(path, "w") as f:
        f.write("user7:{PLAIN}pass::::::\n")
        f.write("user8:{PLAIN}pass::::::host=%s port=%d\n" % (stall.ip, stall.port))
    loft = loft_factory(username_format="%Ln", lmtp_extra='proxy_timeout = "2s";',
                        passdb='{ driver = "passwd-file"; path = "%s"; }' % path)
    try:
        c = LMTP(loft.lmtp_port)
        c.reply()
        c.cmd("LHLO mta")
        start = time.monotonic()
        rcpt, data = c.send_message("", ["user7@loft.test", "user8@loft.test"],
                                    b"Subject: beside a stall\r\n\r\nhi\r\n")
        # the stalled backend is given up after proxy_timeout; the healthy
        # one, which had answered, is not
        assert rcpt[0].startswith("250 2.1.5"), rcpt
        assert rcpt[1] == "451 4.4.0 Remote server not answering (timed out)", rcpt
        assert time.monotonic() - start >= 1.9
        assert stall.rcpts == 1
        assert len(data) == 1 and data[0].startswith("250 2.0.0 <user7@loft.test>"), data
        c.close()
    finally:
        stall.close()
    assert len(imap_bodies(loft, "user7", "beside a stall")) == 1


def test_idle_client_is_disconnected_after_client_timeout(loft_factory):
    loft = loft_factory(username_format="%Ln", lmtp_extra='client_timeout = "2s";')
    c = LMTP(loft.lmtp_port)
    c.reply()
    c.cmd("LHLO mta")
    start = time.monotonic()
    c.sock.settimeout(10)
    assert c.reply() == ["421 4.4.2 Disconnected for inactivity"]
    assert 1.9 <= time.monotonic() - start < 8
    with pytest.raises(EOFError):
        c.reply()
    c.close()
    loftlib.wait_for(lambda: 'reason="idle timeout"' in loft.log_text(), 10,
                     "the idle close to be logged")


def test_the_idle_time_starts_again_when_loft_answers(loft_factory, cluster):
    # routing a recipient took longer than client_timeout (a backend that
    # never answers, for proxy_timeout): that time was loft's, not the
    # MTA's, which may still take its time for the next command
    stall = StalledLMTP("%s.250" % NET)
    path = os.path.join(cluster.base, "lmtp-stall-users2")
    with open(path, "w") as f:
        f.write("user8:{PLAIN}pass::::::host=%s port=%d\n" % (stall.ip, stall.port))
    loft = loft_factory(username_format="%Ln",
                        lmtp_extra='proxy_timeout = "2s"; client_timeout = "1s";',
                        passdb='{ driver = "passwd-file"; path = "%s"; }' % path)
    try:
        c = LMTP(loft.lmtp_port)
        c.reply()
        c.cmd("LHLO mta")
        assert c.cmd("MAIL FROM:<>")[-1].startswith("250")
        assert c.cmd("RCPT TO:<user8@loft.test>")[-1] == \
            "451 4.4.0 Remote server not answering (timed out)"
        assert c.cmd("NOOP") == ["250 2.0.0 OK"]
        c.close()
    finally:
        stall.close()


# ---- half-close: what was read is finished and answered ----------------

def pipelined(rcpts, subject):
    return ("LHLO mta\r\nMAIL FROM:<x@example.net>\r\n" +
            "".join("RCPT TO:<%s@%s>\r\n" % (r, DOMAIN) for r in rcpts) +
            "DATA\r\nSubject: %s\r\n\r\nbody\r\n.\r\nQUIT\r\n" % subject).encode()


def half_closed_replies(ip, port, payload):
    c = LMTP(port, host=ip)
    c.reply()
    c.sock.sendall(payload)
    c.sock.shutdown(socket.SHUT_WR)
    got = c.replies_until_eof()
    c.close()
    return got


def test_half_close_after_pipelined_transaction_and_quit(lmtp_loft, cluster):
    # RFC 2920 §3.2, RFC 5321 §4.1.1.10: a client may send the whole
    # transaction and QUIT, then shut its side down; every reply still
    # comes, as from Dovecot's own LMTP
    a, b = users_on_two_backends()
    be = cluster.by_ip(BACKEND_IPS[0])
    direct = half_closed_replies(be.ip, be.lmtp_port, pipelined([a], "half-close direct"))
    via = half_closed_replies(LOFT_IP, lmtp_loft.lmtp_port, pipelined([a], "half-close one"))
    codes = [r[:3] for r in direct]
    assert codes == ["250", "250", "250", "354", "250", "221"], direct
    assert [r[:3] for r in via] == codes, via
    assert via[4].startswith("250 2.0.0 <%s@%s>" % (a, DOMAIN)), via
    # split over two backends, each answered before the session closes
    via = half_closed_replies(LOFT_IP, lmtp_loft.lmtp_port,
                              pipelined([a, b], "half-close two"))
    assert [r[:3] for r in via] == ["250", "250", "250", "250", "354", "250", "250",
                                    "221"], via
    assert via[5].startswith("250 2.0.0 <%s@%s>" % (a, DOMAIN)), via
    assert via[6].startswith("250 2.0.0 <%s@%s>" % (b, DOMAIN)), via
    assert len(imap_bodies(lmtp_loft, a, "half-close one")) == 1
    for user in (a, b):
        assert len(imap_bodies(lmtp_loft, user, "half-close two")) == 1


def test_half_close_inside_the_body_delivers_nothing(lmtp_loft):
    # the message never ended: nothing is delivered, the session ends
    c = LMTP(lmtp_loft.lmtp_port)
    c.reply()
    c.sock.sendall(("LHLO mta\r\nMAIL FROM:<>\r\nRCPT TO:<user4@%s>\r\nDATA\r\n"
                    "Subject: cut short\r\n\r\nno final dot\r\n" % DOMAIN).encode())
    c.sock.shutdown(socket.SHUT_WR)
    assert [r[:3] for r in c.replies_until_eof()] == ["250", "250", "250", "354"]
    c.close()
    assert imap_bodies(lmtp_loft, "user4", "cut short") == []


# ---- over-long command lines --------------------------------------------

def test_over_long_command_line_is_refused_and_the_session_goes_on(lmtp_loft, cluster):
    # Dovecot's lmtp answers "500 5.5.2 Line too long", skips the line
    # and goes on; loft does the same at login.max_line_length (8k here)
    long_noop = b"NOOP " + b"A" * 10000 + b"\r\nNOOP\r\n"
    be = cluster.backends[0]
    d = LMTP(be.lmtp_port, host=be.ip)
    d.reply()
    d.sock.sendall(long_noop)
    dovecot = [d.reply()[-1], d.reply()[-1]]
    d.close()
    assert dovecot == ["500 5.5.2 Line too long", "250 2.0.0 OK"]
    c = LMTP(lmtp_loft.lmtp_port)
    c.reply()
    c.sock.sendall(long_noop)
    assert [c.reply()[-1], c.reply()[-1]] == dovecot
    # behind a recipient being routed, in a transaction that goes on
    c.sock.sendall(("MAIL FROM:<>\r\nRCPT TO:<user5@%s>\r\nRCPT TO:<%s@%s>\r\n"
                    "DATA\r\nSubject: after a long line\r\n\r\nhi\r\n.\r\n"
                    % (DOMAIN, "a" * 9000, DOMAIN)).encode())
    replies = [c.reply()[-1] for _ in range(5)]
    assert replies[0].startswith("250") and replies[1].startswith("250 2.1.5"), replies
    assert replies[2] == "500 5.5.2 Line too long", replies
    assert replies[3].startswith("354") and replies[4].startswith("250 2.0.0"), replies
    c.close()
    assert len(imap_bodies(lmtp_loft, "user5", "after a long line")) == 1


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def test_a_line_that_never_ends_neither_hangs_nor_grows(lmtp_loft):
    # the refusal comes while the line is still arriving; what follows is
    # read and dropped in bounded memory, and the next command is answered
    c = LMTP(lmtp_loft.lmtp_port)
    c.reply()
    c.cmd("LHLO mta")
    rss_before = rss_kb(lmtp_loft.proc.pid)
    c.sock.settimeout(10)
    c.sock.sendall(b"NOOP ")
    chunk = b"A" * 65536
    sent, got = 0, b""
    deadline = time.monotonic() + 30
    while sent < 16 << 20:
        assert time.monotonic() < deadline, "loft stopped reading the line"
        sent += c.sock.send(chunk)
        c.sock.setblocking(False)
        try:
            got += c.sock.recv(4096)
        except BlockingIOError:
            pass
        c.sock.settimeout(10)
        if b"\n" in got and sent > 4 << 20:
            break
    assert got == b"500 5.5.2 Line too long\r\n"
    for _ in range(64):  # 4 MB more after the refusal
        c.sock.sendall(chunk)
    c.sock.sendall(b"\r\nNOOP\r\n")
    assert c.reply() == ["250 2.0.0 OK"]
    assert rss_kb(lmtp_loft.proc.pid) - rss_before < 4096
    c.close()


def test_replies_an_mta_does_not_read_are_bounded(loft_factory):
    # an MTA pipelining without reading: once limits.session_buffer of
    # replies wait, loft stops reading its commands (so their replies do
    # not pile up in loftd); every reply still comes, in order, once it
    # reads
    loft = loft_factory(username_format="%Ln",
                        extra_conf='limits = { session_buffer = "4k"; };')
    # small kernel buffers on our side, so that what loftd does not read
    # cannot hide in them
    c = LMTP(loft.lmtp_port, bufsize=16384)
    c.reply()
    count = 2000000  # 12 MB of commands, 28 MB of replies
    data = memoryview(b"NOOP\r\n" * count)
    sent, got = 0, 0
    c.sock.setblocking(False)
    progress = time.monotonic()
    while sent < len(data):
        try:
            sent += c.sock.send(data[sent:sent + 65536])
            progress = time.monotonic()
        except BlockingIOError:
            if time.monotonic() - progress > 1:
                break  # loftd stopped reading
            time.sleep(0.01)
    assert sent < len(data), "loftd read every command with no reply read"
    ok, rest = b"250 2.0.0 OK\r\n", b""
    deadline = time.monotonic() + 60
    while got < count:
        assert time.monotonic() < deadline, "%d of %d replies" % (got, count)
        progressed = False
        try:
            chunk = c.sock.recv(1 << 20)
            assert chunk, "closed after %d replies" % got
            rest += chunk
            n = len(rest) // len(ok)
            assert rest[:n * len(ok)] == ok * n
            got, rest = got + n, rest[n * len(ok):]
            progressed = True
        except BlockingIOError:
            pass
        if sent < len(data):
            try:
                sent += c.sock.send(data[sent:sent + 65536])
                progressed = True
            except BlockingIOError:
                pass
        if not progressed:
            time.sleep(0.01)
    c.sock.setblocking(True)
    assert got == count and rest == b""
    assert c.cmd("NOOP") == ["250 2.0.0 OK"]
    c.close()
