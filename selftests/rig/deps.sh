#!/bin/bash
# Install everything the VM rig needs on a Debian 12 host (root, non-interactive). Idempotent:
# runs apt-get update only when something needed is unknown to apt, installs only what is missing.
set -eu
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || rig_die "deps.sh must run as root"

pkgs="qemu-system-x86 debootstrap debian-archive-keyring cpio zstd busybox-static libxen-dev
gcc libc6-dev make python3 kmod"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=""
abi=$(rig_kabi) || abi=""
[ -n "$abi" ] && pkgs="$pkgs linux-headers-$abi"
for p in $pkgs; do
	installed "$p" || missing="$missing $p"
done

need_update=0
[ -n "$abi" ] || need_update=1
[ -n "$(rig_candidate xen-hypervisor-4.17-amd64)" ] || need_update=1
for p in $missing; do
	[ -n "$(rig_candidate "$p")" ] || need_update=1
done
if [ "$need_update" -eq 1 ]; then
	rig_log "apt-get update"
	apt-get update -q -q >/dev/null
	abi=$(rig_kabi) || rig_die "cannot resolve the kernel ABI (apt-cache depends linux-image-amd64)"
	installed "linux-headers-$abi" || missing="$missing linux-headers-$abi"
fi

if [ -n "$missing" ]; then
	rig_log "installing:$missing"
	# shellcheck disable=SC2086
	apt-get install -y -q -q --no-install-recommends $missing >/dev/null
fi
