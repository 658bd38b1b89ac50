/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * flow.h: established flows (kernel only): the per-CPU flow cache, the flow,
 * probation and takeover tables (maps.h says what each holds), and the
 * established stage of the full path, established().
 *
 * A flow exists only for a service, so a flow found here is forwarded without
 * a service lookup; its backend must still hold the generation the flow was
 * placed with (a removed backend's slot gets a new one) and be ACTIVE and not
 * DOWN (live_backend()).
 *
 * new_flow_rate: a const volatile global of xdirector.bpf.c, which includes
 * this header after defining it.
 */
#ifndef XD_FLOW_H
#define XD_FLOW_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdirector.h"
#include "maps.h"
#include "rate.h"
#include "sync.h"
#include "parse.h"
#include "nat.h"
#include "prof.h"

/* last_seen_ns's closed mark (enum xd_flow_bits). */
#define XD_FLOW_CLOSED (1ULL << XD_FLOW_BIT_CLOSED)

/* A flow's last_seen_ns is rewritten at most this often, so an established
 * flow does not dirty its map entry (a shared cache line) on every packet. */
#define XD_LAST_SEEN_REFRESH_NS 1000000000ULL
/* A per-CPU flow cache slot is trusted this many jiffies (32 ms at HZ=1000,
 * 128 ms at 250, 320 ms at 100), then the flow table is looked up again: that
 * keeps a cached flow recent in the LRU, refreshes its last_seen_ns within the
 * second, and bounds how long another CPU's copy of a flow rewritten in place
 * (a SYN reusing the 5-tuple) can be used. bpf_jiffies64() is inlined by the
 * verifier (a load), unlike a clock helper call. */
#define XD_FLOW_CACHE_JIFFIES 32
/*
 * A handshake-completed flow moves from its takeover table to the flow table
 * on a packet at least this long after its handshake. The director sees one
 * direction only (DR: the real server answers the client directly), so it
 * cannot check that the client's ACK answers the server's SYN-ACK: a blind
 * spoofer sends SYN + ACK pairs as easily as SYNs, and the embryonic table
 * alone bounds only the flows that never send a second packet. What a spoofer
 * without state does not do is come back: a real connection sends again (its
 * query, its next query) while a pair-per-source flood does not. One second
 * keeps short connections (one query) out of the flow table altogether, and a
 * flow cache slot's expiry (XD_FLOW_CACHE_JIFFIES) brings a cached flow back
 * to the full path within it to be moved.
 */
#define XD_PROVE_NS 1000000000ULL

/*
 * Monotonic clock for last_seen_ns. bpf_ktime_get_coarse_ns (CLOCK_MONOTONIC
 * _COARSE, kernel >= 5.11) shares CLOCK_MONOTONIC's time base, is jiffy-grained
 * (plenty for a 1 s refresh) and costs a memory read instead of a clock read.
 */
static __always_inline __u64 xd_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

/* An established flow (backend index, generation) may stay on its backend if
 * the backend slot still holds the same backend, is in use and is not DOWN.
 * DRAINING is fine: draining backends keep their flows. */
static __always_inline struct xd_backend *live_backend(__u32 idx, __u32 generation)
{
	struct xd_backend *be;

	if (idx == 0)
		return NULL;
	be = bpf_map_lookup_elem(&xd_be_v2, &idx);
	if (!be)
		return NULL;
	if ((be->flags & (XD_BE_F_ACTIVE | XD_BE_F_DOWN)) != XD_BE_F_ACTIVE)
		return NULL;
	if (be->generation != generation)
		return NULL;
	return be;
}

/* live_backend() of a flow entry. */
static __always_inline struct xd_backend *flow_backend(const struct xd_flow *f)
{
	return live_backend(f->backend, f->generation);
}

/* Has any service this TCP/UDP destination port (xd_vport_v1)? */
static __always_inline int vip_port(__u8 proto, __be16 dport)
{
	__u16 port = bpf_ntohs(dport);
	__u32 word = (proto == IPPROTO_UDP ? XD_VPORT_WORDS : 0) + (port >> 6);
	__u64 *bits = bpf_map_lookup_elem(&xd_vport_v1, &word);

	return bits && (*bits & (1ULL << (port & 63)));
}

/* xd_guard counters, by their index as __u64 words. */
#define XD_GUARD_EMBRYONIC 0
#define XD_GUARD_TAKEOVERS 1
#define XD_GUARD_HANDSHAKES 2
#define XD_GUARD_LIMITED 3
_Static_assert(__builtin_offsetof(struct xd_guard, limited) == XD_GUARD_LIMITED * 8,
	       "xd_guard words");
_Static_assert(__builtin_offsetof(struct xd_guard, handshakes) == XD_GUARD_HANDSHAKES * 8,
	       "xd_guard words");
_Static_assert(__builtin_offsetof(struct xd_guard, takeovers) == XD_GUARD_TAKEOVERS * 8,
	       "xd_guard words");

static __always_inline void guard_count(__u32 which)
{
	__u32 zero = 0;
	__u64 *g = bpf_map_lookup_elem(&xd_guard_v2, &zero);

	if (g && which <= XD_GUARD_LIMITED)
		g[which]++;
}

/* ---- the per-CPU flow cache (xd_fc4_v2, xd_fc6_v2) ---- */

/* Flow cache slot of a key: the key's 64-bit words folded by XOR into 32 bits,
 * then a Fibonacci (multiplicative) hash; its top log2(size) bits pick the slot.
 * The fast path and the full path compute it from the same words. */
static __always_inline __u32 fc_hash(__u64 folded, __u32 size)
{
	return ((__u32)folded ^ (__u32)(folded >> 32)) * 0x9e3779b1U >> (32 - __builtin_ctz(size));
}

/* IPv4: the first slot of the key's set on this CPU in xd_fc4_v2 (maps.h). */
static __always_inline __u32 fc4_set(__u64 k0, __u64 k1)
{
	return bpf_get_smp_processor_id() * XD_FLOW_CACHE4 +
	       fc_hash(k0 ^ k1, XD_FLOW_CACHE4 / XD_FLOW_CACHE_WAYS) * XD_FLOW_CACHE_WAYS;
}

/* IPv6: the first slot of the key's set on this CPU in xd_fc6_v2, hashed on the
 * client address, the VIP's low 64 bits and the ports word. */
static __always_inline __u32 fc6_set_of(__u64 folded)
{
	return bpf_get_smp_processor_id() * XD_FLOW_CACHE6 +
	       fc_hash(folded, XD_FLOW_CACHE6 / XD_FLOW_CACHE_WAYS) * XD_FLOW_CACHE_WAYS;
}

static __always_inline __u32 fc6_set(const __u64 *k)
{
	return fc6_set_of(k[0] ^ k[1] ^ k[3] ^ k[4]);
}

/*
 * The last 64-bit word of a flow key (xd_flow4_key bytes 8..15, xd_flow_key
 * bytes 32..39) from a packet: the two ports as they are in the L4 header,
 * the protocol, the family (0 in xd_flow4_key, whose byte 13 is padding), zero
 * padding. The key structs are memory images, so this is byte order work.
 */
static __always_inline __u64 key_tail(__u32 ports, __u8 proto, __u8 family)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (__u64)ports | (__u64)proto << 32 | (__u64)family << 40;
#else
	return (__u64)ports << 32 | (__u64)proto << 24 | (__u64)family << 16;
#endif
}

static __always_inline int key4_eq(const __u64 *x, const struct xd_flow4_key *b)
{
	const __u64 *y = (const __u64 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
}

static __always_inline int key6_eq(const __u64 *x, const struct xd_flow_key *b)
{
	const __u64 *y = (const __u64 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
}

/* The way of a 2-way set that a refill takes when neither holds the flow: an
 * empty one (backend 0), else the one refilled longer ago. 0 or 1. */
static __always_inline int fc_refill_way(__u32 backend0, __u64 expires0, __u32 backend1,
					 __u64 expires1)
{
	if (!backend0)
		return 0;
	if (!backend1)
		return 1;
	return expires0 <= expires1 ? 0 : 1;
}

/*
 * The full path's probe of the IPv4 cache: the slot of the set that holds
 * this flow (*cached = 1), else the one a refill from the flow table takes
 * (fc_refill_way). NULL only if this CPU is beyond the array (user space
 * sized it for fewer CPUs): nothing is cached.
 */
static __always_inline struct xd_flow4_cache *fc4_probe(const struct xd_flow4_key *k4, int *cached)
{
	const __u64 *kw = (const __u64 *)k4;
	struct xd_flow4_cache *w0, *w1;
	__u32 slot = fc4_set(kw[0], kw[1]);

	w0 = bpf_map_lookup_elem(&xd_fc4_v2, &slot);
	slot++;
	w1 = bpf_map_lookup_elem(&xd_fc4_v2, &slot);
	if (!w0 || !w1)
		return NULL;
	if (w0->backend && key4_eq(w0->key, k4)) {
		*cached = 1;
		return w0;
	}
	if (w1->backend && key4_eq(w1->key, k4)) {
		*cached = 1;
		return w1;
	}
	return fc_refill_way(w0->backend, w0->expires, w1->backend, w1->expires) ? w1 : w0;
}

/* fc4_probe() for IPv6 (xd_fc6_v2). */
static __always_inline struct xd_flow6_cache *fc6_probe(const struct xd_flow_key *fk, int *cached)
{
	struct xd_flow6_cache *w0, *w1;
	__u32 slot = fc6_set((const __u64 *)fk);

	w0 = bpf_map_lookup_elem(&xd_fc6_v2, &slot);
	slot++;
	w1 = bpf_map_lookup_elem(&xd_fc6_v2, &slot);
	if (!w0 || !w1)
		return NULL;
	if (w0->backend && key6_eq(w0->key, fk)) {
		*cached = 1;
		return w0;
	}
	if (w1->backend && key6_eq(w1->key, fk)) {
		*cached = 1;
		return w1;
	}
	return fc_refill_way(w0->backend, w0->expires, w1->backend, w1->expires) ? w1 : w0;
}

/* ---- the flow tables (xd_flow4_v3, xd_flow6_v3: maps.h) ---- */

/* The map's own size (CO-RE: the kernel's struct bpf_map, relocated by
 * libbpf), so the program and user space both take the bucket count from
 * max_entries and no global has to agree with it. */
struct bpf_map {
	__u32 max_entries;
} __attribute__((preserve_access_index));

/*
 * Flow table hash: the kernel's jhash2() (include/linux/jhash.h, what its LRU
 * hash tables use) over the key's 32-bit words, with flow_seed as initval, so
 * a client that knows the code still cannot tell which of its flows share a
 * bucket with another's and aim proven flows at a victim's bucket. flow_seed
 * is chosen at random by user space when the table is created and kept in
 * xd_meta_v1 with the pinned maps, so a program reloaded over the same table
 * hashes as the one that filled it. Not fc_hash(): a flow's bucket here and
 * its set in the per-CPU cache are independent. src/bpf/flowtable.ts computes
 * the same (test/bpf/datapath.test.ts proves they agree with a seed not 0).
 */
const volatile __u32 flow_seed = 0;

#define FT_ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define FT_MIX(a, b, c)             \
	do {                        \
		a -= c;             \
		a ^= FT_ROL(c, 4);  \
		c += b;             \
		b -= a;             \
		b ^= FT_ROL(a, 6);  \
		a += c;             \
		c -= b;             \
		c ^= FT_ROL(b, 8);  \
		b += a;             \
		a -= c;             \
		a ^= FT_ROL(c, 16); \
		c += b;             \
		b -= a;             \
		b ^= FT_ROL(a, 19); \
		a += c;             \
		c -= b;             \
		c ^= FT_ROL(b, 4);  \
		b += a;             \
	} while (0)
#define FT_FINAL(a, b, c)           \
	do {                        \
		c ^= b;             \
		c -= FT_ROL(b, 14); \
		a ^= c;             \
		a -= FT_ROL(c, 11); \
		b ^= a;             \
		b -= FT_ROL(a, 25); \
		c ^= b;             \
		c -= FT_ROL(b, 16); \
		a ^= c;             \
		a -= FT_ROL(c, 4);  \
		b ^= a;             \
		b -= FT_ROL(a, 14); \
		c ^= b;             \
		c -= FT_ROL(b, 24); \
	} while (0)
#define FT_LO(x) ((__u32)(x))
#define FT_HI(x) ((__u32)((x) >> 32))

/* jhash2() of an IPv4 key, its words as two 64-bit ones (little-endian: word
 * 2i is the low half of k_i). */
static __always_inline __u32 ft4_hash(__u64 k0, __u64 k1)
{
	__u32 a, b, c;

	a = b = c = 0xdeadbeef + (4 << 2) + flow_seed;
	a += FT_LO(k0);
	b += FT_HI(k0);
	c += FT_LO(k1);
	FT_MIX(a, b, c);
	a += FT_HI(k1);
	FT_FINAL(a, b, c);
	return c;
}

/* jhash2() of an IPv6 key: words 0..7 in a[0..3] (the packet's addresses),
 * 8..9 in tail. */
static __always_inline __u32 ft6_hash(const __u64 *w, __u64 tail)
{
	__u32 a, b, c;

	a = b = c = 0xdeadbeef + (10 << 2) + flow_seed;
	a += FT_LO(w[0]);
	b += FT_HI(w[0]);
	c += FT_LO(w[1]);
	FT_MIX(a, b, c);
	a += FT_HI(w[1]);
	b += FT_LO(w[2]);
	c += FT_HI(w[2]);
	FT_MIX(a, b, c);
	a += FT_LO(w[3]);
	b += FT_HI(w[3]);
	c += FT_LO(tail);
	FT_MIX(a, b, c);
	a += FT_HI(tail);
	FT_FINAL(a, b, c);
	return c;
}

/* The first entry of a hash's bucket in a table of max_entries entries (a
 * power of two of XD_FLOW_WAYS-entry buckets). */
static __always_inline __u32 ft_first(__u32 h, __u32 max_entries)
{
	return (h & (max_entries / XD_FLOW_WAYS - 1)) * XD_FLOW_WAYS;
}

static __always_inline __u32 ft4_first(__u64 k0, __u64 k1)
{
	return ft_first(ft4_hash(k0, k1), ((struct bpf_map *)&xd_flow4_v3)->max_entries);
}

static __always_inline __u32 ft6_first(const __u64 *a, __u64 tail)
{
	return ft_first(ft6_hash(a, tail), ((struct bpf_map *)&xd_flow6_v3)->max_entries);
}

/* An entry's backend and generation as one word (backend in the low half):
 * written last and in one store, so a reader that reads it before and after
 * the key and finds it unchanged read one flow's key and values. */
#define FT_WORD(e) (*(volatile __u64 *)&(e)->backend)
#define FT_BACKEND(w) ((__u32)(w))
#define FT_GENERATION(w) ((__u32)((w) >> 32))
_Static_assert(__builtin_offsetof(struct xd_flow4_entry, backend) == 16, "xd_flow4_entry");
_Static_assert(__builtin_offsetof(struct xd_flow6_entry, backend) == 40, "xd_flow6_entry");
_Static_assert(__builtin_offsetof(struct xd_flow, generation) == 4, "xd_flow");
_Static_assert(__builtin_offsetof(struct xd_flow4_entry, last_seen_ns) - 16 ==
		       __builtin_offsetof(struct xd_flow, last_seen_ns),
	       "xd_flow4_entry holds a struct xd_flow at backend");
_Static_assert(__builtin_offsetof(struct xd_flow6_entry, last_seen_ns) - 40 ==
		       __builtin_offsetof(struct xd_flow, last_seen_ns),
	       "xd_flow6_entry holds a struct xd_flow at backend");

/* Does IPv4 entry e hold the flow of key words k0, k1? *wp: its backend and
 * generation as read around the compare. */
static __always_inline int ft4_is(const struct xd_flow4_entry *e, __u64 k0, __u64 k1, __u64 *wp)
{
	const volatile __u64 *kw = (const volatile __u64 *)e;
	__u64 w = FT_WORD(e);

	if (!FT_BACKEND(w) || kw[0] != k0 || kw[1] != k1 || FT_WORD(e) != w)
		return 0;
	*wp = w;
	return 1;
}

/* ft4_is() for IPv6: the key's words 0..3 are `a` (compared in place: the
 * packet's addresses), word 4 `tail`. */
static __always_inline int ft6_is(const struct xd_flow6_entry *e, const __u64 *a, __u64 tail,
				  __u64 *wp)
{
	const volatile __u64 *kw = (const volatile __u64 *)e;
	__u64 w = FT_WORD(e);

	if (!FT_BACKEND(w) ||
	    ((kw[0] ^ a[0]) | (kw[1] ^ a[1]) | (kw[2] ^ a[2]) | (kw[3] ^ a[3]) | (kw[4] ^ tail)) ||
	    FT_WORD(e) != w)
		return 0;
	*wp = w;
	return 1;
}

/* The IPv4 entry of key words k0, k1, NULL if the table has none (*wp as
 * ft4_is()). One bucket: one line. */
static __always_inline struct xd_flow4_entry *ft4_find(__u64 k0, __u64 k1, __u64 *wp)
{
	__u32 i = ft4_first(k0, k1);
	struct xd_flow4_entry *e;

#pragma unroll
	for (int w = 0; w < XD_FLOW_WAYS; w++, i++) {
		e = bpf_map_lookup_elem(&xd_flow4_v3, &i);
		if (!e)
			return NULL;
		if (ft4_is(e, k0, k1, wp))
			return e;
	}
	return NULL;
}

/* ft4_find() for IPv6. One line per entry, the second read only when the
 * first entry is another flow's. */
static __always_inline struct xd_flow6_entry *ft6_find(const __u64 *a, __u64 tail, __u64 *wp)
{
	__u32 i = ft6_first(a, tail);
	struct xd_flow6_entry *e;

#pragma unroll
	for (int w = 0; w < XD_FLOW_WAYS; w++, i++) {
		e = bpf_map_lookup_elem(&xd_flow6_v3, &i);
		if (!e)
			return NULL;
		if (ft6_is(e, a, tail, wp))
			return e;
	}
	return NULL;
}

/* Of two entries of a bucket, the one a new flow takes when neither holds it
 * already: an empty one, else the one seen less recently (the closed mark
 * masked). 0 or 1. */
static __always_inline int ft_victim(__u64 w0, __u64 seen0, __u64 w1, __u64 seen1)
{
	if (!FT_BACKEND(w0))
		return 0;
	if (!FT_BACKEND(w1))
		return 1;
	return (seen0 & ~XD_FLOW_CLOSED) <= (seen1 & ~XD_FLOW_CLOSED) ? 0 : 1;
}
_Static_assert(XD_FLOW_WAYS == 2, "ft_victim() and the inserts below pick one of two entries");

/*
 * Writes flow f of key `kw` (n_words 64-bit words) into entry e whose backend
 * and generation word was w: the word is claimed first (compare-and-swap to
 * empty, so of two CPUs writing the entry at once one wins and the other
 * gives up), then the key and last_seen_ns, then the word in one store. A
 * reader meanwhile finds the entry empty or the word changed (ft4_is()). 1 if
 * written.
 */
static __always_inline int ft_write(__u64 *ew, __u64 w, const __u64 *kw, int n_words,
				    const struct xd_flow *f)
{
	volatile __u64 *word = (volatile __u64 *)&ew[n_words];

	if (__sync_val_compare_and_swap(word, w, 0) != w)
		return 0;
	for (int i = 0; i < n_words; i++)
		ew[i] = kw[i];
	ew[n_words + 1] = f->last_seen_ns;
	*word = (__u64)f->backend | (__u64)f->generation << 32;
	return 1;
}

/* Puts an IPv4 flow into its bucket: the entry of its key, else the one
 * ft_victim() picks. 1 if written. */
static __always_inline int ft4_insert(const struct xd_flow4_key *k4, const struct xd_flow *f)
{
	const __u64 *kw = (const __u64 *)k4;
	__u32 i = ft4_first(kw[0], kw[1]);
	struct xd_flow4_entry *e0, *e1, *e;
	__u64 w0, w1;

	e0 = bpf_map_lookup_elem(&xd_flow4_v3, &i);
	i++;
	e1 = bpf_map_lookup_elem(&xd_flow4_v3, &i);
	if (!e0 || !e1)
		return 0;
	w0 = FT_WORD(e0);
	w1 = FT_WORD(e1);
	if (key4_eq(kw, (const struct xd_flow4_key *)e0))
		e = e0;
	else if (key4_eq(kw, (const struct xd_flow4_key *)e1))
		e = e1;
	else
		e = ft_victim(w0, e0->last_seen_ns, w1, e1->last_seen_ns) ? e1 : e0;
	return ft_write((__u64 *)e, e == e0 ? w0 : w1, kw, 2, f);
}

/* ft4_insert() for IPv6. */
static __always_inline int ft6_insert(const struct xd_flow_key *k6, const struct xd_flow *f)
{
	const __u64 *kw = (const __u64 *)k6;
	__u32 i = ft6_first(kw, kw[4]);
	struct xd_flow6_entry *e0, *e1, *e;
	__u64 w0, w1;

	e0 = bpf_map_lookup_elem(&xd_flow6_v3, &i);
	i++;
	e1 = bpf_map_lookup_elem(&xd_flow6_v3, &i);
	if (!e0 || !e1)
		return 0;
	w0 = FT_WORD(e0);
	w1 = FT_WORD(e1);
	if (key6_eq(kw, (const struct xd_flow_key *)e0))
		e = e0;
	else if (key6_eq(kw, (const struct xd_flow_key *)e1))
		e = e1;
	else
		e = ft_victim(w0, e0->last_seen_ns, w1, e1->last_seen_ns) ? e1 : e0;
	return ft_write((__u64 *)e, e == e0 ? w0 : w1, kw, 5, f);
}

/*
 * The packet's flow in the flow table, as a struct xd_flow (the entry's
 * backend, generation and last_seen_ns): written in place by the stages that
 * re-place a flow. One call site per map, so the verifier inlines each lookup.
 */
static __always_inline struct xd_flow *flow_lookup(int v4, const struct xd_flow4_key *k4,
						   const struct xd_flow_key *k6)
{
	const __u64 *kw;
	__u64 w;

	if (v4) {
		struct xd_flow4_entry *e;

		kw = (const __u64 *)k4;
		e = ft4_find(kw[0], kw[1], &w);
		return e ? (struct xd_flow *)&e->backend : NULL;
	} else {
		struct xd_flow6_entry *e;

		kw = (const __u64 *)k6;
		e = ft6_find(kw, kw[4], &w);
		return e ? (struct xd_flow *)&e->backend : NULL;
	}
}

/* 1 if the flow was written (0: another CPU was writing its entry). */
static __always_inline int flow_insert(int v4, const struct xd_flow4_key *k4,
				       const struct xd_flow_key *k6, const struct xd_flow *f)
{
	if (v4)
		return ft4_insert(k4, f);
	return ft6_insert(k6, f);
}

static __always_inline struct xd_flow *emb_lookup(int v4, const struct xd_flow4_key *k4,
						  const struct xd_flow_key *k6)
{
	if (v4)
		return bpf_map_lookup_elem(&xd_emb4_v1, k4);
	return bpf_map_lookup_elem(&xd_emb6_v1, k6);
}

static __always_inline void emb_insert(int v4, const struct xd_flow4_key *k4,
				       const struct xd_flow_key *k6, const struct xd_flow *f)
{
	if (v4)
		bpf_map_update_elem(&xd_emb4_v1, k4, f, BPF_ANY);
	else
		bpf_map_update_elem(&xd_emb6_v1, k6, f, BPF_ANY);
}

static __always_inline void emb_delete(int v4, const struct xd_flow4_key *k4,
				       const struct xd_flow_key *k6)
{
	if (v4)
		bpf_map_delete_elem(&xd_emb4_v1, k4);
	else
		bpf_map_delete_elem(&xd_emb6_v1, k6);
}

static __always_inline struct xd_flow *tko_lookup(int v4, const struct xd_flow4_key *k4,
						  const struct xd_flow_key *k6)
{
	if (v4)
		return bpf_map_lookup_elem(&xd_tko4_v1, k4);
	return bpf_map_lookup_elem(&xd_tko6_v1, k6);
}

static __always_inline void tko_insert(int v4, const struct xd_flow4_key *k4,
				       const struct xd_flow_key *k6, const struct xd_flow *f)
{
	if (v4)
		bpf_map_update_elem(&xd_tko4_v1, k4, f, BPF_ANY);
	else
		bpf_map_update_elem(&xd_tko6_v1, k6, f, BPF_ANY);
}

static __always_inline void tko_delete(int v4, const struct xd_flow4_key *k4,
				       const struct xd_flow_key *k6)
{
	if (v4)
		bpf_map_delete_elem(&xd_tko4_v1, k4);
	else
		bpf_map_delete_elem(&xd_tko6_v1, k6);
}

static __always_inline struct xd_pflow *prb_lookup(int v4, const struct xd_flow4_key *k4,
						   const struct xd_flow_key *k6)
{
	if (v4)
		return bpf_map_lookup_elem(&xd_prb4_v1, k4);
	return bpf_map_lookup_elem(&xd_prb6_v1, k6);
}

static __always_inline void prb_insert(int v4, const struct xd_flow4_key *k4,
				       const struct xd_flow_key *k6, const struct xd_pflow *f)
{
	if (v4)
		bpf_map_update_elem(&xd_prb4_v1, k4, f, BPF_ANY);
	else
		bpf_map_update_elem(&xd_prb6_v1, k6, f, BPF_ANY);
}

static __always_inline void prb_delete(int v4, const struct xd_flow4_key *k4,
				       const struct xd_flow_key *k6)
{
	if (v4)
		bpf_map_delete_elem(&xd_prb4_v1, k4);
	else
		bpf_map_delete_elem(&xd_prb6_v1, k6);
}

/* A tracked flow and the table it was found in (a probation entry starts as a
 * struct xd_flow: xdirector.bpf.c asserts it). */
struct found_flow {
	struct xd_flow *flow; /* the entry, in whichever table; NULL: none */
	struct xd_pflow *pf;  /* the probation-table entry, if that is where it is */
	struct xd_flow *tk;   /* the takeover-table entry, if that is where it is */
};

/* The packet's flow: the flow table, else the probation table, else the
 * takeover table. */
static __always_inline struct xd_flow *flow_find(const struct pkt_desc *p, struct found_flow *f)
{
	int v4 = pkt_v4(p);

	f->flow = flow_lookup(v4, &p->k4, &p->fk);
	if (!f->flow) {
		f->pf = prb_lookup(v4, &p->k4, &p->fk);
		f->flow = (struct xd_flow *)f->pf;
	}
	if (!f->flow) {
		f->tk = tko_lookup(v4, &p->k4, &p->fk);
		f->flow = f->tk;
	}
	return f->flow;
}

/*
 * A tracked flow's packet on the full path: refresh last_seen_ns at most once
 * a second (keeping the closed mark), and mark the flow closed on the client's
 * first FIN or RST. Writes only when one of the two changes, so an established
 * flow does not dirty its entry (a shared cache line) on every packet. The
 * fast path sends FIN and RST here (fast_l4_ok()).
 */
static __always_inline void flow_seen(const struct xd_flow_key *fk, struct xd_flow *flow,
				      __u8 tcp_flags, __u64 now)
{
	__u64 seen = flow->last_seen_ns;
	__u64 closed = seen & XD_FLOW_CLOSED;

	if ((tcp_flags & XD_TCP_CLOSING) && !closed) {
		flow->last_seen_ns = now | XD_FLOW_CLOSED;
		return;
	}
	if (now - (seen & ~XD_FLOW_CLOSED) > XD_LAST_SEEN_REFRESH_NS) {
		sync_refresh(fk, flow, seen & ~XD_FLOW_CLOSED, now);
		flow->last_seen_ns = now | closed;
	}
}

/* A handshake-completed flow on probation that came back: it is real, into
 * the flow table (within the global new_flow_rate), out of the probation
 * table. 1 if it moved, 0 if the rate kept it on probation for now. */
static __always_inline int flow_prove(const struct pkt_desc *p, __u32 be_idx, __u32 gen, __u64 now)
{
	int v4 = pkt_v4(p);
	struct xd_flow nf = {
		.backend = be_idx,
		.generation = gen,
		.last_seen_ns = now | ((p->tcp_flags & XD_TCP_CLOSING) ? XD_FLOW_CLOSED : 0),
	};

	if (!xd_rate_admit(XD_RATE_NEW_FLOW, new_flow_rate, now)) {
		guard_count(XD_GUARD_LIMITED);
		return 0;
	}
	if (!flow_insert(v4, &p->k4, &p->fk, &nf))
		return 0; /* another CPU was writing its entry: the next packet moves it */
	prb_delete(v4, &p->k4, &p->fk);
	return 1;
}

/*
 * A flow found in a table with its backend live: proved if it is due, seen,
 * and this CPU's cache slot refilled for its next packets.
 */
static __always_inline void flow_hit(const struct pkt_desc *p, const struct found_flow *f,
				     struct xd_flow4_cache *c4, struct xd_flow6_cache *c6,
				     struct verdict *v)
{
	struct xd_flow *flow = f->flow;
	__u64 now = xd_now();
	__u64 expires = bpf_jiffies64() + XD_FLOW_CACHE_JIFFIES;
	__u32 gen = flow->generation;
	__u32 be_idx = flow->backend;

	v->be_idx = be_idx;
	v->reason = XD_R_TX_FLOW_HIT;
	if (f->pf && now - f->pf->handshake_ns >= XD_PROVE_NS && flow_prove(p, be_idx, gen, now))
		v->reason = XD_R_TX_PROVEN;
	else
		flow_seen(&p->fk, flow, p->tcp_flags, now);
	if (c4) {
		__builtin_memcpy(c4->key, &p->k4, sizeof(c4->key));
		c4->backend = be_idx;
		c4->generation = gen;
		c4->expires = expires;
	}
	if (c6) {
		__builtin_memcpy(c6->key, &p->fk, sizeof(c6->key));
		c6->backend = be_idx;
		c6->generation = gen;
		c6->expires = expires;
	}
}

/* A cached flow's slot: a hit if it is fresh and its backend live. */
static __always_inline int slot_hit(__u32 idx, __u32 gen, __u64 expires, struct verdict *v,
				    struct xd_backend **bep)
{
	struct xd_backend *be;

	if (bpf_jiffies64() >= expires)
		return XD_NEXT;
	be = live_backend(idx, gen);
	if (!be)
		return XD_NEXT;
	*bep = be;
	v->be_idx = idx;
	v->reason = XD_R_TX_FLOW_HIT;
	return XD_FORWARD;
}

/*
 * The established stage: a TCP or UDP packet's flow, from this CPU's cache
 * (an array lookup, a key compare, the backend's entry by index), else, once
 * its port is known to be a service's, from the flow, probation and takeover
 * tables (a hashed lookup each). The flow key names the VIP, port and
 * protocol, so no service lookup: a flow exists only for a service, and a
 * removed service's backends get new generations.
 *
 * The cache slot is probed for every packet: one of this key that is not a
 * hit (a SYN, a stale slot, a gone backend) empties it once it is known to be
 * for a service, and the flow table says what happens now. A SYN or a first
 * fragment is the new-flow stage's. A flow whose backend is gone is left in
 * *f for the new-flow stage to place again, in its table.
 *
 * A subprogram, as new_flow() and icmp_flow() are: its frame is not part of
 * xdirector_full()'s, under which the forward stage's frames nest, so the
 * deepest call chain stays well under the 512 bytes Linux 6.1 allows (it
 * rounds every frame up to 32; test/bpf/stack.test.ts adds them up). The call
 * costs a few ns on the full path only.
 */
static XD_STAGE int established(const struct pkt_desc *p, struct found_flow *f, struct verdict *v,
				struct xd_backend **bep)
{
	struct xd_flow4_cache *c4 = NULL;
	struct xd_flow6_cache *c6 = NULL;
	struct xd_backend *be;
	int cached = 0;

	if (pkt_v4(p))
		c4 = fc4_probe(&p->k4, &cached);
	else
		c6 = fc6_probe(&p->fk, &cached);
	if (cached && !pkt_syn(p) && !p->frag && !(p->tcp_flags & XD_TCP_CLOSING)) {
		if (c4 && slot_hit(c4->backend, c4->generation, c4->expires, v, bep) == XD_FORWARD)
			return XD_FORWARD;
		if (c6 && slot_hit(c6->backend, c6->generation, c6->expires, v, bep) == XD_FORWARD)
			return XD_FORWARD;
	}
	/* A port and protocol no service has: done, with one array read (the
	 * director's own traffic, other hosts'). A packet for no service never
	 * had a slot that passed the backend check, so a slot of its key is
	 * left to be overwritten. */
	if (!vip_port(p->fk.proto, p->fk.dport)) {
		/* Perhaps a NAT reply, to its client: NAT's out stage (nat.h),
		 * looked for only in what is for no service. */
		v->reason =
			nat_port(p->fk.proto, p->fk.sport) ? XD_R_NAT_OUT_TRY : XD_R_PASS_NON_VIP;
		return XD_DONE;
	}
	if (cached) {
		if (c4)
			c4->backend = 0;
		if (c6)
			c6->backend = 0;
	}
	if (pkt_syn(p) || p->frag || !flow_find(p, f))
		return XD_NEXT;
	be = flow_backend(f->flow);
	if (!be)
		return XD_NEXT;
	flow_hit(p, f, c4, c6, v);
	*bep = be;
	return XD_FORWARD;
}

#endif /* XD_FLOW_H */
