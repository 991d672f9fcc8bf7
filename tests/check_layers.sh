#!/bin/sh
# Holds the module dependency rules of DESIGN.md §4 against the #includes:
# each module may include only the modules listed for it.
set -u
cd "$(dirname "$0")/.." || exit 1
# module: the modules it may include
rules="common: common
conf: common conf
proto: common proto
director: common conf core director
registry: common registry
auth: common conf core auth
core: common conf core
proxy: common conf core proto auth director registry proxy
admin: common conf core registry director ring admin
ring: common core conf director ring
metrics: common conf core auth director registry proxy ring metrics
cli: common conf admin cli
daemon: common conf core proto auth director registry proxy admin ring metrics daemon"
rc=0
# one pass over every file: "src/<module>/file.c:#include "<inc>/...""
find src -name '*.[ch]' | sort | xargs grep -H '^#include "[a-z_]*/' |
	awk -v rules="$rules" '
	BEGIN {
		n = split(rules, line, "\n")
		for (i = 1; i <= n; i++) {
			split(line[i], kv, ":")
			ok[kv[1]] = kv[2]
		}
	}
	{
		file = substr($0, 1, index($0, ":") - 1)
		split(file, part, "/")
		inc = $0
		sub(/^[^"]*"/, "", inc)
		sub(/\/.*/, "", inc)
		if (index(ok[part[2]] " ", " " inc " ") == 0) {
			printf "layering: %s includes %s/ (allowed:%s)\n", file, inc, ok[part[2]]
			bad = 1
		}
	}
	END { exit bad }' || rc=1
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
