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
#include "prof.h"

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

/* After the globals they read (match_dst_mac, self_mac, new_flow_rate,
 * ring_max, syn_reuse_idle_ns, too_big_rate): the stages, in the order a
 * packet takes them. */
#include "parse.h"
#include "flow.h"
#include "newflow.h"
#include "icmp.h"
#include "forward.h"

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
_Static_assert(sizeof(struct xd_backend) == 56, "xd_backend layout");
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
_Static_assert(sizeof(struct xd_flow4_entry) == 32, "xd_flow4_entry layout: two a 64-byte line");
_Static_assert(sizeof(struct xd_flow6_entry) == 64, "xd_flow6_entry layout: one a 64-byte line");
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
_Static_assert(sizeof(struct xd_meta) == 40, "xd_meta layout");
_Static_assert(sizeof(struct xd_sync_event) == 56, "xd_sync_event layout");
_Static_assert(sizeof(struct xd_sync_stats) == 16, "xd_sync_stats layout");
_Static_assert(sizeof(struct xd_nat_rev) == 56, "xd_nat_rev layout");
_Static_assert(sizeof(struct xd_nat_stats) == 16, "xd_nat_stats layout");
_Static_assert(sizeof(struct xd_nat_out4_cache) == 64, "xd_nat_out4_cache layout");
_Static_assert(sizeof(struct xd_nat_out6_cache) == 128, "xd_nat_out6_cache layout");
_Static_assert((XD_NAT_OUT_CACHE4 & (XD_NAT_OUT_CACHE4 - 1)) == 0,
	       "XD_NAT_OUT_CACHE4 is a power of two");
_Static_assert((XD_NAT_OUT_CACHE6 & (XD_NAT_OUT_CACHE6 - 1)) == 0,
	       "XD_NAT_OUT_CACHE6 is a power of two");

static __always_inline void count_reason(__u32 reason, __u64 bytes)
{
	struct xd_reason_stats *rs = bpf_map_lookup_elem(&xd_rsnst_v3, &reason);

	if (rs) {
		rs->packets++;
		rs->bytes += bytes;
	}
}

/* What the fast path reads in place: an untagged frame's Ethernet header, the
 * fixed IPv4 or IPv6 header, and a TCP header's 20 bytes (a UDP datagram in a
 * minimum-size, 60-byte, frame has them too). */
#define XD_FAST4_LEN (sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct tcphdr))
#define XD_FAST6_LEN (sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + sizeof(struct tcphdr))
/* The first byte of an IPv4 header without options: version 4, IHL 5 words. */
#define XD_IP4_VIHL (4 << 4 | sizeof(struct iphdr) / 4)
/* The version nibble of an IPv6 header's first byte. */
#define XD_IP6_VERSION (6 << 4)

/* fast_hit() results. A constant rather than the action itself: the verifier
 * then knows a forwarded packet (bpf_redirect's result is any long to it) never
 * reaches the full path, whose packet pointers a tunnel's adjust_head voids. */
#define XD_FAST_DONE 0 /* forwarded and counted: *actp is the action */
#define XD_FAST_NONE 1 /* not a cache hit: the full path decides */

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
 * A tunnel backend's flow hit. encap.h hashes the flow (GUE source port,
 * flow label): here from the frame fast_hit() checked (untagged; IPv4 with
 * IHL 5 or IPv6; TCP or UDP; 20 L4 bytes present), its address words folded
 * and its ports word read in place, as xd_tunnel_hash() folds a flow key. A
 * subprogram, so that the fast path's frame does not carry what
 * tunnel_forward()'s call needs under the full path's.
 */
static __noinline int fast_tunnel(struct xdp_md *ctx, __u32 idx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 why = XD_R_TX_FLOW_HIT;
	__u64 bytes = data_end - data;
	__be32 addrs;
	__u32 ports;
	int action;

	XD_PROF_AT(XD_PROF_TUN_ENTRY, XDP_TX);
	if (data + XD_FAST4_LEN > data_end)
		return XDP_ABORTED;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);

		addrs = iph->saddr ^ iph->daddr;
		ports = bpf_ntohl(*(__be32 *)(iph + 1));
	} else {
		struct ipv6hdr *ip6h = (void *)(eth + 1);
		const __u64 *a = (const __u64 *)&ip6h->saddr; /* saddr, daddr */
		__u64 x;

		if (data + XD_FAST6_LEN > data_end)
			return XDP_ABORTED;
		x = a[0] ^ a[1] ^ a[2] ^ a[3];
		addrs = (__be32)x ^ (__be32)(x >> 32);
		ports = bpf_ntohl(*(__be32 *)(ip6h + 1));
	}
	XD_PROF_AT(XD_PROF_TUN_KEY, XDP_TX);
	action = tunnel_forward(ctx, idx, xd_tunnel_hash_of(addrs, ports), XD_L2_LEN, &why);
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
 * path decides), by MAC rewrite, for a tunnel backend by fast_tunnel(), for a
 * NAT backend by nat_fast() (nat.h). */
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
	if (be->flags & XD_BE_F_NAT) {
		int action = nat_fast(ctx, eth, be);

		if (action < 0)
			return XD_FAST_NONE;
		*actp = action;
		count_packet(idx, XD_R_TX_FLOW_HIT, bytes, 0);
		return XD_FAST_DONE;
	}
	*actp = dr_forward(ctx, eth, be);
	count_packet(idx, XD_R_TX_FLOW_HIT, bytes, 0);
	return XD_FAST_DONE;
}

/* A flow of the flow table (w: its backend and generation, ft4_is()):
 * forwarded as a fresh cache slot's flow is. Its last_seen_ns (*seenp) is
 * refreshed here when due (once a second: one write to the shared line a
 * second, not one a packet), keeping the closed mark, unless the refresh is
 * also due a connection sync report (sync_refresh(), every 2^32 ns): that one
 * the full path writes. */
static __always_inline int fast_table_hit(struct xdp_md *ctx, struct ethhdr *eth, __u64 w,
					  __u64 *seenp, __u64 bytes, int *actp)
{
	__u64 seen = *seenp;
	__u64 last = seen & ~XD_FLOW_CLOSED;
	__u64 now = xd_now();

	if (now - last > XD_LAST_SEEN_REFRESH_NS) {
		if (sync_export && (now >> sync_refresh_shift) != (last >> sync_refresh_shift))
			return XD_FAST_NONE;
		*seenp = now | (seen & XD_FLOW_CLOSED);
	}
	return fast_forward(ctx, eth, FT_BACKEND(w), FT_GENERATION(w), bytes, actp);
}

/* No fresh slot holds the flow: the full path decides when a service has its
 * destination port; else NAT's out stage when a NAT backend has its source
 * port (a reply: nat.h), else it is passed here. */
static __always_inline int fast_miss(__u8 proto, const __u8 *l4, __u64 bytes, int v4, int *actp)
{
	if (vip_port(proto, ((const __be16 *)l4)[1]))
		return XD_FAST_NONE;
	if (nat_port(proto, ((const __be16 *)l4)[0]))
		return XD_NAT_OUT_TRY(sizeof(struct ethhdr), v4);
	return fast_pass_non_vip(bytes, actp);
}

/* A table flow's slot in this CPU's IPv4 cache set, refilled as the full
 * path's flow_hit() refills it: the way that holds the key, else the one
 * fc_refill_way() picks. Only after a table hit, off the cache-hit path. */
static __always_inline void fc4_fill(__u64 k0, __u64 k1, __u64 w)
{
	struct xd_flow4_cache *w0, *w1, *c4;
	__u32 slot = fc4_set(k0, k1);

	w0 = bpf_map_lookup_elem(&xd_fc4_v2, &slot);
	slot++;
	w1 = bpf_map_lookup_elem(&xd_fc4_v2, &slot);
	if (!w0 || !w1)
		return;
	if (w0->key[0] == k0 && w0->key[1] == k1)
		c4 = w0;
	else if (w1->key[0] == k0 && w1->key[1] == k1)
		c4 = w1;
	else
		c4 = fc_refill_way(w0->backend, w0->expires, w1->backend, w1->expires) ? w1 : w0;
	c4->key[0] = k0;
	c4->key[1] = k1;
	c4->backend = FT_BACKEND(w);
	c4->generation = FT_GENERATION(w);
	c4->expires = bpf_jiffies64() + XD_FLOW_CACHE_JIFFIES;
}

/*
 * The flow table part of fast_hit4(), after a cache miss: the table's bucket
 * (one line); a hit is forwarded and refills the cache set. Not inlined, so
 * its hash and refill do not enlarge the main program's stack frame, which
 * the full path's call chain adds to (the 6.1 verifier's 512-byte limit);
 * the frame's key is read again from the packet fast_hit4() checked.
 */
static __noinline int fast_table4(struct xdp_md *ctx, struct ethhdr *eth, __u64 bytes, int *actp)
{
	struct iphdr *iph = (void *)(eth + 1);
	__u8 *l4 = (__u8 *)(iph + 1);
	struct xd_flow4_entry *e4;
	__u64 k0, k1, w;
	__u8 proto;
	int r;

	if ((void *)eth + XD_FAST4_LEN > (void *)(long)ctx->data_end)
		return XD_FAST_NONE;
	proto = iph->protocol;
	k0 = *(__u64 *)&iph->saddr;
	k1 = key_tail(*(__u32 *)l4, proto, 0);
	e4 = ft4_find(k0, k1, &w);
	if (!e4)
		return fast_miss(proto, l4, bytes, 1, actp);
	r = fast_table_hit(ctx, eth, w, &e4->last_seen_ns, bytes, actp);
	if (r == XD_FAST_DONE)
		fc4_fill(k0, k1, w);
	return r;
}

/* IPv4 part of fast_hit(): the frame holds XD_FAST4_LEN bytes. This CPU's
 * cache set first (a hit costs what it did before the flow table was ours:
 * no table hash, no clock read), then, on a miss, the flow table
 * (fast_table4()). */
static __always_inline int fast_hit4(struct xdp_md *ctx, struct ethhdr *eth, __u64 bytes, int *actp)
{
	struct iphdr *iph = (void *)(eth + 1);
	__u8 *l4 = (__u8 *)(iph + 1);
	struct xd_flow4_cache *c4;
	__u64 k0, k1;
	__u32 slot;
	__u8 proto;

	if (*(__u8 *)iph != XD_IP4_VIHL || (iph->frag_off & bpf_htons(XD_IP_MF | XD_IP_OFFSET)))
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
			return fast_table4(ctx, eth, bytes, actp);
	}
	if (bpf_jiffies64() >= c4->expires)
		return fast_table4(ctx, eth, bytes, actp);
	return fast_forward(ctx, eth, c4->backend, c4->generation, bytes, actp);
}

/* Does this IPv6 slot hold the flow whose key is the packet's addresses `a`
 * (the key's words 0..3, compared in place) and `tail` (word 4)? */
static __always_inline int slot6_is(const struct xd_flow6_cache *c6, const __u64 *a, __u64 tail)
{
	return ((c6->key[0] ^ a[0]) | (c6->key[1] ^ a[1]) | (c6->key[2] ^ a[2]) |
		(c6->key[3] ^ a[3]) | (c6->key[4] ^ tail)) == 0;
}

/* fc4_fill() for IPv6: the key is the packet's addresses `a` and `tail`. */
static __always_inline void fc6_fill(const __u64 *a, __u64 tail, __u64 w)
{
	struct xd_flow6_cache *w0, *w1, *c6;
	__u32 slot = fc6_set_of(a[0] ^ a[1] ^ a[3] ^ tail);

	w0 = bpf_map_lookup_elem(&xd_fc6_v2, &slot);
	slot++;
	w1 = bpf_map_lookup_elem(&xd_fc6_v2, &slot);
	if (!w0 || !w1)
		return;
	if (slot6_is(w0, a, tail))
		c6 = w0;
	else if (slot6_is(w1, a, tail))
		c6 = w1;
	else
		c6 = fc_refill_way(w0->backend, w0->expires, w1->backend, w1->expires) ? w1 : w0;
	c6->key[0] = a[0];
	c6->key[1] = a[1];
	c6->key[2] = a[2];
	c6->key[3] = a[3];
	c6->key[4] = tail;
	c6->backend = FT_BACKEND(w);
	c6->generation = FT_GENERATION(w);
	c6->expires = bpf_jiffies64() + XD_FLOW_CACHE_JIFFIES;
}

/* fast_table4() for IPv6. */
static __noinline int fast_table6(struct xdp_md *ctx, struct ethhdr *eth, __u64 bytes, int *actp)
{
	struct ipv6hdr *ip6h = (void *)(eth + 1);
	__u8 *l4 = (__u8 *)(ip6h + 1);
	const __u64 *a = (const __u64 *)&ip6h->saddr;
	struct xd_flow6_entry *e6;
	__u64 tail, w;
	__u8 proto;

	if ((void *)eth + XD_FAST6_LEN > (void *)(long)ctx->data_end)
		return XD_FAST_NONE;
	proto = ip6h->nexthdr;
	tail = key_tail(*(__u32 *)l4, proto, XD_FAMILY_V6);
	e6 = ft6_find(a, tail, &w);
	if (!e6)
		return fast_miss(proto, l4, bytes, 0, actp);
	/* Refilled before forwarding: the key is read from the packet, which
	 * forwarding may move (a slot whose backend is gone fails its next hit's
	 * liveness check and the full path decides, as for any cached flow). */
	fc6_fill(a, tail, w);
	return fast_table_hit(ctx, eth, w, &e6->last_seen_ns, bytes, actp);
}

/* IPv6 part of fast_hit(): the frame holds XD_FAST6_LEN bytes. The cache set
 * first, then the flow table (fast_table6()). */
static __always_inline int fast_hit6(struct xdp_md *ctx, struct ethhdr *eth, __u64 bytes, int *actp)
{
	struct ipv6hdr *ip6h = (void *)(eth + 1);
	__u8 *l4 = (__u8 *)(ip6h + 1);
	const __u64 *a = (const __u64 *)&ip6h->saddr; /* saddr, daddr: the key's words 0..3 */
	struct xd_flow6_cache *c6;
	__u64 tail;
	__u32 slot;
	__u8 proto;

	if ((*(__u8 *)ip6h & 0xf0) != XD_IP6_VERSION)
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
			return fast_table6(ctx, eth, bytes, actp);
	}
	if (bpf_jiffies64() >= c6->expires)
		return fast_table6(ctx, eth, bytes, actp);
	return fast_forward(ctx, eth, c6->backend, c6->generation, bytes, actp);
}

/*
 * The established-flow fast path: a frame addressed to this director, untagged
 * IPv4 without options or IPv6 without extension headers, TCP (not an opening
 * SYN, FIN or RST) or UDP, not a fragment, whose flow is fresh in this CPU's
 * cache set or, on a miss, in the flow table (one hashed bucket: one 64-byte
 * line for IPv4; the hit refills the set), with its backend live. One bounds
 * check, the key read from the packet, inlined array lookups, the backend's
 * entry by index, the MAC rewrite, one per-CPU counter; a miss to a
 * port no service has is passed here too. Every other packet takes the full
 * path (xdirector_full()), which decides exactly as this does for the packets
 * this takes, probing the cache set and the tables again on a miss.
 */
static __always_inline int fast_hit(struct xdp_md *ctx, int *actp)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if (data + XD_FAST4_LEN > data_end)
		return XD_FAST_NONE;
	if (match_dst_mac && (*(__u32 *)eth->h_dest != *(const volatile __u32 *)&self_mac[0] ||
			      *(__u16 *)(eth->h_dest + 4) != *(const volatile __u16 *)&self_mac[4]))
		return XD_FAST_NONE;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return fast_hit4(ctx, eth, data_end - data, actp);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6) && data + XD_FAST6_LEN <= data_end)
		return fast_hit6(ctx, eth, data_end - data, actp);
	return XD_FAST_NONE;
}

/*
 * The full path: every packet fast_hit() does not forward, through its
 * stages: parse (parse.h; an ICMP error's quoted flow, icmp.h), the
 * established flow (flow.h) or a new one (newflow.h), forward (forward.h),
 * and the one exit that counts it. A global function, so the verifier checks
 * it once on its own instead of once per way out of the fast path (which
 * multiplied its states past the 1M-instruction limit); the call costs a
 * packet that gets here a few ns.
 */
__noinline int xdirector_full(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hdr_cursor nh = { .pos = data };
	struct verdict v = { .reason = XD_R_PASS_MALFORMED, .action = XDP_PASS };
	struct found_flow f = {};
	struct pkt_desc p = {};
	struct xd_backend *be = NULL;
	struct ethhdr *eth;
	int l4, stage;

	if (parse_l3(&nh, data_end, &p, &eth, &l4, &v.reason) < 0)
		goto out;
	if (p.icmp ? icmp_key(&nh, data_end, &p, &v.reason) :
		     parse_l4(&nh, data_end, l4, &p, &v.reason))
		goto out;
	key4_fill(&p);
	XD_PROF_AT(XD_PROF_PARSE, XDP_TX);
	if (p.icmp) {
		stage = icmp_flow(&p, &f, &v, &be);
	} else {
		stage = established(&p, &f, &v, &be);
		XD_PROF_AT(XD_PROF_EST, XDP_TX);
		if (stage == XD_NEXT)
			stage = new_flow(&p, &f, &v, &be);
		if (!XD_PROF_RUNS(XD_PROF_COUNT))
			return XDP_TX;
	}
	if (!XD_PROF_RUNS(XD_PROF_FORWARD))
		v.action = XDP_TX;
	else if (stage == XD_FORWARD && be)
		v.action = forward(ctx, eth, be, v.be_idx, &p.fk, p.l2len, &v.reason);
out:
	/* For no service and perhaps a NAT reply (or an ICMP error about a NAT
	 * request): the dispatcher runs NAT's out stage (nat.h). */
	if (v.reason == XD_R_NAT_OUT_TRY || (p.icmp && v.reason == XD_R_PASS_NON_VIP))
		return XD_NAT_OUT_TRY(p.l2len, p.fk.family == XD_FAMILY_V4);
	count_packet(v.be_idx, v.reason, data_end - data, v.new_flow);
	return v.action;
}

/*
 * NAT's out stage, run by the dispatcher for a packet the fast path or the
 * full path found to be for no service and perhaps a NAT reply (nat.h,
 * XD_NAT_OUT_TRY): beside the full path rather than under it, since the
 * 512-byte stack limit counts a call chain's frames (Linux 6.1 rounds each
 * up to 32). A reply that matches no reverse entry or cannot be routed here
 * is passed to the kernel untouched and counted as the full path would
 * (XD_R_PASS_NON_VIP); a rewritten one under XD_R_TX_NAT_OUT and on its
 * backend's Out counters, not its In ones.
 */
static __always_inline int nat_out_stage(struct xdp_md *ctx, int code)
{
	__u64 bytes = ctx->data_end - ctx->data;
	__u32 l2len = (code >> 1) & 0x1f;
	__u32 be_idx = 0;
	int action = code & 1 ? nat_out4(ctx, l2len, &be_idx) : nat_out6(ctx, l2len, &be_idx);

	if (action < 0) {
		count_reason(XD_R_PASS_NON_VIP, bytes);
		return XDP_PASS;
	}
	nat_count_out(be_idx, bytes);
	count_reason(XD_R_TX_NAT_OUT, bytes);
	return action;
}

SEC("xdp")
int xdirector(struct xdp_md *ctx)
{
	int action;
	int r;

	XD_PROF_TUN_KEEP(ctx);
	r = fast_hit(ctx, &action);
	if (r == XD_FAST_DONE) {
		XD_PROF_TUN_UNDO(ctx);
		return action;
	}
	if (r >= XD_NAT_OUT)
		return nat_out_stage(ctx, r);
	action = xdirector_full(ctx);
	if (action >= XD_NAT_OUT)
		return nat_out_stage(ctx, action);
	XD_PROF_TUN_UNDO(ctx);
	return action;
}
