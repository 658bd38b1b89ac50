/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * encap.h: tunnel forwarding (kernel only): outer headers, their checksums,
 * GUE, and the ICMP "too big" answer when the encapsulated packet would not
 * fit the path MTU.
 *
 * A tunnel backend (XD_BE_F_TUNNEL) gets the client's IP packet unchanged
 * inside an outer header, so it can sit behind routers (LVS "TUN"):
 *
 *   IPIP  [L2][outer IPv4 | IPv6][inner IPv4 | IPv6 ...]
 *         outer protocol / next header 4 (IPv4 inside) or 41 (IPv6 inside):
 *         4in4 (ipip), 6in4 (sit), 4in6 and 6in6 (ip6tnl)
 *   GUE   [L2][outer IPv4][UDP][GUE 4 bytes][inner IPv4 | IPv6 ...]
 *         GUE version 0 with no optional fields, proto_ctype = 4 or 41, the
 *         header Linux's fou (ip fou add port P gue) and IPVS's GUE tunnel
 *         type write and read. The UDP checksum is 0, which RFC 768 allows
 *         over IPv4 only: GUE has an IPv4 underlay (the config says so).
 *
 * The L2 header (Ethernet and at most one VLAN tag) is kept, its EtherType
 * set to the outer family, the source MAC set to the address the frame was
 * sent to (this interface) and the destination to the next hop's MAC (the
 * real server on-link, or the router towards it: the control plane resolves
 * it from the routing and neighbour tables).
 *
 * Entropy for the fabric's ECMP: the GUE source port and the outer IPv6 flow
 * label carry a hash of the inner flow (client address, VIP, ports), so one
 * flow stays on one path and many flows spread.
 *
 * Byte order: xd_tunnel addresses and gue_port are network order, mtu host
 * order (include/xdirector.h).
 */
#ifndef XD_ENCAP_H
#define XD_ENCAP_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdirector.h"
#include "parsing.h"
#include "hash.h"
#include "maps.h"
#include "rate.h"
#include "prof.h"

/* GUE header, version 0 without optional fields (4 bytes). */
struct xd_guehdr {
	__u8 ver_c_hlen;  /* version (2 bits) = 0, C (1) = 0, hlen (5) = 0 */
	__u8 proto_ctype; /* inner IP protocol: 4 (IPv4) or 41 (IPv6) */
	__be16 flags;     /* 0: no optional fields; network order */
};

#define XD_IPPROTO_IPIP 4
#define XD_IPPROTO_IPV6 41
#define XD_IP_DF 0x4000            /* host order, IPv4 frag_off */
#define XD_TUN_TTL 64              /* outer TTL / hop limit */
#define XD_TUN_HASH_SEED 0x74756eu /* "tun" */
#define XD_GUE_SPORT_MIN 49152     /* GUE source ports: the IANA dynamic range 49152..65535 */
/*
 * Bytes of the offending packet quoted in the ICMP "too big" answer. Fixed
 * sizes keep the checksum one bpf_csum_diff call (multiples of 4, at most 512
 * bytes) and the verifier's bounds constant. Enough for the client's kernel:
 * IPv4 needs the IP header + 8 bytes (RFC 792), TCP its ports and sequence
 * number; IPv6 the same after a 40-byte header (RFC 4443: "as much as fits").
 * The packet is bigger than the path MTU, so both are always there.
 */
#define XD_ICMP4_QUOTE 64
#define XD_ICMP6_QUOTE 128

/* Hash of the inner flow for GUE source port / IPv6 flow label: client and
 * VIP addresses (IPv6 folded by XOR of their words) and both ports, host
 * order words. Taken from the XOR of all the address words and the ports
 * word (source port << 16 | destination port, the L4 header's first word read
 * in host order), so the fast path hashes the frame in place and the full
 * path its flow key alike. */
static __always_inline __u32 xd_tunnel_hash_of(__be32 addrs, __u32 ports)
{
	return xd_jhash_2words(bpf_ntohl(addrs), ports, XD_TUN_HASH_SEED);
}

static __always_inline __u32 xd_tunnel_hash(const struct xd_flow_key *fk)
{
	return xd_tunnel_hash_of(fk->saddr[0] ^ fk->saddr[1] ^ fk->saddr[2] ^ fk->saddr[3] ^
					 fk->daddr[0] ^ fk->daddr[1] ^ fk->daddr[2] ^ fk->daddr[3],
				 ((__u32)bpf_ntohs(fk->sport) << 16) | bpf_ntohs(fk->dport));
}

/* The ones' complement sum of an IPv4 address as two 16-bit words. */
static __always_inline __u32 xd_csum_addr(__be32 addr)
{
	__u32 a = bpf_ntohl(addr);

	return (a >> 16) + (a & 0xffff);
}

/* 16-bit one's complement of a 32/64-bit sum (RFC 1071 fold). */
static __always_inline __u16 xd_csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Fold a sum of fewer than 2^16 16-bit words to 16 bits (not complemented). */
static __always_inline __u16 xd_csum_fold_small(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* IPv4 header checksum of a 20-byte header whose check field is 0. */
static __always_inline __u16 xd_ip4_csum(const struct iphdr *iph)
{
	const __u16 *w = (const __u16 *)iph;
	__u64 sum = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	return xd_csum_fold(sum);
}

/* Length in bytes of the IP packet at `ip` (IPv4 tot_len, IPv6 40 +
 * payload_len), or 0 if its fixed header is not all there. */
static __always_inline __u32 xd_ip_len(void *ip, void *data_end, __u8 family)
{
	if (family == XD_FAMILY_V4) {
		struct iphdr *iph = ip;

		if ((void *)(iph + 1) > data_end)
			return 0;
		return bpf_ntohs(iph->tot_len);
	} else {
		struct ipv6hdr *ip6h = ip;

		if ((void *)(ip6h + 1) > data_end)
			return 0;
		return sizeof(*ip6h) + bpf_ntohs(ip6h->payload_len);
	}
}

/* Copy the L2 header (14 bytes, or 18 with a VLAN tag) from `from` to `to`
 * with the MACs swapped as given. `to` lies before `from` by at least 20
 * bytes (an IPv4 header), so the two never overlap. */
static __always_inline int xd_l2_move(void *data, void *data_end, __u32 from, __u32 l2len,
				      const __u8 *dst_mac, __be16 ethertype)
{
	struct ethhdr *neth = data;
	struct ethhdr *oeth = data + from;

	if ((void *)(oeth + 1) > data_end || (void *)(neth + 1) > data_end)
		return -1;
	__builtin_memcpy(neth->h_source, oeth->h_dest, ETH_ALEN);
	__builtin_memcpy(neth->h_dest, dst_mac, ETH_ALEN);
	if (l2len == sizeof(struct ethhdr) + sizeof(struct xd_vlan_hdr)) {
		struct xd_vlan_hdr *ov = (void *)(oeth + 1), *nv = (void *)(neth + 1);

		if ((void *)(ov + 1) > data_end || (void *)(nv + 1) > data_end)
			return -1;
		neth->h_proto = oeth->h_proto; /* the TPID */
		nv->tci = ov->tci;
		nv->encap_proto = ethertype;
	} else {
		neth->h_proto = ethertype;
	}
	return 0;
}

/*
 * Answer a packet that is too big to encapsulate: ICMP "fragmentation needed"
 * (type 3 code 4, RFC 1191) or ICMPv6 "packet too big" (type 2, RFC 8201)
 * back to the client, from the VIP it wrote to (as Katran does: the client's
 * kernel matches the quoted packet to its socket, not the sender), carrying
 * the MTU the inner packet has inside the tunnel. The frame is cut to L2 +
 * quote, the new IP + ICMP headers are put in front of the quote, and it goes
 * back out of the receiving interface to whoever sent it (XDP_TX).
 * Returns the XDP action.
 */
static __always_inline int xd_send_too_big(struct xdp_md *ctx, __u32 l2len, __u8 family,
					   __u32 inner_mtu)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 quote = family == XD_FAMILY_V4 ? XD_ICMP4_QUOTE : XD_ICMP6_QUOTE;
	__u32 hdrs = (family == XD_FAMILY_V4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr)) +
		     sizeof(struct xd_icmp_hdr);
	struct xd_icmp_hdr *ich;
	__s64 sum;

	if (l2len != sizeof(struct ethhdr) &&
	    l2len != sizeof(struct ethhdr) + sizeof(struct xd_vlan_hdr))
		return XDP_ABORTED;
	{
		/* The barrier keeps the subtraction 64-bit: clang would narrow
		 * it to 32 bits, which the verifier refuses on packet pointers. */
		__u64 len = (__u64)data_end - (__u64)data;
		__s64 delta;

		asm volatile("" : "+r"(len));
		delta = (__s64)(l2len + quote) - (__s64)len;

		if (bpf_xdp_adjust_tail(ctx, (int)delta))
			return XDP_ABORTED;
	}
	if (bpf_xdp_adjust_head(ctx, -(int)hdrs))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + hdrs + l2len + quote > data_end)
		return XDP_ABORTED;
	{
		/* Back to the client: destination = the frame's source. */
		struct ethhdr *oeth = data + hdrs;
		__u8 back[ETH_ALEN];

		if ((void *)(oeth + 1) > data_end)
			return XDP_ABORTED;
		__builtin_memcpy(back, oeth->h_source, ETH_ALEN);
		if (xd_l2_move(data, data_end, hdrs, l2len, back,
			       family == XD_FAMILY_V4 ? bpf_htons(ETH_P_IP) :
							bpf_htons(ETH_P_IPV6)))
			return XDP_ABORTED;
	}
	if (family == XD_FAMILY_V4) {
		struct iphdr *iph = data + l2len;
		struct iphdr *orig;

		ich = (void *)(iph + 1);
		orig = (void *)(ich + 1);
		if ((void *)orig + XD_ICMP4_QUOTE > data_end)
			return XDP_ABORTED;
		iph->version = 4;
		iph->ihl = 5;
		iph->tos = 0;
		iph->tot_len = bpf_htons(sizeof(*iph) + sizeof(*ich) + XD_ICMP4_QUOTE);
		iph->id = 0;
		iph->frag_off = 0;
		iph->ttl = XD_TUN_TTL;
		iph->protocol = IPPROTO_ICMP;
		iph->check = 0;
		iph->saddr = orig->daddr;
		iph->daddr = orig->saddr;
		iph->check = xd_ip4_csum(iph);
		ich->type = 3; /* ICMP_DEST_UNREACH */
		ich->code = 4; /* ICMP_FRAG_NEEDED */
		ich->checksum = 0;
		ich->rest = bpf_htonl(inner_mtu & 0xffff); /* unused (16 bits), next-hop MTU */
		sum = bpf_csum_diff(NULL, 0, (__be32 *)ich, sizeof(*ich) + XD_ICMP4_QUOTE, 0);
		if (sum < 0)
			return XDP_ABORTED;
		ich->checksum = xd_csum_fold((__u64)sum);
	} else {
		struct ipv6hdr *ip6h = data + l2len;
		struct ipv6hdr *orig;
		__u32 plen = sizeof(*ich) + XD_ICMP6_QUOTE;

		ich = (void *)(ip6h + 1);
		orig = (void *)(ich + 1);
		if ((void *)orig + XD_ICMP6_QUOTE > data_end)
			return XDP_ABORTED;
		*(__be32 *)ip6h = bpf_htonl(0x60000000); /* version 6, class 0, label 0 */
		ip6h->payload_len = bpf_htons(plen);
		ip6h->nexthdr = IPPROTO_ICMPV6;
		ip6h->hop_limit = XD_TUN_TTL;
		ip6h->saddr = orig->daddr;
		ip6h->daddr = orig->saddr;
		ich->type = 2; /* ICMPV6_PKT_TOOBIG */
		ich->code = 0;
		ich->checksum = 0;
		ich->rest = bpf_htonl(inner_mtu);
		/* RFC 8200 8.1 pseudo-header: addresses, length, next header. */
		sum = bpf_csum_diff(NULL, 0, (__be32 *)&ip6h->saddr, 32, 0);
		if (sum < 0)
			return XDP_ABORTED;
		sum = bpf_csum_diff(NULL, 0, (__be32 *)ich, plen, (__wsum)sum);
		if (sum < 0)
			return XDP_ABORTED;
		ich->checksum = xd_csum_fold((__u64)(__u32)sum + bpf_htonl(plen) +
					     bpf_htonl(IPPROTO_ICMPV6));
	}
	return XDP_TX;
}

/*
 * A packet too big for the tunnel: answered (XD_R_TX_TOO_BIG) within the
 * global too_big_rate, else dropped unanswered (XD_R_DROP_TOO_BIG_LIMITED),
 * as the kernel limits its own ICMP errors (icmp_msgs_per_sec): a flood of
 * full-size packets must not turn the director into a reflector at line rate.
 * too_big_rate: a const volatile global of xdirector.bpf.c, which includes
 * this header after defining it.
 */
static __always_inline int xd_too_big(struct xdp_md *ctx, __u32 l2len, __u8 family, __u32 inner_mtu,
				      __u32 *reason)
{
	if (!xd_rate_admit(XD_RATE_TOO_BIG, too_big_rate, bpf_ktime_get_coarse_ns())) {
		*reason = XD_R_DROP_TOO_BIG_LIMITED;
		return XDP_DROP;
	}
	*reason = XD_R_TX_TOO_BIG;
	return xd_send_too_big(ctx, l2len, family, inner_mtu);
}

/*
 * Encapsulate the IP packet that starts l2len bytes into the frame for tunnel
 * `t` and send it to the next hop `mac`. The inner packet is not touched; its
 * family is its IP version (the parser checked it). hash: xd_tunnel_hash() of
 * its flow (the GUE source port, the outer IPv6 flow label).
 * *reason is changed only when the packet is answered (XD_R_TX_TOO_BIG) or
 * dropped (XD_R_DROP_TOO_BIG; XD_R_DROP_TOO_BIG_LIMITED when the answers are
 * over too_big_rate a second, all CPUs together) instead. Returns the XDP
 * action; on XDP_TX the caller may still redirect.
 *
 * The outer headers are written a word at a time from values in registers,
 * and the outer IPv4 checksum is summed from those values rather than read
 * back from the frame: per-byte and per-field stores, then 16-bit loads of
 * what was just stored, cost the encapsulated packet most of its time.
 */
static __always_inline int xd_encap(struct xdp_md *ctx, const struct xd_tunnel *t, const __u8 *mac,
				    __u32 l2len, __u32 hash, __u32 *reason)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 ilen, olen, ohlen;
	__u8 inner_family, ipproto, tos, outer_proto;
	__u8 *ip;
	int gue = t->encap == XD_ENCAP_GUE;
	int outer4 = t->family == XD_FAMILY_V4;

	if (l2len != sizeof(struct ethhdr) &&
	    l2len != sizeof(struct ethhdr) + sizeof(struct xd_vlan_hdr))
		return XDP_ABORTED;
	ohlen = outer4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	olen = ohlen + (gue ? sizeof(struct udphdr) + sizeof(struct xd_guehdr) : 0);

	ip = data + l2len;
	if ((void *)(ip + 1) > data_end)
		return XDP_ABORTED;
	inner_family = (*ip >> 4) == 4 ? XD_FAMILY_V4 : XD_FAMILY_V6;
	ipproto = inner_family == XD_FAMILY_V4 ? XD_IPPROTO_IPIP : XD_IPPROTO_IPV6;
	outer_proto = gue ? IPPROTO_UDP : ipproto;
	ilen = xd_ip_len(data + l2len, data_end, inner_family);
	if (ilen == 0 || data + l2len + ilen > data_end)
		return XDP_ABORTED;
	if (inner_family == XD_FAMILY_V4) {
		struct iphdr *in4 = data + l2len;

		if ((void *)(in4 + 1) > data_end)
			return XDP_ABORTED;
		tos = in4->tos;
		if (t->mtu && ilen + olen > t->mtu) {
			if (!(in4->frag_off & bpf_htons(XD_IP_DF))) {
				/* May be fragmented, but not by a director: the
				 * fragments could not be hashed (no ports). */
				*reason = XD_R_DROP_TOO_BIG;
				return XDP_DROP;
			}
			return xd_too_big(ctx, l2len, inner_family, t->mtu - olen, reason);
		}
	} else {
		struct ipv6hdr *in6 = data + l2len;

		if ((void *)(in6 + 1) > data_end)
			return XDP_ABORTED;
		tos = (bpf_ntohs(*(__be16 *)in6) >> 4) & 0xff;
		if (t->mtu && ilen + olen > t->mtu) {
			/* IPv6 routers never fragment (RFC 8200 5). */
			return xd_too_big(ctx, l2len, inner_family, t->mtu - olen, reason);
		}
	}
	XD_PROF_AT(XD_PROF_TUN_CHECK, XDP_TX);

	if (bpf_xdp_adjust_head(ctx, -(int)olen))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (xd_l2_move(data, data_end, olen, l2len, mac,
		       outer4 ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6)))
		return XDP_ABORTED;

	if (outer4) {
		__u32 *oh = data + l2len;
		__u32 tot_len = olen + ilen;
		/* version 4, IHL 5, DSCP and ECN copied out (RFC 6040 normal
		 * mode); id 0 and DF (path MTU discovery on the underlay); TTL,
		 * protocol: the words of the header in host order, summed for
		 * its checksum with the addresses. */
		__u32 w0 = (0x45U << 24) | ((__u32)tos << 16) | tot_len;
		__u32 w1 = XD_IP_DF;
		__u32 w2 = ((__u32)XD_TUN_TTL << 24) | ((__u32)outer_proto << 16);
		__u32 sum = (w0 >> 16) + (w0 & 0xffff) + w1 + (w2 >> 16) +
			    xd_csum_addr(t->saddr[0]) + xd_csum_addr(t->daddr[0]);

		if ((void *)(oh + 5) > data_end)
			return XDP_ABORTED;
		XD_PROF_AT(XD_PROF_TUN_ADJUST, XDP_TX);
		w2 |= (__u16)~xd_csum_fold_small(sum);
		oh[0] = bpf_htonl(w0);
		oh[1] = bpf_htonl(w1);
		oh[2] = bpf_htonl(w2);
		oh[3] = t->saddr[0];
		oh[4] = t->daddr[0];
	} else {
		__u32 *oh6 = data + l2len;

		if ((void *)(oh6 + 10) > data_end)
			return XDP_ABORTED;
		XD_PROF_AT(XD_PROF_TUN_ADJUST, XDP_TX);
		/* version 6, traffic class from the inner packet, flow label
		 * from the inner flow (RFC 6438); payload length, next header,
		 * hop limit. */
		oh6[0] = bpf_htonl(0x60000000 | ((__u32)tos << 20) | (hash & 0xfffff));
		oh6[1] = bpf_htonl(((olen - ohlen + ilen) << 16) | ((__u32)outer_proto << 8) |
				   XD_TUN_TTL);
		__builtin_memcpy(oh6 + 2, t->saddr, 16);
		__builtin_memcpy(oh6 + 6, t->daddr, 16);
	}
	XD_PROF_AT(XD_PROF_TUN_OUTER, XDP_TX);
	if (gue) {
		__u32 *uh = data + l2len + ohlen;

		if ((void *)(uh + 3) > data_end)
			return XDP_ABORTED;
		/* UDP: source port from the flow hash, the tunnel's destination
		 * port, length, checksum 0 (none: IPv4 underlay only, RFC 768);
		 * then GUE version 0, no optional fields, the inner protocol. */
		uh[0] = bpf_htonl(((__u32)(XD_GUE_SPORT_MIN | (hash & 0x3fff)) << 16) |
				  bpf_ntohs(t->gue_port));
		uh[1] = bpf_htonl((sizeof(struct udphdr) + sizeof(struct xd_guehdr) + ilen) << 16);
		uh[2] = bpf_htonl((__u32)ipproto << 16);
	}
	return XDP_TX;
}

#endif /* XD_ENCAP_H */
