/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gntsock grants: buffers a socket grants to its peer domain
 * (grant_send.c), their pages pinned and granted (grant_pin.c), their
 * revocation and deferred reclaim (grant_reclaim.c); grants it received
 * (grant_recv.c), maps (grant_map.c) and unmaps (grant_unmap.c); the
 * events of both (grant_events.c), the lock, limits, counters and per-peer
 * accounting (grant_acct.c), and the layer's entry points (grant.c). The
 * files of each direction share a private header (grant_out.h,
 * grant_in.h). See Documentation/grants.rst.
 *
 * Lock order: lock_sock(), then gntsock_grant_lock, then a link's tx_lock.
 * mmap_lock comes before gntsock_grant_lock (mmap). gntsock_grant_lock is
 * a spinlock, under which nothing sleeps (grant_acct.c). The MMU notifier
 * of a mapped grant takes only that grant's map_lock (grant_unmap.c), a
 * spinlock that comes after gntsock_grant_lock and under which nothing
 * allocates or takes another lock.
 */
#ifndef _GNTSOCK_GRANT_H
#define _GNTSOCK_GRANT_H

#include <linux/list.h>
#include <linux/llist.h>
#include <linux/spinlock.h>
#include <linux/socket.h>
#include <net/sock.h>

#include <xen/grant_table.h>

#include "wire.h"

struct gntsock_link;
struct gntsock_gout;
struct gntsock_gin;

/**
 * struct gntsock_grants - the grants of one socket
 * @out: struct gntsock_gout this socket sent and still owns
 * @in: struct gntsock_gin this socket received and not yet released
 * @out_pages: pages in @out
 * @in_pages: pages in @in
 * @ev_lost: events the error queue had no room for since the last
 *	%GNTSOCK_EV_LOST report (gntsock_grant_event())
 *
 * Under gntsock_grant_lock, but @ev_lost (atomic: the error queue's reader
 * does not take the lock; 64 bits, so that no count of lost events ever
 * wraps to "none lost").
 */
struct gntsock_grants {
	struct list_head out;
	struct list_head in;
	atomic64_t ev_lost;
	u32 out_pages;
	u32 in_pages;
};

/**
 * struct gntsock_grant_limits - net.gntsock.* sysctls
 * @require_cap: sending a grant needs CAP_IPC_LOCK (0 or 1)
 * @max_pages_msg: pages per grant
 * @max_pages_sock: pages a socket may have granted at once
 * @max_pages_peer: pages granted to one peer domain at once
 * @max_in_pages_sock: pages a socket may hold received and unreleased
 * @revoke_timeout_ms: how long a revoke waits for the peer's answer
 * @reclaim_batch: quarantined grants retried per reclaim pass
 * @reclaim_interval_ms: time between reclaim passes
 * @quarantine_max_pages: pages the deferred list may hold in all; beyond
 *	it new grants to every peer are refused
 * @quarantine_max_pages_peer: pages of grants to one peer domain the
 *	deferred list may hold; beyond it new grants to that peer are refused
 * @tombstones_max: tombstones kept in all; beyond it the oldest of the
 *	peer that holds most goes
 * @tombstones_max_peer: tombstones kept for one peer domain; beyond it its
 *	oldest goes
 */
struct gntsock_grant_limits {
	unsigned int require_cap;
	unsigned int max_pages_msg;
	unsigned int max_pages_sock;
	unsigned int max_pages_peer;
	unsigned int max_in_pages_sock;
	unsigned int revoke_timeout_ms;
	unsigned int reclaim_batch;
	unsigned int reclaim_interval_ms;
	unsigned int quarantine_max_pages;
	unsigned int quarantine_max_pages_peer;
	unsigned int tombstones_max;
	unsigned int tombstones_max_peer;
};

/* Counters, /proc/net/gntsock_grants. */
struct gntsock_grant_stats {
	atomic64_t offered;	/* grants sent */
	atomic64_t offered_plain; /* of those, not revocable-only */
	atomic64_t mapped;	/* received grants mapped */
	atomic64_t mapped_plain; /* of those, mapped without a replacement */
	atomic64_t unmapped;	/* received grants unmapped */
	atomic64_t released;	/* sent grants ended after the peer's release */
	atomic64_t revoked;	/* sent grants ended after a cooperative revoke */
	atomic64_t forced;	/* sent grants taken back by the hypervisor */
	atomic64_t quarantined;	/* sent grants moved to the deferred list */
	atomic64_t reclaimed;	/* deferred grants ended later */
	atomic64_t refused;	/* grants refused (receiver limits) */
	atomic64_t violations;	/* bad grant messages from peers */
	atomic64_t events_lost;	/* events a full error queue had no room for */
	atomic64_t quarantine_full; /* grants refused: a quarantine budget full */
	atomic64_t tombs_dropped; /* tombstones dropped for a tombstone budget */
	atomic64_t killed_mapping; /* received grants revoked, or their link
				    * lost, while mmap() mapped them
				    */
	atomic_t out_grants;	/* sent grants alive (pinned) */
	atomic_t out_pages;
	atomic_t in_grants;	/* received grants not released */
	atomic_t in_mapped;	/* received grants mapped now */
	atomic_t in_held;	/* unmapped received grants whose pages are
				 * still referenced (vmsplice, O_DIRECT)
				 */
	atomic_t in_held_pages;	/* their pages, kept out of the pool */
	atomic64_t in_held_total; /* received grants ever held so */
	atomic_t deferred;	/* grants on the deferred list now */
	atomic_t deferred_pages;
};

extern struct gntsock_grant_limits gntsock_grant_limits;
extern struct gntsock_grant_stats gntsock_grant_stats;
extern spinlock_t gntsock_grant_lock;

/**
 * struct gntsock_grant_dispose - the end of a record, deferred until
 *	gntsock_grant_lock is dropped (gntsock_grant_dispose())
 * @node: entry in the dispose list
 * @fn: what to do
 */
struct gntsock_grant_dispose {
	struct llist_node node;
	void (*fn)(struct gntsock_grant_dispose *d);
};

void gntsock_grant_dispose(struct gntsock_grant_dispose *d,
			   void (*fn)(struct gntsock_grant_dispose *d));
void gntsock_grant_dispose_flush(void);

/**
 * struct gntsock_peer_acct - per peer domain accounting (grant_acct.c)
 * @out_pages: pages granted to the peer, in flight
 * @out_grants: grants to the peer in flight
 * @in_grants: grants from the peer not yet released
 * @deferred_pages: pages of grants to the peer on the deferred list
 *	(its share of quarantine_max_pages, quarantine_max_pages_peer)
 * @tombs: the peer's tombstones (struct gntsock_gout), oldest first
 * @ntombs: entries of @tombs
 *
 * Made before the first grant to or from the peer, freed at module
 * unload; under gntsock_grant_lock.
 */
struct gntsock_peer_acct {
	u32 out_pages;
	u32 out_grants;
	u32 in_grants;
	u32 deferred_pages;
	struct list_head tombs;
	u32 ntombs;
};

int gntsock_peer_acct_make(domid_t peer);
struct gntsock_peer_acct *gntsock_peer_acct(domid_t peer);
struct gntsock_peer_acct *gntsock_peer_acct_most_tombs(struct gntsock_peer_acct *pref);

/* grant_send.c */
void gntsock_grants_init(struct gntsock_grants *gs);
int gntsock_grant_prepare(struct sock *sk, struct gntsock_grants *gs,
			  struct gntsock_link *link, struct msghdr *msg,
			  struct gntsock_gout **out);
int gntsock_grant_put(struct gntsock_link *link, struct gntsock_msg_hdr *h,
		      struct gntsock_gout *g);
void gntsock_grant_committed(struct gntsock_gout *g);
void gntsock_grant_abort(struct gntsock_gout *g);
int gntsock_grant_revoke_cookie(struct sock *sk, struct gntsock_grants *gs,
				u64 cookie);
void gntsock_grant_out_release(struct gntsock_link *link,
			       const struct gntsock_msg_hdr *h);
void gntsock_grant_out_close(struct gntsock_grants *gs);
void gntsock_grant_out_link_down(struct gntsock_link *link);
void gntsock_grant_out_exit(void);

/* grant_reclaim.c */
void gntsock_reclaim_start(void);
void gntsock_reclaim_stop(void);

/* grant_events.c */
void gntsock_grant_event(struct sock *sk, struct gntsock_grants *gs,
			 u32 type, u32 id, u64 cookie, u32 pages);
bool gntsock_grant_errq_pending(struct sock *sk, struct gntsock_grants *gs);
int gntsock_grant_recv_errqueue(struct sock *sk, struct gntsock_grants *gs,
				struct msghdr *msg);

/* grant_recv.c */
struct gntsock_gin *gntsock_grant_in_new(struct gntsock_link *link,
					 struct sock *sk,
					 struct gntsock_grants *gs,
					 const struct gntsock_msg_hdr *h,
					 bool accept);
void gntsock_grant_in_deliver(struct gntsock_gin *gin, struct msghdr *msg);
void gntsock_grant_in_drop(struct gntsock_gin *gin);
void gntsock_grant_in_refuse(struct gntsock_gin *gin);
int gntsock_grant_release_id(struct gntsock_grants *gs, u32 id);
void gntsock_grant_in_revoke(struct gntsock_link *link,
			     const struct gntsock_msg_hdr *h);
void gntsock_grant_in_close(struct gntsock_grants *gs);
void gntsock_grant_in_link_down(struct gntsock_link *link);
bool gntsock_grant_map_revocable(void);

/* grant_map.c */
int gntsock_grant_mmap(struct sock *sk, struct gntsock_grants *gs,
		       struct vm_area_struct *vma);

/* grant_unmap.c */
int gntsock_grant_in_init(void);
void gntsock_grant_in_exit(void);

/* grant.c */
void gntsock_grant_sock_close(struct gntsock_grants *gs);
int gntsock_grant_init(void);
void gntsock_grant_exit(void);
void gntsock_grant_sock_destruct(struct sock *sk);

/* grant_acct.c */
void gntsock_peer_acct_show(struct seq_file *m);
void gntsock_peer_acct_exit(void);

#endif /* _GNTSOCK_GRANT_H */
