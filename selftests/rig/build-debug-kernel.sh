#!/bin/bash
# Build the rig's debug kernel (GNTSOCK_RIG_KERNEL=debug): Debian's linux-source-6.1 (the
# upstream version of the kernel the rig boots otherwise) with KASAN, lockdep
# (PROVE_LOCKING), DEBUG_ATOMIC_SLEEP, KFENCE, kmemleak, UBSAN and DEBUG_OBJECTS, configured
# as allnoconfig + debug-kernel/debug.config (only what Xen PV dom0, PV/PVH domUs and the
# rig's modules need; no debug info) and patched with debug-kernel/*.patch (KASAN in Xen PV
# guests). Cached in $RIG_C_KERNEL (lib.sh), whose name carries the source version and a hash
# of this script, the fragment and the patches; the layout is the one build-images.sh
# expects of a kernel, plus the tree out-of-tree modules build against:
#   vmlinuz   bzImage (PV dom0)          vmlinux   raw ELF, stripped (PV and PVH domUs)
#   config    the final .config          release   the kernel release (uname -r)
#   root/lib/modules/RELEASE/            modules, depmod'ed
#   build/    the object tree: KDIR for gntsock.ko and gntsock_xrt.ko (objects pruned)
#   src/      the patched source build/ refers to
#   build.log, build-seconds, done
# An interrupted build resumes where it stopped. Runs as root (apt-get). With -p, prints
# RIG_DEBUG_KDIR=... and RIG_DEBUG_RELEASE=... instead of building.
# GNTSOCK_KBUILD_JOBS: make -j (default 2); the build runs under nice -n 19.
set -eu
export GNTSOCK_RIG_KERNEL=debug
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
rig_resolve_versions
D=$RIG_C_KERNEL
if [ "${1:-}" = -p ]; then
	printf 'RIG_DEBUG_KDIR=%q\n' "$D/build"
	printf 'RIG_DEBUG_RELEASE=%q\n' "$RIG_KABI"
	exit 0
fi
[ -f "$D/done" ] && exit 0
[ "$(id -u)" -eq 0 ] || rig_die "build-debug-kernel.sh must run as root"
mkdir -p "$RIG_CACHE"
exec 6>"$RIG_CACHE/.debug-kernel.lock"
flock 6
[ -f "$D/done" ] && exit 0

# What a kernel build needs beyond the rig's own packages (objtool: libelf).
need=""
for p in bc bison flex libelf-dev libssl-dev cpio; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		need="$need $p"
done
if [ -n "$need" ]; then
	rig_log "installing$need"
	# shellcheck disable=SC2086
	apt-get install -y -q -q --no-install-recommends $need >&2 ||
		rig_die "apt-get install$need failed"
fi

t0=$(date +%s)
mkdir -p "$D"
if [ ! -f "$D/src/.gntsock-unpacked" ]; then
	rig_log "unpacking linux-source-6.1 $RIG_DEBUG_SRCVER into $D/src"
	deb=$(rig_fetch_deb linux-source-6.1 "$RIG_DEBUG_SRCVER")
	rm -rf "$D/src" "$D/build"
	mkdir "$D/src"
	dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/src/linux-source-6.1.tar.xz |
		tar -xJ -C "$D/src" --strip-components=1
	for p in "$RIG_DIR"/debug-kernel/*.patch; do
		[ -f "$p" ] || continue
		rig_log "applying ${p##*/}"
		patch -d "$D/src" -p1 --batch --forward --quiet <"$p" || rig_die "${p##*/} does not apply"
	done
	touch "$D/src/.gntsock-unpacked"
fi

# (LOCALVERSION= : no "+" for a source tree that happens to sit in a git checkout)
K=(make -C "$D/src" O="$D/build" ARCH=x86_64 LOCALVERSION=)
FRAG=$RIG_DIR/debug-kernel/debug.config
if [ ! -f "$D/build/.config" ]; then
	mkdir -p "$D/build"
	"${K[@]}" -s KCONFIG_ALLCONFIG="$FRAG" allnoconfig >&2
	# Every option of the fragment must have its value (a dependency that is not met
	# silently drops one).
	bad=0
	while IFS= read -r l; do
		case $l in
		CONFIG_*=*) name=${l%%=*}; want=$l ;;
		"# CONFIG_"*" is not set") name=${l#\# }; name=${name%% *}; want="# $name is not set" ;;
		*) continue ;;
		esac
		have=$(grep -E "^($name=|# $name is not set)" "$D/build/.config" || true)
		# An option that is off because its menu is off is absent: fine when off was asked.
		[ -z "$have" ] && [ "${want#\# }" != "$want" ] && continue
		if [ "$have" != "$want" ]; then
			rig_log "config: wanted '$want', got '${have:-nothing}'"
			bad=1
		fi
	done <"$FRAG"
	if [ "$bad" -ne 0 ]; then
		rm -f "$D/build/.config"
		rig_die "$FRAG does not hold in the final .config"
	fi
fi
rel=$("${K[@]}" -s kernelrelease)
[ "$rel" = "$RIG_KABI" ] || rig_die "kernel release is $rel, lib.sh expects $RIG_KABI"

jobs=${GNTSOCK_KBUILD_JOBS:-2}
rig_log "building the debug kernel $rel (make -j$jobs under nice; log $D/build.log)"
if ! nice -n 19 "${K[@]}" -j"$jobs" bzImage modules >"$D/build.log" 2>&1; then
	grep -E 'error|Error' "$D/build.log" | head -n 20 >&2
	rig_die "debug kernel build failed (see $D/build.log)"
fi
rm -rf "$D/root"
"${K[@]}" -s INSTALL_MOD_PATH="$D/root" modules_install >>"$D/build.log" 2>&1 ||
	rig_die "modules_install failed (see $D/build.log)"
rm -f "$D/root/lib/modules/$rel/build" "$D/root/lib/modules/$rel/source"
cp "$D/build/arch/x86/boot/bzImage" "$D/vmlinuz"
# What the bzImage carries: the ELF with symbols and .comment stripped. Xen's PV domain
# builder and PVH loader take it as it is.
cp "$D/build/arch/x86/boot/compressed/vmlinux.bin" "$D/vmlinux"
cp "$D/build/.config" "$D/config"
printf '%s\n' "$rel" >"$D/release"
# Keep what out-of-tree module builds need (config, generated headers, Module.symvers,
# scripts/, tools/objtool), drop the objects.
find "$D/build" \( -path "$D/build/scripts" -o -path "$D/build/tools" \) -prune -o \
	-type f \( -name '*.o' -o -name '*.ko' -o -name '*.a' -o -name '*.mod.c' \) -print0 |
	xargs -0 rm -f
rm -f "$D/build/vmlinux" "$D/build/vmlinux.o" "$D/build"/.tmp_vmlinux*
t1=$(date +%s)
printf '%s\n' "$((t1 - t0))" >"$D/build-seconds"
printf 'linux-source-6.1 %s %s\n' "$RIG_DEBUG_SRCVER" "$rel" >"$D/done"
rig_log "debug kernel $rel ready in $D ($((t1 - t0))s)"
