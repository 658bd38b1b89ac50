// max_connect_errors: the checker must never get the director's address blocked (ERROR 1129).
// Servers run with max_connect_errors=3 and name resolution on (with --skip-name-resolve
// MariaDB keeps no host cache and never blocks, which would make this test vacuous); the checker
// connects from 127.0.0.3 to 127.0.0.2, a non-loopback-source path the server tracks.
// A control probe (bare TCP connect/close from 127.0.0.4) shows the server does block.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import mysql from 'mysql2/promise';
import { MariaDB } from '../../scripts/lab/mariadb';
import { HealthMonitor } from '../../src/health/monitor';
import { healthInputs } from '../lib/config';
import { backend, captureLog, until, type LogCapture } from './cluster';

const PREFIX = `xde${process.pid}ce`;
const PASSWORD = `Xde-Mce-${process.pid}`;
const SOURCE = '127.0.0.3';
const CONTROL_SOURCE = '127.0.0.4';
const DEST = '127.0.0.2';

let servers: MariaDB[] = [];
let hm: HealthMonitor;
let cap: LogCapture;

function firstPacket(port: number, localAddress: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: DEST, port, localAddress });
    s.once('data', (b: Buffer) => {
      s.destroy();
      resolve(b);
    });
    s.once('error', reject);
  });
}

/** Log in as app from `localAddress`; returns null on success or the server's error. */
async function loginFrom(port: number, localAddress: string): Promise<{ errno?: number; message: string } | null> {
  try {
    const c = await mysql.createConnection({
      user: 'app',
      password: 'app',
      stream: () => net.connect({ host: DEST, port, localAddress }),
      connectTimeout: 5000,
    });
    await c.query('SELECT 1');
    await c.end();
    return null;
  } catch (err) {
    return err as { errno?: number; message: string };
  }
}

before(async () => {
  servers = [1, 2].map(
    (i) =>
      new MariaDB({
        prefix: PREFIX,
        name: `m${i}`,
        serverId: i,
        bindAddress: '0.0.0.0',
        maxConnectErrors: 3,
        monitorPassword: PASSWORD,
        extraArgs: ['--skip-name-resolve=0'],
      }),
  );
  await Promise.all(servers.map((s) => s.start()));
  process.env.XDE_MCE_PW = PASSWORD;
  cap = captureLog();
  hm = new HealthMonitor({
    ...healthInputs({
      services: [
        {
          name: 's',
          check: 'mysql',
          backends: servers.map((s, i) => ({ address: DEST, port: s.port, name: `m${i + 1}` })),
        },
      ],
      monitor: { user: 'monitor', password_env: 'XDE_MCE_PW', connect_timeout: 100, source_address: SOURCE },
      health: { interval: 100, timeout: 80, rise: 2, fall: 3, fresh_connect_interval: 200 },
    }),
    log: cap.log,
  });
});

after(async () => {
  await hm?.stop();
  delete process.env.XDE_MCE_PW;
  await Promise.all(servers.map((s) => s.destroy()));
});

test('the servers do block an address after three bare TCP probes (control)', async () => {
  const port = servers[0].port;
  for (let i = 0; i < 3; i++) {
    const b = await firstPacket(port, CONTROL_SOURCE);
    assert.equal(b[4], 0x0a, 'a greeting while not yet blocked');
    // The server counts the error when its thread sees the close: give it a moment.
    await new Promise((r) => setTimeout(r, 100));
  }
  const b = await firstPacket(port, CONTROL_SOURCE);
  assert.equal(b[4], 0xff, 'an ERR packet');
  assert.equal(b.readUInt16LE(5), 1129);
});

test('failed logins (wrong password) do not count against max_connect_errors', async () => {
  const port = servers[1].port;
  for (let i = 0; i < 6; i++) {
    try {
      const c = await mysql.createConnection({
        user: 'monitor',
        password: 'wrong',
        stream: () => net.connect({ host: DEST, port, localAddress: '127.0.0.5' }),
        connectTimeout: 5000,
      });
      await c.end();
      assert.fail('a wrong password was accepted');
    } catch (err) {
      assert.equal((err as { errno?: number }).errno, 1045, (err as Error).message);
    }
  }
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(
    await loginFrom(port, '127.0.0.5'),
    null,
    'six failed logins (> max_connect_errors=3) did not block the address',
  );
});

test('hundreds of checks with restarts, hangs and a wrong password never block the checker', async () => {
  const [m1, m2] = servers;
  const both = (up: boolean) => (s: ReturnType<HealthMonitor['snapshot']>) => s.backends.every((b) => b.up === up);
  hm.start();
  await until(hm, both(true), 5000, 'both up');
  await new Promise((r) => setTimeout(r, 1500));

  // Hung server: query timeouts, then logins that stay pending until it wakes up.
  await m1.kill('SIGSTOP');
  await until(hm, (s) => !backend(s, 'm1').up, 3000, 'm1 down (SIGSTOP)');
  await new Promise((r) => setTimeout(r, 2000));
  await m1.kill('SIGCONT');
  await until(hm, both(true), 8000, 'm1 back after SIGCONT');

  // Crash and restart.
  await m1.kill('SIGKILL');
  await until(hm, (s) => !backend(s, 'm1').up, 3000, 'm1 down (SIGKILL)');
  await m1.start();
  await until(hm, both(true), 10_000, 'm1 back after restart');

  // Wrong password for a while (fresh connects fail authentication every round).
  process.env.XDE_MCE_PW = 'not-the-password';
  await until(hm, both(false), 5000, 'both down (wrong password)');
  await new Promise((r) => setTimeout(r, 1000));
  process.env.XDE_MCE_PW = PASSWORD;
  await until(hm, both(true), 5000, 'both up (password fixed)');

  // A longer hang on the other server, then a graceful restart of it.
  await m2.kill('SIGSTOP');
  await until(hm, (s) => !backend(s, 'm2').up, 3000, 'm2 down (SIGSTOP)');
  await new Promise((r) => setTimeout(r, 3000));
  await m2.kill('SIGCONT');
  await until(hm, both(true), 8000, 'm2 back after SIGCONT');
  await m2.restart();
  await until(hm, both(true), 10_000, 'm2 back after restart');
  await new Promise((r) => setTimeout(r, 1000));

  const s = hm.snapshot();
  assert.ok(s.counters.checks >= 200, `only ${s.counters.checks} checks`);
  assert.ok(s.counters.failures >= 20, `only ${s.counters.failures} failed checks`);
  for (const srv of servers) {
    const err = await loginFrom(srv.port, SOURCE);
    assert.equal(err, null, `${srv.label}: login from the checker's address failed: ${err?.message}`);
  }
  assert.equal(
    cap.lines.some((l) => /1129|blocked because of many connection errors/.test(l)),
    false,
    'no ERROR 1129 ever seen',
  );
});
