/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * parsing.h: header parsing with a cursor (kernel only).
 *
 * After xdp-tools headers/xdp/parsing_helpers.h: every parse_*() checks
 * `ptr + size > data_end` before it reads, advances the cursor past the header
 * and returns the next protocol, or -1 when the header is truncated or invalid.
 * Return values are host order (EtherType, IP protocol number); the header
 * pointers handed back point into the packet (network order fields).
 */
#ifndef XD_PARSING_H
#define XD_PARSING_H

#include <linux/types.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef ETH_P_8021Q
#define ETH_P_8021Q 0x8100
#endif
#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

/* IPv4 frag_off bits (host order after bpf_ntohs). */
#define XD_IP_MF 0x2000
#define XD_IP_OFFSET 0x1fff
/* IPv6 fragment header frag_off (host order): offset in bits 15..3, M in bit 0. */
#define XD_IP6_OFFSET 0xfff8
#define XD_IP6_MF 0x0001

/*
 * Longest IPv6 extension header chain walked before the upper-layer header.
 * RFC 8200 4.1 recommends at most one of each header (Destination Options
 * twice): Hop-by-Hop, Destination, Routing, Fragment, AH, Destination is six;
 * eight leaves room for a repeated one. A longer chain is passed untouched.
 */
#ifndef XD_IPV6_EXT_MAX
#define XD_IPV6_EXT_MAX 8
#endif

struct hdr_cursor {
	void *pos;
};

struct xd_vlan_hdr {
	__be16 tci;         /* PCP, DEI, VLAN id; network order */
	__be16 encap_proto; /* EtherType of what follows; network order */
};

/* IPv6 fragment header (RFC 8200 4.5); not in every uapi linux/ipv6.h. */
struct xd_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset << 3 | M; network order */
	__be32 identification;
};

/*
 * Ethernet plus at most one 802.1Q (or 802.1ad) tag. Returns the EtherType of
 * the payload, host order; a second tag is returned as-is (0x8100/0x88a8), so
 * the caller treats QinQ as non-IP and passes it.
 */
static __always_inline int parse_ethhdr(struct hdr_cursor *nh, void *data_end,
					struct ethhdr **ethhdr)
{
	struct ethhdr *eth = nh->pos;
	struct xd_vlan_hdr *vlh;
	__u16 h_proto;

	if ((void *)(eth + 1) > data_end)
		return -1;
	nh->pos = eth + 1;
	*ethhdr = eth;
	h_proto = eth->h_proto;

	if (h_proto == bpf_htons(ETH_P_8021Q) || h_proto == bpf_htons(ETH_P_8021AD)) {
		vlh = nh->pos;
		if ((void *)(vlh + 1) > data_end)
			return -1;
		nh->pos = vlh + 1;
		h_proto = vlh->encap_proto;
	}
	return bpf_ntohs(h_proto);
}

/*
 * IPv4 header including options (IHL honoured). Invalid version or IHL < 5,
 * or options running past the packet, give -1. Returns the IP protocol.
 */
static __always_inline int parse_iphdr(struct hdr_cursor *nh, void *data_end, struct iphdr **iphdr)
{
	struct iphdr *iph = nh->pos;
	__u32 hdrsize;

	if ((void *)(iph + 1) > data_end)
		return -1;
	if (iph->version != 4 || iph->ihl < 5)
		return -1;
	hdrsize = iph->ihl * 4; /* 20..60: ihl is 4 bits */
	if (nh->pos + hdrsize > data_end)
		return -1;
	nh->pos += hdrsize;
	*iphdr = iph;
	return iph->protocol;
}

/* Fixed IPv6 header only (extension headers are the caller's business).
 * Returns nexthdr. */
static __always_inline int parse_ip6hdr(struct hdr_cursor *nh, void *data_end,
					struct ipv6hdr **ip6hdr)
{
	struct ipv6hdr *ip6h = nh->pos;

	if ((void *)(ip6h + 1) > data_end)
		return -1;
	if (ip6h->version != 6)
		return -1;
	nh->pos = ip6h + 1;
	*ip6hdr = ip6h;
	return ip6h->nexthdr;
}

/* IPv6 fragment header. Returns the next header; *frag_off gets offset|M,
 * host order. */
static __always_inline int parse_frag6hdr(struct hdr_cursor *nh, void *data_end, __u16 *frag_off)
{
	struct xd_frag_hdr *fh = nh->pos;

	if ((void *)(fh + 1) > data_end)
		return -1;
	nh->pos = fh + 1;
	*frag_off = bpf_ntohs(fh->frag_off);
	return fh->nexthdr;
}

/*
 * The IPv6 extension header chain after the fixed header, walked the way the
 * kernel's ipv6_skip_exthdr() (net/ipv6/exthdrs_core.c) does it: Hop-by-Hop,
 * Routing and Destination Options are (hdrlen + 1) * 8 bytes, AH is
 * (hdrlen + 2) * 4 bytes, a Fragment header is 8 bytes. At most
 * XD_IPV6_EXT_MAX headers; a longer chain gives -1.
 *
 * A Fragment header with offset 0 and M = 0 is an atomic fragment (RFC 8021,
 * RFC 6946): the whole packet, walked through like any other extension header.
 * A first fragment (offset 0, M = 1) is walked through too, so its ports are
 * known. A later fragment (offset != 0) stops the walk: what follows is not a
 * header. *frag_off gets the Fragment header's offset|M (host order), 0 when
 * there is none or it is atomic.
 *
 * Returns the upper-layer protocol (host order; IPPROTO_NONE and ESP come back
 * as they are, for the caller to pass), or -1 when the chain is truncated or
 * too long.
 */
static __always_inline int parse_ip6_exthdrs(struct hdr_cursor *nh, void *data_end, int nexthdr,
					     __u16 *frag_off)
{
	struct ipv6_opt_hdr *oh;
	__u16 fo;
	int i;

	*frag_off = 0;
	for (i = 0; i < XD_IPV6_EXT_MAX; i++) {
		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			oh = nh->pos;
			if ((void *)(oh + 1) > data_end)
				return -1;
			nexthdr = oh->nexthdr;
			nh->pos += ((__u32)oh->hdrlen + 1) * 8; /* 8..2048 */
			break;
		case IPPROTO_AH:
			oh = nh->pos;
			if ((void *)(oh + 1) > data_end)
				return -1;
			nexthdr = oh->nexthdr;
			nh->pos += ((__u32)oh->hdrlen + 2) * 4; /* 8..1028 */
			break;
		case IPPROTO_FRAGMENT:
			nexthdr = parse_frag6hdr(nh, data_end, &fo);
			if (nexthdr < 0)
				return -1;
			if (fo & (XD_IP6_OFFSET | XD_IP6_MF))
				*frag_off = fo;
			if (fo & XD_IP6_OFFSET)
				return nexthdr;
			break;
		default:
			return nexthdr;
		}
	}
	return -1;
}

/* Fixed 20-byte TCP header (ports and flags; options are not read).
 * Returns 0. */
static __always_inline int parse_tcphdr(struct hdr_cursor *nh, void *data_end,
					struct tcphdr **tcphdr)
{
	struct tcphdr *th = nh->pos;

	if ((void *)(th + 1) > data_end)
		return -1;
	if (th->doff < 5)
		return -1;
	nh->pos = th + 1;
	*tcphdr = th;
	return 0;
}

/* 8-byte UDP header. Returns 0. */
static __always_inline int parse_udphdr(struct hdr_cursor *nh, void *data_end,
					struct udphdr **udphdr)
{
	struct udphdr *uh = nh->pos;

	if ((void *)(uh + 1) > data_end)
		return -1;
	nh->pos = uh + 1;
	*udphdr = uh;
	return 0;
}

/* The two ports at the start of a TCP or UDP header: enough for a flow key,
 * and all that an ICMP error is sure to quote (RFC 792: IP header + 8 bytes).
 * Returns 0. */
struct xd_ports {
	__be16 source; /* network order */
	__be16 dest;   /* network order */
};

static __always_inline int parse_ports(struct hdr_cursor *nh, void *data_end,
				       struct xd_ports **ports)
{
	struct xd_ports *p = nh->pos;

	if ((void *)(p + 1) > data_end)
		return -1;
	nh->pos = p + 1;
	*ports = p;
	return 0;
}

/* ICMP and ICMPv6 share their first 8 bytes' shape: type, code, checksum and
 * 4 bytes (unused + next-hop MTU for "fragmentation needed", the MTU for
 * "packet too big"). linux/icmp.h is not used: it drags in libc headers. */
struct xd_icmp_hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum; /* network order */
	__be32 rest;      /* network order */
};

/* Returns the ICMP type; the quoted packet of an error follows. */
static __always_inline int parse_icmphdr(struct hdr_cursor *nh, void *data_end,
					 struct xd_icmp_hdr **icmphdr)
{
	struct xd_icmp_hdr *ih = nh->pos;

	if ((void *)(ih + 1) > data_end)
		return -1;
	nh->pos = ih + 1;
	*icmphdr = ih;
	return ih->type;
}

#endif /* XD_PARSING_H */
