#!/bin/bash
# report.sh [SERIAL_LOG]: turn the rig's serial log into results.
#  - every prefixed KTAP result line ("[dom0->d1] ok 1 name", "[domU1] [d1->d2] not ok 3 x")
#    is a result of its own ("# SKIP" = skipped);
#  - rig checks, as "[rig] ok|not ok N ...": the positive marker GNTSOCK-RIG-COMPLETE, no kernel
#    or hypervisor splat anywhere in the log, gntsock loaded in three domains, every plan step
#    completed (a detail line gives each step's seconds), every KTAP plan ("1..N") matched by
#    N results, QEMU exited cleanly;
#  - one "[rig] not ok" per kernel or hypervisor report (a WARN, BUG, Oops, panic, KASAN,
#    KFENCE, UBSAN, lockdep, debug-objects, hung-task or kmemleak report, a Xen assertion),
#    named by its first line and the domain, with its first lines as details; a report seen
#    twice (live and in a dmesg dump) counts once.
# Writes results.txt next to the log, prints every result, then "N passed, N failed, N skipped".
# Exits 1 if anything failed or no test ran.
# GNTSOCK_RIG_ALLOW: extra regular expression (ERE) of log lines the splat check ignores.
set -eu
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

LOG=${1:-$RIG_OUT/serial.log}
[ -f "$LOG" ] || rig_die "no serial log at $LOG"
RESULTS=$(dirname "$LOG")/results.txt
STEPS="load loop create link demo dom0 domu grant negotiation reload perf bench destroy revoke sockfuzz pvh attack attack-pvh hostile"
# Known-benign lines that contain a splat keyword (Xen's boot banner under QEMU TCG).
ALLOW='\(XEN\) WARNING: (SILO mode|Console output is synchronous)'
[ -n "${GNTSOCK_RIG_ALLOW:-}" ] && ALLOW="$ALLOW|$GNTSOCK_RIG_ALLOW"

# The first line of a kernel or hypervisor report (the debug kernel's checkers included).
HEAD='BUG: |WARNING: |UBSAN: |Oops|general protection|Kernel panic|blocked for more than [0-9]+ seconds|INFO: trying to register non-static key|unreferenced object 0x|ODEBUG: |Assertion .* failed|Xen BUG at|CHECKLOCK|FATAL TRAP'

rc=0
tr -d '\r' <"$LOG" | awk -v steps="$STEPS" -v allow="$ALLOW" -v head="$HEAD" '
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
# Where a console line comes from: a domU (relayed behind "[domUN] "), Xen, or dom0.
function source_of(l) {
	if (match(l, /^\[domU[^]]*\] /)) return substr(l, 2, RLENGTH - 3)
	if (l ~ /^\(XEN\)/) return "xen"
	return "dom0"
}
function bare(l) {
	sub(/^\[domU[^]]*\] /, "", l)
	sub(/^\[ *[0-9]+\.[0-9]+\] /, "", l)
	return l
}
# Reports: rhead[i] (first line), rsrc[i], rbody[i, 1..rn[i]] (the next lines of the same
# source), rtimes[i]; open[src] is the report of src still collecting lines.
function report_start(src, first,   key) {
	key = src SUBSEP bare(first)
	# Seen before (a dmesg dump repeats what was live): counted, its lines skipped.
	if (key in rseen) { rtimes[rseen[key]]++; open[src] = -1; return }
	nrep++
	rseen[key] = nrep
	rsrc[nrep] = src
	rhead[nrep] = bare(first)
	rn[nrep] = 0
	rtimes[nrep] = 1
	open[src] = nrep
}
{
	line = $0
	src = source_of(line)
	# dom0 provokes a known report between markers (the debug kernel KASAN probe):
	# it must be there, and is not a failure.
	if (line ~ /^GNTSOCK-RIG: expected report begin /) { expname = $NF; expect[expname] = 0; next }
	if (line ~ /^GNTSOCK-RIG: expected report end /) { expname = ""; open["dom0"] = 0; next }
	if (expname != "" && src == "dom0") {
		if (expname == "kasan_probe" && line ~ /BUG: KASAN: slab-out-of-bounds in kasan_probe_init/)
			expect[expname] = 1
		next
	}
	if (bare(line) !~ /^GNTSOCK-RIG/) {
		if (open[src] != 0) {
			# A report runs to the end of its stack dump: its own Call Trace
			# is not a report of its own; the first 12 lines are kept.
			r = open[src]
			if (r > 0 && rn[r] < 12) rbody[r, ++rn[r]] = bare(line)
			if (line ~ /<\/TASK>|---\[ end trace/) open[src] = 0
		}
		if (line ~ head && line !~ allow)
			report_start(src, line)
		else if (line ~ /Call Trace/ && open[src] == 0 && line !~ allow && (src in prev)) {
			# A stack dump without a report line of its own: the line before names it.
			report_start(src, prev[src])
			rbody[nrep, ++rn[nrep]] = bare(line)
		}
		prev[src] = line
	}
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
	if (line ~ /Oops|WARNING:|BUG:|KASAN|UBSAN:|general protection|Kernel panic|Call Trace|blocked for more than|INFO: trying to register non-static key|unreferenced object 0x|ODEBUG:|Assertion .* failed|Xen BUG at|CHECKLOCK|FATAL TRAP/ &&
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
		else if (a[2] == "end") {
			sub(/^status=/, "", a[3])
			ended[s] = a[3]
			if (a[4] ~ /^\([0-9]+$/) secs[s] = substr(a[4], 2)
		}
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
	# (ii a) the reports provoked on purpose were made.
	for (e in expect)
		rig(expect[e] ? "pass" : "fail", "debug kernel reported the known bug of " e)
	# (ii b) each report on its own, with its first lines.
	for (i = 1; i <= nrep && i <= 30; i++) {
		rig("fail", "report in " rsrc[i] ": " rhead[i] (rtimes[i] > 1 ? " (seen " rtimes[i] " times)" : ""))
		for (j = 1; j <= rn[i]; j++) detail(rbody[i, j])
	}
	if (nrep > 30) rig("fail", (nrep - 30) " more reports (see the serial log)")
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
		if (s in secs) times = times (times == "" ? "" : ", ") s " " secs[s] " s"
	}
	if (times != "") detail("step times: " times)
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
