// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock_xrt: test-only module exercising the xen-backend revocable
 * grant mappings between two real domains, independent of gntsock's
 * sockets.  Loaded only inside the rig's guests.  Commands are written to
 * /proc/gntsock_xrt, the last command's result line is read back from it:
 *
 *   probe                          supported=0|1 map=0|1 abi=0|1|2
 *   grant PEER N ONLY              granter: N pages filled with 'A', granted
 *                                  writable to PEER (ONLY=1: revocable-only);
 *                                  their refs in a read-only index page
 *   map PEER INDEXREF N            mapper: map the N pages revocably, each
 *                                  with its own replacement page ('Z'); check
 *                                  they read 'A', write 'M' to their first
 *                                  half; try a plain map of the first ref
 *   check-m                        granter: pages show the mapper's 'M'
 *   revoke                         granter: force-revoke all N in one call,
 *                                  end foreign access, write 'N' everywhere
 *   after                          mapper (which ignored everything): read
 *                                  each page, then write 'R' to all of it
 *   check-n                        granter: pages still all 'N'
 *   unmap                          mapper: unmap all, free
 *   release                        granter: free everything
 *   stress-map PEER INDEXREF N T   mapper: T threads map/check/unmap the N
 *                                  refs in a loop (bound to different CPUs)
 *   stress-revoke SECS T           granter: T threads revoke for SECS s
 *   stress-stop                    mapper: stop, report counts
 *
 * The attacks of a malicious mapper, and the granter's side of them, are
 * in xrt_*.c; their commands are listed in xrt_cmds[] below and described
 * at their functions, and the tests built from them in
 * Documentation/testing.rst ("Attacks on the forced revoke").
 *
 * This mapper never honours a revoke request: it is the non-cooperating
 * receiver the forced revoke exists for.
 */
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/kthread.h>
#include <linux/sched/signal.h>
#include <linux/delay.h>
#include <linux/ktime.h>
#include <linux/uaccess.h>
#include <linux/random.h>
#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/page.h>
#include <asm/xen/hypercall.h>

#include "xrt.h"

#define XRT_THREADS	4

static DEFINE_MUTEX(xrt_lock);
static char xrt_res[XRT_RESULT_LEN];

/* Granter state. */
static unsigned int g_n;
static domid_t g_peer;
static struct page **g_pages;
static grant_ref_t *g_refs;
static struct page *g_index;
static grant_ref_t g_index_ref;
static bool g_index_granted;

/* Mapper state. */
static unsigned int m_n;
static struct gntsock_xen_rmap *m_maps;

/* Stress. */
static struct task_struct *s_tasks[XRT_THREADS];
static unsigned int s_nthreads;
static domid_t s_peer;
static grant_ref_t s_refs[XRT_MAX];
static unsigned int s_n;
static atomic_t s_maps, s_unmaps, s_map_fail, s_unmap_fail, s_bad_read;
static atomic_t s_revoked, s_revoke_calls, s_revoke_err;

void xrt_result(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(xrt_res, sizeof(xrt_res), fmt, ap);
	va_end(ap);
}

void xrt_append(const char *fmt, ...)
{
	size_t len = strlen(xrt_res);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(xrt_res + len, sizeof(xrt_res) - len, fmt, ap);
	va_end(ap);
}

void xrt_fill(void *p, u64 v)
{
	u64 *w = p;
	unsigned int i;

	for (i = 0; i < PAGE_SIZE / 8; i++)
		WRITE_ONCE(w[i], v);
}

unsigned int xrt_count_u64(const void *p, u64 v)
{
	const u64 *w = p;
	unsigned int i, n = 0;

	for (i = 0; i < PAGE_SIZE / 8; i++)
		n += READ_ONCE(w[i]) == v;
	return n;
}

static unsigned int count_byte(const void *p, size_t len, u8 b)
{
	const u8 *c = p;
	unsigned int n = 0;
	size_t i;

	for (i = 0; i < len; i++)
		n += c[i] == b;
	return n;
}

static void granter_free(void)
{
	unsigned int i;

	for (i = 0; i < g_n; i++) {
		if (g_refs && g_refs[i] != (grant_ref_t)-1) {
			gntsock_xen_set_revocable_only(g_refs[i], g_peer,
						       xen_page_to_gfn(g_pages[i]),
						       false);
			if (gnttab_end_foreign_access_ref(g_refs[i])) {
				gnttab_free_grant_reference(g_refs[i]);
			} else {
				/* Still mapped: leak the page, not the peer's view. */
				pr_warn("gntsock_xrt: ref %u still in use, page kept\n",
					g_refs[i]);
				g_pages[i] = NULL;
			}
		}
		if (g_pages && g_pages[i])
			__free_page(g_pages[i]);
	}
	if (g_index_granted && gnttab_end_foreign_access_ref(g_index_ref)) {
		gnttab_free_grant_reference(g_index_ref);
		__free_page(g_index);
	}
	g_index_granted = false;
	kfree(g_pages);
	kfree(g_refs);
	g_pages = NULL;
	g_refs = NULL;
	g_n = 0;
}

static int cmd_grant(domid_t peer, unsigned int n, bool only)
{
	u32 *index;
	unsigned int i, only_ok = 0;
	int rc, mark;

	if (g_n || !n || n > XRT_MAX)
		return -EINVAL;
	g_pages = kcalloc(n, sizeof(*g_pages), GFP_KERNEL);
	g_refs = kcalloc(n, sizeof(*g_refs), GFP_KERNEL);
	g_index = alloc_page(GFP_KERNEL | __GFP_ZERO);
	if (!g_pages || !g_refs || !g_index)
		goto nomem;
	memset(g_refs, 0xff, n * sizeof(*g_refs));
	g_n = n;
	g_peer = peer;
	index = page_address(g_index);
	for (i = 0; i < n; i++) {
		g_pages[i] = alloc_page(GFP_KERNEL);
		if (!g_pages[i])
			goto nomem;
		memset(page_address(g_pages[i]), 'A', PAGE_SIZE);
		rc = xrt_grant_marked(peer, g_pages[i], false, only, &g_refs[i],
				      &mark);
		if (rc < 0)
			goto fail;
		index[i] = g_refs[i];
		only_ok += !!mark;
	}
	rc = gnttab_grant_foreign_access(peer, xen_page_to_gfn(g_index), 1);
	if (rc < 0)
		goto fail;
	g_index_ref = rc;
	g_index_granted = true;
	xrt_result("index=%u n=%u only=%u", g_index_ref, n, only_ok);
	return 0;
nomem:
	rc = -ENOMEM;
fail:
	if (!g_index_granted && g_index)
		__free_page(g_index);
	g_index_granted = false;
	g_n = n;
	granter_free();
	return rc;
}

/* Map the index page (plain, read-only) and copy the refs out. */
int xrt_read_index(domid_t peer, grant_ref_t index_ref, unsigned int n,
		   grant_ref_t *refs)
{
	struct page *page;
	void *addr;
	struct gnttab_map_grant_ref mop;
	struct gnttab_unmap_grant_ref uop;
	int rc;

	if (!n || n > XRT_MAX)
		return -EINVAL;
	rc = xen_alloc_unpopulated_pages(1, &page);
	if (rc)
		return rc;
	addr = pfn_to_kaddr(page_to_xen_pfn(page));
	gnttab_set_map_op(&mop, (unsigned long)addr, GNTMAP_host_map |
			  GNTMAP_readonly, index_ref, peer);
	rc = gnttab_map_refs(&mop, NULL, &page, 1);
	if (!rc && mop.status)
		rc = -EIO;
	if (!rc) {
		memcpy(refs, addr, n * sizeof(*refs));
		gnttab_set_unmap_op(&uop, (unsigned long)addr, GNTMAP_host_map |
				    GNTMAP_readonly, mop.handle);
		rc = gnttab_unmap_refs(&uop, NULL, &page, 1);
	}
	xen_free_unpopulated_pages(1, &page);
	return rc;
}

static void mapper_free(void)
{
	unsigned int i, kept = 0;

	for (i = 0; i < m_n; i++) {
		if (m_maps[i].mapped && gntsock_xen_unmap_revocable(&m_maps[i])) {
			kept++;	/* Xen still references repl: keep it */
			continue;
		}
		if (m_maps[i].repl)
			__free_page(m_maps[i].repl);
	}
	vfree(m_maps);
	m_maps = NULL;
	m_n = 0;
	if (kept)
		pr_warn("gntsock_xrt: %u mappings could not be unmapped\n", kept);
}

static int cmd_map(domid_t peer, grant_ref_t index_ref, unsigned int n)
{
	grant_ref_t *refs;
	unsigned int i, mapped = 0, read_a = 0;
	struct gnttab_map_grant_ref plain;
	struct page *plain_page;
	int rc, first_err = 0, plain_rc;

	if (m_n)
		return -EBUSY;
	refs = kcalloc(n, sizeof(*refs), GFP_KERNEL);
	m_maps = vzalloc(array_size(n, sizeof(*m_maps)));
	if (!refs || !m_maps) {
		kfree(refs);
		vfree(m_maps);
		m_maps = NULL;
		return -ENOMEM;
	}
	rc = xrt_read_index(peer, index_ref, n, refs);
	if (rc)
		goto out;
	m_n = n;
	for (i = 0; i < n; i++) {
		m_maps[i].repl = alloc_page(GFP_KERNEL);
		if (!m_maps[i].repl) {
			rc = -ENOMEM;
			goto out;
		}
		memset(page_address(m_maps[i].repl), 'Z', PAGE_SIZE);
		rc = gntsock_xen_map_revocable(&m_maps[i], peer, refs[i], false);
		if (rc) {
			if (!first_err)
				first_err = rc;
			continue;
		}
		mapped++;
		if (count_byte(m_maps[i].addr, PAGE_SIZE, 'A') == PAGE_SIZE)
			read_a++;
		memset(m_maps[i].addr, 'M', PAGE_SIZE / 2);
	}

	/* A plain map of a revocable-only grant must fail. */
	plain_rc = xen_alloc_unpopulated_pages(1, &plain_page);
	if (!plain_rc) {
		void *addr = pfn_to_kaddr(page_to_xen_pfn(plain_page));

		gnttab_set_map_op(&plain, (unsigned long)addr, GNTMAP_host_map,
				  refs[0], peer);
		plain_rc = gnttab_map_refs(&plain, NULL, &plain_page, 1);
		if (!plain_rc && plain.status == GNTST_okay) {
			struct gnttab_unmap_grant_ref u;

			gnttab_set_unmap_op(&u, (unsigned long)addr,
					    GNTMAP_host_map, plain.handle);
			gnttab_unmap_refs(&u, NULL, &plain_page, 1);
			plain_rc = 0;
		} else if (!plain_rc) {
			plain_rc = plain.status;
		}
		xen_free_unpopulated_pages(1, &plain_page);
	}
	xrt_result("mapped=%u read_a=%u first_err=%d plain_status=%d", mapped,
		   read_a, first_err, plain_rc);
	rc = 0;
out:
	kfree(refs);
	if (rc)
		mapper_free();
	return rc;
}

static int cmd_check(u8 want, const char *what)
{
	unsigned int i, ok = 0, half = 0;

	for (i = 0; i < g_n; i++) {
		void *p = page_address(g_pages[i]);

		if (count_byte(p, PAGE_SIZE, want) == PAGE_SIZE)
			ok++;
		else if (count_byte(p, PAGE_SIZE / 2, want) == PAGE_SIZE / 2)
			half++;
	}
	xrt_result("%s n=%u all=%u half=%u", what, g_n, ok, half);
	return 0;
}

static int cmd_revoke(void)
{
	s16 *status;
	u16 *nrs;
	unsigned int i, okay = 0, again = 0, other = 0, nr = 0, reclaimed = 0;
	ktime_t t0;
	s64 us;
	int rc;

	if (!g_n)
		return -EINVAL;
	status = kvcalloc(g_n, sizeof(*status), GFP_KERNEL);
	nrs = kvcalloc(g_n, sizeof(*nrs), GFP_KERNEL);
	if (!status || !nrs) {
		rc = -ENOMEM;
		goto out;
	}
	t0 = ktime_get();
	rc = xrt_revoke_batch(g_refs, g_n, status, nrs);
	us = ktime_us_delta(ktime_get(), t0);
	if (rc) {
		xrt_result("revoke_rc=%d", rc);
		rc = 0;
		goto out;
	}
	for (i = 0; i < g_n; i++) {
		nr += nrs[i];
		if (status[i] == GNTST_okay)
			okay++;
		else if (status[i] == GNTST_eagain)
			again++;
		else
			other++;
	}
	/* Reclaim: end foreign access and reuse the page at once. */
	for (i = 0; i < g_n; i++) {
		if (gnttab_end_foreign_access_ref(g_refs[i])) {
			gntsock_xen_set_revocable_only(g_refs[i], g_peer,
						       xen_page_to_gfn(g_pages[i]),
						       false);
			gnttab_free_grant_reference(g_refs[i]);
			g_refs[i] = (grant_ref_t)-1;
			reclaimed++;
		}
		memset(page_address(g_pages[i]), 'N', PAGE_SIZE);
	}
	xrt_result("revoke_rc=0 n=%u okay=%u eagain=%u other=%u nr_revoked=%u reclaimed=%u us=%lld",
		   g_n, okay, again, other, nr, reclaimed, us);
out:
	kvfree(status);
	kvfree(nrs);
	return rc;
}

static int cmd_after(void)
{
	unsigned int i, saw_n = 0, saw_repl = 0, saw_other = 0;

	for (i = 0; i < m_n; i++) {
		void *p = m_maps[i].addr;

		if (!m_maps[i].mapped)
			continue;
		if (count_byte(p, PAGE_SIZE, 'N'))
			saw_n++;
		else if (count_byte(p, PAGE_SIZE, 'Z') == PAGE_SIZE)
			saw_repl++;
		else
			saw_other++;
		memset(p, 'R', PAGE_SIZE);
	}
	/* The writes landed in the replacement pages themselves. */
	for (i = 0; i < m_n; i++)
		if (m_maps[i].mapped &&
		    count_byte(page_address(m_maps[i].repl), PAGE_SIZE, 'R') != PAGE_SIZE)
			saw_other++;
	xrt_result("n=%u saw_granter_new=%u saw_repl=%u other=%u", m_n, saw_n,
		   saw_repl, saw_other);
	return 0;
}

static int cmd_unmap(void)
{
	unsigned int i, ok = 0, fail = 0;

	for (i = 0; i < m_n; i++) {
		if (!m_maps[i].mapped)
			continue;
		if (gntsock_xen_unmap_revocable(&m_maps[i]))
			fail++;
		else
			ok++;
	}
	mapper_free();
	xrt_result("unmapped=%u failed=%u", ok, fail);
	return 0;
}

static int stress_map_fn(void *arg)
{
	unsigned long id = (unsigned long)arg;
	struct gntsock_xen_rmap m = { 0 };
	u8 tag = 'a' + id;

	m.repl = alloc_page(GFP_KERNEL);
	if (!m.repl)
		return -ENOMEM;
	while (!kthread_should_stop()) {
		unsigned int k = get_random_u32() % s_n;
		u8 *p;
		int rc;

		memset(page_address(m.repl), tag, PAGE_SIZE);
		rc = gntsock_xen_map_revocable(&m, s_peer, s_refs[k], false);
		if (rc) {
			atomic_inc(&s_map_fail);
			cond_resched();
			continue;
		}
		atomic_inc(&s_maps);
		p = m.addr;
		/*
		 * Either the granter's page ('A' as granted, 'S' once the
		 * revoking side has filled it) or, once revoked, ours.
		 */
		if (p[0] != 'A' && p[0] != 'S' && p[0] != tag)
			atomic_inc(&s_bad_read);
		p[PAGE_SIZE - 1] = 'S';
		if (gntsock_xen_unmap_revocable(&m)) {
			atomic_inc(&s_unmap_fail);
			/* Keep repl: Xen may still reference it. */
			while (!kthread_should_stop())
				msleep(100);
			return 0;
		}
		atomic_inc(&s_unmaps);
		cond_resched();
	}
	__free_page(m.repl);
	return 0;
}

static int cmd_stress_map(domid_t peer, grant_ref_t index_ref, unsigned int n,
			  unsigned int t)
{
	unsigned long i;
	int rc;

	if (s_nthreads || !t || t > XRT_THREADS)
		return -EINVAL;
	rc = xrt_read_index(peer, index_ref, n, s_refs);
	if (rc)
		return rc;
	s_peer = peer;
	s_n = n;
	atomic_set(&s_maps, 0);
	atomic_set(&s_unmaps, 0);
	atomic_set(&s_map_fail, 0);
	atomic_set(&s_unmap_fail, 0);
	atomic_set(&s_bad_read, 0);
	for (i = 0; i < t; i++) {
		s_tasks[i] = kthread_create(stress_map_fn, (void *)i, "xrt_map/%lu", i);
		if (IS_ERR(s_tasks[i]))
			break;
		/* A thread may end early (no memory): keep it for kthread_stop. */
		get_task_struct(s_tasks[i]);
		kthread_bind(s_tasks[i], i % num_online_cpus());
		wake_up_process(s_tasks[i]);
	}
	s_nthreads = i;
	xrt_result("threads=%u cpus=%u", s_nthreads, num_online_cpus());
	return 0;
}

static int cmd_stress_stop(void)
{
	unsigned int i;

	for (i = 0; i < s_nthreads; i++) {
		kthread_stop(s_tasks[i]);
		put_task_struct(s_tasks[i]);
	}
	xrt_result("threads=%u maps=%d unmaps=%d map_fail=%d unmap_fail=%d bad_read=%d",
		   s_nthreads, atomic_read(&s_maps), atomic_read(&s_unmaps),
		   atomic_read(&s_map_fail), atomic_read(&s_unmap_fail),
		   atomic_read(&s_bad_read));
	s_nthreads = 0;
	return 0;
}

static unsigned long s_deadline;

static int stress_revoke_fn(void *arg)
{
	struct gnttab_revoke op;

	while (time_before(jiffies, s_deadline)) {
		op.ref = g_refs[get_random_u32() % g_n];
		if (gntsock_xen_revoke(&op, 1) ||
		    (op.status != GNTST_okay && op.status != GNTST_eagain))
			atomic_inc(&s_revoke_err);
		atomic_add(op.nr_revoked, &s_revoked);
		atomic_inc(&s_revoke_calls);
		cond_resched();
	}
	return 0;
}

static int cmd_stress_revoke(unsigned int secs, unsigned int t)
{
	struct task_struct *tasks[XRT_THREADS];
	unsigned long i;
	unsigned int n;

	if (!g_n || !t || t > XRT_THREADS || !secs || secs > 600)
		return -EINVAL;
	for (i = 0; i < g_n; i++)
		memset(page_address(g_pages[i]), 'S', PAGE_SIZE);
	atomic_set(&s_revoked, 0);
	atomic_set(&s_revoke_calls, 0);
	atomic_set(&s_revoke_err, 0);
	s_deadline = jiffies + secs * HZ;
	for (i = 0; i < t; i++) {
		tasks[i] = kthread_create(stress_revoke_fn, NULL, "xrt_rev/%lu", i);
		if (IS_ERR(tasks[i]))
			break;
		get_task_struct(tasks[i]);
		kthread_bind(tasks[i], i % num_online_cpus());
		wake_up_process(tasks[i]);
	}
	n = i;
	/* The threads stop by themselves at the deadline: wait for it, since
	 * kthread_stop() on a thread that has not run yet ends it without
	 * calling stress_revoke_fn() at all (a clean-clone CI run saw
	 * "calls=0" that way).
	 */
	while (time_before(jiffies, s_deadline) && !signal_pending(current))
		schedule_timeout_interruptible(s_deadline - jiffies);
	for (i = 0; i < n; i++) {
		kthread_stop(tasks[i]);
		put_task_struct(tasks[i]);
	}
	xrt_result("threads=%u calls=%d revoked=%d errors=%d cpus=%u", n,
		   atomic_read(&s_revoke_calls), atomic_read(&s_revoked),
		   atomic_read(&s_revoke_err), num_online_cpus());
	return 0;
}

static int cmd_probe(const u32 *a, int n)
{
	xrt_result("supported=%d map=%d abi=%d", gntsock_xen_revoke_supported(),
		   gntsock_xen_map_revocable_supported(), xrt_abi());
	return 0;
}

static int cmd_grant_a(const u32 *a, int n)
{
	return cmd_grant(a[0], a[1], a[2]);
}

static int cmd_map_a(const u32 *a, int n)
{
	return cmd_map(a[0], a[1], a[2]);
}

static int cmd_check_m(const u32 *a, int n)
{
	return cmd_check('M', "check-m");
}

static int cmd_check_n(const u32 *a, int n)
{
	return cmd_check('N', "check-n");
}

static int cmd_revoke_a(const u32 *a, int n)
{
	return cmd_revoke();
}

static int cmd_after_a(const u32 *a, int n)
{
	return cmd_after();
}

static int cmd_unmap_a(const u32 *a, int n)
{
	return cmd_unmap();
}

static int cmd_release(const u32 *a, int n)
{
	granter_free();
	xrt_result("released");
	return 0;
}

static int cmd_stress_map_a(const u32 *a, int n)
{
	return cmd_stress_map(a[0], a[1], a[2], a[3]);
}

static int cmd_stress_revoke_a(const u32 *a, int n)
{
	return cmd_stress_revoke(a[0], a[1]);
}

static int cmd_stress_stop_a(const u32 *a, int n)
{
	return cmd_stress_stop();
}

/*
 * Every command: its name, the numbers of arguments it takes (at least,
 * at most) and its handler.  Arguments are unsigned decimal numbers.
 */
static const struct {
	const char *name;
	int min, max;
	int (*fn)(const u32 *a, int n);
} xrt_cmds[] = {
	{ "probe", 0, 0, cmd_probe },
	{ "grant", 3, 3, cmd_grant_a },
	{ "map", 3, 3, cmd_map_a },
	{ "check-m", 0, 0, cmd_check_m },
	{ "check-n", 0, 0, cmd_check_n },
	{ "revoke", 0, 0, cmd_revoke_a },
	{ "after", 0, 0, cmd_after_a },
	{ "unmap", 0, 0, cmd_unmap_a },
	{ "release", 0, 0, cmd_release },
	{ "stress-map", 4, 4, cmd_stress_map_a },
	{ "stress-revoke", 2, 2, cmd_stress_revoke_a },
	{ "stress-stop", 0, 0, cmd_stress_stop_a },
	/* The granter's side of the attacks (xrt_granter.c). */
	{ "agrant", 3, 3, xrt_cmd_agrant },		/* PEER K FLAGS */
	{ "areclaim", 0, 2, xrt_cmd_areclaim },		/* [MASK [MODE]] */
	{ "aend", 0, 0, xrt_cmd_aend },
	{ "acheck", 0, 0, xrt_cmd_acheck },
	/* The mapper's (xrt_check.c, xrt_*attack.c): DOM INDEX K [...]. */
	{ "post", 0, 0, xrt_cmd_post },
	{ "gdprobe", 0, 0, xrt_cmd_gdprobe },
	{ "p2", 3, 3, xrt_cmd_p2 },
	{ "p4map", 3, 3, xrt_cmd_p4map },
	{ "p4remap", 0, 0, xrt_cmd_p4remap },
	{ "p4b-start", 4, 4, xrt_cmd_p4b_start },	/* ... MODE */
	{ "p4b-mark", 0, 0, xrt_cmd_p4b_mark },
	{ "p4b-stop", 0, 0, xrt_cmd_p4b_stop },
	{ "cap", 4, 4, xrt_cmd_cap },			/* ... CAP */
	{ "many", 4, 4, xrt_cmd_many },			/* ... N */
	{ "p8", 4, 4, xrt_cmd_p8 },			/* ... SELF */
	{ "p10", 3, 3, xrt_cmd_p10 },
	{ "pv-p1", 4, 4, xrt_cmd_pv_p1 },		/* ... MIRROR */
	{ "pv-p2b", 3, 3, xrt_cmd_pv_p2b },
	{ "pv-p3a", 3, 3, xrt_cmd_pv_p3a },
	{ "pv-gone", 4, 4, xrt_cmd_pv_gone },		/* ... HOW */
	{ "hvm-p1", 3, 3, xrt_cmd_hvm_p1 },
	{ "hvm-map", 3, 3, xrt_cmd_hvm_map },
	{ "hvm-act", 1, 2, xrt_cmd_hvm_act },		/* ACT [I] */
};

static ssize_t xrt_write(struct file *file, const char __user *ubuf,
			 size_t len, loff_t *pos)
{
	char buf[160], cmd[24];
	u32 a[6] = { 0 };
	unsigned int i;
	int rc, nargs;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = '\0';
	nargs = sscanf(buf, "%23s %u %u %u %u %u %u", cmd, &a[0], &a[1], &a[2],
		       &a[3], &a[4], &a[5]);
	if (nargs < 1)
		return -EINVAL;
	nargs--;

	mutex_lock(&xrt_lock);
	xrt_result("error");
	rc = -EINVAL;
	for (i = 0; i < ARRAY_SIZE(xrt_cmds); i++) {
		if (strcmp(cmd, xrt_cmds[i].name))
			continue;
		if (nargs >= xrt_cmds[i].min && nargs <= xrt_cmds[i].max)
			rc = xrt_cmds[i].fn(a, nargs);
		break;
	}
	if (rc)
		xrt_result("error=%d", rc);
	mutex_unlock(&xrt_lock);
	return len;
}

static int xrt_show(struct seq_file *m, void *v)
{
	mutex_lock(&xrt_lock);
	seq_printf(m, "%s\n", xrt_res);
	mutex_unlock(&xrt_lock);
	return 0;
}

static int xrt_open(struct inode *inode, struct file *file)
{
	return single_open(file, xrt_show, NULL);
}

static const struct proc_ops xrt_ops = {
	.proc_open = xrt_open,
	.proc_read = seq_read,
	.proc_lseek = seq_lseek,
	.proc_release = single_release,
	.proc_write = xrt_write,
};

static int __init xrt_init(void)
{
	int rc;

	if (!xen_domain())
		return -ENODEV;
	rc = xrt_gp_init();
	if (rc)
		return rc;
	if (!proc_create("gntsock_xrt", 0600, NULL, &xrt_ops)) {
		xrt_gp_exit();
		return -ENOMEM;
	}
	return 0;
}

static void __exit xrt_exit(void)
{
	remove_proc_entry("gntsock_xrt", NULL);
	cmd_stress_stop();
	xrt_attack_exit();
	mapper_free();
	granter_free();
	xrt_ctx_free();
	xrt_granter_exit();
	xrt_gp_exit();
}

module_init(xrt_init);
module_exit(xrt_exit);
MODULE_DESCRIPTION("gntsock: test of the xen-backend revocable grant mappings");
MODULE_LICENSE("GPL");
