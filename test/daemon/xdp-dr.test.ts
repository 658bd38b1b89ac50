// Issue 2 end to end: native XDP director in namespaces, three real MariaDB
// servers, connections through the VIP from a client namespace.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { E2e, svc } from './harness';

const e = new E2e({ tag: 'dr' });
let d: (typeof e.directors)[number];

function services(weights: [number, number, number] = [1, 1, 2], drop?: string) {
  const rs = e.lab.realServers;
  const v4 = rs.map((h, i) => ({ address: h.ipv4, name: h.name, weight: weights[i] })).filter((b) => b.name !== drop);
  const v6 = rs
    .map((h, i) => ({ address: h.ipv6, name: `${h.name}-6`, weight: weights[i] }))
    .filter((b) => b.name !== `${drop}-6`);
  return [svc('mysql', e.lab.vip, v4), svc('mysql6', e.lab.vip6, v6)];
}

before(async () => {
  await e.setup();
  d = e.directors[0];
  await e.lab.addVip(d.host);
  e.writeConfig(d, e.config(d, services()));
  await e.startDirector(d);
  const st = await e.waitResolved(d);
  for (const s of st.dataplane.services)
    for (const b of s.backends) assert.ok(b.mac, `backend ${b.name} resolved a MAC`);
});

after(async () => {
  await e.teardown();
});

test('300 new MySQL connections through the VIP reach all three backends in proportion to weights 1:1:2', async () => {
  const r = await e.lab.runClient({ connections: 300, concurrency: 8 });
  assert.equal(r.failed, 0, `failures: ${JSON.stringify(r.failures)}`);
  const c = [1, 2, 3].map((id) => r.byServerId[String(id)] ?? 0);
  // Expected 75/75/150; binomial spread at n=300 is ~8 per backend.
  assert.ok(c[0] >= 40 && c[0] <= 115, `server 1 got ${c[0]} of 300`);
  assert.ok(c[1] >= 40 && c[1] <= 115, `server 2 got ${c[1]} of 300`);
  assert.ok(c[2] >= 105 && c[2] <= 195, `server 3 got ${c[2]} of 300`);
  const st = await e.status(d);
  const s = st.dataplane.services.find((x: any) => x.name === 'mysql');
  assert.ok(s.newFlows >= 300, `status counts the new flows (${s.newFlows})`);
  assert.equal(st.dataplane.detail.mode, 'native');
});

test('IPv6 connections through the IPv6 VIP reach the backends', async () => {
  const r = await e.lab.runClient({ host: e.lab.vip6, connections: 60, concurrency: 4 });
  assert.equal(r.failed, 0, `failures: ${JSON.stringify(r.failures)}`);
  assert.equal(Object.keys(r.byServerId).length, 3, `served by ${JSON.stringify(r.byServerId)}`);
});

test('replies go straight from the real servers to the client, never back through the director', async () => {
  // Capture on the director's bridge port: XDP runs before capture inside the director.
  const sw = e.lab.sw;
  const peer = d.host.peer;
  const cap = spawn('ip', ['netns', 'exec', sw, 'tcpdump', '-l', '-nn', '-e', '-i', peer, 'tcp port 3306'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  cap.stdout.on('data', (b) => (out += b.toString()));
  await new Promise((r) => setTimeout(r, 1000));
  const r = await e.lab.runClient({ connections: 20, concurrency: 2 });
  await new Promise((r) => setTimeout(r, 500));
  cap.kill('SIGTERM');
  await new Promise((r) => cap.once('exit', r));
  assert.equal(r.failed, 0);
  const lines = out.split('\n').filter((l) => l.includes(' > '));
  const toVip = lines.filter((l) => l.includes(`> ${e.lab.vip}.3306`));
  const fromVip = lines.filter((l) => l.includes(`${e.lab.vip}.3306 >`));
  assert.ok(toVip.length > 40, `client packets seen on the director port: ${toVip.length}`);
  assert.equal(fromVip.length, 0, `packets from the VIP on the director port:\n${fromVip.slice(0, 5).join('\n')}`);
  // Every client frame to the director is re-sent by XDP_TX towards a real server's MAC.
  const txed = toVip.filter((l) => l.startsWith(`${d.host.mac} >`) || l.includes(`${d.host.mac} >`));
  assert.ok(txed.length > 20, `XDP_TX copies from the director MAC: ${txed.length}`);
});

test('status from another process shows services, backends with MAC, weight, flows and counters', async () => {
  const r = await e.cli(d, ['status']);
  assert.match(r.stdout, /TCP {2}10\.77\.0\.100:3306\s+maglev/);
  for (const h of e.lab.realServers) assert.ok(r.stdout.includes(h.mac), `status lists ${h.name}'s MAC ${h.mac}`);
  // Flows come from a background walk of the flow tables, refreshed at most every 2 s: a walk of the
  // bucket tables reads every entry of their capacity (2 x 65536 here, in 1024-entry slices with
  // pauses), so the first status after the connections may still show the walk before them.
  let b: any[] = [];
  for (let i = 0; i < 40; i++) {
    b = (await e.status(d)).dataplane.services[0].backends;
    if (b.every((x: any) => x.activeFlows + x.inactiveFlows > 0)) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.deepEqual(
    b.map((x: any) => x.weight),
    [1, 1, 2],
  );
  assert.ok(
    b.every((x: any) => x.packets > 0 && x.activeFlows + x.inactiveFlows > 0),
    JSON.stringify(b),
  );
});

test('status counts connections as IPVS does: closed ones inactive, an open session active until its client closes it', async () => {
  const sum = async (k: 'activeFlows' | 'inactiveFlows') => {
    const st = await e.status(d);
    return st.dataplane.services[0].backends.reduce((a: number, x: any) => a + x[k], 0);
  };
  // The flow count is a background walk refreshed at most every 2 s: wait for it to settle.
  const until = async (what: string, ok: () => Promise<boolean>) => {
    for (let i = 0; !(await ok()); i++) {
      assert.ok(i < 40, what);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  // Every connection the tests above opened is closed by its client (COM_QUIT, then FIN).
  await until('no connection is active once the clients closed theirs', async () => (await sum('activeFlows')) === 0);
  assert.ok((await sum('inactiveFlows')) > 0, 'the closed ones are inactive (InActConn)');
  const hold = await e.lab.startHold({ intervalMs: 100 });
  await new Promise((r) => setTimeout(r, 1500)); // past XD_PROVE_NS: the session is in the flow table
  await until('the held session is the one active connection', async () => (await sum('activeFlows')) === 1);
  const h = await hold.stop();
  assert.equal(h.failed, 0);
  await until(
    'the session ends its active time when its client closes it, not 900 s later',
    async () => (await sum('activeFlows')) === 0,
  );
});

test('a session opened before a control-plane restart keeps working, and no connection fails during the restart', async () => {
  const hold = await e.lab.startHold({ intervalMs: 100 });
  const progBefore = (await e.status(d)).dataplane.detail.programId;
  const during = e.lab.runClient({ connections: 150, concurrency: 2 });
  await new Promise((r) => setTimeout(r, 300));
  await e.stopDirector(d, 'SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  await e.startDirector(d);
  const r = await during;
  const h = await hold.stop();
  assert.equal(r.failed, 0, `connections during restart failed: ${JSON.stringify(r.failures)}`);
  assert.equal(h.failed, 0, `held session failures: ${JSON.stringify(h.failures)}`);
  assert.equal(h.sessions, 1, 'the held session was never re-opened');
  const st = await e.status(d);
  assert.notEqual(st.dataplane.detail.programId, progBefore, 'a new program was swapped in');
  assert.ok(st.dataplane.services[0].newFlows > 300, 'counters survived the restart');
});

test('reloading a config that removes a backend moves new connections while established sessions on the others keep working', async () => {
  const hold = await e.lab.startHold({ intervalMs: 100 });
  const keep = hold.serverId;
  const dropName = e.lab.realServers.find((h) => e.serverIdOf(h) !== keep)!.name;
  const dropId = e.lab.realServers.findIndex((h) => h.name === dropName) + 1;
  e.writeConfig(d, e.config(d, services([1, 1, 2], dropName)));
  await e.cli(d, ['reload']);
  const r = await e.lab.runClient({ connections: 90, concurrency: 4 });
  const h = await hold.stop();
  assert.equal(r.failed, 0);
  assert.equal(
    r.byServerId[String(dropId)] ?? 0,
    0,
    `removed backend ${dropName} still got ${JSON.stringify(r.byServerId)}`,
  );
  assert.equal(h.failed, 0, `held session failures: ${JSON.stringify(h.failures)}`);
});

test('changing a weight on reload shifts the share of new connections', async () => {
  e.writeConfig(d, e.config(d, services([1, 1, 8])));
  await e.cli(d, ['reload']);
  const r = await e.lab.runClient({ connections: 200, concurrency: 8 });
  assert.equal(r.failed, 0);
  const c3 = r.byServerId['3'] ?? 0;
  assert.ok(c3 >= 130, `weight 8 of 10 should take ~160 of 200, got ${c3}`);
});

test('a bad config on reload is refused and the running one keeps serving', async () => {
  const good = e.config(d, services([1, 1, 8]));
  e.writeConfig(d, { ...good, services: [{ ...(good.services as any[])[0], port: 70000 }] });
  const r = await e.cli(d, ['reload'], true);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /services\[0\]\.port/);
  const c = await e.lab.runClient({ connections: 20, concurrency: 4 });
  assert.equal(c.failed, 0);
  e.writeConfig(d, good);
});
