/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The link layer's own header: what its three files share. Nothing
 * outside the link layer includes it (its API is in gntsock.h).
 *
 *   link.c          the core: send, receive, events, handlers, violations
 *   link_xenbus.c   links over xenbus: rings, handshake, up and down
 *   link_loop.c     the loopback link
 */
#ifndef _GNTSOCK_LINK_H
#define _GNTSOCK_LINK_H

#include <linux/interrupt.h>

#include "gntsock.h"

extern struct gntsock_link *gntsock_loopback;

/* link.c */
bool gntsock_link_deliver(struct gntsock_link *link,
			  const struct gntsock_msg_hdr *h, bool defer);
void gntsock_link_tell_down(struct gntsock_link *link);
bool gntsock_link_map_revocable(void);
void gntsock_tx_kick(struct gntsock_link *link);
void gntsock_space_watch_flush(struct gntsock_link *link);
void gntsock_ctl_purge(struct gntsock_link *link);
void gntsock_link_init(struct gntsock_link *link, work_func_t rx_fn);
void gntsock_rx_work(struct work_struct *work);
irqreturn_t gntsock_interrupt(int irq, void *dev_id);

/* link_loop.c */
int gntsock_loopback_create(void);
void gntsock_loopback_destroy(void);

#endif /* _GNTSOCK_LINK_H */
