/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * hash.h: the flow hashes that pick a ring slot for a new flow (kernel only).
 *
 * All inputs are host-order values (addresses and ports go through
 * bpf_ntohl/bpf_ntohs first), so a hash does not depend on the CPU's byte
 * order and a user-space reimplementation needs no byte games.
 *
 * xd_jhash_*: Bob Jenkins' lookup3 mix as in the kernel's include/linux/jhash.h
 * (jhash_2words / jhash2), used by XD_SCHED_MAGLEV and XD_SCHED_SH. Katran hashes
 * the same way (jhash_2words(src, ports, seed), balancer.bpf.c get_packet_hash).
 *
 * xd_hsiphash_1u32: the kernel's hsiphash on 64-bit machines (SipHash-1-3 with
 * a 64-bit state, lib/siphash.c HPREAMBLE/HPOSTAMBLE/hsiphash_1u32). It is what
 * net/netfilter/ipvs/ip_vs_mh.c calls as hsiphash(&v, sizeof(v), &s->hash1);
 * for a 4-byte input the generic hsiphash() reduces to hsiphash_1u32(v).
 */
#ifndef XD_HASH_H
#define XD_HASH_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* ---- jhash (include/linux/jhash.h) ---- */

#define XD_JHASH_INITVAL 0xdeadbeef
/* Seed of the Maglev/SH flow hash. Fixed, so every director (and a user-space
 * simulator) maps a client to the same slot. */
#define XD_FLOW_HASH_SEED 0x6d7973u /* "mys" */

static __always_inline __u32 xd_rol32(__u32 w, unsigned int s)
{
	return (w << s) | (w >> (32 - s));
}

/* clang-format off: one round per line, as in the kernel's <linux/jhash.h> */
#define __xd_jhash_mix(a, b, c)       \
	do {                          \
		a -= c;               \
		a ^= xd_rol32(c, 4);  \
		c += b;               \
		b -= a;               \
		b ^= xd_rol32(a, 6);  \
		a += c;               \
		c -= b;               \
		c ^= xd_rol32(b, 8);  \
		b += a;               \
		a -= c;               \
		a ^= xd_rol32(c, 16); \
		c += b;               \
		b -= a;               \
		b ^= xd_rol32(a, 19); \
		a += c;               \
		c -= b;               \
		c ^= xd_rol32(b, 4);  \
		b += a;               \
	} while (0)

#define __xd_jhash_final(a, b, c)     \
	do {                          \
		c ^= b;               \
		c -= xd_rol32(b, 14); \
		a ^= c;               \
		a -= xd_rol32(c, 11); \
		b ^= a;               \
		b -= xd_rol32(a, 25); \
		c ^= b;               \
		c -= xd_rol32(b, 16); \
		a ^= c;               \
		a -= xd_rol32(c, 4);  \
		b ^= a;               \
		b -= xd_rol32(a, 14); \
		c ^= b;               \
		c -= xd_rol32(b, 24); \
	} while (0)
/* clang-format on */

/* jhash_2words(a, b, seed) of the kernel: IPv4 client (host order) + port. */
static __always_inline __u32 xd_jhash_2words(__u32 a, __u32 b, __u32 seed)
{
	__u32 c;

	a += XD_JHASH_INITVAL + (2 << 2) + seed;
	b += XD_JHASH_INITVAL + (2 << 2) + seed;
	c = XD_JHASH_INITVAL + (2 << 2) + seed;
	__xd_jhash_final(a, b, c);
	return c;
}

/* jhash2(k, 5, seed) of the kernel over {w0, w1, w2, w3, port}: IPv6 client
 * (four host-order words) + port. */
static __always_inline __u32 xd_jhash_5words(__u32 w0, __u32 w1, __u32 w2, __u32 w3, __u32 w4,
					     __u32 seed)
{
	__u32 a, b, c;

	a = b = c = XD_JHASH_INITVAL + (5 << 2) + seed;
	a += w0;
	b += w1;
	c += w2;
	__xd_jhash_mix(a, b, c);
	a += w3;
	b += w4;
	__xd_jhash_final(a, b, c);
	return c;
}

/* ---- hsiphash, 64-bit flavour (lib/siphash.c) ---- */

static __always_inline __u64 xd_rol64(__u64 w, unsigned int s)
{
	return (w << s) | (w >> (64 - s));
}

#define XD_SIPROUND                    \
	do {                           \
		v0 += v1;              \
		v1 = xd_rol64(v1, 13); \
		v1 ^= v0;              \
		v0 = xd_rol64(v0, 32); \
		v2 += v3;              \
		v3 = xd_rol64(v3, 16); \
		v3 ^= v2;              \
		v0 += v3;              \
		v3 = xd_rol64(v3, 21); \
		v3 ^= v0;              \
		v2 += v1;              \
		v1 = xd_rol64(v1, 17); \
		v1 ^= v2;              \
		v2 = xd_rol64(v2, 32); \
	} while (0)

/* ip_vs_mh.c generate_hash_secret(): hash1->key[0] = hash1->key[1] =
 * 2654435761UL. hash1 is the key of the lookup (ip_vs_mh_get); hash2 is only
 * used for the table's skip values, which user space computes. */
#define XD_IPVS_MH_HASH1_KEY 2654435761ULL

/* hsiphash_1u32(first, key) on a 64-bit kernel (SipHash-1-3, truncated to 32
 * bits). key0 = key->key[0], key1 = key->key[1]. */
static __always_inline __u32 xd_hsiphash_1u32(__u32 first, __u64 key0, __u64 key1)
{
	__u64 v0 = 0x736f6d6570736575ULL;
	__u64 v1 = 0x646f72616e646f6dULL;
	__u64 v2 = 0x6c7967656e657261ULL;
	__u64 v3 = 0x7465646279746573ULL;
	__u64 b = ((__u64)4 << 56) | first; /* length 4 in the top byte */

	v3 ^= key1;
	v2 ^= key0;
	v1 ^= key1;
	v0 ^= key0;
	/* HPOSTAMBLE: one compression round, three finalisation rounds */
	v3 ^= b;
	XD_SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	XD_SIPROUND;
	XD_SIPROUND;
	XD_SIPROUND;
	return (__u32)((v0 ^ v1) ^ (v2 ^ v3));
}

/*
 * ip_vs_mh_hashkey(af, addr, port, &hash1, offset) of the kernel:
 *   v = offset + ntohs(port) + ntohl(addr_fold)   (u32 arithmetic, wraps)
 *   addr_fold = IPv4 address, or ip6[0] ^ ip6[1] ^ ip6[2] ^ ip6[3]
 * port is 0 unless the service has the mh-port flag (XD_SCHED_IPVS_MH vs
 * XD_SCHED_IPVS_MH_NOPORT). The caller takes the result % table size.
 * xd_ipvs_mh_key() gives v for offset 0; xd_ipvs_mh_hash_v(v + offset) is the
 * hash at any offset (ip_vs_mh_get uses offset 0, ip_vs_mh_get_fallback the
 * table positions from the first slot on).
 *
 * Test vectors (hash before the modulo; the same three are checked against
 * the loaded program in test/bpf/datapath.test.ts and can be checked against
 * src/maglev's hsiphash1u32 with key words 2654435761, 2654435761):
 *   10.200.0.10 port 40000  v = 0x0ac89c4a  hash = 0x71756609  % 4093 = 10
 *   192.168.1.1 port 0      v = 0xc0a80101  hash = 0xd3f1b4d3  % 4093 = 2456
 *   2001:db8::1 port 3306   fold = 0x20010db9, v = 0x20011aa3
 *                                           hash = 0x14ea9d3b  % 4093 = 2547
 */
static __always_inline __u32 xd_ipvs_mh_key(__be32 addr_fold, __be16 port)
{
	return (__u32)bpf_ntohs(port) + bpf_ntohl(addr_fold);
}

static __always_inline __u32 xd_ipvs_mh_hash_v(__u32 v)
{
	return xd_hsiphash_1u32(v, XD_IPVS_MH_HASH1_KEY, XD_IPVS_MH_HASH1_KEY);
}

static __always_inline __u32 xd_ipvs_mh_hash(__be32 addr_fold, __be16 port)
{
	return xd_ipvs_mh_hash_v(xd_ipvs_mh_key(addr_fold, port));
}

#endif /* XD_HASH_H */
