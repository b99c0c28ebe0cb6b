/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gntsock_peer.h - the responder's services: port map, wire formats, and the
 * checksum and data pattern both sides compute.
 *
 * Shared by the responder (gntsock_peer.c) and the tests.  Pure user-space
 * code, no dependency on the AF_GNTSOCK header, so that it can be unit
 * tested on any host (gntsock_helpers_test.c).
 *
 * All multi-byte fields on the wire are little-endian (both ends of a link
 * run on the same x86 machine; the helpers below convert explicitly anyway).
 */
#ifndef GNTSOCK_PEER_H
#define GNTSOCK_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * Port map.  The responder listens on all of these, bound to
 * GNTSOCK_DOMID_ANY, in every domain.
 *
 * ECHO:	echoes every byte back until EOF, then closes.
 * SINK:	reads until EOF, then sends struct gnt_sink_reply (byte count and
 *		FNV-1a 64 of the whole stream) and closes.
 * SOURCE:	reads struct gnt_source_req, sends req.nbytes bytes of the
 *		pattern keyed by req.seed (gnt_pattern_fill() at offset 0..),
 *		then closes.
 * SLOW_SINK:	SINK that reads at most 4 KiB per read() and sleeps ~5 ms
 *		between reads.
 * HOLD:	never reads (not even its error queue); closes when the
 *		peer closes or resets (or after GNTSOCK_PEER_HOLD_MAX_S
 *		seconds).
 * CONNECT_BACK: reads struct gnt_connect_back_req, connects to
 *		(accepting peer's domid, req.port), sends struct
 *		gnt_connect_back_status on the first connection (err = 0 or
 *		the errno of the failed connect), then on success sends the
 *		GNTSOCK_PEER_HELLO_LEN bytes GNTSOCK_PEER_HELLO on the new
 *		connection and echoes it until EOF; closes both.
 * STAT:	sends this domain's /proc/net/gntsock_stat, then closes (lets
 *		a test see the peer kernel's counters).
 * SEQ_ECHO:	SOCK_SEQPACKET: echoes every record back whole (same length,
 *		MSG_EOR as received, zero-length records too) until EOF.
 * SEQ_SOURCE:	SOCK_SEQPACKET: reads one struct gnt_seq_source_req record,
 *		sends req.count records; record i has gnt_seq_rec_len(req, i)
 *		bytes of the pattern keyed by req.seed + i, and MSG_EOR when i
 *		is odd; then waits for EOF.
 * SEQ_HOLD:	SOCK_SEQPACKET HOLD.
 * UNUSED:	never listened on by anything (a refused connect).
 */
#define GNTSOCK_PEER_PORT_ECHO		5000
#define GNTSOCK_PEER_PORT_SINK		5001
#define GNTSOCK_PEER_PORT_SOURCE	5002
#define GNTSOCK_PEER_PORT_SLOW_SINK	5003
#define GNTSOCK_PEER_PORT_HOLD		5004
#define GNTSOCK_PEER_PORT_CONNECT_BACK	5005
#define GNTSOCK_PEER_PORT_STAT		5006
#define GNTSOCK_PEER_PORT_SEQ_ECHO	5010
#define GNTSOCK_PEER_PORT_SEQ_SOURCE	5011
#define GNTSOCK_PEER_PORT_SEQ_HOLD	5012
#define GNTSOCK_PEER_NR_SERVICES	12	/* with GRANT, GRANT_SEQ */
#define GNTSOCK_PEER_PORT_UNUSED	5999
/* 5020-5029: grant services, gntsock_grant_peer.h */

#define GNTSOCK_PEER_SLOW_CHUNK		4096	/* bytes per read */
#define GNTSOCK_PEER_SLOW_SLEEP_US	5000	/* sleep between reads */
#define GNTSOCK_PEER_HOLD_MAX_S		600	/* HOLD gives up after this */

#define GNTSOCK_PEER_HELLO		"GNTSOCK-HELLO-01"
#define GNTSOCK_PEER_HELLO_LEN		16

/* SINK / SLOW_SINK reply, 16 bytes. */
struct gnt_sink_reply {
	uint64_t bytes;		/* bytes read before EOF */
	uint64_t checksum;	/* FNV-1a 64 over those bytes */
};

/* SOURCE request, 16 bytes. */
struct gnt_source_req {
	uint64_t nbytes;	/* bytes to send */
	uint64_t seed;		/* pattern key */
};

/* CONNECT_BACK request, 4 bytes. */
struct gnt_connect_back_req {
	uint32_t port;		/* port to connect back to */
};

/* SEQ_SOURCE request, 16 bytes (one record). */
struct gnt_seq_source_req {
	uint32_t count;		/* records to send */
	uint32_t len;		/* base length; see gnt_seq_rec_len() */
	uint64_t seed;		/* pattern key of record 0 */
};

/* SEQ_ECHO and SEQ_SOURCE handle records up to this size. */
#define GNTSOCK_PEER_SEQ_MAX		(4U << 20)

/* CONNECT_BACK status, 4 bytes: 0, or a positive errno of connect(). */
struct gnt_connect_back_status {
	int32_t err;
};

_Static_assert(sizeof(struct gnt_sink_reply) == 16, "wire size");
_Static_assert(sizeof(struct gnt_source_req) == 16, "wire size");
_Static_assert(sizeof(struct gnt_connect_back_req) == 4, "wire size");
_Static_assert(sizeof(struct gnt_connect_back_status) == 4, "wire size");
_Static_assert(sizeof(struct gnt_seq_source_req) == 16, "wire size");

static inline uint64_t gnt_le64(uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return __builtin_bswap64(v);
#else
	return v;
#endif
}

static inline uint32_t gnt_le32(uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return __builtin_bswap32(v);
#else
	return v;
#endif
}

/* Length of SEQ_SOURCE record i: len, len + i, ... (mod 4 * len + 1). */
static inline uint32_t gnt_seq_rec_len(uint32_t len, uint32_t i)
{
	return (len + i) % (4 * len + 1);
}

/*
 * Checksum: 64-bit FNV-1a over the byte stream.
 *
 *	h = 0xcbf29ce484222325
 *	for each byte b: h = (h ^ b) * 0x100000001b3  (mod 2^64)
 *
 * Incremental: start with GNT_FNV1A64_INIT and feed chunks in order; the
 * result does not depend on how the stream was split.
 */
#define GNT_FNV1A64_INIT	0xcbf29ce484222325ULL
#define GNT_FNV1A64_PRIME	0x100000001b3ULL

static inline uint64_t gnt_fnv1a64(uint64_t h, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t i = 0;

	for (; i + 4 <= len; i += 4) {
		h = (h ^ p[i]) * GNT_FNV1A64_PRIME;
		h = (h ^ p[i + 1]) * GNT_FNV1A64_PRIME;
		h = (h ^ p[i + 2]) * GNT_FNV1A64_PRIME;
		h = (h ^ p[i + 3]) * GNT_FNV1A64_PRIME;
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * GNT_FNV1A64_PRIME;
	return h;
}

/*
 * Data pattern: the splitmix64 sequence keyed by seed, little-endian.
 *
 *	word(k) = mix(seed + (k + 1) * 0x9e3779b97f4a7c15)	(mod 2^64)
 *	mix(z):	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
 *		z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
 *		z ^ (z >> 31)
 *	byte(i) = (word(i / 8) >> (8 * (i % 8))) & 0xff
 *
 * word(k) is the (k+1)-th output of splitmix64 started at state seed.  Every
 * byte of the stream is defined by (seed, offset) alone, so any chunking,
 * any partial write and random access produce the same bytes.
 */
#define GNT_PATTERN_GAMMA	0x9e3779b97f4a7c15ULL

static inline uint64_t gnt_pattern_word(uint64_t seed, uint64_t k)
{
	uint64_t z = seed + (k + 1) * GNT_PATTERN_GAMMA;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline unsigned char gnt_pattern_byte(uint64_t seed, uint64_t off)
{
	return (unsigned char)(gnt_pattern_word(seed, off / 8) >>
			       (8 * (off % 8)));
}

/* Fill buf with bytes [off, off + len) of the pattern keyed by seed. */
static inline void gnt_pattern_fill(uint64_t seed, uint64_t off, void *buf,
				    size_t len)
{
	unsigned char *p = buf;
	uint64_t w;

	while (len && (off % 8)) {
		*p++ = gnt_pattern_byte(seed, off++);
		len--;
	}
	while (len >= 8) {
		w = gnt_le64(gnt_pattern_word(seed, off / 8));
		memcpy(p, &w, 8);
		p += 8;
		off += 8;
		len -= 8;
	}
	while (len) {
		*p++ = gnt_pattern_byte(seed, off++);
		len--;
	}
}

/*
 * Compare buf with bytes [off, off + len) of the pattern.  Returns -1 if
 * they match, else the index in buf of the first differing byte.  scratch
 * must hold scratch_len >= 8 bytes.
 */
static inline long gnt_pattern_check(uint64_t seed, uint64_t off,
				     const void *buf, size_t len,
				     void *scratch, size_t scratch_len)
{
	const unsigned char *p = buf;
	const unsigned char *s = scratch;
	size_t done = 0, n, i;

	while (done < len) {
		n = len - done;
		if (n > scratch_len)
			n = scratch_len;
		gnt_pattern_fill(seed, off + done, scratch, n);
		if (memcmp(p + done, scratch, n)) {
			for (i = 0; i < n; i++)
				if (p[done + i] != s[i])
					return (long)(done + i);
		}
		done += n;
	}
	return -1;
}

#endif /* GNTSOCK_PEER_H */
