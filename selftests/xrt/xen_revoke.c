// SPDX-License-Identifier: GPL-2.0
/* The gntsock wrappers, built into the test module. */
#include "../../net/gntsock/xen_revoke.c"
