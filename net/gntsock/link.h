/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The link layer's own header: what its files share. Nothing outside the
 * link layer includes it (its API is in gntsock.h). Each file calls only
 * the ones listed after it here, never up (selftests/import_check.py):
 *
 *   link_xenbus.c   links over xenbus: rings, handshake, up and down
 *   link_loop.c     the loopback link
 *   link_poll.c     busy-polling the rx ring for a reader
 *   link_rx.c       receiving, the link's events and work items
 *   link_tx.c       sending, and writers waiting for ring space
 *   link.c          the core: the layers' handlers, references, this
 *                   domain's id, notifying the peer, violations
 */
#ifndef _GNTSOCK_LINK_H
#define _GNTSOCK_LINK_H

#include <linux/interrupt.h>

#include "gntsock.h"

extern struct gntsock_link *gntsock_loopback;

/* link.c */
void gntsock_link_deliver(struct gntsock_link *link,
			  const struct gntsock_msg_hdr *h);
void gntsock_link_batch_end(struct gntsock_link *link);
void gntsock_link_tell_down(struct gntsock_link *link);
bool gntsock_link_map_revocable(void);
bool gntsock_link_evt(struct gntsock_link *link);
void gntsock_notify(struct gntsock_link *link);

/* link_tx.c */
void gntsock_tx_kick(struct gntsock_link *link);
void gntsock_space_watch_flush(struct gntsock_link *link);
void gntsock_ctl_purge(struct gntsock_link *link);
int gntsock_ctl_flush_event(struct gntsock_link *link);

/* link_rx.c */
void gntsock_link_init(struct gntsock_link *link, work_func_t rx_fn);
void gntsock_rx_work(struct work_struct *work);
irqreturn_t gntsock_interrupt(int irq, void *dev_id);

/* link_loop.c */
int gntsock_loopback_create(void);
void gntsock_loopback_destroy(void);

#endif /* _GNTSOCK_LINK_H */
