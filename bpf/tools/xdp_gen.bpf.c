/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdp_gen.bpf.c: packet generator program for BPF_PROG_RUN live frames.
 *
 * The kernel here has no pktgen (CONFIG_NET_PKTGEN unset) and Debian's
 * xdp-trafficgen cannot load its tracing programs under lockdown, so the
 * benchmark drives traffic the way xdp-trafficgen does underneath:
 * BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES runs this program `repeat`
 * times and transmits every XDP_TX verdict out of ctx.ingress_ifindex through
 * ndo_xdp_xmit (net/bpf/test_run.c, xdp_test_run_batch()).
 *
 * Why every run restores the whole frame: live-frames pages come from a
 * page_pool and are recycled WITHOUT re-initialisation (only the first use of
 * a page copies data_in), and downstream programs and the kernel rewrite the
 * frame in place (director MAC rewrite, TTL decrement on forwarding). A
 * generator that only patched the port would, after the first recycle, send
 * frames that the director no longer recognises.
 *
 * Flows: packet n belongs to flow i = n % nflows. The L4 source port is
 * base_port + i % nports and, when saddr_off is set, the low 16 bits of the
 * source address (the 16-bit word at saddr_off, network order) are the
 * template's plus i / nports, so nflows may exceed the 65,535 ports: every i
 * below nflows is a distinct (source address, source port) pair as long as
 * nflows / nports stays below 65,536. The L4 checksum (its pseudo-header
 * holds the source address) and, when ipcsum_off is set, the IPv4 header
 * checksum are fixed incrementally (RFC 1624), so the receiver sees valid
 * checksums and the director sees nflows flows.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Largest frame the template restores: an IPv6/TCP header (74 bytes) padded to
 * a multiple of 8 fits with room; longer frames keep their payload as is. */
#ifndef XG_TMPL_MAX
#define XG_TMPL_MAX 128
#endif
#define XG_CHUNK 8

/* Load-time settings (user space writes .rodata before load). */
const volatile __u32 tmpl_chunks = 8;   /* 8-byte chunks restored per run (frame length / 8) */
const volatile __u32 sport_off = 34;    /* byte offset of the L4 source port (Eth 14 + IPv4 20) */
const volatile __u32 csum_off = 50;     /* byte offset of the L4 checksum (TCP: +16, UDP: +6) */
const volatile __u32 nflows = 4096;     /* distinct flows cycled through (>= 1) */
const volatile __u32 nports = 4096;     /* source ports per source address (1..nflows) */
const volatile __u32 base_port = 10000; /* first source port, host order */
const volatile __u32 saddr_off =
	0; /* byte offset of the varied source-address word; 0: address fixed */
const volatile __u32 ipcsum_off = 0; /* byte offset of the IPv4 header checksum; 0: none (IPv6) */
const volatile __u32 udp_nocsum = 0; /* 1: UDP with checksum 0 (RFC 768 "none"), leave it 0 */

/* The frame every run starts from. Value: raw frame bytes as on the wire. */
struct xg_tmpl {
	__u8 b[XG_TMPL_MAX];
};
_Static_assert(sizeof(struct xg_tmpl) == XG_TMPL_MAX, "xg_tmpl has no padding");

/* gen_tmpl: one template frame. Key: __u32 0 (host order). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xg_tmpl);
} gen_tmpl SEC(".maps");

/* Generator state and counters. 16 bytes. */
struct xg_state {
	__u64 seq;     /* packets generated so far: picks the next flow */
	__u64 aborted; /* runs that could not build a frame (short frame, missing template) */
};
_Static_assert(sizeof(struct xg_state) == 16, "xg_state is 16 bytes");

/* gen_state: the generator's state, one for all CPUs. Key: __u32 0 (host
 * order). Not per CPU: a long live-frames run re-enables migration around
 * cond_resched() (bpf_test_timer_continue), so one run can move to another
 * CPU half way; a per-CPU sequence would then repeat some flows and skip
 * others. A plain increment is safe: one thread (the generator process)
 * runs this object's test runs, one at a time. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xg_state);
} gen_state SEC(".maps");

/* Fold a 32-bit one's complement sum to 16 bits. */
static __always_inline __u16 csum_fold32(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'); all values in network order. */
static __always_inline __u16 csum_replace16(__u16 check, __u16 old, __u16 new)
{
	__u32 s = (__u16)~check;

	s += (__u16)~old;
	s += new;
	return (__u16)~csum_fold32(s);
}

SEC("xdp")
int xdp_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct xg_state *st;
	struct xg_tmpl *t;
	__u32 key = 0;
	__u32 i;
	int verdict = XDP_TX;

	st = bpf_map_lookup_elem(&gen_state, &key);
	if (!st)
		return XDP_ABORTED;
	t = bpf_map_lookup_elem(&gen_tmpl, &key);
	if (!t) {
		verdict = XDP_ABORTED;
		goto out;
	}

	/* Restore the frame: fixed 8-byte chunks so the copy is unrolled. */
#pragma unroll
	for (i = 0; i < XG_TMPL_MAX / XG_CHUNK; i++) {
		if (i >= tmpl_chunks)
			break;
		if (data + (i + 1) * XG_CHUNK > data_end) {
			verdict = XDP_ABORTED;
			goto out;
		}
		*(__u64 *)(data + i * XG_CHUNK) = *(__u64 *)&t->b[i * XG_CHUNK];
	}

	/* Vary the flow: source port, source-address word and the checksums
	 * over them (all network order). */
	{
		__u16 *sport = data + (sport_off & 0xff);
		__u16 *check = data + (csum_off & 0xff);
		__u32 flow = (__u32)(st->seq % nflows);
		__u16 oldp, newp;
		int l4csum;

		if ((void *)(sport + 1) > data_end || (void *)(check + 1) > data_end) {
			verdict = XDP_ABORTED;
			goto out;
		}
		l4csum = !(udp_nocsum && *check == 0);
		oldp = *sport;
		newp = bpf_htons((__u16)(base_port + flow % nports));
		*sport = newp;
		if (l4csum)
			*check = csum_replace16(*check, oldp, newp);
		if (saddr_off) {
			__u16 *sa = data + (saddr_off & 0xff);
			__u16 olda, newa;

			if ((void *)(sa + 1) > data_end) {
				verdict = XDP_ABORTED;
				goto out;
			}
			olda = *sa;
			newa = bpf_htons((__u16)(bpf_ntohs(olda) + flow / nports));
			*sa = newa;
			if (l4csum)
				*check = csum_replace16(*check, olda, newa);
			if (ipcsum_off) {
				__u16 *ic = data + (ipcsum_off & 0xff);

				if ((void *)(ic + 1) > data_end) {
					verdict = XDP_ABORTED;
					goto out;
				}
				*ic = csum_replace16(*ic, olda, newa);
			}
		}
	}
	st->seq++;
out:
	if (verdict != XDP_TX)
		st->aborted++;
	return verdict;
}

char _license[] SEC("license") = "GPL";
