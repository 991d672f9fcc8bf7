#!/bin/sh
# Holds the module dependency rules of DESIGN.md §4 against the #includes:
# each module may include only the modules listed for it.
set -u
cd "$(dirname "$0")/.." || exit 1
allowed() {
	case "$1" in
	common) echo "common" ;;
	conf) echo "common conf" ;;
	proto) echo "common proto" ;;
	director) echo "common conf core director" ;;
	registry) echo "common registry" ;;
	auth) echo "common conf core auth" ;;
	core) echo "common conf core" ;;
	proxy) echo "common conf core proto auth director registry proxy" ;;
	admin) echo "common conf core registry director ring admin" ;;
	ring) echo "common core conf director ring" ;;
	cli) echo "common conf admin cli" ;;
	daemon) echo "common conf core proto auth director registry proxy admin ring daemon" ;;
	*) echo "" ;;
	esac
}
rc=0
for f in $(find src -name '*.[ch]'); do
	mod=$(echo "$f" | cut -d/ -f2)
	ok=$(allowed "$mod")
	for inc in $(sed -n 's/^#include "\([a-z_]*\)\/.*/\1/p' "$f" | sort -u); do
		case " $ok " in
		*" $inc "*) ;;
		*) echo "layering: $f includes $inc/ (allowed: $ok)"; rc=1 ;;
		esac
	done
done
# director's pure parts must not reach for the event loop
for f in src/director/user_hash.c src/director/chash.c src/director/users.c \
	src/director/hosts.c; do
	[ -f "$f" ] || continue
	if grep -q '#include "core/' "$f"; then
		echo "layering: $f is a pure director part but includes core/"; rc=1
	fi
done
[ $rc = 0 ] && echo "layering: ok"
exit $rc
