#!/bin/bash
# Build the per-run payload and the guests' initramfs images in $RIG_OUT (build/rig/):
#   payload-common.cpio   /opt/gntsock/{gntsock.ko,bin/*,domU.cfg,rig/*}
#   domU-initramfs.cpio   domU base + common payload + domU /init
#   dom0-initrd.cpio      dom0 base + common payload + dom0 /init + domU kernel and initramfs
# Sources (override with the environment):
#   GNTSOCK_KO   the module (default: <repo>/gntsock.ko; "none" = run without a module)
#   GNTSOCK_BIN  directory of user-space binaries (default: <repo>/build/bin)
# With GNTSOCK_RIG_KERNEL=debug, gntsock.ko (unless GNTSOCK_KO names one), gntsock_xrt.ko and
# gntsock_hostile.ko are built against the debug kernel (build-debug-modules.sh) and replace
# the stock builds.
set -eu
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

eval "$("$RIG_DIR/build-images.sh" -p)"
KO=${GNTSOCK_KO:-$RIG_REPO/gntsock.ko}
KERNEL_KIND=${GNTSOCK_RIG_KERNEL:-stock}
DEBUG_XRT=""
DEBUG_PROBE=""
DEBUG_HOSTILE=""
if [ "$KERNEL_KIND" = debug ]; then
	dbg=$("$RIG_DIR/build-debug-modules.sh") || rig_die "the modules do not build against the debug kernel"
	[ -n "${GNTSOCK_KO:-}" ] || KO=$(printf '%s\n' "$dbg" | sed -n 1p)
	DEBUG_XRT=$(printf '%s\n' "$dbg" | sed -n 2p)
	DEBUG_PROBE=$(printf '%s\n' "$dbg" | sed -n 3p)
	DEBUG_HOSTILE=$(printf '%s\n' "$dbg" | sed -n 4p)
fi
BIN=${GNTSOCK_BIN:-$RIG_REPO/build/bin}
TESTS=${GNTSOCK_RIG_TESTS:-all}
TEST_TIMEOUT=${GNTSOCK_RIG_TEST_TIMEOUT:-600}
SCALE=${GNTSOCK_RIG_SCALE:-1}
DEMO_MIB=${GNTSOCK_RIG_DEMO_MIB:-64}
DOMU_MEM=${GNTSOCK_RIG_DOMU_MEM:-}
RING_ORDER=${GNTSOCK_RIG_RING_ORDER_D1D2:-}
BENCH_ARGS=${GNTSOCK_RIG_BENCH_ARGS:-}
# 1: the benchmark's main table and its busy-poll run only (GNTSOCK_BENCH_QUICK).
BENCH_QUICK=${GNTSOCK_RIG_BENCH_QUICK:-0}
# The stream suite's bulk transfers (gntsock_test): 256 MiB, 8 on the debug kernel.
if [ "$KERNEL_KIND" = debug ]; then BULK_MIB=${GNTSOCK_RIG_BULK_MIB:-8}; else BULK_MIB=${GNTSOCK_RIG_BULK_MIB:-256}; fi
# 1: the domu and grant steps run domU1 -> domU2 only (the default on the debug kernel,
# where each run takes several times as long).
if [ "$KERNEL_KIND" = debug ]; then ONE_WAY=${GNTSOCK_RIG_ONE_WAY:-1}; else ONE_WAY=${GNTSOCK_RIG_ONE_WAY:-0}; fi
case "$ONE_WAY" in 0 | 1) ;; *) rig_die "GNTSOCK_RIG_ONE_WAY: 0 or 1" ;; esac
# Harness tests reported as skipped, not run (GNTSOCK_TEST_SKIP in the guests): on the debug
# kernel those of debug-kernel/skip-tests (the words of its lines before any '#').
if [ -n "${GNTSOCK_RIG_TEST_SKIP+set}" ]; then
	TEST_SKIP=$GNTSOCK_RIG_TEST_SKIP
elif [ "$KERNEL_KIND" = debug ]; then
	TEST_SKIP=$(sed 's/#.*//' "$RIG_DIR/debug-kernel/skip-tests" | tr -s ' \t\n' ',' |
		sed 's/^,//; s/,$//')
else
	TEST_SKIP=""
fi
# Only these harness tests run (GNTSOCK_TEST_ONLY in the guests), the others are reported as
# skipped: for working on one test.
TEST_ONLY=${GNTSOCK_RIG_TEST_ONLY:-}
case "$TEST_SKIP$TEST_ONLY" in
*[!A-Za-z0-9,._]*) rig_die "GNTSOCK_RIG_TEST_SKIP/_TEST_ONLY: test names, comma-separated" ;;
esac

case "$TESTS$TEST_TIMEOUT$SCALE$DEMO_MIB$DOMU_MEM$RING_ORDER$BULK_MIB$BENCH_QUICK" in
*[!A-Za-z0-9,\ _-]*) rig_die "GNTSOCK_RIG_TESTS/_TEST_TIMEOUT/_SCALE/_DEMO_MIB/_DOMU_MEM/_RING_ORDER_D1D2/_BULK_MIB: unexpected characters" ;;
esac
case "$BENCH_ARGS" in
*[!A-Za-z0-9,.\ _-]*) rig_die "GNTSOCK_RIG_BENCH_ARGS: unexpected characters" ;;
esac

mkdir -p "$RIG_OUT"
P=$RIG_OUT/payload
rm -rf "$P"
mkdir -p "$P/common/opt/gntsock/bin" "$P/common/opt/gntsock/rig" "$P/domU" "$P/dom0/opt/gntsock/domU"
C=$P/common/opt/gntsock

# The module.
ko_state=present
if [ "$KO" = none ]; then
	ko_state=none
	rig_log "GNTSOCK_KO=none: guests run without gntsock.ko"
elif [ -f "$KO" ]; then
	cp "$KO" "$C/gntsock.ko"
	if [ "$KERNEL_KIND" = debug ]; then abi=$RIG_KABI; else abi=$(rig_kabi); fi
	vm=$(modinfo -F vermagic "$KO" 2>/dev/null || true)
	case "$vm" in
	"$abi "*) ;;
	*) rig_log "WARNING: $KO has vermagic '$vm', the guests run $abi: it will not load" ;;
	esac
else
	rig_log "WARNING: $KO does not exist: the guests will report the module missing"
fi

# User-space binaries, then the rig's own tools.
if [ -d "$BIN" ]; then
	cp -a "$BIN"/. "$C/bin/"
else
	rig_log "WARNING: $BIN does not exist: the guests will report the tests missing"
fi
if [ -n "$DEBUG_XRT" ]; then
	cp "$DEBUG_XRT" "$C/bin/gntsock_xrt.ko"
	cp "$DEBUG_PROBE" "$C/bin/gntsock_kasan_probe.ko"
	cp "$DEBUG_HOSTILE" "$C/bin/gntsock_hostile.ko"
fi
gcc -O2 -Wall -static -o "$C/bin/rig-xs" "$RIG_DIR/rig-xs.c" \
	-lxenstore -lxentoolcore -lpthread
install -m 755 "$RIG_DIR/guest/rig-create-domu" "$C/bin/rig-create-domu"
install -m 755 "$RIG_DIR/guest/rig-vif" "$C/bin/rig-vif"
install -m 644 "$RIG_DIR/guest/rig-lib.sh" "$RIG_DIR/guest/dom0-plan.sh" \
	"$RIG_DIR/guest/plan-negotiation.sh" "$C/rig/"
if [ "$KERNEL_KIND" != stock ]; then
	install -m 644 "$RIG_DIR/guest/rig-debug.sh" "$C/rig/"
fi
VCPUS=${GNTSOCK_RIG_DOMU_VCPUS:-1}
case "$VCPUS" in [1-8]) ;; *) rig_die "GNTSOCK_RIG_DOMU_VCPUS: 1 to 8" ;; esac
sed -e "s|^extra = \"\(.*\)\"|extra = \"\1${GNTSOCK_RIG_DOMU_APPEND:+ $GNTSOCK_RIG_DOMU_APPEND}\"|" \
	-e "s|^vcpus = .*|vcpus = $VCPUS|" \
	"$RIG_DIR/guest/domU.cfg" >"$C/domU.cfg"
{
	printf 'RIG_KO=%s\n' "$ko_state"
	printf "RIG_TESTS='%s'\n" "$TESTS"
	printf 'RIG_TEST_TIMEOUT=%s\n' "$TEST_TIMEOUT"
	printf 'RIG_SCALE=%s\n' "$SCALE"
	printf 'RIG_BULK_MIB=%s\n' "$BULK_MIB"
	printf 'RIG_DEMO_MIB=%s\n' "$DEMO_MIB"
	printf 'RIG_DOMU_MEM=%s\n' "$DOMU_MEM"
	printf 'RIG_RING_ORDER_D1D2=%s\n' "$RING_ORDER"
	printf "RIG_BENCH_ARGS='%s'\n" "$BENCH_ARGS"
	printf 'RIG_BENCH_QUICK=%s\n' "$BENCH_QUICK"
	printf 'RIG_ONE_WAY=%s\n' "$ONE_WAY"
	printf 'RIG_TEST_SKIP=%s\n' "$TEST_SKIP"
	printf 'RIG_TEST_ONLY=%s\n' "$TEST_ONLY"
	if [ "$KERNEL_KIND" != stock ]; then printf 'RIG_KERNEL=%s\n' "$KERNEL_KIND"; fi
} >"$C/rig/config"

rig_cpio "$P/common" "$P/common.cpio"

install -m 755 "$RIG_DIR/guest/domU-init" "$P/domU/init"
rig_cpio "$P/domU" "$P/domU.cpio"
cat "$RIG_DOMU_BASE" "$P/common.cpio" "$P/domU.cpio" >"$RIG_OUT/domU-initramfs.cpio"

install -m 755 "$RIG_DIR/guest/dom0-init" "$P/dom0/init"
ln "$RIG_VMLINUX" "$P/dom0/opt/gntsock/domU/vmlinux" 2>/dev/null ||
	cp "$RIG_VMLINUX" "$P/dom0/opt/gntsock/domU/vmlinux"
cp "$RIG_OUT/domU-initramfs.cpio" "$P/dom0/opt/gntsock/domU/initramfs.cpio"
rig_cpio "$P/dom0" "$P/dom0.cpio"
cat "$RIG_DOM0_BASE" "$P/common.cpio" "$P/dom0.cpio" >"$RIG_OUT/dom0-initrd.cpio"

rm -rf "$P/dom0" "$P/domU" "$P/dom0.cpio"
rig_log "payload ready: $RIG_OUT/dom0-initrd.cpio ($(du -h "$RIG_OUT/dom0-initrd.cpio" | cut -f1))"
