#!/bin/bash
# Kernel-habit checks on the module, as KTAP: a W=1 build with no warning,
# sparse (C=2) with no report, checkpatch.pl --strict with no report, and
# Documentation/*.rst parsed by docutils with no warning (rst_check.py).
# checkpatch comes from Debian's linux-source package, unpacked once into
# $GNTSOCK_CACHE (linux-source.sh). Its include/ seeds checkpatch's CamelCase list; Xen's
# XenbusState* enum constants are not seeded by checkpatch (it reads only
# defines, typedefs and struct/enum tags), so that one CHECK is allowed.
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 1
export DEBIAN_FRONTEND=noninteractive

have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
have sparse || apt-get install -y -q -q --no-install-recommends sparse >/dev/null

KVER=$(selftests/rig/kver.sh) || { echo "Bail out! cannot resolve the kernel ABI"; exit 1; }
KDIR=/usr/src/linux-headers-$KVER
LSRC=$(selftests/linux-source.sh) || LSRC=/nonexistent

n=0
fails=0
result() {	# result OK|FAIL name [log]
	n=$((n + 1))
	if [ "$1" = OK ]; then
		echo "ok $n $2"
	else
		fails=$((fails + 1))
		echo "not ok $n $2"
		[ -n "${3:-}" ] && sed 's/^/#   /' "$3" | head -n 60
	fi
}

OUT=$REPO/build/lint
mkdir -p "$OUT"
echo "TAP version 13"
echo "1..6"

make -s -C "$KDIR" M="$REPO" clean >/dev/null 2>&1
make -s -C "$KDIR" M="$REPO/selftests/xrt" clean >/dev/null 2>&1
make -s -C "$KDIR" M="$REPO/selftests/hostile" clean >/dev/null 2>&1
make -C "$KDIR" M="$REPO" W=1 C=2 modules >"$OUT/build.log" 2>&1
rc=$?
# The test-only module of the xen-backend extension (and the gntsock
# wrappers it carries) gets the same checks.
make -C "$KDIR" M="$REPO/selftests/xrt" W=1 C=2 modules >>"$OUT/build.log" 2>&1 || rc=1
# So does the hostile peer (gntsock built with -DGNTSOCK_HOSTILE).
make -C "$KDIR" M="$REPO/selftests/hostile" W=1 C=2 modules >>"$OUT/build.log" 2>&1 || rc=1
grep -E 'warning:|error:' "$OUT/build.log" | grep -v '^Skipping BTF' >"$OUT/warnings.log"
if [ $rc -eq 0 ] && [ ! -s "$OUT/warnings.log" ]; then
	result OK "module_builds_with_W1_without_warnings"
else
	result FAIL "module_builds_with_W1_without_warnings" "$OUT/warnings.log"
fi
# Sparse reports are "file:line:col: warning|error: ..." like gcc's, but
# without gcc's trailing "[-Wname]".
grep -E '^/.*: (warning|error):' "$OUT/build.log" | grep "$REPO" |
	grep -v '\[-W[a-z0-9=-]*\]$' >"$OUT/sparse.log"
if [ $rc -eq 0 ] && [ ! -s "$OUT/sparse.log" ]; then
	result OK "sparse_C2_clean"
else
	result FAIL "sparse_C2_clean" "$OUT/sparse.log"
fi

if [ -f "$LSRC/scripts/checkpatch.pl" ]; then
	# Kernel sources (not kbuild's generated *.mod.c), then the user-space
	# tools, which have no <linux/compiler_attributes.h> for __printf().
	kfiles=$(ls net/gntsock/*.c net/gntsock/*.h include/uapi/linux/gntsock.h \
		selftests/xrt/*.c selftests/hostile/*.c | grep -v '\.mod\.c$')
	cp_rc=0
	# shellcheck disable=SC2086
	GIT_DIR=/nonexistent perl "$LSRC/scripts/checkpatch.pl" --strict --no-tree \
		--root="$LSRC" --show-types --terse -f $kfiles >"$OUT/checkpatch.log" 2>&1 ||
		cp_rc=$?
	GIT_DIR=/nonexistent perl "$LSRC/scripts/checkpatch.pl" --strict --no-tree \
		--root="$LSRC" --show-types --terse --ignore PREFER_DEFINED_ATTRIBUTE_MACRO \
		-f tools/*.c >>"$OUT/checkpatch.log" 2>&1 || [ $? -eq 1 ] || cp_rc=2
	rm -f .checkpatch-camelcase.*
	grep -E ': (ERROR|WARNING|CHECK):' "$OUT/checkpatch.log" |
		grep -v 'CAMELCASE: Avoid CamelCase: <XenbusState' >"$OUT/checkpatch.bad"
	# Exit status 1 means "found something"; anything above, that it did not run.
	[ "$cp_rc" -le 1 ] || { echo "checkpatch.pl did not run:"; cat "$OUT/checkpatch.log"; } \
		>>"$OUT/checkpatch.bad"
	if [ ! -s "$OUT/checkpatch.bad" ]; then
		result OK "checkpatch_strict_clean"
	else
		result FAIL "checkpatch_strict_clean" "$OUT/checkpatch.bad"
	fi
else
	result FAIL "checkpatch_strict_clean (linux-source-6.1 unavailable)"
fi
# The module's files call only down its layers and never in a circle
# (Documentation/gntsock.rst, "Source layout"): from the objects the build
# linked, as kbuild lists them (gntsock.mod), and again for the hostile
# build, which adds hostile.c.
if [ $rc -eq 0 ] && selftests/import_check.py gntsock.mod >"$OUT/imports.log" 2>&1; then
	result OK "no_import_circle_or_upward_call_in_net_gntsock"
else
	result FAIL "no_import_circle_or_upward_call_in_net_gntsock" "$OUT/imports.log"
fi
if [ $rc -eq 0 ] && selftests/import_check.py selftests/hostile/gntsock_hostile.mod \
	>"$OUT/imports-hostile.log" 2>&1; then
	result OK "no_import_circle_or_upward_call_in_the_hostile_build"
else
	result FAIL "no_import_circle_or_upward_call_in_the_hostile_build" \
		"$OUT/imports-hostile.log"
fi
# Documentation/ must be valid reStructuredText (what Sphinx would render).
if selftests/rst_check.py Documentation/*.rst >"$OUT/rst.log" 2>&1; then
	result OK "documentation_rst_valid"
else
	result FAIL "documentation_rst_valid" "$OUT/rst.log"
fi
[ "$fails" -eq 0 ]
