/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdp_flowgen.bpf.c: new-flow generator for the connection sync benchmark
 * (scripts/bench/sync.ts), run with plain BPF_PROG_TEST_RUN (no live frames:
 * this kernel refuses them) and `repeat` = 2 x the flows wanted.
 *
 * Run n of the generator builds, from its template, packet n % 2 of flow
 * first + n / 2: the client's SYN (even n), then its ACK (odd n), from the
 * client address template + flow, and tail-calls the director's program
 * (flowgen_next[0], set by user space) on it. The director sees one new flow
 * complete its handshake every two runs, which is what it reports to its sync
 * peers, and one syscall makes thousands of flows: a JS loop of one test run
 * per packet stalls at about 16k flows/s on this machine.
 *
 * Why every run restores the frame: the director rewrites it in place (MAC
 * addresses on the way to the backend), and a test run's repeats share one
 * buffer. No checksum is fixed: the director does not check them, and the
 * frames go nowhere (test runs transmit nothing).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define FG_TMPL_MAX 64
#define FG_CHUNK 8

/* Load-time settings (user space writes .rodata before load). */
const volatile __u32 tmpl_chunks = 8; /* 8-byte chunks restored per run (frame length / 8) */
const volatile __u32 saddr_off = 26;  /* byte offset of the IPv4 source address (Eth 14 + 12) */
const volatile __u32 flags_off = 47;  /* byte offset of the TCP flags (Eth 14 + IPv4 20 + 13) */

struct fg_tmpl {
	__u8 b[FG_TMPL_MAX];
};

/* flowgen_tmpl: the SYN frame every run starts from. Key: __u32 0. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fg_tmpl);
} flowgen_tmpl SEC(".maps");

/* Generator state. 16 bytes. */
struct fg_state {
	__u64 seq;   /* runs so far: run n is packet n % 2 of flow first + n / 2 */
	__u32 first; /* the first flow's offset from the template's source address */
	__u32 aborted;
};

/* flowgen_state: one for all CPUs (one thread runs the generator). Key: __u32 0. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fg_state);
} flowgen_state SEC(".maps");

/* flowgen_next: the director's program at index 0. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} flowgen_next SEC(".maps");

SEC("xdp")
int xdp_flowgen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct fg_state *st;
	struct fg_tmpl *t;
	__u32 key = 0;
	__u32 i;

	st = bpf_map_lookup_elem(&flowgen_state, &key);
	t = bpf_map_lookup_elem(&flowgen_tmpl, &key);
	if (!st || !t)
		return XDP_ABORTED;
#pragma unroll
	for (i = 0; i < FG_TMPL_MAX / FG_CHUNK; i++) {
		if (i >= tmpl_chunks)
			break;
		if (data + (i + 1) * FG_CHUNK > data_end)
			goto abort;
		*(__u64 *)(data + i * FG_CHUNK) = *(__u64 *)&t->b[i * FG_CHUNK];
	}
	{
		__be32 *sa = data + (saddr_off & 0x3f);
		__u8 *fl = data + (flags_off & 0x3f);
		__u32 flow = st->first + (__u32)(st->seq >> 1);

		if ((void *)(sa + 1) > data_end || (void *)(fl + 1) > data_end)
			goto abort;
		*sa = bpf_htonl(bpf_ntohl(*sa) + flow);
		if (st->seq & 1)
			*fl = 0x10; /* ACK */
		st->seq++;
	}
	bpf_tail_call(ctx, &flowgen_next, 0);
abort:
	st->aborted++;
	return XDP_ABORTED;
}

char _license[] SEC("license") = "GPL";
