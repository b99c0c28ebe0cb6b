// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock: revocable grant mappings through the xen-backend extension.
 *
 * Granter side: gntsock_xen_set_revocable_only() before handing a grant
 * to the peer, gntsock_xen_revoke() when the peer does not give it back in
 * time.  Mapper side: gntsock_xen_map_revocable() instead of a plain grant
 * map, gntsock_xen_unmap_revocable() as usual, whether or not the granter
 * revoked in between.  A PV mapper hands Xen a PTE; an auto-translated
 * mapper (PVH, HVM) a guest frame, which Xen fills in its p2m, and on a
 * revoke points at the replacement page's frame instead.
 */
#include <linux/errno.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <xen/grant_table.h>
#include <linux/vmalloc.h>
#include <xen/xen.h>
#include <xen/features.h>
#include <xen/page.h>
#include <xen/xen-ops.h>
#include <asm/xen/hypercall.h>
#include <asm/xen/page.h>
#include <asm/pgtable.h>

#include "xen_revoke.h"

/* Probe results: 0 unknown, 1 supported, -1 not supported. */
static int revoke_support, map_support;

/* A zero-length call of @cmd: 0 where this domain may use it, -EOPNOTSUPP
 * where the hypervisor has the extension but this domain may not use that
 * sub-op, -ENOSYS on a stock hypervisor.
 */
static bool gntsock_xen_probe(int *cache, unsigned int cmd)
{
	int s = READ_ONCE(*cache);

	if (!s) {
		struct gnttab_revoke dummy = { 0 };

		s = -1;
		if ((xen_pv_domain() || xen_hvm_domain()) &&
		    !HYPERVISOR_grant_table_op(cmd, &dummy, 0))
			s = 1;
		WRITE_ONCE(*cache, s);
	}
	return s > 0;
}

/**
 * gntsock_xen_revoke_supported() - can this domain revoke its grants?
 *
 * Probes once with a zero-length GNTTABOP_revoke, which returns 0 on a
 * hypervisor with the xen-backend extension and -ENOSYS on a stock one,
 * and caches the answer.
 *
 * Return: true if gntsock_xen_revoke() and gntsock_xen_set_revocable_only()
 * work here.
 */
bool gntsock_xen_revoke_supported(void)
{
	return gntsock_xen_probe(&revoke_support, GNTTABOP_revoke);
}

/**
 * gntsock_xen_map_revocable_supported() - can this domain map revocably?
 *
 * Probes once with a zero-length GNTTABOP_map_revocable: a hypervisor with
 * the extension refuses it (-EOPNOTSUPP) to a PV domain whose grant
 * mappings need IOMMU mappings (a PV dom0 or driver domain with
 * passthrough) and to a domain with altp2m; a stock one knows no such
 * sub-op (-ENOSYS).  The extension maps revocably into PV page tables and
 * into the p2m of auto-translated guests (x86 PVH, HVM).  A link tells its
 * peer the answer, so that the peer grants revocable-only only what this
 * domain can map.
 *
 * Return: true if gntsock_xen_map_revocable() can work here.
 */
bool gntsock_xen_map_revocable_supported(void)
{
	return gntsock_xen_probe(&map_support, GNTTABOP_map_revocable);
}

/**
 * gntsock_xen_gntst_to_errno() - errno for a GNTST_* status
 * @status: a grant-table operation status
 *
 * Return: 0, or a negative errno that best matches @status.
 */
int gntsock_xen_gntst_to_errno(int16_t status)
{
	switch (status) {
	case GNTST_okay:
		return 0;
	case GNTST_eagain:
		return -EAGAIN;
	case GNTST_permission_denied:
		return -EPERM;
	case GNTST_no_space:
		return -ENOMEM;
	case GNTST_bad_domain:
		return -ESRCH;
	case GNTST_bad_gntref:
	case GNTST_bad_handle:
	case GNTST_bad_page:
	case GNTST_bad_virt_addr:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/**
 * gntsock_xen_set_revocable_only() - (un)mark a grant as revocable-only
 * @ref:	a grant reference of this domain
 * @domid:	the domain the reference grants (or will grant) the frame to
 * @frame:	the frame it grants (the entry's frame field: a GFN)
 * @enable:	true: a plain map of @ref by @domid fails while the entry
 *		grants @frame; false: remove the mark
 *
 * Set the mark before the entry is written, so that no plain mapping can
 * be made at any time, and remove it only after access has ended (or let
 * gntsock_xen_revoke() with GNTTAB_REVOKE_END_ACCESS remove it).
 *
 * Return: 0, -ENOSYS on a stock hypervisor, or another negative errno.
 */
int gntsock_xen_set_revocable_only(grant_ref_t ref, domid_t domid,
				   unsigned long frame, bool enable)
{
	struct gnttab_set_revocable_only op = {
		.frame = frame,
		.ref = ref,
		.domid = domid,
		.flags = enable ? GNTTAB_REVOCABLE_ONLY_SET : 0,
	};
	int rc;

	rc = HYPERVISOR_grant_table_op(GNTTABOP_set_revocable_only, &op, 1);
	if (rc)
		return rc;
	return gntsock_xen_gntst_to_errno(op.status);
}

/**
 * gntsock_xen_revoke() - force-revoke mappings of this domain's grants
 * @ops:	@count entries; ref and flags filled in by the caller, status
 *		and nr_revoked by the hypervisor
 * @count:	number of entries
 *
 * Every live revocable mapping of each grant is switched to its mapper's
 * replacement frame.  With GNTTAB_REVOKE_END_ACCESS in an entry's flags,
 * GNTST_okay means Xen also ended access to it (and dropped its
 * revocable-only mark), atomically with respect to any new map: the
 * reference may be freed and its page reused at once.  GNTST_eagain means
 * a mapping that is not revocable remains, or a map, unmap or copy is in
 * flight: retry later (with END_ACCESS no new map or copy of the entry
 * succeeds meanwhile) or quarantine the page.
 *
 * Return: 0 when every entry was processed (see each status), -ENOSYS on a
 * stock hypervisor, or another negative errno.
 */
int gntsock_xen_revoke(struct gnttab_revoke *ops, unsigned int count)
{
	return HYPERVISOR_grant_table_op(GNTTABOP_revoke, ops, count);
}

/* Up to this many references per GNTTABOP_revoke. */
#define GNTSOCK_REVOKE_BATCH	16

/* The outcome of @op for *@ref: 0 and *@ref set to 0 if ended. */
static int gntsock_xen_revoke_one(grant_ref_t *ref,
				  const struct gnttab_revoke *op,
				  u32 *swapped)
{
	*swapped += op->nr_revoked;
	if (op->status != GNTST_okay)
		return gntsock_xen_gntst_to_errno(op->status);
	if (!gnttab_try_end_foreign_access(*ref)) {
		/* Xen said ended: never seen, but never free it then. */
		pr_warn_ratelimited("gntsock: grant reference %u revoked but not ended\n",
				    *ref);
		return -EBUSY;
	}
	*ref = 0;
	return 0;
}

/**
 * gntsock_xen_revoke_refs() - end revocable-only grant references through Xen
 * @refs: the references; an ended one is set to 0 here, 0 entries skipped
 * @n: number of @refs
 * @swapped: incremented by the mappings Xen took from the peer
 *
 * GNTTABOP_revoke with GNTTAB_REVOKE_END_ACCESS for the references not
 * yet ended, GNTSOCK_REVOKE_BATCH per call (on the stack: callers hold
 * gntsock_grant_lock, under which nothing allocates). Xen points every
 * mapping the peer still holds at the peer's own replacement page, then,
 * once no mapping is left, ends access to the entry and drops its
 * revocable-only mark, atomically with respect to any new map, so that
 * nothing can be mapped between the revoke and the end of access and the
 * mark never goes while a mapping exists. A reference Xen
 * answers GNTST_okay for is therefore freed here (set to 0) and never
 * granted again; gnttab_try_end_foreign_access() only confirms that the
 * entry is ended before it frees it. GNTST_eagain (a map, unmap or copy in
 * flight) leaves the reference for a later attempt; Xen lets no new map or
 * copy of it succeed meanwhile. Only references marked revocable-only when
 * they were granted qualify: every mapping of them is revocable.
 *
 * Return: 0 if every reference is ended, -EAGAIN (or another negative
 * errno) if some are left.
 */
int gntsock_xen_revoke_refs(grant_ref_t *refs, u32 n, u32 *swapped)
{
	struct gnttab_revoke ops[GNTSOCK_REVOKE_BATCH];
	u32 i = 0, k;
	int rc, err = 0;

	while (i < n) {
		u32 first = i;

		for (k = 0; i < n && k < ARRAY_SIZE(ops); i++) {
			if (!refs[i])
				continue;
			ops[k].ref = refs[i];
			ops[k].flags = GNTTAB_REVOKE_END_ACCESS;
			ops[k].pad = 0;
			ops[k].nr_revoked = 0;
			/* Stays so for an entry Xen did not process. */
			ops[k++].status = GNTST_general_error;
		}
		if (!k)
			break;
		rc = gntsock_xen_revoke(ops, k);
		err = err ?: rc;
		/* Each status counts, even when the call as a whole failed. */
		for (k = 0; first < i; first++) {
			if (refs[first])
				err = gntsock_xen_revoke_one(&refs[first],
							     &ops[k++],
							     swapped) ?: err;
		}
	}
	return err;
}

/* Auto-translated mapper: the grant goes into the p2m at the guest frame
 * of an unpopulated page, which the kernel then reaches through its
 * direct map; a revoke points that frame at the replacement page's.
 */
static int gntsock_xen_map_revocable_hvm(struct gntsock_xen_rmap *m,
					 struct gnttab_map_revocable *op)
{
	int rc;

	rc = xen_alloc_unpopulated_pages(1, &m->page);
	if (rc)
		return rc;
	m->host_addr = PFN_PHYS((u64)xen_page_to_gfn(m->page));
	op->host_addr = m->host_addr;
	op->replace_frame = xen_page_to_gfn(m->repl);
	rc = HYPERVISOR_grant_table_op(GNTTABOP_map_revocable, op, 1);
	if (!rc)
		rc = gntsock_xen_gntst_to_errno(op->status);
	if (rc) {
		xen_free_unpopulated_pages(1, &m->page);
		m->page = NULL;
		return rc;
	}
	m->addr = pfn_to_kaddr(page_to_pfn(m->page));
	return 0;
}

/**
 * gntsock_xen_map_revocable() - map a foreign grant revocably into the kernel
 * @m:		@m->repl set by the caller to a page of its own (distinct per
 *		writable mapping); the rest is filled in
 * @dom:	granting domain
 * @ref:	grant reference
 * @readonly:	map read-only
 *
 * The page is mapped at @m->addr.  If the granter later revokes the
 * grant, @m->addr shows @m->repl instead: writes land there and reads
 * never see the granter's page again.
 *
 * Return: 0; -ENOSYS on a stock hypervisor; -EOPNOTSUPP where the
 * hypervisor cannot map revocably for this kind of guest; -EPERM for a
 * grant the granter did not allow; another negative errno otherwise.
 */
int gntsock_xen_map_revocable(struct gntsock_xen_rmap *m, domid_t dom,
			      grant_ref_t ref, bool readonly)
{
	struct gnttab_map_revocable op = {
		.ref = ref,
		.dom = dom,
	};
	unsigned int level;
	pte_t *pte;
	int rc;

	m->mapped = false;
	m->page = NULL;
	if (xen_feature(XENFEAT_auto_translated_physmap)) {
		op.flags = GNTMAP_host_map | (readonly ? GNTMAP_readonly : 0);
		rc = gntsock_xen_map_revocable_hvm(m, &op);
		if (rc)
			return rc;
		goto mapped;
	}
	if (!xen_pv_domain())
		return -EOPNOTSUPP;

	/* A kernel mapping of the replacement page gives us a PTE to hand to
	 * Xen; Xen points it at the granter's frame now and back at the
	 * replacement page on a revoke, so vmap's idea of it is right again
	 * once revoked.
	 */
	m->addr = vmap(&m->repl, 1, VM_MAP, PAGE_KERNEL);
	if (!m->addr)
		return -ENOMEM;
	pte = lookup_address((unsigned long)m->addr, &level);
	if (!pte || level != PG_LEVEL_4K) {
		rc = -EFAULT;
		goto out_unmap;
	}
	m->host_addr = arbitrary_virt_to_machine(pte).maddr;

	op.host_addr = m->host_addr;
	op.replace_frame = pfn_to_mfn(page_to_pfn(m->repl));
	op.flags = GNTMAP_host_map | GNTMAP_contains_pte |
		   (readonly ? GNTMAP_readonly : 0);
	rc = HYPERVISOR_grant_table_op(GNTTABOP_map_revocable, &op, 1);
	if (!rc)
		rc = gntsock_xen_gntst_to_errno(op.status);
	if (rc)
		goto out_unmap;
mapped:
	m->handle = op.handle;
	m->mapped = true;
	return 0;

out_unmap:
	vunmap(m->addr);
	m->addr = NULL;
	return rc;
}

/**
 * gntsock_xen_unmap_revocable() - undo gntsock_xen_map_revocable()
 * @m: a mapping made by gntsock_xen_map_revocable()
 *
 * Works whether or not the granter revoked the grant meanwhile.  The
 * caller frees @m->repl afterwards.
 *
 * Return: 0, or a negative errno (the mapping is then kept, and @m->addr
 * stays valid).
 */
int gntsock_xen_unmap_revocable(struct gntsock_xen_rmap *m)
{
	struct gnttab_unmap_grant_ref op = {
		.host_addr = m->host_addr,
		.handle = m->handle,
	};
	int rc;

	if (!m->mapped)
		return 0;
	rc = HYPERVISOR_grant_table_op(GNTTABOP_unmap_grant_ref, &op, 1);
	if (!rc)
		rc = gntsock_xen_gntst_to_errno(op.status);
	if (rc)
		return rc;
	m->mapped = false;
	if (m->page) {
		/* Xen removed the frame from the p2m: it is unpopulated again. */
		xen_free_unpopulated_pages(1, &m->page);
		m->page = NULL;
	} else {
		/* Xen cleared the PTE and flushed; vunmap finds it empty. */
		vunmap(m->addr);
	}
	m->addr = NULL;
	return 0;
}
