// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock grants: the grant layer's entry points. Its handler with the
 * link layer (link-scoped GRANT_REVOKE and GRANT_RELEASE, a link going
 * down), a socket closing, module load and unload. Below it: grants we
 * made, in grant_send.c (offer, the peer's answers), grant_pin.c (pinning
 * and granting the pages) and grant_reclaim.c (revoke, force, quarantine
 * and deferred reclaim); grants we received, in grant_recv.c (delivery,
 * release, revoke), grant_map.c (mapping) and grant_unmap.c (unmapping);
 * grant_events.c (the error-queue events of both) and grant_acct.c (lock,
 * limits, counters, per-peer accounting).
 */

#include "gntsock.h"
#include "grant.h"

/* A link-scoped grant message (gntsock_link_handler.recv): GRANT_REVOKE
 * or GRANT_RELEASE.
 */
static void gntsock_grant_link_msg(struct gntsock_link *link,
				   const struct gntsock_msg_hdr *h)
{
	if (h->op == GNTSOCK_OP_GRANT_REVOKE)
		gntsock_grant_in_revoke(link, h);
	else
		gntsock_grant_out_release(link, h);
}

/**
 * gntsock_grant_sock_close() - a socket closes
 * @gs: its grants
 *
 * Grants it sent are revoked; grants it received are released.
 */
void gntsock_grant_sock_close(struct gntsock_grants *gs)
{
	spin_lock(&gntsock_grant_lock);
	gntsock_grant_out_close(gs);
	gntsock_grant_in_close(gs);
	spin_unlock(&gntsock_grant_lock);
}

/**
 * gntsock_grant_sock_destruct() - free what is left on the error queue
 * @sk: the socket being destroyed
 */
void gntsock_grant_sock_destruct(struct sock *sk)
{
	skb_queue_purge(&sk->sk_error_queue);
}

/* A link went down (gntsock_link_handler.link_down): received grants are
 * unmapped; sent grants are ended, or quarantined while the peer still
 * maps them. Before the sockets of the link are reset.
 */
static void gntsock_grant_link_down(struct gntsock_link *link)
{
	spin_lock(&gntsock_grant_lock);
	gntsock_grant_in_link_down(link);
	gntsock_grant_out_link_down(link);
	spin_unlock(&gntsock_grant_lock);
}

/* What the links hand to the grant layer. */
static const struct gntsock_link_handler gntsock_grant_handler = {
	.ops = BIT(GNTSOCK_OP_GRANT_REVOKE) | BIT(GNTSOCK_OP_GRANT_RELEASE),
	.recv = gntsock_grant_link_msg,
	.link_down = gntsock_grant_link_down,
	.map_revocable = gntsock_grant_map_revocable,
};

/**
 * gntsock_grant_init() - the grant layer: state, sysctls, and its handler
 *	with the link layer
 *
 * Before any link is registered.
 *
 * Return: 0 or a negative errno.
 */
int gntsock_grant_init(void)
{
	int err;

	gntsock_reclaim_start();
	err = gntsock_grant_in_init();
	if (err)
		return err;
	gntsock_link_set_handler(GNTSOCK_USER_GRANT, &gntsock_grant_handler);
	return 0;
}

/**
 * gntsock_grant_exit() - undo gntsock_grant_init(), after every link is gone
 */
void gntsock_grant_exit(void)
{
	gntsock_link_set_handler(GNTSOCK_USER_GRANT, NULL);
	gntsock_reclaim_stop();
	gntsock_grant_in_exit();
	gntsock_grant_out_exit();
	gntsock_peer_acct_exit();
}
