"""TLS session resumption (loft.conf(5) tls.ticket_key_file,
tls.ticket_lifetime): loftd issues session tickets whose keys derive from
one secret and the clock, so a client resumes its TLS session after a
reload, and on another node with the same key file; never with a node of
another secret. Real clients: Python's ssl (OpenSSL) over implicit TLS."""
import os
import signal
import socket
import ssl
import subprocess

import loftlib
from conftest import LOFT_IP
from test_reload import edit_conf, reload


def client():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def session_id_client():
    """A TLS 1.2 client without tickets: it resumes by session id."""
    c = client()
    c.maximum_version = ssl.TLSVersion.TLSv1_2
    c.options |= ssl.OP_NO_TICKET
    return c


def visit(loft, context, session=None):
    """An IMAP greeting over TLS; the connection's session and whether it
    resumed. (TLS 1.3 tickets come after the handshake: read the greeting
    and log out, so the client has them.)"""
    with socket.create_connection((LOFT_IP, loft.tls_port), timeout=10) as raw:
        with context.wrap_socket(raw, session=session) as s:
            assert s.recv(4096).startswith(b"* OK")
            s.sendall(b"a LOGOUT\r\n")
            while b"a OK" not in s.recv(4096):
                pass
            return s.session, s.session_reused


def test_a_session_resumes_on_the_same_node_and_after_a_reload(loft_factory):
    loft = loft_factory()
    c = client()
    session, reused = visit(loft, c)
    assert not reused and session is not None and session.has_ticket
    _, reused = visit(loft, c, session)
    assert reused
    # a reload builds a new TLS context: the process keeps its secret
    before = loft.log_text().count("reload done: ")
    loft.proc.send_signal(signal.SIGHUP)
    loftlib.wait_for(lambda: loft.log_text().count("reload done: ") > before, 10,
                     "the reload")
    _, reused = visit(loft, c, session)
    assert reused


def test_nodes_with_one_key_file_resume_each_others_sessions(loft_factory, tmp_path):
    shared = tmp_path / "ticket.key"
    shared.write_bytes(os.urandom(48))
    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(48))
    a = loft_factory(tls_extra='ticket_key_file = "%s";' % shared)
    b = loft_factory(tls_extra='ticket_key_file = "%s";' % shared)
    c_node = loft_factory(tls_extra='ticket_key_file = "%s";' % other)
    c = client()
    session, _ = visit(a, c)
    _, reused = visit(b, c, session)
    assert reused
    _, reused = visit(c_node, c, session)
    assert not reused       # another secret: a full handshake, no error


def test_a_short_or_missing_key_file_is_refused(loft_factory, tmp_path):
    short = tmp_path / "short.key"
    short.write_bytes(b"too short")
    for path, says in ((short, "9 bytes, at least 32 needed"),
                       (tmp_path / "missing.key", "No such file or directory")):
        loft = loft_factory(start=False, tls_extra='ticket_key_file = "%s";' % path)
        r = subprocess.run([loft.binary(), "-c", loft.conf], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0, r.stderr
        assert "tls.ticket_key_file %s: %s" % (path, says) in r.stdout + r.stderr, \
            r.stdout + r.stderr


def test_a_tls12_session_id_resumes(loft_factory):
    """Regression: a TLS 1.2 client without tickets resumes by session id
    (loftd closed every connection without marking the session good, and
    OpenSSL then dropped it from the cache: nobody ever resumed)."""
    loft = loft_factory()
    c = session_id_client()
    session, reused = visit(loft, c)
    assert not reused and session is not None and not session.has_ticket
    for _ in range(3):
        _, reused = visit(loft, c, session)
        assert reused


def visit_and_drop(loft, context, session=None):
    """An IMAP greeting over TLS, then the client goes without a word: its
    TCP side closes with no close_notify (as a mail client that quits or
    loses its network does) and loftd sees the EOF before it closes. The
    connection's session and whether it resumed, once loftd has closed."""
    with socket.create_connection((LOFT_IP, loft.tls_port), timeout=10) as raw:
        with context.wrap_socket(raw, session=session) as s:
            assert s.recv(4096).startswith(b"* OK")
            # the SSL object lives on (its close would send nothing
            # either); the TCP side ends under it
            with socket.socket(fileno=os.dup(s.fileno())) as tcp:
                tcp.shutdown(socket.SHUT_WR)
                tcp.settimeout(10)
                while tcp.recv(4096) != b"":
                    pass    # loftd's close_notify, if any, then its close
            return s.session, s.session_reused


def test_a_tls12_session_id_resumes_after_the_client_dropped_it(loft_factory):
    """Regression: a TLS 1.2 session survives an EOF without close_notify.
    OpenSSL 3 reports such an EOF as a fatal error and drops the session
    from the cache; loft's clients (the bench's load generator, most mail
    clients) close without one, and only 60 % of session ids resumed."""
    loft = loft_factory()
    c = session_id_client()
    session, reused = visit_and_drop(loft, c)
    assert not reused and session is not None and not session.has_ticket
    for _ in range(3):
        _, reused = visit_and_drop(loft, c, session)
        assert reused


def test_a_tls12_session_id_resumes_after_a_reload(loft_factory):
    """Regression: a reload made a new TLS context and every TLS 1.2
    session id was lost with the old one's cache. They are carried over,
    unless the ciphers (or protocols) they were agreed under changed."""
    loft = loft_factory(tls_extra='ciphers = "ECDHE+AESGCM";')
    c = session_id_client()
    session, reused = visit(loft, c)
    assert not reused and not session.has_ticket
    reload(loft, "reload done: ")
    _, reused = visit(loft, c, session)
    assert reused
    edit_conf(loft, 'ciphers = "ECDHE+AESGCM";', 'ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";')
    reload(loft, "reload done: ")
    _, reused = visit(loft, c, session)
    assert not reused
