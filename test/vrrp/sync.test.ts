// Sync groups (keepalived's vrrp_sync_group, src/vrrp/sync.ts) in the two-network lab
// (two-arms.ts): per director, vi1 holds the VIP on eth0 and vi2 the real servers' gateway on
// eth1, each with its own VRID and adverts on its own segment, in sync group VG1. The group
// fails over as one: 30 sessions that need both addresses on one director survive the Master's
// SIGKILL; the returning Master takes both back; a member's Fault (its link down) faults the
// other and both move, and both come back when the link does.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VIP4, sh, sleep, waitFor, type Running } from './lab';
import { GW, TwoArms } from './two-arms';

const SESSIONS = 30;

function yaml(priority: number): string {
  const inst = (name: string, vrid: number, itf: string, vip: string) => [
    `  - name: ${name}`,
    `    interface: ${itf}`,
    `    vrid: ${vrid}`,
    `    priority: ${priority}`,
    '    version: 3',
    '    advert_interval: 100ms',
    `    vips: ["${vip}"]`,
    '    sync_group: VG1',
    '    garp: { repeat: 3, interval: 20ms, refresh: 0 }',
    `    track: { interfaces: [{ name: ${itf} }] }`,
  ];
  return ['vrrp:', ...inst('vi1', 51, 'eth0', `${VIP4}/24`), ...inst('vi2', 52, 'eth1', `${GW}/24`), ''].join('\n');
}

describe('a VRRP sync group moves the VIP (eth0) and the gateway (eth1) as one', { timeout: 120_000 }, () => {
  const t = new TwoArms();
  const lab = t.lab;
  let a: Running;
  let b: Running;
  const states = async (r: Running) =>
    (await lab.status(r)).map((x: { name: string; state: string }) => `${x.name} ${x.state}`);

  before(async () => {
    await t.setup();
    a = lab.startOurs('a', yaml(150));
    b = lab.startOurs('b', yaml(100));
    await lab.started(a, 20_000);
    await lab.started(b, 20_000);
    await waitFor('A to hold the VIP and the gateway', () => t.holdsBoth('a'), 10_000);
  });

  after(() => t.close());

  it('A is Master of both members, B Backup of both, and status names the group', async () => {
    await waitFor('B Backup of both', async () => (await states(b)).join() === 'vi1 BACKUP,vi2 BACKUP', 5_000);
    assert.deepEqual(await states(a), ['vi1 MASTER', 'vi2 MASTER']);
    assert.equal((await lab.status(a))[1].syncGroup, 'VG1');
  });

  it(`${SESSIONS} sessions survive the Master's SIGKILL: B takes both members, nothing acknowledged is lost`, async () => {
    const s = await t.sessions(SESSIONS);
    await sleep(500);
    const t0 = performance.now();
    await lab.kill(a);
    sh('ip', ['-n', lab.ns.a, 'link', 'set', 'eth0', 'down']);
    sh('ip', ['-n', lab.ns.a, 'link', 'set', 'eth1', 'down']);
    const took = await waitFor('B to hold the VIP and the gateway', () => t.holdsBoth('b'), 5_000);
    await sleep(2000);
    const sum = await s.stop();
    process.stdout.write(
      `# gateway failover (sync group): SIGKILL to both addresses on B ${Math.round(took)} ms (${Math.round(performance.now() - t0)} ms to the end); ${sum.sessions} sessions, ${sum.sent} writes, ${sum.acked} echoed, longest gap between echoes ${sum.maxGapMs} ms\n`,
    );
    assert.deepEqual(sum.errors, []);
    assert.equal(sum.lost, 0);
    assert.equal(sum.unacked, 0, 'every write was echoed');
    assert.ok(sum.sent >= SESSIONS * 20, JSON.stringify(sum));
    assert.deepEqual(await states(b), ['vi1 MASTER', 'vi2 MASTER']);
  });

  it('the returning Master takes both back; B gives both up', async () => {
    sh('ip', ['-n', lab.ns.a, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', lab.ns.a, 'link', 'set', 'eth1', 'up']);
    a = lab.startOurs('a', yaml(150));
    await lab.started(a, 20_000);
    await waitFor(
      'A holds both, B neither',
      () => t.holdsBoth('a') && !t.has('b', 'eth0', VIP4) && !t.has('b', 'eth1', GW),
      10_000,
    );
    assert.deepEqual(await states(b), ['vi1 BACKUP', 'vi2 BACKUP']);
  });

  it("one member's Fault (its link down) faults the other: both addresses move, and come back with the link", async () => {
    sh('ip', ['-n', lab.ns.a, 'link', 'set', 'eth1', 'down']);
    await waitFor('B holds both', () => t.holdsBoth('b'), 5_000);
    assert.equal(t.has('a', 'eth0', VIP4), false, 'A released the VIP although eth0 is up');
    assert.deepEqual(await states(a), ['vi1 FAULT', 'vi2 FAULT']);
    sh('ip', ['-n', lab.ns.a, 'link', 'set', 'eth1', 'up']);
    await waitFor('A holds both again', () => t.holdsBoth('a') && !t.has('b', 'eth0', VIP4), 10_000);
    assert.deepEqual(await states(a), ['vi1 MASTER', 'vi2 MASTER']);
  });
});
