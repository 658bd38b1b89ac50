/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * xdirector.h: the one header shared by the XDP program and user space.
 *
 * Single source of truth for every map key and value layout, enum and limit.
 * Only fixed-width types, enums and limits live here (no kernel-only code).
 * The TypeScript side is generated from the compiled object's BTF
 * (src/bpf/layouts.generated.ts); never copy these layouts by hand.
 *
 * Byte order: fields typed __be16/__be32 are network order, everything else
 * is host order.
 *
 * A layout change gets a new map name (bump the _vN suffix in
 * bpf/xdirector.bpf.c), never a silent reinterpretation of a pinned map.
 */
#ifndef XDIRECTOR_H
#define XDIRECTOR_H

#include <linux/types.h>

/* Bumped on any change below; also stored in the meta map of a pinned
 * instance so that a restarted control plane can refuse a mismatch. */
#define XD_LAYOUT_VERSION 11

/* Default limits. The real sizes are set at load time (map max_entries and
 * the const volatile globals of the program), these are only defaults. */
#ifndef XD_MAX_SERVICES
/* Rings take max_services * 2 generations * ring_max slots, and array maps
 * round each value up to 8 bytes: 64 * 2 * 65537 * 8 = 64 MiB at the default
 * ring size. Size max_services to need, especially with larger rings. */
#define XD_MAX_SERVICES 64
#endif
#ifndef XD_MAX_BACKENDS
/* Backend index 0 means "none", so usable indexes are 1..max-1. */
#define XD_MAX_BACKENDS 4096
#endif
#ifndef XD_RING_MAX
/* Default Maglev table size: a prime, as Maglev requires (Katran RING_SIZE). */
#define XD_RING_MAX 65537
#endif
#ifndef XD_MAX_FLOWS
/* Each LRU table sized like the flow tables (the NAT reverse tables): 1M
 * flows. The flow tables themselves (xd_flow4_v3, xd_flow6_v3) are arrays of
 * XD_FLOW_WAYS-entry buckets, sized by user space to a power of two of
 * buckets: 32 bytes an IPv4 flow, 64 an IPv6 one. */
#define XD_MAX_FLOWS 1048576
#endif
/* Entries per flow table bucket (xd_flow4_v3, xd_flow6_v3): an IPv4 bucket is
 * one 64-byte line, an IPv6 bucket two (one entry a line). */
#define XD_FLOW_WAYS 2
#ifndef XD_MAX_EMBRYONIC
/* Each embryonic table (IPv4, IPv6): flows whose handshake has not completed.
 * A spoofed SYN flood churns only these, never the flow tables. */
#define XD_MAX_EMBRYONIC 65536
#endif

#ifndef XD_MAX_TAKEOVER
/* Each takeover table (IPv4, IPv6): flows that did not complete a handshake
 * here (taken over mid-stream after a failover or an ECMP change, or spoofed
 * bare ACKs); a flood of those churns only these. And each probation table:
 * handshake-completed flows until they prove themselves (XD_PROVE_NS); a
 * flood of fake handshakes churns only these. 256K flows * (16 or 40 + 16 or
 * 24) bytes each. */
#define XD_MAX_TAKEOVER 262144
#endif

#ifndef XD_FLOW_CACHE4
/* Flow cache slots per CPU (power of two): IPv4 32 bytes each, IPv6 64, so
 * 768 KiB per CPU. Both are 2-way set-associative (XD_FLOW_CACHE_WAYS slots a
 * set; an IPv4 set is one 64-byte line, an IPv6 way is one): 4096 random flows
 * on one CPU find ~93% of them in a set they fit in, against ~78%
 * direct-mapped (e^-(4096/16384)). Flows that do not fit take turns. */
#define XD_FLOW_CACHE4 16384
#endif
#ifndef XD_FLOW_CACHE6
#define XD_FLOW_CACHE6 4096
#endif
#define XD_FLOW_CACHE_WAYS 2

#ifndef XD_NAT_OUT_CACHE4
/* NAT reply cache slots per CPU (power of two, 2-way sets as the flow
 * caches'): IPv4 64 bytes each, IPv6 128, so 384 KiB per CPU. */
#define XD_NAT_OUT_CACHE4 4096
#endif
#ifndef XD_NAT_OUT_CACHE6
#define XD_NAT_OUT_CACHE6 1024
#endif

#ifndef XD_SYNC_RING_BYTES
/* Connection sync ring buffer (power of two, a multiple of the page size):
 * 4 MiB holds ~65k records (64 bytes each with the ring's header), over a
 * second of new flows at 50k/s between two reads by user space. */
#define XD_SYNC_RING_BYTES 4194304
#endif

/* VIP ports map (array of __u64 words): bit (port & 63) of word
 * proto_index * XD_VPORT_WORDS + (port >> 6), proto_index 0 for TCP and 1 for
 * UDP, is set when a service of any VIP and family has that port and
 * protocol. A packet whose bit is clear is for no service. */
#define XD_VPORT_WORDS 1024

/* Address families as stored in keys (not AF_* values). */
enum xd_family {
	XD_FAMILY_V4 = 4,
	XD_FAMILY_V6 = 6,
};

/* Scheduler: how a new flow picks a ring slot. */
enum xd_sched {
	XD_SCHED_MAGLEV = 0, /* slot = hash(client addr, client port) % ring_size */
	XD_SCHED_SH = 1,     /* slot = hash(client addr) % ring_size: client affinity */
	XD_SCHED_SEQ = 2, /* slot = per-CPU counter++ % ring_size: wrr/rr over the weighted ring */
	XD_SCHED_IPVS_MH = 3, /* slot = IPVS mh hash (hsiphash of client addr + port) % ring_size */
	XD_SCHED_IPVS_MH_NOPORT = 4, /* as IPVS mh without mh-port: client addr only */
};

/* Service flags (struct xd_service.flags). */
enum xd_service_flags {
	XD_SVC_F_EMPTY_DROP = 1 << 0, /* no usable backend: drop instead of XDP_PASS */
};

/* Backend flags (struct xd_backend.flags). */
enum xd_backend_flags {
	XD_BE_F_ACTIVE = 1 << 0,   /* slot in use */
	XD_BE_F_DRAINING = 1 << 1, /* existing flows stay, no new flow (it has no ring slots) */
	XD_BE_F_DOWN = 1 << 2,     /* unhealthy: existing flows are re-hashed */
	XD_BE_F_TUNNEL = 1 << 3,   /* forward encapsulated (xd_tun_v1 at the same index), not DR */
	XD_BE_F_NAT = 1 << 4, /* NAT: destination rewritten to addr:nat_port (the nat_ fields) */
};

/* Tunnel encapsulation (struct xd_tunnel.encap). */
enum xd_encap {
	XD_ENCAP_IPIP = 1, /* IP in IP: 4in4 (proto 4), 6in6 / 6in4 (41), 4in6 (4) */
	XD_ENCAP_GUE =
		2, /* outer IPv4 + UDP + 4-byte GUE header (version 0), RFC draft-ietf-intarea-gue */
};

/* Verdict reasons: each packet is counted under exactly one. */
enum xd_reason {
	XD_R_PASS_NON_IP = 0,    /* not IPv4/IPv6 (ARP, LLDP, ...) */
	XD_R_PASS_NON_VIP = 1,   /* IP but not for a configured VIP:port/proto */
	XD_R_PASS_MALFORMED = 2, /* truncated/invalid headers: left to the kernel to drop */
	XD_R_TX_NEW_FLOW =
		3, /* hashed onto the ring, entry created (SYN, first UDP datagram: embryonic table;
				  * non-SYN miss, i.e. taken over mid-stream: takeover table) */
	XD_R_TX_FLOW_HIT = 4, /* established flow, kept its backend. Counted in the backend's
				  * xd_backend_stats.flow_hits, not in xd_rsnst (one counter per hit) */
	XD_R_TX_REHASH = 5,   /* flow's backend gone/down: re-hashed */
	XD_R_TX_NO_TRACK =
		6,        /* forwarded without a flow entry (a RST that is not of a known flow) */
	XD_R_TX_ICMP = 7, /* ICMP PTB / frag needed sent to the flow's backend */
	XD_R_NO_BACKEND_PASS = 8, /* service has no usable backend: passed to the kernel */
	XD_R_NO_BACKEND_DROP = 9, /* service has no usable backend: dropped (XD_SVC_F_EMPTY_DROP) */
	XD_R_DROP_FRAGMENT = 10,  /* IP fragment to a VIP: no ports to hash on */
	XD_R_PASS_ICMP = 11,      /* ICMP for a VIP without a known flow */
	XD_R_ABORTED = 12,        /* internal error (map lookup failed) */
	XD_R_PASS_OTHER_HOST =
		13, /* unicast frame for another station (flooded): the kernel drops it */
	XD_R_TX_TOO_BIG =
		14, /* tunnel: too big once encapsulated: ICMP frag needed / PTB sent back to the client */
	XD_R_DROP_TOO_BIG =
		15, /* tunnel: too big once encapsulated, IPv4 without DF (never fragmented here) */
	XD_R_TX_EMBRYONIC =
		16, /* packet of a flow still in its handshake (SYN retransmit): its embryonic entry's backend */
	XD_R_TX_PROMOTED =
		17, /* client's first non-SYN of the handshake (UDP: second datagram): moved from the
				  * embryonic table to the probation table, until it proves itself (XD_R_TX_PROVEN) */
	XD_R_TX_SYN_KEPT =
		18, /* SYN reusing the 5-tuple of a flow that saw a packet within syn_reuse_idle_ns:
				  * kept on the flow's backend, the entry untouched */
	XD_R_DROP_TOO_BIG_LIMITED =
		19, /* tunnel: too big once encapsulated, but the director's frag needed /
				  * PTB answers are over too_big_rate: dropped unanswered */
	XD_R_TX_PROVEN =
		20, /* a handshake-completed flow's packet XD_PROVE_NS or more after its handshake,
				  * within new_flow_rate: moved from the probation table to the flow table */
	XD_R_TX_NAT_OUT =
		21, /* NAT reply (or ICMP error about a request) of a known flow: source made
				  * VIP:port again, routed to the client (bpf_fib_lookup). Also counted
				  * in the backend's xd_nat_stats */
	XD_R_MAX = 22,
};

/* Global rate limits (xd_rate_v1 index). */
enum xd_rate_idx {
	XD_RATE_TOO_BIG = 0,  /* the director's own ICMP frag needed / PTB answers (too_big_rate) */
	XD_RATE_NEW_FLOW = 1, /* proven flows entering the flow tables (new_flow_rate) */
	XD_RATE_MAX = 2,
};

/* services map key: which traffic is ours. 20 bytes. */
struct xd_service_key {
	__be32 vip[4]; /* IPv4 in vip[0] with vip[1..3] = 0; network order */
	__be16 port;   /* network order */
	__u8 proto;    /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;   /* enum xd_family */
};

/* services map value. 16 bytes. */
struct xd_service {
	__u32 id;        /* 0..max_services-1: index into rings and per-service stats */
	__u32 ring_size; /* slots in use in each generation of this service's ring (<= ring_max) */
	__u32 flags;     /* enum xd_service_flags */
	__u8 sched;      /* enum xd_sched */
	__u8 active_gen; /* 0 or 1: the live ring generation */
	__u8 pad[2];     /* must be zero */
};

/* backends map value (array, index 0 = none). 56 bytes. */
struct xd_backend {
	__u8 mac[6];      /* destination MAC for DR */
	__u8 family;      /* enum xd_family */
	__u8 flags;       /* enum xd_backend_flags */
	__u32 generation; /* bumped whenever this index is given to another backend */
	__u32 ifindex;    /* egress ifindex; 0 = the receiving interface (XDP_TX) */
	__u32 service;    /* id of the service this entry belongs to (each service has its own
			   * backend entries); control-plane bookkeeping, the program ignores it */
	__be32 addr[4];   /* real server address (IPv4 in addr[0]); network order */
	/* NAT (XD_BE_F_NAT; zero otherwise), in the entry the fast path already
	 * loads, so a NAT flow hit needs no second lookup. */
	__u8 nat_smac[6]; /* the director's MAC on the backend's egress interface (frame source) */
	__be16 nat_port;  /* the backend's port (VIP:vport -> addr:nat_port); network order */
	__u16 nat_mtu;    /* MTU of the path to the backend (IP packet); 0 = no check */
	/* The checksum differences of VIP:vport -> addr:nat_port (RFC 1624 ~m + m'
	 * summed and folded to 16 bits, in the packet's byte order): csum_l3 of
	 * the address (IPv4 header), csum_l4 of address and port (TCP/UDP with
	 * its pseudo-header). Constant per entry (each service has its own
	 * backend entries), so the fast path adds them instead of summing. */
	__be16 nat_csum_l3;
	__be16 nat_csum_l4;
	__u8 pad[6]; /* must be zero */
};

/* tunnels map value (array indexed like backends; read only for a backend
 * with XD_BE_F_TUNNEL). 40 bytes. */
struct xd_tunnel {
	__be32 saddr
		[4]; /* outer source: the director's tunnel address (IPv4 in saddr[0]); network order */
	__be32 daddr[4]; /* outer destination: the real server (IPv4 in daddr[0]); network order */
	__be16 gue_port; /* GUE: outer UDP destination port; network order */
	__u16 mtu;   /* MTU of the path to the real server, outer headers included; 0 = no check */
	__u8 encap;  /* enum xd_encap */
	__u8 family; /* outer (underlay) family: enum xd_family */
	__u8 pad[2]; /* must be zero */
};

/* NAT reverse tables value, keyed by a reply's 5-tuple as it arrives (struct
 * xd_flow4_key / xd_flow_key: saddr = backend, daddr = client, sport = the
 * backend's port, dport = the client's): what the reply is rewritten to.
 * 48 bytes. */
struct xd_nat_rev {
	__be32 vip[4]; /* the VIP the client wrote to (IPv4 in vip[0]); network order */
	__be16 vport;  /* the service port; network order */
	__u8 peer_mac
		[6]; /* source MAC of the client's packets: next hop when the route has no neighbour entry */
	__u8 self_mac[6]; /* destination MAC of the client's packets (the director's, on ifindex) */
	__u8 pad[2];      /* must be zero */
	__u32 ifindex; /* interface the client's packets arrive on; once routed, the route's egress */
	__u32 backend; /* backend index (Out counters) */
	__u64 last_seen_ns; /* bpf_ktime_get_coarse_ns() of a recent packet, refreshed at most once a second */
	__u64 route_ns; /* when bpf_fib_lookup() last routed a reply (then peer_mac, self_mac and ifindex
			     * hold its result, used for XD_NAT_ROUTE_NS); 0 = not yet */
};

/* Per-backend Out counters of NAT (per-CPU array indexed by backend index):
 * the replies the director rewrote back to VIP:port, as ipvsadm --stats
 * shows OutPkts / OutBytes for masquerading. 16 bytes. */
struct xd_nat_stats {
	__u64 packets;
	__u64 bytes;
};

/* Per-CPU NAT reply caches (xd_noc4_v1 / xd_noc6_v1: one array each,
 * CPU-major, XD_NAT_OUT_CACHE4 / XD_NAT_OUT_CACHE6 slots per CPU in 2-way
 * sets chosen by a hash of the key), in front of the reverse tables as the
 * flow caches are in front of the flow tables: a reply's rewrite, copied from
 * its reverse entry with the route that entry holds, so a steady reply costs
 * an array lookup and a key compare instead of a hashed LRU lookup. The
 * reverse tables stay the source of truth: a slot is filled only from an entry
 * found with a fresh route and used only until `expires` (a removed or changed
 * entry is then looked up again: a reply it no longer matches is passed
 * untouched). Written by the program only. 64 and 128 bytes. */
struct xd_nat_out4_cache {
	__u64 key[2];   /* the reply's struct xd_flow4_key, as is */
	__u64 expires;  /* bpf_jiffies64() after which the slot is stale */
	__u32 backend;  /* backend index (Out counters); 0 = empty slot */
	__u32 ifindex;  /* egress interface (the route's) */
	__be32 vip;     /* the new source address; network order */
	__be16 vport;   /* the new source port; network order */
	__be16 csum_l3; /* IPv4 header difference: source -> VIP and TTL - 1, folded */
	__be16 csum_l4; /* TCP/UDP difference: source address and port, folded */
	__u8 smac[6];   /* frame source: the director's MAC on ifindex */
	__u8 dmac[6];   /* frame destination: the route's next hop */
	__u8 pad[10];   /* always zero: a slot is one 64-byte line */
};

struct xd_nat_out6_cache {
	__u64 key[5]; /* the reply's struct xd_flow_key, as is */
	__u64 expires;
	__u32 backend;
	__u32 ifindex;
	__be32 vip[4];
	__be16 vport;
	__be16 csum_l4; /* TCP/UDP difference: source address (pseudo-header) and port, folded */
	__u8 smac[6];
	__u8 dmac[6];
	__u8 pad[40]; /* always zero: a slot is two 64-byte lines */
};

/* IPv6 flows (and embryonic IPv6 flows) map key: 5-tuple as seen on the wire
 * from the client. Also the tuple the program parses every packet into. 40 bytes. */
struct xd_flow_key {
	__be32 saddr[4]; /* client address; network order */
	__be32 daddr[4]; /* VIP; network order */
	__be16 sport;    /* client port; network order */
	__be16 dport;    /* VIP port; network order */
	__u8 proto;      /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;     /* enum xd_family: XD_FAMILY_V6 in the IPv6 maps */
	__u8 pad[2];     /* must be zero */
};

/* IPv4 flows (and embryonic IPv4 flows) map key. 16 bytes: the flow table is
 * hashed on every established packet, and jhash plus the compare of a 16-byte
 * key cost about half of a 40-byte one (~11 vs ~22 ns measured). */
struct xd_flow4_key {
	__be32 saddr; /* client address; network order */
	__be32 daddr; /* VIP; network order */
	__be16 sport; /* client port; network order */
	__be16 dport; /* VIP port; network order */
	__u8 proto;   /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad[3];  /* must be zero */
};

/* flows and embryonic flows map value. 16 bytes. */
struct xd_flow {
	__u32 backend;      /* backend index */
	__u32 generation;   /* backend generation when the flow was created */
	__u64 last_seen_ns; /* bpf_ktime_get_coarse_ns() (CLOCK_MONOTONIC, jiffy-grained) of a recent packet, refreshed at most once a second;
			     * its bit XD_FLOW_BIT_CLOSED is set once the client sent a FIN or RST */
};

/*
 * Flow table entries (xd_flow4_v3 / xd_flow6_v3: arrays used as
 * set-associative hash tables, bpf/flow.h). Bucket b is entries
 * b * XD_FLOW_WAYS .. b * XD_FLOW_WAYS + XD_FLOW_WAYS - 1; a key's bucket is
 * its seeded hash (flow.h ft4_hash() / ft6_hash(), src/bpf/flowtable.ts) masked by the bucket count
 * (max_entries / XD_FLOW_WAYS, a power of two). An entry is the flow key as
 * is (the key fields of struct xd_flow4_key / xd_flow_key, compared in full),
 * then the fields of struct xd_flow (a pointer to `backend` serves as one).
 * backend 0 = empty. Written by the program (and by tests through the same
 * rule, src/bpf/flowtable.ts). 32 and 64 bytes.
 */
struct xd_flow4_entry {
	__be32 saddr;       /* client address; network order */
	__be32 daddr;       /* VIP; network order */
	__be16 sport;       /* client port; network order */
	__be16 dport;       /* VIP port; network order */
	__u8 proto;         /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad[3];        /* must be zero */
	__u32 backend;      /* backend index; 0 = empty entry */
	__u32 generation;   /* as struct xd_flow's */
	__u64 last_seen_ns; /* as struct xd_flow's */
};

struct xd_flow6_entry {
	__be32 saddr[4];    /* client address; network order */
	__be32 daddr[4];    /* VIP; network order */
	__be16 sport;       /* client port; network order */
	__be16 dport;       /* VIP port; network order */
	__u8 proto;         /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;        /* XD_FAMILY_V6 */
	__u8 pad[2];        /* must be zero */
	__u32 backend;      /* backend index; 0 = empty entry */
	__u32 generation;   /* as struct xd_flow's */
	__u64 last_seen_ns; /* as struct xd_flow's */
	__u8 pad2[8];       /* must be zero: an entry is one 64-byte line */
};

/* Bits of struct xd_flow's last_seen_ns that are not time. CLOCK_MONOTONIC
 * counts from boot and needs 292 years to reach bit 63, so the top bit is
 * free: it marks a flow whose client sent FIN or RST (IPVS moves such a
 * connection from ActiveConn to InActConn). Readers of the time mask it. */
enum xd_flow_bits {
	XD_FLOW_BIT_CLOSED = 63,
};

/* probation tables value: the first three fields are struct xd_flow's (a
 * pointer to one serves as one). 24 bytes. */
struct xd_pflow {
	__u32 backend;      /* backend index */
	__u32 generation;   /* backend generation when the flow was created */
	__u64 last_seen_ns; /* as struct xd_flow's */
	__u64 handshake_ns; /* bpf_ktime_get_coarse_ns() when its handshake completed here (the client's
			     * packet after its opening one) */
};

/* Per-CPU flow cache slots (xd_fc4_v2 / xd_fc6_v2: one array each, CPU-major,
 * XD_FLOW_CACHE4 / XD_FLOW_CACHE6 slots per CPU in 2-way sets chosen by a hash
 * of the key):
 * copies of recently hit flow-table entries, so an established packet costs an
 * array lookup and a key compare instead of a hashed LRU lookup. The flow
 * tables stay the source of truth: a slot is used only until `expires`, then
 * the flow table is looked up again (which also keeps the flow recent in its
 * LRU and refreshes last_seen_ns); a slot whose backend entry no longer
 * matches (generation, state) is never used. Written by the program only.
 * 32 and 64 bytes. */
struct xd_flow4_cache {
	__u64 key[2];     /* the struct xd_flow4_key, as is */
	__u32 backend;    /* backend index; 0 = empty slot */
	__u32 generation; /* backend generation, as in the flow entry */
	__u64 expires;    /* bpf_jiffies64() after which the slot is stale */
};

struct xd_flow6_cache {
	__u64 key[5]; /* the struct xd_flow_key, as is */
	__u32 backend;
	__u32 generation;
	__u64 expires;
	__u64 pad; /* always zero: a slot is one 64-byte line */
};

/* rings map value: a backend index. The rings array holds, for service id s
 * and generation g, ring_max slots starting at (s * 2 + g) * ring_max. */

/* Per-service counters (per-CPU array indexed by service id). 32 bytes.
 * The program writes only no_backend: a forwarded packet is counted once, on
 * its backend (each backend entry belongs to one service). The control plane
 * adds the counters of a backend entry into its service's here when it clears
 * or reuses the entry, so service totals = this + its live backends. */
struct xd_service_stats {
	__u64 packets;    /* packets forwarded by backends no longer in the service */
	__u64 bytes;      /* bytes forwarded by backends no longer in the service */
	__u64 new_flows;  /* flows created on backends no longer in the service */
	__u64 no_backend; /* packets that found no usable backend */
};

/* Per-backend counters (per-CPU array indexed by backend index): the one
 * counter an established packet touches. 40 bytes. */
struct xd_backend_stats {
	__u64 packets;   /* packets forwarded to this backend */
	__u64 bytes;     /* bytes forwarded to this backend */
	__u64 new_flows; /* flows created on this backend */
	__u64 flow_hits; /* of packets, those of XD_R_TX_FLOW_HIT (counted here, not in xd_rsnst) */
	__u64 flow_hit_bytes; /* their bytes */
};

/* Flood guard counters (per-CPU array of one): entries created in the tables
 * that stand in front of the flow tables. 32 bytes. */
struct xd_guard {
	__u64 embryonic; /* entries created in the embryonic tables (opening packets) */
	__u64 takeovers; /* entries created in the takeover tables by a packet of an unknown flow
			   * that is not an opening one (mid-stream takeover, or a spoofed bare ACK) */
	__u64 handshakes; /* flows moved from the embryonic to the probation tables (handshake completed) */
	__u64 limited; /* proven flows kept in the probation tables: above new_flow_rate */
};

/* Global rate limit (array indexed by enum xd_rate_idx, shared by all CPUs):
 * one GCRA state word, updated with compare-and-swap (rate.h). 8 bytes. */
struct xd_rate {
	__u64 tat_ns; /* theoretical arrival time: bpf_ktime_get_coarse_ns() after which one more event is due */
};

/* Per-reason counters (per-CPU array indexed by enum xd_reason). 16 bytes. */
struct xd_reason_stats {
	__u64 packets;
	__u64 bytes;
};

/* meta map value (array of one): written by the control plane that created
 * the pinned instance, checked by any control plane that adopts it. 32 bytes. */
struct xd_meta {
	__u32 layout_version; /* XD_LAYOUT_VERSION */
	__u32 ring_max;       /* ring_max the program was loaded with */
	__u32 max_services;   /* max_entries of services / per-service maps */
	__u32 max_backends;   /* max_entries of backends / per-backend maps */
	__u64 created_ns;     /* CLOCK_REALTIME ns when the instance was created */
	__u64 layout_hash;    /* hash of the generated layouts, checked on adoption */
	__u32 flow_seed;      /* flow_seed the program was loaded with (flow.h ft4_hash()) */
	__u32 pad;
};

/* Connection sync (bpf/sync.h): why a flow was reported. */
enum xd_sync_kind {
	XD_SYNC_HANDSHAKE = 1, /* its handshake completed here (it entered the probation table) */
	XD_SYNC_TAKEOVER =
		2, /* taken over mid-stream, or re-placed because its backend went (takeover table) */
	XD_SYNC_REFRESH =
		3, /* a long-lived flow still in use (at most once per 2^sync_refresh_shift ns) */
};

/* One record of the sync ring buffer (xd_sync_v1), read by src/sync. The
 * key fields are struct xd_flow_key's (IPv4 in the first word). 56 bytes. */
struct xd_sync_event {
	__be32 saddr[4];  /* client address; network order */
	__be32 daddr[4];  /* VIP; network order */
	__be16 sport;     /* client port; network order */
	__be16 dport;     /* VIP port; network order */
	__u8 proto;       /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;      /* enum xd_family */
	__u8 kind;        /* enum xd_sync_kind */
	__u8 pad;         /* zero */
	__u32 backend;    /* backend index (user space turns it into the backend's address) */
	__u32 generation; /* that backend's generation */
	__u64 seen_ns;    /* bpf_ktime_get_coarse_ns() of the packet that caused the report */
};

/* Sync export counters (per-CPU array, key 0). 16 bytes. */
struct xd_sync_stats {
	__u64 events;  /* records written to the ring buffer */
	__u64 dropped; /* records lost: the ring buffer was full (user space fell behind) */
};

#endif /* XDIRECTOR_H */
