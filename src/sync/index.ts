// Connection sync between directors: export this director's flows (read from the XDP program's
// ring buffer, bpf/sync.h), send them to the peers (transport.ts, codec.ts), and install the
// peers' flows (plan.ts) into this director's takeover tables. Works on the instance's pinned
// maps, beside the XDP dataplane (which sets the program's sync_export when `sync:` is there).
//
// Export: the ring is read every EXPORT_POLL_MS; each record's backend index becomes its
// service and backend address (the backend and service maps, re-read when an index is
// unknown and every VIEW_REFRESH_MS), records of one read go out together, deduplicated by
// flow. Every HEARTBEAT_MS without data an empty message goes out, so a peer can tell silence
// from idleness.
// Import: a datagram is authenticated (HMAC), checked against its sender's replay window,
// held to max_import_rate (token bucket over all peers), planned and written.
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import type { Logger } from '../log';
import { syncKeyOfFile, MIN_SYNC_KEY_BYTES, type SyncConfig } from '../config';
import { XdError, wrap } from '../errors';
import {
  openPinnedXdMap,
  type XdMap,
  BpfMap,
  FlowTable,
  none,
  sumPerCpu,
  RingbufReader,
  xdSyncEventCodec,
  MAPS,
  XdBackendFlags,
  XdSyncKind,
  XdFlowBits,
  type XdFlow4Key,
  type XdFlowKey,
} from '../bpf';
import { addressToBytes, hostPort } from '../net/inet';
import * as path from 'node:path';
import {
  decodeMessage,
  encodeMessages,
  ReplayWindow,
  sequenceFrom,
  SyncDecodeError,
  type Kind,
  type SyncEntry,
  type SyncForwarding,
} from './codec';
import {
  addrKey,
  planImport,
  serviceKey,
  type Existing,
  type LocalBackend,
  type LocalView,
  type RejectReason,
} from './plan';
import { openSyncSocket, type SyncSocket } from './transport';

import type { SyncStatus, SyncPeerStatus } from './status';

/** A flow entry's last_seen_ns without the client's closed mark (bit XD_FLOW_BIT_CLOSED, set on its FIN or RST): the time alone. */
const SEEN_MASK = ~(1n << BigInt(XdFlowBits.XD_FLOW_BIT_CLOSED)) & 0xffff_ffff_ffff_ffffn;
const seenNs = (f: { last_seen_ns: bigint }): bigint => f.last_seen_ns & SEEN_MASK;

export { syncMetrics } from './metrics';
export type { SyncStatus, SyncPeerStatus } from './status';

const EXPORT_POLL_MS = 10;
const HEARTBEAT_MS = 1000;
const VIEW_REFRESH_MS = 1000;
const LAG_SAMPLES = 4096;

// struct xd_sync_event (bpf/include/xdirector.h), read in place by entriesOf().
const SYNC_EVENT_SIZE = xdSyncEventCodec.size;
const EV_SPORT = 32;
const EV_KIND = 38;
const EV_BACKEND = 40;
const EV_GENERATION = 44;
const EV_SEEN_NS = 48;
{
  // The offsets above against the generated codec, once at load: a layout change that moves a
  // field fails here, at start, rather than exporting wrong flows.
  const probe = Buffer.alloc(SYNC_EVENT_SIZE);
  xdSyncEventCodec.encode(
    {
      saddr: Buffer.alloc(16, 1),
      daddr: Buffer.alloc(16, 2),
      sport: 0x0304,
      dport: 0x0506,
      proto: 6,
      family: 4,
      kind: 7,
      pad: 0,
      backend: 0x0a0b0c0d,
      generation: 0x01020304,
      seen_ns: 0x0102030405060708n,
    },
    probe,
  );
  if (
    probe.readUInt16BE(EV_SPORT) !== 0x0304 ||
    probe[EV_KIND] !== 7 ||
    probe.readUInt32LE(EV_BACKEND) !== 0x0a0b0c0d ||
    probe.readUInt32LE(EV_GENERATION) !== 0x01020304 ||
    probe.readBigUInt64LE(EV_SEEN_NS) !== 0x0102030405060708n ||
    probe[0] !== 1
  )
    throw new XdError(
      'XD_ERR_LAYOUT_MISMATCH',
      'src/sync: struct xd_sync_event moved: update the EV_* offsets in src/sync/index.ts',
    );
}

const KIND_OF_EVENT: Record<number, Kind> = {
  [XdSyncKind.XD_SYNC_HANDSHAKE]: 'handshake',
  [XdSyncKind.XD_SYNC_TAKEOVER]: 'takeover',
  [XdSyncKind.XD_SYNC_REFRESH]: 'refresh',
};

/** The sender id of a source address: the IPv4 address as a number, else a hash of the IPv6 one. */
export function senderId(source: string): number {
  const b = addressToBytes(source);
  return b.length === 4 ? b.readUInt32BE(0) : createHash('sha256').update(b).digest().readUInt32BE(0);
}

/** The sync key from its file (check-config checks it too; this is the run-time read). */
export function readSyncKey(file: string): Buffer {
  let key: Buffer;
  try {
    key = syncKeyOfFile(fs.readFileSync(file));
  } catch (e) {
    throw wrap(
      'XD_ERR_SYNC',
      `sync.key_file ${file}: cannot read it: create it with a random key, the same on every director (openssl rand -hex 32 > ${file}; chmod 600 ${file})`,
      e,
    );
  }
  if (key.length < MIN_SYNC_KEY_BYTES)
    throw new XdError(
      'XD_ERR_SYNC',
      `sync.key_file ${file}: the key is ${key.length} bytes, shorter than ${MIN_SYNC_KEY_BYTES}: use a random one (openssl rand -hex 32 > ${file})`,
    );
  return key;
}

interface ExportTarget {
  entryBase: Omit<SyncEntry, 'kind' | 'client' | 'clientPort' | 'ageMs'>;
  generation: number;
}

type FlowMaps = {
  flow4: XdMap<'flow4'>;
  flow6: XdMap<'flow6'>;
  prb4: XdMap<'prb4'>;
  prb6: XdMap<'prb6'>;
  emb4: XdMap<'emb4'>;
  emb6: XdMap<'emb6'>;
  tko4: XdMap<'tko4'>;
  tko6: XdMap<'tko6'>;
  svc: XdMap<'svc'>;
  be: XdMap<'be'>;
  syncst: XdMap<'syncst'>;
  nrev4: XdMap<'nrev4'>;
  nrev6: XdMap<'nrev6'>;
  meta: XdMap<'meta'>;
};

export class SyncDaemon {
  private readonly maps: FlowMaps;
  private readonly flowTables: { v4: FlowTable<XdFlow4Key>; v6: FlowTable<XdFlowKey> };
  private readonly ringMap: BpfMap<never, never>;
  private readonly ring: RingbufReader;
  private sock?: SyncSocket;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly sender: number;
  private readonly nextSeq = sequenceFrom(Date.now());
  private view: LocalView = { services: new Map() };
  private byIndex = new Map<number, ExportTarget>();
  private viewAt = 0;
  private lastSentAt = 0;
  private readonly windows = new Map<number, ReplayWindow>();
  private readonly peers = new Map<string, SyncPeerStatus & { heardAt: number | null }>();
  private readonly lags: number[] = [];
  private lagAt = 0;
  private tokens: number;
  private tokensAt = Date.now();
  private readonly st = {
    sent: { messages: 0, entries: 0, bytes: 0 },
    received: { messages: 0, entries: 0, installed: 0 },
    dropped: { short: 0, magic: 0, version: 0, length: 0, hmac: 0, entry: 0, replay: 0, own: 0, rate: 0 },
    rejected: { no_service: 0, no_backend: 0, forwarding: 0, local_flow: 0, local_newer: 0 },
  };
  private readonly startedAt = Date.now();
  private lastRejectLog = 0;

  private constructor(
    private readonly cfg: SyncConfig,
    private readonly key: Buffer,
    pinDir: string,
    private readonly log: Logger,
  ) {
    this.sender = senderId(cfg.source);
    this.tokens = cfg.maxImportRate;
    const open = <R extends keyof FlowMaps>(r: R) => openPinnedXdMap(pinDir, r) as FlowMaps[R];
    const opened: Partial<FlowMaps> = {};
    try {
      for (const r of [
        'flow4',
        'flow6',
        'prb4',
        'prb6',
        'emb4',
        'emb6',
        'tko4',
        'tko6',
        'svc',
        'be',
        'syncst',
        'nrev4',
        'nrev6',
        'meta',
      ] as const)
        (opened as Record<string, unknown>)[r] = open(r);
      this.ringMap = BpfMap.openPinned(path.join(pinDir, MAPS.sync.name), none, none);
    } catch (e) {
      for (const m of Object.values(opened)) m.close();
      throw wrap('XD_ERR_SYNC', `connection sync needs the XDP dataplane's pinned maps in ${pinDir}`, e);
    }
    this.maps = opened as FlowMaps;
    // The flow tables hash with the seed the program was loaded with (bpf/flow.h flow_seed), which
    // the dataplane keeps in the meta map beside them.
    const seed = this.maps.meta.lookup(0)?.flow_seed ?? 0;
    this.flowTables = { v4: FlowTable.v4(this.maps.flow4, seed), v6: FlowTable.v6(this.maps.flow6, seed) };
    this.ring = new RingbufReader(this.ringMap.fd, MAPS.sync.name);
    const peerList = cfg.multicast ? [] : cfg.peers;
    for (const p of peerList)
      this.peers.set(p, {
        address: p,
        sender: senderId(p),
        messages: 0,
        entries: 0,
        lastHeardMsAgo: null,
        silent: false,
        heardAt: null,
      });
  }

  /** Opens the maps and the socket and starts exporting and importing. */
  static async start(
    cfg: SyncConfig,
    pinDir: string,
    interfaceName: string,
    log: Logger,
    o: { peersMayBeLocal?: boolean } = {},
  ): Promise<SyncDaemon> {
    const key = readSyncKey(cfg.keyFile);
    const d = new SyncDaemon(cfg, key, pinDir, log);
    try {
      d.sock = await openSyncSocket(
        cfg,
        interfaceName,
        (m, from) => d.receive(m, from),
        (err) => log.error({ err }, `sync socket: ${err.message}`),
        o.peersMayBeLocal,
      );
    } catch (e) {
      d.closeMaps();
      throw e;
    }
    d.refreshView();
    d.timers.push(setInterval(() => d.exportTick(), EXPORT_POLL_MS));
    log.info(
      { source: cfg.source, port: cfg.port, peers: cfg.peers, multicast: cfg.multicast },
      'connection sync running',
    );
    return d;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.sock?.close();
    this.closeMaps();
  }

  private closeMaps(): void {
    this.ring.close();
    this.ringMap.close();
    for (const m of Object.values(this.maps)) m.close();
  }

  /** Backends and services as the maps hold them now: the import view and the export index. */
  refreshView(): void {
    const services = new Map<number, { family: number; vip: Buffer; port: number; proto: 'tcp' | 'udp' }>();
    for (const [k, v] of this.maps.svc.entries()) {
      if (k.proto !== 6 && k.proto !== 17) continue;
      services.set(v.id, {
        family: k.family,
        vip: Buffer.from(k.vip.subarray(0, k.family === 4 ? 4 : 16)),
        port: k.port,
        proto: k.proto === 6 ? 'tcp' : 'udp',
      });
    }
    const view: LocalView = { services: new Map() };
    const byIndex = new Map<number, ExportTarget>();
    for (const [index, b] of this.maps.be.entries()) {
      if (index === 0 || !(b.flags & XdBackendFlags.XD_BE_F_ACTIVE)) continue;
      const s = services.get(b.service);
      if (!s) continue;
      const addr = Buffer.from(b.addr.subarray(0, s.family === 4 ? 4 : 16));
      const nat = (b.flags & XdBackendFlags.XD_BE_F_NAT) !== 0;
      const forwarding: SyncForwarding = b.flags & XdBackendFlags.XD_BE_F_TUNNEL ? 'tunnel' : nat ? 'nat' : 'dr';
      // NAT: the backend's own port (in its entry), which its replies come from.
      const backendPort = nat ? (b.nat_port ?? s.port) : s.port;
      byIndex.set(index, {
        generation: b.generation,
        entryBase: {
          family: s.family as 4 | 6,
          proto: s.proto,
          forwarding,
          vip: s.vip,
          vipPort: s.port,
          backend: addr,
          backendPort,
        },
      });
      if (b.flags & XdBackendFlags.XD_BE_F_DOWN) continue; // not a backend to install flows on
      const sk = serviceKey(s.family, s.vip, s.port, s.proto);
      let ls = view.services.get(sk);
      if (!ls) view.services.set(sk, (ls = { backends: new Map<string, LocalBackend>() }));
      ls.backends.set(addrKey(addr), {
        index,
        generation: b.generation,
        forwarding,
        ...(nat ? { addr, port: backendPort } : {}),
      });
    }
    this.view = view;
    this.byIndex = byIndex;
    this.viewAt = Date.now();
  }

  // ---- export -------------------------------------------------------------------------------

  private exportTick(): void {
    try {
      const now = Date.now();
      if (now - this.viewAt >= VIEW_REFRESH_MS) this.refreshView();
      const records = this.ring.read();
      const entries = this.entriesOf(records, now);
      if (entries.length || now - this.lastSentAt >= HEARTBEAT_MS) this.send(entries, now);
      this.checkSilence(now);
    } catch (err) {
      this.log.error({ err }, `sync export: ${(err as Error).message}`);
    }
  }

  /**
   * Ring records as entries, the newest report of each flow once. Read in place (offsets of
   * struct xd_sync_event), and an entry's client address is a view of its record: each read is
   * a Buffer of its own, and this runs for every flow at tens of thousands a second.
   */
  entriesOf(records: readonly Buffer[], nowMs: number): SyncEntry[] {
    const nowNs = process.hrtime.bigint();
    const byFlow = new Map<string, SyncEntry>();
    let refreshed = false;
    for (const r of records) {
      if (r.length < SYNC_EVENT_SIZE) continue;
      const kind = KIND_OF_EVENT[r[EV_KIND]!];
      if (!kind) continue;
      const backend = r.readUInt32LE(EV_BACKEND);
      const generation = r.readUInt32LE(EV_GENERATION);
      let t = this.byIndex.get(backend);
      if ((!t || t.generation !== generation) && !refreshed) {
        this.refreshView();
        refreshed = true;
        t = this.byIndex.get(backend);
      }
      if (!t || t.generation !== generation) continue; // the backend went since
      const seen = r.readBigUInt64LE(EV_SEEN_NS);
      const b = t.entryBase;
      const e: SyncEntry = {
        kind,
        family: b.family,
        proto: b.proto,
        forwarding: b.forwarding,
        client: r.subarray(0, b.family === 4 ? 4 : 16),
        clientPort: r.readUInt16BE(EV_SPORT),
        vip: b.vip,
        vipPort: b.vipPort,
        backend: b.backend,
        backendPort: b.backendPort,
        ageMs: nowNs > seen ? Number((nowNs - seen) / 1_000_000n) : 0,
      };
      // The flow: client address and port, VIP, VIP port, protocol, family (bytes 0 to 37).
      byFlow.set(r.toString('latin1', 0, EV_KIND), e);
    }
    void nowMs;
    return [...byFlow.values()];
  }

  private send(entries: readonly SyncEntry[], now: number): void {
    if (!this.sock) return;
    const msgs = encodeMessages(this.key, this.sender, this.nextSeq, now, entries);
    this.sock.send(msgs);
    this.lastSentAt = now;
    this.st.sent.messages += msgs.length;
    this.st.sent.entries += entries.length;
    for (const m of msgs) this.st.sent.bytes += m.length;
  }

  /** Every flow of the flow, probation and takeover tables, as refresh entries (to every peer). */
  sendAll(): void {
    try {
      this.refreshView();
      const nowNs = process.hrtime.bigint();
      const entries: SyncEntry[] = [];
      const add = (
        client: Buffer,
        clientPort: number,
        f: { backend: number; generation: number; last_seen_ns: bigint },
      ): void => {
        const t = this.byIndex.get(f.backend);
        if (!t || t.generation !== f.generation) return;
        const ageNs = nowNs > seenNs(f) ? nowNs - seenNs(f) : 0n;
        entries.push({ ...t.entryBase, kind: 'refresh', client, clientPort, ageMs: Number(ageNs / 1_000_000n) });
      };
      const v4 = (
        k: { saddr: number; sport: number },
        f: { backend: number; generation: number; last_seen_ns: bigint },
      ): void => {
        const c = Buffer.alloc(4);
        c.writeUInt32BE(k.saddr >>> 0);
        add(c, k.sport, f);
      };
      for (const [k, f] of this.flowTables.v4.entries()) v4(k, f);
      for (const [k, f] of this.maps.tko4.entries()) v4(k, f);
      for (const [k, f] of this.maps.prb4.entries()) v4(k, f);
      for (const [k, f] of this.flowTables.v6.entries()) add(Buffer.from(k.saddr), k.sport, f);
      for (const [k, f] of this.maps.tko6.entries()) add(Buffer.from(k.saddr), k.sport, f);
      for (const [k, f] of this.maps.prb6.entries()) add(Buffer.from(k.saddr), k.sport, f);
      if (entries.length) this.send(entries, Date.now());
      this.log.info(
        { flows: entries.length },
        `sync: sent all ${entries.length} flows to the peers (a peer was heard for the first time)`,
      );
    } catch (err) {
      this.log.error({ err }, `sync: sending every flow failed: ${(err as Error).message}`);
    }
  }

  // ---- import -------------------------------------------------------------------------------

  /** One datagram from the socket (public for tests that feed datagrams directly). */
  receive(buf: Buffer, from: string): void {
    let msg;
    try {
      msg = decodeMessage(this.key, buf);
    } catch (e) {
      if (!(e instanceof SyncDecodeError)) throw e;
      this.st.dropped[e.problem]++;
      this.logReject(`sync: dropped a datagram from ${from}: ${e.message}`);
      return;
    }
    if (msg.sender === this.sender) {
      this.st.dropped.own++;
      return;
    }
    let w = this.windows.get(msg.sender);
    const newPeer = !w;
    if (!w) this.windows.set(msg.sender, (w = new ReplayWindow()));
    if (!w.accept(msg.seq)) {
      this.st.dropped.replay++;
      this.logReject(
        `sync: dropped a replayed or stale message from ${from} (sender ${msg.sender}, sequence ${msg.seq})`,
      );
      return;
    }
    const now = Date.now();
    this.st.received.messages++;
    this.st.received.entries += msg.entries.length;
    const peer = this.peerOf(from, msg.sender);
    peer.messages++;
    peer.entries += msg.entries.length;
    peer.heardAt = now;
    // A director heard for the first time (it started, or this one did) gets every flow this
    // one has, at once: ECMP may move flows to it as soon as it announces, before any refresh.
    if (newPeer) setImmediate(() => this.sendAll());
    if (!msg.entries.length) return;
    // Rate: a token bucket of max_import_rate entries a second, a second's worth deep.
    this.tokens = Math.min(
      this.cfg.maxImportRate,
      this.tokens + ((now - this.tokensAt) / 1000) * this.cfg.maxImportRate,
    );
    this.tokensAt = now;
    let entries = msg.entries;
    if (entries.length > this.tokens) {
      const keep = Math.max(0, Math.floor(this.tokens));
      this.st.dropped.rate += entries.length - keep;
      entries = entries.slice(0, keep);
    }
    this.tokens -= entries.length;
    if (!entries.length) return;
    this.install(entries, now - msg.sentAtMs, msg.sentAtMs, now);
  }

  private install(entries: readonly SyncEntry[], transitMs: number, sentAtMs: number, now: number): void {
    if (now - this.viewAt >= VIEW_REFRESH_MS) this.refreshView();
    // The keys of the entries the planner asks about, packed once: looked up with them, and
    // the installs' keys are slices of them.
    let keys4: Buffer = Buffer.alloc(0);
    let keys6: Buffer = Buffer.alloc(0);
    const slot = new Map<SyncEntry, number>();
    const plan = planImport(entries, this.view, process.hrtime.bigint(), transitMs, (es) => {
      const packed = this.packKeys(es, slot);
      keys4 = packed.keys4;
      keys6 = packed.keys6;
      return this.existing(es, slot, keys4, keys6);
    });
    const k4 = this.maps.tko4.key.size;
    const k6 = this.maps.tko6.key.size;
    const vs = this.maps.tko4.value.size;
    const n4 = plan.installs.filter((i) => i.entry.family === 4).length;
    const out4 = { keys: Buffer.alloc(n4 * k4), values: Buffer.alloc(n4 * vs), n: 0 };
    const out6 = {
      keys: Buffer.alloc((plan.installs.length - n4) * k6),
      values: Buffer.alloc((plan.installs.length - n4) * vs),
      n: 0,
    };
    const r4: [Parameters<XdMap<'nrev4'>['update']>[0], Parameters<XdMap<'nrev4'>['update']>[1]][] = [];
    const r6: [Parameters<XdMap<'nrev6'>['update']>[0], Parameters<XdMap<'nrev6'>['update']>[1]][] = [];
    for (const i of plan.installs) {
      const value = { backend: i.backend.index, generation: i.backend.generation, last_seen_ns: i.lastSeenNs };
      const e = i.entry;
      const at = slot.get(e)!;
      if (e.family === 4) {
        keys4.copy(out4.keys, out4.n * k4, at * k4, (at + 1) * k4);
        this.maps.tko4.value.encode(value, out4.values, out4.n++ * vs);
      } else {
        keys6.copy(out6.keys, out6.n * k6, at * k6, (at + 1) * k6);
        this.maps.tko6.value.encode(value, out6.values, out6.n++ * vs);
      }
      if (e.kind !== 'refresh') this.addLag(now - (sentAtMs - e.ageMs));
      // A NAT flow: its reverse entry too (bpf/nat.h), so the backend's replies that reach this
      // director before the client's next packet are rewritten back to VIP:port, not passed. No
      // route yet (route_ns 0, ifindex 0): the first reply routes it with bpf_fib_lookup().
      const be = i.backend;
      if (e.forwarding === 'nat' && be.addr && be.port !== undefined) {
        const rev = {
          vip: Buffer.concat([e.vip, Buffer.alloc(16 - e.vip.length)]),
          vport: e.vipPort,
          peer_mac: Buffer.alloc(6),
          self_mac: Buffer.alloc(6),
          ifindex: 0,
          backend: be.index,
          last_seen_ns: i.lastSeenNs,
          route_ns: 0n,
        };
        const proto = e.proto === 'tcp' ? 6 : 17;
        if (e.family === 4)
          r4.push([
            {
              saddr: be.addr.readUInt32BE(0),
              daddr: e.client.readUInt32BE(0),
              sport: be.port,
              dport: e.clientPort,
              proto,
            },
            rev,
          ]);
        else r6.push([{ saddr: be.addr, daddr: e.client, sport: be.port, dport: e.clientPort, proto, family: 6 }, rev]);
      }
    }
    if (out4.n) this.maps.tko4.updateBatchRawSync(out4.keys, out4.values);
    if (out6.n) this.maps.tko6.updateBatchRawSync(out6.keys, out6.values);
    if (r4.length) this.maps.nrev4.updateBatch(r4);
    if (r6.length) this.maps.nrev6.updateBatch(r6);
    this.st.received.installed += plan.installs.length;
    for (const [why, n] of Object.entries(plan.rejected) as [RejectReason, number][]) this.st.rejected[why] += n;
    for (const why of ['no_service', 'no_backend', 'forwarding'] as const) {
      const ex = plan.examples[why];
      if (ex)
        this.logReject(
          `sync: refused ${plan.rejected[why]} entries (${why.replace('_', ' ')}): e.g. VIP port ${ex.vipPort} backend ${ex.backend.toString('hex')} is not a ${why === 'forwarding' ? `${ex.forwarding} backend` : why === 'no_service' ? 'service' : 'usable backend of that service'} here`,
        );
    }
  }

  /** The flow keys of `es`, IPv4 and IPv6 packed apart; `slot` gets each entry's position in its family's keys. */
  private packKeys(es: readonly SyncEntry[], slot: Map<SyncEntry, number>): { keys4: Buffer; keys6: Buffer } {
    const n4 = es.filter((e) => e.family === 4).length;
    const k4 = this.maps.tko4.key;
    const k6 = this.maps.tko6.key;
    const keys4 = Buffer.alloc(n4 * k4.size);
    const keys6 = Buffer.alloc((es.length - n4) * k6.size);
    let i4 = 0;
    let i6 = 0;
    for (const e of es) {
      const proto = e.proto === 'tcp' ? 6 : 17;
      if (e.family === 4) {
        const k = {
          saddr: e.client.readUInt32BE(0),
          daddr: e.vip.readUInt32BE(0),
          sport: e.clientPort,
          dport: e.vipPort,
          proto,
        };
        k4.encode(k, keys4, i4 * k4.size);
        slot.set(e, i4++);
      } else {
        k6.encode(
          { saddr: e.client, daddr: e.vip, sport: e.clientPort, dport: e.vipPort, proto, family: 6 },
          keys6,
          i6 * k6.size,
        );
        slot.set(e, i6++);
      }
    }
    return { keys4, keys6 };
  }

  /**
   * Where this director has each entry's flow, if anywhere: the flow, probation, embryonic and
   * takeover tables in that order, every key of a message in one native call per family.
   */
  private existing(
    es: readonly SyncEntry[],
    slot: Map<SyncEntry, number>,
    keys4: Buffer,
    keys6: Buffer,
  ): (Existing | undefined)[] {
    const TABLES = ['flow', 'probation', 'embryonic', 'takeover'] as const;
    type Seen = { last_seen_ns: bigint };
    const m = this.maps;
    const r4 = keys4.length
      ? BpfMap.lookupFirst([m.prb4, m.emb4, m.tko4] as unknown as BpfMap<unknown, Seen>[], keys4)
      : undefined;
    const r6 = keys6.length
      ? BpfMap.lookupFirst([m.prb6, m.emb6, m.tko6] as unknown as BpfMap<unknown, Seen>[], keys6)
      : undefined;
    // The flow table is an array of buckets (bpf/maps.h): each key's bucket, hashed as the program does.
    const { v4: t4, v6: t6 } = this.flowTables;
    return es.map((e) => {
      const i = slot.get(e)!;
      const v4 = e.family === 4;
      const ks = v4 ? t4.key.size : t6.key.size;
      const kb = (v4 ? keys4 : keys6).subarray(i * ks, (i + 1) * ks);
      const flow = v4 ? t4.lookupEncoded(kb) : t6.lookupEncoded(kb);
      if (flow) return { table: TABLES[0], lastSeenNs: seenNs(flow) };
      const r = v4 ? r4! : r6!;
      const t = r.found[i]!;
      return t < 0 ? undefined : { table: TABLES[t + 1]!, lastSeenNs: seenNs(r.value(i)!) };
    });
  }

  private addLag(ms: number): void {
    if (this.lags.length < LAG_SAMPLES) this.lags.push(Math.max(0, ms));
    else this.lags[this.lagAt++ % LAG_SAMPLES] = Math.max(0, ms);
  }

  private peerOf(from: string, sender: number): SyncPeerStatus & { heardAt: number | null } {
    let p = this.peers.get(from);
    if (!p)
      this.peers.set(
        from,
        (p = { address: from, sender, messages: 0, entries: 0, lastHeardMsAgo: null, silent: false, heardAt: null }),
      );
    p.sender = sender;
    return p;
  }

  private logReject(msg: string): void {
    const now = Date.now();
    if (now - this.lastRejectLog < 10_000) return;
    this.lastRejectLog = now;
    this.log.warn(msg);
  }

  private silentAlerts: string[] = [];
  private checkSilence(now: number): void {
    const alerts: string[] = [];
    for (const p of this.peers.values()) {
      const since = p.heardAt ?? this.startedAt;
      const silent = now - since >= this.cfg.silentAfterMs;
      if (silent && !p.silent)
        this.log.warn({ peer: p.address }, `sync peer ${p.address} silent for ${now - since} ms`);
      if (!silent && p.silent) this.log.info({ peer: p.address }, `sync peer ${p.address} heard again`);
      p.silent = silent;
      if (silent)
        alerts.push(
          `sync peer ${p.address} has sent nothing for ${Math.round((now - since) / 1000)} s (sync.silent_after ${this.cfg.silentAfterMs} ms): its flows are not synced here; check that it runs and that UDP port ${this.cfg.port} passes`,
        );
    }
    this.silentAlerts = alerts;
  }

  /** The alerts of status(), alone (for the daemon's list). */
  alerts(): string[] {
    return this.status().alerts;
  }

  status(): SyncStatus {
    const now = Date.now();
    const per = this.maps.syncst.lookupPerCpu(0);
    const ex = per ? sumPerCpu(per) : { events: 0n, dropped: 0n };
    const sorted = [...this.lags].sort((a, b) => a - b);
    const q = (f: number): number => sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))]!;
    const alerts = [...this.silentAlerts];
    if (ex.dropped > 0n)
      alerts.push(
        `sync: ${ex.dropped} flow reports lost to a full ring buffer (the daemon fell behind): those flows reach the peers only at their next refresh`,
      );
    return {
      source: this.cfg.source,
      transport: this.cfg.multicast
        ? `multicast ${hostPort(this.cfg.multicast, this.cfg.port)}`
        : `unicast :${this.cfg.port}`,
      peers: [...this.peers.values()].map(({ heardAt, ...p }) => ({
        ...p,
        lastHeardMsAgo: heardAt === null ? null : now - heardAt,
      })),
      sent: { ...this.st.sent },
      received: { ...this.st.received },
      dropped: { ...this.st.dropped },
      rejected: { ...this.st.rejected },
      exported: { events: Number(ex.events), lost: Number(ex.dropped) },
      lagMs: sorted.length
        ? { p50: q(0.5), p99: q(0.99), max: sorted[sorted.length - 1]!, samples: sorted.length }
        : null,
      alerts,
    };
  }
}
