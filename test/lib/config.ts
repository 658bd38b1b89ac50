// Test configs built by the product's own parser (src/config): defaults and cross-field rules
// come from there, so health and desired-state tests get exactly what the daemon hands them.
import { parseConfig, type Config } from '../../src/config';

type Duration = number | string;

export interface TestBackend { address: string; port: number; name?: string; weight?: number; mac?: string }
export interface TestService {
  name: string;
  check?: 'mysql' | 'tcp' | 'none';
  pool?: 'static' | 'writer' | 'readers';
  scheduler?: 'maglev' | 'sh' | 'wrr' | 'rr' | 'lc';
  readersIncludeWriter?: boolean;
  /** Default: the first backend's port. */
  port?: number;
  backends: TestBackend[];
}
export interface TestMonitor { user: string; password_file?: string; password_env?: string; connect_timeout?: Duration; source_address?: string }
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
const dur = (v: Duration | undefined): string | undefined => (v === undefined ? undefined : typeof v === 'number' ? `${v}ms` : v);

function durations<T extends object>(o: T | undefined, keys: (keyof T)[]): Record<string, unknown> | undefined {
  if (!o) return undefined;
  const out = { ...o } as Record<string, unknown>;
  for (const k of keys) if (out[k as string] !== undefined) out[k as string] = dur(out[k as string] as Duration);
  return out;
}

/** A parsed Config with these services (VIPs 10.255.0.1, .2, ... in order), monitor and health sections. */
export function testConfig(o: { services: TestService[]; monitor?: TestMonitor; health?: TestHealth }): Config {
  const raw = {
    instance: 'test',
    interface: 'lo',
    dataplane: 'xdp',
    ...(o.monitor ? { monitor: durations(o.monitor, ['connect_timeout']) } : {}),
    ...(o.health ? { health: durations(o.health, ['interval', 'timeout', 'fresh_connect_interval', 'max_replication_lag']) } : {}),
    services: o.services.map((s, i) => ({
      name: s.name,
      vip: `10.255.0.${i + 1}`,
      port: s.port ?? s.backends[0]?.port ?? 3306,
      ...(s.check ? { check: s.check } : {}),
      ...(s.pool ? { pool: s.pool } : {}),
      ...(s.scheduler ? { scheduler: s.scheduler } : {}),
      ...(s.readersIncludeWriter !== undefined ? { readers_include_writer: s.readersIncludeWriter } : {}),
      backends: s.backends,
    })),
  };
  return parseConfig(JSON.stringify(raw), 'test.yaml');
}

/** What the daemon hands the health monitor, from testConfig(): services, monitor and health sections. */
export function healthInputs(o: { services: TestService[]; monitor?: TestMonitor; health?: TestHealth }): Pick<Config, 'services' | 'monitor' | 'health'> {
  const c = testConfig(o);
  return { services: c.services, monitor: c.monitor, health: c.health };
}
