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
import { buildFrame, TCP_SYN } from './packet';
import { loadDirector, objectPath, type BenchDirector } from './director';
import { BpfObject } from '../../src/bpf/object';
import { raw, u32 } from '../../src/bpf/codec';
import { testRun } from '../../src/bpf/testrun';
import { SyncDaemon, readSyncKey, type SyncStatus } from '../../src/sync';
import type { SyncConfig } from '../../src/config';
import { BpfMap } from '../../src/bpf/map';
import { FlowTable } from '../../src/bpf/flowtable';
import { openPinnedXdMap, type XdMap } from '../../src/bpf/maps';
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
 * it: `rate` new flows a second (0: as fast as it can) for `seconds`, through the generator
 * program `fd` (bpf/tools/xdp_flowgen.bpf.c), which builds each flow's SYN and ACK from a
 * client address never used before and tail-calls director A on them: one BPF_PROG_TEST_RUN
 * of `repeat` 2k makes k flows (a JS test run per packet stalled at about 16k flows/s).
 */
function flowMaker(): void {
  const { fd, rate, seconds, frame } = workerData as { fd: number; rate: number; seconds: number; frame: Uint8Array };
  const data = Buffer.from(frame);
  const t0 = performance.now();
  let made = 0;
  let aborted = 0;
  while (performance.now() - t0 < seconds * 1000) {
    const want = rate === 0 ? made + 4096 : Math.floor(((performance.now() - t0) / 1000) * rate);
    if (want > made) {
      try {
        const r = testRun(fd, { data, repeat: 2 * (want - made) });
        if (r.retval !== 3 /* XDP_TX: the director forwarded the last packet */) aborted++;
      } catch (e) {
        // A signal (a profiler's SIGPROF) ends a long test run early: the flows it made stand,
        // the rest are skipped (the program's sequence carries on, so every flow stays new).
        if ((e as { cause?: { code?: string } }).cause?.code !== 'EINTR') throw e;
        aborted++;
      }
      made = want;
    }
    if (rate !== 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
  }
  parentPort!.postMessage({ made, seconds: (performance.now() - t0) / 1000, aborted });
}

/** The generator (bpf/tools/xdp_flowgen.bpf.c) in front of director `a`, and its SYN template (64 bytes). */
async function openFlowGen(directorFd: number): Promise<{
  fd: number;
  frame: Buffer;
  restart: (first: number) => void;
  close: () => Promise<void>;
}> {
  const syn = buildFrame({
    srcMac: '02:00:00:00:00:10',
    dstMac: MAC_A,
    family: 4,
    src: '10.100.0.1',
    dst: VIP,
    proto: 'tcp',
    sport: 40000,
    dport: 3306,
    flags: TCP_SYN,
  }).bytes;
  const frame = Buffer.alloc(64); // Ethernet padding after the 54 bytes: whole 8-byte chunks
  syn.copy(frame);
  if (frame[47] !== TCP_SYN) throw new Error(`flowgen: the template's TCP flags are not at byte 47`);
  const obj = await BpfObject.load(objectPath('xdp_flowgen'), {
    globals: { tmpl_chunks: 8, saddr_off: 26, flags_off: 47 },
  });
  obj.map('flowgen_tmpl', u32, raw(64)).update(0, frame);
  obj.map('flowgen_next', u32, u32).update(0, directorFd);
  const state = obj.map('flowgen_state', u32, raw(16));
  return {
    fd: obj.program().fd,
    frame,
    restart(first) {
      const v = Buffer.alloc(16);
      v.writeUInt32LE(first, 8);
      state.update(0, v);
    },
    close: async () => obj.close(),
  };
}

/** CPU time (user + system) of the calling thread so far, from /proc/thread-self/stat (clock ticks). */
function threadCpuSeconds(): number {
  const stat = fs.readFileSync('/proc/thread-self/stat', 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'latin1' }).trim()) || 100;
  return (Number(f[11]) + Number(f[12])) / hz; // utime, stime: fields 14 and 15 of stat(5)
}

/**
 * Import alone, on B: `n` fresh flows of A's service in full messages fed to B's receive() as
 * fast as this thread can (decode, HMAC, replay window, plan, lookups, install), then the
 * lookup step by itself, the same keys both ways in the same run: one mapLookupFirst call per
 * message (what the importer does) and four BpfMap.lookup calls per entry (what it did).
 */
function importAlone(sb: SyncDaemon, pinB: string, key: Buffer, first: number, n = 200_000): string {
  const client = (i: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(((10 << 24) | (150 << 16)) + first + i);
    return b;
  };
  const entries = Array.from({ length: n }, (_, i) => ({
    kind: 'handshake' as const,
    family: 4 as const,
    proto: 'tcp' as const,
    forwarding: 'dr' as const,
    client: client(i),
    clientPort: 40000,
    vip: Buffer.from(VIP.split('.').map(Number)),
    vipPort: 3306,
    backend: Buffer.from(RS[i % 2]!.address.split('.').map(Number)),
    backendPort: 3306,
    ageMs: 1,
  }));
  const msgs = encodeMessages(key, 0x0a0000fe, sequenceFrom(Date.now()), Date.now(), entries);
  const before = sb.status().received.installed;
  let t = performance.now();
  const cpu0 = threadCpuSeconds();
  for (const m of msgs) sb.receive(m, '127.0.0.254');
  const importCpu = threadCpuSeconds() - cpu0;
  const importS = (performance.now() - t) / 1000;
  const installed = sb.status().received.installed - before;
  // The lookup step alone: the same keys (now all in B's takeover table, the last of the four).
  const maps = (['flow4', 'prb4', 'emb4', 'tko4'] as const).map((r) => openPinnedXdMap(pinB, r));
  try {
    const [flow4, prb4, emb4, tko4] = maps as [XdMap<'flow4'>, XdMap<'prb4'>, XdMap<'emb4'>, XdMap<'tko4'>];
    const meta = openPinnedXdMap(pinB, 'meta');
    const table = FlowTable.v4(flow4, meta.lookup(0)!.flow_seed);
    meta.close();
    const keys = entries.map((e) => ({
      saddr: e.client.readUInt32BE(0),
      daddr: e.vip.readUInt32BE(0),
      sport: e.clientPort,
      dport: e.vipPort,
      proto: 6,
    }));
    const perMsg = Math.floor((MAX_MESSAGE - HEADER_SIZE - MAC_SIZE) / entrySize(4));
    t = performance.now();
    let found = 0;
    for (let i = 0; i < keys.length; i += perMsg) {
      const slice = keys.slice(i, i + perMsg);
      const packed = Buffer.alloc(slice.length * tko4.key.size);
      slice.forEach((k, j) => tko4.key.encode(k, packed, j * tko4.key.size));
      // The flow table is an array of buckets: each key's bucket, as the sync import reads it.
      const r = BpfMap.lookupFirst([prb4, emb4, tko4] as unknown as BpfMap<unknown, unknown>[], packed);
      for (let j = 0; j < slice.length; j++) if (table.lookup(slice[j]!) || r.found[j]! >= 0) found++;
    }
    const batchS = (performance.now() - t) / 1000;
    t = performance.now();
    let found1 = 0;
    for (const k of keys) if (table.lookup(k) ?? prb4.lookup(k) ?? emb4.lookup(k) ?? tko4.lookup(k)) found1++;
    const oneS = (performance.now() - t) / 1000;
    return (
      `import alone on B: ${installed} of ${n} entries installed in ${importS.toFixed(2)} s (${Math.round(installed / importS)} entries/s, ${msgs.length} messages), ${importCpu.toFixed(2)} s of this thread's CPU time (${Math.round(installed / importCpu)} entries per CPU second: what one core does, whatever else runs on the machine)\n` +
      `lookup step, same ${n} keys (found ${found} / ${found1}): one native call per message ${Math.round(n / batchS)} entries/s, four lookups per entry ${Math.round(n / oneS)} entries/s: ratio ${(oneS / batchS).toFixed(1)}x\n`
    );
  } finally {
    for (const m of maps) m.close();
  }
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
  const closers: (() => Promise<void>)[] = [];
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
    // B's sync daemon on a thread of its own, as it would be in a process of its own: on A's
    // thread, each daemon's work delays the other's (A's ring overflows, B's socket buffer).
    const sb = await startImporter(cfg('127.0.0.2', '127.0.0.1'), path.join(pinDir, 'b'));
    closers.push(sb.stop);
    const v4 =
      (HEADER_SIZE + MAC_SIZE) / Math.floor((MAX_MESSAGE - HEADER_SIZE - MAC_SIZE) / entrySize(4)) + entrySize(4);
    process.stdout.write(
      `machine: ${os.cpus().length} CPUs, load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(
          ' ',
        )} (other work shares these CPUs with the three threads here: A's daemon, B's daemon, the flow generator)\n`,
    );
    process.stdout.write(
      `bytes per flow on the wire (UDP payload, full messages): IPv4 ${v4.toFixed(1)}, IPv6 ${((HEADER_SIZE + MAC_SIZE) / Math.floor((MAX_MESSAGE - HEADER_SIZE - MAC_SIZE) / entrySize(6)) + entrySize(6)).toFixed(1)}\n`,
    );
    const gen = await openFlowGen(a.fd);
    closers.push(gen.close);
    let flowBase = 0;
    const run = async (rate: number | undefined): Promise<void> => {
      const a0 = sa.status();
      const b0 = await sb.status();
      gen.restart(flowBase);
      const runStart = performance.now();
      const w = new Worker(__filename, { workerData: { fd: gen.fd, rate: rate ?? 0, seconds, frame: gen.frame } });
      const done = await new Promise<{ made: number; seconds: number; aborted: number }>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      await w.terminate();
      const made = done.made;
      flowBase += made;
      const genS = done.seconds;
      // B may still be working through its socket buffer: wait until its installs stop growing.
      const atEnd = (await sb.status()).received.installed;
      let b1: SyncStatus & { cpuSeconds: number } = await sb.status();
      for (let still = 0, waited = 0; still < 3 && waited < 10_000; waited += 100) {
        await sleep(100);
        const b = await sb.status();
        still = b.received.installed === b1.received.installed ? still + 1 : 0;
        b1 = b;
      }
      const a1 = sa.status();
      const exported = a1.exported.events - a0.exported.events;
      const installed = b1.received.installed - b0.received.installed;
      const lag = b1.lagMs;
      process.stdout.write(
        `${rate === undefined ? 'unpaced' : `${rate}/s`}: ${made} flows in ${genS.toFixed(2)} s (${Math.round(made / genS)}/s made), exported ${exported} (lost ${a1.exported.lost - a0.exported.lost}), sent ${a1.sent.entries - a0.sent.entries} entries in ${a1.sent.messages - a0.sent.messages} messages (${((a1.sent.bytes - a0.sent.bytes) / Math.max(1, a1.sent.entries - a0.sent.entries)).toFixed(1)} bytes/flow), B received ${b1.received.entries - b0.received.entries} (${b1.received.messages - b0.received.messages} messages; what A sent and B did not receive overflowed its socket buffer), installed ${installed} (${atEnd - b0.received.installed} by the end of the run: ${Math.round((atEnd - b0.received.installed) / genS)}/s; B's thread had ${(b1.cpuSeconds - b0.cpuSeconds).toFixed(2)} s of CPU in ${((performance.now() - runStart) / 1000).toFixed(2)} s: ${Math.round(installed / Math.max(0.01, b1.cpuSeconds - b0.cpuSeconds))} installs per CPU second), rejected ${JSON.stringify(b1.rejected)}, dropped ${JSON.stringify(b1.dropped)}; lag p50 ${lag?.p50} ms p99 ${lag?.p99} ms max ${lag?.max} ms\n`,
      );
    };
    for (const r of rates) await run(r);
    await run(undefined);
    process.stdout.write(await sb.importAlone(flowBase));
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
    for (const c of closers) await c().catch(() => undefined);
    for (const s of syncs) await s.stop().catch(() => undefined);
    for (const d of dirs) await d.close().catch(() => undefined);
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(pinDir, { recursive: true, force: true });
  }
}

type ImporterData = { role: 'importer'; cfg: SyncConfig; pinB: string };
type ImporterRequest = { id: number; op: 'status' | 'importAlone' | 'stop'; first?: number };

/** B's sync daemon in a worker thread (importer() below), and its requests. */
async function startImporter(
  cfg: SyncConfig,
  pinB: string,
): Promise<{
  status: () => Promise<SyncStatus & { cpuSeconds: number }>;
  importAlone: (first: number) => Promise<string>;
  stop: () => Promise<void>;
}> {
  const w = new Worker(__filename, { workerData: { role: 'importer', cfg, pinB } satisfies ImporterData });
  const waiting = new Map<number, (v: unknown) => void>();
  let next = 1;
  const failed = new Promise<never>((_, reject) => w.once('error', reject));
  w.on('message', (m: { id: number; value: unknown }) => waiting.get(m.id)?.(m.value));
  const ask = <T>(op: ImporterRequest['op'], first?: number): Promise<T> => {
    const id = next++;
    const p = new Promise<T>((resolve) => waiting.set(id, resolve as (v: unknown) => void));
    w.postMessage({ id, op, first } satisfies ImporterRequest);
    return Promise.race([p, failed]);
  };
  await ask('status');
  return {
    status: () => ask<SyncStatus & { cpuSeconds: number }>('status'),
    importAlone: (first) => ask<string>('importAlone', first),
    stop: async () => {
      await ask('stop');
      await w.terminate();
    },
  };
}

async function importer(): Promise<void> {
  const { cfg, pinB } = workerData as ImporterData;
  const log = createLogger({ level: 'warn' });
  const sb = await SyncDaemon.start(cfg, pinB, 'lo', log, { peersMayBeLocal: true });
  parentPort!.on('message', (m: ImporterRequest) => {
    void (async () => {
      let value: unknown;
      if (m.op === 'status') value = { ...sb.status(), cpuSeconds: threadCpuSeconds() };
      else if (m.op === 'importAlone') value = importAlone(sb, pinB, readSyncKey(cfg.keyFile), m.first ?? 0);
      else await sb.stop();
      parentPort!.postMessage({ id: m.id, value });
    })();
  });
}

if (isMainThread)
  main().catch((e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exitCode = 1;
  });
if (!isMainThread) {
  if ((workerData as { role?: string }).role === 'importer')
    void importer(); // a rejection fails the worker: its 'error' event rejects the parent's requests
  else flowMaker();
}
