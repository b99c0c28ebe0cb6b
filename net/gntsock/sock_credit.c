// SPDX-License-Identifier: GPL-2.0
/*
 * AF_GNTSOCK credit and control messages of a connection. Every message
 * carries the sender's receive buffer (buf_alloc) and the bytes its reader
 * consumed (fwd_cnt), as vsock's; a writer never has more than the peer's
 * buf_alloc in flight. Here: the header of our messages, control messages
 * (credit updates and requests, resets), what we learn of the peer's
 * credit, and a STREAM receive buffer that grows while the writer is
 * held back by it (buf_auto_max), charged to the link's budget.
 */
#include <linux/module.h>
#include <linux/hashtable.h>
#include <net/sock.h>

#include "gntsock.h"
#include "grant.h"
#include "sock.h"

/* Receive buffer growth (STREAM): see gntsock_buf_grow(). */
static unsigned int gntsock_buf_auto_max = 1048576;
module_param_named(buf_auto_max, gntsock_buf_auto_max, uint, 0644);
MODULE_PARM_DESC(buf_auto_max,
		 "bytes: the receive buffer a STREAM socket grows to on its own, and what the growth of all sockets of one link may add up to (default 1048576; at most 16 MiB; 262144 or less: no growth)");

/**
 * gntsock_buf_auto_put() - give back a socket's buffer growth
 * @vsk: the socket
 *
 * Give back to the link's budget what the buffer grew on its own.
 */
void gntsock_buf_auto_put(struct gntsock_sock *vsk)
{
	if (vsk->buf_auto && vsk->link)
		atomic_sub(vsk->buf_auto, &vsk->link->buf_auto);
	vsk->buf_auto = 0;
}

/**
 * gntsock_peer_credit() - bytes we may send before the peer's buffer is full
 * @vsk: the socket
 *
 * Return: the peer's buffer less what we sent and its reader has not
 * consumed; 0 if nothing is left.
 */
u32 gntsock_peer_credit(struct gntsock_sock *vsk)
{
	u32 in_flight = vsk->tx_cnt - READ_ONCE(vsk->peer_fwd_cnt);
	u32 buf = READ_ONCE(vsk->peer_buf_alloc);

	return in_flight >= buf ? 0 : buf - in_flight;
}

/**
 * gntsock_wire_type() - a socket's type as the protocol names it
 * @sk: the socket
 *
 * Return: %GNTSOCK_TYPE_SEQPACKET or %GNTSOCK_TYPE_STREAM.
 */
u16 gntsock_wire_type(const struct sock *sk)
{
	return sk->sk_type == SOCK_SEQPACKET ? GNTSOCK_TYPE_SEQPACKET :
	       GNTSOCK_TYPE_STREAM;
}

/**
 * gntsock_fill_hdr() - the header of a message of ours on a connection
 * @vsk: the socket, lock_sock held
 * @h: filled: zeroed, then op, type, ports and our credit
 * @op: GNTSOCK_OP_*
 *
 * The header carries our buffer and what our reader consumed: it counts
 * as a credit update (last_fwd_cnt).
 */
void gntsock_fill_hdr(struct gntsock_sock *vsk,
		      struct gntsock_msg_hdr *h, u16 op)
{
	memset(h, 0, sizeof(*h));
	h->op = op;
	h->type = gntsock_wire_type(&vsk->sk);
	h->src_port = vsk->local_port;
	h->dst_port = vsk->peer_port;
	h->buf_alloc = vsk->buf_alloc;
	h->fwd_cnt = vsk->fwd_cnt;
	if (vsk->fwd_cnt != vsk->last_fwd_cnt)
		vsk->peer_wants_credit = false;
	vsk->last_fwd_cnt = vsk->fwd_cnt;
}

#ifdef GNTSOCK_HOSTILE
/**
 * gntsock_hostile_conn_hdr() - test only: a header of one of our
 *	connections to (@peer, @peer_port), credit fields and all
 * @peer: the peer domain
 * @peer_port: the peer's port
 * @op: the message's op
 * @h: filled
 * @sent: credit the caller's forged data used: counted as sent, so that
 *	the peer's credit updates stay valid here
 *
 * Return: 0, or -ENOTCONN if we have no such connection.
 */
int gntsock_hostile_conn_hdr(domid_t peer, u32 peer_port, u16 op,
			     struct gntsock_msg_hdr *h, u32 sent)
{
	struct gntsock_sock *vsk, *found = NULL;
	int bkt;

	spin_lock_bh(&gntsock_table_lock);
	hash_for_each(gntsock_conn, bkt, vsk, conn_node) {
		if (vsk->link && vsk->link->peer == peer &&
		    vsk->peer_port == peer_port) {
			found = vsk;
			sock_hold(&vsk->sk);
			break;
		}
	}
	spin_unlock_bh(&gntsock_table_lock);
	if (!found)
		return -ENOTCONN;
	lock_sock(&found->sk);
	found->tx_cnt += sent;
	gntsock_fill_hdr(found, h, op);
	release_sock(&found->sk);
	sock_put(&found->sk);
	return 0;
}
#endif

/**
 * gntsock_send_ctl() - send a control message on a socket's connection
 * @vsk: the socket, lock_sock held
 * @op: GNTSOCK_OP_*
 * @flags: the message's flags (GNTSOCK_SHUT_* for a SHUTDOWN)
 *
 * Never sleeps waiting for ring space (gntsock_link_send_ctl()).
 *
 * Return: 0, -ENOTCONN without a link, or as gntsock_link_send_ctl().
 */
int gntsock_send_ctl(struct gntsock_sock *vsk, u16 op, u16 flags)
{
	struct gntsock_msg_hdr h;

	if (!vsk->link)
		return -ENOTCONN;
	/* (its link went down while the lock was owned: see sock_deliver.c) */
	if (READ_ONCE(vsk->bl_link_down))
		return -ECONNRESET;
	gntsock_fill_hdr(vsk, &h, op);
	h.flags = flags;
	return gntsock_link_send_ctl(vsk->link, &h);
}

/**
 * gntsock_reply_rst() - answer a peer's message with a reset
 * @link: the link it arrived on
 * @in: its header
 *
 * For a message no connection of ours takes: the RST goes back with the
 * ports swapped and carries no credit.
 */
void gntsock_reply_rst(struct gntsock_link *link,
		       const struct gntsock_msg_hdr *in)
{
	struct gntsock_msg_hdr h = {
		.op = GNTSOCK_OP_RST,
		.type = in->type,
		.src_port = in->dst_port,
		.dst_port = in->src_port,
	};

	gntsock_link_send_ctl(link, &h);
}

/**
 * gntsock_maybe_credit_update() - send a credit update if one is due
 * @vsk: the socket, lock_sock held
 *
 * Tell the peer about consumed bytes once a quarter of the buffer freed,
 * or at once if it asked for credit since our last update: a writer waiting
 * for room for a whole SEQPACKET record (up to the buffer size) or for its
 * last bytes to be read (SO_LINGER) then always learns of it.
 */
void gntsock_maybe_credit_update(struct gntsock_sock *vsk)
{
	u32 unsent = vsk->fwd_cnt - vsk->last_fwd_cnt;

	if (vsk->sk.sk_state != TCP_ESTABLISHED || !unsent)
		return;
	if (unsent >= vsk->buf_alloc / 4 || vsk->peer_wants_credit)
		gntsock_send_ctl(vsk, GNTSOCK_OP_CREDIT_UPDATE, 0);
}

/**
 * gntsock_buf_grow() - grow a STREAM receive buffer that held the writer back
 * @vsk: the socket, lock_sock held
 *
 * The peer's writer waited for credit, and then our reader found nothing
 * queued: the receive buffer, not the writer nor the reader, held the
 * stream back (a credit round trip between the domains costs far more than
 * the copies). Double the buffer, up to gntsock_buf_auto_max, from a budget
 * of gntsock_buf_auto_max bytes per link shared by all its sockets: a lone
 * stream grows to the maximum, many connections together add at most that
 * much kernel memory. A buffer set with GNTSOCK_SO_BUFFER_SIZE is kept.
 * STREAM only: a SEQPACKET record must fit the buffer its writer knows of.
 */
void gntsock_buf_grow(struct gntsock_sock *vsk)
{
	u32 cap = min_t(u32, READ_ONCE(gntsock_buf_auto_max),
			GNTSOCK_BUFFER_SIZE_MAX);
	struct gntsock_link *link = vsk->link;
	u32 grow;

	sock_owned_by_me(&vsk->sk);
	if (!vsk->credit_starved)
		return;
	vsk->credit_starved = false;
	if (vsk->sk.sk_type != SOCK_STREAM || vsk->buf_locked || !link ||
	    vsk->sk.sk_state != TCP_ESTABLISHED || vsk->buf_alloc >= cap)
		return;
	grow = min(vsk->buf_alloc, cap - vsk->buf_alloc);
	if (atomic_add_return(grow, &link->buf_auto) > cap) {
		atomic_sub(grow, &link->buf_auto);
		atomic64_inc(&gntsock_stats.buf_grow_refused);
		return;
	}
	vsk->buf_auto += grow;
	vsk->buf_alloc += grow;
	vsk->buf_alloc_max = max(vsk->buf_alloc_max, vsk->buf_alloc);
	atomic64_inc(&gntsock_stats.buf_grown);
	gntsock_send_ctl(vsk, GNTSOCK_OP_CREDIT_UPDATE, 0);
}

/**
 * gntsock_credit_update_before_wait() - tell the peer all our reader consumed
 * @vsk: the socket, lock_sock held
 *
 * A reader about to sleep for more data tells the peer everything it
 * consumed, so that a writer short of credit (e.g. for SO_RCVLOWAT bytes)
 * can go on.
 */
void gntsock_credit_update_before_wait(struct gntsock_sock *vsk)
{
	if (vsk->sk.sk_state == TCP_ESTABLISHED &&
	    vsk->fwd_cnt != vsk->last_fwd_cnt)
		gntsock_send_ctl(vsk, GNTSOCK_OP_CREDIT_UPDATE, 0);
}

/**
 * gntsock_update_credit() - learn the peer's credit from its message
 * @vsk: the socket, lock_sock held
 * @h: the peer's message for this connection
 *
 * A peer's message for a connection: update what we know of its credit.
 * New credit lets a later shortage ask again (credit_requested).
 *
 * Return: true; false, with nothing updated, if @h is impossible (a buffer
 * over GNTSOCK_BUFFER_SIZE_MAX, or more than that in flight): the caller
 * reports a violation.
 */
bool gntsock_update_credit(struct gntsock_sock *vsk,
			   const struct gntsock_msg_hdr *h)
{
	if (h->buf_alloc > GNTSOCK_BUFFER_SIZE_MAX ||
	    vsk->tx_cnt - h->fwd_cnt > GNTSOCK_BUFFER_SIZE_MAX)
		return false;
	/* New credit: a later shortage may ask again. */
	if (h->fwd_cnt != vsk->peer_fwd_cnt ||
	    h->buf_alloc != vsk->peer_buf_alloc)
		vsk->credit_requested = false;
	WRITE_ONCE(vsk->peer_buf_alloc, h->buf_alloc);
	WRITE_ONCE(vsk->peer_fwd_cnt, h->fwd_cnt);
	return true;
}
