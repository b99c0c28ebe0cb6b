// SPDX-License-Identifier: GPL-2.0
/*
 * AF_GNTSOCK socket layer, its core: the address family and its proto_ops
 * (bind, connect, listen, accept, poll, shutdown, release, socket options,
 * ioctls), on top of the links (link*.c). The rest of the socket layer,
 * one concern a file (sock.h has the map): sock.c (socket objects),
 * sock_table.c (bound and connected tables), sock_credit.c (control
 * messages and credit), sock_recv.c (messages from the links), sock_tx.c
 * (sendmsg()), sock_rx.c (recvmsg()), rxbuf.c (received payloads).
 *
 * Modelled on vsock (net/vmw_vsock/af_vsock.c and the virtio transport):
 * each message carries the sender socket's receive buffer size (buf_alloc)
 * and the bytes its reader consumed (fwd_cnt); a writer never has more than
 * buf_alloc bytes in flight, so the receiving kernel can always drain the
 * ring into per-socket queues and a slow reader never blocks the link.
 * A peer sending beyond its credit breaks the protocol and resets the link.
 *
 * SOCK_SEQPACKET uses the same connections and credit; a record is sent as
 * RW fragments of which the last carries GNTSOCK_RW_EOM (and GNTSOCK_RW_EOR
 * for MSG_EOR), as virtio-vsock's SEQ_EOM/SEQ_EOR. A reader only sees
 * complete records, one per recvmsg().
 */
#include <linux/module.h>
#include <linux/compat.h>
#include <linux/sched/signal.h>
#include <linux/poll.h>
#include <linux/mm.h>
#include <linux/net.h>
#include <linux/sockios.h>
#include <asm/ioctls.h>
#include <linux/seq_file.h>
#include <net/sock.h>

#include "gntsock.h"
#include "grant.h"
#include "sock.h"

/* GNTSOCK_SO_BUFFER_SIZE above this (sysctl net.gntsock.buffer_size_max,
 * bytes) needs CAP_NET_ADMIN, as SO_RCVBUFFORCE above rmem_max: the peer
 * may make the socket hold that much memory.
 */
unsigned int gntsock_buffer_size_max = 1048576;

static const struct proto_ops gntsock_stream_ops;

static const char *gntsock_state_name(int state)
{
	switch (state) {
	case TCP_LISTEN:
		return "LISTEN";
	case TCP_SYN_SENT:
		return "SYN_SENT";
	case TCP_ESTABLISHED:
		return "ESTABLISHED";
	default:
		return "CLOSE";
	}
}

static void gntsock_show_one(struct seq_file *m, struct gntsock_sock *vsk)
{
	struct sock *sk = &vsk->sk;
	bool conn = vsk->conn_hashed;

	seq_printf(m, "%s %s %u:%u %u:%u %u %u %lu %u %u %u\n",
		   sk->sk_type == SOCK_SEQPACKET ? "SEQPACKET" : "STREAM",
		   gntsock_state_name(sk->sk_state),
		   conn ? gntsock_local_domid() : GNTSOCK_DOMID_ANY,
		   vsk->local_port,
		   conn ? vsk->peer_domid : GNTSOCK_DOMID_ANY,
		   conn ? vsk->peer_port : GNTSOCK_PORT_ANY,
		   READ_ONCE(vsk->rx_bytes),
		   conn ? vsk->tx_cnt - READ_ONCE(vsk->peer_fwd_cnt) : 0,
		   sock_i_ino(sk), READ_ONCE(vsk->rx_mem),
		   READ_ONCE(sk->sk_shutdown), READ_ONCE(vsk->peer_shutdown));
}

/**
 * gntsock_sockets_show() - one line per bound or connected socket
 * @m: the seq_file of /proc/net/gntsock
 */
void gntsock_sockets_show(struct seq_file *m)
{
	struct gntsock_sock *vsk;
	int bkt;

	seq_puts(m, "type state local peer rx_queue tx_queue inode rx_mem shutdown peer_shutdown\n");
	/* One chain at a time, not the whole table under the lock (a
	 * socket that moves meanwhile may be shown twice or not at all).
	 */
	for (bkt = 0; bkt < HASH_SIZE(gntsock_bound); bkt++) {
		spin_lock_bh(&gntsock_table_lock);
		hlist_for_each_entry(vsk, &gntsock_bound[bkt], bind_node)
			if (!vsk->conn_hashed)
				gntsock_show_one(m, vsk);
		spin_unlock_bh(&gntsock_table_lock);
		cond_resched();
	}
	for (bkt = 0; bkt < HASH_SIZE(gntsock_conn); bkt++) {
		spin_lock_bh(&gntsock_table_lock);
		hlist_for_each_entry(vsk, &gntsock_conn[bkt], conn_node)
			gntsock_show_one(m, vsk);
		spin_unlock_bh(&gntsock_table_lock);
		cond_resched();
	}
}

static int gntsock_check_addr(const struct sockaddr *addr, int len,
			      const struct sockaddr_gnt **out)
{
	const struct sockaddr_gnt *a = (const struct sockaddr_gnt *)addr;

	if (!addr || len < (int)sizeof(*a))
		return -EINVAL;
	if (a->sgnt_family != AF_GNTSOCK)
		return -EAFNOSUPPORT;
	if (a->sgnt_reserved1 || a->sgnt_flags || a->sgnt_zero[0] ||
	    a->sgnt_zero[1] || a->sgnt_zero[2])
		return -EINVAL;
	*out = a;
	return 0;
}

static int gntsock_bind(struct socket *sock, struct sockaddr *addr, int len)
{
	const struct sockaddr_gnt *a;
	struct sock *sk = sock->sk;
	int err;

	err = gntsock_check_addr(addr, len, &a);
	if (err)
		return err;
	if (a->sgnt_domid != GNTSOCK_DOMID_ANY &&
	    !gntsock_domid_is_local(a->sgnt_domid))
		return -EADDRNOTAVAIL;
	lock_sock(sk);
	if (gntsock_sk(sk)->bound)
		err = -EINVAL;
	else
		err = gntsock_do_bind(gntsock_sk(sk), a->sgnt_port);
	release_sock(sk);
	return err;
}

static int gntsock_do_connect(struct socket *sock, struct sockaddr *addr,
			      int len, int flags)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	struct sock *sk = sock->sk;
	struct gntsock_sock *vsk = gntsock_sk(sk);
	const struct sockaddr_gnt *a;
	struct gntsock_link *link;
	long timeo;
	int err;

	err = gntsock_check_addr(addr, len, &a);
	if (err)
		return err;
	lock_sock(sk);
	switch (sock->state) {
	case SS_CONNECTED:
		err = -EISCONN;
		goto out;
	case SS_CONNECTING:
		err = -EALREADY;
		if (flags & O_NONBLOCK)
			goto out;
		goto wait;
	default:
		break;
	}
	if (sk->sk_state == TCP_LISTEN || a->sgnt_port == GNTSOCK_PORT_ANY ||
	    a->sgnt_domid == GNTSOCK_DOMID_ANY) {
		err = -EINVAL;
		goto out;
	}
	/* This domain's id or GNTSOCK_DOMID_SELF: the loopback link. */
	link = a->sgnt_domid > 0xffff ? NULL : gntsock_link_get(a->sgnt_domid);
	if (!link) {
		err = -ENETUNREACH;
		goto out;
	}
	if (!vsk->bound) {
		err = gntsock_do_bind(vsk, GNTSOCK_PORT_ANY);
		if (err) {
			gntsock_link_put(link);
			goto out;
		}
	}
	gntsock_set_link(vsk, link);
	vsk->peer_domid = link->peer;
	vsk->peer_port = a->sgnt_port;
	vsk->tx_cnt = 0;
	vsk->rx_cnt = 0;
	vsk->fwd_cnt = 0;
	vsk->last_fwd_cnt = 0;
	vsk->peer_fwd_cnt = 0;
	vsk->peer_buf_alloc = 0;
	vsk->peer_shutdown = 0;
	vsk->credit_requested = false;
	vsk->peer_wants_credit = false;
	vsk->credit_starved = false;
	gntsock_purge_rx(vsk);
	err = gntsock_conn_hash(vsk);
	if (err)
		goto out;
	sk->sk_err = 0;
	sk->sk_shutdown = 0;
	sk->sk_state = TCP_SYN_SENT;
	sock->state = SS_CONNECTING;
	err = gntsock_send_ctl(vsk, GNTSOCK_OP_REQUEST, 0);
	if (err) {
		gntsock_conn_unhash(vsk);
		sk->sk_state = TCP_CLOSE;
		sock->state = SS_UNCONNECTED;
		err = -ENETUNREACH;
		goto out;
	}
	if (flags & O_NONBLOCK) {
		err = -EINPROGRESS;
		goto out;
	}
wait:
	timeo = vsk->connect_timeout;
	add_wait_queue(sk_sleep(sk), &wait);
	while (sk->sk_state == TCP_SYN_SENT && !sk->sk_err) {
		if (!timeo || signal_pending(current)) {
			err = timeo ? sock_intr_errno(timeo) : -ETIMEDOUT;
			gntsock_send_ctl(vsk, GNTSOCK_OP_RST, 0);
			gntsock_conn_unhash(vsk);
			sk->sk_state = TCP_CLOSE;
			sock->state = SS_UNCONNECTED;
			remove_wait_queue(sk_sleep(sk), &wait);
			goto out;
		}
		sk_wait_event(sk, &timeo, sk->sk_state != TCP_SYN_SENT ||
			      sk->sk_err, &wait);
	}
	remove_wait_queue(sk_sleep(sk), &wait);
	if (sk->sk_err) {
		err = sock_error(sk);
		sk->sk_state = TCP_CLOSE;
		sock->state = SS_UNCONNECTED;
	} else {
		/* The RESPONSE made it SS_CONNECTED; a fast peer may have
		 * sent its data and closed since (gntsock_peer_closed()):
		 * connected all the same, the reader gets the data and EOF.
		 */
		err = sock->state == SS_CONNECTED ? 0 : -ECONNRESET;
	}
out:
	release_sock(sk);
	return err;
}

/* A connect() moves the socket to the link of its new peer, dropping its
 * reference to the old one, which a sender in a wait outside lock_sock()
 * may still be using: it takes tx_mutex first, as gntsock_sendmsg() does
 * (the lock order is tx_mutex, then lock_sock()), so senders may keep
 * vsk->link across their waits. A connected socket answers at once: its
 * sender may be blocked for as long as the peer gives no credit.
 */
static int gntsock_connect(struct socket *sock, struct sockaddr *addr,
			   int len, int flags)
{
	struct gntsock_sock *vsk = gntsock_sk(sock->sk);
	int err;

	if (READ_ONCE(sock->state) == SS_CONNECTED)
		return -EISCONN;
	if (mutex_lock_interruptible(&vsk->tx_mutex))
		return -ERESTARTSYS;
	err = gntsock_do_connect(sock, addr, len, flags);
	mutex_unlock(&vsk->tx_mutex);
	return err;
}

static int gntsock_listen(struct socket *sock, int backlog)
{
	struct sock *sk = sock->sk;
	int err = 0;

	lock_sock(sk);
	if (sock->state != SS_UNCONNECTED || !gntsock_sk(sk)->bound ||
	    (sk->sk_state != TCP_CLOSE && sk->sk_state != TCP_LISTEN)) {
		err = -EINVAL;
		goto out;
	}
	sk->sk_max_ack_backlog = backlog;
	sk->sk_state = TCP_LISTEN;
out:
	release_sock(sk);
	return err;
}

static int gntsock_accept(struct socket *sock, struct socket *newsock,
			  int flags, bool kern)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	struct sock *listener = sock->sk;
	struct gntsock_sock *lvsk = gntsock_sk(listener);
	struct gntsock_sock *cvsk;
	struct sock *child;
	long timeo;
	int err = 0;

	lock_sock(listener);
	if (listener->sk_state != TCP_LISTEN) {
		err = -EINVAL;
		goto out;
	}
	timeo = sock_rcvtimeo(listener, flags & O_NONBLOCK);
	add_wait_queue(sk_sleep(listener), &wait);
	while (list_empty(&lvsk->accept_queue) &&
	       listener->sk_state == TCP_LISTEN) {
		if (!timeo) {
			err = -EAGAIN;
			break;
		}
		if (signal_pending(current)) {
			err = sock_intr_errno(timeo);
			break;
		}
		sk_wait_event(listener, &timeo,
			      !list_empty(&lvsk->accept_queue) ||
			      listener->sk_state != TCP_LISTEN, &wait);
	}
	remove_wait_queue(sk_sleep(listener), &wait);
	if (err)
		goto out;
	if (list_empty(&lvsk->accept_queue)) {
		err = -EINVAL;
		goto out;
	}
	cvsk = list_first_entry(&lvsk->accept_queue, struct gntsock_sock,
				accept_node);
	list_del_init(&cvsk->accept_node);
	sk_acceptq_removed(listener);
	child = &cvsk->sk;
	lock_sock_nested(child, SINGLE_DEPTH_NESTING);
	sock_graft(child, newsock);
	/* Connected, also if the peer has closed it in order since (it
	 * reads its data, then EOF); not if it was reset.
	 */
	newsock->state = child->sk_state == TCP_ESTABLISHED ||
			 !child->sk_err ? SS_CONNECTED : SS_UNCONNECTED;
	release_sock(child);
out:
	release_sock(listener);
	return err;
}

static int gntsock_getname(struct socket *sock, struct sockaddr *addr,
			   int peer)
{
	struct gntsock_sock *vsk = gntsock_sk(sock->sk);
	struct sockaddr_gnt *a = (struct sockaddr_gnt *)addr;

	memset(a, 0, sizeof(*a));
	a->sgnt_family = AF_GNTSOCK;
	if (peer) {
		if (sock->state != SS_CONNECTED)
			return -ENOTCONN;
		a->sgnt_domid = vsk->peer_domid;
		a->sgnt_port = vsk->peer_port;
	} else {
		a->sgnt_domid = vsk->link ? gntsock_local_domid() :
			GNTSOCK_DOMID_ANY;
		a->sgnt_port = vsk->local_port;
	}
	return sizeof(*a);
}

static __poll_t gntsock_poll(struct file *file, struct socket *sock,
			     poll_table *wait)
{
	struct sock *sk = sock->sk;
	struct gntsock_sock *vsk = gntsock_sk(sk);
	__poll_t mask = 0;
	u8 peer_shut, shut;
	int state;

	/* On the wait queue before reading the state (sock_poll_wait()'s
	 * barrier pairs with the waker's wq_has_sleeper()): a change in
	 * between, such as the peer's close, would wake nobody.
	 */
	sock_poll_wait(file, sock, wait);
	peer_shut = READ_ONCE(vsk->peer_shutdown);
	shut = READ_ONCE(sk->sk_shutdown);
	state = READ_ONCE(sk->sk_state);
	if (READ_ONCE(sk->sk_err) || gntsock_grant_errq_pending(sk, &vsk->grants))
		mask |= EPOLLERR;
	if (shut == SHUTDOWN_MASK ||
	    ((shut & SEND_SHUTDOWN) && (peer_shut & GNTSOCK_SHUT_SEND)))
		mask |= EPOLLHUP;
	if ((shut & RCV_SHUTDOWN) || (peer_shut & GNTSOCK_SHUT_SEND))
		mask |= EPOLLRDHUP | EPOLLIN | EPOLLRDNORM;
	if (state == TCP_LISTEN) {
		if (!list_empty_careful(&vsk->accept_queue))
			mask |= EPOLLIN | EPOLLRDNORM;
		return mask;
	}
	if (sk->sk_type == SOCK_SEQPACKET ? READ_ONCE(vsk->rx_msgs) != 0 :
	    READ_ONCE(vsk->rx_bytes) >= (u32)sock_rcvlowat(sk, 0, INT_MAX))
		mask |= EPOLLIN | EPOLLRDNORM;
	if (state == TCP_ESTABLISHED) {
		/* (a record uses at least GNTSOCK_SEQ_CHARGE_MIN) */
		if (!(shut & SEND_SHUTDOWN) && !(peer_shut & GNTSOCK_SHUT_RCV) &&
		    !READ_ONCE(vsk->ring_blocked) &&
		    gntsock_peer_credit(vsk) >=
		    (sk->sk_type == SOCK_SEQPACKET ? GNTSOCK_SEQ_CHARGE_MIN : 1))
			mask |= EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND;
	} else if (state == TCP_CLOSE && !(shut & SEND_SHUTDOWN)) {
		/* As INET and vsock: a closed socket polls writable. */
		mask |= EPOLLOUT | EPOLLWRNORM;
	}
	return mask;
}

static int gntsock_shutdown(struct socket *sock, int how)
{
	struct sock *sk = sock->sk;
	struct gntsock_sock *vsk = gntsock_sk(sk);
	u16 flags = 0;
	int mode, err = 0;

	/* SHUT_RD -> RCV_SHUTDOWN, SHUT_WR -> SEND_SHUTDOWN, as in inet. */
	mode = how + 1;
	if ((mode & ~SHUTDOWN_MASK) || !mode)
		return -EINVAL;
	lock_sock(sk);
	if (sock->state == SS_UNCONNECTED && sk->sk_state != TCP_LISTEN) {
		err = -ENOTCONN;
		goto out;
	}
	sk->sk_shutdown |= mode;
	if (mode & RCV_SHUTDOWN)
		flags |= GNTSOCK_SHUT_RCV;
	if (mode & SEND_SHUTDOWN)
		flags |= GNTSOCK_SHUT_SEND;
	if (sk->sk_state == TCP_ESTABLISHED)
		gntsock_send_ctl(vsk, GNTSOCK_OP_SHUTDOWN, flags);
	sk->sk_state_change(sk);
out:
	release_sock(sk);
	return err;
}

/* Drop a socket: lock_sock held by the caller (nested for children). */
static void gntsock_close_locked(struct sock *sk)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);

	if (sk->sk_state == TCP_ESTABLISHED)
		gntsock_send_ctl(vsk, GNTSOCK_OP_SHUTDOWN, GNTSOCK_SHUT_MASK);
	else if (sk->sk_state == TCP_SYN_SENT)
		gntsock_send_ctl(vsk, GNTSOCK_OP_RST, 0);
	gntsock_conn_unhash(vsk);
	gntsock_unbind(vsk);
	sk->sk_state = TCP_CLOSE;
	sk->sk_shutdown = SHUTDOWN_MASK;
	sock_orphan(sk);
	gntsock_grant_sock_close(&vsk->grants);
	gntsock_purge_rx(vsk);
}

static bool gntsock_linger_done(struct sock *sk)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);

	return vsk->tx_cnt == READ_ONCE(vsk->peer_fwd_cnt) || sk->sk_err ||
	       sk->sk_state != TCP_ESTABLISHED ||
	       (vsk->peer_shutdown & GNTSOCK_SHUT_RCV);
}

/* SO_LINGER: close() waits up to the linger time until the peer's reader
 * consumed everything we sent, the peer stopped receiving or the connection
 * ended; then closes as without it. Data we received and did not read is
 * dropped either way, as for vsock.
 */
static void gntsock_linger(struct sock *sk)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	struct gntsock_sock *vsk = gntsock_sk(sk);
	long timeo = sk->sk_lingertime;

	if (!sock_flag(sk, SOCK_LINGER) || !timeo ||
	    sk->sk_state != TCP_ESTABLISHED || (current->flags & PF_EXITING))
		return;
	add_wait_queue(sk_sleep(sk), &wait);
	while (!gntsock_linger_done(sk) && timeo && !signal_pending(current)) {
		/* The peer reports consumption in quarters of its buffer
		 * unless asked; ask again after each news.
		 */
		if (!vsk->credit_requested) {
			vsk->credit_requested = true;
			gntsock_send_ctl(vsk, GNTSOCK_OP_CREDIT_REQUEST, 0);
		}
		sk_wait_event(sk, &timeo, gntsock_linger_done(sk), &wait);
	}
	remove_wait_queue(sk_sleep(sk), &wait);
}

static int gntsock_release(struct socket *sock)
{
	struct sock *sk = sock->sk;
	struct gntsock_sock *vsk, *cvsk;

	if (!sk)
		return 0;
	vsk = gntsock_sk(sk);
	lock_sock(sk);
	/* Children nobody accepted are refused and freed. */
	while ((cvsk = list_first_entry_or_null(&vsk->accept_queue,
						struct gntsock_sock,
						accept_node))) {
		list_del_init(&cvsk->accept_node);
		sk_acceptq_removed(sk);
		lock_sock_nested(&cvsk->sk, SINGLE_DEPTH_NESTING);
		if (cvsk->sk.sk_state == TCP_ESTABLISHED)
			gntsock_send_ctl(cvsk, GNTSOCK_OP_RST, 0);
		cvsk->sk.sk_state = TCP_CLOSE;
		gntsock_close_locked(&cvsk->sk);
		release_sock(&cvsk->sk);
		sock_put(&cvsk->sk);
	}
	gntsock_linger(sk);
	gntsock_close_locked(sk);
	/* No ring-room notify may run once the last reference is gone. */
	if (vsk->link)
		gntsock_link_unwatch_space(vsk->link, &vsk->space_watch);
	release_sock(sk);
	sock->sk = NULL;
	sock->state = SS_FREE;
	sock_put(sk);
	return 0;
}

/* GNTSOCK_SO_CONNECT_TIMEOUT_OLD (@old: the caller's struct timeval, 32-bit
 * in a compat syscall) or _NEW (struct __kernel_sock_timeval), as vsock's
 * vsock_connectible_setsockopt(), into *@timeout in jiffies.
 */
static int gntsock_timeout_from_user(sockptr_t optval, unsigned int optlen,
				     bool old, long *timeout)
{
	struct __kernel_sock_timeval tv;
	int err;

	err = sock_copy_user_timeval(&tv, optval, optlen, old);
	if (err)
		return err;
	if (tv.tv_sec < 0 || tv.tv_usec < 0 || tv.tv_usec >= USEC_PER_SEC ||
	    tv.tv_sec >= MAX_SCHEDULE_TIMEOUT / HZ - 1)
		return -ERANGE;
	*timeout = tv.tv_sec * HZ +
		DIV_ROUND_UP((unsigned long)tv.tv_usec, USEC_PER_SEC / HZ);
	if (!*timeout)
		*timeout = 1;
	return 0;
}

/* The option's value is read before lock_sock(): a user buffer may fault
 * for long, and the socket's messages wait on its backlog while the lock
 * is held.
 */
static int gntsock_setsockopt(struct socket *sock, int level, int optname,
			      sockptr_t optval, unsigned int optlen)
{
	struct sock *sk = sock->sk;
	struct gntsock_sock *vsk = gntsock_sk(sk);
	long timeout = 0;
	u64 size = 0;
	u32 polls = 0;
	int err = 0;

	if (level != SOL_GNTSOCK)
		return -ENOPROTOOPT;
	switch (optname) {
	case GNTSOCK_SO_BUSY_POLL:
		if (optlen < sizeof(polls) ||
		    copy_from_sockptr(&polls, optval, sizeof(polls)))
			return -EINVAL;
		if (polls > GNTSOCK_BUSY_POLL_MAX)
			return -EINVAL;
		/* As SO_BUSY_POLL: more than the default (or than the
		 * socket has) takes CAP_NET_ADMIN.
		 */
		if (polls > READ_ONCE(gntsock_busy_poll) &&
		    polls > READ_ONCE(vsk->busy_poll) &&
		    !sockopt_capable(CAP_NET_ADMIN))
			return -EPERM;
		WRITE_ONCE(vsk->busy_poll, polls);
		return 0;
	case GNTSOCK_SO_BUFFER_SIZE:
		if (optlen < sizeof(size) ||
		    copy_from_sockptr(&size, optval, sizeof(size)))
			return -EINVAL;
		if (size < GNTSOCK_BUFFER_SIZE_MIN ||
		    size > GNTSOCK_BUFFER_SIZE_MAX)
			return -EINVAL;
		if (size > READ_ONCE(gntsock_buffer_size_max) &&
		    !sockopt_capable(CAP_NET_ADMIN))
			return -EPERM;
		break;
	case GNTSOCK_SO_CONNECT_TIMEOUT_OLD:
	case GNTSOCK_SO_CONNECT_TIMEOUT_NEW:
		err = gntsock_timeout_from_user(optval, optlen,
						optname == GNTSOCK_SO_CONNECT_TIMEOUT_OLD,
						&timeout);
		if (err)
			return err;
		break;
	default:
		return -ENOPROTOOPT;
	}
	lock_sock(sk);
	if (optname == GNTSOCK_SO_BUFFER_SIZE) {
		vsk->buf_alloc = size;
		vsk->buf_alloc_max = max_t(u32, vsk->buf_alloc_max, size);
		vsk->buf_locked = true;
		gntsock_buf_auto_put(vsk);
		/* Only while the connection is ours: once closed, its ports
		 * may belong to a new one (gntsock_peer_closed()).
		 */
		if (vsk->conn_hashed)
			gntsock_send_ctl(vsk, GNTSOCK_OP_CREDIT_UPDATE, 0);
	} else {
		vsk->connect_timeout = timeout;
	}
	release_sock(sk);
	return 0;
}

static int gntsock_getsockopt(struct socket *sock, int level, int optname,
			      char __user *optval, int __user *optlen)
{
	struct gntsock_sock *vsk = gntsock_sk(sock->sk);
	union {
		int i;
		u64 u;
		struct __kernel_sock_timeval tv;
	} v;
	int len, size;

	if (level != SOL_GNTSOCK)
		return -ENOPROTOOPT;
	if (get_user(len, optlen))
		return -EFAULT;
	memset(&v, 0, sizeof(v));
	switch (optname) {
	case GNTSOCK_SO_PEER_DOMID:
		if (sock->state != SS_CONNECTED)
			return -ENOTCONN;
		v.i = vsk->peer_domid;
		size = sizeof(v.i);
		break;
	case GNTSOCK_SO_BUFFER_SIZE:
		v.u = vsk->buf_alloc;
		size = sizeof(v.u);
		break;
	case GNTSOCK_SO_BUSY_POLL:
		v.i = READ_ONCE(vsk->busy_poll);
		size = sizeof(v.i);
		break;
	case GNTSOCK_SO_CONNECT_TIMEOUT_OLD:
	case GNTSOCK_SO_CONNECT_TIMEOUT_NEW:
		/* The layout the caller's ABI and the option name ask for. */
		size = sock_get_timeout(vsk->connect_timeout, &v,
					optname == GNTSOCK_SO_CONNECT_TIMEOUT_OLD);
		break;
	default:
		return -ENOPROTOOPT;
	}
	if (len < size)
		return -EINVAL;
	if (copy_to_user(optval, &v, size) || put_user(size, optlen))
		return -EFAULT;
	return 0;
}

/* SO_RCVLOWAT, socket lock held by sock_setsockopt(): tell the peer all
 * the room we have, since poll() now waits for that many bytes; and, as
 * TCP does, wake readers that what is queued may satisfy now (a lowered
 * mark: nothing else may come to wake them).
 */
static int gntsock_set_rcvlowat(struct sock *sk, int val)
{
	sock_owned_by_me(sk);
	WRITE_ONCE(sk->sk_rcvlowat, val ? : 1);
	gntsock_credit_update_before_wait(gntsock_sk(sk));
	/* (as poll() decides: SEQPACKET readers wait for whole records) */
	if (sk->sk_type == SOCK_STREAM &&
	    gntsock_sk(sk)->rx_bytes >= (u32)sock_rcvlowat(sk, 0, INT_MAX))
		sk->sk_data_ready(sk);
	return 0;
}

static int gntsock_ioctl(struct socket *sock, unsigned int cmd,
			 unsigned long arg)
{
	struct sock *sk = sock->sk;
	struct gntsock_sock *vsk = gntsock_sk(sk);
	u64 cookie;
	u32 id;
	int n;

	switch (cmd) {
	case GNTSOCK_IOC_REVOKE:
		if (copy_from_user(&cookie, (void __user *)arg, sizeof(cookie)))
			return -EFAULT;
		return gntsock_grant_revoke_cookie(sk, &vsk->grants, cookie);
	case GNTSOCK_IOC_RELEASE:
		if (get_user(id, (u32 __user *)arg))
			return -EFAULT;
		return gntsock_grant_release_id(&vsk->grants, id);
	case SIOCINQ:
		lock_sock(sk);
		n = vsk->rx_bytes;
		release_sock(sk);
		break;
	case SIOCOUTQ:
		lock_sock(sk);
		n = sk->sk_state == TCP_ESTABLISHED ?
			vsk->tx_cnt - vsk->peer_fwd_cnt : 0;
		release_sock(sk);
		break;
	default:
		return -ENOIOCTLCMD;
	}
	return put_user(n, (int __user *)arg);
}

#ifdef CONFIG_COMPAT
/* A 32-bit process: our ioctls take a pointer to a __u64, __u32 or int,
 * laid out alike in both ABIs, so only the pointer needs converting.
 * Others (-ENOIOCTLCMD) go on to the socket layer's generic translation.
 */
static int gntsock_compat_ioctl(struct socket *sock, unsigned int cmd,
				unsigned long arg)
{
	return gntsock_ioctl(sock, cmd, (unsigned long)compat_ptr(arg));
}
#endif

/* mmap(2) of a received grant (grant_map.c). */
static int gntsock_mmap(struct file *file, struct socket *sock,
			struct vm_area_struct *vma)
{
	struct gntsock_sock *vsk = gntsock_sk(sock->sk);

	return gntsock_grant_mmap(sock->sk, &vsk->grants, vma);
}

static const struct proto_ops gntsock_stream_ops = {
	.family = PF_GNTSOCK,
	.owner = THIS_MODULE,
	.release = gntsock_release,
	.bind = gntsock_bind,
	.connect = gntsock_connect,
	.socketpair = sock_no_socketpair,
	.accept = gntsock_accept,
	.getname = gntsock_getname,
	.poll = gntsock_poll,
	.ioctl = gntsock_ioctl,
#ifdef CONFIG_COMPAT
	.compat_ioctl = gntsock_compat_ioctl,
#endif
	.listen = gntsock_listen,
	.shutdown = gntsock_shutdown,
	.setsockopt = gntsock_setsockopt,
	.getsockopt = gntsock_getsockopt,
	.sendmsg = gntsock_sendmsg,
	.recvmsg = gntsock_recvmsg,
	.mmap = gntsock_mmap,
	.set_rcvlowat = gntsock_set_rcvlowat,
};

/* release_sock() calls release_cb: the owner of a socket's lock hands on
 * the messages the links' receive work left on its backlog (sock_deliver.c).
 */
static struct proto gntsock_proto = {
	.name = "AF_GNTSOCK",
	.owner = THIS_MODULE,
	.obj_size = sizeof(struct gntsock_sock),
	.release_cb = gntsock_backlog_release,
};

static int gntsock_create(struct net *net, struct socket *sock, int protocol,
			  int kern)
{
	if (!net_eq(net, &init_net))
		return -EAFNOSUPPORT;
	if (protocol && protocol != PF_GNTSOCK)
		return -EPROTONOSUPPORT;
	if (sock->type != SOCK_STREAM && sock->type != SOCK_SEQPACKET)
		return -ESOCKTNOSUPPORT;
	sock->ops = &gntsock_stream_ops;
	sock->state = SS_UNCONNECTED;
	if (!gntsock_sk_alloc(net, sock, &gntsock_proto, sock->type, GFP_KERNEL,
			      kern))
		return -ENOMEM;
	return 0;
}

static const struct net_proto_family gntsock_family_ops = {
	.family = AF_GNTSOCK,
	.create = gntsock_create,
	.owner = THIS_MODULE,
};

/**
 * gntsock_sock_register() - the socket layer: register AF_GNTSOCK and
 *	its handler with the link layer
 *
 * Before any link is registered.
 *
 * Return: 0 or a negative errno.
 */
int gntsock_sock_register(void)
{
	int err;

	gntsock_link_set_handler(GNTSOCK_USER_SOCK, &gntsock_sock_handler);
	err = proto_register(&gntsock_proto, 0);
	if (err)
		goto err_handler;
	err = sock_register(&gntsock_family_ops);
	if (err) {
		pr_err("gntsock: address family %d is taken by another module\n",
		       AF_GNTSOCK);
		proto_unregister(&gntsock_proto);
		goto err_handler;
	}
	return 0;

err_handler:
	gntsock_link_set_handler(GNTSOCK_USER_SOCK, NULL);
	return err;
}

/**
 * gntsock_sock_unregister() - undo gntsock_sock_register()
 *
 * After every link is gone.
 */
void gntsock_sock_unregister(void)
{
	sock_unregister(AF_GNTSOCK);
	proto_unregister(&gntsock_proto);
	gntsock_link_set_handler(GNTSOCK_USER_SOCK, NULL);
	gntsock_rx_pool_drain();
}
