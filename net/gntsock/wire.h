/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gntsock wire format: the shared control page, the two byte rings of a link
 * and the message header. Both kernels of a link use this layout; the peer
 * is untrusted, so everything read from it is copied once and validated
 * (proto.c, ring.c). Fields are in the CPU's byte order: every architecture
 * Linux runs Xen guests on is little-endian, as in Xen's own io/ rings.
 * See Documentation/wire-protocol.rst.
 */
#ifndef _GNTSOCK_WIRE_H
#define _GNTSOCK_WIRE_H

#include "compat.h"

#define GNTSOCK_WIRE_MAGIC	0x53544e47U	/* "GNTS" */
#define GNTSOCK_WIRE_VERSION	2U

#define GNTSOCK_PAGE_SHIFT	12
#define GNTSOCK_PAGE_SIZE	4096U	/* 1 << GNTSOCK_PAGE_SHIFT */

/* Each direction's ring holds 1 << ring_order pages. */
#define GNTSOCK_RING_ORDER_MAX		8	/* 1 MiB each way */
#define GNTSOCK_RING_ORDER_DEFAULT	4	/* 64 KiB each way */

/* Directions, indexing gntsock_ctrl_page.ring[]. */
#define GNTSOCK_DIR_F2B		0	/* frontend produces, backend consumes */
#define GNTSOCK_DIR_B2F		1	/* backend produces, frontend consumes */

/**
 * struct gntsock_ring_idx - indices of one byte ring, in the control page
 * @prod: bytes produced, free running; written only by the producer
 * @prod_waiting: set by the producer when it waits for space; a consumer
 *	that does not use event indices then notifies after advancing @cons
 * @prod_event: event index, written by the producer when it waits for
 *	space: a consumer that uses event indices notifies when it advances
 *	@cons past it (from below @prod_event to at least @prod_event)
 * @cons: bytes consumed, free running; written only by the consumer
 * @cons_waiting: set by the consumer when it waits for data; a producer
 *	that does not use event indices then notifies after advancing @prod
 * @cons_event: event index, written by the consumer when it waits for
 *	data: a producer that uses event indices notifies when it advances
 *	@prod past it
 *
 * An end uses the other end's event index only if that end wrote
 * "feature-event-index" = 1 in xenstore; each end writes its flag and its
 * event index alike, so an older peer keeps working with the flags. The
 * event index makes the notification once per wait, as Xen's
 * RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(): the flag stays set until the
 * waiter looks again, and a producer seeing it notifies for every message
 * it publishes meanwhile.
 *
 * Producer and consumer fields sit on separate cache lines.
 */
struct gntsock_ring_idx {
	__u32 prod;
	__u32 prod_waiting;
	__u32 prod_event;
	__u8 pad0[52];
	__u32 cons;
	__u32 cons_waiting;
	__u32 cons_event;
	__u8 pad1[52];
};

/**
 * struct gntsock_ctrl_page - the page whose grant the frontend publishes
 * @magic: %GNTSOCK_WIRE_MAGIC
 * @version: %GNTSOCK_WIRE_VERSION
 * @ring_order: log2 of the pages per direction
 * @reserved: zero
 * @ring: indices of both directions, %GNTSOCK_DIR_F2B and %GNTSOCK_DIR_B2F
 * @data_ref: grant references of the data pages: 1 << @ring_order for
 *	F2B, then as many for B2F
 *
 * Written by the frontend before it publishes its grant reference; the
 * backend copies the header and the references out once.
 */
struct gntsock_ctrl_page {
	__u32 magic;
	__u32 version;
	__u32 ring_order;
	__u32 reserved[13];
	struct gntsock_ring_idx ring[2];
	__u32 data_ref[];
};

#define GNTSOCK_CTRL_MAX_REFS \
	((GNTSOCK_PAGE_SIZE - offsetof(struct gntsock_ctrl_page, data_ref)) / \
	 sizeof(__u32))

/* Message operations. */
enum gntsock_op {
	GNTSOCK_OP_INVALID = 0,
	GNTSOCK_OP_REQUEST = 1,		/* connect request */
	GNTSOCK_OP_RESPONSE = 2,	/* connect accepted */
	GNTSOCK_OP_RST = 3,		/* refuse or abort a connection */
	GNTSOCK_OP_SHUTDOWN = 4,	/* flags: GNTSOCK_SHUT_* */
	GNTSOCK_OP_RW = 5,		/* data, len bytes follow */
	GNTSOCK_OP_CREDIT_UPDATE = 6,	/* buf_alloc/fwd_cnt changed */
	GNTSOCK_OP_CREDIT_REQUEST = 7,	/* please send CREDIT_UPDATE */
	GNTSOCK_OP_GRANT = 8,		/* struct gntsock_grant_msg follows */
	GNTSOCK_OP_GRANT_REVOKE = 9,	/* granter: unmap grant_id, answer */
	GNTSOCK_OP_GRANT_RELEASE = 10,	/* mapper: grant_id unmapped for good */
	GNTSOCK_OP_MAX = GNTSOCK_OP_GRANT_RELEASE,
};

#define GNTSOCK_SHUT_RCV	0x1	/* sender will receive no more */
#define GNTSOCK_SHUT_SEND	0x2	/* sender will send no more */
#define GNTSOCK_SHUT_MASK	(GNTSOCK_SHUT_RCV | GNTSOCK_SHUT_SEND)

/* RW flags, SEQPACKET only: record boundaries, as virtio-vsock's SEQ_EOM/EOR. */
#define GNTSOCK_RW_EOM		0x1	/* last fragment of a record */
#define GNTSOCK_RW_EOR		0x2	/* the record was sent with MSG_EOR */
#define GNTSOCK_RW_MASK		(GNTSOCK_RW_EOM | GNTSOCK_RW_EOR)

#define GNTSOCK_TYPE_STREAM	1
#define GNTSOCK_TYPE_SEQPACKET	2

/**
 * struct gntsock_msg_hdr - header of every message in a ring
 * @op: enum gntsock_op
 * @flags: op-specific flags, zero unless the op defines some
 * @len: payload bytes after the header (RW and GRANT; zero otherwise)
 * @src_port: sender's port
 * @dst_port: receiver's port
 * @buf_alloc: sender socket's receive buffer, in bytes (its credit)
 * @fwd_cnt: bytes the sender socket's reader has consumed, free running
 * @type: socket type, %GNTSOCK_TYPE_STREAM or %GNTSOCK_TYPE_SEQPACKET
 * @reserved0: zero
 * @grant_id: GRANT_REVOKE and GRANT_RELEASE: the grant; zero otherwise
 *
 * A message occupies sizeof(hdr) + @len rounded up to %GNTSOCK_MSG_ALIGN
 * bytes of ring, and may wrap around the ring's end.
 *
 * Credit: an RW message uses gntsock_rw_charge(@type, @len) bytes of the
 * receiver's credit: a stream message its length, a SEQPACKET message
 * (a record, or a part of a record longer than a message) at least 64
 * bytes, so that the records a receiver holds for its credit take about
 * as much memory as the credit (version 1: one byte for an empty record,
 * and a peer made 64 bytes of kernel memory of each byte of credit).
 */
struct gntsock_msg_hdr {
	__u16 op;
	__u16 flags;
	__u32 len;
	__u32 src_port;
	__u32 dst_port;
	__u32 buf_alloc;
	__u32 fwd_cnt;
	__u16 type;
	__u16 reserved0;
	__u32 grant_id;
};

/* GRANT_RELEASE flags: why the mapper let go. */
#define GNTSOCK_REL_REVOKED	0x1	/* answer to GRANT_REVOKE */
#define GNTSOCK_REL_REFUSED	0x2	/* never delivered (limits, closed) */
#define GNTSOCK_REL_MASK	(GNTSOCK_REL_REVOKED | GNTSOCK_REL_REFUSED)

/* GRANT flags */
#define GNTSOCK_GRANT_F_WRITABLE	0x1

/**
 * struct gntsock_grant_msg - payload of GRANT
 * @id: grant id, chosen by the granter, unique on the link while the
 *	grant lives; never zero
 * @npages: pages, 1 .. %GNTSOCK_GRANT_MAX_PAGES
 * @refs: @npages grant references of the granter's grant table, each
 *	granting one page to the receiving domain
 *
 * The header's flags carry %GNTSOCK_GRANT_F_WRITABLE; len is
 * sizeof(struct gntsock_grant_msg) + 4 * @npages.
 */
struct gntsock_grant_msg {
	__u32 id;
	__u32 npages;
	__u32 refs[];
};

#define GNTSOCK_GRANT_MAX_PAGES	1024U

#define GNTSOCK_MSG_ALIGN	8U
#define GNTSOCK_MSG_MAX_PAYLOAD	65536U

static_assert(sizeof(struct gntsock_ring_idx) == 128, "ring idx layout");
static_assert(sizeof(struct gntsock_ctrl_page) == 320, "ctrl page layout");
static_assert(sizeof(struct gntsock_msg_hdr) == 32, "msg hdr layout");

#endif /* _GNTSOCK_WIRE_H */
