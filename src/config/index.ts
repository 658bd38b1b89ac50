// Config: YAML file -> validated, typed Config. Pure (one file read in loadConfig).
export { loadConfig, parseConfig } from './load';
export type { LocatedProblem } from './load';
export { backendKey, canonicalAddress, parseAddress } from '../net/inet';
export type { ParsedAddress } from '../net/inet';
export { validInterfaceName, suggest } from './fields';
export { configSchema, DEFAULT_PIN_DIR, DEFAULT_SOCKET_DIR, DEFAULT_STATE_DIR } from './schema';
export {
  DEFAULT_FLOW_TABLE_SIZE,
  DEFAULT_EMBRYONIC_TABLE_SIZE,
  DEFAULT_NEW_FLOW_RATE,
  DEFAULT_TAKEOVER_TABLE_SIZE,
  DEFAULT_SYN_REUSE_IDLE_MS,
  DEFAULT_TOO_BIG_RATE,
  DEFAULT_MAX_SERVICES,
  DEFAULT_MAX_BACKENDS,
} from '../defaults';
export type {
  Config,
  ServiceConfig,
  BackendConfig,
  NatConfig,
  XdpConfig,
  DataplaneChoice,
  XdpMode,
  CheckKind,
  PoolKind,
} from './schema';
export { WEIGHT_MAX, serviceSchema, FORWARDING } from './schema';
export type { TunnelConfig } from './schema';
export { backendForwarding } from './forwarding';
export { isLoopbackHost } from './admin';
export { MIN_TOKEN_LENGTH, MIN_SYNC_KEY_BYTES, syncKeyOfFile } from './files';
export { md5KeyOfFile } from './bgp';
export type { BgpConfig } from './bgp';
export type { SyncConfig } from './sync';
export type { HealthConfig, MonitorConfig } from './health';
export { healthRoundMs } from './health';
export { resolveVrrpInterfaces, vrrpSchema } from './vrrp';
export type { ResolvedVrrpInstanceConfig } from './vrrp';
export { lookupUser, scriptArgv } from './script';
export type { CheckScriptConfig, UserIds } from './script';
