"""SASL mechanisms loft cannot verify, passed through (loft.conf(5)
auth.passthrough_mechanisms): XOAUTH2 and OAUTHBEARER, whose token only the
mail system's OAuth server can judge, and SCRAM-SHA-1/-256, whose proof
only the holder of the password's keys can. loft reads the user from the
client's first message, looks it up without a password, routes it, and
logs in at the backend with the client's own mechanism and message; the
backend's challenges go to the client and its answers back, until the
backend decides.

The backends here are real Dovecots with its oauth2 passdb (introspection,
against an endpoint this module serves) and SCRAM (keys derived from the
shared users' plaintext passwords, and a user stored with SCRAM-SHA-256
keys only); the clients are imaplib, smtplib
and curl, and a SCRAM client written out below (RFC 5802), which checks
the backend's server signature: the exchange reached the backend whole."""
import base64
import hashlib
import hmac
import http.server
import json
import os
import poplib
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import urllib.parse

import pytest

import loftlib
from conftest import LOFT_IP, NET, RELAY_IP, USERS, LoftFactory
from imaputil import IMAP, dovecot_host

BACKEND_IPS = ["%s.31" % NET, "%s.32" % NET]
OAUTH_IP = "%s.249" % NET
OAUTH_PORT = 18080
BACKEND_PORT = 20143
PASSTHROUGH = '"XOAUTH2", "OAUTHBEARER", "SCRAM-SHA-256", "SCRAM-SHA-1"'
TOKENS = {"token-of-%s" % u: u for u in ("user5", "user6", "user7", "user8")}
# a user whose backend keeps only SCRAM keys (no plaintext to derive them)
SCRAM_USER, SCRAM_PASSWORD = "scramuser", "scram secret"


DOVECOT_EXTRA = """
auth_mechanisms = plain login scram-sha-1 scram-sha-256 xoauth2 oauthbearer
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = @BASE@/oauth2.conf
}
"""

OAUTH2_CONF = """\
introspection_mode = post
introspection_url = http://%s:%d/introspect
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
"""


class Introspection(http.server.BaseHTTPRequestHandler):
    """RFC 7662 token introspection: TOKENS are active, nothing else."""
    seen = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        token = urllib.parse.parse_qs(body).get("token", [""])[0]
        Introspection.seen.append(token)
        user = TOKENS.get(token)
        answer = {"active": "true", "username": user} if user else {"active": "false"}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def oauth_cluster(cluster):
    """cluster (the shared backends) first: it checks that nothing
    listens in the net yet, and these backends share it."""
    base = tempfile.mkdtemp(prefix="loft-sasl-", dir="/tmp")
    server = http.server.ThreadingHTTPServer((OAUTH_IP, OAUTH_PORT), Introspection)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    c = loftlib.Cluster(base, BACKEND_IPS, BACKEND_PORT, USERS, relay_ip=RELAY_IP,
                        extra_conf=DOVECOT_EXTRA)
    stored = subprocess.run(["doveadm", "pw", "-s", "SCRAM-SHA-256", "-p", SCRAM_PASSWORD],
                            capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(base, "users.passwd"), "a") as f:
        f.write("%s:%s::::::\n" % (SCRAM_USER, stored))
    with open(os.path.join(base, "oauth2.conf"), "w") as f:
        f.write(OAUTH2_CONF % (OAUTH_IP, OAUTH_PORT))
    try:
        c.start(sink=False)
        yield c
    finally:
        c.stop()
        server.shutdown()
        server.server_close()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def factory(oauth_cluster):
    f = LoftFactory(oauth_cluster)
    # every port it derives (loftlib's offsets: POP3, ManageSieve,
    # Submission, LMTP) clear of the other factories' (10143, 11143, 11301)
    f.next_port = 14143
    yield f
    f.stop_all()


@pytest.fixture(scope="module")
def loft(factory):
    return factory(penalty="false",
                   auth_extra="passthrough_mechanisms = [ %s ];" % PASSTHROUGH)


def backend_name(cluster, user):
    ip = dovecot_host(BACKEND_IPS, user)
    return next(b.name for b in cluster.backends if b.ip == ip)


def capabilities(port):
    m = IMAP(LOFT_IP, port)
    try:
        return m.capabilities
    finally:
        m.shutdown()


def xoauth2(user, token):
    return ("user=%s\x01auth=Bearer %s\x01\x01" % (user, token)).encode()


class OAuthClient:
    """imaplib's authobject: the message first, then an empty answer to
    the error challenge (RFC 7628 §3.2.3; XOAUTH2 alike), which it keeps."""

    def __init__(self, message):
        self.message, self.errors, self.sent = message, [], False

    def __call__(self, challenge):
        if not self.sent:
            self.sent = True
            return self.message
        self.errors.append(challenge)
        return b""


class ScramClient:
    """RFC 5802 client for imaplib.authenticate and smtplib.auth; abort_at:
    the step at which it answers "*" instead."""

    def __init__(self, user, password, hname="sha256", abort_at=None):
        self.user, self.password, self.hname = user, password, hname
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.gs2 = "n,,"
        self.first_bare = "n=%s,r=%s" % (user, self.nonce)
        self.step, self.abort_at, self.verified = 0, abort_at, False

    def __call__(self, challenge):
        self.step += 1
        if self.step == self.abort_at:
            return None  # imaplib sends "*"
        if self.step == 1:
            return (self.gs2 + self.first_bare).encode()
        if self.step == 2:
            server_first = challenge.decode()
            attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
            assert attrs["r"].startswith(self.nonce), server_first
            salted = hashlib.pbkdf2_hmac(self.hname, self.password.encode(),
                                         base64.b64decode(attrs["s"]), int(attrs["i"]))
            client_key = hmac.new(salted, b"Client Key", self.hname).digest()
            stored_key = hashlib.new(self.hname, client_key).digest()
            final_bare = "c=%s,r=%s" % (base64.b64encode(self.gs2.encode()).decode(),
                                        attrs["r"])
            auth_msg = ",".join((self.first_bare, server_first, final_bare)).encode()
            signature = hmac.new(stored_key, auth_msg, self.hname).digest()
            proof = bytes(a ^ b for a, b in zip(client_key, signature))
            server_key = hmac.new(salted, b"Server Key", self.hname).digest()
            self.server_signature = base64.b64encode(
                hmac.new(server_key, auth_msg, self.hname).digest()).decode()
            return ("%s,p=%s" % (final_bare, base64.b64encode(proof).decode())).encode()
        # server-final: the backend proved it knows the password's keys
        assert challenge.decode() == "v=" + self.server_signature, challenge
        self.verified = True
        return b""


def test_offered_only_where_configured(factory, loft):
    # not configured: neither offered nor accepted
    plain = factory(penalty="false")
    caps = capabilities(plain.port)
    assert "AUTH=PLAIN" in caps and not any("XOAUTH2" in c or "SCRAM" in c for c in caps)
    m = IMAP(LOFT_IP, plain.port)
    with pytest.raises(IMAP.error, match="Unsupported authentication mechanism"):
        m.authenticate("XOAUTH2", OAuthClient(xoauth2("user5", "token-of-user5")))
    m.shutdown()
    # configured: offered after PLAIN and LOGIN
    caps = capabilities(loft.port)
    for mech in ("XOAUTH2", "OAUTHBEARER", "SCRAM-SHA-256", "SCRAM-SHA-1"):
        assert "AUTH=" + mech in caps, caps
    # without TLS and plaintext refused: the bearer tokens go with PLAIN
    # and LOGIN (Dovecot counts them plaintext), SCRAM stays
    strict = factory(penalty="false", dpa="true",
                     auth_extra="passthrough_mechanisms = [ %s ];" % PASSTHROUGH)
    caps = capabilities(strict.port)
    assert "LOGINDISABLED" in caps and "AUTH=SCRAM-SHA-256" in caps, caps
    assert not any(c in caps for c in ("AUTH=PLAIN", "AUTH=XOAUTH2", "AUTH=OAUTHBEARER"))
    m = IMAP(LOFT_IP, strict.port)
    client = ScramClient("user6", USERS["user6"])
    assert m.authenticate("SCRAM-SHA-256", client)[0] == "OK" and client.verified
    m.logout()


def test_xoauth2_is_decided_by_the_backend(oauth_cluster, loft):
    seen = len(Introspection.seen)
    m = IMAP(LOFT_IP, loft.port)
    client = OAuthClient(xoauth2("user5", "token-of-user5"))
    assert m.authenticate("XOAUTH2", client)[0] == "OK"
    # routed by the token message's user, logged in there as that user
    assert m.backend_name() == backend_name(oauth_cluster, "user5")
    assert m.select("INBOX")[0] == "OK"
    # listed as that user
    r = loftlib.loftadm("-f", "tab", "who", "-1", "-a", loft.admin)
    assert r.returncode == 0, r.stderr
    assert [line.split("\t")[0] for line in r.stdout.splitlines()[1:]] == ["user5"]
    m.logout()
    assert Introspection.seen[seen:] == ["token-of-user5"]

    # a token the OAuth server does not know: the backend's JSON error
    # reaches the client (which may refresh its token), then the generic
    # failure
    m = IMAP(LOFT_IP, loft.port)
    client = OAuthClient(xoauth2("user6", "stolen"))
    with pytest.raises(IMAP.error, match="AUTHENTICATIONFAILED"):
        m.authenticate("XOAUTH2", client)
    assert len(client.errors) == 1 and b'"status"' in client.errors[0], client.errors
    # the connection goes on: the same client logs in with its password
    assert m.login("user6", USERS["user6"])[0] == "OK"
    m.logout()
    assert "login failed: the backend rejected the credentials" in loft.log_text()


def test_oauthbearer_with_curl(oauth_cluster, loft):
    # curl picks OAUTHBEARER (RFC 7628, a GS2 header naming the user)
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "imap://%s:%d/" % (LOFT_IP, loft.port),
         "--user", "user7", "--oauth2-bearer", "token-of-user7", "-X", "ID NIL"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert backend_name(oauth_cluster, "user7") in out.stdout, out.stdout
    # and XOAUTH2 when told to, over POP3
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "pop3://%s:%d/" % (LOFT_IP, loft.pop3_port),
         "--user", "user8", "--oauth2-bearer", "token-of-user8",
         "--login-options", "AUTH=XOAUTH2"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "pop3://%s:%d/" % (LOFT_IP, loft.pop3_port),
         "--user", "user8", "--oauth2-bearer", "expired",
         "--login-options", "AUTH=XOAUTH2"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 67, (out.returncode, out.stderr)  # login denied


@pytest.mark.parametrize("mech,hname", [("SCRAM-SHA-256", "sha256"), ("SCRAM-SHA-1", "sha1")])
def test_scram_is_relayed_round_by_round(oauth_cluster, loft, mech, hname):
    m = IMAP(LOFT_IP, loft.port)
    client = ScramClient("user5", USERS["user5"], hname)
    assert m.authenticate(mech, client)[0] == "OK"
    # the server signature checked out: the backend ran the exchange
    assert client.verified and client.step == 3
    assert m.backend_name() == backend_name(oauth_cluster, "user5")
    m.logout()
    # a wrong password fails at the backend, generically
    m = IMAP(LOFT_IP, loft.port)
    with pytest.raises(IMAP.error, match="AUTHENTICATIONFAILED"):
        m.authenticate(mech, ScramClient("user5", "not the password", hname))
    m.shutdown()


def test_scram_with_stored_keys(oauth_cluster, loft):
    # the backend holds SCRAM-SHA-256 keys only: no one but the client
    # and the backend could have run this exchange
    m = IMAP(LOFT_IP, loft.port)
    client = ScramClient(SCRAM_USER, SCRAM_PASSWORD)
    assert m.authenticate("SCRAM-SHA-256", client)[0] == "OK" and client.verified
    assert m.backend_name() == backend_name(oauth_cluster, SCRAM_USER)
    m.logout()


def test_client_ends_the_exchange(loft):
    m = IMAP(LOFT_IP, loft.port)
    # "*" in answer to the backend's server-first message
    with pytest.raises(IMAP.error, match="aborted"):
        m.authenticate("SCRAM-SHA-256", ScramClient("user5", USERS["user5"], abort_at=2))
    # nothing of it is left: the next login works, on the same connection
    assert m.login("user5", USERS["user5"])[0] == "OK"
    m.logout()
    # a message that names nobody never reaches a backend; the log says
    # what was wrong with it, the client gets the generic failure
    m = IMAP(LOFT_IP, loft.port)
    with pytest.raises(IMAP.error, match="AUTHENTICATIONFAILED"):
        m.authenticate("XOAUTH2", lambda _: b"auth=Bearer x\x01\x01")
    m.shutdown()
    loftlib.wait_for(lambda: "login failed: XOAUTH2: no user=" in loft.log_text(), 10,
                     "the refused message in the log")


def test_submission_xoauth2(loft):
    s = smtplib.SMTP(LOFT_IP, loft.submission_port, timeout=20)
    s.ehlo()
    assert "XOAUTH2" in s.esmtp_features["auth"]
    code, _ = s.auth("XOAUTH2", lambda challenge=None:
                     xoauth2("user6", "token-of-user6").decode()
                     if challenge is None else "")
    assert code == 235
    s.quit()


def test_unknown_mechanism_is_refused_at_start(factory):
    bad = factory(start=False, auth_extra='passthrough_mechanisms = [ "CRAM-MD5" ];')
    r = subprocess.run([bad.binary(), "-n", "-c", bad.conf], capture_output=True, text=True)
    assert r.returncode != 0
    assert 'auth.passthrough_mechanisms: unknown mechanism "CRAM-MD5"' in r.stderr, r.stderr


class Sieve:
    """A ManageSieve client for the exchange (RFC 5804 §2.1): strings both
    ways."""

    def __init__(self, port):
        self.sock = socket.create_connection((LOFT_IP, port), timeout=20)
        self.f = self.sock.makefile("rb")
        while not self.line().startswith("OK"):
            pass

    def line(self):
        return self.f.readline().decode().rstrip("\r\n")

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def authenticate(self, mech, client):
        self.send('AUTHENTICATE "%s" "%s"' % (
            mech, base64.b64encode(client(b"")).decode()))
        while True:
            reply = self.line()
            if not reply.startswith('"'):
                return reply
            answer = client(base64.b64decode(reply.strip('"')))
            self.send('"%s"' % base64.b64encode(answer).decode())


def test_managesieve_scram(oauth_cluster, loft):
    s = Sieve(loft.sieve_port)
    client = ScramClient("user7", USERS["user7"])
    reply = s.authenticate("SCRAM-SHA-256", client)
    assert reply.startswith("OK"), reply
    assert client.verified
    s.send("LOGOUT")
    s.sock.close()


def test_a_refused_token_earns_the_penalty(factory):
    loft = factory(log_level="debug",
                   auth_extra="passthrough_mechanisms = [ %s ];" % PASSTHROUGH)
    source = "%s.204" % NET
    m = IMAP(LOFT_IP, loft.port, source=source)
    with pytest.raises(IMAP.error, match="AUTHENTICATIONFAILED"):
        m.authenticate("XOAUTH2", OAuthClient(xoauth2("user5", "revoked")))
    # the backend said no: that address's next login waits, as after a
    # wrong password
    assert m.authenticate("XOAUTH2", OAuthClient(xoauth2("user5", "token-of-user5")))[0] \
        == "OK"
    assert "auth delayed 4000ms by failure penalty" in loft.log_text()
    m.logout()


def test_a_backend_without_the_mechanism(loft_factory):
    """The shared backends offer PLAIN and LOGIN only: a pass-through
    login is not tried there (a temporary failure, no penalty for the
    client's address), and the same client's password login goes on."""
    loft = loft_factory(log_level="debug",
                        auth_extra="passthrough_mechanisms = [ %s ];" % PASSTHROUGH)
    m = IMAP(LOFT_IP, loft.port)
    with pytest.raises(IMAP.error, match="UNAVAILABLE"):
        m.authenticate("XOAUTH2", OAuthClient(xoauth2("user5", "token-of-user5")))
    assert m.login("user5", USERS["user5"])[0] == "OK"
    m.logout()
    # POP3 asks CAPA first (a backend's SASL line)
    p = poplib.POP3(LOFT_IP, loft.pop3_port, timeout=10)
    msg = base64.b64encode(xoauth2("user5", "token-of-user5")).decode()
    with pytest.raises(poplib.error_proto, match=r"\[SYS/TEMP\]"):
        p._shortcmd("AUTH XOAUTH2 " + msg)
    p.user("user5")
    assert p.pass_(USERS["user5"]).startswith(b"+OK")
    p.quit()
    log = loft.log_text()
    assert log.count("the client's SASL mechanism is not advertised") == 2, log
    assert "delayed" not in log
