// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdirector.bpf.c: the XDP director (DR, and IPIP/GUE tunnels through encap.h).
 *
 * For a packet to a configured service {VIP, port, proto, family}: find the
 * client's flow or hash it onto the service's live ring, then forward it to
 * the real server by rewriting only the Ethernet addresses (eth.src := old
 * eth.dst, eth.dst := backend MAC) and returning XDP_TX, or redirecting to the
 * backend's interface. Nothing else changes: in direct routing the real server
 * holds the VIP itself and answers the client directly, so the IP header,
 * TTL and checksums stay as the client sent them. A tunnel backend gets the
 * packet encapsulated towards its own address instead (encap.h).
 *
 * Everything else (ARP, the director's own SSH/VRRP/health checks, non-VIP
 * ports, malformed packets) is XDP_PASSed untouched. Each packet is counted
 * under exactly one enum xd_reason at the single `out:` exit.
 *
 * bpf/README.md describes the stages a packet goes through; maps are described
 * in maps.h, layouts in include/xdirector.h.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdirector.h"
#include "parsing.h"
#include "maps.h"
#include "hash.h"
#include "rate.h"
#include "sync.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Slots per ring generation. User space sets it in .rodata before load and
 * sizes xd_ring_v1 to max_services * 2 * ring_max to match; the verifier then
 * sees it as a constant.
 */
const volatile __u32 ring_max = XD_RING_MAX;

/*
 * The MAC of the interface the program is attached to, set at load time with
 * match_dst_mac = 1. A unicast frame addressed to another station (unknown
 * unicast that a switch floods, e.g. to a VRRP Backup director) is passed
 * untouched, for the kernel to drop as PACKET_OTHERHOST: only the director the
 * client addressed forwards, as with IPVS, so a flooded packet is never sent
 * to a real server twice. 0 (the default) forwards whatever arrives.
 */
const volatile __u32 match_dst_mac = 0;
const volatile __u8 self_mac[ETH_ALEN] = {};

/*
 * New-flow rate guard: at most this many proven flows a second enter the flow
 * tables, over all CPUs (rate.h: one shared GCRA word, touched only by a flow
 * that is proving itself, never by an established packet; a per-CPU budget
 * would multiply the limit by the CPUs a flood's RSS hash spreads it over).
 * Above it a flow stays in its takeover table, still tracked and served
 * (xd_guard.limited), and tries again on a later packet. Like Katran's
 * max_conn_rate, but behind the embryonic and takeover tables, so it only
 * bounds a flood that keeps each spoofed flow going for XD_PROVE_NS: an
 * established flow idle for less than flow_table_size / new_flow_rate seconds
 * is never evicted. 0 = no limit.
 */
const volatile __u32 new_flow_rate = 0;

/*
 * A SYN that reuses the 5-tuple of a flow in a flow table starts a new
 * connection on the live ring only if the flow saw no packet for this long
 * (IPVS conn_reuse_mode reschedules only a connection that is over); a flow
 * that did stays on its backend (XD_R_TX_SYN_KEPT), so one spoofed SYN cannot
 * move a live connection off a draining backend. The entry's closed mark
 * (the client's FIN or RST, flow_seen()) is not the test: one spoofed RST
 * would then be enough to move a live connection; idleness is.
 * last_seen_ns lags a flow's real last packet by up to
 * XD_LAST_SEEN_REFRESH_NS plus a cache slot's life (XD_FLOW_CACHE_JIFFIES),
 * so the threshold has to exceed ~1.3 s to mean anything; the default 2 s
 * keeps every flow that sent a packet within the last ~0.7 s, and is far
 * below the 60 s a Linux client holds a closed connection's port in
 * TIME_WAIT before it reuses it. 0 = always reschedule (the old behaviour).
 */
const volatile __u64 syn_reuse_idle_ns = 2000000000ULL;

/*
 * The director's own ICMP frag needed / PTB answers (a tunnel backend's packet
 * too big once encapsulated) at most this many a second, all CPUs together
 * (rate.h); above it the packet is dropped unanswered (XD_R_DROP_TOO_BIG_LIMITED)
 * and the client's retransmission is answered later. 0 = no limit.
 */
const volatile __u32 too_big_rate = 0;

/* After the globals it reads (too_big_rate). */
#include "encap.h"

/*
 * BTF anchor for the enums of xdirector.h, never read by the program: clang
 * only emits BTF for types that a global, a map or a function signature
 * references, and the map layouts store these enums in __u8/__u32 fields.
 * With this, src/bpf/layouts.generated.ts can take the enum values from the
 * object's BTF like everything else instead of copying them by hand.
 */
const volatile struct {
	enum xd_family family;
	enum xd_sched sched;
	enum xd_service_flags service_flags;
	enum xd_backend_flags backend_flags;
	enum xd_encap encap;
	enum xd_reason reason;
	enum xd_rate_idx rate;
	enum xd_sync_kind sync_kind;
	enum xd_flow_bits flow_bits;
} xd_btf_enums = {};

/* The layouts user space encodes (sizes as the compiler lays them out; the
 * generated TypeScript is checked against the same BTF). */
_Static_assert(sizeof(struct xd_service_key) == 20, "xd_service_key layout");
_Static_assert(sizeof(struct xd_service) == 16, "xd_service layout");
_Static_assert(sizeof(struct xd_backend) == 36, "xd_backend layout");
_Static_assert(sizeof(struct xd_tunnel) == 40, "xd_tunnel layout");
_Static_assert(sizeof(struct xd_flow_key) == 40, "xd_flow_key layout");
_Static_assert(sizeof(struct xd_flow4_key) == 16, "xd_flow4_key layout");
_Static_assert(sizeof(struct xd_guard) == 32, "xd_guard layout");
_Static_assert(sizeof(struct xd_pflow) == 24, "xd_pflow layout");
_Static_assert(__builtin_offsetof(struct xd_pflow, last_seen_ns) ==
		       __builtin_offsetof(struct xd_flow, last_seen_ns),
	       "xd_pflow starts as xd_flow");
_Static_assert(sizeof(struct xd_flow4_cache) == 32, "xd_flow4_cache layout");
_Static_assert(sizeof(struct xd_flow6_cache) == 64, "xd_flow6_cache layout");
_Static_assert(sizeof(((struct xd_flow4_cache *)0)->key) == sizeof(struct xd_flow4_key),
	       "xd_flow4_cache key");
_Static_assert(sizeof(((struct xd_flow6_cache *)0)->key) == sizeof(struct xd_flow_key),
	       "xd_flow6_cache key");
_Static_assert((XD_FLOW_CACHE4 & (XD_FLOW_CACHE4 - 1)) == 0, "XD_FLOW_CACHE4 is a power of two");
_Static_assert((XD_FLOW_CACHE6 & (XD_FLOW_CACHE6 - 1)) == 0, "XD_FLOW_CACHE6 is a power of two");
_Static_assert(sizeof(struct xd_flow) == 16, "xd_flow layout");
_Static_assert(sizeof(struct xd_service_stats) == 32, "xd_service_stats layout");
_Static_assert(sizeof(struct xd_backend_stats) == 40, "xd_backend_stats layout");
_Static_assert(sizeof(struct xd_reason_stats) == 16, "xd_reason_stats layout");
_Static_assert(sizeof(struct xd_rate) == 8, "xd_rate layout");
_Static_assert(sizeof(struct xd_meta) == 32, "xd_meta layout");
_Static_assert(sizeof(struct xd_sync_event) == 56, "xd_sync_event layout");
_Static_assert(sizeof(struct xd_sync_stats) == 16, "xd_sync_stats layout");

/* TCP flags byte (offset 13 of the TCP header). */
#define XD_TCP_FIN 0x01
#define XD_TCP_SYN 0x02
#define XD_TCP_RST 0x04
#define XD_TCP_ACK 0x10
/* The client ends its side: the flow leaves IPVS's ActiveConn. */
#define XD_TCP_CLOSING (XD_TCP_FIN | XD_TCP_RST)
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

/* pick_backend() result when a map lookup failed (control-plane bug: service
 * id or ring index beyond the loaded map sizes). */
#define XD_PICK_ABORT 0xffffffffU

/*
 * Monotonic clock for last_seen_ns. bpf_ktime_get_coarse_ns (CLOCK_MONOTONIC
 * _COARSE, kernel >= 5.11) shares CLOCK_MONOTONIC's time base, is jiffy-grained
 * (plenty for a 1 s refresh) and costs a memory read instead of a clock read.
 */
static __always_inline __u64 xd_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

static __always_inline void count_reason(__u32 reason, __u64 bytes)
{
	struct xd_reason_stats *rs = bpf_map_lookup_elem(&xd_rsnst_v2, &reason);

	if (rs) {
		rs->packets++;
		rs->bytes += bytes;
	}
}

/* An established flow (backend index, generation) may stay on its backend if
 * the backend slot still holds the same backend, is in use and is not DOWN.
 * DRAINING is fine: draining backends keep their flows. */
static __always_inline struct xd_backend *live_backend(__u32 idx, __u32 generation)
{
	struct xd_backend *be;

	if (idx == 0)
		return NULL;
	be = bpf_map_lookup_elem(&xd_be_v1, &idx);
	if (!be)
		return NULL;
	if ((be->flags & (XD_BE_F_ACTIVE | XD_BE_F_DOWN)) != XD_BE_F_ACTIVE)
		return NULL;
	if (be->generation != generation)
		return NULL;
	return be;
}

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

static __always_inline int key6_eq(const __u64 *x, const struct xd_flow_key *b)
{
	const __u64 *y = (const __u64 *)b;

	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
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

/* An established flow may stay on its backend if the backend slot still holds
 * the same backend (generation), is in use and is not DOWN. DRAINING is fine:
 * draining backends keep their flows. */
static __always_inline struct xd_backend *flow_backend(const struct xd_flow *f)
{
	return live_backend(f->backend, f->generation);
}

/* ip_vs_mh_hashkey's v at offset 0 for the flow's client: ntohs(port) +
 * ntohl(addr_fold), the port only with mh-port (XD_SCHED_IPVS_MH). */
static __always_inline __u32 ipvs_mh_key(const struct xd_service *svc, const struct xd_flow_key *fk)
{
	__be16 port = svc->sched == XD_SCHED_IPVS_MH ? fk->sport : 0;

	if (fk->family == XD_FAMILY_V4)
		return xd_ipvs_mh_key(fk->saddr[0], port);
	return xd_ipvs_mh_key(fk->saddr[0] ^ fk->saddr[1] ^ fk->saddr[2] ^ fk->saddr[3], port);
}

/*
 * Slot of the service's ring for a new flow, by scheduler (enum xd_sched):
 *  MAGLEV          jhash of client address (IPv6: all 4 words) and port
 *  SH              the same hash with port 0: one client, one backend
 *  SEQ             per-CPU counter++ (wrr/rr over the weighted ring)
 *  IPVS_MH         the kernel's ip_vs_mh hash with mh-port, so a flow maps to
 *                  the same slot as in IPVS when the ring is the kernel's table
 *  IPVS_MH_NOPORT  the same without the port (mh without mh-port)
 * Unknown values hash like MAGLEV. Returns XD_PICK_ABORT on a failed lookup.
 */
static __always_inline __u32 ring_slot(const struct xd_service *svc, const struct xd_flow_key *fk)
{
	__u32 size = svc->ring_size;
	__u32 h, port;
	__u32 *ctr;

	switch (svc->sched) {
	case XD_SCHED_SEQ:
		ctr = bpf_map_lookup_elem(&xd_rr_v1, &svc->id);
		if (!ctr)
			return XD_PICK_ABORT;
		h = (*ctr)++;
		break;
	case XD_SCHED_IPVS_MH:
	case XD_SCHED_IPVS_MH_NOPORT:
		h = xd_ipvs_mh_hash_v(ipvs_mh_key(svc, fk));
		break;
	default: /* XD_SCHED_MAGLEV, XD_SCHED_SH */
		port = svc->sched == XD_SCHED_SH ? 0 : bpf_ntohs(fk->sport);
		if (fk->family == XD_FAMILY_V4)
			h = xd_jhash_2words(bpf_ntohl(fk->saddr[0]), port, XD_FLOW_HASH_SEED);
		else
			h = xd_jhash_5words(bpf_ntohl(fk->saddr[0]), bpf_ntohl(fk->saddr[1]),
					    bpf_ntohl(fk->saddr[2]), bpf_ntohl(fk->saddr[3]), port,
					    XD_FLOW_HASH_SEED);
		break;
	}
	return h % size;
}

/* A backend that may take new flows: ACTIVE, neither DRAINING nor DOWN (the
 * kernel's is_unavailable() is weight <= 0, which is what DRAINING encodes). */
static __always_inline int be_usable(const struct xd_backend *be)
{
	return (be->flags & (XD_BE_F_ACTIVE | XD_BE_F_DRAINING | XD_BE_F_DOWN)) == XD_BE_F_ACTIVE;
}

/* State of ip_vs_mh_get_fallback's walk, shared with the bpf_loop callback. */
struct ipvs_mh_walk {
	__u64 base;  /* xd_ring_v1 position of slot 0 of the live generation */
	__u32 v;     /* ipvs_mh_key() of the client (offset 0) */
	__u32 size;  /* ring_size, 1..ring_max */
	__u32 ihash; /* the first slot, the one that named an unusable backend */
	__u32 idx;   /* result: backend index, 0 = none, or XD_PICK_ABORT */
};

/*
 * One step of ip_vs_mh_get_fallback (net/netfilter/ipvs/ip_vs_mh.c):
 *   roffset = (offset + ihash) % size
 *   hash = ip_vs_mh_hashkey(addr, port, hash1, roffset) % size
 *   empty slot: stop, no destination; available destination: take it.
 * Returns 1 to stop the loop, 0 to go on.
 */
static long ipvs_mh_fallback_step(__u64 offset, void *ctx)
{
	struct ipvs_mh_walk *w = ctx;
	struct xd_backend *be;
	__u32 roffset, slot, key, idx, *idxp;
	__u64 pos;

	if (w->size == 0)
		return 1;
	/* offset < size and ihash < size: one subtraction is the modulo. */
	roffset = (__u32)offset + w->ihash;
	if (roffset >= w->size)
		roffset -= w->size;
	slot = xd_ipvs_mh_hash_v(w->v + roffset) % w->size;
	pos = w->base + slot;
	if (pos > 0xffffffffULL) {
		w->idx = XD_PICK_ABORT;
		return 1;
	}
	key = (__u32)pos;
	idxp = bpf_map_lookup_elem(&xd_ring_v1, &key);
	if (!idxp) {
		w->idx = XD_PICK_ABORT;
		return 1;
	}
	idx = *idxp;
	if (idx == 0) {
		w->idx = 0;
		return 1;
	}
	be = bpf_map_lookup_elem(&xd_be_v1, &idx);
	if (!be) {
		w->idx = XD_PICK_ABORT;
		return 1;
	}
	if (!be_usable(be))
		return 0;
	w->idx = idx;
	return 1;
}

/*
 * IPVS mh with mh-fallback: the slot's backend cannot take new flows (drained
 * or down; the ipvs-mh ring keeps drained backends in their slots, as the
 * kernel's table built from last_weight does), so walk the table the way
 * ip_vs_mh_get_fallback does: at most `size` steps with bpf_loop, whose
 * callback the verifier checks once whatever the ring size. Only taken on
 * this path, so a lookup that lands on a usable backend costs nothing more.
 */
static __noinline __u32 ipvs_mh_fallback(const struct xd_service *svc, const struct xd_flow_key *fk,
					 __u64 base, __u32 ihash)
{
	struct ipvs_mh_walk w = {
		.base = base,
		.v = ipvs_mh_key(svc, fk),
		.size = svc->ring_size,
		.ihash = ihash,
		.idx = 0,
	};

	if (bpf_loop(w.size, ipvs_mh_fallback_step, &w, 0) < 0)
		return XD_PICK_ABORT;
	return w.idx;
}

/*
 * A backend for a new flow from the live ring generation. Returns the backend
 * index (and *bep), 0 if the service has no usable backend, or XD_PICK_ABORT.
 * No usable backend: an empty ring, a hole, or a slot naming a backend that is
 * not purely ACTIVE (Maglev and SEQ rings leave DRAINING and DOWN backends
 * out, but a ring written before the state change may still name one). For
 * IPVS_MH(_NOPORT), whose ring keeps drained backends like the kernel's
 * table, such a slot starts ip_vs_mh_get_fallback's walk instead.
 */
static __always_inline __u32 pick_backend(const struct xd_service *svc,
					  const struct xd_flow_key *fk, struct xd_backend **bep)
{
	struct xd_backend *be;
	__u32 slot, key, *idxp, idx;
	__u64 pos;

	if (svc->ring_size == 0)
		return 0;
	if (svc->ring_size > ring_max)
		return XD_PICK_ABORT;
	slot = ring_slot(svc, fk);
	if (slot == XD_PICK_ABORT)
		return XD_PICK_ABORT;
	pos = ((__u64)svc->id * 2 + (svc->active_gen & 1)) * ring_max + slot;
	if (pos > 0xffffffffULL)
		return XD_PICK_ABORT;
	key = (__u32)pos;
	idxp = bpf_map_lookup_elem(&xd_ring_v1, &key);
	if (!idxp)
		return XD_PICK_ABORT;
	idx = *idxp;
	if (idx == 0)
		return 0;
	be = bpf_map_lookup_elem(&xd_be_v1, &idx);
	if (!be)
		return XD_PICK_ABORT;
	if (!be_usable(be)) {
		if (svc->sched != XD_SCHED_IPVS_MH && svc->sched != XD_SCHED_IPVS_MH_NOPORT)
			return 0;
		idx = ipvs_mh_fallback(svc, fk, pos - slot, slot);
		if (idx == 0 || idx == XD_PICK_ABORT)
			return idx;
		be = bpf_map_lookup_elem(&xd_be_v1, &idx);
		if (!be)
			return XD_PICK_ABORT;
	}
	*bep = be;
	return idx;
}

static __always_inline void count_no_backend(__u32 svc_id)
{
	struct xd_service_stats *ss = bpf_map_lookup_elem(&xd_svcst_v1, &svc_id);

	if (ss)
		ss->no_backend++;
}

/* Tunnel forward (encap.h): the backend's xd_tun_v1 entry gives the outer
 * header, be->mac the next hop.
 * *reason changes only when the packet is answered or dropped instead.
 * A subprogram (five arguments at most: the backend is looked up again by
 * index): inlined into both the fast and the full path, its header building
 * stack would count twice against the 512-byte stack limit. */
static __noinline int tunnel_forward(struct xdp_md *ctx, __u32 be_idx, const struct xd_flow_key *fk,
				     __u32 l2len, __u32 *reason)
{
	struct xd_tunnel *t = bpf_map_lookup_elem(&xd_tun_v1, &be_idx);
	struct xd_backend *be = bpf_map_lookup_elem(&xd_be_v1, &be_idx);
	__u32 why = *reason;
	int action;

	if (!t || !be || (t->encap != XD_ENCAP_IPIP && t->encap != XD_ENCAP_GUE)) {
		*reason = XD_R_ABORTED;
		return XDP_ABORTED;
	}
	action = xd_encap(ctx, t, be->mac, l2len, fk->family, fk, &why);
	if (action == XDP_ABORTED)
		why = XD_R_ABORTED;
	*reason = why;
	if (action == XDP_TX && why != XD_R_TX_TOO_BIG && be->ifindex != 0 &&
	    be->ifindex != ctx->ingress_ifindex)
		return bpf_redirect(be->ifindex, 0);
	return action;
}

/*
 * The flow tables and the embryonic tables, by family. One call site per map
 * (never a pointer chosen at run time), so the verifier inlines each lookup.
 */
static __always_inline struct xd_flow *flow_lookup(int v4, const struct xd_flow4_key *k4,
						   const struct xd_flow_key *k6)
{
	if (v4)
		return bpf_map_lookup_elem(&xd_flow4_v2, k4);
	return bpf_map_lookup_elem(&xd_flow6_v2, k6);
}

static __always_inline void flow_insert(int v4, const struct xd_flow4_key *k4,
					const struct xd_flow_key *k6, const struct xd_flow *f)
{
	if (v4)
		bpf_map_update_elem(&xd_flow4_v2, k4, f, BPF_ANY);
	else
		bpf_map_update_elem(&xd_flow6_v2, k6, f, BPF_ANY);
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

/* DR forward: only the Ethernet addresses change. XDP_TX back out of the
 * receiving interface, or bpf_redirect when the backend sits behind another
 * interface. */
static __always_inline int dr_forward(struct xdp_md *ctx, struct ethhdr *eth,
				      const struct xd_backend *be)
{
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, be->mac, ETH_ALEN);
	if (be->ifindex != 0 && be->ifindex != ctx->ingress_ifindex)
		return bpf_redirect(be->ifindex, 0);
	return XDP_TX;
}

/* A backend's forward: DR, or encapsulated for a tunnel backend (XD_BE_F_TUNNEL). */
static __always_inline int forward(struct xdp_md *ctx, struct ethhdr *eth,
				   const struct xd_backend *be, __u32 be_idx,
				   const struct xd_flow_key *fk, __u32 l2len, __u32 *reason)
{
	if (be->flags & XD_BE_F_TUNNEL)
		return tunnel_forward(ctx, be_idx, fk, l2len, reason);
	return dr_forward(ctx, eth, be);
}

static __always_inline int addr_eq(const __be32 *a, const __be32 *b)
{
	return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0;
}

/* fast_hit() results. A constant rather than the action itself: the verifier
 * then knows a forwarded packet (bpf_redirect's result is any long to it) never
 * reaches the full path, whose packet pointers a tunnel's adjust_head voids. */
#define XD_FAST_DONE 0 /* forwarded and counted: *actp is the action */
#define XD_FAST_NONE 1 /* not a cache hit: the full path decides */

/* Has any service this TCP/UDP destination port (xd_vport_v1)? */
static __always_inline int vip_port(__u8 proto, __be16 dport)
{
	__u16 port = bpf_ntohs(dport);
	__u32 word = (proto == IPPROTO_UDP ? XD_VPORT_WORDS : 0) + (port >> 6);
	__u64 *bits = bpf_map_lookup_elem(&xd_vport_v1, &word);

	return bits && (*bits & (1ULL << (port & 63)));
}

/* Not a flow hit, to a port no service has: passed, counted as the full path
 * would (the director's own traffic, other hosts'). */
static __always_inline int fast_pass_non_vip(__u64 bytes, int *actp)
{
	count_reason(XD_R_PASS_NON_VIP, bytes);
	*actp = XDP_PASS;
	return XD_FAST_DONE;
}

/*
 * A packet's accounting, at the program's one exit: a forwarded packet is
 * counted once per CPU on its backend; a flow hit there only (flow_hits),
 * everything else also under its reason.
 */
static __always_inline void count_packet(__u32 be_idx, __u32 reason, __u64 bytes, __u64 new_flow)
{
	struct xd_backend_stats *bs;

	if (be_idx) {
		bs = bpf_map_lookup_elem(&xd_best_v2, &be_idx);
		if (bs) {
			bs->packets++;
			bs->bytes += bytes;
			bs->new_flows += new_flow;
			if (reason == XD_R_TX_FLOW_HIT) {
				bs->flow_hits++;
				bs->flow_hit_bytes += bytes;
				return;
			}
		}
	}
	count_reason(reason, bytes);
}

/*
 * A tunnel backend's flow hit. encap.h hashes the flow key (GUE source port,
 * flow label), so it is built here from the frame fast_hit() checked
 * (untagged; IPv4 with IHL 5 or IPv6; TCP or UDP; 20 L4 bytes present). A
 * subprogram: the key's stack stays out of the fast path's frame, which the
 * stack limit counts under the full path's and tunnel_forward's.
 */
static __noinline int fast_tunnel(struct xdp_md *ctx, __u32 idx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct xd_flow_key fk = {};
	__u32 why = XD_R_TX_FLOW_HIT;
	__u64 bytes = data_end - data;
	__u8 *l4;
	int action;

	if (data + 14 + 20 + 20 > data_end)
		return XDP_ABORTED;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = data + 14;

		fk.family = XD_FAMILY_V4;
		fk.saddr[0] = iph->saddr;
		fk.daddr[0] = iph->daddr;
		fk.proto = iph->protocol;
		l4 = (__u8 *)(iph + 1);
	} else {
		struct ipv6hdr *ip6h = data + 14;

		if (data + 14 + 40 + 20 > data_end)
			return XDP_ABORTED;
		fk.family = XD_FAMILY_V6;
		__builtin_memcpy(fk.saddr, &ip6h->saddr, sizeof(fk.saddr));
		__builtin_memcpy(fk.daddr, &ip6h->daddr, sizeof(fk.daddr));
		fk.proto = ip6h->nexthdr;
		l4 = (__u8 *)(ip6h + 1);
	}
	fk.sport = ((__be16 *)l4)[0];
	fk.dport = ((__be16 *)l4)[1];
	action = tunnel_forward(ctx, idx, &fk, 14, &why);
	count_packet(idx, why, bytes, 0);
	return action;
}

/* What the fast path takes at L4: TCP that is not an opening SYN (SYN without
 * ACK) and has a sane data offset (doff >= 5), or UDP. */
static __always_inline int fast_l4_ok(__u8 proto, const __u8 *l4)
{
	if (proto == IPPROTO_UDP)
		return 1;
	/* FIN and RST take the full path, which marks the flow closed. */
	return proto == IPPROTO_TCP && (l4[12] >> 4) >= 5 &&
	       (l4[13] & (XD_TCP_SYN | XD_TCP_ACK)) != XD_TCP_SYN && !(l4[13] & XD_TCP_CLOSING);
}

/* A fresh cache slot's flow: forwarded if its backend is live (else the full
 * path decides), by MAC rewrite or, for a tunnel backend, by fast_tunnel(). */
static __always_inline int fast_forward(struct xdp_md *ctx, struct ethhdr *eth, __u32 idx,
					__u32 generation, __u64 bytes, int *actp)
{
	struct xd_backend *be = live_backend(idx, generation);

	if (!be)
		return XD_FAST_NONE;
	if (be->flags & XD_BE_F_TUNNEL) {
		*actp = fast_tunnel(ctx, idx);
		return XD_FAST_DONE;
	}
	*actp = dr_forward(ctx, eth, be);
	count_packet(idx, XD_R_TX_FLOW_HIT, bytes, 0);
	return XD_FAST_DONE;
}

/* No fresh slot holds the flow: the full path decides, unless no service has
 * its port (then passed here). */
static __always_inline int fast_miss(__u8 proto, const __u8 *l4, __u64 bytes, int *actp)
{
	return vip_port(proto, ((const __be16 *)l4)[1]) ? XD_FAST_NONE :
							  fast_pass_non_vip(bytes, actp);
}

/* IPv4 part of fast_hit(): the frame holds 14 + 20 + 20 bytes. */
static __always_inline int fast_hit4(struct xdp_md *ctx, struct ethhdr *eth, __u64 bytes, int *actp)
{
	struct iphdr *iph = (void *)(eth + 1);
	__u8 *l4 = (__u8 *)(iph + 1);
	struct xd_flow4_cache *c4;
	__u64 k0, k1;
	__u32 slot;
	__u8 proto;

	if (*(__u8 *)iph != 0x45 || (iph->frag_off & bpf_htons(XD_IP_MF | XD_IP_OFFSET)))
		return XD_FAST_NONE;
	proto = iph->protocol;
	if (!fast_l4_ok(proto, l4))
		return XD_FAST_NONE;
	k0 = *(__u64 *)&iph->saddr; /* saddr, daddr: xd_flow4_key bytes 0..7 */
	k1 = key_tail(*(__u32 *)l4, proto, 0);
	slot = fc4_set(k0, k1);
	c4 = bpf_map_lookup_elem(&xd_fc4_v2, &slot);
	if (!c4)
		return XD_FAST_NONE;
	if (c4->key[0] != k0 || c4->key[1] != k1) {
		slot++; /* the set's other way, in the same line */
		c4 = bpf_map_lookup_elem(&xd_fc4_v2, &slot);
		if (!c4 || c4->key[0] != k0 || c4->key[1] != k1)
			goto miss;
	}
	if (bpf_jiffies64() >= c4->expires)
		goto miss;
	return fast_forward(ctx, eth, c4->backend, c4->generation, bytes, actp);
miss:
	return fast_miss(proto, l4, bytes, actp);
}

/* Does this IPv6 slot hold the flow whose key is the packet's addresses `a`
 * (the key's words 0..3, compared in place) and `tail` (word 4)? */
static __always_inline int slot6_is(const struct xd_flow6_cache *c6, const __u64 *a, __u64 tail)
{
	return ((c6->key[0] ^ a[0]) | (c6->key[1] ^ a[1]) | (c6->key[2] ^ a[2]) |
		(c6->key[3] ^ a[3]) | (c6->key[4] ^ tail)) == 0;
}

/* IPv6 part of fast_hit(): the frame holds 14 + 40 + 20 bytes. */
static __always_inline int fast_hit6(struct xdp_md *ctx, struct ethhdr *eth, __u64 bytes, int *actp)
{
	struct ipv6hdr *ip6h = (void *)(eth + 1);
	__u8 *l4 = (__u8 *)(ip6h + 1);
	const __u64 *a = (const __u64 *)&ip6h->saddr; /* saddr, daddr: the key's words 0..3 */
	struct xd_flow6_cache *c6;
	__u64 tail;
	__u32 slot;
	__u8 proto;

	if ((*(__u8 *)ip6h & 0xf0) != 0x60)
		return XD_FAST_NONE;
	proto = ip6h->nexthdr;
	if (!fast_l4_ok(proto, l4))
		return XD_FAST_NONE;
	tail = key_tail(*(__u32 *)l4, proto, XD_FAMILY_V6);
	slot = fc6_set_of(a[0] ^ a[1] ^ a[3] ^ tail);
	c6 = bpf_map_lookup_elem(&xd_fc6_v2, &slot);
	if (!c6)
		return XD_FAST_NONE;
	if (!slot6_is(c6, a, tail)) {
		slot++; /* the set's other way */
		c6 = bpf_map_lookup_elem(&xd_fc6_v2, &slot);
		if (!c6 || !slot6_is(c6, a, tail))
			goto miss;
	}
	if (bpf_jiffies64() >= c6->expires)
		goto miss;
	return fast_forward(ctx, eth, c6->backend, c6->generation, bytes, actp);
miss:
	return fast_miss(proto, l4, bytes, actp);
}

/*
 * The established-flow fast path: a frame addressed to this director, untagged
 * IPv4 without options or IPv6 without extension headers, TCP (not an opening
 * SYN) or UDP, not a fragment, whose cache set on this CPU holds its flow,
 * fresh, with its backend live. One bounds check, the key read from the
 * packet, one or two inlined array lookups in one set, the backend's entry by
 * index, the MAC rewrite, one per-CPU counter; a miss to a port no service has
 * is passed here too. Every other packet takes the full path
 * (xdirector_full()), which decides exactly as this does for the packets this
 * takes, probing the set again on a miss.
 */
static __always_inline int fast_hit(struct xdp_md *ctx, int *actp)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	/* Ethernet + IPv4 + a TCP header's 20 bytes; a UDP datagram in a
	 * minimum-size (60-byte) frame has them too. */
	if (data + 14 + 20 + 20 > data_end)
		return XD_FAST_NONE;
	if (match_dst_mac && (*(__u32 *)eth->h_dest != *(const volatile __u32 *)&self_mac[0] ||
			      *(__u16 *)(eth->h_dest + 4) != *(const volatile __u16 *)&self_mac[4]))
		return XD_FAST_NONE;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return fast_hit4(ctx, eth, data_end - data, actp);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6) && data + 14 + 40 + 20 <= data_end)
		return fast_hit6(ctx, eth, data_end - data, actp);
	return XD_FAST_NONE;
}

/*
 * The full path: every packet fast_hit() does not forward. A global function,
 * so the verifier checks it once on its own instead of once per way out of
 * the fast path (which multiplied its states past the 1M-instruction limit);
 * the call costs a packet that gets here a few ns.
 */
__noinline int xdirector_full(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct xd_service_key sk = {};
	struct xd_flow_key fk = {};
	struct xd_flow4_key k4 = {};
	struct xd_service *svc;
	struct xd_backend *be = NULL;
	struct xd_flow *flow, *emb = NULL;
	struct xd_pflow *pf = NULL; /* the flow's probation-table entry, if that is where it is */
	struct xd_flow *tk = NULL;  /* the flow's takeover-table entry, if that is where it is */
	struct xd_flow4_cache *c4 = NULL;
	struct xd_flow6_cache *c6 = NULL;
	int cached = 0;
	struct ethhdr *eth;
	struct tcphdr *th;
	struct udphdr *uh;
	__u32 reason = XD_R_PASS_MALFORMED;
	__u32 l2len;
	__u32 be_idx = 0; /* the backend a forwarded packet is counted on */
	__u64 new_flow = 0;
	int action = XDP_PASS;
	int l3, l4, v4, syn, is_frag = 0, is_icmp = 0;
	__u8 tcp_flags = 0;

	l3 = parse_ethhdr(&nh, data_end, &eth);
	if (l3 < 0)
		goto out;
	/* From the EtherType rather than cursor arithmetic: the verifier then
	 * knows it is exactly 14 or 18 (encap.h offsets packet pointers by it). */
	l2len = (eth->h_proto == bpf_htons(ETH_P_8021Q) ||
		 eth->h_proto == bpf_htons(ETH_P_8021AD)) ?
			18 :
			14;

	if (match_dst_mac && !(eth->h_dest[0] & 1) &&
	    (eth->h_dest[0] != self_mac[0] || eth->h_dest[1] != self_mac[1] ||
	     eth->h_dest[2] != self_mac[2] || eth->h_dest[3] != self_mac[3] ||
	     eth->h_dest[4] != self_mac[4] || eth->h_dest[5] != self_mac[5])) {
		reason = XD_R_PASS_OTHER_HOST;
		goto out;
	}

	if (l3 == ETH_P_IP) {
		struct iphdr *iph;

		l4 = parse_iphdr(&nh, data_end, &iph);
		if (l4 < 0)
			goto out;
		fk.family = XD_FAMILY_V4;
		fk.saddr[0] = iph->saddr;
		fk.daddr[0] = iph->daddr;
		if (iph->frag_off & bpf_htons(XD_IP_MF | XD_IP_OFFSET)) {
			/* A later fragment has no ports: it cannot be matched
			 * to a service. Its first fragment is dropped below if
			 * it is for a service, so the kernel discards this one
			 * when reassembly times out. */
			if (iph->frag_off & bpf_htons(XD_IP_OFFSET)) {
				reason = XD_R_PASS_NON_VIP;
				goto out;
			}
			is_frag = 1;
		}
		if (l4 == IPPROTO_ICMP)
			is_icmp = 1;
	} else if (l3 == ETH_P_IPV6) {
		struct ipv6hdr *ip6h;
		__u16 frag_off;

		l4 = parse_ip6hdr(&nh, data_end, &ip6h);
		if (l4 < 0)
			goto out;
		fk.family = XD_FAMILY_V6;
		__builtin_memcpy(fk.saddr, &ip6h->saddr, sizeof(fk.saddr));
		__builtin_memcpy(fk.daddr, &ip6h->daddr, sizeof(fk.daddr));
		l4 = parse_ip6_exthdrs(&nh, data_end, l4, &frag_off);
		if (l4 < 0)
			goto out;
		if (frag_off & XD_IP6_OFFSET) { /* later fragment: see IPv4 */
			reason = XD_R_PASS_NON_VIP;
			goto out;
		}
		if (frag_off & XD_IP6_MF)
			is_frag = 1;
		if (l4 == IPPROTO_ICMPV6)
			is_icmp = 1;
	} else {
		reason = XD_R_PASS_NON_IP;
		goto out;
	}
	v4 = fk.family == XD_FAMILY_V4;

	if (is_icmp && !is_frag) {
		/*
		 * ICMP "fragmentation needed" (type 3 code 4) / ICMPv6 "packet
		 * too big" (type 2) about a VIP flow: the router quotes the
		 * real server's reply, VIP:port -> client:cport, and sends the
		 * error to the VIP. Deliver it to the backend that owns the
		 * flow, whose kernel then lowers the path MTU (RFC 1191, 8201).
		 */
		struct xd_icmp_hdr *ich;
		struct xd_ports *ports;
		int type, inner;

		type = parse_icmphdr(&nh, data_end, &ich);
		if (type < 0)
			goto out;
		if (v4) {
			struct iphdr *in4;

			if (type != 3 /* ICMP_DEST_UNREACH */ ||
			    ich->code != 4 /* ICMP_FRAG_NEEDED */) {
				reason = XD_R_PASS_NON_VIP;
				goto out;
			}
			inner = parse_iphdr(&nh, data_end, &in4);
			if (inner < 0)
				goto out;
			sk.vip[0] = in4->saddr;
			fk.saddr[0] = in4->daddr;
		} else {
			struct ipv6hdr *in6;
			__u16 in_frag;

			if (type != 2 /* ICMPV6_PKT_TOOBIG */) {
				reason = XD_R_PASS_NON_VIP;
				goto out;
			}
			inner = parse_ip6hdr(&nh, data_end, &in6);
			if (inner < 0)
				goto out;
			/* The quoted reply may carry extension headers too;
			 * a quoted later fragment has no ports. */
			inner = parse_ip6_exthdrs(&nh, data_end, inner, &in_frag);
			if (inner < 0)
				goto out;
			if (in_frag & XD_IP6_OFFSET) {
				reason = XD_R_PASS_NON_VIP;
				goto out;
			}
			__builtin_memcpy(sk.vip, &in6->saddr, sizeof(sk.vip));
			__builtin_memcpy(fk.saddr, &in6->daddr, sizeof(fk.saddr));
		}
		if (inner != IPPROTO_TCP && inner != IPPROTO_UDP) {
			reason = XD_R_PASS_NON_VIP;
			goto out;
		}
		if (parse_ports(&nh, data_end, &ports) < 0)
			goto out;
		/* The error must be addressed to the VIP the quoted packet
		 * came from. */
		if (!addr_eq(sk.vip, fk.daddr)) {
			reason = XD_R_PASS_NON_VIP;
			goto out;
		}
		sk.port = ports->source;
		sk.proto = inner;
		sk.family = fk.family;
		svc = bpf_map_lookup_elem(&xd_svc_v1, &sk);
		if (!svc) {
			reason = XD_R_PASS_NON_VIP;
			goto out;
		}
		/* The flow as the client sent it: client:cport -> VIP:port.
		 * Only established flows: an error never creates state. */
		fk.sport = ports->dest;
		fk.dport = ports->source;
		fk.proto = inner;
		k4.saddr = fk.saddr[0];
		k4.daddr = fk.daddr[0];
		k4.sport = fk.sport;
		k4.dport = fk.dport;
		k4.proto = inner;
		reason = XD_R_PASS_ICMP;
		flow = flow_lookup(v4, &k4, &fk);
		if (!flow)
			flow = (struct xd_flow *)prb_lookup(v4, &k4, &fk);
		if (!flow)
			flow = tko_lookup(v4, &k4, &fk);
		if (!flow) /* e.g. a UDP flow that sent one datagram so far */
			flow = emb_lookup(v4, &k4, &fk);
		if (!flow)
			goto out;
		be = flow_backend(flow);
		if (!be)
			goto out;
		be_idx = flow->backend;
		reason = XD_R_TX_ICMP;
		action = forward(ctx, eth, be, flow->backend, &fk, l2len, &reason);
		goto out;
	}

	if (l4 == IPPROTO_TCP) {
		if (parse_tcphdr(&nh, data_end, &th) < 0)
			goto out;
		fk.sport = th->source;
		fk.dport = th->dest;
		tcp_flags = ((__u8 *)th)[13];
	} else if (l4 == IPPROTO_UDP) {
		if (parse_udphdr(&nh, data_end, &uh) < 0)
			goto out;
		fk.sport = uh->source;
		fk.dport = uh->dest;
	} else {
		reason = XD_R_PASS_NON_VIP;
		goto out;
	}
	fk.proto = l4;
	k4.saddr = fk.saddr[0];
	k4.daddr = fk.daddr[0];
	k4.sport = fk.sport;
	k4.dport = fk.dport;
	k4.proto = l4;
	/* SYN without ACK opens a new connection (maybe reusing a 5-tuple): it
	 * always follows the current ring. */
	syn = (tcp_flags & (XD_TCP_SYN | XD_TCP_ACK)) == XD_TCP_SYN;

	/*
	 * Established flow, per-CPU cache hit: an array lookup, a key compare,
	 * the backend's entry by index (its generation and state), one per-CPU
	 * counter. The flow key names the VIP, port and protocol, so no service
	 * lookup: a flow exists only for a service, and a removed service's
	 * backends get new generations. The slot is looked up for every TCP/UDP
	 * packet: a packet of this key that does not take this path (a SYN, a
	 * stale slot, a gone backend) empties it below, once it is known to be
	 * for a service.
	 */
	if (v4) {
		c4 = fc4_probe(&k4, &cached);
		if (cached) {
			if (!syn && !is_frag && !(tcp_flags & XD_TCP_CLOSING) &&
			    bpf_jiffies64() < c4->expires) {
				be = live_backend(c4->backend, c4->generation);
				if (be) {
					be_idx = c4->backend;
					reason = XD_R_TX_FLOW_HIT;
					action = forward(ctx, eth, be, be_idx, &fk, l2len, &reason);
					goto out;
				}
			}
		}
	} else {
		c6 = fc6_probe(&fk, &cached);
		if (cached) {
			if (!syn && !is_frag && !(tcp_flags & XD_TCP_CLOSING) &&
			    bpf_jiffies64() < c6->expires) {
				be = live_backend(c6->backend, c6->generation);
				if (be) {
					be_idx = c6->backend;
					reason = XD_R_TX_FLOW_HIT;
					action = forward(ctx, eth, be, be_idx, &fk, l2len, &reason);
					goto out;
				}
			}
		}
	}
	be = NULL;

	/* Not a cache hit. A port and protocol no service has: done, with one
	 * array read (the director's own traffic, other hosts'). */
	if (!vip_port(l4, fk.dport)) {
		reason = XD_R_PASS_NON_VIP;
		goto out;
	}

	/* This CPU's cached copy of the flow is not to be used again: the flow
	 * table says what happens now (and is rewritten below if the flow
	 * changes backend). A packet for no service never had a slot that
	 * passed the backend check, so a slot of it is left to be overwritten. */
	if (cached) {
		if (c4)
			c4->backend = 0;
		if (c6)
			c6->backend = 0;
	}

	/*
	 * Established flow, the shared flow table: one hashed lookup; else the
	 * probation table, else the takeover table. A hit refills this CPU's
	 * cache slot for the next packets. Only a miss looks the service up.
	 */
	flow = NULL;
	if (!syn && !is_frag) {
		flow = flow_lookup(v4, &k4, &fk);
		if (!flow) {
			pf = prb_lookup(v4, &k4, &fk);
			flow = (struct xd_flow *)pf;
		}
		if (!flow) {
			tk = tko_lookup(v4, &k4, &fk);
			flow = tk;
		}
		if (flow) {
			be = flow_backend(flow);
			if (be) {
				__u64 now = xd_now();
				__u64 expires = bpf_jiffies64() + XD_FLOW_CACHE_JIFFIES;

				__u32 gen = flow->generation;

				be_idx = flow->backend;
				reason = XD_R_TX_FLOW_HIT;
				if (pf && now - pf->handshake_ns >= XD_PROVE_NS) {
					/* A handshake-completed flow came back: it
					 * is real, into the flow table (within the
					 * global rate), out of the probation table. */
					if (xd_rate_admit(XD_RATE_NEW_FLOW, new_flow_rate, now)) {
						struct xd_flow nf = {
							.backend = be_idx,
							.generation = gen,
							.last_seen_ns =
								now |
								((tcp_flags & XD_TCP_CLOSING) ?
									 XD_FLOW_CLOSED :
									 0),
						};

						flow_insert(v4, &k4, &fk, &nf);
						prb_delete(v4, &k4, &fk);
						reason = XD_R_TX_PROVEN;
						pf = NULL;
						flow = NULL;
					} else {
						guard_count(XD_GUARD_LIMITED);
					}
				}
				if (flow)
					flow_seen(&fk, flow, tcp_flags, now);
				if (c4) {
					__builtin_memcpy(c4->key, &k4, sizeof(c4->key));
					c4->backend = be_idx;
					c4->generation = gen;
					c4->expires = expires;
				}
				if (c6) {
					__builtin_memcpy(c6->key, &fk, sizeof(c6->key));
					c6->backend = be_idx;
					c6->generation = gen;
					c6->expires = expires;
				}
				action = forward(ctx, eth, be, be_idx, &fk, l2len, &reason);
				goto out;
			}
		}
	}

	__builtin_memcpy(sk.vip, fk.daddr, sizeof(sk.vip));
	sk.port = fk.dport;
	sk.proto = l4;
	sk.family = fk.family;
	svc = bpf_map_lookup_elem(&xd_svc_v1, &sk);
	if (!svc) {
		reason = XD_R_PASS_NON_VIP;
		goto out;
	}
	if (is_frag) {
		/* No ports in the later fragments: they cannot follow the
		 * first one to the same backend. DR directors don't reassemble. */
		reason = XD_R_DROP_FRAGMENT;
		action = XDP_DROP;
		goto out;
	}

	{
		int rst = tcp_flags & XD_TCP_RST;
		__u32 idx;
		__u64 now;

		now = xd_now();
		/* A SYN reusing the 5-tuple of a tracked flow: a flow that saw
		 * a packet within syn_reuse_idle_ns keeps its backend (a
		 * spoofed or stray SYN must not move it). An idle one in the
		 * flow table is replaced in place (below), or the handshake's
		 * ACK would find the old connection's backend; an idle one in
		 * the probation or takeover table is dropped, and the new
		 * connection opens like any other. */
		if (syn) {
			flow = flow_lookup(v4, &k4, &fk);
			if (!flow) {
				pf = prb_lookup(v4, &k4, &fk);
				flow = (struct xd_flow *)pf;
			}
			if (!flow) {
				tk = tko_lookup(v4, &k4, &fk);
				flow = tk;
			}
			if (flow &&
			    now - (flow->last_seen_ns & ~XD_FLOW_CLOSED) < syn_reuse_idle_ns) {
				be = flow_backend(flow);
				if (be) {
					be_idx = flow->backend;
					reason = XD_R_TX_SYN_KEPT;
					action = forward(ctx, eth, be, be_idx, &fk, l2len, &reason);
					goto out;
				}
				/* Its backend is gone: re-hashed below. */
			}
			if (pf)
				prb_delete(v4, &k4, &fk);
			if (tk)
				tko_delete(v4, &k4, &fk);
			if (pf || tk) {
				pf = NULL;
				tk = NULL;
				flow = NULL;
			}
		}
		if (!flow) {
			emb = emb_lookup(v4, &k4, &fk);
			if (emb) {
				be = flow_backend(emb);
				if (be) {
					idx = emb->backend;
					if (syn || rst) {
						/* SYN retransmit: the backend
						 * that saw the first one. */
						reason = syn ? XD_R_TX_EMBRYONIC : XD_R_TX_NO_TRACK;
					} else {
						/* The client's first packet after its
						 * opening one: the handshake completed,
						 * but a spoofer can send that packet as
						 * easily as the SYN. Into the probation
						 * table until it proves itself. */
						struct xd_pflow np = {
							.backend = idx,
							.generation = emb->generation,
							.last_seen_ns = now,
							.handshake_ns = now,
						};

						prb_insert(v4, &k4, &fk, &np);
						emb_delete(v4, &k4, &fk);
						guard_count(XD_GUARD_HANDSHAKES);
						sync_report(&fk, idx, np.generation, now,
							    XD_SYNC_HANDSHAKE);
						reason = XD_R_TX_PROMOTED;
					}
					be_idx = idx;
					action = forward(ctx, eth, be, be_idx, &fk, l2len, &reason);
					goto out;
				}
				/* Its backend is gone: hashed anew below. */
				be = NULL;
			}
		}

		idx = pick_backend(svc, &fk, &be);
		if (idx == XD_PICK_ABORT) {
			reason = XD_R_ABORTED;
			action = XDP_ABORTED;
			goto out;
		}
		if (idx == 0 || !be) {
			count_no_backend(svc->id);
			if (svc->flags & XD_SVC_F_EMPTY_DROP) {
				reason = XD_R_NO_BACKEND_DROP;
				action = XDP_DROP;
			} else {
				reason = XD_R_NO_BACKEND_PASS;
			}
			goto out;
		}
		be_idx = idx;

		if (rst) {
			/* A RST must not leave state behind (Katran does the
			 * same): forward it, remember nothing. (A RST of a
			 * known flow was forwarded as a flow hit above.) */
			reason = XD_R_TX_NO_TRACK;
			action = forward(ctx, eth, be, be_idx, &fk, l2len, &reason);
			goto out;
		}

		if (flow) {
			/* SYN reusing an idle 5-tuple of the flow table, or the
			 * flow's backend is gone (removed: generation bumped;
			 * DOWN): overwrite in place, in whichever table. */
			reason = syn ? XD_R_TX_NEW_FLOW : XD_R_TX_REHASH;
			flow->backend = idx;
			flow->generation = be->generation;
			flow->last_seen_ns = now;
			if (!syn)
				sync_report(&fk, idx, be->generation, now, XD_SYNC_TAKEOVER);
			new_flow = 1;
		} else if (syn || (l4 == IPPROTO_UDP && !emb)) {
			/* An opening packet: into the embryonic table until the
			 * client's next packet completes the handshake. */
			if (emb) {
				emb->backend = idx;
				emb->generation = be->generation;
				emb->last_seen_ns = now;
			} else {
				struct xd_flow nf = {
					.backend = idx,
					.generation = be->generation,
					.last_seen_ns = now,
				};

				emb_insert(v4, &k4, &fk, &nf);
				guard_count(XD_GUARD_EMBRYONIC);
			}
			reason = XD_R_TX_NEW_FLOW;
			new_flow = 1;
		} else {
			/* A non-SYN TCP miss: this director took the VIP over
			 * mid-stream (VRRP, ECMP change), or a spoofed bare ACK:
			 * remembered in the takeover table, so the flow stays
			 * where the ring puts it now; it never enters the flow
			 * table (a flood of these must not evict a flow that
			 * completed its handshake here). Or the second packet of
			 * an embryonic flow whose backend is gone: its handshake
			 * did complete here, so on probation. */
			struct xd_flow nf = {
				.backend = idx,
				.generation = be->generation,
				.last_seen_ns = now,
			};

			if (emb) {
				struct xd_pflow np = {
					.backend = idx,
					.generation = be->generation,
					.last_seen_ns = now,
					.handshake_ns = now,
				};

				prb_insert(v4, &k4, &fk, &np);
				emb_delete(v4, &k4, &fk);
				guard_count(XD_GUARD_HANDSHAKES);
				sync_report(&fk, idx, np.generation, now, XD_SYNC_HANDSHAKE);
				reason = XD_R_TX_REHASH;
			} else {
				tko_insert(v4, &k4, &fk, &nf);
				guard_count(XD_GUARD_TAKEOVERS);
				sync_report(&fk, idx, nf.generation, now, XD_SYNC_TAKEOVER);
				reason = XD_R_TX_NEW_FLOW;
			}
			new_flow = 1;
		}
		action = forward(ctx, eth, be, be_idx, &fk, l2len, &reason);
	}

out:
	count_packet(be_idx, reason, data_end - data, new_flow);
	return action;
}

SEC("xdp")
int xdirector(struct xdp_md *ctx)
{
	int action;

	if (fast_hit(ctx, &action) == XD_FAST_DONE)
		return action;
	return xdirector_full(ctx);
}
