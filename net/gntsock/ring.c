// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock byte ring: producer/consumer over shared pages (see ring.h).
 */
#include "ring.h"

void gntsock_ring_init(struct gntsock_ring *r, struct gntsock_ring_idx *idx,
		       void **pages, unsigned int order)
{
	r->idx = idx;
	r->pages = pages;
	r->size = GNTSOCK_PAGE_SIZE << order;
	r->local = 0;
}

/* Walk [pos, pos + len) of the ring page by page, calling fn on each piece.
 * pos is a free-running index; the mask keeps every access inside the ring.
 */
static int ring_walk(struct gntsock_ring *r, u32 pos, u32 len,
		     gntsock_copy_fn fn, void *ctx)
{
	while (len) {
		u32 at = pos & (r->size - 1);
		u32 pg = at >> GNTSOCK_PAGE_SHIFT;
		u32 in = at & (GNTSOCK_PAGE_SIZE - 1);
		u32 n = min(len, GNTSOCK_PAGE_SIZE - in);
		int err = fn((char *)r->pages[pg] + in, n, ctx);

		if (err)
			return err;
		pos += n;
		len -= n;
	}
	return 0;
}

struct ring_buf {
	char *buf;
};

static int copy_in(void *ring_mem, u32 len, void *ctx)
{
	struct ring_buf *b = ctx;

	memcpy(ring_mem, b->buf, len);
	b->buf += len;
	return 0;
}

static int copy_out(void *ring_mem, u32 len, void *ctx)
{
	struct ring_buf *b = ctx;

	memcpy(b->buf, ring_mem, len);
	b->buf += len;
	return 0;
}

/**
 * gntsock_ring_space() - free bytes the producer may write
 * @r: producer ring
 * @space: out: free bytes
 *
 * Return: 0, or -EPROTO if the peer's consumer index is impossible.
 */
int gntsock_ring_space(struct gntsock_ring *r, u32 *space)
{
	u32 cons = READ_ONCE(r->idx->cons);
	u32 used = r->local - cons;

	/* Order the read of cons before our writes into the freed space. */
	gnt_mb();
	if (used > r->size)
		return -EPROTO;
	*space = r->size - used;
	return 0;
}

void gntsock_ring_write(struct gntsock_ring *r, u32 off, const void *src,
			u32 len)
{
	struct ring_buf b = { .buf = (char *)src };

	ring_walk(r, r->local + off, len, copy_in, &b);
}

int gntsock_ring_write_cb(struct gntsock_ring *r, u32 off, u32 len,
			  gntsock_copy_fn fn, void *ctx)
{
	return ring_walk(r, r->local + off, len, fn, ctx);
}

/**
 * gntsock_ring_publish() - make written bytes visible to the consumer
 * @r: producer ring
 * @bytes: bytes written since the last publish, at offsets from 0
 */
void gntsock_ring_publish(struct gntsock_ring *r, u32 bytes)
{
	gnt_wmb();
	r->local += bytes;
	WRITE_ONCE(r->idx->prod, r->local);
}

void gntsock_ring_set_prod_waiting(struct gntsock_ring *r, bool waiting)
{
	WRITE_ONCE(r->idx->prod_waiting, waiting ? 1 : 0);
	gnt_mb();
}

/* After publishing: does the consumer want an event? */
bool gntsock_ring_consumer_waiting(struct gntsock_ring *r)
{
	gnt_mb();
	return READ_ONCE(r->idx->cons_waiting) != 0;
}

/**
 * gntsock_ring_avail() - bytes the consumer may read
 * @r: consumer ring
 * @avail: out: readable bytes
 *
 * Return: 0, or -EPROTO if the peer's producer index is impossible.
 */
int gntsock_ring_avail(struct gntsock_ring *r, u32 *avail)
{
	u32 prod = READ_ONCE(r->idx->prod);
	u32 n = prod - r->local;

	/* Order the read of prod before reading the data it covers. */
	gnt_rmb();
	if (n > r->size)
		return -EPROTO;
	*avail = n;
	return 0;
}

void gntsock_ring_read(struct gntsock_ring *r, u32 off, void *dst, u32 len)
{
	struct ring_buf b = { .buf = dst };

	ring_walk(r, r->local + off, len, copy_out, &b);
}

int gntsock_ring_read_cb(struct gntsock_ring *r, u32 off, u32 len,
			 gntsock_copy_fn fn, void *ctx)
{
	return ring_walk(r, r->local + off, len, fn, ctx);
}

/**
 * gntsock_ring_consume() - release read bytes to the producer
 * @r: consumer ring
 * @bytes: bytes read since the last consume
 */
void gntsock_ring_consume(struct gntsock_ring *r, u32 bytes)
{
	/* Finish reading the data before handing its space back. */
	gnt_mb();
	r->local += bytes;
	WRITE_ONCE(r->idx->cons, r->local);
}

void gntsock_ring_set_cons_waiting(struct gntsock_ring *r, bool waiting)
{
	WRITE_ONCE(r->idx->cons_waiting, waiting ? 1 : 0);
	gnt_mb();
}

/* After consuming: does the producer want an event? */
bool gntsock_ring_producer_waiting(struct gntsock_ring *r)
{
	gnt_mb();
	return READ_ONCE(r->idx->prod_waiting) != 0;
}
