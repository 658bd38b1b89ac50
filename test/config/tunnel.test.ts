// Tunnel forwarding in the config: the keys and their check-config rules, and the forwarding
// fields they give the desired state. Pure: no kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config';
import { desiredState } from '../../src/desired';
import { forwardingLabel, serviceForwardingLabel } from '../../src/config/forwarding';
import { configProblems as problems } from '../lib/config';

function config(service: string, top = ''): string {
  return `instance: lab
interface: eth0
${top}services:
  - name: mysql
    vip: 10.77.0.100
    port: 3306
    check: none
${service}`;
}

const TUNNEL_TOP = `tunnel:
  source_v4: 10.77.0.2
  source_v6: fd00:77::2
`;

test('forwarding defaults to dr with ipip and GUE port 6080 as the tunnel defaults', () => {
  const c = parseConfig(config('    backends:\n      - address: 10.77.0.11\n'), 'lab.yaml');
  assert.equal(c.services[0]!.forwarding, 'dr');
  assert.equal(c.services[0]!.backends[0]!.forwarding, 'dr');
  assert.equal(c.services[0]!.encap, 'ipip');
  assert.equal(c.services[0]!.guePort, 6080);
  assert.deepEqual(c.tunnel, {});
});

test("a tunnel service takes encap, gue_port and the director's source addresses", () => {
  const c = parseConfig(
    config(
      '    forwarding: tunnel\n    encap: gue\n    gue_port: 5555\n    backends:\n      - address: 10.88.1.11\n      - address: 10.77.0.12\n        forwarding: dr\n',
      `${TUNNEL_TOP}  mtu: 9000\n`,
    ),
    'lab.yaml',
  );
  const s = c.services[0]!;
  assert.deepEqual([s.forwarding, s.encap, s.guePort], ['tunnel', 'gue', 5555]);
  assert.deepEqual(
    s.backends.map((b) => b.forwarding),
    ['tunnel', 'dr'],
  );
  assert.deepEqual(c.tunnel, { sourceV4: '10.77.0.2', sourceV6: 'fd00:77::2', mtu: 9000 });
});

test('a tunnel backend may have the other family than the VIP (4in6, 6in4); a DR backend may not', () => {
  const ok = parseConfig(
    config('    forwarding: tunnel\n    backends:\n      - address: fd00:88::11\n', TUNNEL_TOP),
    'lab.yaml',
  );
  assert.equal(ok.services[0]!.backends[0]!.family, 6);
  const p = problems(config('    backends:\n      - address: fd00:88::11\n'));
  assert.match(
    p.join('\n'),
    /services\[0\]\.backends\[0\]\.address: is IPv6 but the service VIP 10\.77\.0\.100 is IPv4: DR forwarding .*or use forwarding: tunnel/,
  );
});

test('check-config refuses a tunnel backend whose family has no tunnel source address, naming the key to add', () => {
  const p = problems(
    config(
      '    forwarding: tunnel\n    backends:\n      - address: 10.88.1.11\n      - address: fd00:88::11\n',
      'tunnel:\n  source_v6: fd00:77::2\n',
    ),
  );
  assert.equal(p.length, 1, p.join('\n'));
  assert.match(
    p[0]!,
    /services\[0\]\.backends\[0\]\.address: is an IPv4 tunnel endpoint but tunnel\.source_v4 is not set: add the director's IPv4 address/,
  );
});

test('check-config refuses a source address of the wrong family', () => {
  const p = problems(
    config(
      '    forwarding: tunnel\n    backends:\n      - address: 10.88.1.11\n',
      'tunnel:\n  source_v4: fd00:77::2\n',
    ),
  );
  assert.match(p.join('\n'), /tunnel\.source_v4: must be an IPv4 address, got fd00:77::2/);
});

test('check-config refuses GUE to an IPv6 real server (zero UDP checksum is IPv4 only)', () => {
  const p = problems(
    config('    forwarding: tunnel\n    encap: gue\n    backends:\n      - address: fd00:88::11\n', TUNNEL_TOP),
  );
  assert.match(p.join('\n'), /backends\[0\]\.address: GUE is sent with a zero UDP checksum, which only IPv4 allows/);
});

test('check-config refuses encap and gue_port on a DR-only service, and gue_port without encap gue', () => {
  const p = problems(config('    encap: gue\n    gue_port: 6080\n    backends:\n      - address: 10.77.0.11\n'));
  assert.ok(
    p.some((l) => /services\[0\]\.encap: only applies to tunnel forwarding/.test(l)),
    p.join('\n'),
  );
  assert.ok(
    p.some((l) => /services\[0\]\.gue_port: only applies to tunnel forwarding/.test(l)),
    p.join('\n'),
  );
  const q = problems(
    config('    forwarding: tunnel\n    gue_port: 6080\n    backends:\n      - address: 10.88.1.11\n', TUNNEL_TOP),
  );
  assert.match(q.join('\n'), /services\[0\]\.gue_port: only applies to encap: gue/);
});

test('check-config refuses an unknown forwarding or encapsulation with the choices', () => {
  const p = problems(
    config('    forwarding: masq\n    encap: gre\n    backends:\n      - address: 10.77.0.11\n', TUNNEL_TOP),
  );
  assert.ok(
    p.some((l) => /services\[0\]\.forwarding: .*dr.*tunnel.*nat/.test(l)),
    p.join('\n'),
  );
  assert.ok(
    p.some((l) => /services\[0\]\.encap: .*ipip.*gue/.test(l)),
    p.join('\n'),
  );
});

test("the desired state carries each backend's forwarding, source address and path MTU", () => {
  const c = parseConfig(
    config(
      '    forwarding: tunnel\n    encap: gue\n    backends:\n      - address: 10.88.1.11\n      - address: 10.77.0.12\n        forwarding: dr\n',
      TUNNEL_TOP,
    ),
    'lab.yaml',
  );
  const d = desiredState({
    services: c.services,
    health: null,
    drained: new Set(),
    tunnel: c.tunnel,
    macs: new Map([
      ['10.88.1.11', '02:00:00:00:00:fe'],
      ['10.77.0.12', '02:00:00:00:00:12'],
    ]),
    mtus: new Map([['10.88.1.11', 1500]]),
  }).state;
  const [t, dr] = d.services[0]!.backends;
  assert.equal(t!.forwarding, 'tunnel');
  assert.deepEqual(t!.tunnel, { encap: 'gue', guePort: 6080, source: '10.77.0.2', mtu: 1500 });
  assert.equal(dr!.forwarding, 'dr');
  assert.equal(dr!.tunnel, undefined);
  assert.equal(serviceForwardingLabel(d.services[0]!.backends, 'dr'), 'tunnel/gue:6080+dr');
  assert.equal(forwardingLabel(dr!), 'dr');
});

test('check-config refuses a tunnel.mtu that leaves an IPv6 service under 1280 bytes inside the tunnel, naming the key and the fix', () => {
  const v6 = (mtu: number, encap = 'ipip', rs = 'fd00:88::11'): string =>
    config(
      `    forwarding: tunnel\n    encap: ${encap}\n    backends:\n      - address: ${rs}\n`,
      `${TUNNEL_TOP}  mtu: ${mtu}\n`,
    ).replace('vip: 10.77.0.100', 'vip: fd00:77::100');
  // 6in6: 40 bytes of outer header, so 1319 leaves 1279.
  const p = problems(v6(1319));
  assert.ok(
    p.some((l) => l.includes('tunnel.mtu') && l.includes('leaves 1279 bytes') && l.includes('at least 1320')),
    p.join('\n'),
  );
  assert.equal(p.filter((l) => l.includes('tunnel.mtu')).length, 1, 'said once');
  // 6in4 (IPIP over IPv4: 20 bytes) and GUE over IPv4 (32 bytes).
  assert.ok(
    problems(v6(1299, 'ipip', '10.88.1.11')).some((l) => l.includes('tunnel.mtu') && l.includes('at least 1300')),
  );
  assert.ok(
    problems(v6(1311, 'gue', '10.88.1.11')).some((l) => l.includes('tunnel.mtu') && l.includes('at least 1312')),
  );
  // Exactly 1280 inside is fine, and an IPv4 service may have any MTU from 1280.
  parseConfig(v6(1320), 'lab.yaml');
  parseConfig(v6(1300, 'ipip', '10.88.1.11'), 'lab.yaml');
  parseConfig(
    config('    forwarding: tunnel\n    backends:\n      - address: fd00:88::11\n', `${TUNNEL_TOP}  mtu: 1280\n`),
    'lab.yaml',
  );
});
