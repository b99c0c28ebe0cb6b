// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock links over xenbus: one per pair of domains that dom0's toolstack
 * connected.
 *
 * A link is a xenbus device of type "gntsock". The frontend (the higher
 * domain id of the pair) allocates a control page and 2 << ring_order data
 * pages, grants them to the backend, allocates an event channel and
 * publishes "ring-ref", "ring-order" and "event-channel". The backend maps
 * the pages and binds the channel. Handshake:
 *
 *   backend  InitWait                      (probe)
 *   frontend Initialised                   (rings granted and published)
 *   backend  Connected                     (rings mapped)
 *   frontend Connected
 *
 * Each end writes "feature-revocable-map" (1 or 0) in its own directory
 * before it switches to InitWait (backend) or Initialised (frontend): can
 * it map grants revocably (the grant layer says, through its handler)? Each reads the
 * other's when it connects; an absent key (an older peer) means 0. Grants
 * towards a peer that says 1 are marked revocable-only (grant_pin.c), and
 * an end that said 1 maps the grants of that link revocably
 * (grant_map.c), one that said 0 plainly. Each also writes
 * "feature-event-index" = 1: it keeps the event indices of its rings, so
 * the other end notifies it once per wait (ring.c); a peer without the key
 * is notified by its flags.
 *
 * Either side leaving (Closing, Closed, module unload, domain death, or a
 * protocol violation detected locally) tears the rings down and resets all
 * sockets on the link; the backend returns to InitWait and the frontend
 * publishes fresh rings, so the link comes back by itself when both ends
 * are there again.
 *
 * A link once up sends in link_tx.c and receives (and takes its events) in
 * link_rx.c; the same-domain link is link_loop.c.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/interrupt.h>
#include <linux/seq_file.h>
#include <linux/sizes.h>
#include <linux/skbuff.h>
#include <linux/uaccess.h>
#include <linux/uio.h>
#include <xen/xen.h>
#include <xen/events.h>
#include <xen/page.h>
#include <xen/interface/io/xenbus.h>

#include "gntsock.h"
#include "link.h"

unsigned int gntsock_ring_order = GNTSOCK_RING_ORDER_DEFAULT;
module_param_named(ring_order, gntsock_ring_order, uint, 0644);
MODULE_PARM_DESC(ring_order,
		 "log2 of ring pages per direction for new links (0-8, default 4)");

static LIST_HEAD(gntsock_links);
static DEFINE_SPINLOCK(gntsock_links_lock);
#define GNTSOCK_FEATURE_RMAP	"feature-revocable-map"
#define GNTSOCK_FEATURE_EVTIDX	"feature-event-index"

/* Tell the peer, in our xenstore directory, whether we map its grants
 * revocably; before each handshake, as PV devices publish their features.
 * A key we could not write counts as 0: the peer then finds none.
 */
static int gntsock_link_advertise(struct gntsock_link *link,
				  struct xenbus_transaction xbt)
{
	bool rmap = gntsock_link_map_revocable();
	int err;

	err = xenbus_printf(xbt, link->xbdev->nodename, GNTSOCK_FEATURE_RMAP,
			    "%u", rmap);
	WRITE_ONCE(link->map_revocable, rmap && !err);
	/* We always keep our event indices (ring.c); a peer that does not
	 * find the key notifies us by our flags, which we keep too.
	 */
	xenbus_printf(xbt, link->xbdev->nodename, GNTSOCK_FEATURE_EVTIDX,
		      "%u", 1);
	return err;
}

/* What the peer said (when the link connects, its rings set up). */
static void gntsock_link_peer_features(struct gntsock_link *link)
{
	WRITE_ONCE(link->peer_map_revocable,
		   !!xenbus_read_unsigned(link->xbdev->otherend,
					  GNTSOCK_FEATURE_RMAP, 0));
	WRITE_ONCE(link->peer_event_index,
		   !!xenbus_read_unsigned(link->xbdev->otherend,
					  GNTSOCK_FEATURE_EVTIDX, 0));
}

/* Backend: publish our features, then wait for the frontend's rings. */
static int gntsock_back_initwait(struct gntsock_link *link)
{
	gntsock_link_advertise(link, XBT_NIL);
	return xenbus_switch_state(link->xbdev, XenbusStateInitWait);
}

/**
 * gntsock_link_get() - find the connected link to a peer domain
 * @peer: the peer's domain id; this domain's own id or %GNTSOCK_DOMID_SELF
 *	give the loopback link
 *
 * Return: the link with a reference held, or NULL if there is no
 * connected link to @peer.
 */
struct gntsock_link *gntsock_link_get(domid_t peer)
{
	struct gntsock_link *link, *found = NULL;

	if (gntsock_domid_is_local(peer)) {
		link = READ_ONCE(gntsock_loopback);
		if (link)
			kref_get(&link->kref);
		return link;
	}
	spin_lock(&gntsock_links_lock);
	list_for_each_entry(link, &gntsock_links, node) {
		if (link->peer == peer &&
		    READ_ONCE(link->state) == GNTSOCK_LINK_CONNECTED) {
			kref_get(&link->kref);
			found = link;
			break;
		}
	}
	spin_unlock(&gntsock_links_lock);
	return found;
}

static int gntsock_link_alloc_arrays(struct gntsock_link *link,
				     unsigned int order)
{
	unsigned int n = 2U << order;

	kfree(link->pages);
	kfree(link->va);
	kfree(link->refs);
	kfree(link->handles);
	link->pages = kcalloc(n + 1, sizeof(*link->pages), GFP_KERNEL);
	link->va = kcalloc(n, sizeof(*link->va), GFP_KERNEL);
	link->refs = kcalloc(n + 1, sizeof(*link->refs), GFP_KERNEL);
	link->handles = kcalloc(n + 1, sizeof(*link->handles), GFP_KERNEL);
	if (!link->pages || !link->va || !link->refs || !link->handles)
		return -ENOMEM;
	link->order = order;
	link->max_payload = gntsock_max_payload(GNTSOCK_PAGE_SIZE << order);
	return 0;
}

/* Point tx/rx at the data pages: F2B first, B2F second. */
static void gntsock_link_init_rings(struct gntsock_link *link)
{
	unsigned int half = 1U << link->order;
	int f2b = GNTSOCK_DIR_F2B, b2f = GNTSOCK_DIR_B2F;

	link->tx_cons_seen = 0;
	link->ev_rx_prod = 0;
	link->ev_tx_cons = 0;
	if (link->frontend) {
		gntsock_ring_init(&link->tx, &link->ctrl->ring[f2b], link->va,
				  link->order);
		gntsock_ring_init(&link->rx, &link->ctrl->ring[b2f],
				  link->va + half, link->order);
	} else {
		gntsock_ring_init(&link->tx, &link->ctrl->ring[b2f],
				  link->va + half, link->order);
		gntsock_ring_init(&link->rx, &link->ctrl->ring[f2b], link->va,
				  link->order);
	}
	clear_bit(0, &link->violated);
}

/* Ring grants a backend may keep us from ending, per link: one set of the
 * largest rings. A backend that cycles Closing -> InitWait while it keeps
 * our old ring pages mapped used to make us grant a fresh set each time and
 * defer the old references forever, until the grant table was full and
 * every other frontend of this domain failed.
 */
#define GNTSOCK_STALE_MAX	((2U << GNTSOCK_RING_ORDER_MAX) + 1)

/* A ring page whose grant the backend still maps (link->stale). */
struct gntsock_stale_ref {
	struct list_head node;
	grant_ref_t ref;
	struct page *page;
};

static void gntsock_stale_del(struct gntsock_link *link,
			      struct gntsock_stale_ref *s)
{
	list_del(&s->node);
	kfree(s);
	link->nr_stale--;
	atomic_dec(&gntsock_stats.ring_refs_stale);
}

/* Frontend teardown: end the grant @ref of @pg, or, if the backend still
 * maps it, keep it on link->stale for gntsock_front_reap(). Normal after a
 * reset we started ourselves: the backend unmaps when it sees Closing.
 */
static void gntsock_front_end_ref(struct gntsock_link *link, grant_ref_t ref,
				  struct page *pg)
{
	struct gntsock_stale_ref *s;

	if (gnttab_try_end_foreign_access(ref)) {
		__free_page(pg);
		return;
	}
	s = kmalloc(sizeof(*s), GFP_KERNEL);
	if (!s) {
		/* Xen frees it when the backend unmaps; not bounded by us. */
		gnttab_end_foreign_access(ref, pg);
		return;
	}
	s->ref = ref;
	s->page = pg;
	list_add_tail(&s->node, &link->stale);
	link->nr_stale++;
	atomic_inc(&gntsock_stats.ring_refs_stale);
}

/**
 * gntsock_front_reap() - end the old ring grants the backend let go of
 * @link: a frontend link about to publish fresh rings; setup_lock held
 *
 * The backend asked for fresh rings (InitWait), so it must have unmapped
 * the old ones. Each still mapped is counted (ring_refs_kept) and makes
 * the set-up count as a failure of the link, so a backend that cycles
 * Closing -> InitWait with our pages mapped gets %GNTSOCK_LINK_MAX_FAILURES
 * fresh sets at most; beyond %GNTSOCK_STALE_MAX outstanding references we
 * grant no more at all.
 *
 * Return: 0, or -EBUSY: publish no rings now.
 */
static int gntsock_front_reap(struct gntsock_link *link)
{
	struct gntsock_stale_ref *s, *tmp;
	unsigned int kept = 0;

	lockdep_assert_held(&link->setup_lock);
	list_for_each_entry_safe(s, tmp, &link->stale, node) {
		if (!gnttab_try_end_foreign_access(s->ref)) {
			kept++;
			continue;
		}
		__free_page(s->page);
		gntsock_stale_del(link, s);
	}
	if (!kept)
		return 0;
	atomic64_add(kept, &gntsock_stats.ring_refs_kept);
	pr_warn_ratelimited("gntsock: link to domain %u: the backend asks for fresh rings but still maps %u old ring pages\n",
			    link->peer, kept);
	if (link->nr_stale > GNTSOCK_STALE_MAX)
		return -EBUSY;	/* a failed set-up: the caller counts it */
	link->failures++;
	return 0;
}

/* The link is removed: hand what the backend still maps to the grant
 * table's deferred release, which frees it once the backend unmaps.
 */
static void gntsock_front_stale_drop(struct gntsock_link *link)
{
	struct gntsock_stale_ref *s, *tmp;

	list_for_each_entry_safe(s, tmp, &link->stale, node) {
		gnttab_end_foreign_access(s->ref, s->page);
		gntsock_stale_del(link, s);
	}
}

/* Frontend: end access to every granted page; one the backend still maps
 * waits on link->stale (gntsock_front_end_ref()).
 */
static void gntsock_front_free(struct gntsock_link *link)
{
	unsigned int i, n = 2U << link->order;

	if (!link->pages)
		return;
	for (i = 0; i <= n; i++) {
		struct page *pg = i ? link->pages[i - 1] : link->ctrl_page;

		if (!pg)
			continue;
		if (link->refs[i]) {
			gntsock_front_end_ref(link, link->refs[i], pg);
			atomic_dec(&gntsock_stats.ring_grants);
		} else {
			__free_page(pg);
		}
		link->refs[i] = 0;
		if (i)
			link->pages[i - 1] = NULL;
	}
	link->ctrl_page = NULL;
	link->ctrl = NULL;
}

static int gntsock_front_grant(struct gntsock_link *link, unsigned int i,
			       struct page *pg)
{
	int ref = gnttab_grant_foreign_access(link->peer, xen_page_to_gfn(pg),
					      0);

	if (ref < 0)
		return ref;
	link->refs[i] = ref;
	atomic_inc(&gntsock_stats.ring_grants);
	return 0;
}

static int gntsock_front_setup(struct gntsock_link *link)
{
	struct xenbus_device *dev = link->xbdev;
	struct xenbus_transaction xbt;
	unsigned int order, i, n;
	int err;

	err = gntsock_front_reap(link);
	if (err) {
		pr_warn_ratelimited("gntsock: link to domain %u: %u old ring grants still mapped, publishing no fresh rings\n",
				    link->peer, link->nr_stale);
		return err;
	}
	order = xenbus_read_unsigned(dev->nodename, "ring-order",
				     READ_ONCE(gntsock_ring_order));
	if (order > GNTSOCK_RING_ORDER_MAX) {
		xenbus_dev_fatal(dev, -EINVAL, "ring-order %u > %u", order,
				 GNTSOCK_RING_ORDER_MAX);
		return -EINVAL;
	}
	err = gntsock_link_alloc_arrays(link, order);
	if (err)
		return err;
	n = 2U << order;

	link->ctrl_page = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!link->ctrl_page)
		goto nomem;
	link->ctrl = page_address(link->ctrl_page);
	for (i = 0; i < n; i++) {
		link->pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!link->pages[i])
			goto nomem;
		link->va[i] = page_address(link->pages[i]);
	}
	link->ctrl->magic = GNTSOCK_WIRE_MAGIC;
	link->ctrl->version = GNTSOCK_WIRE_VERSION;
	link->ctrl->ring_order = order;

	err = gntsock_front_grant(link, 0, link->ctrl_page);
	for (i = 0; !err && i < n; i++) {
		err = gntsock_front_grant(link, i + 1, link->pages[i]);
		link->ctrl->data_ref[i] = link->refs[i + 1];
	}
	if (err)
		goto fail;

	err = xenbus_alloc_evtchn(dev, &link->evtchn);
	if (err)
		goto fail;
	gntsock_link_init_rings(link);
	err = bind_evtchn_to_irqhandler_lateeoi(link->evtchn, gntsock_interrupt,
						0, "gntsock", link);
	if (err < 0) {
		xenbus_free_evtchn(dev, link->evtchn);
		goto fail;
	}
	link->irq = err;

again:
	err = xenbus_transaction_start(&xbt);
	if (err)
		goto fail;
	err = xenbus_printf(xbt, dev->nodename, "ring-ref", "%u", link->refs[0]);
	if (!err)
		err = xenbus_printf(xbt, dev->nodename, "ring-order", "%u",
				    order);
	if (!err)
		err = xenbus_printf(xbt, dev->nodename, "event-channel", "%u",
				    link->evtchn);
	if (!err)
		err = xenbus_printf(xbt, dev->nodename, "ring-generation", "%u",
				    link->generation + 1);
	if (!err)
		err = gntsock_link_advertise(link, xbt);
	if (err) {
		xenbus_transaction_end(xbt, 1);
		goto fail;
	}
	err = xenbus_transaction_end(xbt, 0);
	if (err == -EAGAIN)
		goto again;
	if (err)
		goto fail;
	link->generation++;
	WRITE_ONCE(link->state, GNTSOCK_LINK_CONNECTING);
	return xenbus_switch_state(dev, XenbusStateInitialised);

nomem:
	err = -ENOMEM;
fail:
	if (link->irq) {
		unbind_from_irqhandler(link->irq, link);
		link->irq = 0;
	}
	gntsock_front_free(link);
	xenbus_dev_fatal(dev, err, "setting up gntsock rings");
	return err;
}

/* Backend: unmap whatever is mapped and give the pages back. */
/* Grant unmaps per hypercall batch in gntsock_back_unmap(), on the stack. */
#define GNTSOCK_UNMAP_BATCH	16

static void gntsock_back_unmap_batch(struct gntsock_link *link,
				     struct gnttab_unmap_grant_ref *ops,
				     struct page **pages, unsigned int n)
{
	if (!n)
		return;
	if (gnttab_unmap_refs(ops, NULL, pages, n))
		pr_err_ratelimited("gntsock: link to domain %u: unmapping rings failed\n",
				   link->peer);
	atomic_sub(n, &gntsock_stats.ring_maps);
}

/* Unmap in fixed batches: teardown must not fail, and one array for all
 * 2 << 8 + 1 pages of the largest rings would be a multi-page allocation
 * that cannot be guaranteed (__GFP_NOFAIL beyond order 1 warns).
 */
static void gntsock_back_unmap(struct gntsock_link *link)
{
	struct gnttab_unmap_grant_ref ops[GNTSOCK_UNMAP_BATCH];
	struct page *pages[GNTSOCK_UNMAP_BATCH];
	unsigned int i, n = 0, total = (2U << link->order) + 1;

	if (!link->pages || !link->pages[0])
		return;
#ifdef GNTSOCK_HOSTILE
	{
		bool (*keep)(struct gntsock_link *link) =
			READ_ONCE(gntsock_link_keep_maps_hook);

		if (keep && keep(link))
			return;
	}
#endif
	for (i = 0; i < total; i++) {
		if (link->handles[i] == INVALID_GRANT_HANDLE)
			continue;
		gnttab_set_unmap_op(&ops[n], (unsigned long)
				    pfn_to_kaddr(page_to_pfn(link->pages[i])),
				    GNTMAP_host_map, link->handles[i]);
		pages[n++] = link->pages[i];
		link->handles[i] = INVALID_GRANT_HANDLE;
		if (n == GNTSOCK_UNMAP_BATCH) {
			gntsock_back_unmap_batch(link, ops, pages, n);
			n = 0;
		}
	}
	gntsock_back_unmap_batch(link, ops, pages, n);
	gnttab_free_pages(total, link->pages);
	memset(link->pages, 0, total * sizeof(*link->pages));
	link->ctrl = NULL;
}

static int gntsock_back_map(struct gntsock_link *link, unsigned int from,
			    unsigned int count)
{
	struct gnttab_map_grant_ref *ops;
	unsigned int i;
	int err = 0;

	ops = kcalloc(count, sizeof(*ops), GFP_KERNEL);
	if (!ops)
		return -ENOMEM;
	for (i = 0; i < count; i++)
		gnttab_set_map_op(&ops[i], (unsigned long)
				  pfn_to_kaddr(page_to_pfn(link->pages[from + i])),
				  GNTMAP_host_map, link->refs[from + i],
				  link->peer);
	err = gnttab_map_refs(ops, NULL, link->pages + from, count);
	for (i = 0; i < count; i++) {
		if (!err && ops[i].status == GNTST_okay) {
			link->handles[from + i] = ops[i].handle;
			atomic_inc(&gntsock_stats.ring_maps);
		} else if (!err) {
			err = -EINVAL;
		}
	}
	kfree(ops);
	return err;
}

static int gntsock_back_connect(struct gntsock_link *link)
{
	struct xenbus_device *dev = link->xbdev;
	struct gntsock_ctrl_page hdr;
	unsigned int ring_ref, evtchn, order, i, n;
	int err;

	err = xenbus_gather(XBT_NIL, dev->otherend,
			    "ring-ref", "%u", &ring_ref,
			    "ring-order", "%u", &order,
			    "event-channel", "%u", &evtchn, NULL);
	if (err) {
		xenbus_dev_fatal(dev, err, "reading %s/ring-ref etc.",
				 dev->otherend);
		return err;
	}
	if (order > GNTSOCK_RING_ORDER_MAX) {
		gntsock_link_violation(link, GNTSOCK_V_CTRL_PAGE);
		return -EINVAL;
	}
	err = gntsock_link_alloc_arrays(link, order);
	if (err)
		return err;
	n = 2U << order;
	for (i = 0; i <= n; i++)
		link->handles[i] = INVALID_GRANT_HANDLE;
	err = gnttab_alloc_pages(n + 1, link->pages);
	if (err) {
		memset(link->pages, 0, (n + 1) * sizeof(*link->pages));
		return err;
	}

	link->refs[0] = ring_ref;
	err = gntsock_back_map(link, 0, 1);
	if (err)
		goto fail;
	link->ctrl = page_address(link->pages[0]);
	/* Copy the frontend's header and refs out once, then validate. */
	memcpy(&hdr, link->ctrl, sizeof(hdr));
	if (gntsock_ctrl_validate(&hdr, order) != GNTSOCK_V_NONE) {
		atomic64_inc(&gntsock_stats.violation[GNTSOCK_V_CTRL_PAGE]);
		err = -EPROTO;
		goto fail;
	}
	for (i = 0; i < n; i++)
		link->refs[i + 1] = READ_ONCE(link->ctrl->data_ref[i]);
	err = gntsock_back_map(link, 1, n);
	if (err)
		goto fail;
	for (i = 0; i < n; i++)
		link->va[i] = page_address(link->pages[i + 1]);

	gntsock_link_init_rings(link);
	err = bind_interdomain_evtchn_to_irqhandler_lateeoi(dev, evtchn,
							    gntsock_interrupt,
							    0, "gntsock",
							    link);
	if (err < 0)
		goto fail;
	link->irq = err;
	return 0;

fail:
	gntsock_back_unmap(link);
	xenbus_dev_fatal(dev, err, "mapping gntsock rings of domain %u",
			 link->peer);
	return err;
}

/* May a link up/down line be logged? A peer makes its link go down and up
 * again as often as it likes (it only has to switch its xenbus state, or
 * break the protocol), so these lines are rate-limited, per link: one
 * flapping peer neither floods the log nor hides the news of other links.
 * Every line left out is counted (link_log_suppressed in
 * /proc/net/gntsock_stat); link_ups and resets count the events themselves.
 */
static bool gntsock_link_log_ok(struct gntsock_link *link)
{
	if (__ratelimit(&link->log_rs))
		return true;
	atomic64_inc(&gntsock_stats.link_log_suppressed);
	return false;
}

static void gntsock_link_up(struct gntsock_link *link)
{
	link->up_since = jiffies;
	spin_lock(&link->tx_lock);
	WRITE_ONCE(link->state, GNTSOCK_LINK_CONNECTED);
	spin_unlock(&link->tx_lock);
	atomic_inc(&gntsock_stats.links_connected);
	atomic64_inc(&gntsock_stats.link_ups);
	if (gntsock_link_log_ok(link))
		pr_info("gntsock: link to domain %u connected (%s, %u KiB each way)\n",
			link->peer, link->frontend ? "frontend" : "backend",
			(GNTSOCK_PAGE_SIZE << link->order) / 1024);
	/* Pick up anything the peer sent before we saw Connected. */
	queue_work(gntsock_wq, &link->rx_work);
}

/* Tear the rings down and reset every socket on the link. setup_lock held. */
static void gntsock_link_down(struct gntsock_link *link)
{
	int old = link->state;

	lockdep_assert_held(&link->setup_lock);
	spin_lock(&link->tx_lock);
	WRITE_ONCE(link->state, GNTSOCK_LINK_CLOSED);
	gntsock_ctl_purge(link);
	spin_unlock(&link->tx_lock);
	/* rx_work sees CLOSED and stops; then no event can queue it again. */
	cancel_work_sync(&link->rx_work);
	/* A busy poller looking at the ring (link_poll.c) has left it. */
	mutex_lock(&link->rx_lock);
	mutex_unlock(&link->rx_lock);
	if (link->irq) {
		unbind_from_irqhandler(link->irq, link);
		WRITE_ONCE(link->irq, 0);
	}
	cancel_work_sync(&link->rx_work);
	atomic_set(&link->eoi_irq, 0);
	atomic_inc(&link->tx_kick);
	wake_up_all(&link->tx_wq);
	gntsock_space_watch_flush(link);
	gntsock_link_tell_down(link);
	if (link->frontend)
		gntsock_front_free(link);
	else
		gntsock_back_unmap(link);
	if (old == GNTSOCK_LINK_CONNECTED) {
		if (time_after(jiffies, link->up_since + GNTSOCK_LINK_STABLE))
			link->failures = 0;
		atomic_dec(&gntsock_stats.links_connected);
		atomic64_inc(&link->stat_resets);
		atomic64_inc(&gntsock_stats.resets);
		if (gntsock_link_log_ok(link))
			pr_info("gntsock: link to domain %u down\n", link->peer);
	}
}

static void gntsock_reset_work(struct work_struct *work)
{
	struct gntsock_link *link = container_of(work, struct gntsock_link,
						 reset_work);

	mutex_lock(&link->setup_lock);
	if (link->xbdev && link->state != GNTSOCK_LINK_CLOSED) {
		gntsock_link_down(link);
		/* Tell the peer; it answers by restarting the handshake. */
		xenbus_switch_state(link->xbdev, XenbusStateClosing);
	}
	mutex_unlock(&link->setup_lock);
}

static int gntsock_link_create(struct xenbus_device *dev, bool frontend)
{
	struct gntsock_link *link, *other;

	link = kzalloc(sizeof(*link), GFP_KERNEL);
	if (!link)
		return -ENOMEM;
	link->ctl_queue = kvcalloc(GNTSOCK_CTL_QUEUE_MAX,
				   sizeof(*link->ctl_queue), GFP_KERNEL);
	if (!link->ctl_queue) {
		kfree(link);
		return -ENOMEM;
	}
	kref_init(&link->kref);
	link->peer = dev->otherend_id;
	link->frontend = frontend;
	link->xbdev = dev;
	link->state = GNTSOCK_LINK_CLOSED;
	gntsock_link_init(link, gntsock_rx_work);
	INIT_LIST_HEAD(&link->stale);
	INIT_WORK(&link->reset_work, gntsock_reset_work);

	spin_lock(&gntsock_links_lock);
	list_for_each_entry(other, &gntsock_links, node) {
		if (other->peer == link->peer) {
			spin_unlock(&gntsock_links_lock);
			kvfree(link->ctl_queue);
			kfree(link);
			xenbus_dev_fatal(dev, -EEXIST,
					 "a gntsock link to domain %u exists",
					 dev->otherend_id);
			return -EEXIST;
		}
	}
	list_add_tail(&link->node, &gntsock_links);
	spin_unlock(&gntsock_links_lock);
	atomic_inc(&gntsock_stats.links);
	dev_set_drvdata(&dev->dev, link);
	return 0;
}

static void gntsock_remove(struct xenbus_device *dev)
{
	struct gntsock_link *link = dev_get_drvdata(&dev->dev);

	mutex_lock(&link->setup_lock);
	gntsock_link_down(link);
	gntsock_front_stale_drop(link);
	/* A module without event indices bound after us (a downgrade) must
	 * not find our key: its peer would notify it by indices it never
	 * writes. (Gone already if the toolstack removed the device.)
	 */
	xenbus_rm(XBT_NIL, dev->nodename, GNTSOCK_FEATURE_EVTIDX);
	link->xbdev = NULL;
	mutex_unlock(&link->setup_lock);
	cancel_work_sync(&link->reset_work);

	spin_lock(&gntsock_links_lock);
	list_del(&link->node);
	spin_unlock(&gntsock_links_lock);
	atomic_dec(&gntsock_stats.links);
	dev_set_drvdata(&dev->dev, NULL);
	gntsock_link_put(link);
}

/* Stop a link that keeps failing from bouncing forever; counted, logged. */
static bool gntsock_link_gave_up(struct gntsock_link *link)
{
	if (link->failures < GNTSOCK_LINK_MAX_FAILURES)
		return false;
	pr_warn_ratelimited("gntsock: link to domain %u failed %u times, not retrying until it is re-created\n",
			    link->peer, link->failures);
	return true;
}

/* The other end vanished (its domain died or the toolstack removed the
 * link): drop our half of the device too so nothing lingers.
 */
static void gntsock_otherend_gone(struct gntsock_link *link)
{
	gntsock_link_down(link);
	xenbus_rm(XBT_NIL, link->xbdev->nodename, "");
}

static int gntsock_front_probe(struct xenbus_device *dev,
			       const struct xenbus_device_id *id)
{
	return gntsock_link_create(dev, true);
}

static void gntsock_front_changed(struct xenbus_device *dev,
				  enum xenbus_state backend_state)
{
	struct gntsock_link *link = dev_get_drvdata(&dev->dev);

	mutex_lock(&link->setup_lock);
	switch (backend_state) {
	case XenbusStateInitWait:
		/* Already published and waiting for the backend. */
		if (dev->state == XenbusStateInitialised)
			break;
		gntsock_link_down(link);
		if (gntsock_link_gave_up(link))
			break;
		if (gntsock_front_setup(link))
			link->failures++;
		break;
	case XenbusStateConnected:
		if (dev->state == XenbusStateInitialised &&
		    link->state == GNTSOCK_LINK_CONNECTING) {
			gntsock_link_peer_features(link);
			gntsock_link_up(link);
			xenbus_switch_state(dev, XenbusStateConnected);
		}
		break;
	case XenbusStateClosing:
	case XenbusStateClosed:
		gntsock_link_down(link);
		if (dev->state != XenbusStateClosed)
			xenbus_switch_state(dev, XenbusStateClosed);
		break;
	case XenbusStateUnknown:
		gntsock_otherend_gone(link);
		break;
	default:
		break;
	}
	mutex_unlock(&link->setup_lock);
}

static int gntsock_back_probe(struct xenbus_device *dev,
			      const struct xenbus_device_id *id)
{
	int err = gntsock_link_create(dev, false);

	if (err)
		return err;
	err = gntsock_back_initwait(dev_get_drvdata(&dev->dev));
	/* (the xenbus core calls no remove for a failed probe) */
	if (err)
		gntsock_remove(dev);
	return err;
}

static void gntsock_back_changed(struct xenbus_device *dev,
				 enum xenbus_state frontend_state)
{
	struct gntsock_link *link = dev_get_drvdata(&dev->dev);
	unsigned int gen;

	mutex_lock(&link->setup_lock);
	switch (frontend_state) {
	case XenbusStateInitialising:
		if (dev->state == XenbusStateClosed)
			gntsock_back_initwait(link);
		break;
	case XenbusStateInitialised:
		gen = xenbus_read_unsigned(dev->otherend, "ring-generation", 0);
		/* A repeated watch event for the rings we already use. */
		if (link->state == GNTSOCK_LINK_CONNECTED &&
		    gen == link->generation)
			break;
		/* Fresh rings were published: (re)connect to them. */
		if (dev->state == XenbusStateConnected ||
		    link->state != GNTSOCK_LINK_CLOSED)
			gntsock_link_down(link);
		link->generation = gen;
		if (gntsock_link_gave_up(link)) {
			xenbus_switch_state(dev, XenbusStateClosed);
			break;
		}
		if (gntsock_back_connect(link)) {
			link->failures++;
			xenbus_switch_state(dev, XenbusStateClosing);
			break;
		}
		gntsock_link_peer_features(link);
		gntsock_link_up(link);
		xenbus_switch_state(dev, XenbusStateConnected);
		break;
	case XenbusStateClosing:
	case XenbusStateClosed:
		gntsock_link_down(link);
		/* online=0: the toolstack is removing the link, as for any
		 * PV device; otherwise wait for the frontend to come back.
		 */
		if (!xenbus_read_unsigned(dev->nodename, "online", 0))
			xenbus_switch_state(dev, XenbusStateClosed);
		else if (dev->state != XenbusStateInitWait &&
			 !gntsock_link_gave_up(link))
			gntsock_back_initwait(link);
		break;
	case XenbusStateUnknown:
		gntsock_otherend_gone(link);
		break;
	default:
		break;
	}
	mutex_unlock(&link->setup_lock);
}

static const struct xenbus_device_id gntsock_ids[] = {
	{ GNTSOCK_DEVTYPE },
	{ "" }
};

static struct xenbus_driver gntsock_front_driver = {
	.ids = gntsock_ids,
	.probe = gntsock_front_probe,
	.remove = gntsock_remove,
	.otherend_changed = gntsock_front_changed,
	.not_essential = true,
};

static struct xenbus_driver gntsock_back_driver = {
	.ids = gntsock_ids,
	.probe = gntsock_back_probe,
	.remove = gntsock_remove,
	.otherend_changed = gntsock_back_changed,
};

/* A link's ring indices as the shared page has them, and its queued
 * control messages: where a stalled link stands (zeros without rings).
 * gntsock_links_lock held; the link's tx_lock keeps its rings mapped.
 */
static void gntsock_link_show_rings(struct seq_file *m,
				    struct gntsock_link *l)
{
	u32 tp = 0, tc = 0, rp = 0, rc = 0;

	lockdep_assert_held(&gntsock_links_lock);
	spin_lock(&l->tx_lock);
	if (l->state == GNTSOCK_LINK_CONNECTED) {
		tp = READ_ONCE(l->tx.idx->prod);
		tc = READ_ONCE(l->tx.idx->cons);
		rp = READ_ONCE(l->rx.idx->prod);
		rc = READ_ONCE(l->rx.idx->cons);
	}
	seq_printf(m, " %u %u %u %u %u\n", tp, tc, rp, rc, l->ctl_len);
	spin_unlock(&l->tx_lock);
}

/**
 * gntsock_links_show() - one line per link for /proc/net/gntsock_links
 * @m: the seq_file
 */
void gntsock_links_show(struct seq_file *m)
{
	static const char * const states[] = {
		[GNTSOCK_LINK_CLOSED] = "closed",
		[GNTSOCK_LINK_CONNECTING] = "connecting",
		[GNTSOCK_LINK_CONNECTED] = "connected",
	};
	struct gntsock_link *l;

	seq_puts(m, "peer role state ring_pages tx_msgs rx_msgs tx_bytes rx_bytes resets violations sockets events_rx events_tx revocable_map peer_revocable_map events_spurious peer_event_index tx_prod tx_cons rx_prod rx_cons ctl_queued\n");
	l = gntsock_loopback;
	if (l)
		seq_printf(m, "%u loopback connected 0 %lld %lld %lld %lld 0 %lld %d 0 0 %d %d 0 0 0 0 0 0 0\n",
			   l->peer, atomic64_read(&l->stat_tx_msgs),
			   atomic64_read(&l->stat_rx_msgs),
			   atomic64_read(&l->stat_tx_bytes),
			   atomic64_read(&l->stat_rx_bytes),
			   atomic64_read(&l->stat_violations),
			   atomic_read(&l->stat_sockets),
			   READ_ONCE(l->map_revocable),
			   READ_ONCE(l->peer_map_revocable));
	spin_lock(&gntsock_links_lock);
	list_for_each_entry(l, &gntsock_links, node) {
		seq_printf(m, "%u %s %s %u %lld %lld %lld %lld %lld %lld %d %lld %lld %d %d %lld %d",
			   l->peer, l->frontend ? "frontend" : "backend",
			   states[READ_ONCE(l->state)],
			   READ_ONCE(l->state) == GNTSOCK_LINK_CLOSED ? 0 :
			   1U << l->order,
			   atomic64_read(&l->stat_tx_msgs),
			   atomic64_read(&l->stat_rx_msgs),
			   atomic64_read(&l->stat_tx_bytes),
			   atomic64_read(&l->stat_rx_bytes),
			   atomic64_read(&l->stat_resets),
			   atomic64_read(&l->stat_violations),
			   atomic_read(&l->stat_sockets),
			   atomic64_read(&l->stat_events_rx),
			   atomic64_read(&l->stat_events_tx),
			   READ_ONCE(l->map_revocable),
			   READ_ONCE(l->peer_map_revocable),
			   atomic64_read(&l->stat_events_spurious),
			   READ_ONCE(l->peer_event_index));
		gntsock_link_show_rings(m, l);
	}
	spin_unlock(&gntsock_links_lock);
}

int gntsock_link_register(void)
{
	int err;

	err = gntsock_loopback_create();
	if (err)
		return err;
	err = xenbus_register_frontend(&gntsock_front_driver);
	if (err)
		goto err_loop;
	err = xenbus_register_backend(&gntsock_back_driver);
	if (err)
		goto err_front;
	return 0;

err_front:
	xenbus_unregister_driver(&gntsock_front_driver);
err_loop:
	gntsock_loopback_destroy();
	return err;
}

void gntsock_link_unregister(void)
{
	xenbus_unregister_driver(&gntsock_back_driver);
	xenbus_unregister_driver(&gntsock_front_driver);
	gntsock_loopback_destroy();
}
