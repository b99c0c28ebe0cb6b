// SPDX-License-Identifier: GPL-2.0
/*
 * AF_GNTSOCK: what the links hand to the socket layer (its struct
 * gntsock_link_handler), and the socket backlog.
 *
 * A link's receive work takes the messages of its ring in order, for all
 * the link's sockets, so it must never wait for one socket's lock: a local
 * user who holds it would hold up every other socket on the link, and any
 * user can hold its own socket's lock for as long as it likes (a filter
 * that SO_ATTACH_FILTER copies from a FUSE mapping that never answers; a
 * task throttled by its cgroup inside a call on the socket). As TCP
 * does in softirq (sk_add_backlog()), the receive work takes a socket's
 * lock only if nobody owns it, without waiting (gntsock_sock_own());
 * otherwise it copies the message out of the ring onto the socket's
 * backlog, and the owner hands it on as it lets go of the lock
 * (release_sock() calls gntsock_backlog_release(), our proto's
 * release_cb), in the owner's context and at its cost.
 *
 * What a peer can make a backlog hold is bounded, and charged to the
 * socket's memory cgroup; the bounds are of one ownership (what the owner
 * hands on before it lets go), so that a peer cannot keep an owner in
 * release_sock() either:
 *  - RW payloads, by the credit we gave: more than the largest buffer we
 *    advertised is a violation (gntsock_recv_rw() checks the exact credit
 *    when the message is handed on). STREAM payloads are appended to the
 *    one before, as in the receive queue.
 *  - Header-only messages (credit updates and requests, SHUTDOWN,
 *    zero-length STREAM data) are merged into the entry before them, or
 *    into the socket's bl_head: they take no memory. A peer that makes the
 *    owner go round more than GNTSOCK_BL_CTL_ROUNDS times for them alone
 *    has its connection reset.
 *  - GRANTs get their records in ring order (the grant layer's limits
 *    bound them); one RESPONSE; after an RST, messages are handled as for
 *    a connection we do not have, which is what they would meet once it
 *    is handed on; messages for a connection still waiting for its
 *    answer are stale, as in gntsock_sock_recv_locked(); REQUESTs on a
 *    listener: its accept backlog (at least GNTSOCK_BL_REQUESTS), more
 *    are refused.
 *  - The memory of the entries: gntsock_bl_mem_max(); beyond it, or
 *    without memory, the connection is reset (ENOBUFS) when the owner lets
 *    go: our own shortage never resets the link, and never stops it.
 * A link going down resets its connections the same way: at once if their
 * lock is free, else by their owner (gntsock_sock_link_down()).
 */
#include <linux/module.h>
#include <linux/hashtable.h>
#include <net/sock.h>

#include "gntsock.h"
#include "grant.h"
#include "sock.h"

/* Rounds of handing on header-only messages alone, per ownership. */
#define GNTSOCK_BL_CTL_ROUNDS	64U
/* REQUESTs a listener's backlog takes at least (its accept backlog if
 * larger), per ownership: accept() holds the listener's lock briefly.
 */
#define GNTSOCK_BL_REQUESTS	16U

/* The memory a backlog's entries may take, per ownership: a SEQPACKET
 * record of 64 bytes of credit costs an entry and an rx buffer, about
 * three times its credit.
 */
static u32 gntsock_bl_mem_max(struct gntsock_sock *vsk)
{
	return 4 * READ_ONCE(vsk->buf_alloc_max) + 65536;
}

enum gntsock_bl_res {
	GNTSOCK_BL_QUEUED,	/* on the backlog (or merged there) */
	GNTSOCK_BL_NEED_MSG,	/* needs an entry of its own: allocate it */
	GNTSOCK_BL_REFUSED,	/* handle as for a connection we lack */
	GNTSOCK_BL_STALE,	/* left from an earlier connection */
	GNTSOCK_BL_VIOLATION,	/* more than the credit we gave */
};

/* lock_sock() that never waits: own @sk's lock if nobody does, as
 * lock_sock_nested() does once the owner is gone (sk_lock.owned, and
 * lockdep's view of a successful trylock of sk_lock). release_sock() lets
 * go: it hands on the backlog (our release_cb), then
 * sock_release_ownership() undoes both. sk_lock.slock held.
 * Return: owned.
 */
static bool gntsock_sock_own(struct sock *sk)
{
	lockdep_assert_held(&sk->sk_lock.slock);
	if (sock_owned_by_user_nocheck(sk))
		return false;
	sk->sk_lock.owned = 1;
	mutex_acquire(&sk->sk_lock.dep_map, 0, 1, _RET_IP_);
	return true;
}

/* Does @h only carry header fields, to be merged into the entry before? */
static bool gntsock_bl_is_ctl(const struct gntsock_msg_hdr *h)
{
	switch (h->op) {
	case GNTSOCK_OP_SHUTDOWN:
	case GNTSOCK_OP_CREDIT_UPDATE:
	case GNTSOCK_OP_CREDIT_REQUEST:
		return true;
	case GNTSOCK_OP_RW:
		return !h->len && h->type == GNTSOCK_TYPE_STREAM;
	}
	return false;
}

/* Merge the header-only message @h into @m. */
static void gntsock_bl_merge(struct gntsock_bl_msg *m, struct sock *sk,
			     const struct gntsock_msg_hdr *h)
{
	if (h->type != gntsock_wire_type(sk))
		m->ctl_bad_type = true;
	m->ctl = *h;
	if (h->op == GNTSOCK_OP_RW)
		m->ctl_zero++;
	else
		m->ctl_ops |= BIT(h->op);
	if (h->op == GNTSOCK_OP_SHUTDOWN)
		m->ctl_shut |= h->flags & GNTSOCK_SHUT_MASK;
}

/* STREAM: append @h's payload to @tail's, if it fits and nothing that
 * must stay between them (a SHUTDOWN of both directions) was merged into
 * @tail. The copy from the ring is at most GNTSOCK_RXBUF_SMALL, and it
 * carries the newest credit fields. Return: done.
 */
static bool gntsock_bl_append(struct gntsock_link *link,
			      struct gntsock_bl_msg *tail,
			      const struct gntsock_msg_hdr *h)
{
	struct gntsock_rxbuf_fill fill;
	struct gntsock_rxbuf *b = tail->b;

	/* (a SHUTDOWN of both directions must stay between: data after it
	 * is answered with an RST)
	 */
	if (h->type != GNTSOCK_TYPE_STREAM || tail->link != link ||
	    tail->h.op != GNTSOCK_OP_RW ||
	    tail->h.type != GNTSOCK_TYPE_STREAM ||
	    tail->ctl_shut == GNTSOCK_SHUT_MASK || !b || b->npages ||
	    b->cap - b->len < h->len)
		return false;
	fill.b = b;
	fill.pos = b->len;
	gntsock_link_rx_payload_cb(link, 0, h->len, gntsock_fill_rxbuf, &fill);
	b->len += h->len;
	/* Its credit fields are the newest: they are applied with @tail's
	 * header, and again after what was merged into @tail.
	 */
	tail->h.buf_alloc = h->buf_alloc;
	tail->h.fwd_cnt = h->fwd_cnt;
	if (tail->ctl_ops || tail->ctl_zero) {
		tail->ctl.buf_alloc = h->buf_alloc;
		tail->ctl.fwd_cnt = h->fwd_cnt;
	}
	return true;
}

/* The connection can keep nothing more: reset it when the owner lets go
 * (unless something else ends it first). sk_lock.slock held.
 */
static void gntsock_bl_fail(struct gntsock_sock *vsk, int err)
{
	if (!vsk->bl_closed) {
		vsk->bl_err = err;
		vsk->bl_closed = true;
	}
}

/* Put @h on @vsk's backlog: merged into the last entry (or bl_head),
 * appended to its payload, or in *@mp (then taken). sk_lock.slock held,
 * and the lock owned by someone else.
 */
static enum gntsock_bl_res gntsock_bl_add(struct gntsock_link *link,
					  struct gntsock_sock *vsk,
					  const struct gntsock_msg_hdr *h,
					  struct gntsock_bl_msg **mp)
{
	struct gntsock_bl_msg *tail, *m = *mp;
	struct sock *sk = &vsk->sk;
	u32 charge = 0;

	lockdep_assert_held(&sk->sk_lock.slock);
	if (vsk->bl_closed)
		return GNTSOCK_BL_REFUSED;
	/* Connecting, with no answer on the backlog: as gntsock_recv_stale()
	 * (read without the lock: only its owner, in connect(), makes a
	 * socket connecting, before any message of the connection can come).
	 */
	if (h->op != GNTSOCK_OP_REQUEST &&
	    READ_ONCE(sk->sk_state) == TCP_SYN_SENT && !vsk->bl_response &&
	    ((h->op != GNTSOCK_OP_RESPONSE && h->op != GNTSOCK_OP_RST) ||
	     h->type != gntsock_wire_type(sk)))
		return GNTSOCK_BL_STALE;
	tail = list_empty(&vsk->backlog) ? NULL :
	       list_last_entry(&vsk->backlog, struct gntsock_bl_msg, node);
	switch (h->op) {
	case GNTSOCK_OP_REQUEST:
		/* (a bound socket that does not listen refuses it) */
		if (READ_ONCE(sk->sk_state) != TCP_LISTEN ||
		    vsk->bl_requests >=
		    max_t(u32, READ_ONCE(sk->sk_max_ack_backlog),
			  GNTSOCK_BL_REQUESTS))
			return GNTSOCK_BL_REFUSED;
		break;
	case GNTSOCK_OP_RESPONSE:
		/* (a second one would be refused when handed on) */
		if (vsk->bl_response)
			return GNTSOCK_BL_REFUSED;
		break;
	case GNTSOCK_OP_RW:
		charge = gntsock_rw_charge(h->type, h->len);
		if (vsk->bl_charge + charge > READ_ONCE(vsk->buf_alloc_max))
			return GNTSOCK_BL_VIOLATION;
		break;
	}
	if (!tail && !vsk->bl_head.link && gntsock_bl_is_ctl(h)) {
		kref_get(&link->kref);
		vsk->bl_head.link = link;
	}
	if (!tail)
		tail = &vsk->bl_head;
	if (gntsock_bl_is_ctl(h) && tail->link == link) {
		gntsock_bl_merge(tail, sk, h);
	} else if (h->op == GNTSOCK_OP_RW && tail != &vsk->bl_head &&
		   gntsock_bl_append(link, tail, h)) {
		atomic64_inc(&gntsock_stats.rx_buf_appended);
	} else {
		/* (a header-only message after one of another link's gets
		 * an entry of its own)
		 */
		if (!m)
			return GNTSOCK_BL_NEED_MSG;
		if (vsk->bl_mem + m->truesize > gntsock_bl_mem_max(vsk)) {
			gntsock_bl_fail(vsk, ENOBUFS);
			return GNTSOCK_BL_REFUSED;
		}
		vsk->bl_mem += m->truesize;
		list_add_tail(&m->node, &vsk->backlog);
		*mp = NULL;
	}
	vsk->bl_charge += charge;
	if (h->op == GNTSOCK_OP_REQUEST)
		vsk->bl_requests++;
	else if (h->op == GNTSOCK_OP_RESPONSE)
		vsk->bl_response = true;
	else if (h->op == GNTSOCK_OP_RST &&
		 h->type == gntsock_wire_type(sk))
		/* (one of another type is stale or a violation: it ends
		 * nothing)
		 */
		vsk->bl_closed = true;
	atomic64_inc(&gntsock_stats.rx_deferred);
	return GNTSOCK_BL_QUEUED;
}

/* Hand the backlog entry @m to @sk, whose lock we own; free it unless it
 * is the socket's bl_head (@head).
 */
static void gntsock_bl_recv(struct sock *sk, struct gntsock_bl_msg *m,
			    bool head)
{
	struct gntsock_rx_src src = { .b = m->b, .gin = m->gin };

	m->b = NULL;	/* (taken by the handler) */
	m->gin = NULL;
	/* A request the link's previous rings brought is not answered on
	 * its next ones (a listener is not reset with the link's
	 * connections): dropped, as the link reset dropped its peer's side.
	 */
	if (m->h.op == GNTSOCK_OP_REQUEST &&
	    m->gen == READ_ONCE(m->link->generation))
		gntsock_sock_recv_request(m->link, sk, &m->h);
	else if (m->h.op != GNTSOCK_OP_INVALID)
		gntsock_sock_recv_locked(m->link, sk, &m->h, &src);
	if (m->ctl_ops || m->ctl_zero)
		gntsock_sock_recv_ctl(sk, m);
	if (!head)
		gntsock_bl_msg_free(m);
}

/**
 * gntsock_backlog_release() - hand on what a socket's backlog holds
 * @sk: the socket; its lock is owned (our proto's release_cb, called by
 *	release_sock() with sk_lock.slock held)
 *
 * Drops sk_lock.slock while it hands the messages on (which may sleep),
 * as mptcp_release_cb() does, and takes it again; the socket stays owned
 * throughout, so messages that come meanwhile go on the backlog, and are
 * handed on in the next round. The backlog's bounds count everything of
 * this ownership: they are reset only once it is empty.
 */
void gntsock_backlog_release(struct sock *sk)
	__must_hold(&sk->sk_lock.slock)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);
	struct gntsock_bl_msg head, *m, *tmp;
	LIST_HEAD(list);
	bool gone;
	int err;

	while (!list_empty(&vsk->backlog) || vsk->bl_head.link ||
	       vsk->bl_err) {
		if (list_empty(&vsk->backlog) &&
		    ++vsk->bl_ctl_rounds > GNTSOCK_BL_CTL_ROUNDS)
			gntsock_bl_fail(vsk, ENOBUFS);
		list_splice_init(&vsk->backlog, &list);
		head = vsk->bl_head;
		memset(&vsk->bl_head, 0, sizeof(vsk->bl_head));
		err = vsk->bl_err;
		vsk->bl_err = 0;
		/* After the link went down, what came before is not handed
		 * on: its answers would go to the link's next connection.
		 */
		gone = vsk->bl_link_down;
		spin_unlock_bh(&sk->sk_lock.slock);
		if (head.link) {
			if (!gone)
				gntsock_bl_recv(sk, &head, true);
			gntsock_link_put(head.link);
		}
		list_for_each_entry_safe(m, tmp, &list, node) {
			list_del(&m->node);
			if (gone)
				gntsock_bl_msg_free(m);
			else
				gntsock_bl_recv(sk, m, false);
		}
		if (err && vsk->conn_hashed) {
			/* (the peer may not have had one: after merged
			 * messages, or a bound)
			 */
			if (err != ECONNRESET)
				gntsock_send_ctl(vsk, GNTSOCK_OP_RST, 0);
			gntsock_reset(sk, err);
		}
		cond_resched();
		spin_lock_bh(&sk->sk_lock.slock);
	}
	vsk->bl_closed = false;
	WRITE_ONCE(vsk->bl_link_down, false);
	vsk->bl_response = false;
	vsk->bl_charge = 0;
	vsk->bl_mem = 0;
	vsk->bl_requests = 0;
	vsk->bl_ctl_rounds = 0;
}

/* A message for @sk, found by its ports (a reference held): handed on at
 * once if we can own the socket's lock, else put on its backlog.
 */
static void gntsock_deliver(struct gntsock_link *link, struct sock *sk,
			    const struct gntsock_msg_hdr *h)
{
	const struct gntsock_rx_src ring = { .batch = true };
	struct gntsock_sock *vsk = gntsock_sk(sk);
	struct gntsock_rx_src src = {};
	struct gntsock_bl_msg *m = NULL;
	enum gntsock_bl_res res;

	for (;;) {
		spin_lock_bh(&sk->sk_lock.slock);
		if (gntsock_sock_own(sk)) {
			spin_unlock_bh(&sk->sk_lock.slock);
			if (m && !IS_ERR(m))
				gntsock_bl_recv(sk, m, false);
			else if (h->op == GNTSOCK_OP_REQUEST)
				gntsock_sock_recv_request(link, sk, h);
			else
				gntsock_sock_recv_locked(link, sk, h, &ring);
			release_sock(sk);
			return;
		}
		if (IS_ERR(m)) {
			/* No memory for it: the connection ends (a listener
			 * only refuses this request).
			 */
			if (h->op != GNTSOCK_OP_REQUEST)
				gntsock_bl_fail(vsk, ENOBUFS);
			m = NULL;
			res = GNTSOCK_BL_REFUSED;
		} else {
			res = gntsock_bl_add(link, vsk, h, &m);
		}
		spin_unlock_bh(&sk->sk_lock.slock);
		if (res != GNTSOCK_BL_NEED_MSG)
			break;
		m = gntsock_bl_msg_new(link, sk, h);
		if (!m)
			return;	/* a GRANT refused or invalid: handled */
	}
	if (m && (res == GNTSOCK_BL_REFUSED || res == GNTSOCK_BL_STALE)) {
		/* (what the entry made is handed on with the message) */
		src.b = m->b;
		src.gin = m->gin;
		m->b = NULL;
		m->gin = NULL;
	}
	if (res == GNTSOCK_BL_REFUSED) {
		atomic64_inc(&gntsock_stats.rx_defer_refused);
		gntsock_sock_recv_noconn(link, h, &src);
	} else if (res == GNTSOCK_BL_STALE) {
		gntsock_sock_recv_stale(link, h, &src);
	} else if (res == GNTSOCK_BL_VIOLATION) {
		gntsock_link_violation(link, GNTSOCK_V_CREDIT);
	}
	if (m)
		gntsock_bl_msg_free(m);
}

/* The next connection on @link that link-down has not handled yet, with a
 * reference; or NULL.
 */
static struct sock *gntsock_next_on_link(struct gntsock_link *link)
{
	struct gntsock_sock *vsk;
	struct sock *sk = NULL;
	int bkt;

	spin_lock_bh(&gntsock_table_lock);
	hash_for_each(gntsock_conn, bkt, vsk, conn_node) {
		if (vsk->link == link && !READ_ONCE(vsk->bl_link_down)) {
			sk = &vsk->sk;
			sock_hold(sk);
			break;
		}
	}
	spin_unlock_bh(&gntsock_table_lock);
	return sk;
}

/**
 * gntsock_sock_link_down() - reset every connection on a link
 * @link: the link, already torn down (the handler's link_down)
 *
 * Never waits for a socket's lock either: a socket whose lock is owned is
 * reset by its owner as it lets go (ECONNRESET).
 */
static void gntsock_sock_link_down(struct gntsock_link *link)
{
	struct gntsock_sock *vsk;
	struct sock *sk;

	while ((sk = gntsock_next_on_link(link))) {
		vsk = gntsock_sk(sk);
		spin_lock_bh(&sk->sk_lock.slock);
		if (gntsock_sock_own(sk)) {
			spin_unlock_bh(&sk->sk_lock.slock);
			if (vsk->conn_hashed && vsk->link == link)
				gntsock_reset(sk, ECONNRESET);
			release_sock(sk);
		} else {
			WRITE_ONCE(vsk->bl_link_down, true);
			if (!vsk->bl_err)
				vsk->bl_err = ECONNRESET;
			vsk->bl_closed = true;
			spin_unlock_bh(&sk->sk_lock.slock);
		}
		sock_put(sk);
	}
}

/**
 * gntsock_sock_recv() - deliver one validated message to its socket
 * @link: the link it arrived on
 * @h: local copy of its header; a payload is still in the ring
 *
 * The link's handler (gntsock_link_handler.recv), called from its rx
 * work, in process context. Never waits for a socket's lock.
 */
static void gntsock_sock_recv(struct gntsock_link *link,
			      const struct gntsock_msg_hdr *h)
{
	const struct gntsock_rx_src ring = { .batch = true };
	struct gntsock_sock *vsk = NULL;
	struct sock *sk = NULL;

	spin_lock_bh(&gntsock_table_lock);
	if (h->op == GNTSOCK_OP_REQUEST) {
		vsk = gntsock_find_bound(h->dst_port);
		if (vsk && gntsock_find_conn(link, h->dst_port, h->src_port))
			vsk = NULL;
	} else {
		vsk = gntsock_find_conn(link, h->dst_port, h->src_port);
	}
	if (vsk) {
		sk = &vsk->sk;
		sock_hold(sk);
	}
	spin_unlock_bh(&gntsock_table_lock);
	if (!sk) {
		gntsock_sock_recv_noconn(link, h, &ring);
		return;
	}
	gntsock_deliver(link, sk, h);
	sock_put(sk);
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
