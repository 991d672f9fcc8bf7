"""Shared by the LDAP tests (test_passdb_ldap.py, test_auth_cache.py): a
private OpenLDAP slapd on loopback with a small tree, its module-scoped
fixture, the LDAP passdb's settings, a loftd with a passwd-file passdb
before the LDAP one (passdblib.py has what the SQL test shares too)."""
import base64
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

import loftlib
import passdblib
from passdblib import routed_elsewhere, sha512_crypt
from conftest import NET

SLAPD_IP = "%s.250" % NET
SLAPD_PORT = 3890
SLAPD_TLS_PORT = 6360
SUFFIX = "dc=example,dc=org"
PEOPLE = "ou=people," + SUFFIX
READER = "cn=reader," + SUFFIX
READER_PW = "readerpw"

SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/misc.schema
pidfile {dir}/slapd.pid
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
suffix "{suffix}"
rootdn "cn=admin,{suffix}"
rootpw adminpw
directory {dir}/db
maxsize 10485760
access to attrs=userPassword by dn.exact="{reader}" read by anonymous auth by * none
access to * by * read
"""

# the backends know user1..user40 with the password "pass"
USERS = {
    "user21": {},                                  # {SSHA}
    "user22": {"crypt": True},                     # {CRYPT}$6$...
    "user23": {"mailHost": True},                  # routed by its mailHost
    "user24": {"employeeType": "disabled",         # nologin, with a reason
               "description": "Account moved away."},
    "user25": {"password": "other"},               # not the backend's password
}


def ssha(password):
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()




def tree():
    out = ["dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\n"
           "o: example\n" % SUFFIX,
           "dn: %s\nobjectClass: organizationalUnit\nou: people\n" % PEOPLE,
           "dn: %s\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
           "cn: reader\nuserPassword: %s\n" % (READER, ssha(READER_PW))]
    for i, (user, opts) in enumerate(sorted(USERS.items())):
        pw = opts.get("password", "pass")
        entry = ["dn: uid=%s,%s" % (user, PEOPLE), "objectClass: inetOrgPerson",
                 "objectClass: posixAccount", "objectClass: inetLocalMailRecipient",
                 "uid: " + user, "cn: " + user, "sn: " + user,
                 "uidNumber: %d" % (2000 + i), "gidNumber: 2000",
                 "homeDirectory: /nonexistent", "mail: %s@example.org" % user,
                 "userPassword: " + (sha512_crypt(pw) if opts.get("crypt") else ssha(pw))]
        if opts.get("mailHost"):
            entry.append("mailHost: " + routed_elsewhere(user))
        for attr in ("employeeType", "description"):
            if attr in opts:
                entry.append("%s: %s" % (attr, opts[attr]))
        out.append("\n".join(entry) + "\n")
    return "\n".join(out)


class Slapd:
    """A private slapd in the foreground on SLAPD_IP:SLAPD_PORT."""

    def __init__(self, base):
        self.dir = base
        self.conf = os.path.join(base, "slapd.conf")
        os.makedirs(os.path.join(base, "db"))
        self.certs = loftlib.make_certs(base, [SLAPD_IP])
        with open(self.conf, "w") as f:
            f.write(SLAPD_CONF.format(dir=base, suffix=SUFFIX, reader=READER, **self.certs))
        ldif = os.path.join(base, "tree.ldif")
        with open(ldif, "w") as f:
            f.write(tree())
        subprocess.run(["slapadd", "-q", "-f", self.conf, "-l", ldif], check=True,
                       capture_output=True)
        self.proc = None

    def start(self):
        # nothing else may answer there: a test must stop, kill and watch
        # the slapd that serves it (a stray one would answer for it)
        loftlib.wait_for(lambda: not self.answers(), 10, "no slapd on %s:%d before "
                         "this one starts" % (SLAPD_IP, SLAPD_PORT))
        self.log = open(os.path.join(self.dir, "slapd.log"), "ab")
        self.proc = subprocess.Popen(
            ["slapd", "-d", "0", "-f", self.conf, "-h", "ldap://%s:%d/ ldaps://%s:%d/"
             % (SLAPD_IP, SLAPD_PORT, SLAPD_IP, SLAPD_TLS_PORT)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        loftlib.wait_for(lambda: self.proc.poll() is not None or self.answers(), 20,
                         "slapd to answer")
        assert self.proc.poll() is None, open(os.path.join(self.dir, "slapd.log")).read()

    def answers(self):
        try:
            r = subprocess.run(["ldapsearch", "-x", "-LLL", "-o", "nettimeout=2", "-H",
                                "ldap://%s:%d" % (SLAPD_IP, SLAPD_PORT), "-b", SUFFIX,
                                "-s", "base", "dn"], capture_output=True, text=True,
                               timeout=3)
        except subprocess.TimeoutExpired:
            return False    # connected, never answered: stopped
        return r.returncode == 0

    def stop(self):
        """SIGSTOP, and proof that it took: the process is stopped and
        nothing answers on the address any more."""
        pid = self.proc.pid
        assert self.proc.poll() is None, "slapd %d is gone" % pid
        self.proc.send_signal(signal.SIGSTOP)

        def stopped():
            with open("/proc/%d/stat" % pid) as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "T"
        loftlib.wait_for(stopped, 10, "slapd %d to stop" % pid)
        assert not self.answers(), "something else answers on %s:%d" % (SLAPD_IP, SLAPD_PORT)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def kill(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            self.log.close()


@pytest.fixture(scope="module")
def slapd():
    base = tempfile.mkdtemp(prefix="loft-slapd-", dir="/tmp")
    s = Slapd(base)
    s.start()
    try:
        yield s
    finally:
        s.kill()
        shutil.rmtree(base, ignore_errors=True)


def ldap_passdb(**opts):
    settings = {
        "driver": '"ldap"',
        "uris": '[ "ldap://%s:%d" ]' % (SLAPD_IP, SLAPD_PORT),
        "base": '"%s"' % PEOPLE,
        "filter": '"(&(objectClass=posixAccount)(uid=%n))"',
        "bind_dn": '"%s"' % READER,
        "bind_password": '"%s"' % READER_PW,
        "fields": '{ user = "uid"; password = "userPassword"; host = "mailHost"; '
                  'nologin = "employeeType"; reason = "description"; user_email = "mail"; }',
        "timeout": '"2s"',
        "pool_size": "2",
    }
    settings.update(opts)
    return "{ %s }" % " ".join("%s = %s;" % kv for kv in settings.items())


def make_loft(loft_factory, cluster, log_level="info", loft_opts=None, **opts):
    """A loftd with a passwd-file passdb (PASSWD_USER), then the LDAP one
    (opts: its settings; loft_opts: the Loftd's)."""
    return passdblib.make_loft(loft_factory, cluster, ldap_passdb(**opts), log_level,
                               "ldap", **(loft_opts or {}))