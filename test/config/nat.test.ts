// NAT forwarding in the config: forwarding: nat per service, the backend port it may translate
// to, the nat section, the check-config rules, and what the desired state carries. Pure: no kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config';
import { desiredState } from '../../src/desired';
import { forwardingLabel, serviceForwardingLabel } from '../../src/config/forwarding';
import { configProblems as problems } from '../lib/config';

function config(service: string, top = '', vip = '10.77.0.100'): string {
  return `instance: lab
interface: eth0
${top}services:
  - name: mysql
    vip: ${vip}
    port: 3307
    check: none
${service}`;
}

const NAT3 =
  '    forwarding: nat\n    backends:\n      - { address: 10.88.0.11, port: 3306 }\n      - { address: 10.88.0.12, port: 3306, weight: 2 }\n';

test("a nat service translates VIP:3307 to each backend's own port", () => {
  const c = parseConfig(config(NAT3), 'lab.yaml');
  const s = c.services[0]!;
  assert.equal(s.forwarding, 'nat');
  assert.deepEqual(
    s.backends.map((b) => [b.key, b.port, b.forwarding]),
    [
      ['10.88.0.11:3306', 3306, 'nat'],
      ['10.88.0.12:3306', 3306, 'nat'],
    ],
  );
});

test('without a nat section NAT is one-armed on the top-level interface; nat.interface makes it two-armed', () => {
  assert.deepEqual(parseConfig(config(NAT3), 'lab.yaml').nat, { interface: 'eth0', twoArmed: false });
  assert.deepEqual(parseConfig(config(NAT3, 'nat:\n  interface: eth1\n'), 'lab.yaml').nat, {
    interface: 'eth1',
    twoArmed: true,
  });
  assert.deepEqual(parseConfig(config(NAT3, 'nat:\n  interface: eth0\n'), 'lab.yaml').nat, {
    interface: 'eth0',
    twoArmed: false,
  });
});

test('check-config refuses a bad nat.interface and unknown nat keys', () => {
  const p = problems(config(NAT3, 'nat:\n  interface: "a/b"\n  gateway: 10.88.0.1\n'));
  assert.ok(
    p.some((l) => /nat\.interface: is not a valid interface name/.test(l)),
    p.join('\n'),
  );
  assert.ok(
    p.some((l) => /nat\.gateway: unknown key/.test(l)),
    p.join('\n'),
  );
});

test('nat.interface with no nat service is a warning, not an error', () => {
  const c = parseConfig(
    config('    backends:\n      - address: 10.77.0.11\n', 'nat:\n  interface: eth1\n').replace(
      'port: 3307',
      'port: 3306',
    ),
    'lab.yaml',
  );
  assert.ok(
    c.warnings.some((w) => w.startsWith('nat.interface eth1 is set but no service forwards with nat')),
    c.warnings.join('\n'),
  );
  assert.deepEqual(
    parseConfig(config(NAT3, 'nat:\n  interface: eth1\n'), 'lab.yaml').warnings.filter((w) => w.startsWith('nat.')),
    [],
  );
});

test('a backend cannot leave its nat service, nor choose nat in a dr or tunnel service', () => {
  const out = problems(
    config('    forwarding: nat\n    backends:\n      - { address: 10.88.0.11, port: 3306, forwarding: dr }\n'),
  );
  assert.deepEqual(out, [
    'lab.yaml: services[0].backends[0].forwarding: is dr but service mysql forwards with nat: NAT is chosen per service, so a backend cannot leave it: remove forwarding from this backend, or give it a service of its own with forwarding: dr (line 10)',
  ]);
  const into = problems(
    config('    backends:\n      - { address: 10.77.0.11, forwarding: nat }\n').replace('port: 3307', 'port: 3306'),
  );
  assert.deepEqual(into, [
    "lab.yaml: services[0].backends[0].forwarding: is nat but service mysql forwards with dr: NAT is chosen per service (as keepalived's lb_kind is per virtual_server), because every backend's replies must come back through the director: set forwarding: nat on the service, or remove forwarding from this backend (line 9)",
  ]);
  // Saying nat again on a nat service's backend is no override.
  assert.equal(
    parseConfig(
      config('    forwarding: nat\n    backends:\n      - { address: 10.88.0.11, port: 3306, forwarding: nat }\n'),
      'lab.yaml',
    ).services[0]!.backends[0]!.forwarding,
    'nat',
  );
});

test('a port mismatch is refused for dr and tunnel backends and names forwarding: nat as a fix', () => {
  const p = problems(config('    backends:\n      - { address: 10.77.0.11, port: 3306 }\n'));
  assert.equal(p.length, 1, p.join('\n'));
  assert.match(
    p[0]!,
    /backends\[0\]\.port: is 3306 but the service port is 3307: .*DR rewrites only the MAC.*forward the service with forwarding: nat \(which translates 3307 to 3306\)/,
  );
});

test("a NAT backend has the VIP's family: no NAT64", () => {
  const p = problems(config('    forwarding: nat\n    backends:\n      - { address: "fd00:88::11", port: 3306 }\n'));
  assert.deepEqual(p, [
    'lab.yaml: services[0].backends[0].address: is IPv6 but the service VIP 10.77.0.100 is IPv4: NAT rewrites the addresses within one family (no NAT64): use an IPv4 address of this real server (line 10)',
  ]);
  const v6 = parseConfig(
    config('    forwarding: nat\n    backends:\n      - { address: "fd00:88::11", port: 3306 }\n', '', 'fd00:77::100'),
    'lab.yaml',
  );
  assert.equal(v6.services[0]!.backends[0]!.key, '[fd00:88::11]:3306');
});

test('a nat service whose backends all listen on 3306 is checked as MySQL by default; another port is tcp', () => {
  const text = (ports: number[]) =>
    `instance: lab\ninterface: eth0\nmonitor:\n  user: m\n  password_env: PW\nservices:\n  - name: mysql\n    vip: 10.77.0.100\n    port: 3307\n    forwarding: nat\n    backends:\n${ports.map((p, i) => `      - { address: 10.88.0.${11 + i}, port: ${p} }\n`).join('')}`;
  assert.equal(parseConfig(text([3306, 3306]), 'lab.yaml').services[0]!.check, 'mysql');
  assert.equal(parseConfig(text([3306, 3308]), 'lab.yaml').services[0]!.check, 'tcp');
  // Without a monitor the mysql default is refused with the usual fix.
  assert.match(
    problems(config(NAT3).replace('    check: none\n', '')).join('\n'),
    /monitor is required: service mysql uses check: mysql/,
  );
});

test("the desired state carries forwarding nat, each backend's own port, and the nat label", () => {
  const c = parseConfig(config(NAT3), 'lab.yaml');
  const d = desiredState({
    services: c.services,
    health: null,
    drained: new Set(),
    macs: new Map([
      ['10.88.0.11', '02:00:00:00:00:11'],
      ['10.88.0.12', '02:00:00:00:00:12'],
    ]),
  }).state;
  const s = d.services[0]!;
  assert.equal(s.port, 3307);
  assert.deepEqual(
    s.backends.map((b) => [b.address, b.port, b.forwarding, b.weight, b.tunnel]),
    [
      ['10.88.0.11', 3306, 'nat', 1, undefined],
      ['10.88.0.12', 3306, 'nat', 2, undefined],
    ],
  );
  assert.equal(forwardingLabel(s.backends[0]!), 'nat');
  assert.equal(serviceForwardingLabel(s.backends, 'dr'), 'nat');
});

test('NAT behind BGP is refused (the first replies of a flow another director forwarded reach the gateway unsynced), naming VRRP and dr/tunnel as fixes; a NAT VIP held by VRRP beside announced DR VIPs is accepted', () => {
  const bgp = 'bgp:\n  local_as: 65001\n  router_id: 10.77.0.2\n  neighbours: [{ address: 10.77.0.1, as: 65000 }]\n';
  const two = 'nat:\n  interface: eth1\n';
  const byDefault = problems(config(NAT3, two + bgp));
  assert.ok(
    byDefault.some((l) =>
      /services\[0\]\.forwarding: service mysql forwards with nat and its VIP 10\.77\.0\.100 is announced over BGP \(every service VIP by default\): .*synced only when its handshake completes, after its SYN-ACK left untranslated .*hold 10\.77\.0\.100 with VRRP, its gateway in the same instance .*and list only the other VIPs in bgp\.announce, or forward mysql with dr or tunnel /.test(
        l,
      ),
    ),
    byDefault.join('\n'),
  );
  const listed = bgp.replace('neighbours:', 'announce: [{ vip: 10.77.0.100 }]\n  neighbours:');
  assert.ok(
    problems(config(NAT3, two + listed)).some((l) => /and remove it from bgp\.announce, or forward mysql/.test(l)),
  );
  // The recommended shape: the NAT VIP and its gateway in one VRRP instance, BGP announcing a DR VIP.
  const dr = '  - { name: ro, vip: 10.77.0.101, port: 3306, check: none, backends: [{ address: 10.77.0.11 }] }\n';
  const vrrp =
    'vrrp:\n  - { name: VI_1, vrid: 51, priority: 150, vips: ["10.77.0.100/32", "10.88.0.1/24 dev eth1"] }\n';
  const ok = parseConfig(
    config(NAT3 + dr, two + vrrp + bgp.replace('neighbours:', 'announce: [{ vip: 10.77.0.101 }]\n  neighbours:')),
    'lab.yaml',
  );
  assert.deepEqual(
    ok.services.map((s) => s.forwarding),
    ['nat', 'dr'],
  );
  assert.deepEqual(
    ok.bgp!.announce.map((a) => a.vip),
    ['10.77.0.101'],
  );
});
