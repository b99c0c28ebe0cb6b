/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gntsock: revocable grant mappings through the xen-backend extension.
 *
 * Thin wrappers around the grant-table sub-ops declared in
 * xen_revoke_abi.h (Linux's copy of the ABI the xen-backend patches add to
 * Xen's public/grant_table.h), plus the plumbing a mapper needs: a kernel
 * mapping whose PTE Xen fills (PV), or an unpopulated guest frame Xen
 * fills in the p2m (auto-translated: PVH, HVM).  Every function works on a
 * stock hypervisor too: it then reports -ENOSYS, and the caller falls back
 * to plain grants and quarantine.
 */
#ifndef _GNTSOCK_XEN_REVOKE_H
#define _GNTSOCK_XEN_REVOKE_H

#include <linux/types.h>
#include <xen/interface/grant_table.h>
#include "xen_revoke_abi.h"

struct page;

bool gntsock_xen_revoke_supported(void);
bool gntsock_xen_map_revocable_supported(void);
int gntsock_xen_gntst_to_errno(int16_t status);
int gntsock_xen_set_revocable_only(grant_ref_t ref, domid_t domid,
				   unsigned long frame, bool enable);

/**
 * struct gntsock_xen_rmap - one revocable kernel mapping of a foreign page
 * @addr:	kernel virtual address of the mapping (valid while mapped)
 * @repl:	the mapper's replacement page, which @addr shows after a
 *		revoke; owned by the caller, kept until after the unmap
 * @page:	auto-translated only: the unpopulated page whose guest frame
 *		Xen fills with the grant (and with @repl after a revoke)
 * @host_addr:	PV: machine address of the PTE Xen fills; auto-translated:
 *		guest physical address of @page
 * @handle:	grant handle, for the unmap
 * @mapped:	true between a successful map and the unmap
 */
struct gntsock_xen_rmap {
	void *addr;
	struct page *repl;
	struct page *page;
	u64 host_addr;
	grant_handle_t handle;
	bool mapped;
};

int gntsock_xen_map_revocable(struct gntsock_xen_rmap *m, domid_t dom,
			      grant_ref_t ref, bool readonly);
int gntsock_xen_unmap_revocable(struct gntsock_xen_rmap *m);
int gntsock_xen_revoke(struct gnttab_revoke *ops, unsigned int count);
int gntsock_xen_revoke_refs(grant_ref_t *refs, u32 n, u32 *swapped);

#endif /* _GNTSOCK_XEN_REVOKE_H */
