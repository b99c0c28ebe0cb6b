// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock links, the core: what a link does once it is up, for any kind of
 * link. Sending (the tx ring and a queue of control messages that wait for
 * room), waiting for and watching ring space, receiving (validating each
 * message of the rx ring and handing it to the layer above, by the link
 * handlers those layers register), the event channel and its interrupt,
 * and protocol violations, which reset the link. How a link comes up and
 * goes down over xenbus is link_xenbus.c; the same-domain link is
 * link_loop.c.
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
#include "link.h"

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
	int i;

	BUILD_BUG_ON(GNTSOCK_OP_MAX >= 32);	/* ops is a u32 of BIT(op) */
	if (WARN_ON(user >= GNTSOCK_USER_MAX))
		return;
	/* Each op goes to one layer. */
	for (i = 0; h && i < GNTSOCK_USER_MAX; i++)
		if (WARN_ON(i != user && gntsock_handlers[i] &&
			    (gntsock_handlers[i]->ops & h->ops)))
			return;
	WRITE_ONCE(gntsock_handlers[user], h);
}

/**
 * gntsock_link_deliver() - hand a validated message to its layer
 * @link: the link it arrived on; rx_lock held, except on the loopback link
 * @h: local copy of its header
 * @defer: the layer may leave an RW message in the ring for a reader that
 *	takes its data from there (never on the loopback link)
 *
 * Hand a validated message to the layer that takes its op. A message no
 * layer takes is dropped.
 *
 * Return: true if that layer left it in the ring (gntsock_link_handler.recv).
 */
bool gntsock_link_deliver(struct gntsock_link *link,
			  const struct gntsock_msg_hdr *h, bool defer)
{
	const struct gntsock_link_handler *uh;
	int i;

	for (i = 0; i < GNTSOCK_USER_MAX; i++) {
		uh = READ_ONCE(gntsock_handlers[i]);
		if (uh && (uh->ops & BIT(h->op)))
			return uh->recv(link, h, defer);
	}
	return false;
}

/* The rx work ends a batch: each layer delivers what it collected. */
static void gntsock_link_batch_end(struct gntsock_link *link)
{
	const struct gntsock_link_handler *uh;
	int i;

	lockdep_assert_held(&link->rx_lock);
	for (i = 0; i < GNTSOCK_USER_MAX; i++) {
		uh = READ_ONCE(gntsock_handlers[i]);
		if (uh && uh->batch_end)
			uh->batch_end(link);
	}
}

/**
 * gntsock_link_tell_down() - the link went down: tell every layer
 * @link: the link, its rings gone; setup_lock held
 *
 * In enum gntsock_link_user order.
 */
void gntsock_link_tell_down(struct gntsock_link *link)
{
	const struct gntsock_link_handler *uh;
	int i;

	for (i = 0; i < GNTSOCK_USER_MAX; i++) {
		uh = READ_ONCE(gntsock_handlers[i]);
		if (uh && uh->link_down)
			uh->link_down(link);
	}
}

/**
 * gntsock_link_map_revocable() - do we map grants revocably?
 *
 * Return: what a link advertises. The grant layer says; without it, no.
 */
bool gntsock_link_map_revocable(void)
{
	const struct gntsock_link_handler *uh =
		READ_ONCE(gntsock_handlers[GNTSOCK_USER_GRANT]);

	return uh && uh->map_revocable && uh->map_revocable();
}

#ifdef GNTSOCK_HOSTILE
/* Test module only (hostile.c): may take over a backend's ring mappings. */
bool (*gntsock_link_keep_maps_hook)(struct gntsock_link *link);
#endif

static domid_t gntsock_self = DOMID_INVALID;
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

static void gntsock_notify(struct gntsock_link *link)
{
	if (link->irq) {
		atomic64_inc(&link->stat_events_tx);
		notify_remote_via_irq(link->irq);
	}
}

/**
 * gntsock_tx_kick() - the ring has room again: wake the waiters
 * @link: the link whose tx ring (or loopback queue) has room
 *
 * They re-check under tx_lock. Stream writers wait exclusively: with
 * tx_wake_one only one of them wakes, and passes the wake-up on
 * (gntsock_link_pass_wake()) once it has written while room remains.
 * Other waiters (records, grants) always wake.
 */
void gntsock_tx_kick(struct gntsock_link *link)
{
	atomic_inc(&link->tx_kick);
	if (READ_ONCE(gntsock_tx_wake_one))
		wake_up(&link->tx_wq);
	else
		wake_up_all(&link->tx_wq);
}

/**
 * gntsock_space_watch_flush() - notify the senders waiting for ring space
 * @link: the link
 *
 * Tell every non-blocking sender waiting for room: only when room may
 * have come (the peer consumed, a loopback message was taken, the link
 * went down), or each would poll writable and get EAGAIN again. Each is
 * told once and taken off first; under watch_lock, so that an owner that
 * took its watch off (gntsock_link_unwatch_space()) is sure no notify runs
 * any more.
 */
void gntsock_space_watch_flush(struct gntsock_link *link)
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

/**
 * gntsock_ctl_purge() - drop the control messages queued for ring space
 * @link: the link, going down; tx_lock held
 *
 * They are freed unsent.
 */
void gntsock_ctl_purge(struct gntsock_link *link)
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
		return link->loop_send(link, h, fn, ctx);
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
		err = link->loop_send(link, h, NULL, NULL);
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

/* Where the payload still to be handed out starts, from the ring's head:
 * after the header, and after what a reader took of it already.
 */
static u32 gntsock_link_rx_data(const struct gntsock_link *link)
{
	return sizeof(struct gntsock_msg_hdr) + link->rx_part_off;
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
	gntsock_ring_read_cb(&link->rx, gntsock_link_rx_data(link), len,
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
	gntsock_ring_read_cb(&link->rx, gntsock_link_rx_data(link) + off, len,
			     fn, ctx);
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
 * A violation is reported (the link will reset). After
 * gntsock_link_rx_consume_part() it is the rest of that message, from the
 * header validated when it was first peeked.
 *
 * Return: %GNTSOCK_V_NONE, %GNTSOCK_V_MAX if the ring is empty or the link
 * is going down (a peer that keeps the ring full must not keep its reader
 * from ever returning: gntsock_link_down() waits for it), or the violation.
 */
enum gntsock_violation gntsock_link_rx_peek(struct gntsock_link *link,
					    struct gntsock_msg_hdr *h)
{
	enum gntsock_violation v;

	lockdep_assert_held(&link->rx_lock);
	if (test_bit(0, &link->violated))
		return GNTSOCK_V_RING_INDEX;
	if (READ_ONCE(link->state) != GNTSOCK_LINK_CONNECTED)
		return GNTSOCK_V_MAX;
	if (link->rx_part_off) {
		/* Validated when first peeked; the rest of its payload. */
		*h = link->rx_part;
		h->len -= link->rx_part_off;
		return GNTSOCK_V_NONE;
	}
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
	gntsock_ring_consume(&link->rx,
			     gntsock_msg_size(h->len + link->rx_part_off));
	link->rx_part_off = 0;
	link->rx.peer_evt = gntsock_link_evt(link);
	if (gntsock_ring_producer_waiting(&link->rx))
		gntsock_notify(link);
}

/* May the rest of the message gntsock_link_rx_peek() returned (@h) stay at
 * the head of the ring? Only if nothing follows it in the ring yet, or a
 * message for the same connection does: a part left at the head holds up
 * every message behind it, so one reader's small reads must not hold up
 * other connections' messages that are already there. The next header is
 * read as a hint only (it is validated when peeked): a peer that lies in
 * it only delays its own messages. rx_lock held.
 */
static bool gntsock_link_rx_may_keep(struct gntsock_link *link,
				     const struct gntsock_msg_hdr *h)
{
	u32 size = gntsock_msg_size(h->len + link->rx_part_off);
	struct gntsock_msg_hdr next;
	u32 avail;

	lockdep_assert_held(&link->rx_lock);
	if (link->loopback || gntsock_ring_avail(&link->rx, &avail) ||
	    avail < size)
		return false;
	if (avail == size)
		return true;
	if (avail - size < sizeof(next))
		return false;
	gntsock_ring_read(&link->rx, size, &next, sizeof(next));
	return next.op == h->op && next.dst_port == h->dst_port &&
	       next.src_port == h->src_port;
}

/**
 * gntsock_link_rx_consume_part() - done with the start of the payload of
 *	the message gntsock_link_rx_peek() returned
 * @link: the link (not the loopback one), rx_lock held
 * @h: its header, as peeked
 * @len: payload bytes taken, fewer than @h->len
 *
 * The message stays at the head of the ring, and its ring space is not
 * given back: the next peek returns the rest of it (@h->len - @len bytes)
 * from the link's copy of the validated header, and the payload reads
 * start after what was taken. It refuses when the rest would hold up
 * another connection's messages already behind it in the ring. Call it
 * before accounting for the part: if it refuses, nothing was consumed.
 *
 * Return: true if the part is consumed.
 */
bool gntsock_link_rx_consume_part(struct gntsock_link *link,
				  const struct gntsock_msg_hdr *h, u32 len)
{
	lockdep_assert_held(&link->rx_lock);
	if (WARN_ON_ONCE(!len || len >= h->len || link->loopback) ||
	    !gntsock_link_rx_may_keep(link, h))
		return false;
	if (!link->rx_part_off)
		link->rx_part = *h;
	link->rx_part_off += len;
	atomic64_add(len, &link->stat_rx_bytes);
	if (h->op == GNTSOCK_OP_RW)
		link->rx_last_dst = h->dst_port;
	return true;
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
	gntsock_ring_read_cb(&link->rx, gntsock_link_rx_data(link), len,
			     gntsock_fill_iter, &f);
	pagefault_enable();
	return f.done;
}

/**
 * gntsock_link_rx_begin() - a reader wants to consume from the rx ring
 * @link: the link (not the loopback one)
 * @wait: wait for rx_lock; the caller then holds no socket lock (rx_lock
 *	comes first). Without it the caller may hold its socket's lock: only
 *	a free rx_lock is taken.
 *
 * Return: 0 with rx_lock held, or -ENOTCONN / -EINTR / -EBUSY (rx_lock
 * taken, without @wait).
 */
int gntsock_link_rx_begin(struct gntsock_link *link, bool wait)
{
	if (!wait) {
		if (!mutex_trylock(&link->rx_lock))
			return -EBUSY;
	} else if (mutex_lock_interruptible(&link->rx_lock)) {
		return -EINTR;
	}
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

enum gntsock_drain {
	GNTSOCK_DRAIN_EMPTY,	/* nothing left (or the link going down) */
	GNTSOCK_DRAIN_DEFERRED,	/* a message left in place for its reader */
	GNTSOCK_DRAIN_BUDGET,	/* the budget handled: the rest later */
};

/* Bytes of messages one run of the receive work hands on at most (or the
 * ring's size, if larger): a bound on how long a peer that keeps the ring
 * full holds the worker, high enough that a stream fast enough to keep the
 * ring full rarely meets it.
 */
#define GNTSOCK_RX_BUDGET	(1024 * 1024)

/* Hand every message to its socket, at most *@budget bytes of them
 * (decreased): a peer that refills the ring as fast as we
 * drain it gets no more than that per run, and other work items get their
 * turn. With @defer a socket whose reader takes its data from the ring
 * itself may have a message left in place: then stop and leave the rest
 * for that reader.
 */
static enum gntsock_drain gntsock_rx_drain(struct gntsock_link *link,
					   bool defer, u32 *budget)
{
	struct gntsock_msg_hdr h;
	u32 bytes = 0, size, avail;
	int n = 0;

	while (gntsock_link_rx_peek(link, &h) == GNTSOCK_V_NONE) {
		if (gntsock_link_deliver(link, &h, defer))
			return GNTSOCK_DRAIN_DEFERRED;
		size = gntsock_msg_size(h.len + link->rx_part_off);
		gntsock_link_rx_consume(link, &h);
		*budget -= min(*budget, size);
		if (!*budget)
			return gntsock_ring_avail(&link->rx, &avail) || !avail ?
			       GNTSOCK_DRAIN_EMPTY : GNTSOCK_DRAIN_BUDGET;
		bytes += h.len;
		/* Readers get their data at least every GNTSOCK_RX_BATCH. */
		if (!(++n % 64) || bytes >= GNTSOCK_RX_BATCH) {
			gntsock_link_batch_end(link);
			cond_resched();
			bytes = 0;
		}
	}
	return GNTSOCK_DRAIN_EMPTY;
}

/* Drain the rx ring until it stays empty, then ask for events; after a
 * budget's worth, leave the rest to a new run of the rx work. rx_lock.
 */
static void gntsock_rx_run(struct gntsock_link *link, bool defer)
{
	u32 avail, budget = max_t(u32, link->rx.size, GNTSOCK_RX_BUDGET);
	enum gntsock_drain d;

	link->rx_batching = true;
	for (;;) {
		gntsock_ring_set_cons_waiting(&link->rx, false);
		d = gntsock_rx_drain(link, defer, &budget);
		if (d != GNTSOCK_DRAIN_EMPTY)
			break;
		/* (going down, the peek finds nothing: the ring may be full) */
		if (test_bit(0, &link->violated) ||
		    READ_ONCE(link->state) != GNTSOCK_LINK_CONNECTED)
			break;
		gntsock_ring_set_cons_waiting(&link->rx, true);
		if (gntsock_ring_avail(&link->rx, &avail) || !avail)
			break;
		/* More came: another pass. Each costs a header's worth, since
		 * a peer moving its prod back and forth makes passes that find
		 * nothing to take.
		 */
		budget -= min_t(u32, budget, sizeof(struct gntsock_msg_hdr));
		if (!budget) {
			d = GNTSOCK_DRAIN_BUDGET;
			break;
		}
	}
	if (d == GNTSOCK_DRAIN_DEFERRED) {
		atomic64_inc(&gntsock_stats.rx_deferred);
		queue_delayed_work(gntsock_wq, &link->rx_fallback,
				   GNTSOCK_RX_DEFER);
	} else if (d == GNTSOCK_DRAIN_BUDGET) {
		atomic64_inc(&gntsock_stats.rx_budget_runs);
		queue_work(gntsock_wq, &link->rx_work);
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

enum gntsock_poll_look {
	GNTSOCK_POLL_EMPTY,	/* nothing yet: look again */
	GNTSOCK_POLL_DATA,	/* the peer wrote (or broke an index) */
	GNTSOCK_POLL_DOWN,	/* the link is down or about to reset */
};

/* A busy-polling reader looks at the ring, rx_lock held (the ring's pages
 * go away once the link is down, and gntsock_link_down() waits for
 * rx_lock before it unmaps them), preemption disabled. It stops asking
 * the peer for events. Nothing here sleeps.
 */
static enum gntsock_poll_look gntsock_rx_poll_look(struct gntsock_link *link)
{
	u32 avail;

	lockdep_assert_held(&link->rx_lock);
	if (READ_ONCE(link->state) != GNTSOCK_LINK_CONNECTED ||
	    test_bit(0, &link->violated))
		return GNTSOCK_POLL_DOWN;
	if (link->rx.cons_asking)
		gntsock_ring_set_cons_waiting(&link->rx, false);
	/* (a bad index is data too: the rx work's peek reports it) */
	if (gntsock_ring_avail(&link->rx, &avail) || avail)
		return GNTSOCK_POLL_DATA;
	return GNTSOCK_POLL_EMPTY;
}

/* The poller stops, preemption still disabled: ask for events again, and
 * have the rx work hand on what is in the ring. If rx_lock is taken, its
 * holder asks for events when it lets go (the rx work, the fallback, a
 * reader of the ring) or is another poller, which will; or the link is
 * going down.
 */
static void gntsock_rx_poll_end(struct gntsock_link *link)
{
	u32 avail;

	if (!mutex_trylock(&link->rx_lock))
		return;
	if (READ_ONCE(link->state) == GNTSOCK_LINK_CONNECTED &&
	    !test_bit(0, &link->violated)) {
		if (!link->rx.cons_asking)
			gntsock_ring_set_cons_waiting(&link->rx, true);
		if (gntsock_ring_avail(&link->rx, &avail) || avail) {
			atomic64_inc(&gntsock_stats.rx_poll_found);
			queue_work(gntsock_wq, &link->rx_work);
		}
	}
	mutex_unlock(&link->rx_lock);
}

/**
 * gntsock_link_rx_poll() - busy-poll the rx ring for a reader about to sleep
 * @link: the link (not the loopback one); no socket lock held
 * @polls: looks at the ring, at most
 * @done: the reader's condition (data queued for it, an error, the end of
 *	its stream, its timeout), looked at between looks without any lock
 * @ctx: for @done
 *
 * While it polls, this end asks the peer for no events: what the peer
 * writes meanwhile costs no notification hypercall there, and no
 * interrupt and EOI here. Each look takes rx_lock only if it is free (if
 * not, the rx work or another reader is at the ring already) and reads
 * the peer's producer index once (no clock). It polls with preemption
 * disabled, as napi_busy_loop() does; when another task wants the CPU
 * (need_resched()) it asks for events again before it lets that task
 * run, and stops asking at its next look: so a poller never leaves the
 * CPU with the events off, or with rx_lock held, whatever its priority or
 * its cgroup's CPU quota. Once something came, or at a signal, or after
 * @polls looks (a turn given to another task counts as one), it asks for
 * events again, queues the rx work for what came, and returns; the reader
 * then sleeps until the rx work has queued its data, as without polling.
 * The reader never hands messages on itself: the rx work does, in a
 * kworker.
 *
 * Return: true if @done said so.
 */
bool gntsock_link_rx_poll(struct gntsock_link *link, u32 polls,
			  bool (*done)(void *ctx), void *ctx)
{
	enum gntsock_poll_look l = GNTSOCK_POLL_EMPTY;
	bool ret = false;
	u32 i;

	atomic64_inc(&gntsock_stats.rx_polls);
	preempt_disable();
	for (i = 0; i < polls && l == GNTSOCK_POLL_EMPTY; i++) {
		if (done(ctx)) {
			ret = true;
			break;
		}
		if (signal_pending(current))
			break;
		if (need_resched()) {
			/* Events on before another task runs; off again
			 * at the next look.
			 */
			gntsock_rx_poll_end(link);
			preempt_enable();
			cond_resched();
			preempt_disable();
			continue;
		}
		if (mutex_trylock(&link->rx_lock)) {
			l = gntsock_rx_poll_look(link);
			mutex_unlock(&link->rx_lock);
		}
		cpu_relax();
	}
	gntsock_rx_poll_end(link);
	preempt_enable();
	atomic64_add(i, &gntsock_stats.rx_poll_looks);
	return ret || done(ctx);
}

/**
 * gntsock_rx_fallback_work() - drain the ring a reader did not come for
 * @work: the link's rx_fallback
 *
 * Data was left in the rx ring for a reader GNTSOCK_RX_DEFER ago: if the
 * ring still holds any, hand everything to the layers, leaving nothing
 * for readers. Either way it leaves the peer asked for events (a busy
 * poller that found rx_lock taken by this work left that to it). Takes
 * rx_lock.
 */
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
	} else if (READ_ONCE(link->state) == GNTSOCK_LINK_CONNECTED &&
		   !link->rx.cons_asking) {
		gntsock_ring_set_cons_waiting(&link->rx, true);
		if (gntsock_ring_avail(&link->rx, &avail) || avail)
			gntsock_rx_run(link, false);
	}
	mutex_unlock(&link->rx_lock);
}

/**
 * gntsock_link_init() - what every kind of link starts with
 * @link: a zeroed link
 * @rx_fn: its receive work: gntsock_rx_work() for a xenbus link, the
 *	loopback's own for the loopback link
 *
 * Locks, queues, the receive and fallback work items and the log rate
 * limit. The caller sets the rest (peer, state, kind).
 */
void gntsock_link_init(struct gntsock_link *link, work_func_t rx_fn)
{
	mutex_init(&link->setup_lock);
	mutex_init(&link->tx_lock);
	init_waitqueue_head(&link->tx_wq);
	INIT_LIST_HEAD(&link->ctl_queue);
	INIT_WORK(&link->rx_work, rx_fn);
	mutex_init(&link->rx_lock);
	INIT_LIST_HEAD(&link->rx_wakes);
	spin_lock_init(&link->watch_lock);
	INIT_LIST_HEAD(&link->space_watches);
	INIT_DELAYED_WORK(&link->rx_fallback, gntsock_rx_fallback_work);
	ratelimit_state_init(&link->log_rs, DEFAULT_RATELIMIT_INTERVAL,
			     DEFAULT_RATELIMIT_BURST);
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

/**
 * gntsock_rx_work() - the rx work of a xenbus link
 * @work: the link's rx_work
 *
 * Hands the messages of the rx ring to their layers (under rx_lock; data
 * may be left for a reader that takes it from the ring). The event may
 * also mean the peer consumed from our tx ring: then queued control
 * messages are sent and writers waiting for room are woken. Ends with the
 * late EOI of the event that queued it.
 */
void gntsock_rx_work(struct work_struct *work)
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

/**
 * gntsock_interrupt() - a link's event channel handler
 * @irq: the irq
 * @dev_id: the link
 *
 * Queues the rx work, which sends the late EOI of this event.
 *
 * Return: %IRQ_HANDLED.
 */
irqreturn_t gntsock_interrupt(int irq, void *dev_id)
{
	struct gntsock_link *link = dev_id;

	atomic64_inc(&link->stat_events_rx);
	atomic_set(&link->eoi_irq, irq);
	queue_work(gntsock_wq, &link->rx_work);
	return IRQ_HANDLED;
}
