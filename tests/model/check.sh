#!/bin/sh
# Checks the director ring's protocol model (ring.pml) with spin: each
# configuration below is built into a verifier (pan, gcc) and run, and its
# outcome compared with the one expected. One line per check; exit status
# non-zero if any outcome is not the expected one. doc/ring.md §11 says
# what the model covers and what each check shows.
#
#   tests/model/check.sh [-v] [-a] [-j jobs] [name...]
#
# -v prints the trail of every failing run in words (trail.py), expected
# or not; without it only unexpected failures get theirs. Names select
# checks; by default all but the slow ones (a minute or more each, and
# gigabytes), which -a adds. Needs spin and gcc (scripts/deps.sh installs
# spin). Work is done in a temporary directory, removed at the end.
set -u

model_name=check-model
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# The protocol as the code implements it: with every fix the model's
# findings proposed (doc/ring.md §11); but x: the same without fix x,
# which must fail (each fix is needed).
FIXED="-DFIX_RELEASE -DFIX_TAKE -DFIX_HCPIN -DFIX_REJOIN -DFIX_OWNREC -DFIX_REAPPLY -DFIX_MOVEID"
but() { echo "$FIXED" | sed "s/-D$1//"; }

# name | nodes | -D flags | what: safety or an LTL claim | expected: pass,
# or fail:sessions (two backends), fail:pins (§3's claim), fail:cycle
# (liveness) | what it shows
checks() {
cat <<EOF
fixed|2|$FIXED|safety|pass|a host change and a move
fixed-crash|2|$FIXED -DMAXCRASH=1|safety|pass|... and a node crash and restart
fixed-cut|2|$FIXED -DMAXCUT=1|safety|pass|... and a partition from etcd (fence)
fixed-late-hc|2|$FIXED -DMAXGHOST=1 -DMAXMOVE=0|safety|pass|a host change, a request running late
fixed-late-move|2|$FIXED -DMAXGHOST=1 -DMAXHC=0|safety|pass|a move, a request running late
fixed-2moves|2|$FIXED -DMAXHC=0 -DMAXMOVE=2|safety|pass|two moves
fixed-3-hc|3|$FIXED -DK=1 -DMAXMOVE=0|safety|pass|3 nodes, a host change
fixed-3-move|3|$FIXED -DK=1 -DMAXHC=0|safety|pass|3 nodes, a move
live-move|2|$FIXED|move_finishes|pass|a move finishes
live-hc|2|$FIXED|hostchange_commits|pass|a host change commits
live-move-crash|2|$FIXED -DMAXHC=0 -DMAXCRASH=1|move_finishes|pass|... with a node that may crash for good
live-move-cut|2|$FIXED -DMAXHC=0 -DMAXCUT=1|move_finishes|pass|... or stay cut off
live-hc-crash|2|$FIXED -DMAXMOVE=0 -DMAXCRASH=1|hostchange_commits|pass|... with a node that may crash for good
live-hc-cut|2|$FIXED -DMAXMOVE=0 -DMAXCUT=1|hostchange_commits|pass|... or stay cut off
live-2moves|2|$FIXED -DMAXHC=0 -DMAXMOVE=2|move_finishes|pass|two moves finish
broken-early-ack|2|$FIXED -DBUG_EARLY_ACK|safety|fail:sessions|a node acks a move before its sessions end
limit-serve|2|$FIXED -DSERVE -DMAXCUT=1|safety|fail:sessions|ring.partition = serve
limit-pause|2|$FIXED -DPAUSE -DMAXPAUSE=1|safety|fail:sessions|a node stopped (SIGSTOP) past its lease
without-P1|2|$(but FIX_RELEASE)|safety|fail:sessions|without P1's fix: a node forgets its pin before etcd does
without-P2|2|$(but FIX_TAKE)|safety|fail:sessions|without P2's: a login goes elsewhere than the pin it took
without-P3|2|$(but FIX_HCPIN) -DMAXGHOST=1 -DMAXMOVE=0|safety|fail:sessions|without P3's: a host-change pin counted before it is written
without-P4|2|$(but FIX_OWNREC) -DMAXGHOST=1 -DMAXMOVE=0|safety|fail:sessions|without P4's: a late pin of its own is not a pin here
without-R1|2|$(but FIX_REJOIN) -DMAXCUT=1|safety|fail:sessions|without R1's: a node back with a new lease keeps its records
without-M1|2|$(but FIX_MOVEID) -DMAXHC=0 -DMAXMOVE=2|move_finishes|fail:cycle|without M1's: a full read keeps a finished move
slow-without-P5|2|$(but FIX_REAPPLY) -DMAXCRASH=1 -DK=1|hostchange_commits|fail:cycle|without P5's: a pin key written again is not seen
slow-fixed-late|2|$FIXED -DMAXGHOST=1|safety|pass|a host change and a move, a request late
slow-fixed-crash-cut|2|$FIXED -DMAXCRASH=1 -DMAXCUT=1|safety|pass|... a crash and a partition
slow-fixed-3|3|$FIXED|safety|pass|3 nodes, a host change and a move
EOF
}

# One check in its own directory; writes its result line to out.
run_one() {
	name=$1 nodes=$2 flags=$3 what=$4 expect=$5 note=$6
	d="$tmp/$name"
	mkdir -p "$d" && cp "$here/ring.pml" "$d/" && cd "$d" || return 1
	start=$(date +%s)
	k=$(echo "$flags" | sed -n 's/.*-DK=\([0-9]\).*/\1/p')
	# the verifier's memory (MEMLIM, megabytes), hash table (-w) and
	# search depth (-m); it is built with -O0: in seconds, where -O2 takes
	# a minute for a verifier at most twice as fast
	case $name in
	slow-*) memlim=6144 sizes="-w25 -m200000" ;;
	*) memlim=1024 sizes="-w21 -m50000" ;;
	esac
	if [ "$what" = safety ]; then
		spin_flags="" cc_flags="-DSAFETY -DNOCLAIM" pan_flags=""
	else
		spin_flags="-DLIVENESS -DCLAIM_$what" cc_flags="-DNFAIR=3" pan_flags="-a -f"
	fi
	# shellcheck disable=SC2086
	if ! spin -a -DN="$nodes" $spin_flags $flags ring.pml >spin.log 2>&1 ||
	   ! gcc -O0 -w $cc_flags -DCOLLAPSE -DMEMLIM=$memlim -o pan pan.c >cc.log 2>&1; then
		echo "FAIL $name: could not build the verifier" >out
		cat spin.log cc.log >>out
		return 0
	fi
	# shellcheck disable=SC2086
	./pan $sizes $pan_flags >pan.log 2>&1
	secs=$(( $(date +%s) - start ))
	states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' pan.log)
	got=$(model_outcome pan.log)
	if [ "$got" = "$expect" ]; then
		verdict=ok
	else
		verdict=FAIL
	fi
	case $expect in
	pass) shows="holds" ;;
	*) shows="fails as expected ($got)" ;;
	esac
	[ "$verdict" = ok ] || shows="expected $expect, got $got"
	printf '%-4s %-17s %-19s %-44s %s states, %ss\n' "$verdict" "$name" "$what" \
		"$note: $shows" "${states:-?}" "$secs" >out
	if [ -f ring.pml.trail ] && { [ "$verdict" = FAIL ] || [ "$verbose" = 1 ]; }; then
		if [ "$what" = safety ]; then
			# the shortest trail, by a breadth-first search (if it fits)
			mv ring.pml.trail dfs.trail
			# shellcheck disable=SC2086
			gcc -O0 -w $cc_flags -DBFS -DMEMLIM=$memlim -o pan-bfs pan.c >>cc.log 2>&1 &&
				./pan-bfs >bfs.log 2>&1
			[ -f ring.pml.trail ] || mv dfs.trail ring.pml.trail
			# shellcheck disable=SC2086
			spin -t -DN="$nodes" $flags ring.pml 2>&1 |
				"$PY" "$here/trail.py" "$nodes" "${k:-2}" | sed 's/^/    /' >>out
		else
			# shellcheck disable=SC2086
			spin -t -DN="$nodes" $spin_flags $flags ring.pml 2>&1 |
				"$PY" "$here/trail.py" "$nodes" "${k:-2}" | sed 's/^/    /' >>out
		fi
	fi
	[ "$verdict" = ok ] || { echo "    (pan.log:)"; sed 's/^/    /' pan.log | head -20; } >>out
	return 0
}

# One line of the table.
run_line() {
	IFS='|' read -r name nodes flags what expect note <<-EOF_LINE
	$1
	EOF_LINE
	run_one "$name" "$nodes" "$flags" "$what" "$expect" "$note"
}

. "$(dirname "$0")/runner.sh"
