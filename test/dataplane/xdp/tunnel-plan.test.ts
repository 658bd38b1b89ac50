// The XDP plan for tunnel backends: the tunnel flag, the xd_tun_v1 entry written with the
// backend, rewrites on change. Pure: no kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emptyModel, plan, tunnelText } from '../../../src/dataplane/xdp/plan';
import { BE_FLAG } from '../../../src/dataplane/xdp/constants';
import type { DesiredState } from '../../../src/state/types';

function state(tunnel: { encap: 'ipip' | 'gue'; mtu?: number } | undefined, mac = '02:00:00:00:00:fe'): DesiredState {
  return {
    services: [
      {
        name: 's',
        vip: '10.77.0.100',
        port: 3306,
        proto: 'tcp',
        family: 4,
        scheduler: 'maglev',
        ring: { kind: 'maglev', size: 7 },
        onEmpty: 'pass',
        backends: [
          {
            key: '10.88.1.11:3306',
            name: 'a',
            address: '10.88.1.11',
            port: 3306,
            family: 4,
            weight: 1,
            state: 'active',
            mac,
            ...(tunnel
              ? {
                  forwarding: 'tunnel' as const,
                  tunnel: {
                    encap: tunnel.encap,
                    guePort: 6080,
                    source: '10.77.0.2',
                    ...(tunnel.mtu ? { mtu: tunnel.mtu } : {}),
                  },
                }
              : {}),
          },
        ],
      },
    ],
  };
}
const LIMITS = { maxServices: 4, maxBackends: 8, ringMax: 7 };

test('the XDP plan flags a tunnel backend and writes its tunnel with it', () => {
  const p = plan(emptyModel(), state({ encap: 'ipip', mtu: 1500 }), LIMITS);
  assert.equal(p.backendWrites.length, 1);
  const w = p.backendWrites[0]!;
  assert.equal(w.flags, BE_FLAG.ACTIVE | BE_FLAG.TUNNEL);
  assert.deepEqual(w.tunnel, { encap: 'ipip', guePort: 6080, source: '10.77.0.2', mtu: 1500 });
  assert.equal(p.next.backends.get(w.index)!.tunnel, tunnelText(w.tunnel));
});

test('the XDP plan rewrites a backend whose tunnel changed, keeps its generation (same real server), and clears the flag for DR', () => {
  const first = plan(emptyModel(), state({ encap: 'ipip', mtu: 1500 }), LIMITS);
  const same = plan(first.next, state({ encap: 'ipip', mtu: 1500 }), LIMITS);
  assert.equal(same.backendWrites.length, 0, 'nothing changed, nothing written');
  const mtu = plan(first.next, state({ encap: 'ipip', mtu: 1400 }), LIMITS);
  assert.equal(mtu.backendWrites.length, 1);
  assert.equal(mtu.backendWrites[0]!.tunnel!.mtu, 1400);
  const router = plan(first.next, state({ encap: 'ipip', mtu: 1500 }, '02:00:00:00:00:fd'), LIMITS);
  assert.equal(
    router.backendWrites[0]!.generation,
    first.backendWrites[0]!.generation,
    'a new next hop keeps the flows',
  );
  const dr = plan(first.next, state(undefined), LIMITS);
  assert.equal(dr.backendWrites[0]!.flags, BE_FLAG.ACTIVE);
  assert.equal(dr.backendWrites[0]!.tunnel, undefined);
});
