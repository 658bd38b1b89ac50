// The two-network VRRP lab of the gateway and sync-group tests: VrrpLab's outer segment (directors
// A and B, client C on eth0) plus an inner one (A and B on eth1, real server R), forwarding on in
// the directors, R's default route via the gateway GW, C reaching R's network via the VIP. And a
// client process holding sessions C -> R that need both addresses on one director.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { VIP4, VrrpLab, sh, waitFor } from './lab';

export const GW = '10.99.0.1';
export const RS = '10.99.0.11';
const INNER = { a: '10.99.0.2', b: '10.99.0.3' } as const;

export class TwoArms {
  readonly lab = new VrrpLab();
  readonly R = `${this.lab.id}r`;
  private echo?: ChildProcess;

  async setup(): Promise<void> {
    const lab = this.lab;
    lab.setup();
    const { s } = lab.ns;
    sh('ip', ['netns', 'add', this.R]);
    sh('ip', ['-n', s, 'link', 'add', 'br1', 'type', 'bridge']);
    sh('ip', ['-n', s, 'link', 'set', 'br1', 'up']);
    for (const [ns, port, addr] of [
      [lab.ns.a, 'qa', INNER.a],
      [lab.ns.b, 'qb', INNER.b],
      [this.R, 'qr', RS],
    ] as const) {
      const dev = ns === this.R ? 'eth0' : 'eth1';
      sh('ip', ['-n', s, 'link', 'add', port, 'type', 'veth', 'peer', 'name', dev, 'netns', ns]);
      sh('ip', ['-n', s, 'link', 'set', port, 'master', 'br1', 'up']);
      sh('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev]);
      sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    }
    sh('ip', ['-n', this.R, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', this.R, 'route', 'add', 'default', 'via', GW]);
    sh('ip', ['-n', lab.ns.c, 'route', 'add', '10.99.0.0/24', 'via', VIP4]);
    for (const d of [lab.ns.a, lab.ns.b]) sh('ip', ['netns', 'exec', d, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    this.echo = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.R,
        process.execPath,
        '-e',
        "require('net').createServer((s)=>s.pipe(s)).listen(7777,()=>console.log('up'))",
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((res) => this.echo!.stdout!.once('data', () => res()));
  }

  async close(): Promise<void> {
    this.echo?.kill();
    await this.lab.close();
    spawnSync('ip', ['netns', 'del', this.R]);
  }

  has(k: 'a' | 'b', dev: string, addr: string): boolean {
    return sh('ip', ['-n', this.lab.ns[k], '-o', 'addr', 'show', 'dev', dev]).includes(` ${addr}/`);
  }

  /** Director k holds the VIP on eth0 and the gateway on eth1. */
  holdsBoth(k: 'a' | 'b'): boolean {
    return this.has(k, 'eth0', VIP4) && this.has(k, 'eth1', GW);
  }

  /** `n` TCP sessions C -> R:7777 writing a numbered line every 100 ms, each echoed; stop() -> the summary. */
  async sessions(n: number): Promise<{
    stop: () => Promise<{
      sessions: number;
      sent: number;
      acked: number;
      lost: number;
      unacked: number;
      errors: string[];
      maxGapMs: number;
    }>;
  }> {
    const client = spawn('ip', ['netns', 'exec', this.lab.ns.c, process.execPath, '-e', clientJs(n)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    client.stdout!.on('data', (d) => (out += d));
    await waitFor('the sessions to be up', () => out.includes('ready'), 10_000);
    return {
      stop: async () => {
        client.kill('SIGTERM');
        await new Promise((r) => client.on('exit', r));
        return JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!);
      },
    };
  }
}

function clientJs(n: number): string {
  return `
const net = require('net');
const n = ${n}; const sum = { sessions: n, sent: 0, acked: 0, lost: 0, errors: [], maxGapMs: 0 };
const socks = [];
for (let i = 0; i < n; i++) {
  const s = net.connect({ host: '${RS}', port: 7777 }); s.setNoDelay(true);
  const st = { s, next: 0, want: 0, last: Date.now(), buf: '' }; socks.push(st);
  s.on('data', (d) => { st.buf += d; let k; while ((k = st.buf.indexOf('\\n')) >= 0) { const v = Number(st.buf.slice(0, k)); st.buf = st.buf.slice(k + 1);
    if (v !== st.want) sum.lost++; st.want = v + 1; sum.acked++; const now = Date.now(); sum.maxGapMs = Math.max(sum.maxGapMs, now - st.last); st.last = now; } });
  s.on('error', (e) => sum.errors.push(i + ': ' + e.code));
}
let up = 0; for (const st of socks) st.s.on('connect', () => { if (++up === n) process.stdout.write('ready\\n'); });
const tick = setInterval(() => { for (const st of socks) if (!st.s.destroyed && st.s.readyState === 'open') { st.s.write(st.next++ + '\\n'); sum.sent++; } }, 100);
// SIGTERM: stop writing, wait (up to 5 s) for the echoes still on their way, then report.
process.on('SIGTERM', () => { clearInterval(tick); const t0 = Date.now(); const done = () => { if (sum.acked < sum.sent && Date.now() - t0 < 5000) return setTimeout(done, 50);
  sum.unacked = sum.sent - sum.acked; process.stdout.write(JSON.stringify(sum) + '\\n'); process.exit(0); }; done(); });
`;
}
