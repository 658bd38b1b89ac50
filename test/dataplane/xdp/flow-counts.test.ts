// Active-flow counts in `status` and metrics with a full flow table: the walk of
// the flow map must never hold the event loop (it runs the VRRP timers: with
// 100 ms adverts a long stall lets the peer take over).
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
import { openPinnedXdMap } from '../../../src/bpf';
import {
  encodeXdFlow,
  encodeXdFlow4Key,
  XD_FLOW4_KEY_SIZE,
  XD_FLOW_SIZE,
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
    flowTableSize: FLOWS + 65536,
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
): { active: number[]; inactive: number[] } {
  const flow = openPinnedXdMap(DIR, 'flow4');
  const expected = { active: backends.map(() => 0), inactive: backends.map(() => 0) };
  const now = process.hrtime.bigint();
  const idleSince = now - 200n * 1000000000n;
  const CLOSED = 1n << BigInt(XdFlowBits.XD_FLOW_BIT_CLOSED);
  const batch = 65536;
  const daddr = addr16(STATE.services[0]!.vip).readUInt32BE(0);
  try {
    for (let start = 0; start < count; start += batch) {
      const n = Math.min(batch, count - start);
      const keys = Buffer.alloc(n * XD_FLOW4_KEY_SIZE);
      const values = Buffer.alloc(n * XD_FLOW_SIZE);
      for (let j = 0; j < n; j++) {
        const i = start + j;
        const saddr = 0x0a000000 + Math.floor(i / 50000);
        encodeXdFlow4Key(
          { saddr, daddr, sport: 10000 + (i % 50000), dport: 3306, proto: 6 },
          keys,
          j * XD_FLOW4_KEY_SIZE,
        );
        const b = i % backends.length;
        const idle = i % 10 === 0;
        const stale = i % 7 === 0;
        const closed = i % 4 === 1 || i % 20 === 0;
        encodeXdFlow(
          {
            backend: backends[b]!.index,
            generation: stale ? backends[b]!.generation + 1 : backends[b]!.generation,
            last_seen_ns: (idle ? idleSince : now) | (closed ? CLOSED : 0n),
          },
          values,
          j * XD_FLOW_SIZE,
        );
        if (!idle && !stale) expected[closed ? 'inactive' : 'active'][b]! += 1;
      }
      assert.equal(flow.updateBatchRawSync(keys, values), n);
    }
  } finally {
    flow.close();
  }
  return expected;
}

let expected: { active: number[]; inactive: number[] } = { active: [], inactive: [] };

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
  assert.equal((st.detail.flowCounts as { entries: number }).entries, FLOWS);
  assert.deepEqual(st.detail.flowCounts.tables?.flow4, { entries: FLOWS, capacity: FLOWS + 65536 });
});

test('a status and a metrics scrape over a million flows never delay the event loop by 20 ms or more', async () => {
  // What VRRP needs: its timers fire on time while the scrape runs. The machine
  // is shared (load average well above its 2 cores at times), which alone can
  // delay a timer by 10-100 ms; so each scrape is followed by an idle window of
  // the same length, measured the same way, and a run passes when the scrape's
  // max delay is under 20 ms, or when the machine alone stalled the loop as long
  // (scrape max within 5 ms of the idle window's). Up to three runs; a synchronous
  // walk stalls the loop for seconds on every run, so this still tells them apart.
  const runs: string[] = [];
  let passed = false;
  for (let attempt = 0; attempt < 3 && !passed; attempt++) {
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    // The monitor records from its second tick on: let it tick before the scrape.
    await new Promise((r) => setTimeout(r, 10));
    const t0 = Date.now();
    // The scrape answers from the last count and starts a new walk (flowCountsMaxAgeMs 0):
    // measured until that walk is done, then read from it.
    await dp!.status();
    const scrapeMs = Date.now() - t0;
    await dp!.flowCountsSettled();
    const st = await dp!.status();
    const text = renderMetrics(daemonStatus(st));
    const took = Date.now() - t0;
    // Let the monitor's timer fire once more: a stall that ends with the scrape is recorded then.
    await new Promise((r) => setTimeout(r, 10));
    h.disable();
    const idle = monitorEventLoopDelay({ resolution: 1 });
    idle.enable();
    await new Promise((r) => setTimeout(r, took + 20));
    idle.disable();
    const maxMs = h.max / 1e6;
    const idleMs = idle.max / 1e6;
    runs.push(`${maxMs.toFixed(1)} ms (idle ${idleMs.toFixed(1)} ms)`);
    process.stdout.write(
      `# status + metrics over ${FLOWS} flows: answered in ${scrapeMs} ms, ${took} ms wall with the walk (walk ${String((st.detail.flowCounts as { walkMs?: number } | undefined)?.walkMs)} ms), event-loop delay max ${maxMs.toFixed(1)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms; idle window of the same length: max ${idleMs.toFixed(1)} ms; load average ${os.loadavg()[0]!.toFixed(1)}\n`,
    );
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
    // The fill against capacity comes from the same walk: the scrape measured here includes it.
    assert.match(text, new RegExp(`xdirector_flow_table_entries\\{table="flow4"\\} ${FLOWS}\\n`));
    assert.match(text, new RegExp(`xdirector_flow_table_capacity\\{table="flow4"\\} ${FLOWS + 65536}\\n`));
    passed = maxMs < 20 || maxMs <= idleMs + 5;
  }
  await dp!.flowCountsSettled();
  assert.ok(
    passed,
    `event-loop delay max during the scrape: ${runs.join(', ')} (limit 20 ms, or within 5 ms of an idle window of the same length)`,
  );
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
