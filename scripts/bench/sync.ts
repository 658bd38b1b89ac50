// Connection sync benchmark (the note's numbers): two product directors in one network
// namespace of their own (run it under `unshare -n`), A exporting, B importing, their sync
// daemons talking over loopback (127.0.0.1 -> 127.0.0.2). New flows are made on A with
// BPF_PROG_TEST_RUN (a SYN, then the client's ACK: the handshake that A reports).
//
//   unshare -n node dist/scripts/bench/sync.js [--seconds 3] [--rates 1000,50000]
//
// Prints: for each paced rate, the flows made, exported, installed on B and B's lag p50/p99;
// then an unpaced run (as fast as this process makes flows) for the throughput; bytes per flow.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { loadDirector, type BenchDirector } from './director';
import { buildFrame, TCP_ACK, TCP_SYN } from './packet';
import { testRun } from '../../src/bpf/testrun';
import { SyncDaemon } from '../../src/sync';
import { createLogger } from '../../src/log';
import { encodeMessages, sequenceFrom, entrySize, HEADER_SIZE, MAC_SIZE, MAX_MESSAGE } from '../../src/sync/codec';

const MAC_A = '02:00:00:00:0a:02';
const MAC_B = '02:00:00:00:0b:02';
const VIP = '10.200.0.100';
const RS = [
  { address: '10.200.0.11', mac: '02:00:00:00:00:11' },
  { address: '10.200.0.12', mac: '02:00:00:00:00:12' },
];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

/**
 * The flow maker, on a worker thread so that the main thread's sync daemons are not held up by
 * it: `rate` new flows a second (0: as fast as it can) for `seconds` on program fd `fd`. Each
 * flow is a SYN, then the client's ACK (the handshake A reports), from a client address never
 * used before: the template frames' source address is rewritten in place (the program does not
 * check checksums).
 */
function flowMaker(): void {
  const { fd, rate, seconds, first } = workerData as { fd: number; rate: number; seconds: number; first: number };
  const spec = {
    srcMac: '02:00:00:00:00:10',
    dstMac: MAC_A,
    family: 4 as const,
    src: '10.100.0.1',
    dst: VIP,
    proto: 'tcp' as const,
    sport: 40000,
    dport: 3306,
  };
  const syn = buildFrame({ ...spec, flags: TCP_SYN }).bytes;
  const ack = buildFrame({ ...spec, flags: TCP_ACK }).bytes;
  const t0 = performance.now();
  let made = 0;
  while (performance.now() - t0 < seconds * 1000) {
    const want = rate === 0 ? made + 256 : Math.floor(((performance.now() - t0) / 1000) * rate);
    while (made < want) {
      const n = first + made++;
      const src = ((10 << 24) | ((100 + ((n >> 16) & 63)) << 16) | (n & 0xffff)) >>> 0;
      syn.writeUInt32BE(src, 26);
      ack.writeUInt32BE(src, 26);
      testRun(fd, { data: syn, repeat: 1 });
      testRun(fd, { data: ack, repeat: 1 });
    }
    if (rate !== 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
  }
  parentPort!.postMessage({ made, seconds: (performance.now() - t0) / 1000 });
}

async function main(): Promise<void> {
  const seconds = Number(arg('--seconds', '3'));
  const rates = arg('--rates', '1000,50000').split(',').map(Number);
  execFileSync('ip', ['link', 'set', 'lo', 'up']);
  execFileSync('ip', ['addr', 'add', '127.0.0.2/8', 'dev', 'lo']);
  const tag = `xdsb${process.pid}`;
  const pinDir = `/sys/fs/bpf/${tag}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  const keyFile = path.join(tmp, 'sync.key');
  fs.writeFileSync(keyFile, 'x'.repeat(48), { mode: 0o600 });
  const log = createLogger({ level: 'warn' });
  const dirs: BenchDirector[] = [];
  const syncs: SyncDaemon[] = [];
  try {
    const a = await loadDirector({ pinDir, log, mac: MAC_A, instance: 'a', syncExport: true });
    dirs.push(a);
    const b = await loadDirector({ pinDir, log, mac: MAC_B, instance: 'b' });
    dirs.push(b);
    for (const d of [a, b])
      await d.setService({ vip: VIP, port: 3306, proto: 'tcp', backends: RS.map((r) => ({ ...r, port: 3306 })) });
    const cfg = (source: string, peer: string) => ({
      source,
      family: 4 as const,
      peers: [peer],
      port: 18850,
      keyFile,
      maxImportRate: 10_000_000,
      silentAfterMs: 3000,
    });
    const sa = await SyncDaemon.start(cfg('127.0.0.1', '127.0.0.2'), path.join(pinDir, 'a'), 'lo', log, {
      peersMayBeLocal: true,
    });
    syncs.push(sa);
    const sb = await SyncDaemon.start(cfg('127.0.0.2', '127.0.0.1'), path.join(pinDir, 'b'), 'lo', log, {
      peersMayBeLocal: true,
    });
    syncs.push(sb);
    const v4 =
      (HEADER_SIZE + MAC_SIZE) / Math.floor((MAX_MESSAGE - HEADER_SIZE - MAC_SIZE) / entrySize(4)) + entrySize(4);
    process.stdout.write(
      `bytes per flow on the wire (UDP payload, full messages): IPv4 ${v4.toFixed(1)}, IPv6 ${((HEADER_SIZE + MAC_SIZE) / Math.floor((MAX_MESSAGE - HEADER_SIZE - MAC_SIZE) / entrySize(6)) + entrySize(6)).toFixed(1)}\n`,
    );
    let flowBase = 0;
    const run = async (rate: number | undefined): Promise<void> => {
      const a0 = sa.status();
      const b0 = sb.status();
      const w = new Worker(__filename, { workerData: { fd: a.fd, rate: rate ?? 0, seconds, first: flowBase } });
      const done = await new Promise<{ made: number; seconds: number }>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      await w.terminate();
      const made = done.made;
      flowBase += made;
      const genS = done.seconds;
      await sleep(500);
      const a1 = sa.status();
      const b1 = sb.status();
      const exported = a1.exported.events - a0.exported.events;
      const installed = b1.received.installed - b0.received.installed;
      const lag = b1.lagMs;
      process.stdout.write(
        `${rate === undefined ? 'unpaced' : `${rate}/s`}: ${made} flows in ${genS.toFixed(2)} s (${Math.round(made / genS)}/s made), exported ${exported} (lost ${a1.exported.lost - a0.exported.lost}), sent ${a1.sent.entries - a0.sent.entries} entries in ${a1.sent.messages - a0.sent.messages} messages (${((a1.sent.bytes - a0.sent.bytes) / Math.max(1, a1.sent.entries - a0.sent.entries)).toFixed(1)} bytes/flow), installed on B ${installed} (${Math.round(installed / genS)}/s), rejected ${JSON.stringify(b1.rejected)}, dropped ${JSON.stringify(b1.dropped)}; lag p50 ${lag?.p50} ms p99 ${lag?.p99} ms max ${lag?.max} ms\n`,
      );
    };
    for (const r of rates) await run(r);
    await run(undefined);
    // Codec alone: encode + HMAC, decode + verify.
    const entries = Array.from({ length: 52 }, (_, i) => ({
      kind: 'handshake' as const,
      family: 4 as const,
      proto: 'tcp' as const,
      forwarding: 'dr' as const,
      client: Buffer.from([10, 1, 0, i]),
      clientPort: 1000 + i,
      vip: Buffer.from([10, 0, 0, 1]),
      vipPort: 3306,
      backend: Buffer.from([10, 0, 0, 2]),
      backendPort: 3306,
      ageMs: 0,
    }));
    const key = Buffer.alloc(32, 1);
    const seq = sequenceFrom(Date.now());
    let t = performance.now();
    let n = 0;
    let msgs: Buffer[] = [];
    while (performance.now() - t < 1000) {
      msgs = encodeMessages(key, 1, seq, Date.now(), entries);
      n += entries.length;
    }
    const encRate = n / ((performance.now() - t) / 1000);
    const { decodeMessage } = await import('../../src/sync/codec');
    t = performance.now();
    n = 0;
    while (performance.now() - t < 1000) {
      decodeMessage(key, msgs[0]!);
      n += entries.length;
    }
    process.stdout.write(
      `codec alone: encode+HMAC ${Math.round(encRate)} entries/s, decode+verify ${Math.round(n / ((performance.now() - t) / 1000))} entries/s\n`,
    );
  } finally {
    for (const s of syncs) await s.stop().catch(() => undefined);
    for (const d of dirs) await d.close().catch(() => undefined);
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(pinDir, { recursive: true, force: true });
  }
}

if (isMainThread)
  main().catch((e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exitCode = 1;
  });
if (!isMainThread) flowMaker();
