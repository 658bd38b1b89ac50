// Test configs built by the product's own parser (src/config): defaults and cross-field rules
// come from there, so health and desired-state tests get exactly what the daemon hands them.
import assert from 'node:assert/strict';
import { parseConfig, type Config } from '../../src/config';
import { XdError } from '../../src/errors';
import { addressFamily, backendKey, canonicalAddress } from '../../src/net/inet';

type Duration = number | string;

export interface TestBackend {
  address: string;
  port: number;
  name?: string;
  weight?: number;
  mac?: string;
}
export interface TestService {
  name: string;
  check?: 'mysql' | 'tcp' | 'script' | 'none';
  /** check: script (snake_case keys as in the config file). */
  check_script?: { command: string; timeout?: Duration; user?: string; dynamic?: boolean };
  pool?: 'static' | 'writer' | 'readers';
  scheduler?: 'maglev' | 'sh' | 'wrr' | 'rr' | 'lc';
  readersIncludeWriter?: boolean;
  /** Default: the first backend's port. */
  port?: number;
  backends: TestBackend[];
}
export interface TestMonitor {
  user: string;
  password_file?: string;
  password_env?: string;
  connect_timeout?: Duration;
  source_address?: string;
}
export interface TestHealth {
  interval?: Duration;
  timeout?: Duration;
  rise?: number;
  fall?: number;
  fresh_connect_interval?: Duration;
  max_replication_lag?: Duration;
  heartbeat?: { table: string; column?: string };
}

/** Milliseconds as a duration with its unit ("250ms"); strings pass as written. */
const dur = (v: Duration | undefined): string | undefined =>
  v === undefined ? undefined : typeof v === 'number' ? `${v}ms` : v;

function durations<T extends object>(o: T | undefined, keys: (keyof T)[]): Record<string, unknown> | undefined {
  if (!o) return undefined;
  const out = { ...o } as Record<string, unknown>;
  for (const k of keys) if (out[k as string] !== undefined) out[k as string] = dur(out[k as string] as Duration);
  return out;
}

/**
 * A parsed Config with these services (VIPs 10.255.0.1, .2, ... in order), monitor and health sections.
 *
 * The test servers (MariaDB, TCP) listen on loopback ports of their own, while the product refuses a
 * backend port other than its service port (DR and tunnels cannot translate ports). So each real
 * server is parsed under a stand-in address of its family on the service port, named by its real
 * key, and its real address and port are put back on the parsed backend: every rule the parser
 * applies still runs, and health checks reach the real servers.
 */
export function testConfig(o: { services: TestService[]; monitor?: TestMonitor; health?: TestHealth }): Config {
  const standIns = new Map<string, string>();
  const real = new Map<string, { address: string; port: number }>();
  const standIn = (b: TestBackend): string => {
    const key = backendKey(b.address, b.port);
    let a = standIns.get(key);
    if (!a) {
      const n = standIns.size + 1;
      a = addressFamily(b.address) === 6 ? `fd00:77::${n.toString(16)}` : `127.77.${n >> 8}.${n & 255}`;
      standIns.set(key, a);
      real.set(canonicalAddress(a), { address: canonicalAddress(b.address), port: b.port });
    }
    return a;
  };
  const raw = {
    instance: 'test',
    interface: 'lo',
    dataplane: 'xdp',
    ...(o.monitor ? { monitor: durations(o.monitor, ['connect_timeout']) } : {}),
    ...(o.health
      ? { health: durations(o.health, ['interval', 'timeout', 'fresh_connect_interval', 'max_replication_lag']) }
      : {}),
    services: o.services.map((s, i) => ({
      name: s.name,
      vip: `10.255.0.${i + 1}`,
      port: s.port ?? s.backends[0]?.port ?? 3306,
      ...(s.check ? { check: s.check } : {}),
      ...(s.check_script ? { check_script: { ...s.check_script, timeout: dur(s.check_script.timeout) } } : {}),
      ...(s.pool ? { pool: s.pool } : {}),
      ...(s.scheduler ? { scheduler: s.scheduler } : {}),
      ...(s.readersIncludeWriter !== undefined ? { readers_include_writer: s.readersIncludeWriter } : {}),
      backends: s.backends.map((b) => ({
        ...b,
        address: standIn(b),
        port: undefined,
        name: b.name ?? backendKey(b.address, b.port),
      })),
    })),
  };
  const cfg = parseConfig(JSON.stringify(raw), 'test.yaml');
  for (const s of cfg.services) {
    for (const b of s.backends) {
      const r = real.get(b.address)!;
      b.address = r.address;
      b.port = r.port;
      b.key = backendKey(r.address, r.port);
    }
  }
  return cfg;
}

/** What the daemon hands the health monitor, from testConfig(): services, monitor and health sections. */
export function healthInputs(o: {
  services: TestService[];
  monitor?: TestMonitor;
  health?: TestHealth;
}): Pick<Config, 'services' | 'monitor' | 'health'> {
  const c = testConfig(o);
  return { services: c.services, monitor: c.monitor, health: c.health };
}

/** The problem lines of a config text that must fail with `code` (file name lab.yaml). */
export function configProblems(text: string, code = 'XD_ERR_CONFIG_INVALID'): string[] {
  try {
    parseConfig(text, 'lab.yaml');
  } catch (e) {
    assert.ok(e instanceof XdError, `not an XdError: ${e}`);
    assert.equal(e.code, code, e.message);
    return e.message.split('\n');
  }
  assert.fail('the config was accepted');
}
