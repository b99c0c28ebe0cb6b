// SPDX-License-Identifier: GPL-2.0
/* gntsock_hostile.ko: net/gntsock/sock_deliver.c built with -DGNTSOCK_HOSTILE. */
#include "../../net/gntsock/sock_deliver.c"
