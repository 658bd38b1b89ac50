// desiredState(): config services + health snapshot + drains + MACs -> the DesiredState.
// Pure: every input is built here; the writer comes from the snapshot (health elects it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { desiredState, type DesiredInputs } from '../../src/desired';
import type { BackendHealth, HealthSnapshot } from '../../src/health/types';
import { testConfig, type TestService } from '../lib/config';

const A = '10.0.0.1:3306',
  B = '10.0.0.2:3306',
  C = '10.0.0.3:3306';
const MONITOR = { user: 'monitor', password_env: 'XDE_UNUSED_PW' };

function hb(key: string, over: Partial<BackendHealth> = {}): BackendHealth {
  const [address, port] = [key.split(':')[0], Number(key.split(':')[1])];
  return {
    key,
    name: key,
    address,
    port,
    check: 'mysql',
    up: true,
    role: 'replica',
    readOnly: true,
    superReadOnly: null,
    replication: { io: 'Yes', sql: 'Yes', secondsBehind: 0, columns: 'slave' },
    lagSeconds: 0,
    lagUnknownReason: null,
    readerEligible: true,
    threadsConnected: 1,
    lcWeight: 100,
    serverId: 1,
    version: '10.11',
    lastError: null,
    lastErrorAt: null,
    previousError: null,
    lastChange: null,
    lastCheckAt: null,
    checks: 1,
    failures: 0,
    consecutiveOk: 1,
    consecutiveFail: 0,
    ...over,
  };
}
function snap(backends: BackendHealth[], writers: Record<string, string | null> = {}): HealthSnapshot {
  return {
    at: '',
    round: 1,
    backends,
    writers,
    alerts: [],
    counters: { splitBrain: 0, noWriter: 0, alertsRaised: 0, checks: 0, failures: 0, writerChanges: 0 },
  };
}
const svc = (pool: 'writer' | 'readers' | 'static', extra: Partial<TestService> = {}): TestService => ({
  name: `svc-${pool}`,
  pool,
  check: 'mysql',
  backends: [A, B, C].map((k, i) => ({ address: k.split(':')[0], port: 3306, name: `db${i + 1}` })),
  ...extra,
});
function run(s: TestService, health: HealthSnapshot | null, over: Partial<DesiredInputs> = {}) {
  const services = testConfig({ services: [s], monitor: MONITOR }).services;
  const out = desiredState({ services, health, drained: new Set(), macs: new Map(), ...over });
  return { out, backends: out.state.services[0].backends };
}
const states = (bs: { name: string; state: string; weight: number }[]) => bs.map((b) => [b.name, b.state, b.weight]);

test('the writer pool holds exactly the writer health elected', () => {
  const { out, backends } = run(svc('writer'), snap([hb(A, { role: 'primary' }), hb(B), hb(C)], { 'svc-writer': A }));
  assert.deepEqual(states(backends), [
    ['db1', 'active', 1],
    ['db2', 'down', 0],
    ['db3', 'down', 0],
  ]);
  assert.deepEqual(out.writers, { 'svc-writer': A });
});

test('a writer pool without an elected writer fails closed', () => {
  const { out, backends } = run(
    svc('writer'),
    snap([hb(A, { role: 'primary' }), hb(B, { role: 'primary' }), hb(C)], { 'svc-writer': null }),
  );
  assert.ok(backends.every((b) => b.state === 'down' && b.weight === 0));
  assert.deepEqual(out.writers, { 'svc-writer': null });
});

test('the readers pool holds the eligible replicas and drains the others', () => {
  const { backends } = run(
    svc('readers'),
    snap([hb(A, { role: 'primary', readerEligible: false }), hb(B), hb(C, { readerEligible: false })]),
  );
  assert.deepEqual(states(backends), [
    ['db1', 'draining', 0],
    ['db2', 'active', 1],
    ['db3', 'draining', 0],
  ]);
});

test('readers_include_writer adds the elected writer to the readers pool', () => {
  const { out, backends } = run(
    svc('readers', { readersIncludeWriter: true }),
    snap([hb(A, { role: 'primary', readerEligible: false }), hb(B), hb(C)], { 'svc-readers': A }),
  );
  assert.deepEqual(
    backends.map((b) => b.state),
    ['active', 'active', 'active'],
  );
  assert.deepEqual(out.writers, { 'svc-readers': A });
});

test('a drained backend is draining with weight 0 whatever its role, by name or key', () => {
  const r = run(svc('readers'), snap([hb(A, { role: 'primary' }), hb(B), hb(C)]), { drained: new Set(['db2', C]) });
  assert.deepEqual(states(r.backends), [
    ['db1', 'active', 1],
    ['db2', 'draining', 0],
    ['db3', 'draining', 0],
  ]);
  const w = run(svc('writer'), snap([hb(A, { role: 'primary' }), hb(B), hb(C)], { 'svc-writer': A }), {
    drained: new Set(['db1']),
  });
  assert.deepEqual(w.out.writers, { 'svc-writer': A }, 'drain does not move the writer');
  assert.deepEqual(states(w.backends)[0], ['db1', 'draining', 0]);
});

test('a drained backend that goes down is down and drains again when it comes back', () => {
  const drained = new Set(['db1']);
  assert.equal(run(svc('static'), snap([hb(A, { up: false }), hb(B), hb(C)]), { drained }).backends[0].state, 'down');
  assert.equal(run(svc('static'), snap([hb(A), hb(B), hb(C)]), { drained }).backends[0].state, 'draining');
});

test('a static pool takes every up backend with its configured weight', () => {
  const s: TestService = {
    name: 's',
    pool: 'static',
    check: 'tcp',
    backends: [
      { address: '10.0.0.1', port: 3306, weight: 3 },
      { address: '10.0.0.2', port: 3306 },
    ],
  };
  const { backends } = run(s, snap([hb(A, { check: 'tcp', role: 'none' }), hb(B, { up: false })]));
  assert.deepEqual(
    backends.map((b) => [b.state, b.weight, b.configWeight]),
    [
      ['active', 3, 3],
      ['down', 0, 1],
    ],
  );
});

test('a backend health has not checked yet is down', () => {
  assert.deepEqual(
    run(svc('static'), snap([])).backends.map((b) => b.state),
    ['down', 'down', 'down'],
  );
});

test('check none keeps backends up without a health entry', () => {
  const s: TestService = { name: 's', check: 'none', backends: [{ address: '10.0.0.9', port: 80 }] };
  const { backends } = run(s, snap([]));
  assert.deepEqual(states(backends), [['10.0.0.9:80', 'active', 1]]);
});

test('without a health monitor only drains and configured weights apply', () => {
  const s: TestService = {
    name: 's',
    check: 'none',
    backends: [
      { address: '10.0.0.1', port: 80, name: 'a', weight: 2 },
      { address: '10.0.0.2', port: 80, name: 'b', weight: 0 },
      { address: '10.0.0.3', port: 80, name: 'c' },
    ],
  };
  const { out, backends } = run(s, null, { drained: new Set(['c']) });
  assert.deepEqual(states(backends), [
    ['a', 'active', 2],
    ['b', 'draining', 0],
    ['c', 'draining', 0],
  ]);
  assert.deepEqual(out.writers, {});
});

test('the lc scheduler multiplies configured weights by the damped lc weight', () => {
  const { backends } = run(
    svc('static', { scheduler: 'lc' }),
    snap([hb(A, { lcWeight: 100 }), hb(B, { lcWeight: 50 }), hb(C, { lcWeight: 7 })]),
  );
  assert.deepEqual(
    backends.map((b) => b.weight),
    [100, 50, 7],
  );
});

test('a static config MAC wins over the neighbour table and a backend without either is reported', () => {
  const s: TestService = {
    name: 's',
    check: 'none',
    backends: [
      { address: '10.0.0.1', port: 80, name: 'a', mac: '02:00:00:00:00:0a' },
      { address: '10.0.0.2', port: 80, name: 'b' },
      { address: '10.0.0.3', port: 80, name: 'c' },
    ],
  };
  const macs = new Map([
    ['10.0.0.1', '02:00:00:00:00:99'],
    ['10.0.0.2', '02:00:00:00:00:0b'],
  ]);
  const { out, backends } = run(s, null, { macs });
  assert.deepEqual(
    backends.map((b) => b.mac),
    ['02:00:00:00:00:0a', '02:00:00:00:00:0b', undefined],
  );
  assert.deepEqual(out.unresolved, [{ service: 's', backend: 'c', address: '10.0.0.3' }]);
});

test('a service keeps its config identity, family and ring', () => {
  const { out } = run(
    { name: 's', check: 'none', scheduler: 'sh', backends: [{ address: '10.0.0.1', port: 5432 }] },
    null,
  );
  const { backends, ...service } = out.state.services[0];
  assert.deepEqual(service, {
    name: 's',
    vip: '10.255.0.1',
    port: 5432,
    proto: 'tcp',
    family: 4,
    scheduler: 'sh',
    ring: { kind: 'maglev', size: 65537 },
    onEmpty: 'pass',
  });
  assert.equal(backends[0].family, 4);
});

/** Two static services sharing db1..db3 (check none: only operator inputs decide). */
function twoServices(over: Partial<DesiredInputs>) {
  const mk = (name: string): TestService => ({
    name,
    check: 'none',
    backends: [A, B, C].map((k, i) => ({ address: k.split(':')[0], port: 3306, name: `db${i + 1}`, weight: i + 1 })),
  });
  const services = testConfig({ services: [mk('rw'), mk('ro')] }).services;
  const out = desiredState({ services, health: null, drained: new Set(), macs: new Map(), ...over });
  return Object.fromEntries(out.state.services.map((s) => [s.name, states(s.backends)]));
}

test('drain SERVICE/BACKEND drains the backend in that service only, by name or key', () => {
  assert.deepEqual(twoServices({ drained: new Set(['rw/db1', `ro/${C}`]) }), {
    rw: [
      ['db1', 'draining', 0],
      ['db2', 'active', 2],
      ['db3', 'active', 3],
    ],
    ro: [
      ['db1', 'active', 1],
      ['db2', 'active', 2],
      ['db3', 'draining', 0],
    ],
  });
});

test('maint wins over health and drains: state maint at weight 0, in the service named or in all', () => {
  assert.deepEqual(twoServices({ maint: new Set(['rw/db2', 'db3']), drained: new Set(['db3']) }), {
    rw: [
      ['db1', 'active', 1],
      ['db2', 'maint', 0],
      ['db3', 'maint', 0],
    ],
    ro: [
      ['db1', 'active', 1],
      ['db2', 'active', 2],
      ['db3', 'maint', 0],
    ],
  });
  const r = run(svc('static'), snap([hb(A, { up: false }), hb(B), hb(C)]), { maint: new Set(['db1']) });
  assert.equal(r.backends[0].state, 'maint', 'a down backend in maintenance shows maint');
});

test("a run-time weight overrides the config weight, SERVICE/BACKEND over BACKEND, and is kept as the drained slots' weight", () => {
  const out = twoServices({
    weights: new Map([
      ['db1', 5],
      ['ro/db1', 7],
    ]),
  });
  assert.deepEqual(out.rw![0], ['db1', 'active', 5]);
  assert.deepEqual(out.ro![0], ['db1', 'active', 7]);
  const services = testConfig({
    services: [{ name: 'rw', check: 'none', backends: [{ address: '10.0.0.1', port: 3306, name: 'db1' }] }],
  }).services;
  const b = desiredState({
    services,
    health: null,
    drained: new Set(['db1']),
    weights: new Map([['db1', 4]]),
    macs: new Map(),
  }).state.services[0]!.backends[0]!;
  assert.deepEqual([b.state, b.weight, b.configWeight, b.runtimeWeight], ['draining', 0, 4, 4]);
});
