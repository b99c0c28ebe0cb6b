/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gntsock grants, sending side: what its three files share, the record of
 * a grant we made (struct gntsock_gout) and the functions one of them calls
 * in another. Nothing else includes it: the rest of the module sees a
 * record only as a pointer (grant.h).
 *
 *   grant_send.c     sendmsg()'s grant cmsg, the records in flight, what
 *                    comes to them (release, revoke, close, link down)
 *   grant_pin.c      pinning the pages and granting them
 *   grant_reclaim.c  how a grant ends: revoke, force, quarantine,
 *                    tombstones, the deferred reclaim
 */
#ifndef _GNTSOCK_GRANT_OUT_H
#define _GNTSOCK_GRANT_OUT_H

#include <linux/list.h>
#include <linux/mm_types.h>
#include <linux/types.h>
#include <xen/grant_table.h>

#include "grant.h"

enum gntsock_gout_state {
	GOUT_OFFERED,		/* the peer may map it */
	GOUT_REVOKING,		/* GRANT_REVOKE sent, waiting for the answer */
	GOUT_QUARANTINED,	/* on the deferred list */
	GOUT_TOMB,		/* ended before the peer answered: tombstone */
};

/**
 * struct gntsock_gout - a grant this kernel made
 * @hnode: entry in gntsock_gout_hash, by @id
 * @sock_node: entry in the owning socket's gntsock_grants.out
 * @reclaim_node: entry in gntsock_reclaim_list (REVOKING, QUARANTINED),
 *	or in its peer's gntsock_peer_acct.tombs (TOMB)
 * @link: link to the peer, reference held
 * @pa: the peer's accounting (made before the grant, never freed while
 *	the module is loaded)
 * @owner: owning socket's grants, NULL once the socket closed
 * @sk: owning socket, valid while @owner is set
 * @id: grant id on the wire, unique in this kernel
 * @npages: pages
 * @writable: the peer may write
 * @revocable: the references are marked revocable-only (the peer can
 *	map revocably and this domain can revoke); otherwise a plain grant
 * @state: enum gntsock_gout_state
 * @sending: sendmsg() still owns it (between prepare and commit/abort):
 *	nobody else may free it; what happens meanwhile is noted below
 * @revoke_pending: a revoke came while @sending
 * @release_flags: a GRANT_RELEASE came while @sending (flags | 0x8000)
 * @link_dead: the link went down while @sending
 * @late_release: quarantined after an unanswered GRANT_REVOKE on a live
 *	link: the peer's GRANT_RELEASE may still come
 * @cookie: the application's cookie
 * @deadline: jiffies when a revoke gives up waiting
 * @pages: pinned pages
 * @dropped_pages: @pages once ended, until the dispose work unpins them
 * @unpin_d: unpins @dropped_pages without gntsock_grant_lock (a
 *	tombstone's)
 * @free_d: unpins @pages and frees the record without gntsock_grant_lock,
 *	after @unpin_d
 * @refs: grant references, 0 once ended and freed
 */
struct gntsock_gout {
	struct hlist_node hnode;
	struct list_head sock_node;
	struct list_head reclaim_node;
	struct gntsock_link *link;
	struct gntsock_peer_acct *pa;
	struct gntsock_grants *owner;
	struct sock *sk;
	u32 id;
	u32 npages;
	bool writable;
	bool revocable;
	int state;
	bool sending;
	bool revoke_pending;
	bool link_dead;
	bool late_release;
	u16 release_flags;
	u64 cookie;
	unsigned long deadline;
	struct page **pages;
	struct page **dropped_pages;
	struct gntsock_grant_dispose unpin_d;
	struct gntsock_grant_dispose free_d;
	grant_ref_t refs[];
};

/* grant_pin.c */
int gntsock_grant_pin(unsigned long addr, u32 npages, bool writable,
		      struct page **pages);
int gntsock_gout_grant(struct gntsock_gout *g, domid_t peer, bool revocable);

/* grant_reclaim.c */
bool gntsock_gout_end_access(struct gntsock_gout *g, u32 *swapped);
void gntsock_acct(domid_t peer, u32 npages, bool add);
void gntsock_gout_detach(struct gntsock_gout *g);
void gntsock_gout_finish(struct gntsock_gout *g, u32 event);
void gntsock_gout_quarantine(struct gntsock_gout *g);
void gntsock_gout_tomb_free(struct gntsock_gout *g);
void gntsock_gout_forced(struct gntsock_gout *g);
void gntsock_gout_send_revoke(struct gntsock_gout *g);

#endif /* _GNTSOCK_GRANT_OUT_H */
