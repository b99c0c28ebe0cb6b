// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock_helpers_test - host-only unit tests of the selftests' pure
 * helpers (checksum, data pattern, /proc parsers).  Needs no module and no
 * Xen: `make -C selftests check`.
 */
#define _GNU_SOURCE
#include "gntsock_util.h"

/*
 * The 6.1 harness (kept unmodified) and its TEST() macro leave parameters
 * unused; as the kernel's own W=1 build, don't warn about those.
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"

TEST(fnv1a64_vectors)
{
	uint64_t h;

	EXPECT_EQ(0xcbf29ce484222325ULL, gnt_fnv1a64(GNT_FNV1A64_INIT, "", 0));
	EXPECT_EQ(0xaf63dc4c8601ec8cULL,
		  gnt_fnv1a64(GNT_FNV1A64_INIT, "a", 1));
	EXPECT_EQ(0x85944171f73967e8ULL,
		  gnt_fnv1a64(GNT_FNV1A64_INIT, "foobar", 6));
	/* incremental, any split */
	h = gnt_fnv1a64(GNT_FNV1A64_INIT, "foo", 3);
	h = gnt_fnv1a64(h, "b", 1);
	h = gnt_fnv1a64(h, "ar", 2);
	EXPECT_EQ(0x85944171f73967e8ULL, h);
}

TEST(pattern_splitmix64)
{
	/* The first outputs of splitmix64 seeded with 0. */
	EXPECT_EQ(0xe220a8397b1dcdafULL, gnt_pattern_word(0, 0));
	EXPECT_EQ(0x6e789e6aa1b965f4ULL, gnt_pattern_word(0, 1));
	EXPECT_EQ(0xaf, gnt_pattern_byte(0, 0));
	EXPECT_EQ(0xcd, gnt_pattern_byte(0, 1));
	EXPECT_EQ(0xe2, gnt_pattern_byte(0, 7));
	EXPECT_EQ(0xf4, gnt_pattern_byte(0, 8));
}

TEST(pattern_chunking)
{
	static unsigned char whole[10000], part[10000];
	static const size_t cuts[] = { 0, 1, 3, 8, 9, 17, 4095, 4096, 5000,
				       9999, 10000 };
	uint64_t seed = 0x1234567890abcdefULL;
	unsigned char scratch[64];
	size_t i, j;

	gnt_pattern_fill(seed, 0, whole, sizeof(whole));
	for (i = 0; i < sizeof(whole); i++)
		ASSERT_EQ(gnt_pattern_byte(seed, i), whole[i]);
	for (i = 0; i + 1 < ARRAY_SIZE(cuts); i++) {
		for (j = i + 1; j < ARRAY_SIZE(cuts); j++) {
			size_t a = cuts[i], b = cuts[j];

			memset(part, 0, sizeof(part));
			gnt_pattern_fill(seed, a, part + a, b - a);
			ASSERT_EQ(0, memcmp(part + a, whole + a, b - a));
			ASSERT_EQ(-1, gnt_pattern_check(seed, a, whole + a,
							b - a, scratch,
							sizeof(scratch)));
		}
	}
	whole[4321] ^= 1;
	EXPECT_EQ(4321 - 100, gnt_pattern_check(seed, 100, whole + 100,
						  sizeof(whole) - 100, scratch,
						  sizeof(scratch)));
	/* different seeds differ */
	gnt_pattern_fill(seed + 1, 0, part, 64);
	EXPECT_NE(0, memcmp(part, whole, 64));
}

TEST(parse_stat)
{
	const char *text = "links 2\nlinks_connected 1\nsockets 17\n"
			   "ring_grants 8\nring_maps 8\nresets 0\n"
			   "violations 3\nsockets_max 99\n";
	uint64_t v = 42;

	EXPECT_EQ(0, gnt_parse_stat(text, "sockets", &v));
	EXPECT_EQ(17ULL, v);
	EXPECT_EQ(0, gnt_parse_stat(text, "links", &v));
	EXPECT_EQ(2ULL, v);
	EXPECT_EQ(0, gnt_parse_stat(text, "violations", &v));
	EXPECT_EQ(3ULL, v);
	EXPECT_EQ(0, gnt_parse_stat(text, "sockets_max", &v));
	EXPECT_EQ(99ULL, v);
	EXPECT_EQ(-ENOENT, gnt_parse_stat(text, "socket", &v));
	EXPECT_EQ(-ENOENT, gnt_parse_stat(text, "nothing", &v));
	EXPECT_EQ(-EINVAL, gnt_parse_stat("sockets x\n", "sockets", &v));
	EXPECT_EQ(-ERANGE, gnt_parse_stat("sockets -1\n", "sockets", &v));
	EXPECT_EQ(0, gnt_parse_stat("sockets 5", "sockets", &v));
	EXPECT_EQ(5ULL, v);
}

TEST(parse_links)
{
	const char *text =
		"peer role state ring_pages tx_msgs rx_msgs tx_bytes "
		"rx_bytes resets violations sockets\n"
		"1 backend connected 4 10 11 1000 1100 0 0 2\n"
		"7 frontend closed 1 0 0 0 0 3 1 0\n";
	struct gnt_link_info li;

	EXPECT_EQ(0, gnt_parse_links(text, 1, &li));
	EXPECT_EQ(1U, li.peer);
	EXPECT_STREQ("backend", li.role);
	EXPECT_STREQ("connected", li.state);
	EXPECT_EQ(4ULL, li.ring_pages);
	EXPECT_EQ(10ULL, li.tx_msgs);
	EXPECT_EQ(11ULL, li.rx_msgs);
	EXPECT_EQ(1000ULL, li.tx_bytes);
	EXPECT_EQ(1100ULL, li.rx_bytes);
	EXPECT_EQ(2ULL, li.sockets);
	EXPECT_EQ(0, gnt_parse_links(text, 7, &li));
	EXPECT_STREQ("frontend", li.role);
	EXPECT_STREQ("closed", li.state);
	EXPECT_EQ(3ULL, li.resets);
	EXPECT_EQ(1ULL, li.violations);
	EXPECT_EQ(-ENOENT, gnt_parse_links(text, 2, &li));
	EXPECT_EQ(-ENOENT, gnt_parse_links("peer role state\n", 2, &li));
	EXPECT_EQ(-EINVAL, gnt_parse_links("hdr\n1 backend\n", 1, &li));
	/* no header line at all */
	EXPECT_EQ(0, gnt_parse_links("3 backend connecting 1 0 0 0 0 0 0 0",
				     3, &li));
	EXPECT_STREQ("connecting", li.state);
	EXPECT_EQ(0ULL, li.events_tx);
	/* the event counters, where the line has them */
	EXPECT_EQ(0, gnt_parse_links("4 backend connected 4 1 2 3 4 0 0 1 "
				     "55 66 1 1 0 1", 4, &li));
	EXPECT_EQ(55ULL, li.events_rx);
	EXPECT_EQ(66ULL, li.events_tx);
}

TEST(parse_domid)
{
	unsigned int d = 0;

	EXPECT_EQ(0, gnt_parse_domid("0", &d));
	EXPECT_EQ(0U, d);
	EXPECT_EQ(0, gnt_parse_domid("12", &d));
	EXPECT_EQ(12U, d);
	EXPECT_EQ(0, gnt_parse_domid("0x7fe0", &d));
	EXPECT_EQ(0x7fe0U, d);
	EXPECT_EQ(-EINVAL, gnt_parse_domid("", &d));
	EXPECT_EQ(-EINVAL, gnt_parse_domid("-1", &d));
	EXPECT_EQ(-EINVAL, gnt_parse_domid("12a", &d));
	EXPECT_EQ(-EINVAL, gnt_parse_domid("32768", &d));
	EXPECT_EQ(-EINVAL, gnt_parse_domid(" 1", &d));
}

TEST(count_held_sockets)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	int n;

	ASSERT_LE(0, fd);
	n = gnt_count_held_sockets(getpid());
	if (n == -EPERM || n == -ENOSYS)
		SKIP(goto out, "pidfd_getfd: %s", strerror(-n));
	/* No AF_GNTSOCK on a host; our AF_UNIX socket must not count. */
	EXPECT_EQ(0, n);
out:
	close(fd);
}

TEST_HARNESS_MAIN
