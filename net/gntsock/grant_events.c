// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock grants: the events of a socket's grants (GNTSOCK_EV_*), queued
 * on its error queue for recvmsg(MSG_ERRQUEUE): what happened to a grant
 * it sent (released, revoked, forced, quarantined) or received (revoked
 * under its mapping). Bounded by the socket's receive buffer; events with
 * no room are counted and reported as one GNTSOCK_EV_LOST. A leaf of the
 * grant layer: grant_reclaim.c, grant_recv.c and grant_unmap.c report
 * here, the socket layer reads here.
 */
#include <linux/skbuff.h>
#include <net/sock.h>

#include "gntsock.h"
#include "grant.h"

/**
 * gntsock_grant_event() - queue an event on a socket's error queue
 * @sk: the socket
 * @gs: its grants
 * @type: GNTSOCK_EV_*
 * @id: grant id
 * @cookie: the sender's cookie
 * @pages: pages of the grant
 *
 * As the kernel's own error queues (sock_queue_err_skb()): each event is
 * charged to the socket's sk_rmem_alloc and refused beyond sk_rcvbuf, so a
 * socket that never reads its error queue pins a bounded amount of memory
 * however many grants it makes or receives. A refused event is not lost
 * silently: it is counted in the socket's @ev_lost, and from then on every
 * event is refused and counted until the reader has taken everything
 * queued and the %GNTSOCK_EV_LOST event that reports the count
 * (gntsock_grant_recv_errqueue()), so that the reader sees the events in
 * order with the gap where it was.
 */
void gntsock_grant_event(struct sock *sk, struct gntsock_grants *gs,
			 u32 type, u32 id, u64 cookie, u32 pages)
{
	struct gntsock_grant_event ev = {
		.type = type,
		.id = id,
		.cookie = cookie,
		.pages = pages,
	};
	struct sk_buff *skb = NULL;

	if (!atomic64_read(&gs->ev_lost)) {
		/* Under gntsock_grant_lock, a spinlock; a failure is a lost
		 * event, counted and reported as any other.
		 */
		skb = alloc_skb(sizeof(ev), GFP_ATOMIC);
		if (skb) {
			skb_put_data(skb, &ev, sizeof(ev));
			if (!sock_queue_err_skb(sk, skb))
				return;
			kfree_skb(skb);
		}
	}
	atomic64_inc(&gs->ev_lost);
	atomic64_inc(&gntsock_grant_stats.events_lost);
	if (!sock_flag(sk, SOCK_DEAD))
		sk_error_report(sk);
}

/**
 * gntsock_grant_errq_pending() - does recvmsg(MSG_ERRQUEUE) have anything?
 * @sk: the socket
 * @gs: its grants
 *
 * Return: true if an event, or the report of lost events, waits.
 */
bool gntsock_grant_errq_pending(struct sock *sk, struct gntsock_grants *gs)
{
	return !skb_queue_empty_lockless(&sk->sk_error_queue) ||
	       atomic64_read(&gs->ev_lost);
}

/* The report of @lost events the error queue had no room for. */
static int gntsock_grant_put_lost(struct gntsock_grants *gs,
				  struct msghdr *msg, s64 lost)
{
	struct gntsock_grant_event ev = {
		.type = GNTSOCK_EV_LOST,
		.cookie = lost,
	};
	int trunc = msg->msg_flags & MSG_CTRUNC;
	int err;

	err = put_cmsg(msg, SOL_GNTSOCK, GNTSOCK_CMSG_GRANT_EVENT, sizeof(ev),
		       &ev);
	/* No room for it (put_cmsg() then only sets MSG_CTRUNC): reported
	 * by a later call, as a count is all there is to report.
	 */
	if (err || (!trunc && (msg->msg_flags & MSG_CTRUNC)))
		atomic64_add(lost, &gs->ev_lost);
	return err;
}

/**
 * gntsock_grant_recv_errqueue() - recvmsg(MSG_ERRQUEUE): one event
 * @sk: the socket
 * @gs: its grants
 * @msg: receives one %GNTSOCK_CMSG_GRANT_EVENT cmsg
 *
 * The queued events come first; once they are all taken, a
 * %GNTSOCK_EV_LOST event reports how many had no room, and events are
 * queued again.
 *
 * Return: 0, or -EAGAIN if no event waits.
 */
int gntsock_grant_recv_errqueue(struct sock *sk, struct gntsock_grants *gs,
				struct msghdr *msg)
{
	struct sk_buff *skb = sock_dequeue_err_skb(sk);
	s64 lost;
	int err;

	if (!skb) {
		lost = atomic64_xchg(&gs->ev_lost, 0);
		if (!lost)
			return -EAGAIN;
		err = gntsock_grant_put_lost(gs, msg, lost);
		msg->msg_flags |= MSG_ERRQUEUE;
		return err;
	}
	err = put_cmsg(msg, SOL_GNTSOCK, GNTSOCK_CMSG_GRANT_EVENT,
		       skb->len, skb->data);
	msg->msg_flags |= MSG_ERRQUEUE;
	consume_skb(skb);
	return err;
}
