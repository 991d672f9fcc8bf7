#!/bin/sh
# Runs every libFuzzer harness in <build>/fuzz for <seconds> each,
# starting from the seeds committed in tests/fuzz/corpus/<harness>/. New
# inputs go to <build>/corpus/ (not committed), a crash to <build>/crashes/
# with the reproducer. Prints executions per harness; exits 1 on a crash.
#   usage: run.sh <build> <seconds>
set -eu
build=$1
seconds=$2
here=$(dirname "$0")
status=0
mkdir -p "$build/crashes"
# leaks inside system libraries that loft cannot fix (see the file)
LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS
printf '%-24s %12s %10s\n' harness executions "exec/s"
for bin in "$build"/fuzz/fuzz_*; do
	name=$(basename "$bin")
	work="$build/corpus/$name"
	log="$build/fuzz-$name.log"
	mkdir -p "$work"
	if ! "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
		-rss_limit_mb=2048 -artifact_prefix="$build/crashes/$name-" \
		"$work" "$here/corpus/$name" >"$log" 2>&1; then
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
