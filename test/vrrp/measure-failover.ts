// Failover time, xdirector↔xdirector against keepalived↔keepalived with the
// same settings: time from the Master's death (SIGKILL, then its link down, as
// a dead host would be) to (1) the VIP on the new Master (stamped by
// `ip -ts monitor` in the new Master's namespace) and (2) the first new TCP
// connection through the VIP from a client on the same segment (3 staggered
// connect loops, 30 ms connect timeout, stamped by the client itself). All
// stamps are wall-clock, so a busy test process reading pipes late cannot
// distort them.
//
//   node dist/test/vrrp/measure-failover.js [runs per case, default 3] [--json file]
//
// Not part of the test suite (it is slow by design: several runs with 1 s adverts).
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { VIP4, VrrpLab, keepalivedConf, oursYaml, sh, sleep, type Running } from './lab';

interface Case {
  impl: 'xdirector' | 'keepalived';
  version: 2 | 3;
  intervalMs: number;
}

interface Sample {
  vipMs: number;
  connectMs: number;
}

const PORT = 7777;
const SERVER = `require('net').createServer((s) => s.destroy()).listen(${PORT})`;
const PROBE = `
  const net = require('net');
  function loop() {
    let done = false;
    const s = net.connect({ host: '${VIP4}', port: ${PORT}, timeout: 30 });
    const fin = (ok) => {
      if (done) return;
      done = true;
      if (ok) process.stdout.write(Date.now() + '\\n');
      s.destroy();
      setTimeout(loop, 5);
    };
    s.on('connect', () => fin(true));
    s.on('error', () => fin(false));
    s.on('timeout', () => fin(false));
  }
  for (let i = 0; i < 3; i++) setTimeout(loop, i * 10);
`;

async function runOnce(lab: VrrpLab, c: Case): Promise<Sample> {
  const wa = lab.watch('a');
  const wb = lab.watch('b');
  await sleep(100);
  const start = (k: 'a' | 'b', priority: number): Running =>
    c.impl === 'xdirector'
      ? lab.startOurs(k, oursYaml({ priority, version: c.version, interval: `${c.intervalMs}ms` }))
      : lab.startKeepalived(
          k,
          keepalivedConf({ id: `${lab.id}${k}`, priority, version: c.version, interval: String(c.intervalMs / 1000) }),
        );
  const a = start('a', 150);
  const b = start('b', 100);
  if (c.impl === 'xdirector') {
    await lab.started(a);
    await lab.started(b);
  }
  await wa.until(true, 30_000);
  await wb.until(false, 30_000);
  await sleep(Math.max(1500, 4 * c.intervalMs));

  const probe = spawn('nsenter', [`--net=/run/netns/${lab.ns.c}`, process.execPath, '-e', PROBE], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const connects: number[] = [];
  let buf = '';
  probe.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) if (/^\d+$/.test(l)) connects.push(Number(l));
  });
  // The probe is a fresh node process: on a busy machine it can take seconds to start.
  const ready = Date.now() + 20_000;
  while (connects.length < 10 && Date.now() < ready) await sleep(20);
  if (connects.length === 0) throw new Error('no TCP connection through the VIP before the failover');

  const wallKill = Date.now();
  await lab.kill(a);
  sh('ip', ['-n', lab.ns.a, 'link', 'set', 'eth0', 'down']); // a dead host answers nothing
  // Connections made before this point may have reached A's kernel: count from the link-down on.
  const wallDown = Date.now();
  await wb.until(true, 10_000);
  const vipWall = wb.events.find((e) => e.held && e.wall >= wallKill - 5)?.wall;
  const deadline = Date.now() + 10_000;
  while (!connects.some((t) => t > wallDown) && Date.now() < deadline) await sleep(5);
  const first = connects.find((t) => t > wallDown);
  probe.kill('SIGTERM');
  await lab.stop(b);
  wa.stop();
  wb.stop();
  // Reset for the next run: A's stale VIP goes, its link comes back.
  try {
    sh('ip', ['-n', lab.ns.a, 'addr', 'del', `${VIP4}/24`, 'dev', 'eth0']);
  } catch {
    /* not there */
  }
  sh('ip', ['-n', lab.ns.a, 'link', 'set', 'eth0', 'up']);
  if (first === undefined) throw new Error('no TCP connection through the VIP within 10 s of the failover');
  if (vipWall === undefined) throw new Error('the new Master never reported the VIP');
  return { vipMs: vipWall - wallKill, connectMs: first - wallKill };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const runs = Number(args.find((x) => /^\d+$/.test(x)) ?? 3);
  const jsonAt = args.indexOf('--json');
  const cases: Case[] = [
    { impl: 'xdirector', version: 3, intervalMs: 100 },
    { impl: 'keepalived', version: 3, intervalMs: 100 },
    { impl: 'xdirector', version: 2, intervalMs: 1000 },
    { impl: 'keepalived', version: 2, intervalMs: 1000 },
  ];
  const lab = new VrrpLab();
  const servers: ReturnType<typeof spawn>[] = [];
  const results: (Case & { masterDownMs: number; samples: Sample[] })[] = [];
  try {
    lab.setup();
    for (const k of ['a', 'b'] as const)
      servers.push(
        spawn('nsenter', [`--net=/run/netns/${lab.ns[k]}`, process.execPath, '-e', SERVER], { stdio: 'ignore' }),
      );
    await sleep(1000);
    for (const c of cases) {
      const samples: Sample[] = [];
      for (let i = 0; i < runs; i++) {
        const s = await runOnce(lab, c);
        samples.push(s);
        process.stderr.write(
          `${c.impl} v${c.version} ${c.intervalMs} ms run ${i + 1}: VIP ${s.vipMs.toFixed(0)} ms, first connection ${s.connectMs.toFixed(0)} ms\n`,
        );
      }
      results.push({ ...c, masterDownMs: 3 * c.intervalMs + ((256 - 100) * c.intervalMs) / 256, samples });
    }
  } finally {
    for (const p of servers) p.kill('SIGKILL');
    await lab.close();
  }
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const rows = results.map((r) => ({
    case: `${r.impl} v${r.version} ${r.intervalMs} ms adverts`,
    masterDown: r.masterDownMs.toFixed(0),
    vip: r.samples.map((s) => s.vipMs.toFixed(0)).join(' / '),
    vipMedian: med(r.samples.map((s) => s.vipMs)).toFixed(0),
    conn: r.samples.map((s) => s.connectMs.toFixed(0)).join(' / '),
    connMedian: med(r.samples.map((s) => s.connectMs)).toFixed(0),
  }));
  process.stdout.write(
    'case | Master_Down_Interval ms | VIP on new Master ms (runs) | median | first TCP connection through the VIP ms (runs) | median\n',
  );
  process.stdout.write('--- | --- | --- | --- | --- | ---\n');
  for (const r of rows)
    process.stdout.write(`${r.case} | ${r.masterDown} | ${r.vip} | ${r.vipMedian} | ${r.conn} | ${r.connMedian}\n`);
  if (jsonAt >= 0 && args[jsonAt + 1]) writeFileSync(args[jsonAt + 1]!, JSON.stringify(results, null, 2));
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
