#!/bin/bash
# Build gntsock.ko and the test modules against the debug kernel
# (build-debug-kernel.sh; KDIR = its build/ tree), from a copy of the module sources in
# $RIG_OUT/debug-modules/: the repository's own build products stay those of the stock
# kernel. Only files whose content changed are copied again, so make rebuilds only what
# changed. Prints the paths of gntsock.ko, gntsock_xrt.ko, gntsock_kasan_probe.ko
# (debug-kernel/probe: proof that KASAN reports) and gntsock_hostile.ko (the hostile peer),
# one a line. Build output goes to stderr.
set -eu
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
eval "$("$RIG_DIR/build-debug-kernel.sh" -p)"
[ -f "$RIG_DEBUG_KDIR/Module.symvers" ] ||
	rig_die "no debug kernel tree at $RIG_DEBUG_KDIR (GNTSOCK_RIG_KERNEL=debug build-images.sh builds it)"
M=$RIG_OUT/debug-modules
mkdir -p "$M"
# The module's and the test module's sources, as laid out in the repository (the test
# module's Kbuild finds net/gntsock relative to itself).
(cd "$RIG_REPO" && find Kbuild include net selftests/xrt selftests/hostile \
	selftests/rig/debug-kernel/probe -type f \
	\( -name Kbuild -o -name '*.c' -o -name '*.h' \)) |
	while IFS= read -r f; do
		if ! cmp -s "$RIG_REPO/$f" "$M/$f"; then
			mkdir -p "$(dirname "$M/$f")"
			cp "$RIG_REPO/$f" "$M/$f"
		fi
	done
jobs=${GNTSOCK_KBUILD_JOBS:-2}
for d in "$M" "$M/selftests/xrt" "$M/selftests/hostile" "$M/selftests/rig/debug-kernel/probe"; do
	nice -n 19 make -C "$RIG_DEBUG_KDIR" M="$d" -j"$jobs" modules >&2 ||
		rig_die "building $d against $RIG_DEBUG_KDIR failed"
done
for ko in "$M/gntsock.ko" "$M/selftests/xrt/gntsock_xrt.ko" \
	"$M/selftests/rig/debug-kernel/probe/gntsock_kasan_probe.ko" \
	"$M/selftests/hostile/gntsock_hostile.ko"; do
	vm=$(modinfo -F vermagic "$ko")
	case "$vm" in
	"$RIG_DEBUG_RELEASE "*) ;;
	*) rig_die "$ko has vermagic '$vm', not $RIG_DEBUG_RELEASE" ;;
	esac
	printf '%s\n' "$ko"
done
