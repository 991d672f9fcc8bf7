"""The director on one node, driven by Debian's doveadm through loftd's
admin socket (reference §2, §4, §5): host changes, move, flush, kick, map,
dump and ring status, with real sessions on real Dovecot backends."""
import os
import re
import socket
import subprocess
import time

import pytest

import loftlib
from conftest import BACKEND_IPS, LOFT_IP, NET
from imaputil import IMAP, Raw, dovecot_host, user_hash
from test_admin_cli import admin_raw

NEW_IP = "%s.14" % NET		# not a backend: only ever in the host table
MISSING_IP = "%s.99" % NET


def doveadm(*args):
    return subprocess.run(["doveadm"] + list(args), capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def dloft(loft_factory):
    """A loftd of its own: these tests change its hosts."""
    return loft_factory(penalty="false", director_extra='user_kick_delay = "1s";')


def director(loft, *args):
    return doveadm("director", *args[:1], "-a", loft.admin, *args[1:])


def host_list(loft):
    """HOST-LIST on the wire: {ip: (vhosts, users, tag, U|D, changed)}."""
    out = admin_raw(loft.admin, ["HOST-LIST"], lambda d: d.endswith("\n\n"))
    rows = {}
    for line in out.split("\n")[1:]:
        if line:
            ip, vhosts, users, tag, state, changed = line.split("\t")
            rows[ip] = (int(vhosts), int(users), tag, state, int(changed))
    return rows


def login(loft, user):
    m = IMAP(LOFT_IP, loft.port)
    m.login(user, "pass")
    return m


def closed(m):
    """True once loftd closed the session (a BYE or a dead socket)."""
    try:
        m.noop()
        return False
    except (IMAP.abort, OSError, EOFError):
        return True


def users_on(ip, candidates, hosts=BACKEND_IPS, count=1):
    return [u for u in candidates if dovecot_host(hosts, u) == ip][:count]


USERS = ["user%d" % i for i in range(1, 41)]


def test_status_of_a_user_reports_current_hashed_and_initial(dloft):
    user = "user7"
    hashed = dovecot_host(BACKEND_IPS, user)
    r = director(dloft, "status", user)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Current: n/a (expires -1)\nHashed: %s\nInitial config: %s\n" % (
        hashed, hashed)
    m = login(dloft, user)
    try:
        assert m.backend_name() is not None
        r = director(dloft, "status", user)
        expires = time.strftime("%Y-%m-%d %H:%M:%S",
                                time.localtime(host_list_expiry(dloft, user)))
        assert r.stdout.splitlines()[0] == "Current: %s (expires %s)" % (hashed, expires)
        # a tag nobody has: no host at all (§5.2)
        r = director(dloft, "status", user, "nosuchtag")
        assert r.stdout == "Current: n/a (expires -1)\nHashed: \nInitial config: \n"
    finally:
        m.logout()


def host_list_expiry(loft, user):
    out = admin_raw(loft.admin, ["USER-LOOKUP\t" + user], lambda d: d.count("\n") >= 2)
    return int(out.split("\n")[1].split("\t")[1])


def test_host_changes_and_their_errors(dloft):
    r = director(dloft, "add", NEW_IP, "50")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert host_list(dloft)[NEW_IP][:4] == (50, 0, "", "U")
    r = doveadm("-v", "director", "update", "-a", dloft.admin, NEW_IP, "20")
    assert r.returncode == 0 and "%s: OK" % NEW_IP in r.stderr
    assert host_list(dloft)[NEW_IP][0] == 20

    before = int(time.time())
    r = director(dloft, "down", NEW_IP)
    assert r.returncode == 0, r.stderr
    vhosts, _, _, state, changed = host_list(dloft)[NEW_IP]
    assert (vhosts, state) == (20, "D") and changed >= before
    assert director(dloft, "up", NEW_IP).returncode == 0
    assert host_list(dloft)[NEW_IP][3] == "U"

    # a tag cannot change; a new host with a tag goes into that tag
    r = director(dloft, "add", "-t", "other", NEW_IP)
    assert r.returncode == 75 and "host tag can't be changed" in r.stderr
    r = director(dloft, "add", "%s.15@other" % NET)
    assert r.returncode == 0, r.stderr
    assert host_list(dloft)["%s.15" % NET][2] == "other"

    # doveadm's exit codes and messages for what the director refuses (§4.5)
    r = director(dloft, "add", NEW_IP, "100000000")
    assert r.returncode == 75 and "vhost count too large" in r.stderr
    for verb in ("up", "down", "remove"):
        r = director(dloft, verb, MISSING_IP)
        assert r.returncode == 68 and "%s: doesn't exist" % MISSING_IP in r.stderr, verb
    r = director(dloft, "update", MISSING_IP, "10")
    assert r.returncode == 75 and "doesn't exist" in r.stderr
    r = director(dloft, "flush", MISSING_IP)
    assert r.returncode == 68 and "Warning: %s: doesn't exist" % MISSING_IP in r.stderr
    r = director(dloft, "move", "user1", MISSING_IP)
    assert r.returncode == 68 and "Host '%s' doesn't exist" % MISSING_IP in r.stderr

    assert director(dloft, "remove", NEW_IP).returncode == 0
    assert NEW_IP not in host_list(dloft)
    # a removed configured host is listed as removed, and dumped so
    assert director(dloft, "remove", BACKEND_IPS[2]).returncode == 0
    out = admin_raw(dloft.admin, ["HOST-LIST-REMOVED"], lambda d: d.endswith("\n\n"))
    assert out.split("\n")[1:] == [BACKEND_IPS[2], "", ""]
    r = director(dloft, "dump")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "doveadm director add -a %s %s 100" % (dloft.admin, BACKEND_IPS[0]) in lines
    assert "doveadm director add -a %s %s.15@other 100" % (dloft.admin, NET) in lines
    assert lines[-1] == "doveadm director remove -a %s %s " % (dloft.admin, BACKEND_IPS[2])


def test_down_alone_moves_nobody_and_new_users_avoid_the_host(dloft):
    down = BACKEND_IPS[0]
    old_user, new_user = users_on(down, USERS, count=2)
    m = login(dloft, old_user)
    try:
        assert director(dloft, "down", down).returncode == 0
        assert not closed(m)
        # the assigned user still goes to its host (§2.5)
        m2 = login(dloft, old_user)
        assert m2.backend_name() == m.backend_name()
        m2.logout()
        # a new user hashes over the remaining hosts
        m3 = login(dloft, new_user)
        rest = [ip for ip in BACKEND_IPS if ip != down]
        r = director(dloft, "status", new_user)
        assert r.stdout.splitlines()[0].startswith(
            "Current: %s " % dovecot_host(rest, new_user))
        m3.logout()
    finally:
        m.logout()


def test_move_kills_the_sessions_and_routes_to_the_new_host(dloft):
    user = "user5"
    old = dovecot_host(BACKEND_IPS, user)
    new = next(ip for ip in BACKEND_IPS if ip != old)
    held = [login(dloft, user), login(dloft, user)]
    other_user = users_on(old, [u for u in USERS if u != user])[0]
    other = login(dloft, other_user)
    try:
        r = doveadm("-v", "director", "move", "-a", dloft.admin, user, new)
        assert r.returncode == 0, r.stderr
        assert "User hash %d moved to %s" % (user_hash(user), new) in r.stderr
        for m in held:
            loftlib.wait_for(lambda m=m: closed(m), 10, "the moved user's session to close")
        assert not closed(other)
        m = login(dloft, user)
        r = director(dloft, "status", user)
        assert r.stdout.splitlines()[0].startswith("Current: %s " % new)
        assert r.stdout.splitlines()[1] == "Hashed: %s" % old
        # the new login ran only after both old sessions had closed
        lines = dloft.log_text().splitlines()
        kicked = [i for i, line in enumerate(lines)
                  if " imap %s " % user in line and 'reason="kicked"' in line]
        routed = [i for i, line in enumerate(lines)
                  if " imap %s " % user in line and "proxying to %s:" % new in line]
        assert len(kicked) == 2 and len(routed) == 1
        assert routed[0] > max(kicked)
        m.logout()
    finally:
        other.logout()


def test_move_by_hash_of_an_unknown_user_and_move_in_progress(dloft):
    # an unknown user is created on the host by its hash (§2.6)
    r = admin_raw(dloft.admin, ["USER-MOVE\t123456\t%s" % BACKEND_IPS[1],
                                "USER-LOOKUP\t123456"], lambda d: d.count("\n") >= 3)
    lines = r.split("\n")
    assert lines[1] == "OK"
    assert lines[2].split("\t")[0] == BACKEND_IPS[1]


def test_flush_moves_only_users_whose_hash_points_elsewhere(dloft):
    target = BACKEND_IPS[1]
    on_target = users_on(target, USERS, count=3)
    elsewhere = [u for u in USERS if dovecot_host(BACKEND_IPS, u) != target][:2]
    sessions = {u: login(dloft, u) for u in on_target + elsewhere}
    try:
        # flush with the host up: nobody's hash changed, nothing closes
        r = director(dloft, "flush", target)
        assert r.returncode == 0, r.stderr
        assert not any(closed(m) for m in sessions.values())
        # the maintenance procedure: vhosts 0, then flush (capture note 9)
        assert director(dloft, "update", target, "0").returncode == 0
        r = doveadm("director", "flush", "-a", dloft.admin, "--max-parallel", "1", target)
        assert r.returncode == 0, r.stderr
        for u in on_target:
            assert closed(sessions[u]), u
        for u in elsewhere:
            assert not closed(sessions[u]), u
        rest = [ip for ip in BACKEND_IPS if ip != target]
        for u in on_target:
            r = director(dloft, "status", u)
            assert r.stdout.splitlines()[0].startswith(
                "Current: %s " % dovecot_host(rest, u)), (u, r.stdout)
        assert host_list(dloft)[target][1] == 0
        assert "director: moved 3 users" in dloft.log_text()
    finally:
        for m in sessions.values():
            try:
                m.logout()
            except (IMAP.abort, IMAP.error, OSError, EOFError):
                pass


def test_flush_F_and_remove_forget_without_kicking(dloft):
    a, b = BACKEND_IPS[0], BACKEND_IPS[2]
    ua, ub = users_on(a, USERS)[0], users_on(b, USERS)[0]
    ma, mb = login(dloft, ua), login(dloft, ub)
    try:
        assert host_list(dloft)[a][1] == 1
        r = director(dloft, "flush", "-F", a)
        assert r.returncode == 0, r.stderr
        assert host_list(dloft)[a][1] == 0
        assert director(dloft, "status", ua).stdout.startswith("Current: n/a")
        assert director(dloft, "remove", b).returncode == 0
        assert director(dloft, "status", ub).stdout.startswith("Current: n/a")
        # unsafe by design (§2.5): the sessions stay open
        assert not closed(ma) and not closed(mb)
    finally:
        ma.logout()
        mb.logout()


def test_kick_by_name_and_by_passdb_field(loft_factory, cluster):
    path = os.path.join(cluster.base, "director-kick-users")
    with open(path, "w") as f:
        f.write("user1:{PLAIN}pass::::::user_dept=ops\nuser2:{PLAIN}pass::::::\n"
                "user3:{PLAIN}pass::::::user_dept=ops\n")
    loft = loft_factory(passdb='{ driver = "passwd-file"; path = "%s"; }' % path)
    m1, m2, m3 = login(loft, "user1"), login(loft, "user2"), login(loft, "user3")
    try:
        r = doveadm("-v", "director", "kick", "-a", loft.admin, "user2")
        assert r.returncode == 0 and "User user2 kicked" in r.stderr
        loftlib.wait_for(lambda: closed(m2), 10, "user2 to be kicked")
        assert not closed(m1) and not closed(m3)
        # exact names only: a mask kicks nobody, and is still OK
        r = director(loft, "kick", "user*")
        assert r.returncode == 0
        assert not closed(m1)
        r = director(loft, "kick", "-f", "user_dept", "ops")
        assert r.returncode == 0, r.stderr
        loftlib.wait_for(lambda: closed(m1) and closed(m3), 10, "ops to be kicked")
    finally:
        for m in (m1, m2, m3):
            try:
                m.logout()
            except (IMAP.abort, IMAP.error, OSError, EOFError):
                pass


def test_map_lists_assigned_users_of_a_users_file(dloft, tmp_path):
    users = ["user1", "user2", "user3", "nobody"]
    sessions = [login(dloft, u) for u in users[:3]]
    try:
        f = tmp_path / "users"
        f.write_text("".join(u + "\n" for u in users))
        r = director(dloft, "map", "-f", str(f))
        assert r.returncode == 0, r.stderr
        rows = {line.split()[0]: line.split()[1:3] for line in r.stdout.splitlines()[1:]}
        assert rows == {u: [str(user_hash(u)), dovecot_host(BACKEND_IPS, u)]
                        for u in users[:3]}
        host = dovecot_host(BACKEND_IPS, "user1")
        r = director(dloft, "map", "-f", str(f), host)
        listed = [line.split()[0] for line in r.stdout.splitlines()[1:]]
        assert sorted(listed) == sorted(u for u in users[:3]
                                        if dovecot_host(BACKEND_IPS, u) == host)
    finally:
        for m in sessions:
            m.logout()


def test_ring_of_one(dloft):
    r = doveadm("director", "ring", "status", "-a", dloft.admin)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["director", "ip", "port"]
    assert lines[1].split()[:5] == [LOFT_IP, "0", "self", "never", "ring"]
    r = doveadm("director", "ring", "remove", "-a", dloft.admin, MISSING_IP)
    assert r.returncode == 68 and "Not found" in r.stderr
    r = doveadm("director", "ring", "remove", "-a", dloft.admin, LOFT_IP)
    assert r.returncode == 75 and "cannot remove itself" in r.stderr
    r = doveadm("director", "ring", "add", "-a", dloft.admin, MISSING_IP)
    assert r.returncode == 75 and "ring of one" in r.stderr


def test_pipelined_commands_after_a_flush_are_answered(dloft):
    sessions = [login(dloft, u) for u in users_on(BACKEND_IPS[0], USERS, count=2)]
    try:
        out = admin_raw(dloft.admin, [
            "HOST-UPDATE\t%s\t0" % BACKEND_IPS[0],
            "HOST-RESET-USERS\t%s\t1" % BACKEND_IPS[0],
            "HOST-LIST",
            "HOST-RESET-USERS\t\t0",
            "USER-LOOKUP\tuser1",
        ], lambda d: d.count("\n") >= 9)
        lines = out.split("\n")
        assert lines[1:3] == ["OK", "OK"]
        # the reset answered only once its moves were done; the next line
        # waited and was not dropped (unlike Dovecot, §4.3)
        assert lines[3].startswith(BACKEND_IPS[0] + "\t0\t0\t")
        assert lines[6] == ""
        assert lines[7] == "ERROR\tHOST-RESET-USERS: invalid parameters"
        assert len(lines[8].split("\t")) == 4
    finally:
        for m in sessions:
            try:
                m.logout()
            except (IMAP.abort, IMAP.error, OSError, EOFError):
                pass


def test_unknown_hostnames_are_resolved_like_doveadm(dloft):
    r = director(dloft, "add", "nosuchhost.invalid")
    assert r.returncode == 75
    assert "gethostname(nosuchhost.invalid) failed" in r.stderr


def test_host_changes_survive_a_restart(loft_factory):
    loft = loft_factory(penalty="false")
    assert director(loft, "add", "%s@other" % NEW_IP, "30").returncode == 0
    assert director(loft, "update", BACKEND_IPS[0], "40").returncode == 0
    assert director(loft, "down", BACKEND_IPS[1]).returncode == 0
    assert director(loft, "remove", BACKEND_IPS[2]).returncode == 0
    before = host_list(loft)
    assert loft.stop() == 0
    loft.start()
    assert host_list(loft) == before
    out = admin_raw(loft.admin, ["HOST-LIST-REMOVED"], lambda d: d.endswith("\n\n"))
    assert out.split("\n")[1:] == [BACKEND_IPS[2], "", ""]
    # the restored hosts route: a user of the removed host goes elsewhere
    user = users_on(BACKEND_IPS[2], USERS)[0]
    m = login(loft, user)
    assert m.backend_name() is not None
    m.logout()
    assert "loaded 3 hosts from %s/director.state" % loft.state_dir in loft.log_text()


def test_a_broken_state_file_stops_the_start(loft_factory):
    loft = loft_factory(start=False)
    os.makedirs(loft.state_dir)
    path = os.path.join(loft.state_dir, "director.state")
    with open(path, "w") as f:
        f.write("loft-director-state\t1\nhost\t%s\t100\tU\t0\t\n" % BACKEND_IPS[0])
    with pytest.raises(RuntimeError) as e:
        loft.start()
    assert "director state file %s is invalid (line 2: no end line: the file is " \
        "cut short)" % path in str(e.value)
    # loftd -n only reads the config: it neither reads nor writes the state
    r = subprocess.run([loft.binary(), "-c", loft.conf, "-n"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    os.unlink(path)
    r = subprocess.run([loft.binary(), "-c", loft.conf, "-n"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and not os.path.exists(path)


def test_two_loftd_cannot_share_a_state_dir(loft_factory):
    first = loft_factory()
    second = loft_factory(start=False)
    with open(second.conf) as f:
        text = f.read().replace(second.state_dir, first.state_dir)
    with open(second.conf, "w") as f:
        f.write(text)
    with pytest.raises(RuntimeError) as e:
        second.start()
    assert "state_dir %s is in use by another loftd" % first.state_dir in str(e.value)


loftadm = loftlib.loftadm


FORMATTERS = [[], ["-f", "flow"], ["-f", "tab"], ["-f", "table"], ["-f", "json"],
              ["-f", "pager"], ["-f", "formatted"], ["-h"]]


def test_loftadm_prints_doveadm_bytes(dloft, tmp_path):
    users = tmp_path / "users"
    users.write_text("user1\nuser2\nuser3\nuser9\nuser1\n")
    sessions = [login(dloft, u) for u in ("user1", "user2", "user3", "user4")]
    try:
        # a tagged host, a host that is down (a date), a removed one; the
        # removed one is not user1's, whatever the test net hashes to, so
        # "map ... host1" below always has rows to print
        host1 = dovecot_host(BACKEND_IPS, "user1")
        removed = next(ip for ip in reversed(BACKEND_IPS) if ip != host1)
        assert director(dloft, "add", "-t", "gold", NEW_IP, "7").returncode == 0
        assert director(dloft, "down", NEW_IP).returncode == 0
        assert director(dloft, "remove", removed).returncode == 0
        commands = [
            ["director", "status"], ["director", "status", "user1"],
            ["director", "status", "nosuchuser"], ["director", "status", "user1", "gold"],
            ["director", "dump"], ["director", "ring", "status"],
            ["director", "map", "-f", str(users)],
            ["director", "map", "-f", str(users), host1],
            ["director", "map", "-f", str(users), "-h", str(user_hash("user1"))],
            ["director", "map", "-u", "user1"],
            ["director", "map", "-f", str(users), "-h", "notanumber"],
        ]
        for fmt in FORMATTERS:
            for cmd in commands:
                args = fmt + cmd + ["-a", dloft.admin]
                ours, theirs = loftadm(*args), doveadm(*args)
                assert (ours.returncode, ours.stdout, ours.stderr) == \
                    (theirs.returncode, theirs.stdout, theirs.stderr), args
    finally:
        for m in sessions:
            m.logout()


def test_loftadm_changes_with_doveadm_messages(dloft):
    """Errors and -v messages, byte for byte; usage errors by exit code."""
    same = [
        ["director", "up", MISSING_IP], ["director", "down", MISSING_IP],
        ["director", "remove", MISSING_IP], ["director", "update", MISSING_IP, "5"],
        ["director", "flush", MISSING_IP], ["director", "move", "user1", MISSING_IP],
        ["director", "move", "user1", "not-a-host.invalid"],
        ["director", "add", "not-a-host.invalid"],
        ["director", "add", BACKEND_IPS[0], "100000000"],
        ["director", "add", "-t", "foo", BACKEND_IPS[0]],
        ["-v", "director", "add", BACKEND_IPS[0]],
        ["-v", "director", "update", BACKEND_IPS[0], "100"],
        ["-v", "director", "up", BACKEND_IPS[0]],
        ["-v", "director", "kick", "nosuchuser"],
        ["-v", "director", "flush", BACKEND_IPS[0]],
        ["-v", "director", "flush", "--max-parallel", "2", BACKEND_IPS[0]],
        ["-v", "director", "flush", "all"],
        ["director", "ring", "remove", MISSING_IP], ["director", "ring", "remove", LOFT_IP],
        ["director", "ring", "add", MISSING_IP],
    ]
    for cmd in same:
        args = cmd + ["-a", dloft.admin]
        ours, theirs = loftadm(*args), doveadm(*args)
        assert (ours.returncode, ours.stdout, ours.stderr) == \
            (theirs.returncode, theirs.stdout, theirs.stderr), args
    usage = [["director", "add", "127.0.0.15", "abc"], ["director", "add", "14"],
             ["director", "ring", "add", "notip"], ["director", "flush"],
             ["director", "move", "user1"], ["director", "kick"],
             ["director", "update", BACKEND_IPS[0]], ["director", "map", "-u"]]
    for cmd in usage:
        args = cmd + ["-a", dloft.admin]
        ours, theirs = loftadm(*args), doveadm(*args)
        assert ours.returncode == theirs.returncode == 64, args
        assert "usage: loftadm " + " ".join(cmd[:2]) in ours.stderr, args
    r = loftadm("director", "add", "14", "-a", dloft.admin)
    assert r.stderr.startswith("Error: Invalid host '14'\n")


def test_loftadm_director_changes_and_map_of_real_users(dloft):
    sessions = {u: login(dloft, u) for u in ("user1", "user2", "User3")}
    try:
        r = loftadm("-v", "director", "add", "-a", dloft.admin, "%s@gold" % NEW_IP, "7")
        assert (r.returncode, r.stderr) == (0, "Info: %s: OK\n" % NEW_IP)
        assert host_list(dloft)[NEW_IP][:3] == (7, 0, "gold")
        # map without a users file: the names loftd routed, after
        # auth.username_format ("%Lu")
        r = loftadm("-f", "tab", "director", "map", "-a", dloft.admin)
        assert r.returncode == 0, r.stderr
        rows = sorted(line.split("\t")[:3] for line in r.stdout.splitlines()[1:])
        assert rows == sorted([u, str(user_hash(u)), dovecot_host(BACKEND_IPS, u)]
                              for u in ("user1", "user2", "user3"))
        r = loftadm("director", "map", "-a", dloft.admin, "-h", str(user_hash("user3")))
        assert r.stdout.split() == ["user3"]
        # move hashes in loftd; -v says where the user went
        target = next(ip for ip in BACKEND_IPS if ip != dovecot_host(BACKEND_IPS, "user2"))
        r = loftadm("-v", "director", "move", "-a", dloft.admin, "user2", target)
        assert (r.returncode, r.stderr) == (
            0, "Info: User hash %d moved to %s\n" % (user_hash("user2"), target))
        loftlib.wait_for(lambda: closed(sessions["user2"]), 10, "user2's session to close")
        r = loftadm("-v", "director", "kick", "-a", dloft.admin, "user1")
        assert (r.returncode, r.stderr) == (0, "Info: User user1 kicked\n")
        loftlib.wait_for(lambda: closed(sessions["user1"]), 10, "user1 to be kicked")
        for verb, done in (("down", "down"), ("up", "up"), ("remove", "removed")):
            r = loftadm("-v", "director", verb, "-a", dloft.admin, NEW_IP)
            assert (r.returncode, r.stderr) == (0, "Info: %s: %s\n" % (NEW_IP, done))
        r = loftadm("-v", "director", "flush", "-F", "-a", dloft.admin, "all")
        assert (r.returncode, r.stderr) == (0, "Info: flushed\n")
        r = loftadm("director", "map", "-a", dloft.admin)
        assert r.stdout.splitlines()[1:] == []
    finally:
        for m in sessions.values():
            try:
                m.logout()
            except (IMAP.abort, IMAP.error, OSError, EOFError):
                pass


def test_loftadm_reaches_loftd_through_its_config(dloft):
    r = loftadm("-c", dloft.conf, "director", "status")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("mail server ip")
    r = loftadm("-c", dloft.conf, "director", "dump")
    # without -a the dump's commands name no socket, as doveadm's do
    assert r.stdout.splitlines()[0] == "doveadm director add %s 100" % BACKEND_IPS[0]
    r = loftadm("director", "status", "-a", "/nonexistent/admin")
    assert r.returncode == 75 and "connect(/nonexistent/admin) failed" in r.stderr


def test_a_move_in_progress_is_refused_and_holds_logins(loft_factory):
    # the kick delay keeps the move going while the test looks at it
    loft = loft_factory(penalty="false", log_level="debug",
                        director_extra='user_kick_delay = "3s";')
    user = "user6"
    old = dovecot_host(BACKEND_IPS, user)
    new = next(ip for ip in BACKEND_IPS if ip != old)
    m = login(loft, user)
    r = loftadm("director", "move", "-a", loft.admin, user, new)
    assert r.returncode == 0, r.stderr
    loftlib.wait_for(lambda: closed(m), 10, "the session to close")
    # a login meanwhile waits for the move instead of going anywhere
    waiting = Raw(LOFT_IP, loft.port, timeout=30)
    assert waiting.line().startswith("* OK")
    waiting.send("a LOGIN %s pass\r\n" % user)
    wait_line = r"imap %s \S+: state \S+ -> director-wait" % user
    loftlib.wait_for(lambda: re.search(wait_line, loft.log_text()), 10,
                     "the login to wait for the move")
    for tool in (loftadm, doveadm):
        r = tool("director", "move", "-a", loft.admin, user, old)
        assert (r.returncode, r.stderr) == (
            75, "Error: User is already being moved, wait a while for it to be "
            "finished\n")
    # when the move is done, the login goes on, to the new host
    assert waiting.until("a ")[-1].startswith("a OK")
    lines = loft.log_text().splitlines()
    waited = [i for i, line in enumerate(lines) if re.search(wait_line, line)]
    routed = [i for i, line in enumerate(lines)
              if " imap %s " % user in line and "proxying to %s:" % new in line]
    assert len(waited) == 1 and len(routed) == 1 and waited[0] < routed[0]
    waiting.send("z LOGOUT\r\n")
    waiting.until("z OK")
    waiting.close()


def test_shutdown_during_a_flush(loft_factory):
    """A flush still running when loftd stops ends cleanly: the waiting
    admin connection is closed, nothing leaks or is touched after free."""
    loft = loft_factory(penalty="false", director_extra='user_kick_delay = "30s";')
    host = BACKEND_IPS[0]
    user = users_on(host, USERS)[0]
    m = login(loft, user)
    assert director(loft, "update", host, "0").returncode == 0
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(loft.admin)
    s.sendall(("VERSION\tdirector-doveadm\t1\t0\nHOST-RESET-USERS\t%s\nHOST-LIST\n"
               % host).encode())
    loftlib.wait_for(lambda: closed(m), 10, "the flush to close the user's session")
    assert loft.stop() == 0
    assert loft.sanitizer_reports() == []
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    # the handshake only: the flush never answered, the next line waited
    assert data == b"VERSION\tdirector-doveadm\t1\t0\n"


@pytest.mark.parametrize("second", [["flush", "-F"], ["remove"]])
def test_flush_or_remove_during_an_orphaned_flush(loft_factory, second):
    """B1 of the December review, as a new user found it with real doveadm
    and no client or backend: move a user to the only host, set it down,
    flush it (the user has nowhere to go: killed, then forgotten after
    user_kick_delay), and meanwhile flush -F or remove that host from
    another connection. loftd used to die of a use-after-free there."""
    host = MISSING_IP
    loft = loft_factory(servers='"%s"' % host, penalty="false",
                        director_extra='user_kick_delay = "3s";')
    assert director(loft, "move", "u0", host).returncode == 0
    assert director(loft, "down", host).returncode == 0
    first = subprocess.Popen(["doveadm", "director", "flush", "-a", loft.admin, host],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # the flush is under way once its move of u0 is: another move is
        # refused meanwhile (a move to where u0 is changes nothing else)
        loftlib.wait_for(lambda: "TRYAGAIN" in admin_raw(
            loft.admin, ["USER-MOVE\tu0\t%s" % host], lambda d: d.count("\n") >= 2),
            5, "the flush's move of u0")
        r = director(loft, *second, host)
        assert r.returncode == 0, r.stderr
        out, err = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    assert loft.proc.poll() is None, loft.log_text()[-2000:]
    r = director(loft, "status")
    assert r.returncode == 0, r.stderr
    assert loft.stop() == 0
    assert loft.sanitizer_reports() == []
