/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One direction of a link: a byte ring over an array of pages, with its
 * indices in the shared control page. Pure code: no kernel-only calls.
 *
 * Each side keeps its own index privately (the producer its prod, the
 * consumer its cons) and only publishes it; the other side's index is read
 * once per call and validated, so a peer scribbling on the shared page can
 * make a call fail with -EPROTO but never make it read or write outside the
 * ring.
 */
#ifndef _GNTSOCK_RING_H
#define _GNTSOCK_RING_H

#include "wire.h"

/**
 * struct gntsock_ring - one direction of a link's rings
 * @idx: shared indices
 * @pages: the ring's pages, each %GNTSOCK_PAGE_SIZE bytes
 * @size: ring size in bytes, a power of two multiple of the page size
 * @local: our private index: prod for a producer, cons for a consumer
 * @evt_seen: @local when we last looked whether the other end waits
 * @peer_seen: producer: the consumer's index when we last looked at the
 *	space (it never moves back)
 * @peer_evt: notify the other end by its event index, not by its flag
 *	(it said it keeps one: xenstore "feature-event-index"); the link
 *	sets it before each check
 * @cons_asking: consumer: whether it last asked for events or stopped
 *	asking (gntsock_ring_set_cons_waiting()), as it wrote it: the shared
 *	flag is the peer's to scribble on
 */
struct gntsock_ring {
	struct gntsock_ring_idx *idx;
	void **pages;
	u32 size;
	u32 local;
	u32 evt_seen;
	u32 peer_seen;
	bool peer_evt;
	bool cons_asking;
};

typedef int (*gntsock_copy_fn)(void *ring_mem, u32 len, void *ctx);

void gntsock_ring_init(struct gntsock_ring *r, struct gntsock_ring_idx *idx,
		       void **pages, unsigned int order);
bool gntsock_ring_event_crossed(u32 event, u32 old, u32 new);

/* Producer side. */
int gntsock_ring_space(struct gntsock_ring *r, u32 *space);
void gntsock_ring_write(struct gntsock_ring *r, u32 off, const void *src,
			u32 len);
int gntsock_ring_write_cb(struct gntsock_ring *r, u32 off, u32 len,
			  gntsock_copy_fn fn, void *ctx);
void gntsock_ring_publish(struct gntsock_ring *r, u32 bytes);
bool gntsock_ring_set_prod_waiting(struct gntsock_ring *r, bool waiting);
bool gntsock_ring_consumer_waiting(struct gntsock_ring *r);

/* Consumer side. */
int gntsock_ring_avail(struct gntsock_ring *r, u32 *avail);
void gntsock_ring_read(struct gntsock_ring *r, u32 off, void *dst, u32 len);
int gntsock_ring_read_cb(struct gntsock_ring *r, u32 off, u32 len,
			 gntsock_copy_fn fn, void *ctx);
void gntsock_ring_consume(struct gntsock_ring *r, u32 bytes);
void gntsock_ring_set_cons_waiting(struct gntsock_ring *r, bool waiting);
bool gntsock_ring_producer_waiting(struct gntsock_ring *r);

#endif /* _GNTSOCK_RING_H */
