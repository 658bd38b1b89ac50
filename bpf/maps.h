/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * maps.h: the maps of the xdirector XDP program (kernel only).
 *
 * Names carry a layout version suffix (_vN): a layout change gets a new map
 * name, never a silent reinterpretation of a pinned map (Cilium
 * LB4_SERVICES_MAP_V2). Layout 2 split the flow table by family (xd_flow_v1 ->
 * xd_flow4_v2 + xd_flow6_v2), gave the backend counters a flow_hits field
 * (xd_best_v1 -> xd_best_v2) and added the embryonic tables and the guard. Layout 4 added the per-CPU flow caches (xd_fc4_v1, xd_fc6_v1) and the VIP ports (xd_vport_v1); layout 5 made the IPv4 one 2-way set-associative in one CPU-major array (xd_fc4_v2), layout 6 the IPv6 one (xd_fc6_v2); layout 7 added reasons (xd_rsnst_v1 -> xd_rsnst_v2), the global rate limits (xd_rate_v1), the takeover and probation tables (xd_tko4_v1, xd_tko6_v1, xd_prb4_v1, xd_prb6_v1) and new guard counters (xd_guard_v1 -> xd_guard_v2). Layout 8 added the connection sync ring buffer and its counters (xd_sync_v1, xd_syncst_v1: bpf/sync.h); layout 9 added NAT (xd_nat_v1, xd_nrev4_v1, xd_nrev6_v1, xd_nbst_v1, xd_nport_v1, xd_tx_v1) and a reason (xd_rsnst_v2 -> xd_rsnst_v3); layout 10 moved a NAT backend's fields into its backend entry (xd_nat_v1 + xd_be_v1 -> xd_be_v2) and added the per-CPU NAT reply caches (xd_noc4_v1, xd_noc6_v1); layout 11 replaced the kernel LRU flow tables by set-associative arrays of our own (xd_flow4_v2 -> xd_flow4_v3, xd_flow6_v2 -> xd_flow6_v3: struct xd_flow4_entry / xd_flow6_entry). Keys and values are defined in include/xdirector.h.
 * No LIBBPF_PIN_BY_NAME: the control plane pins explicitly under its own
 * per-instance directory. Every max_entries below is a default that user space
 * overrides before load (bpf_map__set_max_entries), so the program never uses
 * these sizes in its logic.
 */
#ifndef XD_MAPS_H
#define XD_MAPS_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "xdirector.h"

/* Which traffic is ours: {VIP, port, proto, family} -> service.
 * Key: struct xd_service_key (vip, port network order). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XD_MAX_SERVICES);
	__type(key, struct xd_service_key);
	__type(value, struct xd_service);
} xd_svc_v1 SEC(".maps");

/* Ports and protocols that some service has (see XD_VPORT_WORDS): checked
 * before any hashed lookup, so traffic for no service (the director's own,
 * other hosts') costs one array read. Written by the control plane: a bit is
 * set before its first service is added and cleared after its last one is
 * removed, so a set bit may name no service but a service's bit is never
 * clear. Key: __u32 word index, value: __u64 bits. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * XD_VPORT_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} xd_vport_v1 SEC(".maps");

/* Backends by index (0 = none, never used): MAC, flags, generation, and a
 * NAT backend's port, source MAC, path MTU and checksum differences.
 * Key: __u32 backend index, host order. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XD_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xd_backend);
} xd_be_v2 SEC(".maps");

/* Tunnel endpoints by backend index (same index as xd_be_v2): outer
 * addresses, encapsulation, path MTU. Written before the backend entry that
 * sets XD_BE_F_TUNNEL. Key: __u32 backend index, host order. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XD_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xd_tunnel);
} xd_tun_v1 SEC(".maps");

/* NAT reverse tables: a reply's 5-tuple -> the VIP:port it is rewritten to
 * (struct xd_nat_rev). Written by the full path for every packet it forwards
 * to a NAT backend (so the takeover, probation and embryonic paths install
 * them too) and refreshed from it at least once a flow cache slot's life;
 * LRU, sized like the flow tables, so they age as those do. A reply whose
 * entry is gone is passed to the kernel untouched until the client's next
 * packet through the full path puts it back.
 * Key: struct xd_flow4_key / xd_flow_key (family 6), as the reply arrives. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XD_MAX_FLOWS);
	__type(key, struct xd_flow4_key);
	__type(value, struct xd_nat_rev);
} xd_nrev4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XD_MAX_FLOWS);
	__type(key, struct xd_flow_key);
	__type(value, struct xd_nat_rev);
} xd_nrev6_v1 SEC(".maps");

/* Per-CPU NAT reply caches in front of the reverse tables (struct
 * xd_nat_out4_cache / xd_nat_out6_cache), laid out as the flow caches are
 * (xd_fc4_v2): plain arrays, CPU-major, XD_NAT_OUT_CACHE4 / 6 slots a CPU in
 * 2-way sets; user space sizes each to that times the possible CPUs, and a
 * CPU beyond the size caches nothing. Key: __u32 slot. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XD_NAT_OUT_CACHE4);
	__type(key, __u32);
	__type(value, struct xd_nat_out4_cache);
} xd_noc4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XD_NAT_OUT_CACHE6);
	__type(key, __u32);
	__type(value, struct xd_nat_out6_cache);
} xd_noc6_v1 SEC(".maps");

/* Source ports of NAT backends, laid out as xd_vport_v1 (XD_VPORT_WORDS per
 * protocol): a packet that is no VIP's and whose source port bit is clear is
 * no NAT reply, passed after one array read. Key: __u32 word, value: __u64. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * XD_VPORT_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} xd_nport_v1 SEC(".maps");

/* NAT Out counters per backend, per CPU (struct xd_nat_stats). Key: __u32
 * backend index. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XD_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xd_nat_stats);
} xd_nbst_v1 SEC(".maps");

/* The interfaces NAT redirects to (two-armed: the client side and the
 * server side), for bpf_redirect_map(): key and value the ifindex. Frames
 * leave through the devmap's bulk queue, flushed once per NAPI poll. */
#ifndef XD_MAX_TX_IFS
#define XD_MAX_TX_IFS 64
#endif
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, XD_MAX_TX_IFS);
	__type(key, __u32);
	__type(value, __u32);
} xd_tx_v1 SEC(".maps");

/* Lookup tables: two generations per service, ring_max slots each; slot i of
 * generation g of service s is at (s * 2 + g) * ring_max + i. A changed table
 * is written in full to the inactive generation, then made live by one update
 * of xd_service.active_gen. Key: __u32 slot, value: __u32 backend index
 * (0 = hole: no backend), both host order. Default size is
 * XD_MAX_SERVICES * 2 * XD_RING_MAX. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XD_MAX_SERVICES * 2 * XD_RING_MAX);
	__type(key, __u32);
	__type(value, __u32);
} xd_ring_v1 SEC(".maps");

/* Flow tables: client 5-tuple -> backend index + backend generation, so an
 * established flow keeps its backend when the ring changes. Only flows that
 * completed a handshake here (TCP: SYN, then the client's ACK; UDP: a second
 * datagram) and then proved themselves (a packet XD_PROVE_NS later) enter
 * them, at most new_flow_rate a second over all CPUs: a flood of spoofed SYNs,
 * bare ACKs or SYN + ACK pairs churns the embryonic, takeover and probation
 * tables, never these; only an attacker who keeps each spoofed flow going for
 * XD_PROVE_NS gets in, at new_flow_rate.
 *
 * Our own layout, not the kernel's LRU hash (whose element is a 48-byte
 * header plus key and value, 96 bytes an IPv4 flow, reached through a bucket,
 * an element and an LRU node: several dependent cache misses at 1M flows): a
 * mmapable array used as a set-associative hash table (bpf/flow.h). A key
 * hashes once to a bucket of XD_FLOW_WAYS entries (struct xd_flow4_entry /
 * xd_flow6_entry): one 64-byte line for IPv4 (32 bytes a flow), one line an
 * entry for IPv6 (64 bytes a flow). A lookup reads one bucket and compares
 * the full key; a flow is never forwarded on its hash alone.
 *
 * Eviction, inside the bucket only: a new flow takes its bucket's entry of
 * the same key, else an empty one, else the one least recently seen
 * (last_seen_ns, which a packet refreshes at most once a second). So an
 * insert never evicts a flow seen more recently than the bucket's other
 * entries, a flood of new flows (at most new_flow_rate a second) evicts a
 * flow only by landing twice in its bucket after its last packet, and a
 * flow whose bucket received no insert since its last packet stays. Unlike
 * the LRU, a flow can go while an older flow of another bucket stays: with B
 * buckets a given bucket receives an insert every B / new_flow_rate seconds
 * on average. What the rule guarantees is only this, per bucket: random
 * flows overflow a bucket by chance, not when the table is full. With the
 * bucket count at least flow_table_size (user space: flowTableEntries(), so
 * the table has two entries per configured flow and holds them at half its
 * capacity), flow_table_size random flows find their bucket full in at most
 * ~10% of cases (Poisson, mean 1 a bucket), ~3% at half of them; a table of
 * exactly flow_table_size entries (mean 2) lost 25% at 1M flows. A flow that
 * finds its bucket full evicts the bucket's least recently seen flow, whose
 * next packet is taken over on the backend the ring gives it.
 *
 * Shared by all CPUs (not per CPU as Katran's): a flow whose packets move to
 * another CPU (RSS change, failover to a director with another queue layout)
 * keeps its backend. Sized by user space to a power of two of buckets
 * (max_entries = buckets * XD_FLOW_WAYS); the program reads the size from the
 * map. Key: __u32 entry index. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XD_MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct xd_flow4_entry);
} xd_flow4_v3 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XD_MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct xd_flow6_entry);
} xd_flow6_v3 SEC(".maps");

/* Per-CPU flow caches in front of the flow tables (struct xd_flow4_cache /
 * xd_flow6_cache). Per CPU, so a hit writes nothing shared; a flow whose
 * packets move to another CPU misses there and is found in the shared flow
 * table. Fixed sizes per CPU (the program masks with XD_FLOW_CACHE4/6). Key:
 * __u32 slot.
 *
 * Plain arrays, CPU-major: CPU c's slots are c * N .. c * N + N - 1 (N =
 * XD_FLOW_CACHE4 / XD_FLOW_CACHE6), and set s is slots 2s and 2s + 1 of those:
 * one 64-byte line for IPv4, one line a way for IPv6 (mmapable, so the values
 * start page-aligned). User space sizes each to N x possible CPUs; a CPU
 * beyond the size caches nothing. One inlined lookup, where a per-CPU array
 * loads a per-entry pointer first. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XD_FLOW_CACHE4);
	__type(key, __u32);
	__type(value, struct xd_flow4_cache);
} xd_fc4_v2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, XD_FLOW_CACHE6);
	__type(key, __u32);
	__type(value, struct xd_flow6_cache);
} xd_fc6_v2 SEC(".maps");

/* Embryonic tables: flows that sent only their opening packet (TCP SYN, first
 * UDP datagram), with the backend the ring gave them, until the client's next
 * packet moves them to the probation table. Small LRUs: a flood of spoofed
 * SYNs churns these and nothing else. Keys as the flow tables'. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XD_MAX_EMBRYONIC);
	__type(key, struct xd_flow4_key);
	__type(value, struct xd_flow);
} xd_emb4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XD_MAX_EMBRYONIC);
	__type(key, struct xd_flow_key);
	__type(value, struct xd_flow);
} xd_emb6_v1 SEC(".maps");

/* Takeover tables: flows this director did not see open (a non-opening
 * packet of an unknown flow: taken over mid-stream after a VRRP failover or an
 * ECMP change, or spoofed). They stay here, served like the flow tables (the
 * flow caches are filled from them too), but in their own LRUs: a flood of
 * packets that skip the handshake evicts only these, never a flow that
 * completed its handshake here. Keys and values as the flow tables'. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XD_MAX_TAKEOVER);
	__type(key, struct xd_flow4_key);
	__type(value, struct xd_flow);
} xd_tko4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XD_MAX_TAKEOVER);
	__type(key, struct xd_flow_key);
	__type(value, struct xd_flow);
} xd_tko6_v1 SEC(".maps");

/* Probation tables: flows whose handshake completed here, until they prove
 * themselves (a packet XD_PROVE_NS after it, struct xd_pflow.handshake_ns)
 * and move to the flow tables; served like them meanwhile. Their own LRUs: a
 * flood of fake handshakes (SYN + ACK pairs) evicts only flows younger than
 * XD_PROVE_NS, never a proven one; a flood of bare ACKs none. Sized like the
 * takeover tables. Keys as the flow tables'. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XD_MAX_TAKEOVER);
	__type(key, struct xd_flow4_key);
	__type(value, struct xd_pflow);
} xd_prb4_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, XD_MAX_TAKEOVER);
	__type(key, struct xd_flow_key);
	__type(value, struct xd_pflow);
} xd_prb6_v1 SEC(".maps");

/* Flood guard counters, per CPU (struct xd_guard). Key: __u32 0. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xd_guard);
} xd_guard_v2 SEC(".maps");

/* Global rate limits (struct xd_rate, one word each), shared by all CPUs on
 * purpose: a per-CPU budget would multiply the limit by the CPUs a flood is
 * spread over. Touched only by the events they limit, never by an established
 * packet. Key: __u32 enum xd_rate_idx. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XD_RATE_MAX);
	__type(key, __u32);
	__type(value, struct xd_rate);
} xd_rate_v1 SEC(".maps");

/* Per-service counters, per CPU (see struct xd_service_stats: the program
 * counts only no_backend here). Key: __u32 service id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XD_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct xd_service_stats);
} xd_svcst_v1 SEC(".maps");

/* Per-backend counters, per CPU: the only counter a forwarded packet touches
 * on the established path. Key: __u32 backend index. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XD_MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct xd_backend_stats);
} xd_best_v2 SEC(".maps");

/* Per-verdict-reason counters, per CPU: every packet lands in exactly one
 * (XD_R_TX_FLOW_HIT in xd_best_v2.flow_hits instead). Key: __u32 enum xd_reason. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XD_R_MAX);
	__type(key, __u32);
	__type(value, struct xd_reason_stats);
} xd_rsnst_v3 SEC(".maps");

/* Per-CPU new-flow counter per service for XD_SCHED_SEQ (slot = counter++ %
 * ring_size). Per CPU so no atomic is needed: each CPU walks the weighted ring
 * on its own, which keeps the shares. Key: __u32 service id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XD_MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
} xd_rr_v1 SEC(".maps");

/* Instance metadata written by the control plane (layout version, limits);
 * never read by the program, but part of the object so it is created, sized
 * and pinned with the rest. Key: __u32 0. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xd_meta);
} xd_meta_v1 SEC(".maps");

#endif /* XD_MAPS_H */
