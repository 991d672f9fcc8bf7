"""The SQL passdb (loft.conf(5) SQL) against a private PostgreSQL cluster
(initdb + pg_ctl in a temporary directory, listening on loopback, run as
the postgres user so that it works when the tests run as root) and an
SQLite file, with real Dovecot backends behind loftd: passwords read
({CRYPT}, {PLAIN}), the host column routing, nologin with a reason,
nopassword (the backend checks), an alternative username, NULL columns
absent, injection attempts in user names finding nobody with the table
intact, PostgreSQL stopped (temporary failures at once, logins again
after it restarts, the same loftd) and stopped with SIGSTOP (SQL logins
wait for their timeout, a passwd-file user's login does not), and the
SQLite file replaced by another."""
import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time

import pytest

import loftlib
from loftlib import loftadm
from conftest import BACKEND_IPS, LOFT_IP, NET, WORKER
from imaputil import IMAP, dovecot_host
from passdblib import (PASSWD_USER, backend_of, fails, login, make_loft,
                       routed_elsewhere, sha512_crypt, stalled_login_check)

PG_BIN = "/usr/lib/postgresql/15/bin"
PG_IP = "%s.251" % NET
# also on 127.0.0.1, which "localhost" names: a port per xdist worker
PG_PORT = 5433 + int(WORKER[2:])
DB_USER, DB_PASSWORD = "loft", "loft-db-pw"

# username -> (password, host, nologin, reason, nopassword); the backends
# know user1..user40 with the password "pass"
ROWS = {
    "user21": ("crypt", None, None, None, None),     # {CRYPT}$6$...
    "user22": ("{PLAIN}pass", None, None, None, None),
    "user23": ("{PLAIN}pass", "routed", None, None, None),
    "user24": ("{PLAIN}pass", None, "Y", "Account moved away.", None),
    "user25": ("{PLAIN}other", None, None, None, None),  # not the backend's
    "user26": (None, None, None, None, "Y"),          # the backend checks
}
QUERY = ("SELECT username AS user, password, host, nologin, reason, nopassword, "
         "'Y' AS proxy, mail AS user_email FROM users WHERE username = '%n'")


def rows():
    out = []
    for user, (pw, host, nologin, reason, nopw) in sorted(ROWS.items()):
        if pw == "crypt":
            pw = sha512_crypt("pass")
        if host == "routed":
            host = routed_elsewhere(user)
        out.append((user, pw, host, nologin, reason, nopw, "%s@example.org" % user))
    return out


class Postgres:
    """A private PostgreSQL cluster on PG_IP:PG_PORT and a Unix socket in
    its directory, owned by the postgres user (initdb refuses root)."""

    def __init__(self, base):
        self.dir = base
        self.data = os.path.join(base, "data")
        self.owner = pwd.getpwnam("postgres" if self.user_exists("postgres") else "nobody")
        os.chown(base, self.owner.pw_uid, self.owner.pw_gid)
        self.as_owner([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", "postgres",
                       "--auth-local=trust", "--auth-host=scram-sha-256",
                       "--no-sync", "-E", "UTF8", "--locale=C"])

    @staticmethod
    def user_exists(name):
        try:
            pwd.getpwnam(name)
            return True
        except KeyError:
            return False

    def as_owner(self, cmd, **kw):
        return subprocess.run(["runuser", "-u", self.owner.pw_name, "--"] + cmd,
                              check=True, capture_output=True, text=True, cwd=self.dir,
                              **kw)

    def start(self):
        self.as_owner([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-w", "-t", "30",
                       "-l", os.path.join(self.dir, "postgres.log"), "-o",
                       "-c listen_addresses=%s,127.0.0.1 -c port=%d "
                       "-c unix_socket_directories=%s -c fsync=off"
                       % (PG_IP, PG_PORT, self.dir), "start"])

    def stop(self):
        self.cont()
        self.as_owner([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-w", "-t", "30",
                       "-m", "fast", "stop"])

    def pids(self):
        """The postmaster and its children (backends and helpers)."""
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            master = int(f.readline())
        out = [master]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open("/proc/%s/stat" % entry) as f:
                        if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                            out.append(int(entry))
                except (OSError, IndexError, ValueError):
                    pass
        return out

    def signal(self, sig):
        for pid in self.pids():
            os.kill(pid, sig)

    def cont(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self.signal(signal.SIGCONT)

    def psql(self, sql, db="mail"):
        return self.as_owner(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                              "-h", self.dir, "-p", str(PG_PORT), "-U", "postgres",
                              "-d", db, "-c", sql]).stdout.strip()


@pytest.fixture(scope="module")
def postgres():
    base = tempfile.mkdtemp(prefix="loft-pg-", dir="/tmp")
    pg = Postgres(base)
    pg.start()
    try:
        pg.psql("CREATE DATABASE mail", db="postgres")
        pg.psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (DB_USER, DB_PASSWORD))
        pg.psql("CREATE TABLE users (username text PRIMARY KEY, password text, host text, "
                "nologin text, reason text, nopassword text, mail text)")
        for row in rows():
            pg.psql("INSERT INTO users VALUES (%s)" % ", ".join(
                "NULL" if v is None else "'%s'" % v for v in row))
        pg.psql("GRANT SELECT ON users TO %s" % DB_USER)
        yield pg
    finally:
        try:
            pg.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(base, ignore_errors=True)


def sqlite_file(path, table_rows):
    tmp = path + ".new"
    if os.path.exists(tmp):
        os.unlink(tmp)
    db = sqlite3.connect(tmp)
    db.execute("CREATE TABLE users (username text PRIMARY KEY, password text, host text, "
               "nologin text, reason text, nopassword text, mail text)")
    db.executemany("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?)", table_rows)
    db.commit()
    db.close()
    os.rename(tmp, path)       # replaced whole, as an operator would


@pytest.fixture(scope="module")
def sqlite_db():
    base = tempfile.mkdtemp(prefix="loft-sqlite-", dir="/tmp")
    path = os.path.join(base, "users.db")
    sqlite_file(path, rows())
    try:
        yield path
    finally:
        shutil.rmtree(base, ignore_errors=True)


def pg_passdb(**opts):
    settings = {
        "driver": '"sql"',
        "connect": '"hostaddr=%s port=%d dbname=mail user=%s password=%s"'
                   % (PG_IP, PG_PORT, DB_USER, DB_PASSWORD),
        "password_query": '"%s"' % QUERY,
        "timeout": '"2s"',
        "pool_size": "2",
        "reconnect_max": '"1s"',
    }
    settings.update(opts)
    return "{ %s }" % " ".join("%s = %s;" % kv for kv in settings.items())


def sqlite_passdb(path):
    return '{ driver = "sql"; connect = "sqlite:%s"; password_query = "%s"; }' % (
        path, QUERY)


@pytest.fixture(params=["postgresql", "sqlite"])
def sql_loft(request, loft_factory, cluster):
    """A loftd with a passwd-file passdb, then the SQL one, of each engine."""
    if request.param == "postgresql":
        db = request.getfixturevalue("postgres")
        passdb = pg_passdb()
        count = lambda: int(db.psql("SELECT count(*) FROM users"))  # noqa: E731
    else:
        path = request.getfixturevalue("sqlite_db")
        passdb = sqlite_passdb(path)
        count = lambda: sqlite3.connect(path).execute(  # noqa: E731
            "SELECT count(*) FROM users").fetchone()[0]
    loft = make_loft(loft_factory, cluster, passdb, name="sql")
    loft.rows_in_table = count
    return loft


def test_passwords_and_fields(sql_loft, cluster):
    loft = sql_loft
    for user in ("user21", "user22"):
        typ, text, backend = login(loft, user, "pass")
        assert typ == "OK", (user, text, loft.log_text()[-2000:])
        assert backend == backend_of(cluster, dovecot_host(BACKEND_IPS, user))
        typ, text, _ = login(loft, user, "wrong")
        assert typ == "NO" and "[AUTHENTICATIONFAILED]" in text, text
    # the database's password, not the backend's, is checked first
    assert login(loft, "user25", "pass")[0] == "NO"
    assert login(loft, "user25", "other")[0] == "NO"   # the backend's refusal
    # unknown to both passdbs; the passwd-file one still answers its own
    assert login(loft, "user39", "pass")[0] == "NO"
    assert login(loft, PASSWD_USER, "pass")[0] == "OK"

    # host: routed there, not where the director would
    typ, text, backend = login(loft, "user23", "pass")
    assert typ == "OK", text
    assert backend == backend_of(cluster, routed_elsewhere("user23"))
    # nologin with its reason; a wrong password hears nothing of it
    typ, text, _ = login(loft, "user24", "pass")
    assert typ == "NO" and "Account moved away." in text, text
    typ, text, _ = login(loft, "user24", "wrong")
    assert typ == "NO" and "moved" not in text
    # nopassword (no password stored): the backend checks the password
    assert login(loft, "user26", "pass")[0] == "OK"
    typ, text, _ = login(loft, "user26", "wrong")
    assert typ == "NO" and "[AUTHENTICATIONFAILED]" in text, text

    # user_email: an alternative username a kick can match
    held = IMAP(LOFT_IP, loft.port)
    assert held.login("user22", "pass")[0] == "OK"
    r = loftadm("kick", "-a", loft.admin, "-f", "user_email", "user22@example.*")
    assert r.stdout == "kicked connections from the following users:\nuser22 \n", r.stdout
    loftlib.wait_for(lambda: fails(held.noop), 10, "the kicked session to close")


def test_injection_finds_nobody(sql_loft):
    """Names that would be SQL if pasted into the query are values: they
    find nobody (an unknown user, not an error) and change nothing."""
    loft = sql_loft
    before = loft.rows_in_table()
    for name in ("' OR '1'='1", "x'; DROP TABLE users; --", "user21' --",
                 "user21' OR username LIKE '%", "' UNION SELECT 'a', '{PLAIN}pass' --",
                 "%u", "$1"):
        for password in ("pass", "{PLAIN}pass"):
            typ, text, _ = login(loft, name, password)
            assert typ == "NO" and "AUTHENTICATIONFAILED" in text, (name, text)
    assert "more than one row" not in loft.log_text()
    assert "passdb sql:" not in loft.log_text()
    assert loft.rows_in_table() == before == len(ROWS)
    assert login(loft, "user21", "pass")[0] == "OK"


def test_postgres_restarted(postgres, loft_factory, cluster):
    """Stopped: temporary failures at once, the passwd-file user unharmed;
    started again: SQL logins work, the same loftd."""
    loft = make_loft(loft_factory, cluster, pg_passdb(), name="sql")
    assert login(loft, "user21", "pass")[0] == "OK"
    postgres.stop()
    try:
        for _ in range(2):      # the lost connection, then none to be had
            start = time.monotonic()
            typ, text, _ = login(loft, "user22", "pass")
            assert typ == "NO" and "[UNAVAILABLE]" in text, text
            assert time.monotonic() - start < 1.5
        assert login(loft, PASSWD_USER, "pass")[0] == "OK"
        assert "PostgreSQL connection" in loft.log_text()
    finally:
        postgres.start()
    # reconnect_max = 1s: back within a few attempts
    loftlib.wait_for(lambda: login(loft, "user22", "pass")[0] == "OK", 10,
                     "SQL logins to work again")
    assert login(loft, "user23", "pass")[0] == "OK"
    assert loft.log_text().count("loftd started") == 1


def test_postgres_by_host_name(postgres, loft_factory, cluster):
    """A host name in connect is resolved on the loop (evdns, /etc/hosts
    first), not by libpq, which would block it: "localhost" works; a name
    that resolves to nothing fails only the SQL logins, temporarily, with
    the reason in the log, and a passwd-file user logs in meanwhile."""
    by_name = '"host=localhost port=%d dbname=mail user=%s password=%s"' % (
        PG_PORT, DB_USER, DB_PASSWORD)
    loft = make_loft(loft_factory, cluster, pg_passdb(connect=by_name), name="sql")
    assert login(loft, "user21", "pass")[0] == "OK"
    assert login(loft, "user23", "pass")[0] == "OK"
    nowhere = '"host=nowhere.invalid port=%d dbname=mail user=%s password=%s"' % (
        PG_PORT, DB_USER, DB_PASSWORD)
    loft = make_loft(loft_factory, cluster, pg_passdb(connect=nowhere), name="sql2")
    typ, text, _ = login(loft, "user22", "pass")
    assert typ == "NO" and "[UNAVAILABLE]" in text, text
    assert login(loft, PASSWD_USER, "pass")[0] == "OK"
    # NXDOMAIN where a resolver answers; the connect timeout where none does
    log = loft.log_text()
    assert "cannot resolve host nowhere.invalid" in log or "connect timed out" in log, log


def test_postgres_stalled(postgres, loft_factory, cluster):
    """Every PostgreSQL process stopped (SIGSTOP): an SQL login waits for
    the timeout and fails temporarily; a passwd-file user's login
    meanwhile is not held up; after SIGCONT logins work again."""
    loft = make_loft(loft_factory, cluster, pg_passdb(timeout='"3s"'), log_level="debug",
                     name="sql")
    assert login(loft, "user21", "pass")[0] == "OK"
    postgres.signal(signal.SIGSTOP)
    try:
        stalled_login_check(loft, "SQL")
        assert "query timed out" in loft.log_text()
    finally:
        postgres.signal(signal.SIGCONT)
    loftlib.wait_for(lambda: login(loft, "user22", "pass")[0] == "OK", 15,
                     "SQL logins to work again")


def test_sqlite_replaced(loft_factory, cluster, tmp_path):
    """Another file moved into the SQLite file's place is read from the
    next login on, without a reload."""
    path = str(tmp_path / "users.db")
    sqlite_file(path, rows())
    loft = make_loft(loft_factory, cluster, sqlite_passdb(path), name="sql")
    assert login(loft, "user22", "pass")[0] == "OK"
    assert login(loft, "user27", "pass")[0] == "NO"
    sqlite_file(path, [("user27", "{PLAIN}pass", None, None, None, None, None),
                       ("user22", "{PLAIN}changed", None, None, None, None, None)])
    assert login(loft, "user27", "pass")[0] == "OK"
    assert login(loft, "user22", "pass")[0] == "NO"
    assert "users.db changed, opened again" in loft.log_text()


def test_bad_query_fails_at_start(loft_factory, cluster, sqlite_db):
    """A template that cannot be a parameterised query, or a query the
    database refuses, stops loftd at start with the reason."""
    for query, reason in (("SELECT password FROM users WHERE username = %x",
                           "unknown variable"),
                          ('SELECT \\"%u\\" FROM users', "quoted identifier"),
                          ("SELECT password FROM nosuch WHERE username = %u",
                           "no such table")):
        loft = loft_factory(start=False, passdb='{ driver = "sql"; connect = "sqlite:%s"; '
                            'password_query = "%s"; }' % (sqlite_db, query))
        r = subprocess.run([loft.binary(), "-c", loft.conf], capture_output=True,
                           text=True, timeout=20)
        assert r.returncode != 0
        assert reason in r.stderr + r.stdout, r.stderr + r.stdout
