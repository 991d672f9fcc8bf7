"""A pipelining MTA's recipients go together (lmtp.max_parallel_rcpts):
loft looks them up at once and sends each backend its share in one
pipelined batch behind MAIL, yet the MTA reads the replies in the order
of its RCPTs, refusals of every kind among them. A backend without
PIPELINING is still asked one recipient at a time, and a backend that
refuses MAIL answers for each of its recipients."""
import os
import select
import socket

import loftlib
from conftest import BACKEND_IPS, NET
from imaputil import dovecot_host
from test_lmtp_proxy import DOMAIN, LMTP, imap_bodies


def session(loft):
    c = LMTP(loft.lmtp_port)
    assert c.reply()[-1].startswith("220")
    assert c.cmd("LHLO mta")[-1] == "250 PIPELINING"
    return c


def transaction(rcpt_lines, subject):
    return ("MAIL FROM:<x@example.net>\r\n" +
            "".join("RCPT TO:%s\r\n" % r for r in rcpt_lines) +
            "DATA\r\nSubject: %s\r\n\r\nbody\r\n.\r\nNOOP\r\n" % subject).encode()


def test_a_batch_over_every_backend_is_answered_in_order(loft_factory, cluster):
    loft = loft_factory(username_format="%Ln")
    users = ["user%d" % i for i in range(1, 13)]
    assert {dovecot_host(BACKEND_IPS, u) for u in users} == set(BACKEND_IPS), \
        "the users reach every backend"
    # refusals of every kind in the middle: the passdb's, the front's own
    # (a malformed path, a parameter), and one behind the batch's end
    lines = ["<%s@%s>" % (u, DOMAIN) for u in users[:4]] + \
        ["<nosuchuser@%s>" % DOMAIN, "<>", "<%s@%s> NOTIFY=NEVER" % (users[4], DOMAIN)] + \
        ["<%s@%s>" % (u, DOMAIN) for u in users[5:]]
    c = session(loft)
    c.sock.sendall(transaction(lines, "one batch"))
    rcpt = [c.reply()[-1] for _ in range(1 + len(lines))]
    assert rcpt[0].startswith("250 2.1.0")
    want = ["250 2.1.5"] * 4 + [
        "550 5.1.1 <nosuchuser@%s> User doesn't exist: nosuchuser@%s" % (DOMAIN, DOMAIN),
        "501 5.5.4 Invalid TO: parameter", "555 5.5.4 Unsupported parameters"] + \
        ["250 2.1.5"] * 7
    assert [r[:len(w)] for r, w in zip(rcpt[1:], want)] == want, rcpt
    delivered = users[:4] + users[5:]
    assert c.reply()[-1].startswith("354")
    data = [c.reply()[-1] for _ in delivered]
    # one verdict per accepted recipient, in RCPT order, each from its
    # own backend (Dovecot names the recipient)
    assert [d.split()[2] for d in data] == ["<%s@%s>" % (u, DOMAIN) for u in delivered], data
    assert all(d.startswith("250 2.0.0") for d in data), data
    assert c.reply()[-1].startswith("250")    # the NOOP, after them
    c.close()
    log = loft.log_text()
    for u in delivered:
        assert "%s@%s: delivered via %s:" % (u, DOMAIN, dovecot_host(BACKEND_IPS, u)) in log
        assert len(imap_bodies(loft, u, "one batch")) == 1, u


def test_the_client_gone_with_a_batch_in_flight(loft_factory, cluster):
    # the lookups and asks of a session that closed find nothing to
    # answer; the next session is served
    loft = loft_factory(username_format="%Ln")
    for _ in range(5):
        c = session(loft)
        c.sock.sendall(transaction(["<user%d@%s>" % (i, DOMAIN) for i in range(1, 21)],
                                   "never sent"))
        c.close()
    c = session(loft)
    rcpt, data = c.send_message("x@example.net", ["user3@%s" % DOMAIN],
                                b"Subject: after\r\n\r\nhi\r\n")
    assert rcpt[0].startswith("250 2.1.5") and data[0].startswith("250 2.0.0"), (rcpt, data)
    c.close()
    assert loft.proc.poll() is None


class HoldingLMTP(loftlib.ScriptServer):
    """An LMTP server that answers MAIL and the RCPTs only once `hold`
    RCPTs are waiting for an answer, or nothing more came for `quiet`
    seconds; it records the most RCPTs that were ever waiting at once,
    and whether a command came while one was owed to a client it did not
    offer PIPELINING. mail_reply: its answer to MAIL."""

    def __init__(self, ip, hold, pipelining=True, mail_reply=b"250 2.1.0 OK",
                 quiet=1.0):
        self.hold, self.pipelining, self.quiet = hold, pipelining, quiet
        self.mail_reply = mail_reply
        self.most_waiting = 0
        self.unasked_pipelining = False
        self.delivered = []
        super().__init__(ip)

    def lines(self, c):
        buf = b""
        while True:
            while b"\n" not in buf:
                ready = select.select([c], [], [], self.quiet)[0]
                if not ready:
                    yield None    # a quiet moment
                    continue
                chunk = c.recv(65536)
                if not chunk:
                    return
                buf += chunk
            line, buf = buf.split(b"\n", 1)
            yield line + b"\n"

    def talk(self, c, n):
        owed, rcpts, mail_ok = [], [], False
        lines = self.lines(c)
        try:
            c.sendall(b"220 holding LMTP\r\n")
            for line in lines:
                if line is not None:
                    if owed and not self.pipelining:
                        self.unasked_pipelining = True
                    verb = line[:4].upper()
                    if verb == b"LHLO":
                        c.sendall(b"250-holding\r\n" +
                                  (b"250 PIPELINING\r\n" if self.pipelining else b"250 8BITMIME\r\n"))
                        continue
                    if verb == b"MAIL":
                        mail_ok = self.mail_reply.startswith(b"250")
                        owed.append(self.mail_reply + b"\r\n")
                    elif verb == b"RCPT":
                        rcpt = line[9:].strip(b"<>\r\n")
                        if mail_ok:
                            rcpts.append(rcpt)
                        owed.append(b"250 2.1.5 OK\r\n" if mail_ok else
                                    b"503 5.5.1 MAIL needed first\r\n")
                    elif verb == b"DATA":
                        c.sendall(b"354 go\r\n")
                        body = []
                        for part in lines:
                            if part == b".\r\n":
                                break
                            body.append(part or b"")
                        self.delivered.append((rcpts, b"".join(body)))
                        c.sendall(b"".join(b"250 2.0.0 <%s> Saved\r\n" % r for r in rcpts))
                        rcpts = []
                        continue
                    elif verb == b"RSET":
                        owed.append(b"250 2.0.0 OK\r\n")
                    elif verb == b"QUIT":
                        c.sendall(b"221 bye\r\n")
                        break
                    waiting = sum(1 for r in owed if r.startswith((b"250 2.1.5", b"503")))
                    self.most_waiting = max(self.most_waiting, waiting)
                    if waiting < self.hold and verb == b"RCPT":
                        continue
                    if verb == b"MAIL" and self.hold > 0:
                        continue
                if owed:
                    c.sendall(b"".join(owed))
                    owed = []
        except (OSError, StopIteration):
            pass
        c.close()


def holding_loft(loft_factory, cluster, server, users, extra=""):
    """loftd whose passdb sends users to the server, and user7 to the
    director's Dovecot backends."""
    path = os.path.join(cluster.base, "lmtp-batch-users-%d" % server.port)
    with open(path, "w") as f:
        f.write("user7:{PLAIN}pass::::::\n")
        for u in users:
            f.write("%s:{PLAIN}pass::::::host=%s port=%d\n" % (u, server.ip, server.port))
    return loft_factory(username_format="%Ln", lmtp_extra=extra,
                        passdb='{ driver = "passwd-file"; path = "%s"; }' % path)


def scripted_transaction(loft, rcpts, subject):
    c = session(loft)
    c.sock.sendall(transaction(["<%s@%s>" % (u, DOMAIN) for u in rcpts], subject))
    replies = [c.reply()[-1] for _ in range(len(rcpts) + 2)]
    accepted = sum(1 for r in replies[1:-1] if r.startswith("250"))
    if accepted:
        replies += [c.reply()[-1] for _ in range(accepted)]
    replies.append(c.reply()[-1])    # NOOP
    c.close()
    return replies


def test_a_backend_gets_its_recipients_in_one_batch(loft_factory, cluster):
    # the server answers nothing until three RCPTs wait: asked one after
    # another they never would, and each would time out
    server = HoldingLMTP("%s.252" % NET, hold=3, quiet=30)
    try:
        loft = holding_loft(loft_factory, cluster, server, ["user8", "user9", "user10"],
                            extra='proxy_timeout = "10s";')
        replies = scripted_transaction(loft, ["user8", "user9", "user10"], "batch")
        assert replies[1:4] == ["250 2.1.5 OK"] * 3, replies
        assert replies[4].startswith("354")
        assert replies[5:8] == ["250 2.0.0 <%s@%s> Saved" % (u, DOMAIN)
                                for u in ("user8", "user9", "user10")], replies
        assert server.most_waiting == 3
    finally:
        server.close()


def test_max_parallel_rcpts_1_asks_one_after_another(loft_factory, cluster):
    server = HoldingLMTP("%s.252" % NET, hold=3, quiet=0.5)
    try:
        loft = holding_loft(loft_factory, cluster, server, ["user8", "user9", "user10"],
                            extra="max_parallel_rcpts = 1;")
        replies = scripted_transaction(loft, ["user8", "user9", "user10"], "one by one")
        assert replies[1:4] == ["250 2.1.5 OK"] * 3, replies
        assert server.most_waiting == 1
    finally:
        server.close()


def test_a_backend_without_pipelining_is_asked_one_at_a_time(loft_factory, cluster):
    # each reply comes after a quiet moment: a command sent before it
    # would be seen
    server = HoldingLMTP("%s.252" % NET, hold=99, pipelining=False, quiet=0.3)
    try:
        loft = holding_loft(loft_factory, cluster, server, ["user8", "user9", "user10"])
        replies = scripted_transaction(loft, ["user8", "user7", "user9", "user10"],
                                       "no pipelining")
        assert replies[1:5] == ["250 2.1.5 OK", replies[2], "250 2.1.5 OK",
                                "250 2.1.5 OK"], replies
        assert replies[2].startswith("250 2.1.5"), replies
        assert [d.split()[2] for d in replies[6:10]] == \
            ["<%s@%s>" % (u, DOMAIN) for u in ("user8", "user7", "user9", "user10")], replies
        assert not server.unasked_pipelining
        assert server.most_waiting == 1
        assert [r for r, _ in server.delivered] == [[b"user8@loft.test", b"user9@loft.test",
                                                      b"user10@loft.test"]]
    finally:
        server.close()
    assert len(imap_bodies(loft, "user7", "no pipelining")) == 1


def test_a_refused_sender_answers_each_recipient_of_that_backend(loft_factory, cluster):
    # MAIL and two RCPTs go together; the RCPTs' own replies (503) are
    # not theirs to give: each gets the MAIL's refusal, and the recipient
    # on another backend is delivered
    server = HoldingLMTP("%s.252" % NET, hold=2, quiet=5,
                         mail_reply=b"550 5.7.1 Sender refused here")
    try:
        loft = holding_loft(loft_factory, cluster, server, ["user8", "user9"])
        replies = scripted_transaction(loft, ["user8", "user7", "user9"], "refused sender")
        assert replies[1:4] == ["550 5.7.1 Sender refused here", replies[2],
                                "550 5.7.1 Sender refused here"], replies
        assert replies[2].startswith("250 2.1.5"), replies
        assert replies[4].startswith("354") and replies[5].startswith("250 2.0.0 <user7@")
        assert server.most_waiting == 2 and server.delivered == []
    finally:
        server.close()
    assert len(imap_bodies(loft, "user7", "refused sender")) == 1


def test_a_recipient_being_moved_holds_those_behind_it(loft_factory, cluster):
    # a delivery in flight holds its recipient's user where it is, so a
    # move of that user waits for it (reference §2.6); meanwhile another
    # session's recipient of that user waits, and the recipient pipelined
    # behind it with it: both are asked once the move is over, the moved
    # one at its new backend, and every reply comes in RCPT order
    loft = loft_factory(username_format="%Ln", log_level="debug")
    moved, before, after = "user5", "user3", "user4"
    old = dovecot_host(BACKEND_IPS, moved)
    new = next(ip for ip in BACKEND_IPS if ip != old)
    holder = session(loft)
    assert holder.cmd("MAIL FROM:<x@example.net>")[-1].startswith("250")
    assert holder.cmd("RCPT TO:<%s@%s>" % (moved, DOMAIN))[-1].startswith("250 2.1.5")
    r = loftlib.loftadm("director", "move", "-a", loft.admin, moved, new)
    assert r.returncode == 0, r.stderr
    c = session(loft)
    c.sock.sendall(("MAIL FROM:<x@example.net>\r\n" + "".join(
        "RCPT TO:<%s@%s>\r\n" % (u, DOMAIN) for u in (before, moved, after))).encode())
    assert c.reply()[-1].startswith("250 2.1.0")
    assert c.reply()[-1].startswith("250 2.1.5")     # the one before it
    loftlib.wait_for(lambda: "%s@%s: waiting, the user is being moved" % (moved, DOMAIN)
                     in loft.log_text(), 10, "the recipient to wait for the move")
    # the delivery in flight ends: the move goes on, and so does the batch
    holder.sock.sendall(b"DATA\r\n")
    assert holder.reply()[-1].startswith("354")
    holder.sock.sendall(b"Subject: before the move\r\n\r\nhi\r\n.\r\n")
    assert holder.reply()[-1].startswith("250 2.0.0")
    holder.close()
    assert c.reply()[-1].startswith("250 2.1.5")     # the moved one
    assert c.reply()[-1].startswith("250 2.1.5")     # the one behind it
    c.sock.sendall(b"DATA\r\nSubject: after the move\r\n\r\nhi\r\n.\r\n")
    assert c.reply()[-1].startswith("354")
    data = [c.reply()[-1] for _ in range(3)]
    assert [d.split()[2] for d in data] == ["<%s@%s>" % (u, DOMAIN)
                                             for u in (before, moved, after)], data
    c.close()
    log = loft.log_text()
    assert "%s@%s: delivered via %s:" % (moved, DOMAIN, old) in log
    assert "%s@%s: delivered via %s:" % (moved, DOMAIN, new) in log
