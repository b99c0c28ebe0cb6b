// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests of the pure ring and protocol code (net/gntsock/ring.c,
 * proto.c), the same files the module builds. A peer is simulated by
 * writing the shared indices and ring memory directly.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include "ring.h"
#include "proto.h"

#define ORDER	1	/* two pages: messages wrap page and ring ends */

struct rig {
	struct gntsock_ring_idx idx;
	void *pages[1 << ORDER];
	struct gntsock_ring prod;
	struct gntsock_ring cons;
};

static void rig_init(struct rig *r)
{
	unsigned int i;

	memset(&r->idx, 0, sizeof(r->idx));
	for (i = 0; i < (1U << ORDER); i++)
		r->pages[i] = calloc(1, GNTSOCK_PAGE_SIZE);
	gntsock_ring_init(&r->prod, &r->idx, r->pages, ORDER);
	gntsock_ring_init(&r->cons, &r->idx, r->pages, ORDER);
}

static void rig_free(struct rig *r)
{
	unsigned int i;

	for (i = 0; i < (1U << ORDER); i++)
		free(r->pages[i]);
}

struct src {
	const unsigned char *p;
	int fail_at;	/* fail the copy once this many bytes were copied */
	int done;
};

static int copy_src(void *ring_mem, u32 len, void *ctx)
{
	struct src *s = ctx;

	if (s->fail_at >= 0 && s->done + (int)len > s->fail_at)
		return -EFAULT;
	memcpy(ring_mem, s->p, len);
	s->p += len;
	s->done += len;
	return 0;
}

static void hdr_rw(struct gntsock_msg_hdr *h, u32 len)
{
	memset(h, 0, sizeof(*h));
	h->op = GNTSOCK_OP_RW;
	h->type = GNTSOCK_TYPE_STREAM;
	h->len = len;
	h->src_port = 1;
	h->dst_port = 2;
}

TEST(empty_ring_has_no_message)
{
	struct gntsock_msg_hdr h;
	struct rig r;

	rig_init(&r);
	EXPECT_EQ(GNTSOCK_V_MAX, gntsock_msg_peek(&r.cons, &h, 1024));
	rig_free(&r);
}

TEST(messages_round_trip_across_wraps)
{
	unsigned char in[2048], out[2048];
	struct gntsock_msg_hdr h, got;
	struct src s;
	struct rig r;
	int i, round;

	rig_init(&r);
	for (i = 0; i < (int)sizeof(in); i++)
		in[i] = i * 7 + 3;
	/* Odd sizes walk the message start over every offset of the ring. */
	for (round = 0; round < 500; round++) {
		u32 len = (round * 37) % 2000 + 1;

		hdr_rw(&h, len);
		s = (struct src){ .p = in, .fail_at = -1 };
		ASSERT_EQ(0, gntsock_msg_put(&r.prod, &h, copy_src, &s));
		ASSERT_EQ(GNTSOCK_V_NONE, gntsock_msg_peek(&r.cons, &got, 2048));
		ASSERT_EQ(len, got.len);
		ASSERT_EQ(0, memcmp(&h, &got, sizeof(h)));
		gntsock_ring_read(&r.cons, sizeof(got), out, len);
		ASSERT_EQ(0, memcmp(in, out, len));
		gntsock_ring_consume(&r.cons, gntsock_msg_size(len));
	}
	EXPECT_EQ(GNTSOCK_V_MAX, gntsock_msg_peek(&r.cons, &got, 2048));
	rig_free(&r);
}

TEST(full_ring_gives_enospc_and_publishes_nothing)
{
	unsigned char in[1024] = { 0 };
	struct gntsock_msg_hdr h;
	struct src s;
	struct rig r;
	u32 prod_before;
	int n = 0;

	rig_init(&r);
	hdr_rw(&h, 1000);
	for (;;) {
		s = (struct src){ .p = in, .fail_at = -1 };
		prod_before = r.idx.prod;
		if (gntsock_msg_put(&r.prod, &h, copy_src, &s))
			break;
		n++;
	}
	/* 8 KiB ring, 1032-byte messages: 7 fit. */
	EXPECT_EQ(7, n);
	EXPECT_EQ(prod_before, r.idx.prod);
	s = (struct src){ .p = in, .fail_at = -1 };
	EXPECT_EQ(-ENOSPC, gntsock_msg_put(&r.prod, &h, copy_src, &s));
	rig_free(&r);
}

TEST(failed_copy_publishes_nothing)
{
	unsigned char in[512] = { 0 };
	struct gntsock_msg_hdr h;
	struct src s = { .p = in, .fail_at = 100 };
	struct rig r;

	rig_init(&r);
	hdr_rw(&h, 512);
	EXPECT_EQ(-EFAULT, gntsock_msg_put(&r.prod, &h, copy_src, &s));
	EXPECT_EQ(0, r.idx.prod);
	EXPECT_EQ(GNTSOCK_V_MAX, gntsock_msg_peek(&r.cons, &h, 1024));
	rig_free(&r);
}

TEST(impossible_indices_are_violations)
{
	struct gntsock_msg_hdr h;
	struct rig r;
	u32 space;

	rig_init(&r);
	/* Producer claims more than a ring's worth. */
	r.idx.prod = r.cons.size + 8;
	EXPECT_EQ(GNTSOCK_V_RING_INDEX, gntsock_msg_peek(&r.cons, &h, 1024));
	/* Consumer claims to have consumed what was never produced. */
	r.idx.prod = 0;
	r.idx.cons = 64;
	EXPECT_EQ(-EPROTO, gntsock_ring_space(&r.prod, &space));
	hdr_rw(&h, 0);
	EXPECT_EQ(-EPROTO, gntsock_msg_put(&r.prod, &h, NULL, NULL));
	rig_free(&r);
}

TEST(truncated_message_is_a_violation)
{
	struct gntsock_msg_hdr h, got;
	struct rig r;

	rig_init(&r);
	hdr_rw(&h, 512);
	gntsock_ring_write(&r.prod, 0, &h, sizeof(h));
	/* Publish the header but only part of the payload. */
	gntsock_ring_publish(&r.prod, sizeof(h) + 100);
	EXPECT_EQ(GNTSOCK_V_TRUNCATED, gntsock_msg_peek(&r.cons, &got, 1024));
	rig_free(&r);
	rig_init(&r);
	gntsock_ring_publish(&r.prod, 8);	/* less than a header */
	EXPECT_EQ(GNTSOCK_V_TRUNCATED, gntsock_msg_peek(&r.cons, &got, 1024));
	rig_free(&r);
}

TEST(header_validation_rules)
{
	struct gntsock_msg_hdr h;

	hdr_rw(&h, 100);
	EXPECT_EQ(GNTSOCK_V_NONE, gntsock_msg_validate(&h, 1024));
	h.len = 1025;
	EXPECT_EQ(GNTSOCK_V_LEN, gntsock_msg_validate(&h, 1024));
	hdr_rw(&h, 0);
	h.op = 0;
	EXPECT_EQ(GNTSOCK_V_OP, gntsock_msg_validate(&h, 1024));
	h.op = GNTSOCK_OP_MAX + 1;
	EXPECT_EQ(GNTSOCK_V_OP, gntsock_msg_validate(&h, 1024));
	hdr_rw(&h, 0);
	h.op = GNTSOCK_OP_RST;
	EXPECT_EQ(GNTSOCK_V_NONE, gntsock_msg_validate(&h, 1024));
	h.len = 4;
	EXPECT_EQ(GNTSOCK_V_LEN, gntsock_msg_validate(&h, 1024));
	h.len = 0;
	h.flags = 1;
	EXPECT_EQ(GNTSOCK_V_FLAGS, gntsock_msg_validate(&h, 1024));
	h.op = GNTSOCK_OP_SHUTDOWN;
	h.flags = GNTSOCK_SHUT_MASK;
	EXPECT_EQ(GNTSOCK_V_NONE, gntsock_msg_validate(&h, 1024));
	h.flags = 4;
	EXPECT_EQ(GNTSOCK_V_FLAGS, gntsock_msg_validate(&h, 1024));
	h.flags = 0;
	h.type = 5;
	EXPECT_EQ(GNTSOCK_V_TYPE, gntsock_msg_validate(&h, 1024));
	h.type = GNTSOCK_TYPE_STREAM;
	h.grant_id = 1;
	EXPECT_EQ(GNTSOCK_V_RESERVED, gntsock_msg_validate(&h, 1024));
}

/* SEQPACKET record flags: only on RW of a SEQPACKET connection. */
TEST(seqpacket_record_flags)
{
	struct gntsock_msg_hdr h;

	hdr_rw(&h, 10);
	h.flags = GNTSOCK_RW_EOM;
	EXPECT_EQ(GNTSOCK_V_FLAGS, gntsock_msg_validate(&h, 1024));
	h.type = GNTSOCK_TYPE_SEQPACKET;
	EXPECT_EQ(GNTSOCK_V_NONE, gntsock_msg_validate(&h, 1024));
	h.flags = GNTSOCK_RW_EOM | GNTSOCK_RW_EOR;
	EXPECT_EQ(GNTSOCK_V_NONE, gntsock_msg_validate(&h, 1024));
	h.flags = GNTSOCK_RW_EOR;	/* EOR without EOM */
	EXPECT_EQ(GNTSOCK_V_FLAGS, gntsock_msg_validate(&h, 1024));
	h.flags = 4;
	EXPECT_EQ(GNTSOCK_V_FLAGS, gntsock_msg_validate(&h, 1024));
	h.flags = 0;			/* a fragment */
	EXPECT_EQ(GNTSOCK_V_NONE, gntsock_msg_validate(&h, 1024));
	h.len = 0;			/* zero-length record */
	h.flags = GNTSOCK_RW_EOM;
	EXPECT_EQ(GNTSOCK_V_NONE, gntsock_msg_validate(&h, 1024));
	EXPECT_EQ(GNTSOCK_SEQ_CHARGE_MIN,
		  gntsock_rw_charge(GNTSOCK_TYPE_SEQPACKET, h.len));
	EXPECT_EQ(GNTSOCK_SEQ_CHARGE_MIN,
		  gntsock_rw_charge(GNTSOCK_TYPE_SEQPACKET, 1U));
	EXPECT_EQ(65U, gntsock_rw_charge(GNTSOCK_TYPE_SEQPACKET, 65U));
	EXPECT_EQ(1U, gntsock_rw_charge(GNTSOCK_TYPE_STREAM, 0U));
	EXPECT_EQ(10U, gntsock_rw_charge(GNTSOCK_TYPE_STREAM, 10U));
	/* A record in parts of 1000: each part at least the minimum. */
	EXPECT_EQ(GNTSOCK_SEQ_CHARGE_MIN, gntsock_seq_record_charge(0U, 1000U));
	EXPECT_EQ(GNTSOCK_SEQ_CHARGE_MIN, gntsock_seq_record_charge(5U, 1000U));
	EXPECT_EQ(1000U, gntsock_seq_record_charge(1000U, 1000U));
	EXPECT_EQ(2000U + GNTSOCK_SEQ_CHARGE_MIN,
		  gntsock_seq_record_charge(2001U, 1000U));
	EXPECT_EQ(2500U, gntsock_seq_record_charge(2500U, 1000U));
	h.op = GNTSOCK_OP_CREDIT_UPDATE;	/* flags on a non-RW op */
	EXPECT_EQ(GNTSOCK_V_FLAGS, gntsock_msg_validate(&h, 1024));
	h.flags = 0;
	EXPECT_EQ(GNTSOCK_V_NONE, gntsock_msg_validate(&h, 1024));
	h.type = 3;
	EXPECT_EQ(GNTSOCK_V_TYPE, gntsock_msg_validate(&h, 1024));
}

TEST(grant_message_validation)
{
	struct {
		struct gntsock_grant_msg m;
		__u32 refs[4];
	} g = { .m = { .id = 7, .npages = 4 } };
	struct gntsock_msg_hdr h;
	u32 len = sizeof(g);

	hdr_rw(&h, len);
	h.op = GNTSOCK_OP_GRANT;
	EXPECT_EQ(GNTSOCK_V_NONE, gntsock_msg_validate(&h, 1024));
	EXPECT_EQ(GNTSOCK_V_NONE, gntsock_grant_payload_validate(&g.m, len));
	h.flags = GNTSOCK_GRANT_F_WRITABLE;
	EXPECT_EQ(GNTSOCK_V_NONE, gntsock_msg_validate(&h, 1024));
	h.flags = 2;
	EXPECT_EQ(GNTSOCK_V_FLAGS, gntsock_msg_validate(&h, 1024));
	h.flags = 0;
	h.len = 8;		/* no reference */
	EXPECT_EQ(GNTSOCK_V_LEN, gntsock_msg_validate(&h, 1024));
	h.len = 14;		/* not a whole reference */
	EXPECT_EQ(GNTSOCK_V_LEN, gntsock_msg_validate(&h, 1024));
	h.len = 8 + 4 * (GNTSOCK_GRANT_MAX_PAGES + 1);
	EXPECT_EQ(GNTSOCK_V_LEN, gntsock_msg_validate(&h, 1U << 20));
	h.len = len;
	h.grant_id = 3;		/* only REVOKE/RELEASE carry an id */
	EXPECT_EQ(GNTSOCK_V_RESERVED, gntsock_msg_validate(&h, 1024));
	/* payload: npages must match len, id non-zero, bounded */
	g.m.npages = 3;
	EXPECT_EQ(GNTSOCK_V_GRANT, gntsock_grant_payload_validate(&g.m, len));
	g.m.npages = 0x40000001;	/* 4 * npages overflows u32 */
	EXPECT_EQ(GNTSOCK_V_GRANT, gntsock_grant_payload_validate(&g.m, len));
	g.m.npages = 4;
	g.m.id = 0;
	EXPECT_EQ(GNTSOCK_V_GRANT, gntsock_grant_payload_validate(&g.m, len));

	/* REVOKE / RELEASE: no payload, a non-zero id */
	hdr_rw(&h, 0);
	h.op = GNTSOCK_OP_GRANT_REVOKE;
	EXPECT_EQ(GNTSOCK_V_RESERVED, gntsock_msg_validate(&h, 1024));
	h.grant_id = 9;
	EXPECT_EQ(GNTSOCK_V_NONE, gntsock_msg_validate(&h, 1024));
	h.flags = GNTSOCK_REL_REVOKED;
	EXPECT_EQ(GNTSOCK_V_FLAGS, gntsock_msg_validate(&h, 1024));
	h.op = GNTSOCK_OP_GRANT_RELEASE;
	EXPECT_EQ(GNTSOCK_V_NONE, gntsock_msg_validate(&h, 1024));
	h.flags = GNTSOCK_REL_MASK + 1;
	EXPECT_EQ(GNTSOCK_V_FLAGS, gntsock_msg_validate(&h, 1024));
	h.flags = 0;
	h.len = 8;
	EXPECT_EQ(GNTSOCK_V_LEN, gntsock_msg_validate(&h, 1024));
}

TEST(ctrl_page_validation)
{
	struct gntsock_ctrl_page c = {
		.magic = GNTSOCK_WIRE_MAGIC,
		.version = GNTSOCK_WIRE_VERSION,
		.ring_order = 4,
	};

	EXPECT_EQ(GNTSOCK_V_NONE, gntsock_ctrl_validate(&c, 4));
	EXPECT_EQ(GNTSOCK_V_CTRL_PAGE, gntsock_ctrl_validate(&c, 3));
	c.magic++;
	EXPECT_EQ(GNTSOCK_V_CTRL_PAGE, gntsock_ctrl_validate(&c, 4));
	c.magic--;
	c.version = GNTSOCK_WIRE_VERSION + 1;
	EXPECT_EQ(GNTSOCK_V_CTRL_PAGE, gntsock_ctrl_validate(&c, 4));
	c.version = 1;	/* charged a SEQPACKET record less credit */
	EXPECT_EQ(GNTSOCK_V_CTRL_PAGE, gntsock_ctrl_validate(&c, 4));
	c.version = GNTSOCK_WIRE_VERSION;
	c.ring_order = GNTSOCK_RING_ORDER_MAX + 1;
	EXPECT_EQ(GNTSOCK_V_CTRL_PAGE,
		  gntsock_ctrl_validate(&c, GNTSOCK_RING_ORDER_MAX + 1));
	EXPECT_GE(GNTSOCK_CTRL_MAX_REFS, 2U << GNTSOCK_RING_ORDER_MAX);
}

TEST(max_payload_scales_with_ring)
{
	EXPECT_EQ(1024U, gntsock_max_payload(4096));
	EXPECT_EQ(16384U, gntsock_max_payload(65536));
	EXPECT_EQ(GNTSOCK_MSG_MAX_PAYLOAD, gntsock_max_payload(1U << 20));
}

/* A producer and a consumer thread over one ring: ordering and barriers. */
struct conc {
	struct rig *r;
	unsigned long long total;
	unsigned long long sum;
};

static unsigned char pattern(unsigned long long i)
{
	return (i * 2654435761ULL) >> 13;
}

static void *producer(void *arg)
{
	struct conc *c = arg;
	unsigned char buf[2000];
	unsigned long long sent = 0;
	struct gntsock_msg_hdr h;
	struct src s;

	while (sent < c->total) {
		u32 len = 1 + (sent % 1999), i;

		if (len > c->total - sent)
			len = c->total - sent;
		for (i = 0; i < len; i++)
			buf[i] = pattern(sent + i);
		hdr_rw(&h, len);
		s = (struct src){ .p = buf, .fail_at = -1 };
		if (gntsock_msg_put(&c->r->prod, &h, copy_src, &s)) {
			sched_yield();	/* full (the consumer may need our CPU) */
			continue;
		}
		sent += len;
	}
	return NULL;
}

TEST(concurrent_producer_consumer)
{
	struct conc c = { .total = 32ULL << 20 };
	unsigned char buf[2048];
	unsigned long long got = 0, bad = 0;
	struct gntsock_msg_hdr h;
	enum gntsock_violation v;
	pthread_t t;
	struct rig r;
	u32 i;

	rig_init(&r);
	c.r = &r;
	ASSERT_EQ(0, pthread_create(&t, NULL, producer, &c));
	while (got < c.total) {
		v = gntsock_msg_peek(&r.cons, &h, 2048);
		if (v == GNTSOCK_V_MAX) {
			sched_yield();	/* empty */
			continue;
		}
		ASSERT_EQ(GNTSOCK_V_NONE, v);
		gntsock_ring_read(&r.cons, sizeof(h), buf, h.len);
		for (i = 0; i < h.len; i++)
			bad += buf[i] != pattern(got + i);
		got += h.len;
		gntsock_ring_consume(&r.cons, gntsock_msg_size(h.len));
	}
	pthread_join(t, NULL);
	EXPECT_EQ(c.total, got);
	EXPECT_EQ(0ULL, bad);
	rig_free(&r);
}

TEST(event_index_crossing)
{
	/* (old, new]: the event fires once, when the index first reaches it. */
	EXPECT_TRUE(gntsock_ring_event_crossed(1, 0, 1));
	EXPECT_TRUE(gntsock_ring_event_crossed(1, 0, 100));
	EXPECT_FALSE(gntsock_ring_event_crossed(1, 1, 100));
	EXPECT_FALSE(gntsock_ring_event_crossed(101, 0, 100));
	EXPECT_FALSE(gntsock_ring_event_crossed(1, 5, 5));
	/* Free-running indices wrap. */
	EXPECT_TRUE(gntsock_ring_event_crossed(0, 0xfffffff0U, 0x10));
	EXPECT_TRUE(gntsock_ring_event_crossed(0xfffffff8U, 0xfffffff0U, 0x10));
	EXPECT_FALSE(gntsock_ring_event_crossed(0x11, 0xfffffff0U, 0x10));
}

/* Both ends keep event indices; the consumer asks, and with @stop then
 * stops asking. Publishes @n messages, one look at the consumer after
 * each. Return: the events the producer would send.
 */
static int evt_put_count(struct rig *r, bool stop, int n)
{
	struct gntsock_msg_hdr h;
	int i, events = 0;

	r->prod.peer_evt = true;
	r->cons.peer_evt = true;
	gntsock_ring_set_cons_waiting(&r->cons, true);
	if (stop)
		gntsock_ring_set_cons_waiting(&r->cons, false);
	for (i = 0; i < n; i++) {
		hdr_rw(&h, 0);
		if (gntsock_msg_put(&r->prod, &h, NULL, NULL))
			return -1;
		events += gntsock_ring_consumer_waiting(&r->prod);
	}
	return events;
}

/* A consumer that asked once gets one event, however many messages the
 * producer publishes before it looks again; with the flag alone (an older
 * peer) it gets one per message.
 */
TEST(event_index_notifies_once_per_wait)
{
	struct gntsock_msg_hdr h;
	struct rig r;
	int i, events;

	rig_init(&r);
	EXPECT_EQ(1, evt_put_count(&r, false, 5));
	hdr_rw(&h, 0);
	/* It drains, stops asking, asks again: the next message notifies. */
	gntsock_ring_set_cons_waiting(&r.cons, false);
	while (gntsock_msg_peek(&r.cons, &h, 1024) == GNTSOCK_V_NONE)
		gntsock_ring_consume(&r.cons, gntsock_msg_size(h.len));
	EXPECT_FALSE(gntsock_ring_consumer_waiting(&r.prod));
	gntsock_ring_set_cons_waiting(&r.cons, true);
	ASSERT_EQ(0, gntsock_msg_put(&r.prod, &h, NULL, NULL));
	EXPECT_TRUE(gntsock_ring_consumer_waiting(&r.prod));

	/* An older consumer keeps only its flag: notify while it is set. */
	r.prod.peer_evt = false;
	for (events = 0, i = 0; i < 3; i++) {
		ASSERT_EQ(0, gntsock_msg_put(&r.prod, &h, NULL, NULL));
		events += gntsock_ring_consumer_waiting(&r.prod);
	}
	EXPECT_EQ(3, events);

	/* Space events: one when the consumer first frees room after the
	 * producer asked, none for later consumption.
	 */
	gntsock_ring_set_prod_waiting(&r.prod, true);
	for (events = 0; gntsock_msg_peek(&r.cons, &h, 1024) ==
			 GNTSOCK_V_NONE;) {
		gntsock_ring_consume(&r.cons, gntsock_msg_size(h.len));
		events += gntsock_ring_producer_waiting(&r.cons);
	}
	EXPECT_EQ(1, events);
	rig_free(&r);
}

/*
 * A consumer that stops asking (it drains, or busy-polls, by itself) gets
 * no event for what is published meanwhile, though it asked before and the
 * producer has not crossed that event index yet; once it asks again, the
 * next message notifies.
 */
TEST(consumer_that_stops_asking_gets_no_event)
{
	struct gntsock_msg_hdr h;
	struct rig r;
	int i;

	rig_init(&r);
	EXPECT_EQ(0, evt_put_count(&r, true, 5));
	hdr_rw(&h, 0);
	/* It takes some while it polls, then stops polling with more there. */
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(GNTSOCK_V_NONE, gntsock_msg_peek(&r.cons, &h, 1024));
		gntsock_ring_consume(&r.cons, gntsock_msg_size(h.len));
		gntsock_ring_set_cons_waiting(&r.cons, false);
	}
	ASSERT_EQ(0, gntsock_msg_put(&r.prod, &h, NULL, NULL));
	EXPECT_FALSE(gntsock_ring_consumer_waiting(&r.prod));
	/* It drains the rest and asks: the next message notifies. */
	while (gntsock_msg_peek(&r.cons, &h, 1024) == GNTSOCK_V_NONE)
		gntsock_ring_consume(&r.cons, gntsock_msg_size(h.len));
	gntsock_ring_set_cons_waiting(&r.cons, true);
	ASSERT_EQ(0, gntsock_msg_put(&r.prod, &h, NULL, NULL));
	EXPECT_TRUE(gntsock_ring_consumer_waiting(&r.prod));
	rig_free(&r);
}

/* The consumer frees room after the producer found the ring full, before
 * the producer asks for a space event: the consumer saw no request and
 * sent no event, so asking must say "look again", or the producer sleeps
 * on room it was never told of.
 */
TEST(space_request_after_consumer_moved_looks_again)
{
	struct gntsock_msg_hdr h;
	struct rig r;
	int events = 0;

	rig_init(&r);
	r.prod.peer_evt = true;
	r.cons.peer_evt = true;
	hdr_rw(&h, 0);
	while (gntsock_msg_put(&r.prod, &h, NULL, NULL) == 0)
		;
	ASSERT_EQ(GNTSOCK_V_NONE, gntsock_msg_peek(&r.cons, &h, 1024));
	gntsock_ring_consume(&r.cons, gntsock_msg_size(h.len));
	events += gntsock_ring_producer_waiting(&r.cons);
	EXPECT_EQ(0, events);
	EXPECT_TRUE(gntsock_ring_set_prod_waiting(&r.prod, true));
	/* Looked again: the request now stands, and the next move fires. */
	hdr_rw(&h, 0);
	ASSERT_EQ(0, gntsock_msg_put(&r.prod, &h, NULL, NULL));
	ASSERT_EQ(-ENOSPC, gntsock_msg_put(&r.prod, &h, NULL, NULL));
	EXPECT_FALSE(gntsock_ring_set_prod_waiting(&r.prod, true));
	ASSERT_EQ(GNTSOCK_V_NONE, gntsock_msg_peek(&r.cons, &h, 1024));
	gntsock_ring_consume(&r.cons, gntsock_msg_size(h.len));
	EXPECT_TRUE(gntsock_ring_producer_waiting(&r.cons));
	rig_free(&r);
}

/* A consumer index that moves back is refused: it would "free" room twice,
 * and keep our writers looking again.
 */
TEST(consumer_index_never_moves_back)
{
	struct gntsock_msg_hdr h;
	struct rig r;
	u32 space;

	rig_init(&r);
	hdr_rw(&h, 0);
	ASSERT_EQ(0, gntsock_msg_put(&r.prod, &h, NULL, NULL));
	ASSERT_EQ(0, gntsock_msg_put(&r.prod, &h, NULL, NULL));
	ASSERT_EQ(GNTSOCK_V_NONE, gntsock_msg_peek(&r.cons, &h, 1024));
	gntsock_ring_consume(&r.cons, gntsock_msg_size(h.len));
	ASSERT_EQ(0, gntsock_ring_space(&r.prod, &space));
	r.idx.cons -= 8;
	EXPECT_EQ(-EPROTO, gntsock_ring_space(&r.prod, &space));
	r.idx.cons += 8;
	EXPECT_EQ(0, gntsock_ring_space(&r.prod, &space));
	rig_free(&r);
}

/* A producer and a consumer that each sleep on a simulated event channel
 * (a latched pending bit, as Xen's) when the ring is full or empty: no
 * wake-up may be lost, and with event indices no side notifies more than
 * once for each time the other asked.
 */
struct evch {
	pthread_mutex_t m;
	pthread_cond_t c;
	int pending;
	unsigned long sent;
};

static void evch_notify(struct evch *e)
{
	pthread_mutex_lock(&e->m);
	e->pending = 1;
	e->sent++;
	pthread_cond_signal(&e->c);
	pthread_mutex_unlock(&e->m);
}

/* Wait up to 2 s for an event. Return: whether one came. */
static int evch_wait(struct evch *e)
{
	struct timespec ts;
	int got;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 2;
	pthread_mutex_lock(&e->m);
	while (!e->pending &&
	       pthread_cond_timedwait(&e->c, &e->m, &ts) == 0)
		;
	got = e->pending;
	e->pending = 0;
	pthread_mutex_unlock(&e->m);
	return got;
}

struct evrig {
	struct rig r;
	struct evch data, space;
	unsigned long long total;
	unsigned long prod_asks, cons_asks, lost_space, lost_data;
	int stop;	/* the consumer gave up */
	int done;	/* the producer returned */
};

static void *ev_producer(void *arg)
{
	struct evrig *e = arg;
	unsigned char buf[2000];
	unsigned long long sent = 0;
	struct gntsock_msg_hdr h;
	unsigned long msgs = 0;
	u32 len, i, space;
	struct src s;
	int err;

	while (sent < e->total && !READ_ONCE(e->stop)) {
		len = 1 + (sent * 7919) % 1999;
		if (len > e->total - sent)
			len = e->total - sent;
		for (i = 0; i < len; i++)
			buf[i] = pattern(sent + i);
		hdr_rw(&h, len);
		s = (struct src){ .p = buf, .fail_at = -1 };
		err = gntsock_msg_put(&e->r.prod, &h, copy_src, &s);
		if (err == -ENOSPC) {
			/* Ask and sleep, unless the consumer moved since
			 * the look that found the ring full: then look
			 * again (as gntsock_tx_done()).
			 */
			e->prod_asks++;
			if (!gntsock_ring_set_prod_waiting(&e->r.prod, true) &&
			    !evch_wait(&e->space)) {
				gntsock_ring_space(&e->r.prod, &space);
				if (space >= gntsock_msg_size(len)) {
					e->lost_space++;
					break;
				}
			}
			gntsock_ring_set_prod_waiting(&e->r.prod, false);
			continue;
		}
		if (err)
			break;
		sent += len;
		if (gntsock_ring_consumer_waiting(&e->r.prod))
			evch_notify(&e->data);
		/* Now and then let the consumer catch up and wait for each
		 * single small message (for up to 3 s: it gives up after 2).
		 */
		if ((++msgs % 256) < 16)
			for (i = 0; i < 30000 && !READ_ONCE(e->stop) &&
			     READ_ONCE(e->r.idx.cons) != e->r.prod.local; i++)
				usleep(100);
	}
	WRITE_ONCE(e->done, 1);
	return NULL;
}

FIXTURE(evstress) {
	struct evrig e;
};

FIXTURE_VARIANT(evstress) {
	bool event_index;
};

FIXTURE_VARIANT_ADD(evstress, event_index) { .event_index = true };
FIXTURE_VARIANT_ADD(evstress, flags_only) { .event_index = false };

FIXTURE_SETUP(evstress)
{
	memset(&self->e, 0, sizeof(self->e));
	rig_init(&self->e.r);
	pthread_mutex_init(&self->e.data.m, NULL);
	pthread_cond_init(&self->e.data.c, NULL);
	pthread_mutex_init(&self->e.space.m, NULL);
	pthread_cond_init(&self->e.space.c, NULL);
	self->e.r.prod.peer_evt = variant->event_index;
	self->e.r.cons.peer_evt = variant->event_index;
	self->e.total = 8ULL << 20;
}

FIXTURE_TEARDOWN(evstress)
{
	rig_free(&self->e.r);
}

TEST_F_TIMEOUT(evstress, no_lost_wakeup_one_event_per_wait, 300)
{
	struct evrig *e = &self->e;
	unsigned long long got = 0, bad = 0;
	unsigned char buf[2048];
	struct gntsock_msg_hdr h;
	enum gntsock_violation v;
	u32 i, avail;
	pthread_t t;

	ASSERT_EQ(0, pthread_create(&t, NULL, ev_producer, e));
	while (got < e->total) {
		/* The receive work: stop asking, drain, ask, look again. */
		gntsock_ring_set_cons_waiting(&e->r.cons, false);
		while ((v = gntsock_msg_peek(&e->r.cons, &h, 2048)) ==
		       GNTSOCK_V_NONE) {
			gntsock_ring_read(&e->r.cons, sizeof(h), buf, h.len);
			for (i = 0; i < h.len; i++)
				bad += buf[i] != pattern(got + i);
			got += h.len;
			gntsock_ring_consume(&e->r.cons,
					     gntsock_msg_size(h.len));
			if (gntsock_ring_producer_waiting(&e->r.cons))
				evch_notify(&e->space);
		}
		ASSERT_EQ(GNTSOCK_V_MAX, v);
		if (got == e->total)
			break;
		e->cons_asks++;
		gntsock_ring_set_cons_waiting(&e->r.cons, true);
		ASSERT_EQ(0, gntsock_ring_avail(&e->r.cons, &avail));
		if (!avail && !evch_wait(&e->data)) {
			/* 2 s without an event: lost if data is there; a
			 * slow producer (a loaded host) is waited for.
			 */
			ASSERT_EQ(0, gntsock_ring_avail(&e->r.cons, &avail));
			e->lost_data += avail != 0;
			if (avail || READ_ONCE(e->done))
				break;
		}
	}
	WRITE_ONCE(e->stop, 1);
	pthread_join(t, NULL);
	TH_LOG("%s: %lu data events for %lu waits, %lu space events for %lu waits",
	       variant->event_index ? "event index" : "flags",
	       e->data.sent, e->cons_asks, e->space.sent, e->prod_asks);
	EXPECT_EQ(e->total, got);
	EXPECT_EQ(0ULL, bad);
	EXPECT_EQ(0UL, e->lost_data);
	EXPECT_EQ(0UL, e->lost_space);
	if (variant->event_index) {
		EXPECT_LE(e->data.sent, e->cons_asks);
		EXPECT_LE(e->space.sent, e->prod_asks);
	}
}

TEST_HARNESS_MAIN
