#!/bin/sh
# Installs the Debian 12 packages loft needs to build, test and package
# (make deb; systemd only for systemd-analyze, nothing is started); with the
# argument "bench" also the peers of the benchmark (nginx mail, HAProxy,
# perdition; Dovecot is there already). Idempotent:
# nothing is downloaded when everything is already there. Runs apt-get as
# root, or through sudo. The dovecot packages are installed without
# starting the system-wide Dovecot, whose listeners on *:143 would collide
# with the private backends the tests and the demo start.
set -eu

PKGS="make gcc pkg-config libevent-dev libssl-dev openssl libconfig-dev \
libsodium-dev libcrypt-dev libxxhash-dev libldap-dev libpq-dev libsqlite3-dev libcmocka-dev python3 python3-pytest python3-pytest-xdist \
dovecot-core dovecot-imapd dovecot-pop3d dovecot-managesieved dovecot-submissiond dovecot-lmtpd scdoc iproute2 procps passwd curl \
clang-14 libclang-rt-14-dev etcd-server slapd ldap-utils postgresql sqlite3 libjansson-dev iptables \
dpkg-dev debhelper lintian adduser init-system-helpers systemd man-db prometheus spin"
if [ "${1:-}" = bench ]; then
	PKGS="$PKGS nginx libnginx-mod-mail haproxy perdition"
fi

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "deps: need root or sudo to install:$missing" >&2
	exit 1
fi

echo "deps: installing:$missing"
# keep package scripts from starting services; a policy-rc.d that was
# already there (Debian's container images ship one) is left as it is
POLICY_RC_D=${LOFT_POLICY_RC_D:-/usr/sbin/policy-rc.d}
guard=""
if [ ! -e "$POLICY_RC_D" ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY_RC_D" >/dev/null
	$SUDO chmod 755 "$POLICY_RC_D"
	guard=1
fi
# The trap's last status would become the script's: keep the real one.
cleanup() {
	rc=$?
	if [ -n "$guard" ]; then
		$SUDO rm -f "$POLICY_RC_D"
	fi
	exit "$rc"
}
trap cleanup EXIT
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "deps: done"
