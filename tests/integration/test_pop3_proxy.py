"""POP3 through loftd to real Dovecot backends with Python's poplib:
USER/PASS, AUTH PLAIN and LOGIN, STLS, implicit TLS, failures that tell
nothing, the director shared with IMAP, XCLIENT towards the backend, and
session administration (reference §10.3)."""
import base64
import os
import poplib
import re
import subprocess

import pytest

import loftlib
from conftest import BACKEND_IPS, LOFT_IP, NET
from imaputil import IMAP, POP3, Raw, dovecot_host, tls_context

SRC = "%s.220" % NET


def b64(s):
    return base64.b64encode(s.encode()).decode()


def backend_of(loft, user):
    """The backend loftd logged the user in to, from its log."""
    m = None
    for m in re.finditer(r"pop3 %s \S+: proxying to ([0-9.]+):" % re.escape(user),
                         loft.log_text()):
        pass
    return m.group(1) if m else None


def test_user_pass_and_mail(loft):
    user = "user33"
    # a message delivered over IMAP is read back over POP3
    m = IMAP(LOFT_IP, loft.port)
    m.login(user, "pass")
    m.append("INBOX", None, None, b"Subject: pop me\r\n\r\nhello over pop3\r\n")
    m.logout()
    p = POP3(LOFT_IP, loft.pop3_port, source=SRC)
    assert p.getwelcome() == b"+OK loft ready."
    caps = p.capa()
    assert "STLS" in caps and "USER" in caps and caps["SASL"] == ["PLAIN", "LOGIN"]
    assert p.user(user).startswith(b"+OK")
    assert p.pass_("pass").startswith(b"+OK")
    count, _ = p.stat()
    assert count >= 1
    body = b"\n".join(p.retr(count)[1])
    assert b"hello over pop3" in body
    assert p.quit().startswith(b"+OK")
    # the same backend as IMAP, the one the director picks
    assert backend_of(loft, user) == dovecot_host(BACKEND_IPS, user)
    # XCLIENT told the backend who the client really is
    be = loft.cluster.by_ip(backend_of(loft, user))
    assert re.search(r"pop3-login: Info: Login: user=<%s>.* rip=%s" % (user, SRC),
                     be.log_text())


def test_auth_plain_and_login(loft):
    p = POP3(LOFT_IP, loft.pop3_port)
    ir = b64("\0user34\0pass")
    assert p._shortcmd("AUTH PLAIN " + ir).startswith(b"+OK")
    assert p.stat()[0] >= 0
    p.quit()
    # continuations, as Dovecot prompts them
    r = Raw(LOFT_IP, loft.pop3_port)
    assert r.line() == "+OK loft ready."
    r.send("AUTH LOGIN\r\n")
    assert r.line() == "+ " + b64("Username:")
    r.send(b64("user34") + "\r\n")
    assert r.line() == "+ " + b64("Password:")
    r.send(b64("pass") + "\r\n")
    assert r.line().startswith("+OK")
    r.send("QUIT\r\n")
    assert r.line().startswith("+OK")
    r.close()
    # "*" cancels
    r = Raw(LOFT_IP, loft.pop3_port)
    r.line()
    r.send("AUTH PLAIN\r\n*\r\n")
    assert r.line() == "+ "
    assert r.line() == "-ERR Authentication aborted by client."
    r.close()


def test_failures_tell_nothing(loft_factory):
    loft = loft_factory(penalty="false")
    answers = set()
    for user, password in (("user35", "wrong"), ("nosuchuser", "pass")):
        p = POP3(LOFT_IP, loft.pop3_port)
        p.user(user)
        with pytest.raises(poplib.error_proto) as e:
            p.pass_(password)
        answers.add(str(e.value))
        p.quit()
    assert answers == {"b'-ERR [AUTH] Authentication failed.'"}


def test_stls_and_implicit_tls(loft):
    ctx = tls_context(loft.cluster.certs["ca"])
    p = POP3(LOFT_IP, loft.pop3_port)
    p.stls(ctx)
    assert "STLS" not in p.capa()
    p.user("user36")
    assert p.pass_("pass").startswith(b"+OK")
    p.quit()
    p = poplib.POP3_SSL(LOFT_IP, loft.pop3_tls_port, context=ctx, timeout=10)
    assert p.getwelcome() == b"+OK loft ready."
    p.user("user36")
    assert p.pass_("pass").startswith(b"+OK")
    assert p.stat()[0] >= 0
    p.quit()


def test_plaintext_disallowed_without_tls(loft_factory):
    loft = loft_factory(dpa="true")
    p = POP3(LOFT_IP, loft.pop3_port)
    assert "USER" not in p.capa()
    with pytest.raises(poplib.error_proto) as e:
        p.user("user37")
    assert "Plaintext authentication disallowed" in str(e.value)
    p.stls(tls_context(loft.cluster.certs["ca"]))
    p.user("user37")
    assert p.pass_("pass").startswith(b"+OK")
    p.quit()


def test_bad_commands_and_long_lines(loft):
    r = Raw(LOFT_IP, loft.pop3_port)
    r.line()
    r.send("NOOP\r\nFOO\r\nBAR\r\n")
    assert [r.line() for _ in range(4)] == [
        "-ERR Unknown command.", "-ERR Unknown command.", "-ERR Unknown command.",
        "-ERR Too many invalid bad commands."]
    assert r.closed()
    r = Raw(LOFT_IP, loft.pop3_port)
    r.line()
    r.send("USER " + "x" * 9000 + "\r\n")
    assert r.line() == "-ERR Input line too long, aborting."
    assert r.closed()


def test_who_and_kick(loft_factory):
    loft = loft_factory()
    p = POP3(LOFT_IP, loft.pop3_port, source=SRC)
    p.user("user38")
    p.pass_("pass")
    m = IMAP(LOFT_IP, loft.port)
    m.login("user38", "pass")
    loftadm = os.path.join(loftlib.build_dir(), "loftadm")
    r = subprocess.run([loftadm, "-f", "tab", "who", "-a", loft.admin, "user38"],
                       capture_output=True, text=True, timeout=30)
    services = sorted(line.split("\t")[2] for line in r.stdout.splitlines()[1:])
    assert services == ["imap", "pop3"]
    r = subprocess.run([loftadm, "kick", "-a", loft.admin, "user38", SRC],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    # only the POP3 session came from SRC; its client hears why
    with pytest.raises(poplib.error_proto) as e:
        p.stat()
    assert "Kicked by admin." in str(e.value)
    assert m.noop()[0] == "OK"
    m.logout()
