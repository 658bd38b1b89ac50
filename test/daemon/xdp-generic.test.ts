// Issue 2 end to end once in generic (skb) XDP mode: no veth peer program, no
// checksum workaround needed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { E2e, svc } from './harness';

const e = new E2e({ tag: 'gn', xdpMode: 'generic' });

before(async () => {
  await e.setup();
  const d = e.directors[0];
  await e.lab.addVip(d.host);
  e.writeConfig(
    d,
    e.config(d, [
      svc(
        'mysql',
        e.lab.vip,
        e.lab.realServers.map((h, i) => ({ address: h.ipv4, name: h.name, weight: i === 2 ? 2 : 1 })),
      ),
    ]),
  );
  await e.startDirector(d);
  await e.waitResolved(d);
});

after(async () => {
  await e.teardown();
});

test('in generic mode 150 connections through the VIP reach all three backends and status reports generic', async () => {
  const d = e.directors[0];
  const r = await e.lab.runClient({ connections: 150, concurrency: 8 });
  assert.equal(r.failed, 0, JSON.stringify(r.failures));
  assert.equal(Object.keys(r.byServerId).length, 3, JSON.stringify(r.byServerId));
  assert.ok(
    (r.byServerId['3'] ?? 0) > (r.byServerId['1'] ?? 0),
    `weight 2 beats weight 1: ${JSON.stringify(r.byServerId)}`,
  );
  const st = await e.status(d);
  assert.equal(st.dataplane.detail.mode, 'generic');
  assert.ok(st.dataplane.reasons.tx_new_flow >= 150, JSON.stringify(st.dataplane.reasons));
});

test('stop --detach removes the program from the interface and the pins', async () => {
  const d = e.directors[0];
  await e.stopDirector(d);
  const before = await e.lab.run(d.host, 'ip', ['link', 'show', 'eth0']);
  assert.match(before.stdout, /xdpgeneric/, 'program stays attached after SIGTERM');
  const r = await e.lab.run(
    d.host,
    process.execPath,
    [require('node:path').join(__dirname, '../../../bin/xdirector.js'), 'stop', '--detach', '-c', d.configFile],
    { mode: 'nsenter' } as any,
  );
  assert.match(r.stdout, /detached/);
  const after = await e.lab.run(d.host, 'ip', ['link', 'show', 'eth0']);
  assert.doesNotMatch(after.stdout, /xdp/);
});
