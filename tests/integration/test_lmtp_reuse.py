"""An LMTP session's backend connections outlive its transactions
(lmtp.max_idle_backends): several messages on one MTA connection reach
each real Dovecot backend over one connection; a backend restarted
between them, a kept connection its backend closed unnoticed, and a
backend that dies in the middle of a delivery still give every recipient
its verdict."""
import os
import re

import loftlib
from conftest import BACKEND_IPS, NET
from test_lmtp_proxy import DOMAIN, LMTP, imap_bodies, users_on_two_backends


def closed_connections(cluster, ip):
    """The LMTP connections a Dovecot backend has seen closed, from its
    log, once none is open. (XCLIENT makes Dovecot log a disconnect in
    state GREETING and a new connect: those are not counted.)"""
    def count():
        text = cluster.by_ip(ip).log_text()
        if len(re.findall(r"lmtp\(\d+\): Info: Connect from ", text)) != \
                len(re.findall(r"lmtp\(\d+\): Info: Disconnect from ", text)):
            return None
        return [len(re.findall(r"lmtp\(\d+\): Info: Disconnect from [^\n]*"
                               r"\(state=(?!GREETING)", text))]
    return loftlib.wait_for(count, 10, "every LMTP connection of %s closed" % ip)[0]


def deliver(c, rcpts, subject):
    """One transaction; returns the data replies (every RCPT accepted)."""
    rcpt, data = c.send_message("sender@example.net", rcpts,
                                b"Subject: %s\r\n\r\nhi\r\n" % subject.encode())
    assert all(r.startswith("250 2.1.5") for r in rcpt), rcpt
    return data


def session(loft):
    c = LMTP(loft.lmtp_port)
    assert c.reply()[-1].startswith("220")
    c.cmd("LHLO mta")
    return c


def run_transactions(loft, cluster, subject):
    """Four messages to users on two backends over one MTA connection,
    one abandoned with RSET after its recipient was accepted; returns the
    connections each backend took meanwhile."""
    a, b = users_on_two_backends()
    rcpts = ["%s@%s" % (a, DOMAIN), "%s@%s" % (b, DOMAIN)]
    before = [closed_connections(cluster, ip) for ip in BACKEND_IPS[:2]]
    c = session(loft)
    for i in range(4):
        if i == 2:
            # the backend holds this transaction: the next MAIL needs RSET
            assert c.cmd("MAIL FROM:<x@example.net>")[-1].startswith("250")
            assert c.cmd("RCPT TO:<%s>" % rcpts[0])[-1].startswith("250 2.1.5")
            assert c.cmd("RSET")[-1].startswith("250")
        data = deliver(c, rcpts, "%s %d" % (subject, i))
        assert len(data) == 2 and all(d.startswith("250 2.0.0") for d in data), data
    assert c.cmd("QUIT")[-1].startswith("221")
    c.close()
    for user in (a, b):
        loftlib.wait_for(lambda u=user: len(imap_bodies(loft, u, subject)) == 4, 10,
                         "%s's four messages" % user)
    # the session's QUIT closed the kept connections
    return [closed_connections(cluster, ip) - n for ip, n in zip(BACKEND_IPS[:2], before)]


def test_one_connection_per_backend_for_a_session(loft_factory, cluster):
    loft = loft_factory(username_format="%Ln")
    assert run_transactions(loft, cluster, "kept connection") == [1, 1]


def test_max_idle_backends_0_connects_per_transaction(loft_factory, cluster):
    loft = loft_factory(username_format="%Ln", lmtp_extra="max_idle_backends = 0;")
    # the abandoned transaction connected to the first backend only
    assert run_transactions(loft, cluster, "no kept connection") == [5, 4]


def test_a_backend_restarted_between_transactions(loft_factory, cluster):
    loft = loft_factory(username_format="%Ln")
    a, _ = users_on_two_backends()
    rcpt = "%s@%s" % (a, DOMAIN)
    c = session(loft)
    assert deliver(c, [rcpt], "before the restart")[0].startswith("250 2.0.0")
    backend = cluster.by_ip(BACKEND_IPS[0])
    backend.stop()
    backend.start()
    data = deliver(c, [rcpt], "after the restart")
    assert len(data) == 1 and data[0].startswith("250 2.0.0 <%s>" % rcpt), data
    assert c.cmd("QUIT")[-1].startswith("221")
    c.close()
    assert len(imap_bodies(loft, a, "after the restart")) == 1


class ScriptedLMTP(loftlib.ScriptServer):
    """An LMTP server (PIPELINING) that delivers everything, except that a
    connection is closed without a word where `fail(conn, txn, step)`
    says so: conn and txn count from 0, step is "mail" or "body"."""

    def __init__(self, ip, fail):
        self.fail = fail
        self.delivered = []
        super().__init__(ip)

    def talk(self, c, n):
        f = c.makefile("rb")
        txn, rcpts = 0, []
        try:
            c.sendall(b"220 scripted LMTP\r\n")
            for line in f:
                verb = line[:4].upper()
                if verb == b"LHLO":
                    c.sendall(b"250-scripted\r\n250 PIPELINING\r\n")
                elif verb == b"MAIL":
                    if self.fail(n, txn, "mail"):
                        break
                    rcpts = []
                    c.sendall(b"250 2.1.0 OK\r\n")
                elif verb == b"RCPT":
                    rcpts.append(line[9:].strip(b"<>\r\n").decode())
                    c.sendall(b"250 2.1.5 OK\r\n")
                elif verb == b"RSET":
                    c.sendall(b"250 2.0.0 OK\r\n")
                elif verb == b"DATA":
                    c.sendall(b"354 go\r\n")
                    body = b"".join(iter(f.readline, b".\r\n"))
                    if self.fail(n, txn, "body"):
                        break
                    self.delivered.append((n, txn, body))
                    c.sendall(b"".join(b"250 2.0.0 <%s> Saved\r\n" % r.encode()
                                       for r in rcpts))
                    txn += 1
                elif verb == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    break
        except OSError:
            pass
        c.close()


def scripted_loft(loft_factory, cluster, server):
    path = os.path.join(cluster.base, "lmtp-scripted-users")
    with open(path, "w") as f:
        f.write("user8:{PLAIN}pass::::::host=%s port=%d\n" % (server.ip, server.port))
    return loft_factory(username_format="%Ln",
                        passdb='{ driver = "passwd-file"; path = "%s"; }' % path)


def test_a_kept_connection_closed_unnoticed_is_replaced(loft_factory, cluster):
    # the first connection closes when its second MAIL comes, as a backend
    # whose idle timeout struck just then would: loft connects again and
    # the recipient never knows
    server = ScriptedLMTP("%s.251" % NET, lambda n, txn, step: n == 0 and txn == 1)
    try:
        loft = scripted_loft(loft_factory, cluster, server)
        c = session(loft)
        for i in range(3):
            data = deliver(c, ["user8@loft.test"], "unnoticed %d" % i)
            assert data == ["250 2.0.0 <user8@loft.test> Saved"], (i, data)
        c.close()
        assert [(n, txn) for n, txn, _ in server.delivered] == [(0, 0), (1, 0), (1, 1)]
        assert len(server.conns) == 2
    finally:
        server.close()


def test_a_backend_dying_in_a_delivery_on_a_kept_connection(loft_factory, cluster):
    # a kept connection that answered MAIL and RCPT and then dies during
    # the body is no stale one: its recipient gets 451, and the session's
    # next message goes over a new connection
    server = ScriptedLMTP("%s.251" % NET, lambda n, txn, step:
                          n == 0 and txn == 1 and step == "body")
    try:
        loft = scripted_loft(loft_factory, cluster, server)
        c = session(loft)
        assert deliver(c, ["user8@loft.test"], "first") == ["250 2.0.0 <user8@loft.test> Saved"]
        data = deliver(c, ["user8@loft.test"], "second")
        assert len(data) == 1 and data[0].startswith(
            "451 4.4.0 Remote server not answering ("), data
        assert deliver(c, ["user8@loft.test"], "third") == ["250 2.0.0 <user8@loft.test> Saved"]
        c.close()
        assert [(n, txn) for n, txn, _ in server.delivered] == [(0, 0), (1, 0)]
        assert len(server.conns) == 2
    finally:
        server.close()
