// SPDX-License-Identifier: GPL-2.0
/*
 * AF_GNTSOCK received payloads: the rx buffers a socket queues until its
 * reader takes them (struct gntsock_rxbuf, sock.h). Small payloads are
 * kept inline (and later small STREAM messages appended); larger ones in
 * single pages recycled through a bounded pool, never in vmalloc space.
 * Every buffer is charged to its socket's rx_mem and, where the socket has
 * one, to its memory cgroup. Also the entries of a socket's backlog
 * (sock_deliver.c), which hold such buffers until the socket's owner hands
 * them on.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/mm.h>
#include <linux/memcontrol.h>
#include <net/sock.h>

#include "gntsock.h"
#include "grant.h"
#include "sock.h"

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

/* Freed rx buffer pages are kept for reuse, up to a ring's worth (1 MiB):
 * a fresh page costs the page allocator and, with init_on_alloc (Debian's
 * default), clearing it: one more pass over every received byte.
 */
#define GNTSOCK_RX_POOL_MAX	256U

static LIST_HEAD(gntsock_rx_pool);
static DEFINE_SPINLOCK(gntsock_rx_pool_lock);
static unsigned int gntsock_rx_pool_len;

/* Fill @pages[0..@n) from the pool, one lock round for the whole message;
 * what the pool lacks is allocated outside the lock. Return: the pages
 * filled, fewer than @n only without memory.
 */
static unsigned int gntsock_rx_pages_get(struct page **pages, unsigned int n)
{
	unsigned int i = 0;
	struct page *pg;

	spin_lock_bh(&gntsock_rx_pool_lock);
	while (i < n) {
		pg = list_first_entry_or_null(&gntsock_rx_pool, struct page,
					      lru);
		if (!pg)
			break;
		list_del(&pg->lru);
		gntsock_rx_pool_len--;
		pages[i++] = pg;
	}
	spin_unlock_bh(&gntsock_rx_pool_lock);
	for (; i < n; i++) {
		atomic64_inc(&gntsock_stats.rx_page_allocs);
		pages[i] = alloc_page(GFP_KERNEL);
		if (!pages[i])
			break;
	}
	return i;
}

/* Give @pages[0..@n) back to the pool, one lock round for the whole
 * message; beyond GNTSOCK_RX_POOL_MAX they are freed, outside the lock.
 */
static void gntsock_rx_pages_put(struct page **pages, unsigned int n)
{
	unsigned int i = 0;

	spin_lock_bh(&gntsock_rx_pool_lock);
	for (; i < n && gntsock_rx_pool_len < GNTSOCK_RX_POOL_MAX; i++) {
		list_add(&pages[i]->lru, &gntsock_rx_pool);
		gntsock_rx_pool_len++;
	}
	spin_unlock_bh(&gntsock_rx_pool_lock);
	for (; i < n; i++)
		__free_page(pages[i]);
}

/**
 * gntsock_rx_pool_drain() - free every page of the rx page pool
 *
 * At module unload, when no rx buffer is left to come back: takes no lock.
 */
void gntsock_rx_pool_drain(void)
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

	if (b->pooled)
		gntsock_rx_pages_put(b->pages, b->npages);
	else
		for (i = 0; i < b->npages; i++)
			__free_page(b->pages[i]);
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
	if (pooled) {
		i = gntsock_rx_pages_get(b->pages, npages);
	} else {
		for (i = 0; i < npages; i++) {
			b->pages[i] = alloc_page(gfp);
			if (!b->pages[i])
				break;
		}
	}
	if (i < npages) {
		b->npages = i;
		b->pooled = pooled;
		gntsock_rxbuf_free_pages(b);
		return NULL;
	}
	b->npages = npages;
	b->pooled = pooled;
	b->cap = 0;
	b->truesize = size + npages * PAGE_SIZE;
	return b;
}

/**
 * gntsock_rxbuf_copy() - copy part of a payload to the reader
 * @b: the rx buffer
 * @off: offset in its payload
 * @n: bytes, @off + @n at most the payload's length
 * @to: the reader's buffer
 *
 * Copy @n bytes at @off of a payload to @to, with page faults disabled:
 * the caller holds lock_sock(), and the socket's messages wait on its
 * backlog while it does: a reader's buffer that faults forever (a FUSE
 * mapping whose daemon never answers) must not hold it there (issue 12,
 * defect 1). A short
 * copy is faulted in without the lock (gntsock_rx_fault_in()) and copied
 * again.
 *
 * Return: bytes copied.
 */
size_t gntsock_rxbuf_copy(struct gntsock_rxbuf *b, u32 off, size_t n,
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

/**
 * gntsock_fill_rxbuf() - a gntsock_copy_fn that fills an rx buffer
 * @src: the next piece of the payload (ring memory or the loopback copy)
 * @len: its bytes
 * @ctx: a struct gntsock_rxbuf_fill: the buffer, and where the piece goes
 *
 * Called on consecutive pieces (gntsock_link_rx_payload_cb()); each moves
 * the fill position on. The buffer has room for them.
 *
 * Return: 0.
 */
int gntsock_fill_rxbuf(void *src, u32 len, void *ctx)
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

/* Allocation flags for receive memory of a socket whose memory cgroup is
 * @memcg (or none): see gntsock_rxbuf_new().
 */
static gfp_t gntsock_rx_gfp(struct mem_cgroup *memcg)
{
	return memcg ? GFP_KERNEL_ACCOUNT | __GFP_NORETRY | __GFP_NOWARN :
	       GFP_KERNEL;
}

/**
 * gntsock_rxbuf_new() - an rx buffer for @len payload bytes, for @sk
 * @sk: the socket it is for
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
 * socket. Its memory is added to the rx_mem counter (not yet to the
 * socket's: gntsock_rxbuf_adopt()); gntsock_rxbuf_delete() takes it off.
 *
 * Return: the buffer, its @grant, @len, @off and @flags zero; or NULL.
 */
struct gntsock_rxbuf *gntsock_rxbuf_new(struct sock *sk, u32 len, u32 min)
{
	struct mem_cgroup *memcg = sk->sk_memcg, *old;
	gfp_t gfp = gntsock_rx_gfp(memcg);
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
	atomic64_add(b->truesize, &gntsock_stats.rx_mem);
	return b;
}

/**
 * gntsock_rxbuf_delete() - free an rx buffer no socket has adopted
 * @b: the buffer, from gntsock_rxbuf_new()
 *
 * Pages that came from the page pool go back to it.
 */
void gntsock_rxbuf_delete(struct gntsock_rxbuf *b)
{
	atomic64_sub(b->truesize, &gntsock_stats.rx_mem);
	if (b->npages)
		gntsock_rxbuf_free_pages(b);
	else
		kvfree(b);
}

/**
 * gntsock_rxbuf_adopt() - count an rx buffer in its socket's rx_mem
 * @vsk: the socket, lock owned
 * @b: the buffer, from gntsock_rxbuf_new(), for its rx queue
 */
void gntsock_rxbuf_adopt(struct gntsock_sock *vsk, struct gntsock_rxbuf *b)
{
	WRITE_ONCE(vsk->rx_mem, vsk->rx_mem + b->truesize);
}

/**
 * gntsock_rxbuf_alloc() - an rx queue entry for @len payload bytes
 * @vsk: the socket it is for, lock owned
 * @len: payload bytes
 * @min: as for gntsock_rxbuf_new()
 *
 * gntsock_rxbuf_new(), counted in @vsk's rx_mem; gntsock_rxbuf_free()
 * takes it off.
 *
 * Return: the entry, or NULL.
 */
struct gntsock_rxbuf *gntsock_rxbuf_alloc(struct gntsock_sock *vsk,
					  u32 len, u32 min)
{
	struct gntsock_rxbuf *b = gntsock_rxbuf_new(&vsk->sk, len, min);

	if (b)
		gntsock_rxbuf_adopt(vsk, b);
	return b;
}

/**
 * gntsock_rxbuf_unaccount() - take an rx buffer's memory off the counters
 * @vsk: the socket it was allocated for, lock_sock held
 * @b: the buffer
 *
 * Take @b's memory off @vsk's and the global rx_mem.
 */
void gntsock_rxbuf_unaccount(struct gntsock_sock *vsk,
			     struct gntsock_rxbuf *b)
{
	WRITE_ONCE(vsk->rx_mem, vsk->rx_mem - b->truesize);
	atomic64_sub(b->truesize, &gntsock_stats.rx_mem);
}

/**
 * gntsock_rxbuf_free() - unaccount and free an rx buffer
 * @vsk: the socket it was allocated for, lock_sock held
 * @b: the buffer, off the rx queue; its grant, if any, is the caller's
 *
 * Pages that came from the page pool go back to it.
 */
void gntsock_rxbuf_free(struct gntsock_sock *vsk,
			struct gntsock_rxbuf *b)
{
	WRITE_ONCE(vsk->rx_mem, vsk->rx_mem - b->truesize);
	gntsock_rxbuf_delete(b);
}

/**
 * gntsock_bl_msg_new() - a backlog entry for a message (sock_deliver.c)
 * @link: the link it came on (a reference is taken)
 * @sk: the socket it is for; a user owns its lock
 * @h: its validated header; its payload is still in the ring
 *
 * An RW payload is copied out of the ring into an rx buffer (a STREAM one
 * with room for the next small messages), charged to @sk's memory cgroup
 * (gntsock_rxbuf_new()). A GRANT gets its record now, in ring order
 * (gntsock_grant_in_new(): refused there if the socket cannot take it, or
 * over its limits), so that a REVOKE right behind it finds it.
 *
 * Return: the entry, not on any list; ERR_PTR(-ENOMEM); or NULL for a
 * GRANT that was refused or invalid (handled: nothing more to do).
 */
struct gntsock_bl_msg *gntsock_bl_msg_new(struct gntsock_link *link,
					  struct sock *sk,
					  const struct gntsock_msg_hdr *h)
{
	struct mem_cgroup *memcg = sk->sk_memcg, *old;
	gfp_t gfp = gntsock_rx_gfp(memcg);
	bool stream = h->type == GNTSOCK_TYPE_STREAM, accept;
	struct gntsock_sock *vsk = gntsock_sk(sk);
	struct gntsock_rxbuf_fill fill;
	struct gntsock_bl_msg *m;

	old = set_active_memcg(memcg);
	m = kzalloc(sizeof(*m), gfp);
	set_active_memcg(old);
	if (!m)
		return ERR_PTR(-ENOMEM);
	m->h = *h;
	kref_get(&link->kref);
	m->link = link;
	m->gen = READ_ONCE(link->generation);
	m->truesize = kmalloc_size_roundup(sizeof(*m));
	if (h->op == GNTSOCK_OP_GRANT) {
		/* Whether the socket takes it is known when the owner hands
		 * it on (a RESPONSE before it may be on the backlog too): it
		 * is refused then if not.
		 */
		accept = !sock_flag(sk, SOCK_DEAD);
		m->gin = gntsock_grant_in_new(link, sk, &vsk->grants, h,
					      accept);
		if (!m->gin) {
			gntsock_bl_msg_free(m);
			return NULL;
		}
	}
	if (h->op == GNTSOCK_OP_RW && (h->len || !stream)) {
		m->b = gntsock_rxbuf_new(sk, h->len,
					 stream ? GNTSOCK_RXBUF_ROOM : 0);
		if (!m->b) {
			gntsock_bl_msg_free(m);
			return ERR_PTR(-ENOMEM);
		}
		m->b->len = h->len;
		m->b->flags = h->flags;
		m->truesize += m->b->truesize;
		fill.b = m->b;
		fill.pos = 0;
		if (h->len)
			gntsock_link_rx_payload_cb(link, 0, h->len,
						   gntsock_fill_rxbuf, &fill);
	}
	return m;
}

/**
 * gntsock_bl_msg_free() - free a backlog entry and what it still holds
 * @m: the entry, off any list; a grant it still holds is released
 */
void gntsock_bl_msg_free(struct gntsock_bl_msg *m)
{
	if (m->b)
		gntsock_rxbuf_delete(m->b);
	if (m->gin)
		gntsock_grant_in_refuse(m->gin);
	gntsock_link_put(m->link);
	kfree(m);
}

/**
 * gntsock_backlog_purge() - free what a dying socket's backlog holds
 * @vsk: the socket, being destroyed (nobody owns its lock, so its backlog
 *	is empty unless a bug of ours left something there)
 */
void gntsock_backlog_purge(struct gntsock_sock *vsk)
{
	struct gntsock_bl_msg *m, *tmp;

	WARN_ON_ONCE(!list_empty(&vsk->backlog) || vsk->bl_head.link);
	list_for_each_entry_safe(m, tmp, &vsk->backlog, node) {
		list_del(&m->node);
		gntsock_bl_msg_free(m);
	}
	if (vsk->bl_head.link)
		gntsock_link_put(vsk->bl_head.link);
}
