// Which VIPs a director announces: only those it can serve.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { servableVips } from '../../src/bgp';

const be = (state: 'active' | 'down' | 'draining', weight: number, mac?: string) =>
  ({ key: 'k', name: 'n', address: '10.0.0.1', port: 3306, weight, state, ...(mac ? { mac } : {}) }) as never;
const M = '02:00:00:00:00:11';

test('a VIP whose every service has an active backend with weight and MAC is servable', () => {
  const r = servableVips({
    announce: ['10.0.0.100'],
    dataplaneReady: true,
    services: [{ name: 'rw', vip: '10.0.0.100', backends: [be('down', 1, M), be('active', 1, M)] }],
  });
  assert.deepEqual([...r.servable], ['10.0.0.100']);
  assert.deepEqual(r.reasons, {});
});

test('a VIP with a service whose pool has no usable backend is withdrawn, naming the service', () => {
  const r = servableVips({
    announce: ['10.0.0.100'],
    dataplaneReady: true,
    services: [
      { name: 'rw', vip: '10.0.0.100', backends: [be('active', 1, M)] },
      { name: 'ro', vip: '10.0.0.100', backends: [be('down', 1, M), be('active', 0, M), be('draining', 1, M)] },
    ],
  });
  assert.equal(r.servable.size, 0);
  assert.equal(r.reasons['10.0.0.100'], 'no usable backend in ro');
});

test('nothing is servable while the XDP program is not attached', () => {
  const r = servableVips({
    announce: ['10.0.0.100'],
    dataplaneReady: false,
    dataplaneReason: 'XDP program not attached to eth0',
    services: [{ name: 'rw', vip: '10.0.0.100', backends: [be('active', 1, M)] }],
  });
  assert.equal(r.servable.size, 0);
  assert.equal(r.reasons['10.0.0.100'], 'XDP program not attached to eth0');
});

test('a VIP with no programmed service is not servable', () => {
  const r = servableVips({ announce: ['10.0.0.101'], dataplaneReady: true, services: [] });
  assert.equal(r.reasons['10.0.0.101'], 'no service with this VIP is programmed yet');
});

test("an active backend whose MAC is not resolved yet holds the VIP back (the ring would differ from the other directors')", () => {
  const r = servableVips({
    announce: ['10.0.0.100'],
    dataplaneReady: true,
    services: [
      {
        name: 'rw',
        vip: '10.0.0.100',
        backends: [be('active', 1, M), { ...(be('active', 1) as object), name: 'r2' } as never],
      },
    ],
  });
  assert.equal(r.servable.size, 0);
  assert.match(r.reasons['10.0.0.100']!, /^MAC of rw\/r2 not resolved yet/);
});

test('nothing is announced before the health checks finish their first round', () => {
  const r = servableVips({
    announce: ['10.0.0.100'],
    dataplaneReady: true,
    healthReady: false,
    services: [{ name: 'rw', vip: '10.0.0.100', backends: [be('active', 1, M)] }],
  });
  assert.equal(r.servable.size, 0);
  assert.match(r.reasons['10.0.0.100']!, /^health checks have not finished their first round/);
});

test('a hold-down withholds every VIP not announced now, with its reason', () => {
  const r = servableVips({
    announce: ['10.0.0.100'],
    dataplaneReady: true,
    holdDown: 'steady for 1.0 s of 2.0 s',
    services: [{ name: 'rw', vip: '10.0.0.100', backends: [be('active', 1, M)] }],
  });
  assert.equal(r.servable.size, 0);
  assert.equal(r.reasons['10.0.0.100'], 'steady for 1.0 s of 2.0 s');
});

test('a hold-down keeps an announced VIP announced and holds back one that comes back (its pool refilling)', () => {
  const svc = (vip: string) => ({ name: `s${vip}`, vip, backends: [be('active', 1, M)] });
  const r = servableVips({
    announce: ['10.0.0.100', '10.0.0.101'],
    dataplaneReady: true,
    holdDown: 'steady for 0.5 s of 2.0 s',
    announced: new Set(['10.0.0.100']),
    services: [svc('10.0.0.100'), svc('10.0.0.101')],
  });
  assert.deepEqual([...r.servable], ['10.0.0.100']);
  assert.equal(r.reasons['10.0.0.101'], 'steady for 0.5 s of 2.0 s');
});

test('a hold-down never hides the real reason: an empty pool is named while backend states are still changing', () => {
  const r = servableVips({
    announce: ['10.0.0.100'],
    dataplaneReady: true,
    holdDown: 'steady for 0.0 s of 3.0 s',
    services: [{ name: 'mysql', vip: '10.0.0.100', backends: [be('down', 1, M)] }],
  });
  assert.equal(r.servable.size, 0);
  assert.match(r.reasons['10.0.0.100']!, /^no usable backend in mysql/);
});
