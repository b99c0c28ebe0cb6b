// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock links, receiving: each message of the rx ring is validated from
 * a local copy of its header (read once) and handed to the layer that
 * takes its op (gntsock_link_deliver()), by the link's rx work, or taken
 * by a reader straight from the ring (gntsock_link_rx_begin()); a budget
 * bounds one run of the work, and a fallback work drains what a reader
 * left. Also the event channel's interrupt and its late EOI, which makes a
 * peer that storms the channel cost little; an event may also mean the
 * peer consumed from our tx ring, which wakes the writers (link_tx.c).
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/interrupt.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
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
