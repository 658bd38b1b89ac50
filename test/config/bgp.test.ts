// The `bgp:` config section: defaults, the typed output, and the refusals an operator sees
// (key path, problem and fix), including BGP and VRRP claiming the same VIP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { loadConfig, parseConfig } from '../../src/config';
import { XdError } from '../../src/errors';
import { configProblems as problems } from '../lib/config';

const BASE = `instance: lab
interface: eth0
admin:
  socket: /run/xd/lab.sock
services:
  - name: rw
    vip: 10.77.0.100
    port: 3306
    check: none
    backends:
      - address: 10.77.0.11
  - name: ro
    vip: 10.77.0.101
    port: 3306
    check: none
    backends:
      - address: 10.77.0.12
`;

const BGP = `bgp:
  local_as: 65001
  router_id: 10.77.0.2
  neighbours:
    - address: 10.77.0.1
      as: 65000
`;

test('a minimal bgp section announces every service VIP with 9 s hold and 3 s keepalive', () => {
  const cfg = parseConfig(BASE + BGP, 'lab.yaml');
  assert.deepEqual(cfg.bgp, {
    localAs: 65001,
    routerId: '10.77.0.2',
    bfd: { minRxMs: 100, minTxMs: 100, multiplier: 3 },
    neighbours: [
      { name: 'peer1', address: '10.77.0.1', family: 4, as: 65000, bfd: false, holdTimeMs: 9000, keepaliveMs: 3000 },
    ],
    announce: [
      { vip: '10.77.0.100', family: 4, communities: [] },
      { vip: '10.77.0.101', family: 4, communities: [] },
    ],
    runDir: '/run/xd',
    bird: 'bird',
  });
});

test('a config without a bgp section has no bgp', () => {
  assert.equal(parseConfig(BASE, 'lab.yaml').bgp, undefined);
});

test('neighbour options (BFD, hold time, password, name) and announce MED and communities are kept', () => {
  const cfg = parseConfig(
    `${BASE}bgp:
  local_as: 4200000001
  router_id: 10.77.0.2
  bfd: { min_rx: 50ms, min_tx: 60ms, multiplier: 5 }
  neighbours:
    - { address: 10.77.0.1, as: 65000, bfd: true, hold_time: 3s, password: s3cret, name: tor1 }
  announce:
    - { vip: 10.77.0.101, med: 20, communities: ["65000:100", "65000:7"] }
`,
    'lab.yaml',
  );
  assert.deepEqual(cfg.bgp!.neighbours[0], {
    name: 'tor1',
    address: '10.77.0.1',
    family: 4,
    as: 65000,
    password: 's3cret',
    bfd: true,
    holdTimeMs: 3000,
    keepaliveMs: 1000,
  });
  assert.deepEqual(cfg.bgp!.announce, [
    {
      vip: '10.77.0.101',
      family: 4,
      med: 20,
      communities: [
        [65000, 100],
        [65000, 7],
      ],
    },
  ]);
  assert.deepEqual(cfg.bgp!.bfd, { minRxMs: 50, minTxMs: 60, multiplier: 5 });
});

test('a VIP both announced over BGP and held by VRRP is refused with the fix', () => {
  const p = problems(`${BASE}${BGP}vrrp:
  - name: vi1
    vrid: 51
    vips: [10.77.0.100/24]
`);
  assert.equal(p.length, 1, p.join('\n'));
  assert.match(
    p[0]!,
    /^lab\.yaml: vrrp\[0\]\.vips\[0\]: 10\.77\.0\.100 is announced over BGP .* held by VRRP instance vi1: .*remove it from vrrp\[0\]\.vips or from bgp\.announce \(line \d+\)$/,
  );
});

test('VRRP may keep a VIP that bgp.announce leaves out', () => {
  const cfg = parseConfig(
    `${BASE}${BGP}  announce:\n    - vip: 10.77.0.101\nvrrp:\n  - { name: vi1, vrid: 51, vips: [10.77.0.100/24] }\n`,
    'lab.yaml',
  );
  assert.deepEqual(
    cfg.bgp!.announce.map((a) => a.vip),
    ['10.77.0.101'],
  );
  assert.equal(cfg.vrrp.length, 1);
});

test('announcing an address that is no service VIP is refused, naming the service VIPs', () => {
  const p = problems(`${BASE}${BGP}  announce:\n    - vip: 10.77.0.200\n`);
  assert.match(
    p.join('\n'),
    /bgp\.announce\[0\]\.vip: 10\.77\.0\.200 is not the VIP of any service: announce only service VIPs \(10\.77\.0\.100, 10\.77\.0\.101\)/,
  );
});

test('durations without a unit and sub-second BGP timers are refused', () => {
  const p = problems(
    `${BASE}bgp:\n  local_as: 65001\n  router_id: 10.77.0.2\n  hold_time: 9\n  neighbours:\n    - { address: 10.77.0.1, as: 65000, hold_time: 3500ms }\n`,
  ).join('\n');
  assert.match(p, /bgp\.hold_time: is a bare number \(9\): durations need their unit, write 9s or 9ms/);
  assert.match(p, /bgp\.neighbours\[0\]\.hold_time: BGP timers are whole seconds, got "3500ms": write e\.g\. "3s"/);
});

test('a hold time under 3 s is refused (RFC 4271: 0 or at least 3 seconds)', () => {
  assert.match(
    problems(`${BASE}${BGP.replace('  neighbours', '  hold_time: 2s\n  neighbours')}`).join('\n'),
    /bgp\.hold_time: must be from 3s to 65535s, got "2s"/,
  );
});

test('a keepalive above a third of the hold time is refused', () => {
  assert.match(
    problems(`${BASE}${BGP.replace('  neighbours', '  hold_time: 6s\n  keepalive: 3s\n  neighbours')}`).join('\n'),
    /bgp\.keepalive: keepalive "3s" is more than a third of the shortest hold time \(6s\)/,
  );
});

test('bad AS numbers, router ids, communities and missing neighbours are each reported', () => {
  const p = problems(
    `${BASE}bgp:\n  local_as: 0\n  router_id: fd00::1\n  neighbours: []\n  announce:\n    - { vip: 10.77.0.100, communities: ["70000:1"] }\n`,
  ).join('\n');
  assert.match(p, /bgp\.local_as: must be an AS number from 1 to 4294967294, got 0/);
  assert.match(
    p,
    /bgp\.router_id: must be an IPv4 address \(BGP router ids are 32-bit, written as IPv4\), got "fd00::1"/,
  );
  assert.match(p, /bgp\.neighbours: list at least one neighbour/);
  assert.match(
    p,
    /bgp\.announce\[0\]\.communities\[0\]: must be a community "ASN:VALUE" with two numbers 0\.\.65535, got "70000:1"/,
  );
});

test('a neighbour listed twice and password with password_file are refused', () => {
  const p = problems(
    `${BASE}bgp:\n  local_as: 65001\n  router_id: 10.77.0.2\n  neighbours:\n    - { address: 10.77.0.1, as: 65000, password: a, password_file: /etc/pw }\n    - { address: 10.77.0.1, as: 65000 }\n`,
  ).join('\n');
  assert.match(p, /bgp\.neighbours\[0\]\.password: give password or password_file, not both/);
  assert.match(
    p,
    /bgp\.neighbours\[1\]\.address: neighbour 10\.77\.0\.1 is listed twice \(also bgp\.neighbours\[0\]\): one session per neighbour/,
  );
});

test('an IPv6 VIP without an IPv6 neighbour is refused', () => {
  const text = `${BASE}  - name: v6\n    vip: fd77::100\n    port: 3306\n    check: none\n    backends:\n      - address: fd77::11\n${BGP}`;
  assert.match(problems(text).join('\n'), /fd77::100 is IPv6 but no neighbour is IPv6: add an IPv6 neighbour/);
});

test('an unknown key in bgp gets a suggestion', () => {
  assert.match(
    problems(`${BASE}${BGP}  holdtime: 3s\n`).join('\n'),
    /bgp\.holdtime: unknown key; did you mean "hold_time"\?/,
  );
});

test('check-config refuses a password_file whose key has a double quote or is over 80 bytes, naming the key path and never showing the key', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `xdbgp-pw-${process.pid}-`));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pw = (name: string, text: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text, { mode: 0o600 });
    return f;
  };
  const files = [
    pw('quote.pw', 'se"cret\n'),
    pw('long.pw', `${'k'.repeat(81)}\n`),
    pw('ok80.pw', `${'k'.repeat(80)}\n`),
  ];
  const neighbours = files
    .map((f, i) => `    - { address: 10.77.0.${i + 1}, as: 65000, password_file: ${f} }`)
    .join('\n');
  const cfgFile = path.join(dir, 'c.yaml');
  fs.writeFileSync(cfgFile, `${BASE}bgp:\n  local_as: 65001\n  router_id: 10.77.0.9\n  neighbours:\n${neighbours}\n`);
  let msg = '';
  try {
    loadConfig(cfgFile);
  } catch (e) {
    assert.ok(e instanceof XdError);
    assert.equal(e.code, 'XD_ERR_CONFIG_INVALID');
    msg = e.message;
  }
  const lines = msg.split('\n');
  assert.equal(lines.length, 2, msg);
  assert.match(
    lines[0]!,
    new RegExp(
      `^${cfgFile}: bgp\\.neighbours\\[0\\]\\.password_file: the key in ${files[0]} must not contain a double quote: BIRD's config strings cannot carry it`,
    ),
  );
  assert.match(
    lines[1]!,
    new RegExp(
      `^${cfgFile}: bgp\\.neighbours\\[1\\]\\.password_file: the key in ${files[1]} must be 1 to 80 bytes \\(the kernel's TCP MD5 key limit\\), got 81`,
    ),
  );
  assert.ok(!msg.includes('se"cret') && !msg.includes('k'.repeat(81)), 'the key is not shown');
});

test('an inline password over 80 bytes (counted as the kernel does, in bytes) is refused', () => {
  assert.match(
    problems(
      `${BASE}bgp:\n  local_as: 65001\n  router_id: 10.77.0.2\n  neighbours:\n    - { address: 10.77.0.1, as: 65000, password: "${'é'.repeat(41)}" }\n`,
    ).join('\n'),
    /bgp\.neighbours\[0\]\.password: must be 1 to 80 bytes \(the kernel's TCP MD5 key limit\), got 82/,
  );
});
