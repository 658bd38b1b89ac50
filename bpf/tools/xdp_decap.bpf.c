// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_decap.bpf.c: a lab real server's tunnel end, for kernels without the
 * ipip / ip6_tunnel / fou drivers (this machine's): strips the outer header
 * the director's tunnel forwarding adds and passes the untouched inner packet
 * to the stack, which holds the VIP on lo.
 *
 *   [eth][IPv4 proto 4|41][inner]              -> [eth][inner]
 *   [eth][IPv6 next header 4|41][inner]        -> [eth][inner]
 *   [eth][IPv4 UDP dport gue_port][GUE 4][inner] -> [eth][inner]
 *
 * The Ethernet addresses stay, the EtherType becomes the inner family. Only
 * outer headers without options/extension headers are taken (what the
 * director writes); anything else is passed as it came. Production real
 * servers use the kernel's tunnel devices (src/realserver/tunnel.ts).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* GUE UDP port, network order (the director's default 6080); 0 = no GUE. */
const volatile __be16 gue_port = bpf_htons(6080);

SEC("xdp")
int xdp_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ethhdr saved;
	__u32 olen;
	__u8 inner;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);

		if ((void *)(iph + 1) > data_end || iph->ihl != 5)
			return XDP_PASS;
		olen = sizeof(*iph);
		inner = iph->protocol;
		if (inner == IPPROTO_UDP) {
			struct udphdr *uh = (void *)(iph + 1);
			__u8 *gue = (void *)(uh + 1);

			if (!gue_port || (void *)(gue + 4) > data_end || uh->dest != gue_port)
				return XDP_PASS;
			if (gue[0] != 0) /* version 0, no optional fields */
				return XDP_PASS;
			inner = gue[1];
			olen += sizeof(*uh) + 4;
		}
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = (void *)(eth + 1);

		if ((void *)(ip6h + 1) > data_end)
			return XDP_PASS;
		olen = sizeof(*ip6h);
		inner = ip6h->nexthdr;
	} else {
		return XDP_PASS;
	}
	if (inner != IPPROTO_IPIP && inner != IPPROTO_IPV6)
		return XDP_PASS;
	__builtin_memcpy(&saved, eth, sizeof(saved));
	saved.h_proto = bpf_htons(inner == IPPROTO_IPIP ? ETH_P_IP : ETH_P_IPV6);
	if (bpf_xdp_adjust_head(ctx, (int)olen))
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth, &saved, sizeof(saved));
	return XDP_PASS;
}
