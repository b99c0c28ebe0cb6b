// SPDX-License-Identifier: GPL-2.0
/* gntsock_hostile.ko: net/gntsock/sysctl.c built with -DGNTSOCK_HOSTILE. */
#include "../../net/gntsock/sysctl.c"
