/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * parse.h: the full path's first stage (kernel only): a frame into a flow key.
 *
 * parse_l3() reads the L2 and IP headers (parsing.h's cursor helpers) into
 * struct pkt_desc and passes what is not for a service (another station's
 * unicast, non-IP, a later fragment); parse_l4() then takes the ports of TCP
 * and UDP. An ICMP error is the ICMP stage's (icmp.h), which fills the same
 * key from the packet the error quotes. key4_fill() gives the IPv4 tables
 * their shorter key. Every later stage reads the packet only through this.
 *
 * match_dst_mac and self_mac: const volatile globals of xdirector.bpf.c,
 * which includes this header after defining them.
 */
#ifndef XD_PARSE_H
#define XD_PARSE_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdirector.h"
#include "parsing.h"

/* TCP flags byte (offset 13 of the TCP header). */
#define XD_TCP_FIN 0x01
#define XD_TCP_SYN 0x02
#define XD_TCP_RST 0x04
#define XD_TCP_ACK 0x10
/* The client ends its side: the flow leaves IPVS's ActiveConn. */
#define XD_TCP_CLOSING (XD_TCP_FIN | XD_TCP_RST)

/* L2 header lengths: Ethernet, and Ethernet with one 802.1Q/802.1ad tag. */
#define XD_L2_LEN sizeof(struct ethhdr)
#define XD_L2_VLAN_LEN (sizeof(struct ethhdr) + sizeof(struct xd_vlan_hdr))

/* A packet as the full path's stages see it. Aligned to 8 so that clang
 * copies and compares its keys in 64-bit words. The stages' structs have no
 * xd_ prefix: that marks the layouts shared with user space, which
 * scripts/gen-layouts.ts takes from the object's BTF. */
struct __attribute__((aligned(8))) pkt_desc {
	struct xd_flow_key fk;  /* the flow as its client sends it (for an ICMP
				 * error: the flow of the packet it quotes) */
	struct xd_flow4_key k4; /* fk in the IPv4 tables' 16-byte form */
	__u32 l2len;            /* XD_L2_LEN or XD_L2_VLAN_LEN */
	__u8 tcp_flags;         /* the TCP flags byte; 0 for UDP and ICMP */
	__u8 frag;              /* 1: the first fragment of a fragmented datagram */
	__u8 icmp;              /* 1: an ICMP error, fk names the flow it quotes */
	__u8 pad;
};

/* What the stages decided, counted at the full path's one exit. */
struct verdict {
	__u32 be_idx;   /* the backend forwarded to and counted on; 0: none */
	__u32 reason;   /* enum xd_reason */
	__s32 action;   /* the XDP action */
	__u32 new_flow; /* 1: the packet placed a flow (a new flow on its backend) */
};

/* A stage's result. */
#define XD_NEXT 0    /* not decided: the next stage's */
#define XD_DONE 1    /* decided, nothing to forward: the verdict's action stands */
#define XD_FORWARD 2 /* forward to the backend given, counted under the verdict's reason */

/* IPv4 or not, from the key (the tables are per family). */
static __always_inline int pkt_v4(const struct pkt_desc *p)
{
	return p->fk.family == XD_FAMILY_V4;
}

/* SYN without ACK opens a new connection (maybe reusing a 5-tuple): it always
 * follows the current ring. */
static __always_inline int pkt_syn(const struct pkt_desc *p)
{
	return (p->tcp_flags & (XD_TCP_SYN | XD_TCP_ACK)) == XD_TCP_SYN;
}

/* A unicast frame for another station (match_dst_mac; xdirector.bpf.c says why). */
static __always_inline int other_host(const struct ethhdr *eth)
{
	return match_dst_mac && !(eth->h_dest[0] & 1) &&
	       (eth->h_dest[0] != self_mac[0] || eth->h_dest[1] != self_mac[1] ||
		eth->h_dest[2] != self_mac[2] || eth->h_dest[3] != self_mac[3] ||
		eth->h_dest[4] != self_mac[4] || eth->h_dest[5] != self_mac[5]);
}

/* A later fragment has no ports: it cannot be matched to a service. Its first
 * fragment is dropped if it is for a service (newflow.h), so the kernel
 * discards this one when reassembly times out. */
static __always_inline int later_fragment(__u32 *reason)
{
	*reason = XD_R_PASS_NON_VIP;
	return -1;
}

/*
 * L2 and L3: the addresses, family and L2 length into p, the cursor left at
 * the L4 header, *l4 its protocol. Returns 0, or -1 with *reason saying why
 * the packet is passed (left as it is for a malformed one).
 */
static __always_inline int parse_l3(struct hdr_cursor *nh, void *data_end, struct pkt_desc *p,
				    struct ethhdr **ethp, int *l4, __u32 *reason)
{
	struct ethhdr *eth;
	int l3;

	l3 = parse_ethhdr(nh, data_end, &eth);
	if (l3 < 0)
		return -1;
	*ethp = eth;
	/* From the EtherType rather than cursor arithmetic: the verifier then
	 * knows it is exactly one of the two (encap.h offsets packet pointers
	 * by it). */
	p->l2len = (eth->h_proto == bpf_htons(ETH_P_8021Q) ||
		    eth->h_proto == bpf_htons(ETH_P_8021AD)) ?
			   XD_L2_VLAN_LEN :
			   XD_L2_LEN;
	if (other_host(eth)) {
		*reason = XD_R_PASS_OTHER_HOST;
		return -1;
	}
	if (l3 == ETH_P_IP) {
		struct iphdr *iph;

		*l4 = parse_iphdr(nh, data_end, &iph);
		if (*l4 < 0)
			return -1;
		p->fk.family = XD_FAMILY_V4;
		p->fk.saddr[0] = iph->saddr;
		p->fk.daddr[0] = iph->daddr;
		if (iph->frag_off & bpf_htons(XD_IP_OFFSET))
			return later_fragment(reason);
		p->frag = !!(iph->frag_off & bpf_htons(XD_IP_MF));
	} else if (l3 == ETH_P_IPV6) {
		struct ipv6hdr *ip6h;
		__u16 frag_off;

		*l4 = parse_ip6hdr(nh, data_end, &ip6h);
		if (*l4 < 0)
			return -1;
		p->fk.family = XD_FAMILY_V6;
		__builtin_memcpy(p->fk.saddr, &ip6h->saddr, sizeof(p->fk.saddr));
		__builtin_memcpy(p->fk.daddr, &ip6h->daddr, sizeof(p->fk.daddr));
		*l4 = parse_ip6_exthdrs(nh, data_end, *l4, &frag_off);
		if (*l4 < 0)
			return -1;
		if (frag_off & XD_IP6_OFFSET)
			return later_fragment(reason);
		p->frag = !!(frag_off & XD_IP6_MF);
	} else {
		*reason = XD_R_PASS_NON_IP;
		return -1;
	}
	/* An ICMP first fragment quotes too little to be matched: passed as
	 * any other protocol. */
	p->icmp = !p->frag && *l4 == (pkt_v4(p) ? IPPROTO_ICMP : IPPROTO_ICMPV6);
	return 0;
}

/* L4 of a packet that is not an ICMP error: TCP or UDP ports and flags into
 * p. Returns 0, or -1 with *reason set (left as it is for a malformed one). */
static __always_inline int parse_l4(struct hdr_cursor *nh, void *data_end, int l4,
				    struct pkt_desc *p, __u32 *reason)
{
	struct tcphdr *th;
	struct udphdr *uh;

	if (l4 == IPPROTO_TCP) {
		if (parse_tcphdr(nh, data_end, &th) < 0)
			return -1;
		p->fk.sport = th->source;
		p->fk.dport = th->dest;
		p->tcp_flags = ((__u8 *)th)[13];
	} else if (l4 == IPPROTO_UDP) {
		if (parse_udphdr(nh, data_end, &uh) < 0)
			return -1;
		p->fk.sport = uh->source;
		p->fk.dport = uh->dest;
	} else {
		*reason = XD_R_PASS_NON_VIP;
		return -1;
	}
	p->fk.proto = l4;
	return 0;
}

/* The IPv4 tables' key from the flow key (both families fill it: one store
 * sequence, no branch; the IPv6 tables never read it). */
static __always_inline void key4_fill(struct pkt_desc *p)
{
	p->k4.saddr = p->fk.saddr[0];
	p->k4.daddr = p->fk.daddr[0];
	p->k4.sport = p->fk.sport;
	p->k4.dport = p->fk.dport;
	p->k4.proto = p->fk.proto;
}

#endif /* XD_PARSE_H */
