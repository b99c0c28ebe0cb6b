#!/bin/bash
# make bench: gntsock-perf between the rig's two domUs, in one boot: AF_GNTSOCK, TCP over
# netfront/netback through dom0's bridge, libxenvchan, and memcpy inside domU1; prints the
# table and keeps it in build/bench/ (table.txt, and a dated copy).
# make bench BOOTS=N (environment BOOTS): N boots one after the other, each with its own
# table (table-bootK.txt), then one table of every boot's ratios and their medians
# (selftests/bench_boots.py) at the end of table.txt.
# Environment: GNTSOCK_BENCH_ARGS extra gntsock-perf run options (e.g. "--time 0.5 --reps 5"),
# GNTSOCK_BENCH_RING_ORDER the domU1-domU2 link's ring order (default 8: 1 MiB each way, as the
# vchan's rings), GNTSOCK_BENCH_DOMU_MEM domU memory in MiB (default 384), GNTSOCK_BENCH_QUICK=1
# only the main table and the busy-poll run (the other sections are reported as skipped).
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 1
OUT=$REPO/build/bench
mkdir -p "$OUT"

if [ "${GNTSOCK_RIG_SKIP_DEPS:-0}" != 1 ]; then
	selftests/rig/deps.sh || exit 1
fi
make -s module tools selftests >"$OUT/build.log" 2>&1 || {
	cat "$OUT/build.log"
	exit 1
}
BOOTS=${BOOTS:-1}
case $BOOTS in '' | *[!0-9]* | 0) echo "bench: BOOTS must be a positive number"; exit 1 ;; esac
export GNTSOCK_RIG_OUT=$OUT/rig
stamp=$(date -u +%Y%m%dT%H%M%SZ)
failed=0
tables=""
# one_boot K: boot the rig once, run the bench step, write $OUT/table-bootK.txt.
one_boot() {
	GNTSOCK_RIG_SKIP_DEPS=1 GNTSOCK_RIG_TESTS=bench \
		GNTSOCK_RIG_RING_ORDER_D1D2="${GNTSOCK_BENCH_RING_ORDER:-8}" \
		GNTSOCK_RIG_DOMU_MEM="${GNTSOCK_BENCH_DOMU_MEM:-384}" \
		GNTSOCK_RIG_BENCH_ARGS="${GNTSOCK_BENCH_ARGS:-}" \
		GNTSOCK_RIG_BENCH_QUICK="${GNTSOCK_BENCH_QUICK:-0}" \
		GNTSOCK_RIG_TEST_TIMEOUT="${GNTSOCK_RIG_TEST_TIMEOUT:-1500}" \
		selftests/rig/run.sh >"$OUT/rig.log" 2>&1
	rc=$?
	LOG=$GNTSOCK_RIG_OUT/serial.log
	{
		echo "gntsock-perf, make bench, boot $1 of $BOOTS, $(date -u '+%Y-%m-%d %H:%M UTC')"
		echo "host: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB; QEMU TCG"
		grep -a 'GNTSOCK-RIG-HOST: version' "$LOG" | sed 's/GNTSOCK-RIG-HOST: version /  /'
		grep -a 'GNTSOCK-RIG: bench ' "$LOG" | sed 's/^GNTSOCK-RIG: /  /'
		tr -d '\r' <"$LOG" | awk '
			/\[d[0-9]+ shell\] BENCH-BEGIN$/ { on = 1; next }
			/\[d[0-9]+ shell\] BENCH-END$/ { on = 0 }
			on && match($0, /\[d[0-9]+ shell\] /) {
				l = substr($0, RSTART + RLENGTH)
				if (l !~ /^# /) print l	# progress lines
			}'
	} >"$OUT/table-boot$1.txt"
	cp "$GNTSOCK_RIG_OUT/serial.log" "$OUT/serial-boot$1.log" 2>/dev/null
	if [ $rc -ne 0 ] || ! grep -q '^bench exit status 0$' "$OUT/table-boot$1.txt" ||
		grep -q '^bench exit status [1-9]' "$OUT/table-boot$1.txt"; then
		echo "bench: boot $1 FAILED (rig status $rc; see $OUT/rig.log and $LOG)"
		failed=1
	fi
}
for k in $(seq 1 "$BOOTS"); do
	one_boot "$k"
	tables="$tables $OUT/table-boot$k.txt"
done
{
	# shellcheck disable=SC2086
	cat $tables
	# shellcheck disable=SC2086
	[ "$BOOTS" -gt 1 ] && selftests/bench_boots.py $tables
} >"$OUT/table-$stamp.txt"
cp "$OUT/table-$stamp.txt" "$OUT/table.txt"
cat "$OUT/table.txt"
[ $failed -eq 0 ] || exit 1
echo "bench: table in $OUT/table.txt"
