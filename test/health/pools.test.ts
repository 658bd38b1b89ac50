// Pure parts of the health checker: rise/fall, the writer election and pool alerts, lc weights,
// replica status parsing, lag, roles, error texts, config schemas and password sources.
// (What the pools make of a snapshot, with drains and weights: test/desired.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { riseFallStep, initialRiseFall, type RiseFallState } from '../../src/health/rise-fall';
import { electWriter, electWriters } from '../../src/health/election';
import { LcDamper, lcTargetWeights } from '../../src/health/lc';
import { parseReplicaStatus, replicaLag, roleOf } from '../../src/health/mysql-check';
import { describeConnectError, describeQueryError, looksLikeMysqlFirstPacket, scrub } from '../../src/health/describe';
import { readPassword } from '../../src/health/password';
import { healthSchema, monitorSchema } from '../../src/config/health';
import type { BackendHealth } from '../../src/health/types';
import { testConfig, type TestService } from '../lib/config';

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
  assert.deepEqual(run([true, false, false, true, false, false, false]).ups, [
    true,
    true,
    true,
    true,
    true,
    true,
    false,
  ]);
});

test('a down backend comes back only after rise consecutive successes', () => {
  assert.deepEqual(run([false, true, false, true, true]).ups, [false, false, false, false, true]);
});

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
const A = '10.0.0.1:3306',
  B = '10.0.0.2:3306',
  C = '10.0.0.3:3306';
const primary = {
  role: 'primary' as const,
  readOnly: false,
  replication: null,
  readerEligible: false,
  lagSeconds: null,
};
const svc = (pool: 'writer' | 'readers', extra: Partial<TestService> = {}): TestService => ({
  name: `svc-${pool}`,
  pool,
  check: 'mysql',
  backends: [A, B, C].map((k, i) => ({ address: k.split(':')[0], port: 3306, name: `db${i + 1}` })),
  ...extra,
});
const MONITOR = { user: 'monitor', password_env: 'XDE_UNUSED_PW' };
/** One round's election over these backends, with `prev` the writers of the round before. */
function elect(s: TestService, backends: BackendHealth[], prev: Record<string, string | null> = {}) {
  const services = testConfig({ services: [s], monitor: MONITOR }).services;
  // The monitor names each backend as the config does.
  const names = new Map(services[0].backends.map((b) => [b.key, b.name]));
  const named = backends.map((b) => ({ ...b, name: names.get(b.key) ?? b.name }));
  const r = electWriters(services, new Map(named.map((b) => [b.key, b])), new Map(Object.entries(prev)), 10_000);
  return { writer: r.writers.get(s.name), alerts: [...r.alerts.values()] };
}

test('the writer is the one writable non-replicating server', () => {
  const r = elect(svc('writer'), [hb(A, primary), hb(B), hb(C)]);
  assert.equal(r.writer, A);
  assert.deepEqual(r.alerts, []);
});

test('two writable servers keep the established writer and raise a split-brain alert', () => {
  const backends = [hb(A, primary), hb(B, primary), hb(C)];
  const r1 = elect(svc('writer'), backends, { 'svc-writer': B });
  assert.equal(r1.writer, B);
  assert.equal(r1.alerts[0].kind, 'split-brain');
  assert.match(r1.alerts[0].message, /split brain: 2 writable servers \(db2 is the writer, also writable: db1\)/);
  // Same input again: the same answer (no flip-flop).
  assert.equal(elect(svc('writer'), backends, { 'svc-writer': r1.writer ?? null }).writer, B);
});

test('two writable servers without an established writer fail closed with an alert', () => {
  const r = elect(svc('writer'), [hb(A, primary), hb(B, primary), hb(C)]);
  assert.equal(r.writer, null);
  assert.match(r.alerts[0].message, /no established writer: failing closed/);
});

test('no writable server fails closed with an alert', () => {
  const r = elect(svc('writer'), [hb(A), hb(B), hb(C)], { 'svc-writer': A });
  assert.equal(r.writer, null);
  assert.equal(r.alerts[0].kind, 'no-writer');
  assert.match(r.alerts[0].message, /no writable server/);
});

test('promotion moves the writer to the newly writable server', () => {
  assert.equal(elect(svc('writer'), [hb(A), hb(B, primary), hb(C)], { 'svc-writer': A }).writer, B);
});

test('a writer that is down is not kept', () => {
  assert.equal(
    elect(svc('writer'), [hb(A, { ...primary, up: false }), hb(B, primary), hb(C)], { 'svc-writer': A }).writer,
    B,
  );
});

test('a readers pool elects a writer only when it includes the writer', () => {
  assert.equal(elect(svc('readers'), [hb(A, primary), hb(B), hb(C)]).writer, undefined);
  assert.equal(elect(svc('readers', { readersIncludeWriter: true }), [hb(A, primary), hb(B), hb(C)]).writer, A);
});

test('an empty readers pool raises one alert', () => {
  const r = elect(svc('readers'), [
    hb(A, primary),
    hb(B, { up: false, readerEligible: false }),
    hb(C, { readerEligible: false }),
  ]);
  assert.deepEqual(
    r.alerts.map((a) => [a.kind, a.message]),
    [['readers-empty', 'service svc-readers: readers pool is empty (no healthy replica within 10 s of lag)']],
  );
});

test('a readers pool that includes an elected writer is not empty', () => {
  const r = elect(svc('readers', { readersIncludeWriter: true }), [
    hb(A, primary),
    hb(B, { readerEligible: false }),
    hb(C, { readerEligible: false }),
  ]);
  assert.deepEqual(r.alerts, []);
});

test('electWriter keeps a still-eligible writer among several candidates', () => {
  assert.equal(electWriter('s', ['a', 'b'], 'b').writer, 'b');
  assert.equal(electWriter('s', ['a'], 'b').writer, 'a');
  assert.equal(electWriter('s', ['a', 'b'], undefined).writer, undefined);
});

test('lc target weights are proportional to 1/(1+threads) with the least loaded at max_weight', () => {
  const w = lcTargetWeights(
    new Map([
      ['a', 1],
      ['b', 3],
      ['c', 1000],
    ]),
    100,
  );
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
  assert.deepEqual(
    parseReplicaStatus({ Slave_IO_Running: 'Yes', Slave_SQL_Running: 'No', Seconds_Behind_Master: null }),
    {
      io: 'Yes',
      sql: 'No',
      secondsBehind: null,
      columns: 'slave',
    },
  );
  assert.deepEqual(
    parseReplicaStatus({ Replica_IO_Running: 'Connecting', Replica_SQL_Running: 'Yes', Seconds_Behind_Source: '7' }),
    {
      io: 'Connecting',
      sql: 'Yes',
      secondsBehind: 7,
      columns: 'replica',
    },
  );
  assert.equal(parseReplicaStatus(undefined), null);
});

test('lag is unknown when a replication thread is stopped, NULL, or the status is unreadable', () => {
  const base = { replicationError: null, heartbeatLagSeconds: undefined, heartbeatError: null };
  const rep = (io: string, sql: string, sbm: number | null) => ({
    io,
    sql,
    secondsBehind: sbm,
    columns: 'slave' as const,
  });
  assert.deepEqual(replicaLag({ ...base, replication: rep('Yes', 'No', null) }, false), {
    lag: null,
    reason: 'replication SQL thread not running',
  });
  assert.deepEqual(replicaLag({ ...base, replication: rep('Connecting', 'Yes', null) }, false), {
    lag: null,
    reason: 'replication IO thread Connecting',
  });
  assert.deepEqual(replicaLag({ ...base, replication: rep('Yes', 'Yes', null) }, false), {
    lag: null,
    reason: 'Seconds_Behind_Master is NULL',
  });
  assert.deepEqual(
    replicaLag({ ...base, replication: undefined, replicationError: 'missing privilege SLAVE MONITOR: x' }, false),
    { lag: null, reason: 'missing privilege SLAVE MONITOR: x' },
  );
  assert.deepEqual(replicaLag({ ...base, replication: rep('Yes', 'Yes', 2) }, false), { lag: 2, reason: null });
});

test('lag is the larger of Seconds_Behind_Master and the heartbeat age', () => {
  const r = { io: 'Yes', sql: 'Yes', secondsBehind: 0, columns: 'slave' as const };
  assert.deepEqual(
    replicaLag({ replication: r, replicationError: null, heartbeatLagSeconds: 4.5, heartbeatError: null }, true),
    { lag: 4.5, reason: null },
  );
  assert.equal(
    replicaLag(
      {
        replication: r,
        replicationError: null,
        heartbeatLagSeconds: null,
        heartbeatError: 'heartbeat table hb.t is empty',
      },
      true,
    ).reason,
    'heartbeat table hb.t is empty',
  );
});

test('roles follow read_only and replication state', () => {
  const rep = (io: string, sql: string) => ({ io, sql, secondsBehind: 0, columns: 'slave' as const });
  assert.equal(roleOf({ readOnly: false, superReadOnly: null, replication: null }), 'primary');
  assert.equal(roleOf({ readOnly: true, superReadOnly: null, replication: null }), 'readonly');
  assert.equal(roleOf({ readOnly: true, superReadOnly: null, replication: rep('Yes', 'Yes') }), 'replica');
  assert.equal(
    roleOf({ readOnly: false, superReadOnly: null, replication: rep('Yes', 'Yes') }),
    'replica',
    'a writable replica is no writer',
  );
  assert.equal(
    roleOf({ readOnly: false, superReadOnly: null, replication: rep('No', 'No') }),
    'primary',
    'stopped replication + writable = promoted',
  );
  assert.equal(roleOf({ readOnly: false, superReadOnly: true, replication: null }), 'readonly');
  assert.equal(roleOf({ readOnly: false, superReadOnly: null, replication: undefined }), 'unknown');
});

test('error texts are plain words and never contain the password', () => {
  const e = { errno: 1045, message: "Access denied for user 'monitor'@'10.77.0.2' (using password: YES)" };
  assert.equal(
    describeConnectError(e, '10.77.0.11:3306'),
    "auth failed: Access denied for user 'monitor'@'10.77.0.2' (using password: YES)",
  );
  assert.match(
    describeConnectError({ errno: 1129, message: "Host '10.77.0.2' is blocked" }, 'x:1'),
    /director blocked by x:1 \(ERROR 1129/,
  );
  assert.equal(
    describeQueryError({ code: 'PROTOCOL_SEQUENCE_TIMEOUT' }, 'SELECT @@global.read_only AS ro', 500, true),
    'timeout after 500 ms running SELECT @@global.read_only AS ro',
  );
  assert.match(
    describeQueryError({ errno: 1227, message: 'Access denied; you need ...' }, 'SHOW REPLICA STATUS', 500, true),
    /^missing privilege SLAVE MONITOR: /,
  );
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
    interval: 1000,
    timeout: 500,
    rise: 2,
    fall: 3,
    fresh_connect_interval: 10000,
    max_replication_lag: 10000,
    lc_damping: { max_weight: 100, threshold: 0.2, min_intervals: 5 },
  });
});

test('durations need their unit and anything else is refused with a fix', () => {
  const h = healthSchema.parse({
    interval: '2s',
    timeout: '250ms',
    max_replication_lag: '1m',
    heartbeat: { table: 'hb.heartbeat' },
  });
  assert.equal(h.interval, 2000);
  assert.equal(h.timeout, 250);
  assert.equal(h.max_replication_lag, 60000);
  assert.deepEqual(h.heartbeat, { table: 'hb.heartbeat', column: 'ts' });
  const bad = healthSchema.safeParse({ interval: '1 sec' });
  assert.equal(bad.success, false);
  assert.match(bad.error!.issues[0].message, /must be a duration with its unit \(ms, s, m or h\)/);
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
  assert.match(
    monitorSchema.safeParse({ user: 'm' }).error!.issues[0].message,
    /exactly one of password_file or password_env/,
  );
  assert.match(
    monitorSchema.safeParse({ user: 'm', password_file: '/a', password_env: 'B' }).error!.issues[0].message,
    /both password_file and password_env/,
  );
  assert.equal(
    monitorSchema.safeParse({ user: 'm', password: 'x', password_env: 'B' }).error!.issues[0].code,
    'unrecognized_keys',
  );
  assert.deepEqual(monitorSchema.parse({ user: 'm', password_env: 'B' }), {
    user: 'm',
    password_env: 'B',
    connect_timeout: 1000,
  });
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
    assert.throws(
      () => readPassword({ password_env: 'XDE_TEST_PW' }),
      /XDE_TEST_PW: the environment variable is not set/,
    );
    assert.throws(
      () => readPassword({ password_file: path.join(dir, 'missing') }),
      (e: Error & { code?: string }) =>
        e.code === 'XD_ERR_HEALTH_PASSWORD' && /cannot read it \(ENOENT\)/.test(e.message),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the parsed config feeds the health monitor directly', async () => {
  const { HealthMonitor } = await import('../../src/health/monitor');
  const { silentLogger } = await import('../../src/log');
  const cfg = testConfig({
    monitor: MONITOR,
    health: { interval: '2s', max_replication_lag: '5s' },
    services: [
      {
        name: 'rw',
        port: 3306,
        pool: 'writer',
        backends: [
          { name: 'db1', address: '10.0.0.1', port: 3306 },
          { name: 'db2', address: '10.0.0.2', port: 3306 },
        ],
      },
      {
        name: 'ro',
        port: 3306,
        pool: 'readers',
        readersIncludeWriter: true,
        backends: [
          { name: 'db1', address: '10.0.0.1', port: 3306 },
          { name: 'db2', address: '10.0.0.2', port: 3306 },
        ],
      },
    ],
  });
  const hm = new HealthMonitor({
    services: cfg.services,
    monitor: cfg.monitor,
    health: cfg.health,
    log: silentLogger(),
  });
  assert.equal(hm.health, cfg.health, 'the parsed section itself, not a copy re-validated');
  assert.equal(hm.health.interval, 2000);
  assert.deepEqual(Object.keys(hm.snapshot().writers), ['rw', 'ro']);
  assert.deepEqual(
    hm.snapshot().backends.map((b) => [b.name, b.check]),
    [
      ['db1', 'mysql'],
      ['db2', 'mysql'],
    ],
  );
});

test('a mysql check without a monitor section is refused with the fix', async () => {
  const { HealthMonitor } = await import('../../src/health/monitor');
  const { silentLogger } = await import('../../src/log');
  assert.throws(
    () =>
      new HealthMonitor({
        services: testConfig({ services: [svc('writer')], monitor: MONITOR }).services,
        health: healthSchema.parse({}),
        log: silentLogger(),
      }),
    /monitor: missing: backends db1, db2, db3 use check mysql, which needs a monitor: section \(user and password_file or password_env\)/,
  );
});
