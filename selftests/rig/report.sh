#!/bin/bash
# report.sh [SERIAL_LOG]: turn the rig's serial log into results.
#  - every prefixed KTAP result line ("[dom0->d1] ok 1 name", "[domU1] [d1->d2] not ok 3 x")
#    is a result of its own ("# SKIP" = skipped);
#  - rig checks, as "[rig] ok|not ok N ...": the positive marker GNTSOCK-RIG-COMPLETE, no kernel
#    or hypervisor splat anywhere in the log, gntsock loaded in three domains, every plan step
#    completed, every KTAP plan ("1..N") matched by N results, QEMU exited cleanly.
# Writes results.txt next to the log, prints every result, then "N passed, N failed, N skipped".
# Exits 1 if anything failed or no test ran.
# GNTSOCK_RIG_ALLOW: extra regular expression (ERE) of log lines the splat check ignores.
set -eu
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

LOG=${1:-$RIG_OUT/serial.log}
[ -f "$LOG" ] || rig_die "no serial log at $LOG"
RESULTS=$(dirname "$LOG")/results.txt
STEPS="load loop create link demo dom0 domu grant negotiation reload perf bench destroy revoke sockfuzz pvh attack attack-pvh"
# Known-benign lines that contain a splat keyword (Xen's boot banner under QEMU TCG).
ALLOW='\(XEN\) WARNING: (SILO mode|Console output is synchronous)'
[ -n "${GNTSOCK_RIG_ALLOW:-}" ] && ALLOW="$ALLOW|$GNTSOCK_RIG_ALLOW"

rc=0
tr -d '\r' <"$LOG" | awk -v steps="$STEPS" -v allow="$ALLOW" '
function res(status, text) {
	nres++
	out[nres] = text
	if (status == "pass") npass++
	else if (status == "fail") nfail++
	else nskip++
}
function rig(status, desc, i) {
	nrig++
	if (status == "fail") res("fail", "[rig] not ok " nrig " " desc)
	else if (status == "skip") res("skip", "[rig] ok " nrig " " desc " # SKIP")
	else res("pass", "[rig] ok " nrig " " desc)
}
function detail(text) { nres++; out[nres] = "#   " text }
{
	line = $0
	# KTAP results and plans, behind one or more "[...] " prefixes.
	if (match(line, /^(\[[^]]*\] )+/)) {
		pre = substr(line, 1, RLENGTH)
		rest = substr(line, RLENGTH + 1)
		if (rest ~ /^(not )?ok [0-9]+( |$)/) {
			ktap++
			count[pre]++
			if (!(pre in seen)) { seen[pre] = 1; order[++npre] = pre }
			if (rest ~ /# *SKIP/) res("skip", line)
			else if (rest ~ /^not ok/) res("fail", line)
			else res("pass", line)
		} else if (rest ~ /^1\.\.[0-9]+/) {
			split(substr(rest, 4), a, /[^0-9]/)
			plan[pre] = a[1]
			if (!(pre in seen)) { seen[pre] = 1; order[++npre] = pre }
		}
	}
	if (line == "GNTSOCK-RIG-COMPLETE") complete = 1
	if (line ~ /Oops|WARNING:|BUG:|KASAN|general protection|Kernel panic|Call Trace|Assertion .* failed|Xen BUG at|CHECKLOCK|FATAL TRAP/ &&
	    line !~ allow && line !~ /^GNTSOCK-RIG-HOST: /) {
		if (!(line in badseen)) { badseen[line] = 1; bad[++nbad] = line }
	}
	if (match(line, /GNTSOCK-RIG: loaded [^ ]+ /)) {
		split(substr(line, RSTART + 20), a, " ")
		dom = a[1]; state = a[2]
		if (!(dom in loaded)) ldoms[++nld] = dom
		loaded[dom] = state
	}
	if (match(line, /^GNTSOCK-RIG: step [a-z0-9_-]+ /)) {
		split(substr(line, 19), a, " ")
		s = a[1]
		if (a[2] == "begin") began[s] = 1
		else if (a[2] == "skipped") skipped[s] = 1
		else if (a[2] == "end") { sub(/^status=/, "", a[3]); ended[s] = a[3] }
	}
	if (match(line, /^GNTSOCK-RIG-HOST: qemu exit status /)) qemu = substr(line, RLENGTH + 1)
	if (line ~ /^GNTSOCK-RIG-HOST: QEMU killed/) killed = 1
}
END {
	# (i) positive marker.
	rig(complete ? "pass" : "fail", "plan completed (GNTSOCK-RIG-COMPLETE)")
	# (ii) splats anywhere.
	if (nbad == 0) rig("pass", "no Oops/WARNING/BUG/KASAN/GPF/panic/Call Trace in the log")
	else {
		rig("fail", "kernel or hypervisor splat in the log (" nbad " distinct lines)")
		for (i = 1; i <= nbad && i <= 60; i++) detail(bad[i])
	}
	# (iii) gntsock loaded in three domains.
	nok = 0; nsk = 0; failed_dom = ""
	for (i = 1; i <= nld; i++) {
		d = ldoms[i]
		if (loaded[d] == "ok") nok++
		else if (loaded[d] == "skipped") nsk++
		else failed_dom = failed_dom " " d
	}
	if (failed_dom != "") rig("fail", "gntsock.ko loaded in every domain (failed in" failed_dom ")")
	else if (nok >= 3) rig("pass", "gntsock.ko loaded in " nok " domains")
	else if (nok + nsk >= 3 && nok == 0) rig("skip", "gntsock.ko loaded in three domains (no module in the payload)")
	else rig("fail", "gntsock.ko loaded in three domains (only " nok " loaded, " nsk " skipped)")
	# (iv) every plan step ran to completion.
	n = split(steps, st, " ")
	for (i = 1; i <= n; i++) {
		s = st[i]
		if (s in skipped) rig("skip", "step " s " (not selected)")
		else if (!(s in began)) rig("fail", "step " s " never started")
		else if (!(s in ended)) rig("fail", "step " s " did not finish")
		else if (ended[s] != "0") rig("fail", "step " s " ended with status " ended[s])
		else rig("pass", "step " s " completed")
	}
	# (v) KTAP plans match their results.
	for (i = 1; i <= npre; i++) {
		p = order[i]
		if (!(p in plan)) continue
		c = (p in count) ? count[p] : 0
		if (c != plan[p]) rig("fail", "KTAP plan of " p "announced " plan[p] " tests, " c " reported")
	}
	# (vi) QEMU ended by the guest powering off.
	if (killed) rig("fail", "QEMU finished before the timeout")
	else if (qemu == "0") rig("pass", "QEMU exited cleanly")
	else if (qemu != "") rig("fail", "QEMU exited with status " qemu)
	if (ktap == 0) rig("fail", "at least one test ran")

	for (i = 1; i <= nres; i++) print out[i]
	line = (npass + 0) " passed, " (nfail + 0) " failed"
	if (nskip > 0) line = line ", " nskip " skipped"
	print line
	exit (nfail > 0 || ktap == 0) ? 1 : 0
}' >"$RESULTS" || rc=$?
cat "$RESULTS"
exit "$rc"
