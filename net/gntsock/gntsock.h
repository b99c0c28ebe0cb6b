/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gntsock internals shared by the socket layer, the links and procfs.
 *
 * Lock order, the whole module's, outermost first (a lock is only taken
 * while holding locks above it; functions that need one say so with
 * lockdep_assert_held() or sock_owned_by_me()):
 *
 *   socket tx_mutex       one sender at a time; connect() (af_gntsock.c)
 *   link setup_lock       ring set-up and tear-down (link_xenbus.c)
 *   link rx_lock          the consumer of a link's rx ring, its rx work
 *                         (and a busy-polling reader's look at the ring)
 *   lock_sock()           a listener before its children
 *                         (SINGLE_DEPTH_NESTING); the rx work never waits
 *                         for it: it owns a socket nobody owns, or puts the
 *                         message on the socket's backlog under
 *                         sk_lock.slock, which the owner hands on in
 *                         release_sock() (sock_deliver.c)
 *   mmap_lock             mmap() and munmap() of a received grant; no
 *                         fault sleeps under lock_sock(): user copies under
 *                         it run with page faults disabled, and the caller
 *                         faults the buffer in after release_sock()
 *   gntsock_grant_lock    (spinlock) every socket's grants (grant.h),
 *                         taken by the rx work for each grant message, so
 *                         nothing under it sleeps: mmap() maps a claimed
 *                         grant without it, and what must sleep to end a
 *                         record is left to the dispose work (grant_acct.c)
 *   grant map_lock        (spinlock) one received grant's mapping; the MMU
 *                         notifier takes only this one (grant_unmap.c)
 *   gntsock_links_lock    (spinlock) the list of links;
 *                         /proc/net/gntsock_links reads each link's rings
 *                         under its tx_lock
 *   link tx_lock          (spinlock) the tx ring and the control queue,
 *                         shared by the link's senders and its rx work;
 *                         nothing under it sleeps or faults (stream sends
 *                         copy with page faults disabled and fault the
 *                         buffer in without it), so the kernel never
 *                         preempts or throttles a task inside it (the
 *                         hypervisor may still deschedule its vCPU); a
 *                         peer gets a bounded number of looks at the
 *                         ring's space per hold (GNTSOCK_TX_LOOKS)
 *   spinlocks (leaves, nothing taken under them): gntsock_table_lock,
 *   a socket's sk_lock.slock, a link's loop_lock, gntsock_rx_pool_lock,
 *   gntsock_held_lock; a link's watch_lock, under which only a socket's
 *   wait queue is woken (sk_write_space())
 *
 * Nobody waits for ring space or credit while holding lock_sock() or
 * tx_lock, so the two kernels of a link cannot wait on each other in a
 * cycle; and no user fault is taken under lock_sock() (recvmsg() copies,
 * the grant cmsg, a grant's pinning, setsockopt()'s value) (issue 12,
 * defect 1). The rx work, shared by a link's sockets, never waits for one
 * socket's lock, whoever holds it and for however long (sock_deliver.c).
 */
#ifndef _GNTSOCK_H
#define _GNTSOCK_H

#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/list.h>
#include <linux/atomic.h>
#include <linux/ratelimit.h>
#include <net/sock.h>
#include <xen/grant_table.h>
#include <xen/xenbus.h>
#include <uapi/linux/gntsock.h>

#include "proto.h"

/* Control messages a link queues while its tx ring is full, at most. */
#define GNTSOCK_CTL_QUEUE_MAX	1024

#define GNTSOCK_DEVTYPE		"gntsock"
#define GNTSOCK_LINK_MAX_FAILURES	5
#define GNTSOCK_LINK_STABLE		(60 * HZ)

enum gntsock_link_state {
	GNTSOCK_LINK_CLOSED,		/* no rings */
	GNTSOCK_LINK_CONNECTING,	/* rings set up, handshake running */
	GNTSOCK_LINK_CONNECTED,		/* usable */
};

/**
 * struct gntsock_link - the connection between this domain and one peer
 * @kref: held by the xenbus device, by sockets and by lookups
 * @node: entry in the global link list
 * @peer: the peer's domain id
 * @frontend: true if this side grants the rings, false if it maps them
 * @xbdev: the xenbus device, NULL once removed
 * @state: enum gntsock_link_state, written under @tx_lock and @setup_lock
 * @setup_lock: serialises ring set-up and tear-down
 * @order: log2 of the ring pages per direction
 * @max_payload: largest RW payload, from the ring size
 * @ctrl_page: the control page (granted or mapped)
 * @ctrl: its kernel address
 * @pages: data pages, 2 << @order (F2B first), granted or mapped
 * @va: kernel addresses of @pages, used by the rings
 * @refs: grant references: [0] the control page, then the data pages
 * @handles: grant handles of our mappings (backend only)
 * @tx: ring we produce into
 * @rx: ring we consume from
 * @evtchn: local event channel port
 * @irq: irq bound to @evtchn, or 0
 * @tx_lock: serialises producers on @tx and the pending control queue
 * @tx_wq: woken when the peer consumed from @tx or the link went down
 * @tx_kick: bumped on every wake of @tx_wq
 * @watch_lock: guards @space_watches
 * @space_watches: non-blocking senders that found @tx full and wait to be
 *	told of room (struct gntsock_space_watch)
 * @ctl_queue: control messages waiting for ring space, a ring of
 *	%GNTSOCK_CTL_QUEUE_MAX headers allocated with the link (none on the
 *	loopback link), so that queueing one never allocates nor sleeps
 * @ctl_head: the oldest of them
 * @ctl_len: how many
 * @rx_work: drains @rx
 * @rx_lock: held by @rx_work, the consumer of @rx, and by a busy-polling
 *	reader while it looks at @rx (link_poll.c); taken before lock_sock()
 * @reset_work: tears the link down after a protocol violation
 * @eoi_irq: irq of an event waiting for its late EOI, or 0; set by the
 *	handler itself, since an event can fire before bind returns the irq
 * @violated: bit 0 set once a violation is being handled
 * @failures: set-up failures and violations since the link last stayed up
 *	for %GNTSOCK_LINK_STABLE; at %GNTSOCK_LINK_MAX_FAILURES we stop retrying
 * @up_since: jiffies when the link last connected
 * @generation: frontend: rings published so far; backend: the frontend's
 *	generation it is connected to (a repeated watch event is not a new
 *	set of rings)
 * @loopback: the same-domain link: no rings; a message is handed to the
 *	receive dispatch from @rx_work (see link_loop.c)
 * @loop_lock: protects @loop_queue
 * @loop_queue: loopback messages not yet delivered
 * @loop_mem: memory the messages of @loop_queue take, under @loop_lock
 * @loop_payload: loopback: the payload of the message being delivered
 * @loop_send: loopback: queues a message (link_loop.c), which the link core
 *	calls instead of writing a ring
 * @stat_*: counters shown in /proc/net/gntsock_links
 * @tx_cons_seen: the peer's consumer index of @tx when waiters were last
 *	woken: an event that did not move it frees no ring space
 * @ev_rx_prod: the peer's producer index of @rx at the previous event
 * @ev_tx_cons: the peer's consumer index of @tx at the previous event: an
 *	event that moved neither index since is spurious
 * @rx_batching: the rx work is draining @rx: sockets' waiters are woken at
 *	the end of the batch (under @rx_lock)
 * @rx_wakes: sockets owed a wake-up at the end of the batch (under @rx_lock)
 * @buf_auto: bytes the receive buffers of this link's sockets grew on their
 *	own, at most the buf_auto_max module parameter (sock_credit.c)
 * @map_revocable: this end told the peer that it maps grants revocably
 *	(xenstore feature-revocable-map = 1), so the peer may mark its grants
 *	revocable-only and this end maps them revocably; set before each
 *	handshake
 * @peer_map_revocable: the peer said that it maps grants revocably (absent
 *	key: no), read when the link connects: grants to it are then
 *	revocable-only where this domain can revoke
 * @peer_event_index: the peer said that it keeps its event indices
 *	("feature-event-index"), read when the link connects
 * @stale: frontend: ring pages whose grant the backend still mapped when
 *	the rings were torn down (struct gntsock_stale_ref), ended by the next
 *	set-up once the backend has let go (link_xenbus.c, gntsock_front_reap())
 * @nr_stale: entries on @stale
 * @log_rs: rate limit of this link's up/down log lines (link_xenbus.c)
 */
struct gntsock_link {
	struct kref kref;
	struct list_head node;
	domid_t peer;
	bool frontend;
	struct xenbus_device *xbdev;
	int state;
	struct mutex setup_lock;	/* ring set-up/tear-down */
	unsigned int order;
	u32 max_payload;
	struct page *ctrl_page;
	struct gntsock_ctrl_page *ctrl;
	struct page **pages;
	void **va;
	grant_ref_t *refs;
	grant_handle_t *handles;
	struct gntsock_ring tx;
	struct gntsock_ring rx;
	evtchn_port_t evtchn;
	int irq;
	spinlock_t tx_lock;		/* tx ring and ctl_queue */
	wait_queue_head_t tx_wq;
	atomic_t tx_kick;
	spinlock_t watch_lock;		/* space_watches */
	struct list_head space_watches;
	struct gntsock_msg_hdr *ctl_queue;
	unsigned int ctl_head;
	unsigned int ctl_len;
	struct work_struct rx_work;
	struct mutex rx_lock;		/* consumers of rx */
	struct work_struct reset_work;
	atomic_t eoi_irq;
	unsigned long violated;
	unsigned int failures;
	unsigned int generation;
	unsigned long up_since;
	bool loopback;
	spinlock_t loop_lock;		/* loop_queue */
	struct list_head loop_queue;
	u32 loop_mem;
	const void *loop_payload;
	int (*loop_send)(struct gntsock_link *link,
			 const struct gntsock_msg_hdr *h,
			 gntsock_copy_fn fn, void *ctx);

	atomic64_t stat_tx_msgs;
	atomic64_t stat_rx_msgs;
	atomic64_t stat_tx_bytes;
	atomic64_t stat_rx_bytes;
	atomic64_t stat_resets;
	atomic64_t stat_violations;
	atomic64_t stat_ctl_dropped;
	atomic64_t stat_events_rx;
	atomic64_t stat_events_tx;
	atomic64_t stat_events_spurious;
	atomic_t stat_sockets;
	atomic_t buf_auto;
	bool rx_batching;
	struct list_head rx_wakes;
	u32 tx_cons_seen;
	u32 ev_rx_prod;
	u32 ev_tx_cons;
	bool map_revocable;
	bool peer_map_revocable;
	bool peer_event_index;
	struct list_head stale;
	unsigned int nr_stale;
	struct ratelimit_state log_rs;
};

/* Global counters, /proc/net/gntsock_stat. */
struct gntsock_stats {
	atomic_t links;
	atomic_t links_connected;
	atomic_t sockets;
	atomic_t ring_grants;
	atomic_t ring_maps;
	atomic_t ring_refs_stale;	/* ring grants a backend still maps */
	atomic64_t ring_refs_kept;	/* ... found still mapped at InitWait */
	atomic64_t resets;
	atomic64_t link_ups;
	atomic64_t link_log_suppressed;
	atomic64_t violations;
	atomic64_t violation[GNTSOCK_V_MAX];
	atomic64_t ctl_dropped;
	/* profile: where a received byte goes and what it costs */
	atomic64_t rx_buf_msgs;
	atomic64_t rx_buf_bytes;
	atomic64_t rx_buf_vmalloc;
	atomic64_t rx_buf_appended;	/* ... appended to the previous one */
	atomic64_t rx_mem;		/* memory the rx queues hold now */
	atomic64_t loop_full;		/* loopback queue full: sender waited */
	atomic64_t rx_page_allocs;
	atomic64_t rx_user_bytes;
	atomic64_t rx_user_ns;
	atomic64_t rx_budget_runs;
	atomic64_t rx_polls;		/* busy-polling readers */
	atomic64_t rx_poll_looks;
	atomic64_t rx_poll_found;
	atomic64_t rx_stale;		/* left from an earlier connection */
	atomic64_t rx_deferred;		/* put on a socket's backlog */
	atomic64_t rx_defer_refused;	/* a backlog over a bound, or no memory */
	atomic64_t rx_work_runs;
	atomic64_t rx_work_ns;
	atomic64_t tx_ring_waits;
	atomic64_t tx_ring_wakeups;
	atomic64_t tx_ring_futile;
	atomic64_t tx_ring_blocked;
	atomic64_t tx_ring_rechecks;
	atomic64_t tx_faults_retried;
	atomic64_t rx_faults_retried;
	atomic64_t tx_grant_resets;
	atomic64_t rx_wakeups;
	atomic64_t buf_grown;
	atomic64_t buf_grow_refused;
	atomic64_t credit_requests;
};

extern struct gntsock_stats gntsock_stats;
extern unsigned int gntsock_buffer_size_max;	/* sysctl, af_gntsock.c */
extern unsigned int gntsock_busy_poll;		/* sysctl, sock.c */
extern struct workqueue_struct *gntsock_wq;
extern unsigned int gntsock_ring_order;

/* link*.c; link_xenbus.c: gntsock_link_get(), registration, the links
 * shown in /proc
 */
int gntsock_link_register(void);
void gntsock_link_unregister(void);
struct gntsock_link *gntsock_link_get(domid_t peer);
void gntsock_link_put(struct gntsock_link *link);

/**
 * gntsock_link_hold() - take another reference to a link
 * @link: a link the caller already holds a reference to (directly, or
 *	through a socket whose lock it holds)
 *
 * For a wait outside lock_sock(): the socket's own reference may go
 * meanwhile (a connect() on another thread moves it to another link).
 */
static inline void gntsock_link_hold(struct gntsock_link *link)
{
	kref_get(&link->kref);
}

/**
 * struct gntsock_space_watch - a non-blocking sender waiting for ring room
 * @node: on the link's @space_watches while it waits, else empty
 * @notify: called once, under the link's watch_lock (so it must not
 *	sleep), when the ring may have room again or the link went down
 *
 * A non-blocking send that finds the ring full returns EAGAIN at once; its
 * socket polls not writable until @notify (poll()'s EPOLLOUT reflects ring
 * room as well as credit). The owner initialises @node and takes it off
 * (gntsock_link_unwatch_space()) before it forgets the link or is freed.
 */
struct gntsock_space_watch {
	struct list_head node;
	void (*notify)(struct gntsock_space_watch *w);
};

bool gntsock_link_watch_space(struct gntsock_link *link,
			      struct gntsock_space_watch *w, int kick);
void gntsock_link_unwatch_space(struct gntsock_link *link,
				struct gntsock_space_watch *w);
int gntsock_link_send(struct gntsock_link *link,
		      const struct gntsock_msg_hdr *h,
		      gntsock_copy_fn fn, void *ctx);
int gntsock_link_send_ctl(struct gntsock_link *link,
			  const struct gntsock_msg_hdr *h);
void gntsock_link_rx_payload(struct gntsock_link *link, void *buf, u32 len);
void gntsock_link_rx_payload_cb(struct gntsock_link *link, u32 off, u32 len,
				gntsock_copy_fn fn, void *ctx);
long gntsock_link_wait_space(struct gntsock_link *link, int kick,
			     long timeo, bool killable);
bool gntsock_link_rx_poll(struct gntsock_link *link, u32 polls,
			  bool (*done)(void *ctx), void *ctx);
void gntsock_link_violation(struct gntsock_link *link,
			    enum gntsock_violation v);
void gntsock_local_domid_init(void);
domid_t gntsock_local_domid(void);
bool gntsock_domid_is_local(u32 domid);
void gntsock_links_show(struct seq_file *m);

/**
 * enum gntsock_link_user - the layers above the links
 * @GNTSOCK_USER_GRANT: the grant layer: link-scoped grant messages
 *	(GRANT_REVOKE, GRANT_RELEASE), told first when a link goes down
 * @GNTSOCK_USER_SOCK: the socket layer: connections and their messages
 * @GNTSOCK_USER_MAX: their number
 */
enum gntsock_link_user {
	GNTSOCK_USER_GRANT,
	GNTSOCK_USER_SOCK,
	GNTSOCK_USER_MAX,
};

/**
 * struct gntsock_link_handler - how a link reaches a layer above it
 * @ops: the messages it takes, BIT(GNTSOCK_OP_*); each op goes to one layer
 * @recv: a validated message of one of @ops, from the link's rx work, in
 *	process context, no socket lock held; rx_lock held on a xenbus link,
 *	not on the loopback link (link_loop.c), whose work delivers its
 *	queued copies one by one. @h is a local copy; an RW payload is still
 *	in the ring (gntsock_link_rx_payload_cb()).
 * @batch_end: optional: the rx work of a xenbus link ends a batch (rx_lock
 *	held): deliver the wake-ups collected during it. The loopback link
 *	has no batches.
 * @link_down: optional: the link went down (its rings are gone, setup_lock
 *	held); told in enum gntsock_link_user order
 * @map_revocable: optional, grant layer: does this domain map grants
 *	revocably? What a link advertises to its peer when it connects.
 *
 * As struct vsock_transport separates af_vsock.c from its transports, this
 * keeps the link layer from calling up by name (gntsock_link_set_handler()).
 */
struct gntsock_link_handler {
	u32 ops;
	void (*recv)(struct gntsock_link *link,
		     const struct gntsock_msg_hdr *h);
	void (*batch_end)(struct gntsock_link *link);
	void (*link_down)(struct gntsock_link *link);
	bool (*map_revocable)(void);
};

void gntsock_link_set_handler(enum gntsock_link_user user,
			      const struct gntsock_link_handler *h);
#ifdef GNTSOCK_HOSTILE
extern bool (*gntsock_link_keep_maps_hook)(struct gntsock_link *link);
#endif

/* af_gntsock.c */
void gntsock_sockets_show(struct seq_file *m);
int gntsock_sock_register(void);
void gntsock_sock_unregister(void);

#ifdef GNTSOCK_HOSTILE
/* hostile.c: only in the test module gntsock_hostile.ko */
int gntsock_hostile_init(void);
/* Ids of the forged grants: our kernel ignores answers about them. */
#define GNTSOCK_HOSTILE_GRANT_ID	0x80000000U
int gntsock_hostile_conn_hdr(domid_t peer, u32 peer_port, u16 op,
			     struct gntsock_msg_hdr *h, u32 sent);
void gntsock_hostile_exit(void);
#endif

/* common.c */
extern bool gntsock_stat_times;
u64 gntsock_stat_clock(void);
int gntsock_common_init(void);
void gntsock_common_exit(void);

/* sysctl.c */
int gntsock_sysctl_init(void);
void gntsock_sysctl_exit(void);

/* procfs.c */
int gntsock_proc_init(void);
void gntsock_proc_exit(void);

#endif /* _GNTSOCK_H */
