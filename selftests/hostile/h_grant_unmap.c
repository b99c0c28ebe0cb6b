// SPDX-License-Identifier: GPL-2.0
/* gntsock_hostile.ko: net/gntsock/grant_unmap.c built with -DGNTSOCK_HOSTILE. */
#include "../../net/gntsock/grant_unmap.c"
