// SPDX-License-Identifier: GPL-2.0
/* gntsock_hostile.ko: net/gntsock/xen_revoke.c built with -DGNTSOCK_HOSTILE. */
#include "../../net/gntsock/xen_revoke.c"
