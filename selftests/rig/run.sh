#!/bin/bash
# Run gntsock's tests inside real Xen domains: Xen 4.17 + PV dom0 + two PV domUs under QEMU
# (TCG). The one entry point: installs what is missing, builds or reuses the cached images,
# packs the payload, boots, then parses the serial log (report.sh) and exits non-zero on any
# failure. Outputs in build/rig/: serial.log (the whole console, versions at the top),
# results.txt, versions.txt. See README.md next to this script for the knobs.
set -eu
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

TIMEOUT=${GNTSOCK_RIG_TIMEOUT:-1500}
MEM=${GNTSOCK_RIG_MEM:-3072}
VERBOSE=${GNTSOCK_RIG_VERBOSE:-0}
XEN_APPEND="console=com1 com1=115200,8n1,0x3f8,0 dom0_mem=1024M,max:1024M loglvl=all guest_loglvl=all conring_size=1M"
XEN_APPEND="$XEN_APPEND${GNTSOCK_RIG_XEN_APPEND:+ $GNTSOCK_RIG_XEN_APPEND}"
DOM0_APPEND="console=hvc0 earlyprintk=xen loglevel=5 panic=1 rdinit=/init${GNTSOCK_RIG_DOM0_APPEND:+ $GNTSOCK_RIG_DOM0_APPEND}"

[ "$(id -u)" -eq 0 ] || rig_die "run.sh must run as root (apt-get, debootstrap, mknod)"
t0=$(date +%s)

# One run at a time per output directory: a second run waits instead of clobbering the first.
mkdir -p "$RIG_OUT"
exec 9>"$RIG_OUT/.lock"
if ! flock -n 9; then
	rig_log "another rig run is using $RIG_OUT; waiting for it (GNTSOCK_RIG_OUT picks another directory)"
	flock 9
fi

if [ "${GNTSOCK_RIG_SKIP_DEPS:-0}" != 1 ]; then
	"$RIG_DIR/deps.sh"
fi
"$RIG_DIR/build-images.sh"
"$RIG_DIR/payload.sh"
eval "$("$RIG_DIR/build-images.sh" -p)"
XEN=${GNTSOCK_XEN:-$RIG_XEN_BIN}
[ -f "$XEN" ] || rig_die "no hypervisor at $XEN"

SERIAL=$RIG_OUT/serial.log
rig_resolve_versions
{
	rig_versions_report
	[ -n "${GNTSOCK_XEN:-}" ] && printf 'hypervisor:     %s (GNTSOCK_XEN)\n' "$XEN"
	printf 'gntsock.ko:     %s\n' "${GNTSOCK_KO:-$RIG_REPO/gntsock.ko}"
	printf 'binaries:       %s\n' "${GNTSOCK_BIN:-$RIG_REPO/build/bin}"
} >"$RIG_OUT/versions.txt"
serial_header() {
	echo "GNTSOCK-RIG-HOST: run started $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	sed 's/^/GNTSOCK-RIG-HOST: version /' "$RIG_OUT/versions.txt"
	echo "GNTSOCK-RIG-HOST: xen cmdline: $XEN_APPEND"
	echo "GNTSOCK-RIG-HOST: dom0 cmdline: $DOM0_APPEND"
}
serial_header >"$SERIAL"
rm -f "$RIG_OUT/serial-hung.log"
cat "$RIG_OUT/versions.txt" >&2

KERNEL=$RIG_VMLINUZ
INITRD=$RIG_OUT/dom0-initrd.cpio
case "$XEN$KERNEL$INITRD$DOM0_APPEND" in
*,*) rig_die "QEMU's multiboot module list cannot carry a ',' in a path or the dom0 command line" ;;
esac

# Live view: rig lines, KTAP results and anything alarming; everything with GNTSOCK_RIG_VERBOSE=1.
live_filter() {
	if [ "$VERBOSE" = 1 ]; then
		cat
	else
		grep --line-buffered -aE 'GNTSOCK-RIG|(^|\] )(not )?ok [0-9]|(^|\] )1\.\.[0-9]|\] # |Oops|WARNING:|BUG:|KASAN|general protection|Kernel panic|Call Trace|\(XEN\) .*([Pp]anic|FATAL|crash)' || true
	fi
}

# One QEMU per machine: two TCG guests on two cores halve each other's speed and turn
# timeouts into flakes. Runs from other checkouts wait here.
exec 7>"$RIG_CACHE/.qemu.lock"
if ! flock -n 7; then
	rig_log "another rig run is booting on this machine; waiting for it"
	flock 7
fi
# A boot that hangs before dom0's init speaks (seen once under TCG: the console fell silent
# 7 s into dom0's boot, with QEMU at full CPU) would wait for the whole timeout and fail the
# run. So until the first "GNTSOCK-RIG:" line, a console silent for BOOT_STALL seconds ends
# that QEMU, by the PID it wrote, and the boot is made once more; the hung boot's log is kept
# as serial-hung.log. dom0 boots at loglevel 5: unpacking its initrd and starting its init
# print nothing (65 s of silence on the debug kernel here, the longest seen).
if [ "${GNTSOCK_RIG_KERNEL:-stock}" = debug ]; then
	BOOT_STALL=${GNTSOCK_RIG_BOOT_STALL:-600}
else
	BOOT_STALL=${GNTSOCK_RIG_BOOT_STALL:-300}
fi
QEMU_PID=$RIG_OUT/qemu.pid
boot_watch() {	# the QEMU of QEMU_PID, for as long as this script runs
	local pid quiet last start
	start=$(date +%s)
	while sleep 5 && kill -0 "$$" 2>/dev/null; do
		grep -q 'GNTSOCK-RIG:' "$SERIAL" && return 0
		last=$(stat -c %Y "$SERIAL") || last=$start
		[ "$last" -ge "$start" ] || last=$start
		quiet=$(($(date +%s) - last))
		[ "$quiet" -ge "$BOOT_STALL" ] || continue
		pid=$(cat "$QEMU_PID" 2>/dev/null) || pid=
		[ -n "$pid" ] || continue
		echo "GNTSOCK-RIG-HOST: boot hung: no console output for ${quiet}s before dom0's init; QEMU (pid $pid) ended" >>"$SERIAL"
		kill "$pid" 2>/dev/null || true
		sleep 10
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
		return 1
	done
}
boot() {	# boot TRY: one boot; its QEMU's exit status in qemu_rc
	local watch
	rm -f "$QEMU_PID"
	rig_log "booting Xen + dom0 (boot $1, timeout ${TIMEOUT}s, serial log $SERIAL)"
	# (not holding the rig's locks: it must not outlive the run with them)
	boot_watch 7>&- 9>&- &
	watch=$!
	set +e
	timeout -k 10 "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu "${GNTSOCK_RIG_CPU:-qemu64,+svm}" -m "$MEM" -smp 2 \
		-kernel "$XEN" -append "$XEN_APPEND" \
		-initrd "$KERNEL $DOM0_APPEND,$INITRD" \
		-display none -serial stdio -monitor none -net none -no-reboot -pidfile "$QEMU_PID" \
		</dev/null 2>&1 | sed -u 's/\r$//' | tee -a "$SERIAL" | live_filter
	qemu_rc=${PIPESTATUS[0]}
	kill "$watch" 2>/dev/null
	wait "$watch" 2>/dev/null
	set -e
}
t1=$(date +%s)
boot 1
if grep -q '^GNTSOCK-RIG-HOST: boot hung' "$SERIAL"; then
	mv "$SERIAL" "$RIG_OUT/serial-hung.log"
	{
		serial_header
		echo "GNTSOCK-RIG-HOST: the first boot hung (serial-hung.log): booting again"
	} >"$SERIAL"
	rig_log "the first boot hung (see $RIG_OUT/serial-hung.log): booting again"
	t1=$(date +%s)
	boot 2
fi
t2=$(date +%s)
{
	if [ "$qemu_rc" -eq 124 ] || [ "$qemu_rc" -eq 137 ] || [ $((t2 - t1)) -ge "$TIMEOUT" ]; then
		echo "GNTSOCK-RIG-HOST: QEMU killed after the ${TIMEOUT}s timeout"
	fi
	echo "GNTSOCK-RIG-HOST: qemu exit status $qemu_rc"
	echo "GNTSOCK-RIG-HOST: boot took $((t2 - t1))s, whole run $((t2 - t0))s"
} | tee -a "$SERIAL"

"$RIG_DIR/report.sh" "$SERIAL"
