"""scripts/deps.sh (issue 12 item 1) with fake apt-get, dpkg-query, id and
sudo first on PATH, and its policy-rc.d in a temporary directory
(LOFT_POLICY_RC_D): it installs what is missing with package scripts kept
from starting services, exits with apt-get's status, and leaves the
policy-rc.d it found (or its absence) exactly as it was."""
import os
import stat
import subprocess

import pytest

import loftlib

MISSING = ["python3-pytest-xdist", "scdoc"]   # in deps.sh's order

FAKES = {
    # installed: everything but $FAKE_MISSING
    "dpkg-query": """#!/bin/sh
for p in $FAKE_MISSING; do
	for a in "$@"; do
		[ "$p" = "$a" ] && exit 1
	done
done
printf 'install ok installed'
""",
    # logs its arguments and what guards the services while it installs
    "apt-get": """#!/bin/sh
echo "apt-get $*" >>"$FAKE_LOG"
if [ "$1" = install ]; then
	if [ -e "$LOFT_POLICY_RC_D" ]; then
		echo "guard $(stat -c %a "$LOFT_POLICY_RC_D") $(tail -1 "$LOFT_POLICY_RC_D")" >>"$FAKE_LOG"
	fi
	exit "${FAKE_APT_STATUS:-0}"
fi
""",
    "id": """#!/bin/sh
[ "$1" = -u ] && echo "$FAKE_UID"
""",
    "sudo": """#!/bin/sh
echo "sudo $1" >>"$FAKE_LOG"
exec "$@"
""",
}


def run_deps(tmp_path, uid, apt_status=0, missing=MISSING):
    fakes = tmp_path / "bin"
    fakes.mkdir(exist_ok=True)
    for name, text in FAKES.items():
        (fakes / name).write_text(text)
        (fakes / name).chmod(0o755)
    log = tmp_path / "calls"
    log.write_text("")
    env = dict(os.environ, PATH="%s:/usr/bin:/bin" % fakes, FAKE_LOG=str(log),
               FAKE_UID=str(uid), FAKE_APT_STATUS=str(apt_status),
               FAKE_MISSING=" ".join(missing),
               LOFT_POLICY_RC_D=str(tmp_path / "policy-rc.d"))
    r = subprocess.run(["sh", os.path.join(loftlib.REPO, "scripts", "deps.sh")],
                       env=env, capture_output=True, text=True, timeout=60)
    return r, log.read_text().splitlines()


def snapshot(path):
    """The file's content and mode, or None when it is absent."""
    if not path.exists():
        return None
    return path.read_bytes(), stat.S_IMODE(path.stat().st_mode)


INSTALL = "apt-get install -y -qq --no-install-recommends"


def installed(calls):
    """The packages of the fake apt-get's install calls."""
    return sorted(p for c in calls if c.startswith(INSTALL) for p in c[len(INSTALL):].split())


@pytest.mark.parametrize("uid", [0, 1000], ids=["root", "sudo"])
@pytest.mark.parametrize("existing", [None, (b"#!/bin/sh\n# the image's own\nexit 101\n", 0o700)],
                         ids=["no-policy-rc.d", "own-policy-rc.d"])
def test_installs_the_missing_packages(tmp_path, uid, existing):
    policy = tmp_path / "policy-rc.d"
    if existing is not None:
        policy.write_bytes(existing[0])
        policy.chmod(existing[1])
    r, calls = run_deps(tmp_path, uid)
    assert r.returncode == 0, r.stderr
    assert "deps: installing: %s" % " ".join(MISSING) in r.stdout
    apt = [c for c in calls if c.startswith(("apt-get", "guard"))]
    # while apt-get installs, a policy-rc.d refuses to start services:
    # the one that was there, or deps.sh's own
    guard = "guard 700 exit 101" if existing else "guard 755 exit 101"
    assert apt == ["apt-get update -qq", apt[1], guard] and apt[1].startswith(INSTALL)
    assert installed(calls) == sorted(MISSING)
    assert ("sudo env" in calls) == (uid != 0)
    assert snapshot(policy) == existing


@pytest.mark.parametrize("uid", [0, 1000], ids=["root", "sudo"])
@pytest.mark.parametrize("existing", [None, (b"#!/bin/sh\nexit 0\n", 0o755)],
                         ids=["no-policy-rc.d", "own-policy-rc.d"])
def test_a_failing_apt_get_fails_the_script(tmp_path, uid, existing):
    policy = tmp_path / "policy-rc.d"
    if existing is not None:
        policy.write_bytes(existing[0])
        policy.chmod(existing[1])
    r, calls = run_deps(tmp_path, uid, apt_status=100)
    # the EXIT trap keeps apt-get's status rather than its own last one
    assert r.returncode == 100, (r.stdout, r.stderr)
    assert "deps: done" not in r.stdout
    assert installed(calls) == sorted(MISSING)
    assert snapshot(policy) == existing


def test_nothing_missing_installs_nothing(tmp_path):
    r, calls = run_deps(tmp_path, 1000, missing=[])
    assert (r.returncode, r.stdout, calls) == (0, "", [])
    assert not (tmp_path / "policy-rc.d").exists()
