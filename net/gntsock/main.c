// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock module: AF_GNTSOCK sockets between Xen domains.
 *
 * Start-up order: counters and work queue, the grant layer, the sysctls,
 * the socket family, procfs, then the xenbus drivers (links may connect as
 * soon as they are registered, so every layer's link handler is in place
 * by then). Unload goes the other way.
 * Every socket holds a module reference, so the module only unloads with no
 * socket left; unloading tears every link down and tells the peers.
 */
#include <linux/module.h>
#include <xen/xen.h>

#include "gntsock.h"
#include "grant.h"

static int __init gntsock_init(void)
{
	int err;

	if (!xen_domain())
		return -ENODEV;
	gntsock_local_domid_init();
	err = gntsock_common_init();
	if (err)
		return err;
	err = gntsock_grant_init();
	if (err)
		goto err_wq;
	err = gntsock_sysctl_init();
	if (err)
		goto err_grant;
	err = gntsock_sock_register();
	if (err)
		goto err_sysctl;
	err = gntsock_proc_init();
	if (err)
		goto err_sock;
	err = gntsock_link_register();
	if (err)
		goto err_proc;
#ifdef GNTSOCK_HOSTILE
	err = gntsock_hostile_init();
	if (err) {
		gntsock_link_unregister();
		goto err_proc;
	}
#endif
	pr_info("gntsock: AF_GNTSOCK (%d) registered, domain %u\n",
		AF_GNTSOCK, gntsock_local_domid());
	return 0;

err_proc:
	gntsock_proc_exit();
err_sock:
	gntsock_sock_unregister();
err_sysctl:
	gntsock_sysctl_exit();
err_grant:
	gntsock_grant_exit();
err_wq:
	gntsock_common_exit();
	return err;
}

static void __exit gntsock_exit(void)
{
	gntsock_link_unregister();
#ifdef GNTSOCK_HOSTILE
	gntsock_hostile_exit();
#endif
	gntsock_proc_exit();
	gntsock_sock_unregister();
	gntsock_sysctl_exit();
	gntsock_grant_exit();
	gntsock_common_exit();
	pr_info("gntsock: unloaded\n");
}

module_init(gntsock_init);
module_exit(gntsock_exit);

MODULE_DESCRIPTION("AF_GNTSOCK: sockets between Xen domains");
MODULE_LICENSE("GPL");
MODULE_ALIAS_NETPROTO(AF_GNTSOCK);
