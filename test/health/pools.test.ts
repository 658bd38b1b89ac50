// Pure parts of the health checker: rise/fall, writer election, pools, drain, lc weights,
// replica status parsing, lag, roles, error texts, config schemas and password sources.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { riseFallStep, initialRiseFall, type RiseFallState } from '../../src/health/rise-fall';
import { computeBackends, electWriter, backendKey } from '../../src/health/pools';
import { LcDamper, lcTargetWeights } from '../../src/health/lc';
import { parseReplicaStatus, replicaLag, roleOf } from '../../src/health/mysql-check';
import { describeConnectError, describeQueryError, looksLikeMysqlFirstPacket, scrub } from '../../src/health/describe';
import { readPassword } from '../../src/health/password';
import { healthSchema, monitorSchema } from '../../src/config/health';
import type { BackendHealth, HealthServiceConfig, HealthSnapshot } from '../../src/health/types';

function run(results: boolean[], rise = 2, fall = 3): { ups: (boolean | null)[]; changes: number } {
  let s: RiseFallState = initialRiseFall();
  const ups: (boolean | null)[] = [];
  let changes = 0;
  for (const ok of results) {
    const r = riseFallStep(s, ok, rise, fall);
    s = r.state;
    if (r.changed) changes++;
    ups.push(s.up);
  }
  return { ups, changes };
}

test('the first check result decides the initial state', () => {
  assert.deepEqual(run([true]).ups, [true]);
  assert.deepEqual(run([false]).ups, [false]);
});

test('an up backend goes down only after fall consecutive failures', () => {
  assert.deepEqual(run([true, false, false, true, false, false, false]).ups, [true, true, true, true, true, true, false]);
});

test('a down backend comes back only after rise consecutive successes', () => {
  assert.deepEqual(run([false, true, false, true, true]).ups, [false, false, false, false, true]);
});

function hb(key: string, over: Partial<BackendHealth> = {}): BackendHealth {
  const [address, port] = [key.split(':')[0], Number(key.split(':')[1])];
  return {
    key, name: key, address, port, check: 'mysql', up: true, role: 'replica', readOnly: true, superReadOnly: null,
    replication: { io: 'Yes', sql: 'Yes', secondsBehind: 0, columns: 'slave' }, lagSeconds: 0, lagUnknownReason: null,
    readerEligible: true, threadsConnected: 1, lcWeight: 100, serverId: 1, version: '10.11', lastError: null, lastErrorAt: null, previousError: null,
    lastChange: null, lastCheckAt: null, checks: 1, failures: 0, consecutiveOk: 1, consecutiveFail: 0, ...over,
  };
}
function snap(backends: BackendHealth[]): HealthSnapshot {
  return { at: '', round: 1, backends, writers: {}, alerts: [], counters: { splitBrain: 0, noWriter: 0, alertsRaised: 0, checks: 0, failures: 0 } };
}
const A = '10.0.0.1:3306', B = '10.0.0.2:3306', C = '10.0.0.3:3306';
const primary = { role: 'primary' as const, readOnly: false, replication: null, readerEligible: false, lagSeconds: null };
const svc = (pool: 'writer' | 'readers' | 'static', extra: Partial<HealthServiceConfig> = {}): HealthServiceConfig => ({
  name: `svc-${pool}`, pool, check: 'mysql',
  backends: [A, B, C].map((k, i) => ({ address: k.split(':')[0], port: 3306, name: `db${i + 1}` })), ...extra,
});

test('the writer pool holds exactly the one writable non-replicating server', () => {
  const r = computeBackends(svc('writer'), snap([hb(A, primary), hb(B), hb(C)]), new Set());
  assert.equal(r.writer, A);
  assert.deepEqual(r.backends.map((b) => [b.name, b.state, b.weight]), [['db1', 'active', 1], ['db2', 'down', 0], ['db3', 'down', 0]]);
  assert.deepEqual(r.alerts, []);
});

test('two writable servers keep the established writer and raise a split-brain alert', () => {
  const s = snap([hb(A, primary), hb(B, primary), hb(C)]);
  const r1 = computeBackends(svc('writer'), s, new Set(), B);
  assert.equal(r1.writer, B);
  assert.equal(r1.backends.find((b) => b.key === B)?.state, 'active');
  assert.equal(r1.backends.find((b) => b.key === A)?.state, 'down');
  assert.match(r1.alerts[0], /split brain: 2 writable servers \(db2 is the writer, also writable: db1\)/);
  // Same input again: the same answer (no flip-flop).
  assert.equal(computeBackends(svc('writer'), s, new Set(), r1.writer).writer, B);
});

test('two writable servers without an established writer fail closed with an alert', () => {
  const r = computeBackends(svc('writer'), snap([hb(A, primary), hb(B, primary), hb(C)]), new Set());
  assert.equal(r.writer, undefined);
  assert.ok(r.backends.every((b) => b.state !== 'active' && b.weight === 0));
  assert.match(r.alerts[0], /no established writer: failing closed/);
});

test('no writable server fails closed with an alert', () => {
  const r = computeBackends(svc('writer'), snap([hb(A), hb(B), hb(C)]), new Set(), A);
  assert.equal(r.writer, undefined);
  assert.ok(r.backends.every((b) => b.weight === 0));
  assert.match(r.alerts[0], /no writable server/);
});

test('promotion moves the writer to the newly writable server', () => {
  const r = computeBackends(svc('writer'), snap([hb(A), hb(B, primary), hb(C)]), new Set(), A);
  assert.equal(r.writer, B);
});

test('a writer that is down is not kept', () => {
  const r = computeBackends(svc('writer'), snap([hb(A, { ...primary, up: false }), hb(B, primary), hb(C)]), new Set(), A);
  assert.equal(r.writer, B);
});

test('the readers pool holds the eligible replicas and drains the others', () => {
  const r = computeBackends(svc('readers'), snap([hb(A, primary), hb(B), hb(C, { readerEligible: false, lagSeconds: null })]), new Set());
  assert.deepEqual(r.backends.map((b) => [b.name, b.state]), [['db1', 'draining'], ['db2', 'active'], ['db3', 'draining']]);
});

test('readers_include_writer adds the elected writer to the readers pool', () => {
  const r = computeBackends(svc('readers', { readersIncludeWriter: true }), snap([hb(A, primary), hb(B), hb(C)]), new Set(), A);
  assert.equal(r.writer, A);
  assert.deepEqual(r.backends.map((b) => b.state), ['active', 'active', 'active']);
});

test('an empty readers pool raises an alert', () => {
  const r = computeBackends(svc('readers'), snap([hb(A, primary), hb(B, { up: false }), hb(C, { readerEligible: false })]), new Set());
  assert.ok(r.backends.every((b) => b.weight === 0));
  assert.match(r.alerts[0], /readers pool is empty/);
});

test('a drained backend is draining with weight 0 whatever its role, by name or key', () => {
  const r = computeBackends(svc('readers'), snap([hb(A, primary), hb(B), hb(C)]), new Set(['db2', C]));
  assert.deepEqual(r.backends.map((b) => [b.state, b.weight]), [['draining', 0], ['draining', 0], ['draining', 0]]);
  const w = computeBackends(svc('writer'), snap([hb(A, primary), hb(B), hb(C)]), new Set(['db1']));
  assert.equal(w.writer, A, 'drain does not move the writer');
  assert.deepEqual(w.backends[0], { key: A, name: 'db1', weight: 0, state: 'draining' });
});

test('a drained backend that goes down is down and drains again when it comes back', () => {
  const s = svc('static');
  assert.equal(computeBackends(s, snap([hb(A, { up: false }), hb(B), hb(C)]), new Set(['db1'])).backends[0].state, 'down');
  assert.equal(computeBackends(s, snap([hb(A), hb(B), hb(C)]), new Set(['db1'])).backends[0].state, 'draining');
});

test('a static pool takes every up backend with its configured weight', () => {
  const s: HealthServiceConfig = { name: 's', pool: 'static', check: 'tcp', backends: [{ address: '10.0.0.1', port: 3306, weight: 3 }, { address: '10.0.0.2', port: 3306 }] };
  const r = computeBackends(s, snap([hb(A, { check: 'tcp', role: 'none' }), hb(B, { up: false })]), new Set());
  assert.deepEqual(r.backends.map((b) => [b.state, b.weight]), [['active', 3], ['down', 0]]);
});

test('check none keeps backends up without a health entry', () => {
  const s: HealthServiceConfig = { name: 's', check: 'none', backends: [{ address: '10.0.0.9', port: 80 }] };
  assert.deepEqual(computeBackends(s, snap([]), new Set()).backends[0], { key: '10.0.0.9:80', name: '10.0.0.9:80', weight: 1, state: 'active' });
});

test('the lc scheduler multiplies configured weights by the damped lc weight', () => {
  const s = svc('static', { scheduler: 'lc' });
  const r = computeBackends(s, snap([hb(A, { lcWeight: 100 }), hb(B, { lcWeight: 50 }), hb(C, { lcWeight: 7 })]), new Set());
  assert.deepEqual(r.backends.map((b) => b.weight), [100, 50, 7]);
});

test('backend keys bracket IPv6 addresses', () => {
  assert.equal(backendKey('10.0.0.1', 3306), '10.0.0.1:3306');
  assert.equal(backendKey('fd00::1', 3306), '[fd00::1]:3306');
});

test('electWriter keeps a still-eligible writer among several candidates', () => {
  assert.equal(electWriter('s', ['a', 'b'], 'b').writer, 'b');
  assert.equal(electWriter('s', ['a'], 'b').writer, 'a');
  assert.equal(electWriter('s', ['a', 'b'], undefined).writer, undefined);
});

test('lc target weights are proportional to 1/(1+threads) with the least loaded at max_weight', () => {
  const w = lcTargetWeights(new Map([['a', 1], ['b', 3], ['c', 1000]]), 100);
  assert.deepEqual([...w.values()], [100, 50, 1]);
});

test('lc damping ignores changes below the threshold and changes at most every min_intervals rounds', () => {
  const d = new LcDamper({ max_weight: 100, threshold: 0.2, min_intervals: 5 });
  assert.equal(d.update(new Map([['a', 100]]), 1).weights.get('a'), 100);
  assert.equal(d.update(new Map([['a', 85]]), 10).weights.get('a'), 100, '15% change is below the 20% threshold');
  assert.equal(d.update(new Map([['a', 50]]), 3).weights.get('a'), 100, 'too soon after the last change');
  const r = d.update(new Map([['a', 50]]), 6);
  assert.equal(r.weights.get('a'), 50);
  assert.equal(r.changed, true);
  assert.equal(d.update(new Map([['a', 100]]), 7).weights.get('a'), 50, 'too soon after the change in round 6');
  assert.equal(d.update(new Map([['a', 100]]), 11).weights.get('a'), 100);
});

test('replica status is parsed from MariaDB and MySQL 8 column names', () => {
  assert.deepEqual(parseReplicaStatus({ Slave_IO_Running: 'Yes', Slave_SQL_Running: 'No', Seconds_Behind_Master: null }), {
    io: 'Yes', sql: 'No', secondsBehind: null, columns: 'slave',
  });
  assert.deepEqual(parseReplicaStatus({ Replica_IO_Running: 'Connecting', Replica_SQL_Running: 'Yes', Seconds_Behind_Source: '7' }), {
    io: 'Connecting', sql: 'Yes', secondsBehind: 7, columns: 'replica',
  });
  assert.equal(parseReplicaStatus(undefined), null);
});

test('lag is unknown when a replication thread is stopped, NULL, or the status is unreadable', () => {
  const base = { replicationError: null, heartbeatLagSeconds: undefined, heartbeatError: null };
  const rep = (io: string, sql: string, sbm: number | null) => ({ io, sql, secondsBehind: sbm, columns: 'slave' as const });
  assert.deepEqual(replicaLag({ ...base, replication: rep('Yes', 'No', null) }, false), { lag: null, reason: 'replication SQL thread not running' });
  assert.deepEqual(replicaLag({ ...base, replication: rep('Connecting', 'Yes', null) }, false), { lag: null, reason: 'replication IO thread Connecting' });
  assert.deepEqual(replicaLag({ ...base, replication: rep('Yes', 'Yes', null) }, false), { lag: null, reason: 'Seconds_Behind_Master is NULL' });
  assert.deepEqual(replicaLag({ ...base, replication: undefined, replicationError: 'missing privilege SLAVE MONITOR: x' }, false), { lag: null, reason: 'missing privilege SLAVE MONITOR: x' });
  assert.deepEqual(replicaLag({ ...base, replication: rep('Yes', 'Yes', 2) }, false), { lag: 2, reason: null });
});

test('lag is the larger of Seconds_Behind_Master and the heartbeat age', () => {
  const r = { io: 'Yes', sql: 'Yes', secondsBehind: 0, columns: 'slave' as const };
  assert.deepEqual(replicaLag({ replication: r, replicationError: null, heartbeatLagSeconds: 4.5, heartbeatError: null }, true), { lag: 4.5, reason: null });
  assert.equal(replicaLag({ replication: r, replicationError: null, heartbeatLagSeconds: null, heartbeatError: 'heartbeat table hb.t is empty' }, true).reason, 'heartbeat table hb.t is empty');
});

test('roles follow read_only and replication state', () => {
  const rep = (io: string, sql: string) => ({ io, sql, secondsBehind: 0, columns: 'slave' as const });
  assert.equal(roleOf({ readOnly: false, superReadOnly: null, replication: null }), 'primary');
  assert.equal(roleOf({ readOnly: true, superReadOnly: null, replication: null }), 'readonly');
  assert.equal(roleOf({ readOnly: true, superReadOnly: null, replication: rep('Yes', 'Yes') }), 'replica');
  assert.equal(roleOf({ readOnly: false, superReadOnly: null, replication: rep('Yes', 'Yes') }), 'replica', 'a writable replica is no writer');
  assert.equal(roleOf({ readOnly: false, superReadOnly: null, replication: rep('No', 'No') }), 'primary', 'stopped replication + writable = promoted');
  assert.equal(roleOf({ readOnly: false, superReadOnly: true, replication: null }), 'readonly');
  assert.equal(roleOf({ readOnly: false, superReadOnly: null, replication: undefined }), 'unknown');
});

test('error texts are plain words and never contain the password', () => {
  const e = { errno: 1045, message: "Access denied for user 'monitor'@'10.77.0.2' (using password: YES)" };
  assert.equal(describeConnectError(e, '10.77.0.11:3306'), "auth failed: Access denied for user 'monitor'@'10.77.0.2' (using password: YES)");
  assert.match(describeConnectError({ errno: 1129, message: "Host '10.77.0.2' is blocked" }, 'x:1'), /director blocked by x:1 \(ERROR 1129/);
  assert.equal(describeQueryError({ code: 'PROTOCOL_SEQUENCE_TIMEOUT' }, 'SELECT @@global.read_only AS ro', 500, true), 'timeout after 500 ms running SELECT @@global.read_only AS ro');
  assert.match(describeQueryError({ errno: 1227, message: 'Access denied; you need ...' }, 'SHOW REPLICA STATUS', 500, true), /^missing privilege SLAVE MONITOR: /);
  assert.equal(scrub('bad pw s3cr3t! in s3cr3t!', ['s3cr3t!']), 'bad pw [redacted] in [redacted]');
});

test('a MySQL first packet is told apart from other protocols', () => {
  assert.equal(looksLikeMysqlFirstPacket(Buffer.from([0x4a, 0, 0, 0, 0x0a, 0x35])), true);
  assert.equal(looksLikeMysqlFirstPacket(Buffer.from([0x17, 0, 0, 0, 0xff, 0x10])), true);
  assert.equal(looksLikeMysqlFirstPacket(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n')), false);
  assert.equal(looksLikeMysqlFirstPacket(Buffer.from('HTTP/1.1 400 Bad Request\r\n')), false);
  assert.equal(looksLikeMysqlFirstPacket(Buffer.from([0x4a, 0])), undefined);
});

test('the health schema applies the documented defaults', () => {
  assert.deepEqual(healthSchema.parse({}), {
    interval: 1000, timeout: 500, rise: 2, fall: 3, fresh_connect_interval: 10000, max_replication_lag: 10000,
    lc_damping: { max_weight: 100, threshold: 0.2, min_intervals: 5 },
  });
});

test('durations accept units or milliseconds and reject anything else with a fix', () => {
  const h = healthSchema.parse({ interval: '2s', timeout: 250, max_replication_lag: '1m', heartbeat: { table: 'hb.heartbeat' } });
  assert.equal(h.interval, 2000);
  assert.equal(h.timeout, 250);
  assert.equal(h.max_replication_lag, 60000);
  assert.deepEqual(h.heartbeat, { table: 'hb.heartbeat', column: 'ts' });
  const bad = healthSchema.safeParse({ interval: '1 sec' });
  assert.equal(bad.success, false);
  assert.match(bad.error!.issues[0].message, /duration "1 sec" is not understood: write a number with a unit/);
});

test('a timeout longer than the interval is refused', () => {
  const r = healthSchema.safeParse({ interval: '1s', timeout: '2s' });
  assert.equal(r.success, false);
  assert.match(r.error!.issues[0].message, /health.timeout \(2000 ms\) must not exceed health.interval \(1000 ms\)/);
});

test('a heartbeat table that is not db.table is refused', () => {
  const r = healthSchema.safeParse({ heartbeat: { table: 'hb; DROP TABLE x' } });
  assert.equal(r.success, false);
  assert.match(r.error!.issues[0].message, /must be "db.table"/);
});

test('the monitor schema needs exactly one password source and no literal password', () => {
  assert.match(monitorSchema.safeParse({ user: 'm' }).error!.issues[0].message, /exactly one of password_file or password_env/);
  assert.match(monitorSchema.safeParse({ user: 'm', password_file: '/a', password_env: 'B' }).error!.issues[0].message, /both password_file and password_env/);
  assert.equal(monitorSchema.safeParse({ user: 'm', password: 'x', password_env: 'B' }).error!.issues[0].code, 'unrecognized_keys');
  assert.deepEqual(monitorSchema.parse({ user: 'm', password_env: 'B' }), { user: 'm', password_env: 'B', connect_timeout: 1000 });
});

test('the password is read from a file without its trailing newline, or from the environment', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `xde-pw-${process.pid}-`));
  try {
    const f = path.join(dir, 'pw');
    fs.writeFileSync(f, 'p@ss word\n', { mode: 0o600 });
    assert.equal(readPassword({ password_file: f }), 'p@ss word');
    process.env.XDE_TEST_PW = 'from-env';
    assert.equal(readPassword({ password_env: 'XDE_TEST_PW' }), 'from-env');
    delete process.env.XDE_TEST_PW;
    assert.throws(() => readPassword({ password_env: 'XDE_TEST_PW' }), /XDE_TEST_PW: the environment variable is not set/);
    assert.throws(() => readPassword({ password_file: path.join(dir, 'missing') }), (e: Error & { code?: string }) => e.code === 'XD_ERR_HEALTH_PASSWORD' && /cannot read it \(ENOENT\)/.test(e.message));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('services from the parsed config feed the health monitor and computeBackends directly', async () => {
  const { parseConfig } = await import('../../src/config');
  const { HealthMonitor } = await import('../../src/health/monitor');
  const { silentLogger } = await import('../../src/log');
  const yaml = [
    'instance: t',
    'interface: eth0',
    'monitor: { user: monitor, password_env: XDE_UNUSED_PW }',
    'health: { interval: 2s, max_replication_lag: 5s }',
    'services:',
    '  - { name: rw, vip: 10.0.0.100, port: 3306, pool: writer, backends: [ { name: db1, address: 10.0.0.1 }, { name: db2, address: 10.0.0.2 } ] }',
    '  - { name: ro, vip: 10.0.0.101, port: 3306, pool: readers, readers_include_writer: true, backends: [ { name: db1, address: 10.0.0.1 }, { name: db2, address: 10.0.0.2 } ] }',
  ].join('\n');
  const cfg = parseConfig(yaml, 'test.yaml');
  const hm = new HealthMonitor({ services: cfg.services, monitor: cfg.monitor, health: cfg.health, log: silentLogger() });
  assert.equal(hm.health.interval, 2000);
  assert.deepEqual(Object.keys(hm.snapshot().writers), ['rw', 'ro']);
  assert.deepEqual(hm.snapshot().backends.map((b) => [b.name, b.check]), [['db1', 'mysql'], ['db2', 'mysql']]);
  const s = snap([hb('10.0.0.1:3306', { ...primary, name: 'db1' }), hb('10.0.0.2:3306', { name: 'db2' })]);
  assert.deepEqual(computeBackends(cfg.services[1], s, new Set()).backends.map((b) => [b.name, b.state]), [['db1', 'active'], ['db2', 'active']]);
});

test('a mysql check without a monitor section is refused with the fix', async () => {
  const { HealthMonitor } = await import('../../src/health/monitor');
  const { silentLogger } = await import('../../src/log');
  assert.throws(
    () => new HealthMonitor({ services: [svc('writer')], log: silentLogger() }),
    /monitor: missing: backends db1, db2, db3 use check mysql, which needs a monitor: section \(user and password_file or password_env\)/,
  );
});
