// Active and inactive flows per backend (IPVS's ActiveConn and InActConn), counted without
// holding the event loop.
//
// Meaning, as close to IPVS as a director that sees only the client's side can get: a flow is
// active while its client has sent neither FIN nor RST (the program marks the flow on the first
// one, enum xd_flow_bits) and it saw a packet within `idleSeconds` (IPVS keeps an idle
// ESTABLISHED connection 900 s); a closed flow is inactive for `closedSeconds` after its last
// packet (IPVS's FIN_WAIT and TIME_WAIT timeouts, 120 s each), then counted nowhere. IPVS also
// counts a connection the server closed first, and one still in SYN_RECV, as inactive: the
// director never sees the server's packets (DR, tunnel), and a flow still in the embryonic
// table is counted nowhere. Flows are read from the flow, probation and takeover tables.
//
// The flow tables (arrays of buckets, bpf/maps.h) hold up to flow_table_size (default 1M)
// entries, rounded up to a power of two of buckets; an empty entry (backend 0) is skipped. Decoding it in
// one go takes seconds of JavaScript on the thread that also runs the VRRP
// timers: with 100 ms adverts one `status` or metrics scrape could make the peer
// take over. So a walk reads the map in slices (BpfMap.scanSliced: one batch
// lookup of `slice` entries, a few hundred microseconds), reads only the three
// fields it needs straight from the raw values, and keeps the result.
//
// Pacing: after `busyMs` of work the walk rests `restMs` (the thread sleeps).
// On a loaded machine a thread that keeps running uses up its share and then
// waits behind every other runnable task when a timer falls due; one that
// uses a fraction of the CPU is woken promptly. A 1M-entry walk takes a few
// seconds of wall clock this way, so readers do not wait for it:
// get() returns the last result at once and, when it is older than `maxAgeMs`,
// starts a new walk in the background (one at a time). Only the very first
// get() waits for a walk. status shows when the counts were taken.
import type { BpfMap } from '../../bpf';
import { LAYOUT, MAPS, XdFlowBits, mapMemlock } from '../../bpf';

/** A map's role (flow4, prb6, ...): a name that stays when a layout change renames the map (metrics labels). */
function roleOf(mapName: string): string {
  return Object.entries(MAPS).find(([, m]) => m.name === mapName)?.[0] ?? mapName;
}

/** Offsets of the fields read here, from the layout generated from the object's BTF. */
function fieldOffset(name: string, struct = 'xd_flow'): number {
  const f = LAYOUT.structs[struct]?.fields.find((x) => x.name === name);
  if (!f) throw new Error(`${struct} has no field ${name} in the generated layout`);
  return f.offset;
}
/** Where a value's struct xd_flow fields start: after the key in a flow table entry, at 0 in the LRU tables' values. */
const FLOW_AT: Record<string, number> = {
  flow4: fieldOffset('backend', 'xd_flow4_entry'),
  flow6: fieldOffset('backend', 'xd_flow6_entry'),
};
const OFF_BACKEND = fieldOffset('backend');
const OFF_GENERATION = fieldOffset('generation');
const OFF_LAST_SEEN = fieldOffset('last_seen_ns');
/** The closed mark in last_seen_ns's high word (enum xd_flow_bits, from the object's BTF). */
const CLOSED_HI = 2 ** (XdFlowBits.XD_FLOW_BIT_CLOSED - 32);

/** A table's fill, and its memory as the kernel charges it (bpf_map memlock, from fdinfo). */
export interface TableFill {
  entries: number;
  capacity: number;
  /** Bytes the kernel charges the map (memlock); absent where fdinfo does not show it. */
  bytes?: number;
  /** bytes / capacity, rounded to a tenth: the memory of one tracked flow at full fill. */
  bytesPerFlow?: number;
}

export interface FlowCountsOptions {
  /** A flow its client has not closed counts as active when it saw a packet within this many seconds. */
  idleSeconds: number;
  /** A flow its client closed (FIN/RST) counts as inactive when it saw a packet within this many seconds; default 120. */
  closedSeconds?: number;
  /** Entries per slice (one batch lookup between two yields). */
  slice?: number;
  /** Work (ms) between two rests; default 2. */
  busyMs?: number;
  /** Rest (ms) after `busyMs` of work; default 6. */
  restMs?: number;
  /** A result older than this is refreshed by the next reader. */
  maxAgeMs?: number;
}

/** Flows per backend index and generation, as of one walk. */
export class FlowCountResult {
  constructor(
    private readonly byBackend: Map<number, Map<number, number>>,
    /** Closed flows (FIN/RST) per backend index and generation. */
    private readonly closedByBackend: Map<number, Map<number, number>>,
    /** Entries seen (active or not). */
    readonly entries: number,
    /** When the walk started (Date.now(): shown as countedAt). */
    readonly at: number,
    /** How long the walk took, in ms. */
    readonly tookMs: number,
    /** When the walk started on the monotonic clock (performance.now(): its age). */
    readonly mono: number = performance.now(),
    /** Entries and max_entries per map walked, by role (flow4, flow6, prb4, prb6, tko4, tko6): the fill against capacity, read by this walk, no walk of its own; with the kernel memory each is charged (memlock) and that per entry of capacity where the kernel shows it. */
    readonly tables: Record<string, TableFill> = {},
  ) {}

  /** Active flows of a backend slot whose current generation is `generation`. */
  active(index: number, generation: number): number {
    return this.byBackend.get(index)?.get(generation) ?? 0;
  }

  /** Inactive flows (closed by the client, within closedSeconds) of a backend slot whose current generation is `generation`. */
  inactive(index: number, generation: number): number {
    return this.closedByBackend.get(index)?.get(generation) ?? 0;
  }
}

export class FlowCounter {
  private last?: FlowCountResult;
  private walking?: Promise<FlowCountResult>;
  private readonly abort = new AbortController();
  private readonly slice: number;
  private readonly maxAgeMs: number;

  /** `maps`: the flow tables (IPv4, IPv6), walked one after the other. */
  constructor(
    private readonly maps: ReadonlyArray<BpfMap<unknown, unknown>>,
    private readonly o: FlowCountsOptions,
  ) {
    this.slice = o.slice ?? 1024;
    this.maxAgeMs = o.maxAgeMs ?? 2000;
  }

  /**
   * The last result; when it is older than `maxAgeMs` a new walk starts in the
   * background. Waits only when there is no result yet.
   */
  async get(): Promise<FlowCountResult> {
    if (!this.last) return this.refresh();
    if (performance.now() - this.last.mono > this.maxAgeMs)
      this.refresh().catch(() => {
        /* kept: the next get() retries; a closed map ends the walk */
      });
    return this.last;
  }

  /** The last result without starting a walk (undefined before the first): for readers that need only the counters. */
  peek(): FlowCountResult | undefined {
    return this.last;
  }

  /** The walk under way, if any (tests: wait for the walk a get() started). */
  settled(): Promise<unknown> {
    return this.walking ?? Promise.resolve();
  }

  /** Starts a walk unless one is under way; resolves with its result. */
  refresh(): Promise<FlowCountResult> {
    if (!this.walking) {
      this.walking = this.walk()
        .then((r) => {
          this.last = r;
          return r;
        })
        .finally(() => {
          this.walking = undefined;
        });
    }
    return this.walking;
  }

  /** Stops a walk under way (close of the dataplane). */
  stop(): void {
    this.abort.abort(new Error('dataplane closed'));
  }

  private async walk(): Promise<FlowCountResult> {
    const started = Date.now();
    const startedMono = performance.now();
    const t0 = process.hrtime.bigint();
    // CLOCK_MONOTONIC, like bpf_ktime_get_ns(). Flows are compared against the
    // start of the walk; the idle window is seconds to minutes, a walk well under one.
    const now = t0;
    const idleNs = BigInt(this.o.idleSeconds) * 1000000000n;
    const cutoff = now > idleNs ? now - idleNs : 0n;
    const cutHi = Number(cutoff >> 32n);
    const cutLo = Number(cutoff & 0xffffffffn);
    const closedNs = BigInt(this.o.closedSeconds ?? 120) * 1000000000n;
    const closedCut = now > closedNs ? now - closedNs : 0n;
    const ccutHi = Number(closedCut >> 32n);
    const ccutLo = Number(closedCut & 0xffffffffn);
    const byBackend = new Map<number, Map<number, number>>();
    const closedByBackend = new Map<number, Map<number, number>>();
    const busyNs = BigInt(Math.round((this.o.busyMs ?? 2) * 1e6));
    const restMs = this.o.restMs ?? 6;
    let since = process.hrtime.bigint();
    const pause = async (): Promise<void> => {
      if (process.hrtime.bigint() - since < busyNs) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        return;
      }
      await new Promise<void>((resolve) => setTimeout(resolve, restMs));
      since = process.hrtime.bigint();
    };
    let entries = 0;
    const tables: Record<string, TableFill> = {};
    for (const [m, map] of this.maps.entries()) {
      // scanSliced yields between its own slices but returns right after its last one: yield here
      // too, or one map's last slice and the next map's first would hold the event loop together.
      if (m > 0) await pause();
      const vs = map.info.valueSize;
      const role = roleOf(map.info.name);
      const at = FLOW_AT[role];
      const base = at ?? 0;
      let held = 0;
      await map.scanSliced(
        (_keys, values, count) => {
          for (let i = 0; i < count; i++) {
            const o = i * vs + base;
            // A flow table's empty entry (backend 0) holds no flow.
            if (at !== undefined && values.readUInt32LE(o + OFF_BACKEND) === 0) continue;
            held++;
            // last_seen_ns >= cutoff, compared as two u32 halves (no BigInt per entry), the closed mark masked.
            let hi = values.readUInt32LE(o + OFF_LAST_SEEN + 4);
            const closed = hi >= CLOSED_HI;
            if (closed) hi -= CLOSED_HI;
            const lo = values.readUInt32LE(o + OFF_LAST_SEEN);
            if (closed ? hi < ccutHi || (hi === ccutHi && lo < ccutLo) : hi < cutHi || (hi === cutHi && lo < cutLo))
              continue;
            const backend = values.readUInt32LE(o + OFF_BACKEND);
            const gen = values.readUInt32LE(o + OFF_GENERATION);
            const into = closed ? closedByBackend : byBackend;
            let g = into.get(backend);
            if (!g) {
              g = new Map();
              into.set(backend, g);
            }
            g.set(gen, (g.get(gen) ?? 0) + 1);
          }
        },
        { slice: this.slice, signal: this.abort.signal, pause },
      );
      entries += held;
      const bytes = mapMemlock(map.fd);
      const capacity = map.info.maxEntries;
      tables[role] = {
        entries: held,
        capacity,
        ...(bytes !== undefined ? { bytes, bytesPerFlow: Math.round((bytes / capacity) * 10) / 10 } : {}),
      };
    }
    return new FlowCountResult(
      byBackend,
      closedByBackend,
      entries,
      started,
      Number(process.hrtime.bigint() - t0) / 1e6,
      startedMono,
      tables,
    );
  }
}
