// Active-flow counts in `status` and metrics with a full flow table: the walk of
// the flow map must never hold the event loop (it runs the VRRP timers: with
// 100 ms adverts a long stall lets the peer take over). Shown by the entries the
// walk reads between two turns of the event loop, which does not depend on the
// machine's speed or load.
//
// Resources (prefix xfc<pid>): a network namespace xfc<pid> holding the veth peer
// xfc<pid>b, the veth end xfc<pid>a here (program attached in generic mode), pins
// under /sys/fs/bpf/xfc<pid>. All are removed in after().
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pino from 'pino';
import { FLOW_WAYS, flowBucketFirst, getNative, openPinnedXdMap } from '../../../src/bpf';
import {
  MAPS,
  encodeXdFlow,
  encodeXdFlow4Key,
  XD_FLOW4_KEY_SIZE,
  XD_FLOW4_ENTRY_SIZE,
  XdFlowBits,
} from '../../../src/bpf/layouts.generated';
import { XdpDataplane, instancePinDir, type XdpOptions } from '../../../src/dataplane/xdp/dataplane';
import { addr16 } from '../../../src/dataplane/xdp/layout';
import type { DesiredBackend, DesiredState } from '../../../src/state/types';
import { renderMetrics } from '../../../src/daemon/metrics';
import { daemonStatus } from '../../lib/status';

const PREFIX = `xfc${process.pid}`;
const NS = PREFIX;
const IF = `${PREFIX}a`;
const PEER = `${PREFIX}b`;
const PIN_ROOT = `/sys/fs/bpf/${PREFIX}`;
const INSTANCE = 'i1';
const DIR = instancePinDir(PIN_ROOT, INSTANCE);
const OBJ = path.resolve(__dirname, '../../../bpf/xdirector.bpf.o');
const FLOWS = 1_000_000;
const log = pino({ level: 'warn' });

function sh(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function opts(over: Partial<XdpOptions> = {}): XdpOptions {
  // Room for 1M flows without LRU eviction, so the expected counts are exact.
  return {
    instance: INSTANCE,
    ifname: IF,
    mode: 'generic',
    pinDir: PIN_ROOT,
    ringMax: 251,
    maxServices: 2,
    maxBackends: 8,
    flowTableSize: 2 ** 20, // a bucket per configured flow: 2^21 entries a table
    flowIdleSeconds: 60,
    objectPath: OBJ,
    log,
    ...over,
  };
}

function backend(n: number): DesiredBackend {
  const address = `10.202.0.${10 + n}`;
  return {
    key: `${address}:3306`,
    name: `rs${n}`,
    address,
    port: 3306,
    family: 4,
    weight: 1,
    state: 'active',
    mac: `02:00:00:00:02:${(0x10 + n).toString(16)}`,
  };
}
const STATE: DesiredState = {
  services: [
    {
      name: 'rw',
      vip: '10.202.0.100',
      port: 3306,
      proto: 'tcp',
      family: 4,
      scheduler: 'maglev',
      ring: { kind: 'maglev', size: 251 },
      onEmpty: 'pass',
      backends: [backend(1), backend(2), backend(3)],
    },
  ],
};

let dp: XdpDataplane | undefined;

before(() => {
  if (!fs.existsSync('/sys/fs/bpf')) sh('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
  sh('ip', ['netns', 'add', NS]);
  sh('ip', ['link', 'add', IF, 'type', 'veth', 'peer', 'name', PEER, 'netns', NS]);
  sh('ip', ['link', 'set', IF, 'up']);
  fs.mkdirSync(PIN_ROOT);
});

after(async () => {
  try {
    await dp?.close({ keepState: false });
  } catch {
    /* reported by the test that failed */
  }
  try {
    XdpDataplane.detachInstance(PIN_ROOT, INSTANCE, IF, log);
  } catch {
    /* gone */
  }
  try {
    sh('ip', ['link', 'del', IF]);
  } catch {
    /* gone */
  }
  try {
    sh('ip', ['netns', 'del', NS]);
  } catch {
    /* gone */
  }
  fs.rmSync(PIN_ROOT, { recursive: true, force: true });
});

/**
 * Writes `count` flows (client 10.<i> ports) in batches: flow i goes to
 * backends[i % 3]; every 10th is idle (last seen 200 s ago; idle after 60 s), every 7th
 * carries a stale generation, and every 4th (i % 4 == 1) and every 20th of the idle ones
 * carry the closed mark (the client's FIN/RST). Returns the expected active and inactive
 * (closed within 120 s) counts per backend.
 */
function fillFlows(
  count: number,
  backends: { index: number; generation: number }[],
): { active: number[]; inactive: number[]; placed: number } {
  // The flow table is an array of 2-entry buckets (bpf/maps.h): each flow goes into its bucket as
  // the program hashes it (flowBucketFirst), in a free entry; one whose bucket is full is left out
  // (and out of the expected counts), as a hash table of our own leaves it to its takeover table.
  const flow = openPinnedXdMap(DIR, 'flow4');
  const meta = openPinnedXdMap(DIR, 'meta');
  const seed = meta.lookup(0)!.flow_seed; // the instance's flow_seed: the program hashes with it
  meta.close();
  const expected = { active: backends.map(() => 0), inactive: backends.map(() => 0), placed: 0 };
  const now = process.hrtime.bigint();
  const idleSince = now - 200n * 1000000000n;
  const CLOSED = 1n << BigInt(XdFlowBits.XD_FLOW_BIT_CLOSED);
  const batch = 65536;
  const daddr = addr16(STATE.services[0]!.vip).readUInt32BE(0);
  const cap = flow.info.maxEntries;
  const es = XD_FLOW4_ENTRY_SIZE;
  const values = Buffer.alloc(cap * es);
  const kb = Buffer.alloc(XD_FLOW4_KEY_SIZE);
  try {
    for (let i = 0; i < count; i++) {
      const saddr = 0x0a000000 + Math.floor(i / 50000);
      encodeXdFlow4Key({ saddr, daddr, sport: 10000 + (i % 50000), dport: 3306, proto: 6 }, kb, 0);
      const first = flowBucketFirst(kb, cap, seed);
      let at = -1;
      for (let w = 0; w < FLOW_WAYS && at < 0; w++)
        if (values.readUInt32LE((first + w) * es + 16) === 0) at = first + w;
      if (at < 0) continue;
      const b = i % backends.length;
      const idle = i % 10 === 0;
      const stale = i % 7 === 0;
      const closed = i % 4 === 1 || i % 20 === 0;
      kb.copy(values, at * es);
      encodeXdFlow(
        {
          backend: backends[b]!.index,
          generation: stale ? backends[b]!.generation + 1 : backends[b]!.generation,
          last_seen_ns: (idle ? idleSince : now) | (closed ? CLOSED : 0n),
        },
        values,
        at * es + XD_FLOW4_KEY_SIZE,
      );
      expected.placed++;
      if (!idle && !stale) expected[closed ? 'inactive' : 'active'][b]! += 1;
    }
    for (let start = 0; start < cap; start += batch) {
      const n = Math.min(batch, cap - start);
      const keys = Buffer.alloc(n * 4);
      for (let j = 0; j < n; j++) keys.writeUInt32LE(start + j, j * 4);
      assert.equal(flow.updateBatchRawSync(keys, values.subarray(start * es, (start + n) * es)), n);
    }
  } finally {
    flow.close();
  }
  return expected;
}

let expected: { active: number[]; inactive: number[]; placed: number } = { active: [], inactive: [], placed: 0 };

test('with a million flows in the table, status counts per backend only recent flows of its current generation', async () => {
  dp = await XdpDataplane.open(opts({ flowCountsMaxAgeMs: 0 }));
  await dp.apply(STATE);
  const be = openPinnedXdMap(DIR, 'be');
  let backends: { index: number; generation: number }[];
  try {
    backends = STATE.services[0]!.backends.map((b) => {
      const index = dp!.backendIndex('rw', b.key)!;
      return { index, generation: be.lookup(index)!.generation };
    });
  } finally {
    be.close();
  }
  const t0 = Date.now();
  expected = fillFlows(FLOWS, backends);
  process.stdout.write(`# wrote ${FLOWS} flows in ${Date.now() - t0} ms (batches of 65536)\n`);
  // The first status waits for the first count; later ones read the last count.
  const st = await dp.status();
  assert.deepEqual(
    st.services[0]!.backends.map((b) => b.activeFlows),
    expected.active,
  );
  assert.deepEqual(
    st.services[0]!.backends.map((b) => b.inactiveFlows),
    expected.inactive,
    'flows closed by the client (FIN/RST) within 120 s are inactive, as IPVS counts InActConn',
  );
  assert.ok(expected.inactive.every((n) => n > 0) && expected.active.every((n) => n > 0));
  assert.ok(expected.placed > FLOWS * 0.85, `${expected.placed} of ${FLOWS} flows found a free entry in their bucket`);
  assert.equal((st.detail.flowCounts as { entries: number }).entries, expected.placed);
  const t = st.detail.flowCounts.tables?.flow4;
  // flow_table_size rounded up to a power of two of 2-entry buckets, one a configured flow.
  assert.deepEqual([t?.entries, t?.capacity], [expected.placed, 2 ** 21]);
  // Memory per tracked flow, as the kernel charges the map (fdinfo memlock): 32-byte entries.
  assert.ok(t?.bytes && t.bytesPerFlow !== undefined, 'the memlock of the table is reported');
  assert.ok(t.bytesPerFlow >= 32 && t.bytesPerFlow <= 33, `IPv4: ${t.bytesPerFlow} bytes per flow`);
  const t6 = st.detail.flowCounts.tables?.flow6;
  assert.ok(
    t6?.bytesPerFlow !== undefined && t6.bytesPerFlow >= 64 && t6.bytesPerFlow <= 65,
    `IPv6: ${t6?.bytesPerFlow} bytes per flow`,
  );
});

/** Entries the flow counter asks for in one batch lookup (FlowCounter's default slice). */
const SLICE = 1024;
const FLOW_MAPS = new Set<string>(
  [MAPS.flow4, MAPS.flow6, MAPS.prb4, MAPS.prb6, MAPS.tko4, MAPS.tko6].map((m) => m.name),
);

/**
 * Watches the batch lookups of the flow tables (BPF_MAP_LOOKUP_BATCH through the addon's
 * mapLookupBatch: the real call, wrapped to watch it, not replaced) until stop(), and splits
 * them by turns of the event loop: the first lookup of a synchronous stretch queues a
 * setImmediate and a 0 ms timer, which can only run once the stretch has handed the thread back to
 * the loop; a lookup made before either ran is in the same stretch. A loop turn also runs every timer that is
 * due (the timers phase comes before the check phase), which is what VRRP's adverts need.
 * stop() returns the entries the kernel handed over in each stretch and the largest batch asked.
 */
function watchFlowLookups(): { stop(): { stretches: number[]; calls: number; maxAsked: number } } {
  const native = getNative();
  const orig = native.mapLookupBatch;
  const names = new Map<number, string>();
  const stretches: number[] = [];
  let turned = true;
  let calls = 0;
  let maxAsked = 0;
  native.mapLookupBatch = (fd, inBatch, outBatch, keys, values, count) => {
    const r = orig.call(native, fd, inBatch, outBatch, keys, values, count);
    let name = names.get(fd);
    if (name === undefined) names.set(fd, (name = native.mapInfo(fd).name));
    if (!FLOW_MAPS.has(name)) return r;
    calls++;
    maxAsked = Math.max(maxAsked, count);
    if (turned) {
      turned = false;
      stretches.push(0);
      // Whichever runs first ends the stretch: the check phase's immediate, or the next timers
      // phase's 1 ms timer, which runs before the walk's own rest timer (set later, due later)
      // when a busy turn leaves that rest timer due before the check phase comes round.
      const mark = (): void => {
        turned = true;
      };
      setImmediate(mark);
      setTimeout(mark, 0);
    }
    stretches[stretches.length - 1]! += r.count;
    return r;
  };
  return {
    stop() {
      native.mapLookupBatch = orig;
      return { stretches, calls, maxAsked };
    },
  };
}

test('a status and a metrics scrape over a million flows hand the event loop back after every slice of at most 1024 flows', async () => {
  // What VRRP needs: its timers fire on time while the scrape runs. Proven by the work the
  // walk does between two turns of the event loop, counted in map entries, not by timing it (a
  // wall-clock limit measured the machine's load as much as the walk): at most one batch
  // lookup of SLICE entries per turn, where a synchronous walk would take all million in one.
  // The event-loop delay is printed for the record only.
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const watch = watchFlowLookups();
  let seen: ReturnType<ReturnType<typeof watchFlowLookups>['stop']>;
  const t0 = Date.now();
  let scrapeMs: number;
  try {
    // The scrape answers from the last count and starts a new walk (flowCountsMaxAgeMs 0):
    // watched until that walk is done (nothing but promise callbacks runs between its last
    // lookup and the end of the watch), then read from it.
    await dp!.status();
    scrapeMs = Date.now() - t0;
    await dp!.flowCountsSettled();
  } finally {
    seen = watch.stop();
    h.disable();
  }
  // This status starts the next walk; the third test waits for it.
  const st = await dp!.status();
  const text = renderMetrics(daemonStatus(st));
  const walk = seen.stretches;
  process.stdout.write(
    `# status + metrics over ${FLOWS} flows: answered in ${scrapeMs} ms, ${Date.now() - t0} ms wall with the walk (walk ${String((st.detail.flowCounts as { walkMs?: number } | undefined)?.walkMs)} ms): ${seen.calls} batch lookups in ${walk.length} turns of the event loop, at most ${Math.max(...walk)} entries in one; event-loop delay max ${(h.max / 1e6).toFixed(1)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms (not checked: load average ${os.loadavg()[0]!.toFixed(1)})\n`,
  );
  // The flow tables are arrays: a walk reads every entry of both (2^21 each), empty or not.
  const ENTRIES = 2 * 2 ** 21;
  assert.equal(
    walk.reduce((a, b) => a + b, 0),
    ENTRIES,
    'the walk watched is the one whose counts are read: every entry, once',
  );
  assert.ok(seen.maxAsked <= SLICE, `a batch lookup asked for ${seen.maxAsked} entries (slice ${SLICE})`);
  assert.ok(
    Math.max(...walk) <= SLICE,
    `the walk kept the event loop for ${Math.max(...walk)} entries in one turn (at most one slice of ${SLICE})`,
  );
  assert.ok(walk.length >= ENTRIES / SLICE, `${walk.length} turns for ${ENTRIES} entries`);
  assert.deepEqual(
    st.services[0]!.backends.map((b) => b.activeFlows),
    expected.active,
  );
  assert.match(
    text,
    new RegExp(`xdirector_backend_active_flows\\{service="rw",backend="rs1"\\} ${expected.active[0]}\\n`),
  );
  assert.match(
    text,
    new RegExp(
      `node_ipvs_backend_connections_inactive\\{local_address="10\\.202\\.0\\.100",local_port="3306",remote_address="10\\.202\\.0\\.11",remote_port="3306",proto="TCP",local_mark=""\\} ${expected.inactive[0]}\\n`,
    ),
  );
  // The fill against capacity comes from the same walk: the scrape watched here includes it.
  assert.match(text, new RegExp(`xdirector_flow_table_entries\\{table="flow4"\\} ${expected.placed}\\n`));
  assert.match(text, new RegExp(`xdirector_flow_table_capacity\\{table="flow4"\\} ${2 ** 21}\\n`));
});

test("a counters-only status (the daemon's rate sampling every 2 s) starts no walk of the flow map and reports the last counts", async () => {
  await dp!.flowCountsSettled();
  // flowCountsMaxAgeMs is 0 here: a full status would start a new walk every time.
  const a = await dp!.status({ countFlows: false });
  await dp!.flowCountsSettled();
  const b = await dp!.status({ countFlows: false });
  assert.equal(b.detail.flowCounts.countedAt, a.detail.flowCounts.countedAt, 'no walk ran in between');
  assert.deepEqual(
    b.services[0]!.backends.map((x) => x.activeFlows),
    expected.active,
  );
});
