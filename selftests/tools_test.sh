#!/bin/bash
# Host checks of the user-space tools that need no gntsock module (KTAP on stdout): gntcat's
# --help, usage errors and man page, gntsock-perf's --help and its memcpy mode. What needs real
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
echo "1..8"
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
awk '$1 == "64" && $2 == "KiB" { ok = ($6 + 0 > 0) } END { exit !ok }' "$tmp/memcpy" && [ $rc -eq 0 ]
result $? "gntsock-perf memcpy measures a copy rate"
[ $fails -eq 0 ] || sed 's/^/# /' "$tmp/memcpy"
exit $((fails > 0))
