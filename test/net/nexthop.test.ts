// Tunnel next hops from the kernel's routing table (src/net/neigh.ts route / resolveNextHops) in
// a namespace pair made here: a director side with routes of each kind, and a router side whose
// MAC the next hops must resolve to. Run in the director namespace by a child process (the
// rtnetlink socket belongs to the namespace it is opened in).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';

const P = `xtnh${process.pid % 100000}`;
const D = `${P}d`;
const R = `${P}r`;
const NEIGH = path.resolve(__dirname, '../../src/net/neigh.js');
let routerMac = '';

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Runs resolveNextHops(eth0, addresses) in the director namespace. */
function nextHops(addresses: string[]): any[] {
  const js = `const { Neighbours } = require(${JSON.stringify(NEIGH)});
(async () => { const n = new Neighbours(); try { process.stdout.write(JSON.stringify(await n.resolveNextHops('eth0', ${JSON.stringify(addresses)}, 1000))); } finally { n.close(); } })().catch((e) => { console.error(e.message); process.exit(1); });`;
  const r = spawnSync('nsenter', [`--net=/run/netns/${D}`, process.execPath, '-e', js], {
    encoding: 'utf8',
    timeout: 20000,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

before(() => {
  ip('netns', 'add', D);
  ip('netns', 'add', R);
  ip('link', 'add', `${P}x`, 'netns', D, 'type', 'veth', 'peer', 'name', `${P}y`, 'netns', R);
  ip('-n', D, 'link', 'set', `${P}x`, 'name', 'eth0');
  ip('-n', D, 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth1p'); // a second way out (no dummy driver here)
  for (const [ns, dev] of [
    [D, 'eth0'],
    [D, 'eth1'],
    [D, 'eth1p'],
    [R, `${P}y`],
  ] as const)
    ip('-n', ns, 'link', 'set', dev, 'up');
  ip('-n', R, 'addr', 'add', '10.98.0.1/24', 'dev', `${P}y`);
  ip('-n', R, '-6', 'addr', 'add', 'fe80::1/64', 'dev', `${P}y`, 'nodad');
  ip('-n', D, 'addr', 'add', '10.98.0.2/24', 'dev', 'eth0');
  ip('-n', D, '-6', 'addr', 'add', 'fe80::2/64', 'dev', 'eth0', 'nodad');
  ip('-n', D, 'addr', 'add', '10.96.0.2/24', 'dev', 'eth1');
  ip('-n', D, 'route', 'add', '10.97.0.0/16', 'via', '10.98.0.1', 'mtu', '1400');
  ip('-n', D, 'route', 'add', '10.99.0.0/16', 'via', 'inet6', 'fe80::1', 'dev', 'eth0');
  ip('-n', D, '-6', 'route', 'add', 'fd97::/16', 'via', 'fe80::1', 'dev', 'eth0');
  ip('-n', D, 'route', 'add', '10.95.0.0/16', 'via', '10.96.0.1');
  routerMac = JSON.parse(ip('-n', R, '-j', 'link', 'show', `${P}y`))[0].address;
});

after(() => {
  for (const ns of [D, R]) spawnSync('ip', ['netns', 'del', ns]);
});

test("an IPv4 real server behind an IPv4 gateway resolves to the gateway's MAC with the route's mtu", () => {
  assert.deepEqual(nextHops(['10.97.1.11']), [{ address: '10.97.1.11', mac: routerMac, via: '10.98.0.1', mtu: 1400 }]);
});

test("an IPv4 real server behind an IPv6 link-local next hop (RFC 5549, BGP unnumbered) resolves to that hop's MAC", () => {
  assert.deepEqual(nextHops(['10.99.1.11']), [{ address: '10.99.1.11', mac: routerMac, via: 'fe80::1', mtu: 1500 }]);
});

test("an IPv6 real server behind a link-local gateway resolves to the gateway's MAC", () => {
  assert.deepEqual(nextHops(['fd97:1::11']), [{ address: 'fd97:1::11', mac: routerMac, via: 'fe80::1', mtu: 1500 }]);
});

test('a real server routed out of another interface is refused with the fix', () => {
  const [r] = nextHops(['10.95.1.11']);
  assert.equal(r.mac, undefined);
  assert.match(
    r.error,
    /the route to 10\.95\.1\.11 leaves by ifindex \d+, not eth0: .*route the real servers' subnets via eth0/,
  );
});
