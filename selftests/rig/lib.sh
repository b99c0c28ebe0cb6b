# shellcheck shell=bash disable=SC2034
# Shared helpers for the gntsock VM rig. Sourced by the rig's scripts, never run directly.
#
# Every downloaded or built artefact lives in $RIG_CACHE (outside the repository) and is keyed
# by the package versions resolved from the host's apt configuration, so a new kernel ABI or a
# new Xen security release rebuilds what depends on it and nothing else.

RIG_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RIG_REPO=$(cd "$RIG_DIR/../.." && pwd)
RIG_CACHE=${GNTSOCK_CACHE:-/var/cache/gntsock}
RIG_OUT=${GNTSOCK_RIG_OUT:-$RIG_REPO/build/rig}
RIG_PY=/usr/bin/python3
export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C

rig_log() { printf '[rig] %s\n' "$*" >&2; }
rig_die() { printf '[rig] ERROR: %s\n' "$*" >&2; exit 1; }

# Candidate version of a binary package ("" when apt does not know it).
rig_candidate() {
	apt-cache policy "$1" 2>/dev/null | awk '/^  Candidate:/ { if ($2 != "(none)") print $2; exit }'
}

# Kernel ABI of Debian's default amd64 kernel, e.g. 6.1.0-56-amd64.
rig_kabi() {
	local abi
	abi=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -n 1)
	[ -n "$abi" ] || return 1
	printf '%s\n' "$abi"
}

# Resolve every version the rig depends on into RIG_* variables.
rig_resolve_versions() {
	RIG_KABI=$(rig_kabi) || rig_die "cannot resolve the kernel ABI (apt-cache depends linux-image-amd64)"
	RIG_KVER=$(rig_candidate "linux-image-$RIG_KABI")
	RIG_XENVER=$(rig_candidate xen-hypervisor-4.17-amd64)
	RIG_BBVER=$(rig_candidate busybox-static)
	[ -n "$RIG_KVER" ] || rig_die "no candidate for linux-image-$RIG_KABI"
	[ -n "$RIG_XENVER" ] || rig_die "no candidate for xen-hypervisor-4.17-amd64"
	[ -n "$RIG_BBVER" ] || rig_die "no candidate for busybox-static"
	# Cache keys: versions with characters that are awkward in paths replaced.
	local k x b
	k=$(printf '%s' "$RIG_KVER" | tr ':~' '__')
	x=$(printf '%s' "$RIG_XENVER" | tr ':~' '__')
	b=$(printf '%s' "$RIG_BBVER" | tr ':~' '__')
	RIG_C_DEBS=$RIG_CACHE/debs
	RIG_C_XEN=$RIG_CACHE/xen-$x
	RIG_C_KERNEL=$RIG_CACHE/kernel-$RIG_KABI-$k
	# Bump a recipe number when the way that image is built changes: it forces a rebuild.
	RIG_C_DOM0=$RIG_CACHE/dom0-xen$x-$RIG_KABI-$k-r1
	RIG_C_DOMU=$RIG_CACHE/domU-$RIG_KABI-$k-bb$b-r1
	# GNTSOCK_RIG_KERNEL=debug: dom0 and every domU boot the debug kernel
	# (build-debug-kernel.sh) instead of Debian's. The stock paths stay in RIG_STOCK_*: the
	# debug dom0 image is the stock one with the debug kernel's modules.
	RIG_KERNEL_KIND=${GNTSOCK_RIG_KERNEL:-stock}
	case $RIG_KERNEL_KIND in
	stock) ;;
	debug)
		RIG_STOCK_KABI=$RIG_KABI
		RIG_STOCK_KVER=$RIG_KVER
		RIG_STOCK_C_KERNEL=$RIG_C_KERNEL
		RIG_STOCK_C_DOM0=$RIG_C_DOM0
		RIG_DEBUG_SRCVER=$(rig_candidate linux-source-6.1)
		[ -n "$RIG_DEBUG_SRCVER" ] || rig_die "no candidate for linux-source-6.1"
		# The release: the source's upstream version (6.1.N) and the fragment's LOCALVERSION;
		# build-debug-kernel.sh checks that the tree agrees.
		RIG_KABI=$(printf '%s' "${RIG_DEBUG_SRCVER#*:}" | sed 's/-[^-]*$//')-gntsock-debug
		RIG_DEBUG_KEY=$(cat "$RIG_DIR/build-debug-kernel.sh" "$RIG_DIR/debug-kernel/debug.config" \
			"$RIG_DIR"/debug-kernel/*.patch 2>/dev/null | sha256sum | cut -c1-12)
		RIG_KVER=$RIG_DEBUG_SRCVER-$RIG_DEBUG_KEY
		k=$(printf '%s' "$RIG_KVER" | tr ':~' '__')
		RIG_C_KERNEL=$RIG_CACHE/kernel-debug-$k
		RIG_C_DOM0=$RIG_CACHE/dom0-xen$x-$RIG_KABI-$k-r1
		RIG_C_DOMU=$RIG_CACHE/domU-$RIG_KABI-$k-bb$b-r1
		;;
	*) rig_die "GNTSOCK_RIG_KERNEL: 'stock' (Debian's kernel) or 'debug'" ;;
	esac
}

rig_versions_report() {
	if [ "$RIG_KERNEL_KIND" = debug ]; then
		printf 'kernel:         %s (debug kernel, linux-source-6.1 %s, config+patches %s)\n' \
			"$RIG_KABI" "$RIG_DEBUG_SRCVER" "$RIG_DEBUG_KEY"
	else
		printf 'kernel ABI:     %s (linux-image-%s %s)\n' "$RIG_KABI" "$RIG_KABI" "$RIG_KVER"
	fi
	printf 'xen hypervisor: xen-hypervisor-4.17-amd64 %s\n' "$RIG_XENVER"
	printf 'busybox-static: %s\n' "$RIG_BBVER"
	if [ -f "$RIG_C_DOM0/versions.txt" ]; then
		sed 's/^/dom0 rootfs:    /' "$RIG_C_DOM0/versions.txt"
	fi
	printf 'qemu:           %s\n' "$(qemu-system-x86_64 --version | head -n 1)"
}

# First archive URI from the host's apt sources serving the given suite (e.g. bookworm,
# bookworm-security). The rig never hard-codes an archive host: it uses what the machine uses.
rig_mirror() {
	local suite=$1 f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk -v s="$suite" '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " s " ") && uris != "") {
					split(uris, u, " "); print u[1]; found = 1; exit
				}
				types = ""; suites = ""; uris = ""
			}
			/^[ \t]*$/ { flush(); next }
			/^Types:/  { sub(/^Types:[ \t]*/, "");  types = $0 }
			/^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
			/^URIs:/   { sub(/^URIs:[ \t]*/, "");   uris = $0 }
			END { if (!found) flush() }' "$f")
		[ -n "$uri" ] && { printf '%s\n' "${uri%/}"; return 0; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		uri=$(awk -v s="$suite" '$1 == "deb" {
				i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
				if ($(i + 1) == s) { print $i; exit } }' "$f")
		[ -n "$uri" ] && { printf '%s\n' "${uri%/}"; return 0; }
	done
	return 1
}

# apt-get download PKG=VER into the deb cache unless already there; prints the .deb path.
rig_fetch_deb() {
	local pkg=$1 ver=$2 f
	mkdir -p "$RIG_C_DEBS"
	f=$(rig_deb_path "$pkg" "$ver")
	if [ -z "$f" ]; then
		rig_log "downloading $pkg $ver"
		(cd "$RIG_C_DEBS" && apt-get download -q -q -o APT::Sandbox::User=root "$pkg=$ver" >&2) ||
			rig_die "apt-get download $pkg=$ver failed"
		f=$(rig_deb_path "$pkg" "$ver")
		[ -n "$f" ] || rig_die "downloaded $pkg but cannot find its .deb"
	fi
	printf '%s\n' "$f"
}

rig_deb_path() {
	local pkg=$1 ver=$2 f
	# apt-get download encodes the epoch's ':' as %3a.
	for f in "$RIG_C_DEBS/${pkg}_${ver/:/%3a}_"*.deb "$RIG_C_DEBS/${pkg}_${ver#*:}_"*.deb; do
		[ -f "$f" ] && { printf '%s\n' "$f"; return 0; }
	done
	return 0
}

# Build a newc cpio from directory $1 into file $2 (root-owned, stable order).
rig_cpio() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0) >"$2"
}

# Pad a file with zero bytes to a multiple of 512 so that an uncompressed cpio archive can
# follow a compressed one (the kernel skips zero padding between concatenated archives).
rig_pad512() {
	local sz pad
	sz=$(stat -c %s "$1")
	pad=$(( (512 - sz % 512) % 512 ))
	[ "$pad" -eq 0 ] || head -c "$pad" /dev/zero >>"$1"
}
