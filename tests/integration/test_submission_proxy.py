"""Submission through loftd to real Dovecot backends with Python's smtplib:
EHLO, STARTTLS, AUTH PLAIN and LOGIN, a message relayed by the user's
backend to the tests' SMTP sink, failures, XCLIENT towards the backend
(the backend logs the real client), who and kick (reference §10.4)."""
import email.message
import os
import re
import smtplib
import subprocess

import pytest

import loftlib
from conftest import BACKEND_IPS, NET
from imaputil import dovecot_host, tls_context

SRC = "%s.250" % NET


def smtp(loft, source=None):
    return smtplib.SMTP(loft.ip, loft.submission_port, timeout=10,
                        source_address=(source, 0) if source else None)


def message(sender, rcpt, subject):
    m = email.message.EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, rcpt, subject
    m.set_content("sent through loft\n")
    return m


def test_starttls_login_and_send(loft, cluster):
    s = smtp(loft, SRC)
    code, banner = s.ehlo("client.example")
    assert code == 250 and s.has_extn("starttls") and s.has_extn("auth")
    s.starttls(context=tls_context(cluster.certs["ca"]))
    s.ehlo("client.example")
    s.login("user31", "pass")
    s.send_message(message("user31@loft.test", "someone@example.net", "via loft"))
    s.quit()
    loftlib.wait_for(lambda: any(b"via loft" in m[2] for m in cluster.sink.messages),
                     10, "the backend to relay the message")
    mail_from, rcpts, data = [m for m in cluster.sink.messages if b"via loft" in m[2]][0]
    assert "user31@loft.test" in mail_from and rcpts == ["<someone@example.net>"]
    # the user's own backend relayed it, and saw where the client really is
    be = cluster.by_ip(dovecot_host(BACKEND_IPS, "user31"))
    assert re.search(r"submission-login: Info: Login: user=<user31>.* rip=%s," % SRC,
                     be.log_text())


def test_auth_login_mechanism(loft):
    s = smtp(loft)
    s.ehlo("c")
    s.user, s.password = "user32", "pass"
    code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
    assert code == 235
    s.quit()


def test_refusals(loft_factory):
    loft = loft_factory(penalty="false")
    s = smtp(loft)
    s.ehlo("c")
    with pytest.raises(smtplib.SMTPSenderRefused) as e:
        s.sendmail("a@b.example", ["c@d.example"], "x")
    assert e.value.smtp_code == 530
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        s.login("user33", "wrong")
    assert e.value.smtp_code == 535 and b"Authentication failed." in e.value.smtp_error
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        s.login("nosuchuser", "pass")
    assert e.value.smtp_code == 535 and b"Authentication failed." in e.value.smtp_error
    s.quit()


def test_who_and_kick(loft_factory):
    loft = loft_factory()
    s = smtp(loft, SRC)
    s.ehlo("c")
    s.login("user34", "pass")
    loftadm = os.path.join(loftlib.build_dir(), "loftadm")
    out = subprocess.run([loftadm, "-f", "tab", "who", "-a", loft.admin],
                         capture_output=True, text=True, timeout=30).stdout
    assert out.splitlines()[1].split("\t")[:3] == ["user34", "1", "submission"]
    r = subprocess.run([loftadm, "kick", "-a", loft.admin, "user34"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    code, text = s.noop()
    assert (code, text) == (421, b"4.3.2 Kicked by admin.")
