// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock_xrt: attacks of a PV mapper, through its page tables.
 *
 * Design.  A PV guest writes its own page tables through Xen
 * (mmu_update, update_va_mapping, pinning and unpinning), and the grant
 * PTEs of revocable mappings live in them: every way the guest has of
 * changing, moving or freeing such a PTE is an attack on the revoke, which
 * finds the mapping by its PTE.  Each command below makes one such move
 * and answers the status of every step; "post" (xrt_check.c) then checks
 * what the guest can still reach.  Where the first version of the patch
 * went wrong, the comment says how.
 *
 *   pv-p1 DOM INDEX K MIRROR   one slot S, two revocable maps of G: first
 *                              read-only with one of our pinned L1 page
 *                              tables as replacement frame, then writable
 *                              with an ordinary page (MIRROR 1: the other
 *                              way round).  The second must fail
 *                              (GNTST_bad_virt_addr); the old patch let it
 *                              through and its revoke then wrote the L1's
 *                              frame into S *writable*, copying the flags
 *                              of whatever PTE was there: a writable
 *                              mapping of a live page table.  The mirror
 *                              order made it drop one type reference too
 *                              many (a hypervisor ASSERT on debug=y).
 *   pv-p2b DOM INDEX K         G not revocable-only: a plain map at Y and a
 *                              revocable one at X; unmap the plain handle
 *                              naming X: must fail (it would take the
 *                              revocable mapping's PTE), then unmap it at Y
 *   pv-p3a DOM INDEX K         revocable map at v1 (a PTE); a plain map of
 *                              another grant (the index page) by virtual
 *                              address v2; GNTTABOP_unmap_and_replace
 *                              (host_addr v2, new_addr v1): it would move
 *                              the revocable PTE to v2, out of the revoke's
 *                              reach: must fail
 *   pv-gone DOM INDEX K HOW    make a revocable mapping "gone": HOW 1 an
 *                              mmu_update over its PTE (with a mapping of
 *                              our own page), 2 a plain map into the same
 *                              PTE, 3 unpinning the stand-alone L1 page that
 *                              holds it and using it as an ordinary page.
 *                              The revoke must then drop the mapping (and
 *                              leave the PTE alone), the unmap must succeed
 *                              without touching the address
 *
 * A debug=y hypervisor answers the implicit unmap of HOW 1-3 (and of
 * pv-p1 on the old patch) with #GP; xrt_gp_begin() counts and swallows
 * it.  The rig runs HOW 1-3 in a throw-away domain all the same.
 */
#include <linux/mm.h>
#include <xen/xen.h>
#include <xen/page.h>
#include <xen/grant_table.h>
#include <asm/xen/hypercall.h>
#include <asm/xen/page.h>
#include <asm/pgtable.h>

#include "xrt.h"

#define XRT_P3D_ENTRY	5	/* the stand-alone L1 entry P3d maps at */
#define XRT_L1_DATA	0x41544144314c5458ULL	/* "XTL1DATA" */

static int xrt_pv_begin(const u32 *a, unsigned int nslots)
{
	if (!xen_pv_domain())
		return -EOPNOTSUPP;
	if (xrt_mctx)
		xrt_cmd_post(NULL, 0);
	return xrt_ctx_new(a[0], a[1], a[2], nslots);
}

/* P1: two revocable mappings at one PTE, one read-only over an L1 page. */
int xrt_cmd_pv_p1(const u32 *a, int n)
{
	struct xrt_ctx *c;
	struct page *l1, *r;
	s16 st1, st2;
	unsigned int gp;
	int s, l, rc;
	bool mirror = a[3];

	rc = xrt_pv_begin(a, 4);
	if (rc)
		return rc;
	c = xrt_mctx;
	l = xrt_l1_new();
	r = xrt_own_page();
	s = xrt_take_slot();
	if (l < 0 || !r || s < 0)
		return l < 0 ? l : -ENOMEM;
	l1 = c->l1[l].page;
	xrt_gp_begin();
	if (!mirror) {
		st1 = xrt_map_rev(s, c->refs[0], true, l1, NULL);
		st2 = xrt_map_rev(s, c->refs[0], false, r, NULL);
		/* Revoked, S maps the page table, read-only. */
		xrt_expect(s, c->l1[l].mfn, 0, false);
	} else {
		st1 = xrt_map_rev(s, c->refs[0], false, r, NULL);
		st2 = xrt_map_rev(s, c->refs[0], true, l1, NULL);
		xrt_expect_page(s, r, true);
	}
	gp = xrt_gp_end();
	xrt_result("mirror=%d map1=%d map2=%d gp=%u", mirror, st1, st2, gp);
	return 0;
}

/* P2b: a plain handle unmapped at a revocable mapping's PTE. */
int xrt_cmd_pv_p2b(const u32 *a, int n)
{
	struct xrt_ctx *c;
	struct xrt_map *mp, *mr;
	s16 stp, str, cross = XRT_NA, own = XRT_NA;
	struct page *r;
	int sy, sx, rc;

	rc = xrt_pv_begin(a, 4);
	if (rc)
		return rc;
	c = xrt_mctx;
	r = xrt_own_page();
	sy = xrt_take_slot();
	sx = xrt_take_slot();
	if (!r || sy < 0 || sx < 0)
		return -ENOMEM;
	stp = xrt_map_plain(sy, c->dom, c->refs[0], false, true, &mp);
	str = xrt_map_rev(sx, c->refs[0], false, r, &mr);
	if (mp && mr) {
		cross = xrt_unmap(mp, c->saddr[sx]);
		/* The plain one must go for the revoke to finish. */
		if (mp->mapped)
			own = xrt_unmap(mp, mp->host_addr);
	}
	xrt_expect_page(sx, r, true);
	xrt_result("plain=%d rev=%d cross_unmap=%d own_unmap=%d", stp, str,
		   cross, own);
	return 0;
}

/* P3a: GNTTABOP_unmap_and_replace stealing the revocable PTE. */
int xrt_cmd_pv_p3a(const u32 *a, int n)
{
	struct gnttab_map_grant_ref op = {
		.flags = GNTMAP_host_map | GNTMAP_readonly,
	};
	struct gnttab_unmap_and_replace uar = { 0 };
	s16 str, stp = XRT_NA, rep = XRT_NA, own = XRT_NA;
	struct xrt_map *mr, *mp = NULL;
	struct xrt_ctx *c;
	struct page *r;
	int s1, s2, rc;

	rc = xrt_pv_begin(a, 4);
	if (rc)
		return rc;
	c = xrt_mctx;
	r = xrt_own_page();
	s1 = xrt_take_slot();
	s2 = xrt_take_slot();
	if (!r || s1 < 0 || s2 < 0)
		return -ENOMEM;
	str = xrt_map_rev(s1, c->refs[0], false, r, &mr);
	/* The index page, mapped the old way: by virtual address. */
	op.host_addr = (unsigned long)xrt_slot_va(s2);
	op.ref = c->index_ref;
	op.dom = c->dom;
	rc = HYPERVISOR_grant_table_op(GNTTABOP_map_grant_ref, &op, 1);
	stp = rc ? rc - 1000 : op.status;
	if (stp == GNTST_okay) {
		mp = xrt_new_map();
		if (!mp)
			return -ENOMEM;
		mp->kind = XRT_PLAIN_VA;
		mp->host_addr = op.host_addr;
		mp->handle = op.handle;
		mp->ref = op.ref;
		mp->dom = op.dom;
		mp->flags = op.flags;
		mp->slot = s2;
		mp->mapped = true;
	}
	if (mr && mp) {
		uar.host_addr = op.host_addr;
		uar.new_addr = (unsigned long)xrt_slot_va(s1);
		uar.handle = mp->handle;
		rc = HYPERVISOR_grant_table_op(GNTTABOP_unmap_and_replace,
					       &uar, 1);
		rep = rc ? rc - 1000 : uar.status;
		if (rep == GNTST_okay)
			mp->mapped = false;
		else
			own = xrt_unmap(mp, mp->host_addr);
	}
	xrt_expect_page(s1, r, true);
	xrt_result("rev=%d plain_va=%d replace=%d plain_unmap=%d", str, stp,
		   rep, own);
	return 0;
}

/*
 * Make @m gone the way @how says (1: mmu_update over its PTE, 2: a plain
 * map of the index page into it).  Returns the status of that step.
 */
int xrt_make_gone(struct xrt_map *m, int how)
{
	struct xrt_ctx *c = xrt_mctx;
	struct xrt_map *mp;
	struct page *p;
	s16 st;
	int rc;

	if (how == 1) {
		p = xrt_own_page();
		if (!p)
			return -ENOMEM;
		rc = xrt_mmu_update(m->host_addr,
				    mfn_pte(xrt_page_mfn(p), PAGE_KERNEL).pte);
		if (!rc) {
			m->gone = true;
			/* The revoke leaves our own mapping alone. */
			xrt_expect_page(m->slot, p, true);
		}
		return rc;
	}
	st = xrt_map_plain(m->slot, c->dom, c->index_ref, true, false, &mp);
	if (st == GNTST_okay) {
		m->gone = true;
		xrt_expect(m->slot, mp->gmfn, 0, false);
	}
	return st;
}

/* P3b, P3c, P3d (and P5): a revocable mapping the mapper made gone. */
int xrt_cmd_pv_gone(const u32 *a, int n)
{
	struct xrt_ctx *c;
	struct xrt_map *m = NULL;
	struct page *r;
	unsigned int how = a[3], gp;
	s16 st;
	int rc, gone = XRT_NA;

	if (how < 1 || how > 3)
		return -EINVAL;
	rc = xrt_pv_begin(a, 4);
	if (rc)
		return rc;
	c = xrt_mctx;
	r = xrt_own_page();
	if (!r)
		return -ENOMEM;
	if (how < 3) {
		int s = xrt_take_slot();

		if (s < 0)
			return -ENOMEM;
		st = xrt_map_rev(s, c->refs[0], false, r, &m);
	} else {
		struct gnttab_map_revocable op = {
			.replace_frame = xrt_page_mfn(r),
			.flags = GNTMAP_host_map | GNTMAP_contains_pte,
			.ref = c->refs[0],
			.dom = c->dom,
		};
		int l = xrt_l1_new();

		if (l < 0)
			return l;
		op.host_addr = PFN_PHYS((u64)c->l1[l].mfn) + XRT_P3D_ENTRY * 8;
		st = xrt_map_rev_raw(&op, -1, r, &m);
		if (m) {
			u64 pte = xrt_l1_entry(l, XRT_P3D_ENTRY);

			if (pte & _PAGE_PRESENT)
				m->gmfn = (pte & PTE_PFN_MASK) >> PAGE_SHIFT;
		}
	}
	xrt_gp_begin();
	if (m && how < 3) {
		gone = xrt_make_gone(m, how);
	} else if (m) {
		int l = c->nl1 - 1;

		/* Unpin the L1 with the grant PTE in it; reuse it as data. */
		gone = xrt_l1_unpin(l);
		if (!gone) {
			m->gone = true;
			c->l1[l].magic = XRT_L1_DATA;
			xrt_fill(page_address(c->l1[l].page), XRT_L1_DATA);
		}
	}
	gp = xrt_gp_end();
	xrt_result("how=%u map=%d gone=%d gp=%u", how, st, gone, gp);
	return 0;
}

/* The frames of our grant table (MFNs: Xen shares them with us). */
static unsigned long xrt_gnttab_frame(void)
{
	struct gnttab_query_size q = { .dom = DOMID_SELF };
	struct gnttab_setup_table t = { .dom = DOMID_SELF, .nr_frames = 1 };
	xen_pfn_t frame = 0;

	if (HYPERVISOR_grant_table_op(GNTTABOP_query_size, &q, 1) ||
	    q.status != GNTST_okay || !q.nr_frames)
		return 0;
	set_xen_guest_handle(t.frame_list, &frame);
	if (HYPERVISOR_grant_table_op(GNTTABOP_setup_table, &t, 1) ||
	    t.status != GNTST_okay)
		return 0;
	return frame;
}

/* P8, PV: flags, address and replacement frames a PV mapper can get wrong. */
int xrt_cmd_pv_p8(void)
{
	struct xrt_ctx *c = xrt_mctx;
	const u32 base = GNTMAP_host_map | GNTMAP_contains_pte;
	const u32 ro = base | GNTMAP_readonly;
	struct gnttab_map_revocable op;
	unsigned long gmfn = 0, gnt;
	struct xrt_map *m;
	struct page *r;
	s16 st;
	int s, l;

	if (xrt_op_prep(&op, &s, &r, GNTMAP_host_map, c->refs[0], c->dom))
		return -ENOMEM;
	xrt_append(" nopte=%d", xrt_map_rev_raw(&op, s, r, NULL));
	if (xrt_op_prep(&op, &s, &r, GNTMAP_contains_pte, c->refs[0], c->dom))
		return -ENOMEM;
	xrt_append(" nohost=%d", xrt_map_rev_raw(&op, s, r, NULL));
	if (xrt_op_prep(&op, &s, &r, base, c->refs[0], c->dom))
		return -ENOMEM;
	op.host_addr += 4;
	xrt_append(" misalign=%d", xrt_map_rev_raw(&op, s, r, NULL));

	/* Learn the granter's frame with a good mapping, then drop it. */
	if (xrt_op_prep(&op, &s, &r, ro, c->refs[0], c->dom))
		return -ENOMEM;
	st = xrt_map_rev_raw(&op, s, r, &m);
	if (m) {
		gmfn = m->gmfn;
		xrt_unmap(m, m->host_addr);
	}
	xrt_append(" learn=%d", st);
	/* PTEs in pages that are no L1 page table of ours. */
	if (xrt_op_prep(&op, &s, &r, base, c->refs[0], c->dom))
		return -ENOMEM;
	op.host_addr = PFN_PHYS((u64)xrt_page_mfn(r)) + 8;
	xrt_append(" nonpt=%d", xrt_map_rev_raw(&op, s, r, NULL));
	if (gmfn) {
		if (xrt_op_prep(&op, &s, &r, base, c->refs[0], c->dom))
			return -ENOMEM;
		op.host_addr = PFN_PHYS((u64)gmfn) + 8;
		xrt_append(" foreign_pte=%d", xrt_map_rev_raw(&op, s, r, NULL));
	}
	if (gmfn) {
		if (xrt_op_prep(&op, &s, &r, base, c->refs[0], c->dom))
			return -ENOMEM;
		op.replace_frame = gmfn;
		xrt_append(" repl_granter=%d",
			   xrt_map_rev_raw(&op, s, NULL, NULL));
	}
	if (xrt_op_prep(&op, &s, &r, ro, c->refs[0], c->dom))
		return -ENOMEM;
	op.replace_frame = 0;
	xrt_append(" repl_mfn0=%d", xrt_map_rev_raw(&op, s, NULL, NULL));
	if (xrt_op_prep(&op, &s, &r, base, c->refs[0], c->dom))
		return -ENOMEM;
	op.replace_frame = xen_start_info->shared_info >> PAGE_SHIFT;
	xrt_append(" repl_shinfo=%d", xrt_map_rev_raw(&op, s, NULL, NULL));
	gnt = xrt_gnttab_frame();
	if (gnt) {
		if (xrt_op_prep(&op, &s, &r, base, c->refs[0], c->dom))
			return -ENOMEM;
		op.replace_frame = gnt;
		xrt_append(" repl_gnttab=%d",
			   xrt_map_rev_raw(&op, s, NULL, NULL));
	}
	l = xrt_l1_new();
	if (l >= 0) {
		if (xrt_op_prep(&op, &s, &r, base, c->refs[0], c->dom))
			return -ENOMEM;
		op.replace_frame = c->l1[l].mfn;
		xrt_append(" repl_pt_rw=%d",
			   xrt_map_rev_raw(&op, s, c->l1[l].page, NULL));
	}
	return 0;
}
