# shellcheck shell=sh disable=SC2034
# Helpers shared by the rig's guest scripts (dom0: dash, domU: busybox ash). POSIX sh only.

G=/opt/gntsock
GBIN=$G/bin
PATH=$GBIN:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
# Written by the host (run.sh): RIG_KO, RIG_TESTS, RIG_TEST_TIMEOUT, RIG_SCALE, ...
# shellcheck disable=SC1091
[ -f $G/rig/config ] && . $G/rig/config
: "${RIG_KO:=present}" "${RIG_TESTS:=all}" "${RIG_TEST_TIMEOUT:=600}" "${RIG_SCALE:=1}"
: "${RIG_ONE_WAY:=0}"
# The size of gntsock_test's bulk transfers (smaller on the debug kernel).
[ -n "${RIG_BULK_MIB:-}" ] && export GNTSOCK_TEST_BULK_MIB="$RIG_BULK_MIB"
# Tests every harness program reports as skipped without running them (the debug kernel's
# list: selftests/rig/debug-kernel/skip-tests).
[ -n "${RIG_TEST_SKIP:-}" ] && export GNTSOCK_TEST_SKIP="$RIG_TEST_SKIP"
[ -n "${RIG_TEST_ONLY:-}" ] && export GNTSOCK_TEST_ONLY="$RIG_TEST_ONLY"
# The domUs' network: a vif each on dom0's bridge, static address $RIG_NET.<domid>.
RIG_BRIDGE=xenbr0
RIG_NET=10.77.0

# Tagged rig lines: everything the host parses starts with "GNTSOCK-RIG: ".
say() { echo "GNTSOCK-RIG: $*"; }

# Prefix every line read on stdin with $1; also append the raw lines to file $2.
prefix_lines() {
	while IFS= read -r _l || [ -n "$_l" ]; do
		printf '%s %s\n' "$1" "$_l"
		printf '%s\n' "$_l" >>"$2"
	done
}

# run_ktap PREFIX PROGRAM [ARGS...]: run a KTAP-printing test program (env assignments may
# precede it via `env`), prefixing each output line. Returns 0 when the program succeeded or
# reported its failure with a "not ok" line; the program's status otherwise. A missing
# program prints a "not ok" line of its own.
run_ktap() {
	_p=$1
	shift
	_prog=$1
	[ "$_prog" = env ] && for _a in "$@"; do
		case $_a in env | *=*) ;; *) _prog=$_a; break ;; esac
	done
	if [ ! -x "$_prog" ]; then
		printf '%s KTAP version 1\n%s 1..1\n%s not ok 1 %s # missing from the payload\n' \
			"$_p" "$_p" "$_p" "${_prog##*/}"
		return 0
	fi
	_out=/tmp/ktap.$$
	: >"$_out"
	{ timeout "$RIG_TEST_TIMEOUT" "$@" </dev/null 2>&1; echo $? >"$_out.rc"; } |
		prefix_lines "$_p" "$_out"
	_rc=$(cat "$_out.rc")
	if [ "$_rc" -ne 0 ]; then
		say "$_p ${_prog##*/} exited with status $_rc"
		[ "$_rc" -eq 124 ] && say "$_p ${_prog##*/} timed out after ${RIG_TEST_TIMEOUT}s"
		if [ "$_rc" -ne 124 ] && grep -q '^not ok ' "$_out"; then
			_rc=0
		fi
	fi
	rm -f "$_out" "$_out.rc"
	return "$_rc"
}

# Is test step $1 selected by RIG_TESTS (comma or space separated; "all" selects every step
# but bench and sockfuzz, which run only when named)?
selected() {
	case ",$(echo "$RIG_TESTS" | tr ' ' ','),"
	in *,"$1",*) return 0 ;; *,all,*) [ "$1" != bench ] && [ "$1" != sockfuzz ] && return 0 ;; esac
	return 1
}

# Load gntsock.ko; $1 names the domain in the marker line the host checks.
load_gntsock() {
	if [ "$RIG_KO" = none ]; then
		say "loaded $1 skipped (no module in the payload)"
		return 0
	fi
	if [ ! -f $G/gntsock.ko ]; then
		say "loaded $1 FAILED ($G/gntsock.ko missing)"
		return 1
	fi
	if insmod $G/gntsock.ko; then
		say "loaded $1 ok"
		return 0
	fi
	say "loaded $1 FAILED (insmod status $?)"
	return 1
}

start_peer() {
	if [ -x $GBIN/gntsock_peer ]; then
		$GBIN/gntsock_peer </dev/null &
		echo $! >/run/gntsock_peer.pid
		say "$1 gntsock_peer started (pid $!)"
	else
		say "$1 gntsock_peer missing from the payload"
	fi
}

# Multiply a timeout by RIG_SCALE (a slow host gets more room).
scaled() { echo $(($1 * RIG_SCALE)); }
