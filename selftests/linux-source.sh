#!/bin/bash
# Print the directory of the parts of Debian's linux-source-6.1 the checks
# use, unpacking them once into $GNTSOCK_CACHE (default /var/cache/gntsock):
# checkpatch.pl and its data, include/ (lint.sh), and Linux's vsock tests
# with the tools/include they build against (selftests/vsock/). The source
# version is apt's candidate, so the cache follows Debian's updates.
set -u
CACHE=${GNTSOCK_CACHE:-/var/cache/gntsock}
SRCVER=$(apt-cache policy linux-source-6.1 | awk '/Candidate:/ {print $2}')
[ -n "$SRCVER" ] && [ "$SRCVER" != "(none)" ] || {
	echo "linux-source.sh: apt knows no linux-source-6.1" >&2
	exit 1
}
LSRC=$CACHE/linux-source-$SRCVER
# .done-2: the set of members below; a cache unpacked with fewer is redone.
if [ ! -f "$LSRC/.done-2" ]; then
	mkdir -p "$CACHE/debs" "$LSRC"
	(cd "$CACHE/debs" && apt-get download -q -q "linux-source-6.1=$SRCVER") >/dev/null 2>&1
	deb=$(ls "$CACHE/debs"/linux-source-6.1_*"${SRCVER##*:}"_all.deb 2>/dev/null | head -n 1)
	[ -n "$deb" ] || {
		echo "linux-source.sh: cannot download linux-source-6.1=$SRCVER" >&2
		exit 1
	}
	dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/src/linux-source-6.1.tar.xz |
		tar -xJ -C "$LSRC" --strip-components=1 --wildcards \
		'linux-source-6.1/scripts/checkpatch.pl' \
		'linux-source-6.1/scripts/spelling.txt' \
		'linux-source-6.1/scripts/const_structs.checkpatch' \
		'linux-source-6.1/include/*' \
		'linux-source-6.1/tools/include/*' \
		'linux-source-6.1/tools/testing/vsock/*' || exit 1
	touch "$LSRC/.done-2"
fi
echo "$LSRC"
