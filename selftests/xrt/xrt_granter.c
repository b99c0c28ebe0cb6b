// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock_xrt: the granter's side of the attack tests.
 *
 * Design.  The granter hands the mapper up to XRT_ATK_MAX pages
 * ("agrant"), each filled with XRT_OLD_MAGIC, each behind its own grant
 * reference, optionally marked revocable-only, plus a read-only index page
 * listing the references (a plain grant: the attacks also use it as "some
 * other grant").  After the attack it takes them back ("areclaim") the
 * way a granter facing a hostile mapper must: GNTTABOP_revoke with
 * GNTTAB_REVOKE_END_ACCESS, one entry per call, retried for a bounded time
 * (100 rounds, 100 ms apart), then its own end of access; a page is
 * reclaimed only when both succeeded.  It then writes XRT_NEW_MAGIC over
 * every page, which the mapper must never read.  "acheck" makes sure that
 * nothing the mapper did afterwards reached the reclaimed pages (they
 * still hold XRT_NEW_MAGIC), that Xen holds no type reference on them
 * (each can be pinned as an L1 page table: a writable type reference left
 * behind would refuse that), and releases them; a page it could not
 * reclaim is leaked rather than reused.
 *
 * Compatibility with the first version of the ABI (the "old" patch):
 * GNTTABOP_revoke and GNTTABOP_set_revocable_only are issued one entry per
 * call, the only layout both versions share; the mark is first set before
 * the entry is written (the new semantics: no plain mapping can ever be
 * made) and, where that is refused (the old patch binds the mark to an
 * entry that already grants access), after it.  xrt_abi() tells the two
 * apart with a revoke carrying an unknown flag: the new ABI refuses it,
 * the old one ignores the field.
 */
#include <linux/delay.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <xen/xen.h>
#include <xen/page.h>
#include <xen/grant_table.h>
#include <asm/xen/hypercall.h>

#include "xrt.h"

#define XRT_RECLAIM_ROUNDS	100
#define XRT_RECLAIM_GAP_MS	100
#define XRT_REVOKE_BAD_FLAG	0x8000

struct xrt_gpage {
	struct page *page;
	grant_ref_t ref;
	int mark;		/* 0 none, 1 set before the entry, 2 after */
	bool granted;
	bool reclaimed;		/* access ended: ours again */
	bool revoked;		/* GNTST_okay seen (mode "Xen only") */
	bool keep;		/* a type reference left on it: never reuse */
};

static struct {
	domid_t peer;
	unsigned int n;
	struct xrt_gpage p[XRT_ATK_MAX];
	struct page *index;
	grant_ref_t index_ref;
	bool index_granted;
} ga;

static int xrt_abi_cached;

/*
 * Which version of the revocable-mapping ABI does the hypervisor speak?
 * 2: the current one, 1: the first one, 0: none (stock hypervisor).
 */
int xrt_abi(void)
{
	grant_ref_t head;
	int ref;
	s16 st;

	if (xrt_abi_cached)
		return xrt_abi_cached - 1;
	if (!gntsock_xen_revoke_supported()) {
		xrt_abi_cached = 1;
		return 0;
	}
	if (gnttab_alloc_grant_references(1, &head))
		return 2;	/* unknown: assume the current one, don't cache */
	ref = gnttab_claim_grant_reference(&head);
	/* An entry that grants nothing: nothing to revoke either way. */
	st = xrt_revoke_one(ref, XRT_REVOKE_BAD_FLAG, NULL);
	gnttab_free_grant_reference(ref);
	xrt_abi_cached = (st == GNTST_general_error ? 2 : 1) + 1;
	return xrt_abi_cached - 1;
}

/*
 * Revoke @n grants, in one call where the ABI allows (the current one, or
 * one entry), else one call per entry (the first ABI's struct is shorter).
 * Returns the first hypercall error, else 0; statuses in @status, @nr.
 */
int xrt_revoke_batch(const grant_ref_t *refs, unsigned int n, s16 *status,
		     u16 *nr)
{
	unsigned int i;
	int rc = 0;

	if (xrt_abi() == 1 && n > 1) {
		struct xrt_revoke_v1 *v1 = kvcalloc(n, sizeof(*v1), GFP_KERNEL);

		if (!v1)
			return -ENOMEM;
		for (i = 0; i < n; i++)
			v1[i].ref = refs[i];
		rc = HYPERVISOR_grant_table_op(GNTTABOP_revoke, v1, n);
		for (i = 0; i < n; i++) {
			status[i] = v1[i].status;
			nr[i] = v1[i].nr_revoked;
		}
		kvfree(v1);
	} else {
		struct gnttab_revoke *ops = kvcalloc(n, sizeof(*ops),
						     GFP_KERNEL);

		if (!ops)
			return -ENOMEM;
		for (i = 0; i < n; i++)
			ops[i].ref = refs[i];
		rc = HYPERVISOR_grant_table_op(GNTTABOP_revoke, ops, n);
		for (i = 0; i < n; i++) {
			status[i] = ops[i].status;
			nr[i] = ops[i].nr_revoked;
		}
		kvfree(ops);
	}
	return rc;
}

/*
 * Grant @page to @peer, marked revocable-only if @only: before the entry is
 * written if the hypervisor allows, else right after it.  *mark: 0 not
 * marked, 1 marked before, 2 marked after.
 */
int xrt_grant_marked(domid_t peer, struct page *page, bool ro, bool only,
		     grant_ref_t *ref, int *mark)
{
	unsigned long frame = xen_page_to_gfn(page);
	grant_ref_t head;
	int r;

	*mark = 0;
	if (gnttab_alloc_grant_references(1, &head))
		return -ENOSPC;
	r = gnttab_claim_grant_reference(&head);
	if (r < 0)
		return r;
	*ref = r;
	if (only && xrt_set_only(r, peer, frame, GNTTAB_REVOCABLE_ONLY_SET) ==
		    GNTST_okay)
		*mark = 1;
	gnttab_grant_foreign_access_ref(r, peer, frame, ro);
	if (only && !*mark &&
	    xrt_set_only(r, peer, frame, GNTTAB_REVOCABLE_ONLY_SET) ==
	    GNTST_okay)
		*mark = 2;
	return 0;
}

static void xrt_unmark(struct xrt_gpage *p)
{
	if (p->mark)
		xrt_set_only(p->ref, ga.peer, xen_page_to_gfn(p->page), 0);
	p->mark = 0;
}

/* End access ourselves; the reference is freed when that works. */
static bool xrt_end(struct xrt_gpage *p)
{
	if (!gnttab_try_end_foreign_access(p->ref))
		return false;
	/*
	 * The current ABI dropped the mark with the end of access; the first
	 * one keeps it, bound to this entry's peer and frame, until told.
	 */
	if (xrt_abi() == 1)
		xrt_unmark(p);
	p->mark = 0;
	p->reclaimed = true;
	return true;
}

static void xrt_granter_release(void)
{
	unsigned int i, leaked = 0;

	for (i = 0; i < ga.n; i++) {
		struct xrt_gpage *p = &ga.p[i];

		if (!p->page)
			continue;
		if ((p->granted && !p->reclaimed && !xrt_end(p)) || p->keep) {
			leaked++;	/* still mapped: never reuse it */
			continue;
		}
		__free_page(p->page);
	}
	if (ga.index_granted && !gnttab_try_end_foreign_access(ga.index_ref))
		leaked++;
	else if (ga.index)
		__free_page(ga.index);
	if (leaked)
		pr_warn("gntsock_xrt: %u granted pages still mapped: kept\n",
			leaked);
	memset(&ga, 0, sizeof(ga));
}

/* agrant PEER K FLAGS: bit 0 revocable-only, 1 read-only grants, 2 mark
 * only the even pages.
 */
int xrt_cmd_agrant(const u32 *a, int n)
{
	domid_t peer = a[0];
	unsigned int k = a[1], flags = a[2], i, marked = 0, before = 0;
	char refs[XRT_ATK_MAX * 6 + 1] = "";
	size_t len = 0;
	u32 *index;
	int rc, r;

	if (n != 3 || !k || k > XRT_ATK_MAX)
		return -EINVAL;
	xrt_granter_release();
	ga.peer = peer;
	ga.index = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!ga.index)
		return -ENOMEM;
	index = page_address(ga.index);
	for (i = 0; i < k; i++) {
		struct xrt_gpage *p = &ga.p[i];
		bool only = (flags & 1) && (!(flags & 4) || !(i & 1));

		p->page = alloc_page(GFP_KERNEL);
		if (!p->page) {
			rc = -ENOMEM;
			goto fail;
		}
		ga.n = i + 1;
		xrt_fill(page_address(p->page), XRT_OLD_MAGIC);
		rc = xrt_grant_marked(peer, p->page, flags & 2, only, &p->ref,
				      &p->mark);
		if (rc) {
			__free_page(p->page);
			p->page = NULL;
			goto fail;
		}
		p->granted = true;
		marked += !!p->mark;
		before += p->mark == 1;
		index[i] = p->ref;
		len += scnprintf(refs + len, sizeof(refs) - len, "%s%u",
				 i ? "," : "", p->ref);
	}
	r = gnttab_grant_foreign_access(peer, xen_page_to_gfn(ga.index), 1);
	if (r < 0) {
		rc = r;
		goto fail;
	}
	ga.index_ref = r;
	ga.index_granted = true;
	xrt_result("index=%u n=%u only=%u mark=%s abi=%d refs=%s", ga.index_ref,
		   k, marked, !marked ? "none" : before == marked ? "before" :
		   before ? "mixed" : "after", xrt_abi(), refs);
	return 0;
fail:
	xrt_granter_release();
	return rc;
}

static bool xrt_in_mask(u32 mask, unsigned int i)
{
	return !mask || (i < 32 && (mask & (1U << i)));
}

/*
 * areclaim MASK MODE: revoke with END_ACCESS the pages in MASK (0: all)
 * that are not reclaimed yet, for at most 100 rounds 100 ms apart; MODE
 * bit 0: stop at GNTST_okay and leave the end of access to Xen (no own
 * end of access).  Then XRT_NEW_MAGIC over those pages.
 */
int xrt_cmd_areclaim(const u32 *a, int n)
{
	u32 mask = n > 0 ? a[0] : 0, mode = n > 1 ? a[1] : 0;
	unsigned int i, round, pending, calls = 0, okay = 0, again = 0;
	unsigned int other = 0, end_fail = 0, nr_sum = 0, done = 0, want = 0;
	int last_other = 0, first_st = XRT_NA;
	u16 first_nr = 0;
	s64 first_us = -1;

	if (!ga.n)
		return -EINVAL;
	for (round = 0; round < XRT_RECLAIM_ROUNDS; round++) {
		pending = 0;
		for (i = 0; i < ga.n; i++) {
			struct xrt_gpage *p = &ga.p[i];
			ktime_t t0;
			s16 st;
			u16 nr;

			if (!xrt_in_mask(mask, i) || p->reclaimed ||
			    ((mode & 1) && p->revoked))
				continue;
			t0 = ktime_get();
			st = xrt_revoke_one(p->ref, GNTTAB_REVOKE_END_ACCESS,
					    &nr);
			if (first_us < 0) {
				first_us = ktime_us_delta(ktime_get(), t0);
				first_st = st;
				first_nr = nr;
			}
			calls++;
			nr_sum += nr;
			if (st == GNTST_okay) {
				okay++;
				p->revoked = true;
				if ((mode & 1) || xrt_end(p))
					continue;
				end_fail++;
			} else if (st == GNTST_eagain) {
				again++;
			} else {
				other++;
				last_other = st;
			}
			pending++;
		}
		if (!pending)
			break;
		msleep(XRT_RECLAIM_GAP_MS);
	}
	for (i = 0; i < ga.n; i++) {
		struct xrt_gpage *p = &ga.p[i];

		if (!xrt_in_mask(mask, i))
			continue;
		want++;
		done += (mode & 1) ? p->revoked : p->reclaimed;
		xrt_fill(page_address(p->page), XRT_NEW_MAGIC);
	}
	xrt_result("n=%u %s=%u rounds=%u calls=%u okay=%u eagain=%u", want,
		   (mode & 1) ? "revoked" : "reclaimed", done,
		   round + (round < XRT_RECLAIM_ROUNDS), calls, okay, again);
	xrt_append(" other=%u last_other=%d end_fail=%u nr_revoked=%u", other,
		   last_other, end_fail, nr_sum);
	xrt_append(" first_st=%d first_nr=%u first_us=%lld", first_st,
		   first_nr, first_us);
	return 0;
}

/* aend: end access ourselves (after a revoke that left it to Xen). */
int xrt_cmd_aend(const u32 *a, int n)
{
	unsigned int i, ended = 0, want = 0;

	for (i = 0; i < ga.n; i++) {
		struct xrt_gpage *p = &ga.p[i];

		if (p->reclaimed)
			continue;
		want++;
		ended += xrt_end(p);
	}
	xrt_result("n=%u ended=%u", want, ended);
	return 0;
}

/*
 * acheck: the reclaimed pages still hold XRT_NEW_MAGIC (no write of the
 * mapper arrived), carry no type reference (each can be pinned as an L1
 * page table), and go back to the allocator; pages not reclaimed get one
 * more try (the mapper has unmapped by now), else they are leaked.
 */
int xrt_cmd_acheck(const u32 *a, int n)
{
	unsigned int i, reclaimed = 0, intact = 0, late = 0, type_ok = 0;
	unsigned int unrecl_intact = 0, type_bad = 0;
	char bad[XRT_ATK_MAX * 4 + 1] = "";
	size_t len = 0;
	int type_rc = 0, rc;

	if (!ga.n)
		return -EINVAL;
	for (i = 0; i < ga.n; i++) {
		struct xrt_gpage *p = &ga.p[i];
		bool whole = xrt_count_u64(page_address(p->page),
					   XRT_NEW_MAGIC) == PAGE_SIZE / 8;

		if (!p->reclaimed) {
			unrecl_intact += whole;
			continue;
		}
		reclaimed++;
		intact += whole;
		if (!xen_pv_domain())
			continue;
		rc = xrt_pt_writable_type_test(p->page);
		if (!rc) {
			type_ok++;
		} else {
			if (!type_rc)
				type_rc = rc;
			p->keep = true;
			type_bad++;
			len += scnprintf(bad + len, sizeof(bad) - len, "%s%u",
					 type_bad > 1 ? "," : "", i);
		}
	}
	for (i = 0; i < ga.n; i++) {
		struct xrt_gpage *p = &ga.p[i];

		if (p->reclaimed)
			continue;
		if (xrt_revoke_one(p->ref, GNTTAB_REVOKE_END_ACCESS, NULL) ==
		    GNTST_okay && xrt_end(p))
			late++;
	}
	xrt_result("n=%u reclaimed=%u intact=%u unreclaimed_intact=%u late=%u",
		   ga.n, reclaimed, intact, unrecl_intact, late);
	xrt_append(" type_ok=%u type_bad=%u type_rc=%d bad_pages=%s", type_ok,
		   type_bad, type_rc, len ? bad : "none");
	xrt_granter_release();
	return 0;
}

void xrt_granter_exit(void)
{
	xrt_granter_release();
}
