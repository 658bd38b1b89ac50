// switchDataplane's order with dataplanes that record what is done to them: the new one is
// programmed, takes over the old one's live NAT connections (IPVS -> XDP), and only then is the
// old one closed; a failed take-over is logged and the switch still completes. The real kernels
// are in test/vm/daemon.test.ts (phase C: a reply sent right after ipvs -> xdp, while its client
// is silent, is translated at once).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { switchDataplane, type DataplaneConfig } from '../../src/dataplane/select';
import type { Dataplane, DataplaneKind, LiveConnection } from '../../src/state/types';

const CFG = { instance: 'i1', interface: 'eth0', dataplane: 'auto' } as unknown as DataplaneConfig;
const CONN: LiveConnection = {
  family: 4,
  proto: 'tcp',
  client: '10.77.0.10',
  clientPort: 40003,
  vip: '10.77.0.100',
  vipPort: 3315,
  backend: '10.79.0.11',
  backendPort: 3314,
};

function fake(kind: DataplaneKind, calls: string[], extra: Partial<Dataplane> = {}): Dataplane {
  return {
    kind,
    apply: async () => void calls.push(`${kind} apply`),
    status: async () => {
      throw new Error('not used');
    },
    attached: () => true,
    close: async (o?: { keepState?: boolean }) => void calls.push(`${kind} close keepState=${o?.keepState}`),
    ...extra,
  };
}

function logger(): { log: pino.Logger; lines: Array<{ level: number; msg: string }> } {
  const lines: Array<{ level: number; msg: string }> = [];
  return { log: pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) }), lines };
}

test('ipvs -> xdp: XDP takes over the live connections IPVS lists before IPVS is closed', async () => {
  const calls: string[] = [];
  const ipvs = fake('ipvs', calls, {
    liveConnections: async () => (calls.push('ipvs liveConnections'), [CONN]),
  });
  const xdp = fake('xdp', calls, {
    adoptNatConnections: (c) => (calls.push(`xdp adopt ${c.map((x) => x.clientPort).join(',')}`), c.length),
  });
  const { log, lines } = logger();
  const next = await switchDataplane(ipvs, 'xdp', { services: [] }, CFG, log, {
    xdp: async () => xdp,
    ipvs: async () => assert.fail('ipvs opened'),
  });
  assert.equal(next, xdp);
  assert.deepEqual(calls, ['xdp apply', 'ipvs liveConnections', 'xdp adopt 40003', 'ipvs close keepState=false']);
  assert.ok(lines.some((l) => l.msg === 'xdp took over 1 live NAT connections of ipvs'));
});

test('a failed take-over is logged as a warning naming what it costs, and the switch completes', async () => {
  const calls: string[] = [];
  const ipvs = fake('ipvs', calls, {
    liveConnections: async () => {
      throw new Error("ENOENT: no such file or directory, open '/proc/net/ip_vs_conn'");
    },
  });
  const xdp = fake('xdp', calls, { adoptNatConnections: () => assert.fail('nothing to adopt') });
  const { log, lines } = logger();
  assert.equal(
    await switchDataplane(ipvs, 'xdp', { services: [] }, CFG, log, { xdp: async () => xdp, ipvs: async () => ipvs }),
    xdp,
  );
  assert.deepEqual(calls, ['xdp apply', 'ipvs close keepState=false']);
  const w = lines.find((l) => l.level === 40);
  assert.match(
    w?.msg ?? '',
    /xdp could not take over the live NAT connections of ipvs: a reply that comes before its client's next packet leaves untranslated \(ENOENT/,
  );
});

test('xdp -> ipvs: nothing is handed over (the XDP dataplane lists no connections, IPVS adopts none)', async () => {
  const calls: string[] = [];
  const xdp = fake('xdp', calls, {
    adoptNatConnections: () => assert.fail('xdp adopts nothing when it is the old one'),
  });
  const ipvs = fake('ipvs', calls, { liveConnections: async () => assert.fail('the new ipvs is not read') });
  const { log } = logger();
  await switchDataplane(xdp, 'ipvs', { services: [] }, CFG, log, { xdp: async () => xdp, ipvs: async () => ipvs });
  assert.deepEqual(calls, ['ipvs apply', 'xdp close keepState=false']);
});
