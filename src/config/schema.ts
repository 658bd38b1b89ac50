// The config file schema (YAML, snake_case keys) and the typed Config it becomes (camelCase).
// Field-level rules live here; rules across fields (duplicates, families, capacity) are in
// rules.ts. The monitor/health sections come from health.ts and vrrp from vrrp.ts (owned by
// the health and VRRP helpers) and keep their own (snake_case) output types. Pure.

import { z } from 'zod';
import { DEFAULT_RING_SIZE } from '../maglev';
import { IPVS_MH_DEFAULT_SIZE, IPVS_MH_PRIMES } from '../maglev';
import type { Family, OnEmpty, Proto, RingKind, Scheduler } from '../state/types';
import {
  address,
  absPath,
  Address,
  bool,
  int,
  interfaceName,
  leaf,
  mac,
  oneOf,
  pattern,
  ringSize,
  show,
} from './fields';
import { healthSchema, monitorSchema, HealthConfig, MonitorConfig } from './health';
import { vrrpSchema, ResolvedVrrpInstanceConfig } from './vrrp';
import { bgpSchema, BgpConfig } from './bgp';
import { syncSchema, SyncConfig } from './sync';
import { httpAddress, httpHostNames } from './admin';
import { checkScriptSchema, scriptUserSchema, type CheckScriptConfig } from './script';

export const DATAPLANES = ['auto', 'xdp', 'ipvs'] as const;
export const XDP_MODES = ['native', 'generic'] as const;
export const PROTOCOLS = ['tcp', 'udp'] as const;
export const SCHEDULERS = ['maglev', 'sh', 'wrr', 'rr', 'lc'] as const;
export const RING_KINDS = ['maglev', 'ipvs-mh'] as const;
export const ON_EMPTY = ['pass', 'drop'] as const;
export const CHECKS = ['mysql', 'tcp', 'script', 'none'] as const;
export const POOLS = ['static', 'writer', 'readers'] as const;
export const FORWARDING = ['dr', 'tunnel', 'nat'] as const;
export const ENCAPS = ['ipip', 'gue'] as const;
export { DEFAULT_GUE_PORT } from '../defaults';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export type DataplaneChoice = (typeof DATAPLANES)[number];
export type XdpMode = (typeof XDP_MODES)[number];
export type CheckKind = (typeof CHECKS)[number];
export type PoolKind = (typeof POOLS)[number];
export type Forwarding = (typeof FORWARDING)[number];
export type Encap = (typeof ENCAPS)[number];

export const DEFAULT_PIN_DIR = '/sys/fs/bpf/xdirector';
export { DEFAULT_SOCKET_DIR } from '../defaults';
/** Drains, maintenance, run-time weights and the director drain: kept across stop, start and reboot (the unit's StateDirectory). */
export const DEFAULT_STATE_DIR = '/var/lib/xdirector';
// The XDP program's table sizes and rates: defined in src/defaults.ts, which the dataplane reads
// too (it does not import the config); config/index.ts exports them.
import {
  DEFAULT_FLOW_TABLE_SIZE,
  DEFAULT_EMBRYONIC_TABLE_SIZE,
  DEFAULT_NEW_FLOW_RATE,
  DEFAULT_TAKEOVER_TABLE_SIZE,
  DEFAULT_SYN_REUSE_IDLE_MS,
  DEFAULT_TOO_BIG_RATE,
  DEFAULT_MAX_SERVICES,
  DEFAULT_MAX_BACKENDS,
} from '../defaults';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$/;
const NAME_WHAT = 'a name of 1 to 64 letters, digits and _ . : @ - (starting with a letter or digit)';

const ipvsMhSize = leaf<number>(
  (v) =>
    typeof v === 'number' && IPVS_MH_PRIMES.includes(v)
      ? { value: v }
      : {
          problem: `must be the kernel's IP_VS_MH_TAB_SIZE, one of ${IPVS_MH_PRIMES.join(', ')} (Debian: ${IPVS_MH_DEFAULT_SIZE}), got ${show(v)}`,
        },
  { default: IPVS_MH_DEFAULT_SIZE },
);

/** A section that may be absent: absent = {} so its fields take their defaults. */
function section<S extends z.ZodRawShape>(shape: S) {
  return z.preprocess((v) => (v === undefined ? {} : v), z.strictObject(shape));
}

/** The largest backend weight: the one rule for the config's `weight:` and `xdirector weight` at run time. */
export const WEIGHT_MAX = 65535;

export const backendSchema = z.strictObject({
  address: address(),
  port: int(1, 65535, { optional: true }),
  weight: int(0, WEIGHT_MAX, { default: 1, open: true }),
  mac: mac({ optional: true }),
  name: pattern(NAME_RE, NAME_WHAT, { optional: true }),
  /** Overrides the service's forwarding for this real server (dr or tunnel; nat is the service's choice). */
  forwarding: oneOf(FORWARDING, { optional: true }),
});

export const serviceSchema = z.strictObject({
  name: pattern(NAME_RE, NAME_WHAT),
  vip: address(),
  port: int(1, 65535),
  protocol: oneOf(PROTOCOLS, { default: 'tcp' }),
  scheduler: oneOf(SCHEDULERS, { default: 'maglev' }),
  ring: oneOf(RING_KINDS, { optional: true }),
  on_empty: oneOf(ON_EMPTY, { default: 'pass' }),
  check: oneOf(CHECKS, { optional: true }),
  /** check: script: the command, its timeout and user, misc_dynamic weights (script.ts). */
  check_script: checkScriptSchema.optional(),
  pool: oneOf(POOLS, { default: 'static' }),
  readers_include_writer: bool({ default: false }),
  forwarding: oneOf(FORWARDING, { default: 'dr' }),
  encap: oneOf(ENCAPS, { optional: true }),
  gue_port: int(1, 65535, { optional: true }),
  backends: z.array(backendSchema, {
    error: (iss) =>
      iss.input === undefined
        ? 'is required: list the real servers (it may be an empty list)'
        : `must be a list of backends, got ${show(iss.input)}`,
  }),
});

export const xdpSchema = section({
  mode: oneOf(XDP_MODES, { default: 'native' }),
  ring_size: ringSize({ default: DEFAULT_RING_SIZE }),
  ipvs_mh_size: ipvsMhSize,
  flow_table_size: int(1024, 1 << 27, { default: DEFAULT_FLOW_TABLE_SIZE, open: true }),
  embryonic_table_size: int(64, 1 << 24, { default: DEFAULT_EMBRYONIC_TABLE_SIZE, open: true }),
  takeover_table_size: int(64, 1 << 24, { default: DEFAULT_TAKEOVER_TABLE_SIZE, open: true }),
  new_flow_rate: int(0, 100_000_000, { default: DEFAULT_NEW_FLOW_RATE }),
  syn_reuse_idle_ms: int(0, 3_600_000, { default: DEFAULT_SYN_REUSE_IDLE_MS }),
  too_big_rate: int(0, 100_000_000, { default: DEFAULT_TOO_BIG_RATE }),
  max_services: int(1, 65536, { default: DEFAULT_MAX_SERVICES, open: true }),
  max_backends: int(2, 1 << 20, { default: DEFAULT_MAX_BACKENDS, open: true }),
  pin_dir: absPath({ default: DEFAULT_PIN_DIR }),
});

/** The director's side of tunnel forwarding: outer source addresses, optional path MTU. */
export const tunnelSchema = section({
  source_v4: address({ optional: true }),
  source_v6: address({ optional: true }),
  mtu: int(1280, 65535, { optional: true }),
});

/** The director's side of NAT forwarding: its server-side (inner) interface; absent = the top-level interface (one-armed). */
export const natSchema = section({
  interface: interfaceName({ optional: true }),
});

export const configSchema = z.strictObject({
  instance: pattern(/^[a-z0-9_-]{1,32}$/, 'an instance name of 1 to 32 characters a-z 0-9 _ -'),
  interface: interfaceName(),
  dataplane: oneOf(DATAPLANES, { default: 'auto' }),
  xdp: xdpSchema,
  admin: section({
    socket: absPath({ optional: true, maxBytes: 107 }),
    /** Optional HTTP listener "host:port" for /metrics and the status page (off by default; src/config/admin.ts). */
    http: httpAddress,
    /** File holding the token that allows drain/undrain/weight over HTTP (without it the listener is read-only); it also reads. */
    http_token_file: absPath({ optional: true }),
    /** File holding the token that reads /, /status and /metrics (required on a non-loopback bind unless http_token_file is set). */
    http_read_token_file: absPath({ optional: true }),
    /** Host names a loopback listener answers to besides its address and localhost (DNS rebinding). */
    http_host_names: httpHostNames,
  }),
  /** Where the operator's decisions are kept (drains, maint, run-time weights, director drain). */
  state_dir: absPath({ default: DEFAULT_STATE_DIR }),
  log: section({ level: oneOf(LOG_LEVELS, { default: 'info' }) }),
  /** The unprivileged user operator scripts run as (check scripts; VRRP track and notify scripts). */
  script_user: scriptUserSchema,
  monitor: monitorSchema.optional(),
  health: healthSchema.optional(),
  vrrp: vrrpSchema.optional(),
  bgp: bgpSchema.optional(),
  /** Connection sync between directors (sync.ts). */
  sync: syncSchema.optional(),
  tunnel: tunnelSchema,
  nat: natSchema,
  services: z.array(serviceSchema, {
    error: (iss) =>
      iss.input === undefined
        ? 'is required: list at least one service'
        : `must be a list of services, got ${show(iss.input)}`,
  }),
});

/** Raw zod output (snake_case, before cross-field defaults). */
export type RawConfig = z.output<typeof configSchema>;

export interface BackendConfig {
  /** Identity: "address:port" ("[v6]:port"), address in canonical form. */
  key: string;
  /** Operator-facing name (default: the key); one name per real server across the config. */
  name: string;
  /** Canonical address text. */
  address: string;
  family: Family;
  port: number;
  /** Configured weight (>= 0); 0 = drained from the start. */
  weight: number;
  /** Static MAC (lower case), overriding the neighbour table. With tunnel forwarding: the next hop's MAC. */
  mac?: string;
  /** Effective forwarding (the backend's own, else the service's). */
  forwarding: Forwarding;
}

export interface ServiceConfig {
  name: string;
  /** Canonical address text. */
  vip: string;
  family: Family;
  port: number;
  protocol: Proto;
  scheduler: Scheduler;
  /** Ring kind: explicit, else ipvs-mh for maglev/sh when IPVS may be used (dataplane auto|ipvs), else maglev. */
  ring: RingKind;
  /** Slots: xdp.ring_size for maglev, xdp.ipvs_mh_size (4093) for ipvs-mh. */
  ringSize: number;
  onEmpty: OnEmpty;
  /** Health check kind: explicit, else mysql when the real servers listen on 3306 (the service port, or with nat every backend's port), else tcp. */
  check: CheckKind;
  /** check: script only: what runs, as whom, for how long. */
  checkScript?: CheckScriptConfig;
  pool: PoolKind;
  readersIncludeWriter: boolean;
  /** Default forwarding of its backends: dr (default) or tunnel; nat applies to every backend. */
  forwarding: Forwarding;
  /** Tunnel encapsulation (tunnel backends): ipip (default) or gue. */
  encap: Encap;
  /** GUE's UDP destination port (encap gue). */
  guePort: number;
  backends: BackendConfig[];
}

export interface TunnelConfig {
  /** Outer source address for IPv4 real servers (canonical text). */
  sourceV4?: string;
  /** Outer source address for IPv6 real servers. */
  sourceV6?: string;
  /** Path MTU override (outer packet); default: the route's MTU, else the interface's. */
  mtu?: number;
}

export interface NatConfig {
  /** The director's server-side interface: where NAT backends are reached and their replies arrive. The top-level interface when the config has no nat.interface (one-armed NAT). */
  interface: string;
  /** nat.interface names another interface than the top-level one (client and server sides apart). */
  twoArmed: boolean;
}

export interface XdpConfig {
  mode: XdpMode;
  ringSize: number;
  /** The kernel's IPVS mh table size (CONFIG_IP_VS_MH_TAB_INDEX), for services with ring: ipvs-mh. */
  ipvsMhSize: number;
  flowTableSize: number;
  /** Entries of each embryonic table (IPv4, IPv6): flows until the client's second packet. */
  embryonicTableSize: number;
  /** Entries of each takeover and each probation table (IPv4, IPv6). */
  takeoverTableSize: number;
  /** Proven flows per second, all CPUs together, that may enter the flow table; 0 = no limit. */
  newFlowRate: number;
  /** A SYN reusing a tracked flow's 5-tuple reschedules it only after this many ms without a packet (0: always). */
  synReuseIdleMs: number;
  /** The director's own frag needed / PTB answers per second, all CPUs together; 0 = no limit. */
  tooBigRate: number;
  maxServices: number;
  maxBackends: number;
  pinDir: string;
}

export interface Config {
  instance: string;
  interface: string;
  dataplane: DataplaneChoice;
  xdp: XdpConfig;
  admin: {
    socket: string;
    http?: { host: string; port: number };
    /** Write token (POST /drain, /undrain, /weight); it also reads. */
    httpTokenFile?: string;
    /** Read token for /, /status, /metrics. */
    httpReadTokenFile?: string;
    /** Extra Host names a loopback listener accepts (lower case). */
    httpHostNames?: string[];
  };
  /** Drains, maint, run-time weights and the director drain live here (state_dir). */
  stateDir: string;
  log: { level: (typeof LOG_LEVELS)[number] };
  /** The unprivileged user operator scripts run as (script_user); absent: VRRP scripts run as the daemon's user. */
  scriptUser?: string;
  /** MySQL monitor account (health.ts schema, snake_case fields); required when a service checks mysql. */
  monitor?: MonitorConfig;
  /** Health check settings (health.ts schema, snake_case fields), defaults applied when absent. */
  health: HealthConfig;
  /** VRRP instances (vrrp.ts schema) with each interface resolved (default: the top-level interface). */
  vrrp: ResolvedVrrpInstanceConfig[];
  /** BGP announcement of the service VIPs (bgp.ts); absent: no BGP. */
  bgp?: BgpConfig;
  /** Connection sync between directors (sync.ts); absent: none. */
  sync?: SyncConfig;
  tunnel: TunnelConfig;
  nat: NatConfig;
  services: ServiceConfig[];
  /** Where this config came from (file name as given), for messages. */
  source: string;
  /** Valid but probably unmeant (warnings.ts): printed by check-config, logged by the daemon. */
  warnings: string[];
}

export type { Address };
