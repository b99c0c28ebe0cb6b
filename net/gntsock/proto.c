// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock message framing and validation (see proto.h).
 */
#include "proto.h"

const char *const gntsock_violation_names[GNTSOCK_V_MAX] = {
	[GNTSOCK_V_NONE] = "none",
	[GNTSOCK_V_RING_INDEX] = "ring_index",
	[GNTSOCK_V_TRUNCATED] = "truncated",
	[GNTSOCK_V_OP] = "op",
	[GNTSOCK_V_LEN] = "len",
	[GNTSOCK_V_FLAGS] = "flags",
	[GNTSOCK_V_TYPE] = "type",
	[GNTSOCK_V_RESERVED] = "reserved",
	[GNTSOCK_V_CREDIT] = "credit",
	[GNTSOCK_V_CTRL_PAGE] = "ctrl_page",
	[GNTSOCK_V_GRANT] = "grant",
};

/**
 * gntsock_max_payload() - largest RW payload for a ring of @ring_size bytes
 * @ring_size: ring size in bytes
 *
 * A quarter of the ring, at most %GNTSOCK_MSG_MAX_PAYLOAD, so that several
 * messages are in flight and a writer never waits for a wholly empty ring.
 */
u32 gntsock_max_payload(u32 ring_size)
{
	return min(ring_size / 4, GNTSOCK_MSG_MAX_PAYLOAD);
}

/**
 * gntsock_msg_validate() - check a header copied out of shared memory
 * @h: the local copy
 * @max_payload: largest payload this ring allows
 *
 * Return: %GNTSOCK_V_NONE, or the first rule the header breaks.
 */
enum gntsock_violation gntsock_msg_validate(const struct gntsock_msg_hdr *h,
					    u32 max_payload)
{
	bool grant_ctl = h->op == GNTSOCK_OP_GRANT_REVOKE ||
			 h->op == GNTSOCK_OP_GRANT_RELEASE;

	if (h->op == GNTSOCK_OP_INVALID || h->op > GNTSOCK_OP_MAX)
		return GNTSOCK_V_OP;
	if (h->reserved0 || (!grant_ctl && h->grant_id) ||
	    (grant_ctl && !h->grant_id))
		return GNTSOCK_V_RESERVED;
	if (h->type != GNTSOCK_TYPE_STREAM && h->type != GNTSOCK_TYPE_SEQPACKET)
		return GNTSOCK_V_TYPE;
	if (h->op == GNTSOCK_OP_RW) {
		if (h->len > max_payload)
			return GNTSOCK_V_LEN;
	} else if (h->op == GNTSOCK_OP_GRANT) {
		if (!gntsock_grant_len_valid(h->len) || h->len > max_payload)
			return GNTSOCK_V_LEN;
	} else if (h->len) {
		return GNTSOCK_V_LEN;
	}
	switch (h->op) {
	case GNTSOCK_OP_SHUTDOWN:
		if (h->flags & ~GNTSOCK_SHUT_MASK)
			return GNTSOCK_V_FLAGS;
		break;
	case GNTSOCK_OP_RW:
		if (h->type != GNTSOCK_TYPE_SEQPACKET) {
			if (h->flags)
				return GNTSOCK_V_FLAGS;
			break;
		}
		if (h->flags & ~GNTSOCK_RW_MASK)
			return GNTSOCK_V_FLAGS;
		/* EOR marks a whole record only. */
		if ((h->flags & GNTSOCK_RW_EOR) && !(h->flags & GNTSOCK_RW_EOM))
			return GNTSOCK_V_FLAGS;
		break;
	case GNTSOCK_OP_GRANT:
		if (h->flags & ~GNTSOCK_GRANT_F_WRITABLE)
			return GNTSOCK_V_FLAGS;
		break;
	case GNTSOCK_OP_GRANT_RELEASE:
		if (h->flags & ~GNTSOCK_REL_MASK)
			return GNTSOCK_V_FLAGS;
		break;
	default:
		if (h->flags)
			return GNTSOCK_V_FLAGS;
	}
	return GNTSOCK_V_NONE;
}

/**
 * gntsock_grant_payload_validate() - check a GRANT payload copied out once
 * @g: the local copy, @len bytes
 * @len: the header's (validated) len
 *
 * Return: %GNTSOCK_V_NONE or %GNTSOCK_V_GRANT.
 */
enum gntsock_violation
gntsock_grant_payload_validate(const struct gntsock_grant_msg *g, u32 len)
{
	if (!g->id || !g->npages || g->npages > GNTSOCK_GRANT_MAX_PAGES ||
	    len != sizeof(*g) + g->npages * sizeof(g->refs[0]))
		return GNTSOCK_V_GRANT;
	return GNTSOCK_V_NONE;
}

/**
 * gntsock_msg_peek() - copy out and validate the next message's header
 * @r: consumer ring
 * @h: out: local copy of the header
 * @max_payload: largest payload this ring allows
 *
 * The header is read from shared memory exactly once. On success the whole
 * message (header and payload) has been published by the producer.
 *
 * Return: %GNTSOCK_V_NONE with *h valid; %GNTSOCK_V_MAX when the ring is
 * empty; otherwise the violation.
 */
enum gntsock_violation gntsock_msg_peek(struct gntsock_ring *r,
					struct gntsock_msg_hdr *h,
					u32 max_payload)
{
	enum gntsock_violation v;
	u32 avail;

	if (gntsock_ring_avail(r, &avail))
		return GNTSOCK_V_RING_INDEX;
	if (!avail)
		return GNTSOCK_V_MAX;
	/* Producers publish whole messages only. */
	if (avail < sizeof(*h))
		return GNTSOCK_V_TRUNCATED;
	gntsock_ring_read(r, 0, h, sizeof(*h));
	v = gntsock_msg_validate(h, max_payload);
	if (v != GNTSOCK_V_NONE)
		return v;
	if (gntsock_msg_size(h->len) > avail)
		return GNTSOCK_V_TRUNCATED;
	return GNTSOCK_V_NONE;
}

/**
 * gntsock_msg_put() - write one message into the ring and publish it
 * @r: producer ring
 * @h: header; h->len payload bytes are supplied by @fn
 * @fn: copies payload into ring memory (may be called several times with
 *	consecutive pieces), or NULL when h->len is zero
 * @ctx: passed to @fn
 *
 * Nothing is published unless the whole message was written, so a failing
 * @fn (e.g. -EFAULT from a user buffer) leaves the ring unchanged.
 *
 * Return: 0; -ENOSPC if the message does not fit now; -EPROTO if the
 * peer's index is impossible; or @fn's error.
 */
int gntsock_msg_put(struct gntsock_ring *r, const struct gntsock_msg_hdr *h,
		    gntsock_copy_fn fn, void *ctx)
{
	u32 size = gntsock_msg_size(h->len);
	u32 space;
	int err;

	err = gntsock_ring_space(r, &space);
	if (err)
		return err;
	if (space < size)
		return -ENOSPC;
	if (h->len) {
		err = gntsock_ring_write_cb(r, sizeof(*h), h->len, fn, ctx);
		if (err)
			return err;
	}
	gntsock_ring_write(r, 0, h, sizeof(*h));
	gntsock_ring_publish(r, size);
	return 0;
}

/**
 * gntsock_ctrl_validate() - check the control page header a frontend wrote
 * @c: local copy of the control page's fixed part
 * @expect_order: ring order announced in xenstore
 *
 * Return: %GNTSOCK_V_NONE or %GNTSOCK_V_CTRL_PAGE.
 */
enum gntsock_violation gntsock_ctrl_validate(const struct gntsock_ctrl_page *c,
					     unsigned int expect_order)
{
	if (c->magic != GNTSOCK_WIRE_MAGIC ||
	    c->version != GNTSOCK_WIRE_VERSION ||
	    c->ring_order != expect_order ||
	    c->ring_order > GNTSOCK_RING_ORDER_MAX ||
	    (2U << c->ring_order) > GNTSOCK_CTRL_MAX_REFS)
		return GNTSOCK_V_CTRL_PAGE;
	return GNTSOCK_V_NONE;
}
