/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The AF_GNTSOCK socket layer's own header: struct gntsock_sock and what
 * its files share. Nothing outside the socket layer includes it; the link
 * layer reaches the socket layer only through struct gntsock_link_handler
 * (gntsock.h).
 *
 *   af_gntsock.c    the address family, proto_ops
 *   sock.c          socket objects: alloc, link, reset, destruct
 *   sock_table.c    bound and connected tables
 *   sock_credit.c   credit, control messages, buffer growth
 *   sock_deliver.c  messages from the links (the link handler): to the
 *                   socket's owner, or to its backlog
 *   sock_recv.c     a message for a socket whose lock we own
 *   sock_tx.c       sendmsg()
 *   sock_rx.c       recvmsg()
 *   rxbuf.c         received payloads and their page pool
 */
#ifndef _GNTSOCK_SOCK_H
#define _GNTSOCK_SOCK_H

#include <linux/hashtable.h>
#include <net/sock.h>

#include "gntsock.h"
#include "grant.h"

/**
 * struct gntsock_rxbuf - one received RW payload waiting for the reader
 * @node: entry in gntsock_sock.rx_queue
 * @grant: a grant that arrived here, ordered with the data (@len 0)
 * @len: payload bytes (zero for an empty SEQPACKET record or a grant)
 * @off: bytes already read
 * @cap: bytes @data can hold: a STREAM message that fits after @len is
 *	appended (gntsock_rxbuf_append()); 0 for paged payloads
 * @truesize: memory the entry takes, charged to the socket's rx_mem
 * @flags: the message's GNTSOCK_RW_* flags (SEQPACKET record boundaries)
 * @npages: 0: the payload is in @data; else it is in @pages, one page each
 *	%PAGE_SIZE bytes (see gntsock_rxbuf_alloc())
 * @pooled: @pages may go back to the page pool (not charged to a memcg)
 * @data: the payload, small ones
 * @pages: the payload, larger ones
 *
 * One entry per received message, in arrival order (small STREAM messages
 * share one); anything else a message carries is to be kept in the entry
 * too, so that it stays with its bytes.
 */
struct gntsock_rxbuf {
	struct list_head node;
	struct gntsock_gin *grant;
	u32 len;
	u32 off;
	u32 cap;
	u32 truesize;
	u16 flags;
	u16 npages;
	bool pooled;
	union {
		DECLARE_FLEX_ARRAY(u8, data);
		DECLARE_FLEX_ARRAY(struct page *, pages);
	};
};

/* A STREAM payload smaller than this gets a buffer of this size (header
 * included), which the next small messages fill: a peer sending one byte
 * per message then makes this socket hold about one byte of memory per
 * byte of credit, not a 64-byte slab object per byte.
 */
#define GNTSOCK_RXBUF_SMALL		512U
/* ... that is, room for this much payload */
#define GNTSOCK_RXBUF_ROOM	\
	(GNTSOCK_RXBUF_SMALL - offsetof(struct gntsock_rxbuf, data))

struct gntsock_rxbuf_fill {
	struct gntsock_rxbuf *b;
	u32 pos;
};

/**
 * struct gntsock_bl_msg - a message on a socket's backlog (sock_deliver.c)
 * @node: entry in the socket's @backlog
 * @link: the link it came on, reference held
 * @gen: @link's generation (its rings) when it came
 * @h: the message; op %GNTSOCK_OP_INVALID: none, only the @ctl part
 * @b: RW: its payload, out of the ring (STREAM: with the payloads of the
 *	RW messages that followed it appended)
 * @gin: GRANT: its record, made in ring order (grant_recv.c), so that the
 *	grant layer's REVOKE and link-down find it; only its place in the
 *	receive queue waits here
 * @truesize: memory this entry holds (counted in the socket's @bl_mem)
 * @ctl: the last header-only message that followed @h (credit fields)
 * @ctl_ops: BIT(op) of the header-only messages that followed @h
 * @ctl_shut: %GNTSOCK_SHUT_* of the SHUTDOWN messages among them
 * @ctl_bad_type: one of them had a type other than the socket's
 * @ctl_zero: zero-length STREAM RW messages among them
 *
 * Header-only messages (credit updates and requests, SHUTDOWN, zero-length
 * STREAM data) are merged into the entry before them (or, with none, into
 * the socket's @bl_head), so that a peer sending them without end cannot
 * grow a backlog.
 */
struct gntsock_bl_msg {
	struct list_head node;
	struct gntsock_link *link;
	unsigned int gen;
	struct gntsock_msg_hdr h;
	struct gntsock_rxbuf *b;
	struct gntsock_gin *gin;
	u32 truesize;
	struct gntsock_msg_hdr ctl;
	u16 ctl_ops;
	u8 ctl_shut;
	bool ctl_bad_type;
	u32 ctl_zero;
};

/**
 * struct gntsock_rx_src - where a message being handed to a socket comes
 *	from (sock_recv.c)
 * @b: RW: its payload, out of the ring (the callee takes it); NULL: in the
 *	ring
 * @gin: GRANT: its record, already made (the callee takes its queue
 *	entry's reference); NULL: the payload is in the ring
 * @zero: RW: the zero-length STREAM messages it stands for (0: one)
 * @batch: the link's receive work hands it on (rx_lock held): wake-ups wait
 *	for the end of its batch
 */
struct gntsock_rx_src {
	struct gntsock_rxbuf *b;
	struct gntsock_gin *gin;
	u32 zero;
	bool batch;
};

/**
 * struct gntsock_sock - an AF_GNTSOCK socket
 * @sk: must be first
 * @bound: @local_port is ours (in the bound table, or a child's)
 * @local_port: our port
 * @peer_domid: connected or connecting peer
 * @peer_port: its port
 * @link: link to @peer_domid, reference held
 * @bind_node: entry in gntsock_bound (not for accepted children)
 * @conn_node: entry in gntsock_conn while connecting or connected
 * @conn_hashed: @conn_node is in the table
 * @rx_queue: received payloads (struct gntsock_rxbuf), under lock_sock
 * @rx_bytes: bytes in @rx_queue
 * @rx_msgs: SEQPACKET: complete records in @rx_queue
 * @rx_mem: memory the entries of @rx_queue take (struct gntsock_rxbuf
 *	truesize), under lock_sock
 * @rx_cnt: credit the peer used: gntsock_rw_charge() of every RW message
 *	received, free running (@rx_cnt - @fwd_cnt is what we hold)
 * @buf_alloc: receive buffer advertised to the peer
 * @buf_alloc_max: the largest @buf_alloc ever advertised on this connection:
 *	the peer may still use credit it was given before a shrink
 * @fwd_cnt: bytes our reader consumed
 * @last_fwd_cnt: @fwd_cnt as last told to the peer
 * @peer_buf_alloc: the peer's receive buffer
 * @peer_fwd_cnt: bytes the peer's reader consumed
 * @tx_cnt: bytes we sent
 * @credit_requested: a CREDIT_REQUEST is outstanding
 * @peer_wants_credit: the peer asked for credit; send an update as soon as
 *	our reader consumed anything
 * @credit_starved: the peer's writer asked for credit since our reader last
 *	found nothing queued (gntsock_buf_grow())
 * @buf_locked: GNTSOCK_SO_BUFFER_SIZE was set: the buffer never grows
 * @buf_auto: bytes @buf_alloc grew on its own, charged to the link's budget
 * @wake_node: entry in the link's rx_wakes while @wake_pending
 * @wake_pending: GNTSOCK_WAKE_* owed to this socket's waiters at the end of
 *	the rx work's batch (gntsock_sock_wake()), under the link's rx_lock
 * @peer_shutdown: GNTSOCK_SHUT_* the peer announced
 * @accept_queue: listener: children not yet accepted
 * @accept_node: child: entry in its listener's @accept_queue
 * @connect_timeout: jiffies connect() waits
 * @busy_poll: looks at the link's rx ring a blocking reader makes before it
 *	sleeps (GNTSOCK_SO_BUSY_POLL); 0: none
 * @tx_mutex: one sender at a time, so a record is never interleaved with
 *	another writer's bytes; taken before lock_sock()
 * @grants: grants sent and received (grant.h)
 * @space_watch: on the link's list while a non-blocking send found the
 *	ring full (gntsock_ring_blocked())
 * @ring_blocked: poll() reports no room until the link says there is
 * @backlog: messages the receive work left for the owner of the socket's
 *	lock (struct gntsock_bl_msg, sock_deliver.c); this and the @bl_
 *	fields under sk_lock.slock. The counts are of one ownership: they
 *	are reset when the owner has handed everything on
 * @bl_head: header-only messages that came while @backlog was empty (its
 *	@link and @ctl part only)
 * @bl_charge: credit the RW messages put on @backlog use
 * @bl_mem: memory the entries put on @backlog take
 * @bl_requests: REQUESTs put on a listener's @backlog
 * @bl_ctl_rounds: rounds of handing on that found only @bl_head
 * @bl_response: a RESPONSE is on @backlog
 * @bl_closed: an RST is on @backlog, or @bl_err is set: what comes next
 *	is handled as for a connection we do not have
 * @bl_err: the owner resets the connection with this errno as it lets go
 *	(a message that could not be kept; the link went down)
 * @bl_link_down: the link went down while the lock was owned (@bl_err)
 */
struct gntsock_sock {
	struct sock sk;
	bool bound;
	u32 local_port;
	u32 peer_domid;
	u32 peer_port;
	struct gntsock_link *link;
	struct hlist_node bind_node;
	struct hlist_node conn_node;
	bool conn_hashed;
	struct list_head rx_queue;
	u32 rx_bytes;
	u32 rx_msgs;
	u32 rx_mem;
	u32 rx_cnt;
	u32 buf_alloc;
	u32 buf_alloc_max;
	u32 fwd_cnt;
	u32 last_fwd_cnt;
	u32 peer_buf_alloc;
	u32 peer_fwd_cnt;
	u32 tx_cnt;
	bool credit_requested;
	bool peer_wants_credit;
	bool credit_starved;
	bool buf_locked;
	u32 buf_auto;
	struct list_head wake_node;
	u8 wake_pending;
	u8 peer_shutdown;
	struct list_head accept_queue;
	struct list_head accept_node;
	long connect_timeout;
	u32 busy_poll;
	struct mutex tx_mutex;		/* one sender */
	struct gntsock_grants grants;
	struct gntsock_space_watch space_watch;
	bool ring_blocked;
	struct list_head backlog;
	struct gntsock_bl_msg bl_head;
	u32 bl_charge;
	u32 bl_mem;
	u32 bl_requests;
	u32 bl_ctl_rounds;
	bool bl_response;
	bool bl_closed;
	bool bl_link_down;
	int bl_err;
};

#define GNTSOCK_EPHEMERAL_MIN	49152U
#define GNTSOCK_EPHEMERAL_MAX	0x7fffffffU

static inline struct gntsock_sock *gntsock_sk(struct sock *sk)
{
	return container_of(sk, struct gntsock_sock, sk);
}

#define GNTSOCK_WAKE_READ	1
#define GNTSOCK_WAKE_WRITE	2

extern spinlock_t gntsock_table_lock;
extern DECLARE_HASHTABLE(gntsock_bound, 8);
extern DECLARE_HASHTABLE(gntsock_conn, 8);
extern const struct gntsock_link_handler gntsock_sock_handler;

/* sock.c */
void gntsock_set_link(struct gntsock_sock *vsk,
		      struct gntsock_link *link);
void gntsock_purge_rx(struct gntsock_sock *vsk);
void gntsock_reset(struct sock *sk, int err);
struct sock *gntsock_sk_alloc(struct net *net, struct socket *sock,
			      struct proto *prot, int type, gfp_t gfp,
			      int kern);
void gntsock_sk_memcg_inherit(struct sock *child, struct sock *listener);
void gntsock_peer_closed(struct sock *sk);

/* sock_table.c */
struct gntsock_sock *gntsock_find_bound(u32 port);
struct gntsock_sock *gntsock_find_conn(struct gntsock_link *link,
				       u32 local_port, u32 peer_port);
int gntsock_conn_hash(struct gntsock_sock *vsk);
void gntsock_conn_unhash(struct gntsock_sock *vsk);
int gntsock_do_bind(struct gntsock_sock *vsk, u32 port);
void gntsock_unbind(struct gntsock_sock *vsk);

/* sock_credit.c */
void gntsock_buf_auto_put(struct gntsock_sock *vsk);
u32 gntsock_peer_credit(struct gntsock_sock *vsk);
u16 gntsock_wire_type(const struct sock *sk);
void gntsock_fill_hdr(struct gntsock_sock *vsk,
		      struct gntsock_msg_hdr *h, u16 op);
int gntsock_send_ctl(struct gntsock_sock *vsk, u16 op, u16 flags);
void gntsock_reply_rst(struct gntsock_link *link,
		       const struct gntsock_msg_hdr *in);
void gntsock_maybe_credit_update(struct gntsock_sock *vsk);
void gntsock_buf_grow(struct gntsock_sock *vsk);
void gntsock_credit_update_before_wait(struct gntsock_sock *vsk);
bool gntsock_update_credit(struct gntsock_sock *vsk,
			   const struct gntsock_msg_hdr *h);

/* rxbuf.c */
void gntsock_rx_pool_drain(void);
size_t gntsock_rxbuf_copy(struct gntsock_rxbuf *b, u32 off, size_t n,
			  struct iov_iter *to);
int gntsock_fill_rxbuf(void *src, u32 len, void *ctx);
struct gntsock_rxbuf *gntsock_rxbuf_new(struct sock *sk, u32 len, u32 min);
void gntsock_rxbuf_delete(struct gntsock_rxbuf *b);
struct gntsock_rxbuf *gntsock_rxbuf_alloc(struct gntsock_sock *vsk,
					  u32 len, u32 min);
void gntsock_rxbuf_adopt(struct gntsock_sock *vsk, struct gntsock_rxbuf *b);
void gntsock_rxbuf_unaccount(struct gntsock_sock *vsk,
			     struct gntsock_rxbuf *b);
void gntsock_rxbuf_free(struct gntsock_sock *vsk,
			struct gntsock_rxbuf *b);
struct gntsock_bl_msg *gntsock_bl_msg_new(struct gntsock_link *link,
					  struct sock *sk,
					  const struct gntsock_msg_hdr *h);
void gntsock_bl_msg_free(struct gntsock_bl_msg *m);
void gntsock_backlog_purge(struct gntsock_sock *vsk);

/* sock_recv.c */
void gntsock_sock_recv_locked(struct gntsock_link *link, struct sock *sk,
			      const struct gntsock_msg_hdr *h,
			      const struct gntsock_rx_src *src);
void gntsock_sock_recv_request(struct gntsock_link *link,
			       struct sock *listener,
			       const struct gntsock_msg_hdr *h);
void gntsock_sock_recv_ctl(struct sock *sk, const struct gntsock_bl_msg *m);
void gntsock_sock_recv_noconn(struct gntsock_link *link,
			      const struct gntsock_msg_hdr *h,
			      const struct gntsock_rx_src *src);
void gntsock_sock_recv_stale(struct gntsock_link *link,
			     const struct gntsock_msg_hdr *h,
			     const struct gntsock_rx_src *src);
void gntsock_sock_wake_flush(struct gntsock_link *link);

/* sock_deliver.c */
void gntsock_backlog_release(struct sock *sk);

/* sock_tx.c */
int gntsock_sendmsg(struct socket *sock, struct msghdr *msg,
		    size_t len);

/* sock_rx.c */
int gntsock_recvmsg(struct socket *sock, struct msghdr *msg,
		    size_t len, int flags);

#endif /* _GNTSOCK_SOCK_H */
