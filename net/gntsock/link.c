// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock links: one per pair of domains that dom0's toolstack connected.
 *
 * A link is a xenbus device of type "gntsock". The frontend (the higher
 * domain id of the pair) allocates a control page and 2 << ring_order data
 * pages, grants them to the backend, allocates an event channel and
 * publishes "ring-ref", "ring-order" and "event-channel". The backend maps
 * the pages and binds the channel. Handshake:
 *
 *   backend  InitWait                      (probe)
 *   frontend Initialised                   (rings granted and published)
 *   backend  Connected                     (rings mapped)
 *   frontend Connected
 *
 * Each end writes "feature-revocable-map" (1 or 0) in its own directory
 * before it switches to InitWait (backend) or Initialised (frontend): can
 * it map grants revocably (the grant layer says, through its handler)? Each reads the
 * other's when it connects; an absent key (an older peer) means 0. Grants
 * towards a peer that says 1 are marked revocable-only (grant_send.c), and
 * an end that said 1 maps the grants of that link revocably
 * (grant_recv.c), one that said 0 plainly. Each also writes
 * "feature-event-index" = 1: it keeps the event indices of its rings, so
 * the other end notifies it once per wait (ring.c); a peer without the key
 * is notified by its flags.
 *
 * Either side leaving (Closing, Closed, module unload, domain death, or a
 * protocol violation detected locally) tears the rings down and resets all
 * sockets on the link; the backend returns to InitWait and the frontend
 * publishes fresh rings, so the link comes back by itself when both ends
 * are there again.
 *
 * Same-domain connections use a loopback link that exists from module load
 * to unload, needs no hypervisor and no xenbus device: sending queues a copy
 * of the message and its rx work hands it to the layer above, so the
 * same protocol handler and credit code serve both kinds of link.
 *
 * The link layer never calls up by name: the socket layer and the grant
 * layer each register a struct gntsock_link_handler (as vsock's core and
 * its transports meet only through struct vsock_transport), which says
 * which messages it takes and what it wants to hear of a link.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/interrupt.h>
#include <linux/seq_file.h>
#include <linux/sizes.h>
#include <linux/skbuff.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <xen/xen.h>
#include <xen/events.h>
#include <xen/page.h>
#include <xen/interface/io/xenbus.h>

#include "gntsock.h"
#include "grant.h"

unsigned int gntsock_ring_order = GNTSOCK_RING_ORDER_DEFAULT;
module_param_named(ring_order, gntsock_ring_order, uint, 0644);
MODULE_PARM_DESC(ring_order,
		 "log2 of ring pages per direction for new links (0-8, default 4)");

/* Testing the receiving kernel's validation end to end: writing a domain id
 * here (root only) makes the next data message sent to that domain carry a
 * non-zero reserved field, which the receiver must reject by resetting the
 * link. One shot; reads back -1 once used.
 */
static int gntsock_fault_peer = -1;
module_param_named(fault_inject_peer, gntsock_fault_peer, int, 0600);
MODULE_PARM_DESC(fault_inject_peer,
		 "testing: corrupt the next data message sent to this domain id (-1: off)");

/* Writers waiting for ring space: wake one per freed space (each passes
 * the wake-up on while space remains) instead of all of them.
 */
bool gntsock_tx_wake_one = true;
module_param_named(tx_wake_one, gntsock_tx_wake_one, bool, 0644);
MODULE_PARM_DESC(tx_wake_one,
		 "wake one writer waiting for ring space per freed space, not all (default Y)");

/* Notify a peer that keeps event indices by them: once per wait of its,
 * not once per message while its flag is set (ring.c). Off, this end
 * notifies as a version without event indices does: for comparing the two
 * in one boot, and for testing that both still work together. Read at
 * every notification check.
 */
static bool gntsock_event_index = true;
module_param_named(event_index, gntsock_event_index, bool, 0644);
MODULE_PARM_DESC(event_index,
		 "notify a peer by its event index, once per wait, where it keeps one (default Y)");

/* Does the peer, at this moment, get its events by its event index? */
static bool gntsock_link_evt(struct gntsock_link *link)
{
	return READ_ONCE(link->peer_event_index) &&
	       READ_ONCE(gntsock_event_index);
}

/* Control messages queued while the ring is full, at most this many. */
#define GNTSOCK_CTL_QUEUE_MAX	1024

struct gntsock_ctl {
	struct list_head node;
	struct gntsock_msg_hdr h;
};

/* A message in flight on the loopback link. */
struct gntsock_loop_msg {
	struct list_head node;
	struct gntsock_msg_hdr h;
	u8 data[];
};

/* The layers above, registered before the first link may come up and
 * removed after the last went down (main.c): the link layer reaches them
 * only through these (gntsock_link_set_handler()).
 */
static const struct gntsock_link_handler *gntsock_handlers[GNTSOCK_USER_MAX];

/**
 * gntsock_link_set_handler() - register (or with NULL remove) a layer above
 * @user: which one
 * @h: its handler, or NULL
 *
 * Called at module load before any link exists, and at unload after every
 * link is gone: never while a link may call it.
 */
void gntsock_link_set_handler(enum gntsock_link_user user,
			      const struct gntsock_link_handler *h)
{
	if (WARN_ON(user >= GNTSOCK_USER_MAX))
		return;
	WRITE_ONCE(gntsock_handlers[user], h);
}

/* Hand a validated message to the layer that takes its op. Return: true
 * if that layer left it in the ring (gntsock_link_handler.recv).
 */
static bool gntsock_link_deliver(struct gntsock_link *link,
				 const struct gntsock_msg_hdr *h, bool defer)
{
	const struct gntsock_link_handler *uh;
	int i;

	for (i = 0; i < GNTSOCK_USER_MAX; i++) {
		uh = gntsock_handlers[i];
		if (uh && (uh->ops & BIT(h->op)))
			return uh->recv(link, h, defer);
	}
	return false;
}

/* The rx work ends a batch: each layer delivers what it collected. */
static void gntsock_link_batch_end(struct gntsock_link *link)
{
	int i;

	lockdep_assert_held(&link->rx_lock);
	for (i = 0; i < GNTSOCK_USER_MAX; i++)
		if (gntsock_handlers[i] && gntsock_handlers[i]->batch_end)
			gntsock_handlers[i]->batch_end(link);
}

/* The link went down: tell every layer, in enum gntsock_link_user order. */
static void gntsock_link_tell_down(struct gntsock_link *link)
{
	int i;

	for (i = 0; i < GNTSOCK_USER_MAX; i++)
		if (gntsock_handlers[i] && gntsock_handlers[i]->link_down)
			gntsock_handlers[i]->link_down(link);
}

/* Do we map grants revocably (what a link advertises)? The grant layer
 * says; without it, no.
 */
static bool gntsock_link_map_revocable(void)
{
	const struct gntsock_link_handler *uh =
		gntsock_handlers[GNTSOCK_USER_GRANT];

	return uh && uh->map_revocable && uh->map_revocable();
}

#ifdef GNTSOCK_HOSTILE
/* Test module only (hostile.c): may take over a backend's ring mappings. */
bool (*gntsock_link_keep_maps_hook)(struct gntsock_link *link);
#endif

static LIST_HEAD(gntsock_links);
static DEFINE_MUTEX(gntsock_links_lock);
static domid_t gntsock_self = DOMID_INVALID;
static struct gntsock_link *gntsock_loopback;

/**
 * gntsock_local_domid_init() - read this domain's id, at module load
 *
 * Once, in process context: gntsock_local_domid() is called under
 * spinlocks (the /proc walk), where a xenstore read, which sleeps, may not
 * run.
 */
void gntsock_local_domid_init(void)
{
	domid_t id = xen_initial_domain() ? 0 :
		     xenbus_read_unsigned("domid", "", DOMID_INVALID);

	if (id == DOMID_INVALID)
		pr_warn("gntsock: this domain's id is not in xenstore (\"domid\")\n");
	WRITE_ONCE(gntsock_self, id);
}

/**
 * gntsock_local_domid() - this domain's id
 *
 * Return: the id read at module load (%DOMID_INVALID if xenstore had none).
 */
domid_t gntsock_local_domid(void)
{
	return READ_ONCE(gntsock_self);
}

/**
 * gntsock_domid_is_local() - does @domid name this domain?
 * @domid: a domain id from user space
 *
 * Return: true for %GNTSOCK_DOMID_SELF and for this domain's own id.
 */
bool gntsock_domid_is_local(u32 domid)
{
	return domid == GNTSOCK_DOMID_SELF || domid == gntsock_local_domid();
}

#define GNTSOCK_FEATURE_RMAP	"feature-revocable-map"
#define GNTSOCK_FEATURE_EVTIDX	"feature-event-index"

/* Tell the peer, in our xenstore directory, whether we map its grants
 * revocably; before each handshake, as PV devices publish their features.
 * A key we could not write counts as 0: the peer then finds none.
 */
static int gntsock_link_advertise(struct gntsock_link *link,
				  struct xenbus_transaction xbt)
{
	bool rmap = gntsock_link_map_revocable();
	int err;

	err = xenbus_printf(xbt, link->xbdev->nodename, GNTSOCK_FEATURE_RMAP,
			    "%u", rmap);
	WRITE_ONCE(link->map_revocable, rmap && !err);
	/* We always keep our event indices (ring.c); a peer that does not
	 * find the key notifies us by our flags, which we keep too.
	 */
	xenbus_printf(xbt, link->xbdev->nodename, GNTSOCK_FEATURE_EVTIDX,
		      "%u", 1);
	return err;
}

/* What the peer said (when the link connects, its rings set up). */
static void gntsock_link_peer_features(struct gntsock_link *link)
{
	WRITE_ONCE(link->peer_map_revocable,
		   !!xenbus_read_unsigned(link->xbdev->otherend,
					  GNTSOCK_FEATURE_RMAP, 0));
	WRITE_ONCE(link->peer_event_index,
		   !!xenbus_read_unsigned(link->xbdev->otherend,
					  GNTSOCK_FEATURE_EVTIDX, 0));
}

/* Backend: publish our features, then wait for the frontend's rings. */
static int gntsock_back_initwait(struct gntsock_link *link)
{
	gntsock_link_advertise(link, XBT_NIL);
	return xenbus_switch_state(link->xbdev, XenbusStateInitWait);
}

static void gntsock_link_release(struct kref *kref)
{
	struct gntsock_link *link = container_of(kref, struct gntsock_link,
						 kref);

	kfree(link->pages);
	kfree(link->va);
	kfree(link->refs);
	kfree(link->handles);
	kfree(link);
}

void gntsock_link_put(struct gntsock_link *link)
{
	kref_put(&link->kref, gntsock_link_release);
}

/**
 * gntsock_link_get() - find the connected link to a peer domain
 * @peer: the peer's domain id; this domain's own id or %GNTSOCK_DOMID_SELF
 *	give the loopback link
 *
 * Return: the link with a reference held, or NULL if there is no
 * connected link to @peer.
 */
struct gntsock_link *gntsock_link_get(domid_t peer)
{
	struct gntsock_link *link, *found = NULL;

	if (gntsock_domid_is_local(peer)) {
		link = READ_ONCE(gntsock_loopback);
		if (link)
			kref_get(&link->kref);
		return link;
	}
	mutex_lock(&gntsock_links_lock);
	list_for_each_entry(link, &gntsock_links, node) {
		if (link->peer == peer &&
		    READ_ONCE(link->state) == GNTSOCK_LINK_CONNECTED) {
			kref_get(&link->kref);
			found = link;
			break;
		}
	}
	mutex_unlock(&gntsock_links_lock);
	return found;
}

static void gntsock_notify(struct gntsock_link *link)
{
	if (link->irq) {
		atomic64_inc(&link->stat_events_tx);
		notify_remote_via_irq(link->irq);
	}
}

/* The ring has room again: wake the waiters; they re-check under tx_lock.
 * Stream writers wait exclusively: with tx_wake_one only one of them
 * wakes, and passes the wake-up on (gntsock_link_pass_wake()) once it has
 * written while room remains. Other waiters (records, grants) always wake.
 */
static void gntsock_tx_kick(struct gntsock_link *link)
{
	atomic_inc(&link->tx_kick);
	if (READ_ONCE(gntsock_tx_wake_one))
		wake_up(&link->tx_wq);
	else
		wake_up_all(&link->tx_wq);
}

/* Tell every non-blocking sender waiting for room: only when room may
 * have come (the peer consumed, a loopback message was taken, the link
 * went down), or each would poll writable and get EAGAIN again. Each is
 * told once and taken off first; under watch_lock, so that an owner that
 * took its watch off (gntsock_link_unwatch_space()) is sure no notify runs
 * any more.
 */
static void gntsock_space_watch_flush(struct gntsock_link *link)
{
	struct gntsock_space_watch *w, *tmp;

	spin_lock_bh(&link->watch_lock);
	list_for_each_entry_safe(w, tmp, &link->space_watches, node) {
		list_del_init(&w->node);
		w->notify(w);
	}
	spin_unlock_bh(&link->watch_lock);
}

/**
 * gntsock_link_watch_space() - be told when the ring may have room again
 * @link: the link whose tx ring was full
 * @w: the watch, not on a list or on this link's
 * @kick: link->tx_kick read before the send that found the ring full (a
 *	space event was requested then: gntsock_tx_done())
 *
 * Return: true if @w waits (now or already): @w->notify will be called;
 * false if room may have come since @kick or the link is down: nothing
 * waits, try again.
 */
bool gntsock_link_watch_space(struct gntsock_link *link,
			      struct gntsock_space_watch *w, int kick)
{
	bool waits = true;

	spin_lock_bh(&link->watch_lock);
	if (list_empty(&w->node)) {
		/* A kick after this look takes watch_lock after us. */
		waits = atomic_read(&link->tx_kick) == kick &&
			READ_ONCE(link->state) == GNTSOCK_LINK_CONNECTED;
		if (waits)
			list_add_tail(&w->node, &link->space_watches);
	}
	spin_unlock_bh(&link->watch_lock);
	return waits;
}

/**
 * gntsock_link_unwatch_space() - stop waiting; no notify runs after this
 * @link: the link @w may wait on
 * @w: the watch
 */
void gntsock_link_unwatch_space(struct gntsock_link *link,
				struct gntsock_space_watch *w)
{
	spin_lock_bh(&link->watch_lock);
	list_del_init(&w->node);
	spin_unlock_bh(&link->watch_lock);
}

/**
 * gntsock_link_pass_wake() - hand a ring-space wake-up on to the next writer
 * @link: the link
 *
 * For a writer that was woken for ring space and will not write now (or
 * has written and room remains): the next waiter gets its chance.
 */
void gntsock_link_pass_wake(struct gntsock_link *link)
{
	if (wq_has_sleeper(&link->tx_wq))
		wake_up(&link->tx_wq);
}

/**
 * gntsock_link_wait_space() - wait until the peer freed room in the ring
 * @link: the link
 * @kick: link->tx_kick read before the send that found the ring full
 * @timeo: jiffies to wait at most
 *
 * Interruptible. With tx_wake_one the wait is exclusive: a caller that
 * returns > 0 and then does not write must call gntsock_link_pass_wake().
 *
 * Return: as wait_event_interruptible_timeout().
 */
long gntsock_link_wait_space(struct gntsock_link *link, int kick, long timeo)
{
	long __ret = timeo;

#define gntsock_space_cond \
	(atomic_read(&link->tx_kick) != kick || \
	 READ_ONCE(link->state) != GNTSOCK_LINK_CONNECTED)
	might_sleep();
	atomic64_inc(&gntsock_stats.tx_ring_waits);
	if (!READ_ONCE(gntsock_tx_wake_one))
		return wait_event_interruptible_timeout(link->tx_wq,
							gntsock_space_cond,
							timeo);
	if (!___wait_cond_timeout(gntsock_space_cond))
		__ret = ___wait_event(link->tx_wq,
				      ___wait_cond_timeout(gntsock_space_cond),
				      TASK_INTERRUPTIBLE, 1, timeo,
				      __ret = schedule_timeout(__ret));
#undef gntsock_space_cond
	if (__ret > 0)
		atomic64_inc(&gntsock_stats.tx_ring_wakeups);
	return __ret;
}

/* Ask the peer for an event when it consumes. tx_lock held.
 * Return: false if the request stands (an event comes once the peer
 * consumes); true if the peer consumed since our last look at the space
 * and may not have seen the request: look again instead of sleeping.
 */
static bool gntsock_tx_wait_space(struct gntsock_link *link)
{
	lockdep_assert_held(&link->tx_lock);
	if (!gntsock_ring_set_prod_waiting(&link->tx, true))
		return false;
	atomic64_inc(&gntsock_stats.tx_ring_rechecks);
	return true;
}

/* Called with tx_lock held: send queued control messages, oldest first. */
static int gntsock_ctl_flush(struct gntsock_link *link)
{
	struct gntsock_ctl *c, *tmp;
	int err = 0;

	lockdep_assert_held(&link->tx_lock);
	list_for_each_entry_safe(c, tmp, &link->ctl_queue, node) {
		err = gntsock_msg_put(&link->tx, &c->h, NULL, NULL);
		if (err)
			break;
		atomic64_inc(&link->stat_tx_msgs);
		list_del(&c->node);
		link->ctl_len--;
		kfree(c);
	}
	return err;
}

static void gntsock_ctl_purge(struct gntsock_link *link)
{
	struct gntsock_ctl *c, *tmp;

	list_for_each_entry_safe(c, tmp, &link->ctl_queue, node) {
		list_del(&c->node);
		kfree(c);
	}
	link->ctl_len = 0;
}

/* Called with tx_lock held after writing: post-write bookkeeping. A full
 * ring asks the peer for a space event.
 * Return: @err, or -EAGAIN instead of -ENOSPC if the peer consumed while
 * we asked (look again: gntsock_tx_wait_space()).
 */
static int gntsock_tx_done(struct gntsock_link *link, int err)
{
	lockdep_assert_held(&link->tx_lock);
	if (err == -EPROTO) {
		gntsock_link_violation(link, GNTSOCK_V_RING_INDEX);
		return -ECONNRESET;
	}
	if (err == -ENOSPC && gntsock_tx_wait_space(link))
		err = -EAGAIN;
	link->tx.peer_evt = gntsock_link_evt(link);
	if (gntsock_ring_consumer_waiting(&link->tx))
		gntsock_notify(link);
	return err;
}

/* Called with tx_lock held: send queued control messages; if the ring is
 * still full, ask the peer for an event when it consumes, and look again
 * while it consumed meanwhile. Without that look a message stays queued
 * for good when the peer drained the ring between our try and our request
 * (it saw no request, so it sends no event), until something else is sent
 * on the link: a close()'s SHUTDOWN was lost that way on an idle link, and
 * its server never saw EOF. (Each look again follows real progress of the
 * peer, which cannot move its index back: gntsock_ring_space().)
 * Return: 0, -ENOSPC (an event will come), or gntsock_tx_done()'s error.
 */
static int gntsock_ctl_flush_event(struct gntsock_link *link)
{
	int err;

	lockdep_assert_held(&link->tx_lock);
	do {
		err = gntsock_tx_done(link, gntsock_ctl_flush(link));
	} while (err == -EAGAIN);
	return err;
}

/* Called with tx_lock held by a writer that has just written while others
 * sleep for ring space (tx_wake_one): room for another full message wakes
 * the next one; otherwise ask the peer for a space event on their behalf
 * (the event that woke us cleared the request), and look again while the
 * peer consumed since our look (gntsock_tx_wait_space()).
 */
static void gntsock_tx_pass_on(struct gntsock_link *link)
{
	u32 need = gntsock_msg_size(link->max_payload), space;

	lockdep_assert_held(&link->tx_lock);
	do {
		if (gntsock_ring_space(&link->tx, &space))
			return;
		if (space >= need) {
			wake_up(&link->tx_wq);
			return;
		}
	} while (gntsock_tx_wait_space(link));
}

/* The loopback link's queue holds at most this much memory of messages
 * from senders of data (records, stream bytes), as a real link's ring holds
 * at most its size: beyond it such a sender gets -ENOSPC and waits for the
 * rx work to make room (tx_kick), as for a full ring. Control messages are
 * never refused: a lost credit update or shutdown would stall another
 * user's connection for good. They are small, at most one or two per
 * socket operation, and charged to the memory cgroup of whoever sends
 * them.
 */
#define GNTSOCK_LOOP_QUEUE_MAX	SZ_1M

/* Give back the room of a loopback message, and tell senders waiting for
 * room (they compare tx_kick with what they read before their try).
 */
static void gntsock_loop_unreserve(struct gntsock_link *link, u32 size)
{
	spin_lock_bh(&link->loop_lock);
	link->loop_mem -= size;
	spin_unlock_bh(&link->loop_lock);
	/* (wq_has_sleeper() orders the increment before its look) */
	atomic_inc(&link->tx_kick);
	if (wq_has_sleeper(&link->tx_wq))
		gntsock_tx_kick(link);
	gntsock_space_watch_flush(link);
}

/* Loopback: queue a copy of the message for the rx work. */
static int gntsock_loop_send(struct gntsock_link *link,
			     const struct gntsock_msg_hdr *h,
			     gntsock_copy_fn fn, void *ctx)
{
	u32 size = struct_size_t(struct gntsock_loop_msg, data, h->len);
	struct gntsock_loop_msg *m;
	int err;

	/* Reserved before the copy, which may sleep on a page fault. A
	 * control message (gntsock_link_send_ctl(): no @fn) always fits.
	 */
	spin_lock_bh(&link->loop_lock);
	if (fn && link->loop_mem + size > GNTSOCK_LOOP_QUEUE_MAX) {
		spin_unlock_bh(&link->loop_lock);
		atomic64_inc(&gntsock_stats.loop_full);
		return -ENOSPC;
	}
	link->loop_mem += size;
	spin_unlock_bh(&link->loop_lock);
	m = kvmalloc(size, GFP_KERNEL_ACCOUNT);
	err = m ? 0 : -ENOBUFS;
	if (m && h->len)
		err = fn(m->data, h->len, ctx);
	if (err) {
		kvfree(m);
		gntsock_loop_unreserve(link, size);
		return err;
	}
	m->h = *h;
	spin_lock_bh(&link->loop_lock);
	list_add_tail(&m->node, &link->loop_queue);
	spin_unlock_bh(&link->loop_lock);
	atomic64_inc(&link->stat_tx_msgs);
	atomic64_add(h->len, &link->stat_tx_bytes);
	queue_work(gntsock_wq, &link->rx_work);
	return 0;
}

static void gntsock_loop_work(struct work_struct *work)
{
	struct gntsock_link *link = container_of(work, struct gntsock_link,
						 rx_work);
	struct gntsock_loop_msg *m;
	enum gntsock_violation v;

	for (;;) {
		spin_lock_bh(&link->loop_lock);
		m = list_first_entry_or_null(&link->loop_queue,
					     struct gntsock_loop_msg, node);
		if (m)
			list_del(&m->node);
		spin_unlock_bh(&link->loop_lock);
		if (!m)
			break;
		/* Our own messages: the check only guards against bugs. */
		v = gntsock_msg_validate(&m->h, link->max_payload);
		if (v == GNTSOCK_V_NONE) {
			atomic64_inc(&link->stat_rx_msgs);
			atomic64_add(m->h.len, &link->stat_rx_bytes);
			link->loop_payload = m->data;
			gntsock_link_deliver(link, &m->h, false);
			link->loop_payload = NULL;
		} else {
			gntsock_link_violation(link, v);
		}
		gntsock_loop_unreserve(link,
				       struct_size(m, data, m->h.len));
		kvfree(m);
		cond_resched();
	}
}

static void gntsock_loop_purge(struct gntsock_link *link)
{
	struct gntsock_loop_msg *m, *tmp;

	list_for_each_entry_safe(m, tmp, &link->loop_queue, node) {
		list_del(&m->node);
		link->loop_mem -= struct_size(m, data, m->h.len);
		kvfree(m);
	}
}

/**
 * gntsock_link_send() - write one message into the link's tx ring
 * @link: the link
 * @h: header; h->len payload bytes come from @fn
 * @fn: copies the payload into ring memory, or NULL if h->len is zero
 * @ctx: for @fn
 *
 * Never sleeps waiting for space: on -ENOSPC the caller snapshots
 * link->tx_kick before calling and waits on link->tx_wq for it to change.
 * Queued control messages go first, so messages of one socket stay in
 * order.
 *
 * Return: 0, -ENOSPC, -ECONNRESET if the link is down, or @fn's error.
 */
int gntsock_link_send(struct gntsock_link *link,
		      const struct gntsock_msg_hdr *h,
		      gntsock_copy_fn fn, void *ctx)
{
	struct gntsock_msg_hdr bad;
	u32 prod;
	int err;

	if (link->loopback)
		return gntsock_loop_send(link, h, fn, ctx);
	if (unlikely(READ_ONCE(gntsock_fault_peer) == link->peer) && h->len &&
	    cmpxchg(&gntsock_fault_peer, link->peer, -1) == link->peer) {
		bad = *h;
		bad.reserved0 = 0xbad;
		h = &bad;
		pr_info("gntsock: link to domain %u: sending a corrupt message (fault_inject_peer)\n",
			link->peer);
	}

	mutex_lock(&link->tx_lock);
	if (link->state != GNTSOCK_LINK_CONNECTED) {
		err = -ECONNRESET;
		goto out;
	}
	prod = link->tx.local;
	/* A full ring asks for an event; look again while the peer consumed
	 * meanwhile (gntsock_tx_done()).
	 */
	do {
		err = gntsock_ctl_flush(link);
		if (!err)
			err = gntsock_msg_put(&link->tx, h, fn, ctx);
		if (!err) {
			atomic64_inc(&link->stat_tx_msgs);
			atomic64_add(h->len, &link->stat_tx_bytes);
		}
		/* The copy failed and nothing else went in: the peer has
		 * nothing new, and an event for nothing counts against the
		 * link (spurious EOIs delay its events).
		 */
		if (err == -EFAULT && link->tx.local == prod)
			goto out;
		err = gntsock_tx_done(link, err);
	} while (err == -EAGAIN);
	if (!err && READ_ONCE(gntsock_tx_wake_one) &&
	    wq_has_sleeper(&link->tx_wq))
		gntsock_tx_pass_on(link);
out:
	mutex_unlock(&link->tx_lock);
	return err;
}

/**
 * gntsock_link_send_ctl() - send a control message, queueing it if needed
 * @link: the link
 * @h: header of a message without payload
 *
 * Never sleeps waiting for ring space. A bounded queue holds messages the
 * ring has no room for; beyond the bound they are dropped and counted (a
 * peer that does not drain its ring cannot make us allocate without end).
 *
 * Return: 0, -ECONNRESET if the link is down, -ENOBUFS if dropped.
 */
int gntsock_link_send_ctl(struct gntsock_link *link,
			  const struct gntsock_msg_hdr *h)
{
	struct gntsock_ctl *c;
	int err;

	if (link->loopback) {
		err = gntsock_loop_send(link, h, NULL, NULL);
		if (err) {
			atomic64_inc(&link->stat_ctl_dropped);
			atomic64_inc(&gntsock_stats.ctl_dropped);
		}
		return err;
	}
	mutex_lock(&link->tx_lock);
	if (link->state != GNTSOCK_LINK_CONNECTED) {
		err = -ECONNRESET;
		goto out;
	}
	err = gntsock_ctl_flush(link);
	if (!err) {
		err = gntsock_msg_put(&link->tx, h, NULL, NULL);
		if (!err)
			atomic64_inc(&link->stat_tx_msgs);
	}
	if (err == -ENOSPC) {
		if (link->ctl_len >= GNTSOCK_CTL_QUEUE_MAX) {
			atomic64_inc(&link->stat_ctl_dropped);
			atomic64_inc(&gntsock_stats.ctl_dropped);
			pr_warn_ratelimited("gntsock: link to domain %u: control queue full, message dropped\n",
					    link->peer);
			err = -ENOBUFS;
		} else {
			c = kmalloc(sizeof(*c), GFP_KERNEL);
			if (c) {
				c->h = *h;
				list_add_tail(&c->node, &link->ctl_queue);
				link->ctl_len++;
				err = -ENOSPC;
			} else {
				err = -ENOBUFS;
			}
		}
	}
	if (err == -ENOSPC)
		err = gntsock_ctl_flush_event(link);
	else
		err = gntsock_tx_done(link, err);
	if (err == -ENOSPC)
		err = 0;
out:
	mutex_unlock(&link->tx_lock);
	return err;
}

struct gntsock_skb_fill {
	void *buf;
};

static int gntsock_fill_buf(void *ring_mem, u32 len, void *ctx)
{
	struct gntsock_skb_fill *f = ctx;

	memcpy(f->buf, ring_mem, len);
	f->buf += len;
	return 0;
}

/**
 * gntsock_link_rx_payload() - copy the current message's payload out
 * @link: the link, from inside a handler's recv()
 * @buf: destination, at least @len bytes
 * @len: the validated payload length
 */
void gntsock_link_rx_payload(struct gntsock_link *link, void *buf, u32 len)
{
	struct gntsock_skb_fill f = { .buf = buf };

	if (link->loopback) {
		memcpy(buf, link->loop_payload, len);
		return;
	}
	gntsock_ring_read_cb(&link->rx, sizeof(struct gntsock_msg_hdr), len,
			     gntsock_fill_buf, &f);
}

/**
 * gntsock_link_rx_payload_cb() - hand part of the current payload to @fn
 * @link: the link, from inside a handler's recv()
 * @off: offset in the payload
 * @len: bytes, @off + @len at most the validated payload length
 * @fn: called on consecutive pieces (ring pages, or the loopback copy)
 * @ctx: for @fn
 */
void gntsock_link_rx_payload_cb(struct gntsock_link *link, u32 off, u32 len,
				gntsock_copy_fn fn, void *ctx)
{
	if (link->loopback) {
		fn((void *)link->loop_payload + off, len, ctx);
		return;
	}
	gntsock_ring_read_cb(&link->rx, sizeof(struct gntsock_msg_hdr) + off,
			     len, fn, ctx);
}

/**
 * gntsock_link_violation() - the peer broke the protocol: reset the link
 * @link: the link
 * @v: what was wrong
 *
 * Counted per link and globally, logged rate-limited, and the link is torn
 * down from a work item (never from the rx path itself).
 */
void gntsock_link_violation(struct gntsock_link *link,
			    enum gntsock_violation v)
{
	if (v <= GNTSOCK_V_NONE || v >= GNTSOCK_V_MAX)
		v = GNTSOCK_V_RING_INDEX;
	atomic64_inc(&link->stat_violations);
	atomic64_inc(&gntsock_stats.violations);
	atomic64_inc(&gntsock_stats.violation[v]);
	if (link->loopback) {
		/* Only a bug of ours: nobody to reset. */
		pr_warn_ratelimited("gntsock: loopback: bad message (%s) dropped\n",
				    gntsock_violation_names[v]);
		return;
	}
	if (test_and_set_bit(0, &link->violated))
		return;
	link->failures++;
	pr_warn_ratelimited("gntsock: link to domain %u: protocol violation (%s), resetting link\n",
			    link->peer, gntsock_violation_names[v]);
	queue_work(gntsock_wq, &link->reset_work);
}

/**
 * gntsock_link_rx_peek() - the next message of the rx ring, validated
 * @link: the link, rx_lock held
 * @h: out: local copy of its header
 *
 * A violation is reported (the link will reset).
 *
 * Return: %GNTSOCK_V_NONE, %GNTSOCK_V_MAX if the ring is empty, or the
 * violation.
 */
enum gntsock_violation gntsock_link_rx_peek(struct gntsock_link *link,
					    struct gntsock_msg_hdr *h)
{
	enum gntsock_violation v;

	lockdep_assert_held(&link->rx_lock);
	if (test_bit(0, &link->violated))
		return GNTSOCK_V_RING_INDEX;
	v = gntsock_msg_peek(&link->rx, h, link->max_payload);
	if (v != GNTSOCK_V_NONE && v != GNTSOCK_V_MAX)
		gntsock_link_violation(link, v);
	return v;
}

/**
 * gntsock_link_rx_consume() - done with the message gntsock_link_rx_peek()
 *	returned: give its ring space back
 * @link: the link, rx_lock held
 * @h: its header
 */
void gntsock_link_rx_consume(struct gntsock_link *link,
			     const struct gntsock_msg_hdr *h)
{
	lockdep_assert_held(&link->rx_lock);
	atomic64_inc(&link->stat_rx_msgs);
	atomic64_add(h->len, &link->stat_rx_bytes);
	if (h->op == GNTSOCK_OP_RW)
		link->rx_last_dst = h->dst_port;
	gntsock_ring_consume(&link->rx, gntsock_msg_size(h->len));
	link->rx.peer_evt = gntsock_link_evt(link);
	if (gntsock_ring_producer_waiting(&link->rx))
		gntsock_notify(link);
}

struct gntsock_iter_fill {
	struct iov_iter *to;
	u32 done;
};

static int gntsock_fill_iter(void *ring_mem, u32 len, void *ctx)
{
	struct gntsock_iter_fill *f = ctx;
	size_t n = copy_to_iter(ring_mem, len, f->to);

	f->done += n;
	return n == len ? 0 : -EFAULT;
}

/**
 * gntsock_link_rx_to_iter() - copy the start of the current message's
 *	payload to a reader's buffer, without taking page faults
 * @link: the link, rx_lock held
 * @len: bytes, at most the validated payload length
 * @to: the reader's buffer
 *
 * Return: the bytes copied; fewer than @len if the buffer faulted.
 */
int gntsock_link_rx_to_iter(struct gntsock_link *link, u32 len,
			    struct iov_iter *to)
{
	struct gntsock_iter_fill f = { .to = to };

	lockdep_assert_held(&link->rx_lock);
	pagefault_disable();
	gntsock_ring_read_cb(&link->rx, sizeof(struct gntsock_msg_hdr), len,
			     gntsock_fill_iter, &f);
	pagefault_enable();
	return f.done;
}

/**
 * gntsock_link_rx_begin() - a reader wants to consume from the rx ring
 * @link: the link (not the loopback one); the caller holds no socket lock
 *
 * Return: 0 with rx_lock held, or -ENOTCONN / -EINTR.
 */
int gntsock_link_rx_begin(struct gntsock_link *link)
{
	if (mutex_lock_interruptible(&link->rx_lock))
		return -EINTR;
	if (READ_ONCE(link->state) != GNTSOCK_LINK_CONNECTED ||
	    test_bit(0, &link->violated)) {
		mutex_unlock(&link->rx_lock);
		return -ENOTCONN;
	}
	return 0;
}

/**
 * gntsock_link_rx_end() - the reader is done with the rx ring
 * @link: the link, rx_lock held (released here)
 * @others: the ring holds a message the reader could not take: the rx work
 *	takes it now
 * @leftover: the ring holds more of the reader's own data, left for its
 *	next call; the fallback work takes it if that does not come soon
 */
void gntsock_link_rx_end(struct gntsock_link *link, bool others,
			 bool leftover)
{
	u32 avail;

	lockdep_assert_held(&link->rx_lock);
	if (others) {
		queue_work(gntsock_wq, &link->rx_work);
	} else if (leftover && !gntsock_ring_avail(&link->rx, &avail) &&
		   avail) {
		/* No events for data the reader will come back for. */
		gntsock_ring_set_cons_waiting(&link->rx, false);
		queue_delayed_work(gntsock_wq, &link->rx_fallback,
				   GNTSOCK_RX_DEFER);
	} else {
		gntsock_ring_set_cons_waiting(&link->rx, true);
		if (!gntsock_ring_avail(&link->rx, &avail) && avail)
			queue_work(gntsock_wq, &link->rx_work);
	}
	mutex_unlock(&link->rx_lock);
}

/* Payload bytes a receive batch hands to sockets before waking them. */
#define GNTSOCK_RX_BATCH	(256 * 1024)

/* Hand every message to its socket. With @defer a socket whose reader
 * takes its data from the ring itself may have a message left in place:
 * then stop (return true) and leave the rest for that reader.
 */
static bool gntsock_rx_drain(struct gntsock_link *link, bool defer)
{
	struct gntsock_msg_hdr h;
	u32 bytes = 0;
	int n = 0;

	while (gntsock_link_rx_peek(link, &h) == GNTSOCK_V_NONE) {
		if (gntsock_link_deliver(link, &h, defer))
			return true;
		gntsock_link_rx_consume(link, &h);
		bytes += h.len;
		/* Readers get their data at least every GNTSOCK_RX_BATCH. */
		if (!(++n % 64) || bytes >= GNTSOCK_RX_BATCH) {
			gntsock_link_batch_end(link);
			cond_resched();
			bytes = 0;
		}
	}
	return false;
}

/* Drain the rx ring until it stays empty, then ask for events. rx_lock. */
static void gntsock_rx_run(struct gntsock_link *link, bool defer)
{
	u32 avail;

	link->rx_batching = true;
	for (;;) {
		gntsock_ring_set_cons_waiting(&link->rx, false);
		if (gntsock_rx_drain(link, defer)) {
			atomic64_inc(&gntsock_stats.rx_deferred);
			queue_delayed_work(gntsock_wq, &link->rx_fallback,
					   GNTSOCK_RX_DEFER);
			break;
		}
		if (test_bit(0, &link->violated))
			break;
		gntsock_ring_set_cons_waiting(&link->rx, true);
		if (gntsock_ring_avail(&link->rx, &avail) || !avail)
			break;
	}
	link->rx_batching = false;
	gntsock_link_batch_end(link);
}

/**
 * gntsock_link_rx_flush() - hand everything in the rx ring to its sockets
 * @link: the link (not the loopback one); no socket lock held
 */
void gntsock_link_rx_flush(struct gntsock_link *link)
{
	mutex_lock(&link->rx_lock);
	if (READ_ONCE(link->state) == GNTSOCK_LINK_CONNECTED)
		gntsock_rx_run(link, false);
	mutex_unlock(&link->rx_lock);
}

static void gntsock_rx_fallback_work(struct work_struct *work)
{
	struct gntsock_link *link = container_of(to_delayed_work(work),
						 struct gntsock_link,
						 rx_fallback);
	u32 avail;

	mutex_lock(&link->rx_lock);
	if (READ_ONCE(link->state) == GNTSOCK_LINK_CONNECTED &&
	    !gntsock_ring_avail(&link->rx, &avail) && avail) {
		atomic64_inc(&gntsock_stats.rx_fallbacks);
		gntsock_rx_run(link, false);
	}
	mutex_unlock(&link->rx_lock);
}

/* Did the event that queued the rx work bring anything? The peer signals
 * when it produced into our rx ring or consumed from our tx ring (one of
 * the two indices moved since the previous event), and nudges us while our
 * rx ring holds data (a writer that found it full). Compared with what the
 * previous event saw, not with what our own readers or a work queued
 * without an event already handled: an event for data a reader took
 * before the event came is no storm. As in xen-netback, an event is
 * spurious only if there is nothing to do: nothing moved and nothing
 * waits in the ring. Each index is read once here; a peer scribbling on
 * them only makes its own events look useful or spurious. Only the rx
 * work calls this, for an event (it never runs concurrently with itself).
 */
static bool gntsock_rx_event_had_work(struct gntsock_link *link)
{
	u32 prod = READ_ONCE(link->rx.idx->prod);
	u32 cons = READ_ONCE(link->tx.idx->cons);
	bool work = prod != link->ev_rx_prod || cons != link->ev_tx_cons;
	u32 avail;

	link->ev_rx_prod = prod;
	link->ev_tx_cons = cons;
	/* A bad index is work too: the drain reports the violation. */
	return work || gntsock_ring_avail(&link->rx, &avail) || avail;
}

/* Late EOI of the event that queued the rx work. An event that brought
 * no work is spurious: xen_irq_lateeoi() then delays the next one more
 * with every spurious event in a row (up to a second, reset by a useful
 * one), so a peer storming the event channel costs this domain little
 * CPU, as in xen-netback and xen-blkback.
 */
static void gntsock_rx_eoi(struct gntsock_link *link, int irq, bool work)
{
	if (!irq)
		return;
	if (!work)
		atomic64_inc(&link->stat_events_spurious);
	xen_irq_lateeoi(irq, work ? 0 : XEN_EOI_FLAG_SPURIOUS);
}

static void gntsock_rx_work(struct work_struct *work)
{
	struct gntsock_link *link = container_of(work, struct gntsock_link,
						 rx_work);
	int eoi_irq = atomic_xchg(&link->eoi_irq, 0);
	u64 t0 = gntsock_stat_clock();
	bool had_work = true, moved;
	u32 cons;

	/* Before link_up() replies could not be sent; it requeues us. */
	if (READ_ONCE(link->state) != GNTSOCK_LINK_CONNECTED)
		goto out;
	if (eoi_irq)
		had_work = gntsock_rx_event_had_work(link);
	mutex_lock(&link->rx_lock);
	if (READ_ONCE(link->state) == GNTSOCK_LINK_CONNECTED)
		gntsock_rx_run(link, true);
	mutex_unlock(&link->rx_lock);
	/* The event may also mean the peer consumed from our tx ring: stop
	 * asking for space events, then wake the waiters; each re-checks
	 * and asks again if it still lacks space. With tx_wake_one an event
	 * that freed nothing (the peer's cons did not move) wakes nobody and
	 * leaves their request for a space event standing.
	 */
	cons = READ_ONCE(link->tx.idx->cons);
	moved = cons != link->tx_cons_seen;
	if (!READ_ONCE(gntsock_tx_wake_one) || moved || link->ctl_len) {
		link->tx_cons_seen = cons;
		gntsock_ring_set_prod_waiting(&link->tx, false);
		if (link->ctl_len) {
			mutex_lock(&link->tx_lock);
			if (link->state == GNTSOCK_LINK_CONNECTED)
				gntsock_ctl_flush_event(link);
			mutex_unlock(&link->tx_lock);
		}
		gntsock_tx_kick(link);
		if (moved)
			gntsock_space_watch_flush(link);
	}
	atomic64_inc(&gntsock_stats.rx_work_runs);
	if (t0)
		atomic64_add(ktime_get_ns() - t0, &gntsock_stats.rx_work_ns);
out:
	gntsock_rx_eoi(link, eoi_irq, had_work);
}

static irqreturn_t gntsock_interrupt(int irq, void *dev_id)
{
	struct gntsock_link *link = dev_id;

	atomic64_inc(&link->stat_events_rx);
	atomic_set(&link->eoi_irq, irq);
	queue_work(gntsock_wq, &link->rx_work);
	return IRQ_HANDLED;
}

static int gntsock_link_alloc_arrays(struct gntsock_link *link,
				     unsigned int order)
{
	unsigned int n = 2U << order;

	kfree(link->pages);
	kfree(link->va);
	kfree(link->refs);
	kfree(link->handles);
	link->pages = kcalloc(n + 1, sizeof(*link->pages), GFP_KERNEL);
	link->va = kcalloc(n, sizeof(*link->va), GFP_KERNEL);
	link->refs = kcalloc(n + 1, sizeof(*link->refs), GFP_KERNEL);
	link->handles = kcalloc(n + 1, sizeof(*link->handles), GFP_KERNEL);
	if (!link->pages || !link->va || !link->refs || !link->handles)
		return -ENOMEM;
	link->order = order;
	link->max_payload = gntsock_max_payload(GNTSOCK_PAGE_SIZE << order);
	return 0;
}

/* Point tx/rx at the data pages: F2B first, B2F second. */
static void gntsock_link_init_rings(struct gntsock_link *link)
{
	unsigned int half = 1U << link->order;
	int f2b = GNTSOCK_DIR_F2B, b2f = GNTSOCK_DIR_B2F;

	link->tx_cons_seen = 0;
	link->ev_rx_prod = 0;
	link->ev_tx_cons = 0;
	if (link->frontend) {
		gntsock_ring_init(&link->tx, &link->ctrl->ring[f2b], link->va,
				  link->order);
		gntsock_ring_init(&link->rx, &link->ctrl->ring[b2f],
				  link->va + half, link->order);
	} else {
		gntsock_ring_init(&link->tx, &link->ctrl->ring[b2f],
				  link->va + half, link->order);
		gntsock_ring_init(&link->rx, &link->ctrl->ring[f2b], link->va,
				  link->order);
	}
	clear_bit(0, &link->violated);
}

/* Ring grants a backend may keep us from ending, per link: one set of the
 * largest rings. A backend that cycles Closing -> InitWait while it keeps
 * our old ring pages mapped used to make us grant a fresh set each time and
 * defer the old references forever, until the grant table was full and
 * every other frontend of this domain failed.
 */
#define GNTSOCK_STALE_MAX	((2U << GNTSOCK_RING_ORDER_MAX) + 1)

/* A ring page whose grant the backend still maps (link->stale). */
struct gntsock_stale_ref {
	struct list_head node;
	grant_ref_t ref;
	struct page *page;
};

static void gntsock_stale_del(struct gntsock_link *link,
			      struct gntsock_stale_ref *s)
{
	list_del(&s->node);
	kfree(s);
	link->nr_stale--;
	atomic_dec(&gntsock_stats.ring_refs_stale);
}

/* Frontend teardown: end the grant @ref of @pg, or, if the backend still
 * maps it, keep it on link->stale for gntsock_front_reap(). Normal after a
 * reset we started ourselves: the backend unmaps when it sees Closing.
 */
static void gntsock_front_end_ref(struct gntsock_link *link, grant_ref_t ref,
				  struct page *pg)
{
	struct gntsock_stale_ref *s;

	if (gnttab_try_end_foreign_access(ref)) {
		__free_page(pg);
		return;
	}
	s = kmalloc(sizeof(*s), GFP_KERNEL);
	if (!s) {
		/* Xen frees it when the backend unmaps; not bounded by us. */
		gnttab_end_foreign_access(ref, pg);
		return;
	}
	s->ref = ref;
	s->page = pg;
	list_add_tail(&s->node, &link->stale);
	link->nr_stale++;
	atomic_inc(&gntsock_stats.ring_refs_stale);
}

/**
 * gntsock_front_reap() - end the old ring grants the backend let go of
 * @link: a frontend link about to publish fresh rings; setup_lock held
 *
 * The backend asked for fresh rings (InitWait), so it must have unmapped
 * the old ones. Each still mapped is counted (ring_refs_kept) and makes
 * the set-up count as a failure of the link, so a backend that cycles
 * Closing -> InitWait with our pages mapped gets %GNTSOCK_LINK_MAX_FAILURES
 * fresh sets at most; beyond %GNTSOCK_STALE_MAX outstanding references we
 * grant no more at all.
 *
 * Return: 0, or -EBUSY: publish no rings now.
 */
static int gntsock_front_reap(struct gntsock_link *link)
{
	struct gntsock_stale_ref *s, *tmp;
	unsigned int kept = 0;

	lockdep_assert_held(&link->setup_lock);
	list_for_each_entry_safe(s, tmp, &link->stale, node) {
		if (!gnttab_try_end_foreign_access(s->ref)) {
			kept++;
			continue;
		}
		__free_page(s->page);
		gntsock_stale_del(link, s);
	}
	if (!kept)
		return 0;
	atomic64_add(kept, &gntsock_stats.ring_refs_kept);
	pr_warn_ratelimited("gntsock: link to domain %u: the backend asks for fresh rings but still maps %u old ring pages\n",
			    link->peer, kept);
	if (link->nr_stale > GNTSOCK_STALE_MAX)
		return -EBUSY;	/* a failed set-up: the caller counts it */
	link->failures++;
	return 0;
}

/* The link is removed: hand what the backend still maps to the grant
 * table's deferred release, which frees it once the backend unmaps.
 */
static void gntsock_front_stale_drop(struct gntsock_link *link)
{
	struct gntsock_stale_ref *s, *tmp;

	list_for_each_entry_safe(s, tmp, &link->stale, node) {
		gnttab_end_foreign_access(s->ref, s->page);
		gntsock_stale_del(link, s);
	}
}

/* Frontend: end access to every granted page; one the backend still maps
 * waits on link->stale (gntsock_front_end_ref()).
 */
static void gntsock_front_free(struct gntsock_link *link)
{
	unsigned int i, n = 2U << link->order;

	if (!link->pages)
		return;
	for (i = 0; i <= n; i++) {
		struct page *pg = i ? link->pages[i - 1] : link->ctrl_page;

		if (!pg)
			continue;
		if (link->refs[i]) {
			gntsock_front_end_ref(link, link->refs[i], pg);
			atomic_dec(&gntsock_stats.ring_grants);
		} else {
			__free_page(pg);
		}
		link->refs[i] = 0;
		if (i)
			link->pages[i - 1] = NULL;
	}
	link->ctrl_page = NULL;
	link->ctrl = NULL;
}

static int gntsock_front_grant(struct gntsock_link *link, unsigned int i,
			       struct page *pg)
{
	int ref = gnttab_grant_foreign_access(link->peer, xen_page_to_gfn(pg),
					      0);

	if (ref < 0)
		return ref;
	link->refs[i] = ref;
	atomic_inc(&gntsock_stats.ring_grants);
	return 0;
}

static int gntsock_front_setup(struct gntsock_link *link)
{
	struct xenbus_device *dev = link->xbdev;
	struct xenbus_transaction xbt;
	unsigned int order, i, n;
	int err;

	err = gntsock_front_reap(link);
	if (err) {
		pr_warn_ratelimited("gntsock: link to domain %u: %u old ring grants still mapped, publishing no fresh rings\n",
				    link->peer, link->nr_stale);
		return err;
	}
	order = xenbus_read_unsigned(dev->nodename, "ring-order",
				     READ_ONCE(gntsock_ring_order));
	if (order > GNTSOCK_RING_ORDER_MAX) {
		xenbus_dev_fatal(dev, -EINVAL, "ring-order %u > %u", order,
				 GNTSOCK_RING_ORDER_MAX);
		return -EINVAL;
	}
	err = gntsock_link_alloc_arrays(link, order);
	if (err)
		return err;
	n = 2U << order;

	link->ctrl_page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!link->ctrl_page)
		goto nomem;
	link->ctrl = page_address(link->ctrl_page);
	for (i = 0; i < n; i++) {
		link->pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!link->pages[i])
			goto nomem;
		link->va[i] = page_address(link->pages[i]);
	}
	link->ctrl->magic = GNTSOCK_WIRE_MAGIC;
	link->ctrl->version = GNTSOCK_WIRE_VERSION;
	link->ctrl->ring_order = order;

	err = gntsock_front_grant(link, 0, link->ctrl_page);
	for (i = 0; !err && i < n; i++) {
		err = gntsock_front_grant(link, i + 1, link->pages[i]);
		link->ctrl->data_ref[i] = link->refs[i + 1];
	}
	if (err)
		goto fail;

	err = xenbus_alloc_evtchn(dev, &link->evtchn);
	if (err)
		goto fail;
	gntsock_link_init_rings(link);
	err = bind_evtchn_to_irqhandler_lateeoi(link->evtchn, gntsock_interrupt,
						0, "gntsock", link);
	if (err < 0) {
		xenbus_free_evtchn(dev, link->evtchn);
		goto fail;
	}
	link->irq = err;

again:
	err = xenbus_transaction_start(&xbt);
	if (err)
		goto fail;
	err = xenbus_printf(xbt, dev->nodename, "ring-ref", "%u", link->refs[0]);
	if (!err)
		err = xenbus_printf(xbt, dev->nodename, "ring-order", "%u",
				    order);
	if (!err)
		err = xenbus_printf(xbt, dev->nodename, "event-channel", "%u",
				    link->evtchn);
	if (!err)
		err = xenbus_printf(xbt, dev->nodename, "ring-generation", "%u",
				    link->generation + 1);
	if (!err)
		err = gntsock_link_advertise(link, xbt);
	if (err) {
		xenbus_transaction_end(xbt, 1);
		goto fail;
	}
	err = xenbus_transaction_end(xbt, 0);
	if (err == -EAGAIN)
		goto again;
	if (err)
		goto fail;
	link->generation++;
	WRITE_ONCE(link->state, GNTSOCK_LINK_CONNECTING);
	return xenbus_switch_state(dev, XenbusStateInitialised);

nomem:
	err = -ENOMEM;
fail:
	if (link->irq) {
		unbind_from_irqhandler(link->irq, link);
		link->irq = 0;
	}
	gntsock_front_free(link);
	xenbus_dev_fatal(dev, err, "setting up gntsock rings");
	return err;
}

/* Backend: unmap whatever is mapped and give the pages back. */
/* Grant unmaps per hypercall batch in gntsock_back_unmap(), on the stack. */
#define GNTSOCK_UNMAP_BATCH	16

static void gntsock_back_unmap_batch(struct gntsock_link *link,
				     struct gnttab_unmap_grant_ref *ops,
				     struct page **pages, unsigned int n)
{
	if (!n)
		return;
	if (gnttab_unmap_refs(ops, NULL, pages, n))
		pr_err_ratelimited("gntsock: link to domain %u: unmapping rings failed\n",
				   link->peer);
	atomic_sub(n, &gntsock_stats.ring_maps);
}

/* Unmap in fixed batches: teardown must not fail, and one array for all
 * 2 << 8 + 1 pages of the largest rings would be a multi-page allocation
 * that cannot be guaranteed (__GFP_NOFAIL beyond order 1 warns).
 */
static void gntsock_back_unmap(struct gntsock_link *link)
{
	struct gnttab_unmap_grant_ref ops[GNTSOCK_UNMAP_BATCH];
	struct page *pages[GNTSOCK_UNMAP_BATCH];
	unsigned int i, n = 0, total = (2U << link->order) + 1;

	if (!link->pages || !link->pages[0])
		return;
#ifdef GNTSOCK_HOSTILE
	if (gntsock_link_keep_maps_hook && gntsock_link_keep_maps_hook(link))
		return;
#endif
	for (i = 0; i < total; i++) {
		if (link->handles[i] == INVALID_GRANT_HANDLE)
			continue;
		gnttab_set_unmap_op(&ops[n], (unsigned long)
				    pfn_to_kaddr(page_to_pfn(link->pages[i])),
				    GNTMAP_host_map, link->handles[i]);
		pages[n++] = link->pages[i];
		link->handles[i] = INVALID_GRANT_HANDLE;
		if (n == GNTSOCK_UNMAP_BATCH) {
			gntsock_back_unmap_batch(link, ops, pages, n);
			n = 0;
		}
	}
	gntsock_back_unmap_batch(link, ops, pages, n);
	gnttab_free_pages(total, link->pages);
	memset(link->pages, 0, total * sizeof(*link->pages));
	link->ctrl = NULL;
}

static int gntsock_back_map(struct gntsock_link *link, unsigned int from,
			    unsigned int count)
{
	struct gnttab_map_grant_ref *ops;
	unsigned int i;
	int err = 0;

	ops = kcalloc(count, sizeof(*ops), GFP_KERNEL);
	if (!ops)
		return -ENOMEM;
	for (i = 0; i < count; i++)
		gnttab_set_map_op(&ops[i], (unsigned long)
				  pfn_to_kaddr(page_to_pfn(link->pages[from + i])),
				  GNTMAP_host_map, link->refs[from + i],
				  link->peer);
	err = gnttab_map_refs(ops, NULL, link->pages + from, count);
	for (i = 0; i < count; i++) {
		if (!err && ops[i].status == GNTST_okay) {
			link->handles[from + i] = ops[i].handle;
			atomic_inc(&gntsock_stats.ring_maps);
		} else if (!err) {
			err = -EINVAL;
		}
	}
	kfree(ops);
	return err;
}

static int gntsock_back_connect(struct gntsock_link *link)
{
	struct xenbus_device *dev = link->xbdev;
	struct gntsock_ctrl_page hdr;
	unsigned int ring_ref, evtchn, order, i, n;
	int err;

	err = xenbus_gather(XBT_NIL, dev->otherend,
			    "ring-ref", "%u", &ring_ref,
			    "ring-order", "%u", &order,
			    "event-channel", "%u", &evtchn, NULL);
	if (err) {
		xenbus_dev_fatal(dev, err, "reading %s/ring-ref etc.",
				 dev->otherend);
		return err;
	}
	if (order > GNTSOCK_RING_ORDER_MAX) {
		gntsock_link_violation(link, GNTSOCK_V_CTRL_PAGE);
		return -EINVAL;
	}
	err = gntsock_link_alloc_arrays(link, order);
	if (err)
		return err;
	n = 2U << order;
	for (i = 0; i <= n; i++)
		link->handles[i] = INVALID_GRANT_HANDLE;
	err = gnttab_alloc_pages(n + 1, link->pages);
	if (err) {
		memset(link->pages, 0, (n + 1) * sizeof(*link->pages));
		return err;
	}

	link->refs[0] = ring_ref;
	err = gntsock_back_map(link, 0, 1);
	if (err)
		goto fail;
	link->ctrl = page_address(link->pages[0]);
	/* Copy the frontend's header and refs out once, then validate. */
	memcpy(&hdr, link->ctrl, sizeof(hdr));
	if (gntsock_ctrl_validate(&hdr, order) != GNTSOCK_V_NONE) {
		atomic64_inc(&gntsock_stats.violation[GNTSOCK_V_CTRL_PAGE]);
		err = -EPROTO;
		goto fail;
	}
	for (i = 0; i < n; i++)
		link->refs[i + 1] = READ_ONCE(link->ctrl->data_ref[i]);
	err = gntsock_back_map(link, 1, n);
	if (err)
		goto fail;
	for (i = 0; i < n; i++)
		link->va[i] = page_address(link->pages[i + 1]);

	gntsock_link_init_rings(link);
	err = bind_interdomain_evtchn_to_irqhandler_lateeoi(dev, evtchn,
							    gntsock_interrupt,
							    0, "gntsock",
							    link);
	if (err < 0)
		goto fail;
	link->irq = err;
	return 0;

fail:
	gntsock_back_unmap(link);
	xenbus_dev_fatal(dev, err, "mapping gntsock rings of domain %u",
			 link->peer);
	return err;
}

/* May a link up/down line be logged? A peer makes its link go down and up
 * again as often as it likes (it only has to switch its xenbus state, or
 * break the protocol), so these lines are rate-limited, per link: one
 * flapping peer neither floods the log nor hides the news of other links.
 * Every line left out is counted (link_log_suppressed in
 * /proc/net/gntsock_stat); link_ups and resets count the events themselves.
 */
static bool gntsock_link_log_ok(struct gntsock_link *link)
{
	if (__ratelimit(&link->log_rs))
		return true;
	atomic64_inc(&gntsock_stats.link_log_suppressed);
	return false;
}

static void gntsock_link_up(struct gntsock_link *link)
{
	link->up_since = jiffies;
	mutex_lock(&link->tx_lock);
	link->state = GNTSOCK_LINK_CONNECTED;
	mutex_unlock(&link->tx_lock);
	atomic_inc(&gntsock_stats.links_connected);
	atomic64_inc(&gntsock_stats.link_ups);
	if (gntsock_link_log_ok(link))
		pr_info("gntsock: link to domain %u connected (%s, %u KiB each way)\n",
			link->peer, link->frontend ? "frontend" : "backend",
			(GNTSOCK_PAGE_SIZE << link->order) / 1024);
	/* Pick up anything the peer sent before we saw Connected. */
	queue_work(gntsock_wq, &link->rx_work);
}

/* Tear the rings down and reset every socket on the link. setup_lock held. */
static void gntsock_link_down(struct gntsock_link *link)
{
	int old = link->state;

	lockdep_assert_held(&link->setup_lock);
	mutex_lock(&link->tx_lock);
	link->state = GNTSOCK_LINK_CLOSED;
	gntsock_ctl_purge(link);
	mutex_unlock(&link->tx_lock);
	/* rx_work sees CLOSED and stops; then no event can queue it again. */
	cancel_work_sync(&link->rx_work);
	cancel_delayed_work_sync(&link->rx_fallback);
	/* A reader inside the ring (gntsock_link_rx_begin()) has left it. */
	mutex_lock(&link->rx_lock);
	mutex_unlock(&link->rx_lock);
	if (link->irq) {
		unbind_from_irqhandler(link->irq, link);
		WRITE_ONCE(link->irq, 0);
	}
	cancel_work_sync(&link->rx_work);
	cancel_delayed_work_sync(&link->rx_fallback);
	atomic_set(&link->eoi_irq, 0);
	atomic_inc(&link->tx_kick);
	wake_up_all(&link->tx_wq);
	gntsock_space_watch_flush(link);
	gntsock_link_tell_down(link);
	if (link->frontend)
		gntsock_front_free(link);
	else
		gntsock_back_unmap(link);
	if (old == GNTSOCK_LINK_CONNECTED) {
		if (time_after(jiffies, link->up_since + GNTSOCK_LINK_STABLE))
			link->failures = 0;
		atomic_dec(&gntsock_stats.links_connected);
		atomic64_inc(&link->stat_resets);
		atomic64_inc(&gntsock_stats.resets);
		if (gntsock_link_log_ok(link))
			pr_info("gntsock: link to domain %u down\n", link->peer);
	}
}

static void gntsock_reset_work(struct work_struct *work)
{
	struct gntsock_link *link = container_of(work, struct gntsock_link,
						 reset_work);

	mutex_lock(&link->setup_lock);
	if (link->xbdev && link->state != GNTSOCK_LINK_CLOSED) {
		gntsock_link_down(link);
		/* Tell the peer; it answers by restarting the handshake. */
		xenbus_switch_state(link->xbdev, XenbusStateClosing);
	}
	mutex_unlock(&link->setup_lock);
}

static int gntsock_link_create(struct xenbus_device *dev, bool frontend)
{
	struct gntsock_link *link, *other;

	link = kzalloc(sizeof(*link), GFP_KERNEL);
	if (!link)
		return -ENOMEM;
	kref_init(&link->kref);
	link->peer = dev->otherend_id;
	link->frontend = frontend;
	link->xbdev = dev;
	link->state = GNTSOCK_LINK_CLOSED;
	mutex_init(&link->setup_lock);
	mutex_init(&link->tx_lock);
	init_waitqueue_head(&link->tx_wq);
	INIT_LIST_HEAD(&link->ctl_queue);
	INIT_LIST_HEAD(&link->stale);
	INIT_WORK(&link->rx_work, gntsock_rx_work);
	mutex_init(&link->rx_lock);
	INIT_LIST_HEAD(&link->rx_wakes);
	spin_lock_init(&link->watch_lock);
	INIT_LIST_HEAD(&link->space_watches);
	INIT_DELAYED_WORK(&link->rx_fallback, gntsock_rx_fallback_work);
	INIT_WORK(&link->reset_work, gntsock_reset_work);
	ratelimit_state_init(&link->log_rs, DEFAULT_RATELIMIT_INTERVAL,
			     DEFAULT_RATELIMIT_BURST);

	mutex_lock(&gntsock_links_lock);
	list_for_each_entry(other, &gntsock_links, node) {
		if (other->peer == link->peer) {
			mutex_unlock(&gntsock_links_lock);
			kfree(link);
			xenbus_dev_fatal(dev, -EEXIST,
					 "a gntsock link to domain %u exists",
					 dev->otherend_id);
			return -EEXIST;
		}
	}
	list_add_tail(&link->node, &gntsock_links);
	mutex_unlock(&gntsock_links_lock);
	atomic_inc(&gntsock_stats.links);
	dev_set_drvdata(&dev->dev, link);
	return 0;
}

static void gntsock_remove(struct xenbus_device *dev)
{
	struct gntsock_link *link = dev_get_drvdata(&dev->dev);

	mutex_lock(&link->setup_lock);
	gntsock_link_down(link);
	gntsock_front_stale_drop(link);
	/* A module without event indices bound after us (a downgrade) must
	 * not find our key: its peer would notify it by indices it never
	 * writes. (Gone already if the toolstack removed the device.)
	 */
	xenbus_rm(XBT_NIL, dev->nodename, GNTSOCK_FEATURE_EVTIDX);
	link->xbdev = NULL;
	mutex_unlock(&link->setup_lock);
	cancel_work_sync(&link->reset_work);

	mutex_lock(&gntsock_links_lock);
	list_del(&link->node);
	mutex_unlock(&gntsock_links_lock);
	atomic_dec(&gntsock_stats.links);
	dev_set_drvdata(&dev->dev, NULL);
	gntsock_link_put(link);
}

/* Stop a link that keeps failing from bouncing forever; counted, logged. */
static bool gntsock_link_gave_up(struct gntsock_link *link)
{
	if (link->failures < GNTSOCK_LINK_MAX_FAILURES)
		return false;
	pr_warn_ratelimited("gntsock: link to domain %u failed %u times, not retrying until it is re-created\n",
			    link->peer, link->failures);
	return true;
}

/* The other end vanished (its domain died or the toolstack removed the
 * link): drop our half of the device too so nothing lingers.
 */
static void gntsock_otherend_gone(struct gntsock_link *link)
{
	gntsock_link_down(link);
	xenbus_rm(XBT_NIL, link->xbdev->nodename, "");
}

static int gntsock_front_probe(struct xenbus_device *dev,
			       const struct xenbus_device_id *id)
{
	return gntsock_link_create(dev, true);
}

static void gntsock_front_changed(struct xenbus_device *dev,
				  enum xenbus_state backend_state)
{
	struct gntsock_link *link = dev_get_drvdata(&dev->dev);

	mutex_lock(&link->setup_lock);
	switch (backend_state) {
	case XenbusStateInitWait:
		/* Already published and waiting for the backend. */
		if (dev->state == XenbusStateInitialised)
			break;
		gntsock_link_down(link);
		if (gntsock_link_gave_up(link))
			break;
		if (gntsock_front_setup(link))
			link->failures++;
		break;
	case XenbusStateConnected:
		if (dev->state == XenbusStateInitialised &&
		    link->state == GNTSOCK_LINK_CONNECTING) {
			gntsock_link_peer_features(link);
			gntsock_link_up(link);
			xenbus_switch_state(dev, XenbusStateConnected);
		}
		break;
	case XenbusStateClosing:
	case XenbusStateClosed:
		gntsock_link_down(link);
		if (dev->state != XenbusStateClosed)
			xenbus_switch_state(dev, XenbusStateClosed);
		break;
	case XenbusStateUnknown:
		gntsock_otherend_gone(link);
		break;
	default:
		break;
	}
	mutex_unlock(&link->setup_lock);
}

static int gntsock_back_probe(struct xenbus_device *dev,
			      const struct xenbus_device_id *id)
{
	int err = gntsock_link_create(dev, false);

	if (err)
		return err;
	return gntsock_back_initwait(dev_get_drvdata(&dev->dev));
}

static void gntsock_back_changed(struct xenbus_device *dev,
				 enum xenbus_state frontend_state)
{
	struct gntsock_link *link = dev_get_drvdata(&dev->dev);
	unsigned int gen;

	mutex_lock(&link->setup_lock);
	switch (frontend_state) {
	case XenbusStateInitialising:
		if (dev->state == XenbusStateClosed)
			gntsock_back_initwait(link);
		break;
	case XenbusStateInitialised:
		gen = xenbus_read_unsigned(dev->otherend, "ring-generation", 0);
		/* A repeated watch event for the rings we already use. */
		if (link->state == GNTSOCK_LINK_CONNECTED &&
		    gen == link->generation)
			break;
		/* Fresh rings were published: (re)connect to them. */
		if (dev->state == XenbusStateConnected ||
		    link->state != GNTSOCK_LINK_CLOSED)
			gntsock_link_down(link);
		link->generation = gen;
		if (gntsock_link_gave_up(link)) {
			xenbus_switch_state(dev, XenbusStateClosed);
			break;
		}
		if (gntsock_back_connect(link)) {
			link->failures++;
			xenbus_switch_state(dev, XenbusStateClosing);
			break;
		}
		gntsock_link_peer_features(link);
		gntsock_link_up(link);
		xenbus_switch_state(dev, XenbusStateConnected);
		break;
	case XenbusStateClosing:
	case XenbusStateClosed:
		gntsock_link_down(link);
		/* online=0: the toolstack is removing the link, as for any
		 * PV device; otherwise wait for the frontend to come back.
		 */
		if (!xenbus_read_unsigned(dev->nodename, "online", 0))
			xenbus_switch_state(dev, XenbusStateClosed);
		else if (dev->state != XenbusStateInitWait &&
			 !gntsock_link_gave_up(link))
			gntsock_back_initwait(link);
		break;
	case XenbusStateUnknown:
		gntsock_otherend_gone(link);
		break;
	default:
		break;
	}
	mutex_unlock(&link->setup_lock);
}

static const struct xenbus_device_id gntsock_ids[] = {
	{ GNTSOCK_DEVTYPE },
	{ "" }
};

static struct xenbus_driver gntsock_front_driver = {
	.ids = gntsock_ids,
	.probe = gntsock_front_probe,
	.remove = gntsock_remove,
	.otherend_changed = gntsock_front_changed,
	.not_essential = true,
};

static struct xenbus_driver gntsock_back_driver = {
	.ids = gntsock_ids,
	.probe = gntsock_back_probe,
	.remove = gntsock_remove,
	.otherend_changed = gntsock_back_changed,
};

/**
 * gntsock_links_show() - one line per link for /proc/net/gntsock_links
 * @m: the seq_file
 */
void gntsock_links_show(struct seq_file *m)
{
	static const char * const states[] = {
		[GNTSOCK_LINK_CLOSED] = "closed",
		[GNTSOCK_LINK_CONNECTING] = "connecting",
		[GNTSOCK_LINK_CONNECTED] = "connected",
	};
	struct gntsock_link *l;

	seq_puts(m, "peer role state ring_pages tx_msgs rx_msgs tx_bytes rx_bytes resets violations sockets events_rx events_tx revocable_map peer_revocable_map events_spurious peer_event_index\n");
	l = gntsock_loopback;
	if (l)
		seq_printf(m, "%u loopback connected 0 %lld %lld %lld %lld 0 %lld %d 0 0 %d %d 0 0\n",
			   l->peer, atomic64_read(&l->stat_tx_msgs),
			   atomic64_read(&l->stat_rx_msgs),
			   atomic64_read(&l->stat_tx_bytes),
			   atomic64_read(&l->stat_rx_bytes),
			   atomic64_read(&l->stat_violations),
			   atomic_read(&l->stat_sockets),
			   READ_ONCE(l->map_revocable),
			   READ_ONCE(l->peer_map_revocable));
	mutex_lock(&gntsock_links_lock);
	list_for_each_entry(l, &gntsock_links, node)
		seq_printf(m, "%u %s %s %u %lld %lld %lld %lld %lld %lld %d %lld %lld %d %d %lld %d\n",
			   l->peer, l->frontend ? "frontend" : "backend",
			   states[READ_ONCE(l->state)],
			   READ_ONCE(l->state) == GNTSOCK_LINK_CLOSED ? 0 :
			   1U << l->order,
			   atomic64_read(&l->stat_tx_msgs),
			   atomic64_read(&l->stat_rx_msgs),
			   atomic64_read(&l->stat_tx_bytes),
			   atomic64_read(&l->stat_rx_bytes),
			   atomic64_read(&l->stat_resets),
			   atomic64_read(&l->stat_violations),
			   atomic_read(&l->stat_sockets),
			   atomic64_read(&l->stat_events_rx),
			   atomic64_read(&l->stat_events_tx),
			   READ_ONCE(l->map_revocable),
			   READ_ONCE(l->peer_map_revocable),
			   atomic64_read(&l->stat_events_spurious),
			   READ_ONCE(l->peer_event_index));
	mutex_unlock(&gntsock_links_lock);
}

static int gntsock_loopback_create(void)
{
	struct gntsock_link *l;

	l = kzalloc(sizeof(*l), GFP_KERNEL);
	if (!l)
		return -ENOMEM;
	kref_init(&l->kref);
	INIT_LIST_HEAD(&l->node);
	l->peer = gntsock_local_domid();
	l->loopback = true;
	/* The peer is this domain: its own answer, on both ends. */
	l->map_revocable = gntsock_link_map_revocable();
	l->peer_map_revocable = l->map_revocable;
	l->state = GNTSOCK_LINK_CONNECTED;
	l->max_payload = GNTSOCK_MSG_MAX_PAYLOAD;
	mutex_init(&l->setup_lock);
	mutex_init(&l->tx_lock);
	init_waitqueue_head(&l->tx_wq);
	INIT_LIST_HEAD(&l->ctl_queue);
	spin_lock_init(&l->loop_lock);
	INIT_LIST_HEAD(&l->loop_queue);
	INIT_WORK(&l->rx_work, gntsock_loop_work);
	mutex_init(&l->rx_lock);
	INIT_LIST_HEAD(&l->rx_wakes);
	spin_lock_init(&l->watch_lock);
	INIT_LIST_HEAD(&l->space_watches);
	INIT_DELAYED_WORK(&l->rx_fallback, gntsock_rx_fallback_work);
	ratelimit_state_init(&l->log_rs, DEFAULT_RATELIMIT_INTERVAL,
			     DEFAULT_RATELIMIT_BURST);
	gntsock_loopback = l;
	return 0;
}

/* Every socket is gone (each holds a module reference): drop the link. */
static void gntsock_loopback_destroy(void)
{
	struct gntsock_link *l = gntsock_loopback;

	flush_work(&l->rx_work);
	gntsock_loop_purge(l);
	gntsock_loopback = NULL;
	gntsock_link_put(l);
}

int gntsock_link_register(void)
{
	int err;

	err = gntsock_loopback_create();
	if (err)
		return err;
	err = xenbus_register_frontend(&gntsock_front_driver);
	if (err)
		goto err_loop;
	err = xenbus_register_backend(&gntsock_back_driver);
	if (err)
		goto err_front;
	return 0;

err_front:
	xenbus_unregister_driver(&gntsock_front_driver);
err_loop:
	gntsock_loopback_destroy();
	return err;
}

void gntsock_link_unregister(void)
{
	xenbus_unregister_driver(&gntsock_back_driver);
	xenbus_unregister_driver(&gntsock_front_driver);
	gntsock_loopback_destroy();
}
