/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel/user-space shim for the pure ring and protocol code, so that
 * ring.c and proto.c build unchanged in the module, in the user-space unit
 * tests and in the fuzzers (which supply gntsock_compat_user.h from
 * selftests/include/).
 */
#ifndef _GNTSOCK_COMPAT_H
#define _GNTSOCK_COMPAT_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/compiler.h>
#include <linux/errno.h>
#include <linux/string.h>
#include <linux/build_bug.h>
#include <linux/minmax.h>
#include <asm/barrier.h>

/* The peer is another domain, possibly on another CPU: virt_*() barriers. */
#define gnt_rmb()	virt_rmb()	/* reads of index before data */
#define gnt_wmb()	virt_wmb()	/* writes of data before index */
#define gnt_mb()	virt_mb()	/* index/flag store before flag/index load */
#else
#include <gntsock_compat_user.h>
#endif /* __KERNEL__ */

#endif /* _GNTSOCK_COMPAT_H */
