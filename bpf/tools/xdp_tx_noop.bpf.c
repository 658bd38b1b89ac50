// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_tx_noop.bpf.c: the cost ceiling of a DR forward.
 *
 * Does what xdirector does to a forwarded packet and nothing else: eth.src :=
 * old eth.dst, eth.dst := the MAC in slot 0 of xd_txmac, XDP_TX. No parsing,
 * no lookups beyond one array slot. Benchmarks run it next to xdirector and
 * xdp_pass so that "xdirector minus this" is the price of parsing, the service
 * and flow lookups and the counters.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Destination MAC to write. Key: __u32 0; value: 6 bytes of MAC + 2 bytes of
 * padding (must be zero). */
struct xd_txmac {
	__u8 mac[6];
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xd_txmac);
} xd_txmac SEC(".maps");

SEC("xdp")
int xdp_tx_noop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct xd_txmac *m;
	__u32 zero = 0;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	m = bpf_map_lookup_elem(&xd_txmac, &zero);
	if (!m)
		return XDP_PASS;
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, m->mac, ETH_ALEN);
	return XDP_TX;
}
