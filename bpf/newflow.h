/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * newflow.h: new flows (kernel only): the service, the SYN that reuses a
 * tracked 5-tuple, the embryonic and takeover tables that keep a flood out of
 * the flow table, and the service's ring (Maglev, the sequential ring, IPVS
 * mh with its fallback walk) that picks a new flow's backend. new_flow() is
 * the full path's stage; svc_lookup() serves the ICMP stage too.
 *
 * ring_max and syn_reuse_idle_ns: const volatile globals of xdirector.bpf.c,
 * which includes this header after defining them.
 */
#ifndef XD_NEWFLOW_H
#define XD_NEWFLOW_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xdirector.h"
#include "maps.h"
#include "hash.h"
#include "sync.h"
#include "parse.h"
#include "flow.h"
#include "prof.h"

/* pick_backend() result when a map lookup failed (control-plane bug: service
 * id or ring index beyond the loaded map sizes). */
#define XD_PICK_ABORT 0xffffffffU

/* The service of a flow key: {VIP, port, proto, family}. */
static __always_inline struct xd_service *svc_lookup(const struct xd_flow_key *fk)
{
	struct xd_service_key sk = {};

	__builtin_memcpy(sk.vip, fk->daddr, sizeof(sk.vip));
	sk.port = fk->dport;
	sk.proto = fk->proto;
	sk.family = fk->family;
	return bpf_map_lookup_elem(&xd_svc_v1, &sk);
}

/* ip_vs_mh_hashkey's v at offset 0 for the flow's client: ntohs(port) +
 * ntohl(addr_fold), the port only with mh-port (XD_SCHED_IPVS_MH). */
static __always_inline __u32 ipvs_mh_key(const struct xd_service *svc, const struct xd_flow_key *fk)
{
	__be16 port = svc->sched == XD_SCHED_IPVS_MH ? fk->sport : 0;

	if (fk->family == XD_FAMILY_V4)
		return xd_ipvs_mh_key(fk->saddr[0], port);
	return xd_ipvs_mh_key(fk->saddr[0] ^ fk->saddr[1] ^ fk->saddr[2] ^ fk->saddr[3], port);
}

/*
 * Slot of the service's ring for a new flow, by scheduler (enum xd_sched):
 *  MAGLEV          jhash of client address (IPv6: all 4 words) and port
 *  SH              the same hash with port 0: one client, one backend
 *  SEQ             per-CPU counter++ (wrr/rr over the weighted ring)
 *  IPVS_MH         the kernel's ip_vs_mh hash with mh-port, so a flow maps to
 *                  the same slot as in IPVS when the ring is the kernel's table
 *  IPVS_MH_NOPORT  the same without the port (mh without mh-port)
 * Unknown values hash like MAGLEV. Returns XD_PICK_ABORT on a failed lookup.
 */
static __always_inline __u32 ring_slot(const struct xd_service *svc, const struct xd_flow_key *fk)
{
	__u32 size = svc->ring_size;
	__u32 h, port;
	__u32 *ctr;

	switch (svc->sched) {
	case XD_SCHED_SEQ:
		ctr = bpf_map_lookup_elem(&xd_rr_v1, &svc->id);
		if (!ctr)
			return XD_PICK_ABORT;
		h = (*ctr)++;
		break;
	case XD_SCHED_IPVS_MH:
	case XD_SCHED_IPVS_MH_NOPORT:
		h = xd_ipvs_mh_hash_v(ipvs_mh_key(svc, fk));
		break;
	default: /* XD_SCHED_MAGLEV, XD_SCHED_SH */
		port = svc->sched == XD_SCHED_SH ? 0 : bpf_ntohs(fk->sport);
		if (fk->family == XD_FAMILY_V4)
			h = xd_jhash_2words(bpf_ntohl(fk->saddr[0]), port, XD_FLOW_HASH_SEED);
		else
			h = xd_jhash_5words(bpf_ntohl(fk->saddr[0]), bpf_ntohl(fk->saddr[1]),
					    bpf_ntohl(fk->saddr[2]), bpf_ntohl(fk->saddr[3]), port,
					    XD_FLOW_HASH_SEED);
		break;
	}
	return h % size;
}

/* A backend that may take new flows: ACTIVE, neither DRAINING nor DOWN (the
 * kernel's is_unavailable() is weight <= 0, which is what DRAINING encodes). */
static __always_inline int be_usable(const struct xd_backend *be)
{
	return (be->flags & (XD_BE_F_ACTIVE | XD_BE_F_DRAINING | XD_BE_F_DOWN)) == XD_BE_F_ACTIVE;
}

/* State of ip_vs_mh_get_fallback's walk, shared with the bpf_loop callback. */
struct ipvs_mh_walk {
	__u64 base;  /* xd_ring_v1 position of slot 0 of the live generation */
	__u32 v;     /* ipvs_mh_key() of the client (offset 0) */
	__u32 size;  /* ring_size, 1..ring_max */
	__u32 ihash; /* the first slot, the one that named an unusable backend */
	__u32 idx;   /* result: backend index, 0 = none, or XD_PICK_ABORT */
};

/*
 * One step of ip_vs_mh_get_fallback (net/netfilter/ipvs/ip_vs_mh.c):
 *   roffset = (offset + ihash) % size
 *   hash = ip_vs_mh_hashkey(addr, port, hash1, roffset) % size
 *   empty slot: stop, no destination; available destination: take it.
 * Returns 1 to stop the loop, 0 to go on.
 */
static long ipvs_mh_fallback_step(__u64 offset, void *ctx)
{
	struct ipvs_mh_walk *w = ctx;
	struct xd_backend *be;
	__u32 roffset, slot, key, idx, *idxp;
	__u64 pos;

	if (w->size == 0)
		return 1;
	/* offset < size and ihash < size: one subtraction is the modulo. */
	roffset = (__u32)offset + w->ihash;
	if (roffset >= w->size)
		roffset -= w->size;
	slot = xd_ipvs_mh_hash_v(w->v + roffset) % w->size;
	pos = w->base + slot;
	if (pos > 0xffffffffULL) {
		w->idx = XD_PICK_ABORT;
		return 1;
	}
	key = (__u32)pos;
	idxp = bpf_map_lookup_elem(&xd_ring_v1, &key);
	if (!idxp) {
		w->idx = XD_PICK_ABORT;
		return 1;
	}
	idx = *idxp;
	if (idx == 0) {
		w->idx = 0;
		return 1;
	}
	be = bpf_map_lookup_elem(&xd_be_v2, &idx);
	if (!be) {
		w->idx = XD_PICK_ABORT;
		return 1;
	}
	if (!be_usable(be))
		return 0;
	w->idx = idx;
	return 1;
}

/*
 * IPVS mh with mh-fallback: the slot's backend cannot take new flows (drained
 * or down; the ipvs-mh ring keeps drained backends in their slots, as the
 * kernel's table built from last_weight does), so walk the table the way
 * ip_vs_mh_get_fallback does: at most `size` steps with bpf_loop, whose
 * callback the verifier checks once whatever the ring size. Only taken on
 * this path, so a lookup that lands on a usable backend costs nothing more.
 */
static __noinline __u32 ipvs_mh_fallback(const struct xd_service *svc, const struct xd_flow_key *fk,
					 __u64 base, __u32 ihash)
{
	struct ipvs_mh_walk w = {
		.base = base,
		.v = ipvs_mh_key(svc, fk),
		.size = svc->ring_size,
		.ihash = ihash,
		.idx = 0,
	};

	if (bpf_loop(w.size, ipvs_mh_fallback_step, &w, 0) < 0)
		return XD_PICK_ABORT;
	return w.idx;
}

/*
 * A backend for a new flow from the live ring generation. Returns the backend
 * index (and *bep), 0 if the service has no usable backend, or XD_PICK_ABORT.
 * No usable backend: an empty ring, a hole, or a slot naming a backend that is
 * not purely ACTIVE (Maglev and SEQ rings leave DRAINING and DOWN backends
 * out, but a ring written before the state change may still name one). For
 * IPVS_MH(_NOPORT), whose ring keeps drained backends like the kernel's
 * table, such a slot starts ip_vs_mh_get_fallback's walk instead.
 */
static __always_inline __u32 pick_backend(const struct xd_service *svc,
					  const struct xd_flow_key *fk, struct xd_backend **bep)
{
	struct xd_backend *be;
	__u32 slot, key, *idxp, idx;
	__u64 pos;

	if (svc->ring_size == 0)
		return 0;
	if (svc->ring_size > ring_max)
		return XD_PICK_ABORT;
	slot = ring_slot(svc, fk);
	if (slot == XD_PICK_ABORT)
		return XD_PICK_ABORT;
	pos = ((__u64)svc->id * 2 + (svc->active_gen & 1)) * ring_max + slot;
	if (pos > 0xffffffffULL)
		return XD_PICK_ABORT;
	key = (__u32)pos;
	idxp = bpf_map_lookup_elem(&xd_ring_v1, &key);
	if (!idxp)
		return XD_PICK_ABORT;
	idx = *idxp;
	if (idx == 0)
		return 0;
	be = bpf_map_lookup_elem(&xd_be_v2, &idx);
	if (!be)
		return XD_PICK_ABORT;
	if (!be_usable(be)) {
		if (svc->sched != XD_SCHED_IPVS_MH && svc->sched != XD_SCHED_IPVS_MH_NOPORT)
			return 0;
		idx = ipvs_mh_fallback(svc, fk, pos - slot, slot);
		if (idx == 0 || idx == XD_PICK_ABORT)
			return idx;
		be = bpf_map_lookup_elem(&xd_be_v2, &idx);
		if (!be)
			return XD_PICK_ABORT;
	}
	*bep = be;
	return idx;
}

static __always_inline void count_no_backend(__u32 svc_id)
{
	struct xd_service_stats *ss = bpf_map_lookup_elem(&xd_svcst_v1, &svc_id);

	if (ss)
		ss->no_backend++;
}

/* No backend can take the flow: passed, or dropped if the service says so. */
static __always_inline int no_backend(const struct xd_service *svc, struct verdict *v)
{
	count_no_backend(svc->id);
	if (svc->flags & XD_SVC_F_EMPTY_DROP) {
		v->reason = XD_R_NO_BACKEND_DROP;
		v->action = XDP_DROP;
	} else {
		v->reason = XD_R_NO_BACKEND_PASS;
	}
	return XD_DONE;
}

/* The client's first packet after its opening one: the handshake completed,
 * but a spoofer can send that packet as easily as the SYN. Out of the
 * embryonic table, into the probation table until it proves itself (flow.h,
 * XD_PROVE_NS), reported to the sync peers. */
static __always_inline void flow_handshake(const struct pkt_desc *p, __u32 idx, __u32 gen,
					   __u64 now)
{
	int v4 = pkt_v4(p);
	struct xd_pflow np = {
		.backend = idx,
		.generation = gen,
		.last_seen_ns = now,
		.handshake_ns = now,
	};

	prb_insert(v4, &p->k4, &p->fk, &np);
	emb_delete(v4, &p->k4, &p->fk);
	guard_count(XD_GUARD_HANDSHAKES);
	sync_report(&p->fk, idx, gen, now, XD_SYNC_HANDSHAKE);
}

/*
 * A SYN reusing the 5-tuple of a tracked flow: a flow that saw a packet
 * within syn_reuse_idle_ns keeps its backend (a spoofed or stray SYN must not
 * move it). An idle one in the flow table stays in *f, to be replaced in
 * place (flow_place()), or the handshake's ACK would find the old
 * connection's backend; an idle one in the probation or takeover table is
 * dropped, and the new connection opens like any other.
 */
static __always_inline int syn_reuse(const struct pkt_desc *p, struct found_flow *f, __u64 now,
				     struct verdict *v, struct xd_backend **bep)
{
	int v4 = pkt_v4(p);
	struct xd_backend *be;

	if (flow_find(p, f) &&
	    now - (f->flow->last_seen_ns & ~XD_FLOW_CLOSED) < syn_reuse_idle_ns) {
		be = flow_backend(f->flow);
		if (be) {
			*bep = be;
			v->be_idx = f->flow->backend;
			v->reason = XD_R_TX_SYN_KEPT;
			return XD_FORWARD;
		}
		/* Its backend is gone: hashed anew. */
	}
	if (f->pf)
		prb_delete(v4, &p->k4, &p->fk);
	if (f->tk)
		tko_delete(v4, &p->k4, &p->fk);
	if (f->pf || f->tk) {
		f->pf = NULL;
		f->tk = NULL;
		f->flow = NULL;
	}
	return XD_NEXT;
}

/* A flow in the embryonic table with its backend live: a SYN retransmit
 * (or a RST) goes to the backend that saw the first SYN; the next packet
 * completes the handshake (flow_handshake()). */
static __always_inline int embryonic_hit(const struct pkt_desc *p, struct xd_flow *emb, __u64 now,
					 struct verdict *v, struct xd_backend **bep)
{
	struct xd_backend *be = flow_backend(emb);
	__u32 idx;

	if (!be)
		return XD_NEXT; /* its backend is gone: hashed anew */
	idx = emb->backend;
	if (pkt_syn(p)) {
		v->reason = XD_R_TX_EMBRYONIC;
	} else if (p->tcp_flags & XD_TCP_RST) {
		v->reason = XD_R_TX_NO_TRACK;
	} else {
		flow_handshake(p, idx, emb->generation, now);
		v->reason = XD_R_TX_PROMOTED;
	}
	*bep = be;
	v->be_idx = idx;
	return XD_FORWARD;
}

/*
 * Where a flow placed on backend idx is remembered:
 *  - a tracked flow (an idle 5-tuple reused by a SYN, or a flow whose backend
 *    was removed or marked DOWN): rewritten in place, in whichever table;
 *  - an opening packet (a SYN, a UDP flow's first datagram): the embryonic
 *    table, until the client's next packet completes the handshake;
 *  - the second packet of an embryonic flow whose backend is gone: its
 *    handshake did complete here, so on probation;
 *  - any other TCP packet (this director took the VIP over mid-stream: VRRP,
 *    an ECMP change; or a spoofed bare ACK): the takeover table, so the flow
 *    stays where the ring puts it now, and never the flow table (a flood of
 *    these must not evict a flow that completed its handshake here).
 */
static __always_inline void flow_place(const struct pkt_desc *p, const struct found_flow *f,
				       struct xd_flow *emb, __u32 idx, const struct xd_backend *be,
				       __u64 now, struct verdict *v)
{
	int v4 = pkt_v4(p);
	int syn = pkt_syn(p);
	struct xd_flow nf = {
		.backend = idx,
		.generation = be->generation,
		.last_seen_ns = now,
	};

	v->new_flow = 1;
	v->reason = XD_R_TX_NEW_FLOW;
	if (f->flow) {
		f->flow->backend = idx;
		f->flow->generation = be->generation;
		f->flow->last_seen_ns = now;
		if (!syn) {
			sync_report(&p->fk, idx, be->generation, now, XD_SYNC_TAKEOVER);
			v->reason = XD_R_TX_REHASH;
		}
	} else if (syn || (p->fk.proto == IPPROTO_UDP && !emb)) {
		if (emb) {
			emb->backend = idx;
			emb->generation = be->generation;
			emb->last_seen_ns = now;
		} else {
			emb_insert(v4, &p->k4, &p->fk, &nf);
			guard_count(XD_GUARD_EMBRYONIC);
		}
	} else if (emb) {
		flow_handshake(p, idx, be->generation, now);
		v->reason = XD_R_TX_REHASH;
	} else {
		tko_insert(v4, &p->k4, &p->fk, &nf);
		guard_count(XD_GUARD_TAKEOVERS);
		sync_report(&p->fk, idx, nf.generation, now, XD_SYNC_TAKEOVER);
	}
}

/*
 * The new-flow stage: a packet the established stage did not forward. Its
 * service, else passed; a first fragment is dropped (no ports in the later
 * ones: they could not follow it to the same backend, and a DR director does
 * not reassemble). Then a SYN that reuses a tracked 5-tuple (syn_reuse()), a
 * flow in the embryonic table (embryonic_hit()), else the service's ring
 * picks a backend: a RST is forwarded and leaves no state (Katran does the
 * same; a RST of a known flow was a flow hit), anything else is remembered
 * (flow_place()). A subprogram for the stack's sake (flow.h, established()).
 */
static XD_STAGE int new_flow(const struct pkt_desc *p, struct found_flow *f, struct verdict *v,
			     struct xd_backend **bep)
{
	struct xd_service *svc = svc_lookup(&p->fk);
	struct xd_flow *emb = NULL;
	__u64 now;
	__u32 idx;

	if (!svc) {
		/* A NAT reply to a client port some service has too. */
		v->reason = !p->frag && nat_port(p->fk.proto, p->fk.sport) ? XD_R_NAT_OUT_TRY :
									     XD_R_PASS_NON_VIP;
		return XD_DONE;
	}
	if (p->frag) {
		v->reason = XD_R_DROP_FRAGMENT;
		v->action = XDP_DROP;
		return XD_DONE;
	}
	XD_PROF_AT(XD_PROF_SVC, XD_DONE);
	now = xd_now();
	XD_PROF_AT(XD_PROF_CLOCK, XD_DONE);
	if (pkt_syn(p) && syn_reuse(p, f, now, v, bep) == XD_FORWARD)
		return XD_FORWARD;
	XD_PROF_AT(XD_PROF_REUSE, XD_DONE);
	if (!f->flow) {
		emb = emb_lookup(pkt_v4(p), &p->k4, &p->fk);
		if (emb && embryonic_hit(p, emb, now, v, bep) == XD_FORWARD)
			return XD_FORWARD;
	}
	XD_PROF_AT(XD_PROF_EMB, XD_DONE);
	idx = pick_backend(svc, &p->fk, bep);
	if (idx == XD_PICK_ABORT) {
		v->reason = XD_R_ABORTED;
		v->action = XDP_ABORTED;
		return XD_DONE;
	}
	if (idx == 0 || !*bep)
		return no_backend(svc, v);
	v->be_idx = idx;
	if (p->tcp_flags & XD_TCP_RST) {
		v->reason = XD_R_TX_NO_TRACK;
		return XD_FORWARD;
	}
	XD_PROF_AT(XD_PROF_RING, XD_DONE);
	flow_place(p, f, emb, idx, *bep, now, v);
	XD_PROF_AT(XD_PROF_PLACE, XD_DONE);
	return XD_FORWARD;
}

#endif /* XD_NEWFLOW_H */
