// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock links, busy-polling: a blocking reader about to sleep looks at
 * the rx ring's producer index a bounded number of times, with the peer's
 * events off meanwhile, and hands what it finds to the rx work
 * (link_rx.c). It never delivers messages itself.
 */
#include <linux/module.h>

#include "gntsock.h"
#include "link.h"

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
 * holder asks for events when it lets go (the rx work) or is another
 * poller, which will; or the link is going down.
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
 * not, the rx work or another poller is at the ring already) and reads
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
