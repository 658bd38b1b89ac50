// Issue 20 item 4, the pure half: the order of the XDP maps writes an apply makes (plan.ts,
// followed by dataplane.ts apply()) never lets a new flow find "no usable backend" while the
// service has one before and after the apply. The maps are simulated: after every single write,
// every slot of each service's live ring generation must name a backend the program would give
// a new flow to (be_usable: ACTIVE, neither DRAINING nor DOWN). A slot naming an unusable
// backend is a SYN passed to the kernel (no_backend_pass), which answers RST where the VIP is
// local: a refused connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DesiredBackend, DesiredService, DesiredState } from '../../../src/state/types';
import { emptyModel, plan, Model, Plan, Limits } from '../../../src/dataplane/xdp/plan';
import { BE_FLAG } from '../../../src/dataplane/xdp/constants';

const RING = 251;
const LIMITS: Limits = { maxServices: 4, maxBackends: 16, ringMax: 1021 };

function backend(n: number, over: Partial<DesiredBackend> = {}): DesiredBackend {
  const address = `10.77.0.${10 + n}`;
  return {
    key: `${address}:3306`,
    name: `rs${n}`,
    address,
    port: 3306,
    family: 4,
    weight: 1,
    state: 'active',
    mac: `02:00:00:00:00:${(0x10 + n).toString(16)}`,
    ...over,
  };
}
const service = (backends: DesiredBackend[]): DesiredService => ({
  name: 'rw',
  vip: '10.77.0.100',
  port: 3306,
  proto: 'tcp',
  family: 4,
  scheduler: 'maglev',
  ring: { kind: 'maglev', size: RING },
  onEmpty: 'pass',
  backends,
});
const state = (...bs: DesiredBackend[]): DesiredState => ({ services: [service(bs)] });

const usable = (flags: number) => (flags & (BE_FLAG.ACTIVE | BE_FLAG.DRAINING | BE_FLAG.DOWN)) === BE_FLAG.ACTIVE;

/** What the maps hold: service id -> live generation; (id, gen) -> ring; backend index -> flags. */
class SimMaps {
  svc = new Map<number, 0 | 1>();
  ring = new Map<string, Uint32Array>();
  be = new Map<number, number>();

  /** Slots of live rings naming a backend that cannot take a new flow, as "write: slot -> index (flags)". */
  refused(): string[] {
    const out: string[] = [];
    for (const [id, gen] of this.svc) {
      const r = this.ring.get(`${id}/${gen}`);
      if (!r) continue;
      const bad = new Map<number, number>();
      for (const idx of r) if (idx !== 0 && !usable(this.be.get(idx) ?? 0)) bad.set(idx, (bad.get(idx) ?? 0) + 1);
      for (const [idx, n] of bad)
        out.push(`${n} slot(s) of service ${id} name backend ${idx} (flags ${this.be.get(idx) ?? 0})`);
    }
    return out;
  }

  /** Apply a plan in the order dataplane.ts apply() writes it, checking after every write. */
  apply(p: Plan): string[] {
    const seen: string[] = [];
    const check = (what: string) => {
      for (const r of this.refused()) seen.push(`after ${what}: ${r}`);
    };
    for (const w of p.backendWrites.filter((b) => !b.afterFlip)) {
      this.be.set(w.index, w.flags);
      check(`backend ${w.index} flags ${w.flags}`);
    }
    for (const r of p.ringWrites) {
      this.ring.set(`${r.serviceId}/${r.gen}`, r.ring);
      check(`ring ${r.serviceId}/${r.gen}`);
    }
    for (const s of p.serviceWrites) {
      this.svc.set(s.id, s.activeGen);
      check(`service ${s.id} flip to ${s.activeGen}`);
    }
    for (const w of p.backendWrites.filter((b) => b.afterFlip)) {
      this.be.set(w.index, w.flags);
      check(`backend ${w.index} flags ${w.flags} (after the flip)`);
    }
    for (const c of p.backendClears) {
      this.be.set(c.index, 0);
      check(`clear ${c.index}`);
    }
    return seen;
  }
}

/** Runs the states in order from empty maps; returns what each transition refused, and the final maps. */
function run(states: DesiredState[]): { refused: string[][]; maps: SimMaps; last: Plan } {
  const maps = new SimMaps();
  let model: Model = emptyModel();
  const refused: string[][] = [];
  let last!: Plan;
  for (const s of states) {
    last = plan(model, s, LIMITS);
    refused.push(maps.apply(last));
    model = last.next;
  }
  return { refused, maps, last };
}

const ALL = [backend(1), backend(2), backend(3)];
const CASES: [string, DesiredState[], number][] = [
  // [what, states, expected final flags of rs2]
  [
    'a drain',
    [state(...ALL), state(backend(1), backend(2, { state: 'draining', weight: 0 }), backend(3))],
    BE_FLAG.ACTIVE | BE_FLAG.DRAINING,
  ],
  [
    'a run-time weight 0',
    [state(...ALL), state(backend(1), backend(2, { weight: 0 }), backend(3))],
    BE_FLAG.ACTIVE | BE_FLAG.DRAINING,
  ],
  ['a weight change', [state(...ALL), state(backend(1), backend(2, { weight: 3 }), backend(3))], BE_FLAG.ACTIVE],
  [
    'a backend going down',
    [state(...ALL), state(backend(1), backend(2, { state: 'down' }), backend(3))],
    BE_FLAG.ACTIVE | BE_FLAG.DOWN,
  ],
  [
    'maint',
    [state(...ALL), state(backend(1), backend(2, { state: 'maint', weight: 0 }), backend(3))],
    BE_FLAG.ACTIVE | BE_FLAG.DOWN,
  ],
  [
    'a backend coming back',
    [state(...ALL), state(backend(1), backend(2, { state: 'down' }), backend(3)), state(...ALL)],
    BE_FLAG.ACTIVE,
  ],
  [
    'an undrain',
    [state(...ALL), state(backend(1), backend(2, { state: 'draining', weight: 0 }), backend(3)), state(...ALL)],
    BE_FLAG.ACTIVE,
  ],
  ['a new backend and one removed', [state(...ALL), state(backend(1), backend(3), backend(4))], BE_FLAG.ACTIVE],
];

for (const [what, states, rs2Flags] of CASES) {
  test(`${what}: after every map write each live ring slot names a backend that takes new flows`, () => {
    const { refused, maps, last } = run(states);
    assert.deepEqual(
      refused,
      states.map(() => []),
    );
    // The apply did happen: the ring changed and the backend entry holds its new flags.
    assert.ok(
      last.ringWrites.length === 1 && last.serviceWrites.length === 1,
      'the transition rewrote the ring and flipped the service',
    );
    const idx2 = [...last.next.backends.values()].find((b) => b.address === backend(2).address)?.index;
    if (what.startsWith('a new backend')) assert.equal(idx2, undefined);
    else assert.equal(maps.be.get(idx2!), rs2Flags);
  });
}

test('a backend that stops taking new flows is written after the flip; one that starts, before its ring', () => {
  const m1 = plan(emptyModel(), state(...ALL), LIMITS);
  const drain = plan(m1.next, state(backend(1), backend(2, { state: 'draining', weight: 0 }), backend(3)), LIMITS);
  assert.deepEqual(
    drain.backendWrites.map((w) => [w.address, w.flags, w.afterFlip ?? false]),
    [[backend(2).address, BE_FLAG.ACTIVE | BE_FLAG.DRAINING, true]],
  );
  const back = plan(drain.next, state(...ALL), LIMITS);
  assert.deepEqual(
    back.backendWrites.map((w) => [w.address, w.flags, w.afterFlip ?? false]),
    [[backend(2).address, BE_FLAG.ACTIVE, false]],
  );
});
