// SPDX-License-Identifier: GPL-2.0
/*
 * AF_GNTSOCK tables: bound ports and connections, hashed with a secret
 * key (a peer must not choose which bucket its connections land in), under
 * gntsock_table_lock, a leaf spinlock; and the choice of ephemeral ports.
 */
#include <linux/hashtable.h>
#include <linux/random.h>
#include <linux/siphash.h>
#include <net/sock.h>

#include "gntsock.h"
#include "grant.h"
#include "sock.h"

/* Bound ports and connections, under gntsock_table_lock. */
DEFINE_SPINLOCK(gntsock_table_lock);
DEFINE_HASHTABLE(gntsock_bound, 8);
DEFINE_HASHTABLE(gntsock_conn, 8);

/* The tables are keyed with a secret: ports are chosen by local users and
 * by the peer, who could otherwise put every entry in one chain, walked
 * under gntsock_table_lock with bottom halves off (issue 12, defect 9).
 */
static siphash_key_t gntsock_table_secret __read_mostly;

/* The one place that makes the secret: each net_get_random_once() call
 * site has its own "done" flag, so a second site would make it anew and
 * lose every entry hashed before.
 */
static const siphash_key_t *gntsock_table_key(void)
{
	net_get_random_once(&gntsock_table_secret,
			    sizeof(gntsock_table_secret));
	return &gntsock_table_secret;
}

static u32 gntsock_conn_key(u32 peer, u32 local_port, u32 peer_port)
{
	return siphash_3u32(peer, local_port, peer_port, gntsock_table_key());
}

static u32 gntsock_bound_key(u32 port)
{
	return siphash_1u32(port, gntsock_table_key());
}

/**
 * gntsock_find_bound() - the socket bound to a port
 * @port: the local port
 *
 * gntsock_table_lock held. No reference is taken.
 *
 * Return: the socket, or NULL if none is bound to @port.
 */
struct gntsock_sock *gntsock_find_bound(u32 port)
{
	struct gntsock_sock *vsk;

	hash_for_each_possible(gntsock_bound, vsk, bind_node,
			       gntsock_bound_key(port))
		if (vsk->local_port == port)
			return vsk;
	return NULL;
}

/**
 * gntsock_find_conn() - the connection of a link with these ports
 * @link: the link it uses
 * @local_port: our port
 * @peer_port: the peer's port
 *
 * gntsock_table_lock held. No reference is taken.
 *
 * Return: the socket, or NULL if there is no such connection.
 */
struct gntsock_sock *gntsock_find_conn(struct gntsock_link *link,
				       u32 local_port, u32 peer_port)
{
	struct gntsock_sock *vsk;

	hash_for_each_possible(gntsock_conn, vsk, conn_node,
			       gntsock_conn_key(link->peer, local_port,
						peer_port))
		if (vsk->link == link && vsk->local_port == local_port &&
		    vsk->peer_port == peer_port)
			return vsk;
	return NULL;
}

/**
 * gntsock_conn_hash() - add a socket to the connection table
 * @vsk: the socket, its link and both ports set
 *
 * Takes gntsock_table_lock.
 *
 * Return: 0, or -EADDRINUSE if the table has a connection with the same
 * link and ports.
 */
int gntsock_conn_hash(struct gntsock_sock *vsk)
{
	int err = 0;

	spin_lock_bh(&gntsock_table_lock);
	if (gntsock_find_conn(vsk->link, vsk->local_port, vsk->peer_port)) {
		err = -EADDRINUSE;
	} else {
		hash_add(gntsock_conn, &vsk->conn_node,
			 gntsock_conn_key(vsk->link->peer, vsk->local_port,
					  vsk->peer_port));
		vsk->conn_hashed = true;
	}
	spin_unlock_bh(&gntsock_table_lock);
	return err;
}

/**
 * gntsock_conn_unhash() - take a socket out of the connection table
 * @vsk: the socket; nothing happens if it is not in the table
 *
 * Takes gntsock_table_lock.
 */
void gntsock_conn_unhash(struct gntsock_sock *vsk)
{
	spin_lock_bh(&gntsock_table_lock);
	if (vsk->conn_hashed) {
		hash_del(&vsk->conn_node);
		vsk->conn_hashed = false;
	}
	spin_unlock_bh(&gntsock_table_lock);
}

/**
 * gntsock_do_bind() - bind a socket to a port
 * @vsk: the socket
 * @port: the port, or GNTSOCK_PORT_ANY
 *
 * Bind @vsk to @port, or to a free ephemeral port for GNTSOCK_PORT_ANY.
 * A port below GNTSOCK_PORT_RESERVED needs CAP_NET_BIND_SERVICE. Takes
 * gntsock_table_lock.
 *
 * Return: 0; -EACCES; or -EADDRINUSE if @port is taken or no free
 * ephemeral port was found.
 */
int gntsock_do_bind(struct gntsock_sock *vsk, u32 port)
{
	unsigned int tries;
	int err = -EADDRINUSE;

	if (port != GNTSOCK_PORT_ANY && port < GNTSOCK_PORT_RESERVED &&
	    !capable(CAP_NET_BIND_SERVICE))
		return -EACCES;

	spin_lock_bh(&gntsock_table_lock);
	if (port == GNTSOCK_PORT_ANY) {
		for (tries = 0; tries < 1024; tries++) {
			u32 p = GNTSOCK_EPHEMERAL_MIN +
				get_random_u32_below(GNTSOCK_EPHEMERAL_MAX -
						     GNTSOCK_EPHEMERAL_MIN);

			if (!gntsock_find_bound(p)) {
				port = p;
				break;
			}
		}
		if (port == GNTSOCK_PORT_ANY)
			goto out;
	} else if (gntsock_find_bound(port)) {
		goto out;
	}
	vsk->local_port = port;
	vsk->bound = true;
	hash_add(gntsock_bound, &vsk->bind_node, gntsock_bound_key(port));
	err = 0;
out:
	spin_unlock_bh(&gntsock_table_lock);
	return err;
}

/**
 * gntsock_unbind() - take a socket out of the bound table
 * @vsk: the socket; nothing happens if it is not in the table
 *
 * Takes gntsock_table_lock.
 */
void gntsock_unbind(struct gntsock_sock *vsk)
{
	spin_lock_bh(&gntsock_table_lock);
	if (!hlist_unhashed(&vsk->bind_node))
		hash_del(&vsk->bind_node);
	spin_unlock_bh(&gntsock_table_lock);
}
