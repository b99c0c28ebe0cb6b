/* SPDX-License-Identifier: MIT */
/* Revocable grant mappings: Linux's copy of the ABI that the xen-backend
 * patch series adds to Xen's public/grant_table.h.
 *
 * Linux keeps its own copies of Xen's interface headers
 * (include/xen/interface/); until an upstream Linux carries these
 * definitions in include/xen/interface/grant_table.h, gntsock carries them
 * here.  The xen stage of "make check" compiles this file and the patched
 * hypervisor's public/grant_table.h side by side and fails if any number,
 * size or offset differs (xen-backend/abi-check.sh).  The text below is the
 * patch's, in Linux's form (kernel types, tabs, no typedefs,
 * DEFINE_GUEST_HANDLE_STRUCT).
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

#ifndef _GNTSOCK_XEN_REVOKE_ABI_H
#define _GNTSOCK_XEN_REVOKE_ABI_H

#include <xen/interface/grant_table.h>

/* Revocable grant mappings (x86 only: CONFIG_GRANT_REVOCABLE).
 *
 * A mapping made with GNTTABOP_map_revocable names a replacement frame
 * owned by the mapping domain.  The granting domain can take its frame
 * back at any time with GNTTABOP_revoke: Xen points every revocable
 * mapping of the grant at its own replacement frame, flushes the mapping
 * domain's TLBs, and drops the pins and references the mappings held.
 * The mapping domain keeps a valid mapping (of its own page) until it
 * unmaps it as usual.  A granter can require that a grant be mapped only
 * revocably (GTF_revocable_only, GNTTABOP_set_revocable_only).
 *
 * Discovery: each of the three sub-ops with a count of 0 returns 0 when
 * the calling domain may use it, -EOPNOTSUPP when the hypervisor has the
 * extension but the caller may not use that sub-op (GNTTABOP_map_revocable
 * from a PV domain whose grant mappings need IOMMU mappings, or from a
 * domain with altp2m enabled), and -ENOSYS on a hypervisor without it.
 *
 * The sub-op numbers are out of the range upstream allocates from, so
 * that upstream growth cannot collide with them; an upstream submission
 * takes the next free numbers.  All are below 4096
 * (GNTTABOP_CONTINUATION_ARG_SHIFT).  The layouts are the same for 32- and
 * 64-bit guests, and each starts with the fields of the first version of
 * this interface at their old offsets.
 */
#define GNTTABOP_map_revocable		0x800
#define GNTTABOP_revoke			0x801
#define GNTTABOP_set_revocable_only	0x802

/* Grant entry flag (v1 flags, v2 hdr.flags) for GTF_permit_access entries:
 *  GTF_revocable_only: @domid may map the frame only with
 *      GNTTABOP_map_revocable; GNTTABOP_map_grant_ref of it fails with
 *      GNTST_permission_denied.  Copies remain allowed.  A hypervisor
 *      without revocable grant mappings ignores it. [GST]
 */
#define _GTF_revocable_only	12
#define GTF_revocable_only	BIT(_GTF_revocable_only)

/* GNTTABOP_map_revocable: map the grant entry (<dom>,<ref>) as
 * GNTTABOP_map_grant_ref does, naming a replacement frame.
 *
 * host_addr:  PV: machine address of the L1 page-table entry to fill
 *             (@flags must hold GNTMAP_host_map | GNTMAP_contains_pte).
 *             Translated (PVH, HVM): guest physical address whose p2m
 *             entry gets the grant, as for GNTTABOP_map_grant_ref.
 *             One revocable mapping per address: an address that a
 *             revocable mapping still uses (until it is unmapped, revoked
 *             or not) is refused (GNTST_bad_virt_addr).
 * replace_frame: a page the calling domain owns: its MFN (PV) or the GFN
 *             of one of its RAM pages (translated); not a page Xen shares
 *             with it.  Xen holds a reference to it (PV writable mappings:
 *             also a writable type reference) until the mapping is
 *             unmapped (GNTST_bad_page otherwise).
 * flags:      PV: GNTMAP_host_map | GNTMAP_contains_pte, optionally
 *             GNTMAP_readonly, GNTMAP_application_map and the guest
 *             available bits.  Translated: GNTMAP_host_map, optionally
 *             GNTMAP_readonly.  Nothing else (GNTST_general_error).
 * options:    none defined yet: must be 0 (GNTST_general_error).
 * status:     GNTST_okay, an error of GNTTABOP_map_grant_ref, or
 *             GNTST_no_space when the calling domain holds as many
 *             revocable mappings as Xen allows one domain
 *             ("gnttab_max_revocable" on Xen's command line, default 16384).
 * handle:     unmap with GNTTABOP_unmap_grant_ref, naming the same
 *             host_addr (anything else fails: GNTST_general_error),
 *             whether or not the granter revoked it meanwhile.
 *
 * On a revoke, Xen checks that the PTE (PV) or p2m entry (translated) at
 * host_addr is still the grant mapping it made, and points it at the
 * replacement frame with the mapping's own permissions; a p2m entry keeps
 * its grant type until the unmap.  If the calling domain changed or
 * removed that PTE or p2m entry itself, the mapping is taken as gone: the
 * revoke drops its pin, and its later unmap succeeds without touching
 * host_addr.
 */
struct gnttab_map_revocable {
	/* IN parameters. */
	u64 host_addr;
	u64 replace_frame;
	u32 flags;	/* GNTMAP_* */
	grant_ref_t ref;
	domid_t dom;
	/* OUT parameters. */
	s16 status;	/* => enum grant_status */
	grant_handle_t handle;
	/* IN parameters. */
	u32 options;	/* must be 0 */
	u32 pad;	/* must be 0 */
};

DEFINE_GUEST_HANDLE_STRUCT(gnttab_map_revocable);

/* GNTTABOP_revoke: the calling (granting) domain takes back the frame of
 * one of its grant entries from every revocable mapping of it.
 *
 * ref:        the grant reference.
 * flags:      GNTTAB_REVOKE_END_ACCESS: the granter is done with the
 *             entry.  From this call on no new mapping or copy of it
 *             succeeds, and once no mapping remains Xen ends the access
 *             itself (the entry becomes GTF_invalid, as the granter's own
 *             end of access would make it) and drops the entry's
 *             GNTTABOP_set_revocable_only mark, atomically with respect to
 *             any map, so that nobody can map it between the revoke and the
 *             end of access.  Other bits must be 0.
 * status:     GNTST_okay: no mapping of the entry remains (with
 *             GNTTAB_REVOKE_END_ACCESS: and access has been ended); the
 *             granter may reuse the frame at once.
 *             GNTST_eagain: a mapping remains that is not revocable (made
 *             with GNTTABOP_map_grant_ref), or a map, unmap or copy is in
 *             flight; retry.
 *             GNTST_eagain too if, with GNTTAB_REVOKE_END_ACCESS, the
 *             granter rewrote the entry since the first such call.
 *             GNTST_bad_gntref, GNTST_general_error (bad flags),
 *             GNTST_no_space (no memory to close the entry).
 * nr_revoked: mappings pointed at their replacement frames by this call.
 */
struct gnttab_revoke {
	/* IN parameters. */
	grant_ref_t ref;
	/* OUT parameters. */
	s16 status;	/* => enum grant_status */
	u16 nr_revoked;
	/* IN parameters. */
	u16 flags;	/* GNTTAB_REVOKE_* */
	u16 pad;	/* must be 0 */
};

DEFINE_GUEST_HANDLE_STRUCT(gnttab_revoke);

#define _GNTTAB_REVOKE_END_ACCESS	0
#define GNTTAB_REVOKE_END_ACCESS	BIT(_GNTTAB_REVOKE_END_ACCESS)

/* GNTTABOP_set_revocable_only: the calling (granting) domain marks one of
 * its grant entries revocable-only, as GTF_revocable_only does, for
 * kernels whose grant code cannot set that flag in the entry.
 *
 * ref:        the grant reference.
 * domid, frame: the mark applies to maps of @ref by @domid while the entry
 *             grants @frame (the value of its frame field), so that an
 *             entry reused for another domain or frame does not inherit
 *             it.  It may be set before the entry is written (then no
 *             plain mapping can be made at any time).
 * flags:      GNTTAB_REVOCABLE_ONLY_SET: set (or rebind) the mark; without
 *             it, remove the mark, and reopen the entry if a
 *             GNTTABOP_revoke with GNTTAB_REVOKE_END_ACCESS closed it
 *             without completing (for a granter that ends access itself).
 *             Other bits must be 0.  The mark also goes when
 *             GNTTABOP_revoke with GNTTAB_REVOKE_END_ACCESS ends access to
 *             the entry.  Mappings made already are not affected.
 * status:     GNTST_okay, GNTST_bad_gntref, GNTST_no_space,
 *             GNTST_general_error (bad flags).
 */
struct gnttab_set_revocable_only {
	/* IN parameters. */
	grant_ref_t ref;
	u16 flags;	/* GNTTAB_REVOCABLE_ONLY_* */
	/* OUT parameters. */
	s16 status;	/* => enum grant_status */
	/* IN parameters. */
	u64 frame;
	domid_t domid;
	u16 pad;	/* must be 0 */
	u32 pad2;	/* must be 0 */
};

DEFINE_GUEST_HANDLE_STRUCT(gnttab_set_revocable_only);

#define _GNTTAB_REVOCABLE_ONLY_SET	0
#define GNTTAB_REVOCABLE_ONLY_SET	BIT(_GNTTAB_REVOCABLE_ONLY_SET)

#endif /* _GNTSOCK_XEN_REVOKE_ABI_H */
