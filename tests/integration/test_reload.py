"""SIGHUP (loftd(8) SIGNALS): the configuration and the TLS certificate
are read again; established sessions, plain and TLS, go on untouched; a
setting only a restart can apply is logged and keeps its value; a broken
file changes nothing."""
import hashlib
import os
import shutil
import signal
import socket
import ssl

import loftlib
from conftest import LOFT_IP
from imaputil import IMAP, IMAPS, tls_context


def reload(loft, expect):
    """SIGHUP, then wait for the log line that ends this reload."""
    before = loft.log_text().count(expect)
    loft.proc.send_signal(signal.SIGHUP)
    loftlib.wait_for(lambda: loft.log_text().count(expect) > before, 10, expect)


def edit_conf(loft, old, new):
    with open(loft.conf) as f:
        text = f.read()
    assert old in text
    with open(loft.conf, "w") as f:
        f.write(text.replace(old, new))


def served_cert(loft):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((LOFT_IP, loft.tls_port), 10) as raw:
        with ctx.wrap_socket(raw) as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def greeting(loft):
    m = IMAP(LOFT_IP, loft.port)
    text = m.welcome
    m.shutdown()
    return text


def test_reload_applies_settings_and_renewed_certificate(loft_factory, cluster):
    # a copy of the certificate, renewed in place below
    certs = os.path.join(loft_factory.cluster.base, "reload-certs")
    os.makedirs(certs, exist_ok=True)
    cert, key = os.path.join(certs, "cert.pem"), os.path.join(certs, "key.pem")
    shutil.copy(cluster.certs["cert"], cert)
    shutil.copy(cluster.certs["key"], key)
    loft = loft_factory(start=False)
    edit_conf(loft, 'cert = "%s"; key = "%s";' % (cluster.certs["cert"], cluster.certs["key"]),
              'cert = "%s"; key = "%s";' % (cert, key))
    loft.start()
    loft_factory.started.append(loft)
    old_cert = served_cert(loft)
    plain = IMAP(LOFT_IP, loft.port)
    assert plain.login("user1", "pass")[0] == "OK"
    secure = IMAPS(LOFT_IP, loft.tls_port, ssl_context=tls_context(cluster.certs["ca"]),
                   timeout=10)
    assert secure.login("user2", "pass")[0] == "OK"
    assert b"loft ready." in greeting(loft)

    # a renewed certificate in the same files, a new greeting
    renewed = loftlib.make_certs(os.path.join(certs, "renewed"), [LOFT_IP])
    shutil.copy(renewed["cert"], cert)
    shutil.copy(renewed["key"], key)
    edit_conf(loft, "login = { ", 'login = { greeting = "reloaded."; ')
    reload(loft, "reload done: ")
    text = loft.log_text()
    assert "reload: login.greeting changed" in text
    assert "reload done: 1 settings changed, 0 need a restart" in text
    assert b"reloaded." in greeting(loft)
    assert served_cert(loft) != old_cert
    # the sessions from before go on, the TLS one on its old certificate
    assert plain.select("INBOX")[0] == "OK"
    assert secure.select("INBOX")[0] == "OK"
    plain.logout()
    secure.logout()


def test_reload_keeps_what_needs_a_restart(loft_factory):
    loft = loft_factory()
    m = IMAP(LOFT_IP, loft.port)
    assert m.login("user3", "pass")[0] == "OK"
    edit_conf(loft, "port = %d; }" % loft.port, "port = %d; }" % (loft.port + 1000))
    edit_conf(loft, "log = {", 'limits = { max_prelogin_per_ip = 7; };\nlog = {')
    reload(loft, "reload done: ")
    text = loft.log_text()
    assert "reload: listeners changed, but only a restart applies it" in text
    assert "reload: limits.max_prelogin_per_ip changed" in text
    assert "1 settings changed, 1 need a restart" in text
    # still on the old port, not on the new one
    assert loftlib.port_open(LOFT_IP, loft.port)
    assert not loftlib.port_open(LOFT_IP, loft.port + 1000)
    assert m.noop()[0] == "OK"
    m.logout()


def test_broken_file_changes_nothing(loft_factory):
    loft = loft_factory()
    m = IMAP(LOFT_IP, loft.port)
    assert m.login("user4", "pass")[0] == "OK"
    edit_conf(loft, "log = {", "log = { oops")
    reload(loft, "reload failed, the running configuration stays: ")
    assert "loft.conf:" in loft.log_text().split("reload failed")[-1]
    assert b"loft ready." in greeting(loft)
    assert m.noop()[0] == "OK"
    m.logout()
    # a key that does not load makes the reload fail as a whole
    edit_conf(loft, "log = { oops", "log = {")
    edit_conf(loft, 'cert = "', 'cert = "/nonexistent')
    reload(loft, "reload failed, the running configuration stays: ")
    assert "tls.cert /nonexistent" in loft.log_text()
    assert b"loft ready." in greeting(loft)


def test_loftadm_reload(loft_factory):
    """loftadm reload does SIGHUP's work through the admin socket and says
    how it went: silent and 0 when it worked, the reason and 78
    (EX_CONFIG) when the running configuration stays."""
    loft = loft_factory()
    edit_conf(loft, "login = { ", 'login = { greeting = "by loftadm."; ')
    r = loftlib.loftadm("-a", loft.admin, "reload")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), r
    # answered after the reload: the new greeting is there already
    assert b"by loftadm." in greeting(loft)
    assert "loftadm reload: reloading" in loft.log_text()
    r = loftlib.loftadm("-v", "-a", loft.admin, "reload")
    assert r.returncode == 0 and r.stderr == "Info: reloaded\n", r
    edit_conf(loft, "log = {", "log = { oops")
    r = loftlib.loftadm("-a", loft.admin, "reload")
    assert r.returncode == 78, r
    assert r.stderr.startswith("Error: reload failed, the running configuration stays: "), r
    assert "loft.conf:" in r.stderr
    assert b"by loftadm." in greeting(loft)
    # no argument is taken
    r = loftlib.loftadm("-a", loft.admin, "reload", "now")
    assert r.returncode == 64 and "usage: loftadm reload" in r.stderr, r
