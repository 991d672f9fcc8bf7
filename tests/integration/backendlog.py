"""Who was logged in where, and when, read from the Dovecot backends' own
logs: the ring's promise that a user is never served by two backends at
once (doc/ring.md) checked where it matters, not from loftd's word.

A backend session runs from its login line to its "Disconnected" line:

  2026-12-04 07:52:46.133494 imap-login: Info: Login: user=<user2>, method=PLAIN, ...
      mpid=29593, secured, session=<006b12714d000003>
  2026-12-04 07:52:46.153914 imap(user2)<29593><006b12714d000003>: Info: Disconnected: ...

(the backends log microseconds: log_timestamp with %{usecs} in
fixtures/dovecot-backend.conf.in). The session id is loftd's, forwarded in
ID with the loftd listener the client reached (x-connected-port), so each
backend session is also tied to the loftd node that proxied it. A session
with no Disconnected line yet is open: it ends at +infinity.

Usage: marks = BackendLogs(cluster.backends) at the start of a test, then
marks.sessions() for everything logged since, and overlaps(sessions)."""
import datetime
import math
import os
import re

TS = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})"
LOGIN_RE = re.compile(TS + r" (\w+)-login: Info: Login: user=<([^>]*)>, .*?"
                      r"mpid=(\d+), .*?session=<([^>]+)>")
END_RE = re.compile(TS + r" (\w+)\(([^)]*)\)<(\d+)><([^>]*)>: Info: Disconnected\b(.*)")
ID_RE = re.compile(TS + r" \w+-login: Info: ID sent: .*?x-connected-port=(\d+)"
                   r".*session=<([^>]+)>")


def parse_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def fmt_time(t):
    if math.isinf(t):
        return "(still open)"
    return datetime.datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")


class Session:
    """One login on one backend, as the backend logged it."""

    def __init__(self, backend, user, service, pid, sid, start):
        self.backend, self.user, self.service = backend, user, service
        self.pid, self.sid, self.start = pid, sid, start
        self.end = math.inf
        self.reason = None
        self.port = None        # the loftd listener the client reached

    def __repr__(self):
        return "<%s %s on %s via :%s %s-%s %s>" % (
            self.service, self.user, self.backend, self.port, fmt_time(self.start),
            fmt_time(self.end), self.sid)


def parse(backend, text):
    """The sessions in one backend's log text, in login order.

    The login line comes from the login process and the Disconnected line
    from the mail process: a session that logs out at once may be logged
    as ended a few microseconds before it is logged as logged in. So the
    two are paired by (service, mail pid, session id) in either order, and
    a session lasts from the earlier of the two to the later."""
    sessions, by_key, ends, ports = [], {}, {}, {}
    for line in text.splitlines():
        m = LOGIN_RE.match(line)
        if m:
            ts, service, user, pid, sid = m.groups()
            s = Session(backend, user, service, pid, sid, parse_time(ts))
            rport = re.search(r" rport=(\d+),", line)
            s.port = ports.get((sid, rport.group(1) if rport else None))
            sessions.append(s)
            key = (service, pid, sid)
            if key in ends:
                s.end, s.reason = ends.pop(key)
            else:
                by_key[key] = s
            continue
        m = END_RE.match(line)
        if m:
            ts, service, user, pid, sid, rest = m.groups()
            end = (parse_time(ts), rest.lstrip(": "))
            s = by_key.pop((service, pid, sid), None)
            if s is None:
                ends[(service, pid, sid)] = end
            else:
                s.end, s.reason = end
            continue
        m = ID_RE.match(line)
        if m:
            rport = re.search(r" rport=(\d+),", line)
            # loftd's session ids are not unique across the ring's
            # nodes: the client's port tells two alike apart
            ports[(m.group(3), rport.group(1) if rport else None)] = int(m.group(2))
    for s in sessions:
        if s.end < s.start:
            s.start, s.end = s.end, s.start
    return sessions


def overlaps(sessions):
    """Pairs of sessions of one user on two different backends whose
    times overlap (a ends after b starts and b ends after a starts)."""
    by_user = {}
    for s in sessions:
        by_user.setdefault(s.user, []).append(s)
    found = []
    for user, ss in by_user.items():
        ss = sorted(ss, key=lambda s: s.start)
        for i, a in enumerate(ss):
            for b in ss[i + 1:]:
                if b.start >= a.end:
                    continue
                if a.backend != b.backend:
                    found.append((a, b))
    return found


def describe(pairs, limit=10):
    lines = []
    for a, b in pairs[:limit]:
        lines.append("%s on %s (via :%s) %s-%s overlaps %s (via :%s) %s-%s" % (
            a.user, a.backend, a.port, fmt_time(a.start), fmt_time(a.end), b.backend,
            b.port, fmt_time(b.start), fmt_time(b.end)))
    if len(pairs) > limit:
        lines.append("... and %d more" % (len(pairs) - limit))
    return "\n".join(lines)


def moved_users(sessions):
    """Users seen on more than one backend: the test could have caught an
    overlap of theirs."""
    seen = {}
    for s in sessions:
        seen.setdefault(s.user, set()).add(s.backend)
    return sorted(u for u, bs in seen.items() if len(bs) > 1)


class BackendLogs:
    """The backends' logs from a mark on: only what a test caused."""

    def __init__(self, backends):
        self.backends = list(backends)
        self.mark()

    def mark(self):
        self.offsets = {}
        for b in self.backends:
            try:
                self.offsets[b.name] = os.path.getsize(b.log)
            except OSError:
                self.offsets[b.name] = 0

    def text(self, backend):
        with open(backend.log, "rb") as f:
            f.seek(self.offsets[backend.name])
            data = f.read()
        # a line still being written is left for the next read
        cut = data.rfind(b"\n")
        return data[:cut + 1].decode(errors="replace")

    def sessions(self):
        out = []
        for b in self.backends:
            out.extend(parse(b.ip, self.text(b)))
        return sorted(out, key=lambda s: s.start)
