#!/bin/sh
# The rig's test plan, run by dom0's /init once the Xen toolstack is up. Every step prints
#   GNTSOCK-RIG: step NAME begin
#   GNTSOCK-RIG: step NAME end status=N      (0: ran to completion; failures inside tests are
#                                             reported by their KTAP "not ok" lines)
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
	"$@"
	_st=$?
	say "step $_name end status=$_st"
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

# e. each domU tests against its peers, one domU after the other.
s_domu() {
	if [ -z "$D1" ] || [ -z "$D2" ]; then say "no domUs"; return 1; fi
	_rc=0
	domu_cmd "$D1" test "$D2" 0 || { say "domU1 test run status $?"; _rc=1; }
	domu_cmd "$D2" test "$D1" || { say "domU2 test run status $?"; _rc=1; }
	# Socket semantics domU1 -> domU2, then loopback inside domU1.
	domu_cmd "$D1" socktest "$D2" "$D1" || { say "domU1 sock test run status $?"; _rc=1; }
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

# Grants as control messages: dom0 -> domU1, domU1 -> domU2 and domU1 -> dom0, then Xen's view: no grant
# entry left active beyond the links' own rings.
s_grant() {
	if [ -z "$D1" ] || [ -z "$D2" ]; then say "no domUs"; return 1; fi
	_rc=0
	_g0=$(xen_active_grants)
	say "xen active grant entries before the grant tests: ${_g0:-unknown}"
	run_ktap "[dom0->d$D1 grant]" env GNTSOCK_PEER_DOMID="$D1" \
		GNTSOCK_LINK_TOOL="$GBIN/gntsock-link" "$GBIN/gntsock_grant_test" || _rc=1
	domu_cmd "$D1" grant "$D2" 0 || { say "domU1 grant run status $?"; _rc=1; }
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
	printf '[dom0 bench] 1..17\n'
	bench_run "all transports, module defaults" "${_a:+--tcp $_a} ${RIG_BENCH_ARGS:-}" 1 ||
		_rc=1
	bench_run "gntsock, 1 MiB socket buffers (GNTSOCK_SO_BUFFER_SIZE) at both ends" \
		"--port 6101 --gnt-buffer 1M --only gntsock --sizes 4K,64K,1M ${RIG_BENCH_ARGS:-}" 2 ||
		_rc=1
	bench_run "grant path: 1, 16, 64 MiB by grant cmsg, mapped and touched, vs streamed" \
		"" 3 grant || _rc=1
	# Each receive-path change on and off, same boot (module parameters buf_auto_max,
	# rx_batch_wake, stat_times), and direct receive (rx_direct, off by default) again now
	# that fewer round trips leave the copies a larger share; tx_wake_one and rx_page_bufs
	# stay at their defaults. The time counters (stat_times=1) show where the receiver's
	# time goes.
	_sc="--only gntsock --sizes 64K --rtt-count 200 ${RIG_BENCH_ARGS:-}"
	_dflt="buf_auto_max=1048576 rx_batch_wake=1 stat_times=0 rx_direct=0"
	_nogrow="buf_auto_max=262144 rx_batch_wake=1 stat_times=0 rx_direct=0"
	_nobatch="buf_auto_max=1048576 rx_batch_wake=0 stat_times=0 rx_direct=0"
	_times="buf_auto_max=1048576 rx_batch_wake=1 stat_times=1 rx_direct=0"
	_before="buf_auto_max=262144 rx_batch_wake=0 stat_times=1 rx_direct=0"
	_direct="buf_auto_max=1048576 rx_batch_wake=1 stat_times=0 rx_direct=1"
	for _pass in "" ", again"; do
		_n=$([ -z "$_pass" ] && echo 4 || echo 12)
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
		bench_params "$_direct"
		bench_profile "defaults with direct receive (rx_direct=1)$_pass" $((_n + 5))
		if [ -z "$_pass" ]; then
			bench_params "$_before"
			bench_run "scale, all three off (as before)" "$_sc" 10
			bench_params "$_dflt"
			bench_run "scale, defaults" "$_sc" 11
		fi
	done
	bench_params "$_dflt"
	perf_server_stop
	return $_rc
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

# i. An auto-translated (PVH) mapper (only when RIG_TESTS names "pvh"; needs QEMU
# -cpu ...,+npt for HAP): domU1 (PV) grants, a PVH domU maps revocably (the grant goes
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

step load s_load
if selected dom0 || selected loop; then step loop s_loop; else skip loop; fi
step create s_create
step link s_link
if selected demo; then step demo s_demo; else skip demo; fi
if selected dom0; then step dom0 s_dom0; else skip dom0; fi
if selected domu; then step domu s_domu; else skip domu; fi
if selected grant; then step grant s_grant; else skip grant; fi
if selected reload; then step reload s_reload; else skip reload; fi
if selected perf; then step perf s_perf; else skip perf; fi
if selected bench; then step bench s_bench; else skip bench; fi
if selected destroy; then step destroy s_destroy; else skip destroy; fi
if selected revoke; then step revoke s_revoke; else skip revoke; fi
case ",$RIG_TESTS," in *,pvh,*) step pvh s_pvh ;; *) skip pvh ;; esac

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
