// Guest side: one long-lived TCP session through the VIP to an echo service (the server writes
// its id line first, then echoes). Sends a numbered line every 200 ms and checks the echo; on
// SIGTERM writes a summary JSON to argv[4] and exits. argv[4].ready appears once the session is up. Used to prove that a live session survives
// switching the dataplane XDP -> IPVS -> XDP.
//   node session-client.js VIP PORT SRC_ADDR:SRC_PORT OUT.json
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';

const [vip, port, src, outFile] = process.argv.slice(2) as [string, string, string, string];
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
    if (/^(rs|tun)\d+$/.test(line)) {
      if (!sum.backend) writeFileSync(`${outFile}.ready`, `${line}\n`); // the session is up
      if (sum.backend && sum.backend !== line) sum.backendChanges++;
      sum.backend = line;
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
const timer = setInterval(() => {
  if (s.destroyed || !s.writable) return;
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
