// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock grants, sending side: the grant cmsg of sendmsg(), the records
 * of grants in flight (struct gntsock_gout, grant_out.h) and what comes to
 * them after their GRANT message: the peer's GRANT_RELEASE, a revoke
 * (GNTSOCK_IOC_REVOKE), the socket's close, the link's end, module
 * unload. Their events go on the sender's error queue (grant_events.c).
 * Pinning and granting the pages is grant_pin.c's; how a grant ends
 * (revoke, force, quarantine, tombstones, the deferred reclaim) is
 * grant_reclaim.c's.
 *
 * A record (struct gntsock_gout) lives from sendmsg() until every grant
 * reference of it has been ended: after the peer's kernel reports it
 * unmapped (GRANT_RELEASE), or after the hypervisor took it back, or on
 * the deferred list until Xen lets us end it. Its references are never
 * freed or reused before that, whatever happens to the socket or process.
 */
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/hashtable.h>
#include <linux/capability.h>
#include <linux/delay.h>
#include <xen/grant_table.h>

#include "gntsock.h"
#include "grant.h"
#include "grant_out.h"
#include "xen_revoke.h"

static DEFINE_HASHTABLE(gntsock_gout_hash, 8);

static u32 gntsock_next_id;

/* Testing only (root): the id the next grant takes if it is free, as a
 * granting kernel may reuse the id of a grant the receiver answered for
 * (the receiver must not confuse the two). One shot.
 */
static unsigned int gntsock_fault_grant_id;
module_param_named(fault_grant_id, gntsock_fault_grant_id, uint, 0600);
MODULE_PARM_DESC(fault_grant_id,
		 "testing: the id of the next grant if it is free (0: off)");

void gntsock_grants_init(struct gntsock_grants *gs)
{
	INIT_LIST_HEAD(&gs->out);
	INIT_LIST_HEAD(&gs->in);
	atomic64_set(&gs->ev_lost, 0);
	gs->out_pages = 0;
	gs->in_pages = 0;
}

static struct gntsock_gout *gntsock_gout_find(struct gntsock_link *link,
					      u32 id)
{
	struct gntsock_gout *g;

	hash_for_each_possible(gntsock_gout_hash, g, hnode, id)
		if (g->id == id && g->link == link)
			return g;
	return NULL;
}

static int gntsock_grant_parse(struct msghdr *msg,
			       struct gntsock_grant_send *gs_out)
{
	struct cmsghdr *cmsg;
	bool found = false;

	for_each_cmsghdr(cmsg, msg) {
		if (!CMSG_OK(msg, cmsg))
			return -EINVAL;
		if (cmsg->cmsg_level != SOL_GNTSOCK ||
		    cmsg->cmsg_type != GNTSOCK_CMSG_GRANT ||
		    cmsg->cmsg_len != CMSG_LEN(sizeof(*gs_out)) || found)
			return -EINVAL;
		memcpy(gs_out, CMSG_DATA(cmsg), sizeof(*gs_out));
		found = true;
	}
	return found ? 1 : 0;
}

/* May a grant of @npages pages to the peer of @pa be made while the
 * deferred list holds what it does? The peer's own quarantined pages count
 * against quarantine_max_pages_peer, everyone's against the larger
 * quarantine_max_pages: a peer that keeps every grant fills only its own
 * budget, and grants to other peers go on. gntsock_grant_lock held.
 */
static bool gntsock_quarantine_room(const struct gntsock_peer_acct *pa,
				    u32 npages)
{
	const struct gntsock_grant_limits *l = &gntsock_grant_limits;

	return pa->deferred_pages + npages <=
	       READ_ONCE(l->quarantine_max_pages_peer) &&
	       atomic_read(&gntsock_grant_stats.deferred_pages) + npages <=
	       READ_ONCE(l->quarantine_max_pages);
}

/* Is @req a grant this socket may make at all? Without
 * gntsock_grant_lock (capable() may audit). Return: 0 or -errno.
 */
static int gntsock_grant_valid(struct gntsock_link *link,
			       const struct gntsock_grant_send *req)
{
	const struct gntsock_grant_limits *l = &gntsock_grant_limits;

	if (READ_ONCE(l->require_cap) && !capable(CAP_IPC_LOCK))
		return -EPERM;
	if (req->flags & ~GNTSOCK_GRANT_WRITABLE || req->reserved)
		return -EINVAL;
	if (!req->len || !PAGE_ALIGNED(req->addr) || !PAGE_ALIGNED(req->len))
		return -EINVAL;
	/* The loopback link has no other domain to grant to. */
	if (link->loopback)
		return -EOPNOTSUPP;
	if (req->len >> PAGE_SHIFT > min_t(u32, READ_ONCE(l->max_pages_msg),
					   GNTSOCK_GRANT_MAX_PAGES))
		return -EMSGSIZE;
	return gntsock_peer_acct_make(link->peer);
}

/* Is @req within every limit now? On success *@pap is the peer's
 * accounting. gntsock_grant_lock held.
 */
static int gntsock_grant_check(struct gntsock_grants *gs,
			       struct gntsock_link *link,
			       const struct gntsock_grant_send *req,
			       struct gntsock_peer_acct **pap)
{
	const struct gntsock_grant_limits *l = &gntsock_grant_limits;
	struct gntsock_peer_acct *pa;
	u64 npages = req->len >> PAGE_SHIFT;

	lockdep_assert_held(&gntsock_grant_lock);
	if (gs->out_pages + npages > READ_ONCE(l->max_pages_sock))
		return -ENOBUFS;
	pa = gntsock_peer_acct(link->peer);
	if (!pa)
		return -ENOMEM;
	if (pa->out_pages + npages > READ_ONCE(l->max_pages_peer))
		return -ENOBUFS;
	if (!gntsock_quarantine_room(pa, npages)) {
		atomic64_inc(&gntsock_grant_stats.quarantine_full);
		return -ENOBUFS;
	}
	*pap = pa;
	return 0;
}

/**
 * gntsock_grant_prepare() - parse sendmsg()'s grant cmsg, pin and grant
 * @sk: the sending socket, not locked (pinning may fault for long); its
 *	caller holds its tx_mutex
 * @gs: its grants
 * @link: its link
 * @msg: the message
 * @out: the new grant (state NEW), or NULL if @msg carries none
 *
 * Return: 0 or a negative errno for the caller to return.
 */
int gntsock_grant_prepare(struct sock *sk, struct gntsock_grants *gs,
			  struct gntsock_link *link, struct msghdr *msg,
			  struct gntsock_gout **out)
{
	struct gntsock_peer_acct *pa = NULL;
	struct gntsock_grant_send req;
	struct gntsock_gout *g;
	u32 npages;
	int err;

	*out = NULL;
	err = gntsock_grant_parse(msg, &req);
	if (err <= 0)
		return err;
	err = gntsock_grant_valid(link, &req);
	if (err)
		return err;
	npages = req.len >> PAGE_SHIFT;
	/* Checked and counted in one step, so that concurrent senders to one
	 * peer cannot together pass a limit each of them checked alone.
	 */
	spin_lock(&gntsock_grant_lock);
	err = gntsock_grant_check(gs, link, &req, &pa);
	if (!err)
		gntsock_acct(link->peer, npages, true);
	spin_unlock(&gntsock_grant_lock);
	if (err)
		return err;
	g = kvzalloc(struct_size(g, refs, npages), GFP_KERNEL);
	if (!g) {
		err = -ENOMEM;
		goto unreserve;
	}
	g->pages = kvcalloc(npages, sizeof(*g->pages), GFP_KERNEL);
	if (!g->pages) {
		kvfree(g);
		err = -ENOMEM;
		goto unreserve;
	}
	INIT_HLIST_NODE(&g->hnode);
	INIT_LIST_HEAD(&g->sock_node);
	INIT_LIST_HEAD(&g->reclaim_node);
	g->npages = npages;
	g->writable = req.flags & GNTSOCK_GRANT_WRITABLE;
	g->cookie = req.cookie;
	kref_get(&link->kref);
	g->link = link;
	err = gntsock_grant_pin(req.addr, npages, g->writable, g->pages);
	if (err) {
		kvfree(g->pages);
		gntsock_link_put(link);
		kvfree(g);
		goto unreserve;
	}
	err = gntsock_gout_grant(g, link->peer,
				 gntsock_xen_revoke_supported() &&
				 READ_ONCE(link->peer_map_revocable));
	if (err) {
		unpin_user_pages(g->pages, npages);
		kvfree(g->pages);
		gntsock_link_put(link);
		kvfree(g);
		goto unreserve;
	}

	spin_lock(&gntsock_grant_lock);
	g->state = GOUT_OFFERED;
	g->sending = true;
	g->id = xchg(&gntsock_fault_grant_id, 0);
	while (!g->id || gntsock_gout_find(link, g->id))
		g->id = ++gntsock_next_id;
	hash_add(gntsock_gout_hash, &g->hnode, g->id);
	g->pa = pa;	/* never freed before unload */
	g->owner = gs;
	g->sk = sk;
	list_add_tail(&g->sock_node, &gs->out);
	gs->out_pages += npages;
	spin_unlock(&gntsock_grant_lock);
	*out = g;
	return 0;

unreserve:
	spin_lock(&gntsock_grant_lock);
	gntsock_acct(link->peer, npages, false);
	spin_unlock(&gntsock_grant_lock);
	return err;
}

static int gntsock_grant_copy(void *ring_mem, u32 len, void *ctx)
{
	u8 **p = ctx;

	memcpy(ring_mem, *p, len);
	*p += len;
	return 0;
}

/**
 * gntsock_grant_put() - send the GRANT message of a NEW grant
 * @link: the link
 * @h: header filled by the socket layer (ports, credit)
 * @g: the grant
 *
 * Return: as gntsock_link_send(); -ENOSPC means try again.
 */
int gntsock_grant_put(struct gntsock_link *link, struct gntsock_msg_hdr *h,
		      struct gntsock_gout *g)
{
	struct gntsock_grant_msg *m;
	u32 len = struct_size(m, refs, g->npages);
	u8 *p;
	int err;

	m = kmalloc(len, GFP_KERNEL);
	if (!m)
		return -ENOMEM;
	m->id = g->id;
	m->npages = g->npages;
	memcpy(m->refs, g->refs, g->npages * sizeof(m->refs[0]));
	h->op = GNTSOCK_OP_GRANT;
	h->len = len;
	h->flags = g->writable ? GNTSOCK_GRANT_F_WRITABLE : 0;
	p = (u8 *)m;
	err = len > link->max_payload ? -EMSGSIZE :
		gntsock_link_send(link, h, gntsock_grant_copy, &p);
	kfree(m);
	return err;
}

static void gntsock_grant_violation(struct gntsock_link *link, const char *why,
				    u32 id)
{
	atomic64_inc(&gntsock_grant_stats.violations);
	atomic64_inc(&link->stat_violations);
	atomic64_inc(&gntsock_stats.violations);
	atomic64_inc(&gntsock_stats.violation[GNTSOCK_V_GRANT]);
	pr_warn_ratelimited("gntsock: link to domain %u: %s (grant %u)\n",
			    link->peer, why, id);
}

static void gntsock_gout_released(struct gntsock_gout *g, u16 flags);
static void gntsock_gout_link_dead(struct gntsock_gout *g);

/**
 * gntsock_grant_committed() - the GRANT message is in the ring
 * @g: the grant
 */
void gntsock_grant_committed(struct gntsock_gout *g)
{
	atomic64_inc(&gntsock_grant_stats.offered);
	if (!g->revocable)
		atomic64_inc(&gntsock_grant_stats.offered_plain);
	spin_lock(&gntsock_grant_lock);
	g->sending = false;
	if (g->release_flags)
		gntsock_gout_released(g, g->release_flags & GNTSOCK_REL_MASK);
	else if (g->link_dead)
		gntsock_gout_link_dead(g);
	else if (g->revoke_pending)
		gntsock_gout_send_revoke(g);
	spin_unlock(&gntsock_grant_lock);
}

/**
 * gntsock_grant_abort() - the GRANT message could not be sent
 * @g: the grant, still NEW
 */
void gntsock_grant_abort(struct gntsock_gout *g)
{
	u32 swapped = 0;

	spin_lock(&gntsock_grant_lock);
	g->sending = false;
	if (gntsock_gout_end_access(g, &swapped))
		gntsock_gout_finish(g, 0);
	else
		gntsock_gout_quarantine(g);
	spin_unlock(&gntsock_grant_lock);
}

/**
 * gntsock_grant_revoke_cookie() - GNTSOCK_IOC_REVOKE
 * @sk: the socket
 * @gs: its grants
 * @cookie: revoke every offered grant with this cookie
 *
 * Return: 0, or -ENOENT if no grant has that cookie.
 */
int gntsock_grant_revoke_cookie(struct sock *sk, struct gntsock_grants *gs,
				u64 cookie)
{
	struct gntsock_gout *g;
	int err = -ENOENT;

	spin_lock(&gntsock_grant_lock);
	list_for_each_entry(g, &gs->out, sock_node) {
		if (g->cookie != cookie)
			continue;
		if (g->sending)
			g->revoke_pending = true;
		else if (g->state == GOUT_OFFERED)
			gntsock_gout_send_revoke(g);
		err = 0;
	}
	spin_unlock(&gntsock_grant_lock);
	return err;
}

/**
 * gntsock_grant_out_release() - the peer's GRANT_RELEASE
 * @link: the link it came on
 * @h: its validated header
 *
 * The peer says it no longer maps the grant. Xen has the last word: a
 * reference it still sees mapped is not ended, and the grant goes to the
 * deferred list (the peer lied). An unknown id is a counted violation.
 */
void gntsock_grant_out_release(struct gntsock_link *link,
			       const struct gntsock_msg_hdr *h)
{
	struct gntsock_gout *g;
	u32 swapped = 0;

	spin_lock(&gntsock_grant_lock);
	g = gntsock_gout_find(link, h->grant_id);
#ifdef GNTSOCK_HOSTILE
	if (!g && h->grant_id >= GNTSOCK_HOSTILE_GRANT_ID) {
		/* The answer to a forged grant (hostile.c). */
		spin_unlock(&gntsock_grant_lock);
		return;
	}
#endif
	if (g && g->state == GOUT_TOMB) {
		/* The peer unmapped after we ended the grant. */
		gntsock_gout_tomb_free(g);
	} else if (g && g->state == GOUT_QUARANTINED) {
		/* A late answer: the peer unmapped after the timeout. */
		g->late_release = false;
		if (gntsock_gout_end_access(g, &swapped)) {
			atomic64_inc(&gntsock_grant_stats.reclaimed);
			gntsock_gout_finish(g, 0);
		}
	} else if (!g || g->release_flags) {
		gntsock_grant_violation(link, g ? "release of a grant in the wrong state" :
					"release of an unknown grant", h->grant_id);
	} else if (g->sending) {
		g->release_flags = h->flags | 0x8000;
	} else {
		gntsock_gout_released(g, h->flags);
	}
	spin_unlock(&gntsock_grant_lock);
}

/* The peer released @g: end it. A peer that still maps a plain grant
 * gets it quarantined; one that still maps a revocable-only grant has just
 * had its mappings revoked by the hypervisor. gntsock_grant_lock held.
 */
static void gntsock_gout_released(struct gntsock_gout *g, u16 flags)
{
	u32 ev, swapped = 0;

	lockdep_assert_held(&gntsock_grant_lock);
	if (!gntsock_gout_end_access(g, &swapped)) {
		gntsock_grant_violation(g->link, "released grant still mapped",
					g->id);
		gntsock_gout_quarantine(g);
		return;
	}
	if (swapped) {
		gntsock_grant_violation(g->link, "released grant still mapped",
					g->id);
		atomic64_inc(&gntsock_grant_stats.forced);
		gntsock_gout_finish(g, GNTSOCK_EV_FORCED);
		return;
	}
	if (flags & GNTSOCK_REL_REFUSED) {
		ev = GNTSOCK_EV_REFUSED;
		atomic64_inc(&gntsock_grant_stats.refused);
	} else if (g->state == GOUT_REVOKING) {
		ev = GNTSOCK_EV_REVOKED;
		atomic64_inc(&gntsock_grant_stats.revoked);
	} else {
		ev = GNTSOCK_EV_RELEASED;
		atomic64_inc(&gntsock_grant_stats.released);
	}
	gntsock_gout_finish(g, ev);
}

/**
 * gntsock_grant_out_close() - the owning socket closes: revoke everything
 * @gs: its grants; gntsock_grant_lock held
 *
 * The records stay until the peer answers or the revoke times out.
 */
void gntsock_grant_out_close(struct gntsock_grants *gs)
{
	struct gntsock_gout *g, *tmp;

	lockdep_assert_held(&gntsock_grant_lock);
	list_for_each_entry_safe(g, tmp, &gs->out, sock_node) {
		gntsock_gout_detach(g);
		if (g->state == GOUT_OFFERED)
			gntsock_gout_send_revoke(g);
	}
}

/**
 * gntsock_grant_out_link_down() - the link is gone: end or quarantine
 * @link: the link; gntsock_grant_lock held
 *
 * No answer can come any more. References the peer still maps (its kernel
 * has not unmapped yet, or will not) go to the deferred list; Xen drops
 * them when the peer unmaps or dies.
 */
void gntsock_grant_out_link_down(struct gntsock_link *link)
{
	struct gntsock_gout *g;
	struct hlist_node *tmp;
	int bkt;

	lockdep_assert_held(&gntsock_grant_lock);
	hash_for_each_safe(gntsock_gout_hash, bkt, tmp, g, hnode) {
		if (g->link != link)
			continue;
		if (g->state == GOUT_QUARANTINED) {
			/* Its release can no longer come. */
			g->late_release = false;
			continue;
		}
		if (g->state == GOUT_TOMB) {
			gntsock_gout_tomb_free(g);
			continue;
		}
		if (g->sending)
			g->link_dead = true;
		else
			gntsock_gout_link_dead(g);
	}
}

/* No answer can come for @g any more. A mapping the peer still holds
 * would pin our pages until its kernel or Xen lets go: a revocable-only
 * grant's is revoked at once (there is nobody left to wait for), a plain
 * grant is quarantined. No tombstone: no late release can come over a
 * dead link. gntsock_grant_lock held.
 */
static void gntsock_gout_link_dead(struct gntsock_gout *g)
{
	u32 swapped = 0;

	lockdep_assert_held(&gntsock_grant_lock);
	if (!gntsock_gout_end_access(g, &swapped)) {
		gntsock_gout_quarantine(g);
	} else if (swapped) {
		atomic64_inc(&gntsock_grant_stats.forced);
		gntsock_gout_finish(g, GNTSOCK_EV_FORCED);
	} else {
		atomic64_inc(&gntsock_grant_stats.revoked);
		gntsock_gout_finish(g, GNTSOCK_EV_REVOKED);
	}
}

/* Unload: times a revocable-only grant Xen could not end yet (an
 * operation of the peer in flight) is retried, 20 ms apart.
 */
#define GNTSOCK_EXIT_TRIES	50

/* Unload: any grant left. gntsock_grant_lock held. */
static struct gntsock_gout *gntsock_gout_any(void)
{
	struct gntsock_gout *g;
	int bkt;

	hash_for_each(gntsock_gout_hash, bkt, g, hnode)
		return g;
	return NULL;
}

/* Unload: hand each reference of @g still granted to the kernel's
 * deferred freeing (plain), or leak it (revocable-only).
 */
static void gntsock_gout_exit_refs(struct gntsock_gout *g)
{
	u32 i;

	for (i = 0; i < g->npages; i++) {
		if (!g->refs[i])
			continue;
		get_page(g->pages[i]);
		if (g->revocable) {
			pr_warn_ratelimited("gntsock: unload: grant reference %u to domain %u cannot be ended: leaked\n",
					    g->refs[i], g->link->peer);
		} else {
			gnttab_end_foreign_access(g->refs[i], g->pages[i]);
			pr_warn_ratelimited("gntsock: unload: grant reference %u still mapped by domain %u, left to deferred freeing\n",
					    g->refs[i], g->link->peer);
		}
		g->refs[i] = 0;
	}
}

/**
 * gntsock_grant_out_exit() - module unload: end what is left, or hand it
 * to the kernel's deferred freeing in grant-table.c
 *
 * Every link is down, so only quarantined grants remain. Each plain
 * reference the peer still maps is passed to gnttab_end_foreign_access()
 * together with a plain reference on its page, which the grant table code
 * drops once the peer unmaps; our long-term pin is dropped now. A
 * revocable-only reference is ended through the hypervisor; one it still
 * cannot end after %GNTSOCK_EXIT_TRIES attempts is leaked with its page
 * (never freed: the next user of the reference would inherit its mark).
 */
void gntsock_grant_out_exit(void)
{
	struct gntsock_gout *g;
	u32 swapped = 0;
	int tries = 0;

	spin_lock(&gntsock_grant_lock);
	while ((g = gntsock_gout_any())) {
		if (g->state == GOUT_TOMB) {
			gntsock_gout_tomb_free(g);
			continue;
		}
		if (!gntsock_gout_end_access(g, &swapped) && g->revocable &&
		    tries++ < GNTSOCK_EXIT_TRIES) {
			/* Nothing else runs now: every link is down. */
			spin_unlock(&gntsock_grant_lock);
			msleep(20);
			spin_lock(&gntsock_grant_lock);
			continue;
		}
		tries = 0;
		/* (gnttab_end_foreign_access() may allocate) */
		spin_unlock(&gntsock_grant_lock);
		gntsock_gout_exit_refs(g);
		spin_lock(&gntsock_grant_lock);
		if (g->state == GOUT_QUARANTINED)
			atomic64_inc(&gntsock_grant_stats.reclaimed);
		gntsock_gout_finish(g, 0);
	}
	spin_unlock(&gntsock_grant_lock);
	gntsock_grant_dispose_flush();
}
