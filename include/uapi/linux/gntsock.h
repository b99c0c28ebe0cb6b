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
#include <linux/ioctl.h>

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
 *	peer as credit; default 262144, min 4096, max 16777216. A
 *	SOCK_STREAM buffer not set grows by itself while the peer's writer
 *	waits for credit (up to the buf_auto_max module parameter, 1 MiB by
 *	default); reading returns the current size, setting fixes it.
 * GNTSOCK_SO_CONNECT_TIMEOUT: how long connect() waits for the peer's
 *	answer; default 2 s. As vsock's SO_VM_SOCKETS_CONNECT_TIMEOUT, two
 *	numbers: GNTSOCK_SO_CONNECT_TIMEOUT_OLD takes the struct timeval of
 *	the caller's ABI with a native long tv_sec (what the option always
 *	was; a 32-bit process on a 64-bit kernel passes its 8-byte one),
 *	GNTSOCK_SO_CONNECT_TIMEOUT_NEW a struct __kernel_sock_timeval (64-bit
 *	tv_sec and tv_usec on every ABI). User space's
 *	GNTSOCK_SO_CONNECT_TIMEOUT is the one that matches its struct timeval:
 *	_OLD on 64-bit (unchanged), _NEW for a 64-bit time_t on 32-bit.
 * GNTSOCK_SO_BUSY_POLL (u32, looks): how many times at most a SOCK_STREAM
 *	reader about to sleep in a blocking recv() looks at the link's ring
 *	for data first, while the peer is asked for no events; then it
 *	sleeps as usual. Default: the sysctl net.gntsock.busy_poll (0: off);
 *	max GNTSOCK_BUSY_POLL_MAX; more than the default and than the
 *	socket's value takes CAP_NET_ADMIN, as SO_BUSY_POLL. A count, not a
 *	time: one look reads one index and takes no clock reading. Accepted
 *	connections take their listener's value.
 */
#define GNTSOCK_SO_PEER_DOMID		1
#define GNTSOCK_SO_BUFFER_SIZE		2
#define GNTSOCK_SO_CONNECT_TIMEOUT_OLD	3
#define GNTSOCK_SO_CONNECT_TIMEOUT_NEW	4
#define GNTSOCK_SO_BUSY_POLL		5

#define GNTSOCK_BUSY_POLL_MAX		1000000

#if !defined(__KERNEL__)
#if __BITS_PER_LONG == 64 || (defined(__x86_64__) && defined(__ILP32__))
#define GNTSOCK_SO_CONNECT_TIMEOUT	GNTSOCK_SO_CONNECT_TIMEOUT_OLD
#else
#define GNTSOCK_SO_CONNECT_TIMEOUT \
	(sizeof(time_t) == sizeof(__kernel_long_t) ? \
	 GNTSOCK_SO_CONNECT_TIMEOUT_OLD : GNTSOCK_SO_CONNECT_TIMEOUT_NEW)
#endif
#endif

#define GNTSOCK_BUFFER_SIZE_MIN		4096ULL
#define GNTSOCK_BUFFER_SIZE_DEFAULT	262144ULL
#define GNTSOCK_BUFFER_SIZE_MAX		16777216ULL

/**
 * DOC: Grants
 *
 * A grant lets the peer domain map pages of the sender's memory. Grants
 * travel only as control messages on a connected socket, so both kernels
 * know every grant's lifetime; grant references never reach user space.
 * See Documentation/grants.rst for the state machine and an example.
 *
 * Sending: sendmsg() with one cmsg of level %SOL_GNTSOCK, type
 * %GNTSOCK_CMSG_GRANT carrying a struct gntsock_grant_send, and at least one
 * data byte: the grant travels attached to the first byte of the message.
 *
 * Receiving: recvmsg() returns a cmsg of type %GNTSOCK_CMSG_GRANT_INFO
 * (struct gntsock_grant_info) together with the bytes the grant travelled
 * with; a recvmsg() never returns data from before and after a grant.
 * The application maps the grant with mmap(NULL, len, prot, MAP_SHARED,
 * sockfd, id * page size) exactly once, unmaps it with munmap() and ends
 * it with ioctl(%GNTSOCK_IOC_RELEASE, &id); closing the socket releases
 * every grant it received. If the control buffer is too small for the
 * cmsg, MSG_CTRUNC is set and the grant is released at once.
 *
 * Revoking: ioctl(%GNTSOCK_IOC_REVOKE, &cookie) on the sending socket
 * revokes every grant sent with that cookie; closing the socket or the
 * death of the process revokes all its grants.
 *
 * Outcomes: recvmsg(MSG_ERRQUEUE) returns one cmsg of type
 * %GNTSOCK_CMSG_GRANT_EVENT (struct gntsock_grant_event) per event, as
 * MSG_ZEROCOPY reports completions; poll() reports EPOLLERR while events
 * wait. The receiving socket gets %GNTSOCK_EV_REVOKED events too. Waiting
 * events are charged to the socket's receive buffer (SO_RCVBUF); events
 * without room are counted and reported by one %GNTSOCK_EV_LOST event once
 * the queued ones are read.
 */

/* cmsg types at level SOL_GNTSOCK */
#define GNTSOCK_CMSG_GRANT		1	/* sendmsg: struct gntsock_grant_send */
#define GNTSOCK_CMSG_GRANT_INFO		2	/* recvmsg: struct gntsock_grant_info */
#define GNTSOCK_CMSG_GRANT_EVENT	3	/* MSG_ERRQUEUE: struct gntsock_grant_event */

/* Access flags of a grant. */
#define GNTSOCK_GRANT_WRITABLE		0x1	/* the peer may write */

/**
 * struct gntsock_grant_send - a buffer to grant to the connection's peer
 * @addr: start of the buffer, page aligned
 * @len: length in bytes, a non-zero multiple of the page size, at most
 *	net.gntsock.max_pages_msg pages
 * @flags: %GNTSOCK_GRANT_WRITABLE, or 0 for a read-only grant
 * @reserved: zero
 * @cookie: chosen by the application, returned in every event about this
 *	grant and used to revoke it
 *
 * The kernel pins the pages (a writable grant needs a writable mapping)
 * until the peer's kernel reports them unmapped or they are reclaimed.
 */
struct gntsock_grant_send {
	__u64 addr;
	__u64 len;
	__u32 flags;
	__u32 reserved;
	__u64 cookie;
};

/**
 * struct gntsock_grant_info - a grant that arrived with the data
 * @id: names the grant to mmap() (offset @id * page size) and to
 *	%GNTSOCK_IOC_RELEASE; unique on this socket
 * @flags: %GNTSOCK_GRANT_WRITABLE if it may be mapped writable
 * @len: length in bytes, a multiple of the page size
 */
struct gntsock_grant_info {
	__u32 id;
	__u32 flags;
	__u64 len;
};

/*
 * Event types, struct gntsock_grant_event.type:
 * RELEASED	sender: the peer unmapped and released the grant
 * REVOKED	sender: the revoke completed, the peer cooperated (or the link
 *		went down and Xen let us end access); receiver: the sender
 *		revoked grant @id
 * FORCED	sender: the hypervisor took the pages back from a peer that
 *		ignored the revoke
 * QUARANTINED	sender: the peer still maps the pages after the revoke
 *		timeout; they stay pinned on the deferred list
 * REFUSED	sender: the peer's kernel refused the grant (its limits)
 * LOST		either: the error queue had no room (it is charged to the
 *		socket's receive buffer, SO_RCVBUF) for @cookie events, which
 *		are lost; they came after the events read before this one
 *		and before those read after it. @id and @pages are zero.
 */
#define GNTSOCK_EV_RELEASED	1
#define GNTSOCK_EV_REVOKED	2
#define GNTSOCK_EV_FORCED	3
#define GNTSOCK_EV_QUARANTINED	4
#define GNTSOCK_EV_REFUSED	5
#define GNTSOCK_EV_LOST		6

/**
 * struct gntsock_grant_event - an outcome, read with MSG_ERRQUEUE
 * @type: GNTSOCK_EV_*
 * @id: the grant's id (as the receiver knows it)
 * @cookie: the sender's cookie (zero in receiver events); for
 *	%GNTSOCK_EV_LOST the number of events lost
 * @pages: pages of the grant
 * @reserved: zero
 */
struct gntsock_grant_event {
	__u32 type;
	__u32 id;
	__u64 cookie;
	__u32 pages;
	__u32 reserved;
};

/* ioctls on an AF_GNTSOCK socket */
#define GNTSOCK_IOC_REVOKE	_IOW('G', 1, __u64)	/* revoke by cookie */
#define GNTSOCK_IOC_RELEASE	_IOW('G', 2, __u32)	/* release a received grant */

#endif /* _UAPI_LINUX_GNTSOCK_H */
