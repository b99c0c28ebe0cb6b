// SPDX-License-Identifier: GPL-2.0
/*
 * AF_GNTSOCK: what the links hand to the socket layer (its struct
 * gntsock_link_handler). Each validated message goes to its connection:
 * connect requests make children of a listener, data is checked against
 * the credit we gave and queued, grants are queued in order with the
 * data, and the waiters are woken once per receive batch. A link going
 * down resets its connections.
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

/* The waiters a receive batch owes (gntsock_link_handler.batch_end).
 * rx_lock held.
 */
static void gntsock_sock_wake_flush(struct gntsock_link *link)
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

static void gntsock_recv_request(struct gntsock_link *link,
				 const struct gntsock_msg_hdr *h)
{
	struct gntsock_sock *lvsk, *cvsk;
	struct sock *listener = NULL, *child;

	spin_lock_bh(&gntsock_table_lock);
	lvsk = gntsock_find_bound(h->dst_port);
	if (lvsk && !gntsock_find_conn(link, h->dst_port, h->src_port)) {
		listener = &lvsk->sk;
		sock_hold(listener);
	}
	spin_unlock_bh(&gntsock_table_lock);
	if (!listener)
		goto refuse;

	lock_sock(listener);
	if (listener->sk_state != TCP_LISTEN || sk_acceptq_is_full(listener) ||
	    h->buf_alloc > GNTSOCK_BUFFER_SIZE_MAX ||
	    h->type != gntsock_wire_type(listener))
		goto refuse_locked;
	child = gntsock_sk_alloc(sock_net(listener), NULL, listener->sk_type,
				 GFP_KERNEL, 0);
	if (!child)
		goto refuse_locked;
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
		goto refuse_locked;
	}
	list_add_tail(&cvsk->accept_node, &lvsk->accept_queue);
	sk_acceptq_added(listener);
	gntsock_send_ctl(cvsk, GNTSOCK_OP_RESPONSE, 0);
	listener->sk_data_ready(listener);
	release_sock(listener);
	sock_put(listener);
	return;

refuse_locked:
	release_sock(listener);
	sock_put(listener);
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
	return GNTSOCK_RXBUF_SMALL - offsetof(struct gntsock_rxbuf, data);
}

/* STREAM: append a message that fits to the data of the last entry of the
 * rx queue (the payload goes after its unread bytes). Return: done.
 */
static bool gntsock_rxbuf_append(struct gntsock_link *link,
				 struct gntsock_sock *vsk,
				 const struct gntsock_msg_hdr *h)
{
	struct gntsock_rxbuf_fill fill;
	struct gntsock_rxbuf *b;

	if (list_empty(&vsk->rx_queue))
		return false;
	b = list_last_entry(&vsk->rx_queue, struct gntsock_rxbuf, node);
	if (b->grant || b->npages || b->cap - b->len < h->len)
		return false;
	fill.b = b;
	fill.pos = b->len;
	gntsock_link_rx_payload_cb(link, 0, h->len, gntsock_fill_rxbuf, &fill);
	b->len += h->len;
	vsk->rx_bytes += h->len;
	atomic64_inc(&gntsock_stats.rx_buf_appended);
	return true;
}

static void gntsock_recv_rw(struct gntsock_link *link, struct sock *sk,
			    const struct gntsock_msg_hdr *h)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);
	u32 charge = gntsock_rw_charge(h->type, h->len);
	struct gntsock_rxbuf_fill fill;
	struct gntsock_rxbuf *b;

	if (sk->sk_state != TCP_ESTABLISHED) {
		gntsock_reply_rst(link, h);
		return;
	}
	if (vsk->rx_cnt - vsk->fwd_cnt + charge > vsk->buf_alloc_max) {
		gntsock_link_violation(link, GNTSOCK_V_CREDIT);
		return;
	}
	vsk->rx_cnt += charge;
	if ((sk->sk_shutdown & RCV_SHUTDOWN) || sock_flag(sk, SOCK_DEAD) ||
	    (!h->len && sk->sk_type != SOCK_SEQPACKET)) {
		/* Nobody will read it: consume at once. */
		vsk->fwd_cnt += charge;
		gntsock_maybe_credit_update(vsk);
		return;
	}
	if (sk->sk_type == SOCK_STREAM && gntsock_rxbuf_append(link, vsk, h)) {
		atomic64_inc(&gntsock_stats.rx_buf_msgs);
		atomic64_add(h->len, &gntsock_stats.rx_buf_bytes);
		gntsock_sock_wake(link, sk, GNTSOCK_WAKE_READ);
		return;
	}
	b = gntsock_rxbuf_alloc(vsk, h->len, gntsock_rxbuf_room(vsk));
	if (!b) {
		/* Cannot keep it: abort this connection, not the link. */
		gntsock_reply_rst(link, h);
		gntsock_reset(sk, ENOMEM);
		return;
	}
	atomic64_inc(&gntsock_stats.rx_buf_msgs);
	atomic64_add(h->len, &gntsock_stats.rx_buf_bytes);
	b->len = h->len;
	b->flags = h->flags;
	fill.b = b;
	fill.pos = 0;
	if (b->len)
		gntsock_link_rx_payload_cb(link, 0, b->len,
					   gntsock_fill_rxbuf, &fill);
	list_add_tail(&b->node, &vsk->rx_queue);
	vsk->rx_bytes += b->len;
	if (h->flags & GNTSOCK_RW_EOM)
		vsk->rx_msgs++;
	/* A SEQPACKET reader waits for whole records. */
	if (sk->sk_type != SOCK_SEQPACKET || (h->flags & GNTSOCK_RW_EOM))
		gntsock_sock_wake(link, sk, GNTSOCK_WAKE_READ);
}

/* A GRANT message: queue the grant in order with the data (grant.h). */
static void gntsock_recv_grant(struct gntsock_link *link, struct sock *sk,
			       const struct gntsock_msg_hdr *h)
{
	struct gntsock_sock *vsk = sk ? gntsock_sk(sk) : NULL;
	struct gntsock_rxbuf *b;
	bool accept = sk && sk->sk_state == TCP_ESTABLISHED &&
		      !(sk->sk_shutdown & RCV_SHUTDOWN) &&
		      !sock_flag(sk, SOCK_DEAD);
	struct gntsock_gin *gin;

	b = accept ? gntsock_rxbuf_alloc(vsk, 0, 0) : NULL;
	gin = gntsock_grant_in_new(link, sk, vsk ? &vsk->grants : NULL, h,
				   accept && b);
	if (!gin) {
		if (b)
			gntsock_rxbuf_free(vsk, b);
		return;
	}
	b->grant = gin;
	list_add_tail(&b->node, &vsk->rx_queue);
	gntsock_sock_wake(link, sk, GNTSOCK_WAKE_READ);
}

/**
 * gntsock_sock_recv() - deliver one validated message to its socket
 * @link: the link it arrived on
 * @h: local copy of its header; an RW payload is still in the ring
 *
 * Called from the link's rx work, in process context.
 */
static void gntsock_sock_recv(struct gntsock_link *link,
			      const struct gntsock_msg_hdr *h)
{
	struct gntsock_sock *vsk;
	struct sock *sk = NULL;

	if (h->op == GNTSOCK_OP_REQUEST) {
		gntsock_recv_request(link, h);
		return;
	}
	spin_lock_bh(&gntsock_table_lock);
	vsk = gntsock_find_conn(link, h->dst_port, h->src_port);
	if (vsk) {
		sk = &vsk->sk;
		sock_hold(sk);
	}
	spin_unlock_bh(&gntsock_table_lock);
	if (!sk) {
		/* Data or a connection answer for a connection we do not
		 * have: tell the peer. Credit and shutdown messages carry
		 * nothing that could be lost (they arrive after a close).
		 */
		if (h->op == GNTSOCK_OP_GRANT)
			gntsock_recv_grant(link, NULL, h);
		if (h->op == GNTSOCK_OP_RW || h->op == GNTSOCK_OP_RESPONSE ||
		    h->op == GNTSOCK_OP_GRANT)
			gntsock_reply_rst(link, h);
		return;
	}

	lock_sock(sk);
	if (!vsk->conn_hashed)
		goto out;
	if (sk->sk_state == TCP_SYN_SENT &&
	    ((h->op != GNTSOCK_OP_RESPONSE && h->op != GNTSOCK_OP_RST) ||
	     h->type != gntsock_wire_type(sk))) {
		/* Before the peer accepted, it sends nothing else on this
		 * connection, and its answer has our type (a listener of
		 * another type refuses, and an RST carries the request's
		 * type): this is left from an earlier connection between the
		 * same ports (ours closed, its port taken again, with
		 * messages of the old one still in the ring or on their way).
		 * Not a violation, and not this connection's: a grant is
		 * refused, the rest dropped.
		 */
		atomic64_inc(&gntsock_stats.rx_stale);
		if (h->op == GNTSOCK_OP_GRANT)
			gntsock_recv_grant(link, NULL, h);
		goto out;
	}
	if (h->type != gntsock_wire_type(sk)) {
		gntsock_link_violation(link, GNTSOCK_V_TYPE);
		goto out;
	}
	/* (an RST ends the connection: its credit does not matter, and one
	 * left from an earlier connection carries that connection's)
	 */
	if (h->op != GNTSOCK_OP_RST && !gntsock_update_credit(vsk, h)) {
		gntsock_link_violation(link, GNTSOCK_V_CREDIT);
		goto out;
	}
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
		gntsock_recv_rw(link, sk, h);
		break;
	case GNTSOCK_OP_GRANT:
		gntsock_recv_grant(link, sk, h);
		break;
	case GNTSOCK_OP_CREDIT_UPDATE:
		gntsock_sock_wake(link, sk, GNTSOCK_WAKE_WRITE);
		break;
	case GNTSOCK_OP_CREDIT_REQUEST:
		if (sk->sk_state == TCP_ESTABLISHED) {
			gntsock_send_ctl(vsk, GNTSOCK_OP_CREDIT_UPDATE, 0);
			/* Tell it again as soon as our reader moves. */
			vsk->peer_wants_credit = true;
			vsk->credit_starved = true;
		}
		break;
	}
out:
	release_sock(sk);
	sock_put(sk);
}

/**
 * gntsock_sock_link_down() - reset every connection on a link
 * @link: the link, already torn down
 */
static void gntsock_sock_link_down(struct gntsock_link *link)
{
	struct gntsock_sock *vsk;
	struct sock *sk;
	int bkt;

	for (;;) {
		sk = NULL;
		spin_lock_bh(&gntsock_table_lock);
		hash_for_each(gntsock_conn, bkt, vsk, conn_node) {
			if (vsk->link == link) {
				sk = &vsk->sk;
				sock_hold(sk);
				break;
			}
		}
		spin_unlock_bh(&gntsock_table_lock);
		if (!sk)
			break;
		lock_sock(sk);
		if (vsk->conn_hashed)
			gntsock_reset(sk, ECONNRESET);
		release_sock(sk);
		sock_put(sk);
	}
}

/* What the links hand to the socket layer: every connection message. */
const struct gntsock_link_handler gntsock_sock_handler = {
	.ops = BIT(GNTSOCK_OP_REQUEST) | BIT(GNTSOCK_OP_RESPONSE) |
	       BIT(GNTSOCK_OP_RST) | BIT(GNTSOCK_OP_SHUTDOWN) |
	       BIT(GNTSOCK_OP_RW) | BIT(GNTSOCK_OP_CREDIT_UPDATE) |
	       BIT(GNTSOCK_OP_CREDIT_REQUEST) | BIT(GNTSOCK_OP_GRANT),
	.recv = gntsock_sock_recv,
	.batch_end = gntsock_sock_wake_flush,
	.link_down = gntsock_sock_link_down,
};
