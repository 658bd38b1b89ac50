// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp_pass.bpf.c: returns XDP_PASS for every packet.
 *
 * Two uses:
 *  - on the peer of a veth that runs xdirector in native mode: on 6.18 a native
 *    XDP_TX frame is only delivered when the peer has an XDP program (else
 *    veth_xdp_xmit fails, or with GRO alone the frames sit in the peer's
 *    ring and are never delivered; bpf/README.md "Kernel and lab facts");
 *  - the no-op calibration program of the BPF_PROG_TEST_RUN benchmarks.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
