// The pure half of the XDP dataplane: plan(model, desired, limits) -> ordered map writes and the
// next model. No kernel, no addon: the model stands in for what the maps hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DesiredBackend, DesiredService, DesiredState } from '../../../src/state/types';
import { emptyModel, plan, svcKeyString, Model, Plan, Limits } from '../../../src/dataplane/xdp/plan';
import { BE_FLAG, SCHED, SVC_FLAG } from '../../../src/dataplane/xdp/constants';
import { buildMaglev } from '../../../src/maglev';
import { buildIpvsMh } from '../../../src/maglev/ipvs-mh';
import { XdError } from '../../../src/errors';

const RING = 251; // small prime: fast, and every backend still gets slots
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

function service(backends: DesiredBackend[], over: Partial<DesiredService> = {}): DesiredService {
  return {
    name: 'rw',
    vip: '10.77.0.100',
    port: 3306,
    proto: 'tcp',
    family: 4,
    scheduler: 'maglev',
    ring: { kind: 'maglev', size: RING },
    onEmpty: 'pass',
    backends,
    ...over,
  };
}

const state = (...services: DesiredService[]): DesiredState => ({ services });

/** Applies a sequence of desired states from an empty model; returns every plan. */
function applyAll(states: DesiredState[], limits: Limits = LIMITS): Plan[] {
  let model: Model = emptyModel();
  return states.map((s) => {
    const p = plan(model, s, limits);
    model = p.next;
    return p;
  });
}

const svcOf = (p: Plan, s: DesiredService) =>
  p.next.services.get(svcKeyString({ vip: s.vip, port: s.port, proto: s.proto, family: s.family }))!;
const indexOf = (p: Plan, s: DesiredService, b: DesiredBackend) => p.indexes.get(s.name)!.get(b.key)!;

function capacityError(fn: () => unknown): XdError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof XdError, `expected an XdError, got ${String(err)}`);
    assert.equal(err.code, 'XD_ERR_CAPACITY');
    return err;
  }
  assert.fail('expected XD_ERR_CAPACITY');
}

test('service ids and backend indexes stay the same across applies of changed states', () => {
  const a = service([backend(1), backend(2), backend(3)]);
  const b = service([backend(4)], { name: 'ro', port: 3307 });
  const [p1, p2, p3] = applyAll([
    state(a, b),
    state(service([backend(1, { weight: 5 }), backend(3)]), b),
    state(b, service([backend(3), backend(1), backend(5)])),
  ]);
  assert.equal(svcOf(p2!, a).id, svcOf(p1!, a).id);
  assert.equal(svcOf(p3!, a).id, svcOf(p1!, a).id);
  assert.equal(svcOf(p3!, b).id, svcOf(p1!, b).id);
  for (const p of [p2!, p3!]) {
    assert.equal(indexOf(p, a, backend(1)), indexOf(p1!, a, backend(1)));
    assert.equal(indexOf(p, a, backend(3)), indexOf(p1!, a, backend(3)));
    assert.equal(indexOf(p, b, backend(4)), indexOf(p1!, b, backend(4)));
  }
});

test('the same real server in two services gets one backend entry per service', () => {
  const a = service([backend(1)]);
  const b = service([backend(1)], { name: 'ro', port: 3307 });
  const [p] = applyAll([state(a, b)]);
  assert.notEqual(indexOf(p!, a, backend(1)), indexOf(p!, b, backend(1)));
  assert.deepEqual(p!.backendWrites.map((w) => w.serviceId).sort(), [svcOf(p!, a).id, svcOf(p!, b).id].sort());
});

test('a new backend on a reused index gets a fresh generation', () => {
  const [p1, p2, p3] = applyAll([
    state(service([backend(1), backend(2)])),
    state(service([backend(1)])),
    state(service([backend(1), backend(3)])),
  ]);
  const idx2 = p1!.indexes.get('rw')!.get(backend(2).key)!;
  const gen2 = p1!.backendWrites.find((w) => w.index === idx2)!.generation;
  const cleared = p2!.backendClears.find((c) => c.index === idx2)!;
  const w3 = p3!.backendWrites.find((w) => w.address === backend(3).address)!;
  assert.equal(w3.index, idx2, 'the freed index is reused');
  assert.ok(
    w3.generation > cleared.generation && cleared.generation > gen2,
    `generations ${gen2} -> ${cleared.generation} -> ${w3.generation}`,
  );
});

test('a removed backend is cleared with a bumped generation, after the service write that stops using it', () => {
  const [p1, p2] = applyAll([state(service([backend(1), backend(2)])), state(service([backend(1)]))]);
  const idx2 = p1!.indexes.get('rw')!.get(backend(2).key)!;
  const gen2 = p1!.backendWrites.find((w) => w.index === idx2)!.generation;
  assert.deepEqual(p2!.backendClears, [{ index: idx2, generation: gen2 + 1 }]);
  assert.equal(p2!.next.backends.has(idx2), false);
  assert.equal(p2!.next.generations.get(idx2), gen2 + 1);
  // The flip to a ring without it comes first (apply writes rings, services, then clears).
  assert.equal(p2!.serviceWrites.length, 1);
  assert.ok(!p2!.ringWrites[0]!.ring.includes(idx2));
});

test('a changed ring is written to the inactive generation and the service update flips to it', () => {
  const [p1, p2, p3] = applyAll([
    state(service([backend(1), backend(2)])),
    state(service([backend(1), backend(2), backend(3)])),
    state(service([backend(1), backend(3)])),
  ]);
  assert.equal(p1!.ringWrites[0]!.gen, 0);
  assert.equal(p1!.serviceWrites[0]!.activeGen, 0);
  assert.equal(p2!.ringWrites[0]!.gen, 1);
  assert.equal(p2!.serviceWrites[0]!.activeGen, 1);
  assert.equal(p3!.ringWrites[0]!.gen, 0);
  assert.equal(p3!.serviceWrites[0]!.activeGen, 0);
});

test('a ring write lists only the slots that differ from what its generation holds, or none when unknown', () => {
  const s1 = state(service([backend(1), backend(2)]));
  const s2 = state(service([backend(1), backend(2), backend(3)]));
  const [p1, p2, p3] = applyAll([s1, s2, s1]);
  assert.equal(p1!.ringWrites[0]!.slots, undefined, 'generation 0 was never written: full write');
  assert.equal(p2!.ringWrites[0]!.slots, undefined, 'generation 1 was never written: full write');
  // Back to s1 in generation 0, which already holds s1's ring: nothing to write, only the flip.
  assert.deepEqual([...p3!.ringWrites[0]!.slots!], []);
  assert.equal(p3!.serviceWrites[0]!.activeGen, 0);
  const [, , , p4] = applyAll([s1, s2, s1, s2]);
  assert.deepEqual([...p4!.ringWrites[0]!.slots!], []);
  const s3 = state(service([backend(1), backend(2, { weight: 3 })]));
  const [q1, , q3] = applyAll([s1, s2, s3]);
  const ring1 = q1!.ringWrites[0]!.ring;
  const w = q3!.ringWrites[0]!;
  const expected = [...w.ring.keys()].filter((i) => w.ring[i] !== ring1[i]);
  assert.ok(expected.length > 0 && expected.length < RING);
  assert.deepEqual([...w.slots!], expected);
});

test('an unchanged desired state writes nothing', () => {
  const s = state(
    service([backend(1), backend(2, { state: 'draining' })]),
    service([backend(3)], { name: 'ro', port: 3307 }),
  );
  const [, p2] = applyAll([s, structuredClone(s)]);
  assert.deepEqual(
    {
      b: p2!.backendWrites,
      r: p2!.ringWrites,
      s: p2!.serviceWrites,
      d: p2!.serviceDeletes,
      c: p2!.backendClears,
      rs: p2!.resetServiceStats,
      rb: p2!.resetBackendStats,
    },
    { b: [], r: [], s: [], d: [], c: [], rs: [], rb: [] },
  );
});

test('a model adopted from the maps (no ring digest) rewrites each ring once, then nothing', () => {
  const s = state(service([backend(1), backend(2)]));
  const [p1] = applyAll([s]);
  const adopted: Model = {
    ...p1!.next,
    services: new Map([...p1!.next.services].map(([k, v]) => [k, { ...v, ringDigest: undefined, rings: undefined }])),
  };
  const p2 = plan(adopted, s, LIMITS);
  assert.equal(p2.ringWrites.length, 1);
  assert.equal(p2.ringWrites[0]!.gen, 1);
  assert.equal(p2.ringWrites[0]!.slots, undefined);
  assert.deepEqual(p2.backendWrites, []);
  const p3 = plan(p2.next, s, LIMITS);
  assert.deepEqual([p3.ringWrites, p3.serviceWrites], [[], []]);
});

test('a weight change rewrites the ring with shares that follow the new weights', () => {
  const [p1, p2] = applyAll([
    state(service([backend(1), backend(2)])),
    state(service([backend(1), backend(2, { weight: 3 })])),
  ]);
  assert.equal(p2!.ringWrites.length, 1);
  assert.deepEqual(p2!.backendWrites, [], 'the backend entries themselves do not change');
  const idx2 = p1!.indexes.get('rw')!.get(backend(2).key)!;
  const share = p2!.ringWrites[0]!.ring.filter((v) => v === idx2).length / RING;
  assert.ok(Math.abs(share - 0.75) < 0.02, `share ${share}`);
});

test('draining and weight 0 keep the backend entry with the draining flag and leave it out of the ring', () => {
  for (const over of [{ state: 'draining' as const }, { weight: 0 }]) {
    const [p1, p2] = applyAll([
      state(service([backend(1), backend(2)])),
      state(service([backend(1), backend(2, over)])),
    ]);
    const idx2 = p1!.indexes.get('rw')!.get(backend(2).key)!;
    const w = p2!.backendWrites.find((x) => x.index === idx2)!;
    assert.equal(w.flags, BE_FLAG.ACTIVE | BE_FLAG.DRAINING, JSON.stringify(over));
    assert.equal(
      w.generation,
      p1!.backendWrites.find((x) => x.index === idx2)!.generation,
      'established flows stay: same generation',
    );
    assert.ok(!p2!.ringWrites[0]!.ring.includes(idx2));
    assert.deepEqual(p2!.backendClears, []);
  }
});

test('down keeps the backend entry with the down flag and leaves it out of the ring', () => {
  const [p1, p2] = applyAll([
    state(service([backend(1), backend(2)])),
    state(service([backend(1), backend(2, { state: 'down' })])),
  ]);
  const idx2 = p1!.indexes.get('rw')!.get(backend(2).key)!;
  const w = p2!.backendWrites.find((x) => x.index === idx2)!;
  assert.equal(w.flags, BE_FLAG.ACTIVE | BE_FLAG.DOWN);
  assert.ok(!p2!.ringWrites[0]!.ring.includes(idx2));
});

test('a new MAC for the same address bumps the backend generation', () => {
  const [p1, p2] = applyAll([state(service([backend(1)])), state(service([backend(1, { mac: '02:00:00:00:99:99' })]))]);
  const before = p1!.backendWrites[0]!;
  assert.deepEqual(p2!.backendWrites, [{ ...before, mac: '02:00:00:00:99:99', generation: before.generation + 1 }]);
  assert.equal(p2!.ringWrites.length, 0, 'same index, same weights: the ring is unchanged');
});

test('a backend without a MAC is left out of the maps', () => {
  const [p] = applyAll([state(service([backend(1), backend(2, { mac: undefined })]))]);
  assert.deepEqual(
    p!.backendWrites.map((w) => w.address),
    [backend(1).address],
  );
  assert.equal(p!.indexes.get('rw')!.has(backend(2).key), false);
});

test('removing a service deletes its key and clears its backends', () => {
  const a = service([backend(1)]);
  const b = service([backend(2)], { name: 'ro', port: 3307 });
  const [p1, p2] = applyAll([state(a, b), state(a)]);
  assert.deepEqual(p2!.serviceDeletes, [{ vip: b.vip, port: b.port, proto: b.proto, family: b.family }]);
  assert.deepEqual(
    p2!.backendClears.map((c) => c.index),
    [indexOf(p1!, b, backend(2))],
  );
});

test('scheduler and on_empty map to the service value', () => {
  const [p] = applyAll([state(service([backend(1)], { scheduler: 'sh', onEmpty: 'drop' }))]);
  assert.equal(p!.serviceWrites[0]!.sched, SCHED.SH);
  assert.equal(p!.serviceWrites[0]!.flags, SVC_FLAG.EMPTY_DROP);
});

test('more services than max_services is a capacity error naming the limit and the fix', () => {
  const many = Array.from({ length: LIMITS.maxServices + 1 }, (_, i) =>
    service([backend(1)], { name: `s${i}`, port: 4000 + i }),
  );
  const err = capacityError(() => plan(emptyModel(), state(...many), LIMITS));
  assert.match(err.message, /max_services 4/);
  assert.match(err.message, /raise it/);
});

test('more backends than max_backends is a capacity error naming the limit and the fix', () => {
  const many = Array.from({ length: LIMITS.maxBackends }, (_, i) => backend(i + 1));
  const err = capacityError(() => plan(emptyModel(), state(service(many)), LIMITS));
  assert.match(err.message, /max_backends 16/);
  assert.match(err.message, /index 0 is reserved/);
  assert.match(err.message, /raise it/);
});

test('a ring larger than ring_max is a capacity error naming the limit and the fix', () => {
  const err = capacityError(() =>
    plan(emptyModel(), state(service([backend(1)], { ring: { kind: 'maglev', size: 2039 } })), LIMITS),
  );
  assert.match(err.message, /ring size 2039 is larger than the loaded ring_max 1021/);
  assert.match(err.message, /xdp\.ring_size >= 2039/);
  assert.match(err.message, /stop --detach/);
});

test('rr builds the ring with equal weights whatever the configured weights', () => {
  const bs = [backend(1, { weight: 1 }), backend(2, { weight: 5 })];
  const [p] = applyAll([state(service(bs, { scheduler: 'rr' }))]);
  const idx = p!.indexes.get('rw')!;
  const expected = buildMaglev(
    bs.map((b) => ({ id: idx.get(b.key)!, key: b.key, weight: 1 })),
    RING,
  );
  assert.deepEqual(p!.ringWrites[0]!.ring, expected);
  assert.equal(p!.serviceWrites[0]!.sched, SCHED.SEQ);
});

test('an ipvs-mh ring is the kernel mh table of the destinations in reverse config order', () => {
  const bs = [backend(1, { weight: 2 }), backend(2), backend(3, { weight: 3 })];
  const s = service(bs, { ring: { kind: 'ipvs-mh', size: 251 } });
  const [p] = applyAll([state(s)]);
  const idx = p!.indexes.get('rw')!;
  const dests = bs.map((b) => ({
    id: idx.get(b.key)!,
    address: b.address,
    port: b.port,
    family: b.family,
    weight: b.weight,
  }));
  assert.deepEqual(p!.ringWrites[0]!.ring, buildIpvsMh([...dests].reverse(), 251));
  assert.notDeepEqual(p!.ringWrites[0]!.ring, buildIpvsMh(dests, 251), 'the order matters, so the test can fail');
  assert.equal(p!.serviceWrites[0]!.sched, SCHED.IPVS_MH);
});

const ipvsMh = (bs: DesiredBackend[], over: Partial<DesiredService> = {}) =>
  service(bs, { ring: { kind: 'ipvs-mh', size: 251 }, ...over });
const drained = (n: number, weight: number, over: Partial<DesiredBackend> = {}) =>
  backend(n, { weight: 0, state: 'draining', configWeight: weight, ...over });

test('an ipvs-mh ring keeps a drained backend in its slots at its configured weight, as the kernel table built from last_weight does', () => {
  for (const d of [drained(2, 3), backend(2, { weight: 0, configWeight: 3 })]) {
    const [p1, p2] = applyAll([
      state(ipvsMh([backend(1), backend(2, { weight: 3, configWeight: 3 }), backend(3)])),
      state(ipvsMh([backend(1), d, backend(3)])),
    ]);
    const idx = p1!.indexes.get('rw')!;
    const dests = [backend(1), backend(2, { weight: 3 }), backend(3)].map((b) => ({
      id: idx.get(b.key)!,
      address: b.address,
      port: b.port,
      family: b.family,
      weight: b.weight,
    }));
    assert.deepEqual(p1!.ringWrites[0]!.ring, buildIpvsMh([...dests].reverse(), 251));
    assert.deepEqual(p2!.ringWrites, [], `the table does not change on a drain (${d.state}, weight ${d.weight})`);
    const w = p2!.backendWrites.find((x) => x.index === idx.get(d.key))!;
    assert.equal(
      w.flags,
      BE_FLAG.ACTIVE | BE_FLAG.DRAINING,
      'the drain is in the backend flags, where the program walks on',
    );
  }
});

test('an ipvs-mh ring built while backends are drained is the kernel table of their last non-zero weights', () => {
  const bs = [backend(1), drained(2, 2), backend(3), drained(4, 1)];
  const [p] = applyAll([state(ipvsMh(bs))]);
  const idx = p!.indexes.get('rw')!;
  const lw = [1, 2, 1, 1];
  const dests = bs.map((b, i) => ({
    id: idx.get(b.key)!,
    address: b.address,
    port: b.port,
    family: b.family,
    weight: b.weight,
    lastWeight: lw[i]!,
  }));
  const ring = p!.ringWrites[0]!.ring;
  assert.deepEqual(ring, buildIpvsMh([...dests].reverse(), 251));
  assert.ok(ring.includes(idx.get(bs[1]!.key)!) && ring.includes(idx.get(bs[3]!.key)!), 'drained backends hold slots');
});

test('an ipvs-mh ring leaves out down backends, drained ones configured at weight 0, and drained ones without a configured weight', () => {
  const bs = [
    backend(1),
    backend(2, { state: 'down', weight: 0, configWeight: 1 }),
    drained(3, 0),
    backend(4, { state: 'draining', weight: 0 }),
  ];
  const [p] = applyAll([state(ipvsMh(bs))]);
  const idx = p!.indexes.get('rw')!;
  const only1 = buildIpvsMh(
    [{ id: idx.get(bs[0]!.key)!, address: bs[0]!.address, port: 3306, family: 4, weight: 1 }],
    251,
  );
  assert.deepEqual(p!.ringWrites[0]!.ring, only1);
});

test('an ipvs-mh ring with every backend drained or down is empty, so no new flow walks the whole table for nothing', () => {
  const [p1, p2] = applyAll([
    state(ipvsMh([backend(1), backend(2)])),
    state(ipvsMh([drained(1, 1), backend(2, { state: 'down', weight: 0, configWeight: 1 })])),
  ]);
  assert.ok(p1!.ringWrites[0]!.ring.some((v) => v !== 0));
  assert.ok(
    p2!.ringWrites[0]!.ring.every((v) => v === 0),
    'IPVS finds no destination either',
  );
});

test('a drained backend stays out of Maglev rings and of ipvs-mh rings walked in sequence (rr, wrr)', () => {
  for (const s of [service([backend(1), drained(2, 1)]), ipvsMh([backend(1), drained(2, 1)], { scheduler: 'wrr' })]) {
    const [p] = applyAll([state(s)]);
    const idx2 = p!.indexes.get('rw')!.get(backend(2).key)!;
    assert.ok(!p!.ringWrites[0]!.ring.includes(idx2), `${s.ring.kind}/${s.scheduler}`);
  }
});

test('replacing a backend in one apply gives the new one a fresh index and clears only the old one', () => {
  const [p1, p2] = applyAll([state(service([backend(1), backend(2)])), state(service([backend(1), backend(3)]))]);
  const old = indexOf(p1!, service([]), backend(2));
  const fresh = indexOf(p2!, service([]), backend(3));
  assert.notEqual(fresh, old, 'an index still named by the live ring is not reused while a free one exists');
  assert.deepEqual(
    p2!.backendClears.map((c) => c.index),
    [old],
  );
  assert.ok(p2!.next.backends.has(fresh));
});

test('at max_backends a replaced backend index is reused with a newer generation and not cleared', () => {
  const limits: Limits = { ...LIMITS, maxBackends: 3 };
  const [p1, p2] = applyAll(
    [state(service([backend(1), backend(2)])), state(service([backend(1), backend(3)]))],
    limits,
  );
  const old = indexOf(p1!, service([]), backend(2));
  const w = p2!.backendWrites.find((x) => x.address === backend(3).address)!;
  assert.equal(w.index, old);
  assert.ok(w.generation > p1!.backendWrites.find((x) => x.index === old)!.generation);
  assert.deepEqual(p2!.backendClears, []);
  assert.equal(p2!.next.backends.get(old)!.address, backend(3).address);
});

test('a service replacing a removed one in one apply gets a fresh id while one is free', () => {
  const a = service([backend(1)]);
  const b = service([backend(2)], { name: 'ro', port: 3307 });
  const [p1, p2] = applyAll([state(a), state(b)]);
  assert.notEqual(svcOf(p2!, b).id, svcOf(p1!, a).id);
  assert.deepEqual(p2!.serviceDeletes, [{ vip: a.vip, port: a.port, proto: a.proto, family: a.family }]);
});

test('maint is down to the program: the down flag (established flows re-hash) and no ring slots', () => {
  const [p1, p2] = applyAll([
    state(service([backend(1), backend(2)])),
    state(service([backend(1), backend(2, { state: 'maint', weight: 0 })])),
  ]);
  const idx2 = p1!.indexes.get('rw')!.get(backend(2).key)!;
  const w = p2!.backendWrites.find((x) => x.index === idx2)!;
  assert.equal(w.flags, BE_FLAG.ACTIVE | BE_FLAG.DOWN);
  assert.ok(!p2!.ringWrites[0]!.ring.includes(idx2));
});
