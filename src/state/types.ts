// The desired state: what config + health say the dataplane should do.
// Produced by src/state (config -> services, health -> weights/states, neighbour
// table -> MACs) and handed whole to a Dataplane, which works out the difference
// itself. Pure types: imported by every layer, imports nothing.

export type Family = 4 | 6;
export type Proto = 'tcp' | 'udp';
/** maglev (default), sh (client affinity), wrr/rr (per-flow round robin at flow creation), lc (Maglev weighted by connection counts). */
export type Scheduler = 'maglev' | 'sh' | 'wrr' | 'rr' | 'lc';
/** How the ring is built: xdirector's Maglev, or the exact table the kernel's IPVS `mh` scheduler builds. */
export type RingKind = 'maglev' | 'ipvs-mh';
/** What a service with no usable backend does: pass to the kernel (fast refusal) or drop. */
export type OnEmpty = 'pass' | 'drop';

/**
 * active: takes new flows in proportion to weight.
 * draining: established flows stay, no new flows (operator drain, or weight 0).
 * down: failed health checks: no new flows, established flows are re-hashed.
 * maint: the operator's maintenance (HAProxy's MAINT): like down whatever health says, no new
 *   flows and established flows end (XDP re-hashes them, IPVS removes the dest).
 */
export type BackendState = 'active' | 'draining' | 'down' | 'maint';

/**
 * dr: only the MACs change (same L2 segment); tunnel: the packet is encapsulated to the real
 * server (routed); nat: the destination VIP:port becomes the backend's address and port, and the
 * replies, which come back through the director as the real servers' gateway, get VIP:port back.
 */
export type Forwarding = 'dr' | 'tunnel' | 'nat';

/** How a tunnel backend is reached. */
export interface TunnelSpec {
  encap: 'ipip' | 'gue';
  /** GUE's UDP destination port (encap gue). */
  guePort: number;
  /** Outer source: the director's address of the real server's family. */
  source: string;
  /** Path MTU to the real server (outer packet); undefined = not known, no check. */
  mtu?: number;
}

export interface DesiredBackend {
  /** Stable identity across reloads: "address:port" ("[v6]:port" for IPv6). */
  key: string;
  /** Operator-facing name from config (defaults to key). */
  name: string;
  address: string;
  port: number;
  family: Family;
  /** Effective weight (>= 0) after health and drain; 0 means no new flows. */
  weight: number;
  /** The weight before health and drain (the run-time weight when one is set, else the config's): what an `ipvs-mh` ring keeps a drained backend's slots with (the kernel's last_weight). */
  configWeight?: number;
  /** Set when `xdirector weight` overrides the config's weight. */
  runtimeWeight?: number;
  state: BackendState;
  /** Destination MAC "aa:bb:cc:dd:ee:ff" (XDP needs it; IPVS ignores it): the real server's (DR) or the next hop's towards it (tunnel, nat). */
  mac?: string;
  /** Default dr. */
  forwarding?: Forwarding;
  /** Set when forwarding is tunnel. */
  tunnel?: TunnelSpec;
  /** Forwarding nat: the path MTU towards the backend (IP packet) when known; larger packets are answered with frag needed / packet too big. */
  natMtu?: number;
}

export interface DesiredService {
  name: string;
  vip: string;
  port: number;
  proto: Proto;
  family: Family;
  scheduler: Scheduler;
  ring: { kind: RingKind; size: number };
  onEmpty: OnEmpty;
  backends: DesiredBackend[];
}

export interface DesiredState {
  services: DesiredService[];
}

export interface BackendStatus {
  key: string;
  name: string;
  address: string;
  port: number;
  mac?: string;
  weight: number;
  state: BackendState;
  /** e.g. "dr", "tunnel/ipip", "tunnel/gue:6080", "nat". */
  forwarding?: string;
  /** IPVS's ActiveConn: TCP flows whose client sent no FIN or RST and that saw a packet within flow idle (XDP), or the kernel's count (IPVS). */
  activeFlows: number;
  /** IPVS's InActConn: TCP flows the client closed, for 120 s after their last packet, and every UDP flow (XDP); the kernel's count (IPVS). */
  inactiveFlows: number;
  packets: number;
  bytes: number;
  newFlows: number;
  /** NAT: the replies rewritten back to VIP:port (ipvsadm --stats OutPkts / OutBytes); absent otherwise. */
  outPackets?: number;
  outBytes?: number;
}

export interface ServiceStatus {
  name: string;
  vip: string;
  port: number;
  proto: Proto;
  scheduler: Scheduler;
  /** Forwarding method(s) of its backends: "dr", "tunnel/ipip", "nat", or several joined by "+". */
  forwarding?: string;
  packets: number;
  bytes: number;
  newFlows: number;
  noBackend: number;
  /** NAT services: their backends' Out counters together. */
  outPackets?: number;
  outBytes?: number;
  backends: BackendStatus[];
}

export type DataplaneKind = 'xdp' | 'ipvs';

/** The driver's XDP transmit error counters (`ethtool -S`), or why they could not be read. */
export type DriverTxErrors =
  { driver: string; txErrors: number; xmitErrors: number; counters: string[] } | { error: string };

export interface XdpDetail {
  interface: string;
  mode: 'native' | 'generic' | 'detached';
  programId: number;
  pinDir: string;
  /** Absent when the driver reports no XDP TX error counters. */
  driverTxErrors?: DriverTxErrors;
  /** Set while forwarded frames turn into driver TX errors (the alert text). */
  txAlert?: string;
  /** Set while the flood guard is under pressure (takeover or probation tables churning, new_flow_rate reached). */
  floodAlert?: string;
  /** Set while a NAT backend takes connections and no reply of it comes back through the director (its name and the fix). */
  natAlert?: string;
  /** Two-armed NAT: the server-side interface and how the program is attached there. */
  natInterface?: { name: string; mode: 'native' | 'generic' | 'detached' };
  /** The forwarding sysctls NAT turned on (bpf_fib_lookup routes only from a forwarding interface). */
  natSysctls?: Record<string, string>;
  /** The background walk of the flow map that counts active flows. */
  flowCounts: {
    entries: number;
    countedAt: string;
    walkMs: number;
    tables?: Record<string, { entries: number; capacity: number; bytes?: number; bytesPerFlow?: number }>;
  };
}

export interface IpvsDetail {
  /** IPVS version, e.g. "1.2.1". */
  version: string;
  connTabSize: number;
  /** The sysctls the dataplane set (name -> value). */
  sysctls: Record<string, string>;
  familyId: number;
  /** Kernel IPVS services this director did not create (left alone). */
  unmanagedServices: string[];
}

interface DataplaneStatusBase {
  services: ServiceStatus[];
  /** Per verdict reason packet counters (XDP only). */
  reasons?: Record<string, number>;
  /** Flood protection (XDP only): entries created in the embryonic tables; flows the new-flow rate guard kept out of the flow table. */
  /** Flood guard counters: embryonic entries, proven flows held back by new_flow_rate, takeover-table entries created by unknown flows, handshakes completed. */
  flood?: { embryonicCreated: number; rateLimited: number; takeoversCreated: number; handshakes: number };
}

export interface XdpStatus extends DataplaneStatusBase {
  kind: 'xdp';
  detail: XdpDetail;
}

export interface IpvsStatus extends DataplaneStatusBase {
  kind: 'ipvs';
  detail: IpvsDetail;
}

export type DataplaneStatus = XdpStatus | IpvsStatus;

export interface Dataplane {
  readonly kind: DataplaneKind;
  /** Make the kernel match `state`, changing only what differs. Throws XdError; on error nothing of this apply is left half done. */
  apply(state: DesiredState): Promise<void>;
  /** countFlows false: for the counters only (the daemon's rate sampling): XDP starts no flow-map walk and reports the last walk's active flows. */
  status(opts?: { countFlows?: boolean }): Promise<DataplaneStatus>;
  /** Does this dataplane take the traffic now (XDP: our program is still the one attached; IPVS: always)? For VRRP tracking. */
  attached(): boolean;
  /** XDP: read the driver's XDP TX error counters now (raises or clears the TX alert status shows); txErrors: how many since the previous poll. The daemon polls it every 2 s. */
  pollTxErrors?(): { txErrors: number };
  /** The backends as an adopted dataplane held them when it was opened (XDP hot restart over pinned maps); absent or empty otherwise. */
  pinnedBackends?(): PinnedBackend[];
  /** IPVS: the live connections in the kernel's table (TCP established, UDP), which a switch to XDP hands over (adoptNatConnections). */
  liveConnections?(): Promise<LiveConnection[]>;
  /**
   * XDP: take over the NAT connections another dataplane carried: each one of a NAT backend of
   * ours gets its reverse entry, so a reply that comes before the client's next packet is
   * translated back to VIP:port instead of leaving untranslated. Returns how many were installed.
   */
  adoptNatConnections?(conns: readonly LiveConnection[]): number;
  /**
   * True when a down backend is not in the dataplane at all (IPVS removes its dest): a configured
   * backend missing from an adopted service was then down, not new (src/health/adopt.ts).
   */
  readonly omitsDownBackends?: boolean;
  /** Stop using the dataplane. keepState=true (default): leave the kernel state (program attached, maps pinned / IPVS services) for a hot restart. */
  close(opts?: { keepState?: boolean }): Promise<void>;
}

/** One connection of a dataplane's own table (addresses in canonical text). */
export interface LiveConnection {
  family: Family;
  proto: Proto;
  client: string;
  clientPort: number;
  vip: string;
  vipPort: number;
  backend: string;
  backendPort: number;
}

/** One backend of one service as an adopted dataplane held it (hot restart). */
export interface PinnedBackend {
  vip: string;
  port: number;
  proto: Proto;
  address: string;
  state: BackendState;
}
