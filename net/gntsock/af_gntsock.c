// SPDX-License-Identifier: GPL-2.0
/*
 * AF_GNTSOCK socket layer: addressing, the connection state machine and
 * credit-based flow control, on top of the links in link.c.
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
#include <linux/slab.h>
#include <linux/hashtable.h>
#include <linux/random.h>
#include <linux/sched/signal.h>
#include <linux/uio.h>
#include <linux/poll.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/sizes.h>
#include <linux/siphash.h>
#include <linux/net.h>
#include <linux/memcontrol.h>
#include <linux/sched/mm.h>
#include <linux/sockios.h>
#include <linux/seq_file.h>
#include <asm/ioctls.h>
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

/* Received payloads above this size are kept in order-0 pages: a 64 KiB
 * message in one piece was a kvmalloc() of 17 pages, an order-5 page
 * allocation that often fell back to vmalloc(), whose page-table updates
 * and TLB flushes are hypercalls in a PV guest.
 */
static bool gntsock_rx_page_bufs = true;
module_param_named(rx_page_bufs, gntsock_rx_page_bufs, bool, 0644);
MODULE_PARM_DESC(rx_page_bufs,
		 "keep received payloads over 2 KiB in single pages, never vmalloc (default Y)");

#define GNTSOCK_RXBUF_INLINE_MAX	2048U

/* A STREAM payload smaller than this gets a buffer of this size (header
 * included), which the next small messages fill: a peer sending one byte
 * per message then makes this socket hold about one byte of memory per
 * byte of credit, not a 64-byte slab object per byte.
 */
#define GNTSOCK_RXBUF_SMALL		512U

/* GNTSOCK_SO_BUFFER_SIZE above this (sysctl net.gntsock.buffer_size_max,
 * bytes) needs CAP_NET_ADMIN, as SO_RCVBUFFORCE above rmem_max: the peer
 * may make the socket hold that much memory.
 */
unsigned int gntsock_buffer_size_max = 1048576;

/* Receive buffer growth (STREAM): see gntsock_buf_grow(). */
static unsigned int gntsock_buf_auto_max = 1048576;
module_param_named(buf_auto_max, gntsock_buf_auto_max, uint, 0644);
MODULE_PARM_DESC(buf_auto_max,
		 "bytes: the receive buffer a STREAM socket grows to on its own, and what the growth of all sockets of one link may add up to (default 1048576; at most 16 MiB; 262144 or less: no growth)");

/* Freed rx buffer pages are kept for reuse, up to a ring's worth (1 MiB):
 * a fresh page costs the page allocator and, with init_on_alloc (Debian's
 * default), clearing it: one more pass over every received byte.
 */
#define GNTSOCK_RX_POOL_MAX	256U

static LIST_HEAD(gntsock_rx_pool);
static DEFINE_SPINLOCK(gntsock_rx_pool_lock);
static unsigned int gntsock_rx_pool_len;

static struct page *gntsock_rx_page_get(void)
{
	struct page *pg;

	spin_lock_bh(&gntsock_rx_pool_lock);
	pg = list_first_entry_or_null(&gntsock_rx_pool, struct page, lru);
	if (pg) {
		list_del(&pg->lru);
		gntsock_rx_pool_len--;
	}
	spin_unlock_bh(&gntsock_rx_pool_lock);
	if (pg)
		return pg;
	atomic64_inc(&gntsock_stats.rx_page_allocs);
	return alloc_page(GFP_KERNEL);
}

static void gntsock_rx_page_put(struct page *pg)
{
	spin_lock_bh(&gntsock_rx_pool_lock);
	if (gntsock_rx_pool_len < GNTSOCK_RX_POOL_MAX) {
		list_add(&pg->lru, &gntsock_rx_pool);
		gntsock_rx_pool_len++;
		pg = NULL;
	}
	spin_unlock_bh(&gntsock_rx_pool_lock);
	if (pg)
		__free_page(pg);
}

static void gntsock_rx_pool_drain(void)
{
	struct page *pg, *tmp;

	list_for_each_entry_safe(pg, tmp, &gntsock_rx_pool, lru) {
		list_del(&pg->lru);
		__free_page(pg);
	}
	gntsock_rx_pool_len = 0;
}

static struct gntsock_rxbuf *gntsock_rxbuf_alloc_inline(u32 len, u32 min,
							gfp_t gfp)
{
	size_t size = struct_size_t(struct gntsock_rxbuf, data, max(len, min));
	struct gntsock_rxbuf *b;

	if (size <= KMALLOC_MAX_CACHE_SIZE)
		size = kmalloc_size_roundup(size);
	b = kvmalloc(size, gfp);
	if (!b)
		return NULL;
	b->npages = 0;
	b->pooled = false;
	b->cap = size - offsetof(struct gntsock_rxbuf, data);
	b->truesize = size;
	if (is_vmalloc_addr(b)) {
		atomic64_inc(&gntsock_stats.rx_buf_vmalloc);
		b->truesize = PAGE_ALIGN(size);
	}
	return b;
}

static void gntsock_rxbuf_free_pages(struct gntsock_rxbuf *b)
{
	unsigned int i;

	for (i = 0; i < b->npages; i++) {
		if (b->pooled)
			gntsock_rx_page_put(b->pages[i]);
		else
			__free_page(b->pages[i]);
	}
	kfree(b);
}

static struct gntsock_rxbuf *gntsock_rxbuf_alloc_pages(u32 len, gfp_t gfp)
{
	unsigned int i, npages = DIV_ROUND_UP(len, PAGE_SIZE);
	size_t size = kmalloc_size_roundup(struct_size_t(struct gntsock_rxbuf,
							 pages, npages));
	bool pooled = !(gfp & __GFP_ACCOUNT);
	struct gntsock_rxbuf *b = kmalloc(size, gfp);

	if (!b)
		return NULL;
	for (i = 0; i < npages; i++) {
		b->pages[i] = pooled ? gntsock_rx_page_get() : alloc_page(gfp);
		if (!b->pages[i]) {
			b->npages = i;
			b->pooled = pooled;
			gntsock_rxbuf_free_pages(b);
			return NULL;
		}
	}
	b->npages = npages;
	b->pooled = pooled;
	b->cap = 0;
	b->truesize = size + npages * PAGE_SIZE;
	return b;
}

/* Copy @n bytes at @off of a payload to @to, with page faults disabled:
 * the caller holds lock_sock(), which the links' receive work needs, and
 * a reader's buffer that faults forever (a FUSE mapping whose daemon
 * never answers) must not hold it there (issue 12, defect 1). A short
 * copy is faulted in without the lock (gntsock_rx_fault_in()) and copied
 * again. Return: bytes copied.
 */
static size_t gntsock_rxbuf_copy(struct gntsock_rxbuf *b, u32 off, size_t n,
				 struct iov_iter *to)
{
	size_t done = 0, c, piece;

	pagefault_disable();
	if (!b->npages) {
		done = copy_to_iter(b->data + off, n, to);
		goto out;
	}
	while (done < n) {
		piece = min_t(size_t, n - done,
			      PAGE_SIZE - offset_in_page(off + done));
		c = copy_page_to_iter(b->pages[(off + done) >> PAGE_SHIFT],
				      offset_in_page(off + done), piece, to);
		done += c;
		if (c != piece)
			break;
	}
out:
	pagefault_enable();
	return done;
}

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

struct gntsock_rxbuf_fill {
	struct gntsock_rxbuf *b;
	u32 pos;
};

static int gntsock_fill_rxbuf(void *src, u32 len, void *ctx)
{
	struct gntsock_rxbuf_fill *f = ctx;
	struct gntsock_rxbuf *b = f->b;
	u32 n;

	while (len) {
		if (!b->npages) {
			memcpy(b->data + f->pos, src, len);
			f->pos += len;
			return 0;
		}
		n = min_t(u32, len, PAGE_SIZE - offset_in_page(f->pos));
		memcpy(page_address(b->pages[f->pos >> PAGE_SHIFT]) +
		       offset_in_page(f->pos), src, n);
		f->pos += n;
		src += n;
		len -= n;
	}
	return 0;
}

/* Direct receive: a STREAM reader about to sleep in recvmsg() pins its
 * buffer (up to GNTSOCK_POST_MAX bytes of it), and the link's rx work copies
 * arriving payload straight from the ring into those pages instead of into
 * an rx buffer: one copy and one allocation less per message, and the rx
 * work never waits for the reader nor takes a page fault. With
 * gntsock_rx_from_ring() below. Off by default: measured, it gave no
 * throughput beyond the noise (Documentation/performance.rst).
 */
bool gntsock_rx_direct;
module_param_named(rx_direct, gntsock_rx_direct, bool, 0644);
MODULE_PARM_DESC(rx_direct,
		 "received stream data straight to the reader's buffer, from the ring or into its pinned pages (default N)");

#define GNTSOCK_POST_MAX	(256 * 1024)
#define GNTSOCK_POST_PAGES	(GNTSOCK_POST_MAX / PAGE_SIZE + 1)

/**
 * struct gntsock_rx_post - the pinned buffer of a reader blocked in recvmsg()
 * @pages: the pages of the user buffer, a reference held on each
 * @npages: number of @pages
 * @start: offset of the buffer in @pages[0]
 * @len: bytes of the buffer
 * @filled: bytes the rx work copied in so far, in stream order
 */
struct gntsock_rx_post {
	struct page *pages[GNTSOCK_POST_PAGES];
	unsigned int npages;
	size_t start;
	size_t len;
	size_t filled;
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
 * @tx_mutex: one sender at a time, so a record is never interleaved with
 *	another writer's bytes; taken before lock_sock()
 * @grants: grants sent and received (grant.h)
 * @post: the pinned buffer of a reader blocked in recvmsg(), or NULL;
 *	filled only while @rx_queue is empty, so its bytes come first
 * @rx_hint: the reader takes its data from the ring itself
 *	(gntsock_rx_from_ring()): the link's rx work leaves it there
 * @rx_deferred: the rx work left data in the ring for the reader
 * @space_watch: on the link's list while a non-blocking send found the
 *	ring full (gntsock_ring_blocked())
 * @ring_blocked: poll() reports no room until the link says there is
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
	struct mutex tx_mutex;		/* one sender */
	struct gntsock_grants grants;
	struct gntsock_rx_post *post;
	bool rx_hint;
	bool rx_deferred;
	struct gntsock_space_watch space_watch;
	bool ring_blocked;
};

/**
 * gntsock_rxbuf_alloc() - an rx queue entry for @len payload bytes
 * @vsk: the socket it is for
 * @len: payload bytes
 * @min: the inline buffer holds at least this many (STREAM: room for the
 *	next small messages), 0 for exactly @len
 *
 * A socket with a memory cgroup (sk_memcg: its creator's, or its
 * listener's) has it allocated with __GFP_ACCOUNT for that cgroup, though
 * the link's rx work allocates it, and with __GFP_NORETRY: a cgroup at its
 * limit fails the allocation (the caller resets that connection), and the
 * work shared by the link's sockets neither reclaims for it nor invokes
 * its OOM killer. Its pages then do not go through the shared page pool,
 * so that a pooled page never carries one cgroup's charge to another
 * socket. Its memory is added to @vsk's rx_mem and the rx_mem counter,
 * and taken off by gntsock_rxbuf_free().
 *
 * Return: the entry, its @grant, @len, @off and @flags zero; or NULL.
 */
static struct gntsock_rxbuf *gntsock_rxbuf_alloc(struct gntsock_sock *vsk,
						 u32 len, u32 min)
{
	struct mem_cgroup *memcg = vsk->sk.sk_memcg, *old;
	gfp_t gfp = memcg ? GFP_KERNEL_ACCOUNT | __GFP_NORETRY | __GFP_NOWARN :
		    GFP_KERNEL;
	struct gntsock_rxbuf *b;

	old = set_active_memcg(memcg);
	if (len <= GNTSOCK_RXBUF_INLINE_MAX ||
	    !READ_ONCE(gntsock_rx_page_bufs))
		b = gntsock_rxbuf_alloc_inline(len, min, gfp);
	else
		b = gntsock_rxbuf_alloc_pages(len, gfp);
	set_active_memcg(old);
	if (!b)
		return NULL;
	b->grant = NULL;
	b->len = 0;
	b->off = 0;
	b->flags = 0;
	WRITE_ONCE(vsk->rx_mem, vsk->rx_mem + b->truesize);
	atomic64_add(b->truesize, &gntsock_stats.rx_mem);
	return b;
}

/* Take @b's memory off @vsk's and the global rx_mem. lock_sock held. */
static void gntsock_rxbuf_unaccount(struct gntsock_sock *vsk,
				    struct gntsock_rxbuf *b)
{
	WRITE_ONCE(vsk->rx_mem, vsk->rx_mem - b->truesize);
	atomic64_sub(b->truesize, &gntsock_stats.rx_mem);
}

static void gntsock_rxbuf_free(struct gntsock_sock *vsk,
			       struct gntsock_rxbuf *b)
{
	gntsock_rxbuf_unaccount(vsk, b);
	if (b->npages)
		gntsock_rxbuf_free_pages(b);
	else
		kvfree(b);
}

#define GNTSOCK_EPHEMERAL_MIN	49152U
#define GNTSOCK_EPHEMERAL_MAX	0x7fffffffU

static inline struct gntsock_sock *gntsock_sk(struct sock *sk)
{
	return container_of(sk, struct gntsock_sock, sk);
}

static struct proto gntsock_proto = {
	.name = "AF_GNTSOCK",
	.owner = THIS_MODULE,
	.obj_size = sizeof(struct gntsock_sock),
};

static const struct proto_ops gntsock_stream_ops;

/* Bound ports and connections, under gntsock_table_lock. */
static DEFINE_SPINLOCK(gntsock_table_lock);
static DEFINE_HASHTABLE(gntsock_bound, 8);
static DEFINE_HASHTABLE(gntsock_conn, 8);

/* The tables are keyed with a secret: ports are chosen by local users and
 * by the peer, who could otherwise put every entry in one chain, walked
 * under gntsock_table_lock with bottom halves off (issue 12, defect 9).
 */
static siphash_key_t gntsock_table_secret __read_mostly;

/* The one place that makes the secret: each net_get_random_once() call
 * site has its own "done" flag, so a second site would make it anew and
 * lose every entry hashed before.
 */
static const siphash_key_t *gntsock_table_key(void)
{
	net_get_random_once(&gntsock_table_secret,
			    sizeof(gntsock_table_secret));
	return &gntsock_table_secret;
}

static u32 gntsock_conn_key(u32 peer, u32 local_port, u32 peer_port)
{
	return siphash_3u32(peer, local_port, peer_port, gntsock_table_key());
}

static u32 gntsock_bound_key(u32 port)
{
	return siphash_1u32(port, gntsock_table_key());
}

static struct gntsock_sock *gntsock_find_bound(u32 port)
{
	struct gntsock_sock *vsk;

	hash_for_each_possible(gntsock_bound, vsk, bind_node,
			       gntsock_bound_key(port))
		if (vsk->local_port == port)
			return vsk;
	return NULL;
}

static struct gntsock_sock *gntsock_find_conn(struct gntsock_link *link,
					      u32 local_port, u32 peer_port)
{
	struct gntsock_sock *vsk;

	hash_for_each_possible(gntsock_conn, vsk, conn_node,
			       gntsock_conn_key(link->peer, local_port,
						peer_port))
		if (vsk->link == link && vsk->local_port == local_port &&
		    vsk->peer_port == peer_port)
			return vsk;
	return NULL;
}

static int gntsock_conn_hash(struct gntsock_sock *vsk)
{
	int err = 0;

	spin_lock_bh(&gntsock_table_lock);
	if (gntsock_find_conn(vsk->link, vsk->local_port, vsk->peer_port)) {
		err = -EADDRINUSE;
	} else {
		hash_add(gntsock_conn, &vsk->conn_node,
			 gntsock_conn_key(vsk->link->peer, vsk->local_port,
					  vsk->peer_port));
		vsk->conn_hashed = true;
	}
	spin_unlock_bh(&gntsock_table_lock);
	return err;
}

static void gntsock_conn_unhash(struct gntsock_sock *vsk)
{
	spin_lock_bh(&gntsock_table_lock);
	if (vsk->conn_hashed) {
		hash_del(&vsk->conn_node);
		vsk->conn_hashed = false;
	}
	spin_unlock_bh(&gntsock_table_lock);
}

/* Bind @vsk to @port, or to a free ephemeral port for GNTSOCK_PORT_ANY. */
static int gntsock_do_bind(struct gntsock_sock *vsk, u32 port)
{
	unsigned int tries;
	int err = -EADDRINUSE;

	if (port != GNTSOCK_PORT_ANY && port < GNTSOCK_PORT_RESERVED &&
	    !capable(CAP_NET_BIND_SERVICE))
		return -EACCES;

	spin_lock_bh(&gntsock_table_lock);
	if (port == GNTSOCK_PORT_ANY) {
		for (tries = 0; tries < 1024; tries++) {
			u32 p = GNTSOCK_EPHEMERAL_MIN +
				get_random_u32_below(GNTSOCK_EPHEMERAL_MAX -
						     GNTSOCK_EPHEMERAL_MIN);

			if (!gntsock_find_bound(p)) {
				port = p;
				break;
			}
		}
		if (port == GNTSOCK_PORT_ANY)
			goto out;
	} else if (gntsock_find_bound(port)) {
		goto out;
	}
	vsk->local_port = port;
	vsk->bound = true;
	hash_add(gntsock_bound, &vsk->bind_node, gntsock_bound_key(port));
	err = 0;
out:
	spin_unlock_bh(&gntsock_table_lock);
	return err;
}

static void gntsock_unbind(struct gntsock_sock *vsk)
{
	spin_lock_bh(&gntsock_table_lock);
	if (!hlist_unhashed(&vsk->bind_node))
		hash_del(&vsk->bind_node);
	spin_unlock_bh(&gntsock_table_lock);
}

#define GNTSOCK_WAKE_READ	1
#define GNTSOCK_WAKE_WRITE	2

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

/* Give back to the link's budget what the buffer grew on its own. */
static void gntsock_buf_auto_put(struct gntsock_sock *vsk)
{
	if (vsk->buf_auto && vsk->link)
		atomic_sub(vsk->buf_auto, &vsk->link->buf_auto);
	vsk->buf_auto = 0;
}

static void gntsock_set_link(struct gntsock_sock *vsk,
			     struct gntsock_link *link)
{
	gntsock_buf_auto_put(vsk);
	if (vsk->link) {
		gntsock_link_unwatch_space(vsk->link, &vsk->space_watch);
		WRITE_ONCE(vsk->ring_blocked, false);
		atomic_dec(&vsk->link->stat_sockets);
		gntsock_link_put(vsk->link);
	}
	vsk->link = link;
	if (link)
		atomic_inc(&link->stat_sockets);
}

static u32 gntsock_peer_credit(struct gntsock_sock *vsk)
{
	u32 in_flight = vsk->tx_cnt - READ_ONCE(vsk->peer_fwd_cnt);
	u32 buf = READ_ONCE(vsk->peer_buf_alloc);

	return in_flight >= buf ? 0 : buf - in_flight;
}

static u16 gntsock_wire_type(const struct sock *sk)
{
	return sk->sk_type == SOCK_SEQPACKET ? GNTSOCK_TYPE_SEQPACKET :
	       GNTSOCK_TYPE_STREAM;
}

static void gntsock_fill_hdr(struct gntsock_sock *vsk,
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
 *
 * Return: 0, or -ENOTCONN if we have no such connection.
 */
int gntsock_hostile_conn_hdr(domid_t peer, u32 peer_port, u16 op,
			     struct gntsock_msg_hdr *h)
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
	gntsock_fill_hdr(found, h, op);
	release_sock(&found->sk);
	sock_put(&found->sk);
	return 0;
}
#endif

static int gntsock_send_ctl(struct gntsock_sock *vsk, u16 op, u16 flags)
{
	struct gntsock_msg_hdr h;

	if (!vsk->link)
		return -ENOTCONN;
	gntsock_fill_hdr(vsk, &h, op);
	h.flags = flags;
	return gntsock_link_send_ctl(vsk->link, &h);
}

static void gntsock_reply_rst(struct gntsock_link *link,
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

/* Tell the peer about consumed bytes once a quarter of the buffer freed,
 * or at once if it asked for credit since our last update: a writer waiting
 * for room for a whole SEQPACKET record (up to the buffer size) or for its
 * last bytes to be read (SO_LINGER) then always learns of it.
 */
static void gntsock_maybe_credit_update(struct gntsock_sock *vsk)
{
	u32 unsent = vsk->fwd_cnt - vsk->last_fwd_cnt;

	if (vsk->sk.sk_state != TCP_ESTABLISHED || !unsent)
		return;
	if (unsent >= vsk->buf_alloc / 4 || vsk->peer_wants_credit)
		gntsock_send_ctl(vsk, GNTSOCK_OP_CREDIT_UPDATE, 0);
}

/* The peer's writer waited for credit, and then our reader found nothing
 * queued: the receive buffer, not the writer nor the reader, held the
 * stream back (a credit round trip between the domains costs far more than
 * the copies). Double the buffer, up to gntsock_buf_auto_max, from a budget
 * of gntsock_buf_auto_max bytes per link shared by all its sockets: a lone
 * stream grows to the maximum, many connections together add at most that
 * much kernel memory. A buffer set with GNTSOCK_SO_BUFFER_SIZE is kept.
 * STREAM only: a SEQPACKET record must fit the buffer its writer knows of.
 * lock_sock held.
 */
static void gntsock_buf_grow(struct gntsock_sock *vsk)
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

/* A reader about to sleep for more data tells the peer everything it
 * consumed, so that a writer short of credit (e.g. for SO_RCVLOWAT bytes)
 * can go on.
 */
static void gntsock_credit_update_before_wait(struct gntsock_sock *vsk)
{
	if (vsk->sk.sk_state == TCP_ESTABLISHED &&
	    vsk->fwd_cnt != vsk->last_fwd_cnt)
		gntsock_send_ctl(vsk, GNTSOCK_OP_CREDIT_UPDATE, 0);
}

static void gntsock_purge_rx(struct gntsock_sock *vsk)
{
	struct gntsock_rxbuf *b, *tmp;

	list_for_each_entry_safe(b, tmp, &vsk->rx_queue, node) {
		list_del(&b->node);
		if (b->grant)
			gntsock_grant_in_drop(b->grant);
		gntsock_rxbuf_free(vsk, b);
	}
	vsk->rx_bytes = 0;
	vsk->rx_msgs = 0;
}

/* Abort a connection locally: lock_sock held. */
static void gntsock_reset(struct sock *sk, int err)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);

	sock_owned_by_me(sk);
	gntsock_conn_unhash(vsk);
	sk->sk_err = err;
	sk->sk_state = TCP_CLOSE;
	sk->sk_shutdown = SHUTDOWN_MASK;
	vsk->peer_shutdown = GNTSOCK_SHUT_MASK;
	if (sk->sk_socket)
		sk->sk_socket->state = SS_UNCONNECTED;
	sk_error_report(sk);
	sk->sk_state_change(sk);
}

static void gntsock_destruct(struct sock *sk)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);

	gntsock_purge_rx(vsk);
	gntsock_grant_sock_destruct(sk);
	gntsock_set_link(vsk, NULL);
	atomic_dec(&gntsock_stats.sockets);
}

/* The link says its ring may have room again (struct gntsock_space_watch):
 * poll() may report EPOLLOUT again. Under the link's watch_lock.
 */
static void gntsock_ring_room(struct gntsock_space_watch *w)
{
	struct gntsock_sock *vsk = container_of(w, struct gntsock_sock,
						space_watch);

	WRITE_ONCE(vsk->ring_blocked, false);
	vsk->sk.sk_write_space(&vsk->sk);
}

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

static struct sock *gntsock_sk_alloc(struct net *net, struct socket *sock,
				     int type, gfp_t gfp, int kern)
{
	struct gntsock_sock *vsk;
	struct sock *sk;

	sk = sk_alloc(net, AF_GNTSOCK, gfp, &gntsock_proto, kern);
	if (!sk)
		return NULL;
	sock_init_data(sock, sk);
	if (!sock)
		sk->sk_type = type;
	sk->sk_destruct = gntsock_destruct;
	vsk = gntsock_sk(sk);
	vsk->local_port = GNTSOCK_PORT_ANY;
	vsk->peer_domid = GNTSOCK_DOMID_ANY;
	vsk->peer_port = GNTSOCK_PORT_ANY;
	INIT_HLIST_NODE(&vsk->bind_node);
	INIT_LIST_HEAD(&vsk->rx_queue);
	INIT_LIST_HEAD(&vsk->accept_queue);
	INIT_LIST_HEAD(&vsk->accept_node);
	INIT_LIST_HEAD(&vsk->wake_node);
	INIT_LIST_HEAD(&vsk->space_watch.node);
	vsk->space_watch.notify = gntsock_ring_room;
	mutex_init(&vsk->tx_mutex);
	gntsock_grants_init(&vsk->grants);
	vsk->buf_alloc = GNTSOCK_BUFFER_SIZE_DEFAULT;
	vsk->buf_alloc_max = vsk->buf_alloc;
	vsk->connect_timeout = 2 * HZ;
	sk->sk_state = TCP_CLOSE;
	atomic_inc(&gntsock_stats.sockets);
	return sk;
}

/* A child made by the link's work belongs to its listener's memory cgroup
 * (the receive memory of gntsock_rxbuf_alloc() is charged there): data
 * arrives before accept(), and the listener's creator set the service up.
 * (TCP's children get the cgroup of the task that accepts them.)
 */
static void gntsock_sk_memcg_inherit(struct sock *child, struct sock *listener)
{
#ifdef CONFIG_MEMCG
	if (listener->sk_memcg && !child->sk_memcg) {
		css_get(&listener->sk_memcg->css);
		child->sk_memcg = listener->sk_memcg;
	}
#endif
}

/* A peer's message for a connection: update what we know of its credit. */
static bool gntsock_update_credit(struct gntsock_sock *vsk,
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

static int gntsock_fill_post(void *src, u32 len, void *ctx)
{
	struct gntsock_rx_post *p = ctx;

	while (len) {
		size_t pos = p->start + p->filled;
		size_t in = offset_in_page(pos);
		size_t n = min_t(size_t, len, PAGE_SIZE - in);

		memcpy(page_address(p->pages[pos >> PAGE_SHIFT]) + in, src, n);
		src += n;
		len -= n;
		p->filled += n;
	}
	return 0;
}

/* Copy what fits of an RW payload into the blocked reader's pinned buffer.
 * Only while nothing is queued, so the stream stays in order.
 * Return: bytes taken.
 */
static u32 gntsock_recv_direct(struct gntsock_link *link,
			       struct gntsock_sock *vsk,
			       const struct gntsock_msg_hdr *h)
{
	struct gntsock_rx_post *p = vsk->post;
	u32 take;

	if (!p || !list_empty(&vsk->rx_queue) || p->filled >= p->len)
		return 0;
	take = min_t(size_t, h->len, p->len - p->filled);
	gntsock_link_rx_payload_cb(link, 0, take, gntsock_fill_post, p);
	atomic64_inc(&gntsock_stats.rx_direct_msgs);
	atomic64_add(take, &gntsock_stats.rx_direct_bytes);
	return take;
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

static bool gntsock_recv_rw(struct gntsock_link *link, struct sock *sk,
			    const struct gntsock_msg_hdr *h, bool defer)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);
	u32 charge = gntsock_rw_charge(h->type, h->len);
	struct gntsock_rxbuf_fill fill;
	struct gntsock_rxbuf *b;
	u32 off = 0;

	if (sk->sk_state != TCP_ESTABLISHED) {
		gntsock_reply_rst(link, h);
		return false;
	}
	if (vsk->rx_cnt - vsk->fwd_cnt + charge > vsk->buf_alloc_max) {
		gntsock_link_violation(link, GNTSOCK_V_CREDIT);
		return false;
	}
	if (sk->sk_type == SOCK_STREAM && h->len && list_empty(&vsk->rx_queue) &&
	    !(sk->sk_shutdown & RCV_SHUTDOWN) && !sock_flag(sk, SOCK_DEAD)) {
		/* A blocked reader's pinned buffer takes it, or the reader
		 * that last took its data from the ring takes it from there
		 * (unless messages for several sockets take turns in the
		 * ring: each would wait for its reader in turn).
		 */
		if (vsk->post && vsk->post->filled < vsk->post->len) {
			off = gntsock_recv_direct(link, vsk, h);
		} else if (defer && vsk->rx_hint &&
			   h->dst_port == link->rx_last_dst) {
			vsk->rx_deferred = true;
			gntsock_sock_wake(link, sk, GNTSOCK_WAKE_READ);
			return true;
		} else if (vsk->rx_hint) {
			/* The fallback work: the reader did not come. */
			vsk->rx_hint = false;
		}
	}
	vsk->rx_cnt += charge;
	if ((sk->sk_shutdown & RCV_SHUTDOWN) || sock_flag(sk, SOCK_DEAD) ||
	    (!h->len && sk->sk_type != SOCK_SEQPACKET)) {
		/* Nobody will read it: consume at once. */
		vsk->fwd_cnt += charge;
		gntsock_maybe_credit_update(vsk);
		return false;
	}
	if (off && off == h->len) {
		gntsock_sock_wake(link, sk, GNTSOCK_WAKE_READ);
		return false;
	}
	if (sk->sk_type == SOCK_STREAM && !off &&
	    gntsock_rxbuf_append(link, vsk, h)) {
		atomic64_inc(&gntsock_stats.rx_buf_msgs);
		atomic64_add(h->len, &gntsock_stats.rx_buf_bytes);
		gntsock_sock_wake(link, sk, GNTSOCK_WAKE_READ);
		return false;
	}
	b = gntsock_rxbuf_alloc(vsk, h->len - off, gntsock_rxbuf_room(vsk));
	if (!b) {
		/* Cannot keep it: abort this connection, not the link. */
		gntsock_reply_rst(link, h);
		gntsock_reset(sk, ENOMEM);
		return false;
	}
	atomic64_inc(&gntsock_stats.rx_buf_msgs);
	atomic64_add(h->len - off, &gntsock_stats.rx_buf_bytes);
	b->len = h->len - off;
	b->flags = h->flags;
	fill.b = b;
	fill.pos = 0;
	if (b->len)
		gntsock_link_rx_payload_cb(link, off, b->len,
					   gntsock_fill_rxbuf, &fill);
	list_add_tail(&b->node, &vsk->rx_queue);
	vsk->rx_bytes += b->len;
	if (h->flags & GNTSOCK_RW_EOM)
		vsk->rx_msgs++;
	/* A SEQPACKET reader waits for whole records. */
	if (sk->sk_type != SOCK_SEQPACKET || (h->flags & GNTSOCK_RW_EOM))
		gntsock_sock_wake(link, sk, GNTSOCK_WAKE_READ);
	return false;
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
 * gntsock_peer_closed() - the peer ended the connection in order
 * @sk: the socket, lock_sock held
 *
 * The peer shut down both directions (its close()) or reset a connection
 * it had shut down: nothing more comes, and the peer has forgotten the
 * connection. Take it out of the connection table now, not when our
 * application closes its fd: the same (domain, port) may connect again at
 * once, and its REQUEST must not find this one (as vsock since 2023,
 * "vsock/virtio: remove socket from connected/bound list on shutdown").
 * TCP_CLOSE also keeps this end from sending anything more with those
 * ports (a credit update or a SHUTDOWN at close()), which would land on
 * the new connection. What was received stays readable, then EOF; a send
 * gets EPIPE.
 */
static void gntsock_peer_closed(struct sock *sk)
{
	sock_owned_by_me(sk);
	gntsock_conn_unhash(gntsock_sk(sk));
	sk->sk_state = TCP_CLOSE;
	sk->sk_state_change(sk);
}

/**
 * gntsock_sock_recv() - deliver one validated message to its socket
 * @link: the link it arrived on
 * @h: local copy of its header; an RW payload is still in the ring
 * @defer: an RW message for a socket whose reader takes its data from the
 *	ring itself (gntsock_rx_from_ring()) may be left there
 *
 * Called from the link's rx work, in process context.
 *
 * Return: true if the message was left in the ring (the caller stops
 * there, without consuming it).
 */
static bool gntsock_sock_recv(struct gntsock_link *link,
			      const struct gntsock_msg_hdr *h, bool defer)
{
	struct gntsock_sock *vsk;
	struct sock *sk = NULL;
	bool deferred = false;

	if (h->op == GNTSOCK_OP_REQUEST) {
		gntsock_recv_request(link, h);
		return false;
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
		return false;
	}

	lock_sock(sk);
	if (!vsk->conn_hashed)
		goto out;
	if (h->type != gntsock_wire_type(sk)) {
		gntsock_link_violation(link, GNTSOCK_V_TYPE);
		goto out;
	}
	if (!gntsock_update_credit(vsk, h)) {
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
		deferred = gntsock_recv_rw(link, sk, h, defer);
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
	return deferred;
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

	seq_printf(m, "%s %s %u:%u %u:%u %u %u %lu %u\n",
		   sk->sk_type == SOCK_SEQPACKET ? "SEQPACKET" : "STREAM",
		   gntsock_state_name(sk->sk_state),
		   conn ? gntsock_local_domid() : GNTSOCK_DOMID_ANY,
		   vsk->local_port,
		   conn ? vsk->peer_domid : GNTSOCK_DOMID_ANY,
		   conn ? vsk->peer_port : GNTSOCK_PORT_ANY,
		   READ_ONCE(vsk->rx_bytes),
		   conn ? vsk->tx_cnt - READ_ONCE(vsk->peer_fwd_cnt) : 0,
		   sock_i_ino(sk), READ_ONCE(vsk->rx_mem));
}

/**
 * gntsock_sockets_show() - one line per bound or connected socket
 * @m: the seq_file of /proc/net/gntsock
 */
void gntsock_sockets_show(struct seq_file *m)
{
	struct gntsock_sock *vsk;
	int bkt;

	seq_puts(m, "type state local peer rx_queue tx_queue inode rx_mem\n");
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
	u8 peer_shut = READ_ONCE(vsk->peer_shutdown);
	u8 shut = READ_ONCE(sk->sk_shutdown);
	int state = READ_ONCE(sk->sk_state);
	__poll_t mask = 0;

	sock_poll_wait(file, sock, wait);
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
	    READ_ONCE(vsk->rx_bytes) >= (u32)sock_rcvlowat(sk, 0, INT_MAX) ||
	    READ_ONCE(vsk->rx_deferred))
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

/* Runs under the link's tx_lock, so it must not fault: a fault takes
 * mmap_lock (inverting mmap_lock -> grant lock -> tx_lock) and may sleep
 * for as long as a FUSE daemon or userfaultfd likes, stalling every
 * socket of the link and xenwatch. A page not present fails the copy with
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

/* Wait, without the socket lock, until the peer consumed from the ring. */
static long gntsock_wait_ring(struct gntsock_link *link, int kick, long timeo)
{
	return wait_event_interruptible_timeout(link->tx_wq,
		atomic_read(&link->tx_kick) != kick ||
		READ_ONCE(link->state) != GNTSOCK_LINK_CONNECTED, timeo);
}

/* Can a writer not go on? Unlike gntsock_send_check(), clears nothing. */
static bool gntsock_send_stopped(struct sock *sk)
{
	return READ_ONCE(sk->sk_err) ||
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

/* Mid-record: wait for ring space, killable only. */
static long gntsock_wait_record_ring(struct gntsock_link *link, int kick)
{
	return wait_event_killable_timeout(link->tx_wq,
		atomic_read(&link->tx_kick) != kick ||
		READ_ONCE(link->state) != GNTSOCK_LINK_CONNECTED,
		GNTSOCK_RECORD_WAIT);
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
 * forever (a FUSE file whose daemon does not answer), and the links'
 * receive work needs the lock (issue 12, defect 1). tx_mutex keeps other
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
		left = gntsock_wait_ring(vsk->link, kick, *timeo);
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
			left = gntsock_wait_record_ring(link, kick);
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
	bool woken = false;	/* holds a ring-space wake-up to pass on */
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
			if (woken) {
				gntsock_link_pass_wake(link);
				woken = false;
			}
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
		/* Sent: gntsock_link_send() woke the next writer if room is
		 * left. Full again: a new space event is requested.
		 */
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
			left = gntsock_link_wait_space(link, kick, timeo);
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
	if (woken)
		gntsock_link_pass_wake(link);
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

static int gntsock_sendmsg(struct socket *sock, struct msghdr *msg,
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
 * holding up the link's receive work, which needs lock_sock().
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

/* A reader about to sleep: pin up to @size bytes of its buffer for the rx
 * work to fill (gntsock_recv_direct()). lock_sock held.
 * Return: true if the buffer is posted.
 */
static bool gntsock_rx_post(struct gntsock_sock *vsk, struct msghdr *msg,
			    size_t size)
{
	struct gntsock_rx_post *p;
	unsigned int i;
	ssize_t n;

	sock_owned_by_me(&vsk->sk);
	if (!READ_ONCE(gntsock_rx_direct) || vsk->post ||
	    !user_backed_iter(&msg->msg_iter))
		return false;
	p = kmalloc(sizeof(*p), GFP_KERNEL);
	if (!p)
		return false;
	/* Faults the pages in, in the reader's context and without the
	 * socket lock (a fault may take long, and the rx work needs the
	 * lock). A bad buffer gives nothing or fewer bytes; the copy from
	 * the queue then reports the fault.
	 */
	release_sock(&vsk->sk);
	n = iov_iter_get_pages2(&msg->msg_iter, p->pages,
				min_t(size_t, size, GNTSOCK_POST_MAX),
				GNTSOCK_POST_PAGES, &p->start);
	lock_sock(&vsk->sk);
	if (n <= 0) {
		kfree(p);
		return false;
	}
	p->len = n;
	p->npages = DIV_ROUND_UP(p->start + n, PAGE_SIZE);
	p->filled = 0;
	/* Another reader posted, or data was queued, meanwhile. */
	if (vsk->post || !list_empty(&vsk->rx_queue)) {
		for (i = 0; i < p->npages; i++)
			put_page(p->pages[i]);
		iov_iter_revert(&msg->msg_iter, n);
		kfree(p);
		return false;
	}
	vsk->post = p;
	atomic64_inc(&gntsock_stats.rx_posts);
	atomic64_add(p->npages, &gntsock_stats.rx_post_pages);
	return true;
}

/* Take the posted buffer back: its filled bytes are received (and
 * consumed), the iterator goes back over the rest. lock_sock held.
 * Return: the bytes received.
 */
static size_t gntsock_rx_unpost(struct gntsock_sock *vsk, struct msghdr *msg)
{
	struct gntsock_rx_post *p = vsk->post;
	unsigned int i, dirty;
	size_t filled;

	sock_owned_by_me(&vsk->sk);
	vsk->post = NULL;
	dirty = DIV_ROUND_UP(p->start + p->filled, PAGE_SIZE);
	for (i = 0; i < p->npages; i++) {
		if (p->filled && i < dirty)
			set_page_dirty_lock(p->pages[i]);
		put_page(p->pages[i]);
	}
	iov_iter_revert(&msg->msg_iter, p->len - p->filled);
	vsk->fwd_cnt += p->filled;
	filled = p->filled;
	kfree(p);
	return filled;
}

/* A STREAM reader with nothing queued takes its data straight from the
 * link's ring into its buffer: one copy, no rx buffer, no work item. Its
 * messages only, from the head of the ring while they are its own; a
 * message for another socket (or any other kind) is left to the rx work,
 * queued at once. Copies run with page faults disabled: a buffer that
 * faults sends that message down the buffered path, where the copy may
 * fault (and sleep) without holding the ring. lock_sock held, dropped and
 * taken again (rx_lock comes first).
 * Return: bytes received, or 0.
 */
static size_t gntsock_rx_from_ring(struct sock *sk, struct msghdr *msg,
				   size_t size)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);
	struct gntsock_link *link = vsk->link;
	bool others = false, leftover = false;
	struct gntsock_rxbuf_fill fill;
	struct gntsock_msg_hdr h;
	struct gntsock_rxbuf *b;
	enum gntsock_violation v;
	size_t done = 0;
	u32 n, c;

	sock_owned_by_me(sk);
	if (!link || link->loopback || !READ_ONCE(gntsock_rx_direct) ||
	    sk->sk_type != SOCK_STREAM || !user_backed_iter(&msg->msg_iter))
		return 0;
	gntsock_link_hold(link);
	release_sock(sk);
	if (gntsock_link_rx_begin(link)) {
		lock_sock(sk);
		gntsock_link_put(link);
		return 0;
	}
	lock_sock(sk);
	vsk->rx_deferred = false;
	for (;;) {
		/* (a connect() may have moved the socket while unlocked) */
		if (!vsk->conn_hashed || sk->sk_state != TCP_ESTABLISHED ||
		    (sk->sk_shutdown & RCV_SHUTDOWN) || vsk->link != link) {
			others = true;
			break;
		}
		v = gntsock_link_rx_peek(link, &h);
		if (v != GNTSOCK_V_NONE)
			break;
		if (h.op != GNTSOCK_OP_RW || h.type != GNTSOCK_TYPE_STREAM ||
		    !h.len || h.dst_port != vsk->local_port ||
		    h.src_port != vsk->peer_port) {
			others = true;
			break;
		}
		if (done == size || !list_empty(&vsk->rx_queue)) {
			/* More for us: it waits for our next call. */
			leftover = true;
			break;
		}
		if (!gntsock_update_credit(vsk, &h) ||
		    vsk->rx_cnt - vsk->fwd_cnt + h.len > vsk->buf_alloc_max) {
			gntsock_link_violation(link, GNTSOCK_V_CREDIT);
			break;
		}
		n = min_t(size_t, h.len, size - done);
		c = gntsock_link_rx_to_iter(link, n, &msg->msg_iter);
		if (c < n)
			atomic64_inc(&gntsock_stats.rx_ring_faults);
		if (c < h.len) {
			/* The rest waits in an rx buffer, in order. */
			b = gntsock_rxbuf_alloc(vsk, h.len - c, 0);
			if (!b) {
				iov_iter_revert(&msg->msg_iter, c);
				others = true;
				break;
			}
			atomic64_inc(&gntsock_stats.rx_buf_msgs);
			atomic64_add(h.len - c, &gntsock_stats.rx_buf_bytes);
			b->len = h.len - c;
			fill.b = b;
			fill.pos = 0;
			gntsock_link_rx_payload_cb(link, c, b->len,
						   gntsock_fill_rxbuf, &fill);
			list_add_tail(&b->node, &vsk->rx_queue);
			vsk->rx_bytes += b->len;
		}
		vsk->rx_cnt += h.len;
		vsk->fwd_cnt += c;
		done += c;
		atomic64_inc(&gntsock_stats.rx_ring_msgs);
		atomic64_add(c, &gntsock_stats.rx_ring_bytes);
		gntsock_link_rx_consume(link, &h);
	}
	vsk->rx_hint = true;
	gntsock_link_rx_end(link, others, leftover);
	gntsock_link_put(link);
	return done;
}

/* Queue whatever the ring holds for a reader that takes its data from
 * there, so that it can be counted or peeked at. lock_sock held, dropped
 * and taken again.
 */
static void gntsock_rx_flush(struct sock *sk)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);
	struct gntsock_link *link = vsk->link;

	sock_owned_by_me(sk);
	if (!vsk->rx_hint || !link || link->loopback)
		return;
	vsk->rx_hint = false;
	vsk->rx_deferred = false;
	gntsock_link_hold(link);
	release_sock(sk);
	gntsock_link_rx_flush(link);
	lock_sock(sk);
	gntsock_link_put(link);
}

static int gntsock_recvmsg(struct socket *sock, struct msghdr *msg,
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
	bool stop = false, posted;
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
			if (n && !peek)
				faults = 0;	/* it moves: a new budget */
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
				if (err)
					break;
				continue;
			}
			if (peek || stop || copied >= target)
				break;
			continue;
		}
		if (!peek) {
			n = gntsock_rx_from_ring(sk, msg, len - copied);
			copied += n;
			if (n || vsk->rx_bytes)
				continue;
		} else if (vsk->rx_hint) {
			gntsock_rx_flush(sk);
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
		posted = !peek && gntsock_rx_post(vsk, msg, len - copied);
		sk_wait_event(sk, &timeo, vsk->rx_bytes ||
			      gntsock_rx_done(sk) || vsk->rx_deferred ||
			      (posted && vsk->post->filled), &wait);
		if (posted)
			copied += gntsock_rx_unpost(vsk, msg);
	}
	remove_wait_queue(sk_sleep(sk), &wait);
	if (copied && !peek)
		gntsock_maybe_credit_update(vsk);
out:
	release_sock(sk);
	gntsock_grants_deliver(&granted, msg);
	return copied ? copied : err;
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
 * for long, and the links' receive work needs the lock.
 */
static int gntsock_setsockopt(struct socket *sock, int level, int optname,
			      sockptr_t optval, unsigned int optlen)
{
	struct sock *sk = sock->sk;
	struct gntsock_sock *vsk = gntsock_sk(sk);
	long timeout = 0;
	u64 size = 0;
	int err = 0;

	if (level != SOL_GNTSOCK)
		return -ENOPROTOOPT;
	switch (optname) {
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
 * the room we have, since poll() now waits for that many bytes.
 */
static int gntsock_set_rcvlowat(struct sock *sk, int val)
{
	sock_owned_by_me(sk);
	WRITE_ONCE(sk->sk_rcvlowat, val ? : 1);
	gntsock_credit_update_before_wait(gntsock_sk(sk));
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
		gntsock_rx_flush(sk);
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

/* mmap(2) of a received grant (grant_recv.c). */
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
	if (!gntsock_sk_alloc(net, sock, sock->type, GFP_KERNEL, kern))
		return -ENOMEM;
	return 0;
}

static const struct net_proto_family gntsock_family_ops = {
	.family = AF_GNTSOCK,
	.create = gntsock_create,
	.owner = THIS_MODULE,
};

/* What the links hand to the socket layer: every connection message. */
static const struct gntsock_link_handler gntsock_sock_handler = {
	.ops = BIT(GNTSOCK_OP_REQUEST) | BIT(GNTSOCK_OP_RESPONSE) |
	       BIT(GNTSOCK_OP_RST) | BIT(GNTSOCK_OP_SHUTDOWN) |
	       BIT(GNTSOCK_OP_RW) | BIT(GNTSOCK_OP_CREDIT_UPDATE) |
	       BIT(GNTSOCK_OP_CREDIT_REQUEST) | BIT(GNTSOCK_OP_GRANT),
	.recv = gntsock_sock_recv,
	.batch_end = gntsock_sock_wake_flush,
	.link_down = gntsock_sock_link_down,
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
