// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target: everything a hostile peer controls on the receive side
 * (the producer index and the ring's bytes) fed through the same peek /
 * validate / consume loop the module's rx work runs. Out-of-bounds access
 * (ASan), undefined behaviour (UBSan) or a loop that does not end fails.
 */
#include <stdlib.h>
#include <stdio.h>

#include "ring.h"
#include "proto.h"

#define ORDER	1

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static unsigned char page[1 << ORDER][GNTSOCK_PAGE_SIZE];
	void *pages[1 << ORDER] = { page[0], page[1] };
	struct gntsock_ring_idx idx = { 0 };
	struct gntsock_ring r;
	struct gntsock_msg_hdr h;
	unsigned char payload[GNTSOCK_PAGE_SIZE] __attribute__((aligned(8)));
	u32 max = gntsock_max_payload(sizeof(page));
	unsigned int steps = 0;
	u32 start;

	if (size < 8)
		return 0;
	memcpy(&idx.prod, data, 4);
	memcpy(&start, data + 4, 4);
	data += 8;
	size -= 8;
	memset(page, 0, sizeof(page));
	memcpy(page, data, size < sizeof(page) ? size : sizeof(page));

	gntsock_ring_init(&r, &idx, pages, ORDER);
	r.local = start;	/* any starting point of the free-running index */
	for (;;) {
		enum gntsock_violation v = gntsock_msg_peek(&r, &h, max);

		if (v != GNTSOCK_V_NONE)
			break;
		if (h.len > max || gntsock_msg_size(h.len) > r.size)
			abort();
		gntsock_ring_read(&r, sizeof(h), payload, h.len);
		if (h.op == GNTSOCK_OP_GRANT)
			(void)gntsock_grant_payload_validate((void *)payload,
							     h.len);
		gntsock_ring_consume(&r, gntsock_msg_size(h.len));
		/* Each message consumes at least a header. */
		if (++steps > r.size / sizeof(h))
			abort();
	}
	return 0;
}
