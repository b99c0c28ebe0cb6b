/* SPDX-License-Identifier: GPL-2.0 */
/*
 * <linux/vm_sockets.h> for building an AF_VSOCK program, unchanged, as an
 * AF_GNTSOCK one: the family and the sockaddr_vm names it uses, mapped to
 * AF_GNTSOCK's. struct sockaddr_gnt has struct sockaddr_vm's size and
 * layout, and a domain id plays the part of a CID. Used to run Linux's own
 * tools/testing/vsock/vsock_test between two domains (selftests/vsock/).
 */
#ifndef GNTSOCK_VM_SOCKETS_SHIM_H
#define GNTSOCK_VM_SOCKETS_SHIM_H

#include <sys/socket.h>
#include <linux/gntsock.h>

#undef AF_VSOCK
#define AF_VSOCK	AF_GNTSOCK
#define sockaddr_vm	sockaddr_gnt
#define svm_family	sgnt_family
#define svm_reserved1	sgnt_reserved1
#define svm_port	sgnt_port
#define svm_cid		sgnt_domid
#define svm_flags	sgnt_flags
#define svm_zero	sgnt_zero
#define VMADDR_CID_ANY	GNTSOCK_DOMID_ANY
#define VMADDR_PORT_ANY	GNTSOCK_PORT_ANY

#endif /* GNTSOCK_VM_SOCKETS_SHIM_H */
