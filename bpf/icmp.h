/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * icmp.h: ICMP errors about a VIP flow (kernel only).
 *
 * ICMP "fragmentation needed" (type 3 code 4) and ICMPv6 "packet too big"
 * (type 2): a router on the path back to the client quotes the real server's
 * reply, VIP:port -> client:cport, and sends the error to the VIP. It is
 * delivered to the backend that owns the flow, whose kernel then lowers the
 * path MTU (RFC 1191, 8201). As Katran's handle_icmp.h does it: icmp_key()
 * turns the quoted header around into the packet's flow key, client:cport ->
 * VIP:port, and icmp_flow() looks that key up with the ordinary service and
 * flow lookups (newflow.h, flow.h). Only established flows: an error never
 * creates or changes state, and is never a flow cache hit.
 */
#ifndef XD_ICMP_H
#define XD_ICMP_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "xdirector.h"
#include "parsing.h"
#include "parse.h"
#include "flow.h"
#include "newflow.h"

#define XD_ICMP_DEST_UNREACH 3
#define XD_ICMP_FRAG_NEEDED 4
#define XD_ICMPV6_PKT_TOOBIG 2

/*
 * The flow an ICMP error quotes, reversed, into p->fk (whose addresses
 * parse_l3() filled from the error's own header): the cursor is at the ICMP
 * header. Returns 0, or -1 with *reason set (left as it is for a malformed
 * one). Any other ICMP message, a quoted later fragment or protocol other than
 * TCP and UDP, or an error not addressed to the address the quoted packet came
 * from, is passed.
 */
static __always_inline int icmp_key(struct hdr_cursor *nh, void *data_end, struct pkt_desc *p,
				    __u32 *reason)
{
	struct xd_icmp_hdr *ich;
	struct xd_ports *ports;
	struct iphdr *in4 = NULL;
	struct ipv6hdr *in6 = NULL;
	int type, inner;

	type = parse_icmphdr(nh, data_end, &ich);
	if (type < 0)
		return -1;
	*reason = XD_R_PASS_NON_VIP;
	if (pkt_v4(p)) {
		if (type != XD_ICMP_DEST_UNREACH || ich->code != XD_ICMP_FRAG_NEEDED)
			return -1;
		inner = parse_iphdr(nh, data_end, &in4);
		if (inner < 0)
			goto malformed;
	} else {
		__u16 in_frag;

		if (type != XD_ICMPV6_PKT_TOOBIG)
			return -1;
		inner = parse_ip6hdr(nh, data_end, &in6);
		if (inner < 0)
			goto malformed;
		/* The quoted reply may carry extension headers too; a quoted
		 * later fragment has no ports. */
		inner = parse_ip6_exthdrs(nh, data_end, inner, &in_frag);
		if (inner < 0)
			goto malformed;
		if (in_frag & XD_IP6_OFFSET)
			return -1;
	}
	if (inner != IPPROTO_TCP && inner != IPPROTO_UDP)
		return -1;
	if (parse_ports(nh, data_end, &ports) < 0)
		goto malformed;
	/* The error must be addressed to the VIP the quoted packet came from;
	 * then p->fk.daddr is that VIP already. */
	if (in4) {
		if (in4->saddr != p->fk.daddr[0])
			return -1;
		p->fk.saddr[0] = in4->daddr;
	} else if (in6) {
		const __be32 *a = in6->saddr.in6_u.u6_addr32, *d = p->fk.daddr;

		if ((a[0] ^ d[0]) | (a[1] ^ d[1]) | (a[2] ^ d[2]) | (a[3] ^ d[3]))
			return -1;
		__builtin_memcpy(p->fk.saddr, &in6->daddr, sizeof(p->fk.saddr));
	}
	p->fk.sport = ports->dest;
	p->fk.dport = ports->source;
	p->fk.proto = inner;
	return 0;
malformed:
	*reason = XD_R_PASS_MALFORMED;
	return -1;
}

/*
 * The ICMP stage: the quoted flow's service, else passed as not a VIP's; its
 * flow in the flow, probation, takeover or embryonic table (e.g. a UDP flow
 * that sent one datagram so far) with a live backend, else passed
 * (XD_R_PASS_ICMP) for the director's own stack to see. A subprogram for the
 * stack's sake (flow.h, established()).
 */
static __noinline int icmp_flow(const struct pkt_desc *p, struct found_flow *f, struct verdict *v,
				struct xd_backend **bep)
{
	struct xd_backend *be;

	if (!svc_lookup(&p->fk)) {
		v->reason = XD_R_PASS_NON_VIP;
		return XD_DONE;
	}
	v->reason = XD_R_PASS_ICMP;
	if (!flow_find(p, f))
		f->flow = emb_lookup(pkt_v4(p), &p->k4, &p->fk);
	if (!f->flow)
		return XD_DONE;
	be = flow_backend(f->flow);
	if (!be)
		return XD_DONE;
	*bep = be;
	v->be_idx = f->flow->backend;
	v->reason = XD_R_TX_ICMP;
	return XD_FORWARD;
}

#endif /* XD_ICMP_H */
