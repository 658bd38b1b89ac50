// `xdirector run` against real IPVS and XDP: boots Debian's kernel under qemu
// (scripts/vm/run.sh), runs test/vm/guest/daemon.sh in the guest (DR lab, the daemon in the
// director namespace, phases A/B/C described there) and asserts on what it recorded.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { skip, bootGuest } from './harness';

let out = '';
let rc = -1;
let wallMs = 0;
let console_ = '';

before(async () => {
  if (skip) return;
  ({ rc, wallMs, out } = await bootGuest('test/vm/guest/daemon.sh', 900, 'vmd'));
  console_ = read('console.log');
}, { timeout: 960_000 });

after(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

function read(name: string): string {
  const p = join(out, name);
  return existsSync(p) ? readFileSync(p, 'utf8') : '';
}
function json(name: string): any {
  const s = read(name);
  assert.ok(s, `${name} was not written by the guest; console tail:\n${console_.slice(-2500)}`);
  return JSON.parse(s);
}
/** `ipvsadm -Ln` -> { "TCP 10.77.0.100:3306 mh (...)": [["10.77.0.11:3306", weight], ...] } */
function ipvsadm(name: string): Record<string, Array<[string, number]>> {
  const res: Record<string, Array<[string, number]>> = {};
  let cur: Array<[string, number]> | undefined;
  for (const l of read(name).split('\n')) {
    const s = /^(TCP|UDP)\s+(.*?)\s*$/.exec(l);
    if (s) { res[`${s[1]} ${s[2]}`] = cur = []; continue; }
    const d = /^\s+->\s+(\d\S+)\s+Route\s+(\d+)/.exec(l);
    if (d && cur) cur.push([d[1]!, Number(d[2])]);
  }
  for (const k of Object.keys(res)) res[k]!.sort();
  return res;
}
function servers(name: string): { counts: Record<string, number>; errors: unknown[] } {
  const r = json(name).results as Array<{ server?: string; error?: string }>;
  const counts: Record<string, number> = {};
  for (const x of r) if (x.server) counts[x.server] = (counts[x.server] ?? 0) + 1;
  return { counts, errors: r.filter((x) => !x.server) };
}
const all3 = (port: number, w2 = 1): Array<[string, number]> => [[`10.77.0.11:${port}`, 1], [`10.77.0.12:${port}`, w2], [`10.77.0.13:${port}`, 1]];

test('the guest runs the daemon scenario to the end with exit status 0', { skip }, (t) => {
  t.diagnostic(`VM wall ${(wallMs / 1000).toFixed(1)} s; guest userspace at ${/XD-VM-UPTIME ([\d.]+)/.exec(console_)?.[1]} s; steps: ${read('steps.txt').trim().split('\n').join('; ')}`);
  assert.equal(rc, 0, `run.sh exit ${rc}; console tail:\n${console_.slice(-3000)}`);
});

test('xdirector run with dataplane ipvs programs what the config says and ipvsadm -Ln agrees', { skip }, () => {
  assert.deepEqual(ipvsadm('a-ipvsadm.txt'), {
    'TCP 10.77.0.100:3306 mh (mh-fallback,mh-port)': all3(3306),
    'TCP 10.77.0.100:3307 mh (mh-fallback,mh-port)': all3(3307),
  });
  assert.equal(read('a-sloppy.txt').trim(), '1', 'net.ipv4.vs.sloppy_tcp in the director namespace');
});

test('connections through the VIP in IPVS mode spread over the three backends', { skip }, () => {
  const { counts, errors } = servers('a-conns.json');
  assert.deepEqual(errors, []);
  for (const b of ['rs1', 'rs2', 'rs3']) assert.ok((counts[b] ?? 0) >= 5, JSON.stringify(counts));
});

test('xdirector drain sets the backend\'s IPVS weight to 0 and it gets no new connections', { skip }, () => {
  assert.deepEqual(ipvsadm('a-drain-ipvsadm.txt')['TCP 10.77.0.100:3306 mh (mh-fallback,mh-port)'], all3(3306, 0));
  const { counts, errors } = servers('a-drain-conns.json');
  assert.deepEqual(errors, []);
  assert.equal(counts.rs2, undefined, JSON.stringify(counts));
});

test('a backend whose server stops is removed from IPVS by the health checks and re-added when it is back', { skip }, (t) => {
  t.diagnostic(`down after ${read('a-down-seconds.txt').trim()} s, up after ${read('a-up-seconds.txt').trim()} s`);
  assert.deepEqual(ipvsadm('a-down-ipvsadm.txt')['TCP 10.77.0.100:3306 mh (mh-fallback,mh-port)'], [['10.77.0.11:3306', 1], ['10.77.0.12:3306', 1]]);
  const { counts, errors } = servers('a-down-conns.json');
  assert.deepEqual(errors, []);
  assert.equal(counts.rs3, undefined);
  assert.deepEqual(ipvsadm('a-up-ipvsadm.txt')['TCP 10.77.0.100:3306 mh (mh-fallback,mh-port)'], all3(3306));
  const st = json('a-status.json');
  assert.equal(st.dataplane.kind, 'ipvs');
});

test('stopping the daemon leaves the IPVS services in place for a restart', { skip }, () => {
  assert.equal(Object.keys(ipvsadm('a-after-stop-ipvsadm.txt')).length, 2);
});

test('dataplane auto falls back to IPVS when XDP cannot attach, logging why', { skip }, () => {
  assert.equal(json('b-status.json').dataplane.kind, 'ipvs');
  const log = read('b.log');
  assert.match(log, /XDP unavailable, falling back to IPVS: /);
  const { errors } = servers('b-conns.json');
  assert.deepEqual(errors, []);
  assert.deepEqual(ipvsadm('b-after-detach-ipvsadm.txt'), {}, 'stop --detach removes the IPVS services');
});

test('xdirector dataplane ipvs and back to xdp switches the live dataplane and status shows which is active', { skip }, (t) => {
  t.diagnostic(`switch to ipvs ${read('c-switch-ipvs-seconds.txt').trim()} s, back to xdp ${read('c-switch-xdp-seconds.txt').trim()} s`);
  assert.equal(json('c-status-xdp.json').dataplane.kind, 'xdp');
  assert.match(read('c-switch-ipvs.txt'), /switched from xdp to ipvs/);
  assert.equal(json('c-status-ipvs.json').dataplane.kind, 'ipvs');
  assert.equal(Object.keys(ipvsadm('c-ipvsadm.txt')).length, 2);
  assert.match(read('c-switch-xdp.txt'), /switched from ipvs to xdp/);
  assert.equal(json('c-status-xdp2.json').dataplane.kind, 'xdp');
  assert.deepEqual(ipvsadm('c-after-xdp-ipvsadm.txt'), {}, 'the IPVS services are removed once XDP carries the traffic');
});

test('a live session survives xdp -> ipvs -> xdp on the same backend', { skip }, () => {
  const s = json('c-session.json');
  assert.equal(s.error, '');
  assert.equal(s.closed, false);
  assert.equal(s.backendChanges, 0);
  assert.ok(s.sent >= 20, `sent ${s.sent}`);
  assert.equal(s.unanswered, 0, JSON.stringify(s));
  assert.equal(s.echoed, s.sent);
});

test('connections opened during each switch succeed', { skip }, () => {
  for (const f of ['c-during-ipvs.json', 'c-during-xdp.json']) assert.deepEqual(servers(f).errors, [], f);
});
