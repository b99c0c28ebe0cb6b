/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gntsock messages: framing in a ring and validation of what the peer sent.
 * Pure code: no kernel-only calls.
 */
#ifndef _GNTSOCK_PROTO_H
#define _GNTSOCK_PROTO_H

#include "ring.h"

/* Why a message was rejected; indexes the violation counters. */
enum gntsock_violation {
	GNTSOCK_V_NONE = 0,
	GNTSOCK_V_RING_INDEX,	/* producer/consumer index out of range */
	GNTSOCK_V_TRUNCATED,	/* header or payload beyond published bytes */
	GNTSOCK_V_OP,		/* unknown operation */
	GNTSOCK_V_LEN,		/* length too large, or set on a non-RW op */
	GNTSOCK_V_FLAGS,	/* flags not defined for the op */
	GNTSOCK_V_TYPE,		/* unknown socket type */
	GNTSOCK_V_RESERVED,	/* reserved field not zero */
	GNTSOCK_V_CREDIT,	/* data beyond the credit we advertised */
	GNTSOCK_V_CTRL_PAGE,	/* bad magic, version, order or grant refs */
	GNTSOCK_V_GRANT,	/* bad GRANT payload, unknown id, double release */
	GNTSOCK_V_MAX,
};

extern const char *const gntsock_violation_names[GNTSOCK_V_MAX];

/**
 * gntsock_msg_size() - ring bytes a message with @len payload bytes takes
 * @len: payload length
 */
static inline u32 gntsock_msg_size(u32 len)
{
	return (u32)sizeof(struct gntsock_msg_hdr) +
		((len + GNTSOCK_MSG_ALIGN - 1) & ~(GNTSOCK_MSG_ALIGN - 1));
}

/* Credit a SEQPACKET message uses at least (wire.h). */
#define GNTSOCK_SEQ_CHARGE_MIN	64U

/**
 * gntsock_rw_charge() - receiver credit an RW message uses
 * @type: %GNTSOCK_TYPE_STREAM or %GNTSOCK_TYPE_SEQPACKET
 * @len: its payload length
 *
 * A stream message uses its length; a SEQPACKET message (a record or a
 * part of one) at least %GNTSOCK_SEQ_CHARGE_MIN bytes.
 *
 * Return: bytes of credit.
 */
static inline u32 gntsock_rw_charge(u16 type, u32 len)
{
	if (type == GNTSOCK_TYPE_SEQPACKET)
		return len > GNTSOCK_SEQ_CHARGE_MIN ? len : GNTSOCK_SEQ_CHARGE_MIN;
	return len ? len : 1U;
}

/**
 * gntsock_seq_record_charge() - credit a SEQPACKET record of @len bytes uses
 * @len: record length
 * @max_payload: the link's largest message payload (the record is sent in
 *	parts of this size, the last one shorter), at least
 *	%GNTSOCK_SEQ_CHARGE_MIN
 *
 * Return: the sum of gntsock_rw_charge() over the record's parts.
 */
static inline u32 gntsock_seq_record_charge(u32 len, u32 max_payload)
{
	u32 rest = len % max_payload;

	return (len / max_payload) * max_payload +
	       (rest || !len ?
		gntsock_rw_charge(GNTSOCK_TYPE_SEQPACKET, rest) : 0);
}

/* Is @len a possible GRANT payload length? */
static inline bool gntsock_grant_len_valid(u32 len)
{
	return len >= sizeof(struct gntsock_grant_msg) + sizeof(__u32) &&
	       len <= sizeof(struct gntsock_grant_msg) +
		      GNTSOCK_GRANT_MAX_PAGES * sizeof(__u32) &&
	       !(len % sizeof(__u32));
}

u32 gntsock_max_payload(u32 ring_size);
enum gntsock_violation
gntsock_grant_payload_validate(const struct gntsock_grant_msg *g, u32 len);
enum gntsock_violation gntsock_msg_validate(const struct gntsock_msg_hdr *h,
					    u32 max_payload);
enum gntsock_violation gntsock_msg_peek(struct gntsock_ring *r,
					struct gntsock_msg_hdr *h,
					u32 max_payload);
int gntsock_msg_put(struct gntsock_ring *r, const struct gntsock_msg_hdr *h,
		    gntsock_copy_fn fn, void *ctx);
enum gntsock_violation gntsock_ctrl_validate(const struct gntsock_ctrl_page *c,
					     unsigned int expect_order);

#endif /* _GNTSOCK_PROTO_H */
