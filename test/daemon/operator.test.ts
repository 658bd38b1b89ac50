// Issue 13 item 6 end to end: the operator's run-time commands against a real XDP director in
// namespaces and real MariaDB backends. Two services share the same two real servers: "rw" on
// the lab VIP and "ro" on a second VIP (on the director's eth0 and every real server's lo, DR).
// drain / maint / weight with SERVICE/BACKEND, their refusals, persistence across a restart, and
// status --rate.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { E2e, ROOT, svc } from './harness';

const VIP_RO = '10.77.0.101';
const e = new E2e({ tag: 'op', realServers: 2 });
let d: (typeof e.directors)[number];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function services() {
  const backends = e.lab.realServers.map((h) => ({ address: h.ipv4, name: h.name }));
  return [svc('rw', e.lab.vip, backends), svc('ro', VIP_RO, backends)];
}

async function ids(host: string, n: number): Promise<Record<string, number>> {
  const r = await e.lab.runClient({ host, connections: n, concurrency: 8 });
  assert.equal(r.failed, 0, `connections to ${host} failed: ${JSON.stringify(r.failures)}`);
  return r.byServerId;
}

/** Per service, [name, state, weight] of each backend, from one status call (or `st`). */
async function pools(st?: any): Promise<Record<string, [string, string, number][]>> {
  const s = st ?? (await e.status(d));
  return Object.fromEntries(
    s.dataplane.services.map((x: any) => [x.name, x.backends.map((b: any) => [b.name, b.state, b.weight])]),
  );
}

const ALL_ACTIVE = {
  rw: [
    ['r1', 'active', 1],
    ['r2', 'active', 1],
  ],
  ro: [
    ['r1', 'active', 1],
    ['r2', 'active', 1],
  ],
};

before(async () => {
  await e.setup();
  d = e.directors[0];
  await e.lab.addVip(d.host);
  await e.lab.run(d.host, 'ip', ['addr', 'add', `${VIP_RO}/32`, 'dev', 'eth0']);
  for (const h of e.lab.realServers) await e.lab.run(h, 'ip', ['addr', 'add', `${VIP_RO}/32`, 'dev', 'lo']);
  e.writeConfig(d, e.config(d, services()));
  await e.startDirector(d);
  await e.waitResolved(d);
});

after(async () => {
  await e.teardown();
});

test("status --json names the running daemon's version", async () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(JSON.parse((await e.cli(d, ['status', '--json'])).stdout).version, pkg.version);
});

test('drain SERVICE/BACKEND stops new connections to the backend in that service only', async () => {
  const r = await e.cli(d, ['drain', 'rw/r1']);
  assert.equal(r.stdout, 'drained rw/r1 (in service rw): established flows finish, new flows go elsewhere\n');
  assert.deepEqual(await pools(), {
    rw: [
      ['r1', 'draining', 0],
      ['r2', 'active', 1],
    ],
    ro: [
      ['r1', 'active', 1],
      ['r2', 'active', 1],
    ],
  });
  assert.deepEqual(Object.keys(await ids(e.lab.vip, 40)), ['2'], 'rw: only r2');
  assert.ok((await ids(VIP_RO, 40))['1']! > 0, 'ro: r1 still takes new connections');
  assert.match((await e.cli(d, ['status'])).stdout, /^drained: rw\/r1$/m);
  // Stored by name: the address:port form undoes it too.
  assert.equal(
    (await e.cli(d, ['undrain', `rw/${e.lab.realServers[0]!.ipv4}:3306`])).stdout,
    'undrained rw/r1 (in service rw)\n',
  );
  assert.deepEqual(await pools(), ALL_ACTIVE);
});

test('unknown services and backends and out-of-range weights are refused with the exact message and nothing changes', async () => {
  const before = await e.status(d);
  const cases: [string[], string, number][] = [
    [['drain', 'nope/r1'], "xdirector: no service named nope: use one of the config's services (rw, ro)\n", 1],
    [
      ['maint', 'rw/r9'],
      'xdirector: service rw has no backend named r9: use one of its backends (r1, r2), by name or address:port\n',
      1,
    ],
    [
      ['weight', 'r9', '2'],
      'xdirector: no backend named r9: use a backend name or address:port from the config (r1, r2), or SERVICE/BACKEND for one service\n',
      1,
    ],
    [
      ['weight', 'rw/r1', '70000'],
      "xdirector: weight rw/r1 70000: a weight must be an integer from 0 to 65535 (the config's weight rule)\n",
      2,
    ],
    [
      ['weight', 'rw/r1', '-1'],
      "xdirector: weight rw/r1 -1: a weight must be an integer from 0 to 65535 (the config's weight rule)\n",
      2,
    ],
  ];
  for (const [args, stderr, code] of cases) {
    const r = await e.cli(d, args, true);
    assert.equal(r.stderr, stderr, args.join(' '));
    assert.equal(r.code, code, args.join(' '));
  }
  const after = await e.status(d);
  assert.deepEqual([after.drained, after.maint, after.weights], [[], [], []]);
  const shape = (st: any) =>
    st.dataplane.services.map((s: any) => s.backends.map((b: any) => [s.name, b.name, b.state, b.weight]));
  assert.deepEqual(shape(after), shape(before));
});

test('weight SERVICE/BACKEND moves the share of new connections, survives reload and restart, and --reset returns to the config', async () => {
  assert.equal(
    (await e.cli(d, ['weight', 'rw/r2', '3'])).stdout,
    "weight rw/r2 (in service rw): 3, overriding the config's 1; kept across reload and restart until `xdirector weight rw/r2 --reset`\n",
  );
  const weighted = {
    rw: [
      ['r1', 'active', 1],
      ['r2', 'active', 3],
    ],
    ro: [
      ['r1', 'active', 1],
      ['r2', 'active', 1],
    ],
  };
  assert.deepEqual(await pools(), weighted, 'the other service keeps the config weight');
  // Maglev gives r2 3/4 of the ring: expected 150 of 200, binomial sd ~6.
  const c = await ids(e.lab.vip, 200);
  assert.ok(c['2']! >= 125 && c['2']! <= 175, `r2 at weight 3 of 4 took ${c['2']} of 200 (${JSON.stringify(c)})`);
  assert.match(
    (await e.cli(d, ['status'])).stdout,
    /^runtime weight rw\/r2 3: overrides the config's \(rw 1\); kept across reload until weight rw\/r2 --reset$/m,
  );
  assert.match((await e.cli(d, ['reload'])).stdout, /run-time weights kept, overriding the config's: rw\/r2=3/);
  assert.deepEqual(await pools(), weighted, 'a reload keeps the override');
  await e.stopDirector(d);
  await e.startDirector(d);
  const st = await e.waitResolved(d);
  assert.deepEqual(st.weights, [{ target: 'rw/r2', weight: 3, config: { rw: 1 } }]);
  assert.deepEqual(await pools(st), weighted, 'a restart keeps the override');
  const c2 = await ids(e.lab.vip, 200);
  assert.ok(c2['2']! >= 125 && c2['2']! <= 175, `after the restart r2 took ${c2['2']} of 200`);
  assert.equal(
    (await e.cli(d, ['weight', 'rw/r2', '--reset'])).stdout,
    "weight rw/r2 (in service rw): back to the config's weight 1\n",
  );
  assert.deepEqual(await pools(), ALL_ACTIVE);
});

test('drain keeps an established MySQL session working; maint ends it (the next query fails) with a RST from the other real server', async () => {
  const hold = await e.lab.startHold({ intervalMs: 100 });
  const held = e.lab.realServers[hold.serverId - 1]!;
  const other = e.lab.realServers.find((h) => h !== held)!;
  let rsts = '';
  // The re-hashed packets reach the other real server, which has no socket for them.
  const cap = spawn(
    'ip',
    [
      'netns',
      'exec',
      other.ns,
      'tcpdump',
      '-l',
      '-nn',
      '-i',
      'eth0',
      `tcp[tcpflags] & tcp-rst != 0 and src host ${e.lab.vip} and src port 3306`,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  cap.stdout.on('data', (b: Buffer) => (rsts += b.toString()));
  try {
    await sleep(800);
    await e.cli(d, ['drain', `rw/${held.name}`]);
    await sleep(1000);
    assert.equal(rsts, '', 'no RST while draining');
    const tMaint = Date.now();
    const m = await e.cli(d, ['maint', `rw/${held.name}`]);
    assert.match(m.stdout, /no new flows, established flows end/);
    await sleep(1500);
    const h = await hold.stop();
    const failedAt = h.failures.map((f) => f.atMs);
    assert.ok(h.failed >= 1, `the held session failed after maint: ${JSON.stringify(h)}`);
    assert.ok(
      h.failures.every((f) => f.reason !== ''),
      JSON.stringify(h.failures),
    );
    assert.ok(h.sessions >= 2, `the client reconnected (sessions ${h.sessions})`);
    assert.ok(
      (h.byServerId[String(e.serverIdOf(other))] ?? 0) > 0,
      `the new session went to ${other.name}: ${JSON.stringify(h.byServerId)}`,
    );
    assert.match(
      rsts,
      new RegExp(
        `${e.lab.vip.replace(/\./g, '\\.')}\\.3306 > ${e.lab.client.ipv4.replace(/\./g, '\\.')}\\.\\d+: Flags \\[R`,
      ),
      `RST from ${other.name}:\n${rsts}`,
    );
    // Before maint, the drained session answered every query.
    assert.ok(
      h.ok > 15,
      `queries answered while drained: ${h.ok}; failures at ${failedAt.join(',')} ms, maint ${Date.now() - tMaint} ms ago`,
    );
    const st = await e.status(d);
    assert.deepEqual(st.maint, [`rw/${held.name}`]);
    assert.deepEqual(
      (await pools(st)).rw!.find((b) => b[0] === held.name),
      [held.name, 'maint', 0],
    );
    const metrics = (await e.cli(d, ['metrics'])).stdout;
    assert.ok(
      metrics.includes(`xdirector_backend_state{service="rw",backend="${held.name}",state="maint"} 1`),
      'metrics show the maint state',
    );
    assert.ok(metrics.includes(`xdirector_backend_state{service="rw",backend="${held.name}",state="draining"} 0`));
  } finally {
    cap.kill('SIGTERM');
    await e.cli(d, ['unmaint', `rw/${held.name}`], true);
    await e.cli(d, ['undrain', `rw/${held.name}`], true);
  }
  assert.deepEqual(await pools(), ALL_ACTIVE);
});

test('status --rate shows a non-zero connection rate while a client runs and 0 once it has stopped', async () => {
  const rate = async () => JSON.parse((await e.cli(d, ['status', '--rate', '--json'])).stdout);
  const running = e.lab.runClient({ connections: 200, concurrency: 2 });
  let seen: any;
  for (let i = 0; i < 40; i++) {
    const r = await rate();
    const rw = r?.services.find((s: any) => s.name === 'rw');
    if (rw && rw.cps > 0) {
      seen = r;
      break;
    }
  }
  const text = (await e.cli(d, ['status', '--rate'])).stdout;
  const done = await running;
  assert.equal(done.failed, 0);
  assert.ok(seen, 'a non-zero rw CPS while the client ran');
  const rw = seen.services.find((s: any) => s.name === 'rw');
  assert.ok(rw.inPps > rw.cps && rw.inBps > rw.inPps, JSON.stringify(rw));
  assert.ok(rw.backends.reduce((a: number, b: any) => a + b.cps, 0) > 0);
  assert.equal(seen.intervalSeconds > 1.5 && seen.intervalSeconds < 3, true, `window ${seen.intervalSeconds} s`);
  assert.match(text, /^Prot LocalAddress:Port\s+CPS\s+InPPS\s+InBPS$/m);
  // Two windows after the last connection, nothing moves.
  await sleep(4500);
  const after = await rate();
  assert.deepEqual(
    after.services.map((s: any) => [s.name, s.cps, s.inPps]),
    [
      ['rw', 0, 0],
      ['ro', 0, 0],
    ],
  );
  const metrics = (await e.cli(d, ['metrics'])).stdout;
  assert.match(metrics, /^xdirector_service_new_flows_per_second\{service="rw"\} 0$/m);
});
