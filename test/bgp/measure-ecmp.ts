// Aggregate forwarding rate through the router with 3, 2 and 1 directors announcing the VIP
// (not a test: run by hand, prints JSON):
//
//   node dist/test/bgp/measure-ecmp.js [--packets 500000]
//
// The client sends TCP ACKs to VIP:3306 from 4096 source ports with the bench's live-frames
// generator (scripts/bench/genworker); the router spreads them with its L4 ECMP hash; each
// director forwards its share with XDP_TX to the real servers. A director leaves the set by
// `drain --director` (withdraw), so the same namespaces and programs serve every round.
// Rate = packets the directors forwarded (sum of their service counters) / generator seconds.
import path from 'node:path';
import { run, spawnIn } from '../../scripts/lab/exec';
import * as pk from '../lib/packet';
import { Fabric, Director, VIP, CLIENT } from './fabric';

const packets = Number(process.argv[process.argv.indexOf('--packets') + 1] || 500_000);

async function main(): Promise<void> {
  const f = new Fabric('bm');
  try {
    await f.setup();
    const ds: Director[] = [];
    for (const n of [1, 2, 3]) ds.push(await f.addDirector(n, true));
    await f.startRouter(ds.map((d) => ({ n: d.n, bfd: d.bfd })));
    await Promise.all(ds.map((d) => f.startDirector(d)));
    await f.waitNexthops((h) => ds.every((d) => h.includes(d.ip)), 30_000, 'all three directors');
    // Live frames sent out of the client's veth are delivered only when the peer (the router's eth1) runs an XDP program.
    const { defaultXdpPassObject } = await import('../../scripts/lab/topology');
    await run('ip', [
      '-n',
      f.rt.ns,
      'link',
      'set',
      'dev',
      'eth1',
      'xdpdrv',
      'obj',
      defaultXdpPassObject(),
      'sec',
      'xdp',
    ]);
    const link = JSON.parse((await run('ip', ['-n', f.rt.ns, '-j', 'link', 'show', 'eth1'])).stdout) as {
      address: string;
    }[];
    const frame0 = pk.ether(
      { src: f.cl.mac, dst: link[0]!.address },
      pk.ipv4({ src: CLIENT, dst: VIP }, pk.tcp({ sport: 10000, dport: 3306, flags: 'A' })),
    );
    // Padded to 64 bytes (the generator restores whole 8-byte chunks); IP total length is unchanged.
    const frame = Buffer.concat([frame0, Buffer.alloc(64 - frame0.length)]);
    const gen = spawnIn(f.cl.ns, process.execPath, [path.join(__dirname, '../../scripts/bench/genworker.js')], {
      mode: 'nsenter',
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const replies: ((o: Record<string, unknown>) => void)[] = [];
    let buf = '';
    gen.stdout!.setEncoding('utf8');
    gen.stdout!.on('data', (c: string) => {
      buf += c;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, i);
        buf = buf.slice(i + 1);
        replies.shift()?.(JSON.parse(l));
      }
    });
    const ask = (o: Record<string, unknown>) =>
      new Promise<Record<string, unknown>>((resolve) => {
        replies.push(resolve);
        gen.stdin!.write(JSON.stringify(o) + '\n');
      });
    const init = await ask({
      op: 'init',
      ifname: 'eth0',
      frame: frame.toString('hex'),
      sportOff: 34,
      csumOff: 50,
      flows: 4096,
      basePort: 10000,
    });
    if (!init.ok) throw new Error(`generator: ${String(init.error)}`);
    const forwarded = async () =>
      Promise.all(ds.map(async (d) => (d.child ? Number((await f.status(d)).dataplane.services[0].packets) : 0)));
    const out: Record<string, unknown>[] = [];
    for (const k of [3, 2, 1]) {
      if (k < 3) {
        const leaving = ds[k]!;
        await f.cli(leaving, ['drain', '--director']);
        await f.waitNexthops((h) => !h.includes(leaving.ip), 10_000, `${leaving.ip} withdrawn`);
      }
      await ask({ op: 'run', packets: 50_000, batch: 64 }); // warm up: ARP, caches
      const before = await forwarded();
      const r = await ask({ op: 'run', packets, batch: 64 });
      const after = await forwarded();
      const per = after.map((a, i) => a - before[i]!);
      const sum = per.reduce((a, b) => a + b, 0);
      out.push({
        directors: k,
        sent: r.sent,
        seconds: r.seconds,
        cpuSeconds: r.cpuSeconds,
        forwarded: sum,
        perDirector: per,
        mpps: Math.round(sum / Number(r.seconds) / 10_000) / 100,
      });
    }
    gen.stdin!.end();
    const base = out.find((o) => o.directors === 1)!.mpps as number;
    for (const o of out) o.ratioTo1 = Math.round(((o.mpps as number) / base) * 100) / 100;
    process.stdout.write(JSON.stringify({ packets, rounds: out }, null, 1) + '\n');
  } finally {
    await f.teardown();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
