// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock_xrt: attacks on the forced revoke that any mapper can make, PV
 * or auto-translated (PVH, HVM).
 *
 * Design.  Each command performs one attack from this (mapper) domain with
 * raw grant-table hypercalls, on the grants the granter listed in its
 * index page, and answers one line with the status of every step.  It
 * leaves its mappings in the context (xrt_check.c) for the granter's
 * reclaim and for "post", which checks what the mapper can still reach and
 * unmaps.  Addresses are slots: a PTE (PV) or a guest frame (translated),
 * so the same attack runs on both kinds of mapper.  The rig (dom0-plan.sh,
 * step "attack" and "attack-pvh") drives the sequence and judges the
 * answers; Documentation/testing.rst lists what each attack proves.
 *
 *   p2 DOM INDEX K             map G twice revocably (slots S1, S2), then
 *                              unmap handle 1 naming S2: must be refused
 *   p4map DOM INDEX K          map each G revocably (before a revoke with
 *                              END_ACCESS that leaves the end to Xen)
 *   p4remap                    after it: revocable map, plain map and copy
 *                              of each G: all must fail
 *   p4b-start DOM INDEX K MODE threads on every vCPU map/unmap G (MODE 0)
 *                              or copy from it (1) in a loop
 *   p4b-mark, p4b-stop         successes after the mark must be none
 *   cap DOM INDEX K CAP        read-only revocable maps, round robin over
 *                              the K grants, until one fails: must be
 *                              GNTST_no_space after CAP - (ours still
 *                              held) maps
 *   many DOM INDEX K N         N mappings of one grant (read-only while
 *                              Xen's pin counter allows, then writable),
 *                              for one revoke of them all
 *   p8 DOM INDEX K SELF        misuse of the interface: every refused
 *                              input, with its status
 *   p10 DOM INDEX K            three mappings: one to stay live, one for
 *                              the granter to revoke, one made gone (PV:
 *                              now, by an mmu_update over its PTE;
 *                              translated: only a revoked mapping can be,
 *                              by "hvm-act 2 2" after the revoke), in a
 *                              domain that is about to be destroyed
 *   gdprobe                    a map with bad flags, for which a debug=y
 *                              Xen logs "Bad flags in grant map op"
 */
#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <xen/xen.h>
#include <xen/page.h>
#include <xen/grant_table.h>
#include <asm/xen/hypercall.h>

#include "xrt.h"

#define XRT_P4B_THREADS		8
#define XRT_GDPROBE_FLAGS	0x5a000000U

/*
 * A new context for an attack on (DOM, INDEX, K) = a[0..2] with @nslots
 * slots; a context the rig left behind (a step that failed half-way) is
 * cleaned up first.
 */
static int xrt_begin(const u32 *a, unsigned int nslots)
{
	if (xrt_mctx)
		xrt_cmd_post(NULL, 0);
	return xrt_ctx_new(a[0], a[1], a[2], nslots);
}

int xrt_cmd_gdprobe(const u32 *a, int n)
{
	struct gnttab_map_grant_ref op = {
		.flags = XRT_GDPROBE_FLAGS,
		.dom = DOMID_SELF,
	};
	int rc;

	rc = HYPERVISOR_grant_table_op(GNTTABOP_map_grant_ref, &op, 1);
	xrt_result("gdprobe=%d flags=%x", rc ? rc - 1000 : op.status,
		   XRT_GDPROBE_FLAGS);
	return 0;
}

/* P2: cross-unmap, one revocable mapping naming another's address. */
int xrt_cmd_p2(const u32 *a, int n)
{
	struct xrt_ctx *c;
	struct xrt_map *m1, *m2;
	struct page *r1, *r2;
	s16 st1, st2, cross = XRT_NA;
	int s1, s2, rc;

	rc = xrt_begin(a, 4);
	if (rc)
		return rc;
	c = xrt_mctx;
	r1 = xrt_own_page();
	r2 = xrt_own_page();
	s1 = xrt_take_slot();
	s2 = xrt_take_slot();
	if (!r1 || !r2 || s1 < 0 || s2 < 0)
		return -ENOMEM;
	st1 = xrt_map_rev(s1, c->refs[0], false, r1, &m1);
	st2 = xrt_map_rev(s2, c->refs[0], false, r2, &m2);
	if (m1 && m2)
		cross = xrt_unmap(m1, c->saddr[s2]);
	/* Revoked, each slot shows its own replacement page. */
	xrt_expect_page(s1, r1, true);
	xrt_expect_page(s2, r2, true);
	xrt_result("map1=%d map2=%d cross_unmap=%d", st1, st2, cross);
	return 0;
}

/* P4: map every grant revocably, for a revoke that ends access. */
int xrt_cmd_p4map(const u32 *a, int n)
{
	struct xrt_ctx *c;
	unsigned int i, ok = 0;
	s16 first = GNTST_okay;
	int rc;

	rc = xrt_begin(a, 4 * a[2] + 4);
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

/* P4, after GNTST_okay with END_ACCESS: nothing may map or copy again. */
int xrt_cmd_p4remap(const u32 *a, int n)
{
	struct xrt_ctx *c = xrt_mctx;
	unsigned int i, rev_ok = 0, plain_ok = 0, copy_ok = 0;
	s16 rev[2] = { XRT_NA, XRT_NA }, plain[2] = { XRT_NA, XRT_NA };
	s16 copy[2] = { XRT_NA, XRT_NA };

	if (!c)
		return -EINVAL;
	for (i = 0; i < c->nrefs; i++) {
		struct page *r = xrt_own_page(), *dst = xrt_own_page();
		int s1 = xrt_take_slot(), s2 = xrt_take_slot();
		s16 st;

		if (!r || !dst || s1 < 0 || s2 < 0)
			return -ENOMEM;
		st = xrt_map_rev(s1, c->refs[i], true, r, NULL);
		rev_ok += st == GNTST_okay;
		if (i < 2)
			rev[i] = st;
		st = xrt_map_plain(s2, c->dom, c->refs[i], true, true, NULL);
		plain_ok += st == GNTST_okay;
		if (i < 2)
			plain[i] = st;
		st = xrt_copy_from(c->dom, c->refs[i], dst);
		copy_ok += st == GNTST_okay;
		if (i < 2)
			copy[i] = st;
	}
	xrt_result("n=%u remap_rev_ok=%u remap_plain_ok=%u copy_ok=%u",
		   c->nrefs, rev_ok, plain_ok, copy_ok);
	xrt_append(" rev0=%d rev1=%d plain0=%d plain1=%d copy0=%d copy1=%d",
		   rev[0], rev[1], plain[0], plain[1], copy[0], copy[1]);
	return 0;
}

/* P4b: map/unmap (or copy) loops on every vCPU against a revoke. */
static struct {
	struct task_struct *task[XRT_P4B_THREADS];
	unsigned int n, mode;
	bool after;
	atomic_t maps, maps_after, copies, copies_after, fails;
	atomic_t unmap_fail, saw_new;
} p4b;

struct xrt_p4b_arg {
	u64 host_addr;
	u64 repl;
	void *va;
	struct page *dst;
};

static struct xrt_p4b_arg p4b_arg[XRT_P4B_THREADS];

/*
 * After a refused map or copy: a debug=y hypervisor logs every refusal,
 * and a console flooded at full speed would drown the results.  A loop
 * that succeeds runs at full speed.
 */
static void xrt_p4b_pause(void)
{
	usleep_range(10000, 20000);
}

static int xrt_p4b_fn(void *data)
{
	struct xrt_p4b_arg *arg = data;
	struct xrt_ctx *c = xrt_mctx;
	bool translated = c->translated;
	domid_t dom = c->dom;
	grant_ref_t ref = c->refs[0];

	while (!kthread_should_stop()) {
		if (p4b.mode == 0) {
			struct gnttab_map_revocable op = {
				.host_addr = arg->host_addr,
				.replace_frame = arg->repl,
				.flags = GNTMAP_host_map |
					 (translated ? 0 : GNTMAP_contains_pte),
				.ref = ref,
				.dom = dom,
			};
			struct gnttab_unmap_grant_ref u = {
				.host_addr = arg->host_addr,
			};
			bool after = READ_ONCE(p4b.after);

			if (HYPERVISOR_grant_table_op(GNTTABOP_map_revocable,
						      &op, 1) ||
			    op.status != GNTST_okay) {
				atomic_inc(&p4b.fails);
				xrt_p4b_pause();
				continue;
			}
			atomic_inc(&p4b.maps);
			if (after)
				atomic_inc(&p4b.maps_after);
			if (READ_ONCE(*(u64 *)arg->va) == XRT_NEW_MAGIC)
				atomic_inc(&p4b.saw_new);
			u.handle = op.handle;
			if (HYPERVISOR_grant_table_op(GNTTABOP_unmap_grant_ref,
						      &u, 1) ||
			    u.status != GNTST_okay) {
				/* Keep everything: Xen may still use it. */
				atomic_inc(&p4b.unmap_fail);
				while (!kthread_should_stop())
					msleep(100);
				break;
			}
		} else {
			bool after = READ_ONCE(p4b.after);

			if (xrt_copy_from(dom, ref, arg->dst) == GNTST_okay) {
				atomic_inc(&p4b.copies);
				if (after)
					atomic_inc(&p4b.copies_after);
			} else {
				atomic_inc(&p4b.fails);
				xrt_p4b_pause();
				continue;
			}
		}
		cond_resched();
	}
	return 0;
}

int xrt_cmd_p4b_start(const u32 *a, int n)
{
	unsigned int i, nt = max(2U, min(num_online_cpus(),
					   (unsigned int)XRT_P4B_THREADS));
	struct xrt_ctx *c;
	int rc;

	if (p4b.n)
		return -EBUSY;
	rc = xrt_begin(a, nt + 1);
	if (rc)
		return rc;
	c = xrt_mctx;
	memset(&p4b, 0, sizeof(p4b));
	p4b.mode = a[3];
	for (i = 0; i < nt; i++) {
		struct page *r = xrt_own_page(), *dst = xrt_own_page();
		int s = xrt_take_slot();

		if (!r || !dst || s < 0)
			return -ENOMEM;
		p4b_arg[i].host_addr = c->saddr[s];
		p4b_arg[i].repl = xen_page_to_gfn(r);
		p4b_arg[i].va = xrt_slot_va(s);
		p4b_arg[i].dst = dst;
	}
	for (i = 0; i < nt; i++) {
		struct task_struct *t;

		t = kthread_create(xrt_p4b_fn, &p4b_arg[i], "xrt_p4b/%u", i);
		if (IS_ERR(t))
			break;
		get_task_struct(t);
		kthread_bind(t, i % num_online_cpus());
		p4b.task[i] = t;
		wake_up_process(t);
	}
	p4b.n = i;
	xrt_result("threads=%u cpus=%u mode=%u", p4b.n, num_online_cpus(),
		   p4b.mode);
	return 0;
}

int xrt_cmd_p4b_mark(const u32 *a, int n)
{
	WRITE_ONCE(p4b.after, true);
	xrt_result("maps=%d copies=%d", atomic_read(&p4b.maps),
		   atomic_read(&p4b.copies));
	return 0;
}

static void xrt_p4b_stop_all(void)
{
	unsigned int i;

	for (i = 0; i < p4b.n; i++) {
		kthread_stop(p4b.task[i]);
		put_task_struct(p4b.task[i]);
	}
	p4b.n = 0;
}

int xrt_cmd_p4b_stop(const u32 *a, int n)
{
	unsigned int nt = p4b.n;

	xrt_p4b_stop_all();
	xrt_result("threads=%u mode=%u maps=%d maps_after=%d", nt, p4b.mode,
		   atomic_read(&p4b.maps), atomic_read(&p4b.maps_after));
	xrt_append(" copies=%d copies_after=%d fails=%d unmap_fail=%d saw_new=%d",
		   atomic_read(&p4b.copies), atomic_read(&p4b.copies_after),
		   atomic_read(&p4b.fails), atomic_read(&p4b.unmap_fail),
		   atomic_read(&p4b.saw_new));
	/* A mapping a thread could not unmap stays: keep its pages. */
	if (atomic_read(&p4b.unmap_fail) && xrt_mctx)
		xrt_mctx->leak_slots = true;
	return 0;
}

/*
 * P7, the cap: read-only revocable maps round robin over the grants until
 * one fails.  Read-only mappings may share a replacement frame; if the
 * hypervisor wants one each, each gets its own.
 */
int xrt_cmd_cap(const u32 *a, int n)
{
	unsigned int cap = a[3], mapped = 0, before = xrt_leaked_live;
	struct xrt_ctx *c;
	struct page *shared;
	bool share = true;
	s16 st = XRT_NA;
	int rc;

	if (!cap || cap + 64 > XRT_MAX_SLOTS)
		return -EINVAL;
	rc = xrt_begin(a, cap + 64);
	if (rc)
		return rc;
	c = xrt_mctx;
	shared = xrt_own_page();
	if (!shared)
		return -ENOMEM;
	for (;;) {
		struct page *r = shared;
		int s = xrt_take_slot();

		if (s < 0)
			break;
		if (!share)
			r = xrt_own_page();
		if (!r)
			break;
		st = xrt_map_rev(s, c->refs[mapped % c->nrefs], true, r, NULL);
		if (st == GNTST_bad_page && share && mapped) {
			share = false;
			r = xrt_own_page();
			if (!r)
				break;
			st = xrt_map_rev(s, c->refs[mapped % c->nrefs], true, r,
					 NULL);
		}
		if (st != GNTST_okay)
			break;
		mapped++;
	}
	xrt_result("cap=%u mapped=%u stop_st=%d held_before=%u shared_repl=%d",
		   cap, mapped, st, before, share);
	return 0;
}

/* P7: N mappings of one grant, for one revoke of them all. */
int xrt_cmd_many(const u32 *a, int n)
{
	unsigned int want = a[3], ro = 0, rw = 0;
	s16 st, first_fail = GNTST_okay, stop = GNTST_okay;
	struct xrt_ctx *c;
	struct page *shared;
	bool readonly = true;
	int rc;

	if (!want || want > 1000)
		return -EINVAL;
	rc = xrt_begin(a, want + 8);
	if (rc)
		return rc;
	c = xrt_mctx;
	shared = xrt_own_page();
	if (!shared)
		return -ENOMEM;
	while (ro + rw < want) {
		int s = xrt_take_slot();
		struct page *r = readonly ? shared : xrt_own_page();

		if (s < 0 || !r)
			break;
		st = xrt_map_rev(s, c->refs[0], readonly, r, NULL);
		if (st == GNTST_okay) {
			if (readonly)
				ro++;
			else
				rw++;
			continue;
		}
		if (!readonly) {
			stop = st;
			break;
		}
		/* Xen's read-only pin counter is full: go on writable. */
		first_fail = st;
		readonly = false;
	}
	xrt_result("mapped=%u ro=%u rw=%u first_fail=%d stop_st=%d", ro + rw,
		   ro, rw, first_fail, stop);
	return 0;
}

/* P8, the part that is the same for every mapper; one case per key. */
static int xrt_p8_common(domid_t self)
{
	struct xrt_ctx *c = xrt_mctx;
	struct gnttab_map_revocable op;
	struct page *r, *own = xrt_own_page();
	u32 base = GNTMAP_host_map |
		   (c->translated ? 0 : GNTMAP_contains_pte);
	s16 st, rev = XRT_NA, unm = XRT_NA, flags_rev, flags_sro;
	struct xrt_map *m;
	grant_ref_t sref;
	int s, ref, ended;

	if (!own)
		return -ENOMEM;
	if (xrt_op_prep(&op, &s, &r, base | GNTMAP_device_map, c->refs[0],
			c->dom))
		return -ENOMEM;
	xrt_append(" dev=%d", xrt_map_rev_raw(&op, s, r, NULL));
	if (xrt_op_prep(&op, &s, &r, base, c->refs[0], c->dom))
		return -ENOMEM;
	op.options = 1;
	xrt_append(" opt=%d", xrt_map_rev_raw(&op, s, r, NULL));
	if (xrt_op_prep(&op, &s, &r, base, c->refs[0], c->dom))
		return -ENOMEM;
	op.pad = 1;
	xrt_append(" pad=%d", xrt_map_rev_raw(&op, s, r, NULL));
	if (xrt_op_prep(&op, &s, &r, base, 0xfffff, c->dom))
		return -ENOMEM;
	xrt_append(" badref=%d", xrt_map_rev_raw(&op, s, r, NULL));
	if (xrt_op_prep(&op, &s, &r, base, c->refs[0],
			DOMID_FIRST_RESERVED - 1))
		return -ENOMEM;
	xrt_append(" nodom=%d", xrt_map_rev_raw(&op, s, r, NULL));
	if (xrt_op_prep(&op, &s, &r, base, c->refs[0], c->dom))
		return -ENOMEM;
	op.replace_frame = 1ULL << 40;
	xrt_append(" repl_range=%d", xrt_map_rev_raw(&op, s, NULL, NULL));
	/* A handle unmapped twice: the second must find nothing. */
	if (xrt_op_prep(&op, &s, &r, base | GNTMAP_readonly, c->refs[0],
			c->dom))
		return -ENOMEM;
	st = xrt_map_rev_raw(&op, s, r, &m);
	if (m && xrt_unmap(m, m->host_addr) == GNTST_okay)
		st = xrt_unmap(m, m->host_addr);
	else
		st = XRT_NA;
	xrt_append(" double_unmap=%d", st);

	/* Our own grant, mapped by ourselves; then revoked by ourselves. */
	ref = gnttab_grant_foreign_access(self, xen_page_to_gfn(own), 0);
	if (ref < 0) {
		xrt_append(" self=%d", ref);
		return 0;
	}
	sref = ref;
	if (xrt_op_prep(&op, &s, &r, base, sref, self))
		return -ENOMEM;
	st = xrt_map_rev_raw(&op, s, r, &m);
	if (st == GNTST_okay) {
		rev = xrt_revoke_one(sref, GNTTAB_REVOKE_END_ACCESS, NULL);
		unm = xrt_unmap(m, m->host_addr);
	}
	flags_rev = xrt_revoke_one(sref, 0x8000, NULL);
	flags_sro = xrt_set_only(sref, self, xen_page_to_gfn(own), 0x8000);
	/* The first ABI took that as "set": take it off again. */
	if (flags_sro == GNTST_okay)
		xrt_set_only(sref, self, xen_page_to_gfn(own), 0);
	ended = gnttab_try_end_foreign_access(sref);
	if (!ended)
		c->leak_slots = true;	/* our page is still mapped */
	xrt_append(" self_map=%d self_revoke=%d self_unmap=%d self_end=%d",
		   st, rev, unm, ended);
	if (c->translated && st == GNTST_okay)
		xrt_own_lost(own);
	xrt_append(" revoke_badflags=%d sro_badflags=%d", flags_rev, flags_sro);
	return 0;
}

/* P8: p8 DOM INDEX K SELF (SELF: our own domid). */
int xrt_cmd_p8(const u32 *a, int n)
{
	int rc;

	rc = xrt_begin(a, 32);
	if (rc)
		return rc;
	xrt_result("p8");
	rc = xrt_p8_common(a[3]);
	if (rc)
		return rc;
	if (xrt_mctx->translated)
		return xrt_cmd_hvm_p8();
	return xrt_cmd_pv_p8();
}

/* P10: live, to be revoked, and gone mappings in a doomed domain. */
int xrt_cmd_p10(const u32 *a, int n)
{
	struct xrt_ctx *c;
	struct xrt_map *m[3] = { NULL };
	s16 st[3] = { XRT_NA, XRT_NA, XRT_NA };
	unsigned int i, gp;
	int rc, gone = XRT_NA;

	if (a[2] < 3)
		return -EINVAL;
	rc = xrt_begin(a, 8);
	if (rc)
		return rc;
	c = xrt_mctx;
	for (i = 0; i < 3; i++) {
		struct page *r = xrt_own_page();
		int s = xrt_take_slot();

		if (!r || s < 0)
			return -ENOMEM;
		st[i] = xrt_map_rev(s, c->refs[i], false, r, &m[i]);
	}
	xrt_gp_begin();
	if (m[2] && !c->translated)
		gone = xrt_make_gone(m[2], 1);
	gp = xrt_gp_end();
	xrt_result("map0=%d map1=%d map2=%d gone=%d gp=%u", st[0], st[1],
		   st[2], gone, gp);
	return 0;
}

void xrt_attack_exit(void)
{
	xrt_p4b_stop_all();
}
