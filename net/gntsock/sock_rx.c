// SPDX-License-Identifier: GPL-2.0
/*
 * AF_GNTSOCK recvmsg(): STREAM bytes from the socket's queue, SOCK_SEQPACKET
 * one whole record per call, grants as cmsgs once their first byte is
 * read. No user page fault is taken under the socket lock: copies run with
 * faults disabled and the buffer is faulted in after release_sock().
 */
#include <linux/slab.h>
#include <linux/sched/signal.h>
#include <linux/uio.h>
#include <linux/pagemap.h>
#include <linux/net.h>
#include <net/sock.h>

#include "gntsock.h"
#include "grant.h"
#include "sock.h"

/* Receive copies of one call that may be retried after a fault-in. */
#define GNTSOCK_RX_FAULT_RETRIES	16

/* A copy to the reader's buffer stopped at a page not present: fault up
 * to @n bytes of it in without the socket lock. lock_sock held, dropped
 * and taken again; the caller looks at the queue anew.
 * Return: 0 to copy again, -EFAULT if the buffer is bad.
 */
static int gntsock_rx_fault_in(struct sock *sk, struct msghdr *msg, size_t n)
{
	size_t left;

	sock_owned_by_me(sk);
	atomic64_inc(&gntsock_stats.rx_faults_retried);
	release_sock(sk);
	left = fault_in_iov_iter_writeable(&msg->msg_iter, n);
	lock_sock(sk);
	return left == n ? -EFAULT : 0;
}

static bool gntsock_rx_done(struct sock *sk)
{
	return sk->sk_err || sk->sk_state != TCP_ESTABLISHED ||
	       (sk->sk_shutdown & RCV_SHUTDOWN) ||
	       (gntsock_sk(sk)->peer_shutdown & GNTSOCK_SHUT_SEND);
}

/* A reader about to sleep: 0 to sleep, 1 if no more data can come, or a
 * negative errno (pending socket error, would block, signal).
 */
static int gntsock_rx_wait_check(struct sock *sk, long timeo)
{
	if (sk->sk_err)
		return sock_error(sk);
	if (gntsock_rx_done(sk))
		return 1;
	if (!timeo)
		return -EAGAIN;
	if (signal_pending(current))
		return sock_intr_errno(timeo);
	return 0;
}

/* Take the grant entry @b off @vsk's queue onto @granted, whose cmsgs
 * are written once the socket is released (gntsock_grants_deliver()).
 * lock_sock held.
 */
static void gntsock_grant_take(struct gntsock_sock *vsk,
			       struct gntsock_rxbuf *b,
			       struct list_head *granted)
{
	sock_owned_by_me(&vsk->sk);
	list_move_tail(&b->node, granted);
	gntsock_rxbuf_unaccount(vsk, b);
}

/* The cmsgs of the grants a recvmsg() took (gntsock_grant_take()), after
 * release_sock(): writing them may fault and sleep for as long as the
 * reader's control buffer makes it (a FUSE or userfaultfd page) without
 * holding lock_sock(), under which the socket's messages wait on its
 * backlog.
 */
static void gntsock_grants_deliver(struct list_head *granted,
				   struct msghdr *msg)
{
	struct gntsock_rxbuf *b, *tmp;

	list_for_each_entry_safe(b, tmp, granted, node) {
		list_del(&b->node);
		gntsock_grant_in_deliver(b->grant, msg);
		kvfree(b);	/* a grant's entry has no pages */
	}
}

/* Copy up to @len queued bytes; consume them unless peeking. A grant is
 * delivered (as a cmsg) only before any byte of this call: it goes to
 * @granted, *@stop is set when a grant ends what this call may return,
 * *@fault when the reader's buffer stopped the copy (the bytes before it
 * count).
 */
static size_t gntsock_copy_rx(struct gntsock_sock *vsk, struct msghdr *msg,
			      size_t len, bool peek, size_t done, bool *stop,
			      bool *fault, struct list_head *granted)
{
	struct gntsock_rxbuf *b, *tmp;
	unsigned int grants = 0;
	size_t copied = 0, c;

	list_for_each_entry_safe(b, tmp, &vsk->rx_queue, node) {
		size_t n = min_t(size_t, len - copied, b->len - b->off);

		if (b->grant) {
			if (peek)
				continue;
			if (copied || done) {
				*stop = true;
				break;
			}
			grants++;	/* delivered below, once the bytes are out */
			continue;
		}

		if (!n)
			break;
		c = gntsock_rxbuf_copy(b, b->off, n, &msg->msg_iter);
		copied += c;
		if (!peek) {
			b->off += c;
			vsk->rx_bytes -= c;
			vsk->fwd_cnt += c;
			if (b->off == b->len) {
				list_del(&b->node);
				gntsock_rxbuf_free(vsk, b);
			}
		}
		if (c != n) {
			*fault = true;
			break;
		}
		if (copied == len)
			break;
	}
	/* The grants came before the bytes, so they head the queue. Without a
	 * byte (its data not here yet, or a fault) they wait: a call that
	 * returns nothing, EAGAIN or EFAULT must not take one (a grant has at
	 * least one byte of data, grants.rst).
	 */
	while (copied && grants--)
		gntsock_grant_take(vsk, list_first_entry(&vsk->rx_queue,
							 struct gntsock_rxbuf,
							 node), granted);
	return copied;
}

/* SOCK_SEQPACKET: one whole record per call. Bytes beyond @len are
 * discarded with MSG_TRUNC set in msg_flags; with MSG_TRUNC in @flags the
 * record's real length is returned, as for vsock. A bad user buffer gives
 * EFAULT and leaves the record queued. The record's grant goes to
 * @granted. lock_sock held.
 */
static int gntsock_seq_recvmsg(struct sock *sk, struct msghdr *msg,
			       size_t len, int flags, struct list_head *granted)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	struct gntsock_sock *vsk = gntsock_sk(sk);
	struct gntsock_rxbuf *b, *tmp;
	size_t copied = 0, rec = 0;
	bool eor = false;
	unsigned int faults = 0;
	u32 charge = 0;
	long timeo;
	int err = 0;
	size_t c;

	sock_owned_by_me(sk);
	timeo = sock_rcvtimeo(sk, flags & MSG_DONTWAIT);
again:
	add_wait_queue(sk_sleep(sk), &wait);
	while (!vsk->rx_msgs) {
		err = gntsock_rx_wait_check(sk, timeo);
		if (err) {
			err = min(err, 0);
			break;
		}
		sk_wait_event(sk, &timeo, vsk->rx_msgs || gntsock_rx_done(sk),
			      &wait);
	}
	remove_wait_queue(sk_sleep(sk), &wait);
	if (!vsk->rx_msgs)
		return err;

	list_for_each_entry(b, &vsk->rx_queue, node) {
		size_t n = min_t(size_t, len - copied, b->len);

		if (b->grant)	/* delivered below, once the bytes are out */
			continue;
		c = n ? gntsock_rxbuf_copy(b, 0, n, &msg->msg_iter) : 0;
		copied += c;
		if (c != n) {
			/* The record stays queued; copy it whole again. */
			iov_iter_revert(&msg->msg_iter, copied);
			if (++faults > GNTSOCK_RX_FAULT_RETRIES)
				return -EFAULT;
			err = gntsock_rx_fault_in(sk, msg,
						  min_t(size_t, len,
							vsk->rx_bytes));
			if (err)
				return err;
			copied = 0;
			rec = 0;
			goto again;
		}
		rec += b->len;
		if (b->flags & GNTSOCK_RW_EOM) {
			eor = b->flags & GNTSOCK_RW_EOR;
			break;
		}
	}
	if (!(flags & MSG_PEEK)) {
		list_for_each_entry_safe(b, tmp, &vsk->rx_queue, node) {
			bool last = b->flags & GNTSOCK_RW_EOM;

			if (b->grant) {
				/* Sent right before the record's bytes. */
				gntsock_grant_take(vsk, b, granted);
				continue;
			}
			charge += gntsock_rw_charge(GNTSOCK_TYPE_SEQPACKET,
						    b->len);
			list_del(&b->node);
			gntsock_rxbuf_free(vsk, b);
			if (last)
				break;
		}
		vsk->rx_bytes -= rec;
		vsk->fwd_cnt += charge;
		vsk->rx_msgs--;
		gntsock_maybe_credit_update(vsk);
	}
	if (rec > len)
		msg->msg_flags |= MSG_TRUNC;
	if (eor)
		msg->msg_flags |= MSG_EOR;
	return flags & MSG_TRUNC ? rec : copied;
}

struct gntsock_poll_ctx {
	struct sock *sk;
	unsigned long end;	/* jiffies the reader's timeout ends, or 0 */
};

/* Busy-polling: anything for the reader to do, or its timeout over? Read
 * without the socket's lock, as a hint: the caller looks again under it.
 * (jiffies is a memory read, not a clock reading.)
 */
static bool gntsock_rx_poll_done(void *ctx)
{
	struct gntsock_poll_ctx *c = ctx;
	struct sock *sk = c->sk;
	struct gntsock_sock *vsk = gntsock_sk(sk);

	if (c->end && time_after_eq(jiffies, c->end))
		return true;
	return READ_ONCE(vsk->rx_bytes) || gntsock_rx_done(sk);
}

/* A blocking reader about to sleep: look at the link's ring first, up to
 * GNTSOCK_SO_BUSY_POLL times (gntsock_link_rx_poll()), and no longer than
 * its timeout, which the time spent polling comes off. lock_sock held,
 * dropped while polling (the rx path takes it to queue our data).
 * Return: true if the reader has something to do now.
 */
static bool gntsock_rx_busy_poll(struct sock *sk, long *timeo)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);
	struct gntsock_link *link = vsk->link;
	u32 polls = READ_ONCE(vsk->busy_poll);
	struct gntsock_poll_ctx c = { .sk = sk };
	unsigned long start = jiffies;
	bool ret;

	sock_owned_by_me(sk);
	if (!polls || !link || link->loopback ||
	    READ_ONCE(link->state) != GNTSOCK_LINK_CONNECTED)
		return false;
	if (*timeo != MAX_SCHEDULE_TIMEOUT)
		c.end = (start + *timeo) ? : 1;
	gntsock_link_hold(link);
	release_sock(sk);
	ret = gntsock_link_rx_poll(link, polls, gntsock_rx_poll_done, &c);
	lock_sock(sk);
	gntsock_link_put(link);
	if (*timeo != MAX_SCHEDULE_TIMEOUT)
		*timeo = max_t(long, *timeo - (long)(jiffies - start), 0);
	return ret;
}

/**
 * gntsock_recvmsg() - recvmsg() of AF_GNTSOCK sockets
 * @sock: the socket
 * @msg: where the data goes; grants go to its control messages
 * @len: bytes wanted at most
 * @flags: MSG_* (MSG_PEEK, MSG_WAITALL, MSG_DONTWAIT, MSG_TRUNC,
 *	MSG_ERRQUEUE for the grant error queue)
 *
 * STREAM: bytes from the queue; it waits until it has SO_RCVLOWAT of them
 * (@len with MSG_WAITALL). SOCK_SEQPACKET: one whole record.
 *
 * Return: bytes received (a record's real length with MSG_TRUNC), 0 at
 * the end of the stream, or a negative errno.
 */
int gntsock_recvmsg(struct socket *sock, struct msghdr *msg,
		    size_t len, int flags)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	struct sock *sk = sock->sk;
	struct gntsock_sock *vsk = gntsock_sk(sk);
	bool peek = flags & MSG_PEEK;
	LIST_HEAD(granted);
	unsigned int faults = 0;
	size_t copied = 0, want;
	int target, err = 0, n;
	bool stop = false, polled = false;
	long timeo;
	u64 t0;

	if (flags & MSG_OOB)
		return -EOPNOTSUPP;
	if (flags & MSG_ERRQUEUE)
		return gntsock_grant_recv_errqueue(sk, &vsk->grants, msg);
	lock_sock(sk);
	if (sk->sk_state == TCP_LISTEN ||
	    (sock->state == SS_UNCONNECTED && list_empty(&vsk->rx_queue) &&
	     !sk->sk_err && !vsk->link)) {
		err = -ENOTCONN;
		goto out;
	}
	if (sk->sk_type == SOCK_SEQPACKET) {
		err = gntsock_seq_recvmsg(sk, msg, len, flags, &granted);
		goto out;
	}
	if (!len)
		goto out;
	timeo = sock_rcvtimeo(sk, flags & MSG_DONTWAIT);
	target = sock_rcvlowat(sk, flags & MSG_WAITALL, len);
	add_wait_queue(sk_sleep(sk), &wait);
	while (copied < len) {
		/* (a grant queued without its bytes waits for them) */
		if (vsk->rx_bytes) {
			bool fault = false;

			t0 = gntsock_stat_clock();
			n = gntsock_copy_rx(vsk, msg, len - copied, peek,
					    copied, &stop, &fault, &granted);
			if (t0)
				atomic64_add(ktime_get_ns() - t0,
					     &gntsock_stats.rx_user_ns);
			atomic64_add(n, &gntsock_stats.rx_user_bytes);
			copied += n;
			if (n && !peek) {
				faults = 0;	/* it moves: a new budget */
				polled = false;
			}
			/* Fault the page in even with @target met: a reader
			 * that reuses its buffer would otherwise stop at the
			 * same absent page on every call.
			 */
			if (fault) {
				if (peek) {	/* a peek starts over */
					iov_iter_revert(&msg->msg_iter, n);
					copied -= n;
				}
				want = min_t(size_t, len - copied,
					     vsk->rx_bytes);
				err = ++faults > GNTSOCK_RX_FAULT_RETRIES ?
				      -EFAULT :
				      gntsock_rx_fault_in(sk, msg, want);
				/* (the socket was let go meanwhile: what is
				 * queued now may not follow what we have)
				 */
				if (err || copied >= target)
					break;
				continue;
			}
			if (peek || stop || copied >= target)
				break;
			continue;
		}
		/* Nothing queued: did the buffer hold the writer back? */
		if (!peek)
			gntsock_buf_grow(vsk);
		if (copied >= target)
			break;
		err = gntsock_rx_wait_check(sk, timeo);
		if (err) {
			err = min(err, 0);
			break;
		}
		gntsock_maybe_credit_update(vsk);
		/* Once per wait: polling again finds what this found. */
		if (!peek && !polled) {
			polled = true;
			if (gntsock_rx_busy_poll(sk, &timeo))
				continue;
		}
		sk_wait_event(sk, &timeo, vsk->rx_bytes || gntsock_rx_done(sk),
			      &wait);
	}
	remove_wait_queue(sk_sleep(sk), &wait);
	if (copied && !peek)
		gntsock_maybe_credit_update(vsk);
out:
	release_sock(sk);
	gntsock_grants_deliver(&granted, msg);
	return copied ? copied : err;
}
