// SPDX-License-Identifier: GPL-2.0
/* gntsock_hostile.ko: net/gntsock/common.c built with -DGNTSOCK_HOSTILE. */
#include "../../net/gntsock/common.c"
