// SPDX-License-Identifier: GPL-2.0
/* gntsock_hostile.ko: net/gntsock/af_gntsock.c built with -DGNTSOCK_HOSTILE. */
#include "../../net/gntsock/af_gntsock.c"
