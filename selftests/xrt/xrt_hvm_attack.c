// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock_xrt: attacks of an auto-translated (PVH, HVM) mapper, through
 * its p2m.
 *
 * Design.  A translated guest cannot write page tables that Xen trusts;
 * its revocable mappings are p2m entries at guest frames it chose, and
 * what it can do to them is what the memory hypercalls let it do to its
 * own physmap.  After a revoke, the p2m entry at the grant frame maps the
 * mapper's replacement page R, with a grant type until the unmap; R also
 * stays mapped at its own RAM frame.  Each command makes one move and
 * answers its status; "post" (xrt_check.c) reads what each frame shows.
 *
 *   hvm-p1 DOM INDEX K   two revocable maps of G at one guest frame, the
 *                        second must fail (GNTST_bad_virt_addr; on the old
 *                        patch the p2m code crashes the domain)
 *   hvm-map DOM INDEX K  one writable revocable mapping of each grant,
 *                        for hvm-act
 *   hvm-act ACT [I]      on the I-th of them (default the first):
 *                        1 XENMEM_decrease_reservation of the grant frame:
 *                          must fail once revoked (the old patch stripped
 *                          R's allocation while R stayed mapped at its RAM
 *                          frame, and the mapping could not be unmapped);
 *                        2 XENMEM_remove_from_physmap of the grant frame:
 *                          once revoked it works, the mapping is gone (the
 *                          unmap must succeed without touching it); before
 *                          the revoke Xen refuses it (-ENOENT: the frame
 *                          is the granter's, not the caller's), and the
 *                          mapping stays live, to be revoked as usual;
 *                        3 XENMEM_decrease_reservation of R's own RAM frame
 *                          after the revoke: allowed; the grant frame must
 *                          still show R, the unmap succeed, and the domain
 *                          be destroyed cleanly later (R's frame is given
 *                          back to us before R is freed)
 */
#include <linux/mm.h>
#include <xen/xen.h>
#include <xen/page.h>
#include <xen/grant_table.h>
#include <xen/interface/memory.h>
#include <asm/xen/hypercall.h>

#include "xrt.h"

static int xrt_hvm_begin(const u32 *a, unsigned int nslots)
{
	if (!xen_feature(XENFEAT_auto_translated_physmap))
		return -EOPNOTSUPP;
	if (xrt_mctx)
		xrt_cmd_post(NULL, 0);
	return xrt_ctx_new(a[0], a[1], a[2], nslots);
}

/* P1 at a guest frame: a second revocable map at the same address. */
int xrt_cmd_hvm_p1(const u32 *a, int n)
{
	struct xrt_ctx *c;
	struct page *r1, *r2;
	s16 st1, st2;
	int s, rc;

	rc = xrt_hvm_begin(a, 4);
	if (rc)
		return rc;
	c = xrt_mctx;
	r1 = xrt_own_page();
	r2 = xrt_own_page();
	s = xrt_take_slot();
	if (!r1 || !r2 || s < 0)
		return -ENOMEM;
	st1 = xrt_map_rev(s, c->refs[0], true, r1, NULL);
	st2 = xrt_map_rev(s, c->refs[0], false, r2, NULL);
	xrt_expect_page(s, r1, false);
	xrt_result("map1=%d map2=%d", st1, st2);
	return 0;
}

int xrt_cmd_hvm_map(const u32 *a, int n)
{
	struct xrt_ctx *c;
	unsigned int i, ok = 0;
	s16 first = GNTST_okay;
	int rc;

	rc = xrt_hvm_begin(a, a[2] + 4);
	if (rc)
		return rc;
	c = xrt_mctx;
	for (i = 0; i < c->nrefs; i++) {
		struct page *r = xrt_own_page();
		int s = xrt_take_slot();
		s16 st;

		if (!r || s < 0)
			return -ENOMEM;
		st = xrt_map_rev(s, c->refs[i], false, r, NULL);
		if (st == GNTST_okay)
			ok++;
		else if (first == GNTST_okay)
			first = st;
	}
	xrt_result("mapped=%u of=%u first_err=%d", ok, c->nrefs, first);
	return 0;
}

static long xrt_decrease(xen_pfn_t gfn)
{
	struct xen_memory_reservation r = {
		.nr_extents = 1,
		.domid = DOMID_SELF,
	};

	set_xen_guest_handle(r.extent_start, &gfn);
	return HYPERVISOR_memory_op(XENMEM_decrease_reservation, &r);
}

/* Take @m's grant frame out of our physmap: the mapping is gone. */
int xrt_hvm_remove(struct xrt_map *m)
{
	struct xen_remove_from_physmap x = {
		.domid = DOMID_SELF,
		.gpfn = m->host_addr >> PAGE_SHIFT,
	};
	int rc;

	rc = HYPERVISOR_memory_op(XENMEM_remove_from_physmap, &x);
	if (!rc)
		m->gone = true;
	return rc;
}

int xrt_cmd_hvm_act(const u32 *a, int n)
{
	struct xrt_ctx *c = xrt_mctx;
	struct xrt_map *m;
	long rc;

	if (!c || !c->translated || (n > 1 && a[1] >= c->nmaps) || !c->nmaps)
		return -EINVAL;
	m = &c->maps[n > 1 ? a[1] : 0];
	switch (a[0]) {
	case 1:
		rc = xrt_decrease(m->host_addr >> PAGE_SHIFT);
		/* One extent given back: the grant frame is a hole now. */
		if (rc == 1)
			m->gone = true;
		xrt_expect_page(m->slot, m->repl, true);
		break;
	case 2:
		rc = xrt_hvm_remove(m);
		break;
	case 3:
		rc = xrt_decrease(xen_page_to_gfn(m->repl));
		if (rc == 1)
			xrt_own_gone(m->repl);
		/* The grant frame still shows R. */
		xrt_expect_page(m->slot, m->repl, true);
		break;
	default:
		return -EINVAL;
	}
	xrt_result("act=%u rc=%ld", a[0], rc);
	return 0;
}

/* The first frame of our grant table, as a guest frame. */
static unsigned long xrt_gnttab_gfn(void)
{
	struct gnttab_setup_table t = { .dom = DOMID_SELF, .nr_frames = 1 };
	xen_pfn_t frame = 0;

	set_xen_guest_handle(t.frame_list, &frame);
	if (HYPERVISOR_grant_table_op(GNTTABOP_setup_table, &t, 1) ||
	    t.status != GNTST_okay)
		return 0;
	return frame;
}

/* P8, translated: flags and replacement frames a translated mapper can
 * get wrong.
 */
int xrt_cmd_hvm_p8(void)
{
	struct xrt_ctx *c = xrt_mctx;
	struct gnttab_map_revocable op;
	struct page *r;
	struct xrt_map *m;
	unsigned long gnt;
	s16 st;
	int s, sg;

	if (xrt_op_prep(&op, &s, &r, GNTMAP_host_map | GNTMAP_contains_pte,
			c->refs[0], c->dom))
		return -ENOMEM;
	xrt_append(" cpte=%d", xrt_map_rev_raw(&op, s, r, NULL));
	if (xrt_op_prep(&op, &s, &r, GNTMAP_host_map | GNTMAP_application_map,
			c->refs[0], c->dom))
		return -ENOMEM;
	xrt_append(" appmap=%d", xrt_map_rev_raw(&op, s, r, NULL));
	if (xrt_op_prep(&op, &s, &r, GNTMAP_host_map, c->refs[0], c->dom))
		return -ENOMEM;
	op.host_addr += 4;
	xrt_append(" misalign=%d", xrt_map_rev_raw(&op, s, r, NULL));
	/* A frame with nothing behind it (an unused slot). */
	sg = xrt_take_slot();
	if (sg < 0 ||
	    xrt_op_prep(&op, &s, &r, GNTMAP_host_map, c->refs[0], c->dom))
		return -ENOMEM;
	op.replace_frame = c->saddr[sg] >> PAGE_SHIFT;
	xrt_append(" repl_hole=%d", xrt_map_rev_raw(&op, s, NULL, NULL));
	/* A frame that holds a grant mapping, not RAM. */
	if (xrt_op_prep(&op, &s, &r, GNTMAP_host_map | GNTMAP_readonly,
			c->refs[0], c->dom))
		return -ENOMEM;
	sg = s;
	st = xrt_map_rev_raw(&op, s, r, &m);
	xrt_append(" learn=%d", st);
	if (m) {
		if (xrt_op_prep(&op, &s, &r, GNTMAP_host_map, c->refs[0],
				c->dom))
			return -ENOMEM;
		op.replace_frame = c->saddr[sg] >> PAGE_SHIFT;
		xrt_append(" repl_grant=%d",
			   xrt_map_rev_raw(&op, s, NULL, NULL));
	}
	gnt = xrt_gnttab_gfn();
	if (gnt) {
		if (xrt_op_prep(&op, &s, &r, GNTMAP_host_map, c->refs[0],
				c->dom))
			return -ENOMEM;
		op.replace_frame = gnt;
		xrt_append(" repl_gnttab=%d",
			   xrt_map_rev_raw(&op, s, NULL, NULL));
	}
	return 0;
}
