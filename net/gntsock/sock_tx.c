// SPDX-License-Identifier: GPL-2.0
/*
 * AF_GNTSOCK sendmsg(): STREAM writes in messages of up to the link's
 * largest payload, SOCK_SEQPACKET records as fragments of which the last
 * carries GNTSOCK_RW_EOM, and grants as control messages in order with the
 * data. A writer waits for credit and ring space without holding the
 * socket lock or the link's tx_lock; a non-blocking one never waits for
 * the ring, and poll() says when there is room again.
 */
#include <linux/slab.h>
#include <linux/sched/signal.h>
#include <linux/uio.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/net.h>
#include <net/sock.h>

#include "gntsock.h"
#include "grant.h"
#include "sock.h"

/* Times a non-blocking send tries again after room came while it looked. */
#define GNTSOCK_RING_RETRIES	16

/* A non-blocking send found the link's ring full (a space event was asked
 * for): poll() reports no room until the link tells us of some, so that
 * the sender is not told to try again while nothing changed. Does not
 * wait: only a peer kernel that does not drain its ring makes room late,
 * and a non-blocking sender must not wait for that (it used to wait up to
 * two seconds). lock_sock held.
 * @tries: the send's count of tries again, bounded by GNTSOCK_RING_RETRIES
 * Return: true if the sender is to get EAGAIN; false if room may have come
 * since @kick (try again).
 */
static bool gntsock_ring_blocked(struct gntsock_sock *vsk,
				 struct gntsock_link *link, int kick,
				 unsigned int *tries)
{
	sock_owned_by_me(&vsk->sk);
	WRITE_ONCE(vsk->ring_blocked, true);
	if (gntsock_link_watch_space(link, &vsk->space_watch, kick)) {
		atomic64_inc(&gntsock_stats.tx_ring_blocked);
		return true;
	}
	/* A poll() in another thread may have seen it set and gone to sleep. */
	WRITE_ONCE(vsk->ring_blocked, false);
	vsk->sk.sk_write_space(&vsk->sk);
	return ++*tries > GNTSOCK_RING_RETRIES;
}

/* Runs under the link's tx_lock, a spinlock, so it must not fault: a
 * fault sleeps, takes mmap_lock (inverting mmap_lock -> grant lock ->
 * tx_lock), and may wait for as long as a FUSE daemon or userfaultfd
 * likes. A page not present fails the copy with
 * -EFAULT; the sender faults the buffer in without the lock
 * (gntsock_fault_in_msg()) and tries again.
 */
static int gntsock_copy_from_msg(void *ring_mem, u32 len, void *ctx)
{
	struct msghdr *msg = ctx;
	size_t n;

	pagefault_disable();
	n = copy_from_iter(ring_mem, len, &msg->msg_iter);
	pagefault_enable();
	return n == len ? 0 : -EFAULT;
}

/* Copies of one chunk a stream send may retry after faulting it in. */
#define GNTSOCK_FAULT_RETRIES	16

/* A copy into the ring failed on a page not present: undo the part of
 * the chunk that was copied (a ring walk that wraps copies in two
 * parts), then fault the chunk in without any lock. lock_sock held,
 * dropped and taken again.
 * Return: 0 to try again, -EFAULT if the buffer is bad.
 */
static int gntsock_fault_in_msg(struct sock *sk, struct msghdr *msg,
				size_t before, size_t chunk)
{
	size_t left;

	sock_owned_by_me(sk);
	iov_iter_revert(&msg->msg_iter, before - iov_iter_count(&msg->msg_iter));
	release_sock(sk);
	left = fault_in_iov_iter_readable(&msg->msg_iter, chunk);
	lock_sock(sk);
	return left ? -EFAULT : 0;
}

/* Why a writer cannot go on, or 0. A pending error is reported, not
 * consumed: sendmsg() consumes it only when it returns it (as TCP, a send
 * that moved some bytes returns their count and leaves the error for the
 * next call).
 */
static int gntsock_send_check(struct sock *sk)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);

	if (sk->sk_err)
		return -sk->sk_err;
	/* (its link went down while the lock was owned: the reset waits for
	 * release_sock(), and the link may be up again meanwhile)
	 */
	if (READ_ONCE(vsk->bl_link_down))
		return -ECONNRESET;
	if ((sk->sk_shutdown & SEND_SHUTDOWN) ||
	    (vsk->peer_shutdown & GNTSOCK_SHUT_RCV))
		return -EPIPE;
	if (sk->sk_state != TCP_ESTABLISHED)
		return sk->sk_socket->state == SS_UNCONNECTED && !vsk->link ?
			-ENOTCONN : -EPIPE;
	return 0;
}

/* Longest a SEQPACKET sender waits for ring space in the middle of a
 * record before it gives the connection up.
 */
#define GNTSOCK_RECORD_WAIT	(30 * HZ)

/* Can a writer not go on? Unlike gntsock_send_check(), clears nothing. */
static bool gntsock_send_stopped(struct sock *sk)
{
	return READ_ONCE(sk->sk_err) ||
	       READ_ONCE(gntsock_sk(sk)->bl_link_down) ||
	       READ_ONCE(sk->sk_state) != TCP_ESTABLISHED ||
	       (READ_ONCE(sk->sk_shutdown) & SEND_SHUTDOWN) ||
	       (READ_ONCE(gntsock_sk(sk)->peer_shutdown) & GNTSOCK_SHUT_RCV);
}

struct gntsock_buf_src {
	const u8 *p;
};

static int gntsock_copy_from_buf(void *ring_mem, u32 len, void *ctx)
{
	struct gntsock_buf_src *src = ctx;

	memcpy(ring_mem, src->p, len);
	src->p += len;
	return 0;
}

/* Wait for credit: for a whole SEQPACKET record of @len bytes, or for the
 * first byte of a STREAM send that carries a grant (a grant goes out only
 * when a byte can follow it, grants.rst). lock_sock held.
 */
static int gntsock_wait_credit(struct sock *sk, u32 len, long *timeo)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	struct gntsock_sock *vsk = gntsock_sk(sk);
	u32 charge;
	int err;

	sock_owned_by_me(sk);
	for (;;) {
		err = gntsock_send_check(sk);
		if (err)
			return err;
		charge = 1;
		if (sk->sk_type == SOCK_SEQPACKET) {
			u32 mp = vsk->link->max_payload;

			charge = gntsock_seq_record_charge(len, mp);
			if (charge > vsk->peer_buf_alloc)
				return -EMSGSIZE;
		}
		if (gntsock_peer_credit(vsk) >= charge)
			return 0;
		if (!vsk->credit_requested) {
			vsk->credit_requested = true;
			gntsock_send_ctl(vsk, GNTSOCK_OP_CREDIT_REQUEST, 0);
		}
		if (!*timeo)
			return -EAGAIN;
		if (signal_pending(current))
			return sock_intr_errno(*timeo);
		add_wait_queue(sk_sleep(sk), &wait);
		sk_wait_event(sk, timeo, gntsock_peer_credit(vsk) >= charge ||
			      gntsock_send_stopped(sk), &wait);
		remove_wait_queue(sk_sleep(sk), &wait);
	}
}

/* sendmsg()'s grant cmsg (grant.h): pin and grant, then put the GRANT
 * message in the ring right before the data it travels with. lock_sock held,
 * dropped while pinning: pinning faults the pages in, which may take
 * forever (a FUSE file whose daemon does not answer), and the socket's
 * messages wait on its backlog while the lock is held (issue 12, defect
 * 1). tx_mutex keeps other
 * senders and connect() out meanwhile.
 * Return: 1 if a grant went, 0 if @msg carries none, or a negative errno.
 */
static int gntsock_send_grant(struct sock *sk, struct msghdr *msg, size_t len,
			      long *timeo)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);
	struct gntsock_link *link;
	struct gntsock_msg_hdr h;
	unsigned int retries = 0;
	struct gntsock_gout *g;
	long left;
	int err, kick;

	sock_owned_by_me(sk);
	err = gntsock_send_check(sk);
	if (err)
		return err;
	if (!len)
		return -EINVAL;
	link = vsk->link;
	gntsock_link_hold(link);
	release_sock(sk);
	err = gntsock_grant_prepare(sk, &vsk->grants, link, msg, &g);
	lock_sock(sk);
	gntsock_link_put(link);
	if (err || !g)
		return err;
	err = gntsock_send_check(sk);
	if (!err && vsk->link != link)
		err = -EPIPE;
	if (err) {
		gntsock_grant_abort(g);
		return err;
	}
	for (;;) {
		kick = atomic_read(&vsk->link->tx_kick);
		gntsock_fill_hdr(vsk, &h, GNTSOCK_OP_GRANT);
		err = gntsock_grant_put(vsk->link, &h, g);
		if (err != -ENOSPC)
			break;
		if (!*timeo) {
			/* The grant is given up (nothing went): EAGAIN. */
			if (gntsock_ring_blocked(vsk, vsk->link, kick,
						 &retries)) {
				err = -EAGAIN;
				break;
			}
			continue;
		}
		release_sock(sk);
		left = gntsock_link_wait_space(vsk->link, kick, *timeo, false);
		lock_sock(sk);
		err = left < 0 ? sock_intr_errno(*timeo) : left ? 0 : -EAGAIN;
		if (!err)
			err = gntsock_send_check(sk);
		if (err)
			break;
		if (*timeo)
			*timeo = left;
	}
	if (err) {
		gntsock_grant_abort(g);
		return err;
	}
	gntsock_grant_committed(g);
	return 1;
}

/* SOCK_SEQPACKET: a record is copied in whole first (a bad user buffer
 * fails before anything is sent), waits for credit for all of it, then goes
 * out as fragments of at most the link's max_payload, the last one flagged
 * GNTSOCK_RW_EOM. Records are at most the peer's buffer size (EMSGSIZE).
 * Once the first fragment is out the record is finished whatever happens:
 * only a fatal signal or a peer kernel that does not drain its ring for
 * GNTSOCK_RECORD_WAIT abort it, and then the connection with it.
 */
static int gntsock_seq_sendmsg(struct sock *sk, struct msghdr *msg,
			       size_t len)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);
	struct gntsock_buf_src src;
	struct gntsock_msg_hdr h;
	struct gntsock_link *link;
	unsigned int retries = 0;
	bool granted = false;
	void *kbuf = NULL;
	u32 sent = 0;
	long timeo;
	int err;

	if (len > GNTSOCK_BUFFER_SIZE_MAX)
		return -EMSGSIZE;
	if (len) {
		/* The sender's own memory cgroup pays for a blocked record. */
		kbuf = kvmalloc(len, GFP_KERNEL_ACCOUNT);
		if (!kbuf)
			return -ENOMEM;
		if (!copy_from_iter_full(kbuf, len, &msg->msg_iter)) {
			kvfree(kbuf);
			return -EFAULT;
		}
	}
	lock_sock(sk);
	if (msg->msg_namelen) {
		err = sk->sk_state == TCP_ESTABLISHED ? -EISCONN : -EOPNOTSUPP;
		goto out;
	}
	timeo = sock_sndtimeo(sk, msg->msg_flags & MSG_DONTWAIT);
	err = gntsock_wait_credit(sk, len, &timeo);
	if (err)
		goto out;
	if (msg->msg_controllen) {
		/* The GRANT goes right before the record it travels with. */
		err = gntsock_send_grant(sk, msg, len, &timeo);
		if (err < 0)
			goto out;
		granted = err;
		err = 0;
	}
	link = vsk->link;
	src.p = kbuf;
	/* (for (;;): an empty record is one message, and a retry of it must
	 * not leave the loop)
	 */
	for (;;) {
		u32 chunk = min_t(size_t, len - sent, link->max_payload);
		int kick;
		long left;

		gntsock_fill_hdr(vsk, &h, GNTSOCK_OP_RW);
		h.len = chunk;
		if (sent + chunk == len)
			h.flags = GNTSOCK_RW_EOM |
				  (msg->msg_flags & MSG_EOR ? GNTSOCK_RW_EOR : 0);
		kick = atomic_read(&link->tx_kick);
		err = gntsock_link_send(link, &h, gntsock_copy_from_buf, &src);
		if (err == -ENOSPC && !timeo && !sent && !granted) {
			/* Nothing of the record went yet: EAGAIN. */
			if (gntsock_ring_blocked(vsk, link, kick, &retries)) {
				err = -EAGAIN;
				break;
			}
			continue;
		}
		if (err == -ENOSPC) {
			release_sock(sk);
			left = gntsock_link_wait_space(link, kick,
						       GNTSOCK_RECORD_WAIT,
						       true);
			lock_sock(sk);
			if (left <= 0) {
				/* Half a record cannot stay: abort. */
				if (sk->sk_state == TCP_ESTABLISHED) {
					gntsock_send_ctl(vsk, GNTSOCK_OP_RST, 0);
					gntsock_reset(sk, ECONNRESET);
				}
				err = left ? -EINTR : -ECONNRESET;
				break;
			}
			err = gntsock_send_check(sk);
			if (err)
				break;
			continue;
		}
		if (err == -ECONNRESET && !sk->sk_err)
			gntsock_reset(sk, ECONNRESET);
		if (err)
			break;
		vsk->tx_cnt += gntsock_rw_charge(GNTSOCK_TYPE_SEQPACKET, chunk);
		sent += chunk;
		if (sent >= len)
			break;
	}
out:
	if (err && err == -sk->sk_err)
		sk->sk_err = 0;
	release_sock(sk);
	kvfree(kbuf);
	if (err == -EPIPE && !(msg->msg_flags & MSG_NOSIGNAL))
		send_sig(SIGPIPE, current, 0);
	return err ? err : len;
}

static int gntsock_stream_sendmsg(struct sock *sk, struct msghdr *msg,
				  size_t len)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	struct gntsock_sock *vsk = gntsock_sk(sk);
	struct gntsock_link *link = NULL;
	struct gntsock_msg_hdr h;
	unsigned int ring_retries = 0;
	bool granted = false;
	bool woken = false;	/* by ring space: counts a futile wake-up */
	long saved = 0;
	unsigned int fault_retries = 0;
	size_t total = 0;
	long timeo;
	int err = 0;

	lock_sock(sk);
	if (msg->msg_namelen) {
		err = sk->sk_state == TCP_ESTABLISHED ? -EISCONN : -EOPNOTSUPP;
		goto out;
	}
	timeo = sock_sndtimeo(sk, msg->msg_flags & MSG_DONTWAIT);
	if (msg->msg_controllen) {
		/* Credit first: a send that fails after its grant went
		 * would send the grant again when retried.
		 */
		err = len ? gntsock_wait_credit(sk, 1, &timeo) : 0;
		if (!err)
			err = gntsock_send_grant(sk, msg, len, &timeo);
		if (err < 0)
			goto out;
		granted = err;
		err = 0;
		/* Its first byte must follow: not given up for a full ring
		 * on a non-blocking socket (back to @saved once it went).
		 */
		saved = timeo;
		if (granted && timeo < GNTSOCK_RECORD_WAIT)
			timeo = GNTSOCK_RECORD_WAIT;
	}
	while (total < len) {
		u32 credit, chunk;
		size_t before;
		int kick;

		err = gntsock_send_check(sk);
		if (err)
			break;
		link = vsk->link;
		credit = gntsock_peer_credit(vsk);
		if (!credit) {
			woken = false;
			if (!vsk->credit_requested) {
				vsk->credit_requested = true;
				gntsock_send_ctl(vsk,
						 GNTSOCK_OP_CREDIT_REQUEST, 0);
			}
			if (!timeo) {
				err = -EAGAIN;
				break;
			}
			if (signal_pending(current)) {
				err = sock_intr_errno(timeo);
				break;
			}
			add_wait_queue(sk_sleep(sk), &wait);
			sk_wait_event(sk, &timeo, gntsock_peer_credit(vsk) ||
				      gntsock_send_stopped(sk), &wait);
			remove_wait_queue(sk_sleep(sk), &wait);
			continue;
		}
		chunk = min_t(size_t, len - total, credit);
		chunk = min(chunk, link->max_payload);
		gntsock_fill_hdr(vsk, &h, GNTSOCK_OP_RW);
		h.len = chunk;
		kick = atomic_read(&link->tx_kick);
		before = iov_iter_count(&msg->msg_iter);
		err = gntsock_link_send(link, &h, gntsock_copy_from_msg, msg);
		if (err == -EFAULT) {
			/* Bounded: another thread may unmap the buffer (or
			 * MADV_DONTNEED it) after every fault-in.
			 */
			if (++fault_retries > GNTSOCK_FAULT_RETRIES ||
			    fatal_signal_pending(current))
				break;
			err = gntsock_fault_in_msg(sk, msg, before, chunk);
			if (err)
				break;
			atomic64_inc(&gntsock_stats.tx_faults_retried);
			continue;
		}
		if (err == -ENOSPC && woken)
			atomic64_inc(&gntsock_stats.tx_ring_futile);
		/* Full again: a new space event is requested. */
		woken = false;
		if (err == -ENOSPC) {
			long left;

			/* Credit is there, only the ring is full: a
			 * non-blocking send does not wait for the peer's
			 * kernel to drain it, and poll() says so.
			 */
			if (!timeo) {
				if (gntsock_ring_blocked(vsk, link, kick,
							 &ring_retries)) {
					err = -EAGAIN;
					break;
				}
				continue;
			}
			release_sock(sk);
			left = gntsock_link_wait_space(link, kick, timeo,
						       false);
			lock_sock(sk);
			if (left < 0) {
				err = sock_intr_errno(timeo);
				break;
			}
			woken = left > 0;
			if (timeo)
				timeo = left;
			err = 0;
			continue;
		}
		if (err == -ECONNRESET && !sk->sk_err)
			gntsock_reset(sk, ECONNRESET);
		if (err)
			break;
		vsk->tx_cnt += chunk;
		if (granted && !total)
			timeo = saved;
		total += chunk;
		fault_retries = 0;
	}
out:
	if (granted && !total && err && !sk->sk_err &&
	    sk->sk_state == TCP_ESTABLISHED) {
		/* The grant went, yet not one byte (the peer took its credit
		 * back, or a signal or a full ring stopped us): a retry would
		 * send it twice. The connection ends instead.
		 */
		atomic64_inc(&gntsock_stats.tx_grant_resets);
		gntsock_send_ctl(vsk, GNTSOCK_OP_RST, 0);
		gntsock_reset(sk, ECONNRESET);
		err = -ECONNRESET;
	}
	if (!total && err && err == -sk->sk_err)
		sk->sk_err = 0;
	release_sock(sk);
	if (total)
		return total;
	if (err == -EPIPE && !(msg->msg_flags & MSG_NOSIGNAL))
		send_sig(SIGPIPE, current, 0);
	return err;
}

/**
 * gntsock_sendmsg() - sendmsg() of AF_GNTSOCK sockets
 * @sock: the socket
 * @msg: the data, its control messages (grants) and flags
 * @len: bytes in @msg
 *
 * One sender at a time (tx_mutex), so a record is never interleaved with
 * another writer's bytes; with MSG_DONTWAIT it does not wait for that
 * either.
 *
 * Return: bytes sent, or a negative errno (-EAGAIN with MSG_DONTWAIT
 * while another sender holds tx_mutex).
 */
int gntsock_sendmsg(struct socket *sock, struct msghdr *msg,
		    size_t len)
{
	struct sock *sk = sock->sk;
	struct gntsock_sock *vsk = gntsock_sk(sk);
	int ret;

	if (msg->msg_flags & MSG_OOB)
		return -EOPNOTSUPP;
	if (msg->msg_flags & MSG_DONTWAIT) {
		if (!mutex_trylock(&vsk->tx_mutex))
			return -EAGAIN;
	} else if (mutex_lock_interruptible(&vsk->tx_mutex)) {
		return -ERESTARTSYS;
	}
	if (sk->sk_type == SOCK_SEQPACKET)
		ret = gntsock_seq_sendmsg(sk, msg, len);
	else
		ret = gntsock_stream_sendmsg(sk, msg, len);
	mutex_unlock(&vsk->tx_mutex);
	return ret;
}
