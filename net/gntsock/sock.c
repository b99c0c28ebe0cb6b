// SPDX-License-Identifier: GPL-2.0
/*
 * AF_GNTSOCK socket objects: allocation (a socket and an accepted child),
 * the link a socket uses, a local reset, an orderly end the peer asked for,
 * and destruction. What every other file of the socket layer builds on.
 */
#include <linux/module.h>
#include <linux/net.h>
#include <linux/memcontrol.h>
#include <net/sock.h>

#include "gntsock.h"
#include "grant.h"
#include "sock.h"

/**
 * gntsock_set_link() - change the link a socket uses
 * @vsk: the socket, lock_sock held (or new, or being destroyed)
 * @link: the new link, its reference passed to @vsk; or NULL
 *
 * The old link, if any, is let go: the buffer growth goes back to its
 * budget, the space watch comes off it, and its reference is dropped.
 */
void gntsock_set_link(struct gntsock_sock *vsk,
		      struct gntsock_link *link)
{
	gntsock_buf_auto_put(vsk);
	if (vsk->link) {
		gntsock_link_unwatch_space(vsk->link, &vsk->space_watch);
		WRITE_ONCE(vsk->ring_blocked, false);
		atomic_dec(&vsk->link->stat_sockets);
		gntsock_link_put(vsk->link);
	}
	vsk->link = link;
	if (link)
		atomic_inc(&link->stat_sockets);
}

/**
 * gntsock_purge_rx() - drop everything in a socket's rx queue
 * @vsk: the socket, lock_sock held (or being destroyed)
 *
 * Grants queued with the data are dropped too.
 */
void gntsock_purge_rx(struct gntsock_sock *vsk)
{
	struct gntsock_rxbuf *b, *tmp;

	list_for_each_entry_safe(b, tmp, &vsk->rx_queue, node) {
		list_del(&b->node);
		if (b->grant)
			gntsock_grant_in_drop(b->grant);
		gntsock_rxbuf_free(vsk, b);
	}
	vsk->rx_bytes = 0;
	vsk->rx_msgs = 0;
}

/**
 * gntsock_reset() - abort a connection locally
 * @sk: the socket, lock_sock held
 * @err: the positive errno the application gets (sk_err)
 *
 * The socket leaves the connection table and both directions are shut.
 */
void gntsock_reset(struct sock *sk, int err)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);

	sock_owned_by_me(sk);
	gntsock_conn_unhash(vsk);
	sk->sk_err = err;
	sk->sk_state = TCP_CLOSE;
	sk->sk_shutdown = SHUTDOWN_MASK;
	vsk->peer_shutdown = GNTSOCK_SHUT_MASK;
	if (sk->sk_socket)
		sk->sk_socket->state = SS_UNCONNECTED;
	sk_error_report(sk);
	sk->sk_state_change(sk);
}

static void gntsock_destruct(struct sock *sk)
{
	struct gntsock_sock *vsk = gntsock_sk(sk);

	gntsock_backlog_purge(vsk);
	gntsock_purge_rx(vsk);
	gntsock_grant_sock_destruct(sk);
	gntsock_set_link(vsk, NULL);
	atomic_dec(&gntsock_stats.sockets);
}

/* The link says its ring may have room again (struct gntsock_space_watch):
 * poll() may report EPOLLOUT again. Under the link's watch_lock.
 */
static void gntsock_ring_room(struct gntsock_space_watch *w)
{
	struct gntsock_sock *vsk = container_of(w, struct gntsock_sock,
						space_watch);

	WRITE_ONCE(vsk->ring_blocked, false);
	vsk->sk.sk_write_space(&vsk->sk);
}

/* net.gntsock.busy_poll: GNTSOCK_SO_BUSY_POLL of new sockets. */
unsigned int gntsock_busy_poll;

/**
 * gntsock_sk_alloc() - allocate and set up an AF_GNTSOCK socket
 * @net: its network namespace
 * @sock: the struct socket it is for, or NULL for an accepted child
 * @prot: AF_GNTSOCK's struct proto (a child's: its listener's sk_prot)
 * @type: SOCK_STREAM or SOCK_SEQPACKET; with @sock, @sock's type is used
 * @gfp: allocation flags
 * @kern: as sk_alloc(): non-zero for a kernel socket
 *
 * The socket starts in TCP_CLOSE, unbound and without a link.
 *
 * Return: the socket, or NULL without memory.
 */
struct sock *gntsock_sk_alloc(struct net *net, struct socket *sock,
			      struct proto *prot, int type, gfp_t gfp,
			      int kern)
{
	struct gntsock_sock *vsk;
	struct sock *sk;

	sk = sk_alloc(net, AF_GNTSOCK, gfp, prot, kern);
	if (!sk)
		return NULL;
	sock_init_data(sock, sk);
	if (!sock)
		sk->sk_type = type;
	sk->sk_destruct = gntsock_destruct;
	vsk = gntsock_sk(sk);
	vsk->local_port = GNTSOCK_PORT_ANY;
	vsk->peer_domid = GNTSOCK_DOMID_ANY;
	vsk->peer_port = GNTSOCK_PORT_ANY;
	INIT_HLIST_NODE(&vsk->bind_node);
	INIT_LIST_HEAD(&vsk->rx_queue);
	INIT_LIST_HEAD(&vsk->backlog);
	INIT_LIST_HEAD(&vsk->accept_queue);
	INIT_LIST_HEAD(&vsk->accept_node);
	INIT_LIST_HEAD(&vsk->wake_node);
	INIT_LIST_HEAD(&vsk->space_watch.node);
	vsk->space_watch.notify = gntsock_ring_room;
	mutex_init(&vsk->tx_mutex);
	gntsock_grants_init(&vsk->grants);
	vsk->buf_alloc = GNTSOCK_BUFFER_SIZE_DEFAULT;
	vsk->buf_alloc_max = vsk->buf_alloc;
	vsk->connect_timeout = 2 * HZ;
	vsk->busy_poll = READ_ONCE(gntsock_busy_poll);
	sk->sk_state = TCP_CLOSE;
	atomic_inc(&gntsock_stats.sockets);
	return sk;
}

/**
 * gntsock_sk_memcg_inherit() - charge a child to its listener's cgroup
 * @child: the new child socket; one that has a memory cgroup keeps it
 * @listener: the listener it was made for
 *
 * A child made by the link's work belongs to its listener's memory cgroup
 * (the receive memory of gntsock_rxbuf_alloc() is charged there): data
 * arrives before accept(), and the listener's creator set the service up.
 * (TCP's children get the cgroup of the task that accepts them.)
 */
void gntsock_sk_memcg_inherit(struct sock *child, struct sock *listener)
{
#ifdef CONFIG_MEMCG
	if (listener->sk_memcg && !child->sk_memcg) {
		css_get(&listener->sk_memcg->css);
		child->sk_memcg = listener->sk_memcg;
	}
#endif
}

/**
 * gntsock_peer_closed() - the peer ended the connection in order
 * @sk: the socket, lock_sock held
 *
 * The peer shut down both directions (its close()) or reset a connection
 * it had shut down: nothing more comes, and the peer has forgotten the
 * connection. Take it out of the connection table now, not when our
 * application closes its fd: the same (domain, port) may connect again at
 * once, and its REQUEST must not find this one (as vsock since 2023,
 * "vsock/virtio: remove socket from connected/bound list on shutdown").
 * TCP_CLOSE also keeps this end from sending anything more with those
 * ports (a credit update or a SHUTDOWN at close()), which would land on
 * the new connection. What was received stays readable, then EOF; a send
 * gets EPIPE.
 */
void gntsock_peer_closed(struct sock *sk)
{
	sock_owned_by_me(sk);
	gntsock_conn_unhash(gntsock_sk(sk));
	sk->sk_state = TCP_CLOSE;
	sk->sk_state_change(sk);
}
