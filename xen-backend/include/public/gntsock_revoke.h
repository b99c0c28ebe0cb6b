/* SPDX-License-Identifier: MIT */
/*
 * gntsock_revoke.h
 *
 * Revocable grant mappings: an extension of the grant-table interface that
 * lets a granting domain take back a frame that another domain still maps.
 *
 * The mapper names, per mapping, a replacement frame of its own.  When the
 * granter revokes the grant, Xen atomically swaps every live revocable
 * mapping of it to its mapper's replacement frame, flushes the mapper's
 * TLBs, and drops the pins and page references, so the granter can end
 * foreign access and reuse the frame at once.  The mapper keeps a valid
 * mapping (of its own page) until it unmaps it as usual.
 *
 * This header is shared by the hypervisor (include it after
 * <public/grant_table.h>) and by guest kernels (after their copy of
 * grant_table.h, e.g. Linux's <xen/interface/grant_table.h>).
 *
 * Discovery: GNTTABOP_revoke with a count of 0 returns 0 on a hypervisor
 * that has the extension and -ENOSYS on one that does not.
 *
 * Permission is hereby granted, free of charge, to any person obtaining a
 * copy of this software and associated documentation files (the
 * "Software"), to deal in the Software without restriction, including
 * without limitation the rights to use, copy, modify, merge, publish,
 * distribute, sublicense, and/or sell copies of the Software, and to
 * permit persons to whom the Software is furnished to do so, subject to
 * the following conditions: the above copyright notice and this permission
 * notice shall be included in all copies or substantial portions of the
 * Software.  THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
 */

#ifndef __XEN_PUBLIC_GNTSOCK_REVOKE_H__
#define __XEN_PUBLIC_GNTSOCK_REVOKE_H__

#ifndef __KERNEL__
#include "grant_table.h"    /* Linux includes its own copy first. */
#endif

/*
 * Sub-op numbers, chosen far above the upstream range (0-12 in Xen 4.17)
 * so that upstream growth cannot collide with them before an upstream
 * submission assigns final numbers.  Both must stay below 4096
 * (GNTTABOP_CONTINUATION_ARG_SHIFT).
 */
#define GNTTABOP_map_revocable      0x800
#define GNTTABOP_revoke             0x801
#define GNTTABOP_set_revocable_only 0x802

/*
 * Grant entry flag (v1 flags and v2 hdr.flags), set by the granter:
 * the grant may only be mapped with GNTTABOP_map_revocable; a plain
 * GNTTABOP_map_grant_ref of it fails with GNTST_permission_denied.
 * Grant copies (GNTTABOP_copy) are transient and remain allowed.
 * A stock hypervisor ignores this bit: set it only after discovery.
 * Kernels whose grant-table code does not let callers add entry flags
 * use GNTTABOP_set_revocable_only instead, to the same effect.
 */
#define _GTF_revocable_only         (12)
#define GTF_revocable_only          (1U << _GTF_revocable_only)

/*
 * GNTTABOP_map_revocable: map a grant, naming a replacement frame.
 *
 * IN  host_addr:     PV mapper: machine address of the L1 page-table entry
 *                    to fill (@flags must contain GNTMAP_contains_pte).
 *                    Auto-translated (PVH/HVM) mapper: guest physical
 *                    address whose p2m entry gets the grant, as for
 *                    GNTTABOP_map_grant_ref in such a domain.
 * IN  replace_frame: a page the mapper owns: its MFN (PV), or the GFN of
 *                    one of its RAM pages (auto-translated).  Xen takes a
 *                    reference to it (and, PV, a writable type reference
 *                    for writable mappings) until the mapping is unmapped.
 *                    A frame used for a writable revocable mapping may not
 *                    be used for any other live revocable mapping;
 *                    read-only mappings may share a frame (GNTST_bad_page
 *                    otherwise).
 * IN  flags:         PV: GNTMAP_host_map | GNTMAP_contains_pte, optionally
 *                    GNTMAP_readonly, GNTMAP_application_map and guest
 *                    available bits (GNTMAP_guest_avail_mask, copied into
 *                    the PTE as for GNTTABOP_map_grant_ref).
 *                    Auto-translated: GNTMAP_host_map, optionally
 *                    GNTMAP_readonly.  Nothing else (no GNTMAP_device_map).
 * IN  ref, dom:      the grant, as for GNTTABOP_map_grant_ref.
 * OUT status:        GNTST_*.
 * OUT handle:        the mapping handle; unmap it with
 *                    GNTTABOP_unmap_grant_ref as any other mapping, before
 *                    or after a revoke (after one, host_addr must be the
 *                    same as at map time).
 *
 * On a revoke, a PV mapper's PTE (flags kept) and an auto-translated
 * mapper's p2m entry (type kept: the frame stays a grant mapping until it
 * is unmapped) are pointed at the replacement frame.
 *
 * The hypercall returns -EOPNOTSUPP for a PV caller that needs IOMMU grant
 * mappings (not implemented) and -ENOSYS on a stock hypervisor.
 */
struct gnttab_map_revocable {
    uint64_t host_addr;
    uint64_t replace_frame;
    uint32_t flags;
    grant_ref_t ref;
    domid_t dom;
    int16_t status;
    grant_handle_t handle;
};
typedef struct gnttab_map_revocable gnttab_map_revocable_t;

/*
 * GNTTABOP_revoke: the granter revokes every live revocable mapping of
 * one of its grants (the caller is always the granting domain).
 *
 * IN  ref:        the grant reference.
 * OUT status:     GNTST_okay when no mapping of the grant remains (the
 *                 granter may end foreign access and reuse the frame);
 *                 GNTST_eagain when pins remain: plain mappings made
 *                 before the grant became revocable-only, or a revocable
 *                 map still in flight; retry later;
 *                 GNTST_bad_gntref for an out-of-range reference.
 * OUT nr_revoked: number of mappings moved to replacement frames.
 */
struct gnttab_revoke {
    grant_ref_t ref;
    int16_t status;
    uint16_t nr_revoked;
};
typedef struct gnttab_revoke gnttab_revoke_t;

/*
 * GNTTABOP_set_revocable_only: the granter marks (enable = 1) or unmarks
 * (enable = 0) one of its grants as revocable-only, as GTF_revocable_only
 * does.  The grant entry must be GTF_permit_access at the time; the mark
 * applies while the entry keeps the same domid and frame (so a reused
 * entry does not inherit it), and it is dropped by enable = 0.  Mappings
 * that exist already are not affected.
 *
 * IN  ref, enable.
 * OUT status:     GNTST_okay, GNTST_bad_gntref, GNTST_general_error (entry
 *                 not GTF_permit_access), GNTST_no_space.
 */
struct gnttab_set_revocable_only {
    grant_ref_t ref;
    uint16_t enable;
    int16_t status;
};
typedef struct gnttab_set_revocable_only gnttab_set_revocable_only_t;

#ifdef __XEN__
DEFINE_XEN_GUEST_HANDLE(gnttab_map_revocable_t);
DEFINE_XEN_GUEST_HANDLE(gnttab_revoke_t);
DEFINE_XEN_GUEST_HANDLE(gnttab_set_revocable_only_t);
#endif

#endif /* __XEN_PUBLIC_GNTSOCK_REVOKE_H__ */

/*
 * Local variables:
 * mode: C
 * c-file-style: "BSD"
 * c-basic-offset: 4
 * tab-width: 4
 * indent-tabs-mode: nil
 * End:
 */
