// Failover time, xdirector↔xdirector against keepalived↔keepalived with the
// same settings: time from the Master's death (SIGKILL, then its link down, as
// a dead host would be) to (1) the VIP on the new Master and (2) the first ping
// reply through the VIP from a client on the same segment (busybox ping every 10 ms).
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
  pingMs: number;
}

async function runOnce(lab: VrrpLab, c: Case): Promise<Sample> {
  const wa = lab.watch('a');
  const wb = lab.watch('b');
  await sleep(100);
  const start = (k: 'a' | 'b', priority: number): Running =>
    c.impl === 'xdirector'
      ? lab.startOurs(k, oursYaml({ priority, version: c.version, interval: `${c.intervalMs}ms` }))
      : lab.startKeepalived(k, keepalivedConf({ id: `${lab.id}${k}`, priority, version: c.version, interval: String(c.intervalMs / 1000) }));
  const a = start('a', 150);
  const b = start('b', 100);
  if (c.impl === 'xdirector') {
    await lab.started(a);
    await lab.started(b);
  }
  await wa.until(true, 30_000);
  await wb.until(false, 30_000);
  await sleep(Math.max(1500, 4 * c.intervalMs));

  // Client pings the VIP every 10 ms (busybox ping flushes each reply line: stamped when read).
  const ping = spawn('ip', ['netns', 'exec', lab.ns.c, 'busybox', 'ping', '-i', '0.01', VIP4], { stdio: ['ignore', 'pipe', 'ignore'] });
  const replies: number[] = [];
  let buf = '';
  ping.stdout.on('data', (d: Buffer) => {
    const t = performance.now();
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) if (/^\d+ bytes from/.test(l)) replies.push(t);
  });
  await sleep(500);
  if (replies.length === 0) throw new Error('no ping replies through the VIP before the failover');

  const tKill = performance.now();
  await lab.kill(a);
  sh('ip', ['-n', lab.ns.a, 'link', 'set', 'eth0', 'down']); // a dead host answers nothing
  // Replies read before this point may come from A's kernel: count from the link-down on.
  const tDown = performance.now();
  const tVip = await wb.until(true, 10_000);
  const deadline = Date.now() + 10_000;
  while (!replies.some((t) => t > tDown) && Date.now() < deadline) await sleep(5);
  const first = replies.find((t) => t > tDown);
  ping.kill('SIGTERM');
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
  if (first === undefined) throw new Error('no ping reply through the VIP within 10 s of the failover');
  return { vipMs: tVip - tKill, pingMs: first - tKill };
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
  const results: (Case & { masterDownMs: number; samples: Sample[] })[] = [];
  try {
    lab.setup();
    for (const c of cases) {
      const samples: Sample[] = [];
      for (let i = 0; i < runs; i++) {
        const s = await runOnce(lab, c);
        samples.push(s);
        process.stderr.write(`${c.impl} v${c.version} ${c.intervalMs} ms run ${i + 1}: VIP ${s.vipMs.toFixed(0)} ms, ping ${s.pingMs.toFixed(0)} ms\n`);
      }
      results.push({ ...c, masterDownMs: 3 * c.intervalMs + ((256 - 100) * c.intervalMs) / 256, samples });
    }
  } finally {
    await lab.close();
  }
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const rows = results.map((r) => ({
    case: `${r.impl} v${r.version} ${r.intervalMs} ms adverts`,
    masterDown: r.masterDownMs.toFixed(0),
    vip: r.samples.map((s) => s.vipMs.toFixed(0)).join(' / '),
    vipMedian: med(r.samples.map((s) => s.vipMs)).toFixed(0),
    ping: r.samples.map((s) => s.pingMs.toFixed(0)).join(' / '),
    pingMedian: med(r.samples.map((s) => s.pingMs)).toFixed(0),
  }));
  process.stdout.write('case | Master_Down_Interval ms | VIP on new Master ms (runs) | median | first ping reply ms (runs) | median\n');
  process.stdout.write('--- | --- | --- | --- | --- | ---\n');
  for (const r of rows) process.stdout.write(`${r.case} | ${r.masterDown} | ${r.vip} | ${r.vipMedian} | ${r.ping} | ${r.pingMedian}\n`);
  if (jsonAt >= 0 && args[jsonAt + 1]) writeFileSync(args[jsonAt + 1]!, JSON.stringify(results, null, 2));
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
