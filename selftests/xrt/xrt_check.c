// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock_xrt: the mapper's mappings, slots, and the checks that follow an
 * attack.
 *
 * Design.  An attack runs in a context (struct xrt_ctx): the granter's
 * refs (read from its index page), a set of slots to map at, the records
 * of every mapping made, the mapper's own pages (replacement frames, pages
 * mapped by hand) and, for a PV mapper, stand-alone L1 page tables (pinned
 * pages that no page table points at).  The attack leaves the context
 * behind; after the granter has taken its pages back, "post" checks what
 * the mapper can still reach and tears the context down:
 *
 *  1. scan (PV): every slot's PTE and every entry of the stand-alone L1
 *     pages, read through read-only mappings: none may map a frame the
 *     granter granted for the attack (the mapper learnt those frames from
 *     its own PTEs right after each map), none may map a page-table page
 *     writable, and an L1 page used only as a replacement frame must still
 *     be all zeroes;
 *  2. expectations the attack registered: slot S maps page X (writable or
 *     not): where the revoke had to put the replacement frame, and where
 *     it had to leave alone what the mapper put there itself;
 *  3. read through every slot in use: none may show the pattern the
 *     granter wrote after its reclaim; then write the mapper's pattern
 *     through every writable slot (the granter checks that none arrived);
 *  4. unmap every mapping naming its own address, in the order they were
 *     made; a mapping the mapper "made gone" (changed or removed its PTE
 *     or p2m entry) must unmap without Xen touching that address: what it
 *     shows before and after the unmap must be the same.  If an unmap
 *     fails (only an old hypervisor's do), try the addresses where the
 *     frame now shows, as a cross-unmap would, to leave the domain usable;
 *     anything still mapped is leaked on purpose, with the pages it may
 *     reference.
 *
 * Slots.  PV: a vmap() of one zeroed filler page, many times over; its
 * PTEs are ordinary kernel L1 entries, pinned by Linux, with a virtual
 * address to read and write through; host_addr is an entry's machine
 * address (GNTMAP_contains_pte), as Linux's own xenbus does.  The area is
 * freed with vunmap() only when every entry is empty or maps one of our
 * own ordinary pages: clearing a grant PTE other than through the
 * grant-table interface is exactly one of the attacks.  Translated: one
 * unpopulated page per slot; host_addr is its guest physical address.
 *
 * A debug=y hypervisor injects #GP into a PV guest whose own page-table
 * update drops a grant PTE ("Attempt to implicitly unmap a granted PTE").
 * The attacks that do so on purpose announce it (xrt_gp_begin()); a die
 * notifier then swallows the fault the hypercall returns with and counts
 * it, as a malicious guest would, so that the guest lives on and the
 * checks still run.
 */
#include <linux/kdebug.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/sched.h>
#include <xen/xen.h>
#include <xen/features.h>
#include <xen/page.h>
#include <xen/grant_table.h>
#include <xen/interface/memory.h>
#include <asm/xen/hypercall.h>
#include <asm/xen/page.h>
#include <asm/pgtable.h>

#include "xrt.h"

struct xrt_ctx *xrt_mctx;
/* Revocable mappings this module could not unmap (they count in Xen). */
unsigned int xrt_leaked_live;

/* --- small helpers --- */

unsigned long xrt_page_mfn(struct page *page)
{
	return xen_page_to_gfn(page);
}

int xrt_mmu_update(u64 ptr, u64 val)
{
	struct mmu_update u = {
		.ptr = ptr | MMU_NORMAL_PT_UPDATE,
		.val = val,
	};

	return HYPERVISOR_mmu_update(&u, 1, NULL, DOMID_SELF);
}

int xrt_mmuext(unsigned int cmd, unsigned long mfn)
{
	struct mmuext_op op = { .cmd = cmd };

	op.arg1.mfn = mfn;
	return HYPERVISOR_mmuext_op(&op, 1, NULL, DOMID_SELF);
}

int xrt_tlb_flush_all(void)
{
	struct mmuext_op op = { .cmd = MMUEXT_TLB_FLUSH_ALL };

	if (!xen_pv_domain())
		return 0;
	return HYPERVISOR_mmuext_op(&op, 1, NULL, DOMID_SELF);
}

/* Make the direct mapping of @page read-only or writable again (PV). */
static int xrt_page_prot(struct page *page, bool ro)
{
	unsigned long va = (unsigned long)page_address(page);
	unsigned int level;
	pte_t *ptep = lookup_address(va, &level);
	pte_t pte;

	if (!ptep || level != PG_LEVEL_4K)
		return -EFAULT;
	pte = ro ? pte_wrprotect(*ptep) : pte_mkwrite(*ptep);
	return HYPERVISOR_update_va_mapping(va, pte, UVMF_INVLPG | UVMF_ALL);
}

/*
 * Can @page become an L1 page table?  Only if no writable type reference
 * is left on it: the check for a type-reference leak.  Zeroes the page.
 * Returns 0, or the error of the step that failed (the pin's: a leak).
 */
int xrt_pt_writable_type_test(struct page *page)
{
	int rc, rc2;

	clear_page(page_address(page));
	rc = xrt_page_prot(page, true);
	if (rc)
		return rc;
	rc = xrt_mmuext(MMUEXT_PIN_L1_TABLE, xrt_page_mfn(page));
	if (!rc)
		rc = xrt_mmuext(MMUEXT_UNPIN_TABLE, xrt_page_mfn(page));
	rc2 = xrt_page_prot(page, false);
	return rc ? rc : rc2;
}

s16 xrt_copy_from(domid_t dom, grant_ref_t ref, struct page *dst)
{
	struct gnttab_copy op = {
		.flags = GNTCOPY_source_gref,
		.len = 64,
	};
	int rc;

	op.source.u.ref = ref;
	op.source.domid = dom;
	op.dest.u.gmfn = xen_page_to_gfn(dst);
	op.dest.domid = DOMID_SELF;
	rc = HYPERVISOR_grant_table_op(GNTTABOP_copy, &op, 1);
	return rc ? rc - 1000 : op.status;
}

/* One entry per call: the only layout the first ABI version shares. */
s16 xrt_revoke_one(grant_ref_t ref, u16 flags, u16 *nr)
{
	struct gnttab_revoke op = { .ref = ref, .flags = flags };
	int rc;

	rc = HYPERVISOR_grant_table_op(GNTTABOP_revoke, &op, 1);
	if (nr)
		*nr = rc ? 0 : op.nr_revoked;
	return rc ? rc - 1000 : op.status;
}

s16 xrt_set_only(grant_ref_t ref, domid_t domid, unsigned long frame,
		 u16 flags)
{
	struct gnttab_set_revocable_only op = {
		.ref = ref,
		.flags = flags,
		.frame = frame,
		.domid = domid,
	};
	int rc;

	rc = HYPERVISOR_grant_table_op(GNTTABOP_set_revocable_only, &op, 1);
	return rc ? rc - 1000 : op.status;
}

/* --- the #GP of an implicit grant unmap --- */

static struct task_struct *xrt_gp_task;
static atomic_t xrt_gp_count;

static int xrt_die(struct notifier_block *nb, unsigned long val, void *data)
{
	struct die_args *args = data;

	if (val != DIE_GPF || READ_ONCE(xrt_gp_task) != current ||
	    user_mode(args->regs))
		return NOTIFY_DONE;
	/* A fault that keeps coming is not Xen's: let it oops. */
	if (atomic_inc_return(&xrt_gp_count) > 64)
		return NOTIFY_DONE;
	return NOTIFY_STOP;
}

static struct notifier_block xrt_die_nb = { .notifier_call = xrt_die };

void xrt_gp_begin(void)
{
	atomic_set(&xrt_gp_count, 0);
	WRITE_ONCE(xrt_gp_task, current);
}

unsigned int xrt_gp_end(void)
{
	WRITE_ONCE(xrt_gp_task, NULL);
	return atomic_read(&xrt_gp_count);
}

int xrt_gp_init(void)
{
	return register_die_notifier(&xrt_die_nb);
}

void xrt_gp_exit(void)
{
	unregister_die_notifier(&xrt_die_nb);
}

/* --- the context --- */

/* Which of the context's own pages @page is, or -1. */
static int xrt_own_index(const struct page *page)
{
	struct xrt_ctx *c = xrt_mctx;
	unsigned int i;

	for (i = 0; c && page && i < c->npages; i++)
		if (c->pages[i] == page)
			return i;
	return -1;
}

u64 xrt_own_magic(struct page *page)
{
	int i = xrt_own_index(page);

	return i < 0 ? 0 : XRT_OWN_MAGIC + i;
}

/* Our page @page has no RAM behind its GFN now: repopulate it before freeing. */
void xrt_own_gone(struct page *page)
{
	int i = xrt_own_index(page);

	if (i >= 0)
		xrt_mctx->page_gone[i] = true;
}

/* A page of our own, filled with its own pattern, freed with the context. */
struct page *xrt_own_page(void)
{
	struct xrt_ctx *c = xrt_mctx;
	struct page *page;

	if (c->npages >= c->maxpages)
		return NULL;
	page = alloc_page(GFP_KERNEL);
	if (!page)
		return NULL;
	c->pages[c->npages] = page;
	xrt_fill(page_address(page), XRT_OWN_MAGIC + c->npages);
	c->npages++;
	return page;
}

/*
 * A translated domain that maps a grant of its own page takes the page out
 * of its physmap: Xen's p2m_add_page() removes the page's RAM GFN (an alias
 * of the grant GFN) and puts nothing back at the unmap.  Linux would reuse
 * the page with nothing behind it (reads all ones, writes lost: a corrupt
 * page table or a lock that never comes free, far from here).  If @page
 * no longer reads back what we wrote, repopulate its GFN before freeing it.
 * Answers " own_intact=N" (N of 512 words as written).
 */
void xrt_own_lost(struct page *page)
{
	unsigned int n;

	n = xrt_count_u64(page_address(page), xrt_own_magic(page));
	xrt_append(" own_intact=%u", n);
	if (n != PAGE_SIZE / sizeof(u64))
		xrt_own_gone(page);
}

static void xrt_add_ptmfn(unsigned long mfn)
{
	struct xrt_ctx *c = xrt_mctx;
	unsigned int i;

	for (i = 0; i < c->nptmfn; i++)
		if (c->ptmfn[i] == mfn)
			return;
	if (c->nptmfn < ARRAY_SIZE(c->ptmfn))
		c->ptmfn[c->nptmfn++] = mfn;
}

static bool xrt_is_ptmfn(unsigned long mfn)
{
	struct xrt_ctx *c = xrt_mctx;
	unsigned int i;

	for (i = 0; i < c->nptmfn; i++)
		if (c->ptmfn[i] == mfn)
			return true;
	return false;
}

static int xrt_slots_pv(struct xrt_ctx *c)
{
	struct page **arr;
	unsigned int i, level;

	c->filler = alloc_page(GFP_KERNEL | __GFP_ZERO);
	arr = kvcalloc(c->nslots, sizeof(*arr), GFP_KERNEL);
	if (!c->filler || !arr) {
		kvfree(arr);
		return -ENOMEM;
	}
	for (i = 0; i < c->nslots; i++)
		arr[i] = c->filler;
	c->area = vmap(arr, c->nslots, VM_MAP, PAGE_KERNEL);
	kvfree(arr);
	if (!c->area)
		return -ENOMEM;
	for (i = 0; i < c->nslots; i++) {
		unsigned long va = (unsigned long)c->area + i * PAGE_SIZE;
		pte_t *ptep = lookup_address(va, &level);

		if (!ptep || level != PG_LEVEL_4K)
			return -EFAULT;
		c->sptep[i] = ptep;
		c->saddr[i] = arbitrary_virt_to_machine(ptep).maddr;
		xrt_add_ptmfn(c->saddr[i] >> PAGE_SHIFT);
	}
	return 0;
}

static int xrt_slots_hvm(struct xrt_ctx *c)
{
	unsigned int i;
	int rc;

	c->spages = kvcalloc(c->nslots, sizeof(*c->spages), GFP_KERNEL);
	if (!c->spages)
		return -ENOMEM;
	rc = xen_alloc_unpopulated_pages(c->nslots, c->spages);
	if (rc) {
		kvfree(c->spages);
		c->spages = NULL;
		return rc;
	}
	for (i = 0; i < c->nslots; i++)
		c->saddr[i] = PFN_PHYS((u64)xen_page_to_gfn(c->spages[i]));
	return 0;
}

/*
 * A fresh context for an attack on the grants of @dom listed in its index
 * page @index_ref (@nrefs of them), with @nslots slots.
 */
int xrt_ctx_new(domid_t dom, grant_ref_t index_ref, unsigned int nrefs,
		unsigned int nslots)
{
	struct xrt_ctx *c;
	int rc;

	if (xrt_mctx)
		return -EBUSY;
	if (!nrefs || nrefs > XRT_ATK_MAX || !nslots || nslots > XRT_MAX_SLOTS)
		return -EINVAL;
	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return -ENOMEM;
	xrt_mctx = c;
	c->dom = dom;
	c->index_ref = index_ref;
	c->nrefs = nrefs;
	c->nslots = nslots;
	c->translated = xen_feature(XENFEAT_auto_translated_physmap);
	c->maxpages = nslots + 64;
	c->maps = kvcalloc(nslots + 64, sizeof(*c->maps), GFP_KERNEL);
	c->pages = kvcalloc(c->maxpages, sizeof(*c->pages), GFP_KERNEL);
	c->page_gone = kvcalloc(c->maxpages, sizeof(*c->page_gone), GFP_KERNEL);
	c->saddr = kvcalloc(nslots, sizeof(*c->saddr), GFP_KERNEL);
	c->sptep = kvcalloc(nslots, sizeof(*c->sptep), GFP_KERNEL);
	if (!c->maps || !c->pages || !c->page_gone || !c->saddr || !c->sptep) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = xrt_read_index(dom, index_ref, nrefs, c->refs);
	if (rc)
		goto fail;
	if (c->translated)
		rc = xrt_slots_hvm(c);
	else if (xen_pv_domain())
		rc = xrt_slots_pv(c);
	else
		rc = -EOPNOTSUPP;
	if (rc)
		goto fail;
	return 0;
fail:
	xrt_ctx_free();
	return rc;
}

int xrt_take_slot(void)
{
	struct xrt_ctx *c = xrt_mctx;

	if (c->next_slot >= c->nslots)
		return -ENOSPC;
	return c->next_slot++;
}

void *xrt_slot_va(int slot)
{
	struct xrt_ctx *c = xrt_mctx;

	if (c->translated)
		return pfn_to_kaddr(page_to_pfn(c->spages[slot]));
	return c->area + slot * PAGE_SIZE;
}

u64 xrt_slot_pte(int slot)
{
	return READ_ONCE(xrt_mctx->sptep[slot]->pte);
}

static unsigned long xrt_pte_mfn(u64 pte)
{
	return (pte & PTE_PFN_MASK) >> PAGE_SHIFT;
}

struct xrt_map *xrt_new_map(void)
{
	struct xrt_ctx *c = xrt_mctx;

	if (c->nmaps >= c->nslots + 64)
		return NULL;
	return &c->maps[c->nmaps++];
}

static bool xrt_attack_ref(grant_ref_t ref)
{
	struct xrt_ctx *c = xrt_mctx;
	unsigned int i;

	for (i = 0; i < c->nrefs; i++)
		if (c->refs[i] == ref)
			return true;
	return false;
}

static void xrt_record(struct xrt_map *m, enum xrt_kind kind, u64 host_addr,
		       grant_handle_t handle, grant_ref_t ref, domid_t dom,
		       u32 flags, int slot, struct page *repl)
{
	m->kind = kind;
	m->host_addr = host_addr;
	m->handle = handle;
	m->ref = ref;
	m->dom = dom;
	m->flags = flags;
	m->slot = slot;
	m->repl = repl;
	m->mapped = true;
	m->attack_ref = xrt_attack_ref(ref) && dom == xrt_mctx->dom;
	/* PV: learn the granter's frame from the PTE Xen just wrote. */
	if (!xrt_mctx->translated && slot >= 0 && kind != XRT_PLAIN_VA) {
		u64 pte = xrt_slot_pte(slot);

		if (pte & _PAGE_PRESENT)
			m->gmfn = xrt_pte_mfn(pte);
	}
}

/* Map with a caller-built op (flags, options, frames as the test wants). */
s16 xrt_map_rev_raw(struct gnttab_map_revocable *op, int slot,
		    struct page *repl, struct xrt_map **out)
{
	struct xrt_map *m;
	int rc;

	if (out)
		*out = NULL;
	rc = HYPERVISOR_grant_table_op(GNTTABOP_map_revocable, op, 1);
	if (rc)
		return rc - 1000;
	if (op->status != GNTST_okay)
		return op->status;
	m = xrt_new_map();
	if (!m) {
		/* Out of records: keep it mapped for good. */
		xrt_leaked_live++;
		return op->status;
	}
	xrt_record(m, XRT_REV, op->host_addr, op->handle, op->ref, op->dom,
		   op->flags, slot, repl);
	if (out)
		*out = m;
	return GNTST_okay;
}

/*
 * A map op for one test case: a fresh slot in *@slot, a fresh replacement
 * page in *@repl (named in the op), @flags, (@dom, @ref).  A case the
 * hypervisor wrongly accepts then cannot make the next one fail for the
 * wrong reason (a writable mapping's replacement frame is its own).
 */
int xrt_op_prep(struct gnttab_map_revocable *op, int *slot, struct page **repl,
		u32 flags, grant_ref_t ref, domid_t dom)
{
	struct xrt_ctx *c = xrt_mctx;

	*slot = xrt_take_slot();
	*repl = xrt_own_page();
	if (*slot < 0 || !*repl)
		return -ENOMEM;
	memset(op, 0, sizeof(*op));
	op->host_addr = c->saddr[*slot];
	op->replace_frame = xen_page_to_gfn(*repl);
	op->flags = flags;
	op->ref = ref;
	op->dom = dom;
	return 0;
}

/* The usual revocable map of @ref of the attack's granter at @slot. */
s16 xrt_map_rev(int slot, grant_ref_t ref, bool ro, struct page *repl,
		struct xrt_map **out)
{
	struct xrt_ctx *c = xrt_mctx;
	struct gnttab_map_revocable op = {
		.host_addr = c->saddr[slot],
		.replace_frame = xen_page_to_gfn(repl),
		.ref = ref,
		.dom = c->dom,
		.flags = GNTMAP_host_map | (ro ? GNTMAP_readonly : 0),
	};

	if (!c->translated)
		op.flags |= GNTMAP_contains_pte;
	return xrt_map_rev_raw(&op, slot, repl, out);
}

/* A plain map of (@dom, @ref) at @slot. */
s16 xrt_map_plain(int slot, domid_t dom, grant_ref_t ref, bool ro,
		  bool attack_ref, struct xrt_map **out)
{
	struct xrt_ctx *c = xrt_mctx;
	struct gnttab_map_grant_ref op = {
		.host_addr = c->saddr[slot],
		.flags = GNTMAP_host_map | (ro ? GNTMAP_readonly : 0),
		.ref = ref,
		.dom = dom,
	};
	struct xrt_map *m;
	int rc;

	if (out)
		*out = NULL;
	if (!c->translated)
		op.flags |= GNTMAP_contains_pte;
	rc = HYPERVISOR_grant_table_op(GNTTABOP_map_grant_ref, &op, 1);
	if (rc)
		return rc - 1000;
	if (op.status != GNTST_okay)
		return op.status;
	m = xrt_new_map();
	if (!m)
		return op.status;
	xrt_record(m, XRT_PLAIN, op.host_addr, op.handle, ref, dom, op.flags,
		   slot, NULL);
	if (out)
		*out = m;
	return GNTST_okay;
}

/* Unmap @m's handle naming @host_addr (its own, or not: an attack). */
s16 xrt_unmap(struct xrt_map *m, u64 host_addr)
{
	struct gnttab_unmap_grant_ref op = {
		.host_addr = host_addr,
		.handle = m->handle,
	};
	int rc;

	rc = HYPERVISOR_grant_table_op(GNTTABOP_unmap_grant_ref, &op, 1);
	if (rc)
		return rc - 1000;
	if (op.status == GNTST_okay)
		m->mapped = false;
	return op.status;
}

/* A stand-alone pinned L1 page table (PV); returns its index. */
int xrt_l1_new(void)
{
	struct xrt_ctx *c = xrt_mctx;
	struct xrt_l1 *l;
	int rc;

	if (c->nl1 >= XRT_MAX_L1)
		return -ENOSPC;
	l = &c->l1[c->nl1];
	l->page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!l->page)
		return -ENOMEM;
	l->mfn = xrt_page_mfn(l->page);
	rc = xrt_page_prot(l->page, true);
	if (!rc)
		rc = xrt_mmuext(MMUEXT_PIN_L1_TABLE, l->mfn);
	if (rc) {
		/* Not a page table: an ordinary page again. */
		xrt_page_prot(l->page, false);
		__free_page(l->page);
		l->page = NULL;
		return rc;
	}
	l->pinned = true;
	xrt_add_ptmfn(l->mfn);
	return c->nl1++;
}

u64 xrt_l1_entry(int i, unsigned int e)
{
	const u64 *p = page_address(xrt_mctx->l1[i].page);

	return READ_ONCE(p[e]);
}

/* Unpin L1 @i whatever it holds, and make it an ordinary page. */
int xrt_l1_unpin(int i)
{
	struct xrt_l1 *l = &xrt_mctx->l1[i];
	int rc;

	rc = xrt_mmuext(MMUEXT_UNPIN_TABLE, l->mfn);
	if (rc)
		return rc;
	l->pinned = false;
	rc = xrt_page_prot(l->page, false);
	if (!rc)
		l->data = true;
	return rc;
}

void xrt_expect(int slot, unsigned long mfn, u64 magic, bool rw)
{
	struct xrt_ctx *c = xrt_mctx;
	struct xrt_expect *e;

	if (c->nexp >= XRT_MAX_EXPECT)
		return;
	e = &c->exp[c->nexp++];
	e->slot = slot;
	e->mfn = mfn;
	e->magic = magic;
	e->rw = rw;
}

void xrt_expect_page(int slot, struct page *page, bool rw)
{
	xrt_expect(slot, xrt_page_mfn(page), xrt_own_magic(page), rw);
}

/* --- post: the checks --- */

struct xrt_post {
	unsigned int present, granted, ptwrite, ptread, l1dirty;
	unsigned int exp_ok, exp_bad;
	unsigned int read, saw_new, wrote;
	unsigned int unmapped, failed, recovered, leaked_maps;
	unsigned int gone_unmapped, gone_touched;
	int first_fail;
};

static bool xrt_granted_mfn(unsigned long mfn)
{
	struct xrt_ctx *c = xrt_mctx;
	unsigned int i;

	for (i = 0; i < c->nmaps; i++)
		if (c->maps[i].attack_ref && c->maps[i].gmfn &&
		    c->maps[i].gmfn == mfn)
			return true;
	return false;
}

static void xrt_scan_one(u64 pte, struct xrt_post *p)
{
	unsigned long mfn;

	if (!(pte & _PAGE_PRESENT))
		return;
	p->present++;
	mfn = xrt_pte_mfn(pte);
	if (xrt_granted_mfn(mfn))
		p->granted++;
	if (xrt_is_ptmfn(mfn)) {
		if (pte & _PAGE_RW)
			p->ptwrite++;
		else
			p->ptread++;
	}
}

/* Is a stand-alone L1 page a slot holder (of a mapping)? */
static bool xrt_l1_holds_maps(int i)
{
	struct xrt_ctx *c = xrt_mctx;
	unsigned int k;

	for (k = 0; k < c->nmaps; k++)
		if ((c->maps[k].host_addr >> PAGE_SHIFT) == c->l1[i].mfn)
			return true;
	return false;
}

static void xrt_scan(struct xrt_post *p)
{
	struct xrt_ctx *c = xrt_mctx;
	unsigned int i, e;

	if (c->translated)
		return;
	for (i = 0; i < c->nslots; i++)
		xrt_scan_one(xrt_slot_pte(i), p);
	for (i = 0; i < c->nl1; i++) {
		bool holder;

		if (!c->l1[i].page || c->l1[i].data)
			continue;
		holder = xrt_l1_holds_maps(i);
		for (e = 0; e < PTRS_PER_PTE; e++) {
			u64 v = xrt_l1_entry(i, e);

			xrt_scan_one(v, p);
			if (v && !holder)
				p->l1dirty++;
		}
	}
}

static bool xrt_check_expect(const struct xrt_expect *e)
{
	struct xrt_ctx *c = xrt_mctx;

	if (!c->translated) {
		u64 pte = xrt_slot_pte(e->slot);

		return (pte & _PAGE_PRESENT) && xrt_pte_mfn(pte) == e->mfn &&
		       !!(pte & _PAGE_RW) == e->rw;
	}
	/* Translated: what the frame shows is all a guest can see. */
	return !e->magic ||
	       xrt_count_u64(xrt_slot_va(e->slot), e->magic) == PAGE_SIZE / 8;
}

static bool xrt_own_page_mfn(unsigned long mfn)
{
	struct xrt_ctx *c = xrt_mctx;
	unsigned int i;

	for (i = 0; i < c->npages; i++)
		if (!c->page_gone[i] && xrt_page_mfn(c->pages[i]) == mfn)
			return true;
	return false;
}

static bool xrt_is_own_page(const struct page *page)
{
	int i = xrt_own_index(page);

	return i >= 0 && !xrt_mctx->page_gone[i];
}

/*
 * Translated: is slot @s in use by a mapping made (only those frames are
 * read), and *@rw: writable by a revocable mapping whose replacement is an
 * ordinary page of ours (a write would fault on a read-only one, and must
 * not land in a frame Xen shares with us that a broken hypervisor took as
 * a replacement)?
 */
static bool xrt_slot_used(int s, bool *rw)
{
	struct xrt_ctx *c = xrt_mctx;
	bool used = false;
	unsigned int i;

	*rw = false;
	for (i = 0; i < c->nmaps; i++) {
		if (c->maps[i].slot != s)
			continue;
		used = true;
		if (c->maps[i].kind == XRT_REV &&
		    !(c->maps[i].flags & GNTMAP_readonly) &&
		    xrt_is_own_page(c->maps[i].repl))
			*rw = true;
	}
	return used;
}

static void xrt_touch(struct xrt_post *p)
{
	struct xrt_ctx *c = xrt_mctx;
	unsigned int s;

	xrt_tlb_flush_all();
	for (s = 0; s < c->nslots; s++) {
		bool rw;
		void *va;

		if (c->translated) {
			if (!xrt_slot_used(s, &rw))
				continue;
		} else {
			u64 pte = xrt_slot_pte(s);

			/* Unused slots show the filler page. */
			if (!(pte & _PAGE_PRESENT) ||
			    xrt_pte_mfn(pte) == xrt_page_mfn(c->filler))
				continue;
			/*
			 * Write only where it tells something: into our own
			 * ordinary pages and the granter's frames.  Never into a
			 * page table, shared_info or a grant-table frame, whatever
			 * a broken hypervisor let us map there writable.
			 */
			rw = (pte & _PAGE_RW) &&
			     (xrt_own_page_mfn(xrt_pte_mfn(pte)) ||
			      xrt_granted_mfn(xrt_pte_mfn(pte)));
		}
		va = xrt_slot_va(s);
		p->read++;
		if (xrt_count_u64(va, XRT_NEW_MAGIC))
			p->saw_new++;
		if (rw) {
			xrt_fill(va, XRT_MAPPER_MAGIC);
			p->wrote++;
		}
	}
}

/* An old hypervisor's way out: unmap naming where the frame shows now. */
static bool xrt_recover(struct xrt_map *m)
{
	struct xrt_ctx *c = xrt_mctx;
	unsigned int s, i;

	for (s = 0; s < c->nslots; s++) {
		bool same = false;

		if ((int)s == m->slot)
			continue;
		if (!c->translated) {
			u64 pte = xrt_slot_pte(s);

			same = m->gmfn && (pte & _PAGE_PRESENT) &&
			       xrt_pte_mfn(pte) == m->gmfn;
		} else {
			for (i = 0; i < c->nmaps; i++)
				if (c->maps[i].slot == (int)s &&
				    c->maps[i].ref == m->ref &&
				    c->maps[i].dom == m->dom)
					same = true;
		}
		if (same && xrt_unmap(m, c->saddr[s]) == GNTST_okay)
			return true;
	}
	return false;
}

/* What the address of a "gone" mapping shows (it must not change). */
static u64 xrt_peek(const struct xrt_map *m)
{
	struct xrt_ctx *c = xrt_mctx;
	unsigned int i;

	if (m->slot >= 0)
		return c->translated ? READ_ONCE(*(u64 *)xrt_slot_va(m->slot)) :
				       xrt_slot_pte(m->slot);
	for (i = 0; i < c->nl1; i++) {
		const struct xrt_l1 *l = &c->l1[i];

		if (l->page && l->mfn == m->host_addr >> PAGE_SHIFT)
			return l->data ?
			       xrt_count_u64(page_address(l->page), l->magic) :
			       xrt_l1_entry(i, (m->host_addr & ~PAGE_MASK) / 8);
	}
	return 0;
}

static void xrt_unmap_all(struct xrt_post *p)
{
	struct xrt_ctx *c = xrt_mctx;
	unsigned int i;

	for (i = 0; i < c->nmaps; i++) {
		struct xrt_map *m = &c->maps[i];
		u64 before = 0;
		s16 st;

		if (!m->mapped)
			continue;
		if (m->gone)
			before = xrt_peek(m);
		st = xrt_unmap(m, m->host_addr);
		if (st == GNTST_okay) {
			p->unmapped++;
			if (m->gone) {
				p->gone_unmapped++;
				p->gone_touched += xrt_peek(m) != before;
			}
			continue;
		}
		if (!p->failed)
			p->first_fail = st;
		p->failed++;
		if (xrt_recover(m)) {
			p->recovered++;
			continue;
		}
		p->leaked_maps++;
		if (m->kind == XRT_REV)
			xrt_leaked_live++;
	}
}

/* May the slot area go?  Only if no entry maps anything but our own pages. */
static bool xrt_slots_clean(void)
{
	struct xrt_ctx *c = xrt_mctx;
	unsigned int s, i;

	for (s = 0; s < c->nslots; s++) {
		u64 pte = xrt_slot_pte(s);
		unsigned long mfn = xrt_pte_mfn(pte);
		bool ok = false;

		if (!(pte & _PAGE_PRESENT)) {
			if (pte)
				return false;	/* vunmap would WARN */
			continue;
		}
		if (mfn == xrt_page_mfn(c->filler))
			continue;
		/* Our own page, mapped by hand: an ordinary PTE. */
		ok = xrt_own_page_mfn(mfn);
		for (i = 0; i < c->nmaps; i++)
			if (c->maps[i].repl &&
			    xrt_page_mfn(c->maps[i].repl) == mfn)
				ok = false;	/* maybe a grant PTE still */
		if (!ok)
			return false;
	}
	return true;
}

static void xrt_repopulate(struct page *page)
{
	xen_pfn_t gfn = xen_page_to_gfn(page);
	struct xen_memory_reservation r = {
		.nr_extents = 1,
		.domid = DOMID_SELF,
	};

	set_xen_guest_handle(r.extent_start, &gfn);
	if (HYPERVISOR_memory_op(XENMEM_populate_physmap, &r) != 1)
		pr_warn("gntsock_xrt: gfn %#llx stays unpopulated, page kept\n",
			(unsigned long long)gfn);
	else
		__free_page(page);
}

void xrt_ctx_free(void)
{
	struct xrt_ctx *c = xrt_mctx;
	bool leak;
	unsigned int i;

	if (!c)
		return;
	leak = c->leak_slots;
	for (i = 0; i < c->nmaps; i++)
		if (c->maps[i].mapped)
			leak = true;
	if (c->area) {
		if (!leak && xrt_slots_clean())
			vunmap(c->area);
		else
			leak = true;
	}
	if (c->spages) {
		if (!leak)
			xen_free_unpopulated_pages(c->nslots, c->spages);
		kvfree(c->spages);
	}
	for (i = 0; i < c->nl1; i++) {
		struct xrt_l1 *l = &c->l1[i];
		unsigned int e, used = 0;

		if (!l->page)
			continue;
		if (l->pinned) {
			for (e = 0; e < PTRS_PER_PTE; e++)
				used += !!xrt_l1_entry(i, e);
			/* Unpinning a grant PTE is an implicit unmap. */
			if (leak || used || xrt_l1_unpin(i))
				continue;
		}
		if (!leak)
			__free_page(l->page);
	}
	for (i = 0; i < c->npages && c->pages; i++) {
		if (leak)
			break;
		if (c->page_gone[i])
			xrt_repopulate(c->pages[i]);
		else
			__free_page(c->pages[i]);
	}
	if (!leak && c->filler)
		__free_page(c->filler);
	if (leak)
		pr_warn("gntsock_xrt: mappings left behind: their pages are kept\n");
	kvfree(c->maps);
	kvfree(c->pages);
	kvfree(c->page_gone);
	kvfree(c->saddr);
	kvfree(c->sptep);
	kfree(c);
	xrt_mctx = NULL;
}

/*
 * "post": everything the mapper can still see and do after the granter's
 * reclaim, then the unmaps, then the context goes.
 */
int xrt_cmd_post(const u32 *a, int n)
{
	struct xrt_ctx *c = xrt_mctx;
	struct xrt_post p = { 0 };
	unsigned int i;

	if (!c) {
		xrt_result("post=none");
		return 0;
	}
	/* Threads of an attack still running (a rig step gave up): stop them. */
	xrt_attack_exit();
	xrt_scan(&p);
	for (i = 0; i < c->nexp; i++) {
		if (xrt_check_expect(&c->exp[i]))
			p.exp_ok++;
		else
			p.exp_bad++;
	}
	xrt_touch(&p);
	xrt_unmap_all(&p);
	xrt_result("granted=%u ptwrite=%u ptread=%u l1dirty=%u exp_ok=%u exp_bad=%u",
		   p.granted, p.ptwrite, p.ptread, p.l1dirty, p.exp_ok,
		   p.exp_bad);
	xrt_append(" read=%u saw_new=%u wrote=%u", p.read, p.saw_new, p.wrote);
	xrt_append(" unmapped=%u unmap_failed=%u first_fail=%d recovered=%u",
		   p.unmapped, p.failed, p.first_fail, p.recovered);
	xrt_append(" gone_unmapped=%u gone_touched=%u leaked=%u leaked_live=%u",
		   p.gone_unmapped, p.gone_touched, p.leaked_maps,
		   xrt_leaked_live);
	xrt_ctx_free();
	return 0;
}
