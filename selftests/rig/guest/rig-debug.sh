# shellcheck shell=sh
# Debug-kernel helpers (GNTSOCK_RIG_KERNEL=debug: KASAN, lockdep, KFENCE, kmemleak, UBSAN,
# debug objects), sourced by dom0-init and domU-init after rig-lib.sh. POSIX sh only.
# Reports of every checker go to the console and fail the run (report.sh); kmemleak only
# reports when asked, so every domain clears it once booted and scans it at the end.

RIG_KMEMLEAK=/sys/kernel/debug/kmemleak

debug_mount() {
	[ -d /sys/kernel/debug ] && [ -z "$(ls -A /sys/kernel/debug 2>/dev/null)" ] &&
		mount -t debugfs debugfs /sys/kernel/debug
	[ -e $RIG_KMEMLEAK ] || say "$1 kmemleak not available (is this the debug kernel?)"
}

# debug_kmemleak_baseline NAME: what boot left unreferenced is not the tests': scan, so that
# kmemleak marks it reported, then clear (reported objects are never reported again).
debug_kmemleak_baseline() {
	[ -w $RIG_KMEMLEAK ] || return 0
	_t0=$(date +%s)
	echo scan >$RIG_KMEMLEAK
	_n=$(grep -c '^unreferenced object' $RIG_KMEMLEAK)
	echo clear >$RIG_KMEMLEAK
	say "$1 kmemleak cleared ($_n objects of boot forgotten, scan took $(($(date +%s) - _t0))s)"
}

# debug_kmemleak_report TAG: scan (twice: an object must look unreferenced in a scan after
# it is old enough) and print every suspected leak behind "[TAG] ", as a KTAP result.
debug_kmemleak_report() {
	if [ ! -w $RIG_KMEMLEAK ]; then
		printf '[%s] 1..1\n[%s] not ok 1 kmemleak_scan # no %s\n' "$1" "$1" $RIG_KMEMLEAK
		return 0
	fi
	_t0=$(date +%s)
	echo scan >$RIG_KMEMLEAK
	sleep 1
	echo scan >$RIG_KMEMLEAK
	_n=$(grep -c '^unreferenced object' $RIG_KMEMLEAK)
	say "$1 kmemleak scanned in $(($(date +%s) - _t0))s"
	printf '[%s] 1..1\n' "$1"
	sed "s/^/[$1] /" $RIG_KMEMLEAK
	if [ "$_n" -eq 0 ]; then
		printf '[%s] ok 1 kmemleak_scan\n' "$1"
	else
		printf '[%s] not ok 1 kmemleak_scan # %s objects reported\n' "$1" "$_n"
	fi
}
