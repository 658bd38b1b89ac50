// Health checks against real MariaDB servers on loopback: a primary (db1) and two GTID replicas
// (db2, db3) behind a writer service and a readers service, checked every 250 ms.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Connection } from 'mysql2/promise';
import { MariaDB, setupReplication, syncReplicas } from '../../scripts/lab/mariadb';
import { HealthMonitor } from '../../src/health/monitor';
import { tcpCheck } from '../../src/health/tcp-check';
import type { HealthSnapshot } from '../../src/health/types';
import type { ServiceConfig } from '../../src/config';
import { desiredState } from '../../src/desired';
import { healthInputs } from '../lib/config';
import { backend, captureLog, fakeServer, summary, until, type LogCapture } from './cluster';

const PREFIX = `xde${process.pid}`;
const PASSWORD = `Xde-S3cret-${process.pid}`;
const WRONG = `Xde-Wr0ng-${process.pid}`;
const INTERVAL = 250;
const FALL = 3;
const CONNECT_TIMEOUT = 400;
const TIMEOUT = 200;

let dir: string;
let pwFile: string;
let servers: MariaDB[] = [];
let hm: HealthMonitor;
let cap: LogCapture;
let services: readonly ServiceConfig[];
let beat: Connection | undefined;
let beatTimer: NodeJS.Timeout | undefined;
const extraMonitors: HealthMonitor[] = [];
let changeEvents = 0;
let rounds = 0;

const key = (i: number): string => `127.0.0.1:${servers[i].port}`;
const pool = (s: HealthSnapshot, svc: string): string[] => {
  const sv = services.find((x) => x.name === svc)!;
  return desiredState({ services: [sv], health: s, drained: new Set(), macs: new Map() })
    .state.services[0].backends.filter((b) => b.state === 'active')
    .map((b) => b.name);
};

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}-health-`));
  pwFile = path.join(dir, 'monitor.pw');
  fs.writeFileSync(pwFile, `${PASSWORD}\n`, { mode: 0o600 });
  servers = [1, 2, 3].map(
    (i) => new MariaDB({ prefix: PREFIX, name: `db${i}`, serverId: i, monitorPassword: PASSWORD }),
  );
  await Promise.all(servers.map((s) => s.start()));
  // The monitor reads the heartbeat table (local grant: the users are per server, not replicated).
  await Promise.all(servers.map((s) => s.query("SET SESSION sql_log_bin=0; GRANT SELECT ON hb.* TO 'monitor'@'%'")));
  await servers[0].query(
    'CREATE DATABASE hb; CREATE TABLE hb.heartbeat (id INT PRIMARY KEY, ts DATETIME(6) NOT NULL); INSERT INTO hb.heartbeat VALUES (1, NOW(6))',
  );
  await setupReplication(servers[0], servers.slice(1));
  await syncReplicas(servers[0], servers.slice(1));
  // The heartbeat writer (pt-heartbeat's job), on the primary.
  beat = await servers[0].connect();
  beatTimer = setInterval(() => {
    beat?.query('UPDATE hb.heartbeat SET ts = NOW(6) WHERE id = 1').catch(() => undefined);
  }, 200);
  const backends = servers.map((s, i) => ({ address: '127.0.0.1', port: s.port, name: `db${i + 1}` }));
  const inputs = healthInputs({
    services: [
      { name: 'rw', pool: 'writer', check: 'mysql', backends },
      { name: 'ro', pool: 'readers', check: 'mysql', backends },
      { name: 'lc', pool: 'static', scheduler: 'lc', check: 'mysql', backends },
    ],
    monitor: { user: 'monitor', password_file: pwFile, connect_timeout: CONNECT_TIMEOUT },
    health: {
      interval: INTERVAL,
      timeout: TIMEOUT,
      rise: 2,
      fall: FALL,
      fresh_connect_interval: '1s',
      max_replication_lag: '1s',
      heartbeat: { table: 'hb.heartbeat', column: 'ts' },
    },
  });
  services = inputs.services;
  cap = captureLog();
  hm = new HealthMonitor({ ...inputs, log: cap.log });
  hm.on('change', () => changeEvents++);
  hm.on('round', () => rounds++);
  hm.start();
  await until(
    hm,
    (s) => s.writers.rw !== null && s.backends.filter((b) => b.readerEligible).length === 2,
    10_000,
    'initial roles',
  );
});

after(async () => {
  // XDE_HEALTH_LOG=file keeps the monitor's log of the whole scenario run, for reading.
  if (process.env.XDE_HEALTH_LOG && cap) fs.writeFileSync(process.env.XDE_HEALTH_LOG, cap.lines.join('\n') + '\n');
  if (beatTimer) clearInterval(beatTimer);
  await beat?.end().catch(() => undefined);
  for (const m of extraMonitors) await m.stop();
  await hm?.stop();
  await Promise.all(servers.map((s) => s.destroy()));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the primary is the writer and both replicas are readers', () => {
  const s = hm.snapshot();
  assert.equal(s.writers.rw, key(0));
  assert.deepEqual(pool(s, 'rw'), ['db1']);
  assert.deepEqual(pool(s, 'ro'), ['db2', 'db3']);
  assert.equal(backend(s, 'db1').role, 'primary');
  assert.equal(backend(s, 'db2').role, 'replica');
  assert.equal(backend(s, 'db2').serverId, 2);
  assert.ok(typeof backend(s, 'db2').lagSeconds === 'number' && backend(s, 'db2').lagSeconds! < 1, summary(s));
  assert.ok(backend(s, 'db1').threadsConnected! >= 1);
  assert.deepEqual(s.alerts, []);
});

test('a quiet cluster emits no change events', async () => {
  let changes = 0;
  const onChange = (): void => {
    changes++;
  };
  hm.on('change', onChange);
  for (let i = 0; i < 5; i++) await hm.nextRound();
  hm.off('change', onChange);
  assert.equal(changes, 0);
});

test('lc weights follow Threads_connected, damped, and recover when connections close', async () => {
  const lcWeight = (s: HealthSnapshot, name: string): number => backend(s, name).lcWeight;
  const weightsOf = (s: HealthSnapshot): number[] =>
    desiredState({
      services: [services.find((x) => x.name === 'lc')!],
      health: s,
      drained: new Set(),
      macs: new Map(),
    }).state.services[0].backends.map((b) => b.weight);
  const logsBefore = cap.lines.filter((l) => l.includes('backend db3 lc weight')).length;
  assert.equal(lcWeight(hm.snapshot(), 'db3'), 100, 'an idle replica has the full weight');
  const conns = await Promise.all(Array.from({ length: 12 }, () => servers[2].connect()));
  try {
    await until(hm, (s) => lcWeight(s, 'db3') <= 20, 5000, 'db3 weight drops under load');
    const s = hm.snapshot();
    assert.ok(backend(s, 'db3').threadsConnected! >= 13);
    assert.equal(weightsOf(s)[2], lcWeight(s, 'db3'));
    assert.ok(weightsOf(s)[1] >= 4 * weightsOf(s)[2], `weights ${weightsOf(s)}`);
  } finally {
    await Promise.all(conns.map((c) => c.end().catch(() => undefined)));
  }
  await until(hm, (s) => lcWeight(s, 'db3') === 100, 5000, 'db3 weight back after the connections close');
  const changes = cap.lines.filter((l) => l.includes('backend db3 lc weight')).length - logsBefore;
  assert.ok(changes >= 2 && changes <= 4, `${changes} weight changes logged: damped, not one per interval`);
});

test('a replica whose SQL thread stops leaves the readers pool and returns when it restarts', async () => {
  await servers[2].query('STOP SLAVE SQL_THREAD');
  await until(hm, (s) => !pool(s, 'ro').includes('db3'), 3000, 'db3 leaves readers');
  const b = backend(hm.snapshot(), 'db3');
  assert.equal(b.up, true, 'stopped replication is not "down"');
  assert.equal(b.lagSeconds, null);
  assert.equal(b.lagUnknownReason, 'replication SQL thread not running');
  await servers[2].query('START SLAVE SQL_THREAD');
  await until(hm, (s) => pool(s, 'ro').includes('db3'), 5000, 'db3 back in readers');
});

test('a replica delayed beyond the lag limit leaves the readers pool and returns when caught up', async () => {
  await servers[2].query('STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=4; START SLAVE');
  try {
    await until(
      hm,
      (s) => (backend(s, 'db3').lagSeconds ?? 0) > 1.5 && !pool(s, 'ro').includes('db3'),
      8000,
      'db3 leaves readers (lag)',
    );
    const b = backend(hm.snapshot(), 'db3');
    assert.ok(b.up, 'a lagging replica is not down');
    assert.equal(b.readerEligible, false);
  } finally {
    await servers[2].query('STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=0; START SLAVE');
  }
  await until(
    hm,
    (s) => pool(s, 'ro').includes('db3') && backend(s, 'db3').lagSeconds! < 1,
    10_000,
    'db3 back in readers after catching up',
  );
});

test('a query that hangs on a lock times out and marks the backend down', async () => {
  const locker = await servers[1].connect();
  try {
    await locker.query('LOCK TABLES hb.heartbeat WRITE');
    await until(hm, (s) => !backend(s, 'db2').up, 3000, 'db2 down on hung query');
    assert.match(
      backend(hm.snapshot(), 'db2').lastError!,
      /^timeout after 200 ms running SELECT TIMESTAMPDIFF\(MICROSECOND, MAX\(`ts`\), NOW\(6\)\) AS us FROM `hb`.`heartbeat`/,
    );
    assert.ok(!pool(hm.snapshot(), 'ro').includes('db2'));
  } finally {
    await locker.query('UNLOCK TABLES').catch(() => undefined);
    await locker.end().catch(() => undefined);
  }
  await until(hm, (s) => backend(s, 'db2').up && pool(s, 'ro').includes('db2'), 8000, 'db2 back after unlock');
});

test('a SIGSTOPped replica (still accepting TCP) is detected down and returns after SIGCONT', async () => {
  const t0 = Date.now();
  await servers[2].kill('SIGSTOP');
  try {
    await until(hm, (s) => !backend(s, 'db3').up, 4000, 'db3 down after SIGSTOP');
    const ms = Date.now() - t0;
    // (From loopback, where the server tracks no connect errors.) TCP alone would call it healthy.
    assert.equal((await tcpCheck('127.0.0.1', servers[2].port, 500)).ok, true, 'the hung server still accepts TCP');
    assert.ok(ms <= INTERVAL * (FALL + 1) + CONNECT_TIMEOUT + TIMEOUT + 400, `detected after ${ms} ms`);
    assert.ok(!pool(hm.snapshot(), 'ro').includes('db3'));
    assert.match(backend(hm.snapshot(), 'db3').lastError!, /timeout after/);
  } finally {
    await servers[2].kill('SIGCONT');
  }
  await until(hm, (s) => pool(s, 'ro').includes('db3'), 8000, 'db3 back after SIGCONT');
});

test('a SIGKILLed replica is down within interval x fall (+ one interval) and back after restart and rise', async () => {
  const t0 = Date.now();
  await servers[2].kill('SIGKILL');
  await until(hm, (s) => !backend(s, 'db3').up, 4000, 'db3 down after SIGKILL');
  const ms = Date.now() - t0;
  assert.ok(ms <= INTERVAL * (FALL + 1) + 400, `detected after ${ms} ms`);
  assert.match(backend(hm.snapshot(), 'db3').lastError!, /connection refused|connection lost/);
  await servers[2].start();
  await servers[2].query('SET GLOBAL read_only=1');
  await until(hm, (s) => backend(s, 'db3').up && pool(s, 'ro').includes('db3'), 15_000, 'db3 back after restart');
  const b = backend(hm.snapshot(), 'db3');
  assert.equal(b.lastError, null, 'a clean check clears the current error');
  assert.match(b.previousError!, /connection refused|connection lost/, 'and keeps it as history');
});

test('promotion moves the writer within a few intervals', async () => {
  await servers[0].query('SET GLOBAL read_only=1');
  await servers[1].query('STOP SLAVE; SET GLOBAL read_only=0');
  const ms = await until(hm, (s) => s.writers.rw === key(1), 3000, 'writer moves to db2');
  assert.ok(ms <= INTERVAL * 5, `writer moved after ${ms} ms`);
  const s = hm.snapshot();
  assert.deepEqual(pool(s, 'rw'), ['db2']);
  assert.equal(backend(s, 'db1').role, 'readonly');
  // And back again.
  await servers[1].query('SET GLOBAL read_only=1; START SLAVE');
  await servers[0].query('SET GLOBAL read_only=0');
  await until(hm, (x) => x.writers.rw === key(0) && pool(x, 'ro').includes('db2'), 5000, 'writer back on db1');
});

test('two writable servers keep the current writer and raise an alert', async () => {
  const before = hm.snapshot().counters.splitBrain;
  await servers[1].query('STOP SLAVE; SET GLOBAL read_only=0');
  try {
    await until(hm, (s) => s.alerts.some((a) => a.kind === 'split-brain'), 3000, 'split-brain alert');
    for (let i = 0; i < 5; i++) await hm.nextRound();
    const s = hm.snapshot();
    assert.equal(s.writers.rw, key(0), 'the writer stays put');
    assert.deepEqual(pool(s, 'rw'), ['db1']);
    assert.equal(s.counters.splitBrain, before + 1, 'one alert, not one per round');
    assert.match(
      s.alerts.find((a) => a.kind === 'split-brain')!.message,
      /split brain: 2 writable servers \(db1 is the writer, also writable: db2\)/,
    );
    assert.equal(cap.lines.filter((l) => l.includes('ALERT service rw: split brain')).length, 1, 'logged once');
  } finally {
    await servers[1].query('SET GLOBAL read_only=1; START SLAVE');
  }
  await until(
    hm,
    (s) => !s.alerts.some((a) => a.kind === 'split-brain') && pool(s, 'ro').includes('db2'),
    5000,
    'alert cleared',
  );
});

test('two writable servers with no established writer fail closed', async () => {
  await servers[1].query('STOP SLAVE; SET GLOBAL read_only=0');
  const fresh = new HealthMonitor({
    ...healthInputs({
      services: services.map((s) => ({
        name: s.name,
        pool: s.pool,
        check: s.check,
        scheduler: s.scheduler,
        backends: s.backends.map((b) => ({ address: b.address, port: b.port, name: b.name })),
      })),
      monitor: { user: 'monitor', password_file: pwFile, connect_timeout: CONNECT_TIMEOUT },
      health: { interval: 500, timeout: 500 },
    }),
    log: captureLog().log,
  });
  extraMonitors.push(fresh);
  const writersSeen = new Set<string>();
  fresh.on('change', (s: HealthSnapshot) => {
    if (s.writers.rw) writersSeen.add(s.writers.rw);
  });
  try {
    fresh.start();
    await until(fresh, (s) => s.alerts.some((a) => a.kind === 'ambiguous-writer'), 5000, 'ambiguous-writer alert');
    const s = fresh.snapshot();
    assert.deepEqual([...writersSeen], [], 'no writer was ever elected');
    assert.equal(s.writers.rw, null);
    assert.deepEqual(pool(s, 'rw'), []);
    assert.match(
      s.alerts.find((a) => a.kind === 'ambiguous-writer')!.message,
      /2 writable servers \(db1, db2\) and no established writer: failing closed/,
    );
  } finally {
    await fresh.stop();
    await servers[1].query('SET GLOBAL read_only=1; START SLAVE');
  }
  await until(hm, (s) => pool(s, 'ro').includes('db2'), 5000, 'db2 back in readers');
});

test('a wrong monitor password marks backends down with an auth error, and they return when it is fixed', async () => {
  fs.writeFileSync(pwFile, `${WRONG}\n`);
  try {
    await until(hm, (s) => s.backends.every((b) => !b.up), 6000, 'all down on wrong password');
    assert.match(
      backend(hm.snapshot(), 'db1').lastError!,
      /^(fresh connect: )?auth failed: Access denied for user 'monitor'@'127.0.0.1' \(using password: YES\)/,
    );
  } finally {
    fs.writeFileSync(pwFile, `${PASSWORD}\n`);
  }
  await until(hm, (s) => s.backends.every((b) => b.up) && s.writers.rw === key(0), 6000, 'all up again');
});

test('a monitor user without SLAVE MONITOR gives a clear per-backend error and unknown lag', async () => {
  const db4 = new MariaDB({
    prefix: PREFIX,
    name: 'db4',
    serverId: 4,
    monitorPassword: PASSWORD,
    monitorSlaveMonitor: false,
  });
  servers.push(db4);
  await db4.start();
  await db4.query('SET GLOBAL read_only=1');
  const m = new HealthMonitor({
    ...healthInputs({
      services: [
        {
          name: 'ro4',
          pool: 'readers',
          check: 'mysql',
          backends: [{ address: '127.0.0.1', port: db4.port, name: 'db4' }],
        },
      ],
      monitor: { user: 'monitor', password_file: pwFile, connect_timeout: CONNECT_TIMEOUT },
      health: { interval: INTERVAL, timeout: TIMEOUT },
    }),
    log: captureLog().log,
  });
  extraMonitors.push(m);
  m.start();
  await until(m, (s) => s.round >= 2, 3000, 'two rounds');
  const b = backend(m.snapshot(), 'db4');
  assert.equal(b.up, true);
  assert.equal(b.role, 'unknown');
  assert.equal(b.lagSeconds, null);
  assert.equal(b.readerEligible, false);
  assert.match(
    b.lastError!,
    /^missing privilege SLAVE MONITOR: Access denied; you need \(at least one of\) the SUPER, SLAVE MONITOR privilege\(s\)/,
  );
  assert.equal(b.lagUnknownReason, b.lastError);
  await m.stop();
});

test('a server that is not MySQL on the port is down with a clear error', async () => {
  const garbage = await fakeServer('SSH-2.0-OpenSSH_9.2p1 Debian\r\n');
  const silent = await fakeServer(null);
  const m = new HealthMonitor({
    ...healthInputs({
      services: [
        {
          name: 'x',
          check: 'mysql',
          backends: [
            { address: '127.0.0.1', port: garbage.port, name: 'ssh' },
            { address: '127.0.0.1', port: silent.port, name: 'silent' },
          ],
        },
      ],
      monitor: { user: 'monitor', password_file: pwFile, connect_timeout: CONNECT_TIMEOUT },
      health: { interval: INTERVAL, timeout: TIMEOUT },
    }),
    log: captureLog().log,
  });
  extraMonitors.push(m);
  try {
    m.start();
    await until(m, (s) => s.round >= 2, 4000, 'two rounds');
    const s = m.snapshot();
    assert.equal(backend(s, 'ssh').up, false);
    assert.match(
      backend(s, 'ssh').lastError!,
      /^not a MySQL server at 127\.0\.0\.1:\d+: its first bytes "SSH-2\.0-OpenSSH_9\.2p1 De"… are not a MySQL greeting/,
    );
    assert.equal(backend(s, 'silent').up, false);
    assert.match(backend(s, 'silent').lastError!, /waiting for the MySQL greeting/);
  } finally {
    await m.stop();
    await garbage.close();
    await silent.close();
  }
});

test('the monitor password never appears in a log line or the snapshot', () => {
  const text = cap.lines.join('\n') + JSON.stringify(hm.snapshot());
  assert.ok(cap.lines.length > 10, 'the scenarios above logged state changes');
  assert.ok(text.includes('Access denied'), 'the wrong-password scenario was logged');
  assert.equal(text.includes(PASSWORD), false);
  assert.equal(text.includes(WRONG), false);
});

test('change is emitted at most once per check round', () => {
  assert.ok(rounds > 50, `${rounds} rounds`);
  assert.ok(changeEvents > 10, `${changeEvents} change events over the scenarios`);
  assert.ok(changeEvents <= rounds, `${changeEvents} change events in ${rounds} rounds`);
});
