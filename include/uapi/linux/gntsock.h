/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * AF_GNTSOCK: sockets between Xen domains.
 *
 * Connection-oriented sockets addressed by (domain id, port), carried kernel
 * to kernel over shared rings and an event channel on a per-domain-pair link
 * that the toolstack in dom0 creates. See Documentation/gntsock.rst.
 */
#ifndef _UAPI_LINUX_GNTSOCK_H
#define _UAPI_LINUX_GNTSOCK_H

#include <linux/types.h>
#include <linux/socket.h>

/**
 * DOC: Address family number
 *
 * An in-tree AF_GNTSOCK would take the next free number (AF_MAX in Linux
 * 6.1 is 46).  This module is built out of tree against a stock kernel, where
 * sock_register() only accepts a number below AF_MAX that no family of the
 * running kernel claims.  22 is AF_SNA: reserved since Linux 2.1 for IBM SNA,
 * never implemented by any Linux kernel, so no stock module can ever register
 * it, "net-pf-22" has no module alias, and no libc gives it a meaning.
 * The module refuses to load if the number is already taken.
 */
#define AF_GNTSOCK		22
#define PF_GNTSOCK		AF_GNTSOCK

/* Wildcards for struct sockaddr_gnt. */
#define GNTSOCK_DOMID_ANY	0xffffffffU	/* bind: any local domain id */
#define GNTSOCK_DOMID_SELF	0x7ff0U		/* Xen's DOMID_SELF: this domain */
#define GNTSOCK_PORT_ANY	0xffffffffU	/* bind/connect: ephemeral port */

/* Ports below this need CAP_NET_BIND_SERVICE to bind, as for vsock. */
#define GNTSOCK_PORT_RESERVED	1024

/**
 * struct sockaddr_gnt - AF_GNTSOCK socket address
 * @sgnt_family: AF_GNTSOCK
 * @sgnt_reserved1: must be zero
 * @sgnt_port: port number, or %GNTSOCK_PORT_ANY
 * @sgnt_domid: Xen domain id, %GNTSOCK_DOMID_ANY (bind) or
 *	%GNTSOCK_DOMID_SELF
 * @sgnt_flags: must be zero
 * @sgnt_zero: must be zero
 *
 * Same size and layout as struct sockaddr_vm, so that a vsock program ports
 * by changing the family and the names of two fields.
 */
struct sockaddr_gnt {
	__kernel_sa_family_t sgnt_family;
	unsigned short sgnt_reserved1;
	unsigned int sgnt_port;
	unsigned int sgnt_domid;
	unsigned char sgnt_flags;
	unsigned char sgnt_zero[3];
};

/* Socket-level options, level SOL_GNTSOCK. */
#define SOL_GNTSOCK		299

/**
 * DOC: SOL_GNTSOCK options
 *
 * GNTSOCK_SO_PEER_DOMID (int, read only): the connected peer's domain id.
 * GNTSOCK_SO_BUFFER_SIZE (u64, bytes): receive buffer advertised to the
 *	peer as credit; default 262144, min 4096, max 16777216.
 * GNTSOCK_SO_CONNECT_TIMEOUT (struct timeval or
 *	struct __kernel_sock_timeval): how long connect() waits for the
 *	peer's answer; default 2 s.
 */
#define GNTSOCK_SO_PEER_DOMID		1
#define GNTSOCK_SO_BUFFER_SIZE		2
#define GNTSOCK_SO_CONNECT_TIMEOUT	3

#define GNTSOCK_BUFFER_SIZE_MIN		4096ULL
#define GNTSOCK_BUFFER_SIZE_DEFAULT	262144ULL
#define GNTSOCK_BUFFER_SIZE_MAX		16777216ULL

#endif /* _UAPI_LINUX_GNTSOCK_H */
