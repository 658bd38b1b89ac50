// Section 5: failover and health-detection times.
//
// Health detection is measured for real with the health work (src/health
// HealthMonitor, MySQL checks) against two throwaway MariaDB servers on
// loopback: the time from SIGKILL (dead server) and from SIGSTOP (hung server
// that still accepts TCP) of one backend to the monitor's snapshot that marks
// it down, i.e. the moment the desired state stops routing new connections to
// it (the dataplane apply that follows is part of section 1/4's costs, not here).
//
// VRRP failover (xdirector↔xdirector vs keepalived↔keepalived) is measured by
// the VRRP work's script test/vrrp/measure-failover.ts, which exports no
// function (it runs its main() when loaded) and is not part of the shipped
// src/ tree, so the bench cannot call it: reported as not available with that
// reason, never estimated.
import { parseConfig } from '../../src/config';
import { HealthMonitor } from '../../src/health';
import type { HealthSnapshot } from '../../src/health';
import { MariaDB } from '../lab/mariadb';
import type { Logger } from '../../src/log';
import { spread, roundSpread } from './stats';
import type { FailoverData, FailoverItem } from './types';

export interface FailoverBenchOptions {
  prefix: string;
  /** Runs per signal. */
  runs: number;
  /** Health settings; undefined = the documented defaults (what users get). */
  health?: { interval: number; timeout: number; rise: number; fall: number };
  log: Logger;
  progress?: (msg: string) => void;
}

export const FAILOVER_FULL = { runs: 3, health: undefined };
/** Quick mode: faster checks so the smoke run stays short; the report says so. */
export const FAILOVER_QUICK = { runs: 1, health: { interval: 200, timeout: 150, rise: 1, fall: 2 } };

const PW_ENV = 'XDH_BENCH_MONITOR_PASSWORD';

function waitFor(
  hm: HealthMonitor,
  pred: (s: HealthSnapshot) => boolean,
  timeoutMs: number,
  what: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      hm.off('change', onChange);
    };
    const onChange = (s: HealthSnapshot): void => {
      if (pred(s)) {
        done();
        resolve(Date.now());
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    hm.on('change', onChange);
    if (pred(hm.snapshot())) {
      done();
      resolve(Date.now());
    }
  });
}

async function healthDetection(o: FailoverBenchOptions): Promise<FailoverItem[]> {
  const servers = [1, 2].map((id) => new MariaDB({ prefix: `${o.prefix}f`, name: `h${id}`, serverId: id }));
  let hm: HealthMonitor | undefined;
  const prevPw = process.env[PW_ENV];
  try {
    await Promise.all(servers.map((m) => m.start()));
    process.env[PW_ENV] = 'monitor';
    // The monitor gets what the daemon gives it: services and sections parsed by src/config.
    const h0 = o.health;
    const cfg = parseConfig(
      JSON.stringify({
        instance: 'bench',
        interface: 'lo',
        dataplane: 'xdp',
        monitor: { user: 'monitor', password_env: PW_ENV },
        ...(h0
          ? { health: { interval: `${h0.interval}ms`, timeout: `${h0.timeout}ms`, rise: h0.rise, fall: h0.fall } }
          : {}),
        // One service per server: the servers listen on loopback ports of their own, and a service's
        // backends must listen on its port (the director cannot translate ports).
        services: servers.map((m, i) => ({
          name: `bench${i + 1}`,
          vip: '10.255.0.1',
          port: m.port,
          check: 'mysql',
          backends: [{ address: '127.0.0.1' }],
        })),
      }),
      'bench health config',
    );
    hm = new HealthMonitor({
      services: cfg.services,
      monitor: cfg.monitor,
      health: cfg.health,
      // The monitor logs every state change at warn: expected here, so only errors reach the output.
      log: o.log.child({}, { level: 'error' }),
    });
    const h = hm;
    const settings = {
      interval: h.health.interval,
      timeout: h.health.timeout,
      rise: h.health.rise,
      fall: h.health.fall,
    };
    h.start();
    const victim = servers[1];
    const isUp = (up: boolean) => (s: HealthSnapshot) => s.backends.find((b) => b.port === victim.port)?.up === up;
    const limit = (settings.interval + settings.timeout) * (settings.fall + settings.rise + 4) + 10_000;
    await waitFor(h, (s) => s.backends.every((b) => b.up), limit, 'both backends up');
    const items: FailoverItem[] = [];
    for (const signal of ['SIGKILL', 'SIGSTOP'] as const) {
      const samples: number[] = [];
      for (let r = 0; r < o.runs; r++) {
        const t0 = Date.now();
        const down = waitFor(h, isUp(false), limit, `backend ${victim.port} marked down after ${signal}`);
        await victim.kill(signal);
        samples.push((await down) - t0);
        o.progress?.(`health detection ${signal} run ${r + 1}/${o.runs}: ${samples[samples.length - 1]} ms`);
        if (signal === 'SIGKILL') await victim.start();
        else await victim.kill('SIGCONT');
        await waitFor(h, isUp(true), limit, `backend ${victim.port} up again`);
      }
      items.push({
        name: `health detection, ${signal === 'SIGKILL' ? 'dead backend (SIGKILL)' : 'hung backend (SIGSTOP)'}`,
        status: 'ok',
        ms: roundSpread(spread(samples), 0),
        detail: {
          ...settings,
          defaults: o.health === undefined,
          measuredUntil: 'HealthMonitor snapshot marks the backend down',
        },
      });
    }
    return items;
  } finally {
    await hm?.stop().catch(() => undefined);
    if (prevPw === undefined) delete process.env[PW_ENV];
    else process.env[PW_ENV] = prevPw;
    for (const m of servers) await m.destroy().catch((err: unknown) => o.log.warn({ err }, 'stop mariadb'));
  }
}

export async function runFailoverBench(o: FailoverBenchOptions): Promise<FailoverData> {
  const items: FailoverItem[] = [];
  try {
    items.push(...(await healthDetection(o)));
  } catch (err) {
    items.push({
      name: 'health detection',
      status: 'not-available',
      reason: `the measurement failed: ${err instanceof Error ? err.message : String(err)}`,
    });
  }
  items.push({
    name: 'VRRP failover (master SIGKILL → first new MySQL connection via the new master)',
    status: 'not-available',
    reason:
      'the only measurement, test/vrrp/measure-failover.ts (xdirector↔xdirector vs keepalived↔keepalived, v3 100 ms and v2 1 s), exports no callable function: it runs main() on load and is a standalone script (`node dist/test/vrrp/measure-failover.js [runs] [--json file]`) outside the shipped src/ tree; run it directly for these numbers',
  });
  return { items };
}
