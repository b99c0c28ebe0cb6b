// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock grants, receiving side: the record of a grant that arrived
 * (struct gntsock_gin, grant_in.h), its delivery as a recvmsg() cmsg, its
 * release (GNTSOCK_IOC_RELEASE, a queue entry purged unread, close), the
 * granter's revoke and the link's end, and the GRANT_RELEASE that tells
 * the granter it may end access. Also what this domain tells its peers
 * when a link connects: whether it maps their grants revocably
 * (revocable_map). Mapping a grant into the application with mmap() on
 * the socket is grant_map.c's; unmapping it and freeing the record,
 * grant_unmap.c's.
 *
 * Each grant is mapped at most once, only through the socket it arrived
 * on, never after a revoke, and every unmap is reported (GRANT_RELEASE
 * once the application released it, or at once after a revoke).
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/hashtable.h>
#include <linux/moduleparam.h>
#include <linux/sysfs.h>

#include "gntsock.h"
#include "grant.h"
#include "grant_in.h"
#include "xen_revoke.h"

static DEFINE_HASHTABLE(gntsock_gin_hash, 8);

/* Testing the granter's quarantine and forced revoke end to end: writing
 * N here (root only) makes this kernel ignore the next N GRANT_REVOKE
 * messages, or losses of a link under a mapped grant, as a peer kernel
 * that does not cooperate would. Reads back what is left.
 */
static int gntsock_fault_ignore_revoke;
module_param_named(fault_ignore_revoke, gntsock_fault_ignore_revoke, int,
		   0600);
MODULE_PARM_DESC(fault_ignore_revoke,
		 "testing: ignore the next N grant revokes or link losses (0: off)");

/* fault_ignore_revoke: should this revoke (@what) of @gin be ignored? */
static bool gntsock_gin_stubborn(struct gntsock_gin *gin, const char *what)
{
	if (READ_ONCE(gntsock_fault_ignore_revoke) <= 0)
		return false;
	WRITE_ONCE(gntsock_fault_ignore_revoke,
		   gntsock_fault_ignore_revoke - 1);
	pr_info("gntsock: ignoring the %s of grant %u from domain %u (fault_ignore_revoke)\n",
		what, gin->id, gin->link->peer);
	return true;
}

/* Testing the per-link negotiation: "0" makes this domain tell peers on
 * links that connect from now on that it cannot map revocably, as a PV
 * domain whose grant maps need IOMMU mappings must; it then gets plain
 * grants and maps them plainly. "auto" (default) tells them what the
 * hypervisor allows.
 */
static bool gntsock_revocable_map_off;

static int gntsock_revocable_map_set(const char *val,
				     const struct kernel_param *kp)
{
	if (sysfs_streq(val, "auto"))
		WRITE_ONCE(gntsock_revocable_map_off, false);
	else if (sysfs_streq(val, "0"))
		WRITE_ONCE(gntsock_revocable_map_off, true);
	else
		return -EINVAL;
	return 0;
}

static int gntsock_revocable_map_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n",
			  READ_ONCE(gntsock_revocable_map_off) ? "0" : "auto");
}

static const struct kernel_param_ops gntsock_revocable_map_ops = {
	.set = gntsock_revocable_map_set,
	.get = gntsock_revocable_map_get,
};
module_param_cb(revocable_map, &gntsock_revocable_map_ops, NULL, 0600);
MODULE_PARM_DESC(revocable_map,
		 "testing: auto (default) or 0: tell peers on links connecting from now on that this domain cannot map grants revocably");

/**
 * gntsock_grant_map_revocable() - may peers grant us revocable-only grants?
 *
 * What a link tells its peer when it connects: true when the hypervisor
 * lets this domain map grants revocably (gntsock_xen_map_revocable_supported())
 * and the revocable_map parameter is "auto". The grants of that link are
 * then mapped revocably, otherwise plainly.
 *
 * Return: true if this domain maps revocably on links connecting now.
 */
bool gntsock_grant_map_revocable(void)
{
	return !READ_ONCE(gntsock_revocable_map_off) &&
		gntsock_xen_map_revocable_supported();
}

static struct gntsock_gin *gntsock_gin_find(struct gntsock_link *link, u32 id)
{
	struct gntsock_gin *gin;

	hash_for_each_possible(gntsock_gin_hash, gin, hnode, id)
		if (gin->id == id && gin->link == link)
			return gin;
	return NULL;
}

/**
 * gntsock_gin_lookup() - a grant this socket received, by id
 * @gs: the socket's grants; gntsock_grant_lock held
 * @id: the granter's id
 * @queued: also a grant still in the receive queue
 *
 * The grant @id this socket received: a live one before a dead one, as
 * the granter may reuse the id of a grant we answered for (a dead one stays
 * listed, so that a late mmap() of it gets ENOLINK). Skips queued ones
 * unless @queued.
 *
 * Return: the grant, or NULL.
 */
struct gntsock_gin *gntsock_gin_lookup(struct gntsock_grants *gs,
				       u32 id, bool queued)
{
	struct gntsock_gin *gin, *dead = NULL;

	lockdep_assert_held(&gntsock_grant_lock);
	list_for_each_entry(gin, &gs->in, sock_node) {
		if (gin->id != id || (!queued && gin->state == GIN_QUEUED))
			continue;
		if (gin->state != GIN_DEAD)
			return gin;
		dead = dead ?: gin;
	}
	return dead;
}

static void gntsock_send_release(struct gntsock_link *link, u32 id, u16 flags)
{
	struct gntsock_msg_hdr h = {
		.op = GNTSOCK_OP_GRANT_RELEASE,
		.type = GNTSOCK_TYPE_STREAM,
		.flags = flags,
		.grant_id = id,
	};

	gntsock_link_send_ctl(link, &h);
}

static void gntsock_gin_unhash(struct gntsock_gin *gin)
{
	struct gntsock_peer_acct *pa;

	if (hlist_unhashed(&gin->hnode))
		return;
	hash_del(&gin->hnode);
	pa = gntsock_peer_acct(gin->link->peer);
	if (pa)
		pa->in_grants--;
	atomic_dec(&gntsock_grant_stats.in_grants);
}

/* Drop the socket's reference: gntsock_grant_lock held. */
static void gntsock_gin_detach(struct gntsock_gin *gin)
{
	lockdep_assert_held(&gntsock_grant_lock);
	if (!gin->owner)
		return;
	list_del_init(&gin->sock_node);
	gin->owner->in_pages -= gin->npages;
	gin->owner = NULL;
	gin->sk = NULL;
	gntsock_gin_put(gin);
}

/* The application is done (release or close): tell the granter unless it
 * knows already. gntsock_grant_lock held; the grant is not mapped.
 */
static void gntsock_gin_release(struct gntsock_gin *gin, u16 flags)
{
	lockdep_assert_held(&gntsock_grant_lock);
	if (!hlist_unhashed(&gin->hnode)) {
		gntsock_send_release(gin->link, gin->id, flags);
		gntsock_gin_unhash(gin);
	}
	gin->state = GIN_FREE;
	gntsock_gin_detach(gin);
}

/**
 * gntsock_grant_in_new() - a GRANT message arrived for a socket
 * @link: the link
 * @sk: the socket it is for (its lock need not be owned: the socket's
 *	grant lists are under gntsock_grant_lock)
 * @gs: the socket's grants
 * @h: the validated header; the payload is still in the ring
 * @accept: the socket can take it (connected, being read)
 *
 * Return: the new record for the receive queue (one reference for the
 * queue entry), or NULL if refused (the granter is told) or invalid (a
 * counted violation resets the link).
 */
struct gntsock_gin *gntsock_grant_in_new(struct gntsock_link *link,
					 struct sock *sk,
					 struct gntsock_grants *gs,
					 const struct gntsock_msg_hdr *h,
					 bool accept)
{
	struct gntsock_grant_msg *m;
	struct gntsock_peer_acct *pa;
	struct gntsock_gin *gin = NULL;

	m = kmalloc(h->len, GFP_KERNEL);
	if (!m) {
		/* Our memory ran short, the peer did nothing wrong: refuse
		 * this grant (the granter ends it), as when the record below
		 * cannot be allocated; no violation, no link reset.
		 */
		struct gntsock_grant_msg id;

		atomic64_inc(&gntsock_grant_stats.refused);
		if (h->len < sizeof(id))
			return NULL;
		gntsock_link_rx_payload(link, &id, sizeof(id));
		/* (id 0 is no grant: a release of it would be a violation) */
		if (id.id)
			gntsock_send_release(link, id.id, GNTSOCK_REL_REFUSED);
		return NULL;
	}
	gntsock_link_rx_payload(link, m, h->len);
	if (gntsock_grant_payload_validate(m, h->len) != GNTSOCK_V_NONE) {
		atomic64_inc(&gntsock_grant_stats.violations);
		gntsock_link_violation(link, GNTSOCK_V_GRANT);
		goto out;
	}
	/* Made before the lock, a spinlock that every socket's grants share.
	 * Without them the grant is refused, as when full.
	 */
	gin = kvzalloc(struct_size(gin, refs, m->npages), GFP_KERNEL);
	if (gin && gntsock_peer_acct_make(link->peer)) {
		kvfree(gin);
		gin = NULL;
	}
	spin_lock(&gntsock_grant_lock);
	if (gntsock_gin_find(link, m->id)) {
		spin_unlock(&gntsock_grant_lock);
		atomic64_inc(&gntsock_grant_stats.violations);
		gntsock_link_violation(link, GNTSOCK_V_GRANT);
		goto out_free;
	}
	pa = gntsock_peer_acct(link->peer);
	/* The id of a dead grant the application has not released yet is
	 * still taken on this socket: a new grant under it would make
	 * mmap() and GNTSOCK_IOC_RELEASE ambiguous. Refused, as when full.
	 */
	if (!gin || !accept || !pa ||
	    gs->in_pages + m->npages >
	    READ_ONCE(gntsock_grant_limits.max_in_pages_sock) ||
	    gntsock_gin_lookup(gs, m->id, true)) {
		spin_unlock(&gntsock_grant_lock);
		atomic64_inc(&gntsock_grant_stats.refused);
		gntsock_send_release(link, m->id, GNTSOCK_REL_REFUSED);
		goto out_free;
	}
	spin_lock_init(&gin->map_lock);
	kref_init(&gin->kref);		/* the socket's list */
	kref_get(&gin->kref);		/* the receive queue entry */
	kref_get(&link->kref);
	gin->link = link;
	gin->id = m->id;
	gin->npages = m->npages;
	gin->writable = h->flags & GNTSOCK_GRANT_F_WRITABLE;
	memcpy(gin->refs, m->refs, m->npages * sizeof(m->refs[0]));
	gin->state = GIN_QUEUED;
	hash_add(gntsock_gin_hash, &gin->hnode, gin->id);
	pa->in_grants++;
	atomic_inc(&gntsock_grant_stats.in_grants);
	gin->owner = gs;
	gin->sk = sk;
	list_add_tail(&gin->sock_node, &gs->in);
	gs->in_pages += gin->npages;
	spin_unlock(&gntsock_grant_lock);
	kfree(m);
	return gin;
out_free:
	kvfree(gin);
	gin = NULL;
out:
	kfree(m);
	return gin;
}

/**
 * gntsock_grant_in_deliver() - recvmsg() reached a queued grant
 * @gin: the grant; the queue entry's reference is dropped
 * @msg: gets the %GNTSOCK_CMSG_GRANT_INFO cmsg
 *
 * A grant revoked while queued delivers nothing (its owner has the
 * event). Without room for the cmsg the grant is released at once and
 * MSG_CTRUNC set, as SCM_RIGHTS does with file descriptors. Called without
 * the socket's lock: writing the cmsg may fault for long.
 */
void gntsock_grant_in_deliver(struct gntsock_gin *gin, struct msghdr *msg)
{
	struct gntsock_grant_info info;
	int trunc = msg->msg_flags & MSG_CTRUNC;
	bool deliver;
	int err = 0;

	/* put_cmsg() may fault (mmap_lock): not under gntsock_grant_lock. */
	spin_lock(&gntsock_grant_lock);
	deliver = gin->state == GIN_QUEUED;
	if (deliver)
		gin->state = GIN_DELIVERED;
	info.id = gin->id;
	info.flags = gin->writable ? GNTSOCK_GRANT_WRITABLE : 0;
	info.len = (u64)gin->npages << PAGE_SHIFT;
	spin_unlock(&gntsock_grant_lock);
	if (deliver)
		err = put_cmsg(msg, SOL_GNTSOCK, GNTSOCK_CMSG_GRANT_INFO,
			       sizeof(info), &info);
	if (deliver && (err || (!trunc && (msg->msg_flags & MSG_CTRUNC)))) {
		spin_lock(&gntsock_grant_lock);
		if (gin->state == GIN_DELIVERED)
			gntsock_gin_release(gin, 0);
		spin_unlock(&gntsock_grant_lock);
	}
	gntsock_gin_put(gin);
}

/**
 * gntsock_grant_in_drop() - a queued grant's entry is purged unread
 * @gin: the grant; the queue entry's reference is dropped
 */
void gntsock_grant_in_drop(struct gntsock_gin *gin)
{
	spin_lock(&gntsock_grant_lock);
	if (gin->state == GIN_QUEUED || gin->state == GIN_DEAD)
		gntsock_gin_release(gin, 0);
	spin_unlock(&gntsock_grant_lock);
	gntsock_gin_put(gin);
}

/**
 * gntsock_grant_in_refuse() - a queued grant the socket cannot take
 * @gin: the grant, made before its socket's lock was owned (a message of
 *	the socket's backlog); the queue entry's reference is dropped
 *
 * As gntsock_grant_in_drop(), but the granter hears "refused", as for a
 * grant refused on arrival.
 */
void gntsock_grant_in_refuse(struct gntsock_gin *gin)
{
	spin_lock(&gntsock_grant_lock);
	if (gin->state == GIN_QUEUED || gin->state == GIN_DEAD) {
		atomic64_inc(&gntsock_grant_stats.refused);
		gntsock_gin_release(gin, GNTSOCK_REL_REFUSED);
	}
	spin_unlock(&gntsock_grant_lock);
	gntsock_gin_put(gin);
}

/**
 * gntsock_grant_release_id() - GNTSOCK_IOC_RELEASE
 * @gs: the socket's grants
 * @id: the grant
 *
 * Return: 0; -ENOENT for no such delivered grant; -EBUSY while mapped.
 */
int gntsock_grant_release_id(struct gntsock_grants *gs, u32 id)
{
	struct gntsock_gin *gin;
	int err = -ENOENT;

	spin_lock(&gntsock_grant_lock);
	gin = gntsock_gin_lookup(gs, id, false);
	if (gin) {
		gntsock_gin_sync_state(gin);
		err = gin->state == GIN_MAPPED || gin->state == GIN_MAPPING ?
		      -EBUSY : 0;
		if (!err)
			gntsock_gin_release(gin, 0);
	}
	spin_unlock(&gntsock_grant_lock);
	return err;
}

/**
 * gntsock_gin_kill() - revoked or link gone: unmap now, forget the id
 * @gin: the grant; gntsock_grant_lock held
 * @answer: tell the granter it is unmapped (a revoke's answer)
 *
 * A grant that mmap() is mapping (GIN_MAPPING) is killed by mmap() once
 * the mapping is made: the answer goes only once the grant is unmapped.
 * If the link goes down first, its id is forgotten at once (the link may
 * connect again, and the peer reuse it) and nothing is answered.
 */
void gntsock_gin_kill(struct gntsock_gin *gin, bool answer)
{
	bool zap = false;

	lockdep_assert_held(&gntsock_grant_lock);
	if (gin->state == GIN_MAPPING) {
		if (!gin->kill)
			atomic64_inc(&gntsock_grant_stats.killed_mapping);
		if (answer && gin->kill != GIN_KILL_SILENT) {
			gin->kill = GIN_KILL_ANSWER;
		} else {
			gin->kill = GIN_KILL_SILENT;
			gntsock_gin_unhash(gin);
		}
		return;
	}
	if (gin->state == GIN_MAPPED)
		zap = gntsock_gin_take_down(gin);
	if (answer)
		gntsock_send_release(gin->link, gin->id, GNTSOCK_REL_REVOKED);
	gntsock_gin_unhash(gin);
	if (zap)
		gin->zap_event = true;
	else if (gin->sk)
		gntsock_grant_event(gin->sk, gin->owner, GNTSOCK_EV_REVOKED, gin->id, 0,
				    gin->npages);
	gin->state = GIN_DEAD;
}

/**
 * gntsock_grant_in_revoke() - the granter's GRANT_REVOKE
 * @link: the link it came on
 * @h: its validated header
 *
 * Unmaps at once (the user's range then faults with SIGBUS) and answers.
 * An unknown id is normal: our release may have crossed the revoke.
 */
void gntsock_grant_in_revoke(struct gntsock_link *link,
			     const struct gntsock_msg_hdr *h)
{
	struct gntsock_gin *gin;

	spin_lock(&gntsock_grant_lock);
	gin = gntsock_gin_find(link, h->grant_id);
	if (gin && !gntsock_gin_stubborn(gin, "revoke"))
		gntsock_gin_kill(gin, true);
	spin_unlock(&gntsock_grant_lock);
}

/**
 * gntsock_grant_in_close() - the socket closes: release what it received
 * @gs: its grants; gntsock_grant_lock held
 *
 * Its mappings are gone already (a VMA keeps the socket's file open).
 */
void gntsock_grant_in_close(struct gntsock_grants *gs)
{
	struct gntsock_gin *gin, *tmp;

	lockdep_assert_held(&gntsock_grant_lock);
	list_for_each_entry_safe(gin, tmp, &gs->in, sock_node) {
		/* (mmap() holds the socket's file: it cannot be mapping) */
		WARN_ON_ONCE(gin->state == GIN_MAPPING);
		if (gin->state == GIN_MAPPED)
			gntsock_gin_take_down(gin);
		gntsock_gin_release(gin, 0);
	}
}

/**
 * gntsock_grant_in_link_down() - the link is gone: unmap its grants
 * @link: the link; gntsock_grant_lock held
 */
void gntsock_grant_in_link_down(struct gntsock_link *link)
{
	struct gntsock_gin *gin;
	struct hlist_node *tmp;
	int bkt;

	lockdep_assert_held(&gntsock_grant_lock);
	hash_for_each_safe(gntsock_gin_hash, bkt, tmp, gin, hnode) {
		if (gin->link != link)
			continue;
		/* A stubborn kernel keeps the mapping; nothing to answer. */
		gntsock_gin_sync_state(gin);
		if (gin->state == GIN_MAPPED &&
		    gntsock_gin_stubborn(gin, "link loss"))
			gntsock_gin_unhash(gin);
		else
			gntsock_gin_kill(gin, false);
	}
}
