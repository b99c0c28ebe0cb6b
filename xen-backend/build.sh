#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the gntsock-patched Xen hypervisor from Debian's Xen 4.17 source.
#
#   xen-backend/build.sh        build (or reuse) and print the output directory
#   xen-backend/build.sh -p     print the output directory only (no build)
#
# Steps: add a deb-src entry for the host's Debian archive (same URIs and
# Signed-By as the existing deb entries), resolve the newest xen source
# version that `apt-get source` can actually fetch (the security suite's
# source is often not fetchable), fetch it (Debian's quilt series comes
# applied), apply patches/series on top, and build the hypervisor only:
#   release   Debian's own config (olddefconfig), plus XSM with FLASK and
#             SILO built in and the dummy policy chosen at boot (Xen's
#             default), so that the new XSM hook is built and runs, and
#             shadow paging (Debian leaves it out), so that PVH and HVM
#             mappers can run without HAP;
#   debug     Debian's config with CONFIG_DEBUG=y and shadow paging;
#   arm64     a cross build (gcc-aarch64-linux-gnu, defconfig, which has XSM
#             with FLASK and SILO), which must build without the feature:
#             revocable grant mappings are x86 only (HAS_GRANT_REVOCABLE).
# Then abi-check.sh compares Linux's copy of the ABI with the patched
# public/grant_table.h.
#
# Output: ${GNTSOCK_CACHE:-/var/cache/gntsock}/xen-backend-<srcver>-<patchhash>/
#   xen.bin, xen-debug.bin   multiboot ELF images for QEMU's -kernel
#   xen.config, xen-debug.config, version, build.log
#   public/                  the patched xen/include/public (abi-check.sh)
#   checks.txt               one line per check: "ok NAME" or "not ok NAME"
# A directory that already holds both images is reused as is, also when
# another run built it while this one waited for the build lock.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${GNTSOCK_CACHE:-/var/cache/gntsock}
JOBS=${GNTSOCK_XEN_JOBS:-$(nproc)}
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -o DPkg::Lock::Timeout=600 -q -q)
PY=/usr/bin/python3

# The cache key: the patches and the build choices made here.
patch_hash() {
	(cd "$HERE/patches" && cat series $(sed -e "s/#.*//" series) "$HERE/build.sh") |
		sha256sum | cut -c1-12
}

ensure_deb_src() {
	local d=/etc/apt/sources.list.d
	[ -f $d/gntsock-deb-src.sources ] || [ -f $d/gntsock-deb-src.list ] && return 0
	# Every Debian deb entry, retyped deb-src: deb822 stanzas of *.sources,
	# or one-line entries of sources.list / *.list.
	$PY - $d <<'PYEOF'
import glob, os, sys
d = sys.argv[1]
out = []
for path in sorted(glob.glob(d + '/*.sources')):
    for stanza in open(path).read().split('\n\n'):
        lines = [l for l in stanza.splitlines() if l and not l.startswith('#')]
        if not any(l.split(':', 1)[0] == 'Types' and 'deb' in l.split(':', 1)[1].split() for l in lines):
            continue
        if not any('debian' in l for l in lines if l.startswith('URIs')):
            continue
        out.append('\n'.join('Types: deb-src' if l.startswith('Types:') else l for l in lines))
if out:
    open(d + '/gntsock-deb-src.sources', 'w').write('\n\n'.join(out) + '\n')
    sys.exit(0)
lines = []
for path in ['/etc/apt/sources.list'] + sorted(glob.glob(d + '/*.list')):
    if not os.path.exists(path):
        continue
    for l in open(path):
        w = l.split()
        if len(w) > 2 and w[0] == 'deb' and 'debian' in l:
            lines.append('deb-src' + l.strip()[3:])
if not lines:
    sys.exit('no Debian deb entries found to mirror as deb-src')
open(d + '/gntsock-deb-src.list', 'w').write('\n'.join(lines) + '\n')
PYEOF
	"${APT[@]}" update
}

# The newest source version of xen that apt-get source can fetch.
fetch_source() {	# fetch_source DIR -> prints version
	local dir=$1 v
	mkdir -p "$dir"
	for v in $(apt-cache showsrc xen | sed -n 's/^Version: //p' | sort -rV | uniq); do
		case $v in 4.17.*) ;; *) continue ;; esac
		rm -rf "$dir/fetch" && mkdir -p "$dir/fetch"
		if (cd "$dir/fetch" && "${APT[@]}" source "xen=$v" >&2); then
			echo "$v"
			return 0
		fi
		echo "xen-backend: apt-get source xen=$v failed, trying an older one" >&2
	done
	return 1
}

if ! command -v bison >/dev/null || ! command -v flex >/dev/null ||
   ! command -v dpkg-source >/dev/null; then
	"${APT[@]}" install -y --no-install-recommends bison flex dpkg-dev >&2
fi
ensure_deb_src >&2

# Resolve the version without fetching when the cache already has it.
SRCVER_FILE=$CACHE/xen-backend-src/version
HASH=$(patch_hash)
if [ -f "$SRCVER_FILE" ] && [ -d "$CACHE/xen-backend-src/fetch" ]; then
	SRCVER=$(cat "$SRCVER_FILE")
else
	SRCVER=""
fi
if [ -n "$SRCVER" ]; then
	OUT=$CACHE/xen-backend-$SRCVER-$HASH
	if [ "${1:-}" = -p ] || { [ -f "$OUT/xen.bin" ] && [ -f "$OUT/xen-debug.bin" ]; }; then
		echo "$OUT"
		exit 0
	fi
fi
[ "${1:-}" = -p ] && { echo "xen-backend: not built yet" >&2; exit 1; }

exec 9>"$CACHE/.xen-backend.lock"
flock 9
if [ -z "$SRCVER" ]; then
	SRCVER=$(fetch_source "$CACHE/xen-backend-src")
	echo "$SRCVER" >"$SRCVER_FILE"
fi
OUT=$CACHE/xen-backend-$SRCVER-$HASH
# Built while we waited for the lock (make check starts this build in the
# background, and its xen stage calls us again): reuse it.
if [ -f "$OUT/xen.bin" ] && [ -f "$OUT/xen-debug.bin" ]; then
	echo "$OUT"
	exit 0
fi
SRC=$(ls -d "$CACHE"/xen-backend-src/fetch/xen-*/ | head -n 1)
SRC=${SRC%/}

# Debian's hypervisor config, from the hypervisor package of the host's
# candidate version (the closest thing to what Debian ships).
cfg=$(ls "$CACHE"/xen-backend-src/xen-4.17-amd64.config 2>/dev/null || true)
if [ -z "$cfg" ]; then
	tmp=$(mktemp -d)
	(cd "$tmp" && "${APT[@]}" download xen-hypervisor-4.17-amd64 >&2 &&
	 dpkg-deb -x xen-hypervisor-4.17-amd64_*.deb x &&
	 cp x/boot/xen-4.17-amd64.config "$CACHE/xen-backend-src/xen-4.17-amd64.config")
	rm -rf "$tmp"
	cfg=$CACHE/xen-backend-src/xen-4.17-amd64.config
fi

mkdir -p "$OUT"
LOG=$OUT/build.log
: >"$LOG"
CHECKS=$OUT/checks.txt
: >"$CHECKS"
TREE=$OUT/tree
rm -rf "$TREE"
cp -a "$SRC" "$TREE"
(cd "$TREE" && for p in $(sed -e 's/#.*//' "$HERE/patches/series"); do
	echo "applying $p"
	patch -p1 --no-backup-if-mismatch <"$HERE/patches/$p" || exit 1
done) >>"$LOG" 2>&1 || { echo "xen-backend: the patches do not apply, see $LOG" >&2; exit 1; }

# build_one NAME ARCH CONFIG-SETUP: out-of-tree build of $TREE into $OUT/build-NAME
build_one() {
	local b=$OUT/build-$1 arch=$2
	local mk=(make -C "$TREE/xen" O="$b" PYTHON=$PY)
	[ "$arch" = arm64 ] && mk+=(XEN_TARGET_ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-)
	rm -rf "$b"
	mkdir -p "$b"
	echo "=== build $1" >>"$LOG"
	case $3 in
	defconfig) "${mk[@]}" defconfig >>"$LOG" 2>&1 ;;
	*)
		cp "$cfg" "$b/.config"
		set_config "$b/.config" $3
		"${mk[@]}" olddefconfig >>"$LOG" 2>&1
		;;
	esac
	"${mk[@]}" -j"$JOBS" >>"$LOG" 2>&1
}
# set_config FILE NAME=VALUE...: set (or unset with =n) Kconfig symbols
set_config() {
	local f=$1 kv
	shift
	for kv in "$@"; do
		sed -i -e "/^CONFIG_${kv%%=*}[ =]/d" -e "/^# CONFIG_${kv%%=*} is not set/d" "$f"
		if [ "${kv#*=}" = n ]; then
			echo "# CONFIG_${kv%%=*} is not set" >>"$f"
		else
			echo "CONFIG_$kv" >>"$f"
		fi
	done
}
check() {	# check NAME RC
	if [ "$2" -eq 0 ]; then echo "ok $1"; else echo "not ok $1"; fi >>"$CHECKS"
}

t0=$(date +%s)
build_one release x86 "SHADOW_PAGING=y XSM=y XSM_FLASK=y XSM_SILO=y XSM_DUMMY_DEFAULT=y XSM_FLASK_DEFAULT=n XSM_SILO_DEFAULT=n" ||
	{ echo "xen-backend: release build failed, see $LOG" >&2; tail -n 30 "$LOG" >&2; exit 1; }
cp "$OUT/build-release/xen" "$OUT/xen.bin.tmp"
cp "$OUT/build-release/.config" "$OUT/xen.config"
build_one debug x86 "DEBUG=y SHADOW_PAGING=y" ||
	{ echo "xen-backend: debug build failed, see $LOG" >&2; tail -n 30 "$LOG" >&2; exit 1; }
cp "$OUT/build-debug/xen" "$OUT/xen-debug.bin"
cp "$OUT/build-debug/.config" "$OUT/xen-debug.config"
grep -q '^CONFIG_GRANT_REVOCABLE=y' "$OUT/xen.config" &&
	grep -q '^CONFIG_GRANT_REVOCABLE=y' "$OUT/xen-debug.config" &&
	grep -q '^CONFIG_XSM_FLASK=y' "$OUT/xen.config" &&
	grep -q '^CONFIG_SHADOW_PAGING=y' "$OUT/xen.config" &&
	grep -q '^CONFIG_SHADOW_PAGING=y' "$OUT/xen-debug.config"
check "x86 release (with XSM) and debug=y builds have CONFIG_GRANT_REVOCABLE and shadow paging" $?

# arm64: the common code must build without the x86 parts, and leave the
# new operations out (they then return -ENOSYS, "not supported").
if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
	"${APT[@]}" install -y --no-install-recommends gcc-aarch64-linux-gnu >&2
fi
rc=1
if build_one arm64 arm64 defconfig; then
	! grep -q '^CONFIG_GRANT_REVOCABLE=y' "$OUT/build-arm64/.config" &&
		grep -q '^CONFIG_XSM_FLASK=y' "$OUT/build-arm64/.config" &&
		! aarch64-linux-gnu-nm "$OUT/build-arm64/xen-syms" |
			grep -qE ' (map_revocable|revoke_swap|set_revocable_only)$'
	rc=$?
fi
check "arm64 cross build, without revocable grant mappings" $rc

rm -rf "$OUT/public"
cp -a "$TREE/xen/include/public" "$OUT/public"
"$HERE/abi-check.sh" "$OUT/public" >>"$LOG" 2>&1
check "ABI: net/gntsock/xen_revoke_abi.h agrees with the patched public/grant_table.h" $?

mv "$OUT/xen.bin.tmp" "$OUT/xen.bin"
rm -rf "$TREE" "$OUT"/build-*
printf 'source %s\npatches %s\nbuilt in %ss\n' "$SRCVER" "$HASH" $(( $(date +%s) - t0 )) >"$OUT/version"
echo "$OUT"
