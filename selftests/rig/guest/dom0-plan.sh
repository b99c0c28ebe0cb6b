#!/bin/sh
# The rig's test plan, run by dom0's /init once the Xen toolstack is up. Every step prints
#   GNTSOCK-RIG: step NAME begin
#   GNTSOCK-RIG: step NAME end status=N (S s)  (0: ran to completion in S seconds; failures
#                                               inside tests are reported by their KTAP
#                                               "not ok" lines)
# or "GNTSOCK-RIG: step NAME skipped". GNTSOCK-RIG-COMPLETE is printed last, only when every
# step ended with status 0. No set -e: a failing step must not stop the health dump.
set -u
# shellcheck source=rig-lib.sh
. /opt/gntsock/rig/rig-lib.sh

incomplete=0
D1=""
D2=""
READY=""
seq=0

step() {
	_name=$1
	shift
	say "step $_name begin"
	_t0=$(date +%s)
	"$@"
	_st=$?
	say "step $_name end status=$_st ($(($(date +%s) - _t0)) s)"
	[ "$_st" -eq 0 ] || incomplete=1
}

skip() {
	say "step $1 skipped"
}

# a. gntsock in dom0 and the responder daemon.
s_load() {
	load_gntsock dom0 || return 1
	start_peer dom0
	return 0
}

# a2. same-domain loopback in dom0 before any link exists: socket semantics need no link.
s_loop() {
	_links=$(awk 'NR > 1 && $2 != "loopback"' /proc/net/gntsock_links 2>/dev/null | wc -l)
	say "dom0 links other than loopback: $_links"
	[ "$_links" -eq 0 ] || return 1
	# The local responder's last listener is up once /proc lists it.
	_end=$(($(date +%s) + $(scaled 20)))
	while ! awk '$2 == "LISTEN" && $3 ~ /:5012$/ { f = 1 } END { exit !f }' /proc/net/gntsock; do
		[ "$(date +%s)" -lt "$_end" ] || { say "local gntsock_peer not listening"; return 1; }
		sleep 1
	done
	run_ktap "[dom0 sock->loopback]" env GNTSOCK_PEER_DOMID=0x7ff0 GNTSOCK_SELF_DOMID=0 \
		"$GBIN/gntsock_sock_test"
}

# dom0's bridge for the domUs' vifs (rig-create-domu gives each domU a vif on it when it
# exists). Without it the domUs have no network and the TCP measurements are skipped.
net_setup() {
	if modprobe xen-netback && modprobe bridge &&
		ip link add name "$RIG_BRIDGE" type bridge stp_state 0 forward_delay 0 &&
		ip link set "$RIG_BRIDGE" up; then
		say "bridge $RIG_BRIDGE up"
	else
		say "bridge $RIG_BRIDGE set-up FAILED: domUs get no vif"
		ip link del "$RIG_BRIDGE" 2>/dev/null
	fi
}

# b. two PV domUs.
s_create() {
	net_setup
	D1=$(rig-create-domu --no-wait domU1) || return 1
	D2=$(rig-create-domu --no-wait domU2) || return 1
	say "domids domU1=$D1 domU2=$D2"
	_rc=0
	_end=$(($(date +%s) + $(scaled 300)))
	for _d in "$D1" "$D2"; do
		_left=$((_end - $(date +%s)))
		[ "$_left" -gt 0 ] || _left=1
		if ! _r=$(rig-xs wait "/local/domain/$_d/data/gntsock-ready" "$_left"); then
			say "domid $_d did not become ready"
			_rc=1
			continue
		fi
		say "domid $_d ready: $_r"
		if [ "$_r" = failed ]; then _rc=1; else READY="$READY $_d"; fi
	done
	xl list
	return $_rc
}

# Is domid $1 up and serving commands?
ready() {
	case " $READY " in *" $1 "*) return 0 ;; esac
	say "domid $1 is not ready"
	return 1
}

link_state() { # peer -> state word of the dom0 link to that peer
	awk -v p="$1" 'NR > 1 && $1 == p { print $3; exit }' /proc/net/gntsock_links 2>/dev/null
}

# c. links dom0-domU1, dom0-domU2, domU1-domU2; wait for both dom0 links to connect.
s_link() {
	if [ -z "$D1" ] || [ -z "$D2" ]; then say "no domUs to link"; return 1; fi
	if [ ! -x "$GBIN/gntsock-link" ]; then
		say "link $GBIN/gntsock-link missing from the payload"
		return 1
	fi
	_rc=0
	for _pair in "0 $D1" "0 $D2" "$D1 $D2"; do
		_ro=""
		# The benchmark's link: RIG_RING_ORDER_D1D2 sets its ring size.
		[ "$_pair" = "$D1 $D2" ] && [ -n "${RIG_RING_ORDER_D1D2:-}" ] &&
			_ro="--ring-order $RIG_RING_ORDER_D1D2"
		# shellcheck disable=SC2086
		if "$GBIN/gntsock-link" add $_pair $_ro; then
			say "link add $_pair ok"
		else
			say "link add $_pair FAILED (status $?)"
			_rc=1
		fi
	done
	if [ "$RIG_KO" = none ]; then
		say "link wait skipped (no module in the payload)"
		return $_rc
	fi
	_end=$(($(date +%s) + $(scaled 60)))
	while :; do
		_s1=$(link_state "$D1")
		_s2=$(link_state "$D2")
		[ "$_s1" = connected ] && [ "$_s2" = connected ] && break
		if [ "$(date +%s)" -ge "$_end" ]; then
			say "link wait timed out: d$D1=${_s1:-absent} d$D2=${_s2:-absent}"
			cat /proc/net/gntsock_links 2>&1
			return 1
		fi
		sleep 1
	done
	say "links connected"
	cat /proc/net/gntsock_links
	return $_rc
}

# d. dom0's own test against domU1.
s_dom0() {
	[ -n "$D1" ] || { say "no domU1"; return 1; }
	run_ktap "[dom0->d$D1]" env GNTSOCK_PEER_DOMID="$D1" GNTSOCK_SELF_DOMID=0 \
		"$GBIN/gntsock_test"
}

# Send command "$2..." to domid $1 and wait for its answer; returns the domU's status.
domu_cmd() {
	_d=$1
	shift
	ready "$_d" || return 1
	seq=$((seq + 1))
	_base=/local/domain/$_d/data
	rig-xs write "$_base/gntsock-go" "$seq $*" || return 1
	_end=$(($(date +%s) + $(scaled "$RIG_TEST_TIMEOUT") + 60))
	while :; do
		if _done=$(rig-xs wait "$_base/gntsock-done" 5); then
			case $_done in
			"$seq "*)
				return "${_done#"$seq "}"
				;;
			esac
		fi
		if ! xl domname "$_d" >/dev/null 2>&1; then
			say "domid $_d is gone while running '$*'"
			return 1
		fi
		if [ "$(date +%s)" -ge "$_end" ]; then
			say "domid $_d did not finish '$*' in time"
			return 1
		fi
	done
}

# e. each domU tests against its peers, one domU after the other. RIG_ONE_WAY=1 (the debug
# kernel's lane): domU1 -> domU2 only, where one run drives the sending and the receiving
# code, each in a debug kernel of its own.
s_domu() {
	if [ -z "$D1" ] || [ -z "$D2" ]; then say "no domUs"; return 1; fi
	_rc=0
	# Then socket semantics domU1 -> domU2, and loopback inside domU1 (not with RIG_ONE_WAY=1).
	if [ "$RIG_ONE_WAY" = 1 ]; then
		domu_cmd "$D1" test "$D2" || { say "domU1 test run status $?"; _rc=1; }
		domu_cmd "$D1" socktest "$D2" || { say "domU1 sock test run status $?"; _rc=1; }
	else
		domu_cmd "$D1" test "$D2" 0 || { say "domU1 test run status $?"; _rc=1; }
		domu_cmd "$D2" test "$D1" || { say "domU2 test run status $?"; _rc=1; }
		domu_cmd "$D1" socktest "$D2" "$D1" || { say "domU1 sock test run status $?"; _rc=1; }
	fi
	# Linux's own vsock_test, built unchanged as an AF_GNTSOCK program: its
	# server in domU2, its client in domU1, their control socket TCP over
	# the dom0 bridge (port 5100). Each side reports its own half.
	domu_cmd "$D2" vsockserve "$D1" || _rc=1
	domu_cmd "$D1" vsocktest "$D2" "$RIG_NET.$D2" || { say "domU1 vsock_test run status $?"; _rc=1; }
	if ! _s=$(rig-xs wait "/local/domain/$D2/data/vsock-served" "$(scaled 60)"); then
		say "domU2's vsock_test server did not finish"
		domu_cmd "$D2" shell "kill \$(pidof vsock_test) 2>/dev/null; true"
		_s=1
	fi
	[ "$_s" = 0 ] || { say "domU2 vsock_test server status $_s"; _rc=1; }
	return $_rc
}

# Unprivileged syscall fuzzing (gntsock_sockfuzz, only when named): domU1 against domU2 and
# dom0 and domU2 against domU1 at the same time, so that each side's listeners take the other's
# connections and grants (loopback refuses grants). Then both domUs must still answer commands
# and every link between the three domains must still be connected.
FUZZ_S=60
s_sockfuzz() {
	if [ -z "$D1" ] || [ -z "$D2" ]; then say "no domUs"; return 1; fi
	_secs=$(scaled $FUZZ_S)
	_rc=0
	# domu_cmd numbers commands in $seq: the background one takes the next number in its
	# subshell, so the parent skips that number.
	domu_cmd "$D2" sockfuzz "$_secs" "$D1" &
	_bg=$!
	seq=$((seq + 1))
	domu_cmd "$D1" sockfuzz "$_secs" "$D2" 0 || { say "domU1 sockfuzz run status $?"; _rc=1; }
	wait "$_bg" || { say "domU2 sockfuzz run status $?"; _rc=1; }
	printf '[dom0 sockfuzz] KTAP version 1\n[dom0 sockfuzz] 1..4\n'
	_n=0
	for _d in "$D1" "$D2"; do
		_n=$((_n + 1))
		_o=$(( _d == D1 ? D2 : D1 ))
		rig-xs rm "/local/domain/$_d/data/fuzz-link" 2>/dev/null
		if xl domname "$_d" >/dev/null 2>&1 &&
			domu_cmd "$_d" shell "echo d$_d alive after sockfuzz; cat /proc/net/gntsock_stat | head -4; rig-xs write data/fuzz-link \"\$(awk -v p=$_o 'NR > 1 && \$1 == p { print \$3 }' /proc/net/gntsock_links)\""; then
			printf '[dom0 sockfuzz] ok %d domU%d_alive_and_serving\n' "$_n" "$_n"
		else
			printf '[dom0 sockfuzz] not ok %d domU%d_alive_and_serving\n' "$_n" "$_n"
			_rc=1
		fi
	done
	_l12=$(rig-xs read "/local/domain/$D1/data/fuzz-link" 2>/dev/null)
	if [ "$_l12" = connected ]; then
		printf '[dom0 sockfuzz] ok 3 domU1_domU2_link_connected\n'
	else
		printf '[dom0 sockfuzz] not ok 3 domU1_domU2_link_connected # %s\n' "${_l12:-unknown}"
	fi
	_s1=$(link_state "$D1")
	_s2=$(link_state "$D2")
	if [ "$_s1" = connected ] && [ "$_s2" = connected ]; then
		printf '[dom0 sockfuzz] ok 4 dom0_links_connected\n'
	else
		printf '[dom0 sockfuzz] not ok 4 dom0_links_connected # d%s %s, d%s %s\n' \
			"$D1" "${_s1:-absent}" "$D2" "${_s2:-absent}"
	fi
	return $_rc
}

# Xen's own view of the grant tables: active entries in a fresh 'g' debug-key dump.
xen_active_grants() {
	xl debug-keys g >/dev/null 2>&1 || return 1
	sleep 2
	xl dmesg 2>/dev/null | awk '
		/gnttab_usage_print_all \[ key/ { n = 0; on = 1; next }
		/gnttab_usage_print_all \] done/ { on = 0; last = n; next }
		on && /^\(XEN\) \[0x[0-9a-f]+\] / { n++ }
		END { print last + 0 }'
}

# Grants as control messages: dom0 -> domU1, domU1 -> domU2 and domU1 -> dom0 (RIG_ONE_WAY=1:
# domU1 -> domU2 only), then Xen's view: no grant
# entry left active beyond the links' own rings.
s_grant() {
	if [ -z "$D1" ] || [ -z "$D2" ]; then say "no domUs"; return 1; fi
	_rc=0
	_g0=$(xen_active_grants)
	say "xen active grant entries before the grant tests: ${_g0:-unknown}"
	if [ "$RIG_ONE_WAY" = 1 ]; then
		domu_cmd "$D1" grant "$D2" || { say "domU1 grant run status $?"; _rc=1; }
	else
		run_ktap "[dom0->d$D1 grant]" env GNTSOCK_PEER_DOMID="$D1" GNTSOCK_PEER2_DOMID="$D2" \
			GNTSOCK_LINK_TOOL="$GBIN/gntsock-link" "$GBIN/gntsock_grant_test" || _rc=1
		domu_cmd "$D1" grant "$D2" 0 || { say "domU1 grant run status $?"; _rc=1; }
	fi
	sleep 2
	_g1=$(xen_active_grants)
	say "xen active grant entries after the grant tests: ${_g1:-unknown}"
	if [ -n "$_g0" ] && [ -n "$_g1" ] && [ "$_g0" -gt 0 ] && [ "$_g0" = "$_g1" ]; then
		printf '[dom0 grant-xen] ok 1 xen_grant_tables_back_to_baseline\n'
	else
		printf '[dom0 grant-xen] not ok 1 xen_grant_tables_back_to_baseline # before %s after %s\n' \
			"${_g0:-?}" "${_g1:-?}"
	fi
	for _d in "$D1" "$D2"; do
		domu_cmd "$_d" shell "echo d$_d grant counters:; cat /proc/net/gntsock_grants"
	done
	sed 's/^/dom0 grant counters: /' /proc/net/gntsock_grants
	return $_rc
}

# e2. per-link negotiation: dom0 as a receiver that maps grants plainly (the IOMMU case).
# shellcheck source=plan-negotiation.sh
. /opt/gntsock/rig/plan-negotiation.sh

# f. unload/reload gntsock inside domU2.
s_reload() {
	[ -n "$D2" ] || { say "no domU2"; return 1; }
	domu_cmd "$D2" reload "$D1"
}

# The main job (make demo): a file from domU1 to domU2 over AF_GNTSOCK with gntcat. Each domU
# publishes the SHA-256 of its copy in xenstore; dom0 compares them and shows the grants
# behind the link (the ring pages each kernel grants or maps).
DEMO_PORT=7000
DEMO_MIB=${RIG_DEMO_MIB:-64}
s_demo() {
	if [ -z "$D1" ] || [ -z "$D2" ]; then say "no domUs"; return 1; fi
	_k=data/gntsock-demo-sha
	domu_cmd "$D2" shell "rm -f /tmp/demo.out; gntcat -l $DEMO_PORT >/tmp/demo.out 2>/dev/console </dev/null & echo \$! >/tmp/demo.pid" ||
		return 1
	sleep 1
	domu_cmd "$D1" shell "head -c $((DEMO_MIB * 1048576)) /dev/urandom >/tmp/demo.in && set -- \$(sha256sum /tmp/demo.in) && rig-xs write $_k \$1 && echo domU1 sha256 \$1 && s=\$(date +%s) && gntcat -v $D2:$DEMO_PORT </tmp/demo.in && echo sent $DEMO_MIB MiB in \$((\$(date +%s) - s)) s" ||
		return 1
	domu_cmd "$D2" shell "while kill -0 \$(cat /tmp/demo.pid) 2>/dev/null; do sleep 1; done; set -- \$(sha256sum /tmp/demo.out) && rig-xs write $_k \$1 && echo domU2 sha256 \$1; ls -l /tmp/demo.out" ||
		return 1
	_s1=$(rig-xs read "/local/domain/$D1/$_k")
	_s2=$(rig-xs read "/local/domain/$D2/$_k")
	say "demo domU1 -> domU2: $DEMO_MIB MiB, sha256 sent $_s1, received $_s2"
	say "demo grants: dom0 view of its links (ring pages granted to / mapped from the domUs):"
	sed 's/^/dom0: /' /proc/net/gntsock_links
	grep -E '^(links|ring_grants|ring_maps)' /proc/net/gntsock_stat | sed 's/^/dom0: /'
	domu_cmd "$D1" shell "echo domU1:; cat /proc/net/gntsock_links; grep -E '^(ring_grants|ring_maps)' /proc/net/gntsock_stat"
	domu_cmd "$D2" shell "echo domU2:; cat /proc/net/gntsock_links; grep -E '^(ring_grants|ring_maps)' /proc/net/gntsock_stat"
	_ok=1
	if [ -n "$_s1" ] && [ "$_s1" = "$_s2" ]; then
		printf '[dom0 demo] ok 1 file_domU1_to_domU2_checksum_matches\n'
	else
		_ok=0
		printf '[dom0 demo] not ok 1 file_domU1_to_domU2_checksum_matches\n'
	fi
	# The same file again, by grant: domU2 maps domU1's pages and copies them out.
	_kg=data/gntsock-demo-grant-sha
	_gp=$((DEMO_PORT + 1))
	domu_cmd "$D2" shell "rm -f /tmp/demo.out /tmp/demo-g.out; gntcat -l $_gp >/tmp/demo-g.out 2>/dev/console </dev/null & echo \$! >/tmp/demo-g.pid" ||
		return 1
	sleep 1
	domu_cmd "$D1" shell "s=\$(date +%s) && gntcat -v --grant /tmp/demo.in $D2:$_gp </dev/null && echo sent $DEMO_MIB MiB by grant in \$((\$(date +%s) - s)) s; grep -E '^(offered|released|out_grants|deferred) ' /proc/net/gntsock_grants; rm -f /tmp/demo.in" ||
		return 1
	domu_cmd "$D2" shell "while kill -0 \$(cat /tmp/demo-g.pid) 2>/dev/null; do sleep 1; done; set -- \$(sha256sum /tmp/demo-g.out) && rig-xs write $_kg \$1 && echo domU2 by-grant sha256 \$1; ls -l /tmp/demo-g.out; rm -f /tmp/demo-g.out" ||
		return 1
	_s3=$(rig-xs read "/local/domain/$D2/$_kg")
	say "demo by grant domU1 -> domU2: sha256 sent $_s1, received $_s3"
	if [ -n "$_s1" ] && [ "$_s1" = "$_s3" ]; then
		printf '[dom0 demo] ok 2 file_domU1_to_domU2_by_grant_checksum_matches\n'
	else
		_ok=0
		printf '[dom0 demo] not ok 2 file_domU1_to_domU2_by_grant_checksum_matches\n'
	fi
	if [ $_ok -eq 1 ]; then
		say "DEMO: PASS (checksums match, streamed and by grant)"
	else
		say "DEMO: FAIL (checksums differ or missing)"
	fi
	return 0
}

# gntsock-perf in domU2 serving gntsock, TCP and a vchan to domU1 (for s_perf, s_bench).
# Extra arguments ($*) start a further server (other port, other options).
perf_server_start() {
	if [ $# -eq 0 ]; then
		set -- --vchan-peer "$D1"
	fi
	domu_cmd "$D2" shell "gntsock-perf serve $* </dev/null >/dev/console 2>&1 & echo \$! >>/tmp/perf.pid"
}

perf_server_stop() {
	domu_cmd "$D2" shell "kill \$(cat /tmp/perf.pid) 2>/dev/null; rm -f /tmp/perf.pid"
}

# Has domid $1 an address on the bridge? Prints it.
domu_addr() {
	[ -d "/sys/class/net/$RIG_BRIDGE" ] && echo "$RIG_NET.$1"
}

# i. gntsock-perf's smoke test domU1 -> domU2: every transport and mode, small.
s_perf() {
	if [ -z "$D1" ] || [ -z "$D2" ]; then say "no domUs"; return 1; fi
	perf_server_start || return 1
	sleep 1
	_rc=0
	domu_cmd "$D1" perf "$D2" "$(domu_addr "$D2")" || _rc=1
	perf_server_stop
	return $_rc
}

# One section of the benchmark: title $1, gntsock-perf arguments $2, subcommand $4 (default
# run); its output goes to the console between BENCH-BEGIN and BENCH-END (bench.sh extracts
# it). Its exit status comes back through xenstore and becomes KTAP result $3 of
# "[dom0 bench]".
bench_run() {
	_k=data/gntsock-bench-status
	# shellcheck disable=SC2016
	domu_cmd "$D1" shell "rig-xs write $_k none; echo BENCH-BEGIN; echo '### $1'; gntsock-perf ${4:-run} --peer $D2 $2; s=\$?; echo bench exit status \$s; rig-xs write $_k \$s; echo BENCH-END"
	_s=$(rig-xs read "/local/domain/$D1/$_k")
	if [ "$_s" = 0 ]; then
		printf '[dom0 bench] ok %s %s\n' "$3" "$1"
		return 0
	fi
	printf '[dom0 bench] not ok %s %s # gntsock-perf status %s\n' "$3" "$1" "${_s:-unknown}"
	return 0
}

# Profile snapshot $2 (0 or 1) in domid $1 of link peer $3: /proc/net/gntsock_stat and the link's
# counters as "name value" lines in /tmp/gntsock-prof.$2.
prof_snap() {
	# shellcheck disable=SC2016
	domu_cmd "$1" shell "{ cat /proc/net/gntsock_stat; awk -v p=$3 'NR > 1 && \$1 == p { print \"link_tx_msgs\", \$5; print \"link_rx_msgs\", \$6; print \"link_tx_bytes\", \$7; print \"link_rx_bytes\", \$8; print \"link_ev_rx\", \$12; print \"link_ev_tx\", \$13 }' /proc/net/gntsock_links; } >/tmp/gntsock-prof.$2"
}

# Print, in domid $1, what changed between its snapshots 0 and 1, per MiB moved over the link.
prof_show() {
	# shellcheck disable=SC2016
	domu_cmd "$1" shell "echo BENCH-BEGIN; echo '   $2 (domid $1), per MiB moved:'; awk 'NR == FNR { a[\$1] = \$2; next } { d[\$1] = \$2 - a[\$1]; k[++n] = \$1 } END { m = (d[\"link_tx_bytes\"] + d[\"link_rx_bytes\"]) / 1048576; if (m <= 0) m = 1; printf \"      MiB moved %.1f\\n\", m; for (i = 1; i <= n; i++) if (d[k[i]] != 0) printf \"      %-18s %14.1f\\n\", k[i], d[k[i]] / m }' /tmp/gntsock-prof.0 /tmp/gntsock-prof.1; echo BENCH-END"
}

# Module parameters of both domUs: "name=value ..." in $1.
bench_params() {
	for _d in "$D1" "$D2"; do
		domu_cmd "$_d" shell "cd /sys/module/gntsock/parameters && for p in $1; do echo \${p#*=} >\${p%%=*}; done"
	done
}

# One profiled gntsock run (64 KiB writes): both sides' counters per MiB.
bench_profile() {
	prof_snap "$D1" 0 "$D2"
	prof_snap "$D2" 0 "$D1"
	bench_run "profile: $1" "--only gntsock --sizes 64K --scale 0 --rtt-count 200 ${RIG_BENCH_ARGS:-}" "$2"
	prof_snap "$D1" 1 "$D2"
	prof_snap "$D2" 1 "$D1"
	prof_show "$D1" "sender"
	prof_show "$D2" "receiver"
}

# Looks at the ring a busy-polling reader makes before it sleeps, in the benchmark.
RIG_BENCH_POLLS=100000

# j. the benchmark (make bench; only when RIG_TESTS names it): gntsock-perf domU1 -> domU2:
# the table of all four transports, then gntsock variants measured in the same boot.
s_bench() {
	if [ -z "$D1" ] || [ -z "$D2" ]; then say "no domUs"; return 1; fi
	perf_server_start || return 1
	perf_server_start --port 6101 --no-tcp --gnt-buffer 1M || return 1
	sleep 1
	_a=$(domu_addr "$D2")
	say "bench domU1=$D1 domU2=$D2 tcp=${_a:-none} args=${RIG_BENCH_ARGS:-}"
	_rc=0
	# shellcheck disable=SC2016
	domu_cmd "$D1" shell "echo BENCH-BEGIN; echo domU1 \$(grep MemTotal /proc/meminfo) vcpus \$(grep -c ^processor /proc/cpuinfo); cat /proc/net/gntsock_links; echo BENCH-END" || _rc=1
	printf '[dom0 bench] 1..18\n'
	bench_run "all transports, module defaults" "${_a:+--tcp $_a} ${RIG_BENCH_ARGS:-}" 1 ||
		_rc=1
	if [ "${RIG_BENCH_QUICK:-0}" = 1 ]; then
		for _n in $(seq 2 17); do printf '[dom0 bench] ok %s # SKIP quick bench\n' "$_n"; done
		bench_busy_poll
		return $_rc
	fi
	bench_run "gntsock, 1 MiB socket buffers (GNTSOCK_SO_BUFFER_SIZE) at both ends" \
		"--port 6101 --gnt-buffer 1M --only gntsock --sizes 4K,64K,1M ${RIG_BENCH_ARGS:-}" 2 ||
		_rc=1
	bench_run "grant path: 1, 16, 64 MiB by grant cmsg, mapped and touched, vs streamed" \
		"" 3 grant || _rc=1
	# Notification by the flags, as before event indices, against the defaults, same
	# boot: every size, then the defaults again (the events per MiB are in both).
	bench_params "event_index=0"
	bench_run "gntsock notified by flags, not event indices (event_index=0)" \
		"--only gntsock ${RIG_BENCH_ARGS:-}" 4 || _rc=1
	bench_params "event_index=1"
	bench_run "gntsock notified by event indices (the default), again" \
		"--only gntsock ${RIG_BENCH_ARGS:-}" 5 || _rc=1
	# Each receive-path change on and off, same boot (module parameters buf_auto_max,
	# rx_batch_wake, stat_times); rx_page_bufs stays at its default. The
	# time counters (stat_times=1) show where the receiver's time goes.
	_sc="--only gntsock --sizes 64K --rtt-count 200 ${RIG_BENCH_ARGS:-}"
	_dflt="buf_auto_max=1048576 rx_batch_wake=1 stat_times=0 event_index=1"
	_nogrow="buf_auto_max=262144 rx_batch_wake=1 stat_times=0 event_index=1"
	_nobatch="buf_auto_max=1048576 rx_batch_wake=0 stat_times=0 event_index=1"
	_times="buf_auto_max=1048576 rx_batch_wake=1 stat_times=1 event_index=1"
	_before="buf_auto_max=262144 rx_batch_wake=0 stat_times=1 event_index=1"
	for _pass in "" ", again"; do
		_n=$([ -z "$_pass" ] && echo 6 || echo 13)
		bench_params "$_dflt"
		bench_profile "defaults (buffer growth, batched wake-ups, no time counters)$_pass" "$_n"
		bench_params "$_nogrow"
		bench_profile "buffer growth off (buf_auto_max=262144)$_pass" $((_n + 1))
		bench_params "$_nobatch"
		bench_profile "batched wake-ups off (rx_batch_wake=0)$_pass" $((_n + 2))
		bench_params "$_times"
		bench_profile "time counters on (stat_times=1)$_pass" $((_n + 3))
		bench_params "$_before"
		bench_profile "all three off (as before)$_pass" $((_n + 4))
		if [ -z "$_pass" ]; then
			bench_params "$_before"
			bench_run "scale, all three off (as before)" "$_sc" 11
			bench_params "$_dflt"
			bench_run "scale, defaults" "$_sc" 12
		fi
	done
	bench_params "$_dflt"
	bench_busy_poll
	return $_rc
}

# Busy-polling readers (GNTSOCK_SO_BUSY_POLL) at both gntsock ends, against TCP and a vchan in
# the same run (result 18): a server started again, since its vchan takes one client. Stops
# the servers. Uses s_bench's $_a.
bench_busy_poll() {
	perf_server_stop
	perf_server_start --vchan-peer "$D1" --busy-poll "$RIG_BENCH_POLLS" || return 1
	sleep 1
	bench_run "all transports, gntsock readers busy-poll (GNTSOCK_SO_BUSY_POLL $RIG_BENCH_POLLS) at both ends" \
		"${_a:+--tcp $_a} --busy-poll $RIG_BENCH_POLLS --scale 0 ${RIG_BENCH_ARGS:-}" 18
	perf_server_stop
}

# g. dom0 destroys a linked domU mid-transfer.
s_destroy() {
	run_ktap "[dom0 destroy]" env GNTSOCK_DOMU_CREATE="$GBIN/rig-create-domu" \
		GNTSOCK_SELF_DOMID=0 "$GBIN/gntsock_dom0_test"
}

# h. xen-backend: forced revoke of revocable grant mappings between domU1 (granter) and
# domU2 (a mapper that ignores every request), through the test module gntsock_xrt.ko.
# Commands go to /proc/gntsock_xrt in a domU; its one-line "key=value ..." answer comes
# back through xenstore. On a hypervisor without the extension every test is a SKIP.
XRT_T=0
XRT_TAG="dom0 revoke"
# (Not in a subshell: domu_cmd numbers the commands in the global $seq.)
xrt() { # xrt DOMID COMMAND...: the domU's answer goes to $XRT
	_d=$1
	shift
	XRT=none
	domu_cmd "$_d" shell "echo $* >/proc/gntsock_xrt; rig-xs write data/xrt-out \"\$(cat /proc/gntsock_xrt)\"" ||
		return 1
	XRT=$(rig-xs read "/local/domain/$_d/data/xrt-out")
	say "xrt d$_d '$*' -> $XRT"
}
kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; } # kv LINE KEY
kvn() { _v=$(kv "$1" "$2"); case $_v in '' | *[!0-9-]*) echo -99999 ;; *) echo "$_v" ;; esac; } # numeric
xrt_ok() { # xrt_ok NAME CONDITION-STATUS [DETAIL]
	XRT_T=$((XRT_T + 1))
	if [ "$2" -eq 0 ]; then
		printf '[%s] ok %d %s\n' "$XRT_TAG" "$XRT_T" "$1"
	else
		printf '[%s] not ok %d %s # %s\n' "$XRT_TAG" "$XRT_T" "$1" "${3:-}"
	fi
}
xrt_skip() {
	XRT_T=$((XRT_T + 1))
	printf '[%s] ok %d %s # SKIP %s\n' "$XRT_TAG" "$XRT_T" "$1" "$2"
}
# Concurrency: MAPPER's threads map and unmap 32 pages granted by domU1
# while domU1's threads revoke them, for SECS seconds, 2 threads each;
# result names start with PREFIX.
xrt_stress() { # xrt_stress MAPPER SECS PREFIX
	xrt "$D1" grant "$1" 32 1 || return 1
	_idx=$(kv "$XRT" index)
	xrt "$1" stress-map "$D1" "$_idx" 32 2
	_s=$XRT
	[ "$(kv "$_s" threads)" = 2 ]
	xrt_ok "${3}stress_mapper_threads_started" $? "$_s"
	xrt "$D1" stress-revoke "$2" 2
	_r=$XRT
	xrt "$1" stress-stop
	_s=$XRT
	[ "$(kv "$_r" errors)" = 0 ] && [ "$(kv "$_r" revoked)" -gt 0 ]
	xrt_ok "${3}stress_revokes_succeed_and_hit_live_mappings" $? "$_r"
	[ "$(kv "$_s" maps)" -gt 0 ] && [ "$(kv "$_s" map_fail)" = 0 ] &&
		[ "$(kv "$_s" unmap_fail)" = 0 ] && [ "$(kv "$_s" bad_read)" = 0 ]
	xrt_ok "${3}stress_maps_unmaps_consistent" $? "$_s"
	xrt "$D1" release
	return 0
}
# One round: N pages granted revocable-only by domU1, mapped revocably by MAPPER (default
# domU2), force-revoked in one call.
xrt_round() { # xrt_round N [MAPPER]
	_n=$1
	_mp=${2:-$D2}
	xrt "$D1" grant "$_mp" "$_n" 1 || return 1
	_g=$XRT
	_idx=$(kv "$_g" index)
	[ "$(kv "$_g" only)" = "$_n" ]
	xrt_ok "n${_n}_grants_marked_revocable_only" $? "$_g"
	[ -n "$_idx" ] || { xrt_ok "n${_n}_grant" 1 "$_g"; return 1; }
	xrt "$_mp" map "$D1" "$_idx" "$_n"
	_m=$XRT
	[ "$(kv "$_m" mapped)" = "$_n" ] && [ "$(kv "$_m" read_a)" = "$_n" ]
	xrt_ok "n${_n}_revocable_maps_show_granter_data" $? "$_m"
	[ "$(kv "$_m" plain_status)" = -8 ]
	xrt_ok "n${_n}_plain_map_of_revocable_only_grant_refused" $? "$_m"
	xrt "$D1" check-m
	_c=$XRT
	[ "$(kv "$_c" half)" = "$_n" ]
	xrt_ok "n${_n}_mapper_writes_reach_granter_before_revoke" $? "$_c"
	xrt "$D1" revoke
	_r=$XRT
	[ "$(kv "$_r" okay)" = "$_n" ] && [ "$(kv "$_r" nr_revoked)" = "$_n" ] &&
		[ "$(kv "$_r" reclaimed)" = "$_n" ]
	xrt_ok "n${_n}_forced_revoke_reclaims_every_page" $? "$_r"
	say "revoke of $_n grants in one call took $(kv "$_r" us) us"
	xrt "$_mp" after
	_a=$XRT
	[ "$(kv "$_a" saw_granter_new)" = 0 ] && [ "$(kv "$_a" saw_repl)" = "$_n" ] &&
		[ "$(kv "$_a" other)" = 0 ]
	xrt_ok "n${_n}_revoked_mapper_sees_only_its_replacement_frames" $? "$_a"
	xrt "$D1" check-n
	_c=$XRT
	[ "$(kv "$_c" all)" = "$_n" ]
	xrt_ok "n${_n}_granter_pages_unchanged_by_later_mapper_writes" $? "$_c"
	xrt "$_mp" unmap
	_u=$XRT
	[ "$(kv "$_u" unmapped)" = "$_n" ] && [ "$(kv "$_u" failed)" = 0 ]
	xrt_ok "n${_n}_revoked_mappings_unmap_cleanly" $? "$_u"
	xrt "$D1" release
	return 0
}
s_revoke() {
	if [ -z "$D1" ] || [ -z "$D2" ]; then say "no domUs"; return 1; fi
	for _d in "$D1" "$D2"; do
		domu_cmd "$_d" shell "insmod $GBIN/gntsock_xrt.ko" || return 1
	done
	xrt "$D1" probe || return 1
	_p1=$XRT
	xrt "$D2" probe || return 1
	_p2=$XRT
	# SKIP only on the module's own answer "supported=0"; no answer (module
	# missing or not loaded) is a failure.
	for _p in "$_p1" "$_p2"; do
		case "$(kv "$_p" supported)" in
		0 | 1) ;;
		*)
			xrt_ok revocable_grants_probe_answers 1 "probe answered '$_p'"
			return 1
			;;
		esac
	done
	if [ "$(kv "$_p1" supported)" != 1 ] || [ "$(kv "$_p2" supported)" != 1 ]; then
		for _t in revocable_grants_supported forced_revoke_16 forced_revoke_1000 \
			revoke_stress; do
			xrt_skip "$_t" "hypervisor has no revocable grant mappings (GNTTABOP_revoke: ENOSYS)"
		done
		return 0
	fi
	xrt_ok revocable_grants_supported 0
	xrt_round 16
	xrt_round 1000
	# Concurrency: mapper threads map/unmap while granter threads revoke, on every vCPU.
	xrt_stress "$D2" "${RIG_XRT_STRESS_SECS:-30}" "" || return 1
	_x=$XRT
	xen_log_clean
	xrt_ok hypervisor_log_free_of_assertions $?
	return 0
}

# Xen's log has no assertion, BUG, WARN or lock complaint (debug=y hypervisor).
xen_log_clean() {
	xl dmesg | grep -E "Assertion|CHECKLOCK|Xen BUG|FATAL|Xen WARN" | head -n 20
	! xl dmesg | grep -qE "Assertion|CHECKLOCK|Xen BUG|FATAL|Xen WARN"
}

# i. An auto-translated (PVH) mapper (only when RIG_TESTS names "pvh"; on shadow paging,
# or on HAP with QEMU -cpu ...,+npt): domU1 (PV) grants, a PVH domU maps revocably (the grant goes
# into its p2m) and ignores every request; forced revokes swap its p2m entries to its
# replacement frames. Then a PVH domU dies holding revoked mappings: Xen must drop their
# replacement frames' references, or the domain never goes away.
pvh_domain_gone() { # pvh_domain_gone NAME: gone from Xen's domain list within 60 s
	_end=$(($(date +%s) + $(scaled 60)))
	while xl list 2>/dev/null | awk -v n="$1" '$1 == n || $1 == "(null)" { f = 1 } END { exit !f }'; do
		[ "$(date +%s)" -lt "$_end" ] || return 1
		sleep 1
	done
	return 0
}
s_pvh() {
	XRT_TAG="dom0 pvh"
	XRT_T=0
	# (Not _p: run_ktap uses that name.)
	[ -n "$D1" ] || { say "no domU1"; return 1; }
	xl dmesg | grep -E "HVM: |HAP|SVM" | head -n 8
	if ! PVH_D=$(rig-create-domu domU-pvh 'type="pvh"'); then
		xrt_ok pvh_domU_boots 1 "see the serial log"
		xl list
		return 1
	fi
	xrt_ok pvh_domU_boots 0
	READY="$READY $PVH_D"
	domu_cmd "$PVH_D" shell "cat /sys/hypervisor/guest_type; insmod $GBIN/gntsock_xrt.ko" || return 1
	domu_cmd "$D1" shell "grep -q gntsock_xrt /proc/modules || insmod $GBIN/gntsock_xrt.ko" ||
		return 1
	xrt "$PVH_D" probe
	_o=$XRT
	xrt "$D1" probe
	case "$(kv "$_o" supported) $(kv "$XRT" supported)" in
	"1 1") ;;
	"0 0")
		for _t in pvh_revocable_grants_supported pvh_forced_revoke_16 pvh_forced_revoke_1000 \
			pvh_revoke_stress pvh_destroy_with_revoked_mappings; do
			xrt_skip "$_t" "hypervisor has no revocable grant mappings (GNTTABOP_revoke: ENOSYS)"
		done
		xl destroy domU-pvh
		return 0
		;;
	*)
		xrt_ok pvh_revocable_grants_probe_answers 1 "pvh '$_o' domU1 '$XRT'"
		xl destroy domU-pvh
		return 1
		;;
	esac
	xrt_ok pvh_revocable_grants_supported 0
	xrt_round 16 "$PVH_D"
	xrt_round 1000 "$PVH_D"
	# Concurrency: PVH mapper threads map/unmap while granter threads revoke.
	xrt_stress "$PVH_D" "${RIG_XRT_PVH_STRESS_SECS:-15}" pvh_ || return 1
	# gntsock's own grant path with a PVH receiver: dom0 grants, the PVH domU's
	# gntsock_peer maps into user space (through the p2m); the suite includes the
	# forced revoke of a peer that ignores GRANT_REVOKE (forced_revoke_reclaims).
	if "$GBIN/gntsock-link" add 0 "$PVH_D"; then
		_end=$(($(date +%s) + $(scaled 60)))
		while [ "$(link_state "$PVH_D")" != connected ] && [ "$(date +%s)" -lt "$_end" ]; do
			sleep 1
		done
	fi
	[ "$(link_state "$PVH_D")" = connected ]
	xrt_ok pvh_gntsock_link_connects $? "$(cat /proc/net/gntsock_links | tr '\n' ';')"
	run_ktap "[dom0->pvh grant]" env GNTSOCK_PEER_DOMID="$PVH_D" \
		GNTSOCK_LINK_TOOL="$GBIN/gntsock-link" "$GBIN/gntsock_grant_test"
	domu_cmd "$PVH_D" shell "echo pvh grant counters:; cat /proc/net/gntsock_grants"
	# The PVH mapper dies holding 16 revoked mappings (never unmapped).
	xrt "$D1" grant "$PVH_D" 16 1 || return 1
	_idx=$(kv "$XRT" index)
	xrt "$PVH_D" map "$D1" "$_idx" 16
	_m=$XRT
	xrt "$D1" revoke
	_r=$XRT
	[ "$(kv "$_m" mapped)" = 16 ] && [ "$(kv "$_r" okay)" = 16 ] &&
		[ "$(kv "$_r" reclaimed)" = 16 ]
	xrt_ok pvh_revoked_before_destroy $? "$_m / $_r"
	xrt "$D1" release
	xl destroy domU-pvh
	pvh_domain_gone domU-pvh
	xrt_ok pvh_destroy_with_revoked_mappings_frees_the_domain $? "$(xl list | tail -n +2 | tr '\n' ';')"
	xen_log_clean
	xrt_ok pvh_hypervisor_log_free_of_assertions $?
	return 0
}

# j. Attacks of a malicious mapper on the forced revoke (xen-backend, issue 11), with the
# test module gntsock_xrt.ko (selftests/xrt/xrt_*.c): step "attack" (PV mappers: domU2,
# and throw-away domUs for what a debug=y hypervisor may answer by crashing the mapper)
# and, only when named, "attack-pvh" (PVH mappers). domU1 (or a throw-away PV domU)
# grants; the mapper attacks with raw hypercalls and answers what each step returned;
# then the checks every attack ends with:
#  - atk_reclaim: the granter revokes with GNTTAB_REVOKE_END_ACCESS, one entry per call, up
#    to 100 tries over 10 s, and ends access itself: every page must come back
#    (*_reclaims_100pct); a fresh 'g' dump of Xen's grant tables must show none of its
#    refs still pinned (*_no_pin_left);
#  - atk_post: the mapper must reach no granted frame and no page table it may write, must
#    read nothing the granter wrote after its reclaim, and every slot must show what the
#    revoke had to put there or leave alone (*_mapper_gains_no_access); it unmaps every
#    mapping naming its own address (*_mapper_unmaps_at_own_address), a mapping it "made
#    gone" without Xen touching that address (*_gone_mapping_unmaps_without_touching_it);
#  - atk_gcheck: the granter's pages hold what it wrote, whatever the mapper wrote after
#    (*_granter_pages_untouched), and carry no type reference: each can be pinned as an L1
#    page table (*_no_type_ref_leak);
#  - the hypervisor log has no assertion, BUG, WARN or FATAL (*_hypervisor_log_clean).
# Documentation/testing.rst ("Attacks on the forced revoke") has the table of attacks.
ATK_GR=""	# granting domid of the current attack
ATK_IDX=""	# its index ref
ATK_REFS=""	# its refs, comma-separated
ATK_X=none	# the mapper's answer to the attack
ATK_TD=""	# the current throw-away domU (domid) and its name
ATK_TN=""
ATK_N=0
ATK_M=""	# the step's mapper (domid) and, for a PVH mapper, its name
ATK_MN=""
ATK_PVHN=0
ATK_PAGING=""	# attack-pvh: hap or shadow (how Xen runs the PVH mapper)
ATK_REUP=0
ATK_DEBUG=unknown
ATK_BAD=/tmp/xen-bad.log
ATK_SKIP="hypervisor has no revocable grant mappings (GNTTABOP_revoke: ENOSYS)"
ATK_PV_TESTS="p2_cross_unmap p4_remap_after_end_access p4b_map_loop_vs_revoke
p4b_copy_loop_vs_revoke p7_many_mappings_one_revoke p8_input_misuse p7_cap
p2b_plain_cross_unmap p3a_unmap_and_replace p3b_mmu_update_over_pte p3c_plain_map_over_pte
p3d_unpin_l1_holding_pte p5_granter_destroyed_first p10_mapper_dies_holding_mappings
p1_second_map_same_pte p1m_second_map_same_pte_mirror"
ATK_PVH_TESTS="pvh_p2_cross_unmap pvh_p4_remap_after_end_access pvh_p4b_map_loop_vs_revoke
pvh_p4b_copy_loop_vs_revoke pvh_p7_many_mappings_one_revoke pvh_p8_input_misuse pvh_p7_cap
pvh_p6a_decrease_reservation_revoked_gfn pvh_p6b_remove_from_physmap_before_revoke
pvh_p6c_remove_from_physmap_after_revoke pvh_p6d_decrease_reservation_replacement
pvh_p5_granter_destroyed_first pvh_p10_mapper_dies_holding_mappings pvh_p1_second_map_same_gfn"

# Alarming lines of Xen's console ring.
xen_bad_lines() {
	xl dmesg 2>/dev/null | grep -E "Assertion|CHECKLOCK|Xen BUG|FATAL|Xen WARN"
}

# Xen's log, including what atk_clear_ring() kept, is free of them.
xen_log_clean_all() {
	xen_bad_lines >>"$ATK_BAD"
	sort -u "$ATK_BAD" | head -n 20
	[ ! -s "$ATK_BAD" ]
}

# Empty Xen's console ring (conring_size=1M in the rig: a 'g' dump must fit), keeping its
# alarming lines.
atk_clear_ring() {
	xen_bad_lines >>"$ATK_BAD"
	xl dmesg -c >/dev/null 2>&1
}

# How many of the refs (comma-separated $2) of domid $1 Xen still counts pinned, in a fresh
# 'g' dump ("unknown" when the dump did not fit the ring).
xen_pinned_refs() {
	atk_clear_ring
	xl debug-keys g >/dev/null 2>&1 || { echo unknown; return; }
	sleep 2
	xl dmesg 2>/dev/null | awk -v dom="$1" -v refs="$2" '
		BEGIN { n = split(refs, r, ","); for (i = 1; i <= n; i++) want[sprintf("0x%03x", r[i])] = 1 }
		/gnttab_usage_print_all \[ key/ { start = 1; done = 0; cur = ""; np = 0; next }
		/gnttab_usage_print_all \] done/ { done = 1; next }
		/grant-table for remote d[0-9]+/ {
			match($0, /remote d[0-9]+/); cur = substr($0, RSTART + 8, RLENGTH - 8); next
		}
		start && !done && cur == dom && match($0, /\[0x[0-9a-f]+\]/) {
			if (substr($0, RSTART + 1, RLENGTH - 2) in want) np++
		}
		END { if (!start || !done) print "unknown"; else print np }'
}

atk_alive() { # atk_alive DOMID: Xen still lists it (alive or a zombie)
	xl list 2>/dev/null | awk -v d="$1" 'NR > 1 && $2 == d { f = 1 } END { exit !f }'
}

atk_gone() { # atk_gone DOMID SECS: gone from Xen's domain list (no zombie) within SECS
	a_e=$(($(date +%s) + $(scaled "$2")))
	while atk_alive "$1"; do
		[ "$(date +%s)" -lt "$a_e" ] || return 1
		sleep 1
	done
	return 0
}

# Load gntsock_xrt in each domid and probe: 0 supported everywhere, 2 a stock hypervisor,
# 1 no answer.
atk_setup() {
	for a_d in "$@"; do
		domu_cmd "$a_d" shell "grep -q gntsock_xrt /proc/modules || insmod $GBIN/gntsock_xrt.ko" ||
			return 1
		xrt "$a_d" probe || return 1
		case "$(kv "$XRT" supported)" in
		1) ;;
		0) return 2 ;;
		*) return 1 ;;
		esac
	done
	return 0
}

# ATK_DEBUG: y on a debug=y hypervisor (its banner, or else its complaint about a map with
# bad flags, which only a debug build prints), n otherwise.
atk_debug() { # atk_debug MAPPER
	a_v=$(xl dmesg 2>/dev/null | grep -m1 -o ' debug=[yn]')
	if [ -n "$a_v" ]; then
		ATK_DEBUG=${a_v#*=}
		return
	fi
	xrt "$1" gdprobe
	sleep 1
	if xl dmesg 2>/dev/null | grep -q "Bad flags in grant map op: 5a000000"; then
		ATK_DEBUG=y
	else
		ATK_DEBUG=n
	fi
}

# gnttab_max_revocable=N from Xen's command line, if given.
atk_cap() {
	xl info 2>/dev/null | sed -n 's/^xen_commandline *: *//p' | tr ' ' '\n' |
		sed -n 's/^gnttab_max_revocable=\([0-9][0-9]*\)$/\1/p' | tail -n 1
}

# (Re)create the throw-away domU unless it is alive: ATK_TD its domid, ATK_TN its name.
atk_throwaway() { # atk_throwaway [XL-SETTING...]
	if [ -n "$ATK_TD" ] && atk_alive "$ATK_TD"; then
		return 0
	fi
	ATK_N=$((ATK_N + 1))
	ATK_TN=domU-atk$ATK_N
	if ! ATK_TD=$(rig-create-domu "$ATK_TN" "$@"); then
		ATK_TD=""
		return 1
	fi
	READY="$READY $ATK_TD"
	atk_setup "$ATK_TD" || return 1
	say "throw-away mapper $ATK_TN is domid $ATK_TD"
}

# A PVH mapper for attack-pvh: ATK_M, ATK_MN.
atk_pvh_new() {
	ATK_PVHN=$((ATK_PVHN + 1))
	ATK_MN=domU-apvh$ATK_PVHN
	a_t0=$(date +%s)
	if ! ATK_M=$(rig-create-domu "$ATK_MN" 'type="pvh"'); then
		ATK_M=""
		return 1
	fi
	READY="$READY $ATK_M"
	say "attack-pvh: PVH mapper $ATK_MN (d$ATK_M) ready in $(($(date +%s) - a_t0)) s"
	atk_setup "$ATK_M"
}

# Before each attack: a PVH mapper that died meanwhile (QEMU's nested-SVM emulation
# triple-faults PVH guests now and then: see xen-backend.rst; the attack it died in has
# failed already) is replaced, at most twice per step. domU2 is not.
atk_mapper_up() {
	if [ -z "$ATK_MN" ] || atk_alive "$ATK_M" || [ "$ATK_REUP" -ge 2 ]; then
		return 0
	fi
	ATK_REUP=$((ATK_REUP + 1))
	say "attack: mapper $ATK_MN (d$ATK_M) died; creating another ($ATK_REUP of at most 2)"
	xl list | tail -n +2
	atk_pvh_new
}

atk_grant() { # atk_grant GRANTER MAPPER K FLAGS (bit 0 revocable-only, 1 read-only, 2 alternate)
	ATK_GR=$1
	ATK_IDX=""
	xrt "$1" agrant "$2" "$3" "$4" || return 1
	ATK_IDX=$(kv "$XRT" index)
	ATK_REFS=$(kv "$XRT" refs)
	[ -n "$ATK_IDX" ]
}

# atk_run NAME MAPPER K GFLAGS COMMAND [ARG...]: domU1 grants K pages (flags GFLAGS) to
# MAPPER, which runs "COMMAND domU1 INDEX K ARG..."; its answer in ATK_X.
atk_run() {
	a_nm=$1
	a_mp=$2
	a_k=$3
	a_gf=$4
	a_cmd=$5
	shift 5
	ATK_X=none
	if ! atk_grant "$D1" "$a_mp" "$a_k" "$a_gf"; then
		xrt_ok "${a_nm}_granter_grants" 1 "$XRT"
		return 1
	fi
	xrt "$a_mp" "$a_cmd" "$D1" "$ATK_IDX" "$a_k" "$@"
	ATK_X=$XRT
	return 0
}

# The checks every attack ends with (see above). atk_reclaim NAME [MASK]
atk_reclaim() {
	atk_reclaim_only "$@"
	atk_pins "$1"
}

atk_reclaim_only() { # atk_reclaim_only NAME [MASK]: the reclaim; its answer in a_r
	xrt "$ATK_GR" areclaim "${2:-0}" 0
	a_r=$XRT
	[ -n "$(kv "$a_r" n)" ] && [ "$(kv "$a_r" reclaimed)" = "$(kv "$a_r" n)" ]
	xrt_ok "${1}_reclaims_100pct" $? "$a_r"
}

atk_pins() { # atk_pins NAME
	a_pin=$(xen_pinned_refs "$ATK_GR" "$ATK_REFS")
	[ "$a_pin" = 0 ]
	xrt_ok "${1}_no_pin_left" $? "refs $ATK_REFS of d$ATK_GR pinned: $a_pin"
}

# atk_post NAME MAPPER [gone [crash-ok]]: the mapper's side; its answer in a_o. crash-ok: a
# debug=y hypervisor may have crashed the (PV) mapper for an implicit grant unmap.
atk_post() {
	a_o=none
	if ! atk_alive "$2" || ! xrt "$2" post; then
		if [ "$ATK_DEBUG" = y ] && [ "${4:-}" = crash-ok ]; then
			a_o=crashed
			xrt_skip "${1}_mapper_gains_no_access" "mapper crashed (debug=y hypervisor: accepted)"
			return 0
		fi
		xrt_ok "${1}_mapper_survives" 1 "domid $2 is gone"
		return 1
	fi
	a_o=$XRT
	[ "$(kv "$a_o" granted)" = 0 ] && [ "$(kv "$a_o" ptwrite)" = 0 ] &&
		[ "$(kv "$a_o" l1dirty)" = 0 ] && [ "$(kv "$a_o" saw_new)" = 0 ] &&
		[ "$(kv "$a_o" exp_bad)" = 0 ]
	xrt_ok "${1}_mapper_gains_no_access" $? "$a_o"
	[ "$(kv "$a_o" unmap_failed)" = 0 ]
	xrt_ok "${1}_mapper_unmaps_at_own_address" $? "$a_o"
	if [ "${3:-}" = gone ]; then
		[ "$(kvn "$a_o" gone_unmapped)" -ge 1 ] && [ "$(kv "$a_o" gone_touched)" = 0 ]
		xrt_ok "${1}_gone_mapping_unmaps_without_touching_it" $? "$a_o"
	fi
	return 0
}

atk_gcheck() { # atk_gcheck NAME: the granter's side
	xrt "$ATK_GR" acheck
	a_c=$XRT
	[ -n "$(kv "$a_c" n)" ] &&
		[ "$(($(kvn "$a_c" intact) + $(kvn "$a_c" unreclaimed_intact)))" = "$(kv "$a_c" n)" ]
	xrt_ok "${1}_granter_pages_untouched" $? "$a_c"
	[ "$(kv "$a_c" type_bad)" = 0 ] && [ "$(kv "$a_c" type_ok)" = "$(kv "$a_c" reclaimed)" ]
	xrt_ok "${1}_no_type_ref_leak" $? "$a_c"
}

atk_finish() { # atk_finish NAME MAPPER [gone]
	atk_reclaim "$1"
	atk_post "$@"
	atk_gcheck "$1"
}

# atk_expect NAME ANSWER KEY:WANT:TEST...: one result per key of the mapper's answer.
atk_expect() {
	a_nm=$1
	a_x=$2
	shift 2
	for a_e in "$@"; do
		a_k=${a_e%%:*}
		a_w=${a_e#*:}
		a_t=${a_w#*:}
		a_w=${a_w%%:*}
		a_g=$(kv "$a_x" "$a_k")
		[ "$a_g" = "$a_w" ]
		xrt_ok "${a_nm}_${a_t}" $? "$a_k=${a_g:-missing}, want $a_w"
	done
}

# Attacks any mapper can make (PV or PVH), by the step's mapper ATK_M; PFX "" or "pvh_".
atk_common() { # atk_common PFX
	a_p=$1
	atk_mapper_up
	# P2: unmap a revocable handle naming another revocable mapping's address.
	if atk_run "${a_p}p2" "$ATK_M" 1 1 p2; then
		[ "$(kv "$ATK_X" map1)" = 0 ] && [ "$(kv "$ATK_X" map2)" = 0 ] &&
			[ "$(kv "$ATK_X" cross_unmap)" = -1 ]
		xrt_ok "${a_p}p2_cross_unmap_refused" $? "$ATK_X"
		atk_finish "${a_p}p2" "$ATK_M"
	fi
	atk_mapper_up
	# P4: after GNTST_okay with END_ACCESS no map (revocable or plain) or copy succeeds;
	# page 0 is revocable-only, page 1 is not.
	if atk_run "${a_p}p4" "$ATK_M" 2 5 p4map; then
		[ "$(kv "$ATK_X" mapped)" = 2 ]
		xrt_ok "${a_p}p4_maps_before_revoke" $? "$ATK_X"
		xrt "$D1" areclaim 0 1
		[ "$(kv "$XRT" revoked)" = 2 ]
		xrt_ok "${a_p}p4_revoke_with_end_access_okay" $? "$XRT"
		xrt "$ATK_M" p4remap
		atk_expect "${a_p}p4" "$XRT" remap_rev_ok:0:revocable_remap_after_revoke_refused \
			remap_plain_ok:0:plain_remap_after_revoke_refused \
			copy_ok:0:copy_after_revoke_refused
		xrt "$D1" aend
		[ "$(kv "$XRT" ended)" = 2 ]
		xrt_ok "${a_p}p4_granter_ends_access_after_remap_attempts" $? "$XRT"
		atk_finish "${a_p}p4" "$ATK_M"
	fi
	# P4b: threads on every vCPU map/unmap (or copy) in a loop while the granter revokes.
	for a_mode in 0 1; do
		atk_mapper_up
		a_nm=${a_p}p4b_map
		[ "$a_mode" = 1 ] && a_nm=${a_p}p4b_copy
		atk_run "$a_nm" "$ATK_M" 1 1 p4b-start "$a_mode" || continue
		sleep 2
		atk_reclaim_only "$a_nm"
		xrt "$ATK_M" p4b-mark
		sleep 2
		xrt "$ATK_M" p4b-stop
		a_x=$XRT
		# (Once the threads stopped: a debug=y Xen logs their refused maps, and
		# the 'g' dump must fit in its console ring.)
		atk_pins "$a_nm"
		if [ "$a_mode" = 0 ]; then
			[ "$(kvn "$a_x" maps)" -gt 0 ] && [ "$(kv "$a_x" maps_after)" = 0 ] &&
				[ "$(kv "$a_x" saw_new)" = 0 ] && [ "$(kv "$a_x" unmap_fail)" = 0 ]
		else
			[ "$(kvn "$a_x" copies)" -gt 0 ] && [ "$(kv "$a_x" copies_after)" = 0 ]
		fi
		xrt_ok "${a_nm}_nothing_succeeds_after_reclaim" $? "$a_x"
		atk_post "$a_nm" "$ATK_M"
		atk_gcheck "$a_nm"
	done
	atk_mapper_up
	# P7: 250 mappings of one grant (read-only while Xen's pin counter allows, then
	# writable), all reverted by one revoke call.
	if atk_run "${a_p}p7many" "$ATK_M" 1 1 many 250; then
		a_x=$ATK_X
		[ "$(kv "$a_x" mapped)" = 250 ]
		xrt_ok "${a_p}p7many_250_mappings_of_one_grant" $? "$a_x"
		atk_reclaim "${a_p}p7many"
		[ "$(kv "$a_r" first_st)" = 0 ] && [ "$(kv "$a_r" first_nr)" = "$(kv "$a_x" mapped)" ]
		xrt_ok "${a_p}p7many_one_revoke_call_reverts_all" $? "$a_r"
		say "attack ${a_p}p7many: one revoke of $(kv "$a_x" mapped) mappings ($(kv "$a_x" ro) read-only) took $(kv "$a_r" first_us) us"
		atk_post "${a_p}p7many" "$ATK_M"
		atk_gcheck "${a_p}p7many"
	fi
	atk_mapper_up
	# P8: misuse of the interface; each input refused with its documented status.
	if atk_run "${a_p}p8" "$ATK_M" 2 1 p8 "$ATK_M"; then
		a_x=$ATK_X
		atk_expect "${a_p}p8" "$a_x" dev:-1:device_map_flag_refused \
			opt:-1:nonzero_options_refused badref:-3:ref_out_of_range_refused \
			nodom:-2:nonexistent_domain_refused repl_range:-9:out_of_range_frame_refused \
			revoke_badflags:-1:revoke_unknown_flags_refused \
			sro_badflags:-1:set_revocable_only_unknown_flags_refused \
			double_unmap:-4:second_unmap_of_a_handle_refused
		[ -n "$(kv "$a_x" pad)" ] && [ "$(kv "$a_x" pad)" != 0 ]
		xrt_ok "${a_p}p8_nonzero_pad_refused" $? "pad=$(kv "$a_x" pad)"
		case "$(kv "$a_x" self_map)" in
		0) [ "$(kv "$a_x" self_revoke)" = 0 ] && [ "$(kv "$a_x" self_unmap)" = 0 ] &&
			[ "$(kv "$a_x" self_end)" = 1 ] ;;
		*) [ "$(kv "$a_x" self_end)" = 1 ] ;;
		esac
		xrt_ok "${a_p}p8_map_of_own_grant_refused_or_revocable" $? "$a_x"
		if [ -n "$a_p" ]; then
			atk_expect "${a_p}p8" "$a_x" cpte:-1:contains_pte_flag_refused \
				appmap:-1:application_map_flag_refused \
				repl_hole:-9:unpopulated_frame_refused \
				repl_grant:-9:grant_frame_as_replacement_refused \
				repl_gnttab:-9:grant_table_frame_refused
		else
			atk_expect "${a_p}p8" "$a_x" nopte:-1:missing_contains_pte_refused \
				nohost:-1:missing_host_map_refused misalign:-1:misaligned_pte_refused \
				nonpt:-1:pte_in_a_data_page_refused \
				foreign_pte:-1:pte_in_the_granters_frame_refused \
				repl_granter:-9:granters_frame_refused repl_mfn0:-9:unowned_frame_refused \
				repl_shinfo:-9:shared_info_refused repl_gnttab:-9:grant_table_frame_refused \
				repl_pt_rw:-9:page_table_for_writable_mapping_refused
		fi
		atk_finish "${a_p}p8" "$ATK_M"
	fi
	atk_mapper_up
	# P7: the cap on revocable mappings per domain (after P8: nothing leaked by then).
	if [ "$a_p" = pvh_ ] && [ "$ATK_PAGING" = shadow ]; then
		# Thousands of p2m changes on shadow paging under TCG outlast any timeout.
		xrt_skip "${a_p}p7cap" "shadow paging: $ATK_CAP mappings take longer than the timeout (HAP only)"
	elif [ -n "$ATK_CAP" ]; then
		if atk_run "${a_p}p7cap" "$ATK_M" 64 1 cap "$ATK_CAP"; then
			a_x=$ATK_X
			[ "$(kv "$a_x" stop_st)" = -13 ] &&
				[ "$(kv "$a_x" mapped)" = $((ATK_CAP - $(kvn "$a_x" held_before))) ]
			xrt_ok "${a_p}p7cap_no_space_exactly_at_the_cap" $? "$a_x"
			atk_finish "${a_p}p7cap" "$ATK_M"
		fi
	else
		xrt_skip "${a_p}p7_cap" "Xen has no gnttab_max_revocable= (GNTSOCK_RIG_XEN_APPEND)"
	fi
}

# P10: a mapper dies (xl destroy) holding a live, a revoked and a gone revocable mapping.
# A PV mapper made the third gone already (an mmu_update over its PTE); a PVH one can only
# remove a revoked mapping's frame (Xen refuses to remove a live grant frame, which is the
# granter's page): the granter revokes the second and third, the mapper removes the third.
atk_p10() { # atk_p10 NAME MAPPER-DOMID MAPPER-NAME [pvh]
	atk_run "$1" "$2" 3 1 p10 || return 0
	[ "$(kv "$ATK_X" map0)" = 0 ] && [ "$(kv "$ATK_X" map1)" = 0 ] &&
		[ "$(kv "$ATK_X" map2)" = 0 ]
	xrt_ok "${1}_mapper_holds_three_mappings" $? "$ATK_X"
	if [ "${4:-}" = pvh ]; then
		xrt "$D1" areclaim 6 0
		[ "$(kv "$XRT" reclaimed)" = 2 ] && atk_alive "$2"
		xrt_ok "${1}_two_revoked_while_the_mapper_lives" $? "$XRT"
		xrt "$2" hvm-act 2 2
		[ "$(kv "$XRT" rc)" = 0 ]
		xrt_ok "${1}_mapper_removes_a_revoked_grant_gfn" $? "$XRT"
	else
		xrt "$D1" areclaim 2 0
		[ "$(kv "$XRT" reclaimed)" = 1 ] && atk_alive "$2"
		xrt_ok "${1}_one_revoked_while_the_mapper_lives" $? "$XRT"
	fi
	xl destroy "$3"
	atk_gone "$2" 60
	xrt_ok "${1}_dead_mapper_leaves_no_zombie" $? "$(xl list | tail -n +2 | tr '\n' ';')"
	atk_reclaim "$1"
	atk_gcheck "$1"
}

# Step "attack": PV mappers.
s_attack() {
	XRT_TAG="dom0 attack"
	XRT_T=0
	ATK_T0=$(date +%s)
	if [ -z "$D1" ] || [ -z "$D2" ]; then say "no domUs"; return 1; fi
	: >"$ATK_BAD"
	atk_setup "$D1" "$D2"
	case $? in
	0) ;;
	2)
		for a_t in $ATK_PV_TESTS; do xrt_skip "$a_t" "$ATK_SKIP"; done
		return 0
		;;
	*)
		xrt_ok attack_probe_answers 1 "$XRT"
		return 1
		;;
	esac
	atk_debug "$D2"
	ATK_CAP=$(atk_cap)
	say "attack: debug=$ATK_DEBUG gnttab_max_revocable=${ATK_CAP:-unset} $XRT"
	ATK_M=$D2
	ATK_MN=""
	atk_common ""
	# P2b: a plain handle (of a grant that is not revocable-only) unmapped at the PTE of a
	# revocable mapping of the same frame.
	if atk_run p2b "$D2" 1 0 pv-p2b; then
		atk_expect p2b "$ATK_X" plain:0:plain_map rev:0:revocable_map \
			cross_unmap:-1:plain_unmap_at_revocable_pte_refused \
			own_unmap:0:plain_unmap_at_own_pte
		atk_finish p2b "$D2"
	fi
	# P3a: GNTTABOP_unmap_and_replace moving the revocable PTE elsewhere.
	if atk_run p3a "$D2" 1 1 pv-p3a; then
		atk_expect p3a "$ATK_X" rev:0:revocable_map plain_va:0:plain_map_by_address \
			replace:-1:unmap_and_replace_stealing_revocable_pte_refused
		atk_finish p3a "$D2"
	fi
	# P3b-d: the mapper changes or frees the PTE of a revocable mapping itself, in a
	# throw-away domU (a debug=y hypervisor may crash it).
	for a_how in 1 2 3; do
		case $a_how in
		1) a_nm=p3b ;;
		2) a_nm=p3c ;;
		3) a_nm=p3d ;;
		esac
		if ! atk_throwaway; then
			xrt_ok "${a_nm}_throwaway_mapper_boots" 1
			continue
		fi
		atk_run "$a_nm" "$ATK_TD" 1 1 pv-gone "$a_how" || continue
		if atk_alive "$ATK_TD"; then
			[ "$(kv "$ATK_X" map)" = 0 ] && [ "$(kv "$ATK_X" gone)" = 0 ]
			xrt_ok "${a_nm}_mapper_makes_its_mapping_gone" $? "$ATK_X"
		elif [ "$ATK_DEBUG" = y ]; then
			xrt_skip "${a_nm}_mapper_makes_its_mapping_gone" "mapper crashed (debug=y hypervisor: accepted)"
		else
			xrt_ok "${a_nm}_mapper_survives_on_release" 1 "domid $ATK_TD died"
		fi
		atk_finish "$a_nm" "$ATK_TD" gone crash-ok
	done
	# P5: the granter (a throw-away domU too) is destroyed while the throw-away mapper
	# holds a revocable mapping of it that it made gone (mmu_update over its PTE).
	if ! atk_throwaway; then
		xrt_ok p5_throwaway_mapper_boots 1
	elif ! a_g=$(rig-create-domu domU-atkg); then
		xrt_ok p5_throwaway_granter_boots 1
	else
		READY="$READY $a_g"
		if atk_setup "$a_g" && atk_grant "$a_g" "$ATK_TD" 1 1; then
			xrt "$ATK_TD" pv-gone "$a_g" "$ATK_IDX" 1 1
			if atk_alive "$ATK_TD"; then
				[ "$(kv "$XRT" map)" = 0 ] && [ "$(kv "$XRT" gone)" = 0 ]
				xrt_ok p5_mapper_makes_its_mapping_gone $? "$XRT"
			elif [ "$ATK_DEBUG" = y ]; then
				xrt_skip p5_mapper_makes_its_mapping_gone "mapper crashed (debug=y hypervisor: accepted)"
			else
				xrt_ok p5_mapper_survives_on_release 1 "domid $ATK_TD died"
			fi
			atk_p5 p5 "$ATK_TD" "$a_g" domU-atkg crash-ok
		fi
	fi
	# P10: the throw-away mapper dies holding live, revoked and gone mappings.
	if atk_throwaway; then
		atk_p10 p10 "$ATK_TD" "$ATK_TN"
		ATK_TD=""
	else
		xrt_ok p10_throwaway_mapper_boots 1
	fi
	# P1, last: two revocable maps at one PTE, the read-only one over an L1 page table; the
	# mirror order (writable first) takes an old debug=y hypervisor down: it runs last.
	for a_mir in 0 1; do
		a_nm=p1
		[ "$a_mir" = 1 ] && a_nm=p1m
		if atk_run "$a_nm" "$D2" 1 1 pv-p1 "$a_mir"; then
			[ "$(kv "$ATK_X" map1)" = 0 ] && [ "$(kv "$ATK_X" map2)" = -5 ]
			xrt_ok "${a_nm}_second_map_at_same_pte_refused" $? "$ATK_X"
			atk_finish "$a_nm" "$D2"
			[ "$(kv "$a_o" exp_ok)" = 1 ] && [ "$(kv "$a_o" exp_bad)" = 0 ] &&
				[ "$(kv "$a_o" ptwrite)" = 0 ]
			xrt_ok "${a_nm}_revoked_pte_has_the_mappings_own_permissions" $? "$a_o"
		fi
		xen_log_clean_all
		xrt_ok "${a_nm}_hypervisor_log_clean" $?
	done
	say "attack: took $(($(date +%s) - ATK_T0)) s"
	return 0
}

# P5: destroy granter GDOMID (named GNAME) while MAPPER holds a revocable mapping of it that
# it made gone, then the mapper unmaps. crash-ok: as for atk_post.
atk_p5() { # atk_p5 NAME MAPPER GDOMID GNAME [crash-ok]
	xl destroy "$4"
	sleep 5
	a_z=no
	atk_alive "$3" && a_z=yes
	say "attack $1: granter d$3 destroyed; still listed (zombie) before the mapper's unmap: $a_z"
	atk_clear_ring
	if atk_alive "$2" || [ "$ATK_DEBUG" != y ] || [ "${5:-}" != crash-ok ]; then
		xrt "$2" post
		a_o=$XRT
		[ "$(kv "$a_o" unmap_failed)" = 0 ] && [ "$(kvn "$a_o" unmapped)" -ge 1 ]
		xrt_ok "${1}_mapper_unmaps_after_granter_destroyed" $? "$a_o"
	else
		xrt_skip "${1}_mapper_unmaps_after_granter_destroyed" "mapper crashed (debug=y hypervisor: accepted)"
	fi
	atk_gone "$3" 60
	xrt_ok "${1}_destroyed_granter_leaves_no_zombie" $? "$(xl list | tail -n +2 | tr '\n' ';')"
	a_l=$(xl dmesg 2>/dev/null | grep -iE "grant|gnttab|revoc|Assertion|BUG|WARN|FATAL" |
		head -n 5 | tr '\n' ';')
	[ -z "$a_l" ]
	xrt_ok "${1}_no_hypervisor_complaint" $? "$a_l"
}

# Step "attack-pvh" (only when named): PVH mappers (HAP: QEMU -cpu ...,+npt; or shadow
# paging: without +npt).
s_attack_pvh() {
	XRT_TAG="dom0 attack-pvh"
	XRT_T=0
	ATK_T0=$(date +%s)
	[ -n "$D1" ] || { say "no domU1"; return 1; }
	: >"$ATK_BAD"
	atk_setup "$D1"
	case $? in
	0) ;;
	2)
		for a_t in $ATK_PVH_TESTS; do xrt_skip "$a_t" "$ATK_SKIP"; done
		return 0
		;;
	*)
		xrt_ok attack_probe_answers 1 "$XRT"
		return 1
		;;
	esac
	xl dmesg | grep -E "HVM: |HAP|SVM|[Ss]hadow" | head -n 8
	# Xen runs HVM guests on HAP when the CPU has it (without +npt: shadow paging).
	a_caps=$(xl info | sed -n 's/^virt_caps *: *//p')
	case " $a_caps " in
	*" hap "*) ATK_PAGING=hap ;;
	*) ATK_PAGING=shadow ;;
	esac
	say "attack-pvh: paging $ATK_PAGING ($a_caps)"
	ATK_REUP=0
	if ! atk_pvh_new; then
		xrt_ok pvh_mapper_boots 1 "see the serial log"
		return 1
	fi
	xrt_ok pvh_mapper_boots 0
	atk_debug "$ATK_M"
	ATK_CAP=$(atk_cap)
	say "attack-pvh: debug=$ATK_DEBUG gnttab_max_revocable=${ATK_CAP:-unset} mapper d$ATK_M"
	atk_common pvh_
	atk_mapper_up
	# P6a: decrease_reservation of a revoked grant's frame must fail.
	if atk_run pvh_p6a "$ATK_M" 1 1 hvm-map; then
		atk_reclaim pvh_p6a
		xrt "$ATK_M" hvm-act 1
		[ -n "$(kv "$XRT" rc)" ] && [ "$(kv "$XRT" rc)" != 1 ]
		xrt_ok pvh_p6a_decrease_reservation_of_revoked_grant_gfn_refused $? "$XRT"
		atk_post pvh_p6a "$ATK_M"
		atk_gcheck pvh_p6a
	fi
	atk_mapper_up
	# P6b: remove_from_physmap of the grant frame before the revoke. Xen refuses (-ENOENT:
	# the frame is the granter's page) and the mapping is revoked as usual; a hypervisor that
	# did remove it would have to treat the mapping as gone.
	if atk_run pvh_p6b "$ATK_M" 1 1 hvm-map; then
		xrt "$ATK_M" hvm-act 2
		a_rc=$(kv "$XRT" rc)
		[ "$a_rc" = 0 ] || [ "$a_rc" = -2 ]
		xrt_ok pvh_p6b_remove_from_physmap_of_live_grant_gfn_refused_or_gone $? "$XRT"
		if [ "$a_rc" = 0 ]; then
			atk_finish pvh_p6b "$ATK_M" gone
		else
			atk_finish pvh_p6b "$ATK_M"
		fi
	fi
	atk_mapper_up
	# P6c: the same after the revoke.
	if atk_run pvh_p6c "$ATK_M" 1 1 hvm-map; then
		atk_reclaim pvh_p6c
		xrt "$ATK_M" hvm-act 2
		[ "$(kv "$XRT" rc)" = 0 ]
		xrt_ok pvh_p6c_remove_from_physmap_of_revoked_grant_gfn $? "$XRT"
		atk_post pvh_p6c "$ATK_M" gone
		atk_gcheck pvh_p6c
	fi
	atk_mapper_up
	# P6d: decrease_reservation of the replacement page's own RAM frame after the revoke:
	# allowed; the grant frame still shows it, the unmap works (and the domain dies cleanly
	# in P10).
	if atk_run pvh_p6d "$ATK_M" 1 1 hvm-map; then
		atk_reclaim pvh_p6d
		xrt "$ATK_M" hvm-act 3
		[ "$(kv "$XRT" rc)" = 1 ]
		xrt_ok pvh_p6d_decrease_reservation_of_replacement_ram_gfn $? "$XRT"
		atk_post pvh_p6d "$ATK_M"
		atk_gcheck pvh_p6d
	fi
	atk_mapper_up
	# P5: a throw-away PV granter is destroyed while the PVH mapper holds a revocable mapping
	# of it (which it tries to remove from its physmap: refused, see P6b); the granter may
	# stay a zombie only until the unmap.
	if a_g=$(rig-create-domu domU-atkg); then
		READY="$READY $a_g"
		if atk_setup "$a_g" && atk_grant "$a_g" "$ATK_M" 1 1; then
			xrt "$ATK_M" hvm-map "$a_g" "$ATK_IDX" 1
			a_x=$XRT
			xrt "$ATK_M" hvm-act 2
			[ "$(kv "$a_x" mapped)" = 1 ] &&
				{ [ "$(kv "$XRT" rc)" = 0 ] || [ "$(kv "$XRT" rc)" = -2 ]; }
			xrt_ok pvh_p5_mapper_maps_the_granters_page $? "$a_x / $XRT"
			atk_p5 pvh_p5 "$ATK_M" "$a_g" domU-atkg
		fi
	else
		xrt_ok pvh_p5_throwaway_granter_boots 1
	fi
	atk_mapper_up
	# P10: the PVH mapper dies holding live, revoked and gone mappings.
	atk_p10 pvh_p10 "$ATK_M" "$ATK_MN" pvh
	ATK_MN=""
	# P1 at a guest frame, in a throw-away PVH domU (the old patch crashes it).
	if atk_throwaway 'type="pvh"'; then
		if atk_run pvh_p1 "$ATK_TD" 1 1 hvm-p1; then
			[ "$(kv "$ATK_X" map1)" = 0 ] && [ "$(kv "$ATK_X" map2)" = -5 ]
			xrt_ok pvh_p1_second_map_at_same_gfn_refused $? "$ATK_X"
			atk_finish pvh_p1 "$ATK_TD"
		fi
		xl destroy "$ATK_TN"
		atk_gone "$ATK_TD" 60
		xrt_ok pvh_p1_mapper_destroyed_cleanly $? "$(xl list | tail -n +2 | tr '\n' ';')"
		ATK_TD=""
	else
		xrt_ok pvh_p1_throwaway_mapper_boots 1
	fi
	xen_log_clean_all
	xrt_ok pvh_hypervisor_log_clean $?
	say "attack-pvh: took $(($(date +%s) - ATK_T0)) s, PVH mapper replaced $ATK_REUP times"
	return 0
}

# Step "hostile" (only when RIG_TESTS names it): domU1 swaps gntsock.ko for the test module
# gntsock_hostile.ko (net/gntsock/hostile.c) and attacks domU2 through their link; domU1 is
# the link's backend (the lower domid), as the reconnect attack needs. During each attack
# domU2 streams to dom0 over its other link. Per attack: the victim still serves commands,
# the stream to dom0 arrives intact, its slab and Xen's active grant entries stay bounded
# (before, during, after) and it counted the attack.
HOS_T=0
HOS_PORT=7100
HOS_HOLD_PORT=5004	# gntsock_peer's HOLD service: never reads
HOS_STALL_PORT=7200
hos_ok() { # hos_ok NAME STATUS [DETAIL]
	HOS_T=$((HOS_T + 1))
	if [ "$2" -eq 0 ]; then
		printf '[dom0 hostile] ok %d %s\n' "$HOS_T" "$1"
	else
		printf '[dom0 hostile] not ok %d %s # %s\n' "$HOS_T" "$1" "${3:-}"
	fi
}
# The victim's counters as "key=value ..." in $HS (HS=none if it does not answer).
hos_snap() {
	HS=none
	# shellcheck disable=SC2016
	domu_cmd "$D2" shell "rig-xs write data/hostile-snap \"slab=\$(awk '/^Slab:/ { print \$2 }' /proc/meminfo) \$(awk '\$1 ~ /^(resets|violations|ring_grants|ring_refs_stale|ring_refs_kept|rx_budget_runs)\$/ { printf \"%s=%s \", \$1, \$2 }' /proc/net/gntsock_stat) \$(awk '\$1 == \"refused\" { printf \"refused=%s \", \$2 }' /proc/net/gntsock_grants) \$(awk -v p=$D1 'NR > 1 && \$1 == p { printf \"state=%s events_rx=%s events_spurious=%s\", \$3, \$12, \$16 }' /proc/net/gntsock_links)\"" ||
		return 1
	HS=$(rig-xs read "/local/domain/$D2/data/hostile-snap") || HS=none
}
hos_link_wait() { # wait up to $1 s for the victim's link to domU1 to connect
	_e=$(($(date +%s) + $1))
	while [ "$(date +%s)" -lt "$_e" ]; do
		hos_snap
		[ "$(kv "$HS" state)" = connected ] && return 0
		sleep 1
	done
	return 1
}
# Re-create the domU1-domU2 link (a victim stops retrying a link that keeps failing).
hos_relink() {
	"$GBIN/gntsock-link" del "$D1" "$D2" >/dev/null 2>&1
	"$GBIN/gntsock-link" add "$D1" "$D2" >/dev/null 2>&1
	hos_link_wait 30
}
# Stream $1 MiB from domU2 to dom0 in the background, 1 MiB per 0.1 s.
hos_stream_start() {
	rm -f /tmp/hostile.out
	gntcat -l "$HOS_PORT" >/tmp/hostile.out 2>/dev/null </dev/null &
	HOS_LPID=$!
	sleep 1
	# shellcheck disable=SC2016
	domu_cmd "$D2" shell "head -c 1048576 /dev/urandom >/tmp/h.chunk; hs() { i=0; while [ \$i -lt $1 ]; do cat /tmp/h.chunk; [ \"\$1\" ] && sleep 0.1; i=\$((i + 1)); done; }; set -- \$(hs | sha256sum); rig-xs write data/hostile-sha \$1; (hs slow | gntcat 0:$HOS_PORT; echo stream exit \$?) </dev/null >/dev/console 2>&1 &"
}
hos_stream_check() { # -> status 0 if dom0 got exactly what domU2 sent
	_e=$(($(date +%s) + 120))
	while kill -0 "$HOS_LPID" 2>/dev/null && [ "$(date +%s)" -lt "$_e" ]; do sleep 1; done
	kill "$HOS_LPID" 2>/dev/null
	_want=$(rig-xs read "/local/domain/$D2/data/hostile-sha")
	_got=$(sha256sum </tmp/hostile.out | cut -d' ' -f1)
	HOS_SHA="sent ${_want:-?} got $_got ($(wc -c </tmp/hostile.out) bytes)"
	[ -n "$_want" ] && [ "$_want" = "$_got" ]
}
# Run attack "$1 $2" in domU1 in the background; its answer goes to $HX when done.
hos_attack() {
	rig-xs rm "/local/domain/$D1/data/hostile-out" 2>/dev/null
	domu_cmd "$D1" shell "(echo $1 $D2 $2 >/proc/gntsock_hostile; rig-xs write data/hostile-out \"\$(cat /proc/gntsock_hostile)\") </dev/null >/dev/null 2>&1 &"
}
hos_attack_wait() {
	HX=$(rig-xs wait "/local/domain/$D1/data/hostile-out" 300) || HX=none
	say "hostile: domU1 says: $HX"
}
# One attack: name $1, command $2, argument $3, how it is counted $4 (a victim counter
# that must grow), grants allowed to stay active after it $5.
hos_one() {
	_nm=$1
	hos_snap
	_b=$HS
	_g0=$(xen_active_grants)
	say "hostile $_nm before: $_b xen_grants=$_g0"
	hos_stream_start 60
	hos_attack "$2" "$3"
	sleep 2
	hos_snap
	_m=$HS
	_g1=$(xen_active_grants)
	say "hostile $_nm during: $_m xen_grants=$_g1"
	hos_attack_wait
	hos_stream_check
	hos_ok "${_nm}_dom0_stream_intact" $? "$HOS_SHA"
	sleep 2
	hos_snap
	_a=$HS
	_g2=$(xen_active_grants)
	say "hostile $_nm after: $_a xen_grants=$_g2"
	[ "$_a" != none ] && [ "$_m" != none ]
	hos_ok "${_nm}_victim_alive" $? "during: $_m after: $_a"
	_s0=$(kvn "$_b" slab)
	_sm=$_s0
	for _s in $(kvn "$_m" slab) $(kvn "$_a" slab); do [ "$_s" -gt "$_sm" ] && _sm=$_s; done
	[ "$_s0" -ge 0 ] && [ $((_sm - _s0)) -lt 16384 ]
	hos_ok "${_nm}_victim_slab_bounded" $? "slab kB before $_s0, max $_sm"
	_gm=$_g1
	[ "${_g2:-0}" -gt "${_gm:-0}" ] && _gm=$_g2
	[ -n "$_g0" ] && [ "$_g0" -gt 0 ] && [ $((_gm - _g0)) -le "$5" ]
	hos_ok "${_nm}_grants_bounded" $? "xen active grants before $_g0 during $_g1 after $_g2, allowed +$5"
	[ "$(kvn "$_a" "$4")" -gt "$(kvn "$_b" "$4")" ]
	hos_ok "${_nm}_counted" $? "$4 before $(kv "$_b" "$4") after $(kv "$_a" "$4"); domU1: $HX"
}
# During a 30 s flood, domU2 unbinds its end of the link (gntsock_remove(): the link goes
# down and waits for its receive work): it must return within 10 s, not when the flood ends.
hos_flood_teardown() {
	rig-xs rm "/local/domain/$D2/data/hostile-unbind" 2>/dev/null
	hos_attack flood 30000
	sleep 4
	domu_cmd "$D2" shell "(ms() { awk '{ print int(\$1 / 0.001) }' /proc/uptime; }; t0=\$(ms); if [ -n \"\$t0\" ] && echo gntsock-$D1 >/sys/bus/xen/drivers/gntsock/unbind; then r=\$((\$(ms) - t0)); else r=failed; fi; rig-xs write data/hostile-unbind \$r) </dev/null >/dev/null 2>&1 &"
	_ms=$(rig-xs wait "/local/domain/$D2/data/hostile-unbind" 60) || _ms=none
	say "hostile flood_teardown: unbind took $_ms ms"
	case $_ms in none | failed | *[!0-9]*) false ;; *) [ "$_ms" -lt 10000 ] ;; esac
	hos_ok flood_victim_unbinds_link_during_flood $? "unbind took ${_ms} ms (flood 30 s, started 4 s before)"
	hos_attack_wait
}
# A test program $6 in domU2 (the victim) against a gntcat listener on port $3 in domU1, its
# stdin from "$4" (e.g. "sleep 120 |"), while domU1 runs attack "$8 $9": the test gets
# GNTSOCK_PEER_DOMID and the environment $5, creates /tmp/$2-ready once it is ready (the
# attack starts then), and its KTAP lines get the prefix [$7]; result $1 is its status.
hos_victim() {
	domu_cmd "$D1" shell "($4 gntcat -l $3 >/dev/null; echo $2 listener exit \$?) </dev/null >/dev/console 2>&1 &"
	sleep 1
	rig-xs rm "/local/domain/$D2/data/$2-status" 2>/dev/null
	rig-xs rm "/local/domain/$D2/data/$2-ready" 2>/dev/null
	domu_cmd "$D2" shell "rm -f /tmp/$2-ready; (GNTSOCK_PEER_DOMID=$D1 $5 /opt/gntsock/bin/$6 >/tmp/$2.ktap 2>&1; rig-xs write data/$2-status \$?; sed 's/^/[$7] /' /tmp/$2.ktap) </dev/null >/dev/console 2>&1 & (i=0; while [ ! -e /tmp/$2-ready ] && [ \$i -lt 120 ]; do sleep 1; i=\$((i + 1)); done; rig-xs write data/$2-ready 1) </dev/null >/dev/null 2>&1 &"
	rig-xs wait "/local/domain/$D2/data/$2-ready" 150 >/dev/null
	sleep 2
	hos_attack "$8" "$9"
	hos_attack_wait
	_st=$(rig-xs wait "/local/domain/$D2/data/$2-status" 150) || _st=none
	[ "$_st" = 0 ]
	hos_ok "$1" $? "$6 status $_st; domU1: $HX"
	domu_cmd "$D1" shell "pkill -f 'gntcat -l $3'; true"
}
# A busy-polling reader in domU2 on a connection to domU1 (whose listener sends nothing) while
# domU1 runs attack "$2 $3" (name $1) on the link (gntsock_polling_victim_test): its recv()
# calls return within their timeout, never with bytes, and it did poll.
HOS_POLL_PORT=7300
hos_poll_victim() {
	hos_victim "${1}_busy_poller_unharmed" poll "$HOS_POLL_PORT" "sleep 120 |" \
		"GNTSOCK_POLL_PORT=$HOS_POLL_PORT GNTSOCK_POLL_READY=/tmp/poll-ready GNTSOCK_POLL_SECONDS=20" \
		gntsock_polling_victim_test "polling victim $1" "$2" "$3"
}
# A socket in domU2 whose lock a throttled local user holds, flooded by domU1's "backlog"
# attack on its connection to it (gntsock_backlog_victim_test listens; domU1 connects with
# gntcat): the flood is merged and bounded, nothing is a violation. Result $1.
HOS_BL_PORT=7400
hos_backlog_victim() {
	rig-xs rm "/local/domain/$D2/data/backlog-status" 2>/dev/null
	rig-xs rm "/local/domain/$D2/data/backlog-ready" 2>/dev/null
	domu_cmd "$D2" shell "rm -f /tmp/backlog-ready; (GNTSOCK_PEER_DOMID=$D1 GNTSOCK_BL_PORT=$HOS_BL_PORT GNTSOCK_BL_READY=/tmp/backlog-ready GNTSOCK_BL_SECONDS=20 /opt/gntsock/bin/gntsock_backlog_victim_test >/tmp/backlog.ktap 2>&1; rig-xs write data/backlog-status \$?; sed 's/^/[backlog victim] /' /tmp/backlog.ktap) </dev/null >/dev/console 2>&1 & (i=0; while [ ! -e /tmp/backlog-ready ] && [ \$i -lt 120 ]; do sleep 1; i=\$((i + 1)); done; rig-xs write data/backlog-ready 1) </dev/null >/dev/null 2>&1 &"
	sleep 2
	domu_cmd "$D1" shell "(sleep 90 | gntcat $D2:$HOS_BL_PORT >/dev/null; echo backlog connection exit \$?) </dev/null >/dev/console 2>&1 &"
	rig-xs wait "/local/domain/$D2/data/backlog-ready" 150 >/dev/null
	sleep 2
	hos_attack backlog "10000 $HOS_BL_PORT"
	hos_attack_wait
	_st=$(rig-xs wait "/local/domain/$D2/data/backlog-status" 150) || _st=none
	[ "$_st" = 0 ]
	hos_ok "$1" $? "gntsock_backlog_victim_test status $_st; domU1: $HX"
	domu_cmd "$D1" shell "pkill -f 'gntcat $D2:$HOS_BL_PORT'; true"
}
s_hostile() {
	if [ -z "$D1" ] || [ -z "$D2" ]; then say "no domUs"; return 1; fi
	[ "$D1" -lt "$D2" ] || { say "hostile: domU1 must have the lower domid"; return 1; }
	# shellcheck disable=SC2016
	domu_cmd "$D1" shell 'kill $(cat /run/gntsock_peer.pid) 2>/dev/null; sleep 1; for d in /sys/bus/xen/drivers/gntsock /sys/bus/xen-backend/drivers/gntsock; do for l in $d/*; do [ -L "$l" ] && [ "${l##*/}" != module ] && echo "${l##*/}" >$d/unbind; done; done; i=0; while ! rmmod gntsock && [ $i -lt 10 ]; do sleep 1; i=$((i + 1)); done; insmod /opt/gntsock/bin/gntsock_hostile.ko && rig-xs write data/hostile-up 1'
	[ "$(rig-xs read "/local/domain/$D1/data/hostile-up")" = 1 ]
	hos_ok hostile_module_loaded_in_domU1 $? || return 1
	hos_link_wait 60
	hos_ok victim_link_to_hostile_up $? "$HS" || return 1
	# Every violation resets the link, and after 5 quick failures the victim stops
	# retrying: a fresh link for each attack.
	hos_one fuzz fuzz 5000 violations 100
	hos_relink
	hos_one index index 5000 violations 100
	hos_relink
	hos_one toctou toctou 5000 violations 100
	hos_relink
	hos_one storm storm 3000 events_spurious 100
	hos_relink
	# A peer that keeps the victim's rx ring full of valid messages (it moves its prod
	# a ring ahead of the victim's cons): the victim's receive work must yield after a
	# budget (counted), and the victim must still take the link down at once.
	hos_one flood flood 8000 rx_budget_runs 100
	hos_relink
	# The same games against a reader that busy-polls the ring.
	hos_poll_victim index_polled index 5000
	hos_relink
	hos_poll_victim flood_polled flood 8000
	hos_relink
	hos_flood_teardown
	hos_relink
	hos_ok victim_link_back_after_flood $? "$HS"
	# Defect 3: each cycle used to leak the victim's 33 ring grants (order 4).
	hos_one reconnect reconnect 40 resets 250
	hos_attack release ""
	hos_attack_wait
	hos_relink
	hos_ok victim_link_back_after_release $? "$HS"
	# Forged grants on a connection whose reader never reads (HOLD): floods, and grants
	# revoked at once against an error queue nobody reads. Refused beyond the socket's
	# limit; nothing is mapped, so Xen's active grants must not move.
	for _a in grants grantrevoke; do
		hos_relink
		domu_cmd "$D1" shell "(sleep 120 | gntcat $D2:$HOS_HOLD_PORT; echo hold connection exit \$?) </dev/null >/dev/console 2>&1 &"
		sleep 2
		hos_one "$_a" "$_a" "4000 $HOS_HOLD_PORT" refused 100
		domu_cmd "$D1" shell "pkill -f 'gntcat $D2:$HOS_HOLD_PORT'; true"
	done
	# A flood of messages the victim's socket backlog must merge or bound, at a socket
	# whose lock a throttled local user holds.
	hos_relink
	hos_backlog_victim backlog_flood_at_a_held_socket_bounded
	# A peer kernel that stops draining its ring for 6 s (credit left: the listener reads
	# everything): the victim's non-blocking sender gets EAGAIN at once and poll() says
	# not writable until the ring drains (gntsock_stalled_peer_test).
	hos_relink
	# The stall starts once the test has connected (it creates GNTSOCK_STALL_READY).
	hos_victim nonblocking_sender_not_held_by_a_stalled_peer stall "$HOS_STALL_PORT" "" \
		"GNTSOCK_STALL_PORT=$HOS_STALL_PORT GNTSOCK_STALL_READY=/tmp/stall-ready" \
		gntsock_stalled_peer_test "stalled peer" stall 6000
	_g=$(xen_active_grants)
	say "hostile: xen active grants after release and relink: $_g"
	domu_cmd "$D2" shell "cat /proc/net/gntsock_links; cat /proc/net/gntsock_stat | head -12"
	# Back to gntsock.ko in domU1.
	# shellcheck disable=SC2016
	domu_cmd "$D1" shell 'for d in /sys/bus/xen/drivers/gntsock /sys/bus/xen-backend/drivers/gntsock; do for l in $d/*; do [ -L "$l" ] && [ "${l##*/}" != module ] && echo "${l##*/}" >$d/unbind; done; done; rmmod gntsock_hostile && insmod /opt/gntsock/gntsock.ko && { gntsock_peer </dev/null >/dev/null 2>&1 & echo $! >/run/gntsock_peer.pid; }'
	hos_ok domU1_back_on_gntsock_ko $?
	return 0
}

step load s_load
if selected dom0 || selected loop; then step loop s_loop; else skip loop; fi
step create s_create
step link s_link
if selected demo; then step demo s_demo; else skip demo; fi
if selected dom0; then step dom0 s_dom0; else skip dom0; fi
if selected domu; then step domu s_domu; else skip domu; fi
if selected grant; then step grant s_grant; else skip grant; fi
if selected negotiation; then step negotiation s_negotiation; else skip negotiation; fi
if selected reload; then step reload s_reload; else skip reload; fi
if selected perf; then step perf s_perf; else skip perf; fi
if selected bench; then step bench s_bench; else skip bench; fi
if selected destroy; then step destroy s_destroy; else skip destroy; fi
if selected revoke; then step revoke s_revoke; else skip revoke; fi
if selected sockfuzz; then step sockfuzz s_sockfuzz; else skip sockfuzz; fi
case ",$RIG_TESTS," in *,pvh,*) step pvh s_pvh ;; *) skip pvh ;; esac
if selected attack; then step attack s_attack; else skip attack; fi
case ",$RIG_TESTS," in *,attack-pvh,*) step attack-pvh s_attack_pvh ;; *) skip attack-pvh ;; esac
case ",$RIG_TESTS," in *,hostile,*) step hostile s_hostile ;; *) skip hostile ;; esac

# i. health.
sleep 2 # let the console relays catch up
say "xl list begin"
xl list
say "xl list end"
say "gntsock links begin"
cat /proc/net/gntsock_links 2>&1
say "gntsock links end"
say "domU consoles: relayed live above with prefixes [domU1] [domU2] [domU3]"
for _f in /var/log/xen/console/guest-*.log; do
	[ -f "$_f" ] && say "console log $_f: $(wc -l <"$_f") lines"
done
say "xl dmesg begin"
xl dmesg
say "xl dmesg end"
say "dom0 dmesg begin"
dmesg --color=never
say "dom0 dmesg end"
if [ "$incomplete" -eq 0 ]; then
	echo GNTSOCK-RIG-COMPLETE
else
	say "plan incomplete: a step did not run to completion"
fi
