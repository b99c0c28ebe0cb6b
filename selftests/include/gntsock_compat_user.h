/* SPDX-License-Identifier: GPL-2.0 */
/*
 * User-space definitions that net/gntsock/compat.h takes from the kernel,
 * for building the pure ring/protocol code in unit tests and fuzzers.
 */
#ifndef _GNTSOCK_COMPAT_USER_H
#define _GNTSOCK_COMPAT_USER_H

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <errno.h>
#include <linux/types.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

#ifndef READ_ONCE
#define READ_ONCE(x)		(*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v)	(*(volatile __typeof__(x) *)&(x) = (v))
#endif
#define gnt_rmb()	__atomic_thread_fence(__ATOMIC_ACQUIRE)
#define gnt_wmb()	__atomic_thread_fence(__ATOMIC_RELEASE)
#define gnt_mb()	__atomic_thread_fence(__ATOMIC_SEQ_CST)
#ifndef static_assert
#define static_assert _Static_assert
#endif
#ifndef min
#define min(a, b)	((a) < (b) ? (a) : (b))
#endif

#endif /* _GNTSOCK_COMPAT_USER_H */
