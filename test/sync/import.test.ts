// Connection sync against the real kernel maps: a director (the product's XdpDataplane, loaded
// by the benchmark's loader on a placeholder veth) imports entries through SyncDaemon.receive()
// and forwards an imported flow's next packet (BPF_PROG_TEST_RUN) to the backend the entry named;
// entries for a backend or service it does not have, over its own flows, forged or replayed are
// refused and counted; a burst of three takeover tables' worth of imports leaves every flow this
// director saw open where it was.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadDirector, BENCH_DIRECTOR_LIMITS, type BenchDirector } from '../../scripts/bench/director';
import { buildFrame, TCP_ACK, TCP_SYN } from '../../scripts/bench/packet';
import { testRun } from '../../src/bpf/testrun';
import { openPinnedXdMap } from '../../src/bpf/maps';
import { SyncDaemon } from '../../src/sync';
import { encodeMessages, sequenceFrom, type SyncEntry } from '../../src/sync/codec';
import { silentLogger } from '../../src/log';

const MAC = '02:00:00:00:0c:02';
const VIP = '10.201.0.100';
const RS = [
  { address: '10.201.0.11', mac: '02:00:00:00:0c:11' },
  { address: '10.201.0.12', mac: '02:00:00:00:0c:12' },
];
const TABLE = 1024;
const tag = `xdsi${process.pid % 100000}`;
const pinDir = `/sys/fs/bpf/${tag}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
const KEY = Buffer.from('s'.repeat(40));
let d: BenchDirector;
let sync: SyncDaemon;
const seq = sequenceFrom(Date.now());
const ip4 = (s: string) => Buffer.from(s.split('.').map(Number));

function frame(src: string, sport: number, flags: number): Buffer {
  return buildFrame({
    srcMac: '02:00:00:00:0c:10',
    dstMac: MAC,
    family: 4,
    src,
    dst: VIP,
    proto: 'tcp',
    sport,
    dport: 3306,
    flags,
  }).bytes;
}
function entry(client: string, port: number, backend: string, o: Partial<SyncEntry> = {}): SyncEntry {
  return {
    kind: 'handshake',
    family: 4,
    proto: 'tcp',
    forwarding: 'dr',
    client: ip4(client),
    clientPort: port,
    vip: ip4(VIP),
    vipPort: 3306,
    backend: ip4(backend),
    backendPort: 3306,
    ageMs: 5,
    ...o,
  };
}
function feed(entries: SyncEntry[], key = KEY, sender = 0x0a000063): Buffer[] {
  const msgs = encodeMessages(key, sender, seq, Date.now(), entries);
  for (const m of msgs) sync.receive(m, '127.0.0.99');
  return msgs;
}
/** The backend MAC a packet of the flow is sent to (undefined: not forwarded). */
function forwardedTo(src: string, sport: number): string | undefined {
  const r = testRun(d.fd, { data: frame(src, sport, TCP_ACK), repeat: 1 });
  if (r.retval !== 3 /* XDP_TX */) return undefined;
  return [...r.dataOut.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

before(async () => {
  const keyFile = path.join(tmp, 'sync.key');
  fs.writeFileSync(keyFile, KEY, { mode: 0o600 });
  d = await loadDirector({
    pinDir,
    log: silentLogger(),
    mac: MAC,
    instance: 'b',
    limits: { ...BENCH_DIRECTOR_LIMITS, flows: TABLE },
  });
  await d.setService({ vip: VIP, port: 3306, proto: 'tcp', backends: RS.map((r) => ({ ...r, port: 3306 })) });
  sync = await SyncDaemon.start(
    {
      source: '127.0.0.1',
      family: 4,
      peers: ['127.0.0.99'],
      port: 20000 + (process.pid % 20000),
      keyFile,
      maxImportRate: 10_000_000,
      silentAfterMs: 60_000,
    },
    path.join(pinDir, 'b'),
    'lo',
    silentLogger(),
    { peersMayBeLocal: true },
  );
});

after(async () => {
  await sync?.stop();
  await d?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.rmSync(pinDir, { recursive: true, force: true });
});

test("an imported flow's next packet goes to the backend the entry named, whatever the ring says", () => {
  // Both backends, so one of them is not where the ring would put each flow.
  for (let i = 0; i < 8; i++) feed([entry('10.9.0.1', 1000 + i, RS[i % 2]!.address)]);
  for (let i = 0; i < 8; i++) assert.equal(forwardedTo('10.9.0.1', 1000 + i), RS[i % 2]!.mac, `flow ${i}`);
  assert.equal(sync.status().received.installed, 8);
});

test('entries for a backend or service this director does not have, over its own flows, forged or replayed are refused', () => {
  const st0 = sync.status();
  // Its own flow: SYN + ACK here (probation table), then a peer claims it for the other backend.
  testRun(d.fd, { data: frame('10.9.1.1', 2000, TCP_SYN), repeat: 1 });
  const own = forwardedTo('10.9.1.1', 2000)!;
  const other = RS.find((r) => r.mac !== own)!;
  feed([
    entry('10.9.1.1', 2000, other.address),
    entry('10.9.1.2', 2000, '192.0.2.66'),
    entry('10.9.1.3', 2000, RS[0]!.address, { vip: ip4('10.201.0.200') }),
    entry('10.9.1.4', 2000, RS[0]!.address, { forwarding: 'tunnel' }),
  ]);
  const forged = feed([entry('10.9.1.5', 2000, RS[0]!.address)], Buffer.from('w'.repeat(40)));
  const msgs = feed([entry('10.9.1.6', 2000, RS[0]!.address)]);
  for (const m of msgs) sync.receive(m, '127.0.0.99'); // the same datagram again
  const st = sync.status();
  assert.equal(forwardedTo('10.9.1.1', 2000), own, 'its own flow kept its backend');
  assert.ok(
    RS.some((r) => r.mac === forwardedTo('10.9.1.2', 2000)),
    'a flow named with a foreign backend goes where the ring puts it, to a configured backend',
  );
  assert.equal(st.rejected.local_flow - st0.rejected.local_flow, 1);
  assert.equal(st.rejected.no_backend - st0.rejected.no_backend, 1);
  assert.equal(st.rejected.no_service - st0.rejected.no_service, 1);
  assert.equal(st.rejected.forwarding - st0.rejected.forwarding, 1);
  assert.equal(st.dropped.hmac - st0.dropped.hmac, forged.length);
  assert.equal(st.dropped.replay - st0.dropped.replay, msgs.length);
  assert.equal(st.received.installed - st0.received.installed, 1, 'only the genuine, fresh entry');
});

test(`a burst of ${3 * TABLE} imported flows (three takeover tables) evicts none of this director's own flows`, () => {
  const tko = openPinnedXdMap(path.join(pinDir, 'b'), 'tko4');
  const prb = openPinnedXdMap(path.join(pinDir, 'b'), 'prb4');
  try {
    const own: { port: number; mac: string }[] = [];
    for (let i = 0; i < 200; i++) {
      testRun(d.fd, { data: frame('10.9.2.1', 3000 + i, TCP_SYN), repeat: 1 });
      own.push({ port: 3000 + i, mac: forwardedTo('10.9.2.1', 3000 + i)! });
    }
    const ownKeys = [...prb.keys()].length;
    assert.ok(ownKeys >= 200);
    const burst: SyncEntry[] = [];
    for (let i = 0; i < 3 * TABLE; i++) burst.push(entry(`10.9.${10 + (i >> 8)}.${i & 255}`, 4000, RS[i % 2]!.address));
    feed(burst);
    assert.equal([...prb.keys()].length, ownKeys, 'the probation table (flows that opened here) is untouched');
    assert.ok([...tko.keys()].length <= TABLE, 'imports stay in the takeover table');
    for (const o of own) assert.equal(forwardedTo('10.9.2.1', o.port), o.mac, `own flow ${o.port}`);
  } finally {
    tko.close();
    prb.close();
  }
});

test('IPv6: an imported flow goes to the backend the entry named', async () => {
  const vip6 = 'fd01::100';
  const rs6 = [
    { address: 'fd01::11', mac: '02:00:00:00:0d:11' },
    { address: 'fd01::12', mac: '02:00:00:00:0d:12' },
  ];
  await d.setService({ vip: vip6, port: 3306, proto: 'tcp', backends: rs6.map((r) => ({ ...r, port: 3306 })) });
  sync.refreshView();
  const a16 = (s: string) =>
    Buffer.from(
      s === vip6
        ? 'fd010000000000000000000000000100'
        : s === 'fd01::11'
          ? 'fd010000000000000000000000000011'
          : s === 'fd01::12'
            ? 'fd010000000000000000000000000012'
            : 'fd090000000000000000000000000001',
      'hex',
    );
  for (let i = 0; i < 6; i++)
    feed([
      {
        ...entry('10.0.0.1', 5000 + i, '10.0.0.1'),
        family: 6,
        client: a16('fd09::1'),
        vip: a16(vip6),
        backend: a16(rs6[i % 2]!.address),
      },
    ]);
  for (let i = 0; i < 6; i++) {
    const r = testRun(d.fd, {
      data: buildFrame({
        srcMac: '02:00:00:00:0c:10',
        dstMac: MAC,
        family: 6,
        src: 'fd09::1',
        dst: vip6,
        proto: 'tcp',
        sport: 5000 + i,
        dport: 3306,
        flags: TCP_ACK,
      }).bytes,
      repeat: 1,
    });
    assert.equal(r.retval, 3);
    assert.equal(
      [...r.dataOut.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':'),
      rs6[i % 2]!.mac,
      `flow ${i}`,
    );
  }
});
