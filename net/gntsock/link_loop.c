// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock loopback link: same-domain connections use a link that exists
 * from module load to unload, needs no hypervisor and no xenbus device.
 * Sending queues a copy of the message (bounded: GNTSOCK_LOOP_QUEUE_MAX)
 * and its rx work hands it to the layer above through the link core
 * (link.c), so the same protocol handler and credit code serve both kinds
 * of link.
 */

#include <linux/sizes.h>
#include <linux/slab.h>

#include "gntsock.h"
#include "link.h"

/* A message in flight on the loopback link. */
struct gntsock_loop_msg {
	struct list_head node;
	struct gntsock_msg_hdr h;
	u8 data[];
};

struct gntsock_link *gntsock_loopback;

/* The loopback link's queue holds at most this much memory of messages
 * from senders of data (records, stream bytes), as a real link's ring holds
 * at most its size: beyond it such a sender gets -ENOSPC and waits for the
 * rx work to make room (tx_kick), as for a full ring. Control messages are
 * never refused: a lost credit update or shutdown would stall another
 * user's connection for good. They are small, at most one or two per
 * socket operation, and charged to the memory cgroup of whoever sends
 * them.
 */
#define GNTSOCK_LOOP_QUEUE_MAX	SZ_1M

/* Give back the room of a loopback message, and tell senders waiting for
 * room (they compare tx_kick with what they read before their try).
 */
static void gntsock_loop_unreserve(struct gntsock_link *link, u32 size)
{
	spin_lock_bh(&link->loop_lock);
	link->loop_mem -= size;
	spin_unlock_bh(&link->loop_lock);
	/* (wq_has_sleeper() orders the increment before its look) */
	atomic_inc(&link->tx_kick);
	if (wq_has_sleeper(&link->tx_wq))
		gntsock_tx_kick(link);
	gntsock_space_watch_flush(link);
}

/* Loopback: queue a copy of the message for the rx work. */
static int gntsock_loop_send(struct gntsock_link *link,
			     const struct gntsock_msg_hdr *h,
			     gntsock_copy_fn fn, void *ctx)
{
	u32 size = struct_size_t(struct gntsock_loop_msg, data, h->len);
	struct gntsock_loop_msg *m;
	int err;

	/* Reserved before the copy, which may sleep on a page fault. A
	 * control message (gntsock_link_send_ctl(): no @fn) always fits.
	 */
	spin_lock_bh(&link->loop_lock);
	if (fn && link->loop_mem + size > GNTSOCK_LOOP_QUEUE_MAX) {
		spin_unlock_bh(&link->loop_lock);
		atomic64_inc(&gntsock_stats.loop_full);
		return -ENOSPC;
	}
	link->loop_mem += size;
	spin_unlock_bh(&link->loop_lock);
	m = kvmalloc(size, GFP_KERNEL_ACCOUNT);
	err = m ? 0 : -ENOBUFS;
	if (m && h->len)
		err = fn(m->data, h->len, ctx);
	if (err) {
		kvfree(m);
		gntsock_loop_unreserve(link, size);
		return err;
	}
	m->h = *h;
	spin_lock_bh(&link->loop_lock);
	list_add_tail(&m->node, &link->loop_queue);
	spin_unlock_bh(&link->loop_lock);
	atomic64_inc(&link->stat_tx_msgs);
	atomic64_add(h->len, &link->stat_tx_bytes);
	queue_work(gntsock_wq, &link->rx_work);
	return 0;
}

static void gntsock_loop_work(struct work_struct *work)
{
	struct gntsock_link *link = container_of(work, struct gntsock_link,
						 rx_work);
	struct gntsock_loop_msg *m;
	enum gntsock_violation v;

	for (;;) {
		spin_lock_bh(&link->loop_lock);
		m = list_first_entry_or_null(&link->loop_queue,
					     struct gntsock_loop_msg, node);
		if (m)
			list_del(&m->node);
		spin_unlock_bh(&link->loop_lock);
		if (!m)
			break;
		/* Our own messages: the check only guards against bugs. */
		v = gntsock_msg_validate(&m->h, link->max_payload);
		if (v == GNTSOCK_V_NONE) {
			atomic64_inc(&link->stat_rx_msgs);
			atomic64_add(m->h.len, &link->stat_rx_bytes);
			link->loop_payload = m->data;
			gntsock_link_deliver(link, &m->h);
			link->loop_payload = NULL;
		} else {
			gntsock_link_violation(link, v);
		}
		gntsock_loop_unreserve(link,
				       struct_size(m, data, m->h.len));
		kvfree(m);
		cond_resched();
	}
}

static void gntsock_loop_purge(struct gntsock_link *link)
{
	struct gntsock_loop_msg *m, *tmp;

	list_for_each_entry_safe(m, tmp, &link->loop_queue, node) {
		list_del(&m->node);
		link->loop_mem -= struct_size(m, data, m->h.len);
		kvfree(m);
	}
}

/**
 * gntsock_loopback_create() - make the loopback link, at module load
 *
 * Return: 0, or -ENOMEM. The link (gntsock_loopback) is connected from the
 * start and stays until gntsock_loopback_destroy().
 */
int gntsock_loopback_create(void)
{
	struct gntsock_link *l;

	l = kzalloc(sizeof(*l), GFP_KERNEL);
	if (!l)
		return -ENOMEM;
	kref_init(&l->kref);
	INIT_LIST_HEAD(&l->node);
	l->peer = gntsock_local_domid();
	l->loopback = true;
	l->loop_send = gntsock_loop_send;
	/* The peer is this domain: its own answer, on both ends. */
	l->map_revocable = gntsock_link_map_revocable();
	l->peer_map_revocable = l->map_revocable;
	l->state = GNTSOCK_LINK_CONNECTED;
	l->max_payload = GNTSOCK_MSG_MAX_PAYLOAD;
	gntsock_link_init(l, gntsock_loop_work);
	spin_lock_init(&l->loop_lock);
	INIT_LIST_HEAD(&l->loop_queue);
	gntsock_loopback = l;
	return 0;
}

/**
 * gntsock_loopback_destroy() - drop the loopback link, at module unload
 *
 * Every socket is gone (each holds a module reference): drop the link.
 * Messages still queued are freed undelivered.
 */
void gntsock_loopback_destroy(void)
{
	struct gntsock_link *l = gntsock_loopback;

	flush_work(&l->rx_work);
	gntsock_loop_purge(l);
	gntsock_loopback = NULL;
	gntsock_link_put(l);
}
