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
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <xen/grant_table.h>

#include "grant.h"

enum gntsock_gin_state {
	GIN_QUEUED,	/* in the socket's receive queue */
	GIN_DELIVERED,	/* the application got its cmsg */
	GIN_MAPPING,	/* mmap() is mapping it, without gntsock_grant_lock */
	GIN_MAPPED,	/* mapped into a VMA */
	GIN_UNMAPPED,	/* was mapped, no more: release pending */
	GIN_DEAD,	/* revoked or link gone; the granter knows */
	GIN_FREE,	/* released */
};

/* What a kill that came while mmap() was mapping leaves it to do. */
enum gntsock_gin_kill {
	GIN_KILL_NONE,
	GIN_KILL_SILENT,	/* the link went down */
	GIN_KILL_ANSWER,	/* revoked: answer once unmapped */
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
 * @kill: enum gntsock_gin_kill, under gntsock_grant_lock: a kill that
 *	came during GIN_MAPPING, for mmap() to carry out
 * @map_lock: protects @mapped and the mapping (@handles, @repl, the
 *	zap); the only lock the MMU notifier takes; a spinlock under which
 *	nothing allocates, frees with vfree() or takes another lock. During
 *	GIN_MAPPING the mapping is mmap()'s alone
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
 * @free_d: frees the record without gntsock_grant_lock
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
	u8 kill;
	spinlock_t map_lock;	/* see @map_lock above */
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
	struct gntsock_grant_dispose free_d;
	grant_ref_t refs[];
};

/* grant_recv.c */
struct gntsock_gin *gntsock_gin_lookup(struct gntsock_grants *gs,
				       u32 id, bool queued);
void gntsock_gin_kill(struct gntsock_gin *gin, bool answer);

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
