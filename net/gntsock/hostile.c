// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock hostile peer: TEST ONLY, built into gntsock_hostile.ko
 * (selftests/hostile/Kbuild, -DGNTSOCK_HOSTILE), never into gntsock.ko.
 *
 * The rig loads this module in one domU instead of gntsock.ko; the link to
 * a victim domain then comes up through the normal handshake, and root in
 * that domU makes this end of the link break the protocol on purpose by
 * writing one command to /proc/gntsock_hostile:
 *
 *   fuzz PEER MS       random and mutated messages into the tx ring: valid
 *                      headers with random ports and ops, bad lengths,
 *                      unknown ops, garbage fields, truncated headers
 *   index PEER MS      index and credit games: tx prod beyond cons + size
 *                      or moving backwards, rx cons beyond prod, credit
 *                      updates with buf_alloc/fwd_cnt that overflow
 *   toctou PEER MS     publish a valid data message, notify, then keep
 *                      rewriting its header while the victim reads it
 *   storm PEER MS      notify the victim's event channel in a tight loop
 *   reconnect PEER N   (backend only) N times: tear the link down and
 *                      switch Closing -> InitWait, but keep the victim's
 *                      old ring pages mapped (gntsock_hostile_keep_maps())
 *   release PEER       unmap every ring page kept by "reconnect"
 *   stall PEER MS      stop draining our rx ring for MS ms (hold its
 *                      rx_lock): the victim's tx ring fills while its
 *                      connections still have credit
 *   grants PEER MS PORT  GRANT messages as fast as the ring takes them on
 *                      our connection to the victim's PORT (a reader that
 *                      never reads), 1-16 pages of made-up references each
 *   grantrevoke PEER MS PORT  the same, each grant revoked right after
 *                      it (the victim's error queue is never read)
 *   backlog PEER MS PORT  on our connection to the victim's PORT, as fast
 *                      as the ring takes them: one-byte data messages each
 *                      followed by a SHUTDOWN of our receive side (64 KiB
 *                      of them, within the victim's credit), then credit
 *                      requests, credit updates and empty data messages:
 *                      what the victim's socket backlog must merge or
 *                      bound while a local user holds the socket's lock
 *   flood PEER MS      fill the ring with valid messages that need no
 *                      answer (CREDIT_REQUEST to a port nobody has), then
 *                      keep moving prod one ring ahead of the victim's
 *                      cons: the old headers stay valid, so the victim's
 *                      receive never finds the ring empty
 *
 * Reading the file gives the last command's result as "key=value ...".
 * Each attack runs for its time (or count) whatever the victim does: when
 * the victim resets the link we wait for it to come back and go on.
 */
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/random.h>
#include <linux/delay.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <xen/events.h>
#include <xen/grant_table.h>
#include <xen/page.h>

#include "gntsock.h"

/* Ring pages of the victim we keep mapped across a reconnect. */
struct hostile_kept {
	struct list_head node;
	domid_t peer;
	unsigned int n;
	struct page **pages;
	grant_handle_t *handles;
};

static LIST_HEAD(hostile_kept_list);
static DEFINE_MUTEX(hostile_lock);	/* one attack at a time; the list */
static int hostile_keep_peer = -1;	/* link whose maps the next unmap keeps */
static char hostile_result[256] = "none";
static unsigned int hostile_kept_pages;

/**
 * gntsock_hostile_keep_maps() - gntsock_link_keep_maps_hook: keep them?
 * @link: a backend link about to unmap its rings
 *
 * Return: true if the mappings were taken over (the link no longer has
 * them), false to unmap as usual.
 */
static bool gntsock_hostile_keep_maps(struct gntsock_link *link)
{
	unsigned int n = (2U << link->order) + 1;
	struct hostile_kept *k;

	if (READ_ONCE(hostile_keep_peer) != link->peer)
		return false;
	k = kzalloc(sizeof(*k), GFP_KERNEL);
	if (!k)
		return false;
	k->peer = link->peer;
	k->n = n;
	k->pages = link->pages;
	k->handles = link->handles;
	link->pages = NULL;
	link->handles = NULL;
	link->ctrl = NULL;
	list_add_tail(&k->node, &hostile_kept_list);
	hostile_kept_pages += n;
	return true;
}

static void hostile_unmap_kept(struct hostile_kept *k)
{
	struct gnttab_unmap_grant_ref op;
	unsigned int i;

	for (i = 0; i < k->n; i++) {
		if (!k->pages[i] || k->handles[i] == INVALID_GRANT_HANDLE)
			continue;
		gnttab_set_unmap_op(&op, (unsigned long)
				    pfn_to_kaddr(page_to_pfn(k->pages[i])),
				    GNTMAP_host_map, k->handles[i]);
		gnttab_unmap_refs(&op, NULL, &k->pages[i], 1);
		atomic_dec(&gntsock_stats.ring_maps);
	}
	gnttab_free_pages(k->n, k->pages);
	kfree(k->pages);
	kfree(k->handles);
}

/* Unmap the kept pages of @peer (or all, @peer < 0). hostile_lock held. */
static unsigned int hostile_release(int peer)
{
	struct hostile_kept *k, *tmp;
	unsigned int n = 0;

	list_for_each_entry_safe(k, tmp, &hostile_kept_list, node) {
		if (peer >= 0 && k->peer != peer)
			continue;
		list_del(&k->node);
		n += k->n;
		hostile_kept_pages -= k->n;
		hostile_unmap_kept(k);
		kfree(k);
	}
	return n;
}

/* The link to @peer once connected, waiting up to @ms; NULL if it is not. */
static struct gntsock_link *hostile_link(domid_t peer, unsigned int ms)
{
	unsigned long end = jiffies + msecs_to_jiffies(ms);
	struct gntsock_link *link;

	for (;;) {
		link = gntsock_link_get(peer);
		if (link || time_after(jiffies, end) || signal_pending(current))
			return link;
		usleep_range(5000, 6000);
	}
}

/* The link to @peer, waiting for it to come back after a reset, while
 * time is left before @end (NULL after). Counts links in *@links.
 */
static struct gntsock_link *hostile_next_link(domid_t peer, unsigned long end,
					      unsigned long *links)
{
	struct gntsock_link *link;

	while (time_before(jiffies, end) && !signal_pending(current)) {
		link = hostile_link(peer, 200);
		if (link) {
			(*links)++;
			return link;
		}
	}
	return NULL;
}

static void hostile_notify(struct gntsock_link *link)
{
	int irq = READ_ONCE(link->irq);

	if (irq)
		notify_remote_via_irq(irq);
}

/* A plausible header: the victim accepts it (its ports decide the rest). */
static void hostile_valid_hdr(struct gntsock_msg_hdr *h)
{
	memset(h, 0, sizeof(*h));
	h->op = 1 + get_random_u32_below(GNTSOCK_OP_MAX);
	if (h->op == GNTSOCK_OP_GRANT || h->op == GNTSOCK_OP_RW)
		h->op = GNTSOCK_OP_CREDIT_UPDATE;
	h->src_port = get_random_u32_below(0x10000);
	h->dst_port = get_random_u32_below(8) ? 5000 + get_random_u32_below(32) :
		get_random_u32();
	h->buf_alloc = get_random_u32();
	h->fwd_cnt = get_random_u32();
	h->type = 1 + get_random_u32_below(2);
	if (h->op == GNTSOCK_OP_SHUTDOWN)
		h->flags = get_random_u32_below(4);
	if (h->op == GNTSOCK_OP_GRANT_REVOKE ||
	    h->op == GNTSOCK_OP_GRANT_RELEASE)
		h->grant_id = get_random_u32();
}

/* Mutate one field of a valid header into something invalid. */
static void hostile_mutate(struct gntsock_msg_hdr *h, u32 max_payload)
{
	switch (get_random_u32_below(7)) {
	case 0:
		h->op = GNTSOCK_OP_MAX + 1 + get_random_u32_below(0xff00);
		break;
	case 1:
		h->op = GNTSOCK_OP_RW;
		h->len = max_payload + 1 + get_random_u32_below(1 << 20);
		break;
	case 2:
		h->len = 0xffffffff - get_random_u32_below(64);
		break;
	case 3:
		h->reserved0 = 1 + get_random_u32_below(0xffff);
		break;
	case 4:
		h->flags = 0x100 | get_random_u32();
		break;
	case 5:
		h->type = 3 + get_random_u32_below(0xfff0);
		break;
	default:
		h->op = GNTSOCK_OP_INVALID;
		break;
	}
}

/* Write @len bytes of @h (a header, maybe cut short) plus @pad zero bytes
 * at the producer's position and publish them. tx_lock held.
 */
static int hostile_put(struct gntsock_link *link, const void *h, u32 len,
		       u32 publish)
{
	u32 space;

	if (gntsock_ring_space(&link->tx, &space) || space < publish)
		return -ENOSPC;
	gntsock_ring_write(&link->tx, 0, h, len);
	gntsock_ring_publish(&link->tx, publish);
	return 0;
}

/* Does the link still run the rings we attacked? */
static bool hostile_up(struct gntsock_link *link)
{
	return READ_ONCE(link->state) == GNTSOCK_LINK_CONNECTED;
}

static int hostile_fuzz(domid_t peer, unsigned int ms, char *res)
{
	unsigned long end = jiffies + msecs_to_jiffies(ms);
	unsigned long valid = 0, bad = 0, trunc = 0, links = 0;
	struct gntsock_msg_hdr h;
	struct gntsock_link *link;
	u32 r, n;

	while ((link = hostile_next_link(peer, end, &links))) {
		while (hostile_up(link) && time_before(jiffies, end)) {
			spin_lock(&link->tx_lock);
			for (n = 0; n < 64 && hostile_up(link); n++) {
				hostile_valid_hdr(&h);
				r = get_random_u32_below(16);
				if (r == 0) {
					/* A header cut short. */
					u32 cut = 1 + get_random_u32_below(sizeof(h) - 1);

					if (hostile_put(link, &h, cut, cut))
						break;
					trunc++;
				} else if (r < 4) {
					hostile_mutate(&h, link->max_payload);
					if (hostile_put(link, &h, sizeof(h),
							sizeof(h)))
						break;
					bad++;
				} else {
					if (hostile_put(link, &h, sizeof(h),
							sizeof(h)))
						break;
					valid++;
				}
			}
			spin_unlock(&link->tx_lock);
			hostile_notify(link);
			cond_resched();
			usleep_range(100, 200);
		}
		gntsock_link_put(link);
	}
	return scnprintf(res, 256, "attack=fuzz valid=%lu bad=%lu truncated=%lu links=%lu",
			 valid, bad, trunc, links);
}

static int hostile_index(domid_t peer, unsigned int ms, char *res)
{
	unsigned long end = jiffies + msecs_to_jiffies(ms);
	unsigned long games[5] = { 0 }, links = 0;
	struct gntsock_msg_hdr h;
	struct gntsock_link *link;
	unsigned int g, i;
	u32 v;

	while ((link = hostile_next_link(peer, end, &links))) {
		g = get_random_u32_below(5);
		spin_lock(&link->tx_lock);
		if (hostile_up(link)) {
			switch (g) {
			case 0:	/* tx prod beyond cons + size */
				v = READ_ONCE(link->tx.idx->cons) +
					link->tx.size + 8 +
					get_random_u32_below(1 << 16);
				WRITE_ONCE(link->tx.idx->prod, v);
				break;
			case 1:	/* tx prod moving backwards */
				v = link->tx.local - 8 -
					get_random_u32_below(link->tx.size);
				WRITE_ONCE(link->tx.idx->prod, v);
				break;
			case 2:	/* rx cons beyond the victim's prod */
				v = READ_ONCE(link->rx.idx->prod) + 8 +
					get_random_u32_below(1 << 20);
				WRITE_ONCE(link->rx.idx->cons, v);
				break;
			case 3:	/* rx cons backwards: "freeing" space twice */
				v = link->rx.local - link->rx.size - 8;
				WRITE_ONCE(link->rx.idx->cons, v);
				break;
			default: /* credit that overflows, to likely ports */
				for (i = 0; i < 32; i++) {
					hostile_valid_hdr(&h);
					h.op = GNTSOCK_OP_CREDIT_UPDATE;
					h.buf_alloc = 0xffffffff;
					h.fwd_cnt = 0x80000000U + i;
					if (hostile_put(link, &h, sizeof(h),
							sizeof(h)))
						break;
				}
				break;
			}
			games[g]++;
		}
		spin_unlock(&link->tx_lock);
		hostile_notify(link);
		/* Give the victim time to notice before the next game. */
		for (i = 0; i < 100 && hostile_up(link); i++)
			usleep_range(2000, 3000);
		gntsock_link_put(link);
	}
	return scnprintf(res, 256,
			 "attack=index prod_beyond=%lu prod_back=%lu cons_beyond=%lu cons_back=%lu credit=%lu links=%lu",
			 games[0], games[1], games[2], games[3], games[4],
			 links);
}

/* Rewrite the header at ring position @pos (a free-running index). */
static void hostile_rewrite(struct gntsock_link *link, u32 pos,
			    const struct gntsock_msg_hdr *h)
{
	u32 save = link->tx.local;

	link->tx.local = pos;
	gntsock_ring_write(&link->tx, 0, h, sizeof(*h));
	link->tx.local = save;
}

static int hostile_toctou(domid_t peer, unsigned int ms, char *res)
{
	unsigned long end = jiffies + msecs_to_jiffies(ms);
	unsigned long msgs = 0, flips = 0, links = 0;
	struct gntsock_msg_hdr h, evil;
	struct gntsock_link *link;
	u32 pos, len, i;

	while ((link = hostile_next_link(peer, end, &links))) {
		while (hostile_up(link) && time_before(jiffies, end)) {
			hostile_valid_hdr(&h);
			h.op = GNTSOCK_OP_RW;
			h.type = GNTSOCK_TYPE_STREAM;
			len = 8 * (1 + get_random_u32_below(64));
			h.len = len;
			spin_lock(&link->tx_lock);
			pos = link->tx.local;
			if (!hostile_up(link) ||
			    hostile_put(link, &h, sizeof(h),
					gntsock_msg_size(len))) {
				spin_unlock(&link->tx_lock);
				break;
			}
			msgs++;
			hostile_notify(link);
			/* The victim may be reading it now: flip it. */
			for (i = 0; i < 2000; i++) {
				evil = h;
				if (i & 1) {
					evil.len = 0xfffffff0;
					evil.op = get_random_u32();
				}
				hostile_rewrite(link, pos, &evil);
				flips++;
			}
			spin_unlock(&link->tx_lock);
			cond_resched();
		}
		gntsock_link_put(link);
	}
	return scnprintf(res, 256, "attack=toctou msgs=%lu flips=%lu links=%lu",
			 msgs, flips, links);
}

static int hostile_storm(domid_t peer, unsigned int ms, char *res)
{
	unsigned long end = jiffies + msecs_to_jiffies(ms);
	unsigned long events = 0;
	struct gntsock_link *link;

	link = hostile_link(peer, 2000);
	if (!link)
		return scnprintf(res, 256, "attack=storm error=no_link");
	while (time_before(jiffies, end) && hostile_up(link)) {
		hostile_notify(link);
		if (!(++events % 1024))
			cond_resched();
	}
	gntsock_link_put(link);
	return scnprintf(res, 256, "attack=storm events=%lu", events);
}

static int hostile_flood(domid_t peer, unsigned int ms, char *res)
{
	unsigned long end = jiffies + msecs_to_jiffies(ms);
	unsigned long rounds = 0, filled = 0;
	struct gntsock_msg_hdr h;
	struct gntsock_link *link;
	u32 cons, start;

	link = hostile_link(peer, 2000);
	if (!link)
		return scnprintf(res, 256, "attack=flood error=no_link");
	memset(&h, 0, sizeof(h));
	h.op = GNTSOCK_OP_CREDIT_REQUEST;
	h.type = GNTSOCK_TYPE_STREAM;
	h.src_port = 0xfffffff0;
	h.dst_port = 0xfffffff1;
	spin_lock(&link->tx_lock);
	/* Every slot of the ring gets a header (the ring's size is a
	 * multiple of a header's), then the ring is kept full of them.
	 */
	start = link->tx.local;
	while (hostile_up(link) && filled < link->tx.size / sizeof(h)) {
		if (hostile_put(link, &h, sizeof(h), sizeof(h))) {
			hostile_notify(link);
			/* (our own link_down() needs the lock to end us) */
			spin_unlock(&link->tx_lock);
			cond_resched();
			spin_lock(&link->tx_lock);
			if (time_after(jiffies, end))
				break;
			continue;
		}
		filled++;
	}
	while (hostile_up(link) && time_before(jiffies, end)) {
		/* (the victim reads a header where one of ours starts) */
		cons = READ_ONCE(link->tx.idx->cons);
		if (!((cons - start) % sizeof(h))) {
			link->tx.local = cons + link->tx.size;
			WRITE_ONCE(link->tx.idx->prod, link->tx.local);
		}
		hostile_notify(link);
		if (!(++rounds % 1024)) {
			/* (our own link_down() needs the lock to end us) */
			spin_unlock(&link->tx_lock);
			cond_resched();
			spin_lock(&link->tx_lock);
		}
	}
	spin_unlock(&link->tx_lock);
	gntsock_link_put(link);
	return scnprintf(res, 256, "attack=flood filled=%lu rounds=%lu",
			 filled, rounds);
}

/* One forged GRANT (and its GRANT_REVOKE if @revoke). tx_lock held. */
static int hostile_put_grant(struct gntsock_link *link,
			     struct gntsock_msg_hdr *h, u32 id, bool revoke)
{
	struct {
		struct gntsock_msg_hdr h;
		struct gntsock_grant_msg m;
		u32 refs[16];
	} g;
	u32 n = 1 + get_random_u32_below(16), len, space;

	len = sizeof(g.m) + n * sizeof(g.refs[0]);
	g.h = *h;
	g.h.op = GNTSOCK_OP_GRANT;
	g.h.len = len;
	g.h.flags = get_random_u32_below(2) ? GNTSOCK_GRANT_F_WRITABLE : 0;
	memset(&g.m, 0, sizeof(g.m));
	g.m.id = id;
	g.m.npages = n;
	get_random_bytes(g.refs, n * sizeof(g.refs[0]));
	if (gntsock_ring_space(&link->tx, &space) ||
	    space < gntsock_msg_size(len) + sizeof(*h))
		return -ENOSPC;
	if (hostile_put(link, &g, sizeof(g.h) + len, gntsock_msg_size(len)))
		return -ENOSPC;
	if (!revoke)
		return 0;
	g.h = *h;
	g.h.op = GNTSOCK_OP_GRANT_REVOKE;
	g.h.grant_id = id;
	return hostile_put(link, &g.h, sizeof(g.h), sizeof(g.h));
}

static int hostile_grants(domid_t peer, unsigned int ms, u32 port,
			  bool revoke, char *res)
{
	unsigned long end = jiffies + msecs_to_jiffies(ms);
	unsigned long grants = 0, full = 0, links = 0;
	u32 id = GNTSOCK_HOSTILE_GRANT_ID;
	struct gntsock_msg_hdr h;
	struct gntsock_link *link;
	unsigned int i;

	/* The connection may still be on its way (a link just made). */
	for (i = 0; gntsock_hostile_conn_hdr(peer, port, GNTSOCK_OP_GRANT, &h, 0);
	     i++) {
		if (i == 100 || signal_pending(current))
			return scnprintf(res, 256, "attack=%s error=no_connection",
					 revoke ? "grantrevoke" : "grants");
		msleep(100);
	}
	while ((link = hostile_next_link(peer, end, &links))) {
		while (hostile_up(link) && time_before(jiffies, end)) {
			if (gntsock_hostile_conn_hdr(peer, port,
						     GNTSOCK_OP_GRANT, &h, 0)) {
				gntsock_link_put(link);
				return scnprintf(res, 256,
						 "attack=%s error=connection_lost grants=%lu",
						 revoke ? "grantrevoke" : "grants",
						 grants);
			}
			spin_lock(&link->tx_lock);
			if (!hostile_up(link) ||
			    hostile_put_grant(link, &h, ++id, revoke))
				full++;
			else
				grants++;
			spin_unlock(&link->tx_lock);
			hostile_notify(link);
			if (!(grants % 64))
				usleep_range(500, 1000);
			if (id < GNTSOCK_HOSTILE_GRANT_ID)
				id = GNTSOCK_HOSTILE_GRANT_ID;
		}
		gntsock_link_put(link);
	}
	return scnprintf(res, 256, "attack=%s grants=%lu ring_full=%lu links=%lu",
			 revoke ? "grantrevoke" : "grants", grants, full,
			 links);
}

/* Bytes of credit the backlog attack uses: well within the victim's
 * default buffer, so that it breaks no rule.
 */
#define HOSTILE_BACKLOG_CREDIT	65536U

/* The backlog attack's @i-th message on the connection of @h. tx_lock
 * held. Return: 0, or -ENOSPC with the ring full.
 */
static int hostile_put_backlog(struct gntsock_link *link,
			       const struct gntsock_msg_hdr *h, unsigned long i,
			       u32 *credit)
{
	static const u16 ops[] = { GNTSOCK_OP_CREDIT_REQUEST,
				   GNTSOCK_OP_CREDIT_UPDATE, GNTSOCK_OP_RW };
	struct {
		struct gntsock_msg_hdr h;
		u8 byte[8];
	} m = { .h = *h };

	if (*credit < HOSTILE_BACKLOG_CREDIT) {
		if (i & 1) {
			m.h.op = GNTSOCK_OP_SHUTDOWN;
			m.h.flags = GNTSOCK_SHUT_RCV;
		} else {
			m.h.op = GNTSOCK_OP_RW;
			m.h.len = 1;
			m.byte[0] = (u8)i;
		}
	} else {
		m.h.op = ops[i % ARRAY_SIZE(ops)];
	}
	/* (an RW uses credit, an empty one too) */
	if (m.h.op == GNTSOCK_OP_RW && *credit >= 2 * HOSTILE_BACKLOG_CREDIT)
		m.h.op = GNTSOCK_OP_CREDIT_REQUEST;
	if (hostile_put(link, &m, sizeof(m.h) + m.h.len,
			gntsock_msg_size(m.h.len)))
		return -ENOSPC;
	if (m.h.op == GNTSOCK_OP_RW)
		(*credit)++;
	return 0;
}

static int hostile_backlog(domid_t peer, unsigned int ms, u32 port,
			   char *res)
{
	unsigned long end = jiffies + msecs_to_jiffies(ms);
	unsigned long msgs = 0, full = 0, links = 0;
	struct gntsock_msg_hdr h;
	struct gntsock_link *link;
	u32 credit = 0, counted = 0;
	unsigned int i;

	for (i = 0; gntsock_hostile_conn_hdr(peer, port, GNTSOCK_OP_RW, &h, 0);
	     i++) {
		if (i == 100 || signal_pending(current))
			return scnprintf(res, 256,
					 "attack=backlog error=no_connection");
		msleep(100);
	}
	while ((link = hostile_next_link(peer, end, &links))) {
		while (hostile_up(link) && time_before(jiffies, end)) {
			if (gntsock_hostile_conn_hdr(peer, port,
						     GNTSOCK_OP_RW, &h,
						     credit - counted)) {
				gntsock_link_put(link);
				return scnprintf(res, 256,
						 "attack=backlog error=connection_lost msgs=%lu credit=%u",
						 msgs, credit);
			}
			counted = credit;
			spin_lock(&link->tx_lock);
			if (!hostile_up(link) ||
			    hostile_put_backlog(link, &h, msgs, &credit))
				full++;
			else
				msgs++;
			spin_unlock(&link->tx_lock);
			hostile_notify(link);
			if (!(msgs % 256))
				usleep_range(500, 1000);
		}
		gntsock_link_put(link);
	}
	return scnprintf(res, 256,
			 "attack=backlog msgs=%lu credit=%u ring_full=%lu links=%lu",
			 msgs, credit, full, links);
}

static int hostile_reconnect(domid_t peer, unsigned int cycles, char *res)
{
	struct gntsock_link *link;
	unsigned int done = 0, i;

	for (; done < cycles && !signal_pending(current); done++) {
		link = hostile_link(peer, 3000);
		if (!link)
			break;
		if (link->frontend) {
			gntsock_link_put(link);
			return scnprintf(res, 256, "attack=reconnect error=not_backend");
		}
		/* The reset work unmaps (we keep the maps) and says Closing;
		 * the victim answers Closed, we answer InitWait, and it
		 * publishes fresh rings.
		 */
		WRITE_ONCE(hostile_keep_peer, peer);
		queue_work(gntsock_wq, &link->reset_work);
		for (i = 0; i < 500 && hostile_up(link); i++)
			usleep_range(2000, 3000);
		flush_work(&link->reset_work);
		WRITE_ONCE(hostile_keep_peer, -1);
		gntsock_link_put(link);
	}
	return scnprintf(res, 256, "attack=reconnect cycles=%u kept_pages=%u",
			 done, hostile_kept_pages);
}

static void hostile_stall(domid_t peer, unsigned int ms, char *res)
{
	struct gntsock_link *link = gntsock_link_get(peer);
	u32 avail = 0;

	if (!link) {
		scnprintf(res, 256, "attack=stall links=0");
		return;
	}
	/* Our rx work waits for the lock meanwhile. */
	mutex_lock(&link->rx_lock);
	msleep(ms);
	if (READ_ONCE(link->state) == GNTSOCK_LINK_CONNECTED)
		gntsock_ring_avail(&link->rx, &avail);
	mutex_unlock(&link->rx_lock);
	gntsock_link_put(link);
	scnprintf(res, 256, "attack=stall ms=%u ring_bytes_left=%u links=1",
		  ms, avail);
}

static ssize_t hostile_write(struct file *file, const char __user *ubuf,
			     size_t count, loff_t *ppos)
{
	char buf[64], cmd[16], res[256];
	unsigned int peer, arg = 0, port = 0;
	int n;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = 0;
	n = sscanf(buf, "%15s %u %u %u", cmd, &peer, &arg, &port);
	if (n < 2 || peer >= DOMID_FIRST_RESERVED)
		return -EINVAL;
	arg = min(arg, 600000U);
	if (mutex_lock_interruptible(&hostile_lock))
		return -EINTR;
	pr_info("gntsock_hostile: %s against domain %u (%u)\n", cmd, peer, arg);
	if (!strcmp(cmd, "fuzz"))
		hostile_fuzz(peer, arg, res);
	else if (!strcmp(cmd, "index"))
		hostile_index(peer, arg, res);
	else if (!strcmp(cmd, "toctou"))
		hostile_toctou(peer, arg, res);
	else if (!strcmp(cmd, "storm"))
		hostile_storm(peer, arg, res);
	else if (!strcmp(cmd, "flood"))
		hostile_flood(peer, arg, res);
	else if (!strcmp(cmd, "reconnect"))
		hostile_reconnect(peer, arg, res);
	else if (!strcmp(cmd, "grants") || !strcmp(cmd, "grantrevoke"))
		hostile_grants(peer, arg, port, cmd[5] == 'r', res);
	else if (!strcmp(cmd, "backlog"))
		hostile_backlog(peer, arg, port, res);
	else if (!strcmp(cmd, "stall"))
		hostile_stall(peer, arg, res);
	else if (!strcmp(cmd, "release"))
		scnprintf(res, sizeof(res), "attack=release unmapped=%u",
			  hostile_release(peer));
	else
		scnprintf(res, sizeof(res), "error=unknown_command");
	strscpy(hostile_result, res, sizeof(hostile_result));
	pr_info("gntsock_hostile: %s\n", res);
	mutex_unlock(&hostile_lock);
	return count;
}

static ssize_t hostile_read(struct file *file, char __user *ubuf,
			    size_t count, loff_t *ppos)
{
	char buf[260];
	int n;

	mutex_lock(&hostile_lock);
	n = scnprintf(buf, sizeof(buf), "%s\n", hostile_result);
	mutex_unlock(&hostile_lock);
	return simple_read_from_buffer(ubuf, count, ppos, buf, n);
}

static const struct proc_ops hostile_ops = {
	.proc_read = hostile_read,
	.proc_write = hostile_write,
	.proc_lseek = default_llseek,
};

/**
 * gntsock_hostile_init() - create /proc/gntsock_hostile
 *
 * Return: 0 or -ENOMEM.
 */
int gntsock_hostile_init(void)
{
	pr_warn("gntsock_hostile: TEST MODULE: this domain attacks its gntsock peers on request\n");
	if (!proc_create("gntsock_hostile", 0600, NULL, &hostile_ops))
		return -ENOMEM;
	/* Links may be up: the hook is read once per unmap (READ_ONCE). */
	WRITE_ONCE(gntsock_link_keep_maps_hook, gntsock_hostile_keep_maps);
	return 0;
}

/**
 * gntsock_hostile_exit() - remove the file; unmap what we kept
 *
 * After the links are gone (their unmaps no longer consult us).
 */
void gntsock_hostile_exit(void)
{
	remove_proc_entry("gntsock_hostile", NULL);
	WRITE_ONCE(gntsock_link_keep_maps_hook, NULL);
	mutex_lock(&hostile_lock);
	hostile_release(-1);
	mutex_unlock(&hostile_lock);
}
