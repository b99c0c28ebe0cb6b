// SPDX-License-Identifier: GPL-2.0
/* gntsock_hostile.ko: net/gntsock/link_poll.c built with -DGNTSOCK_HOSTILE. */
#include "../../net/gntsock/link_poll.c"
