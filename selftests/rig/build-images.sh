#!/bin/bash
# Fetch and build the rig's cached base images (run as root; reuses what is already cached):
#   $RIG_C_XEN/xen.bin            Xen 4.17 hypervisor, multiboot ELF (gunzipped boot/xen-*.gz)
#   $RIG_C_KERNEL/vmlinuz         Debian kernel (bzImage) booted as PV dom0
#   $RIG_C_KERNEL/vmlinux         the same kernel as a raw ELF, for PV domUs
#   $RIG_C_DOM0/base.cpio.zst     dom0 rootfs: debootstrap minbase + xen-utils (== hypervisor
#                                 version) + the kernel modules dom0 needs; no /init
#   $RIG_C_DOMU/base.cpio.zst     domU rootfs: busybox-static + drivers/xen modules; no /init
# With GNTSOCK_RIG_KERNEL=debug the kernel is the debug kernel (build-debug-kernel.sh), the
# domU image carries its modules, and the dom0 image is the stock one with the stock
# kernel's modules replaced by the debug kernel's.
# With -p, print the resolved paths as shell assignments instead of building.
set -eu
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# Modules copied into the guests (with their dependencies). Paths relative to lib/modules/ABI.
DOM0_MODULES="kernel/drivers/xen/ kernel/drivers/net/xen-netback/ kernel/drivers/net/xen-netfront.ko
kernel/drivers/block/xen-blkback/ kernel/net/bridge/ kernel/net/802/ kernel/net/llc/
kernel/drivers/net/dummy.ko kernel/drivers/net/veth.ko kernel/drivers/net/tun.ko"
DOMU_MODULES="kernel/drivers/xen/ kernel/drivers/net/xen-netfront.ko kernel/drivers/block/xen-blkfront.ko"

rig_resolve_versions
C_DOM0=$RIG_C_DOM0
C_DOMU=$RIG_C_DOMU

if [ "${1:-}" = "-p" ]; then
	printf 'RIG_XEN_BIN=%q\n' "$RIG_C_XEN/xen.bin"
	printf 'RIG_VMLINUZ=%q\n' "$RIG_C_KERNEL/vmlinuz"
	printf 'RIG_VMLINUX=%q\n' "$RIG_C_KERNEL/vmlinux"
	printf 'RIG_DOM0_BASE=%q\n' "$C_DOM0/base.cpio.zst"
	printf 'RIG_DOMU_BASE=%q\n' "$C_DOMU/base.cpio.zst"
	printf 'RIG_DOM0_VERSIONS=%q\n' "$C_DOM0/versions.txt"
	printf 'RIG_KABI=%q\n' "$RIG_KABI"
	exit 0
fi

[ "$(id -u)" -eq 0 ] || rig_die "build-images.sh must run as root"
mkdir -p "$RIG_CACHE"
# The debug kernel takes minutes to build: it has a lock of its own, so that runs of the
# stock kernel are not held up by it.
if [ "$RIG_KERNEL_KIND" = debug ]; then
	"$RIG_DIR/build-debug-kernel.sh"
fi
# Concurrent runs share the cache: one builder at a time.
exec 8>"$RIG_CACHE/.lock"
flock 8

TMPS=""
MOUNTS=""
cleanup() {
	local m d
	for m in $MOUNTS; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
	for d in $TMPS; do rm -rf "$d"; done
}
trap cleanup EXIT
# Sets $t to a new scratch directory, removed on exit.
mktmp() { t=$(mktemp -d "$RIG_CACHE/.tmp.XXXXXX"); TMPS="$TMPS $t"; }

# Publish a finished build directory atomically.
publish() {
	rm -rf "$2.old"
	[ -e "$2" ] && mv "$2" "$2.old"
	mv "$1" "$2"
	rm -rf "$2.old"
}

# Copy module paths ($3...) and everything they depend on from the kernel tree in $RIG_C_KERNEL
# into root $1 for ABI $2, then run depmod there.
copy_modules() {
	local root=$1 abi=$2 src=$RIG_C_KERNEL/root/lib/modules/$2 want p
	shift 2
	want=$(mktemp)
	for p in "$@"; do
		(cd "$src" && find "$p" -name '*.ko*' -type f) >>"$want"
	done
	# Closure over modules.dep ("path: dep dep ...").
	awk 'NR == FNR { need[$0] = 1; next }
	     { sub(/:$/, "", $1); deps[$1] = $0 }
	     END {
		n = 0; for (m in need) q[n++] = m
		for (i = 0; i < n; i++) {
			m = q[i]; print m
			if (!(m in deps)) continue
			k = split(deps[m], d, " ")
			for (j = 2; j <= k; j++) if (!(d[j] in need)) { need[d[j]] = 1; q[n++] = d[j] }
		}
	     }' "$want" "$src/modules.dep" | sort -u >"$want.all"
	mkdir -p "$root/lib/modules/$abi"
	(cd "$src" && cpio --quiet -pdm "$root/lib/modules/$abi" <"$want.all")
	cp "$src"/modules.order "$src"/modules.builtin "$src"/modules.builtin.modinfo \
		"$root/lib/modules/$abi/" 2>/dev/null || true
	depmod -b "$root" "$abi"
	rm -f "$want" "$want.all"
}

build_xen() {
	[ -f "$RIG_C_XEN/xen.bin" ] && return 0
	rig_log "building $RIG_C_XEN"
	local deb t gz
	deb=$(rig_fetch_deb xen-hypervisor-4.17-amd64 "$RIG_XENVER")
	mktmp
	dpkg-deb -x "$deb" "$t/x"
	gz=$(find "$t/x/boot" -name 'xen-*.gz' | head -n 1)
	[ -n "$gz" ] || rig_die "no boot/xen-*.gz in $deb"
	mkdir "$t/out"
	gzip -dc "$gz" >"$t/out/xen.bin"
	cp "$t"/x/boot/xen-*.config "$t/out/" 2>/dev/null || true
	printf '%s\n' "$RIG_XENVER" >"$t/out/version"
	publish "$t/out" "$RIG_C_XEN"
}

build_kernel() {
	[ -f "$RIG_C_KERNEL/done" ] && return 0
	if [ "$RIG_KERNEL_KIND" = debug ]; then
		"$RIG_DIR/build-debug-kernel.sh"
		return
	fi
	rig_log "building $RIG_C_KERNEL"
	local deb t
	deb=$(rig_fetch_deb "linux-image-$RIG_KABI" "$RIG_KVER")
	mktmp
	mkdir "$t/out"
	dpkg-deb -x "$deb" "$t/out/root"
	cp "$t/out/root/boot/vmlinuz-$RIG_KABI" "$t/out/vmlinuz"
	"$RIG_PY" "$RIG_DIR/extract-vmlinux.py" "$t/out/vmlinuz" "$t/out/vmlinux"
	cp "$t/out/root/boot/config-$RIG_KABI" "$t/out/config"
	rm -rf "$t/out/root/usr/share/doc" "$t/out/root/boot"
	depmod -b "$t/out/root" "$RIG_KABI"
	printf '%s %s\n' "$RIG_KABI" "$RIG_KVER" >"$t/out/done"
	publish "$t/out" "$RIG_C_KERNEL"
}

build_domu() {
	[ -f "$C_DOMU/base.cpio.zst" ] && return 0
	rig_log "building $C_DOMU"
	local deb t r a
	deb=$(rig_fetch_deb busybox-static "$RIG_BBVER")
	mktmp
	dpkg-deb -x "$deb" "$t/bb"
	r=$t/root
	mkdir -p "$r"/bin "$r"/sbin "$r"/usr/bin "$r"/usr/sbin "$r"/dev "$r"/proc "$r"/sys \
		"$r"/tmp "$r"/run "$r"/etc "$r"/root "$r"/opt/gntsock
	cp "$t/bb/bin/busybox" "$r/bin/busybox"
	for a in $("$r/bin/busybox" --list-full); do
		[ -e "$r/$a" ] || ln -s /bin/busybox "$r/$a"
	done
	mknod -m 600 "$r/dev/console" c 5 1
	mknod -m 666 "$r/dev/null" c 1 3
	# shellcheck disable=SC2086
	copy_modules "$r" "$RIG_KABI" $DOMU_MODULES
	mkdir "$t/out"
	rig_cpio "$r" "$t/out/base.cpio"
	zstd -q -T0 -10 --rm "$t/out/base.cpio" -o "$t/out/base.cpio.zst"
	rig_pad512 "$t/out/base.cpio.zst"
	printf 'busybox-static %s\n' "$RIG_BBVER" >"$t/out/versions.txt"
	publish "$t/out" "$C_DOMU"
}

build_dom0() {
	[ -f "$C_DOM0/base.cpio.zst" ] && return 0
	rig_log "building $C_DOM0"
	local t r main sec have
	main=$(rig_mirror bookworm) || rig_die "no apt source for bookworm on this host"
	sec=$(rig_mirror bookworm-security) || rig_die "no apt source for bookworm-security on this host"
	mktmp
	r=$t/root
	mkdir -p "$RIG_CACHE/debootstrap-debs" "$RIG_CACHE/dom0-apt-archives"
	rig_log "debootstrap bookworm (minbase + xen-utils-4.17)"
	debootstrap --variant=minbase --include=xen-utils-4.17,kmod,iproute2,procps \
		--cache-dir="$RIG_CACHE/debootstrap-debs" bookworm "$r" "$main" >"$t/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$t/debootstrap.log" >&2; rig_die "debootstrap failed"; }
	printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
	chmod 755 "$r/usr/sbin/policy-rc.d"
	printf 'deb %s bookworm main\ndeb %s bookworm-security main\n' "$main" "$sec" \
		>"$r/etc/apt/sources.list"
	cp /etc/resolv.conf "$r/etc/resolv.conf"
	mount -t proc proc "$r/proc"
	MOUNTS="$r/proc $MOUNTS"
	# Reuse .debs downloaded by earlier builds.
	find "$RIG_CACHE/dom0-apt-archives" -name '*.deb' -exec cp {} "$r/var/cache/apt/archives/" \;
	rig_log "upgrading the dom0 rootfs from bookworm-security"
	if ! { chroot "$r" apt-get update -q -q &&
		chroot "$r" apt-get -y -q -q --no-install-recommends -o Dpkg::Options::=--force-confold \
			install "xen-utils-4.17=$RIG_XENVER" &&
		chroot "$r" apt-get -y -q -q --no-install-recommends -o Dpkg::Options::=--force-confold \
			upgrade; } >"$t/apt.log" 2>&1; then
		tail -n 30 "$t/apt.log" >&2
		rig_die "apt-get in the dom0 chroot failed"
	fi
	cp "$r"/var/cache/apt/archives/*.deb "$RIG_CACHE/dom0-apt-archives/" 2>/dev/null || true
	# shellcheck disable=SC2016
	have=$(chroot "$r" dpkg-query -W -f='${Version}' xen-utils-4.17)
	[ "$have" = "$RIG_XENVER" ] ||
		rig_die "dom0 xen-utils-4.17 is $have, hypervisor is $RIG_XENVER"
	# shellcheck disable=SC2016
	chroot "$r" dpkg-query -W -f='${Package} ${Version}\n' xen-utils-4.17 xenstore-utils \
		libxenstore4 2>/dev/null >"$t/versions.txt" || true
	umount "$r/proc"
	MOUNTS=""

	rig_log "slimming the dom0 rootfs"
	rm -rf "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* \
		"$r"/usr/share/locale/* "$r"/usr/share/lintian "$r"/var/lib/apt/lists/* \
		"$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/debconf/*-old \
		"$r"/var/log/* "$r"/usr/lib/python3* "$r"/usr/bin/python3* "$r"/usr/share/python3 \
		"$r"/etc/resolv.conf
	mkdir -p "$r/var/log/xen/console" "$r/opt/gntsock" "$r/run" "$r/tmp"
	[ -e "$r/dev/console" ] || mknod -m 600 "$r/dev/console" c 5 1
	# shellcheck disable=SC2086
	copy_modules "$r" "$RIG_KABI" $DOM0_MODULES
	mkdir "$t/out"
	rig_cpio "$r" "$t/out/base.cpio"
	zstd -q -T0 -10 --rm "$t/out/base.cpio" -o "$t/out/base.cpio.zst"
	rig_pad512 "$t/out/base.cpio.zst"
	mv "$t/versions.txt" "$t/out/versions.txt"
	publish "$t/out" "$C_DOM0"
}

# The debug kernel's dom0 image: the stock image (built first, with the stock kernel's
# modules) with the debug kernel's modules instead; debootstrap runs once for both.
build_dom0_debug() {
	[ -f "$C_DOM0/base.cpio.zst" ] && return 0
	local kabi=$RIG_KABI kdir=$RIG_C_KERNEL kver=$RIG_KVER dom0=$C_DOM0 t r
	RIG_KERNEL_KIND=stock RIG_KABI=$RIG_STOCK_KABI RIG_KVER=$RIG_STOCK_KVER
	RIG_C_KERNEL=$RIG_STOCK_C_KERNEL C_DOM0=$RIG_STOCK_C_DOM0
	build_kernel
	build_dom0
	RIG_KERNEL_KIND=debug RIG_KABI=$kabi RIG_KVER=$kver RIG_C_KERNEL=$kdir C_DOM0=$dom0
	rig_log "building $C_DOM0 from $RIG_STOCK_C_DOM0"
	mktmp
	r=$t/root
	mkdir "$r"
	# (zstd stops at the zero padding rig_pad512 added, with a complaint: cpio has it all.)
	{ zstd -dcq "$RIG_STOCK_C_DOM0/base.cpio.zst" 2>/dev/null || true; } |
		(cd "$r" && cpio -idm --quiet --no-absolute-filenames)
	[ -x "$r/etc/init.d/xen" ] || rig_die "cannot unpack $RIG_STOCK_C_DOM0/base.cpio.zst"
	rm -rf "$r/lib/modules/$RIG_STOCK_KABI"
	# shellcheck disable=SC2086
	copy_modules "$r" "$RIG_KABI" $DOM0_MODULES
	mkdir "$t/out"
	rig_cpio "$r" "$t/out/base.cpio"
	zstd -q -T0 -10 --rm "$t/out/base.cpio" -o "$t/out/base.cpio.zst"
	rig_pad512 "$t/out/base.cpio.zst"
	cp "$RIG_STOCK_C_DOM0/versions.txt" "$t/out/versions.txt"
	publish "$t/out" "$C_DOM0"
}

build_xen
build_kernel
build_domu
if [ "$RIG_KERNEL_KIND" = debug ]; then
	build_dom0_debug
else
	build_dom0
fi
# Old kernel/Xen/image versions are left in the cache; remove $RIG_CACHE to reclaim the space.
rig_log "images ready in $RIG_CACHE"
