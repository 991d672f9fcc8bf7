# What check.sh and check-failsafe.sh share, sourced by them after they
# defined:
#   model_name    what the messages call the script ("check-model")
#   checks        prints the table: one check per line, its name first,
#                 fields separated by '|'
#   run_line      runs the check of one table line (in $tmp/<name>, its
#                 result line written to out there)
# It parses the options ([-v] [-a] [-j jobs] [name...]), runs the selected
# checks $jobs at a time (the calling script again, with --one), prints
# their results in the table's order and exits non-zero if any outcome is
# not the expected one. Slow checks (named slow-*) run only with -a or by
# name.

here=$(cd "$(dirname "$0")" && pwd)
verbose=${LOFT_MODEL_VERBOSE:-0}
slow=0
jobs=2
while [ $# -gt 0 ]; do
	case "$1" in
	--one) break ;;
	-v) verbose=1; shift ;;
	-a) slow=1; shift ;;
	-j) jobs=$2; shift 2 ;;
	-*) echo "usage: $0 [-v] [-a] [-j jobs] [name...]" >&2; exit 2 ;;
	*) break ;;
	esac
done
for tool in spin gcc; do
	command -v "$tool" >/dev/null 2>&1 ||
		{ echo "$model_name: $tool not found (scripts/deps.sh installs it)" >&2; exit 1; }
done

# The outcome of a verifier run, from its pan.log: pass, incomplete,
# fail:cycle (liveness), fail:sessions (a user on two backends),
# fail:pins (another assertion) or unknown.
model_outcome() {
	if grep -q 'max search depth too small\|out of memory\|memory limit' "$1"; then
		echo incomplete
	elif grep -q 'errors: 0' "$1"; then
		echo pass
	elif grep -q 'acceptance cycle' "$1"; then
		echo fail:cycle
	elif grep -q 'assertion violated ((sess\|assertion violated (((sess' "$1"; then
		echo fail:sessions
	elif grep -q 'assertion violated' "$1"; then
		echo fail:pins
	else
		echo unknown
	fi
}

# --one NAME: run one check of the table (as xargs does below)
if [ "${1:-}" = --one ]; then
	tmp=$LOFT_MODEL_TMP
	run_line "$(grep "^$2|" "$tmp/table")" >/dev/null 2>&1
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/loft-model.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

checks >"$tmp/table"
: >"$tmp/names"
while IFS='|' read -r name _; do
	if [ $# -gt 0 ]; then
		sel=0
		for a in "$@"; do [ "$a" = "$name" ] && sel=1; done
		[ $sel = 1 ] || continue
	elif [ $slow = 0 ]; then
		case $name in slow-*) continue ;; esac
	fi
	echo "$name" >>"$tmp/names"
done <"$tmp/table"
export LOFT_MODEL_TMP="$tmp" LOFT_MODEL_VERBOSE="$verbose"
xargs -r -P "$jobs" -n 1 sh "$0" --one <"$tmp/names"
status=0
n=0
while read -r name; do
	n=$((n + 1))
	if [ -f "$tmp/$name/out" ]; then
		cat "$tmp/$name/out"
		head -c 2 "$tmp/$name/out" | grep -q ok || status=1
	else
		echo "FAIL $name: no result"
		status=1
	fi
done <"$tmp/names"
[ "$n" -gt 0 ] || { echo "$model_name: no such check: $*" >&2; exit 2; }
exit $status
