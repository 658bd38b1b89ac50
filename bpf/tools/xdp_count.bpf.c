/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdp_count.bpf.c: receive-side packet counter for the benchmarks.
 *
 * Attached to a real server's interface it counts what was delivered and drops
 * it (XDP_DROP: the receiver's stack never becomes the bottleneck). Attached to
 * a bridge port with verdict = XDP_PASS it counts what passed and lets the
 * frame continue; on a veth peer it also gives the peer the NAPI context that
 * native XDP_TX/ndo_xdp_xmit needs on 6.x kernels (veth_xdp_xmit() fails with
 * no XDP program on the peer, and veth_xdp_flush() only kicks a peer that has
 * one).
 *
 * Counting is per-CPU (no atomics on the hot path); user space sums the CPUs.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Verdict returned for every frame: XDP_DROP (default, receiver) or XDP_PASS. */
const volatile __u32 verdict = XDP_DROP;

/* Per-CPU receive counters. 16 bytes. */
struct xc_stats {
	__u64 packets; /* frames seen */
	__u64 bytes;   /* bytes seen (frame length without FCS) */
};
_Static_assert(sizeof(struct xc_stats) == 16, "xc_stats is 16 bytes");

/* count_stats: per-CPU counters. Key: __u32 0 (host order). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xc_stats);
} count_stats SEC(".maps");

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	struct xc_stats *s;
	__u32 key = 0;

	s = bpf_map_lookup_elem(&count_stats, &key);
	if (!s)
		goto out;
	s->packets++;
	s->bytes += (__u64)(ctx->data_end - ctx->data);
out:
	return verdict == XDP_PASS ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
