// A gateway that moves with the VIP (keepalived's LVS-NAT recipe): one VRRP instance on the
// client-side eth0 holds the VIP there and the real servers' gateway on the server-side eth1
// (`"10.99.0.1/24 dev eth1"`). Namespaces: directors A and B on both networks (forwarding on),
// client C on the outer one, real server R on the inner one with its default route via the
// gateway, C reaching R's network via the VIP. 30 TCP sessions C -> R write every 100 ms and
// need both addresses on the same director (requests in by the VIP, replies back by the
// gateway); they survive the Master's death (SIGKILL, links down), and the gateway's interface
// is tracked (down = Fault). The NAT translation itself is the dataplane's; this proves the
// address pair moves as one and the neighbours follow (gratuitous ARP on each interface).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { VIP4, VrrpLab, sh, sleep, waitFor, type Running } from './lab';

const GW = '10.99.0.1';
const RS = '10.99.0.11';
const INNER = { a: '10.99.0.2', b: '10.99.0.3' } as const;
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

/** One client process, SESSIONS sessions: a numbered line every 100 ms each, echoed by R; SIGTERM -> summary JSON. */
const CLIENT = `
const net = require('net');
const n = ${SESSIONS}; const sum = { sessions: n, sent: 0, acked: 0, lost: 0, errors: [], maxGapMs: 0 };
const socks = [];
for (let i = 0; i < n; i++) {
  const s = net.connect({ host: '${RS}', port: 7777 }); s.setNoDelay(true);
  const st = { s, next: 0, want: 0, last: Date.now(), buf: '' }; socks.push(st);
  s.on('data', (d) => { st.buf += d; let k; while ((k = st.buf.indexOf('\\n')) >= 0) { const v = Number(st.buf.slice(0, k)); st.buf = st.buf.slice(k + 1);
    if (v !== st.want) sum.lost++; st.want = v + 1; sum.acked++; const now = Date.now(); sum.maxGapMs = Math.max(sum.maxGapMs, now - st.last); st.last = now; } });
  s.on('error', (e) => sum.errors.push(i + ': ' + e.code));
}
let up = 0; for (const st of socks) st.s.on('connect', () => { if (++up === n) process.stdout.write('ready\\n'); });
setInterval(() => { for (const st of socks) if (!st.s.destroyed && st.s.readyState === 'open') { st.s.write(st.next++ + '\\n'); sum.sent++; } }, 100);
process.on('SIGTERM', () => { setTimeout(() => { sum.unacked = sum.sent - sum.acked; process.stdout.write(JSON.stringify(sum) + '\\n'); process.exit(0); }, 1500); });
`;

describe('a gateway that moves with the VIP (one VRRP instance, VIP on eth0, gateway dev eth1)', { timeout: 120_000 }, () => {
  const lab = new VrrpLab();
  const R = `${lab.id}r`;
  let a: Running;
  let b: Running;
  let echo: ChildProcess | undefined;
  const has = (ns: string, dev: string, addr: string) => sh('ip', ['-n', ns, '-o', 'addr', 'show', 'dev', dev]).includes(` ${addr}/`);

  before(async () => {
    lab.setup();
    const { s } = lab.ns;
    sh('ip', ['netns', 'add', R]);
    sh('ip', ['-n', s, 'link', 'add', 'br1', 'type', 'bridge']);
    sh('ip', ['-n', s, 'link', 'set', 'br1', 'up']);
    for (const [ns, port, addr] of [[lab.ns.a, 'qa', INNER.a], [lab.ns.b, 'qb', INNER.b], [R, 'qr', RS]] as const) {
      sh('ip', ['-n', s, 'link', 'add', port, 'type', 'veth', 'peer', 'name', ns === R ? 'eth0' : 'eth1', 'netns', ns]);
      sh('ip', ['-n', s, 'link', 'set', port, 'master', 'br1', 'up']);
      const dev = ns === R ? 'eth0' : 'eth1';
      sh('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev]);
      sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    }
    sh('ip', ['-n', R, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', R, 'route', 'add', 'default', 'via', GW]);
    sh('ip', ['-n', lab.ns.c, 'route', 'add', '10.99.0.0/24', 'via', VIP4]);
    for (const d of [lab.ns.a, lab.ns.b]) sh('ip', ['netns', 'exec', d, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    echo = spawn('ip', ['netns', 'exec', R, process.execPath, '-e', "require('net').createServer((s)=>s.pipe(s)).listen(7777,()=>console.log('up'))"], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((res) => echo!.stdout!.once('data', () => res()));
    a = lab.startOurs('a', yaml(150));
    b = lab.startOurs('b', yaml(100));
    await lab.started(a, 20_000);
    await lab.started(b, 20_000);
    await waitFor('A to hold the VIP and the gateway', () => has(lab.ns.a, 'eth0', VIP4) && has(lab.ns.a, 'eth1', GW), 10_000);
  });

  after(async () => {
    echo?.kill();
    await lab.close();
    spawnSync('ip', ['netns', 'del', R]);
  });

  it('the Master holds the VIP on eth0 and the gateway on eth1; the Backup holds neither, and status lists both with their interface', async () => {
    assert.equal(has(lab.ns.b, 'eth0', VIP4) || has(lab.ns.b, 'eth1', GW), false);
    const st = await lab.status(a);
    assert.equal(st[0].state, 'MASTER');
    assert.deepEqual(st[0].vips, [`${VIP4}/24`, `${GW}/24 dev eth1`]);
    assert.ok(st[0].trackers.some((t: { name: string; weight: number }) => t.name === 'interface:eth1' && t.weight === 0), 'the gateway interface is tracked (weight 0)');
  });

  it(`${SESSIONS} sessions through VIP and gateway survive the Master's SIGKILL: nothing acknowledged is lost`, async () => {
    const client = spawn('ip', ['netns', 'exec', lab.ns.c, process.execPath, '-e', CLIENT], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    client.stdout!.on('data', (d) => (out += d));
    await waitFor('the sessions to be up', () => out.includes('ready'), 10_000);
    await sleep(500);
    // The Master host dies: its VRRP process is killed and its links go down with it.
    const t0 = performance.now();
    await lab.kill(a);
    sh('ip', ['-n', lab.ns.a, 'link', 'set', 'eth0', 'down']);
    sh('ip', ['-n', lab.ns.a, 'link', 'set', 'eth1', 'down']);
    const took = await waitFor('B to hold the VIP and the gateway', () => has(lab.ns.b, 'eth0', VIP4) && has(lab.ns.b, 'eth1', GW), 5_000);
    await sleep(2000);
    client.kill('SIGTERM');
    await new Promise((r) => client.on('exit', r));
    const sum = JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!);
    process.stdout.write(`# gateway failover: SIGKILL to both addresses on B ${Math.round(took)} ms (${Math.round(performance.now() - t0)} ms to the end); ${sum.sessions} sessions, ${sum.sent} writes, ${sum.acked} echoed, longest gap between echoes ${sum.maxGapMs} ms\n`);
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
    await waitFor('A Master again with both addresses', () => has(lab.ns.a, 'eth0', VIP4) && has(lab.ns.a, 'eth1', GW) && !has(lab.ns.b, 'eth1', GW), 10_000);
    sh('ip', ['-n', lab.ns.a, 'link', 'set', 'eth1', 'down']);
    await waitFor('B to take both addresses', () => has(lab.ns.b, 'eth0', VIP4) && has(lab.ns.b, 'eth1', GW), 5_000);
    assert.equal(has(lab.ns.a, 'eth0', VIP4), false, 'A released the VIP too');
    assert.equal((await lab.status(a))[0].state, 'FAULT');
  });
});
