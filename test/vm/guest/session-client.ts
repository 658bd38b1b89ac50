// Guest side: one long-lived TCP session through the VIP to an echo service (the server writes
// its id line first, then echoes). Sends a numbered line every 200 ms and checks the echo; on
// SIGTERM writes a summary JSON to argv[4] and exits. argv[4].ready appears once the session is up. Used to prove that a live session survives
// switching the dataplane XDP -> IPVS -> XDP.
//   node session-client.js VIP PORT SRC_ADDR:SRC_PORT OUT.json [quiet]
// quiet: the client sends nothing on its own (not even a keepalive): it records each line the
// server pushes (with its arrival time, ms since the epoch), and sends one line "kN" per
// SIGUSR2. That shows what becomes of a reply the server sends while the client is silent, and
// when the client's next packet gets it through. Each event is also appended to OUT.json.log as
// it happens, so the scenario can wait for one.
import { connect } from 'node:net';
import { appendFileSync, writeFileSync } from 'node:fs';

const [vip, port, src, outFile, mode] = process.argv.slice(2) as [string, string, string, string, string?];
const quiet = mode === 'quiet';
const [srcAddr, srcPort] = src.split(':') as [string, string];
const sum = {
  backend: '',
  sent: 0,
  echoed: 0,
  maxRttMs: 0,
  maxGapMs: 0,
  closed: false,
  error: '' as string,
  backendChanges: 0,
  /** quiet mode: what was received ("recv") and sent ("send"), in order. */
  events: [] as Array<{ t: number; kind: 'recv' | 'send'; line: string }>,
};
const event = (kind: 'recv' | 'send', line: string): void => {
  const e = { t: Date.now(), kind, line };
  sum.events.push(e);
  appendFileSync(`${outFile}.log`, `${JSON.stringify(e)}\n`);
};
const sentAt = new Map<number, number>();
let lastEcho = Date.now();
let buf = '';
let n = 0;

const s = connect({ host: vip, port: Number(port), localAddress: srcAddr, localPort: Number(srcPort) });
s.setNoDelay(true);
s.setEncoding('utf8');
s.on('data', (d: string) => {
  buf += d;
  let i: number;
  while ((i = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (/^(rs|tun|nat)\d+$/.test(line)) {
      if (!sum.backend) writeFileSync(`${outFile}.ready`, `${line}\n`); // the session is up
      if (sum.backend && sum.backend !== line) sum.backendChanges++;
      sum.backend = line;
      continue;
    }
    if (quiet) {
      event('recv', line);
      continue;
    }
    const k = Number(line);
    const t = sentAt.get(k);
    if (t === undefined) continue;
    sentAt.delete(k);
    sum.echoed++;
    const now = Date.now();
    sum.maxRttMs = Math.max(sum.maxRttMs, now - t);
    sum.maxGapMs = Math.max(sum.maxGapMs, now - lastEcho);
    lastEcho = now;
  }
});
s.on('error', (e: NodeJS.ErrnoException) => (sum.error = e.code ?? e.message));
s.on('close', () => (sum.closed = true));
let kn = 0;
process.on('SIGUSR2', () => {
  if (s.destroyed || !s.writable) return;
  const line = `k${++kn}`;
  event('send', line);
  s.write(`${line}\n`);
});
const timer = setInterval(() => {
  if (quiet || s.destroyed || !s.writable) return;
  sentAt.set(++n, Date.now());
  sum.sent++;
  s.write(`${n}\n`);
}, 200);
process.on('SIGTERM', () => {
  clearInterval(timer);
  // give the last echoes a moment
  setTimeout(() => {
    writeFileSync(outFile, JSON.stringify({ ...sum, unanswered: sentAt.size }));
    s.destroy();
    process.exit(0);
  }, 1500);
});
