"""Chaos tests of the director ring (doc/ring.md), whose core assertion is
read from the Dovecot backends' own logs (backendlog.py): no user was ever
logged in on two backends at overlapping times. First, the checker itself."""
import backendlog


# ---- the checker itself ----------------------------------------------------------------

FABRICATED = """\
2026-12-04 10:00:00.100000 imap-login: Info: ID sent: x-session-id=a1, x-originating-ip=127.0.0.1, x-originating-port=1, x-connected-ip=127.0.0.1, x-connected-port=11143, x-proxy-ttl=4: user=<>, rip=127.0.0.1, rport=1, lip=127.0.0.1, secured, session=<a1>
2026-12-04 10:00:00.200000 imap-login: Info: Login: user=<user1>, method=PLAIN, rip=127.0.0.1, rport=1, lip=127.0.0.1, mpid=100, secured, session=<a1>
2026-12-04 10:00:02.000000 imap(user1)<100><a1>: Info: Disconnected: Logged out in=24 out=536
2026-12-04 10:00:03.000000 imap-login: Info: Login: user=<user3>, method=PLAIN, rip=127.0.0.1, rport=1, lip=127.0.0.1, mpid=102, secured, session=<a3>
2026-12-04 10:00:04.000000 imap(user4)<103><a4>: Info: Disconnected: Logged out in=24 out=536
2026-12-04 10:00:04.000050 imap-login: Info: Login: user=<user4>, method=PLAIN, rip=127.0.0.1, rport=1, lip=127.0.0.1, mpid=103, secured, session=<a4>
"""
FABRICATED_OTHER = """\
2026-12-04 10:00:01.999999 imap-login: Info: Login: user=<user1>, method=PLAIN, rip=127.0.0.1, rport=1, lip=127.0.0.1, mpid=200, secured, session=<b1>
2026-12-04 10:00:02.500000 imap(user1)<200><b1>: Info: Disconnected: Connection closed (UID FETCH finished 0.001 secs ago) in=10 out=20
2026-12-04 10:00:02.000000 imap-login: Info: Login: user=<user2>, method=PLAIN, rip=127.0.0.1, rport=1, lip=127.0.0.1, mpid=201, secured, session=<b2>
2026-12-04 10:00:02.100000 imap(user2)<201><b2>: Info: Disconnected: Logged out in=24 out=536
2026-12-04 10:00:09.000000 imap-login: Info: Login: user=<user3>, method=PLAIN, rip=127.0.0.1, rport=1, lip=127.0.0.1, mpid=202, secured, session=<b3>
2026-12-04 10:00:09.100000 imap(user3)<202><b3>: Info: Disconnected: Logged out in=24 out=536
"""


def test_the_overlap_checker_catches_an_overlap():
    """The checker the chaos tests rely on finds a user logged in on two
    backends 1 us apart, and one whose first session never ended; it does
    not flag a user whose sessions follow each other, and pairs a session
    whose end was logged before its login."""
    ss = backendlog.parse("be1", FABRICATED) + backendlog.parse("be2", FABRICATED_OTHER)
    assert [s.port for s in ss if s.sid == "a1"] == [11143]
    assert [s.user for s in ss if s.end == float("inf")] == ["user3"]
    assert [s.reason for s in ss if s.sid == "b1"] == [
        "Connection closed (UID FETCH finished 0.001 secs ago) in=10 out=20"]
    pairs = backendlog.overlaps(ss)
    assert sorted((a.user, a.backend, b.backend) for a, b in pairs) == [
        ("user1", "be1", "be2"), ("user3", "be1", "be2")], backendlog.describe(pairs)
    assert backendlog.moved_users(ss) == ["user1", "user3"]
    # the same sessions one microsecond apart do not overlap
    ok = FABRICATED_OTHER.replace("10:00:01.999999", "10:00:02.000000")
    ok_ss = backendlog.parse("be1", "\n".join(FABRICATED.splitlines()[:3]) + "\n") + \
        backendlog.parse("be2", ok)
    assert backendlog.overlaps(ok_ss) == []
