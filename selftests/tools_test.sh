#!/bin/bash
# Host checks of the user-space tools that need no gntsock module (KTAP on stdout): gntcat's
# --help, usage errors and man page, gntsock-perf's --help and its memcpy mode, and the
# multi-boot summary of make bench (bench_boots.py). What needs real
# domains (connections, the transports) runs in the rig: gntsock-perf smoke, make bench.
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=${GNTSOCK_BIN:-$REPO/build/bin}
n=0
fails=0
result() {	# result OK DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n $2"
	else
		echo "not ok $n $2"
		fails=$((fails + 1))
	fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "KTAP version 1"
echo "1..9"
"$BIN/gntcat" --help >"$tmp/help" 2>&1
rc=$?
grep -q -- '--seqpacket' "$tmp/help" && grep -q -- '--grant FILE' "$tmp/help" &&
	grep -q 'DOMID:PORT' "$tmp/help" && [ $rc -eq 0 ]
result $? "gntcat --help exits 0 and documents --seqpacket, --grant and DOMID:PORT"

"$BIN/gntcat" 5 </dev/null >/dev/null 2>"$tmp/err"
rc=$?
[ $rc -eq 2 ] && grep -q "bad address '5'" "$tmp/err"
result $? "gntcat rejects an address without a port with status 2"

"$BIN/gntcat" --grant "$tmp/no-such-file" 5:7000 </dev/null >/dev/null 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q "no-such-file: No such file" "$tmp/err"
result $? "gntcat --grant of a missing file fails with status 1 and names it"

groff -man -Tutf8 -ww -z "$REPO/tools/gntcat.1" >"$tmp/groff" 2>&1 && [ ! -s "$tmp/groff" ]
result $? "gntcat.1 formats without groff warnings"

groff -man -Tascii -P-cbou "$REPO/tools/gntcat.1" >"$tmp/man" 2>/dev/null
for opt in --listen --seqpacket --grant --verbose --help; do
	grep -q -- "$opt" "$tmp/man" || { echo "# gntcat.1 lacks $opt"; false; } || break
done
result $? "gntcat.1 documents every option of gntcat --help"

"$BIN/gntsock-perf" --help >"$tmp/phelp" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q 'gntsock-perf run --peer DOMID' "$tmp/phelp"
result $? "gntsock-perf --help exits 0"

"$BIN/gntsock-perf" run >/dev/null 2>&1
[ $? -eq 2 ]
result $? "gntsock-perf run without --peer is a usage error"

"$BIN/gntsock-perf" memcpy --sizes 4K,64K --time 0.05 --reps 1 >"$tmp/memcpy" 2>&1
rc=$?
# The throughput table's 64 KiB row (the first), memcpy its fifth column.
awk '$1 == "64" && $2 == "KiB" { ok = ($6 + 0 > 0); exit } END { exit !ok }' "$tmp/memcpy" &&
	[ $rc -eq 0 ]
result $? "gntsock-perf memcpy measures a copy rate"
[ $fails -eq 0 ] || sed 's/^/# /' "$tmp/memcpy"

# make bench BOOTS=N: ratios within each boot, then their median (three boots' tables in
# gntsock-perf's format; gntsock/vchan at 64 KiB 0.50, 0.10, 1.00 -> median 0.50x, where
# the ratio of the medians would be 0.33x).
bench_table() {	# bench_table GNT_64K VCHAN_64K GNT_RTT
	printf '%9s %9s %9s %9s %9s | %8s %8s %8s\n' write gntsock TCP vchan memcpy \
		gnt/TCP gnt/vch gnt/mcp
	printf '%9s %9s %9s %9s %9s |\n' "64 KiB" "$1" 10.0 "$2" 900.0
	printf '\n== 1-byte ping-pong round trip, microseconds, 2000 round trips\n'
	printf '%9s %10s %10s %12s\n' transport median p99 median/gnt
	printf '%9s %10s %10s %12s\n' gntsock "$3" 9000.0 1.00x vchan 1000.0 5000.0 -
}
bench_table 100.0 200.0 1500.0 >"$tmp/b1"
bench_table 50.0 500.0 500.0 >"$tmp/b2"
bench_table 300.0 300.0 1000.0 >"$tmp/b3"
"$REPO/selftests/bench_boots.py" "$tmp/b1" "$tmp/b2" "$tmp/b3" >"$tmp/boots" 2>&1
rc=$?
grep -q '^  64 KiB  0.50 0.10 1.00  *0.50x' "$tmp/boots" &&
	grep -q 'gntsock/vchan per boot 1.50 0.50 1.00, median 1.00x' "$tmp/boots" && [ $rc -eq 0 ]
result $? "bench_boots.py takes ratios within each boot, then their median"
[ $fails -eq 0 ] || sed 's/^/# /' "$tmp/boots"
exit $((fails > 0))
