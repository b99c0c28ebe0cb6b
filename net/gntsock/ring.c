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
	r->evt_seen = 0;
	r->peer_seen = 0;
	r->peer_evt = false;
	r->cons_asking = false;
}

/**
 * gntsock_ring_event_crossed() - did moving an index pass an event index?
 * @event: the waiting end's event index: "notify me once yours reaches this"
 * @old: the index when we last looked
 * @new: the index now
 *
 * As Xen's RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(): true if @event lies in
 * (@old, @new], in free-running 32-bit arithmetic. An end that keeps
 * moving its index past an event index it already passed does not notify
 * again until the waiting end writes a new one.
 *
 * Return: true if the other end asked for an event in that range.
 */
bool gntsock_ring_event_crossed(u32 event, u32 old, u32 new)
{
	return (u32)(new - event) < (u32)(new - old);
}

/* After moving our index: does the other end want an event? @flag and
 * @event are its flag and its event index; each is read once.
 */
static bool ring_other_waits(struct gntsock_ring *r, const __u32 *flag,
			     const __u32 *event)
{
	u32 old = r->evt_seen;

	gnt_mb();
	r->evt_seen = r->local;
	if (r->peer_evt)
		return gntsock_ring_event_crossed(READ_ONCE(*event), old,
						  r->local);
	return READ_ONCE(*flag) != 0;
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
	/* Beyond what we produced, or back below what it had consumed
	 * (which would let a peer make our writers look again forever:
	 * gntsock_ring_set_prod_waiting()).
	 */
	if (used > r->size || used > r->local - r->peer_seen)
		return -EPROTO;
	r->peer_seen = cons;
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

/**
 * gntsock_ring_set_prod_waiting() - ask for, or stop asking for, an event
 *	when the consumer frees space
 * @r: producer ring
 * @waiting: ask (true) or stop asking (false)
 *
 * Asking sets both the flag and the event index: the consumer's index as
 * our last gntsock_ring_space() saw it, plus one (any progress since).
 * Stopping clears the flag only: the event index fires at most once
 * anyway.
 *
 * The consumer may have moved since that look, before it could see the
 * request; then it sent no event. So its index is read again after the
 * barrier, as after RING_FINAL_CHECK_FOR_RESPONSES(): if it moved, the
 * caller looks at the space again instead of sleeping; if not, any later
 * move sees the request.
 *
 * Return: true if the consumer moved since our last look at the space.
 */
bool gntsock_ring_set_prod_waiting(struct gntsock_ring *r, bool waiting)
{
	if (waiting)
		WRITE_ONCE(r->idx->prod_event, r->peer_seen + 1);
	WRITE_ONCE(r->idx->prod_waiting, waiting ? 1 : 0);
	gnt_mb();
	return waiting && READ_ONCE(r->idx->cons) != r->peer_seen;
}

/* After publishing: does the consumer want an event? */
bool gntsock_ring_consumer_waiting(struct gntsock_ring *r)
{
	return ring_other_waits(r, &r->idx->cons_waiting, &r->idx->cons_event);
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

/**
 * gntsock_ring_set_cons_waiting() - ask for, or stop asking for, an event
 *	when the producer publishes
 * @r: consumer ring
 * @waiting: ask (true) or stop asking (false)
 *
 * Asking sets both the flag and the event index (our index plus one: any
 * new byte); the caller then looks at the ring again before it sleeps.
 * Stopping clears the flag and moves the event index behind our index: a
 * consumer that keeps looking by itself (the rx work draining, a reader
 * busy-polling) gets no event for what is published meanwhile, from a
 * producer that keeps event indices as from one that reads the flag. (A
 * producer crosses it only if we consumed part of what it published
 * since it last looked: one event.)
 */
void gntsock_ring_set_cons_waiting(struct gntsock_ring *r, bool waiting)
{
	WRITE_ONCE(r->idx->cons_event, r->local + (waiting ? 1 : -1));
	WRITE_ONCE(r->idx->cons_waiting, waiting ? 1 : 0);
	r->cons_asking = waiting;
	gnt_mb();
}

/* After consuming: does the producer want an event? */
bool gntsock_ring_producer_waiting(struct gntsock_ring *r)
{
	return ring_other_waits(r, &r->idx->prod_waiting, &r->idx->prod_event);
}
