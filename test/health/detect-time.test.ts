// Measures, with the default settings (interval 1 s, timeout 500 ms, connect_timeout 1 s,
// rise 2, fall 3), the time from a backend's death (SIGKILL, or SIGSTOP: hung but still
// accepting TCP) to the 'change' event in which it leaves its pool. The signal is sent at a
// random phase of the check interval. XDE_DETECT_RUNS sets the runs per signal (default 2).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MariaDB } from '../../scripts/lab/mariadb';
import { HealthMonitor } from '../../src/health/monitor';
import type { HealthSnapshot } from '../../src/health/types';
import type { ServiceConfig } from '../../src/config';
import { desiredState } from '../../src/desired';
import { healthInputs } from '../lib/config';
import { captureLog, until } from './cluster';

const PREFIX = `xde${process.pid}dt`;
const RUNS = Number(process.env.XDE_DETECT_RUNS ?? 2);
let db: MariaDB;
let hm: HealthMonitor;
let svc: ServiceConfig;

const active = (s: HealthSnapshot): boolean =>
  desiredState({ services: [svc], health: s, drained: new Set(), macs: new Map() }).state.services[0].backends[0]
    .state === 'active';

/** Milliseconds from `signal` to the change event that takes the backend out of the pool. */
async function measure(signal: 'SIGKILL' | 'SIGSTOP'): Promise<number> {
  await until(hm, active, 20_000, 'backend active before the run');
  await new Promise((r) => setTimeout(r, 500 + Math.random() * 1000));
  let t0 = 0;
  const left = new Promise<number>((resolve) => {
    const onChange = (s: HealthSnapshot): void => {
      if (t0 && !active(s)) {
        hm.off('change', onChange);
        resolve(Date.now() - t0);
      }
    };
    hm.on('change', onChange);
  });
  t0 = Date.now();
  await db.kill(signal);
  const ms = await left;
  if (signal === 'SIGSTOP') await db.kill('SIGCONT');
  else await db.start();
  return ms;
}

before(async () => {
  db = new MariaDB({ prefix: PREFIX, name: 'dt', serverId: 1, monitorPassword: 'monitor' });
  await db.start();
  process.env.XDE_DT_PW = 'monitor';
  const inputs = healthInputs({
    services: [
      { name: 'dt', check: 'mysql', pool: 'static', backends: [{ address: '127.0.0.1', port: db.port, name: 'dt' }] },
    ],
    monitor: { user: 'monitor', password_env: 'XDE_DT_PW' },
    health: {},
  });
  svc = inputs.services[0];
  hm = new HealthMonitor({ ...inputs, log: captureLog().log });
  hm.start();
});

after(async () => {
  await hm?.stop();
  await db?.destroy();
  delete process.env.XDE_DT_PW;
});

for (const signal of ['SIGKILL', 'SIGSTOP'] as const) {
  test(`with default settings a ${signal}ed backend leaves the pool within interval x fall + one interval`, async (t) => {
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) times.push(await measure(signal));
    t.diagnostic(
      `${signal} -> out of pool (ms): ${times.join(', ')}; min ${Math.min(...times)} max ${Math.max(...times)}`,
    );
    // interval x fall = 3 s, plus one interval; a hung server adds up to one connect_timeout
    // (the round that waits for the greeting).
    const bound = signal === 'SIGKILL' ? 4000 : 5000;
    for (const ms of times) assert.ok(ms <= bound, `${signal}: ${ms} ms > ${bound} ms (all: ${times.join(', ')})`);
  });
}
