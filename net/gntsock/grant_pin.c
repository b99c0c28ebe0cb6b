// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock grants, sending side: the pages of a grant we make. sendmsg()
 * (grant_send.c) has them pinned for as long as the grant lives
 * (gntsock_grant_pin()), then granted to the peer (gntsock_gout_grant()).
 * Apart from the records because the rules are others': GUP's for long-term
 * pins (no page a filesystem tracks for writing may be written behind its
 * back, nothing without a VMA), and the grant table's and Xen's for the
 * references. Ending them again: grant_reclaim.c.
 *
 * With the xen-backend extension, towards a peer that said on the link that
 * it can map revocably (feature-revocable-map, link_xenbus.c), every
 * reference is marked revocable-only before its grant entry is written, so
 * the peer can only ever map it revocably. Other grants are plain.
 */
#include <linux/mm.h>
#include <linux/backing-dev.h>
#include <linux/slab.h>
#include <xen/grant_table.h>
#include <xen/page.h>
#include <asm/xen/hypercall.h>

#include "grant_out.h"
#include "xen_revoke.h"

/* As vma_needs_dirty_tracking() upstream (not in 6.1): a shared writable
 * mapping of a file whose filesystem wants to hear of writes (page_mkwrite)
 * or writes pages back. Shared memory (shmem, hugetlbfs) needs neither.
 */
static bool gntsock_vma_dirty_tracked(struct vm_area_struct *vma)
{
	const struct vm_operations_struct *ops = vma->vm_ops;

	if ((vma->vm_flags & (VM_SHARED | VM_WRITE)) != (VM_SHARED | VM_WRITE))
		return false;
	if (ops && (ops->page_mkwrite || ops->pfn_mkwrite))
		return true;
	return vma->vm_file && vma->vm_file->f_mapping &&
	       mapping_can_writeback(vma->vm_file->f_mapping);
}

/* Pin [@addr, @addr + @nr pages) of one VMA, @vma, for gntsock_grant_pin():
 * a mapping the filesystem tracks only read-only. Return: pages pinned, or
 * a negative errno. mmap_lock held.
 */
static long gntsock_pin_vma(struct vm_area_struct *vma, unsigned long addr,
			    unsigned long nr, bool writable,
			    struct page **pages)
{
	long n;

	mmap_assert_locked(vma->vm_mm);
	if (gntsock_vma_dirty_tracked(vma))
		return writable ? -EOPNOTSUPP :
		       pin_user_pages(addr, nr, FOLL_LONGTERM, pages, NULL);
	/* Pin for writing even a read-only grant when we may: that breaks
	 * copy-on-write (and never pins the shared zero page), so the peer
	 * sees the very pages the process writes to.
	 */
	n = pin_user_pages(addr, nr, FOLL_LONGTERM | FOLL_WRITE, pages, NULL);
	if (n == nr || writable)
		return n;
	if (n > 0)
		unpin_user_pages(pages, n);
	return pin_user_pages(addr, nr, FOLL_LONGTERM, pages, NULL);
}

/**
 * gntsock_grant_pin() - pin the pages of a grant for as long as it lives
 * @addr: first byte, page aligned
 * @npages: pages
 * @writable: the peer may write them
 * @pages: where the pages go
 *
 * The peer writes a writable grant's pages behind the back of the page
 * tables, for as long as it likes: a filesystem that tracks dirty pages
 * (writeback, page_mkwrite) would write back, or truncate, a page it
 * believes clean while the peer writes it. Such a mapping is refused for
 * a writable grant, as GUP refuses it for FOLL_LONGTERM | FOLL_WRITE since
 * 6.5; a read-only grant of it is pinned without FOLL_WRITE. The range is
 * pinned VMA by VMA, each as its kind allows, under one mmap_lock, so that
 * no file can be mapped over it between the check and the pin. Unlike
 * pin_user_pages_fast(), no VMA means EFAULT: nothing without one (the
 * gate page) is ever granted.
 *
 * Return: 0, or -EOPNOTSUPP, -EFAULT or another errno of GUP.
 */
int gntsock_grant_pin(unsigned long addr, u32 npages, bool writable,
		      struct page **pages)
{
	unsigned long len = (unsigned long)npages << PAGE_SHIFT, done = 0;
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	long n = 0;

	addr = untagged_addr(addr);
	if (!access_ok((void __user *)addr, len))
		return -EFAULT;
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	while (done < npages) {
		unsigned long a = addr + (done << PAGE_SHIFT), nr;

		vma = vma_lookup(mm, a);
		if (!vma) {
			n = -EFAULT;
			break;
		}
		nr = (min(addr + len, vma->vm_end) - a) >> PAGE_SHIFT;
		n = gntsock_pin_vma(vma, a, nr, writable, pages + done);
		if (n > 0)
			done += n;
		if (n != nr)
			break;
	}
	mmap_read_unlock(mm);
	if (done == npages)
		return 0;
	if (done)
		unpin_user_pages(pages, done);
	return n < 0 ? n : -EFAULT;
}

/* Unmark @ops' references whose mark Xen set (the entries were never
 * written, so nobody can have mapped them) and free them; a reference
 * whose mark cannot be removed is never freed, so that no later user of it
 * inherits the mark.
 */
static void gntsock_gout_unmark_free(struct gnttab_set_revocable_only *ops,
				     u32 n)
{
	u32 i;

	for (i = 0; i < n; i++) {
		struct gnttab_set_revocable_only *op = ops + i;

		if (op->status == GNTST_okay &&
		    gntsock_xen_set_revocable_only(op->ref, op->domid,
						   op->frame, false)) {
			pr_warn_ratelimited("gntsock: grant reference %u stays revocable-only: not reused\n",
					    op->ref);
			continue;
		}
		gnttab_free_grant_reference(op->ref);
	}
}

/**
 * gntsock_gout_grant() - claim @g's references and grant its pages to @peer
 * @g: the new grant, its pages pinned, not yet listed anywhere
 * @peer: the domain to grant them to
 * @revocable: mark every reference revocable-only first
 *
 * A revocable-only grant is marked, all references in one hypercall,
 * before any of its entries is written, so that no plain map of it can
 * succeed at any time.
 *
 * Return: 0, or -ENOBUFS (no reference free, or the hypervisor refused a
 * mark) or -ENOMEM, with nothing granted.
 */
int gntsock_gout_grant(struct gntsock_gout *g, domid_t peer,
		       bool revocable)
{
	struct gnttab_set_revocable_only *ops = NULL;
	grant_ref_t head;
	int err = 0, rc;
	u32 i;

	if (revocable) {
		ops = kvcalloc(g->npages, sizeof(*ops), GFP_KERNEL);
		if (!ops)
			return -ENOMEM;
	}
	if (gnttab_alloc_grant_references(g->npages, &head)) {
		kvfree(ops);
		return -ENOBUFS;
	}
	for (i = 0; i < g->npages; i++)
		g->refs[i] = gnttab_claim_grant_reference(&head);
	if (revocable) {
		for (i = 0; i < g->npages; i++) {
			ops[i].ref = g->refs[i];
			ops[i].domid = peer;
			ops[i].frame = xen_page_to_gfn(g->pages[i]);
			ops[i].flags = GNTTAB_REVOCABLE_ONLY_SET;
			/* Stays so for an entry Xen did not process. */
			ops[i].status = GNTST_general_error;
		}
		rc = HYPERVISOR_grant_table_op(GNTTABOP_set_revocable_only,
					       ops, g->npages);
		for (i = 0; i < g->npages; i++)
			if (rc || ops[i].status != GNTST_okay)
				err = -ENOBUFS;
		if (err) {
			pr_warn_ratelimited("gntsock: marking %u grant references revocable-only failed (%d, status %d)\n",
					    g->npages, rc, ops[0].status);
			gntsock_gout_unmark_free(ops, g->npages);
			memset(g->refs, 0, g->npages * sizeof(g->refs[0]));
			kvfree(ops);
			return err;
		}
		kvfree(ops);
	}
	g->revocable = revocable;
	for (i = 0; i < g->npages; i++)
		gnttab_grant_foreign_access_ref(g->refs[i], peer,
						xen_page_to_gfn(g->pages[i]),
						!g->writable);
	return 0;
}
