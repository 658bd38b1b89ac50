// The pure half of the IPVS dataplane: desired state -> IPVS services/dests and the difference
// against what the kernel has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DesiredBackend, DesiredService } from '../../../src/state/types';
import { AF_INET, IPPROTO_TCP, IpvsDestEntry } from '../../../src/dataplane/ipvs/codec';
import {
  KernelService,
  describeOp,
  inverseOps,
  mapScheduler,
  planIpvs,
  serviceKeyString,
  toIpvsTargets,
} from '../../../src/dataplane/ipvs/plan';

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
    ...over,
  };
}

function service(backends: DesiredBackend[], over: Partial<DesiredService> = {}): DesiredService {
  return {
    name: 'mysql-rw',
    vip: '10.77.0.100',
    port: 3306,
    proto: 'tcp',
    family: 4,
    scheduler: 'maglev',
    ring: { kind: 'ipvs-mh', size: 4093 },
    onEmpty: 'pass',
    backends,
    ...over,
  };
}

function kernelOf(
  svc: DesiredService,
  dests: Array<[number, number]>,
  sched = 'mh',
  flags = 0x1a,
): Map<string, KernelService> {
  const s = {
    af: AF_INET,
    protocol: IPPROTO_TCP,
    addr: svc.vip,
    port: svc.port,
    schedName: sched,
    flags,
    timeout: 0,
    netmask: 0xffffffff,
  } as const;
  const ds: IpvsDestEntry[] = dests.map(([n, w]) => ({
    addr: `10.77.0.${10 + n}`,
    port: 3306,
    addrFamily: AF_INET,
    fwdMethod: 3,
    weight: w,
    uThreshold: 0,
    lThreshold: 0,
    activeConns: 0,
    inactConns: 0,
    persistConns: 0,
  }));
  return new Map([[serviceKeyString(s), { service: { ...s }, dests: ds }]]);
}

test('maglev maps to mh with mh-port and mh-fallback, sh to sh with sh-fallback, the rest to themselves', () => {
  assert.deepEqual(mapScheduler('maglev'), { schedName: 'mh', flags: 0x18 });
  assert.deepEqual(mapScheduler('sh'), { schedName: 'sh', flags: 0x08 });
  for (const s of ['wrr', 'rr', 'lc'] as const) assert.deepEqual(mapScheduler(s), { schedName: s, flags: 0 });
});

test('an unknown scheduler is refused naming the service and the valid choices', () => {
  assert.throws(() => toIpvsTargets({ services: [service([backend(1)], { scheduler: 'wlc' as never })] }), {
    code: 'XD_ERR_IPVS',
    message: 'IPVS: service mysql-rw: unknown scheduler "wlc" — use one of maglev, sh, wrr, rr, lc',
  });
});

test('a negative or fractional weight is refused before any kernel call', () => {
  assert.throws(
    () => toIpvsTargets({ services: [service([backend(1, { weight: -1 })])] }),
    /backend rs1: weight -1 is not an integer 0\.\.2147483647/,
  );
  assert.throws(() => toIpvsTargets({ services: [service([backend(1, { weight: 1.5 })])] }), /weight 1\.5/);
});

test('a backend of another address family than the VIP is refused', () => {
  assert.throws(
    () => toIpvsTargets({ services: [service([backend(1, { address: 'fd00::11', family: 6 })])] }),
    /not IPv4 like the VIP/,
  );
});

test('draining backends get weight 0 and down backends are left out', () => {
  const [t] = toIpvsTargets({
    services: [
      service([backend(1, { weight: 5 }), backend(2, { state: 'draining', weight: 5 }), backend(3, { state: 'down' })]),
    ],
  });
  assert.deepEqual(
    t!.dests.map((d) => [d.addr, d.weight, d.fwdMethod]),
    [
      ['10.77.0.11', 5, 3],
      ['10.77.0.12', 0, 3],
    ],
  );
  assert.equal(t!.backends.get('10.77.0.13:3306')?.state, 'down');
});

test('an empty kernel gets the service then each dest added', () => {
  const ops = planIpvs(toIpvsTargets({ services: [service([backend(1), backend(2)])] }), new Map(), () => false);
  assert.deepEqual(ops.map(describeOp), [
    'add TCP 10.77.0.100:3306 scheduler mh (mh-fallback,mh-port)',
    'add dest 10.77.0.11:3306 weight 1 to TCP 10.77.0.100:3306',
    'add dest 10.77.0.12:3306 weight 1 to TCP 10.77.0.100:3306',
  ]);
});

test('a kernel that already matches needs no change', () => {
  const svc = service([backend(1), backend(2, { weight: 3 })]);
  assert.deepEqual(
    planIpvs(
      toIpvsTargets({ services: [svc] }),
      kernelOf(svc, [
        [2, 3],
        [1, 1],
      ]),
      () => true,
    ),
    [],
  );
});

test('weight changes, additions and removals come out as adds first, then updates, then deletes', () => {
  const svc = service([backend(1, { weight: 2 }), backend(3), backend(2, { state: 'down' })]);
  const ops = planIpvs(
    toIpvsTargets({ services: [svc] }),
    kernelOf(svc, [
      [1, 1],
      [2, 1],
    ]),
    () => true,
  );
  assert.deepEqual(ops.map(describeOp), [
    'add dest 10.77.0.13:3306 weight 1 to TCP 10.77.0.100:3306',
    'update dest 10.77.0.11:3306 of TCP 10.77.0.100:3306: weight 1 -> 2',
    'delete dest 10.77.0.12:3306 from TCP 10.77.0.100:3306 (backend rs2 is down)',
  ]);
});

test('a service that exists with another scheduler is updated, not recreated', () => {
  const svc = service([backend(1)]);
  const ops = planIpvs(toIpvsTargets({ services: [svc] }), kernelOf(svc, [[1, 1]], 'wrr', 0x2), () => true);
  assert.equal(ops.length, 1);
  assert.equal(ops[0]!.op, 'edit-service');
  assert.match(describeOp(ops[0]!), /scheduler wrr -> mh/);
});

test('a kernel service not in the desired state is deleted only when xdirector owns it', () => {
  const other = service([backend(1)], { vip: '10.77.0.200' });
  const k = kernelOf(other, [[1, 1]]);
  assert.deepEqual(
    planIpvs([], k, () => false),
    [],
  );
  assert.deepEqual(
    planIpvs([], k, () => true).map((o) => o.op),
    ['del-service'],
  );
});

test('the same VIP:port/protocol twice in the desired state is refused', () => {
  assert.throws(
    () => toIpvsTargets({ services: [service([backend(1)]), service([backend(2)], { name: 'dup' })] }),
    /defined twice/,
  );
});

test('every operation has an inverse that restores the old state, including a deleted service with its dests', () => {
  const svc = service([backend(1)]);
  const k = kernelOf(svc, [[1, 4]]);
  const [del] = planIpvs([], k, () => true);
  assert.deepEqual(inverseOps(del!).map(describeOp), [
    'add TCP 10.77.0.100:3306 scheduler mh (mh-fallback,mh-port)',
    'add dest 10.77.0.11:3306 weight 4 to TCP 10.77.0.100:3306',
  ]);
});

test('sh with an IPVS-compatible ring maps to mh with mh-fallback and without mh-port, as the XDP ring hashes it', () => {
  assert.deepEqual(mapScheduler('sh', 's', 'ipvs-mh'), { schedName: 'mh', flags: 0x08 });
  assert.deepEqual(mapScheduler('sh', 's', 'maglev'), { schedName: 'sh', flags: 0x08 });
  assert.deepEqual(mapScheduler('maglev', 's', 'ipvs-mh'), { schedName: 'mh', flags: 0x18 });
});

test('a drained dest is added with its configured weight and then set to 0, so mh keeps its slots (last_weight)', () => {
  const svc = service([backend(1), backend(2, { state: 'draining', weight: 0, configWeight: 3 })]);
  const ops = planIpvs(toIpvsTargets({ services: [svc] }), new Map(), () => false);
  const d2 = ops.filter((o) => (o.op === 'add-dest' || o.op === 'edit-dest') && o.dest.addr === '10.77.0.12');
  assert.deepEqual(
    d2.map((o) => [o.op, (o as { dest: { weight: number } }).dest.weight]),
    [
      ['add-dest', 3],
      ['edit-dest', 0],
    ],
  );
  // Already in the kernel at weight 0: nothing to do.
  assert.deepEqual(
    planIpvs(
      toIpvsTargets({ services: [svc] }),
      kernelOf(svc, [
        [2, 0],
        [1, 1],
      ]),
      () => true,
    ),
    [],
  );
});

test('maint removes the dest (expire_nodest_conn then ends its connections) while a drain keeps it at weight 0', () => {
  const svc = service([
    backend(1),
    backend(2, { state: 'maint', weight: 0 }),
    backend(3, { state: 'draining', weight: 0 }),
  ]);
  const ops = planIpvs(
    toIpvsTargets({ services: [svc] }),
    kernelOf(svc, [
      [1, 1],
      [2, 1],
      [3, 1],
    ]),
    () => true,
  );
  assert.deepEqual(ops.map(describeOp), [
    'update dest 10.77.0.13:3306 of TCP 10.77.0.100:3306: weight 1 -> 0',
    'delete dest 10.77.0.12:3306 from TCP 10.77.0.100:3306 (backend rs2 is maint)',
  ]);
});

test('a nat backend becomes a masquerading dest on its own port, so VIP:3307 reaches backend:3306', () => {
  const [t] = toIpvsTargets({
    services: [
      service(
        [backend(1, { forwarding: 'nat' }), backend(2, { forwarding: 'nat', port: 3310, key: '10.77.0.12:3310' })],
        { port: 3307 },
      ),
    ],
  });
  assert.deepEqual(
    t!.dests.map((d) => [d.addr, d.port, d.fwdMethod]),
    [
      ['10.77.0.11', 3306, 0],
      ['10.77.0.12', 3310, 0],
    ],
  );
  assert.equal(t!.service.port, 3307);
  const ops = planIpvs([t!], new Map(), () => false);
  assert.deepEqual(ops.map(describeOp).slice(1), [
    'add dest 10.77.0.11:3306 weight 1 to TCP 10.77.0.100:3307',
    'add dest 10.77.0.12:3310 weight 1 to TCP 10.77.0.100:3307',
  ]);
});

test('a kernel dest of the same address and port but another forwarding method is changed in place, not re-added', () => {
  const svc = service([backend(1, { forwarding: 'nat' })]);
  const ops = planIpvs(toIpvsTargets({ services: [svc] }), kernelOf(svc, [[1, 1]]), () => true);
  assert.deepEqual(ops.map(describeOp), [
    'update dest 10.77.0.11:3306 of TCP 10.77.0.100:3306: forwarding method 3 -> 0',
  ]);
});

test('a nat backend of another family than the VIP is refused: NAT stays within one family', () => {
  assert.throws(
    () => toIpvsTargets({ services: [service([backend(1, { address: 'fd00::11', family: 6, forwarding: 'nat' })])] }),
    /NAT rewrites addresses within one family/,
  );
});
