// SPDX-License-Identifier: GPL-2.0
/*
 * AF_GNTSOCK: a validated message for a socket whose lock we own (the
 * link's receive work, or the owner handing on its backlog:
 * sock_deliver.c). Connect requests make children of a listener, data is
 * checked against the credit we gave and queued, grants are queued in
 * order with the data, and the waiters are woken once per receive batch.
 * A link going down resets its connections.
 */
#include <linux/module.h>
#include <linux/hashtable.h>
#include <linux/net.h>
#include <linux/memcontrol.h>
#include <net/sock.h>

#include "gntsock.h"
#include "grant.h"
#include "sock.h"

/* Data and credit reach their waiters at the end of the rx work's batch
 * (gntsock_sock_wake_flush()), not message by message: on the domain's
 * vCPU a woken reader or writer preempts the rx work at its next
 * lock_sock() (voluntary preemption), so waking per message cost two
 * context switches per message, each dearer in a PV guest than the copy.
 */
static bool gntsock_rx_batch_wake = true;
module_param_named(rx_batch_wake, gntsock_rx_batch_wake, bool, 0644);
MODULE_PARM_DESC(rx_batch_wake,
		 "wake readers and writers once per receive batch, not per message (default Y)");

/* Wake @sk's readers or writers (@what: GNTSOCK_WAKE_*), now or, inside the
 * rx work's batch (rx_lock held: @wake_pending and the list are its), when
 * the batch ends. lock_sock held.
 */
static void gntsock_sock_wake(struct gntsock_link *link, struct sock *sk,
			      u8 what)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);

	sock_owned_by_me(sk);
	if (link && link->rx_batching && READ_ONCE(gntsock_rx_batch_wake)) {
		if (!vsk->wake_pending) {
			sock_hold(sk);
			list_add_tail(&vsk->wake_node, &link->rx_wakes);
		}
		vsk->wake_pending |= what;
		return;
	}
	atomic64_inc(&gntsock_stats.rx_wakeups);
	if (what & GNTSOCK_WAKE_READ)
		sk->sk_data_ready(sk);
	if (what & GNTSOCK_WAKE_WRITE)
		sk->sk_write_space(sk);
}

/**
 * gntsock_sock_wake_flush() - wake the waiters a receive batch owes
 * @link: the link (gntsock_link_handler.batch_end), rx_lock held
 */
void gntsock_sock_wake_flush(struct gntsock_link *link)
{
	struct gntsock_sock *vsk, *tmp;
	u8 what;

	lockdep_assert_held(&link->rx_lock);
	list_for_each_entry_safe(vsk, tmp, &link->rx_wakes, wake_node) {
		struct sock *sk = &vsk->sk;

		list_del_init(&vsk->wake_node);
		what = vsk->wake_pending;
		vsk->wake_pending = 0;
		atomic64_inc(&gntsock_stats.rx_wakeups);
		if (what & GNTSOCK_WAKE_READ)
			sk->sk_data_ready(sk);
		if (what & GNTSOCK_WAKE_WRITE)
			sk->sk_write_space(sk);
		sock_put(sk);
	}
}

/**
 * gntsock_sock_recv_request() - a connect request for a listener
 * @link: the link it came on
 * @listener: the listener, lock owned
 * @h: the request
 *
 * Queue a new child for accept() and answer, or refuse.
 */
void gntsock_sock_recv_request(struct gntsock_link *link,
			       struct sock *listener,
			       const struct gntsock_msg_hdr *h)
{
	struct gntsock_sock *lvsk = gntsock_sk(listener), *cvsk;
	struct sock *child;

	sock_owned_by_me(listener);
	if (listener->sk_state != TCP_LISTEN || sk_acceptq_is_full(listener) ||
	    h->buf_alloc > GNTSOCK_BUFFER_SIZE_MAX ||
	    h->type != gntsock_wire_type(listener))
		goto refuse;
	child = gntsock_sk_alloc(sock_net(listener), NULL, listener->sk_prot,
				 listener->sk_type, GFP_KERNEL, 0);
	if (!child)
		goto refuse;
	cvsk = gntsock_sk(child);
	cvsk->local_port = h->dst_port;
	cvsk->peer_domid = link->peer;
	cvsk->peer_port = h->src_port;
	gntsock_sk_memcg_inherit(child, listener);
	cvsk->buf_alloc = lvsk->buf_alloc;
	cvsk->buf_alloc_max = lvsk->buf_alloc_max;
	cvsk->buf_locked = lvsk->buf_locked;
	cvsk->busy_poll = READ_ONCE(lvsk->busy_poll);
	cvsk->peer_buf_alloc = h->buf_alloc;
	cvsk->peer_fwd_cnt = h->fwd_cnt;
	cvsk->tx_cnt = h->fwd_cnt;
	kref_get(&link->kref);
	gntsock_set_link(cvsk, link);
	child->sk_state = TCP_ESTABLISHED;
	if (gntsock_conn_hash(cvsk)) {
		sk_free(child);
		goto refuse;
	}
	/* A request from a listener's backlog may come after its link went
	 * down, whose reset of the link's connections (after the link's
	 * state, under the table's lock) did not see this one.
	 */
	if (READ_ONCE(link->state) != GNTSOCK_LINK_CONNECTED) {
		/* (hashed, it may be held already: by link-down's scan) */
		gntsock_conn_unhash(cvsk);
		sock_put(child);
		return;
	}
	list_add_tail(&cvsk->accept_node, &lvsk->accept_queue);
	sk_acceptq_added(listener);
	gntsock_send_ctl(cvsk, GNTSOCK_OP_RESPONSE, 0);
	listener->sk_data_ready(listener);
	return;

refuse:
	gntsock_reply_rst(link, h);
}

/* STREAM: the room a new entry gets for small messages to come: some if
 * the queue is empty or ends with bytes (small messages in a row), none
 * after a grant (a peer alternating grants and one byte would otherwise
 * make every byte cost GNTSOCK_RXBUF_SMALL).
 */
static u32 gntsock_rxbuf_room(struct gntsock_sock *vsk)
{
	if (vsk->sk.sk_type != SOCK_STREAM)
		return 0;
	if (!list_empty(&vsk->rx_queue) &&
	    list_last_entry(&vsk->rx_queue, struct gntsock_rxbuf, node)->grant)
		return 0;
	return GNTSOCK_RXBUF_ROOM;
}

/* Free what @src holds (a message that is dropped). */
static void gntsock_rx_src_drop(const struct gntsock_rx_src *src)
{
	if (src->b)
		gntsock_rxbuf_delete(src->b);
	if (src->gin)
		gntsock_grant_in_refuse(src->gin);
}

/* STREAM: append a message that fits to the data of the last entry of the
 * rx queue (the payload goes after its unread bytes), from the ring or
 * from @src's buffer (then freed). Return: done.
 */
static bool gntsock_rxbuf_append(struct gntsock_link *link,
				 struct gntsock_sock *vsk, u32 len,
				 struct gntsock_rxbuf *src)
{
	struct gntsock_rxbuf_fill fill;
	struct gntsock_rxbuf *b;

	if (list_empty(&vsk->rx_queue))
		return false;
	b = list_last_entry(&vsk->rx_queue, struct gntsock_rxbuf, node);
	if (b->grant || b->npages || b->cap - b->len < len ||
	    (src && src->npages))
		return false;
	if (src) {
		memcpy(b->data + b->len, src->data, len);
		gntsock_rxbuf_delete(src);
	} else {
		fill.b = b;
		fill.pos = b->len;
		gntsock_link_rx_payload_cb(link, 0, len, gntsock_fill_rxbuf,
					   &fill);
	}
	b->len += len;
	vsk->rx_bytes += len;
	atomic64_inc(&gntsock_stats.rx_buf_appended);
	return true;
}

/* An RW message's payload in an rx buffer: @src's, or a new one filled
 * from the ring. Return: the buffer, or NULL without memory.
 */
static struct gntsock_rxbuf *gntsock_rw_buf(struct gntsock_link *link,
					    struct gntsock_sock *vsk,
					    const struct gntsock_msg_hdr *h,
					    const struct gntsock_rx_src *src)
{
	struct gntsock_rxbuf_fill fill;
	struct gntsock_rxbuf *b;

	if (src->b) {
		gntsock_rxbuf_adopt(vsk, src->b);
		return src->b;
	}
	b = gntsock_rxbuf_alloc(vsk, h->len, gntsock_rxbuf_room(vsk));
	if (!b)
		return NULL;
	b->len = h->len;
	b->flags = h->flags;
	fill.b = b;
	fill.pos = 0;
	if (b->len)
		gntsock_link_rx_payload_cb(link, 0, b->len,
					   gntsock_fill_rxbuf, &fill);
	return b;
}

/* An RW message: its payload is in the ring, or in @src->b, which then
 * holds @len bytes (STREAM: several messages' payloads, appended on the
 * backlog) and is ours to queue or free.
 */
static void gntsock_recv_rw(struct gntsock_link *link, struct sock *sk,
			    const struct gntsock_msg_hdr *h,
			    const struct gntsock_rx_src *src)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);
	u32 len = src->b ? src->b->len : h->len;
	u32 charge = gntsock_rw_charge(h->type, len);
	struct gntsock_rxbuf *b;

	/* Merged zero-length STREAM messages: each is consumed at once. */
	if (src->zero) {
		if (sk->sk_state != TCP_ESTABLISHED) {
			gntsock_reply_rst(link, h);
		} else if (vsk->rx_cnt - vsk->fwd_cnt + 1 > vsk->buf_alloc_max) {
			gntsock_link_violation(link, GNTSOCK_V_CREDIT);
		} else {
			vsk->rx_cnt += src->zero;
			vsk->fwd_cnt += src->zero;
			gntsock_maybe_credit_update(vsk);
		}
		return;
	}

	if (sk->sk_state != TCP_ESTABLISHED) {
		gntsock_reply_rst(link, h);
		goto drop;
	}
	if (vsk->rx_cnt - vsk->fwd_cnt + charge > vsk->buf_alloc_max) {
		gntsock_link_violation(link, GNTSOCK_V_CREDIT);
		goto drop;
	}
	vsk->rx_cnt += charge;
	if ((sk->sk_shutdown & RCV_SHUTDOWN) || sock_flag(sk, SOCK_DEAD) ||
	    (!len && sk->sk_type != SOCK_SEQPACKET)) {
		/* Nobody will read it: consume at once. */
		vsk->fwd_cnt += charge;
		gntsock_maybe_credit_update(vsk);
		goto drop;
	}
	atomic64_inc(&gntsock_stats.rx_buf_msgs);
	atomic64_add(len, &gntsock_stats.rx_buf_bytes);
	if (sk->sk_type == SOCK_STREAM &&
	    gntsock_rxbuf_append(link, vsk, len, src->b)) {
		gntsock_sock_wake(src->batch ? link : NULL, sk,
				  GNTSOCK_WAKE_READ);
		return;
	}
	b = gntsock_rw_buf(link, vsk, h, src);
	if (!b) {
		/* Cannot keep it: abort this connection, not the link. */
		gntsock_reply_rst(link, h);
		gntsock_reset(sk, ENOMEM);
		return;
	}
	list_add_tail(&b->node, &vsk->rx_queue);
	vsk->rx_bytes += b->len;
	if (h->flags & GNTSOCK_RW_EOM)
		vsk->rx_msgs++;
	/* A SEQPACKET reader waits for whole records. */
	if (sk->sk_type != SOCK_SEQPACKET || (h->flags & GNTSOCK_RW_EOM))
		gntsock_sock_wake(src->batch ? link : NULL, sk,
				  GNTSOCK_WAKE_READ);
	return;

drop:
	gntsock_rx_src_drop(src);
}

/* A GRANT message: queue the grant in order with the data (grant.h); with
 * no socket (@sk NULL), or one that cannot take it, refuse it (or, made
 * already on the backlog, release it).
 */
static void gntsock_recv_grant(struct gntsock_link *link, struct sock *sk,
			       const struct gntsock_msg_hdr *h,
			       const struct gntsock_rx_src *src)
{
	struct gntsock_sock *vsk = sk ? gntsock_sk(sk) : NULL;
	struct gntsock_rxbuf *b;
	bool accept = sk && sk->sk_state == TCP_ESTABLISHED &&
		      !(sk->sk_shutdown & RCV_SHUTDOWN) &&
		      !sock_flag(sk, SOCK_DEAD);
	struct gntsock_gin *gin = src->gin;

	b = accept ? gntsock_rxbuf_alloc(vsk, 0, 0) : NULL;
	if (!gin)
		gin = gntsock_grant_in_new(link, sk,
					   vsk ? &vsk->grants : NULL, h,
					   accept && b);
	else if (!b)
		gntsock_grant_in_refuse(gin);
	if (!gin || !b) {
		if (b)
			gntsock_rxbuf_free(vsk, b);
		return;
	}
	b->grant = gin;
	list_add_tail(&b->node, &vsk->rx_queue);
	gntsock_sock_wake(src->batch ? link : NULL, sk, GNTSOCK_WAKE_READ);
}

/**
 * gntsock_sock_recv_noconn() - a message for a connection we do not have
 * @link: the link it came on
 * @h: its header
 * @src: where its payload is
 *
 * Data, a grant (refused: the granter ends it) or a connection answer gets
 * an RST back. Credit and shutdown messages carry nothing that could be
 * lost (they arrive after a close), nor does an RST: dropped.
 */
void gntsock_sock_recv_noconn(struct gntsock_link *link,
			      const struct gntsock_msg_hdr *h,
			      const struct gntsock_rx_src *src)
{
	if (h->op == GNTSOCK_OP_GRANT && !src->gin)
		gntsock_recv_grant(link, NULL, h, src);
	if (h->op == GNTSOCK_OP_RW || h->op == GNTSOCK_OP_RESPONSE ||
	    h->op == GNTSOCK_OP_GRANT || h->op == GNTSOCK_OP_REQUEST)
		gntsock_reply_rst(link, h);
	gntsock_rx_src_drop(src);
}

/**
 * gntsock_sock_recv_stale() - a message left from an earlier connection
 * @link: the link it came on
 * @h: its header
 * @src: where its payload is
 *
 * Not a violation, and not this connection's (gntsock_recv_stale()):
 * counted, a grant refused, the rest dropped.
 */
void gntsock_sock_recv_stale(struct gntsock_link *link,
			     const struct gntsock_msg_hdr *h,
			     const struct gntsock_rx_src *src)
{
	atomic64_inc(&gntsock_stats.rx_stale);
	if (h->op == GNTSOCK_OP_GRANT && !src->gin)
		gntsock_recv_grant(link, NULL, h, src);
	gntsock_rx_src_drop(src);
}

/* Before the peer accepted, it sends nothing else on this connection, and
 * its answer has our type (a listener of another type refuses, and an RST
 * carries the request's type): anything else is left from an earlier
 * connection between the same ports (ours closed, its port taken again,
 * with messages of the old one still in the ring or on their way). Not a
 * violation, and not this connection's.
 */
static bool gntsock_recv_stale(struct sock *sk,
			       const struct gntsock_msg_hdr *h)
{
	return sk->sk_state == TCP_SYN_SENT &&
	       ((h->op != GNTSOCK_OP_RESPONSE && h->op != GNTSOCK_OP_RST) ||
		h->type != gntsock_wire_type(sk));
}

/**
 * gntsock_sock_recv_locked() - hand one validated message to its socket
 * @link: the link it arrived on
 * @sk: its connection's socket, lock owned
 * @h: local copy of its header
 * @src: where its payload is (the ring, or a buffer of the backlog, which
 *	is taken), and how to wake
 */
void gntsock_sock_recv_locked(struct gntsock_link *link, struct sock *sk,
			      const struct gntsock_msg_hdr *h,
			      const struct gntsock_rx_src *src)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);
	struct gntsock_link *wake_link = src->batch ? link : NULL;
	u32 credit;

	sock_owned_by_me(sk);
	if (!vsk->conn_hashed || vsk->link != link ||
	    h->dst_port != vsk->local_port || h->src_port != vsk->peer_port) {
		/* Closed since it was found (by a message before this one,
		 * on its backlog, or by our application), maybe connected
		 * again since.
		 */
		gntsock_sock_recv_noconn(link, h, src);
		return;
	}
	if (gntsock_recv_stale(sk, h)) {
		gntsock_sock_recv_stale(link, h, src);
		return;
	}
	if (h->type != gntsock_wire_type(sk)) {
		gntsock_link_violation(link, GNTSOCK_V_TYPE);
		goto drop;
	}
	/* (an RST ends the connection: its credit does not matter, and one
	 * left from an earlier connection carries that connection's)
	 */
	credit = gntsock_peer_credit(vsk);
	if (h->op != GNTSOCK_OP_RST && !gntsock_update_credit(vsk, h)) {
		gntsock_link_violation(link, GNTSOCK_V_CREDIT);
		goto drop;
	}
	/* Credit rides on every message, not only on updates: a writer that
	 * waits for room in poll() is woken by whichever brought it (data
	 * wakes with EPOLLIN, which its wait does not take).
	 */
	if (h->op != GNTSOCK_OP_CREDIT_UPDATE &&
	    gntsock_peer_credit(vsk) > credit)
		gntsock_sock_wake(wake_link, sk, GNTSOCK_WAKE_WRITE);
	switch (h->op) {
	case GNTSOCK_OP_RESPONSE:
		if (sk->sk_state != TCP_SYN_SENT) {
			gntsock_reply_rst(link, h);
			break;
		}
		sk->sk_state = TCP_ESTABLISHED;
		if (sk->sk_socket)
			sk->sk_socket->state = SS_CONNECTED;
		sk->sk_state_change(sk);
		break;
	case GNTSOCK_OP_RST:
		if (vsk->peer_shutdown == GNTSOCK_SHUT_MASK) {
			/* The peer had closed already: an orderly end. */
			gntsock_peer_closed(sk);
			break;
		}
		/* Also a refused connect: ECONNRESET, as vsock reports it. */
		gntsock_reset(sk, ECONNRESET);
		break;
	case GNTSOCK_OP_SHUTDOWN:
		vsk->peer_shutdown |= h->flags;
		if (vsk->peer_shutdown == GNTSOCK_SHUT_MASK &&
		    sk->sk_state == TCP_ESTABLISHED)
			gntsock_peer_closed(sk);
		else
			sk->sk_state_change(sk);
		break;
	case GNTSOCK_OP_RW:
		gntsock_recv_rw(link, sk, h, src);
		return;
	case GNTSOCK_OP_GRANT:
		gntsock_recv_grant(link, sk, h, src);
		break;
	case GNTSOCK_OP_CREDIT_UPDATE:
		gntsock_sock_wake(wake_link, sk, GNTSOCK_WAKE_WRITE);
		break;
	case GNTSOCK_OP_CREDIT_REQUEST:
		atomic64_inc(&gntsock_stats.credit_requests);
		if (sk->sk_state == TCP_ESTABLISHED) {
			gntsock_send_ctl(vsk, GNTSOCK_OP_CREDIT_UPDATE, 0);
			/* Tell it again as soon as our reader moves. */
			vsk->peer_wants_credit = true;
			vsk->credit_starved = true;
		}
		break;
	}
	return;

drop:
	gntsock_rx_src_drop(src);
}

/**
 * gntsock_sock_recv_ctl() - the header-only messages merged on a backlog
 * @sk: their socket, lock owned
 * @m: the backlog entry they followed, already handed on
 *
 * Handed on as the messages they stand for, with the last one's credit
 * fields: credit updates, a credit request, the zero-length STREAM data,
 * then the SHUTDOWN flags (last: a shutdown of both directions ends the
 * connection, after which nothing may be sent on its ports).
 */
void gntsock_sock_recv_ctl(struct sock *sk, const struct gntsock_bl_msg *m)
{
	static const u16 ops[] = { GNTSOCK_OP_CREDIT_UPDATE,
				   GNTSOCK_OP_CREDIT_REQUEST,
				   GNTSOCK_OP_SHUTDOWN };
	struct gntsock_rx_src src = {};
	struct gntsock_msg_hdr h = m->ctl;
	unsigned int i;

	/* (type 0 is no type: a bad one is a violation, as it was) */
	h.type = m->ctl_bad_type ? 0 : gntsock_wire_type(sk);
	h.len = 0;
	h.flags = 0;
	for (i = 0; i < ARRAY_SIZE(ops); i++) {
		if (ops[i] == GNTSOCK_OP_SHUTDOWN && m->ctl_zero) {
			h.op = GNTSOCK_OP_RW;
			src.zero = m->ctl_zero;
			gntsock_sock_recv_locked(m->link, sk, &h, &src);
			src.zero = 0;
		}
		h.flags = ops[i] == GNTSOCK_OP_SHUTDOWN ? m->ctl_shut : 0;
		if (!(m->ctl_ops & BIT(ops[i])))
			continue;
		h.op = ops[i];
		gntsock_sock_recv_locked(m->link, sk, &h, &src);
	}
}
