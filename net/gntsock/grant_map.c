// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock grants, receiving side: mapping a received grant into the
 * application, with mmap() on the socket it arrived on
 * (gntsock_grant_mmap()). The record is grant_recv.c's; taking the
 * mapping down again (the MMU notifier, the VMA's operations, revoke and
 * close) and freeing it, grant_unmap.c's.
 *
 * Mapping, x86 PV: the grant is mapped straight into the user's page
 * table entries with GNTMAP_application_map | GNTMAP_contains_pte, as
 * gntdev does for PV. Xen refuses a foreign frame in a PTE written the
 * ordinary way, and kills a PV domain whose kernel clears a grant-mapped
 * PTE without the grant unmap operation; so an MMU interval notifier unmaps
 * the grant before anything (munmap, exit, mremap, mprotect) zaps the
 * range. The VMA is VM_DONTCOPY (fork does not copy it) and cannot be
 * split. After an unmap the range stays empty: a later access gets SIGBUS
 * from the fault handler, never the granter's frame.
 *
 * Mapping, auto-translated (x86 PVH, HVM): as gntdev does there, each page
 * of the grant goes into the p2m at the guest frame of an unpopulated page
 * of ours (GNTMAP_host_map, host_addr = that frame's guest physical
 * address), and those pages are inserted into the VMA (VM_IO, so
 * get_user_pages() refuses them as it refuses the PV range, but
 * get_user_pages_fast() does not: see grant_unmap.c). The same
 * notifier unmaps the grant before the range is zapped. An unmap that is
 * not the application's doing (revoke, link down) zaps the range
 * afterwards from a work item, so that it faults (SIGBUS) as on PV; the
 * unpopulated pages go back to their pool only when the last VMA is gone
 * and nobody else holds a reference to them.
 *
 * When this domain can map revocably (the hypervisor has the xen-backend
 * extension and lets it use GNTTABOP_map_revocable, xen_revoke.c) and
 * said so on the link (feature-revocable-map, link_xenbus.c), every page is
 * mapped revocably (GNTTABOP_map_revocable on the same user PTE) with a
 * replacement page of ours: a distinct zeroed page per page of a writable
 * grant, one shared zeroed page for a read-only grant. If the granter
 * takes the grant back by force, the user's range shows those pages from
 * then on; the later unmap works as usual, and the replacement pages are
 * freed only after it (Xen holds references to them until then). A
 * domain that cannot map revocably (a PV domain whose grant maps need
 * IOMMU mappings) says so, gets plain grants, and maps them plainly.
 */
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/mmu_notifier.h>
#include <linux/delay.h>
#include <linux/moduleparam.h>
#include <xen/xen.h>
#include <xen/features.h>
#include <xen/grant_table.h>
#include <xen/page.h>
#include <asm/xen/hypercall.h>

#include "gntsock.h"
#include "grant.h"
#include "grant_in.h"
#include "xen_revoke.h"

/* Testing the revocable-only mark end to end: writing N here (root only)
 * makes this kernel map the next N grants plainly, as a kernel without
 * revocable maps would; a hypervisor with the extension must refuse.
 */
static int gntsock_fault_plain_map;
module_param_named(fault_plain_map, gntsock_fault_plain_map, int, 0600);
MODULE_PARM_DESC(fault_plain_map,
		 "testing: map the next N received grants plainly (0: off)");

struct gntsock_pte_walk {
	struct gntsock_gin *gin;
	unsigned long start;
};

static int gntsock_gin_find_pte(pte_t *pte, unsigned long addr, void *data)
{
	struct gntsock_pte_walk *w = data;

	w->gin->pte[(addr - w->start) >> PAGE_SHIFT] =
		arbitrary_virt_to_machine(pte).maddr;
	return 0;
}

/* Zeroed replacement pages: one per page, or one shared if read-only. */
static int gntsock_gin_alloc_repl(struct gntsock_gin *gin, bool readonly)
{
	u32 i, n = readonly ? 1 : gin->npages;

	/* (an earlier mmap() that failed left its array, empty) */
	kvfree(gin->repl);
	gin->repl = kvcalloc(n, sizeof(*gin->repl), GFP_KERNEL);
	if (!gin->repl)
		return -ENOMEM;
	gin->nrepl = n;
	for (i = 0; i < n; i++) {
		gin->repl[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!gin->repl[i]) {
			gntsock_gin_free_repl(gin, NULL);
			return -ENOMEM;
		}
	}
	return 0;
}

/* Longest delay between retries of a map Xen answers GNTST_eagain (a
 * paged-out frame), in ms; the delays grow by 1 ms from 1 ms.
 */
#define GNTSOCK_MAP_EAGAIN_MS	64

/* Retry one map op Xen answered GNTST_eagain for, as gnttab_batch_map()
 * does, but without its BUG() when the hypercall itself fails.
 */
static void gntsock_gin_map_retry(unsigned int cmd, void *op, s16 *status)
{
	unsigned int delay = 1;

	while (*status == GNTST_eagain && delay < GNTSOCK_MAP_EAGAIN_MS) {
		msleep(delay++);
		if (HYPERVISOR_grant_table_op(cmd, op, 1))
			*status = GNTST_general_error;
	}
	if (*status == GNTST_eagain)
		*status = GNTST_bad_page;
}

/* Map every page revocably and set the handles of those that mapped. The
 * per-page statuses count even when the hypercall as a whole fails (Xen
 * may have mapped the pages before the one it failed on): an entry it did
 * not process keeps GNTST_general_error. Return: pages mapped.
 */
static u32 gntsock_gin_map_revocable(struct gntsock_gin *gin)
{
	bool ro = gin->map_flags & GNTMAP_readonly;
	struct gnttab_map_revocable *ops;
	u32 i, ok = 0;
	int rc;

	if (gntsock_gin_alloc_repl(gin, ro))
		return 0;
	ops = kvcalloc(gin->npages, sizeof(*ops), GFP_KERNEL);
	if (!ops) {
		gntsock_gin_free_repl(gin, NULL);
		return 0;
	}
	for (i = 0; i < gin->npages; i++) {
		struct page *repl = gin->repl[ro ? 0 : i];

		ops[i].host_addr = gin->pte[i];
		/* An MFN (PV) or a GFN (auto-translated). */
		ops[i].replace_frame = xen_page_to_gfn(repl);
		ops[i].flags = gin->map_flags;
		ops[i].ref = gin->refs[i];
		ops[i].dom = gin->link->peer;
		ops[i].status = GNTST_general_error;
	}
	rc = HYPERVISOR_grant_table_op(GNTTABOP_map_revocable, ops,
				       gin->npages);
	for (i = 0; i < gin->npages; i++) {
		gntsock_gin_map_retry(GNTTABOP_map_revocable, &ops[i],
				      &ops[i].status);
		if (ops[i].status == GNTST_okay) {
			gin->handles[i] = ops[i].handle;
			ok++;
		}
	}
	if (rc)
		pr_warn_ratelimited("gntsock: revocable map of grant %u of domain %u: hypercall failed (%d), %u of %u pages mapped\n",
				    gin->id, gin->link->peer, rc, ok,
				    gin->npages);
	kvfree(ops);
	return ok;
}

/* Map every page the ordinary way; as gntsock_gin_map_revocable(). */
static u32 gntsock_gin_map_plain(struct gntsock_gin *gin)
{
	struct gnttab_map_grant_ref *ops;
	u32 i, ok = 0;
	int rc;

	ops = kvcalloc(gin->npages, sizeof(*ops), GFP_KERNEL);
	if (!ops)
		return 0;
	for (i = 0; i < gin->npages; i++) {
		/* PTE machine address (PV) or guest physical address. */
		ops[i].host_addr = gin->pte[i];
		ops[i].flags = gin->map_flags;
		ops[i].ref = gin->refs[i];
		ops[i].dom = gin->link->peer;
		ops[i].status = GNTST_general_error;
	}
	rc = HYPERVISOR_grant_table_op(GNTTABOP_map_grant_ref, ops,
				       gin->npages);
	for (i = 0; i < gin->npages; i++) {
		gntsock_gin_map_retry(GNTTABOP_map_grant_ref, &ops[i],
				      &ops[i].status);
		if (ops[i].status == GNTST_okay) {
			gin->handles[i] = ops[i].handle;
			ok++;
		}
	}
	if (rc)
		pr_warn_ratelimited("gntsock: map of grant %u of domain %u: hypercall failed (%d), %u of %u pages mapped\n",
				    gin->id, gin->link->peer, rc, ok,
				    gin->npages);
	kvfree(ops);
	return ok;
}

static int gntsock_gin_map(struct gntsock_gin *gin, struct vm_area_struct *vma)
{
	struct gntsock_pte_walk w = { .gin = gin, .start = vma->vm_start };
	bool revocable;
	u32 i, ok;
	int err;

	if (gin->pages) {
		/* Auto-translated: into the p2m at our unpopulated frames. */
		gin->map_flags = GNTMAP_host_map;
		for (i = 0; i < gin->npages; i++)
			gin->pte[i] = PFN_PHYS((u64)xen_page_to_gfn(gin->pages[i]));
	} else {
		gin->map_flags = GNTMAP_host_map | GNTMAP_application_map |
			GNTMAP_contains_pte | (1 << _GNTMAP_guest_avail0);
		err = apply_to_page_range(vma->vm_mm, vma->vm_start,
					  vma->vm_end - vma->vm_start,
					  gntsock_gin_find_pte, &w);
		if (err)
			return err;
	}
	if (!(vma->vm_flags & VM_WRITE))
		gin->map_flags |= GNTMAP_readonly;
	for (i = 0; i < gin->npages; i++)
		gin->handles[i] = INVALID_GRANT_HANDLE;
	/* As this end told the granter when the link connected: a grant
	 * marked revocable-only cannot be mapped plainly, and only a peer
	 * told that we map revocably marks them.
	 */
	revocable = READ_ONCE(gin->link->map_revocable);
	if (READ_ONCE(gntsock_fault_plain_map) > 0) {
		WRITE_ONCE(gntsock_fault_plain_map,
			   gntsock_fault_plain_map - 1);
		pr_info("gntsock: mapping grant %u of domain %u plainly (fault_plain_map)\n",
			gin->id, gin->link->peer);
		revocable = false;
	}
	if (revocable) {
		ok = gntsock_gin_map_revocable(gin);
	} else {
		/* (what an earlier mmap() that failed left, empty) */
		kvfree(gin->repl);
		gin->repl = NULL;
		ok = gntsock_gin_map_plain(gin);
	}
	if (ok == gin->npages) {
		if (!gin->pages)
			return 0;
		/* The frames hold the grant: show their pages to the user. */
		err = vm_map_pages_zero(vma, gin->pages, gin->npages);
		if (!err)
			return 0;
		/* Pages inserted so far are zapped when mmap fails. */
		gntsock_gin_unmap_pages(gin);
		return err;
	}
	pr_warn_ratelimited("gntsock: mapping grant %u of domain %u failed (%u of %u pages)\n",
			    gin->id, gin->link->peer, gin->npages - ok,
			    gin->npages);
	/* Undo the pages that did map; frees the replacement pages. */
	gntsock_gin_unmap_pages(gin);
	return -EFAULT;
}

/* Claim the grant @vma asks for (GIN_MAPPING, a reference taken): the
 * checks of gntsock_grant_mmap(). Return: the grant, or an ERR_PTR().
 */
static struct gntsock_gin *gntsock_gin_claim(struct gntsock_grants *gs,
					     struct vm_area_struct *vma)
{
	struct gntsock_gin *gin;
	int err;

	spin_lock(&gntsock_grant_lock);
	gin = vma->vm_pgoff > U32_MAX ? NULL :
	      gntsock_gin_lookup(gs, vma->vm_pgoff, true);
	err = -ENOENT;
	if (!gin || gin->state == GIN_QUEUED)
		goto out;
	err = -ENOLINK;
	if (gin->state == GIN_DEAD)
		goto out;
	err = -EBUSY;
	if (gin->state != GIN_DELIVERED)
		goto out;
	err = -EINVAL;
	if (vma_pages(vma) != gin->npages)
		goto out;
	err = -EACCES;
	if (!gin->writable && (vma->vm_flags & VM_WRITE))
		goto out;
	err = 0;
	gin->state = GIN_MAPPING;
	gin->kill = GIN_KILL_NONE;
	kref_get(&gin->kref);
out:
	spin_unlock(&gntsock_grant_lock);
	return err ? ERR_PTR(err) : gin;
}

/* The arrays of the mapping and its unmap, and on an auto-translated
 * guest the frames to map into (kept by a failed mmap() for the next).
 * Return: 0 or -ENOMEM.
 */
static int gntsock_gin_alloc(struct gntsock_gin *gin, bool hvm)
{
	if (!gin->pte)
		gin->pte = kvcalloc(gin->npages, sizeof(*gin->pte), GFP_KERNEL);
	if (!gin->handles) {
		gin->handles = kvmalloc_array(gin->npages,
					      sizeof(*gin->handles),
					      GFP_KERNEL);
		if (gin->handles)
			memset(gin->handles, 0xff,
			       gin->npages * sizeof(*gin->handles));
	}
	/* The unmap, which the notifier may do, allocates nothing. */
	if (!gin->unmap_ops)
		gin->unmap_ops = kvcalloc(gin->npages, sizeof(*gin->unmap_ops),
					  GFP_KERNEL);
	if (!gin->unmap_idx)
		gin->unmap_idx = kvcalloc(gin->npages, sizeof(*gin->unmap_idx),
					  GFP_KERNEL);
	if (!gin->gone)
		gin->gone = kvcalloc(gin->npages, sizeof(*gin->gone),
				     GFP_KERNEL);
	if (!gin->pte || !gin->handles || !gin->unmap_ops || !gin->unmap_idx ||
	    !gin->gone)
		return -ENOMEM;
	if (!hvm || gin->pages)
		return 0;
	gin->pages = kvcalloc(gin->npages, sizeof(*gin->pages), GFP_KERNEL);
	if (!gin->pages)
		return -ENOMEM;
	if (xen_alloc_unpopulated_pages(gin->npages, gin->pages)) {
		kvfree(gin->pages);
		gin->pages = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Map the claimed @gin into @vma, with its notifier. Without
 * gntsock_grant_lock (this allocates, waits for Xen and inserts pages);
 * mmap_lock held for writing. Return: 0 or -errno, the notifier gone.
 */
static int gntsock_gin_map_vma(struct gntsock_gin *gin,
			       struct vm_area_struct *vma, bool hvm)
{
	int err = gntsock_gin_alloc(gin, hvm);

	if (err)
		return err;
	/* PV: PTEs of foreign frames; auto-translated: pages inserted by
	 * vm_map_pages_zero() (VM_MIXEDMAP). VM_IO keeps get_user_pages()
	 * off both; get_user_pages_fast() stays off PV's special PTEs only,
	 * hence the held pages (gntsock_gin_free_pages()).
	 */
	vma->vm_flags |= VM_IO | VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP |
			 (hvm ? 0 : VM_PFNMAP);
	if (!(vma->vm_flags & VM_WRITE))
		vma->vm_flags &= ~VM_MAYWRITE;
	err = mmu_interval_notifier_insert_locked(&gin->notifier, vma->vm_mm,
						  vma->vm_start,
						  vma->vm_end - vma->vm_start,
						  &gntsock_gin_mn_ops);
	if (err)
		return err;
	/* We hold mmap_lock for writing: nothing can zap the range now. */
	mmu_interval_read_begin(&gin->notifier);
	err = gntsock_gin_map(gin, vma);
	if (err)
		mmu_interval_notifier_remove(&gin->notifier);
	return err;
}

/* The mapping is made: @gin is GIN_MAPPED in @vma, which takes over
 * mmap()'s reference. gntsock_grant_lock held.
 */
static void gntsock_gin_mapped(struct gntsock_gin *gin,
			       struct vm_area_struct *vma)
{
	WRITE_ONCE(gin->notifier_live, true);
	gin->start = vma->vm_start;
	spin_lock(&gin->map_lock);
	gin->mapped = true;
	spin_unlock(&gin->map_lock);
	gin->state = GIN_MAPPED;
	gin->vmas = 1;
	vma->vm_private_data = gin;
	vma->vm_ops = &gntsock_gin_vmops;
	atomic64_inc(&gntsock_grant_stats.mapped);
	if (!gin->repl)
		atomic64_inc(&gntsock_grant_stats.mapped_plain);
	atomic_inc(&gntsock_grant_stats.in_mapped);
}

/**
 * gntsock_grant_mmap() - map a received grant: mmap(2) on the socket
 * @sk: the socket
 * @gs: its grants
 * @vma: offset = grant id * page size, length = the grant's length,
 *	MAP_SHARED
 *
 * The grant is claimed (GIN_MAPPING) and mapped without
 * gntsock_grant_lock, which the link's receive work and every other
 * socket's grants need meanwhile. A revoke or the link's end that comes
 * meanwhile waits for the mapping and then takes it down at once (the
 * range faults, as after any revoke); only then is the revoke answered.
 *
 * Return: 0; -ENOENT for no such grant on this socket; -EBUSY if it was
 * mapped before (once only) or is being mapped; -ENOLINK if revoked (also
 * when the map failed and a revoke came meanwhile); -EINVAL for a wrong
 * length or a private mapping; -EACCES for PROT_WRITE on a read-only
 * grant; -EOPNOTSUPP outside an x86 PV or auto-translated (PVH, HVM)
 * domain; -ENOMEM; -EFAULT if Xen refused the map.
 */
int gntsock_grant_mmap(struct sock *sk, struct gntsock_grants *gs,
		       struct vm_area_struct *vma)
{
	bool hvm = xen_feature(XENFEAT_auto_translated_physmap);
	struct gntsock_gin *gin;
	int err;
	u8 kill;

	if (!xen_pv_domain() && !hvm)
		return -EOPNOTSUPP;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	gin = gntsock_gin_claim(gs, vma);
	if (IS_ERR(gin))
		return PTR_ERR(gin);
	err = gntsock_gin_map_vma(gin, vma, hvm);
	spin_lock(&gntsock_grant_lock);
	kill = gin->kill;
	gin->kill = GIN_KILL_NONE;
	if (err && kill)
		err = -ENOLINK;
	if (err)
		gin->state = GIN_DELIVERED;
	else
		gntsock_gin_mapped(gin, vma);
	if (kill)
		gntsock_gin_kill(gin, kill == GIN_KILL_ANSWER);
	spin_unlock(&gntsock_grant_lock);
	if (err)
		gntsock_gin_put(gin);
	return err;
}
