#!/bin/bash
# make demo: the main job on a fresh Debian 12 machine, as root. Installs what
# is needed, builds gntsock.ko and the tools, boots Xen 4.17 with dom0 and two
# PV domUs under QEMU, loads gntsock in all three, links them, sends a file
# from domU1 to domU2 over AF_GNTSOCK (gntcat) and compares the SHA-256 sums.
# GNTSOCK_DEMO_MIB sets the file size (default 64).
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 1

echo "== installing what is needed (apt) =="
selftests/rig/deps.sh || exit 1
echo "== building gntsock.ko, tools, test programs =="
make -s module tools selftests >build-demo.log 2>&1 || {
	cat build-demo.log
	exit 1
}
rm -f build-demo.log
echo "== booting Xen + dom0 + domU1 + domU2 under QEMU (this takes a few minutes) =="
GNTSOCK_RIG_SKIP_DEPS=1 GNTSOCK_RIG_TESTS=demo \
	GNTSOCK_RIG_DEMO_MIB="${GNTSOCK_DEMO_MIB:-64}" selftests/rig/run.sh
rc=$?
LOG=build/rig/serial.log
echo
echo "== what happened (from $LOG) =="
grep -aE 'GNTSOCK-RIG: (loaded|link add|links connected|created|demo|DEMO)|^dom0: |\[d[12] shell\]|gntsock: link to domain' "$LOG" |
	sed 's/^GNTSOCK-RIG: //'
if grep -aq 'DEMO: PASS' "$LOG" && [ $rc -eq 0 ]; then
	echo "DEMO: PASS"
	exit 0
fi
echo "DEMO: FAIL (see $LOG)"
exit 1
