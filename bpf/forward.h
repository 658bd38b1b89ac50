/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * forward.h: the forward stage (kernel only): a packet to its backend.
 *
 * DR rewrites only the Ethernet addresses (eth.src := old eth.dst, eth.dst :=
 * backend MAC): the real server holds the VIP itself and answers the client
 * directly, so the IP header, TTL and checksums stay as the client sent them.
 * A tunnel backend (XD_BE_F_TUNNEL) gets the packet encapsulated towards its
 * own address (encap.h). Either goes back out of the receiving interface
 * (XDP_TX) or is redirected to the backend's interface. A new forwarding
 * mode is a flag of the backend and a branch of forward(), its function in
 * the header of its role (as encap.h is for tunnels).
 */
#ifndef XD_FORWARD_H
#define XD_FORWARD_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xdirector.h"
#include "maps.h"
#include "encap.h"
#include "nat.h"
#include "prof.h"

/* DR forward: only the Ethernet addresses change. XDP_TX back out of the
 * receiving interface, or bpf_redirect when the backend sits behind another
 * interface. */
static __always_inline int dr_forward(struct xdp_md *ctx, struct ethhdr *eth,
				      const struct xd_backend *be)
{
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, be->mac, ETH_ALEN);
	if (be->ifindex != 0 && be->ifindex != ctx->ingress_ifindex)
		return bpf_redirect(be->ifindex, 0);
	return XDP_TX;
}

/* Tunnel forward (encap.h): the backend's xd_tun_v1 entry gives the outer
 * header, be->mac the next hop, hash is xd_tunnel_hash() of the flow.
 * *reason changes only when the packet is answered or dropped instead.
 * A subprogram (five arguments at most: the backend is looked up again by
 * index): inlined into both the fast and the full path, its header building
 * stack would count twice against the 512-byte stack limit. */
static __noinline int tunnel_forward(struct xdp_md *ctx, __u32 be_idx, __u32 hash, __u32 l2len,
				     __u32 *reason)
{
	struct xd_tunnel *t = bpf_map_lookup_elem(&xd_tun_v1, &be_idx);
	struct xd_backend *be = bpf_map_lookup_elem(&xd_be_v2, &be_idx);
	__u32 why = *reason;
	int action;

	if (!t || !be || (t->encap != XD_ENCAP_IPIP && t->encap != XD_ENCAP_GUE)) {
		*reason = XD_R_ABORTED;
		return XDP_ABORTED;
	}
	XD_PROF_AT(XD_PROF_TUN_LOOKUP, XDP_TX);
	action = xd_encap(ctx, t, be->mac, l2len, hash, &why);
	if (action == XDP_ABORTED)
		why = XD_R_ABORTED;
	*reason = why;
	if (action == XDP_TX && why != XD_R_TX_TOO_BIG && be->ifindex != 0 &&
	    be->ifindex != ctx->ingress_ifindex)
		return bpf_redirect(be->ifindex, 0);
	return action;
}

/* A backend's forward: DR, encapsulated for a tunnel backend, or translated
 * for a NAT backend (nat.h; a RST, which must leave no state, and an ICMP
 * error install no reverse entry). */
static __always_inline int forward(struct xdp_md *ctx, struct ethhdr *eth,
				   const struct xd_backend *be, __u32 be_idx,
				   const struct xd_flow_key *fk, __u32 l2len, __u32 *reason)
{
	if (be->flags & XD_BE_F_TUNNEL)
		return tunnel_forward(ctx, be_idx, xd_tunnel_hash(fk), l2len, reason);
	if (be->flags & XD_BE_F_NAT)
		return nat_in(ctx, be_idx, l2len,
			      *reason == XD_R_TX_NO_TRACK || *reason == XD_R_TX_ICMP ? NULL : fk,
			      reason);
	return dr_forward(ctx, eth, be);
}

#endif /* XD_FORWARD_H */
