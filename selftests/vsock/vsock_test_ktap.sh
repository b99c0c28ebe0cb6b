#!/bin/sh
# Run Linux's vsock_test, built unchanged as an AF_GNTSOCK program
# (selftests/vsock/), and print its outcome as KTAP: one result per
# vsock_test case.
#
#   vsock_test_ktap client PEER ADDR [PORT]
#	the client, against domain PEER, whose server takes the control
#	connection (TCP) at ADDR:PORT (default 5100); started before the
#	server listens, it retries the control connection for up to 60 s
#   vsock_test_ktap server PEER [PORT]
#	the server, for the client in domain PEER
#
# Each side checks its own half of a case, so both are reported; a case
# one side fails makes the other fail at the next case's barrier.
#
# The client skips two cases (the server follows), each with its reason in
# the result:
# - "SOCK_SEQPACKET timeout" also fails when a 1 s SO_RCVTIMEO wait overruns
#   by 0.25 s, a speed bound that emulated guests on a loaded host do not
#   keep; gntsock_sock_test's seqpacket_rcvtimeo tests the same behaviour
#   without depending on speed;
# - "SOCK_SEQPACKET invalid receive buffer" expects Linux 6.1 vsock's ENOMEM
#   and the record dropped, where AF_GNTSOCK gives EFAULT and keeps the
#   record (nothing lost; gntsock_sock_test's seqpacket_invalid_rcv_buffer).
mode=$1
peer=$2
arg3=${3:-}
arg4=${4:-}
bin=$(dirname "$0")/vsock_test
out=/tmp/vsock_test_ktap.$mode
# The ids of the skipped cases, by name: "ID ID".
skip=$("$bin" --list | awk -F '\t' '
	$2 == "SOCK_SEQPACKET timeout" { t = $1 }
	$2 == "SOCK_SEQPACKET invalid receive buffer" { b = $1 }
	END { print t, b }')
# shellcheck disable=SC2086
set -- $skip
st=${1:-none}
sb=${2:-none}
skips=""
for id in $skip; do skips="$skips --skip=$id"; done
n=$("$bin" --list | grep -c '^[0-9]')
# What gntsock shows, for a failure's report: the sockets, the links (with
# their ring indices) and the counters.
snapshot() {
	for f in gntsock gntsock_links gntsock_stat; do
		echo "/proc/net/$f:"
		sed 's/^/  /' "/proc/net/$f" 2>&1
	done
}
# Every 2 s while vsock_test runs, so that a failure's report shows the
# state while its sockets still existed (a case fails after a 10 s wait).
snapshots() {
	while :; do
		snapshot >"$out.snap.new" 2>&1
		mv "$out.snap.new" "$out.snap"
		sleep 2
	done
}
case $mode in
client | server) ;;
*)
	echo "usage: vsock_test_ktap client PEER ADDR [PORT] | server PEER [PORT]" >&2
	exit 2
	;;
esac
snapshots &
snap_pid=$!
trap 'kill "$snap_pid" 2>/dev/null' EXIT
trap 'exit 143' INT TERM
case $mode in
client)
	addr=$arg3
	port=${arg4:-5100}
	tries=0
	while :; do
		# shellcheck disable=SC2086
		"$bin" --mode=client --control-host="$addr" --control-port="$port" \
			--peer-cid="$peer" $skips >"$out" 2>&1
		rc=$?
		grep -q 'Control socket initialization failed' "$out" || break
		tries=$((tries + 1))
		[ $tries -lt 60 ] || break
		sleep 1
	done
	;;
server)
	"$bin" --mode=server --control-port="${arg3:-5100}" --peer-cid="$peer" \
		>"$out" 2>&1
	rc=$?
	;;
esac
kill "$snap_pid" 2>/dev/null
wait "$snap_pid" 2>/dev/null
trap - EXIT
echo "KTAP version 1"
echo "1..$n"
awk -v rc="$rc" -v n="$n" -v st="$st" -v sb="$sb" '
	match($0, /^[0-9]+ - /) {
		id = substr($0, 1, RLENGTH - 3)
		rest = substr($0, RLENGTH + 1)
		i = index(rest, "...")
		name = i ? substr(rest, 1, i - 1) : rest
		how = i ? substr(rest, i + 3) : ""
		t++
		if (how == "ok")
			printf "ok %d vsock_test %s %s\n", t, id, name
		else if (how == "skipped") {
			why = "skipped by the other side"
			if (id == st)
				why = "speed-dependent (seqpacket_rcvtimeo covers it)"
			if (id == sb)
				why = "vsock 6.1 expects ENOMEM and a dropped record; AF_GNTSOCK gives EFAULT and loses nothing (seqpacket_invalid_rcv_buffer)"
			printf "ok %d vsock_test %s %s # SKIP %s\n", t, id, name, why
		} else {
			printf "not ok %d vsock_test %s %s # %s\n", t, id, name, how
			failed = 1
		}
		next
	}
	{ print "# " $0 }
	END {
		if (rc != 0 && !failed)
			printf "not ok %d vsock_test exited with status %d\n", ++t, rc
		for (t++; t <= n; t++)
			printf "ok %d vsock_test %d # SKIP not run: vsock_test stopped at the failure above\n", t, t - 1
	}' "$out"
if [ "$rc" -ne 0 ]; then
	echo "# gntsock shortly before vsock_test ended:"
	sed 's/^/#   /' "$out.snap" 2>/dev/null
	echo "# gntsock after:"
	snapshot | sed 's/^/#   /'
	dmesg 2>/dev/null | grep -i gntsock | tail -n 20 | sed 's/^/# dmesg: /'
fi
rm -f "$out" "$out.snap" "$out.snap.new"
[ "$rc" -eq 0 ]
