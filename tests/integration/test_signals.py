"""SIGTERM with shutdown.max_disconnect_delay (loftd(8) SIGNALS): logins
end at once, proxied sessions get their goodbye spread over the delay,
a second signal ends the rest, loftd exits 0."""
import signal
import socket
import ssl

import loftlib
from conftest import LOFT_IP
from imaputil import Raw

GOODBYE = "* BYE Server shutting down."


def logged_in(loft, user, tls_ca=None):
    r = Raw(LOFT_IP, loft.tls_port if tls_ca else loft.port, tls_ca=tls_ca)
    r.line()
    r.send("a LOGIN %s pass\r\n" % user)
    r.until("a OK")
    r.sock.setblocking(False)
    return r


def got_goodbye(r):
    """True once r has its goodbye and was closed (never blocks)."""
    try:
        while True:
            chunk = r.sock.recv(4096)
            if not chunk:
                break
            r.buf += chunk
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except ssl.SSLError:
        pass  # the TLS connection ended without close_notify
    assert r.buf.decode().rstrip("\r\n") == GOODBYE, r.buf
    return True


def wait_exit(loft):
    loftlib.wait_for(lambda: loft.proc.poll() is not None, 30, "loftd to exit")
    return loft.proc.returncode


def test_sigterm_spreads_disconnects(loft_factory):
    loft = loft_factory(extra_conf='shutdown = { max_disconnect_delay = "3s"; };')
    sessions = [logged_in(loft, "user%d" % (10 + i)) for i in range(12)]
    pre = Raw(LOFT_IP, loft.port)
    pre.line()
    loft.proc.send_signal(signal.SIGTERM)
    # the connection that has not logged in goes at once
    pre.sock.settimeout(10)
    assert pre.line() == GOODBYE
    assert pre.closed()
    # no new connections meanwhile
    loftlib.wait_for(lambda: not loftlib.port_open(LOFT_IP, loft.port), 10,
                     "the listener to close")
    # the proxied ones go a few at a time: at some moment some are gone
    # and some are still there
    seen_partial = []

    def progress():
        done = sum(got_goodbye(r) for r in sessions)
        if 0 < done < len(sessions):
            seen_partial.append(done)
        return done == len(sessions)
    loftlib.wait_for(progress, 30, "every session's goodbye")
    assert seen_partial, "all sessions were closed at once"
    assert wait_exit(loft) == 0
    loft_factory.started.remove(loft)
    loft.stop()
    assert "closing 12 proxied sessions over 3.000s" in loft.log_text()
    assert not loft.sanitizer_reports()


def test_second_sigterm_closes_the_rest(loft_factory, cluster):
    loft = loft_factory(extra_conf='shutdown = { max_disconnect_delay = "1h"; };')
    sessions = [logged_in(loft, "user%d" % (30 + i)) for i in range(3)]
    # a TLS session hears the goodbye too
    sessions.append(logged_in(loft, "user33", tls_ca=cluster.certs["ca"]))
    loft.proc.send_signal(signal.SIGTERM)
    loftlib.wait_for(lambda: "closing 4 proxied sessions" in loft.log_text(), 10, "log")
    assert not any(got_goodbye(r) for r in sessions)
    loft.proc.send_signal(signal.SIGTERM)
    loftlib.wait_for(lambda: all(got_goodbye(r) for r in sessions), 10, "the goodbyes")
    assert wait_exit(loft) == 0
    loft_factory.started.remove(loft)
    loft.stop()
    assert "SIGTERM again: closing the remaining 4 sessions now" in loft.log_text()
    for r in sessions:
        r.close()


def test_no_listener_during_spread(loft_factory):
    loft = loft_factory(extra_conf='shutdown = { max_disconnect_delay = "1h"; };')
    held = logged_in(loft, "user40")
    loft.proc.send_signal(signal.SIGTERM)
    loftlib.wait_for(lambda: "closing 1 proxied sessions" in loft.log_text(), 10, "log")
    try:
        socket.create_connection((LOFT_IP, loft.port), 2).close()
        connected = True
    except OSError:
        connected = False
    assert not connected
    loft.proc.send_signal(signal.SIGTERM)
    assert wait_exit(loft) == 0
    loft_factory.started.remove(loft)
    loft.stop()
    held.close()
