/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * nat.h: NAT forwarding (LVS-NAT, masquerading) of the XDP program (kernel only).
 *
 * In:  client -> VIP:vport becomes client -> backend:bport (destination address
 *      and port rewritten, L3/L4 checksums updated incrementally), sent to the
 *      backend's next hop out of the backend's interface: XDP_TX when that is
 *      the receiving interface (one-armed), else bpf_redirect_map() on the
 *      xd_tx_v1 devmap (two-armed). The reply's 5-tuple is remembered in the
 *      reverse table (nat_rev_upsert()).
 * Out: backend:bport -> client, arriving here because the director is the real
 *      servers' gateway, is looked up in the reverse table by its own 5-tuple
 *      (so a backend serving several VIPs on one port finds the right one);
 *      a match becomes VIP:vport -> client and is routed with bpf_fib_lookup()
 *      (TTL / hop limit decremented, as a router does); no match is passed to
 *      the kernel untouched, never rewritten by guess.
 * ICMP errors are translated both ways: one about a reply (quoting VIP:vport ->
 *      client, sent to the VIP) reaches the backend quoting backend:bport;
 *      one about a request (quoting client -> backend:bport, sent to the client
 *      by a router on the server side or by the backend) reaches the client
 *      quoting VIP:vport, so path MTU discovery works through NAT.
 *
 * Byte order: addresses and ports stay network order throughout; the one's
 * complement sums below are byte-order independent (RFC 1071 2(B)).
 *
 * The out direction is a stage of its own: the fast path and the full path
 * return XD_NAT_OUT_TRY(l2len, v4) for a packet for no service that may be a
 * reply (its source port is a NAT backend's, or an ICMP error the full path
 * passes as for no VIP), and the dispatcher (xdirector.bpf.c, xdirector())
 * runs nat_out4() / nat_out6() itself, so their frames are not under the
 * full path's: the 512-byte stack limit counts a call chain's frames, and
 * Linux 6.1 rounds each up to 32.
 */
#ifndef XD_NAT_H
#define XD_NAT_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "xdirector.h"
#include "parsing.h"
#include "maps.h"
#include "encap.h"

/* Not a reason counted anywhere: the full path's mark for a packet for no
 * service whose source port is a NAT backend's (it returns XD_NAT_OUT_TRY). */
#define XD_R_NAT_OUT_TRY XD_R_MAX
/* What the fast path and the full path return for the dispatcher's NAT out
 * stage: above every XDP action and fast_hit() result. */
#define XD_NAT_OUT 0x100
#define XD_NAT_OUT_TRY(l2len, v4) (XD_NAT_OUT | (int)(l2len) << 1 | !!(v4))

#define XD_AF_INET 2
#define XD_AF_INET6 10
/* A reverse entry's last_seen_ns is rewritten at most this often (as a flow's). */
#define XD_NAT_REFRESH_NS 1000000000ULL
/* A flow's replies reuse its last bpf_fib_lookup() result for this long. */
#define XD_NAT_ROUTE_NS 1000000000ULL

/* Has any NAT backend this TCP/UDP source port (xd_nport_v1)? A reply of a
 * NAT flow comes from one. */
static __always_inline int nat_port(__u8 proto, __be16 sport)
{
	__u16 port = bpf_ntohs(sport);
	__u32 word = (proto == IPPROTO_UDP ? XD_VPORT_WORDS : 0) + (port >> 6);
	__u64 *bits = bpf_map_lookup_elem(&xd_nport_v1, &word);

	return bits && (*bits & (1ULL << (port & 63)));
}

/* ---- checksums -------------------------------------------------------- */

/* The one's complement difference of replacing 32-bit word `from` by `to`
 * (RFC 1624 eqn 3 terms ~m + m'), to accumulate before one nat_csum_apply(). */
static __always_inline __u64 nat_diff4(__be32 from, __be32 to)
{
	return (__u64)(__u32)~from + (__u32)to;
}

static __always_inline __u64 nat_diff2(__be16 from, __be16 to)
{
	return (__u64)(__u16)~from + (__u16)to;
}

static __always_inline __u64 nat_diff16(const __be32 *from, const __be32 *to)
{
	return nat_diff4(from[0], to[0]) + nat_diff4(from[1], to[1]) + nat_diff4(from[2], to[2]) +
	       nat_diff4(from[3], to[3]);
}

/* HC' = ~(~HC + diff). */
static __always_inline __u16 nat_csum_apply(__u16 check, __u64 diff)
{
	return xd_csum_fold((__u64)(__u16)~check + diff);
}

/* L4 checksum update; a UDP checksum of 0 (IPv4: none) stays 0, and a
 * computed 0 is sent as 0xffff (RFC 768). */
static __always_inline void nat_l4_csum(__u16 *check, __u8 proto, __u64 diff)
{
	if (proto == IPPROTO_UDP) {
		if (*check == 0)
			return;
		*check = nat_csum_apply(*check, diff);
		if (*check == 0)
			*check = 0xffff;
		return;
	}
	*check = nat_csum_apply(*check, diff);
}

/* ---- parsing ---------------------------------------------------------- */

/* Where the L4 checksum sits in a TCP or UDP header, or -1. */
static __always_inline int nat_csum_off(__u8 proto)
{
	if (proto == IPPROTO_TCP)
		return 16;
	if (proto == IPPROTO_UDP)
		return 6;
	return -1;
}

/* ---- reverse table ---------------------------------------------------- */

/* The reverse tables by family; one call site per map (inlined lookups). */
static __always_inline struct xd_nat_rev *nat_rev_lookup(int v4, const struct xd_flow4_key *k4,
							 const struct xd_flow_key *k6)
{
	if (v4)
		return bpf_map_lookup_elem(&xd_nrev4_v1, k4);
	return bpf_map_lookup_elem(&xd_nrev6_v1, k6);
}

static __always_inline void nat_rev_update(int v4, const struct xd_flow4_key *k4,
					   const struct xd_flow_key *k6, const struct xd_nat_rev *r)
{
	if (v4)
		bpf_map_update_elem(&xd_nrev4_v1, k4, r, BPF_ANY);
	else
		bpf_map_update_elem(&xd_nrev6_v1, k6, r, BPF_ANY);
}

/*
 * Remember how a reply of this flow is rewritten: key = the reply's 5-tuple
 * (backend:bport -> client:cport), value = the VIP:vport the client wrote
 * to, the backend, and where the client's packets come from (fallback next
 * hop when the route to the client has no neighbour entry yet: the director's
 * kernel never saw this traffic). Written only when missing, changed, or
 * last refreshed XD_NAT_REFRESH_NS ago, so a flow's steady packets dirty no
 * shared line. `fk` is the client's flow, `eth` its frame as received. A
 * subprogram called by the full path's forward() beside nat_in(), not from
 * it: its keys and value stay out of the full path's frame, and its frame
 * out of nat_in()'s chain (the 512-byte stack limit counts a chain's frames).
 */
static __noinline void nat_rev_upsert(struct xdp_md *ctx, const struct xd_flow_key *fk,
				      __u32 be_idx)
{
	void *data_end = (void *)(long)ctx->data_end;
	const struct ethhdr *eth = (void *)(long)ctx->data;
	int v4 = fk->family == XD_FAMILY_V4;
	struct xd_backend *be = bpf_map_lookup_elem(&xd_be_v2, &be_idx);
	union { /* one family's key: the frame stays small */
		struct xd_flow4_key k4;
		struct xd_flow_key k6;
	} k = {};
	struct xd_flow4_key *k4 = &k.k4;
	struct xd_flow_key *k6 = &k.k6;
	struct xd_nat_rev *r;
	__u64 now = bpf_ktime_get_coarse_ns();
	__be16 bport;

	if (!be || (void *)(eth + 1) > data_end)
		return;
	bport = be->nat_port;
	if (v4) {
		k4->saddr = be->addr[0];
		k4->daddr = fk->saddr[0];
		k4->sport = bport;
		k4->dport = fk->sport;
		k4->proto = fk->proto;
	} else {
		__builtin_memcpy(k6->saddr, be->addr, sizeof(k6->saddr));
		__builtin_memcpy(k6->daddr, fk->saddr, sizeof(k6->daddr));
		k6->sport = bport;
		k6->dport = fk->sport;
		k6->proto = fk->proto;
		k6->family = XD_FAMILY_V6;
	}
	r = nat_rev_lookup(v4, k4, k6);
	if (r && r->backend == be_idx && r->vport == fk->dport &&
	    ((r->vip[0] ^ fk->daddr[0]) | (r->vip[1] ^ fk->daddr[1]) | (r->vip[2] ^ fk->daddr[2]) |
	     (r->vip[3] ^ fk->daddr[3])) == 0 &&
	    now - r->last_seen_ns < XD_NAT_REFRESH_NS)
		return;
	{
		struct xd_nat_rev nr = {
			.vport = fk->dport,
			.ifindex = ctx->ingress_ifindex,
			.backend = be_idx,
			.last_seen_ns = now,
		};

		__builtin_memcpy(nr.vip, fk->daddr, sizeof(nr.vip));
		__builtin_memcpy(nr.peer_mac, eth->h_source, ETH_ALEN);
		__builtin_memcpy(nr.self_mac, eth->h_dest, ETH_ALEN);
		nat_rev_update(v4, k4, k6, &nr);
	}
}

/* ---- in: client -> VIP:vport  =>  client -> backend:bport ------------- */

/* A rewritten frame out, both directions: XDP_TX back out of the receiving
 * interface (ifindex 0 or the receiving one), else the devmap (the egress
 * interface must be in it: XDP_ABORTED otherwise, which the reason counters
 * show; the out direction checks before rewriting). The caller set the MACs. */
static __always_inline int nat_send(struct xdp_md *ctx, __u32 ifindex)
{
	if (ifindex != 0 && ifindex != ctx->ingress_ifindex)
		return bpf_redirect_map(&xd_tx_v1, ifindex, 0);
	return XDP_TX;
}

/* The frame's MACs from a map value (a backend entry, a reply cache slot):
 * 4 + 2 byte moves where memcpy() into the packed ethhdr copies byte by byte.
 * Unaligned packet and map value accesses are allowed where the architecture
 * has efficient unaligned access, as fast_hit()'s MAC compare relies on
 * (not stack ones: a bpf_fib_lookup() result is copied). */
static __always_inline void nat_set_macs(struct ethhdr *eth, const __u8 *smac, const __u8 *dmac)
{
	*(__u32 *)eth->h_dest = *(const __u32 *)dmac;
	*(__u16 *)(eth->h_dest + 4) = *(const __u16 *)(dmac + 4);
	*(__u32 *)eth->h_source = *(const __u32 *)smac;
	*(__u16 *)(eth->h_source + 4) = *(const __u16 *)(smac + 4);
}

/* The frame out to the backend: its next hop's MAC from the director's MAC
 * on the egress interface. */
static __always_inline int nat_send_in(struct xdp_md *ctx, struct ethhdr *eth,
				       const struct xd_backend *be)
{
	nat_set_macs(eth, be->nat_smac, be->mac);
	return nat_send(ctx, be->ifindex);
}

/*
 * An ICMP error to the VIP about a reply (it quotes VIP:vport -> client:cport):
 * the outer destination and the quoted source become the backend's, so the
 * backend's kernel matches it to its socket (backend:bport -> client:cport)
 * and lowers its path MTU. `ich` and `inner` point into the frame; the
 * caller checked the quote's ports are there.
 */
static __always_inline void nat_icmp_in4(struct iphdr *iph, struct xd_icmp_hdr *ich,
					 struct iphdr *in4, struct xd_ports *qp,
					 const struct xd_backend *be, __be16 bport)
{
	__be32 vip = iph->daddr;
	__u16 old_check = in4->check;
	__u64 d;

	iph->check = nat_csum_apply(iph->check, nat_diff4(vip, be->addr[0]));
	iph->daddr = be->addr[0];
	in4->check = nat_csum_apply(in4->check, nat_diff4(vip, be->addr[0]));
	in4->saddr = be->addr[0];
	d = nat_diff4(vip, be->addr[0]) + nat_diff2(old_check, in4->check) +
	    nat_diff2(qp->source, bport);
	qp->source = bport;
	ich->checksum = nat_csum_apply(ich->checksum, d);
}

/* IPv6: the ICMPv6 checksum also covers the outer destination (pseudo-header). */
static __always_inline void nat_icmp_in6(struct ipv6hdr *ip6h, struct xd_icmp_hdr *ich,
					 struct ipv6hdr *in6, struct xd_ports *qp,
					 const struct xd_backend *be, __be16 bport)
{
	__u64 d = 2 * nat_diff16((const __be32 *)&ip6h->daddr, be->addr) +
		  nat_diff2(qp->source, bport);

	__builtin_memcpy(&ip6h->daddr, be->addr, 16);
	__builtin_memcpy(&in6->saddr, be->addr, 16);
	qp->source = bport;
	ich->checksum = nat_csum_apply(ich->checksum, d);
}

/*
 * Global functions (nat_in, nat_out4, nat_out6): the verifier checks each once on its
 * own, whatever the number of call sites and the caller's states (as static
 * subprograms they pushed the program past the 1M-instruction limit). Their
 * pointer arguments may be NULL to it, hence the checks.
 *
 * The in direction's rewrite for a NAT backend (XD_BE_F_NAT), from nat_in().
 * The frame: L2 of l2len bytes, then IPv4 or IPv6 with TCP, UDP, or an ICMP
 * error quoting a reply. Too big for the backend's path (nat_mtu): the
 * client gets frag needed / packet too big from the VIP (xd_too_big) and
 * lowers its path MTU. *reason changes only when the packet is answered,
 * dropped or aborted instead.
 */
__noinline int nat_in_rewrite(struct xdp_md *ctx, __u32 be_idx, __u32 l2len, __u32 *reason)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct xd_backend *be = bpf_map_lookup_elem(&xd_be_v2, &be_idx);
	struct ethhdr *eth = data;
	struct hdr_cursor nh;
	__u32 iplen;
	__u16 *l4check;
	__u8 proto;
	int off;

	if (!reason)
		return XDP_ABORTED;
	if (!be || (l2len != 14 && l2len != 18)) {
		*reason = XD_R_ABORTED;
		return XDP_ABORTED;
	}
	if ((void *)(eth + 1) > data_end)
		goto abort;
	nh.pos = data + l2len;
	iplen = xd_ip_len(nh.pos, data_end, be->family);
	if (be->nat_mtu && iplen > be->nat_mtu) {
		/* Never fragmented here: IPv4 with DF and IPv6 are answered,
		 * IPv4 without DF is dropped (as a tunnel's packet is). */
		if (be->family == XD_FAMILY_V4) {
			struct iphdr *iph = nh.pos;

			if ((void *)(iph + 1) > data_end)
				goto abort;
			if (!(iph->frag_off & bpf_htons(XD_IP_DF))) {
				*reason = XD_R_DROP_TOO_BIG;
				return XDP_DROP;
			}
		}
		return xd_too_big(ctx, l2len, be->family, be->nat_mtu, reason);
	}
	if (be->family == XD_FAMILY_V4) {
		struct iphdr *iph;
		int l4 = parse_iphdr(&nh, data_end, &iph);

		if (l4 < 0)
			goto abort;
		if (l4 == IPPROTO_ICMP) {
			struct xd_icmp_hdr *ich;
			struct iphdr *in4;
			struct xd_ports *qp;

			if (parse_icmphdr(&nh, data_end, &ich) < 0 ||
			    parse_iphdr(&nh, data_end, &in4) < 0 ||
			    parse_ports(&nh, data_end, &qp) < 0)
				goto abort;
			nat_icmp_in4(iph, ich, in4, qp, be, be->nat_port);
			return nat_send_in(ctx, eth, be);
		}
		proto = l4;
		off = nat_csum_off(proto);
		if (off < 0)
			goto abort;
		{
			struct xd_ports *p = nh.pos;
			__u64 d;

			l4check = (void *)p + off;
			if ((void *)(p + 1) > data_end || (void *)(l4check + 1) > data_end)
				goto abort;
			d = nat_diff4(iph->daddr, be->addr[0]);
			iph->check = nat_csum_apply(iph->check, d);
			nat_l4_csum(l4check, proto, d + nat_diff2(p->dest, be->nat_port));
			iph->daddr = be->addr[0];
			p->dest = be->nat_port;
		}
	} else {
		struct ipv6hdr *ip6h;
		__u16 frag = 0;
		int l4 = parse_ip6hdr(&nh, data_end, &ip6h);

		if (l4 < 0)
			goto abort;
		l4 = parse_ip6_exthdrs(&nh, data_end, l4, &frag);
		if (l4 < 0)
			goto abort;
		if (l4 == IPPROTO_ICMPV6) {
			struct xd_icmp_hdr *ich;
			struct ipv6hdr *in6;
			struct xd_ports *qp;

			if (parse_icmphdr(&nh, data_end, &ich) < 0 ||
			    parse_ip6hdr(&nh, data_end, &in6) < 0 ||
			    parse_ports(&nh, data_end, &qp) < 0)
				goto abort;
			nat_icmp_in6(ip6h, ich, in6, qp, be, be->nat_port);
			return nat_send_in(ctx, eth, be);
		}
		proto = l4;
		off = nat_csum_off(proto);
		if (off < 0)
			goto abort;
		{
			struct xd_ports *p = nh.pos;
			__u64 d;

			l4check = (void *)p + off;
			if ((void *)(p + 1) > data_end || (void *)(l4check + 1) > data_end)
				goto abort;
			/* No IPv6 header checksum; the L4 one covers the
			 * addresses through the pseudo-header. */
			d = nat_diff16((const __be32 *)&ip6h->daddr, be->addr) +
			    nat_diff2(p->dest, be->nat_port);
			nat_l4_csum(l4check, proto, d);
			__builtin_memcpy(&ip6h->daddr, be->addr, 16);
			p->dest = be->nat_port;
		}
	}
	return nat_send_in(ctx, eth, be);
abort:
	*reason = XD_R_ABORTED;
	return XDP_ABORTED;
}

/* HC' = ~(~HC + d) for a difference d already folded to 16 bits (a backend
 * entry's nat_csum_l3 / nat_csum_l4, a reply cache slot's csum_l3 / csum_l4):
 * one fold is enough, as ~HC + d < 2 * 0xffff. */
static __always_inline __u16 nat_csum_add16(__u16 check, __u16 d)
{
	__u32 sum = (__u32)(__u16)~check + d;

	return ~(__u16)((sum & 0xffff) + (sum >> 16));
}

/* A sum of differences folded to 16 bits (not complemented), to store as a
 * precomputed difference for nat_csum_add16(). */
static __always_inline __u16 nat_diff_fold(__u64 diff)
{
	return (__u16)~xd_csum_fold(diff);
}

/* nat_csum_add16() on a TCP or UDP checksum, both directions and families:
 * a UDP checksum of 0 (IPv4: none) stays 0, a computed 0 is sent as 0xffff
 * (RFC 768). */
static __always_inline void nat_l4_add16(__u16 *check, __u8 proto, __u16 d)
{
	if (proto == IPPROTO_TCP || *check != 0) {
		__u16 c = nat_csum_add16(*check, d);

		*check = c || proto == IPPROTO_TCP ? c : 0xffff;
	}
}

/*
 * The in direction for a NAT backend, from the full path: the reply's reverse
 * entry refreshed (`fk` the client's flow; NULL for a RST, which must leave no
 * state, and for an ICMP error, which creates none), then the rewrite. Two
 * calls of their own from this small frame, so neither frame sits under the
 * other: the 512-byte stack limit counts a call chain's frames.
 */
__noinline int nat_in(struct xdp_md *ctx, __u32 be_idx, __u32 l2len, const struct xd_flow_key *fk,
		      __u32 *reason)
{
	if (fk)
		nat_rev_upsert(ctx, fk, be_idx);
	return nat_in_rewrite(ctx, be_idx, l2len, reason);
}

/*
 * The fast path's NAT (a cache hit: untagged IPv4 with IHL 5 or IPv6 without
 * extension headers, TCP or UDP with its first 20 L4 bytes present, checked
 * by fast_hit()): the same rewrite as nat_in() without parsing, without
 * summing differences and without a second lookup: a cache hit's packet is
 * VIP:vport -> ..., the same for every packet of the backend entry (each
 * service has its own), so everything the rewrite needs is in the entry the
 * fast path already loaded (nat_port, nat_smac, nat_mtu and the checksum
 * differences nat_csum_l3 / nat_csum_l4 the control plane computed): one fold
 * per checksum. -1 when the packet needs more (larger than the path MTU): the
 * full path.
 */
static __always_inline int nat_fast(struct xdp_md *ctx, struct ethhdr *eth,
				    const struct xd_backend *be)
{
	__u8 *l4;
	__u8 proto;

	if (*(__be16 *)((__u8 *)eth + 12) == bpf_htons(ETH_P_IP)) { /* h_proto, one load */
		/* fast_hit() checked the frame holds XD_FAST4_LEN bytes: the
		 * IPv4 header and 20 L4 bytes. */
		struct iphdr *iph = (void *)(eth + 1);

		if (be->nat_mtu && bpf_ntohs(iph->tot_len) > be->nat_mtu)
			return -1;
		l4 = (__u8 *)(iph + 1);
		proto = iph->protocol;
		iph->check = nat_csum_add16(iph->check, be->nat_csum_l3);
		iph->daddr = be->addr[0];
	} else {
		/* XD_FAST6_LEN bytes, checked by fast_hit() for IPv6 only: this
		 * inlined copy may be fast_hit4()'s too. */
		struct ipv6hdr *ip6h = (void *)(eth + 1);

		if ((void *)ip6h + sizeof(*ip6h) + sizeof(struct tcphdr) >
		    (void *)(long)ctx->data_end)
			return -1;
		if (be->nat_mtu && sizeof(*ip6h) + bpf_ntohs(ip6h->payload_len) > be->nat_mtu)
			return -1;
		l4 = (__u8 *)(ip6h + 1);
		proto = ip6h->nexthdr;
		__builtin_memcpy(&ip6h->daddr, be->addr, 16);
	}
	/* TCP or UDP (fast_l4_ok()); TCP without UDP's zero rule. */
	if (proto == IPPROTO_TCP)
		((struct tcphdr *)l4)->check =
			nat_csum_add16(((struct tcphdr *)l4)->check, be->nat_csum_l4);
	else
		nat_l4_add16(&((struct udphdr *)l4)->check, IPPROTO_UDP, be->nat_csum_l4);
	((__be16 *)l4)[1] = be->nat_port;
	return nat_send_in(ctx, eth, be);
}

/* ---- out: backend:bport -> client  =>  VIP:vport -> client ------------ */

/*
 * Route a rewritten reply to the client: bpf_fib_lookup() from the VIP,
 * the neighbour's MAC from the kernel's table, remembered in the reverse
 * entry for XD_NAT_ROUTE_NS. The kernel's XDP path never
 * resolved the client's next hop (its packets were forwarded here, not
 * received), so without a neighbour entry the MACs the client's packets came
 * with are used when the route leaves by the interface they arrived on.
 * Returns 0 with *ifindex and the MACs set, or -1 (not routable here: passed).
 */
/* The flow's last route, for XD_NAT_ROUTE_NS: a FIB lookup per reply would
 * cost several times the rewrite (measured ~10x DR's per-packet cost); a
 * route or neighbour change reaches a flow within that. */
static __always_inline int nat_route_fresh(const struct xd_nat_rev *r, __u64 now)
{
	return r->route_ns && now - r->route_ns < XD_NAT_ROUTE_NS;
}

static __always_inline int nat_route(struct xdp_md *ctx, struct bpf_fib_lookup *p,
				     struct xd_nat_rev *r, __u64 now)
{
	long rc;

	if (nat_route_fresh(r, now)) {
		__builtin_memcpy(p->smac, r->self_mac, ETH_ALEN);
		__builtin_memcpy(p->dmac, r->peer_mac, ETH_ALEN);
		p->ifindex = r->ifindex;
		return 0;
	}
	rc = bpf_fib_lookup(ctx, p, sizeof(*p), 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		__builtin_memcpy(r->self_mac, p->smac, ETH_ALEN);
		__builtin_memcpy(r->peer_mac, p->dmac, ETH_ALEN);
		r->ifindex = p->ifindex;
		r->route_ns = now;
		return 0;
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH && p->ifindex == r->ifindex) {
		__builtin_memcpy(p->smac, r->self_mac, ETH_ALEN);
		__builtin_memcpy(p->dmac, r->peer_mac, ETH_ALEN);
		return 0;
	}
	return -1;
}

/* Out of the interface the route chose: XDP_TX when that is the receiving
 * one, else the devmap, provided the interface is in it (checked before any
 * byte changes; else -1: passed untouched). */
static __always_inline int nat_egress_ok(struct xdp_md *ctx, __u32 ifindex)
{
	return ifindex == ctx->ingress_ifindex || bpf_map_lookup_elem(&xd_tx_v1, &ifindex) != NULL;
}

static __always_inline int nat_send_out(struct xdp_md *ctx, struct ethhdr *eth,
					const struct bpf_fib_lookup *p)
{
	__builtin_memcpy(eth->h_source, p->smac, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, p->dmac, ETH_ALEN);
	return nat_send(ctx, p->ifindex);
}

static __always_inline void nat_count_out(__u32 be_idx, __u64 bytes)
{
	struct xd_nat_stats *s = bpf_map_lookup_elem(&xd_nbst_v1, &be_idx);

	if (s) {
		s->packets++;
		s->bytes += bytes;
	}
}

static __always_inline void nat_rev_touch(struct xd_nat_rev *r, __u64 now)
{
	if (now - r->last_seen_ns > XD_NAT_REFRESH_NS)
		r->last_seen_ns = now;
}

/* ---- the per-CPU reply cache (xd_noc4_v1, xd_noc6_v1) ---------------- */

/* A reply cache slot is trusted this many jiffies (32 ms at HZ=1000, 320 ms at
 * 100), then the reverse table is looked up again: that keeps the entry recent
 * in its LRU and refreshes its last_seen_ns, and bounds how long a reverse
 * entry gone or changed (evicted, rewritten for another VIP) or a route
 * changed since can still be used. */
#define XD_NAT_OUT_CACHE_JIFFIES 32

/* The first slot of a key's 2-way set on this CPU: the key's 64-bit words
 * folded by XOR into 32 bits, then a Fibonacci hash; `per` slots a CPU. */
static __always_inline __u32 noc_set(__u64 folded, __u32 per)
{
	return bpf_get_smp_processor_id() * per +
	       (((__u32)folded ^ (__u32)(folded >> 32)) * 0x9e3779b1U >>
		(33 - __builtin_ctz(per))) *
		       2;
}

/* Of a set's two ways, the one a refill takes: an empty or stale way, else
 * the one that expires first (refilled longest ago). */
static __always_inline int noc_refill_way(__u32 b0, __u64 e0, __u32 b1, __u64 e1, __u64 now)
{
	if (!b0 || now >= e0)
		return 0;
	if (!b1 || now >= e1)
		return 1;
	return e1 < e0;
}

/*
 * The slot of this CPU's reply cache that holds the reply's key (*fresh = 1
 * when it is still to be trusted: the caller rewrites from it), else the one a
 * refill from the reverse table takes. NULL only if this CPU is beyond the
 * array (user space sized it for fewer CPUs): nothing is cached.
 */
static __always_inline struct xd_nat_out4_cache *noc4_probe(const struct xd_flow4_key *k,
							    int *fresh)
{
	const __u64 *kw = (const __u64 *)k;
	__u32 slot = noc_set(kw[0] ^ kw[1], XD_NAT_OUT_CACHE4);
	struct xd_nat_out4_cache *w0 = bpf_map_lookup_elem(&xd_noc4_v1, &slot), *w1;
	__u64 now = bpf_jiffies64();

	slot++;
	w1 = bpf_map_lookup_elem(&xd_noc4_v1, &slot);
	if (!w0 || !w1)
		return NULL;
	if (w0->backend && w0->key[0] == kw[0] && w0->key[1] == kw[1]) {
		*fresh = now < w0->expires;
		return w0;
	}
	if (w1->backend && w1->key[0] == kw[0] && w1->key[1] == kw[1]) {
		*fresh = now < w1->expires;
		return w1;
	}
	return noc_refill_way(w0->backend, w0->expires, w1->backend, w1->expires, now) ? w1 : w0;
}

static __always_inline int noc6_is(const struct xd_nat_out6_cache *c, const __u64 *kw)
{
	return c->backend && ((c->key[0] ^ kw[0]) | (c->key[1] ^ kw[1]) | (c->key[2] ^ kw[2]) |
			      (c->key[3] ^ kw[3]) | (c->key[4] ^ kw[4])) == 0;
}

/* noc4_probe() for IPv6, hashed on the backend address, the client's low 64
 * bits and the ports word. */
static __always_inline struct xd_nat_out6_cache *noc6_probe(const struct xd_flow_key *k, int *fresh)
{
	const __u64 *kw = (const __u64 *)k;
	__u32 slot = noc_set(kw[0] ^ kw[1] ^ kw[3] ^ kw[4], XD_NAT_OUT_CACHE6);
	struct xd_nat_out6_cache *w0 = bpf_map_lookup_elem(&xd_noc6_v1, &slot), *w1;
	__u64 now = bpf_jiffies64();

	slot++;
	w1 = bpf_map_lookup_elem(&xd_noc6_v1, &slot);
	if (!w0 || !w1)
		return NULL;
	if (noc6_is(w0, kw)) {
		*fresh = now < w0->expires;
		return w0;
	}
	if (noc6_is(w1, kw)) {
		*fresh = now < w1->expires;
		return w1;
	}
	return noc_refill_way(w0->backend, w0->expires, w1->backend, w1->expires, now) ? w1 : w0;
}

/* A slot's rewrite, shared by the families: what the reverse entry said,
 * with the route it holds (the caller checked it is fresh and its egress
 * usable), the L4 checksum difference folded once. */
static __always_inline void noc_fill(__u64 *expires, __u32 *backend, __u32 *ifindex, __be16 *vport,
				     __be16 *csum_l4, __u8 *smac, __u8 *dmac,
				     const struct xd_nat_rev *r, __u64 l4diff)
{
	*expires = bpf_jiffies64() + XD_NAT_OUT_CACHE_JIFFIES;
	*backend = r->backend;
	*ifindex = r->ifindex;
	*vport = r->vport;
	*csum_l4 = nat_diff_fold(l4diff);
	__builtin_memcpy(smac, r->self_mac, ETH_ALEN);
	__builtin_memcpy(dmac, r->peer_mac, ETH_ALEN);
}

/* A slot's rewrite of the TCP/UDP header, both families (`check` bounds
 * checked by the caller). */
static __always_inline void noc_rewrite_l4(struct xd_ports *p, __u16 *check, __u8 proto,
					   __be16 vport, __u16 csum_l4)
{
	nat_l4_add16(check, proto, csum_l4);
	p->source = vport;
}

/* IPv4 reply or ICMP error towards a client (nat_out()): this CPU's reply
 * cache, else the reverse table. */
__noinline int nat_out4(struct xdp_md *ctx, __u32 l2len, __u32 *be_idx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct hdr_cursor nh;
	struct bpf_fib_lookup fib; /* zeroed where bpf_fib_lookup() may need it */
	struct xd_flow4_key k = {};
	struct xd_nat_out4_cache *c;
	struct xd_nat_rev *r;
	struct iphdr *iph;
	struct xd_ports *p;
	int fresh = 0;
	__u64 now;
	int l4;

	if (!be_idx || (l2len != 14 && l2len != 18) || (void *)(eth + 1) > data_end)
		return -1;
	nh.pos = data + l2len;
	l4 = parse_iphdr(&nh, data_end, &iph);
	/* A fragmented reply is the kernel's: its later fragments have no
	 * ports to find the entry with. */
	if (l4 < 0 || (iph->frag_off & bpf_htons(XD_IP_MF | XD_IP_OFFSET)) || iph->ttl <= 1)
		return -1;
	if (l4 == IPPROTO_ICMP) {
		/* An error about a request: it quotes client -> backend:bport. */
		struct xd_icmp_hdr *ich;
		struct iphdr *in4;
		int type = parse_icmphdr(&nh, data_end, &ich);
		__u64 d, dout;
		__be32 vip;
		__u16 old;

		if (type != 3 && type != 11 && type != 12)
			return -1;
		if (parse_iphdr(&nh, data_end, &in4) < 0 || parse_ports(&nh, data_end, &p) < 0)
			return -1;
		if ((in4->protocol != IPPROTO_TCP && in4->protocol != IPPROTO_UDP) ||
		    !nat_port(in4->protocol, p->dest) || in4->saddr != iph->daddr)
			return -1;
		k.saddr = in4->daddr;
		k.daddr = in4->saddr;
		k.sport = p->dest;
		k.dport = p->source;
		k.proto = in4->protocol;
		r = bpf_map_lookup_elem(&xd_nrev4_v1, &k);
		if (!r)
			return -1;
		vip = r->vip[0];
		now = bpf_ktime_get_coarse_ns();
		__builtin_memset(&fib, 0, sizeof(fib));
		fib.family = XD_AF_INET;
		fib.tos = iph->tos;
		fib.l4_protocol = IPPROTO_ICMP;
		fib.tot_len = bpf_ntohs(iph->tot_len);
		fib.ifindex = ctx->ingress_ifindex;
		/* From the backend itself, the error comes from the VIP. */
		fib.ipv4_src = iph->saddr == in4->daddr ? vip : iph->saddr;
		fib.ipv4_dst = iph->daddr;
		if (nat_route(ctx, &fib, r, now) < 0 || !nat_egress_ok(ctx, fib.ifindex))
			return -1;
		*be_idx = r->backend;
		nat_rev_touch(r, now);
		/* Quoted: destination backend:bport -> VIP:vport. */
		old = in4->check;
		in4->check = nat_csum_apply(in4->check, nat_diff4(in4->daddr, vip));
		d = nat_diff4(in4->daddr, vip) + nat_diff2(old, in4->check) +
		    nat_diff2(p->dest, r->vport);
		in4->daddr = vip;
		p->dest = r->vport;
		/* Outer: the source if it was the backend; the TTL. */
		dout = nat_diff2(*(__be16 *)&iph->ttl, *(__be16 *)&iph->ttl - bpf_htons(0x0100));
		if (iph->saddr == k.saddr) {
			dout += nat_diff4(iph->saddr, vip);
			iph->saddr = vip;
		}
		iph->ttl--;
		iph->check = nat_csum_apply(iph->check, dout);
		ich->checksum = nat_csum_apply(ich->checksum, d);
		return nat_send_out(ctx, eth, &fib);
	}
	if (l4 != IPPROTO_TCP && l4 != IPPROTO_UDP)
		return -1;
	if (parse_ports(&nh, data_end, &p) < 0)
		return -1;
	k.saddr = iph->saddr;
	k.daddr = iph->daddr;
	k.sport = p->source;
	k.dport = p->dest;
	k.proto = l4;
	c = noc4_probe(&k, &fresh);
	if (c && fresh) {
		__u16 *l4check = (void *)p + (l4 == IPPROTO_TCP ? 16 : 6);

		if ((void *)(l4check + 1) > data_end || !nat_egress_ok(ctx, c->ifindex))
			return -1;
		*be_idx = c->backend;
		noc_rewrite_l4(p, l4check, l4, c->vport, c->csum_l4);
		iph->ttl--;
		iph->saddr = c->vip;
		iph->check = nat_csum_add16(iph->check, c->csum_l3);
		nat_set_macs(eth, c->smac, c->dmac);
		return nat_send(ctx, c->ifindex);
	}
	r = bpf_map_lookup_elem(&xd_nrev4_v1, &k);
	if (!r)
		return -1;
	now = bpf_ktime_get_coarse_ns();
	if (nat_route_fresh(r, now)) {
		/* A flow's steady replies: no FIB request to fill. */
		fib.ifindex = r->ifindex;
		__builtin_memcpy(fib.smac, r->self_mac, ETH_ALEN);
		__builtin_memcpy(fib.dmac, r->peer_mac, ETH_ALEN);
	} else {
		__builtin_memset(&fib, 0, sizeof(fib));
		fib.family = XD_AF_INET;
		fib.tos = iph->tos;
		fib.l4_protocol = l4;
		fib.sport = r->vport;
		fib.dport = p->dest;
		fib.tot_len = bpf_ntohs(iph->tot_len);
		fib.ifindex = ctx->ingress_ifindex;
		fib.ipv4_src = r->vip[0];
		fib.ipv4_dst = iph->daddr;
		if (nat_route(ctx, &fib, r, now) < 0)
			return -1;
	}
	if (!nat_egress_ok(ctx, fib.ifindex))
		return -1;
	{
		__u16 *l4check = (void *)p + (l4 == IPPROTO_TCP ? 16 : 6);
		__be32 vip = r->vip[0];
		__u64 d = nat_diff4(iph->saddr, vip);
		__u64 d4 = d + nat_diff2(p->source, r->vport);

		if ((void *)(l4check + 1) > data_end)
			return -1;
		*be_idx = r->backend;
		nat_rev_touch(r, now);
		nat_l4_csum(l4check, l4, d4);
		p->source = r->vport;
		/* The TTL word's difference is the same for every TTL above 1. */
		d += nat_diff2(*(__be16 *)&iph->ttl, *(__be16 *)&iph->ttl - bpf_htons(0x0100));
		iph->ttl--;
		iph->saddr = vip;
		iph->check = nat_csum_apply(iph->check, d);
		if (c && nat_route_fresh(r, now)) {
			c->key[0] = ((const __u64 *)&k)[0];
			c->key[1] = ((const __u64 *)&k)[1];
			c->vip = vip;
			c->csum_l3 = nat_diff_fold(d);
			noc_fill(&c->expires, &c->backend, &c->ifindex, &c->vport, &c->csum_l4,
				 c->smac, c->dmac, r, d4);
		}
	}
	return nat_send_out(ctx, eth, &fib);
}

/* IPv6 reply or ICMPv6 error towards a client (nat_out()). */
__noinline int nat_out6(struct xdp_md *ctx, __u32 l2len, __u32 *be_idx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct hdr_cursor nh;
	struct bpf_fib_lookup fib = {};
	struct xd_flow_key k = { .family = XD_FAMILY_V6 };
	struct xd_nat_out6_cache *c;
	struct xd_nat_rev *r;
	struct ipv6hdr *ip6h;
	struct xd_ports *p;
	int fresh = 0;
	__u16 frag = 0;
	__u64 now;
	int l4;

	if (!be_idx || (l2len != 14 && l2len != 18) || (void *)(eth + 1) > data_end)
		return -1;
	nh.pos = data + l2len;
	l4 = parse_ip6hdr(&nh, data_end, &ip6h);
	if (l4 < 0 || ip6h->hop_limit <= 1)
		return -1;
	l4 = parse_ip6_exthdrs(&nh, data_end, l4, &frag);
	if (l4 < 0 || frag)
		return -1;
	fib.family = XD_AF_INET6;
	fib.flowinfo = *(__be32 *)ip6h & bpf_htonl(0x0fffffff);
	fib.tot_len = sizeof(*ip6h) + bpf_ntohs(ip6h->payload_len);
	fib.ifindex = ctx->ingress_ifindex;
	__builtin_memcpy(fib.ipv6_dst, &ip6h->daddr, 16);
	if (l4 == IPPROTO_ICMPV6) {
		struct xd_icmp_hdr *ich;
		struct ipv6hdr *in6;
		int type = parse_icmphdr(&nh, data_end, &ich);
		int from_backend;
		__u64 d;

		/* Errors are types 1..4 (RFC 4443 2.1). */
		if (type < 1 || type > 4)
			return -1;
		if (parse_ip6hdr(&nh, data_end, &in6) < 0 || parse_ports(&nh, data_end, &p) < 0)
			return -1;
		if ((in6->nexthdr != IPPROTO_TCP && in6->nexthdr != IPPROTO_UDP) ||
		    !nat_port(in6->nexthdr, p->dest))
			return -1;
		__builtin_memcpy(k.saddr, &in6->daddr, 16);
		__builtin_memcpy(k.daddr, &in6->saddr, 16);
		k.sport = p->dest;
		k.dport = p->source;
		k.proto = in6->nexthdr;
		if (((k.daddr[0] ^ fib.ipv6_dst[0]) | (k.daddr[1] ^ fib.ipv6_dst[1]) |
		     (k.daddr[2] ^ fib.ipv6_dst[2]) | (k.daddr[3] ^ fib.ipv6_dst[3])) != 0)
			return -1;
		r = bpf_map_lookup_elem(&xd_nrev6_v1, &k);
		if (!r)
			return -1;
		from_backend = ((ip6h->saddr.in6_u.u6_addr32[0] ^ k.saddr[0]) |
				(ip6h->saddr.in6_u.u6_addr32[1] ^ k.saddr[1]) |
				(ip6h->saddr.in6_u.u6_addr32[2] ^ k.saddr[2]) |
				(ip6h->saddr.in6_u.u6_addr32[3] ^ k.saddr[3])) == 0;
		now = bpf_ktime_get_coarse_ns();
		fib.l4_protocol = IPPROTO_ICMPV6;
		__builtin_memcpy(fib.ipv6_src, from_backend ? r->vip : (__be32 *)&ip6h->saddr, 16);
		if (nat_route(ctx, &fib, r, now) < 0 || !nat_egress_ok(ctx, fib.ifindex))
			return -1;
		*be_idx = r->backend;
		nat_rev_touch(r, now);
		d = nat_diff16(k.saddr, r->vip) + nat_diff2(p->dest, r->vport);
		__builtin_memcpy(&in6->daddr, r->vip, 16);
		p->dest = r->vport;
		if (from_backend) {
			/* The pseudo-header's source changes too. */
			d += nat_diff16(k.saddr, r->vip);
			__builtin_memcpy(&ip6h->saddr, r->vip, 16);
		}
		ip6h->hop_limit--;
		ich->checksum = nat_csum_apply(ich->checksum, d);
		return nat_send_out(ctx, eth, &fib);
	}
	if (l4 != IPPROTO_TCP && l4 != IPPROTO_UDP)
		return -1;
	if (parse_ports(&nh, data_end, &p) < 0)
		return -1;
	__builtin_memcpy(k.saddr, &ip6h->saddr, 16);
	__builtin_memcpy(k.daddr, &ip6h->daddr, 16);
	k.sport = p->source;
	k.dport = p->dest;
	k.proto = l4;
	c = noc6_probe(&k, &fresh);
	if (c && fresh) {
		__u16 *l4check = (void *)p + (l4 == IPPROTO_TCP ? 16 : 6);

		if ((void *)(l4check + 1) > data_end || !nat_egress_ok(ctx, c->ifindex))
			return -1;
		*be_idx = c->backend;
		noc_rewrite_l4(p, l4check, l4, c->vport, c->csum_l4);
		__builtin_memcpy(&ip6h->saddr, c->vip, 16);
		ip6h->hop_limit--;
		nat_set_macs(eth, c->smac, c->dmac);
		return nat_send(ctx, c->ifindex);
	}
	r = bpf_map_lookup_elem(&xd_nrev6_v1, &k);
	if (!r)
		return -1;
	now = bpf_ktime_get_coarse_ns();
	fib.l4_protocol = l4;
	fib.sport = r->vport;
	fib.dport = p->dest;
	__builtin_memcpy(fib.ipv6_src, r->vip, 16);
	if (nat_route(ctx, &fib, r, now) < 0 || !nat_egress_ok(ctx, fib.ifindex))
		return -1;
	{
		__u16 *l4check = (void *)p + (l4 == IPPROTO_TCP ? 16 : 6);
		__u64 d = nat_diff16(k.saddr, r->vip) + nat_diff2(p->source, r->vport);

		if ((void *)(l4check + 1) > data_end)
			return -1;
		*be_idx = r->backend;
		nat_rev_touch(r, now);
		nat_l4_csum(l4check, l4, d);
		__builtin_memcpy(&ip6h->saddr, r->vip, 16);
		p->source = r->vport;
		ip6h->hop_limit--;
		if (c && nat_route_fresh(r, now)) {
			__builtin_memcpy(c->key, &k, sizeof(c->key));
			__builtin_memcpy(c->vip, r->vip, sizeof(c->vip));
			noc_fill(&c->expires, &c->backend, &c->ifindex, &c->vport, &c->csum_l4,
				 c->smac, c->dmac, r, d);
		}
	}
	return nat_send_out(ctx, eth, &fib);
}

#endif /* XD_NAT_H */
