// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock links, the core: what the link layer's files share. The layers
 * above (the socket layer and the grant layer) each register a struct
 * gntsock_link_handler here (as vsock's core and its transports meet only
 * through struct vsock_transport), which says which messages it takes and
 * what it wants to hear of a link: the link layer never calls up by name.
 * Also a link's reference count, this domain's id, notifying the peer, and
 * protocol violations, which reset the link.
 *
 * The rest of the link layer, each file one concern (link.h):
 * link_tx.c sends, link_rx.c receives and handles the link's events,
 * link_poll.c busy-polls for a reader, link_xenbus.c brings a link up and
 * down over xenbus, link_loop.c is the same-domain link.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <xen/xen.h>
#include <xen/events.h>

#include "gntsock.h"
#include "link.h"

/* Notify a peer that keeps event indices by them: once per wait of its,
 * not once per message while its flag is set (ring.c). Off, this end
 * notifies as a version without event indices does: for comparing the two
 * in one boot, and for testing that both still work together. Read at
 * every notification check.
 */
static bool gntsock_event_index = true;
module_param_named(event_index, gntsock_event_index, bool, 0644);
MODULE_PARM_DESC(event_index,
		 "notify a peer by its event index, once per wait, where it keeps one (default Y)");

/* Does the peer, at this moment, get its events by its event index? */
bool gntsock_link_evt(struct gntsock_link *link)
{
	return READ_ONCE(link->peer_event_index) &&
	       READ_ONCE(gntsock_event_index);
}

/* The layers above, registered before the first link may come up and
 * removed after the last went down (main.c): the link layer reaches them
 * only through these (gntsock_link_set_handler()).
 */
static const struct gntsock_link_handler *gntsock_handlers[GNTSOCK_USER_MAX];

/**
 * gntsock_link_set_handler() - register (or with NULL remove) a layer above
 * @user: which one
 * @h: its handler, or NULL
 *
 * Called at module load before any link exists, and at unload after every
 * link is gone: never while a link may call it.
 */
void gntsock_link_set_handler(enum gntsock_link_user user,
			      const struct gntsock_link_handler *h)
{
	int i;

	BUILD_BUG_ON(GNTSOCK_OP_MAX >= 32);	/* ops is a u32 of BIT(op) */
	if (WARN_ON(user >= GNTSOCK_USER_MAX))
		return;
	/* Each op goes to one layer. */
	for (i = 0; h && i < GNTSOCK_USER_MAX; i++)
		if (WARN_ON(i != user && gntsock_handlers[i] &&
			    (gntsock_handlers[i]->ops & h->ops)))
			return;
	WRITE_ONCE(gntsock_handlers[user], h);
}

/**
 * gntsock_link_deliver() - hand a validated message to its layer
 * @link: the link it arrived on; rx_lock held, except on the loopback link
 * @h: local copy of its header
 *
 * Hand a validated message to the layer that takes its op. A message no
 * layer takes is dropped.
 */
void gntsock_link_deliver(struct gntsock_link *link,
			  const struct gntsock_msg_hdr *h)
{
	const struct gntsock_link_handler *uh;
	int i;

	for (i = 0; i < GNTSOCK_USER_MAX; i++) {
		uh = READ_ONCE(gntsock_handlers[i]);
		if (uh && (uh->ops & BIT(h->op))) {
			uh->recv(link, h);
			return;
		}
	}
}

/* The rx work ends a batch: each layer delivers what it collected. */
void gntsock_link_batch_end(struct gntsock_link *link)
{
	const struct gntsock_link_handler *uh;
	int i;

	lockdep_assert_held(&link->rx_lock);
	for (i = 0; i < GNTSOCK_USER_MAX; i++) {
		uh = READ_ONCE(gntsock_handlers[i]);
		if (uh && uh->batch_end)
			uh->batch_end(link);
	}
}

/**
 * gntsock_link_tell_down() - the link went down: tell every layer
 * @link: the link, its rings gone; setup_lock held
 *
 * In enum gntsock_link_user order.
 */
void gntsock_link_tell_down(struct gntsock_link *link)
{
	const struct gntsock_link_handler *uh;
	int i;

	for (i = 0; i < GNTSOCK_USER_MAX; i++) {
		uh = READ_ONCE(gntsock_handlers[i]);
		if (uh && uh->link_down)
			uh->link_down(link);
	}
}

/**
 * gntsock_link_map_revocable() - do we map grants revocably?
 *
 * Return: what a link advertises. The grant layer says; without it, no.
 */
bool gntsock_link_map_revocable(void)
{
	const struct gntsock_link_handler *uh =
		READ_ONCE(gntsock_handlers[GNTSOCK_USER_GRANT]);

	return uh && uh->map_revocable && uh->map_revocable();
}

#ifdef GNTSOCK_HOSTILE
/* Test module only (hostile.c): may take over a backend's ring mappings. */
bool (*gntsock_link_keep_maps_hook)(struct gntsock_link *link);
#endif

static domid_t gntsock_self = DOMID_INVALID;
/**
 * gntsock_local_domid_init() - read this domain's id, at module load
 *
 * Once, in process context: gntsock_local_domid() is called under
 * spinlocks (the /proc walk), where a xenstore read, which sleeps, may not
 * run.
 */
void gntsock_local_domid_init(void)
{
	domid_t id = xen_initial_domain() ? 0 :
		     xenbus_read_unsigned("domid", "", DOMID_INVALID);

	if (id == DOMID_INVALID)
		pr_warn("gntsock: this domain's id is not in xenstore (\"domid\")\n");
	WRITE_ONCE(gntsock_self, id);
}

/**
 * gntsock_local_domid() - this domain's id
 *
 * Return: the id read at module load (%DOMID_INVALID if xenstore had none).
 */
domid_t gntsock_local_domid(void)
{
	return READ_ONCE(gntsock_self);
}

/**
 * gntsock_domid_is_local() - does @domid name this domain?
 * @domid: a domain id from user space
 *
 * Return: true for %GNTSOCK_DOMID_SELF and for this domain's own id.
 */
bool gntsock_domid_is_local(u32 domid)
{
	return domid == GNTSOCK_DOMID_SELF || domid == gntsock_local_domid();
}

static void gntsock_link_release(struct kref *kref)
{
	struct gntsock_link *link = container_of(kref, struct gntsock_link,
						 kref);

	kfree(link->pages);
	kfree(link->va);
	kfree(link->refs);
	kfree(link->handles);
	kvfree(link->ctl_queue);
	kfree(link);
}

void gntsock_link_put(struct gntsock_link *link)
{
	kref_put(&link->kref, gntsock_link_release);
}

/* Send the peer an event (counted), unless the link has no channel. */
void gntsock_notify(struct gntsock_link *link)
{
	if (link->irq) {
		atomic64_inc(&link->stat_events_tx);
		notify_remote_via_irq(link->irq);
	}
}

/**
 * gntsock_link_violation() - the peer broke the protocol: reset the link
 * @link: the link
 * @v: what was wrong
 *
 * Counted per link and globally, logged rate-limited, and the link is torn
 * down from a work item (never from the rx path itself).
 */
void gntsock_link_violation(struct gntsock_link *link,
			    enum gntsock_violation v)
{
	if (v <= GNTSOCK_V_NONE || v >= GNTSOCK_V_MAX)
		v = GNTSOCK_V_RING_INDEX;
	atomic64_inc(&link->stat_violations);
	atomic64_inc(&gntsock_stats.violations);
	atomic64_inc(&gntsock_stats.violation[v]);
	if (link->loopback) {
		/* Only a bug of ours: nobody to reset. */
		pr_warn_ratelimited("gntsock: loopback: bad message (%s) dropped\n",
				    gntsock_violation_names[v]);
		return;
	}
	if (test_and_set_bit(0, &link->violated))
		return;
	link->failures++;
	pr_warn_ratelimited("gntsock: link to domain %u: protocol violation (%s), resetting link\n",
			    link->peer, gntsock_violation_names[v]);
	queue_work(gntsock_wq, &link->reset_work);
}
