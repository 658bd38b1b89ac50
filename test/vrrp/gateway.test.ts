// A gateway that moves with the VIP (keepalived's LVS-NAT recipe): one VRRP instance on the
// client-side eth0 holds the VIP there and the real servers' gateway on the server-side eth1
// (`"10.99.0.1/24 dev eth1"`). In the two-network lab (two-arms.ts) 30 TCP sessions C -> R need
// both addresses on the same director (requests in by the VIP, replies back by the gateway); they
// survive the Master's death (SIGKILL, links down), and the gateway's interface is tracked
// (down = Fault). The NAT translation itself is the dataplane's; this proves the address pair
// moves as one and the neighbours follow (gratuitous ARP on each interface).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VIP4, sh, sleep, waitFor, type Running } from './lab';
import { GW, TwoArms } from './two-arms';

const SESSIONS = 30;

function yaml(priority: number): string {
  return [
    'interface: eth0',
    'vrrp:',
    '  - name: vi4',
    '    vrid: 51',
    `    priority: ${priority}`,
    '    version: 3',
    '    advert_interval: 100ms',
    `    vips: ["${VIP4}/24", "${GW}/24 dev eth1"]`,
    '    garp: { repeat: 3, interval: 20ms, refresh: 0 }',
    '',
  ].join('\n');
}

describe(
  'a gateway that moves with the VIP (one VRRP instance, VIP on eth0, gateway dev eth1)',
  { timeout: 120_000 },
  () => {
    const t = new TwoArms();
    const lab = t.lab;
    let a: Running;
    let b: Running;

    before(async () => {
      await t.setup();
      a = lab.startOurs('a', yaml(150));
      b = lab.startOurs('b', yaml(100));
      await lab.started(a, 20_000);
      await lab.started(b, 20_000);
      await waitFor('A to hold the VIP and the gateway', () => t.holdsBoth('a'), 10_000);
    });

    after(() => t.close());

    it('the Master holds the VIP on eth0 and the gateway on eth1; the Backup holds neither, and status lists both with their interface', async () => {
      // B may have been Master for a moment if it started first: A preempts it.
      await waitFor('B to hold neither', () => !t.has('b', 'eth0', VIP4) && !t.has('b', 'eth1', GW), 5_000);
      assert.equal((await lab.status(b))[0].state, 'BACKUP');
      const st = await lab.status(a);
      assert.equal(st[0].state, 'MASTER');
      assert.deepEqual(st[0].vips, [`${VIP4}/24`, `${GW}/24 dev eth1`]);
      assert.ok(
        st[0].trackers.some((x: { name: string; weight: number }) => x.name === 'interface:eth1' && x.weight === 0),
        'the gateway interface is tracked (weight 0)',
      );
    });

    it(`${SESSIONS} sessions through VIP and gateway survive the Master's SIGKILL: nothing acknowledged is lost`, async () => {
      const s = await t.sessions(SESSIONS);
      await sleep(500);
      // The Master host dies: its VRRP process is killed and its links go down with it.
      const t0 = performance.now();
      await lab.kill(a);
      sh('ip', ['-n', lab.ns.a, 'link', 'set', 'eth0', 'down']);
      sh('ip', ['-n', lab.ns.a, 'link', 'set', 'eth1', 'down']);
      const took = await waitFor('B to hold the VIP and the gateway', () => t.holdsBoth('b'), 5_000);
      await sleep(2000);
      const sum = await s.stop();
      process.stdout.write(
        `# gateway failover (one instance): SIGKILL to both addresses on B ${Math.round(took)} ms (${Math.round(performance.now() - t0)} ms to the end); ${sum.sessions} sessions, ${sum.sent} writes, ${sum.acked} echoed, longest gap between echoes ${sum.maxGapMs} ms\n`,
      );
      assert.deepEqual(sum.errors, []);
      assert.equal(sum.lost, 0, 'every echo came back in order');
      assert.equal(sum.unacked, 0, 'every write was echoed');
      assert.ok(sum.sent >= SESSIONS * 20, JSON.stringify(sum));
      assert.equal((await lab.status(b))[0].state, 'MASTER');
    });

    it('the Master whose gateway interface goes down goes to Fault and both addresses move', async () => {
      sh('ip', ['-n', lab.ns.a, 'link', 'set', 'eth0', 'up']);
      sh('ip', ['-n', lab.ns.a, 'link', 'set', 'eth1', 'up']);
      a = lab.startOurs('a', yaml(150));
      await lab.started(a, 20_000);
      await waitFor('A Master again with both addresses', () => t.holdsBoth('a') && !t.has('b', 'eth1', GW), 10_000);
      sh('ip', ['-n', lab.ns.a, 'link', 'set', 'eth1', 'down']);
      await waitFor('B to take both addresses', () => t.holdsBoth('b'), 5_000);
      assert.equal(t.has('a', 'eth0', VIP4), false, 'A released the VIP too');
      assert.equal((await lab.status(a))[0].state, 'FAULT');
    });
  },
);
