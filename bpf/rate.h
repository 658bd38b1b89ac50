/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * rate.h: global rate limits (kernel only), one per enum xd_rate_idx in
 * xd_rate_v1, shared by all CPUs.
 *
 * GCRA (the generic cell rate algorithm, a token bucket kept as one word):
 * tat_ns is when the bucket would be full again. An event at `now` passes if
 * max(tat, now) + interval - now <= XD_RATE_BURST_NS, and moves tat on by one
 * interval (1 s / rate). So after a quiet second `rate` events pass at once,
 * then one per interval. The word is updated with compare-and-swap
 * (BPF_ATOMIC, -mcpu=v3, kernel >= 5.12), so the limit holds across CPUs; a
 * CPU that loses the race XD_RATE_TRIES times in a row counts as limited
 * (that many concurrent events are a flood anyway).
 */
#ifndef XD_RATE_H
#define XD_RATE_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "xdirector.h"

#define XD_RATE_NS_PER_SEC 1000000000ULL
/* Burst: one second's worth of events. */
#define XD_RATE_BURST_NS XD_RATE_NS_PER_SEC
#define XD_RATE_TRIES 3

/* May one more event of limit `which` pass now, at `rate` a second (0 = no
 * limit)? `now`: bpf_ktime_get_coarse_ns(). A subprogram: inlined, its
 * compare-and-swap loop's registers made clang spill tunnel_forward's l2len
 * in a way the verifier loses track of (a 4-byte spill next to another). */
static __noinline int xd_rate_admit(__u32 which, __u32 rate, __u64 now)
{
	struct xd_rate *r;
	__u64 interval, old, base;
	int i;

	if (rate == 0)
		return 1;
	r = bpf_map_lookup_elem(&xd_rate_v1, &which);
	if (!r)
		return 0;
	interval = XD_RATE_NS_PER_SEC / rate;
	for (i = 0; i < XD_RATE_TRIES; i++) {
		old = *(volatile __u64 *)&r->tat_ns;
		base = old > now ? old : now;
		if (base + interval - now > XD_RATE_BURST_NS)
			return 0;
		if (__sync_val_compare_and_swap(&r->tat_ns, old, base + interval) == old)
			return 1;
	}
	return 0;
}

#endif /* XD_RATE_H */
