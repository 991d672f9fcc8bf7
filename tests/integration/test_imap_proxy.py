"""IMAP through loftd to real Dovecot backends with real clients."""
import email.message
import os
import re
import subprocess

import pytest

import loftlib
from conftest import BACKEND_IPS, BACKEND_PORT, CLIENT_IP, LOFT_IP
from imaputil import IMAP, IMAPS, Raw, dovecot_host, tls_context


def test_greeting_and_capability(loft):
    m = IMAP(LOFT_IP, loft.port)
    assert re.match(rb"\* OK \[CAPABILITY IMAP4rev1 .*STARTTLS AUTH=PLAIN AUTH=LOGIN\] loft ready\.",
                    m.welcome)
    typ, caps = m.capability()
    assert typ == "OK" and b"STARTTLS" in caps[0]
    assert m.noop()[0] == "OK"
    assert m.logout()[0] == "BYE"


def test_login_select_append_fetch(loft):
    m = IMAP(LOFT_IP, loft.port)
    typ, data = m.login("user31", "pass")
    # the backend's own capabilities come back with the OK
    assert typ == "OK" and b"[CAPABILITY IMAP4rev1" in data[0] and b"MOVE" in data[0]
    msg = email.message.EmailMessage()
    msg["Subject"] = "through loft"
    msg.set_content("hello from the proxy\n" * 10)
    assert m.append("INBOX", None, None, msg.as_bytes())[0] == "OK"
    typ, data = m.select("INBOX")
    assert typ == "OK" and int(data[0]) >= 1
    typ, data = m.fetch(data[0], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT])")
    assert typ == "OK"
    assert b"through loft" in data[0][1]
    assert b"hello from the proxy" in data[1][1]
    m.logout()


def append_and_fetch(m, mailbox, body):
    """Sends body up with APPEND and reads it back with FETCH."""
    m.create(mailbox)
    assert m.append(mailbox, None, None, b"Subject: big\r\n\r\n" + body)[0] == "OK"
    typ, data = m.select(mailbox)
    typ, data = m.fetch(data[0], "(BODY.PEEK[TEXT])")
    assert data[0][1] == body
    m.delete(mailbox)
    m.logout()


def test_large_message_both_ways(loft):
    """Megabytes in both directions: the splice relay, plain on both legs."""
    m = IMAP(LOFT_IP, loft.port)
    m.login("user32", "pass")
    append_and_fetch(m, "big", os.urandom(2 * 1024 * 1024).hex().encode())


def test_authenticate_plain_and_login_mechanisms(loft):
    m = IMAP(LOFT_IP, loft.port)
    # imaplib waits for the "+" continuation (no SASL-IR)
    typ, _ = m.authenticate("PLAIN", lambda _: b"\0user33\0pass")
    assert typ == "OK"
    assert m.backend_name() is not None
    m.logout()

    r = Raw(LOFT_IP, loft.port)
    r.line()
    r.send("a AUTHENTICATE PLAIN AHVzZXIzMwBwYXNz\r\n")  # SASL-IR
    assert r.until("a ")[-1].startswith("a OK [CAPABILITY")
    r.send("b LOGOUT\r\n")
    assert r.until("b ")[-1].startswith("b OK")
    r.close()

    r = Raw(LOFT_IP, loft.port)
    r.line()
    r.send("a AUTHENTICATE LOGIN\r\n")
    assert r.line() == "+ VXNlcm5hbWU6"
    r.send("dXNlcjMz\r\n")
    assert r.line() == "+ UGFzc3dvcmQ6"
    r.send("cGFzcw==\r\n")
    assert r.until("a ")[-1].startswith("a OK")
    r.close()

    r = Raw(LOFT_IP, loft.port)
    r.line()
    r.send("a AUTHENTICATE PLAIN\r\n")
    assert r.line() == "+ "
    r.send("*\r\n")
    assert r.line() == "a BAD Authentication aborted by client."
    r.close()


def test_starttls_and_implicit_tls(loft, cluster):
    ca = cluster.certs["ca"]
    m = IMAP(LOFT_IP, loft.port)
    m.starttls(ssl_context=tls_context(ca))
    typ, caps = m.capability()
    assert b"STARTTLS" not in caps[0]
    assert m.login("user34", "pass")[0] == "OK"
    assert m.select("INBOX")[0] == "OK"
    m.logout()

    s = IMAPS(LOFT_IP, loft.tls_port, ssl_context=tls_context(ca), timeout=10)
    assert b"STARTTLS" not in s.welcome
    assert s.login("user35", "pass")[0] == "OK"
    assert s.backend_name() is not None
    s.logout()


def test_tls_large_fetch(loft, cluster):
    """The buffer relay between a TLS client and a plain backend."""
    s = IMAPS(LOFT_IP, loft.tls_port, ssl_context=tls_context(cluster.certs["ca"]),
              timeout=20)
    s.login("user36", "pass")
    append_and_fetch(s, "tlsbig", os.urandom(1024 * 1024).hex().encode())


def test_dovecot_model():
    """The Python model of §1 reproduces a real Dovecot director's choice
    (doveadm-captures.md appendix A) before we trust it below."""
    ips = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
    captured = "1 2 3 3 1 1 3 1 3 2 2 1 3 2 2 3 2 3 1 3".split()
    for i, be in enumerate(captured, start=1):
        assert dovecot_host(ips, "user%d" % i) == "127.0.0.1" + be


def test_routing_matches_dovecot_hashing(loft, cluster):
    name_to_ip = {b.name: b.ip for b in cluster.backends}
    seen = set()
    for i in range(1, 21):
        user = "user%d" % i
        m = IMAP(LOFT_IP, loft.port)
        m.login(user, "pass")
        got = name_to_ip[m.backend_name()]
        m.logout()
        assert got == dovecot_host(BACKEND_IPS, user), user
        seen.add(got)
    assert len(seen) == 3


def test_same_user_same_backend_any_case(loft, cluster):
    """username_hash %Lu: every spelling of a name lands together (the
    backend's own auth_username_format=%Lu accepts each of them)."""
    name_to_ip = {b.name: b.ip for b in cluster.backends}
    backends = set()
    for name in ("user7", "USER7", "User7"):
        m = IMAP(LOFT_IP, loft.port)
        m.login(name, "pass")
        backends.add(name_to_ip[m.backend_name()])
        m.logout()
    assert backends == {dovecot_host(BACKEND_IPS, "user7")}


def test_backend_sees_real_client_address(loft, cluster):
    m = IMAP(LOFT_IP, loft.port, source=CLIENT_IP)
    m.login("user8", "pass")
    be = cluster.by_ip(dovecot_host(BACKEND_IPS, "user8"))
    m.logout()
    pattern = r"imap-login: Info: Login: user=<user8>.*rip=%s," % re.escape(CLIENT_IP)
    try:
        loftlib.wait_for(lambda: re.search(pattern, be.log_text()), 10,
                         "the backend to log rip=%s" % CLIENT_IP)
    except TimeoutError:
        pytest.fail("backend %s log:\n%s" % (be.name, be.log_text()[-3000:]))


def test_wrong_password_then_right_on_same_connection(loft_factory):
    loft = loft_factory(penalty="false")  # the penalty has its own test
    m = IMAP(LOFT_IP, loft.port)
    with pytest.raises(IMAP.error, match=r"\[AUTHENTICATIONFAILED\] Authentication failed\."):
        m.login("user9", "wrong")
    assert m.login("user9", "pass")[0] == "OK"
    m.logout()


def test_pipelined_commands_after_login(loft):
    r = Raw(LOFT_IP, loft.port)
    r.line()
    r.send("a LOGIN user10 pass\r\nb SELECT INBOX\r\nc LOGOUT\r\n")
    lines = r.until("c ")
    assert any(line.startswith("a OK [CAPABILITY") for line in lines)
    assert any(line.startswith("b OK") for line in lines)
    assert lines[-1].startswith("c OK")
    assert r.closed()


def test_literals_in_login(loft):
    r = Raw(LOFT_IP, loft.port)
    r.line()
    r.send("a LOGIN {6}\r\n")
    assert r.line() == "+ OK"
    r.send("user11 {4+}\r\npass\r\n")
    assert r.until("a ")[-1].startswith("a OK")
    r.close()


def test_bad_input_gets_clear_errors_and_harms_nobody(loft):
    good = IMAP(LOFT_IP, loft.port)
    good.login("user12", "pass")

    r = Raw(LOFT_IP, loft.port)
    r.line()
    r.send("x" * 20000 + "\r\n")
    assert r.line() == "* BAD Command line too long."
    r.send("a NOOP\r\n")
    assert r.line() == "a OK NOOP completed."
    r.send("b LOGIN {999999}\r\n")
    assert r.line() == "b BAD Literal too large."
    # the third invalid command is answered with the BYE alone, as
    # Dovecot's imap-login does (test_prelogin_like_dovecot.py compares them)
    r.send("c FROBNICATE\r\n")
    assert r.line() == "* BYE Too many invalid IMAP commands."
    assert r.closed()

    r = Raw(LOFT_IP, loft.port)
    r.line()
    r.send("a LOGIN {999999+}\r\n")
    assert r.line() == "a BAD Literal too large."
    assert r.line() == "* BYE Literal too large."
    assert r.closed()

    r = Raw(LOFT_IP, loft.port)
    r.line()
    r.send(b"\x00\x01\x02\xff garbage\r\n" * 3)
    lines = r.until("* BYE")
    assert lines[-1] == "* BYE Too many invalid IMAP commands."
    assert r.closed()

    # the established session did not notice
    assert good.noop()[0] == "OK"
    assert good.select("INBOX")[0] == "OK"
    good.logout()


def test_logout_before_login(loft):
    r = Raw(LOFT_IP, loft.port)
    r.line()
    r.send("z LOGOUT\r\n")
    assert r.line() == "* BYE Logging out"
    assert r.line() == "z OK Logout completed."
    assert r.closed()


def test_one_log_line_per_session(loft):
    m = IMAP(LOFT_IP, loft.port, source=CLIENT_IP)
    m.login("user13", "pass")
    m.logout()
    pattern = (r"session [0-9a-f]{16} imap user13 %s:\d+: closed: backend=%s:%d "
               r"duration=\d+\.\d{3}s in=\d+ out=\d+ reason=\"logged out\""
               % (re.escape(CLIENT_IP), re.escape(dovecot_host(BACKEND_IPS, "user13")),
                  BACKEND_PORT))
    loftlib.wait_for(lambda: re.search(pattern, loft.log_text()), 10, "the close line")
    assert "pass" not in re.findall(r".*user13.*", loft.log_text())[0]


def test_curl_through_loft(loft, cluster):
    """curl as the client, plain with STARTTLS available and implicit TLS."""
    r = subprocess.run(["curl", "-s", "imap://%s:%d/" % (LOFT_IP, loft.port),
                        "--user", "user14:pass", "-X", "ID NIL"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    be = {b.name: b.ip for b in cluster.backends}
    m = re.search(r'"x-backend" "(be\d)"', r.stdout)
    assert m and be[m.group(1)] == dovecot_host(BACKEND_IPS, "user14")
    r = subprocess.run(["curl", "-s", "--cacert", cluster.certs["ca"],
                        "imaps://%s:%d/INBOX" % (LOFT_IP, loft.tls_port),
                        "--user", "user14:pass", "-X", "EXAMINE INBOX"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "UIDVALIDITY" in r.stdout
