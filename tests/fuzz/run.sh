#!/bin/sh
# Runs every libFuzzer harness in <build>/fuzz for <seconds> each,
# starting from the seeds committed in tests/fuzz/corpus/<harness>/. New
# inputs go to <build>/corpus/ (not committed), a crash to <build>/crashes/
# with the reproducer. <jobs> harnesses run at once (default: one per CPU).
# Prints executions per harness; exits 1 on a crash.
#   usage: run.sh <build> <seconds> [<jobs>]
set -eu
here=$(dirname "$0")

# one harness: run.sh --one <build> <seconds> <binary>, started by xargs
# below; its outcome goes to <build>/fuzz-<name>.status
if [ "$1" = --one ]; then
	build=$2
	seconds=$3
	bin=$4
	name=$(basename "$bin")
	work="$build/corpus/$name"
	mkdir -p "$work"
	if "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
		-rss_limit_mb=2048 -artifact_prefix="$build/crashes/$name-" \
		"$work" "$here/corpus/$name" >"$build/fuzz-$name.log" 2>&1; then
		echo ok >"$build/fuzz-$name.status"
	else
		echo failed >"$build/fuzz-$name.status"
	fi
	exit 0
fi

build=$1
seconds=$2
jobs=${3:-$(nproc 2>/dev/null || echo 1)}
mkdir -p "$build/crashes"
# leaks inside system libraries that loft cannot fix (see the file)
LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS

rm -f "$build"/fuzz-*.status
# the next harness starts as soon as one ends
ls "$build"/fuzz/fuzz_* | xargs -n 1 -P "$jobs" sh "$0" --one "$build" "$seconds"

status=0
printf '%-24s %12s %10s\n' harness executions "exec/s"
for bin in "$build"/fuzz/fuzz_*; do
	name=$(basename "$bin")
	log="$build/fuzz-$name.log"
	if [ "$(cat "$build/fuzz-$name.status" 2>/dev/null)" != ok ]; then
		echo "$name: FAILED (log: $log; reproduce: $bin <crash file>)"
		tail -40 "$log"
		status=1
		continue
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	printf '%-24s %12s %10s\n' "$name" "$execs" "$rate"
done
exit $status
