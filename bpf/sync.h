/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sync.h: connection sync export (kernel only). The director reports the flows
 * another director must know to keep them on their backend after a failover
 * or an ECMP change (src/sync sends them to its peers, which install them):
 *   - a flow whose handshake completed here (into the probation table),
 *   - a flow taken over mid-stream or re-placed because its backend went
 *     (takeover table),
 *   - a long-lived flow still in use, at most once per 2^sync_refresh_shift ns:
 *     piggybacked on the once-a-second last_seen_ns refresh, never per packet.
 * Never on the established fast path (a flow cache hit): every hook sits on a
 * path that already writes a hash map. One record per report through a BPF
 * ring buffer, submitted without a wakeup (user space polls it).
 * With sync_export = 0 (no `sync:` in the config) the verifier prunes every
 * hook as dead code.
 * BPF_MAP_TYPE_RINGBUF needs kernel 5.8; the program already needs 5.11
 * (bpf_ktime_get_coarse_ns), so a kernel that loads it has ring buffers, and
 * one that does not refuses the whole object with the verifier's reason.
 */
#ifndef XD_SYNC_H
#define XD_SYNC_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "xdirector.h"

/* Set by user space before load: 1 = report flows to xd_sync_v1. */
const volatile __u32 sync_export = 0;
/* A long-lived flow is reported again when its last_seen_ns refresh crosses
 * a multiple of 2^sync_refresh_shift ns (32: every ~4.3 s). Stateless: no
 * field of the flow entry records when it was last reported. */
const volatile __u32 sync_refresh_shift = 32;

/* BTF anchor for the ring buffer's record (a ring buffer has no value type). */
const volatile struct xd_sync_event xd_btf_sync_event = {};

/* Records for src/sync (struct xd_sync_event). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, XD_SYNC_RING_BYTES);
} xd_sync_v1 SEC(".maps");

/* Export counters, per CPU (struct xd_sync_stats). Key: __u32 0. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xd_sync_stats);
} xd_syncst_v1 SEC(".maps");

/* Report one flow: its key (fk has both families' fields), backend, why.
 * A function of its own (not inlined): its locals (the counter key) live in
 * its own frame, not in xdirector_full()'s, whose frame is in the deepest
 * call chain (xdirector -> xdirector_full -> tunnel_forward -> xd_rate_admit):
 * inlined, the chain came to 544 bytes as Linux 6.1's verifier counts it
 * (each frame rounded up to 32), over the 512 it allows. */
static __noinline void sync_report(const struct xd_flow_key *fk, __u32 backend, __u32 generation,
				   __u64 now, __u32 kind)
{
	struct xd_sync_event *ev;
	struct xd_sync_stats *st;
	__u32 zero = 0;

	if (!sync_export)
		return;
	st = bpf_map_lookup_elem(&xd_syncst_v1, &zero);
	ev = bpf_ringbuf_reserve(&xd_sync_v1, sizeof(*ev), 0);
	if (!ev) {
		if (st)
			st->dropped++;
		return;
	}
	__builtin_memcpy(ev->saddr, fk->saddr, sizeof(ev->saddr));
	__builtin_memcpy(ev->daddr, fk->daddr, sizeof(ev->daddr));
	ev->sport = fk->sport;
	ev->dport = fk->dport;
	ev->proto = fk->proto;
	ev->family = fk->family;
	ev->kind = kind;
	ev->pad = 0;
	ev->backend = backend;
	ev->generation = generation;
	ev->seen_ns = now;
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
	if (st)
		st->events++;
}

/* At a flow's last_seen_ns refresh (from `last`, the time without the closed
 * mark XD_FLOW_CLOSED, to `now`): report it again if the refresh crossed a
 * multiple of 2^sync_refresh_shift ns. */
static __always_inline void sync_refresh(const struct xd_flow_key *fk, const struct xd_flow *f,
					 __u64 last, __u64 now)
{
	if (sync_export && (now >> sync_refresh_shift) != (last >> sync_refresh_shift))
		sync_report(fk, f->backend, f->generation, now, XD_SYNC_REFRESH);
}

#endif /* XD_SYNC_H */
