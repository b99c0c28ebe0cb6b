// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock links, receiving: each message of the rx ring is validated from
 * a local copy of its header (read once) and handed to the layer that
 * takes its op (gntsock_link_deliver()) by the link's rx work; a budget
 * bounds one run of the work. Also the event channel's interrupt and its
 * late EOI, which makes a peer that storms the channel cost little; an
 * event may also mean the peer consumed from our tx ring, which wakes the
 * writers (link_tx.c).
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/interrupt.h>
#include <xen/events.h>

#include "gntsock.h"
#include "link.h"

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

/* The next message of the rx ring, validated, its header copied to @h. A
 * violation is reported (the link will reset). rx_lock held.
 * Return: %GNTSOCK_V_NONE, %GNTSOCK_V_MAX if the ring is empty or the link
 * is going down (a peer that keeps the ring full must not keep the rx
 * work from ever returning: gntsock_link_down() waits for it), or the
 * violation.
 */
static enum gntsock_violation gntsock_link_rx_peek(struct gntsock_link *link,
						   struct gntsock_msg_hdr *h)
{
	enum gntsock_violation v;

	lockdep_assert_held(&link->rx_lock);
	if (test_bit(0, &link->violated))
		return GNTSOCK_V_RING_INDEX;
	if (READ_ONCE(link->state) != GNTSOCK_LINK_CONNECTED)
		return GNTSOCK_V_MAX;
	v = gntsock_msg_peek(&link->rx, h, link->max_payload);
	if (v != GNTSOCK_V_NONE && v != GNTSOCK_V_MAX)
		gntsock_link_violation(link, v);
	return v;
}

/* Done with the message gntsock_link_rx_peek() returned (@h): give its
 * ring space back. rx_lock held.
 */
static void gntsock_link_rx_consume(struct gntsock_link *link,
				    const struct gntsock_msg_hdr *h)
{
	lockdep_assert_held(&link->rx_lock);
	atomic64_inc(&link->stat_rx_msgs);
	atomic64_add(h->len, &link->stat_rx_bytes);
	gntsock_ring_consume(&link->rx, gntsock_msg_size(h->len));
	link->rx.peer_evt = gntsock_link_evt(link);
	if (gntsock_ring_producer_waiting(&link->rx))
		gntsock_notify(link);
}

/* Payload bytes a receive batch hands to sockets before waking them. */
#define GNTSOCK_RX_BATCH	(256 * 1024)

enum gntsock_drain {
	GNTSOCK_DRAIN_EMPTY,	/* nothing left (or the link going down) */
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
 * turn.
 */
static enum gntsock_drain gntsock_rx_drain(struct gntsock_link *link,
					   u32 *budget)
{
	struct gntsock_msg_hdr h;
	u32 bytes = 0, size, avail;
	int n = 0;

	while (gntsock_link_rx_peek(link, &h) == GNTSOCK_V_NONE) {
		gntsock_link_deliver(link, &h);
		size = gntsock_msg_size(h.len);
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
static void gntsock_rx_run(struct gntsock_link *link)
{
	u32 avail, budget = max_t(u32, link->rx.size, GNTSOCK_RX_BUDGET);
	enum gntsock_drain d;

	link->rx_batching = true;
	for (;;) {
		gntsock_ring_set_cons_waiting(&link->rx, false);
		d = gntsock_rx_drain(link, &budget);
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
	if (d == GNTSOCK_DRAIN_BUDGET) {
		atomic64_inc(&gntsock_stats.rx_budget_runs);
		queue_work(gntsock_wq, &link->rx_work);
	}
	link->rx_batching = false;
	gntsock_link_batch_end(link);
}

/**
 * gntsock_link_init() - what every kind of link starts with
 * @link: a zeroed link
 * @rx_fn: its receive work: gntsock_rx_work() for a xenbus link, the
 *	loopback's own for the loopback link
 *
 * Locks, queues, the receive work item and the log rate limit. The caller
 * sets the rest (peer, state, kind).
 */
void gntsock_link_init(struct gntsock_link *link, work_func_t rx_fn)
{
	mutex_init(&link->setup_lock);
	spin_lock_init(&link->tx_lock);
	init_waitqueue_head(&link->tx_wq);
	INIT_WORK(&link->rx_work, rx_fn);
	mutex_init(&link->rx_lock);
	INIT_LIST_HEAD(&link->rx_wakes);
	spin_lock_init(&link->watch_lock);
	INIT_LIST_HEAD(&link->space_watches);
	ratelimit_state_init(&link->log_rs, DEFAULT_RATELIMIT_INTERVAL,
			     DEFAULT_RATELIMIT_BURST);
}

/* Did the event that queued the rx work bring anything? The peer signals
 * when it produced into our rx ring or consumed from our tx ring (one of
 * the two indices moved since the previous event), and nudges us while our
 * rx ring holds data (a writer that found it full). Compared with what the
 * previous event saw, not with what a work queued without an event (by a
 * busy-polling reader, or after a budget) already handled: an event for
 * data handed on before the event came is no storm. As in xen-netback, an
 * event is spurious only if there is nothing to do: nothing moved and
 * nothing waits in the ring. Each index is read once here; a peer
 * scribbling on them only makes its own events look useful or spurious.
 * Only the rx work calls this, for an event (it never runs concurrently
 * with itself).
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
 * Hands the messages of the rx ring to their layers (under rx_lock). The
 * event may also mean the peer consumed from our tx ring: then queued
 * control messages are sent and writers waiting for room are woken. Ends
 * with the late EOI of the event that queued it.
 */
void gntsock_rx_work(struct work_struct *work)
{
	struct gntsock_link *link = container_of(work, struct gntsock_link,
						 rx_work);
	int eoi_irq = atomic_xchg(&link->eoi_irq, 0);
	u64 t0 = gntsock_stat_clock();
	bool had_work = true, moved;
	int err = 0;
	u32 cons;

	/* Before link_up() replies could not be sent; it requeues us. */
	if (READ_ONCE(link->state) != GNTSOCK_LINK_CONNECTED)
		goto out;
	if (eoi_irq)
		had_work = gntsock_rx_event_had_work(link);
	mutex_lock(&link->rx_lock);
	if (READ_ONCE(link->state) == GNTSOCK_LINK_CONNECTED)
		gntsock_rx_run(link);
	mutex_unlock(&link->rx_lock);
	/* The event may also mean the peer consumed from our tx ring: stop
	 * asking for space events, then wake the waiters; each re-checks
	 * and asks again if it still lacks space. An event that freed nothing
	 * (the peer's cons did not move) wakes nobody and leaves their request
	 * for a space event standing, unless queued control messages made us
	 * withdraw it: then the space watches are woken too, unless the flush
	 * asked afresh (-ENOSPC: a new request, or another run of this work,
	 * stands). Without that, a peer that notifies by the flag could
	 * consume right after our look and send no event, the flush then
	 * find room and ask for nothing, and no watch ever be told.
	 */
	cons = READ_ONCE(link->tx.idx->cons);
	moved = cons != link->tx_cons_seen;
	if (moved || READ_ONCE(link->ctl_len)) {
		link->tx_cons_seen = cons;
		gntsock_ring_set_prod_waiting(&link->tx, false);
		if (READ_ONCE(link->ctl_len)) {
			spin_lock(&link->tx_lock);
			if (link->state == GNTSOCK_LINK_CONNECTED)
				err = gntsock_ctl_flush_event(link);
			spin_unlock(&link->tx_lock);
		}
		gntsock_tx_kick(link);
		if (moved || err != -ENOSPC)
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
