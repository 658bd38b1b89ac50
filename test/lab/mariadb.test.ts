// MariaDB manager: start/stop/kill/restart on loopback, users, replication.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import mysql from 'mysql2/promise';
import { MariaDB, setupReplication, syncReplicas, cleanupStaleMariaDB } from '../../scripts/lab/mariadb';
import { pidAlive } from '../../scripts/lab/exec';

const prefix = `xdfm${process.pid}`;
const servers: MariaDB[] = [];

function server(
  name: string,
  serverId: number,
  extra: Partial<ConstructorParameters<typeof MariaDB>[0]> = {},
): MariaDB {
  const s = new MariaDB({ prefix, name, serverId, ...extra });
  servers.push(s);
  return s;
}

async function appServerId(s: MariaDB, user = 'app', password = 'app'): Promise<number> {
  const c = await mysql.createConnection({ host: '127.0.0.1', port: s.port, user, password, connectTimeout: 3000 });
  try {
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT @@server_id AS id');
    return Number(rows[0].id);
  } finally {
    await c.end();
  }
}

const primary = server('p', 11, { monitorPassword: 'monpass' });
const replica1 = server('a', 12);
const replica2 = server('b', 13, { monitorSlaveMonitor: false });

before(async () => {
  await Promise.all([primary.start(), replica1.start(), replica2.start()]);
});

after(async () => {
  await Promise.all(servers.map((s) => s.destroy()));
  await cleanupStaleMariaDB(prefix);
});

test('a started server answers the app user over TCP with its own server_id', async () => {
  assert.equal(await appServerId(primary), 11);
  assert.equal(await appServerId(replica1), 12);
});

test('the monitor user logs in with the given password and holds SLAVE MONITOR', async () => {
  const c = await mysql.createConnection({
    host: '127.0.0.1',
    port: primary.port,
    user: 'monitor',
    password: 'monpass',
  });
  try {
    const [rows] = await c.query<mysql.RowDataPacket[]>('SHOW GRANTS');
    const g = rows.map((r) => String(Object.values(r)[0])).join('\n');
    assert.match(g, /SLAVE MONITOR/);
    assert.match(g, /PROCESS/);
    await c.query('SHOW REPLICA STATUS');
  } finally {
    await c.end();
  }
});

test('a monitor user created without SLAVE MONITOR is refused SHOW REPLICA STATUS', async () => {
  const c = await mysql.createConnection({
    host: '127.0.0.1',
    port: replica2.port,
    user: 'monitor',
    password: 'monitor',
  });
  try {
    await assert.rejects(c.query('SHOW REPLICA STATUS'), /SLAVE MONITOR|1227/);
  } finally {
    await c.end();
  }
});

test('replication with GTID copies a write on the primary to every replica', async () => {
  await setupReplication(primary, [replica1, replica2]);
  await primary.query('CREATE TABLE lab.t (id INT PRIMARY KEY, v VARCHAR(20))');
  await primary.query("INSERT INTO lab.t VALUES (1, 'hello')");
  await syncReplicas(primary, [replica1, replica2]);
  for (const r of [replica1, replica2]) {
    const rows = await r.query('SELECT v FROM lab.t WHERE id=1');
    assert.equal(rows[0]?.v, 'hello', `${r.label} has the row`);
    const ro = await r.query('SELECT @@read_only AS ro');
    assert.equal(Number(ro[0].ro), 1);
  }
});

test('stop ends the process and restart brings the same data back on the same port', async () => {
  const s = server('s', 21);
  await s.start();
  const port = s.port;
  const pid = s.pid!;
  await s.query('CREATE TABLE lab.k (v INT) ; INSERT INTO lab.k VALUES (42)');
  await s.stop();
  assert.equal(pidAlive(pid), false);
  assert.equal(s.state, 'stopped');
  await assert.rejects(appServerId(s), /ECONNREFUSED/);
  await s.restart();
  assert.equal(s.port, port);
  assert.notEqual(s.pid, pid);
  const rows = await s.query('SELECT v FROM lab.k');
  assert.equal(rows[0].v, 42);
  await s.destroy();
  assert.equal(fs.existsSync(`/proc/${pid}`), false);
});

test('SIGKILL ends the server at once and a start afterwards recovers it', async () => {
  const s = server('k', 22);
  await s.start();
  const pid = s.pid!;
  await s.kill('SIGKILL');
  assert.equal(pidAlive(pid), false);
  await assert.rejects(appServerId(s), /ECONNREFUSED/);
  await s.start();
  assert.equal(await appServerId(s), 22);
  await s.destroy();
});

test('SIGSTOP freezes the server (TCP accepts but no greeting) until SIGCONT', async () => {
  const s = server('f', 23);
  await s.start();
  await s.kill('SIGSTOP');
  try {
    await assert.rejects(
      mysql.createConnection({ host: '127.0.0.1', port: s.port, user: 'app', password: 'app', connectTimeout: 800 }),
      /ETIMEDOUT|timeout/i,
    );
  } finally {
    await s.kill('SIGCONT');
  }
  assert.equal(await appServerId(s), 23);
  await s.destroy();
});

test('destroy removes the temp dir and is safe to call twice', async () => {
  const s = server('d', 24);
  await s.start();
  const dir = s.dir!;
  assert.ok(fs.existsSync(dir));
  await s.destroy();
  await s.destroy();
  assert.equal(fs.existsSync(dir), false);
});
