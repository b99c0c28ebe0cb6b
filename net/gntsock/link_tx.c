// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock links, sending: messages into the tx ring under tx_lock, a
 * bounded queue of control messages that wait for room, and writers that
 * wait for ring space (blocking ones on the link's wait queue, all woken
 * when space is freed; non-blocking ones by a space watch that poll()
 * uses).
 * Whether a write notifies the peer is the ring's event index or flag
 * (ring.c, gntsock_link_evt()).
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/interrupt.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <xen/events.h>

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

/* Looks at the ring's space in one hold of tx_lock while the peer keeps
 * consuming (gntsock_tx_wait_space()). Each follows real progress of the
 * peer, but a peer that consumes a byte at a time could otherwise keep a
 * sender looking, with the spinlock held, for a ring's worth of bytes;
 * beyond this the look again happens outside the lock.
 */
#define GNTSOCK_TX_LOOKS	4

/**
 * gntsock_tx_kick() - the ring has room again: wake the waiters
 * @link: the link whose tx ring (or loopback queue) has room
 *
 * All of them: they re-check under tx_lock. Not one at a time: the writers
 * on a link belong to any local users, and a wake-up handed to one that
 * does not run (throttled by its cgroup, at the lowest priority) would
 * leave the others asleep until it did, with no event to come if the peer
 * had drained the ring meanwhile.
 */
void gntsock_tx_kick(struct gntsock_link *link)
{
	atomic_inc(&link->tx_kick);
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
 * gntsock_link_wait_space() - wait until the peer freed room in the ring
 * @link: the link
 * @kick: link->tx_kick read before the send that found the ring full
 * @timeo: jiffies to wait at most
 * @killable: only a fatal signal ends the wait (a sender in the middle of
 *	a record), not any signal
 *
 * Also ends when the link leaves the connected state.
 *
 * Return: as wait_event_interruptible_timeout(), or
 * wait_event_killable_timeout() if @killable.
 */
long gntsock_link_wait_space(struct gntsock_link *link, int kick, long timeo,
			     bool killable)
{
	long ret;

	atomic64_inc(&gntsock_stats.tx_ring_waits);
#define gntsock_space_cond \
	(atomic_read(&link->tx_kick) != kick || \
	 READ_ONCE(link->state) != GNTSOCK_LINK_CONNECTED)
	if (killable)
		ret = wait_event_killable_timeout(link->tx_wq,
						  gntsock_space_cond, timeo);
	else
		ret = wait_event_interruptible_timeout(link->tx_wq,
						       gntsock_space_cond,
						       timeo);
#undef gntsock_space_cond
	if (ret > 0)
		atomic64_inc(&gntsock_stats.tx_ring_wakeups);
	return ret;
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
	int err = 0;

	lockdep_assert_held(&link->tx_lock);
	while (link->ctl_len) {
		err = gntsock_msg_put(&link->tx,
				      &link->ctl_queue[link->ctl_head], NULL,
				      NULL);
		if (err)
			break;
		atomic64_inc(&link->stat_tx_msgs);
		link->ctl_head = (link->ctl_head + 1) % GNTSOCK_CTL_QUEUE_MAX;
		WRITE_ONCE(link->ctl_len, link->ctl_len - 1);
	}
	return err;
}

/**
 * gntsock_ctl_purge() - drop the control messages queued for ring space
 * @link: the link, going down; tx_lock held
 *
 * They are dropped unsent.
 */
void gntsock_ctl_purge(struct gntsock_link *link)
{
	link->ctl_head = 0;
	WRITE_ONCE(link->ctl_len, 0);
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
 * peer, which cannot move its index back: gntsock_ring_space().) After
 * GNTSOCK_TX_LOOKS looks the link's receive work, which flushes the queue
 * whenever it runs, looks again.
 * Return: 0, -ENOSPC (an event or the receive work will come), or
 * gntsock_tx_done()'s error.
 */
int gntsock_ctl_flush_event(struct gntsock_link *link)
{
	unsigned int looks = 0;
	int err;

	lockdep_assert_held(&link->tx_lock);
	do {
		err = gntsock_tx_done(link, gntsock_ctl_flush(link));
	} while (err == -EAGAIN && ++looks < GNTSOCK_TX_LOOKS);
	if (err == -EAGAIN) {
		queue_work(gntsock_wq, &link->rx_work);
		err = -ENOSPC;
	}
	return err;
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
 * A peer that keeps consuming a little at a time gets GNTSOCK_TX_LOOKS
 * looks under the lock; then -ENOSPC, and the link's receive work, queued,
 * looks at the peer's index without the lock: it wakes the writers and
 * space watches, which try again (and ask for an event afresh: the request
 * left now may name an index the peer has passed).
 * Queued control messages go first, so messages of one socket stay in
 * order.
 *
 * Return: 0, -ENOSPC, -ECONNRESET if the link is down, or @fn's error.
 */
int gntsock_link_send(struct gntsock_link *link,
		      const struct gntsock_msg_hdr *h,
		      gntsock_copy_fn fn, void *ctx)
{
	unsigned int looks = 0;
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

	spin_lock(&link->tx_lock);
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
	} while (err == -EAGAIN && ++looks < GNTSOCK_TX_LOOKS);
	if (err == -EAGAIN) {
		queue_work(gntsock_wq, &link->rx_work);
		err = -ENOSPC;
	}
out:
	spin_unlock(&link->tx_lock);
	return err;
}

/**
 * gntsock_link_send_ctl() - send a control message, queueing it if needed
 * @link: the link
 * @h: header of a message without payload
 *
 * Never waits for ring space. On a xenbus link it never sleeps either
 * (callable under any lock): the link's bounded queue, allocated with it,
 * holds messages the ring has no room for; beyond the bound they are
 * dropped and counted (a peer that does not drain its ring cannot make us
 * hold more). The loopback link allocates each message it queues.
 *
 * Return: 0, -ECONNRESET if the link is down, -ENOBUFS if dropped.
 */
int gntsock_link_send_ctl(struct gntsock_link *link,
			  const struct gntsock_msg_hdr *h)
{
	int err;

	if (link->loopback) {
		err = link->loop_send(link, h, NULL, NULL);
		if (err) {
			atomic64_inc(&link->stat_ctl_dropped);
			atomic64_inc(&gntsock_stats.ctl_dropped);
		}
		return err;
	}
	spin_lock(&link->tx_lock);
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
			link->ctl_queue[(link->ctl_head + link->ctl_len) %
					GNTSOCK_CTL_QUEUE_MAX] = *h;
			WRITE_ONCE(link->ctl_len, link->ctl_len + 1);
		}
	}
	if (err == -ENOSPC)
		err = gntsock_ctl_flush_event(link);
	else
		err = gntsock_tx_done(link, err);
	if (err == -ENOSPC)
		err = 0;
out:
	spin_unlock(&link->tx_lock);
	return err;
}
