// SPDX-License-Identifier: GPL-2.0
/* gntsock_hostile.ko: net/gntsock/rxbuf.c built with -DGNTSOCK_HOSTILE. */
#include "../../net/gntsock/rxbuf.c"
