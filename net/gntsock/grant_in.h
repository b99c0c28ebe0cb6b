/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gntsock grants, receiving side: what its three files share, the record
 * of a grant that arrived (struct gntsock_gin) and the functions one of
 * them calls in another. Nothing else includes it: the rest of the module
 * sees a record only as a pointer (grant.h).
 *
 *   grant_recv.c   the records: arrival, delivery, release, revoke, link
 *                  down
 *   grant_map.c    mapping a grant into the application: mmap()
 *   grant_unmap.c  unmapping it (MMU notifier, VMA, zap), freeing it
 */
#ifndef _GNTSOCK_GRANT_IN_H
#define _GNTSOCK_GRANT_IN_H

#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <xen/grant_table.h>

#include "grant.h"

enum gntsock_gin_state {
	GIN_QUEUED,	/* in the socket's receive queue */
	GIN_DELIVERED,	/* the application got its cmsg */
	GIN_MAPPED,	/* mapped into a VMA */
	GIN_UNMAPPED,	/* was mapped, no more: release pending */
	GIN_DEAD,	/* revoked or link gone; the granter knows */
	GIN_FREE,	/* released */
};

/**
 * struct gntsock_gin - a grant this kernel received
 * @kref: the socket's list, the receive queue entry and the VMA
 * @hnode: entry in gntsock_gin_hash while the granter may revoke it
 * @sock_node: entry in the owner's gntsock_grants.in
 * @link: the link it came on, reference held
 * @owner: the socket's grants, NULL once released
 * @sk: the socket, valid while @owner is set
 * @id: the granter's id
 * @npages: pages
 * @writable: may be mapped writable
 * @state: enum gntsock_gin_state, under gntsock_grant_lock; GIN_MAPPED
 *	may lag behind @mapped (the notifier does not take that lock)
 * @map_lock: protects @mapped and the mapping (@handles, @repl, the
 *	zap); the only lock the MMU notifier takes; nothing allocates or
 *	takes another lock under it
 * @mapped: the grant is mapped now
 * @unmap_ops: @npages unmap operations, allocated at mmap()
 * @unmap_idx: @npages indexes into @handles, allocated at mmap()
 * @gone: @npages flags, which replacement pages Xen released
 * @held_node: entry in gntsock_held_list while its @pages wait for
 *	their last references (the rest of the record is freed by then)
 * @held_age: polls of @held_node so far
 * @vmas: VMAs pointing at this grant (mremap copies)
 * @notifier: unmaps before the kernel zaps the range
 * @notifier_live: @notifier is registered
 * @start: user address of the mapping
 * @map_flags: GNTMAP_* flags of the mapping
 * @pte: per page, the host_addr of its mapping: machine address of the
 *	user PTE (PV), or guest physical address of @pages[i]
 *	(auto-translated)
 * @handles: grant handles of the mapping
 * @pages: auto-translated only: the unpopulated pages whose frames hold
 *	the grant, inserted into the VMA; NULL on PV
 * @zap_work: auto-translated only: zaps the VMA after an unmap that the
 *	application did not ask for
 * @zap_mm: the mm to zap, held (mmgrab) while @zap_work is pending
 * @zap_event: @zap_work queues the revoke event once the range is zapped
 * @repl: replacement pages of a revocable mapping, NULL for a plain one;
 *	a read-only grant has one page, in @repl[0]
 * @nrepl: pages in @repl
 * @refs: the granter's references
 */
struct gntsock_gin {
	struct kref kref;
	struct hlist_node hnode;
	struct list_head sock_node;
	struct gntsock_link *link;
	struct gntsock_grants *owner;
	struct sock *sk;
	u32 id;
	u32 npages;
	bool writable;
	int state;
	struct mutex map_lock;	/* see @map_lock above */
	bool mapped;
	struct gnttab_unmap_grant_ref *unmap_ops;
	u32 *unmap_idx;
	bool *gone;
	struct list_head held_node;
	unsigned int held_age;
	unsigned int vmas;
	struct mmu_interval_notifier notifier;
	bool notifier_live;
	unsigned long start;
	u32 map_flags;
	u64 *pte;
	grant_handle_t *handles;
	struct page **pages;
	struct work_struct zap_work;
	struct mm_struct *zap_mm;
	bool zap_event;
	struct page **repl;
	u32 nrepl;
	grant_ref_t refs[];
};

/* grant_recv.c */
struct gntsock_gin *gntsock_gin_lookup(struct gntsock_grants *gs,
				       u32 id, bool queued);

/* grant_unmap.c: the VMA of a mapped grant and the notifier of its range,
 * both set up by gntsock_grant_mmap()
 */
extern const struct vm_operations_struct gntsock_gin_vmops;
extern const struct mmu_interval_notifier_ops gntsock_gin_mn_ops;

void gntsock_gin_put(struct gntsock_gin *gin);
void gntsock_gin_free_repl(struct gntsock_gin *gin, const bool *gone);
u32 gntsock_gin_unmap_pages(struct gntsock_gin *gin);
void gntsock_gin_sync_state(struct gntsock_gin *gin);
bool gntsock_gin_take_down(struct gntsock_gin *gin);

#endif /* _GNTSOCK_GRANT_IN_H */
