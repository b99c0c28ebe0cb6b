// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock_kasan_probe: proof that the rig's debug kernel catches a bad
 * access. KASAN on a Xen PV guest is the rig's own patch
 * (debug-kernel/0001-*.patch), so a silent debug run proves nothing until a
 * known bug is seen to be reported: loading this module reads one byte past
 * a 13-byte kmalloc() object, which KASAN must report as a
 * slab-out-of-bounds read in kasan_probe_init(). dom0 loads it once, last
 * (KASAN prints only its first report), with panic_on_warn off, between
 * "expected report" markers that rig/report.sh checks. The module never
 * stays loaded.
 */
#include <linux/module.h>
#include <linux/slab.h>

static int __init kasan_probe_init(void)
{
	char *p = kmalloc(13, GFP_KERNEL);

	if (!p)
		return -ENOMEM;
	pr_info("gntsock_kasan_probe: reading byte 13 of a 13-byte object\n");
	/* As lib/test_kasan.c: the compiler must neither see nor drop it. */
	OPTIMIZER_HIDE_VAR(p);
	(void)READ_ONCE(p[13]);
	kfree(p);
	return -EAGAIN;
}
module_init(kasan_probe_init);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("gntsock rig: a deliberate out-of-bounds read for KASAN");
