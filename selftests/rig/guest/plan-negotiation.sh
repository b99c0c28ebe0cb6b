# shellcheck shell=sh
# The rig step "negotiation", sourced by dom0-plan.sh after its helpers (say, scaled,
# link_state, domu_cmd, $D1, $GBIN). POSIX sh (dom0: dash).
#
# Per-link negotiation in the IOMMU case: a PV dom0 whose grant maps need IOMMU mappings
# cannot map grants revocably (Xen refuses it GNTTABOP_map_revocable), says so on its links
# (xenstore feature-revocable-map = 0), and must get plain grants that it maps plainly rather
# than failing. dom0 plays that part here (module parameter revocable_map=0), its link to
# domU1 reconnects, and domU1 runs the grant tests that exercise the difference against dom0.
# Each test decides by the link what to expect: on the patched hypervisor the same tests
# expect forced revokes towards a peer that maps revocably, quarantine here. Then dom0 says
# "auto" again and the link reconnects. Results: "[dom0 negotiation]" and the domU's
# "[dN->dom0 plain-receiver grant]" KTAP lines.

NEG_TESTS=writable_round_trip,readonly_enforced,revoke_while_mapped,revoke_while_unmapped
NEG_TESTS=$NEG_TESTS,quarantine_then_reclaim,forced_revoke_reclaims
NEG_TESTS=$NEG_TESTS,plain_map_of_revocable_only_fails,counters_idle
NEG_PARAM=/sys/module/gntsock/parameters/revocable_map
NEG_T=0

neg_ok() { # neg_ok NAME STATUS [DETAIL]
	NEG_T=$((NEG_T + 1))
	if [ "$2" -eq 0 ]; then
		printf '[dom0 negotiation] ok %d %s\n' "$NEG_T" "$1"
	else
		printf '[dom0 negotiation] not ok %d %s # %s\n' "$NEG_T" "$1" "${3:-}"
	fi
}

# Column $2 (by the header's names) of dom0's line for its link to domid $1.
neg_field() {
	awk -v p="$1" -v c="$2" '
		NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next }
		$1 == p && k { print $k; exit }' /proc/net/gntsock_links 2>/dev/null
}

# A counter of dom0's /proc/net/gntsock_grants.
neg_counter() {
	awk -v k="$1" '$1 == k { print $2; exit }' /proc/net/gntsock_grants 2>/dev/null
}

# Remove dom0's link to domid $1 and add it again; wait until it is connected.
neg_relink() {
	"$GBIN/gntsock-link" del 0 "$1" >/dev/null 2>&1
	"$GBIN/gntsock-link" add 0 "$1" >/dev/null 2>&1 || return 1
	_end=$(($(date +%s) + $(scaled 60)))
	while [ "$(link_state "$1")" != connected ]; do
		[ "$(date +%s)" -lt "$_end" ] || return 1
		sleep 1
	done
	# The frontend (domU) connects right after us.
	sleep "$(scaled 2)"
	return 0
}

s_negotiation() {
	[ -n "$D1" ] || { say "no domU1"; return 1; }
	printf '[dom0 negotiation] 1..6\n'
	echo 0 >"$NEG_PARAM"
	_v=$(cat "$NEG_PARAM" 2>&1)
	[ "$_v" = 0 ]
	neg_ok dom0_revocable_map_set_to_0 $? "revocable_map '$_v'"
	neg_relink "$D1"
	neg_ok dom0_link_to_domU1_reconnects $? "$(cat /proc/net/gntsock_links)"
	_v=$(neg_field "$D1" revocable_map)
	[ "$_v" = 0 ]
	neg_ok dom0_tells_domU1_it_maps_plainly $? "revocable_map '$_v'"
	_m0=$(neg_counter mapped_plain)
	domu_cmd "$D1" shell ". /opt/gntsock/rig/rig-lib.sh; run_ktap '[d$D1->dom0 plain-receiver grant]' env GNTSOCK_PEER_DOMID=0 GNTSOCK_GRANT_TESTS=$NEG_TESTS $GBIN/gntsock_grant_test; cat /proc/net/gntsock_grants"
	_m1=$(neg_counter mapped_plain)
	[ -n "$_m0" ] && [ -n "$_m1" ] && [ "$_m1" -gt "$_m0" ]
	neg_ok dom0_mapped_domU1_grants_plainly $? "mapped_plain '$_m0' -> '$_m1'"
	sed 's/^/dom0 grant counters: /' /proc/net/gntsock_grants
	echo auto >"$NEG_PARAM"
	neg_relink "$D1"
	neg_ok dom0_link_to_domU1_reconnects_with_auto $? "$(cat /proc/net/gntsock_links)"
	_v=$(neg_field "$D1" revocable_map)
	_w=$(neg_counter xen_map_revocable)
	[ -n "$_v" ] && [ "$_v" = "$_w" ]
	neg_ok dom0_tells_domU1_what_xen_allows_again $? "revocable_map '$_v', xen_map_revocable '$_w'"
	return 0
}
