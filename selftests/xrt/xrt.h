/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gntsock_xrt: what the test module's files share.
 *
 * The module plays two roles, one per domain: the granter (xrt_granter.c:
 * grant pages, force-revoke them, check that it got them back whole) and
 * the mapper (xrt_check.c: the mappings, the "slots" they live in and the
 * checks of what the mapper can still reach; xrt_attack.c,
 * xrt_pv_attack.c and xrt_hvm_attack.c: the attacks of a malicious mapper
 * on the revocable grant mappings of the xen-backend extension).
 *
 * A slot is an address a mapping can be made at, and read and written
 * through: for a PV mapper an L1 page-table entry of a kernel mapping
 * (host_addr is its machine address, the mapping shows at its virtual
 * address), for an auto-translated (PVH, HVM) mapper an unpopulated guest
 * frame (host_addr is its guest physical address, the mapping shows in the
 * direct map).  Attacks name slots; the checks read what each slot shows.
 */
#ifndef _GNTSOCK_XRT_H
#define _GNTSOCK_XRT_H

#include <linux/types.h>
#include <linux/mm_types.h>
#include <xen/interface/grant_table.h>
#include "xen_revoke.h"

#define XRT_MAX			1000	/* grants of the plain round */
#define XRT_ATK_MAX		64	/* grants of one attack */
#define XRT_MAX_MAPS		8400	/* mappings of one attack (the cap) */
#define XRT_MAX_SLOTS		8448
#define XRT_MAX_L1		8	/* stand-alone L1 page tables */
#define XRT_MAX_EXPECT		16
#define XRT_RESULT_LEN		1536

/* Page contents: a u64 repeated over the page. */
#define XRT_OLD_MAGIC		0x21444c4f20545258ULL	/* "XRT OLD!" as granted */
#define XRT_NEW_MAGIC		0x21574e4520545258ULL	/* "XRT ENW!" after reclaim */
#define XRT_MAPPER_MAGIC	0x21545257544b5458ULL	/* mapper's writes */
#define XRT_OWN_MAGIC		0x4e574f5f54525800ULL	/* | serial: mapper's own */

/* Statuses reported for "not attempted". */
#define XRT_NA			99

/* struct gnttab_revoke of the first version of the ABI (8 bytes). */
struct xrt_revoke_v1 {
	grant_ref_t ref;
	s16 status;
	u16 nr_revoked;
};

/* gntsock_xrt_main.c */
__printf(1, 2) void xrt_result(const char *fmt, ...);
__printf(1, 2) void xrt_append(const char *fmt, ...);
int xrt_read_index(domid_t peer, grant_ref_t index_ref, unsigned int n,
		   grant_ref_t *refs);
void xrt_fill(void *p, u64 v);
unsigned int xrt_count_u64(const void *p, u64 v);

/* xrt_granter.c: the granter's side of the attacks. */
int xrt_abi(void);
int xrt_revoke_batch(const grant_ref_t *refs, unsigned int n, s16 *status,
		     u16 *nr);
int xrt_grant_marked(domid_t peer, struct page *page, bool ro, bool only,
		     grant_ref_t *ref, int *mark);
int xrt_cmd_agrant(const u32 *a, int n);
int xrt_cmd_areclaim(const u32 *a, int n);
int xrt_cmd_aend(const u32 *a, int n);
int xrt_cmd_acheck(const u32 *a, int n);
void xrt_granter_exit(void);

/* xrt_check.c: the mapper's records, slots and checks. */
enum xrt_kind { XRT_REV, XRT_PLAIN, XRT_PLAIN_VA };

struct xrt_map {
	u64 host_addr;		/* where Xen put it (what the unmap names) */
	unsigned long gmfn;	/* PV: the granter's frame, from our PTE */
	struct page *repl;	/* replacement page (in the context's pages) */
	grant_handle_t handle;
	grant_ref_t ref;
	domid_t dom;
	u32 flags;		/* GNTMAP_* */
	int slot;		/* slot it was made at, -1: a stand-alone L1 */
	enum xrt_kind kind;
	bool mapped;		/* we hold the handle */
	bool attack_ref;	/* of an attack page (not the index page) */
	bool gone;		/* we changed or removed its PTE / p2m entry */
};

struct xrt_l1 {
	struct page *page;
	unsigned long mfn;
	u64 magic;		/* what it holds once data */
	bool pinned;
	bool data;		/* unpinned and made an ordinary page again */
};

/* After the reclaim, @slot must show frame @mfn (PV: with @rw), whose
 * contents are @magic (translated: what is checked; 0: not checked).
 */
struct xrt_expect {
	int slot;
	unsigned long mfn;
	u64 magic;
	bool rw;
};

struct xrt_ctx {
	domid_t dom;
	grant_ref_t index_ref;
	unsigned int nrefs;
	grant_ref_t refs[XRT_ATK_MAX];
	/* Slots. */
	unsigned int nslots, next_slot;
	void *area;		/* PV: vmap of the filler page */
	struct page **spages;	/* translated: the unpopulated pages */
	u64 *saddr;		/* host_addr of each slot */
	pte_t **sptep;		/* PV: each slot's PTE */
	struct page *filler;
	bool leak_slots;
	/* Mappings. */
	unsigned int nmaps;
	struct xrt_map *maps;
	/* Pages we own: replacement pages and pages mapped by hand. */
	unsigned int npages, maxpages;
	struct page **pages;
	bool *page_gone;	/* RAM frame given back: repopulate first */
	/* Stand-alone L1 page tables (PV). */
	unsigned int nl1;
	struct xrt_l1 l1[XRT_MAX_L1];
	/* Page-table frames we know of (ours and the slots'). */
	unsigned int nptmfn;
	unsigned long ptmfn[XRT_MAX_L1 + 32];
	unsigned int nexp;
	struct xrt_expect exp[XRT_MAX_EXPECT];
	bool translated;
};

extern struct xrt_ctx *xrt_mctx;
extern unsigned int xrt_leaked_live;

int xrt_ctx_new(domid_t dom, grant_ref_t index_ref, unsigned int nrefs,
		unsigned int nslots);
void xrt_ctx_free(void);
struct page *xrt_own_page(void);
void xrt_own_lost(struct page *page);
void xrt_own_gone(struct page *page);
int xrt_take_slot(void);
void *xrt_slot_va(int slot);
u64 xrt_slot_pte(int slot);
struct xrt_map *xrt_new_map(void);
s16 xrt_map_rev(int slot, grant_ref_t ref, bool ro, struct page *repl,
		struct xrt_map **out);
int xrt_op_prep(struct gnttab_map_revocable *op, int *slot, struct page **repl,
		u32 flags, grant_ref_t ref, domid_t dom);
s16 xrt_map_rev_raw(struct gnttab_map_revocable *op, int slot,
		    struct page *repl, struct xrt_map **out);
s16 xrt_map_plain(int slot, domid_t dom, grant_ref_t ref, bool ro,
		  bool attack_ref, struct xrt_map **out);
s16 xrt_unmap(struct xrt_map *m, u64 host_addr);
int xrt_l1_new(void);
int xrt_l1_unpin(int i);
u64 xrt_l1_entry(int i, unsigned int e);
void xrt_expect(int slot, unsigned long mfn, u64 magic, bool rw);
void xrt_expect_page(int slot, struct page *page, bool rw);
unsigned long xrt_page_mfn(struct page *page);
u64 xrt_own_magic(struct page *page);
int xrt_pt_writable_type_test(struct page *page);
int xrt_mmu_update(u64 ptr, u64 val);
int xrt_mmuext(unsigned int cmd, unsigned long mfn);
int xrt_tlb_flush_all(void);
void xrt_gp_begin(void);
unsigned int xrt_gp_end(void);
int xrt_gp_init(void);
void xrt_gp_exit(void);
s16 xrt_copy_from(domid_t dom, grant_ref_t ref, struct page *dst);
s16 xrt_revoke_one(grant_ref_t ref, u16 flags, u16 *nr);
s16 xrt_set_only(grant_ref_t ref, domid_t domid, unsigned long frame,
		 u16 flags);
int xrt_cmd_post(const u32 *a, int n);

/* xrt_attack.c: attacks common to PV and translated mappers. */
int xrt_cmd_p2(const u32 *a, int n);
int xrt_cmd_p4map(const u32 *a, int n);
int xrt_cmd_p4remap(const u32 *a, int n);
int xrt_cmd_p4b_start(const u32 *a, int n);
int xrt_cmd_p4b_mark(const u32 *a, int n);
int xrt_cmd_p4b_stop(const u32 *a, int n);
int xrt_cmd_cap(const u32 *a, int n);
int xrt_cmd_many(const u32 *a, int n);
int xrt_cmd_p8(const u32 *a, int n);
int xrt_cmd_p10(const u32 *a, int n);
int xrt_cmd_gdprobe(const u32 *a, int n);
void xrt_attack_exit(void);

/* xrt_pv_attack.c: PV mappers (page tables). */
int xrt_cmd_pv_p1(const u32 *a, int n);
int xrt_cmd_pv_p2b(const u32 *a, int n);
int xrt_cmd_pv_p3a(const u32 *a, int n);
int xrt_cmd_pv_gone(const u32 *a, int n);
int xrt_cmd_pv_p8(void);
int xrt_make_gone(struct xrt_map *m, int how);

/* xrt_hvm_attack.c: translated mappers (p2m). */
int xrt_cmd_hvm_p1(const u32 *a, int n);
int xrt_cmd_hvm_map(const u32 *a, int n);
int xrt_cmd_hvm_act(const u32 *a, int n);
int xrt_cmd_hvm_p8(void);
int xrt_hvm_remove(struct xrt_map *m);

#endif /* _GNTSOCK_XRT_H */
