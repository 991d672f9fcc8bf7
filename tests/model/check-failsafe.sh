#!/bin/sh
# Checks the model of ring.partition = "failsafe" (failsafe.pml, planned:
# doc/ring.md §13) with spin: each configuration below is built into a
# verifier (pan, gcc) and run, and its outcome compared with the one
# expected. One line per check; exit status non-zero if any outcome is
# not the expected one.
#
#   sh tests/model/check-failsafe.sh [-v] [-a] [-j jobs] [name...]
#
# -v prints the shortest trail of every failing run (its steps, as the
# model's MSC lines); names select checks; by default all but the slow
# ones, which -a adds. Needs spin and gcc. Work is done in a temporary
# directory, removed at the end.
set -u

model_name=check-failsafe

# name | -D flags | expected: pass, fail:sessions (two backends) | what
# it shows. Defaults (failsafe.pml): N=2, one host change, 3 cuts from
# etcd, 1 cut from the peers, no crash.
checks() {
cat <<'EOF2'
fence|-DFENCE|pass|ring.partition = fence, the same world
failsafe|-DN=2|pass|failsafe: cuts, heals, peer cuts, lapses
failsafe-crash|-DMAXCRASH=1|pass|... and a crash and restart
failsafe-3|-DN=3 -DMAXISO=0 -DMAXCUT=2|pass|3 nodes, two cut off
failsafe-bind-writes|-DBIND_WRITES|pass|bound nodes may ack/commit: frozen suffices
failsafe-any-confirms|-DANY_CONFIRMS|pass|peers in touch confirm: safe (availability)
without-bind|-DWITHOUT_BIND|fail:sessions|a confirmation binds nobody
without-frozen-reads|-DBIND_READS|fail:sessions|a bound node reads etcd (writes nothing)
without-noreturn|-DWITHOUT_NORETURN|fail:sessions|a fenced node goes failsafe later
without-renewed|-DWITHOUT_RENEWED|fail:sessions|confirmations from before a renewal count
without-restartwait|-DWITHOUT_RESTARTWAIT -DMAXCRASH=1|fail:sessions|a restarted node forgets its bindings
without-allpeers|-DN=3 -DWITHOUT_ALLPEERS -DMAXISO=0|fail:sessions|failsafe on one peer of two
slow-failsafe-2hc|-DMAXHC=2|pass|two host changes
slow-failsafe-3|-DN=3 -DMAXISO=0|pass|3 nodes, etcd down for all
EOF2
}

run_one() {
	name=$1 flags=$2 expect=$3 note=$4
	d="$tmp/$name"
	mkdir -p "$d" && cp "$here/failsafe.pml" "$d/" && cd "$d" || return 1
	start=$(date +%s)
	case $name in
	slow-*) memlim=2048 sizes="-w24 -m200000" ;;
	*) memlim=1024 sizes="-w22 -m100000" ;;
	esac
	# shellcheck disable=SC2086
	if ! spin -a $flags failsafe.pml >spin.log 2>&1 ||
	   ! gcc -O0 -w -DSAFETY -DNOCLAIM -DCOLLAPSE -DMEMLIM=$memlim -o pan pan.c >cc.log 2>&1; then
		echo "FAIL $name: could not build the verifier" >out
		cat spin.log cc.log >>out
		return 0
	fi
	# shellcheck disable=SC2086
	./pan $sizes >pan.log 2>&1
	secs=$(( $(date +%s) - start ))
	states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' pan.log)
	got=$(model_outcome pan.log)
	if [ "$got" = "$expect" ]; then verdict=ok; else verdict=FAIL; fi
	case $expect in
	pass) shows="holds" ;;
	*) shows="fails as expected" ;;
	esac
	[ "$verdict" = ok ] || shows="expected $expect, got $got"
	printf '%-4s %-22s %-50s %s states, %ss\n' "$verdict" "$name" \
		"$note: $shows" "${states:-?}" "$secs" >out
	if [ -f failsafe.pml.trail ] && { [ "$verdict" = FAIL ] || [ "$verbose" = 1 ]; }; then
		# the shortest trail, by a breadth-first search (if it fits)
		mv failsafe.pml.trail dfs.trail
		# shellcheck disable=SC2086
		gcc -O0 -w -DSAFETY -DNOCLAIM -DBFS -DMEMLIM=$memlim -o pan-bfs pan.c >>cc.log 2>&1 &&
			./pan-bfs >bfs.log 2>&1
		[ -f failsafe.pml.trail ] || mv dfs.trail failsafe.pml.trail
		# shellcheck disable=SC2086
		spin -t $flags failsafe.pml 2>&1 | sed -n 's/^ *MSC: /    /p; s/^.*\(assertion violated.*\)/    \1/p' >>out
	fi
	[ "$verdict" = ok ] || { echo "    (pan.log:)"; sed 's/^/    /' pan.log | head -20; } >>out
	return 0
}

# One line of the table.
run_line() {
	IFS='|' read -r name flags expect note <<-EOF_LINE
	$1
	EOF_LINE
	run_one "$name" "$flags" "$expect" "$note"
}

. "$(dirname "$0")/runner.sh"
